#!/bin/bash
# Installs what is needed, builds, and runs the whole test suite:
#   1. the release build (-Werror) and every test,
#   2. the unit tests under AddressSanitizer + UndefinedBehaviorSanitizer,
#   3. the fuzz targets (clang, libFuzzer) for a short run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh

passed=0 failed=0
# Runs ctest in a build directory and adds its counts to the totals.
run_ctest() {
  local dir=$1; shift
  local log; log=$(mktemp)
  local rc=0
  (cd "$dir" && ctest --output-on-failure --timeout 600 "$@") 2>&1 | tee "$log" || rc=$?
  local line; line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -1)
  rm -f "$log"
  if [ -z "$line" ]; then echo "test.sh: ctest in $dir reported nothing"; return 1; fi
  local total fail
  total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
  fail=$(sed -E 's/.*passed, ([0-9]+) tests failed.*/\1/' <<<"$line")
  passed=$((passed + total - fail)); failed=$((failed + fail))
  return "$rc"
}
status=0

echo "== release build and all tests"
BUILD_DIR=$root/build scripts/build.sh
run_ctest build -j "$(nproc)" || status=1

echo "== unit tests under ASan + UBSan"
BUILD_DIR=$root/build-asan BUILD_TARGETS="ckpt_unit_tests ckpt_typemap_test ckpt-info ckpt-synth" \
  scripts/build.sh -DCKPT_SANITIZE=ON -DCKPT_BENCH=OFF
run_ctest build-asan -j "$(nproc)" -L unit || status=1

echo "== fuzz targets"
CC=clang CXX=clang++ BUILD_DIR=$root/build-fuzz BUILD_TARGETS="fuzz_inspect_struct fuzz_inspect_raw ckpt-synth" \
  scripts/build.sh -DCKPT_FUZZ=ON -DCKPT_SANITIZE=ON -DCKPT_BENCH=OFF
run_ctest build-fuzz -L fuzz || status=1

echo "suite: $passed passed, $failed failed"
exit "$status"
