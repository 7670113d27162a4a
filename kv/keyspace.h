/*
 * keyspace.h - the ordered key space of the KV state machine.
 *
 * A map from keys (1..KV_KEY_MAX bytes, ordered as unsigned bytes, a
 * shorter key before its extensions) to records (struct kv_rec: the
 * value, its version and the file metadata).  Implemented as an in-memory
 * B+tree: O(log n) get, insert and remove with a fan-out of 64 (four levels
 * hold a million keys), and ordered iteration from any key by walking the
 * linked leaves, which is how prefix listings (directories) are read.
 *
 * It is fully deterministic (no randomness, no hashing), owns the records
 * it holds (keyspace_free() frees them) and has no lock: struct kv
 * serialises access.  Removal never allocates, which is what lets the
 * state machine undo a half-applied transaction after an allocation failure.
 */
#ifndef RAFTKV_KV_KEYSPACE_H
#define RAFTKV_KV_KEYSPACE_H

#include <stddef.h>
#include <stdint.h>

#include "kv/cmd.h"

/*
 * One key.  The key bytes are stored inline after the header; the value is
 * a separate allocation of @cap >= attr.size bytes (NULL when @cap is 0),
 * so that partial writes can grow it in place.
 */
struct kv_rec {
	struct kv_attr attr;
	unsigned char *value;
	uint64_t cap;
	uint8_t dead; /* used by kvexec.c inside a transaction; 0 otherwise */
	uint16_t keylen;
	unsigned char key[];
};

/*
 * A record for @key (@keylen 1..KV_KEY_MAX) with zeroed attributes and no
 * value, or NULL on allocation failure.  Free with keyspace_rec_free()
 * unless it was handed to keyspace_insert().
 */
struct kv_rec *keyspace_rec_new(const void *key, size_t keylen);

/* Free @rec and its value.  NULL-safe. */
void keyspace_rec_free(struct kv_rec *rec);

struct keyspace;

/* An empty key space, or NULL on allocation failure. */
struct keyspace *keyspace_new(void);

/* Free @ks and every record in it.  NULL-safe. */
void keyspace_free(struct keyspace *ks);

/* Number of records. */
size_t keyspace_count(const struct keyspace *ks);

/* The record for @key, or NULL. */
struct kv_rec *keyspace_get(const struct keyspace *ks, const void *key,
    size_t keylen);

/*
 * Insert @rec, whose key must not be present.  On success takes ownership
 * of @rec.  Returns 0, -EEXIST (key present; nothing changed) or -ENOMEM
 * (nothing changed; @rec still the caller's).
 */
int keyspace_insert(struct keyspace *ks, struct kv_rec *rec);

/*
 * Remove the record for @key and return it (ownership passes to the
 * caller), or NULL if absent.  Never allocates, never fails.
 */
struct kv_rec *keyspace_remove(struct keyspace *ks, const void *key,
    size_t keylen);

/*
 * A position in the key space.  Valid until the next insert or remove;
 * reading through it is fine.
 */
struct keyspace_iter {
	const void *leaf;
	unsigned idx;
};

/* Position @it at the first record (NULL record if empty). */
void keyspace_first(const struct keyspace *ks, struct keyspace_iter *it);

/* Position @it at the first record whose key is >= @key. */
void keyspace_seek(const struct keyspace *ks, const void *key, size_t keylen,
    struct keyspace_iter *it);

/* The record at @it, or NULL past the end. */
struct kv_rec *keyspace_iter_rec(const struct keyspace_iter *it);

/* Advance @it (no-op past the end). */
void keyspace_iter_next(struct keyspace_iter *it);

/* memcmp-style order of two keys. */
int keyspace_keycmp(const void *a, size_t alen, const void *b, size_t blen);

/*
 * Check every structural invariant (order, separators, occupancy, equal
 * leaf depth, leaf chain, count).  Returns 0 or -EFAULT; for tests.
 */
int keyspace_check(const struct keyspace *ks);

/* Bytes of tree nodes (not records), for benchmarks. */
size_t keyspace_node_bytes(const struct keyspace *ks);

#endif
