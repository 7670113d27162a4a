/*
 * session.c - the at-most-once table: a slot array, an LRU list through
 * it, and an open-addressing hash from client id to slot.
 *
 * Slots live in one array (struct session, 56 bytes) linked into a doubly
 * linked LRU list by 32-bit indexes; free slots form a singly linked list
 * through the same `next` field.  The hash (linear probing, slot index + 1
 * per entry, 0 = empty, deletion by backward shift so no tombstones) is
 * kept at most half full.  Both arrays only grow, by doubling (the slots up
 * to the capacity), and only inside session_register()/session_restore(),
 * which allocate before changing anything: every other operation is
 * allocation-free and cannot fail.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv/session.h"

#define NIL UINT32_MAX
#define FAIL_NONE UINT32_MAX
#define MIN_SLOTS 16u

struct session {
	uint64_t client; /* 0: a free slot */
	uint64_t seq;
	int64_t time_ns;
	uint64_t version;
	uint64_t inode;
	uint32_t prev; /* LRU: towards the oldest */
	uint32_t next; /* LRU: towards the newest; free list */
	uint32_t fail; /* FAIL_NONE, cmp index, or op index | FAIL_OP */
	uint8_t status;
};

#define FAIL_OP 0x80000000u

struct session_table {
	struct session *s;
	uint32_t cap; /* slots allocated */
	uint32_t used; /* slots ever handed out (high-water mark) */
	uint32_t count; /* live sessions */
	uint32_t free_head;
	uint32_t oldest;
	uint32_t newest;
	uint32_t *hash; /* slot index + 1, 0 = empty */
	uint32_t nhash; /* power of two */
	uint64_t next_id;
	uint32_t max;
	int64_t ttl_ns;
	void (*evicted)(void *arg, uint64_t client); /* not state */
	void *evicted_arg;
};

/* splitmix64's finaliser: ids are sequential, the hash must scatter them. */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

struct session_table *session_table_new(uint32_t max, int64_t ttl_ns)
{
	struct session_table *st;

	assert(max >= 1 && max < NIL && ttl_ns >= 0);
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NULL;
	st->free_head = NIL;
	st->oldest = NIL;
	st->newest = NIL;
	st->next_id = 1;
	st->max = max;
	st->ttl_ns = ttl_ns;
	return st;
}

void session_table_free(struct session_table *st)
{
	if (st == NULL)
		return;
	free(st->s);
	free(st->hash);
	free(st);
}

uint32_t session_count(const struct session_table *st)
{
	return st->count;
}

uint64_t session_next_id(const struct session_table *st)
{
	return st->next_id;
}

size_t session_memory(const struct session_table *st)
{
	return sizeof(*st) + (size_t)st->cap * sizeof(struct session) +
	    (size_t)st->nhash * sizeof(uint32_t);
}

/* ------------------------------------------------------------------------
 * Hash
 * ------------------------------------------------------------------------ */

/* Position of @client in the hash, or of the empty slot ending its probe. */
static uint32_t hash_pos(const struct session_table *st, uint64_t client)
{
	uint32_t mask = st->nhash - 1, h = (uint32_t)mix(client) & mask;

	while (st->hash[h] != 0 && st->s[st->hash[h] - 1].client != client)
		h = (h + 1) & mask;
	return h;
}

static uint32_t find(const struct session_table *st, uint64_t client)
{
	if (st->nhash == 0 || client == 0)
		return NIL;
	return st->hash[hash_pos(st, client)] - 1u; /* 0 - 1 == NIL */
}

