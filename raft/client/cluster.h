/*
 * cluster.h - the cluster file: who the members are and where they listen.
 *
 * Format (documented for users in raftkv.conf(5)), one directive a line,
 * '#' starts a comment:
 *
 *   cluster <id>                 cluster id, hex, non-zero (required, once)
 *   member <id> peer=<endpoint> client=<endpoint> [key=<z85 public key>]
 *
 * Member ids are decimal 1..2^63, unique; 1 to RAFT_MAX_MEMBERS members.
 * Endpoints are ZeroMQ TCP endpoints "tcp://host:port".  Either every
 * member has a CURVE public key (40 Z85 characters) or none has.
 *
 * Parsing validates everything and reports the first problem with the file
 * name and line number.
 */
#ifndef RAFTKV_CLUSTER_H
#define RAFTKV_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

#define CLUSTER_ENDPOINT_MAX 128
#define CLUSTER_KEY_LEN 40

struct cluster_member {
	raft_id id;
	char peer[CLUSTER_ENDPOINT_MAX];
	char client[CLUSTER_ENDPOINT_MAX];
	char key[CLUSTER_KEY_LEN + 1];   /* "" when CURVE is off */
};

struct cluster {
	uint64_t id;
	uint32_t n;
	struct cluster_member members[RAFT_MAX_MEMBERS];
	int curve;                       /* every member has a key */
};

/*
 * Parse @text (NUL-terminated; @name is used in messages).  Returns 0, or
 * -EINVAL with one line naming the problem in @err.
 */
int cluster_parse(const char *text, const char *name, struct cluster *c,
    char *err, size_t errlen);

/* Read and parse the file at @path (at most 64 KiB).  0, -EINVAL, -errno. */
int cluster_load(const char *path, struct cluster *c, char *err,
    size_t errlen);

/* The member with @id, or NULL. */
const struct cluster_member *cluster_find(const struct cluster *c, raft_id id);

/* Check "tcp://host:port" with a port in 1..65535.  Returns 0 or -EINVAL. */
int cluster_check_endpoint(const char *ep);

#endif
