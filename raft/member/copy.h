/*
 * copy.h - copies out of a raft_ready batch, whose buffers are borrowed
 * only until raft_advance() (raft.h): the loop copies entries for the
 * persister (node_ready.c) and the RSM copies them for its applier
 * (rsm.c).  Both use these.
 */
#ifndef RAFTKV_COPY_H
#define RAFTKV_COPY_H

#include <stdint.h>

#include "raft/raft.h"

/* Copy @count entries into one array (*@out) and their data into one
 * block (*@blob); the copies' data pointers point into *@blob.  The
 * caller frees both.  0 (both NULL when @count is 0) or -ENOMEM. */
int copy_entries(const struct raft_entry *src, uint32_t count,
    struct raft_entry **out, uint8_t **blob);

#endif
