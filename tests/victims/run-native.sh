#!/bin/bash
# Runs every victim natively (no checkpoint): each must print "ready", then,
# once the go file exists, "PASS", and exit 0, leaving no process behind.
#
#   run-native.sh BUILD_DIR [NAME...]
#
# BUILD_DIR is the build tree (victims in BUILD_DIR/tests/victims) or the
# directory holding the victim_* executables. NAMEs (without "victim_")
# select victims; default all. Each victim runs in its own scratch directory
# (its cwd and $CKPT_TEST_DIR), with $CKPT_TEST_GO naming a file created
# RUN_NATIVE_DELAY seconds (default 0.2) after "ready" appears.
# Environment: RUN_NATIVE_TIMEOUT (s, default 60) per victim, KEEP=1 keeps
# the scratch directories of failed victims.
set -u

usage() { echo "usage: $0 BUILD_DIR [NAME...]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
build=$1; shift
if [[ -d $build/tests/victims ]]; then dir=$build/tests/victims; else dir=$build; fi
delay=${RUN_NATIVE_DELAY:-0.2}
limit=${RUN_NATIVE_TIMEOUT:-60}

victims=()
if [[ $# -gt 0 ]]; then
  for n in "$@"; do victims+=("$dir/victim_${n#victim_}"); done
else
  for f in "$dir"/victim_*; do [[ -x $f && -f $f ]] && victims+=("$f"); done
fi
[[ ${#victims[@]} -gt 0 ]] || { echo "no victims in $dir" >&2; exit 2; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
is_zombie_or_gone() { [[ ! -e /proc/$1/stat ]] || [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]]; }

# Pids of processes still carrying this run's scratch directory in their
# environment: victims' children that outlived the victim.
leftovers() {
  local scratch=$1 p
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [[ $p == "$$" || $p == "$BASHPID" ]] && continue
    if grep -qzxF "CKPT_TEST_DIR=$scratch" "/proc/$p/environ" 2>/dev/null; then echo "$p"; fi
  done
}

passed=0; failed=0; failed_names=()
for exe in "${victims[@]}"; do
  name=$(basename "$exe"); name=${name#victim_}
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/victim-$name.XXXXXX")
  go=$scratch/go
  start=$(now)
  ( cd "$scratch" && CKPT_TEST_DIR=$scratch CKPT_TEST_GO=$go exec timeout -k 5 "$limit" "$exe" \
      >"$scratch/stdout" 2>"$scratch/stderr" </dev/null ) &
  pid=$!
  why=""
  # Wait for "ready" (or for the victim to end without it).
  while :; do
    if [[ -s $scratch/stdout ]] && IFS= read -r first <"$scratch/stdout" && [[ $first == ready ]]; then break; fi
    if is_zombie_or_gone "$pid"; then why="exited before ready"; break; fi
    sleep 0.01
  done
  [[ -z $why ]] && { sleep "$delay"; touch "$go"; }
  wait "$pid"; rc=$?
  out=$(cat "$scratch/stdout")
  if [[ -z $why ]]; then
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then why="timed out after ${limit}s"
    elif [[ $out != $'ready\nPASS' ]]; then why="stdout is not ready+PASS"
    elif [[ $rc -ne 0 ]]; then why="exit status $rc"
    fi
  fi
  left=$(leftovers "$scratch")
  if [[ -n $left ]]; then
    why="${why:+$why; }left processes behind: $(echo $left)"
    kill -KILL $left 2>/dev/null
  fi
  if [[ -z $why ]]; then
    passed=$((passed + 1))
    printf 'PASS  %-22s %5ss\n' "$name" "$(elapsed "$start")"
    rm -rf "$scratch"
  else
    failed=$((failed + 1)); failed_names+=("$name")
    printf 'FAIL  %-22s %5ss  %s (exit %d)\n' "$name" "$(elapsed "$start")" "$why" "$rc"
    sed 's/^/      stdout: /' "$scratch/stdout"
    head -n 20 "$scratch/stderr" | sed 's/^/      stderr: /'
    if [[ ${KEEP:-0} == 1 ]]; then echo "      kept $scratch"; else rm -rf "$scratch"; fi
  fi
done

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]] || { echo "failed: ${failed_names[*]}"; exit 1; }
