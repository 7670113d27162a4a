/*
 * cluster.h - the cluster file: who the members are and where they listen.
 *
 * Format (documented for users in raftkv.conf(5)), one directive a line.
 * A '#' at the start of a line or after white space starts a comment; any
 * other '#' is part of a word (it is a Z85 character, so keys contain it):
 *
 *   cluster <id>                 cluster id, hex, non-zero (required, once)
 *   member <id> peer=<endpoint> client=<endpoint> [key=<z85 public key>]
 *   credential client key=<z85>  a client's public key (CURVE clusters)
 *   credential admin key=<z85>   an administrator's public key
 *   quota <bytes>[K|M|G|T]       size limit of the replicated state
 *                                (binary units; at most once; the
 *                                application's business, e.g. kv.h QUOTA)
 *   lock_lease <ms>              lock lease, 100 .. 3600000 ms (at most
 *                                once; the application's, kv.h LOCKS)
 *   session_ttl <ms>             idle client session lifetime, 1000 ..
 *                                86400000 ms (at most once; the
 *                                application's, kv.h SESSIONS; tests
 *                                shorten it), and at least
 *                                CLUSTER_TTL_MIN_LEASES lock leases
 *                                (lock_lease, or the default; a
 *                                lock_lease line alone is checked
 *                                against the default TTL the same way)
 *
 * With keys, the client endpoint admits only the credentials listed
 * (CLUSTER_MAX_CREDS at most); admin ones may also transfer leadership
 * and inject faults.
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
#define CLUSTER_MAX_CREDS 64

enum cluster_role { CLUSTER_CLIENT = 1, CLUSTER_ADMIN = 2 };

struct cluster_cred {
	int role; /* enum cluster_role */
	char key[CLUSTER_KEY_LEN + 1]; /* public key, Z85 */
};

struct cluster_member {
	raft_id id;
	char peer[CLUSTER_ENDPOINT_MAX];
	char client[CLUSTER_ENDPOINT_MAX];
	char key[CLUSTER_KEY_LEN + 1]; /* "" when CURVE is off */
};

/* The lock lease without a lock_lease line (the application's default:
 * KV_LOCK_LEASE_NS, kv.h; kvapp.c checks they agree), and how many of
 * them a session_ttl must be at least: a session holding locks is renewed
 * every quarter lease, an idle one every quarter TTL but by a thread that
 * wakes a quarter lease apart (fs/rklock.c), so a TTL of a few leases
 * leaves room for both. */
#define CLUSTER_LOCK_LEASE_DEFAULT_MS 10000
#define CLUSTER_TTL_MIN_LEASES 3

/* The session TTL without a session_ttl line (the application's default:
 * KV_SESSION_TTL_NS, kv.h; kvapp.c checks they agree): the TTL a
 * lock_lease line alone is checked against. */
#define CLUSTER_SESSION_TTL_DEFAULT_MS 600000

struct cluster {
	uint64_t id;
	uint32_t n;
	struct cluster_member members[RAFT_MAX_MEMBERS];
	int curve; /* every member has a key */
	uint32_t n_creds; /* credential lines */
	uint64_t quota; /* the quota line, bytes; 0 = none given */
	int64_t lock_lease_ms; /* the lock_lease line; 0 = none given */
	int64_t session_ttl_ms; /* the session_ttl line; 0 = none given */
	struct cluster_cred creds[CLUSTER_MAX_CREDS];
	/* This process's own client credential, if it has one (set by
	 * keys_load_credential(), raft/client/keys.h): client_new() then
	 * speaks CURVE to the members.  "" = none. */
	char cred_secret[CLUSTER_KEY_LEN + 1];
};

/*
 * Parse @text (NUL-terminated; @name is used in messages).  Returns 0, or
 * -EINVAL with one line naming the problem in @err.
 */
int cluster_parse(const char *text, const char *name, struct cluster *c,
    char *err, size_t errlen);

/*
 * Parse a quota as the quota line takes it: decimal bytes with an optional
 * binary K, M, G or T suffix, 1 byte to 2^62 ("64M" = 67108864).  Stores
 * the bytes in *@bytes and returns 0, or returns -EINVAL (*@bytes
 * unchanged) for anything else: signs, spaces, other suffixes, overflow.
 */
int cluster_parse_quota(const char *s, uint64_t *bytes);

/* Read and parse the file at @path (at most 64 KiB).  0, -EINVAL, -errno. */
int cluster_load(const char *path, struct cluster *c, char *err, size_t errlen);

/* The member with @id, or NULL. */
const struct cluster_member *cluster_find(const struct cluster *c, raft_id id);

/* Check "tcp://host:port" with a port in 1..65535.  Returns 0 or -EINVAL. */
int cluster_check_endpoint(const char *ep);

#endif
