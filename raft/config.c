/*
 * config.c - configurations and membership-change entries: quorum math,
 * one-member changes, the entry codec.  The design, the choice of
 * single-server changes and the invariants are in config.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raft/config.h"
#include "raft/le.h"

#define CONF_VERSION 1u
#define CONF_FIXED 16u /* version, type, id, n_voters, n_learners, ctx_len */

static int find(const raft_id *ids, uint32_t n, raft_id id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return (int)i;
	return -1;
}

int config_member_index(const struct raft_conf *c, raft_id id)
{
	int i = find(c->voters, c->n_voters, id);

	if (i >= 0)
		return i;
	i = find(c->learners, c->n_learners, id);
	return i < 0 ? -1 : (int)c->n_voters + i;
}

bool config_is_voter(const struct raft_conf *c, raft_id id)
{
	return id != 0 && find(c->voters, c->n_voters, id) >= 0;
}

bool config_is_learner(const struct raft_conf *c, raft_id id)
{
	return id != 0 && find(c->learners, c->n_learners, id) >= 0;
}

int config_check(const struct raft_conf *c)
{
	uint32_t n = c->n_voters + c->n_learners;

	if (c->n_voters == 0 || c->n_voters > RAFT_MAX_MEMBERS ||
	    c->n_learners > RAFT_MAX_MEMBERS || n > RAFT_MAX_MEMBERS)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		raft_id id = config_member_id(c, i);

		if (id == 0)
			return -EINVAL;
		for (uint32_t j = 0; j < i; j++)
			if (config_member_id(c, j) == id)
				return -EINVAL;
	}
	return 0;
}

bool config_equal(const struct raft_conf *a, const struct raft_conf *b)
{
	return a->n_voters == b->n_voters && a->n_learners == b->n_learners &&
	    memcmp(a->voters, b->voters, a->n_voters * sizeof(raft_id)) == 0 &&
	    memcmp(a->learners, b->learners, a->n_learners * sizeof(raft_id)) ==
	    0;
}

uint32_t config_voter_diff(const struct raft_conf *a, const struct raft_conf *b)
{
	uint32_t d = 0;

	for (uint32_t i = 0; i < a->n_voters; i++)
		d += !config_is_voter(b, a->voters[i]);
	for (uint32_t i = 0; i < b->n_voters; i++)
		d += !config_is_voter(a, b->voters[i]);
	return d;
}

static void drop_at(raft_id *ids, uint32_t *n, int i)
{
	memmove(&ids[i], &ids[i + 1], (*n - (uint32_t)i - 1) * sizeof(*ids));
	(*n)--;
}

int config_apply(const struct raft_conf *c, int type, raft_id id,
    struct raft_conf *out)
{
	struct raft_conf n = *c;
	int v = find(n.voters, n.n_voters, id);
	int l = find(n.learners, n.n_learners, id);

	if (id == 0)
		return -EINVAL;
	switch (type) {
	case RAFT_CONF_ADD_LEARNER:
		if (v >= 0 || l >= 0)
			return -EEXIST;
		if (config_n_members(&n) >= RAFT_MAX_MEMBERS)
			return -ENOSPC;
		n.learners[n.n_learners++] = id;
		break;
	case RAFT_CONF_PROMOTE:
		if (v >= 0)
			return -EEXIST;
		if (l < 0)
			return -ENOENT;
		drop_at(n.learners, &n.n_learners, l);
		n.voters[n.n_voters++] = id;
		break;
	case RAFT_CONF_REMOVE:
		if (v >= 0) {
			if (n.n_voters == 1)
				return RAFT_ELASTVOTER;
			drop_at(n.voters, &n.n_voters, v);
		} else if (l >= 0) {
			drop_at(n.learners, &n.n_learners, l);
		} else {
			return -ENOENT;
		}
		break;
	default:
		return -EINVAL;
	}
	*out = n;
	return 0;
}

