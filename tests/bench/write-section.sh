#!/usr/bin/env bash
# Writes a benchmark's section into a Markdown document:
#
#   tests/bench/write-section.sh DOC SECTION FILE
#
# FILE holds the section, starting with its heading line SECTION ("## ...").
# Replaces the section of that heading in DOC (up to the next "## " heading)
# or appends it; a hand-written "### Notes" part at the end of the old
# section is kept. Creates DOC when it does not exist.
set -euo pipefail
[[ $# == 3 ]] || { echo "usage: write-section.sh DOC SECTION FILE" >&2; exit 2; }
DOC=$1 SECTION=$2 FILE=$3
[[ -f $DOC ]] || printf '# Benchmarks\n\nMeasured figures. Each section names the command that reproduces it.\n\n' >"$DOC"
TMP=$(mktemp "$DOC.XXXXXX")
trap 'rm -f "$TMP"' EXIT
awk -v section="$SECTION" -v file="$FILE" '
    function flush(  line) { while ((getline line < file) > 0) print line; print ""; printf "%s", notes; done = 1 }
    $0 == section { skip = 1; next }
    skip && /^## / { flush(); skip = 0 }
    skip && /^### Notes/ { in_notes = 1 }
    skip { if (in_notes) notes = notes $0 "\n"; next }
    { print; blank = ($0 == "") }
    END { if (skip) flush(); else if (!done) { if (!blank) print ""; flush() } }
' "$DOC" >"$TMP"
cp "$TMP" "$DOC"
