#!/usr/bin/env bash
# Runs the image reader's fuzz targets for a bounded time (ctest label "fuzz").
#
#   run-fuzz.sh --synth ckpt-synth --struct fuzz_inspect_struct [--raw fuzz_inspect_raw]
#               [--regressions DIR] [--corpus DIR] [--work DIR]
#
# 1. Makes seed checkpoints with ckpt-synth (1 rank, 1 task, 1 MiB; page data
#    uncompressed and zstd) in a temporary directory.
# 2. Replays every reproducer in DIR/struct (fuzz_inspect_struct inputs) and
#    DIR/raw (whole rank files, fuzz_inspect_raw).
# 3. Runs fuzz_inspect_raw once over the ckpt-synth seeds (a smoke test: the
#    seeds are valid images and must verify).
# 4. Fuzzes fuzz_inspect_struct for FUZZ_SECONDS (default 60) seconds,
#    starting from the checked-in seeds (CORPUS/struct.hex, one input per line
#    in hex, and any files in CORPUS/struct/) plus WORK/struct-corpus, where
#    new inputs are kept for the next run.
# 5. With FUZZ_RAW_SECONDS > 0 (default 0), also fuzzes fuzz_inspect_raw
#    with arbitrary bytes. Expect failures inside libhdf5 1.10.8 within
#    minutes (see fuzz_inspect_raw.cpp); leak detection is off.
#
# Exits non-zero when any replay or fuzzing run finds a crash, hang (over 10 s
# for one input), out-of-memory (2 GiB) or leak. Crashing inputs are left in
# WORK/artifacts; reproduce one with
#   fuzz_inspect_struct WORK/artifacts/crash-...        (FUZZ_VERBOSE=1 lists the
#   edits, FUZZ_KEEP_DIR=D keeps the edited checkpoint in D)
set -u -o pipefail

synth="" struct="" raw="" regressions="" corpus="" work=""
while [ $# -gt 0 ]; do
    case "$1" in
        --synth) synth=$2; shift 2 ;;
        --struct) struct=$2; shift 2 ;;
        --raw) raw=$2; shift 2 ;;
        --regressions) regressions=$2; shift 2 ;;
        --corpus) corpus=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        -h|--help) sed -n "2,25p" "$0"; exit 0 ;;
        *) echo "run-fuzz.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$synth" ] || [ -z "$struct" ]; then
    echo "run-fuzz.sh: --synth and --struct are required" >&2
    exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
seconds=${FUZZ_SECONDS:-60}
raw_seconds=${FUZZ_RAW_SECONDS:-0}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-run-fuzz.XXXXXX") || exit 2
# The targets write each input as files: in memory when /dev/shm is there.
# Even a crashed target's scratch files are removed with this directory.
scratch=$(mktemp -d /dev/shm/ckpt-run-fuzz.XXXXXX 2>/dev/null) || scratch=$tmp/scratch
trap 'rm -rf "$tmp" "$scratch"' EXIT
[ -n "$work" ] || work=$tmp/work
mkdir -p "$work/artifacts" "$work/struct-corpus" "$scratch"
export FUZZ_TMPDIR=$scratch
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
# libhdf5 is built without frame pointers: only the slow unwinder gives full
# allocation stacks (for leak reports). It makes a target 7x slower, so it is
# used for replays only.
replay_asan=${ASAN_OPTIONS:-fast_unwind_on_malloc=0}

common=(-timeout=10 -rss_limit_mb=2048 "-artifact_prefix=$work/artifacts/")
failures=0
fail() {
    echo "run-fuzz.sh: FAIL: $*" >&2
    failures=$((failures + 1))
}

# ---- 1. seeds ---------------------------------------------------------------
mkdir -p "$tmp/seeds"
for compression in none zstd; do
    if ! "$synth" --ckpt-dir "$tmp/synth-$compression" --ranks 1 --tasks 1 --threads 1 --mib 1 \
            --compression "$compression" --job-id fuzz > "$tmp/synth.log" 2>&1; then
        cat "$tmp/synth.log" >&2
        echo "run-fuzz.sh: ckpt-synth failed" >&2
        exit 1
    fi
    cp "$tmp/synth-$compression/latest/rank-00000.h5" "$tmp/seeds/rank-$compression.h5"
    cp "$tmp/synth-$compression/latest/manifest.h5" "$tmp/seeds/manifest-$compression.h5"
