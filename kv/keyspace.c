/*
 * keyspace.c - the ordered key space: an in-memory B+tree of records.
 *
 * Leaves hold up to LEAF_MAX record pointers in key order and are chained
 * left to right; inner nodes hold up to INNER_MAX children and n-1
 * separators.  Invariants (keyspace_check() verifies all of them):
 *
 *   1. Keys are strictly increasing along the leaf chain.
 *   2. sep[i] of an inner node IS the record with the smallest key in the
 *      subtree child[i+1] (a pointer to it, not a copy: separators cost no
 *      allocation, and removing a record never allocates).
 *   3. Every leaf is at depth height-1; every non-root node holds at least
 *      LEAF_MIN items / INNER_MIN children; a root inner node has >= 2.
 *   4. (below) lcp and slices describe the node's entries.
 *
 * Invariant 2 is what makes removal allocation-free but also what removal
 * must maintain: when the smallest record of a leaf goes, the one separator
 * that pointed to it (at the lowest ancestor reached through a child index
 * > 0) is re-pointed to the leaf's new smallest record, before rebalancing.
 * Borrowing and merging then move separators exactly as a textbook B+tree
 * moves copies of keys.
 *
 * Splits are all-or-nothing: an insert first allocates every node the
 * split will need (one per full node on the path, plus a new root), so
 * -ENOMEM leaves the tree untouched.  An insert past the last key of the
 * last leaf splits it 3/4 : 1/4 instead of halving it, so that loading keys
 * in order (snapshot restore, sequential names) leaves leaves 3/4 full.
 *
 * Minimum occupancy is a quarter, not a half: fewer merges and borrows
 * when keys are deleted and re-created, at a small cost in memory.
 *
 * Searching without chasing pointers.  Records are separate allocations,
 * so comparing against one is a cache miss; a binary search over 64 of them
 * in each of four levels would cost some twenty misses.  Each node therefore
 * keeps, next to its entries (leaf items, inner separators):
 *
 *   4. lcp: a number of leading bytes that ALL its entries share, and
 *      slice[i]: the 8 bytes of entry i's key from offset lcp, big-endian,
 *      zero-padded past the key's end.
 *
 * A search first checks the key against the shared prefix (one record),
 * then bisects on slices, touching a record only when slices tie.  Unequal
 * slices order like their keys (a key that ends early pads with zeros, and
 * is smaller than its extensions anyway).  Paths share long prefixes
 * ("home/alice/src/..."), which is why the slice starts at lcp rather than
 * at 0.  lcp need not be the longest common prefix, only a common one:
 * removals keep it, inserts keep it when the new key shares it, and
 * everything else (splits, merges, borrows, a key outside the prefix)
 * recomputes the node (refresh()).
 */
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kv/keyspace.h"

#define LEAF_MAX 64
#define LEAF_MIN (LEAF_MAX / 4)
#define INNER_MAX 64 /* children */
#define INNER_MIN (INNER_MAX / 4)
#define DEPTH_MAX 24 /* far beyond any reachable height */

struct node {
	uint16_t n; /* items (leaf) or children (inner) */
	uint8_t leaf;
	uint16_t lcp; /* invariant 4 */
};

struct leaf {
	struct node h;
	struct leaf *next;
	uint64_t slice[LEAF_MAX];
	struct kv_rec *items[LEAF_MAX];
};

struct inner {
	struct node h;
	uint64_t slice[INNER_MAX - 1];
	struct kv_rec *sep[INNER_MAX - 1];
	struct node *child[INNER_MAX];
};

struct keyspace {
	struct node *root; /* NULL when empty */
	struct kv_inode **ibucket; /* by-inode index: chained hash */
	size_t nibuckets; /* power of two */
	size_t iadds; /* inodes added since the last growth (or count) */
	struct leaf *first; /* leftmost leaf */
	size_t count;
	unsigned height; /* 0 when empty; 1: the root is a leaf */
	size_t nleaves;
	size_t ninners;
};

struct step {
	struct inner *node;
	unsigned c; /* index of the child taken */
};

/* ------------------------------------------------------------------------
 * Records and keys
 * ------------------------------------------------------------------------ */

struct kv_inode *keyspace_inode_new(void)
{
	struct kv_inode *ino = calloc(1, sizeof(*ino));

	if (ino == NULL)
		return NULL;
	ino->names = &ino->one;
	ino->names_cap = 1;
	return ino;
}

