/*
 * split.h - cutting the job's inputs into map tasks.
 *
 * One map task per input file, as in the lab; a file larger than the split
 * size (64 MiB by default) is cut into several tasks, each ending just
 * after a newline (or at the end of the file), so no line is ever split
 * between two maps.  The sequential runner cuts the same way, so the two
 * agree even for apps whose output depends on the task boundaries
 * (indexer emits a document once per map).
 */
#ifndef RAFTKV_MR_SPLIT_H
#define RAFTKV_MR_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#define SPLIT_DEFAULT_SIZE (64ull << 20)

struct split {
	const char *name; /* borrowed from the caller's argv */
	uint64_t off, len;
};

/*
 * Cut @n inputs into splits of at most about @size bytes.  On success
 * returns 0 and a malloc'd array in @out (caller frees).  Returns -errno
 * with one line in @err (naming the file) if an input cannot be opened or
 * is not a regular file.
 */
int split_inputs(char *const *names, size_t n, uint64_t size,
    struct split **out, size_t *nout, char *err, size_t errlen);

/*
 * Read split @s into a malloc'd buffer (NUL-terminated, caller frees).
 * Returns 0 or -errno; -EIO if the file is shorter than the split.
 */
int split_read(const struct split *s, char **buf);

#endif
