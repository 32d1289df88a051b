#!/usr/bin/env bash
# Checkpoint and restore of a process (issue 2): pause, checkpoint time, image
# size and restore time against raw sequential write/read of the same amount
# of data in the same directory, measured in the same run.
#
#   tests/bench/engine-bench.sh [DIR] [SIZES_MIB]
#
# DIR (default /var/tmp) gets a fresh temporary directory that holds the
# checkpoints and the dd file, removed at the end. SIZES_MIB is a comma
# separated list (default 1024,4096). For each size and each of
# `--compression none` and `--compression zstd`, and each of REPEAT (default 3)
# repetitions, interleaved:
#
#   raw write   dd if=/dev/zero bs=4M count=SIZE/4 conv=fsync (after sync and a cache drop)
#   raw read    dd of=/dev/null bs=4M of that file (after sync and a cache drop)
#   checkpoint  ckpt-bench-victim SIZE runs under `ckpt-run --compression C`;
#               once it says ready: sync, cache drop, `ckpt-ctl checkpoint`
#               (the program keeps running). Its summary line gives the
#               checkpoint time and the pause; the program reports the gap
#               it saw in its own clock. Image size: du -sb of the checkpoint
#               and ckpt-info --json --quick (page data stored / on disk).
#   restore     the program is ended (SIGTERM to ckpt-run), sync, cache drop;
#               `ckpt-run --restart` is started, and the time runs until the
#               restored program prints (CLOCK_REALTIME) that it runs again;
#               ckpt-run's own "restored ... in X s" line is kept too.
#
# Cache drop: `sync; echo 3 > /proc/sys/vm/drop_caches` when root, else the
# file's pages only (dd iflag=nocache count=0), which does not reach the
# checkpoint files; the report says which. After each cache drop a ballast
# (BALLAST=0: none) makes the memory the measurement fills memory a virtual
# machine's guest holds; see ballast() below.
#
# Environment: REPEAT (3), BALLAST (1), BUILD_DIR, NO_DOCS, TIMEOUT (600 s to
# wait for the program). On a shared machine run it as
# `nice -n -10 tests/bench/engine-bench.sh`; the report names the nice value.
#
# Prints the results and writes them into the section
# "## Checkpoint and restore of a process (issue 2)" of docs/benchmarks.md
# (NO_DOCS=1 leaves the document alone). Builds what it needs in $BUILD_DIR
# (default <repo>/build-bench). Reports; never passes or fails on timing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
BASE=${1:-/var/tmp}
SIZES=${2:-1024,4096}
REPEAT=${REPEAT:-3}
COMPRESSIONS=(none zstd)
TIMEOUT=${TIMEOUT:-600}  # seconds to wait for the program to be ready / restored
DOC=$ROOT/docs/benchmarks.md
SECTION="## Checkpoint and restore of a process (issue 2)"
# The command that reproduces the run, with the settings that differ from the defaults.
COMMAND="tests/bench/engine-bench.sh $BASE $SIZES"
NICE=$(nice)  # on a shared machine, run it under `nice -n -10`
[[ $NICE == 0 ]] || COMMAND="nice -n $NICE $COMMAND"
[[ ${BALLAST:-1} == 1 ]] || COMMAND="BALLAST=$BALLAST $COMMAND"
[[ $REPEAT == 3 ]] || COMMAND="REPEAT=$REPEAT $COMMAND"
die() { echo "engine-bench: $*" >&2; exit 1; }
[[ -d $BASE ]] || { echo "engine-bench: $BASE is not a directory" >&2; exit 2; }
IFS=, read -r -a SIZE_LIST <<<"$SIZES"
for s in "${SIZE_LIST[@]}"; do
    [[ $s =~ ^[1-9][0-9]*$ && $((s % 4)) == 0 ]] || { echo "engine-bench: sizes are MiB, positive multiples of 4" >&2; exit 2; }
done
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { echo "engine-bench: REPEAT must be a positive integer" >&2; exit 2; }

# ---- build -----------------------------------------------------------------------
if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCKPT_WERROR=ON -DCKPT_BENCH=ON >&2
elif ! grep -q '^CKPT_BENCH:BOOL=ON' "$BUILD_DIR/CMakeCache.txt"; then
    cmake -B "$BUILD_DIR" -DCKPT_BENCH=ON >&2
fi
make -C "$BUILD_DIR" -j"$(nproc)" ckpt-run ckpt-ctl ckpt-info ckpt-bench-victim >&2
RUN=$BUILD_DIR/agent/ckpt-run
CTL=$BUILD_DIR/coordinator/ckpt-ctl
INFO=$BUILD_DIR/image/ckpt-info
VICTIM=$BUILD_DIR/tests/bench/ckpt-bench-victim

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
DATE_START=$(date -u '+%Y-%m-%d %H:%M UTC')