void keyspace_inode_ref(struct kv_inode *ino)
{
	ino->refs++;
}

void keyspace_inode_unref(struct kv_inode *ino)
{
	if (ino == NULL)
		return;
	assert(ino->refs > 0);
	if (--ino->refs > 0)
		return;
	assert(ino->nnames == 0);
	if (ino->hpprev != NULL) {
		*ino->hpprev = ino->hnext;
		if (ino->hnext != NULL)
			ino->hnext->hpprev = ino->hpprev;
	}
	if (ino->names != &ino->one)
		free(ino->names);
	free(ino->value);
	free(ino);
}

int keyspace_inode_reserve(struct kv_inode *ino, uint32_t n)
{
	struct kv_rec **v;
	uint32_t cap = ino->names_cap;

	if (n <= cap)
		return 0;
	while (cap < n)
		cap = cap < UINT32_MAX / 2 ? cap * 2 : UINT32_MAX;
	if (ino->names == &ino->one) {
		v = malloc(cap * sizeof(*v));
		if (v != NULL)
			v[0] = ino->one;
	} else {
		v = realloc(ino->names, cap * sizeof(*v));
	}
	if (v == NULL)
		return -ENOMEM;
	ino->names = v;
	ino->names_cap = cap;
	return 0;
}

void keyspace_rec_point(struct kv_rec *rec, struct kv_inode *ino)
{
	struct kv_inode *old = rec->ino;

	if (old == ino)
		return;
	if (ino != NULL) {
		assert(ino->nnames < ino->names_cap);
		ino->names[ino->nnames++] = rec;
		ino->refs++;
	}
	rec->ino = ino;
	if (old != NULL) {
		for (uint32_t i = 0; i < old->nnames; i++)
			if (old->names[i] == rec) {
				old->names[i] = old->names[--old->nnames];
				break;
			}
		keyspace_inode_unref(old);
	}
}

struct kv_rec *keyspace_rec_new(const void *key, size_t keylen,
    struct kv_inode *ino)
{
	struct kv_rec *rec;
	struct kv_inode *fresh = NULL;

	assert(keylen >= 1 && keylen <= KV_KEY_MAX);
	if (ino == NULL) {
		ino = fresh = keyspace_inode_new();
		if (ino == NULL)
			return NULL;
	}
	rec = calloc(1, sizeof(*rec) + keylen);
	if (rec == NULL || keyspace_inode_reserve(ino, ino->nnames + 1) != 0) {
		free(rec);
		free(fresh);
		return NULL;
	}
	rec->keylen = (uint16_t)keylen;
	memcpy(rec->key, key, keylen);
	keyspace_rec_point(rec, ino);
	return rec;
}

bool keyspace_rec_is_first(const struct kv_rec *rec)
{
	const struct kv_inode *ino = rec->ino;

	for (uint32_t i = 0; i < ino->nnames; i++) {
		const struct kv_rec *o = ino->names[i];

		if (o != rec && !o->dead &&
		    keyspace_keycmp(o->key, o->keylen, rec->key, rec->keylen) <
		        0)
			return false;
	}
	return true;
}

void keyspace_rec_free(struct kv_rec *rec)
{
	if (rec == NULL)
		return;
	keyspace_rec_point(rec, NULL);
	free(rec);
}

int keyspace_keycmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int rec_cmp(const struct kv_rec *r, const void *key, size_t keylen)
{
	return keyspace_keycmp(r->key, r->keylen, key, keylen);
}

/* ------------------------------------------------------------------------
 * Searching
 * ------------------------------------------------------------------------ */

/* Entries of a node (invariant 4): items of a leaf, separators of an
 * inner node. */
static struct kv_rec **entries(struct node *node, uint64_t **slices,
    unsigned *m)
{
	if (node->leaf) {
		struct leaf *lf = (struct leaf *)node;

		*slices = lf->slice;
		*m = lf->h.n;
		return lf->items;
	}
	struct inner *in = (struct inner *)node;

	*slices = in->slice;
	*m = in->h.n - 1u;
	return in->sep;
}

static uint64_t slice_of(const unsigned char *key, size_t len, unsigned lcp)
{
	uint64_t s = 0;

	if (len >= (size_t)lcp + 8) {
		memcpy(&s, key + lcp, 8);
		return be64toh(s);
	}
	for (unsigned i = 0; i < 8; i++)
		s = s << 8 | (lcp + i < len ? key[lcp + i] : 0u);
	return s;
}

