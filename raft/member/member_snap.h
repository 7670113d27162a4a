/*
 * member_snap.h - the header a member puts in front of the application's
 * snapshot: the member directory and the members seen removed, so that a
 * member that catches up from a snapshot (a new learner, one that was
 * away) learns every member's address, and which members and keys are
 * out, even when the change entries that carried them are compacted away
 * (raft/member/member.c wraps the application's snapshot and restore).
 *
 * Format (little-endian):
 *   magic "RKMDSNP2", dir_len u32, dir (raft/memberdir.h),
 *   gone_len u32, gone (raft/memberdir_gone.h), application data
 * "RKMDSNP1" (written before the removed members were kept) is the same
 * without gone_len and gone, and is still read.  A snapshot without
 * either magic (written before membership changes, or with no member
 * added, moved or removed) is the application's alone.  Any other
 * damage is refused: the snapshot file's checksum passed, so a header
 * that does not parse is a bug or a foreign file, never guessed at.
 *
 * Pure (libc and the core's codecs).
 */
#ifndef RAFTKV_MEMBER_SNAP_H
#define RAFTKV_MEMBER_SNAP_H

#include <stddef.h>
#include <stdint.h>

#include "raft/memberdir.h"
#include "raft/memberdir_gone.h"

/* Encode the header for @d and @g into a fresh buffer (*@out, *@len; the
 * caller frees).  0 or -ENOMEM. */
int member_snap_header(const struct memberdir *d,
    const struct memberdir_gone *g, uint8_t **out, uint32_t *len);

/*
 * Split snapshot @data (@len bytes): 0 with @d, @g (empty for RKMDSNP1)
 * and *@app_off (where the application's data starts) set; 1 when it has
 * no header (the application's alone, *@app_off 0, @d and @g empty); or
 * STORAGE_ECORRUPT with a message in @err when the header is damaged
 * (a length past the end, a directory or removed set that does not
 * decode).
 */
int member_snap_parse(const void *data, size_t len, struct memberdir *d,
    struct memberdir_gone *g, size_t *app_off, char *err, size_t errlen);

#endif
