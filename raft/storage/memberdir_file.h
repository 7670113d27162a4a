/*
 * memberdir_file.h - the member directory (raft/memberdir.h) in a data
 * directory: the file "members", written atomically and read fail-closed
 * (the format is in raft/memberdir.h).
 */
#ifndef RAFTKV_MEMBERDIR_FILE_H
#define RAFTKV_MEMBERDIR_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "raft/memberdir.h"

#define MEMBERDIR_FILE "members"
/*
 * Write @d as the file "members" of data directory @dir (atomically, as
 * above) for cluster @cluster_id.  0, or a negative errno with a message
 * naming the file and operation in @err.
 */
int memberdir_save(const char *dir, uint64_t cluster_id,
    const struct memberdir *d, char *err, size_t errlen);

/*
 * Read the file "members" of @dir into @d.  0; -ENOENT when there is none
 * (a fresh data directory, or one from before membership changes);
 * STORAGE_EDAMAGED (message in @err) when it is damaged or belongs to
 * another cluster; another negative errno when it cannot be read.
 */
int memberdir_load(const char *dir, uint64_t cluster_id, struct memberdir *d,
    char *err, size_t errlen);

#endif
