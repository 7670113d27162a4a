/*
 * rlog.c - the in-memory Raft log (see rlog.h for the layout and invariant).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raft/rlog.h"

void rlog_init(struct rlog *l)
{
	memset(l, 0, sizeof(*l));
}

static void free_range(struct rlog *l, uint64_t from, uint64_t to)
{
	for (uint64_t i = from; i < to; i++)
		free(l->entries[i].data);
}

void rlog_close(struct rlog *l)
{
	free_range(l, 0, l->n);
	free(l->entries);
	memset(l, 0, sizeof(*l));
}

raft_term rlog_last_term(const struct rlog *l)
{
	return l->n ? l->entries[l->n - 1].term : l->snap_term;
}

int rlog_term(const struct rlog *l, raft_index index, raft_term *term)
{
	if (index < l->snap_index)
		return RAFT_ESTALE;
	if (index == l->snap_index) {
		*term = l->snap_term;
		return 0;
	}
	if (index > rlog_last_index(l))
		return -ERANGE;
	*term = l->entries[index - l->snap_index - 1].term;
	return 0;
}

raft_term rlog_term_or_zero(const struct rlog *l, raft_index index)
{
	raft_term t;

	return rlog_term(l, index, &t) == 0 ? t : 0;
}

struct raft_entry *rlog_get(const struct rlog *l, raft_index index)
{
	if (index <= l->snap_index || index > rlog_last_index(l))
		return NULL;
	return &l->entries[index - l->snap_index - 1];
}

static int reserve(struct rlog *l, uint64_t want)
{
	struct raft_entry *p;
	uint64_t cap;

	if (want <= l->cap)
		return 0;
	cap = l->cap ? l->cap * 2 : 64;
	while (cap < want)
		cap *= 2;
	p = realloc(l->entries, cap * sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	l->entries = p;
	l->cap = cap;
	return 0;
}

int rlog_append_owned(struct rlog *l, const struct raft_entry *e)
{
	int rv = reserve(l, l->n + 1);

	if (rv != 0)
		return rv;
	l->entries[l->n] = *e;
	l->entries[l->n].index = rlog_last_index(l) + 1;
	l->n++;
	return 0;
}

int rlog_append_copy(struct rlog *l, const struct raft_entry *e)
{
	struct raft_entry c = *e;
	int rv;

	c.data = NULL;
	if (e->len > 0) {
		c.data = malloc(e->len);
		if (c.data == NULL)
			return -ENOMEM;
		memcpy(c.data, e->data, e->len);
	}
	rv = rlog_append_owned(l, &c);
	if (rv != 0)
		free(c.data);
	return rv;
}

void rlog_truncate_from(struct rlog *l, raft_index index)
{
	uint64_t keep;

	if (index > rlog_last_index(l))
		return;
	keep = index <= l->snap_index ? 0 : index - l->snap_index - 1;
	free_range(l, keep, l->n);
	l->n = keep;
}

void rlog_compact(struct rlog *l, raft_index index, raft_term term)
{
	uint64_t drop;

	if (index <= l->snap_index)
		return;
	if (index >= rlog_last_index(l)) {
		rlog_reset(l, index, term);
		return;
	}
	drop = index - l->snap_index;
	free_range(l, 0, drop);
	memmove(l->entries, l->entries + drop,
	    (l->n - drop) * sizeof(*l->entries));
	l->n -= drop;
	l->snap_index = index;
	l->snap_term = term;
}

void rlog_reset(struct rlog *l, raft_index index, raft_term term)
{
	free_range(l, 0, l->n);
	l->n = 0;
	l->snap_index = index;
	l->snap_term = term;
}

raft_index rlog_find_conflict_by_term(const struct rlog *l, raft_index index,
    raft_term term)
{
	if (index > rlog_last_index(l))
		index = rlog_last_index(l);
	while (index > l->snap_index &&
	    l->entries[index - l->snap_index - 1].term > term)
		index--;
	return index;
}

uint64_t rlog_payload_bytes(const struct rlog *l, raft_index from,
    raft_index to)
{
	uint64_t sum = 0;

	if (from < l->snap_index)
		from = l->snap_index;
	if (to > rlog_last_index(l))
		to = rlog_last_index(l);
	for (raft_index i = from + 1; i <= to; i++)
		sum += l->entries[i - l->snap_index - 1].len;
	return sum;
}
