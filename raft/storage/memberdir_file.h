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
#include "raft/memberdir_gone.h"

#define MEMBERDIR_FILE "members"
/*
 * Write @d and the removed members @gone (NULL: none) as the file
 * "members" of data directory @dir (atomically, as above; always the
 * RKMEMBR2 format) for cluster @cluster_id.  0, or a negative errno with
 * a message naming the file and operation in @err.
 */
int memberdir_save(const char *dir, uint64_t cluster_id,
    const struct memberdir *d, const struct memberdir_gone *gone, char *err,
    size_t errlen);

/*
 * Read the file "members" of @dir into @d and, unless NULL, @gone (empty
 * for an RKMEMBR1 file).  0; -ENOENT when there is none (a fresh data
 * directory, or one from before membership changes); STORAGE_EDAMAGED
 * (message in @err) when it is damaged or belongs to another cluster;
 * another negative errno when it cannot be read.
 */
int memberdir_load(const char *dir, uint64_t cluster_id, struct memberdir *d,
    struct memberdir_gone *gone, char *err, size_t errlen);

#endif
