#!/usr/bin/env bash
# The lines of a benchmark section that say where and on what it ran:
#
#   tests/bench/machine.sh LOAD_START DIR [PATH ...]
#
# Machine (cores, CPU, hypervisor, memory, kernel), source (the commit, and
# the uncommitted changes under PATH ...), the load average at the start
# (LOAD_START, from /proc/loadavg) and now, and DIR's device and file system.
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: machine.sh LOAD_START DIR [PATH ...]" >&2; exit 2; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
load_start=$1 dir=$2
shift 2
revision=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
changed=""
[[ $# == 0 ]] || changed=$(git -C "$ROOT" status --porcelain -- "$@" 2>/dev/null | awk '{ print $2 }' | paste -sd' ' || true)
cpu=$(lscpu 2>/dev/null | awk -F': *' '/^Model name/ { print $2; exit }' || true)
[[ -n $cpu ]] || cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
virt=$(lscpu 2>/dev/null | awk -F': *' '/^Hypervisor vendor/ { print $2 }' || true)
mem_gib=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
read -r fs_dev fs_type < <(df -PT "$dir" | awk 'NR == 2 { print $1, $2 }')
echo "- Machine: $(nproc) cores ($cpu)${virt:+, virtualised ($virt)}, $mem_gib GiB memory, kernel $(uname -r)"
echo "- Source: commit $revision${changed:+, with uncommitted changes in $changed}"
echo "- Load average (1, 5, 15 min): $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "- Directory: $dir on $fs_dev, file system $fs_type (df -T)"
