#!/usr/bin/env bash
# Coordination cost as the job grows (issue 3): the time of one empty
# coordinated checkpoint round with 8 to 1024 simulated node agents.
#
#   tests/bench/coord-bench.sh BUILD_DIR [DIR] [SIZES]
#
# Runs BUILD_DIR/tests/bench/ckpt-coord-bench (built with -DCKPT_BENCH=ON;
# this script builds nothing) against BUILD_DIR/agent/ckpt-run's coordinator.
# DIR (default /var/tmp) gets a temporary directory for the checkpoints,
# removed at the end; SIZES is a comma separated list of job sizes (default
# 8,16,32,64,128,256,512,1024). For each size: a real coordinator, N agents on
# loopback (one TCP connection and one rank each, in one epoll thread), one
# untimed round, then ROUNDS (default 5) timed rounds from ckpt-ctl's
# CHECKPOINT to its OK. See tests/bench/coord_bench.cpp.
#
# Prints the results and writes them into the section
# "## Coordination cost as the job grows (issue 3)" of docs/benchmarks.md
# (NO_DOCS=1 leaves the document alone). Reports; never passes or fails on timing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[[ $# -ge 1 ]] || { echo "usage: tests/bench/coord-bench.sh BUILD_DIR [DIR] [SIZES]" >&2; exit 2; }
BUILD_DIR=$(cd "$1" && pwd)
BASE=${2:-/var/tmp}
SIZES=${3:-8,16,32,64,128,256,512,1024}
ROUNDS=${ROUNDS:-5}
DOC=$ROOT/docs/benchmarks.md
SECTION="## Coordination cost as the job grows (issue 3)"
COMMAND="tests/bench/coord-bench.sh BUILD_DIR $BASE $SIZES"
[[ $ROUNDS == 5 ]] || COMMAND="ROUNDS=$ROUNDS $COMMAND"
NICE=$(nice)
[[ $NICE == 0 ]] || COMMAND="nice -n $NICE $COMMAND"

BIN=$BUILD_DIR/tests/bench/ckpt-coord-bench
RUN=$BUILD_DIR/agent/ckpt-run
[[ -x $BIN ]] || { echo "coord-bench: no $BIN (configure $BUILD_DIR with -DCKPT_BENCH=ON and build ckpt-coord-bench)" >&2; exit 2; }
[[ -x $RUN ]] || { echo "coord-bench: no $RUN (build ckpt-run)" >&2; exit 2; }
[[ -d $BASE ]] || { echo "coord-bench: $BASE is not a directory" >&2; exit 2; }
[[ $SIZES =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { echo "coord-bench: SIZES is a comma separated list of positive integers" >&2; exit 2; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "coord-bench: ROUNDS must be a positive integer" >&2; exit 2; }

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
DATE_START=$(date -u '+%Y-%m-%d %H:%M UTC')
OUT=$(mktemp)
trap 'rm -f "$OUT" "$OUT.md"' EXIT

"$BIN" --ckpt-run "$RUN" --dir "$BASE" --ranks "$SIZES" --rounds "$ROUNDS" >"$OUT"

BUILD_TYPE=$(awk -F= '/^CMAKE_BUILD_TYPE:/ { print $2 }' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)
[[ -n $BUILD_TYPE ]] || BUILD_TYPE="RelWithDebInfo (the default)"
{
    echo "$SECTION"
    echo
    echo "Measured $DATE_START with \`$COMMAND\` (build type $BUILD_TYPE)."
    echo
    "$ROOT/tests/bench/machine.sh" "$LOAD_START" "$BASE" agent image coordinator tests/bench
    echo "- Job: a real coordinator (\`ckpt-run --role=coordinator\`, --keep 2) and N simulated node agents in one process, one thread" \
        "with epoll, on loopback: one TCP connection per agent, one rank per agent (N nodes of one rank). The agents answer FREEZE at once;" \
        "at DUMP each hard-links a dummy rank file (one task, one thread, one page; written before the rounds) into the partial directory" \
        "and answers DUMPED with its manifest row, so the commit validates N real rank files"
    echo "- *Round*: ckpt-ctl's CHECKPOINT sent to OK received, median (and mean) of $ROUNDS rounds after one untimed round; *per rank*: round / N"
    echo "- Seen from the agents: *freeze* CHECKPOINT sent to the first DUMP received (FREEZE to N agents, N FROZEN back);" \
        "*dump* first DUMP received to the last DUMPED sent (DUMP fan-out, N links, N answers); *commit* last DUMPED sent to OK received" \
        "(the coordinator reads the last answers, PendingCheckpoint::commit opens every rank file with RankReader, writes the manifest," \
        "fsyncs and renames, moves \`latest\`, applies retention)"
    echo "- *commit() alone*: PendingCheckpoint::commit of the same N files timed by itself in the benchmark process; *retention*: apply_retention(2) after it"
    echo
    cat "$OUT"
} >"$OUT.md"

cat "$OUT.md"

if [[ ${NO_DOCS:-0} != 1 ]]; then
    # Replaces this section or appends it (a "### Notes" part at its end is kept).
    "$ROOT/tests/bench/write-section.sh" "$DOC" "$SECTION" "$OUT.md"
    echo "coord-bench: wrote \"$SECTION\" in $DOC" >&2
fi