void config_from_meta(const struct raft_snapshot_meta *m, struct raft_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->n_voters = m->n_voters;
	memcpy(c->voters, m->voters, m->n_voters * sizeof(raft_id));
	c->n_learners = m->n_learners;
	memcpy(c->learners, m->learners, m->n_learners * sizeof(raft_id));
}

void config_to_meta(const struct raft_conf *c, struct raft_snapshot_meta *m)
{
	m->n_voters = c->n_voters;
	memset(m->voters, 0, sizeof(m->voters));
	memcpy(m->voters, c->voters, c->n_voters * sizeof(raft_id));
	m->n_learners = c->n_learners;
	memset(m->learners, 0, sizeof(m->learners));
	memcpy(m->learners, c->learners, c->n_learners * sizeof(raft_id));
}

int config_encode(int type, raft_id id, const struct raft_conf *c,
    const void *ctx, uint32_t ctx_len, uint8_t **out, uint32_t *len)
{
	uint32_t n = config_n_members(c);
	uint32_t size = CONF_FIXED + 8 * n + ctx_len;
	uint8_t *b, *p;

	if (ctx_len > CONFIG_MAX_CTX || (ctx_len > 0 && ctx == NULL))
		return -EINVAL;
	b = malloc(size);
	if (b == NULL)
		return -ENOMEM;
	p = b;
	*p++ = CONF_VERSION;
	*p++ = (uint8_t)type;
	le_put64(p, id);
	p += 8;
	*p++ = (uint8_t)c->n_voters;
	*p++ = (uint8_t)c->n_learners;
	for (uint32_t i = 0; i < n; i++, p += 8)
		le_put64(p, config_member_id(c, i));
	le_put32(p, ctx_len);
	p += 4;
	if (ctx_len > 0)
		memcpy(p, ctx, ctx_len);
	*out = b;
	*len = size;
	return 0;
}

/* Is @c what change @type of @id leaves? */
static bool change_consistent(const struct raft_conf *c, uint8_t type,
    raft_id id)
{
	switch (type) {
	case RAFT_CONF_ADD_LEARNER:
		return config_is_learner(c, id);
	case RAFT_CONF_PROMOTE:
		return config_is_voter(c, id);
	case RAFT_CONF_REMOVE:
		return config_member_index(c, id) < 0;
	}
	return false;
}

int raft_conf_change_decode(const struct raft_entry *e,
    struct raft_conf_change *out)
{
	const uint8_t *p = e->data;
	uint32_t left = e->len, n;

	memset(out, 0, sizeof(*out));
	if (e->type != RAFT_ENTRY_CONF || p == NULL || left < CONF_FIXED ||
	    p[0] != CONF_VERSION)
		return RAFT_EMALFORMED;
	out->type = p[1];
	out->id = le_get64(p + 2);
	out->conf.n_voters = p[10];
	out->conf.n_learners = p[11];
	n = out->conf.n_voters + out->conf.n_learners;
	if (out->conf.n_voters > RAFT_MAX_MEMBERS ||
	    out->conf.n_learners > RAFT_MAX_MEMBERS || n > RAFT_MAX_MEMBERS)
		return RAFT_EMALFORMED;
	p += 12;
	left -= 12;
	if (left < 8 * n + 4)
		return RAFT_EMALFORMED;
	for (uint32_t i = 0; i < n; i++, p += 8) {
		if (i < out->conf.n_voters)
			out->conf.voters[i] = le_get64(p);
		else
			out->conf.learners[i - out->conf.n_voters] = le_get64(
			    p);
	}
	left -= 8 * n;
	out->ctx_len = le_get32(p);
	p += 4;
	left -= 4;
	if (out->ctx_len != left || out->ctx_len > CONFIG_MAX_CTX ||
	    out->id == 0 || config_check(&out->conf) != 0 ||
	    !change_consistent(&out->conf, out->type, out->id)) {
		memset(out, 0, sizeof(*out));
		return RAFT_EMALFORMED;
	}
	out->ctx = left > 0 ? p : NULL;
	return 0;
}
