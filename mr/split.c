/*
 * split.c - input splits at line boundaries (see split.h).
 */
#include "mr/split.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mr/xmem.h"

/* Offset just past the first newline at or after @from, or @size. */
static uint64_t next_line(int fd, uint64_t from, uint64_t size)
{
	char buf[4096];

	while (from < size) {
		ssize_t r = pread(fd, buf, sizeof(buf), (off_t)from);
		char *nl;

		if (r <= 0)
			return size;
		nl = memchr(buf, '\n', (size_t)r);
		if (nl)
			return from + (uint64_t)(nl - buf) + 1;
		from += (uint64_t)r;
	}
	return size;
}

int split_inputs(char *const *names, size_t n, uint64_t size,
    struct split **out, size_t *nout, char *err, size_t errlen)
{
	struct split *v = NULL;
	size_t cnt = 0, cap = 0, i;

	for (i = 0; i < n; i++) {
		struct stat st;
		uint64_t off = 0;
		int fd = open(names[i], O_RDONLY | O_CLOEXEC);

		if (fd < 0 || fstat(fd, &st) < 0) {
			int e = errno;

			snprintf(err, errlen, "input %s: %s", names[i],
			    strerror(e));
			if (fd >= 0)
				close(fd);
			free(v);
			return -e;
		}
		if (!S_ISREG(st.st_mode)) {
			snprintf(err, errlen, "input %s: not a regular file",
			    names[i]);
			close(fd);
			free(v);
			return -EINVAL;
		}
		do {
			uint64_t end = (uint64_t)st.st_size;

			if (size > 0 && end - off > size)
				end = next_line(fd, off + size - 1, end);
			if (cnt == cap) {
				cap = cap ? cap * 2 : 16;
				v = xrealloc(v, cap * sizeof(*v));
			}
			v[cnt].name = names[i];
			v[cnt].off = off;
			v[cnt].len = end - off;
			cnt++;
			off = end;
		} while (off < (uint64_t)st.st_size);
		close(fd);
	}
	*out = v;
	*nout = cnt;
	return 0;
}

int split_read(const struct split *s, char **buf)
{
	int fd = open(s->name, O_RDONLY | O_CLOEXEC);
	uint64_t got = 0;
	char *p;

	if (fd < 0)
		return -errno;
	p = xmalloc(s->len + 1);
	while (got < s->len) {
		ssize_t r = pread(fd, p + got, s->len - got,
		    (off_t)(s->off + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? errno : EIO;

			free(p);
			close(fd);
			return -e;
		}
		got += (uint64_t)r;
	}
	p[s->len] = '\0';
	close(fd);
	*buf = p;
	return 0;
}