# ---- work directory and clean-up ------------------------------------------------------
WORK=$(mktemp -d "$BASE/ckpt-engine-bench.XXXXXX")
JOB_PID=""
stop_job() {
    # Ends the ckpt-run this script started (it takes its job with it).
    if [[ -n $JOB_PID ]]; then
        kill -TERM "$JOB_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$JOB_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$JOB_PID" 2>/dev/null || true
        wait "$JOB_PID" 2>/dev/null || true
        JOB_PID=""
    fi
}
cleanup() { stop_job; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -w /proc/sys/vm/drop_caches ]] && (sync && echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
    DROP="sync; echo 3 > /proc/sys/vm/drop_caches (as root), before every measurement"
    drop_cache() { sync; echo 3 >/proc/sys/vm/drop_caches; }
else
    DROP="not root: sync and dd iflag=nocache count=0 on the dd file only; checkpoint files were NOT dropped, restores may read from cache"
    drop_cache() {
        sync
        local f
        for f in "$@"; do dd if="$f" iflag=nocache count=0 status=none; done
    }
fi

now() { echo "$EPOCHREALTIME"; }  # bash 5; no fork

# Ballast. On a virtual machine with virtio-balloon free page reporting, free
# memory in blocks of 2 MiB and more is handed back to the host a few seconds
# after it was freed; the guest's next use of it costs a host fault per page.
# The page cache takes such blocks for its large folios: here, filling it from
# returned memory ran at about 0.25 GB/s, against 1-2 GB/s from memory the
# guest held, and dd's write of 4 GiB took 11-15 s instead of 2-5 s. With
# BALLAST=1 (the default) every measurement is preceded, right after the cache
# drop, by a process that touches MIB MiB of transparent huge pages and exits,
# so that the memory the measurement fills is memory the guest holds, as on a
# machine without a balloon. BALLAST=0 measures without it.
BALLAST=${BALLAST:-1}
ballast() { [[ $BALLAST == 0 ]] || "$VICTIM" --ballast "$1"; }
stamp() { local l; while IFS= read -r l; do printf '%s %s\n' "$(now)" "$l"; done; }
# calc EXPRESSION [DECIMALS]: evaluates an arithmetic expression of numbers.
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# Waits until FILE has a line matching REGEX and prints the first such line.
wait_line() {
    local file=$1 regex=$2 what=$3 deadline=$((SECONDS + TIMEOUT)) line
    while :; do
        line=$(grep -m1 -E "$regex" "$file" 2>/dev/null || true)
        [[ -n $line ]] && { echo "$line"; return; }
        [[ -n $JOB_PID ]] && ! kill -0 "$JOB_PID" 2>/dev/null && die "$what: ckpt-run ended ($(tail -n 3 "$WORK"/*.err 2>/dev/null | tr '\n' ' '))"
        ((SECONDS < deadline)) || die "$what: nothing after $TIMEOUT s"
        sleep 0.02
    done
}

# The stall the program reported for the checkpoint started at T0 that paused
# it PAUSED s: the longest gap it reported since T0, once one of at least
# half of PAUSED is there (other stalls, e.g. from a loaded machine, are shorter).
checkpoint_gap() {
    local file=$1 t0=$2 paused=$3 deadline=$((SECONDS + TIMEOUT)) gap
    while :; do
        gap=$(awk -v t0="$t0" '$1 == "gap" && $4 > t0 && $2 > max { max = $2 } END { if (max != "") print max }' "$file")
        [[ -n $gap ]] && awk -v g="$gap" -v p="$paused" 'BEGIN { exit !(g >= p / 2) }' && { echo "$gap"; return; }
        ((SECONDS < deadline)) || die "the program reported no stall for the checkpoint within $TIMEOUT s"
        sleep 0.02
    done
}

# CPU seconds (user + system, all threads) that process PID has used so far.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"; }

# Results: R[size,kind,metric] = comma separated values, one per repetition.
declare -A R
add() { R[$1]=${R[$1]:+${R[$1]},}$2; }

# ---- one repetition -------------------------------------------------------------------
raw_io() {
    local size=$1 f=$WORK/dd.bin t0 t1
    rm -f "$f"
    drop_cache
    ballast $((size + size / 8))
    t0=$(now)
    dd if=/dev/zero of="$f" bs=4M count=$((size / 4)) conv=fsync status=none
    t1=$(now)
    add "$size,raw,write" "$(elapsed "$t0" "$t1")"
    drop_cache "$f"
    ballast $((size + size / 8))
    t0=$(now)
    dd if="$f" of=/dev/null bs=4M status=none
    t1=$(now)
    add "$size,raw,read" "$(elapsed "$t0" "$t1")"
    rm -f "$f"
    echo "engine-bench: $size MiB raw: write ${R[$size,raw,write]##*,} s, read ${R[$size,raw,read]##*,} s" >&2
}

checkpoint_restore() {
    local size=$1 comp=$2 dir=$WORK/ckpt-$2 t0 t1 line ck json gap restored
    local out1=$WORK/run.out err1=$WORK/run.err out2=$WORK/restart.out err2=$WORK/restart.err
    rm -rf "$dir" "$out1" "$err1" "$out2" "$err2"
    mkdir "$dir"

    "$RUN" --ckpt-dir "$dir" --compression "$comp" -- "$VICTIM" "$size" >"$out1" 2>"$err1" &
    JOB_PID=$!
    wait_line "$out1" '^ready ' "starting the program" >/dev/null
    drop_cache
    ballast $((size + size / 8))
    local cpu0
    cpu0=$(cpu_seconds "$JOB_PID")
    t0=$(now)
    # ckpt-ctl's progress lines (stderr), each with the time it arrived.
    "$CTL" --ckpt-dir "$dir" checkpoint 2>&1 >"$WORK/ctl.out" | stamp >"$WORK/ctl.err"
    local rc=${PIPESTATUS[0]}
    t1=$(now)
    line=$(cat "$WORK/ctl.out")
    ((rc == 0)) || die "ckpt-ctl failed: $line $(cat "$WORK/ctl.err")"
    # Phases: until ckpt-ctl reports "writing and verifying the image"
    # (freeze and dump), and from there to its end (finish, fsync, commit, thaw).
    local written
    written=$(awk '/writing and verifying the image/ { print $1; exit }' "$WORK/ctl.err")
    if [[ -n $written ]]; then
        add "$size,$comp,dump_phase" "$(elapsed "$t0" "$written")"
        add "$size,$comp,finish_phase" "$(elapsed "$written" "$t1")"
    fi
    [[ $line =~ \ committed:\ .*\ stored\ in\ ([0-9.]+)\ s\ .*,\ paused\ ([0-9.]+)\ s ]] || die "unexpected ckpt-ctl output: $line"
    add "$size,$comp,ckpt" "${BASH_REMATCH[1]}"
    local paused=${BASH_REMATCH[2]}
    add "$size,$comp,paused" "$paused"
    add "$size,$comp,ctl_wall" "$(elapsed "$t0" "$t1")"
    ck=${line%% *}
    # The program's own view of the pause: the gap it reports once it runs on.
    add "$size,$comp,ckpt_cpu" "$(calc "$(cpu_seconds "$JOB_PID") - $cpu0")"
    add "$size,$comp,gap" "$(checkpoint_gap "$out1" "$t0" "$paused")"
    add "$size,$comp,du" "$(du -sb "$ck" | cut -f1)"
    json=$("$INFO" --json --quick "$ck") || die "ckpt-info says the checkpoint is not valid: $json"
    for key in stored_bytes on_disk_bytes; do
        add "$size,$comp,$key" "$(grep -o "\"totals\": {[^}]*}" <<<"$json" | grep -o "\"$key\": [0-9]*" | awk '{ print $2 }')"
    done
    stop_job

    drop_cache
    # (the page cache for the image and the program's memory)
    ballast $((2 * size + size / 4))
    t0=$(now)
    "$RUN" -v --ckpt-dir "$dir" --restart >"$out2" 2>"$err2" &
    JOB_PID=$!
    line=$(wait_line "$out2" '^gap ' "the restored program")
    add "$size,$comp,restore_cpu" "$(cpu_seconds "$JOB_PID")"
    add "$size,$comp,restore" "$(awk -v t0="$t0" '{ printf "%.3f", $4 - t0 }' <<<"$line")"
    restored=$(wait_line "$err2" 'restored [0-9]+ process\(es\) in ' "ckpt-run --restart")
    add "$size,$comp,restored" "$(sed -E 's/.* in ([0-9.]+) s.*/\1/' <<<"$restored")"
    stop_job
    rm -rf "$dir"
    echo "engine-bench: $size MiB $comp: checkpoint ${R[$size,$comp,ckpt]##*,} s, paused ${R[$size,$comp,paused]##*,} s," \
        "program saw ${R[$size,$comp,gap]##*,} s, restore ${R[$size,$comp,restore]##*,} s" \
        "(ckpt-run: ${R[$size,$comp,restored]##*,} s)" >&2
}

