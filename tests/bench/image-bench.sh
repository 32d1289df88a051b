#!/usr/bin/env bash
# Image write and read benchmark (issue 1).
#
#   tests/bench/image-bench.sh [DIR] [SIZE_MIB] [ckpt-image-bench options...]
#
# Writes and reads a SIZE_MIB (default 1024) synthetic rank image in a fresh
# temporary directory under DIR (default /var/tmp), uncompressed and with
# zstd, and compares it with raw sequential write+fsync and cold-cache read
# of the same directory measured in the same run (by the program with
# write()/read(), and by dd). Prints the results and writes them into the
# section "## Image write and read (issue 1)" of docs/benchmarks.md (set
# NO_DOCS=1 to leave the document alone, e.g. for runs with extra options).
# Builds ckpt-image-bench in $BUILD_DIR (default <repo>/build) when needed.
# Removes every file it created.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
BASE=${1:-/var/tmp}
SIZE=${2:-1024}
shift $(($# < 2 ? $# : 2))
REPEAT=3
DOC=$ROOT/docs/benchmarks.md
SECTION="## Image write and read (issue 1)"
COMMAND="tests/bench/image-bench.sh $BASE $SIZE${*:+ $*}"

[[ $SIZE =~ ^[1-9][0-9]*$ ]] || { echo "image-bench: SIZE_MIB must be a positive integer" >&2; exit 2; }
[[ -d $BASE ]] || { echo "image-bench: $BASE is not a directory" >&2; exit 2; }

# ---- build -------------------------------------------------------------------
if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCKPT_WERROR=ON -DCKPT_BENCH=ON >&2
elif ! grep -q '^CKPT_BENCH:BOOL=ON' "$BUILD_DIR/CMakeCache.txt"; then
    cmake -B "$BUILD_DIR" -DCKPT_BENCH=ON >&2
fi
make -C "$BUILD_DIR" -j"$(nproc)" ckpt-image-bench >&2
BIN=$BUILD_DIR/tests/bench/ckpt-image-bench

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- work directory ------------------------------------------------------------
WORK=$(mktemp -d "$BASE/ckpt-image-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Cold reads: drop the whole page cache when permitted, else the file's pages.
if [[ -w /proc/sys/vm/drop_caches ]] && (sync && echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
    DD_DROP="echo 3 > /proc/sys/vm/drop_caches (after sync)"
    drop_cache() { sync; echo 3 >/proc/sys/vm/drop_caches; }
else
    DD_DROP="dd iflag=nocache count=0 (posix_fadvise DONTNEED on the file)"
    drop_cache() { sync; dd if="$1" iflag=nocache count=0 status=none; }
fi

# This benchmark's program writes and deletes a ballast file before each
# measurement (see --ballast-mib); dd gets the same treatment. On a VM with
# virtio-balloon free page reporting, page cache filled from memory returned to
# the host is several times slower to fill than memory the guest still holds.
BALLAST_MIB=$((SIZE + SIZE / 8))
ballast() { dd if=/dev/zero of="$WORK/ballast.bin" bs=1M count="$BALLAST_MIB" status=none; rm -f "$WORK/ballast.bin"; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# ---- dd ------------------------------------------------------------------------
dd_write=() dd_read=()
f=$WORK/dd.bin
for ((i = 1; i <= REPEAT; i++)); do
    rm -f "$f"
    sync
    ballast
    t0=$(now)
    dd if=/dev/zero of="$f" bs=1M count="$SIZE" conv=fsync status=none
    t1=$(now)
    dd_write+=("$(elapsed "$t0" "$t1")")
    drop_cache "$f"
    ballast
    t0=$(now)
    dd if="$f" of=/dev/null bs=1M status=none
    t1=$(now)
    dd_read+=("$(elapsed "$t0" "$t1")")
    echo "dd $i of $REPEAT: write ${dd_write[-1]} s, read ${dd_read[-1]} s" >&2
done
rm -f "$f"
join() { local IFS=,; echo "$*"; }

# ---- image benchmark -------------------------------------------------------------
"$BIN" --dir "$WORK" --mib "$SIZE" --repeat "$REPEAT" \
    --dd-write-s "$(join "${dd_write[@]}")" --dd-read-s "$(join "${dd_read[@]}")" "$@" >"$WORK/table.md"

# ---- report ------------------------------------------------------------------------
mem_gib=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
virt=$(lscpu 2>/dev/null | awk -F': *' '/^Hypervisor vendor/ { print $2 }' || true)
read -r fs_dev fs_type < <(df -PT "$BASE" | awk 'NR == 2 { print $1, $2 }')
fs_opts=$(findmnt -n -o OPTIONS -T "$BASE" 2>/dev/null || true)
{
    echo "$SECTION"
    echo
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') with \`$COMMAND\`."
    echo
    echo "- Machine: $(nproc) cores ($cpu)${virt:+, virtualised ($virt)}, $mem_gib GiB memory, kernel $(uname -r)"
    echo "- Load average (1, 5, 15 min): $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
    echo "- Directory: $BASE on $fs_dev, file system $fs_type (df -T)${fs_opts:+, mounted $fs_opts}"
    echo "- Libraries: HDF5 $(pkg-config --modversion hdf5 2>/dev/null || echo ?), zstd $(pkg-config --modversion libzstd 2>/dev/null || echo ?); build type $(awk -F= '/^CMAKE_BUILD_TYPE:/ { print $2 }' "$BUILD_DIR/CMakeCache.txt")"
    echo "- dd cold reads: $DD_DROP"
    cat "$WORK/table.md"
} >"$WORK/section.md"

cat "$WORK/section.md"

if [[ ${NO_DOCS:-0} != 1 ]]; then
    # Replaces this section or appends it (a "### Notes" part at its end is kept).
    "$ROOT/tests/bench/write-section.sh" "$DOC" "$SECTION" "$WORK/section.md"
    echo "image-bench: wrote \"$SECTION\" in $DOC" >&2
fi