static void hash_remove(struct session_table *st, uint64_t client)
{
	uint32_t mask = st->nhash - 1, i = hash_pos(st, client), j = i;

	assert(st->hash[i] != 0);
	st->hash[i] = 0;
	for (;;) { /* backward shift: keep every probe chain unbroken */
		uint32_t home;

		j = (j + 1) & mask;
		if (st->hash[j] == 0)
			return;
		home = (uint32_t)mix(st->s[st->hash[j] - 1].client) & mask;
		/* Move j into the hole at i unless its home lies in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			st->hash[i] = st->hash[j];
			st->hash[j] = 0;
			i = j;
		}
	}
}

/* Make room for one more session; changes nothing observable. */
static int reserve_one(struct session_table *st)
{
	if (st->free_head == NIL && st->used == st->cap) {
		uint32_t ncap = st->cap == 0 ? MIN_SLOTS : st->cap * 2;
		struct session *s;

		if (ncap > st->max)
			ncap = st->max;
		if (ncap <= st->cap)
			ncap = st->cap + 1; /* over capacity during restore */
		s = realloc(st->s, (size_t)ncap * sizeof(*s));
		if (s == NULL)
			return -ENOMEM;
		st->s = s;
		st->cap = ncap;
	}
	if ((uint64_t)(st->count + 1) * 2 > st->nhash) {
		uint32_t nh = st->nhash == 0 ? 2 * MIN_SLOTS : st->nhash * 2;
		uint32_t *old = st->hash, oldn = st->nhash;
		uint32_t *h = calloc(nh, sizeof(*h));

		if (h == NULL)
			return -ENOMEM;
		st->hash = h;
		st->nhash = nh;
		for (uint32_t i = 0; i < oldn; i++)
			if (old[i] != 0)
				st->hash[hash_pos(st,
				    st->s[old[i] - 1].client)] = old[i];
		free(old);
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * LRU list
 * ------------------------------------------------------------------------ */

static void lru_unlink(struct session_table *st, uint32_t i)
{
	struct session *s = &st->s[i];

	if (s->prev != NIL)
		st->s[s->prev].next = s->next;
	else
		st->oldest = s->next;
	if (s->next != NIL)
		st->s[s->next].prev = s->prev;
	else
		st->newest = s->prev;
}

static void lru_append(struct session_table *st, uint32_t i)
{
	struct session *s = &st->s[i];

	s->prev = st->newest;
	s->next = NIL;
	if (st->newest != NIL)
		st->s[st->newest].next = i;
	else
		st->oldest = i;
	st->newest = i;
}

static void evict(struct session_table *st, uint32_t i)
{
	uint64_t client = st->s[i].client;

	hash_remove(st, client);
	lru_unlink(st, i);
	st->s[i].client = 0;
	st->s[i].next = st->free_head;
	st->free_head = i;
	st->count--;
	if (st->evicted != NULL)
		st->evicted(st->evicted_arg, client);
}

/* Take a slot (reserve_one() succeeded), fill it, link it as the newest. */
static uint32_t add(struct session_table *st, const struct session *proto)
{
	uint32_t i;

	if (st->free_head != NIL) {
		i = st->free_head;
		st->free_head = st->s[i].next;
	} else {
		i = st->used++;
	}
	st->s[i] = *proto;
	st->hash[hash_pos(st, proto->client)] = i + 1;
	lru_append(st, i);
	st->count++;
	return i;
}

static void touch(struct session_table *st, uint32_t i, int64_t now)
{
	st->s[i].time_ns = now;
	if (st->newest != i) {
		lru_unlink(st, i);
		lru_append(st, i);
	}
}

/* ------------------------------------------------------------------------
 * Operations
 * ------------------------------------------------------------------------ */

int session_register(struct session_table *st, int64_t now, uint64_t *client)
{
	struct session proto = {
		.client = st->next_id,
		.time_ns = now,
		.fail = FAIL_NONE,
	};

	if (st->count >= st->max) {
		evict(st, st->oldest);
	} else {
		int rc = reserve_one(st);

		if (rc != 0)
			return rc;
	}
	add(st, &proto);
	*client = st->next_id++;
	return 0;
}

static bool expired(const struct session_table *st, const struct session *s,
    int64_t now)
{
	return now - s->time_ns > st->ttl_ns;
}

enum session_verdict session_check(const struct session_table *st,
    uint64_t client, uint64_t seq, int64_t now, struct kv_result *dup)
{
	uint32_t i = find(st, client);
	const struct session *s;

	if (i == NIL || expired(st, &st->s[i], now))
		return SESSION_UNKNOWN;
	s = &st->s[i];
	if (seq == 0 || seq < s->seq)
		return SESSION_STALE;
	if (seq > s->seq)
		return SESSION_NEW;
	kv_result_init(dup);
	dup->status = s->status;
	dup->flags = KV_RES_DUP;
	if (s->fail != FAIL_NONE) {
		if (s->fail & FAIL_OP)
			dup->fail_op = s->fail & ~FAIL_OP;
		else
			dup->fail_cmp = s->fail;
	}
	dup->attr.version = s->version;
	dup->attr.inode = s->inode;
	return SESSION_DUP;
}

void session_record(struct session_table *st, uint64_t client, uint64_t seq,
    int64_t now, const struct kv_result *res)
{
	uint32_t i = find(st, client);
	struct session *s;

	assert(i != NIL);
	s = &st->s[i];
	s->seq = seq;
	s->status = (uint8_t)res->status;
	s->version = res->attr.version;
	s->inode = res->attr.inode;
	if (res->fail_op != KV_NO_INDEX)
		s->fail = res->fail_op | FAIL_OP;
	else
		s->fail = res->fail_cmp; /* KV_NO_INDEX == FAIL_NONE */
	touch(st, i, now);
}

void session_touch(struct session_table *st, uint64_t client, int64_t now)
{
	uint32_t i = find(st, client);

	assert(i != NIL);
	touch(st, i, now);
}

void session_expire(struct session_table *st, int64_t now)
{
	while (st->oldest != NIL && expired(st, &st->s[st->oldest], now))
		evict(st, st->oldest);
}

int64_t session_time(const struct session_table *st, uint64_t client)
{
	uint32_t i = find(st, client);

	return i == NIL ? INT64_MIN : st->s[i].time_ns;
}

uint64_t session_last_seq(const struct session_table *st, uint64_t client)
{
	uint32_t i = find(st, client);

	return i == NIL ? 0 : st->s[i].seq;
}

void session_shift(struct session_table *st, int64_t delta)
{
	for (uint32_t i = st->oldest; i != NIL; i = st->s[i].next)
		st->s[i].time_ns += delta;
}

void session_set_evict_hook(struct session_table *st,
    void (*fn)(void *arg, uint64_t client), void *arg)
{
	st->evicted = fn;
	st->evicted_arg = arg;
}

void session_trim(struct session_table *st)
{
	while (st->count > st->max)
		evict(st, st->oldest);
}

/* ------------------------------------------------------------------------
 * Snapshot support
 * ------------------------------------------------------------------------ */

uint32_t session_oldest(const struct session_table *st)
{
	return st->oldest;
}

uint32_t session_newer(const struct session_table *st, uint32_t it)
{
	return st->s[it].next;
}

void session_get(const struct session_table *st, uint32_t it,
    struct session_info *info)
{
	const struct session *s = &st->s[it];

	info->client = s->client;
	info->seq = s->seq;
	info->time_ns = s->time_ns;
	info->status = s->status;
	info->fail_cmp = KV_NO_INDEX;
	info->fail_op = KV_NO_INDEX;
	if (s->fail != FAIL_NONE) {
		if (s->fail & FAIL_OP)
			info->fail_op = s->fail & ~FAIL_OP;
		else
			info->fail_cmp = s->fail;
	}
	info->version = s->version;
	info->inode = s->inode;
}

void session_set_next_id(struct session_table *st, uint64_t next_id)
{
	st->next_id = next_id;
}

int session_restore(struct session_table *st, const struct session_info *info)
{
	struct session proto = {
		.client = info->client,
		.seq = info->seq,
		.time_ns = info->time_ns,
		.version = info->version,
		.inode = info->inode,
		.status = info->status,
		.fail = FAIL_NONE,
	};
	int rc;

	if (info->client == 0 || info->client >= st->next_id ||
	    info->status >= KV_STATUS_COUNT || info->time_ns < 0 ||
	    (st->newest != NIL && info->time_ns < st->s[st->newest].time_ns) ||
	    find(st, info->client) != NIL)
		return -EBADMSG;
	if (info->fail_cmp != KV_NO_INDEX && info->fail_op != KV_NO_INDEX)
		return -EBADMSG;
	if (info->fail_cmp != KV_NO_INDEX) {
		if (info->fail_cmp >= KV_TXN_MAX)
			return -EBADMSG;
		proto.fail = info->fail_cmp;
	} else if (info->fail_op != KV_NO_INDEX) {
		if (info->fail_op >= KV_TXN_MAX)
			return -EBADMSG;
		proto.fail = info->fail_op | FAIL_OP;
	}
	if (st->count == NIL - 1)
		return -EBADMSG;
	rc = reserve_one(st);
	if (rc != 0)
		return rc;
	add(st, &proto);
	return 0;
}
