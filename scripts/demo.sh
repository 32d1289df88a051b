#!/bin/bash
# Installs what is needed, builds, and shows the main job on a small demo:
# a multithreaded program is checkpointed while it runs, killed with
# SIGKILL, restored from its checkpoint, and finishes with exactly the output
# of a run that was never interrupted.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
echo "== building (build/)"
BUILD_DIR=$root/build scripts/build.sh >/dev/null
bin=$root/build
app=$bin/tests/demo/ckpt-demo-app
demo=$(mktemp -d /tmp/ckpt-demo.XXXXXX)
cd "$demo"
echo "== demo directory: $demo"

echo "== 1. reference: the program run to its end, without checkpointing (in the background)"
"$app" 20 > reference.out &
reference=$!

echo "== 2. the same program under ckpt-run"
"$bin/agent/ckpt-run" --ckpt-dir "$demo/ckpt" -- "$app" 20 > run1.out 2> run1.err &
job=$!
until [ "$(wc -l < run1.out)" -ge 6 ]; do sleep 0.1; done
echo "   it has printed:"; sed 's/^/     /' run1.out

echo "== 3. ckpt-ctl --ckpt-dir ckpt checkpoint   (the program goes on)"
"$bin/coordinator/ckpt-ctl" -q --ckpt-dir "$demo/ckpt" checkpoint | sed 's/^/   /'
sleep 1
echo "== 4. kill -9 of ckpt-run and the program (a node failure)"
kill -9 "$job"
wait "$job" 2>/dev/null || true
echo "   the killed run had printed $(wc -l < run1.out) lines; the last: $(tail -1 run1.out)"

echo "== 5. ckpt-info ckpt   (what the checkpoint holds; h5ls and h5dump read it too)"
"$bin/image/ckpt-info" "$demo/ckpt" | sed 's/^/   /'

echo "== 6. ckpt-run --ckpt-dir ckpt --restart   (resumes where the checkpoint was taken)"
"$bin/agent/ckpt-run" --ckpt-dir "$demo/ckpt" --restart > run2.out 2> run2.err
echo "   the restored run printed:"; sed 's/^/     /' run2.out

wait "$reference"
# The restored run starts at the checkpoint: lines the killed run printed
# after it are printed again. The final result must be identical.
checkpoint_line=$(head -1 run2.out | cut -d: -f1)
echo "== 7. comparison with the uninterrupted run"
head -n "$(( $(grep -n "^$checkpoint_line" reference.out | cut -d: -f1) - 1 ))" reference.out > before.out
cat before.out run2.out > combined.out
if cmp -s combined.out reference.out; then
    echo "   IDENTICAL: output before the checkpoint + output of the restored run == uninterrupted output ($(wc -l < reference.out) lines)"
    echo "   $(tail -1 reference.out)"
else
    echo "   DIFFERENT:"; diff combined.out reference.out || true
    exit 1
fi
