#!/bin/sh
# check_fuzz_frame.sh - `make check-long` runs the frame-decoder fuzzer briefly.
#
# A TESTS script: SKIP (77) unless RAFTKV_LONG is set and configure found a
# clang with libFuzzer (then `make check` has built tests/fuzz/fuzz_frame).
# Runs FUZZ_CHECK_SECONDS (default 20) from a scratch copy of the seed
# corpus; a crashing input is kept as tests/fuzz/fuzz_frame-crash-* in the
# build directory and the test fails.  For a long run: `make fuzz-frame`.
set -eu

name=fuzz_frame
corpus=frame
builddir=${RAFTKV_BUILDDIR:-.}
srcdir=${RAFTKV_SRCDIR:-.}

if [ -z "${RAFTKV_LONG:-}" ]; then
	echo "SKIP: the fuzz run is part of check-long (RAFTKV_LONG=1)"
	exit 77
fi
if [ ! -x "$builddir/tests/fuzz/$name" ]; then
	echo "SKIP: $name not built (configure found no clang with libFuzzer)"
	exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$srcdir/tests/fuzz/corpus/$corpus/"* "$work"/
"$builddir/tests/fuzz/$name" -max_total_time="${FUZZ_CHECK_SECONDS:-20}" \
	-print_final_stats=1 -artifact_prefix="$builddir/tests/fuzz/$name-" \
	"$work"
