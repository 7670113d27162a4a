#!/bin/sh
# test_init.sh - `raftkv init` (kv/init.c) as a user runs it: the files
# it writes, --quota written as the cluster file's quota line (and read
# back by the parser: `raftkv -c FILE status` loads the file before it
# talks to anyone), and one-line refusals that write nothing.
set -u
CLI=${RAFTKV_BUILDDIR:-.}/kv/raftkv
T=$(mktemp -d "${TMPDIR:-/tmp}/raftkv-init-XXXXXX") || exit 99
trap 'rm -rf "$T"' EXIT
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# Defaults: no quota line (the default quota applies).
"$CLI" init -d "$T/a" -n 3 >/dev/null || fail "init -n 3"
for f in cluster.conf member1.key member2.key member3.key client.key admin.key; do
	[ -f "$T/a/$f" ] || fail "no $f"
done
grep -q '^quota' "$T/a/cluster.conf" && fail "a quota line without --quota"
[ "$(grep -c '^member ' "$T/a/cluster.conf")" = 3 ] || fail "3 member lines"

# --quota: the line, in bytes, and a file the parser takes.
"$CLI" init -d "$T/b" -n 1 --quota 64M >/dev/null || fail "init --quota 64M"
[ "$(grep '^quota' "$T/b/cluster.conf")" = "quota 67108864" ] ||
	fail "quota line: $(grep '^quota' "$T/b/cluster.conf")"
"$CLI" init -d "$T/c" --hosts 127.0.0.1,127.0.0.2 --quota 4194304T >/dev/null ||
	fail "init --quota 2^62"
[ "$(grep '^quota' "$T/c/cluster.conf")" = "quota 4611686018427387904" ] ||
	fail "quota 2^62"
"$CLI" init -d "$T/d" -n 1 --quota 1 >/dev/null || fail "init --quota 1"
grep -qx 'quota 1' "$T/d/cluster.conf" || fail "quota 1"
# The cluster file loads (a parse error would be reported first; no
# member runs, so the command then fails on the connection instead).
out=$("$CLI" -c "$T/b/cluster.conf" --timeout 200 status 2>&1)
case $out in
*"$T/b/cluster.conf:"*) fail "the written file does not parse: $out" ;;
esac

# Refusals: usage status 64, one line naming the value, nothing written.
for q in 0 12X -1 1k 1.5G 8388608T "" " 1" 0x10; do
	out=$("$CLI" init -d "$T/bad" -n 1 --quota "$q" 2>&1 >/dev/null)
	rc=$?
	[ "$rc" = 64 ] || fail "--quota '$q': exit $rc"
	[ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail "--quota '$q': not one line: $out"
	case $out in *"bad quota '$q'"*) ;; *) fail "--quota '$q': $out" ;; esac
	[ -e "$T/bad" ] && fail "--quota '$q' wrote $T/bad"
done
echo "ok raftkv init writes --quota as the quota line and refuses bad sizes"
exit 0
