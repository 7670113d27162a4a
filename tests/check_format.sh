#!/bin/sh
# tests/check_format.sh - fail when a C source or header drifts from the
# house style in .clang-format (`make format` rewrites the tree to it).
#
# The style is pinned to clang-format 14 (Debian 12's, which
# scripts/setup.sh installs): other versions break lines differently, so
# with another version, or none, this check is skipped (exit 77) and says
# why rather than failing on the tool.
set -u
top=${RAFTKV_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top" || exit 99
cf=${CLANG_FORMAT:-clang-format}
if ! command -v "$cf" >/dev/null 2>&1; then
	echo "check_format: $cf not installed (scripts/setup.sh installs it); skipped"
	exit 77
fi
ver=$("$cf" --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
if [ "$ver" != 14 ]; then
	echo "check_format: $cf is version $ver, the style is pinned to 14; skipped"
	exit 77
fi
files=$(find raft kv fs mr tests tools bench -name '*.[ch]' 2>/dev/null |
	grep -v '^tests/fuzz/corpus/' | sort)
bad=$(for f in $files; do
	"$cf" --style=file "$f" | cmp -s - "$f" || echo "$f"
done)
if [ -n "$bad" ]; then
	echo "check_format: these files drift from .clang-format (run make format):"
	echo "$bad" | sed 's/^/  /'
	exit 1
fi
echo "check_format: $(echo "$files" | wc -w) files in the house style"
