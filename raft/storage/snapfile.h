/*
 * snapfile.h - one snapshot file: a checked header, then one zstd frame.
 *
 * Used by storage.c; the layout is described in snapfile.c.  Errors are
 * negative errno values, STORAGE_ECORRUPT or STORAGE_EFOREIGN, with the
 * message (file name and offset) in the diskio error buffer.
 */
#ifndef RAFTKV_SNAPFILE_H
#define RAFTKV_SNAPFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "raft/storage/diskio.h"
#include "raft/raft.h"

#define SNAPFILE_NAME_MAX 48

/* "snap-<index, 20 digits>.snap", with ".tmp" appended when @tmp. */
void snapfile_name(raft_index index, bool tmp, char *buf, size_t len);
/* Parse a name made by snapfile_name(); false if it is not one. */
bool snapfile_parse_name(const char *name, bool tmp, raft_index *index);

/*
 * Write @len bytes at @data as snapshot @meta into file @name (created or
 * truncated), compressed at zstd @level, then fdatasync and close it.
 * Sets *@file_bytes to the file's size.  Does not rename: storage.c does.
 */
int snapfile_write(struct diskio *io, const char *name, uint64_t cluster_id,
    raft_id member_id, const struct raft_snapshot_meta *meta, const void *data,
    uint64_t len, int level, uint64_t *file_bytes);

/*
 * Read and check snapshot file @name end to end: header checksum, magic,
 * version, cluster and member ids, index in the name, the zstd frame and
 * its checksum, the uncompressed size and CRC32C, no trailing bytes.
 * Refuses an uncompressed size over @max_bytes.  On success fills @meta
 * and sets *@data (caller frees it with free()), *@len, *@file_bytes.
 */
int snapfile_read(struct diskio *io, const char *name, uint64_t cluster_id,
    raft_id member_id, uint64_t max_bytes, struct raft_snapshot_meta *meta,
    uint8_t **data, uint64_t *len, uint64_t *file_bytes);

#endif
