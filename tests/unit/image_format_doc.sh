#!/bin/bash
# docs/image-format.md must carry the schema exactly as the code defines it.
set -u
info=$1 doc=$2
expected=$("$info" --schema)
actual=$(sed -n '/<!-- schema:begin -->/,/<!-- schema:end -->/p' "$doc" | sed '1d;$d')
if [ "$expected" != "$actual" ]; then
    echo "FAIL: the schema section of $doc differs from 'ckpt-info --schema'; regenerate it with scripts/update-schema-doc.sh"
    diff <(echo "$expected") <(echo "$actual") | head -40
    exit 1
fi
echo "PASS: docs/image-format.md schema is current"
