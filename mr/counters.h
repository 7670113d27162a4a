/*
 * counters.h - named 64-bit counters of an attempt or of a job, and their
 * text form "name\tvalue\n" (how they ride on a DONE message).
 */
#ifndef RAFTKV_MR_COUNTERS_H
#define RAFTKV_MR_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

#define COUNTERS_MAX 64 /* distinct names kept; more are dropped */
#define COUNTERS_NAME_MAX 63

struct counters {
	size_t n;
	char name[COUNTERS_MAX][COUNTERS_NAME_MAX + 1];
	int64_t val[COUNTERS_MAX];
};

void counters_add(struct counters *c, const char *name, int64_t delta);
int64_t counters_get(const struct counters *c, const char *name);
/* Add every counter of @from into @to. */
void counters_merge(struct counters *to, const struct counters *from);
/* Text form into @buf (truncated to whole lines); returns its length. */
size_t counters_format(const struct counters *c, char *buf, size_t size);
/* Parse the text form (adds to @c).  Returns 0 or -EBADMSG. */
int counters_parse(struct counters *c, const char *s, size_t len);

#endif
