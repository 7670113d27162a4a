/*
 * diskio.c - system calls on one data directory, with messages and faults.
 *
 * Thin on purpose: each wrapper (1) asks the fault hook, (2) makes the
 * call, retrying only EINTR and short transfers, and (3) on failure
 * formats "<dir>/<file>: <operation> at offset <n>: <strerror>" into the
 * caller's buffer.  No wrapper retries a failed fsync: the caller poisons
 * the store instead (see storage.h).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "raft/storage/diskio.h"

#define ZERO_CHUNK (1u << 20)

static int fault(struct diskio *d, enum storage_op op, const char *name)
{
	return d->fault != NULL ? d->fault(d->fault_arg, op, name) : 0;
}

int diskio_fail(struct diskio *d, int rc, const char *fmt, ...)
{
	va_list ap;

	if (d->errbuf != NULL && d->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(d->errbuf, d->errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

void diskio_log(struct diskio *d, int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (d->log != NULL)
		d->log(d->log_arg, level, line);
	else
		fprintf(stderr, "storage: %s%s\n",
		    level >= STORAGE_LOG_WARN ? "warning: " : "", line);
}

static int sysfail(struct diskio *d, int rc, const char *name, const char *op,
    long long off);

int diskio_damage(struct diskio *d, bool recover, uint64_t *count,
    const char *fmt, ...)
{
	char what[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (!recover)
		return diskio_fail(d, STORAGE_EDAMAGED,
		    "%s; refusing to start "
		    "(data directory damaged; --recover starts anyway, "
		    "accepting the loss)",
		    what);
	diskio_log(d, STORAGE_LOG_WARN,
	    "DAMAGED DATA DIRECTORY, starting "
	    "anyway as the recover option asks: %s",
	    what);
	(*count)++;
	return 0;
}

int diskio_truncate(struct diskio *d, int fd, const char *name, uint64_t len)
{
	int rc = fault(d, STORAGE_OP_ALLOCATE, name);

	if (rc == 0 && ftruncate(fd, (off_t)len) != 0)
		rc = -errno;
	return rc != 0 ? sysfail(d, rc, name, "ftruncate", (long long)len) : 0;
}

/* Fail with -errno (or @rc if set by the hook) for @op on @name. */
static int sysfail(struct diskio *d, int rc, const char *name, const char *op,
    long long off)
{
	if (off >= 0)
		return diskio_fail(d, rc, "%s/%s: %s at offset %lld: %s",
		    d->dir, name, op, off, strerror(-rc));
	return diskio_fail(d, rc, "%s/%s: %s: %s", d->dir, name, op,
	    strerror(-rc));
}

int diskio_sync_parent(struct diskio *d)
{
	char *copy = strdup(d->dir);
	int fd = -1, rc = fault(d, STORAGE_OP_DIRSYNC, "..");

	if (copy == NULL)
		return diskio_fail(d, -ENOMEM, "%s: out of memory", d->dir);
	d->n_fsyncs++;
	if (rc == 0) {
		fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) != 0)
			rc = -errno;
		if (fd >= 0)
			close(fd);
	}
	free(copy);
	if (rc == 0)
		return 0;
	return diskio_fail(d, rc, "%s: fsync of parent directory: %s", d->dir,
	    strerror(-rc));
}

int diskio_init(struct diskio *d, const char *dir, int create,
    storage_fault_fn fault_fn, void *fault_arg, storage_log_fn log,
    void *log_arg, char *errbuf, size_t errlen)
{
	int rc;

	memset(d, 0, sizeof *d);
	d->dirfd = -1;
	d->fault = fault_fn;
	d->fault_arg = fault_arg;
	d->log = log;
	d->log_arg = log_arg;
	d->errbuf = errbuf;
	d->errlen = errlen;
	d->dir = strdup(dir);
	if (d->dir == NULL)
		return diskio_fail(d, -ENOMEM, "%s: out of memory", dir);
	/* The new entry is made durable by diskio_sync_parent() when the
	 * directory is initialised (storage.c), also after an interrupted
	 * start that made it and stopped. */
	if (create && mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		return diskio_fail(d, rc, "%s: mkdir: %s", dir, strerror(-rc));
	}
	d->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dirfd < 0) {
		rc = -errno;
		return diskio_fail(d, rc, "%s: open directory: %s", dir,
		    strerror(-rc));
	}
	return 0;
}

void diskio_close(struct diskio *d)
{
	if (d->dirfd >= 0)
		close(d->dirfd);
	d->dirfd = -1;
	free(d->dir);
	d->dir = NULL;
}

int diskio_open(struct diskio *d, const char *name, int flags, int *fd)
{
	int rc = fault(d, STORAGE_OP_OPEN, name);

	if (rc == 0) {
		*fd = openat(d->dirfd, name, flags | O_CLOEXEC, 0600);
		if (*fd >= 0)
			return 0;
		rc = -errno;
	}
	*fd = -1;
	return sysfail(d, rc, name, (flags & O_CREAT) ? "create" : "open", -1);
}

int diskio_exists(struct diskio *d, const char *name, int *exists)
{
	struct stat st;
	int rc;

	if (fstatat(d->dirfd, name, &st, 0) == 0) {
		*exists = 1;
		return 0;
	}
	*exists = 0;
	if (errno == ENOENT)
		return 0;
	rc = -errno;
	return sysfail(d, rc, name, "stat", -1);
}

