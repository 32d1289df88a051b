#!/bin/bash
# Installs what is needed, builds, and runs the demo.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
BUILD_DIR=$root/build scripts/build.sh >/dev/null
bin=$root/build
demo=$(mktemp -d /tmp/ckpt-demo.XXXXXX)
echo "== demo directory: $demo"
echo "== writing two synthetic checkpoints (4 ranks, zstd) into $demo/ckpt"
"$bin/image/ckpt-synth" --ckpt-dir "$demo/ckpt" --ranks 4 --mib 16
"$bin/image/ckpt-synth" --ckpt-dir "$demo/ckpt" --ranks 4 --mib 16 --compression zstd
echo "== ckpt-info $demo/ckpt"
"$bin/image/ckpt-info" --ranks "$demo/ckpt"
echo "== the same image seen by HDF5's own tools: h5ls -r --follow-symlinks manifest.h5 (first lines)"
h5ls -r --follow-symlinks "$demo/ckpt/latest/manifest.h5" | head -12
echo "== damaging one byte of rank 2's page data in the newest checkpoint"
python3 - "$demo/ckpt/latest/rank-00002.h5" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(0, 2); n = f.tell(); f.seek(n // 2); b = f.read(1); f.seek(n // 2); f.write(bytes([b[0] ^ 0xff]))
PY
set +e
"$bin/image/ckpt-info" "$demo/ckpt" >/dev/null
echo "== ckpt-info exit status on the damaged checkpoint: $? (the error above names file and object)"
set -e
"$bin/image/ckpt-info" "$demo/ckpt/ckpt-000001" | tail -1
echo "== the previous checkpoint still validates"
