/*
 * memberdir.c - the member directory and its codec (see memberdir.h).
 * Pure: libc only.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "raft/le.h"
#include "raft/memberdir.h"

#define MD_VERSION 1
const struct memberdir_entry *memberdir_find(const struct memberdir *d,
    raft_id id)
{
	for (uint32_t i = 0; i < d->n; i++)
		if (d->m[i].id == id)
			return &d->m[i];
	return NULL;
}

bool memberdir_key_ok(const char *k)
{
	static const char alphabet[] =
	    "0123456789abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
	size_t n = strnlen(k, MEMBERDIR_KEY_MAX);

	if (n != MEMBERDIR_KEY_MAX - 1)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strchr(alphabet, k[i]) == NULL)
			return false;
	return true;
}

static bool is_alnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z');
}

bool memberdir_endpoint_ok(const char *ep)
{
	size_t n = strnlen(ep, MEMBERDIR_EP_MAX);
	const char *host = ep + 6, *colon;
	uint32_t port = 0;
	bool bracket;

	if (n >= MEMBERDIR_EP_MAX || strncmp(ep, "tcp://", 6) != 0)
		return false;
	colon = strrchr(host, ':');
	if (colon == NULL || colon == host || colon[1] == '\0')
		return false;
	/* libzmq refuses a host that does not start with a letter, a digit
	 * or '[' (EINVAL from zmq_connect/zmq_bind). */
	bracket = host[0] == '[';
	if (!is_alnum(host[0]) && !bracket)
		return false;
	if (bracket && (colon - host < 3 || colon[-1] != ']'))
		return false;
	for (const char *p = host; p < colon; p++) {
		bool edge = (p == host && bracket) ||
		    (p == colon - 1 && bracket);

		if (!is_alnum(*p) && !strchr(".-:_", *p) && !edge)
			return false;
		if (!bracket && *p == ':')
			return false;
	}
	for (const char *p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9' || port > 6553)
			return false;
		port = port * 10 + (uint32_t)(*p - '0');
	}
	if (colon[1] == '0' || port < 1 || port > 65535)
		return false;
	return true;
}

static bool entry_ok(const struct memberdir_entry *e)
{
	size_t k = strnlen(e->key, sizeof(e->key));

	return e->id != 0 && memberdir_endpoint_ok(e->peer) &&
	    memberdir_endpoint_ok(e->client) &&
	    (k == 0 || memberdir_key_ok(e->key));
}

int memberdir_put(struct memberdir *d, const struct memberdir_entry *e)
{
	struct memberdir_entry *slot;

	if (!entry_ok(e))
		return -EINVAL;
	slot = (struct memberdir_entry *)memberdir_find(d, e->id);
	if (slot == NULL) {
		if (d->n >= MEMBERDIR_MAX)
			return -ENOSPC;
		slot = &d->m[d->n++];
	}
	*slot = *e;
	return 0;
}

void memberdir_del(struct memberdir *d, raft_id id)
{
	for (uint32_t i = 0; i < d->n; i++)
		if (d->m[i].id == id) {
			d->m[i] = d->m[--d->n];
			return;
		}
}

int memberdir_merge(struct memberdir *d, const struct memberdir *src)
{
	for (uint32_t i = 0; i < src->n; i++) {
		int rv = memberdir_put(d, &src->m[i]);

		if (rv != 0)
			return rv;
	}
	return 0;
}

static uint8_t *put_str(uint8_t *p, const char *s)
{
	size_t n = strlen(s);

	le_put16(p, (uint16_t)n);
	memcpy(p + 2, s, n);
	return p + 2 + n;
}

int memberdir_encode(const struct memberdir *d, uint8_t **out, uint32_t *len)
{
	size_t cap = 2;
	uint8_t *buf, *p;

	for (uint32_t i = 0; i < d->n; i++)
		cap += 8 + 6 + strlen(d->m[i].peer) + strlen(d->m[i].client) +
		    strlen(d->m[i].key);
	buf = malloc(cap);
	if (buf == NULL)
		return -ENOMEM;
	p = buf;
	*p++ = MD_VERSION;
	*p++ = (uint8_t)d->n;
	for (uint32_t i = 0; i < d->n; i++) {
		le_put64(p, d->m[i].id);
		p = put_str(p + 8, d->m[i].peer);
		p = put_str(p, d->m[i].client);
		p = put_str(p, d->m[i].key);
	}
	*out = buf;
	*len = (uint32_t)(p - buf);
	return 0;
}

/* One length-prefixed string into @s (capacity @cap, NUL added). */
static int get_str(const uint8_t **p, const uint8_t *end, char *s, size_t cap)
{
	size_t n;

	if (end - *p < 2)
		return -EINVAL;
	n = le_get16(*p);
	*p += 2;
	if (n >= cap || (size_t)(end - *p) < n || memchr(*p, 0, n) != NULL)
		return -EINVAL;
	memcpy(s, *p, n);
	s[n] = '\0';
	*p += n;
	return 0;
}

int memberdir_decode(const uint8_t *buf, size_t len, struct memberdir *d)
{
	const uint8_t *p = buf, *end = buf + len;
	uint32_t n;

	memset(d, 0, sizeof(*d));
	if (len < 2 || buf[0] != MD_VERSION || buf[1] > MEMBERDIR_MAX)
		return -EINVAL;
	n = buf[1];
	p += 2;
	for (uint32_t i = 0; i < n; i++) {
		struct memberdir_entry e = { 0 };

		if (end - p < 8)
			return -EINVAL;
		e.id = le_get64(p);
		p += 8;
		if (get_str(&p, end, e.peer, sizeof(e.peer)) ||
		    get_str(&p, end, e.client, sizeof(e.client)) ||
		    get_str(&p, end, e.key, sizeof(e.key)) || !entry_ok(&e) ||
		    memberdir_find(d, e.id) != NULL)
			return -EINVAL;
		d->m[d->n++] = e;
	}
	return p == end ? 0 : -EINVAL;
}