for ((rep = 1; rep <= REPEAT; rep++)); do
    echo "engine-bench: repetition $rep of $REPEAT" >&2
    for size in "${SIZE_LIST[@]}"; do
        raw_io "$size"
        for comp in "${COMPRESSIONS[@]}"; do checkpoint_restore "$size" "$comp"; done
    done
done

# ---- report ------------------------------------------------------------------------------
med() { tr , '\n' <<<"$1" | sort -g | awk '{ a[NR] = $1 } END { if (NR) printf "%.6f", NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
fmt() { [[ -n $1 ]] || { echo -; return; }; awk -v v="$1" -v d="${2:-3}" 'BEGIN { printf "%.*f", d, v }'; }
runs() { echo "${1//,/, }"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

BUILD_TYPE=$(awk -F= '/^CMAKE_BUILD_TYPE:/ { print $2 }' "$BUILD_DIR/CMakeCache.txt")
[[ -n $BUILD_TYPE ]] || BUILD_TYPE="RelWithDebInfo (the default)"
REVISION=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
CHANGED=$(git -C "$ROOT" status --porcelain -- agent image coordinator 2>/dev/null | awk '{ print $2 }' | paste -sd' ' || true)
REPORTING="not found (no virtio-balloon device)"
for dev in /sys/bus/virtio/devices/*; do
    # Feature bit 5: VIRTIO_BALLOON_F_REPORTING.
    [[ $(cat "$dev/device" 2>/dev/null) == 0x0005 ]] || continue
    [[ $(cut -c6 "$dev/features") == 1 ]] && REPORTING=on || REPORTING=off
done
mem_gib=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
virt=$(lscpu 2>/dev/null | awk -F': *' '/^Hypervisor vendor/ { print $2 }' || true)
read -r fs_dev fs_type < <(df -PT "$BASE" | awk 'NR == 2 { print $1, $2 }')
fs_opts=$(findmnt -n -o OPTIONS -T "$BASE" 2>/dev/null || true)
{
    echo "$SECTION"
    echo
    echo "Measured $DATE_START with \`$COMMAND\` (build type $BUILD_TYPE, zstd $(pkg-config --modversion libzstd 2>/dev/null || echo ?))."
    echo
    echo "- Machine: $(nproc) cores ($cpu)${virt:+, virtualised ($virt)}, $mem_gib GiB memory, kernel $(uname -r)"
    echo "- Source: commit $REVISION${CHANGED:+, with uncommitted changes in $CHANGED}"
    echo "- Load average (1, 5, 15 min): $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
    echo "- Directory: $BASE on $fs_dev, file system $fs_type (df -T)${fs_opts:+, mounted $fs_opts}"
    echo "- Program: \`ckpt-bench-victim SIZE\` (tests/bench/bench_victim.cpp) under \`ckpt-run --compression C\`: SIZE MiB of" \
        "private anonymous memory, half the pages xorshift random and half repeated text (the image benchmark's data), then it" \
        "writes one 8-byte counter per millisecond into its first 16 MiB and reports every stall of more than 20 ms in CLOCK_REALTIME"
    echo "- Cache drop: $DROP"
    echo "- Free page reporting (virtio-balloon): $REPORTING; transparent huge pages: $(sed -E 's/.*\[(.*)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo ?)"
    if [[ $BALLAST == 0 ]]; then
        echo "- Ballast: none (BALLAST=0): measurements fill memory the guest may have handed back to the host"
    else
        echo "- Ballast: right after each cache drop, \`ckpt-bench-victim --ballast MIB\` touches MIB MiB of transparent huge pages and exits" \
            "(1.125 x SIZE before raw write, raw read and checkpoint; 2.25 x SIZE before a restore, which fills both the page cache and the" \
            "program's memory), so that measurements fill memory the guest holds (see the script)"
    fi
    echo "- Raw write: \`dd if=/dev/zero of=DIR/dd.bin bs=4M count=SIZE/4 conv=fsync\`; raw read: \`dd if=DIR/dd.bin of=/dev/null bs=4M\` after the cache drop"
    echo "- Checkpoint: \`ckpt-ctl --ckpt-dir D checkpoint\` while the program runs; *checkpoint s* and *paused s* are the figures of its" \
        "summary line (freeze to commit, fsync included; freeze to thaw); *program saw* is the stall the program measured itself;" \
        "*ckpt-ctl wall* is the command from start to end; *of which dump s* runs until ckpt-ctl reports \`writing and verifying the image\` (connect, freeze, reading the memory and writing the page data), *of which finish s* from there to the end (closing and verifying the image, fsync, commit, thaw); *ckpt-run CPU s* is the user + system time ckpt-run's threads used for it (/proc/PID/stat; the program's own is not included)"
    echo "- Restore: after the program was ended, \`ckpt-run --ckpt-dir D --restart\` from a cold cache; *restore s* runs from starting" \
        "it until the restored program reports (CLOCK_REALTIME) that it runs again; *ckpt-run says* is its own \`restored 1 process(es) in X s\`; *ckpt-run CPU s, restore* is what the restarting ckpt-run had used by then"
    echo "- Sizes: *page data* is ckpt-info's stored_bytes (uncompressed), *on disk* its on_disk_bytes, *du* \`du -sb\` of the checkpoint directory"
    echo "- Throughput: page data / time (GB = 10^9 bytes). Ratio: checkpoint throughput / raw write throughput, restore throughput / raw read throughput (1.00 = as fast as dd)"
    echo "- Each figure is the median of $REPEAT runs (raw I/O, none and zstd interleaved in every repetition); the runs are listed in the first table"
    echo
    echo "| Size | Measurement | Median s | GB/s | Ratio to raw | Runs s |"
    echo "|---:|---|---:|---:|---:|---|"
    for size in "${SIZE_LIST[@]}"; do
        bytes=$((size * 1048576))
        w=$(med "${R[$size,raw,write]}")
        r=$(med "${R[$size,raw,read]}")
        raw_w=$(calc "$bytes / $w" 1)
        raw_r=$(calc "$bytes / $r" 1)
        echo "| $size MiB | raw write (dd, fsync) | $(fmt "$w") | $(calc "$raw_w / 1e9") | 1.00 | $(runs "${R[$size,raw,write]}") |"
        echo "| $size MiB | raw read (dd, cold) | $(fmt "$r") | $(calc "$raw_r / 1e9") | 1.00 | $(runs "${R[$size,raw,read]}") |"
        for comp in "${COMPRESSIONS[@]}"; do
            data=$(med "${R[$size,$comp,stored_bytes]}")
            c=$(med "${R[$size,$comp,ckpt]}")
            x=$(med "${R[$size,$comp,restore]}")
            echo "| $size MiB | checkpoint, $comp | $(fmt "$c") | $(calc "$data / $c / 1e9") | $(calc "$data / $c / $raw_w") | $(runs "${R[$size,$comp,ckpt]}") |"
            echo "| $size MiB | paused, $comp | $(fmt "$(med "${R[$size,$comp,paused]}")") | - | - | $(runs "${R[$size,$comp,paused]}") |"
            echo "| $size MiB | restore, $comp | $(fmt "$x") | $(calc "$data / $x / 1e9") | $(calc "$data / $x / $raw_r") | $(runs "${R[$size,$comp,restore]}") |"
        done
    done
    echo
    echo "| Size | Compression | Paused s | Program saw s | ckpt-ctl wall s | of which dump s | of which finish s | ckpt-run CPU s, checkpoint | ckpt-run says restored in s | ckpt-run CPU s, restore | Page data MiB | On disk MiB | du MiB | Compression ratio |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for size in "${SIZE_LIST[@]}"; do
        for comp in "${COMPRESSIONS[@]}"; do
            data=$(med "${R[$size,$comp,stored_bytes]}")
            disk=$(med "${R[$size,$comp,on_disk_bytes]}")
            echo "| $size MiB | $comp | $(fmt "$(med "${R[$size,$comp,paused]}")")" \
                "| $(fmt "$(med "${R[$size,$comp,gap]}")") | $(fmt "$(med "${R[$size,$comp,ctl_wall]}")")" \
                "| $(fmt "$(med "${R[$size,$comp,dump_phase]:-}")") | $(fmt "$(med "${R[$size,$comp,finish_phase]:-}")")" \
                "| $(fmt "$(med "${R[$size,$comp,ckpt_cpu]}")" 2)" \
                "| $(fmt "$(med "${R[$size,$comp,restored]}")")" \
                "| $(fmt "$(med "${R[$size,$comp,restore_cpu]}")" 2)" \
                "| $(mib "$data") | $(mib "$disk") | $(mib "$(med "${R[$size,$comp,du]}")") | $(calc "$data / $disk") |"
        done
    done
} >"$WORK/section.md"

cat "$WORK/section.md"

if [[ ${NO_DOCS:-0} != 1 ]]; then
    # Replaces this section or appends it (a "### Notes" part at its end is kept).
    "$ROOT/tests/bench/write-section.sh" "$DOC" "$SECTION" "$WORK/section.md"
    echo "engine-bench: wrote \"$SECTION\" in $DOC" >&2
fi
