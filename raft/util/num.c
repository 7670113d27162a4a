/*
 * num.c - strict unsigned number parsing (see num.h).
 */
#include <errno.h>
#include <stddef.h>

#include "raft/util/num.h"

static int digit(char c, int base)
{
	int d;

	if (c >= '0' && c <= '9')
		d = c - '0';
	else if (c >= 'a' && c <= 'f')
		d = c - 'a' + 10;
	else if (c >= 'A' && c <= 'F')
		d = c - 'A' + 10;
	else
		return -1;
	return d < base ? d : -1;
}

int num_parse_u64(const char *s, int base, uint64_t min, uint64_t max,
    uint64_t *out)
{
	uint64_t v = 0;
	int overflow = 0;

	if (s == NULL || (base != 10 && base != 16))
		return -EINVAL;
	if (base == 16 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	if (*s == '\0')
		return -EINVAL;
	for (; *s != '\0'; s++) {
		int d = digit(*s, base);

		if (d < 0)
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			overflow = 1;
		else
			v = v * (uint64_t)base + (uint64_t)d;
	}
	if (overflow || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int num_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	uint64_t v;
	int rv = num_parse_u64(s, 10, min, max, &v);

	if (rv == 0)
		*out = (unsigned)v;
	return rv;
}
