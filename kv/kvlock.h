/*
 * kvlock.h - the lock commands of the KV state machine: what kv.c calls
 * for LOCK, UNLOCK, UNLOCK_OWNER, CANCEL, GETLK, KEEPALIVE and a TXN's
 * FENCE ops (the contract: kv.h, LOCKS).  It resolves the key of a lock
 * op to its inode in the key space and hands the request to the lock
 * table (locktab.h), so that kv.c's dispatch stays a few lines.
 * Internal to libkv: only kv.c includes it.
 */
#ifndef RAFTKV_KV_KVLOCK_H
#define RAFTKV_KV_KVLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "kv/cmd.h"
#include "kv/keyspace.h"
#include "kv/locktab.h"

/* True for the op types kvlock_exec() executes (the session mutations
 * LOCK, UNLOCK, UNLOCK_OWNER, CANCEL, KEEPALIVE). */
bool kvlock_is_mutation(uint8_t type);

/*
 * The inode @op names (kv.h: the key's, or op->inode; both: they must
 * agree), or 0 with KV_ENOKEY in *@status.
 */
uint64_t kvlock_resolve(const struct keyspace *ks, const struct kv_op *op,
    int *status);

/* @op (a lock op) on @inode for @session as a lock-table request. */
void kvlock_req(const struct kv_op *op, uint64_t session, uint64_t inode,
    struct locktab_req *rq);

/*
 * Execute the lock mutation @c (kvlock_is_mutation(c->type)) of session
 * @c->client_id at log index @index; status and attr (inode, token) in
 * @out.  Returns 0 whatever the status, or -ENOMEM (nothing changed).
 */
int kvlock_exec(struct locktab *t, const struct keyspace *ks,
    const struct kv_cmd *c, uint64_t index, struct kv_result *out);

/* GETLK @op for @session: status (OK, ErrLocked, ErrNoKey), conflict. */
void kvlock_getlk(const struct locktab *t, const struct keyspace *ks,
    uint64_t session, const struct kv_op *op, struct kv_result *out);

/*
 * The FENCE ops at the front of the TXN @c, checked against the state
 * now: *@nfence = how many there are.  KV_OK, or KV_EFENCED / KV_ENOKEY
 * with out->fail_op = the index of the first failing one.
 */
int kvlock_fences(const struct locktab *t, const struct keyspace *ks,
    const struct kv_cmd *c, uint32_t *nfence, struct kv_result *out);

/* @c without its first @n ops (FENCE ops already checked), in @rest
 * (pointing into @c's ops). */
void kvlock_skip_ops(const struct kv_cmd *c, uint32_t n, struct kv_cmd *rest);

#endif
