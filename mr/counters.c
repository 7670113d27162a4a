/*
 * counters.c - named counters (see counters.h).
 */
#include "mr/counters.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void counters_add(struct counters *c, const char *name, int64_t delta)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->name[i], name) == 0) {
			c->val[i] += delta;
			return;
		}
	if (c->n == COUNTERS_MAX || name[0] == '\0' ||
	    strlen(name) > COUNTERS_NAME_MAX || strpbrk(name, "\t\n"))
		return;
	strcpy(c->name[c->n], name);
	c->val[c->n++] = delta;
}

int64_t counters_get(const struct counters *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->name[i], name) == 0)
			return c->val[i];
	return 0;
}

void counters_merge(struct counters *to, const struct counters *from)
{
	size_t i;

	for (i = 0; i < from->n; i++)
		counters_add(to, from->name[i], from->val[i]);
}

size_t counters_format(const struct counters *c, char *buf, size_t size)
{
	size_t used = 0, i;

	if (size)
		buf[0] = '\0';
	for (i = 0; i < c->n; i++) {
		int w = snprintf(buf + used, size - used, "%s\t%" PRId64 "\n",
		    c->name[i], c->val[i]);

		if (w < 0 || (size_t)w >= size - used) {
			buf[used] = '\0';
			break;
		}
		used += (size_t)w;
	}
	return used;
}

int counters_parse(struct counters *c, const char *s, size_t len)
{
	const char *end = s + len;

	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *tab = nl ? memchr(s, '\t', (size_t)(nl - s)) : NULL;
		char name[COUNTERS_NAME_MAX + 1], num[24], *e;
		long long v;

		if (tab == NULL || tab == s ||
		    (size_t)(tab - s) > COUNTERS_NAME_MAX || nl - tab - 1 < 1 ||
		    nl - tab - 1 >= (long)sizeof(num))
			return -EBADMSG;
		memcpy(name, s, (size_t)(tab - s));
		name[tab - s] = '\0';
		memcpy(num, tab + 1, (size_t)(nl - tab - 1));
		num[nl - tab - 1] = '\0';
		errno = 0;
		v = strtoll(num, &e, 10);
		if (errno || *e)
			return -EBADMSG;
		counters_add(c, name, v);
		s = nl + 1;
	}
	return 0;
}
