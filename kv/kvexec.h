/*
 * kvexec.h - execution of the KV commands: what each command does to the
 * key space (the per-command contract in kv.h), with an undo log that
 * makes a transaction all-or-nothing.
 *
 * The state machine is two jobs in two files.  kv.c dispatches: it takes
 * the lock, decodes the command, keeps the clock and the session table
 * (at-most-once), snapshots and serves reads.  This file executes a
 * decoded command on struct kvexec_state, the part of the state that
 * commands change; it knows nothing of sessions, locks or encodings.
 * Internal to libkv: only kv.c includes it.
 */
#ifndef RAFTKV_KV_KVEXEC_H
#define RAFTKV_KV_KVEXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/cmd.h"
#include "kv/keyspace.h"

/* What commands execute on (struct kv owns it). */
struct kvexec_state {
	struct keyspace *ks;
	uint64_t next_inode; /* inode of the next created key */
	/* Sum over the live keys of kvexec_rec_usage(); kept up to date by
	 * every change (an undone txn restores it). */
	uint64_t used;
	uint64_t quota; /* a change that grows used past this: KV_ENOSPC */
	/* Does some session hold inode @inode open (the compares
	 * KV_VERSION_OPEN and KV_VERSION_NOTOPEN)?  NULL: none does. */
	bool (*is_open)(void *arg, uint64_t inode);
	void *open_arg;
};

/* What a live record of @keylen key bytes and @size value bytes counts for
 * against the quota: both plus KV_KEY_OVERHEAD (kv.h, QUOTA). */
uint64_t kvexec_usage(size_t keylen, uint64_t size);

/* kvexec_usage() summed over every record of @ks (after a restore). */
uint64_t kvexec_usage_of(const struct keyspace *ks);

/*
 * The record for @key in @ks if it is live (not marked dead by a running
 * transaction), else NULL.
 */
struct kv_rec *kvexec_live(const struct keyspace *ks, const void *key,
    size_t keylen);

/*
 * Store in *@value a malloc'd copy of @r's value (caller frees; NULL when
 * the value is empty).  Returns 0 or -ENOMEM (*@value NULL).
 */
int kvexec_copy_value(const struct kv_rec *r, void **value);

/*
 * GET @op->key: status, attributes and a copy of the value in @out (the
 * caller releases it with kv_result_release()).  Changes nothing.
 * Returns 0 (whatever the status) or -ENOMEM.
 */
int kvexec_get(const struct kvexec_state *st, const struct kv_op *op,
    struct kv_result *out);

/*
 * Execute the single mutation @op (PUT..RENAME, LINK) at time @now; status and
 * attributes in @out.  A change that would leave st->used above st->quota
 * and above what it was is not made: KV_ENOSPC (checked after the
 * command's own checks, so a version mismatch is still ErrVersion).
 * Returns 0 whatever the status, or -ENOMEM: then nothing changed.
 */
int kvexec_op(struct kvexec_state *st, const struct kv_op *op, int64_t now,
    struct kv_result *out);

/*
 * Execute the transaction @c (compares, then ops, in order) at time @now,
 * all or nothing; status, fail_cmp/fail_op and attributes in @out.  The
 * quota is checked on the txn as a whole, after its last op: over it (and
 * grown), everything is undone, KV_ENOSPC with fail_op = the last op.
 * Returns 0 whatever the status, or -ENOMEM: then nothing changed (the
 * state, next_inode included, is as before the call).
 */
int kvexec_txn(struct kvexec_state *st, const struct kv_cmd *c, int64_t now,
    struct kv_result *out);

#endif