static uint64_t rec_slice(const struct kv_rec *r, unsigned lcp)
{
	return slice_of(r->key, r->keylen, lcp);
}

/* Does @r share the first @lcp bytes of @ref? */
static bool shares(const struct kv_rec *r, const struct kv_rec *ref,
    unsigned lcp)
{
	return r->keylen >= lcp && memcmp(r->key, ref->key, lcp) == 0;
}

/* Recompute @node's lcp (that of its first and last entries, which for
 * sorted keys is that of all of them) and every slice. */
static void refresh(struct node *node)
{
	uint64_t *sl;
	unsigned m, lcp = 0;
	struct kv_rec **e = entries(node, &sl, &m);

	if (m > 0) {
		const struct kv_rec *a = e[0], *b = e[m - 1];
		unsigned max = a->keylen < b->keylen ? a->keylen : b->keylen;

		while (lcp < max && a->key[lcp] == b->key[lcp])
			lcp++;
	}
	node->lcp = (uint16_t)lcp;
	for (unsigned i = 0; i < m; i++)
		sl[i] = rec_slice(e[i], lcp);
}

/* Make @node's entry @i (already stored) consistent with invariant 4. */
static void entry_changed(struct node *node, unsigned i)
{
	uint64_t *sl;
	unsigned m;
	struct kv_rec **e = entries(node, &sl, &m);
	const struct kv_rec *ref = m > 1 ? e[i == 0 ? 1 : 0] : NULL;

	if (ref != NULL && shares(e[i], ref, node->lcp))
		sl[i] = rec_slice(e[i], node->lcp);
	else
		refresh(node);
}

/*
 * Position of @key among @node's entries: the first entry >= @key, or with
 * @upper the first > @key.  *@found (if not NULL) tells whether an entry
 * equals @key.
 */
