/*
 * raft/poison/fuse_lowlevel.h - stands in for <fuse_lowlevel.h> while the pure Raft core compiles.
 *
 * raft/libraftcore.a is built with raft/poison/ first on its include path
 * (Makefile.am), so a core file that reaches for I/O libraries fails here
 * instead of only at link time.  I/O belongs in raft/storage, raft/net or
 * raft/member.
 */
#error \
    "the pure Raft core (raft/*.c) must not include <fuse_lowlevel.h>: it does no I/O"
