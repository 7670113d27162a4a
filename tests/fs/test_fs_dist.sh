#!/bin/bash
# test_fs_dist.sh - a real workload on three mounts (issue 10): unpack the
# project's own dist tarball into mount 1, configure and build it there,
# compare the unpacked tree with the original through mount 2, and check
# that mount 3 sees the build (the same objects, a program that runs).
#
# The tarball: `make dist` cannot be run from inside `make check` (it
# rebuilds and removes the top-level distdir of the build tree that the
# running suite uses, and its tar puts the whole path in the archive when
# distdir is absolute), so the script runs only the first half of it,
# `make distdir distdir=$T/src/raftkv-VERSION` (automake's copy of exactly
# the distributed files: what `make dist` tars), in the build tree, with
# the parent make's MAKEFLAGS/MFLAGS/MAKELEVEL removed so that it is an
# independent make (no jobserver of the running suite, no TESTS= of the
# command line), then tars that directory as `make dist` does (tar
# cf - raftkv-VERSION | gzip).  It writes only under $T, so it also works
# in `make distcheck` (read-only source tree).
#
# Default suite: configure in mount 1 (out of tree: mount1/build, so the
# unpacked sources stay as unpacked) and `make -j2 kv/raftkv`, the CLI and
# the libraries under it (about a quarter of the objects).  The whole
# `make -j2` took 125 s there on the 2 shared cores of the development
# machine (28 s more for configure), over the ~2 minutes the default suite
# can give it, so it runs with RAFTKV_LONG=1, followed by `make check` of
# a subset of the unit tests in that build.  The durations of each step
# are printed (a FUSE mount whose every operation is linearizable is
# slower than a local disk; the test asserts nothing about speed).
#
# Cleanup (tests/mr/lib.sh and mount.sh, whatever happened): the build
# runs under start() (its own process group, killed by pid), then each
# mount is unmounted and each member killed by pid, and $T removed.
. "$RAFTKV_SRCDIR/tests/mr/lib.sh"
. "$RAFTKV_SRCDIR/tests/mr/mount.sh"
B=$RAFTKV_BUILDDIR

V=$(sed -n 's/^PACKAGE_VERSION = //p' "$B/Makefile")
[ -n "$V" ] || fail "no PACKAGE_VERSION in $B/Makefile"
D=raftkv-$V

# elapsed T0: seconds since T0 (from $SECONDS).
elapsed() { echo $((SECONDS - $1)); }

step "the dist tarball ($D.tar.gz) from make distdir"
mkdir -p "$T/src" || fail "mkdir"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	make -s -C "$B" distdir distdir="$T/src/$D" >"$T/distdir.log" 2>&1 ||
	{ cat "$T/distdir.log" >&2; fail "make distdir"; }
[ -x "$T/src/$D/configure" ] || fail "no configure in the distdir"
(cd "$T/src" && tar cf - "$D" | gzip -c >"$T/$D.tar.gz") || fail "tar"
echo "$(find "$T/src/$D" -type f | wc -l) files, $(wc -c <"$T/$D.tar.gz") bytes compressed"

step "3-mount cluster"
mount_cluster

step "unpack into mount 1"
t0=$SECONDS
tar -C "$T/m1" -xzf "$T/$D.tar.gz" || fail "unpack into mount 1"
echo "unpacked in $(elapsed $t0) s"

step "compare with the original through mount 2"
diff -r "$T/src/$D" "$T/m2/$D" || fail "the tree read through mount 2 differs"
# Modes too (configure and the scripts are executable).
(cd "$T/src/$D" && find . -printf '%p %y %m\n' | sort) >"$T/modes.orig"
(cd "$T/m2/$D" && find . -printf '%p %y %m\n' | sort) >"$T/modes.m2" ||
	fail "find through mount 2"
diff "$T/modes.orig" "$T/modes.m2" || fail "modes differ through mount 2"
echo "same files, bytes and modes"

if [ -n "${RAFTKV_LONG:-}" ]; then
	TARGET=all PROGS="kv/raftkv kv/raftkv-server fs/mount.raftkv mr/raftkv-mr"
else
	TARGET=kv/raftkv PROGS=kv/raftkv
fi

step "configure and make -j2 $TARGET in mount 1"
mkdir "$T/m1/build" || fail "mkdir build in mount 1"
t0=$SECONDS
start 1800 env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	sh -c "cd '$T/m1/build' && ../$D/configure >configure.out 2>&1"
wait "$LAST" || { tail -30 "$T/m1/build/configure.out" >&2; fail "configure in mount 1"; }
echo "configure: $(elapsed $t0) s"
t0=$SECONDS
start 3600 env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	sh -c "make -C '$T/m1/build' -j2 $TARGET >'$T/make.out' 2>&1"
wait "$LAST" || { tail -30 "$T/make.out" >&2; fail "make in mount 1"; }
echo "make -j2 $TARGET: $(elapsed $t0) s"

step "mount 3 sees the build"
(cd "$T/m1/build" && find . -name '*.o' | sort) >"$T/objs.m1"
(cd "$T/m3/build" && find . -name '*.o' | sort) >"$T/objs.m3" || fail "find through mount 3"
[ "$(wc -l <"$T/objs.m1")" -gt 10 ] || fail "only $(wc -l <"$T/objs.m1") objects built"
diff "$T/objs.m1" "$T/objs.m3" || fail "mount 3 lists other objects"
echo "$(wc -l <"$T/objs.m1") objects"
for p in $PROGS; do
	cmp "$T/m1/build/$p" "$T/m3/build/$p" || fail "$p differs through mount 3"
done
# The program built in mount 1, run from mount 3.
"$T/m3/build/kv/raftkv" init -d "$T/fromm3" -n 1 --quota 1M >/dev/null ||
	fail "the raftkv built in mount 1 does not run from mount 3"
grep -qx 'quota 1048576' "$T/fromm3/cluster.conf" || fail "its init wrote no quota line"
# Up to date as mount 3 sees the timestamps: make has nothing to do.
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$T/m3/build" -q $TARGET ||
	fail "make -q through mount 3: the build is not up to date there"
echo "same objects and programs; the CLI runs from mount 3; make -q: up to date"

if [ -n "${RAFTKV_LONG:-}" ]; then
	step "RAFTKV_LONG: make check of unit tests in mount 1"
	t0=$SECONDS
	start 3600 env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		sh -c "make -C '$T/m1/build' -j2 check TESTS='tests/unit/test_num tests/unit/test_cluster tests/unit/test_buf tests/unit/test_keyspace tests/unit/test_kvcmd tests/check_layers.sh' >'$T/check.out' 2>&1"
	wait "$LAST" || { tail -40 "$T/check.out" >&2; fail "make check in mount 1"; }
	echo "make check (subset): $(elapsed $t0) s"
fi

step "done"
exit 0
