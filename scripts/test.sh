#!/bin/bash
# Installs what is needed, builds, and runs the whole test suite:
#   1. the release build (-Werror) and every test,
#   2. the unit tests under AddressSanitizer + UndefinedBehaviorSanitizer,
#   3. the fuzz targets (clang, libFuzzer) for a short run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh

echo "== release build and all tests"
BUILD_DIR=$root/build scripts/build.sh
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 600)

echo "== unit tests under ASan + UBSan"
BUILD_DIR=$root/build-asan scripts/build.sh -DCKPT_SANITIZE=ON -DCKPT_BENCH=OFF
(cd build-asan && ctest --output-on-failure -j "$(nproc)" -L unit --timeout 600)

echo "== fuzz targets"
CC=clang CXX=clang++ BUILD_DIR=$root/build-fuzz scripts/build.sh -DCKPT_FUZZ=ON -DCKPT_SANITIZE=ON -DCKPT_BENCH=OFF
(cd build-fuzz && ctest --output-on-failure -L fuzz --timeout 600)