done
# A manifest seed reaches its rank file through this copy (see fuzz_inspect_raw.cpp).
export FUZZ_RANK_FILE=$tmp/seeds/rank-zstd.h5

# ---- 2. regressions -----------------------------------------------------------
replay() {  # target, directory, extra options...
    local target=$1 dir=$2
    shift 2
    [ -d "$dir" ] || return 0
    local f
    for f in "$dir"/*; do
        [ -f "$f" ] || continue
        case "$f" in *.md|*.txt) continue ;; esac
        echo "run-fuzz.sh: replaying $f"
        if ! ASAN_OPTIONS=$replay_asan "$target" "${common[@]}" "$@" "$f" > "$tmp/replay.log" 2>&1; then
            tail -n 60 "$tmp/replay.log" >&2
            fail "$(basename "$target") crashes on regression input $f"
        fi
    done
}
if [ -n "$regressions" ]; then
    replay "$struct" "$regressions/struct"
    if [ -n "$raw" ]; then replay "$raw" "$regressions/raw" -detect_leaks=0; fi
fi

# ---- 3. raw target over the valid seeds -------------------------------------
if [ -n "$raw" ]; then
    echo "run-fuzz.sh: fuzz_inspect_raw over the ckpt-synth seeds"
    if ! "$raw" "${common[@]}" -runs=0 "$tmp/seeds" > "$tmp/raw-seeds.log" 2>&1; then
        tail -n 60 "$tmp/raw-seeds.log" >&2
        fail "fuzz_inspect_raw fails on a valid ckpt-synth image"
    fi
fi

# ---- 4. structure-aware fuzzing -----------------------------------------------
# The checked-in seeds are packed one input per line, in hex (struct.hex).
corpora=("$work/struct-corpus")
if [ -n "$corpus" ] && [ -f "$corpus/struct.hex" ]; then
    mkdir -p "$tmp/struct-seeds"
    n=0
    while read -r hex; do
        case "$hex" in ''|'#'*) continue ;; esac
        n=$((n + 1))
        printf '%b' "$(sed 's/../\\x&/g' <<< "$hex")" > "$tmp/struct-seeds/seed-$n"
    done < "$corpus/struct.hex"
    corpora+=("$tmp/struct-seeds")
fi
if [ -n "$corpus" ] && [ -d "$corpus/struct" ]; then corpora+=("$corpus/struct"); fi
if [ "$seconds" -gt 0 ]; then
    echo "run-fuzz.sh: fuzz_inspect_struct for $seconds s"
    if ! LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/lsan-libhdf5.supp:print_suppressions=0} \
            "$struct" "${common[@]}" -max_total_time="$seconds" -max_len=512 -len_control=0 -print_final_stats=1 \
            "${corpora[@]}" > "$tmp/struct.log" 2>&1; then
        tail -n 80 "$tmp/struct.log" >&2
        fail "fuzz_inspect_struct found a problem (input in $work/artifacts)"
    else
        grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$tmp/struct.log"
    fi
fi

# ---- 5. raw fuzzing (opt-in) ----------------------------------------------------
if [ -n "$raw" ] && [ "$raw_seconds" -gt 0 ]; then
    echo "run-fuzz.sh: fuzz_inspect_raw for $raw_seconds s"
    mkdir -p "$work/raw-corpus"
    if ! "$raw" "${common[@]}" -detect_leaks=0 -max_total_time="$raw_seconds" -print_final_stats=1 \
            "$work/raw-corpus" "$tmp/seeds" > "$tmp/raw.log" 2>&1; then
        tail -n 80 "$tmp/raw.log" >&2
        fail "fuzz_inspect_raw found a problem (input in $work/artifacts)"
    fi
fi

if [ "$failures" -gt 0 ]; then
    echo "run-fuzz.sh: $failures failure(s)" >&2
    exit 1
fi
echo "run-fuzz.sh: OK"
