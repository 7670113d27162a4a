/*
 * memberdir_gone.c - the removed members' ids and keys and their codec
 * (see memberdir_gone.h).  Pure: libc only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raft/le.h"
#include "raft/memberdir_gone.h"

#define GONE_VERSION 1
#define GONE_KEY_LEN (MEMBERDIR_KEY_MAX - 1)

bool memberdir_gone_has_id(const struct memberdir_gone *g, raft_id id)
{
	for (uint32_t i = 0; i < g->n_ids; i++)
		if (g->ids[i] == id)
			return true;
	return false;
}

bool memberdir_gone_has_key(const struct memberdir_gone *g, const char *key)
{
	for (uint32_t i = 0; key[0] != '\0' && i < g->n_keys; i++)
		if (strcmp(g->keys[i], key) == 0)
			return true;
	return false;
}

int memberdir_gone_add_id(struct memberdir_gone *g, raft_id id)
{
	if (id == 0 || memberdir_gone_has_id(g, id))
		return 0;
	if (g->n_ids == MEMBERDIR_GONE_MAX)
		return -ENOSPC;
	g->ids[g->n_ids++] = id;
	return 0;
}

void memberdir_gone_del_id(struct memberdir_gone *g, raft_id id)
{
	for (uint32_t i = 0; i < g->n_ids; i++)
		if (g->ids[i] == id) {
			memmove(&g->ids[i], &g->ids[i + 1],
			    (g->n_ids - i - 1) * sizeof(g->ids[0]));
			g->ids[--g->n_ids] = 0;
			return;
		}
}

int memberdir_gone_add_key(struct memberdir_gone *g, const char *key)
{
	if (!memberdir_key_ok(key) || memberdir_gone_has_key(g, key))
		return 0;
	if (g->n_keys == MEMBERDIR_GONE_MAX)
		return -ENOSPC;
	memcpy(g->keys[g->n_keys++], key, MEMBERDIR_KEY_MAX);
	return 0;
}

bool memberdir_gone_room(const struct memberdir_gone *g, raft_id id,
    const char *key)
{
	if (id != 0 && !memberdir_gone_has_id(g, id) &&
	    g->n_ids == MEMBERDIR_GONE_MAX)
		return false;
	return !memberdir_key_ok(key) || memberdir_gone_has_key(g, key) ||
	    g->n_keys < MEMBERDIR_GONE_MAX;
}

int memberdir_gone_merge(struct memberdir_gone *dst,
    const struct memberdir_gone *src)
{
	int rv = 0;

	for (uint32_t i = 0; i < src->n_ids; i++)
		if (memberdir_gone_add_id(dst, src->ids[i]) != 0)
			rv = -ENOSPC;
	for (uint32_t i = 0; i < src->n_keys; i++)
		if (memberdir_gone_add_key(dst, src->keys[i]) != 0)
			rv = -ENOSPC;
	return rv;
}

bool memberdir_gone_empty(const struct memberdir_gone *g)
{
	return g->n_ids == 0 && g->n_keys == 0;
}

int memberdir_gone_encode(const struct memberdir_gone *g, uint8_t **out,
    uint32_t *len)
{
	uint8_t *buf = malloc(
	    5 + 8 * (size_t)g->n_ids + GONE_KEY_LEN * (size_t)g->n_keys);
	uint8_t *p = buf;

	if (buf == NULL)
		return -ENOMEM;
	*p++ = GONE_VERSION;
	le_put16(p, (uint16_t)g->n_ids);
	p += 2;
	for (uint32_t i = 0; i < g->n_ids; i++, p += 8)
		le_put64(p, g->ids[i]);
	le_put16(p, (uint16_t)g->n_keys);
	p += 2;
	for (uint32_t i = 0; i < g->n_keys; i++, p += GONE_KEY_LEN)
		memcpy(p, g->keys[i], GONE_KEY_LEN);
	*out = buf;
	*len = (uint32_t)(p - buf);
	return 0;
}

int memberdir_gone_decode(const uint8_t *buf, size_t len,
    struct memberdir_gone *g)
{
	const uint8_t *p = buf, *end = buf + len;
	uint32_t n;

	memset(g, 0, sizeof(*g));
	if (len < 5 || buf[0] != GONE_VERSION)
		return -EINVAL;
	n = le_get16(buf + 1);
	p += 3;
	if (n > MEMBERDIR_GONE_MAX || (size_t)(end - p) < 8 * (size_t)n + 2)
		goto bad;
	for (uint32_t i = 0; i < n; i++, p += 8) {
		raft_id id = le_get64(p);

		if (id == 0 || memberdir_gone_has_id(g, id))
			goto bad;
		g->ids[g->n_ids++] = id;
	}
	n = le_get16(p);
	p += 2;
	if (n > MEMBERDIR_GONE_MAX ||
	    (size_t)(end - p) != GONE_KEY_LEN * (size_t)n)
		goto bad;
	for (uint32_t i = 0; i < n; i++, p += GONE_KEY_LEN) {
		char k[MEMBERDIR_KEY_MAX];

		memcpy(k, p, GONE_KEY_LEN);
		k[GONE_KEY_LEN] = '\0';
		if (!memberdir_key_ok(k) || memberdir_gone_has_key(g, k))
			goto bad;
		memcpy(g->keys[g->n_keys++], k, MEMBERDIR_KEY_MAX);
	}
	return 0;
bad:
	memset(g, 0, sizeof(*g));
	return -EINVAL;
}
