/*
 * words.h - the lab's word splitter for the C apps: maximal runs of ASCII
 * letters (Go's unicode.IsLetter on the lab's pure-ASCII texts), so the
 * result does not depend on the locale.  Header only, shared by wc.c and
 * indexer.c.
 */
#ifndef RAFTKV_MR_APPS_WORDS_H
#define RAFTKV_MR_APPS_WORDS_H

#include <stddef.h>

static inline int words_letter(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Next word at or after *pos in @data: its start, length in *len; NULL at the end. */
static inline const char *words_next(const char *data, size_t n, size_t *pos,
    size_t *len)
{
	size_t i = *pos, s;

	while (i < n && !words_letter(data[i]))
		i++;
	if (i == n)
		return NULL;
	s = i;
	while (i < n && words_letter(data[i]))
		i++;
	*pos = i;
	*len = i - s;
	return data + s;
}

#endif
