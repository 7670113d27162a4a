/*
 * keyspace.h - the ordered key space of the KV state machine.
 *
 * A map from keys (1..KV_KEY_MAX bytes, ordered as unsigned bytes, a
 * shorter key before its extensions) to records (struct kv_rec: a name),
 * each pointing to an inode (struct kv_inode: the value, its version and
 * the file metadata; several names may share one), plus an index of the
 * inodes by inode number.  Implemented as an in-memory
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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/cmd.h"

/*
 * An inode: what a file is, apart from its names.  Several records (names)
 * may point to one inode (hard links, kv.h); each inode is shared, never
 * copied.  The value is a separate allocation of @cap >= attr.size bytes
 * (NULL when @cap is 0), so that partial writes can grow it in place.
 *
 * Lifetime: reference counted.  Every record pointing to the inode holds
 * one reference, and so may kvexec.c's undo log (a transaction keeps what
 * it may restore); the last keyspace_inode_unref() frees it with its value
 * and takes it out of the key space's by-inode index.
 */
struct kv_rec;
struct kv_inode {
	struct kv_attr attr; /* version, inode number, size, metadata */
	unsigned char *value;
	uint64_t cap;
	uint32_t refs;
	/* Every record pointing here (live, or dead inside a transaction),
	 * in no particular order; @names is @one until more are needed. */
	uint32_t nnames, names_cap;
	struct kv_rec **names;
	struct kv_rec *one;
	/* By-inode index chain (keyspace.c); @hpprev NULL when not indexed. */
	struct kv_inode *hnext, **hpprev;
};

/*
 * One key (a name).  The key bytes are stored inline after the header; the
 * file it names is @ino (never NULL while the record exists).
 */
struct kv_rec {
	struct kv_inode *ino;
	uint8_t dead; /* used by kvexec.c inside a transaction; 0 otherwise */
	uint16_t keylen;
	unsigned char key[];
};

/* A new inode: zeroed attributes, no value, no names, no references.
 * NULL on allocation failure. */
struct kv_inode *keyspace_inode_new(void);

/* One more / one fewer reference to @ino; the last unref frees it (value,
 * names array) and unlinks it from its index.  NULL-safe. */
void keyspace_inode_ref(struct kv_inode *ino);
void keyspace_inode_unref(struct kv_inode *ino);

/* Make room for @n names in @ino (never shrinks).  0 or -ENOMEM (nothing
 * changed). */
int keyspace_inode_reserve(struct kv_inode *ino, uint32_t n);

/*
 * Point @rec at @ino (NULL: at nothing): @rec joins @ino's names (room
 * reserved beforehand with keyspace_inode_reserve(): never allocates) and
 * takes a reference; it leaves its previous inode's names and drops that
 * reference (which may free it).
 */
void keyspace_rec_point(struct kv_rec *rec, struct kv_inode *ino);

/*
 * A record for @key (@keylen 1..KV_KEY_MAX) naming @ino, or, with @ino
 * NULL, a new inode of its own (zeroed attributes, no value).  NULL on
 * allocation failure (nothing changed).  Free with keyspace_rec_free()
 * unless it was handed to keyspace_insert().
 */
struct kv_rec *keyspace_rec_new(const void *key, size_t keylen,
    struct kv_inode *ino);

/* Is @rec the first of its inode's live names in key order?  (Snapshots
 * write an inode's body there, the quota counts its value there.) */
bool keyspace_rec_is_first(const struct kv_rec *rec);

/* Free @rec, dropping its inode reference (the last one frees the inode
 * and its value).  NULL-safe. */
void keyspace_rec_free(struct kv_rec *rec);

struct keyspace;

/* An empty key space, or NULL on allocation failure. */
struct keyspace *keyspace_new(void);

/* Free @ks, every record in it and their inodes.  NULL-safe. */
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

/*
 * The by-inode index: inode number -> inode.  keyspace_inode_add() never
 * fails (the hash table grows when it can; a failed growth only lengthens
 * chains); an inode leaves the index when it is freed.  @ino must not be
 * indexed yet, and no other inode may have its number.
 */
void keyspace_inode_add(struct keyspace *ks, struct kv_inode *ino);

/* The indexed inode numbered @inum, or NULL. */
struct kv_inode *keyspace_inode_find(const struct keyspace *ks, uint64_t inum);

/* Bytes of tree nodes (not records), for benchmarks. */
size_t keyspace_node_bytes(const struct keyspace *ks);

#endif