int diskio_pwrite(struct diskio *d, int fd, const char *name, const void *buf,
    size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	int rc = fault(d, STORAGE_OP_WRITE, name);

	if (rc != 0)
		return sysfail(d, rc, name, "write", (long long)off);
	while (len > 0) {
		ssize_t w = pwrite(fd, p, len, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = w < 0 ? -errno : -EIO;
			return sysfail(d, rc, name, "write", (long long)off);
		}
		p += w;
		len -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

int diskio_pread(struct diskio *d, int fd, const char *name, void *buf,
    size_t len, uint64_t off, size_t *got)
{
	uint8_t *p = buf;
	int rc = fault(d, STORAGE_OP_READ, name);

	*got = 0;
	if (rc != 0)
		return sysfail(d, rc, name, "read", (long long)off);
	while (len > 0) {
		ssize_t r = pread(fd, p, len, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			return sysfail(d, rc, name, "read", (long long)off);
		}
		if (r == 0)
			break;
		p += r;
		len -= (size_t)r;
		off += (uint64_t)r;
		*got += (size_t)r;
	}
	return 0;
}

int diskio_size(struct diskio *d, int fd, const char *name, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return sysfail(d, -errno, name, "stat", -1);
	*size = (uint64_t)st.st_size;
	return 0;
}

int diskio_fdatasync(struct diskio *d, int fd, const char *name)
{
	int rc = fault(d, STORAGE_OP_SYNC, name);

	d->n_fsyncs++;
	if (rc == 0 && fdatasync(fd) == 0)
		return 0;
	if (rc == 0)
		rc = -errno;
	return sysfail(d, rc, name, "fdatasync", -1);
}

int diskio_syncdir(struct diskio *d)
{
	int rc = fault(d, STORAGE_OP_DIRSYNC, ".");

	d->n_fsyncs++;
	if (rc == 0 && fsync(d->dirfd) == 0)
		return 0;
	if (rc == 0)
		rc = -errno;
	return diskio_fail(d, rc, "%s: fsync of directory: %s", d->dir,
	    strerror(-rc));
}

static int zero_fill(struct diskio *d, int fd, const char *name, uint64_t len)
{
	uint8_t *zero = calloc(1, ZERO_CHUNK);
	uint64_t off;
	int rc = 0;

	if (zero == NULL)
		return diskio_fail(d, -ENOMEM, "%s/%s: out of memory", d->dir,
		    name);
	for (off = 0; off < len && rc == 0; off += ZERO_CHUNK) {
		size_t n = len - off < ZERO_CHUNK ? (size_t)(len - off)
		                                  : ZERO_CHUNK;

		rc = diskio_pwrite(d, fd, name, zero, n, off);
	}
	free(zero);
	return rc;
}

int diskio_prealloc(struct diskio *d, int fd, const char *name,
    enum storage_prealloc mode, uint64_t len)
{
	int rc = fault(d, STORAGE_OP_ALLOCATE, name);

	if (rc != 0)
		return sysfail(d, rc, name, "preallocate", 0);
	switch (mode) {
	case STORAGE_PREALLOC_ZERO:
		return zero_fill(d, fd, name, len);
	case STORAGE_PREALLOC_FALLOCATE:
		if (fallocate(fd, 0, 0, (off_t)len) == 0)
			return 0;
		if (errno != EOPNOTSUPP)
			return sysfail(d, -errno, name, "fallocate", 0);
		/* A file system without fallocate: reserve by writing. */
		return zero_fill(d, fd, name, len);
	case STORAGE_PREALLOC_NONE:
		return 0;
	}
	return sysfail(d, -EINVAL, name, "preallocate", 0);
}

int diskio_rename(struct diskio *d, const char *from, const char *to)
{
	int rc = fault(d, STORAGE_OP_RENAME, from);

	if (rc == 0 && renameat(d->dirfd, from, d->dirfd, to) == 0)
		return 0;
	if (rc == 0)
		rc = -errno;
	return diskio_fail(d, rc, "%s/%s: rename to %s: %s", d->dir, from, to,
	    strerror(-rc));
}

int diskio_unlink(struct diskio *d, const char *name)
{
	int rc = fault(d, STORAGE_OP_UNLINK, name);

	if (rc == 0 && unlinkat(d->dirfd, name, 0) == 0)
		return 0;
	if (rc == 0)
		rc = -errno;
	return sysfail(d, rc, name, "unlink", -1);
}

bool diskio_parse_name(const char *name, const char *prefix, const char *suffix,
    raft_index *index)
{
	size_t np = strlen(prefix);
	raft_index v = 0;

	if (strlen(name) != np + 20 + strlen(suffix) ||
	    strncmp(name, prefix, np) != 0 ||
	    strcmp(name + np + 20, suffix) != 0)
		return false;
	for (size_t i = np; i < np + 20; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		v = v * 10 + (raft_index)(name[i] - '0');
	}
	*index = v;
	return v > 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void diskio_free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int diskio_list(struct diskio *d, char ***out, size_t *n_out)
{
	char **names = NULL, **grown;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *dir;
	int fd, rc = fault(d, STORAGE_OP_READ, ".");

	if (rc != 0)
		return sysfail(d, rc, ".", "readdir", -1);
	fd = openat(d->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return sysfail(d, rc, ".", "readdir", -1);
	}
	while ((errno = 0, de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			grown = realloc(names, cap * sizeof *names);
			if (grown == NULL)
				goto nomem;
			names = grown;
		}
		if ((names[n] = strdup(de->d_name)) == NULL)
			goto nomem;
		n++;
	}
	rc = -errno;
	closedir(dir);
	if (rc != 0) {
		diskio_free_names(names, n);
		return sysfail(d, rc, ".", "readdir", -1);
	}
	if (n > 0)
		qsort(names, n, sizeof *names, cmp_names);
	*out = names;
	*n_out = n;
	return 0;
nomem:
	closedir(dir);
	diskio_free_names(names, n);
	return diskio_fail(d, -ENOMEM, "%s: out of memory listing", d->dir);
}
