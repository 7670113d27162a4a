/*
 * num.h - the one strict number parser for command lines, config and
 * cluster files, and numbers read back from the store.
 *
 * Strict means: the whole string is the number.  No sign, no leading or
 * trailing white space, no empty string, no "0x" unless the base asks for
 * it, and a value outside [min, max] is refused rather than clamped or
 * wrapped (strtoull's "-1" = 2^64-1 and "4294967296" cast to 0 are the
 * mistakes this replaces).
 */
#ifndef RAFTKV_UTIL_NUM_H
#define RAFTKV_UTIL_NUM_H

#include <stdint.h>

/*
 * Parse @s as an unsigned number in @base (10 or 16; base 16 takes an
 * optional "0x"/"0X" prefix) into *@out.
 * Returns 0; -EINVAL if @s is NULL, empty or not entirely digits of the
 * base; -ERANGE if the value is outside [@min, @max] or above 2^64-1.
 * *@out is written only on success.
 */
int num_parse_u64(const char *s, int base, uint64_t min, uint64_t max,
    uint64_t *out);

/* num_parse_u64 in base 10 into an unsigned int (max at most UINT_MAX). */
int num_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);

#endif
