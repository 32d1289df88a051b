#!/bin/bash
# Regenerates the schema section of docs/image-format.md from the code
# (ckpt-info --schema). The unit test image_format_doc fails until it is run
# after a schema change.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
info=${1:-$root/build/image/ckpt-info}
doc=$root/docs/image-format.md
python3 - "$doc" "$("$info" --schema)" <<'PY'
import sys
doc, schema = sys.argv[1], sys.argv[2]
text = open(doc).read()
begin, end = "<!-- schema:begin -->", "<!-- schema:end -->"
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(doc, "w").write(head + begin + "\n" + schema.rstrip("\n") + "\n" + end + tail)
PY
echo "updated $doc"
