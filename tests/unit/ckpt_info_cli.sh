#!/bin/bash
# ckpt-info as a user meets it: exit codes, messages, JSON, and the check of
# issue 1 (damaged page data in the newest checkpoint, previous one intact).
set -u
synth=$1 info=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$synth" --ckpt-dir "$dir/ck" --ranks 2 --mib 2 >/dev/null || fail "ckpt-synth"
"$synth" --ckpt-dir "$dir/ck" --ranks 2 --mib 2 --compression zstd >/dev/null || fail "ckpt-synth zstd"

out=$("$info" "$dir/ck") || fail "valid checkpoint rejected: $out"
grep -q "^ranks       2 on 1 node" <<<"$out" || fail "summary lacks ranks: $out"
grep -q "checksums   OK" <<<"$out" || fail "summary lacks checksum status: $out"
"$info" --json "$dir/ck/latest" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["valid"] and d["totals"]["ranks"]==2 and d["sequence"]==2, d' \
    || fail "JSON output"
"$info" "$dir/ck/latest/rank-00001.h5" >/dev/null || fail "rank file alone"

# Damage the page data of the newest checkpoint's rank 1.
python3 - "$dir/ck/ckpt-000002/rank-00001.h5" <<'PY' || fail "could not damage the image"
import sys, subprocess
f = sys.argv[1]
# The page data is the bulk of the file: flip a byte in its middle.
with open(f, "r+b") as fh:
    fh.seek(0, 2); size = fh.tell(); fh.seek(size // 2); b = fh.read(1); fh.seek(size // 2); fh.write(bytes([b[0] ^ 0xff]))
PY
out=$("$info" "$dir/ck" 2>&1); rc=$?
[ $rc -eq 1 ] || fail "damaged checkpoint: exit $rc, expected 1: $out"
grep -q "rank-00001.h5" <<<"$out" || fail "error does not name the file: $out"
grep -q "/task/" <<<"$out" || fail "error does not name the object: $out"
"$info" "$dir/ck/ckpt-000001" >/dev/null || fail "previous checkpoint no longer validates"
"$info" --json "$dir/ck" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert not d["valid"] and d["error"], d' || fail "JSON of damaged checkpoint"

"$info" >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing PATH must exit 2"
"$info" --bogus x >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown option must exit 2"
"$info" "$dir/nothing" >/dev/null 2>&1; [ $? -eq 1 ] || fail "missing path must exit 1"
echo "PASS: ckpt-info CLI"
