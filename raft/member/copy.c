/*
 * copy.c - copies out of a raft_ready batch (see copy.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raft/member/copy.h"

int copy_entries(const struct raft_entry *src, uint32_t count,
    struct raft_entry **out, uint8_t **blob)
{
	size_t total = 0, off = 0;

	*out = NULL;
	*blob = NULL;
	if (count == 0)
		return 0;
	for (uint32_t i = 0; i < count; i++)
		total += src[i].len;
	*out = malloc(count * sizeof(**out));
	*blob = malloc(total ? total : 1);
	if (*out == NULL || *blob == NULL) {
		free(*out);
		free(*blob);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < count; i++) {
		(*out)[i] = src[i];
		(*out)[i].data = src[i].len ? *blob + off : NULL;
		if (src[i].len)
			memcpy(*blob + off, src[i].data, src[i].len);
		off += src[i].len;
	}
	return 0;
}