static unsigned search(const struct node *node, const void *key, size_t keylen,
    bool upper, bool *found)
{
	uint64_t *sl;
	unsigned m, lcp = node->lcp, lo = 0, hi;
	struct kv_rec **e = entries((struct node *)node, &sl, &m);
	uint64_t ks;

	if (found != NULL)
		*found = false;
	hi = m;
	if (m == 0)
		return 0;
	if (lcp > 0) {
		int c = memcmp(key, e[0]->key, keylen < lcp ? keylen : lcp);

		/* Outside the shared prefix: before or after every entry. */
		if (c < 0 || (c == 0 && keylen < lcp))
			return 0;
		if (c > 0)
			return m;
	}
	ks = slice_of(key, keylen, lcp);
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		int c = sl[mid] < ks ? -1
		    : sl[mid] > ks   ? 1
		                     : rec_cmp(e[mid], key, keylen);

		if (c == 0 && found != NULL)
			*found = true;
		if (c < 0 || (c == 0 && upper))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the child of @in whose subtree would hold @key. */
static unsigned child_index(const struct inner *in, const void *key,
    size_t keylen)
{
	return search(&in->h, key, keylen, true, NULL);
}

/* First index in @lf whose key is >= @key; *@found if equal. */
static unsigned leaf_lower_bound(const struct leaf *lf, const void *key,
    size_t keylen, bool *found)
{
	return search(&lf->h, key, keylen, false, found);
}

/* Walk from the root to the leaf for @key, recording the path. */
static struct leaf *descend(const struct keyspace *ks, const void *key,
    size_t keylen, struct step *path, unsigned *depth)
{
	struct node *node = ks->root;
	unsigned d = 0;

	while (!node->leaf) {
		struct inner *in = (struct inner *)node;
		unsigned c = child_index(in, key, keylen);

		if (path != NULL)
			path[d] = (struct step){ in, c };
		d++;
		node = in->child[c];
	}
	if (depth != NULL)
		*depth = d;
	return (struct leaf *)node;
}

struct kv_rec *keyspace_get(const struct keyspace *ks, const void *key,
    size_t keylen)
{
	struct leaf *lf;
	unsigned pos;
	bool found;

	if (ks->root == NULL)
		return NULL;
	lf = descend(ks, key, keylen, NULL, NULL);
	pos = leaf_lower_bound(lf, key, keylen, &found);
	return found ? lf->items[pos] : NULL;
}

/* ------------------------------------------------------------------------
 * Life cycle
 * ------------------------------------------------------------------------ */

#define IBUCKETS_MIN 64u

struct keyspace *keyspace_new(void)
{
	struct keyspace *ks = calloc(1, sizeof(struct keyspace));

	if (ks == NULL)
		return NULL;
	ks->nibuckets = IBUCKETS_MIN;
	ks->ibucket = calloc(ks->nibuckets, sizeof(*ks->ibucket));
	if (ks->ibucket == NULL) {
		free(ks);
		return NULL;
	}
	return ks;
}

static void free_subtree(struct node *node)
{
	if (node->leaf) {
		struct leaf *lf = (struct leaf *)node;

		for (unsigned i = 0; i < lf->h.n; i++)
			keyspace_rec_free(lf->items[i]);
	} else {
		struct inner *in = (struct inner *)node;

		for (unsigned i = 0; i < in->h.n; i++)
			free_subtree(in->child[i]);
	}
	free(node);
}

void keyspace_free(struct keyspace *ks)
{
	if (ks == NULL)
		return;
	if (ks->root != NULL)
		free_subtree(ks->root);
	free(ks->ibucket);
	free(ks);
}

size_t keyspace_count(const struct keyspace *ks)
{
	return ks->count;
}

/* ------------------------------------------------------------------------
 * The by-inode index
 * ------------------------------------------------------------------------ */

static size_t ihash(uint64_t inum, size_t nbuckets)
{
	inum ^= inum >> 33;
	inum *= 0xff51afd7ed558ccdull;
	inum ^= inum >> 33;
	return (size_t)inum & (nbuckets - 1);
}

static void ilink(struct kv_inode **head, struct kv_inode *ino)
{
	ino->hnext = *head;
	if (*head != NULL)
		(*head)->hpprev = &ino->hnext;
	*head = ino;
	ino->hpprev = head;
}

/* Double the table if it can be allocated (else keep the longer chains). */
static void igrow(struct keyspace *ks)
{
	size_t n = ks->nibuckets * 2, count = 0;
	struct kv_inode **b = calloc(n, sizeof(*b));

	if (b == NULL) {
		ks->iadds = 0; /* try again after as many more adds */
		return;
	}
	for (size_t i = 0; i < ks->nibuckets; i++) {
		struct kv_inode *ino = ks->ibucket[i], *next;

		for (; ino != NULL; ino = next) {
			next = ino->hnext;
			ilink(&b[ihash(ino->attr.inode, n)], ino);
			count++;
		}
	}
	free(ks->ibucket);
	ks->ibucket = b;
	ks->nibuckets = n;
	ks->iadds = count;
}

void keyspace_inode_add(struct keyspace *ks, struct kv_inode *ino)
{
	assert(ino->hpprev == NULL);
	if (++ks->iadds > 2 * ks->nibuckets)
		igrow(ks);
	ilink(&ks->ibucket[ihash(ino->attr.inode, ks->nibuckets)], ino);
}

struct kv_inode *keyspace_inode_find(const struct keyspace *ks, uint64_t inum)
{
	struct kv_inode *ino = ks->ibucket[ihash(inum, ks->nibuckets)];

	while (ino != NULL && ino->attr.inode != inum)
		ino = ino->hnext;
	return ino;
}

size_t keyspace_node_bytes(const struct keyspace *ks)
{
	return ks->nleaves * sizeof(struct leaf) +
	    ks->ninners * sizeof(struct inner);
}

/* ------------------------------------------------------------------------
 * Insertion
 * ------------------------------------------------------------------------ */

static void leaf_insert_at(struct leaf *lf, unsigned pos, struct kv_rec *rec)
{
	memmove(&lf->items[pos + 1], &lf->items[pos],
	    (lf->h.n - pos) * sizeof(lf->items[0]));
	memmove(&lf->slice[pos + 1], &lf->slice[pos],
	    (lf->h.n - pos) * sizeof(lf->slice[0]));
	lf->items[pos] = rec;
	lf->h.n++;
	entry_changed(&lf->h, pos);
}

/* Remove item @pos of @lf (invariant 4 holds for any subset). */
static void leaf_remove_at(struct leaf *lf, unsigned pos)
{
	memmove(&lf->items[pos], &lf->items[pos + 1],
	    (lf->h.n - pos - 1u) * sizeof(lf->items[0]));
	memmove(&lf->slice[pos], &lf->slice[pos + 1],
	    (lf->h.n - pos - 1u) * sizeof(lf->slice[0]));
	lf->h.n--;
}

/* Point separator @i of @in at @rec. */
static void set_sep(struct inner *in, unsigned i, struct kv_rec *rec)
{
	in->sep[i] = rec;
	entry_changed(&in->h, i);
}

/* Put @sep and, right of it, @child into non-full @in after child @c. */
static void inner_insert_at(struct inner *in, unsigned c, struct kv_rec *sep,
    struct node *child)
{
	unsigned nsep = in->h.n - 1u;

	memmove(&in->sep[c + 1], &in->sep[c], (nsep - c) * sizeof(in->sep[0]));
	memmove(&in->slice[c + 1], &in->slice[c],
	    (nsep - c) * sizeof(in->slice[0]));
	memmove(&in->child[c + 2], &in->child[c + 1],
	    (in->h.n - c - 1) * sizeof(in->child[0]));
	in->sep[c] = sep;
	in->child[c + 1] = child;
	in->h.n++;
	entry_changed(&in->h, c);
}

/* Insert @rec at @pos of non-full @lf, leaving the slices to the caller. */
static void put_item(struct leaf *lf, unsigned pos, struct kv_rec *rec)
{
	memmove(&lf->items[pos + 1], &lf->items[pos],
	    (lf->h.n - pos) * sizeof(lf->items[0]));
	lf->items[pos] = rec;
	lf->h.n++;
}

/*
 * Split full @lf to make room for @rec at @pos; the new right leaf is
 * @right.  Returns the separator for the parent (the right leaf's first).
 */
static struct kv_rec *split_leaf(struct leaf *lf, struct leaf *right,
    unsigned pos, struct kv_rec *rec)
{
	unsigned keep = LEAF_MAX / 2;

	/* Appending past the last key: keep the left leaf 3/4 full (the
	 * right one must still hold LEAF_MIN, invariant 3). */
	if (pos == LEAF_MAX && lf->next == NULL)
		keep = LEAF_MAX - LEAF_MIN;
	right->h.leaf = 1;
	memcpy(right->items, &lf->items[keep],
	    (LEAF_MAX - keep) * sizeof(lf->items[0]));
	right->h.n = (uint16_t)(LEAF_MAX - keep);
	lf->h.n = (uint16_t)keep;
	/* Slices are recomputed below: both halves may share more now. */
	if (pos <= keep)
		put_item(lf, pos, rec);
	else
		put_item(right, pos - keep, rec);
	refresh(&lf->h);
	refresh(&right->h);
	right->next = lf->next;
	lf->next = right;
	return right->items[0];
}

/*
 * Split full @in while inserting @sep/@child after child @c; @right
 * receives the upper half.  Returns the separator that moves up.
 */
static struct kv_rec *split_inner(struct inner *in, struct inner *right,
    unsigned c, struct kv_rec *sep, struct node *child)
{
	struct kv_rec *seps[INNER_MAX];
	struct node *kids[INNER_MAX + 1];
	unsigned total = INNER_MAX + 1, left = total / 2;

	memcpy(seps, in->sep, c * sizeof(seps[0]));
	seps[c] = sep;
	memcpy(&seps[c + 1], &in->sep[c],
	    (INNER_MAX - 1 - c) * sizeof(seps[0]));
	memcpy(kids, in->child, (c + 1) * sizeof(kids[0]));
	kids[c + 1] = child;
	memcpy(&kids[c + 2], &in->child[c + 1],
	    (INNER_MAX - c - 1) * sizeof(kids[0]));

	memcpy(in->child, kids, left * sizeof(kids[0]));
	memcpy(in->sep, seps, (left - 1) * sizeof(seps[0]));
	in->h.n = (uint16_t)left;
	right->h.leaf = 0;
	memcpy(right->child, &kids[left], (total - left) * sizeof(kids[0]));
	memcpy(right->sep, &seps[left], (total - left - 1) * sizeof(seps[0]));
	right->h.n = (uint16_t)(total - left);
	refresh(&in->h);
	refresh(&right->h);
	return seps[left - 1];
}

static int insert_first(struct keyspace *ks, struct kv_rec *rec)
{
	struct leaf *lf = calloc(1, sizeof(*lf));

	if (lf == NULL)
		return -ENOMEM;
	lf->h.leaf = 1;
	lf->h.n = 1;
	lf->items[0] = rec;
	refresh(&lf->h);
	ks->root = &lf->h;
	ks->first = lf;
	ks->height = 1;
	ks->nleaves = 1;
	ks->count = 1;
	return 0;
}

int keyspace_insert(struct keyspace *ks, struct kv_rec *rec)
{
	struct step path[DEPTH_MAX];
	struct inner *spare[DEPTH_MAX + 1];
	struct leaf *lf, *right;
	struct kv_rec *sep;
	struct node *child;
	unsigned depth, pos, d, nspare = 0, used = 0;
	bool found;

	if (ks->root == NULL)
		return insert_first(ks, rec);
	lf = descend(ks, rec->key, rec->keylen, path, &depth);
	pos = leaf_lower_bound(lf, rec->key, rec->keylen, &found);
	if (found)
		return -EEXIST;
	if (lf->h.n < LEAF_MAX) {
		leaf_insert_at(lf, pos, rec);
		ks->count++;
		return 0;
	}

	/* Allocate everything the split needs before touching the tree. */
	for (d = depth; d > 0 && path[d - 1].node->h.n == INNER_MAX; d--)
		nspare++;
	if (d == 0)
		nspare++; /* a new root */
	right = calloc(1, sizeof(*right));
	for (unsigned i = 0; right != NULL && i < nspare; i++) {
		spare[i] = calloc(1, sizeof(struct inner));
		if (spare[i] == NULL) {
			while (i > 0)
				free(spare[--i]);
			free(right);
			right = NULL;
		}
	}
	if (right == NULL)
		return -ENOMEM;

	sep = split_leaf(lf, right, pos, rec);
	child = &right->h;
	ks->nleaves++;
	for (d = depth; d > 0; d--) {
		struct inner *in = path[d - 1].node;

		if (in->h.n < INNER_MAX) {
			inner_insert_at(in, path[d - 1].c, sep, child);
			break;
		}
		sep = split_inner(in, spare[used], path[d - 1].c, sep, child);
		child = &spare[used++]->h;
		ks->ninners++;
	}
	if (d == 0) {
		struct inner *root = spare[used++];

		root->h.leaf = 0;
		root->h.n = 2;
		root->child[0] = ks->root;
		root->child[1] = child;
		root->sep[0] = sep;
		refresh(&root->h);
		ks->root = &root->h;
		ks->height++;
		ks->ninners++;
	}
	assert(used == nspare);
	ks->count++;
	return 0;
}

/* ------------------------------------------------------------------------
 * Removal
 * ------------------------------------------------------------------------ */

/* Remove separator @i and child @i+1 of @p. */
static void inner_remove_right(struct inner *p, unsigned i)
{
	unsigned nsep = p->h.n - 1u;

	memmove(&p->sep[i], &p->sep[i + 1], (nsep - i - 1) * sizeof(p->sep[0]));
	memmove(&p->slice[i], &p->slice[i + 1],
	    (nsep - i - 1) * sizeof(p->slice[0]));
	memmove(&p->child[i + 1], &p->child[i + 2],
	    (p->h.n - i - 2) * sizeof(p->child[0]));
	p->h.n--;
}

static void merge_leaves(struct keyspace *ks, struct inner *p, unsigned i)
{
	struct leaf *l = (struct leaf *)p->child[i];
	struct leaf *r = (struct leaf *)p->child[i + 1];

	memcpy(&l->items[l->h.n], r->items, r->h.n * sizeof(r->items[0]));
	l->h.n += r->h.n;
	refresh(&l->h);
	l->next = r->next;
	free(r);
	ks->nleaves--;
	inner_remove_right(p, i);
}

/* Child @c of @p, a leaf, is under-full: borrow from a sibling or merge. */
static void fix_leaf(struct keyspace *ks, struct inner *p, unsigned c)
{
	struct leaf *n = (struct leaf *)p->child[c];

	if (c > 0) {
		struct leaf *l = (struct leaf *)p->child[c - 1];

		if (l->h.n <= LEAF_MIN) {
			merge_leaves(ks, p, c - 1);
			return;
		}
		leaf_insert_at(n, 0, l->items[l->h.n - 1]);
		leaf_remove_at(l, l->h.n - 1u);
		set_sep(p, c - 1, n->items[0]);
	} else {
		struct leaf *r = (struct leaf *)p->child[1];

		if (r->h.n <= LEAF_MIN) {
			merge_leaves(ks, p, 0);
			return;
		}
		leaf_insert_at(n, n->h.n, r->items[0]);
		leaf_remove_at(r, 0);
		set_sep(p, 0, r->items[0]);
	}
}

static void merge_inners(struct keyspace *ks, struct inner *p, unsigned i)
{
	struct inner *l = (struct inner *)p->child[i];
	struct inner *r = (struct inner *)p->child[i + 1];

	l->sep[l->h.n - 1] = p->sep[i]; /* the smallest record under r */
	memcpy(&l->sep[l->h.n], r->sep, (r->h.n - 1u) * sizeof(r->sep[0]));
	memcpy(&l->child[l->h.n], r->child, r->h.n * sizeof(r->child[0]));
	l->h.n += r->h.n;
	refresh(&l->h);
	free(r);
	ks->ninners--;
	inner_remove_right(p, i);
}

/* Child @c of @p, an inner node, is under-full. */
static void fix_inner(struct keyspace *ks, struct inner *p, unsigned c)
{
	struct inner *n = (struct inner *)p->child[c];

	if (c > 0) {
		struct inner *l = (struct inner *)p->child[c - 1];

		if (l->h.n <= INNER_MIN) {
			merge_inners(ks, p, c - 1);
			return;
		}
		memmove(&n->sep[1], &n->sep[0],
		    (n->h.n - 1u) * sizeof(n->sep[0]));
		memmove(&n->child[1], &n->child[0],
		    n->h.n * sizeof(n->child[0]));
		n->child[0] = l->child[l->h.n - 1];
		n->sep[0] = p->sep[c - 1];
		n->h.n++;
		refresh(&n->h);
		set_sep(p, c - 1, l->sep[l->h.n - 2]);
		l->h.n--; /* drops l's last separator: invariant 4 holds */
	} else {
		struct inner *r = (struct inner *)p->child[1];

		if (r->h.n <= INNER_MIN) {
			merge_inners(ks, p, 0);
			return;
		}
		n->child[n->h.n] = r->child[0];
		n->sep[n->h.n - 1] = p->sep[0];
		n->h.n++;
		entry_changed(&n->h, n->h.n - 2u);
		set_sep(p, 0, r->sep[0]);
		memmove(&r->sep[0], &r->sep[1],
		    (r->h.n - 2u) * sizeof(r->sep[0]));
		memmove(&r->slice[0], &r->slice[1],
		    (r->h.n - 2u) * sizeof(r->slice[0]));
		memmove(&r->child[0], &r->child[1],
		    (r->h.n - 1u) * sizeof(r->child[0]));
		r->h.n--;
	}
}

struct kv_rec *keyspace_remove(struct keyspace *ks, const void *key,
    size_t keylen)
{
	struct step path[DEPTH_MAX];
	struct kv_rec *rec;
	struct leaf *lf;
	struct node *node;
	unsigned depth, pos, d;
	bool found;

	if (ks->root == NULL)
		return NULL;
	lf = descend(ks, key, keylen, path, &depth);
	pos = leaf_lower_bound(lf, key, keylen, &found);
	if (!found)
		return NULL;
	rec = lf->items[pos];
	leaf_remove_at(lf, pos);
	ks->count--;
	if (depth == 0) {
		if (lf->h.n == 0) {
			free(lf);
			ks->root = NULL;
			ks->first = NULL;
			ks->height = 0;
			ks->nleaves = 0;
		}
		return rec;
	}

	/* The record may be a separator: re-point it (invariant 2). */
	if (pos == 0) {
		for (d = depth; d > 0; d--) {
			if (path[d - 1].c > 0) {
				struct inner *in = path[d - 1].node;

				assert(in->sep[path[d - 1].c - 1] == rec);
				set_sep(in, path[d - 1].c - 1, lf->items[0]);
				break;
			}
		}
	}

	node = &lf->h;
	for (d = depth; d > 0; d--) {
		struct inner *p = path[d - 1].node;

		if (node->n >= (node->leaf ? LEAF_MIN : INNER_MIN))
			break;
		if (node->leaf)
			fix_leaf(ks, p, path[d - 1].c);
		else
			fix_inner(ks, p, path[d - 1].c);
		node = &p->h;
	}
	if (!ks->root->leaf && ks->root->n == 1) {
		struct inner *old = (struct inner *)ks->root;

		ks->root = old->child[0];
		free(old);
		ks->ninners--;
		ks->height--;
	}
	return rec;
}

/* ------------------------------------------------------------------------
 * Iteration
 * ------------------------------------------------------------------------ */

void keyspace_first(const struct keyspace *ks, struct keyspace_iter *it)
{
	it->leaf = ks->first;
	it->idx = 0;
}

void keyspace_seek(const struct keyspace *ks, const void *key, size_t keylen,
    struct keyspace_iter *it)
{
	const struct leaf *lf;
	bool found;

	it->leaf = NULL;
	it->idx = 0;
	if (ks->root == NULL)
		return;
	lf = descend(ks, key, keylen, NULL, NULL);
	it->leaf = lf;
	it->idx = leaf_lower_bound(lf, key, keylen, &found);
	if (it->idx == lf->h.n) {
		it->leaf = lf->next;
		it->idx = 0;
	}
}

struct kv_rec *keyspace_iter_rec(const struct keyspace_iter *it)
{
	const struct leaf *lf = it->leaf;

	if (lf == NULL || it->idx >= lf->h.n)
		return NULL;
	return lf->items[it->idx];
}

void keyspace_iter_next(struct keyspace_iter *it)
{
	const struct leaf *lf = it->leaf;

	if (lf == NULL)
		return;
	if (++it->idx >= lf->h.n) {
		it->leaf = lf->next;
		it->idx = 0;
	}
}

/* ------------------------------------------------------------------------
 * Consistency check (tests)
 * ------------------------------------------------------------------------ */

struct check {
	const struct keyspace *ks;
	const struct leaf *prev_leaf;
	const struct kv_rec *prev_rec;
	size_t count, leaves, inners;
	bool bad;
};

/* Invariant 4 for one node. */
static bool slices_ok(const struct node *node)
{
	uint64_t *sl;
	unsigned m;
	struct kv_rec **e = entries((struct node *)node, &sl, &m);

	for (unsigned i = 0; i < m; i++)
		if (!shares(e[i], e[0], node->lcp) ||
		    sl[i] != rec_slice(e[i], node->lcp))
			return false;
	return true;
}

/* Returns the smallest record of the subtree (NULL if bad). */
static const struct kv_rec *check_node(struct check *ck,
    const struct node *node, unsigned depth, bool is_root)
{
	const struct kv_rec *min = NULL;

	if (node->leaf) {
		const struct leaf *lf = (const struct leaf *)node;

		ck->leaves++;
		if (depth != ck->ks->height - 1 || lf->h.n > LEAF_MAX ||
		    lf->h.n == 0 || (!is_root && lf->h.n < LEAF_MIN) ||
		    !slices_ok(node))
			ck->bad = true;
		if ((ck->prev_leaf == NULL && ck->ks->first != lf) ||
		    (ck->prev_leaf != NULL && ck->prev_leaf->next != lf))
			ck->bad = true;
		ck->prev_leaf = lf;
		for (unsigned i = 0; i < lf->h.n && !ck->bad; i++) {
			const struct kv_rec *r = lf->items[i];

			if (ck->prev_rec != NULL &&
			    keyspace_keycmp(ck->prev_rec->key,
			        ck->prev_rec->keylen, r->key, r->keylen) >= 0)
				ck->bad = true;
			ck->prev_rec = r;
			ck->count++;
		}
		return ck->bad ? NULL : lf->items[0];
	}

	const struct inner *in = (const struct inner *)node;

	ck->inners++;
	if (in->h.n > INNER_MAX || in->h.n < 2 ||
	    (!is_root && in->h.n < INNER_MIN) || !slices_ok(node)) {
		ck->bad = true;
		return NULL;
	}
	for (unsigned i = 0; i < in->h.n && !ck->bad; i++) {
		const struct kv_rec *m = check_node(ck, in->child[i], depth + 1,
		    false);

		if (i == 0)
			min = m;
		else if (m != in->sep[i - 1])
			ck->bad = true;
	}
	return ck->bad ? NULL : min;
}

int keyspace_check(const struct keyspace *ks)
{
	struct check ck = { .ks = ks };

	if (ks->root == NULL)
		return ks->count == 0 && ks->height == 0 && ks->first == NULL &&
		        ks->nleaves == 0 && ks->ninners == 0
		    ? 0
		    : -EFAULT;
	check_node(&ck, ks->root, 0, true);
	if (ck.bad || ck.prev_leaf->next != NULL || ck.count != ks->count ||
	    ck.leaves != ks->nleaves || ck.inners != ks->ninners)
		return -EFAULT;
	return 0;
}
