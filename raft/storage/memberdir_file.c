/*
 * memberdir_file.c - the member directory's file (memberdir_file.h).  File
 * operations go through diskio.c, like the other storage files, so
 * failures name the file, operation and cause.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raft/le.h"
#include "raft/storage/crc32c.h"
#include "raft/storage/diskio.h"
#include "raft/storage/memberdir_file.h"

#define MD_MAGIC1 "RKMEMBR1"
#define MD_MAGIC2 "RKMEMBR2"
#define MD_TMP "members.tmp"
#define MD_HDR (8 + 8 + 4)
#define MD_FILE_MAX \
	(MD_HDR + 2 + MEMBERDIR_MAX * (8 + 6 + 2 * 127 + 40) + 4 + 5 + \
	    MEMBERDIR_GONE_MAX * (8 + 40) + 4)

int memberdir_save(const char *dir, uint64_t cluster_id,
    const struct memberdir *d, const struct memberdir_gone *gone, char *err,
    size_t errlen)
{
	static const struct memberdir_gone none;
	struct diskio io;
	uint8_t *body = NULL, *gbody = NULL, *file = NULL;
	uint32_t blen, glen = 0;
	size_t flen;
	int fd = -1, rv;

	rv = diskio_init(&io, dir, 1, NULL, NULL, NULL, NULL, err, errlen);
	if (rv != 0)
		goto out;
	rv = memberdir_encode(d, &body, &blen);
	if (rv == 0)
		rv = memberdir_gone_encode(gone != NULL ? gone : &none, &gbody,
		    &glen);
	if (rv == 0 && (file = malloc(MD_HDR + blen + 4 + glen + 4)) == NULL)
		rv = -ENOMEM;
	if (rv != 0) {
		rv = diskio_fail(&io, rv, "%s/%s: out of memory", dir,
		    MEMBERDIR_FILE);
		goto out;
	}
	memcpy(file, MD_MAGIC2, 8);
	le_put64(file + 8, cluster_id);
	le_put32(file + 16, blen);
	memcpy(file + MD_HDR, body, blen);
	flen = MD_HDR + blen;
	le_put32(file + flen, glen);
	memcpy(file + flen + 4, gbody, glen);
	flen += 4 + glen;
	le_put32(file + flen, crc32c(0, file, flen));
	flen += 4;
	rv = diskio_open(&io, MD_TMP, O_WRONLY | O_CREAT | O_TRUNC, &fd);
	if (rv == 0)
		rv = diskio_pwrite(&io, fd, MD_TMP, file, flen, 0);
	if (rv == 0)
		rv = diskio_fdatasync(&io, fd, MD_TMP);
	if (rv == 0)
		rv = diskio_rename(&io, MD_TMP, MEMBERDIR_FILE);
	if (rv == 0)
		rv = diskio_syncdir(&io);
out:
	if (fd >= 0)
		close(fd);
	free(body);
	free(gbody);
	free(file);
	diskio_close(&io);
	return rv;
}

/* The body of @file (@size bytes, checked against the checksum): the
 * directory and, from RKMEMBR2 on, the removed members.  0 or -EINVAL. */
static int decode_file(const uint8_t *file, uint64_t size, struct memberdir *d,
    struct memberdir_gone *gone)
{
	uint64_t blen, glen, end = size - 4;
	bool v2 = memcmp(file, MD_MAGIC2, 8) == 0;

	if (!v2 && memcmp(file, MD_MAGIC1, 8) != 0)
		return -EINVAL;
	if (le_get32(file + end) != crc32c(0, file, end))
		return -EINVAL;
	blen = le_get32(file + 16);
	if (!v2)
		return MD_HDR + blen == end
		    ? memberdir_decode(file + MD_HDR, blen, d)
		    : -EINVAL;
	if (MD_HDR + blen + 4 > end)
		return -EINVAL;
	glen = le_get32(file + MD_HDR + blen);
	if (MD_HDR + blen + 4 + glen != end ||
	    memberdir_decode(file + MD_HDR, blen, d) != 0 ||
	    memberdir_gone_decode(file + MD_HDR + blen + 4, glen, gone) != 0)
		return -EINVAL;
	return 0;
}

int memberdir_load(const char *dir, uint64_t cluster_id, struct memberdir *d,
    struct memberdir_gone *gone, char *err, size_t errlen)
{
	struct memberdir_gone *g = calloc(1, sizeof(*g));
	struct diskio io;
	uint8_t *file = NULL;
	uint64_t size = 0;
	size_t got = 0;
	int fd = -1, exists = 0, rv;

	memset(d, 0, sizeof(*d));
	if (gone != NULL)
		memset(gone, 0, sizeof(*gone));
	if (g == NULL) {
		snprintf(err, errlen, "%s/%s: out of memory", dir,
		    MEMBERDIR_FILE);
		return -ENOMEM;
	}
	rv = diskio_init(&io, dir, 0, NULL, NULL, NULL, NULL, err, errlen);
	if (rv == -ENOENT)
		goto out;
	if (rv == 0)
		rv = diskio_exists(&io, MEMBERDIR_FILE, &exists);
	if (rv == 0 && !exists)
		rv = -ENOENT;
	if (rv == 0)
		rv = diskio_open(&io, MEMBERDIR_FILE, O_RDONLY, &fd);
	if (rv == 0)
		rv = diskio_size(&io, fd, MEMBERDIR_FILE, &size);
	if (rv != 0)
		goto out;
	if (size < MD_HDR + 4 || size > MD_FILE_MAX) {
		rv = diskio_fail(&io, STORAGE_EDAMAGED,
		    "%s/%s: damaged member directory: %" PRIu64 " bytes; "
		    "refusing to start (restore the file or the data "
		    "directory)",
		    dir, MEMBERDIR_FILE, size);
		goto out;
	}
	file = malloc(size);
	if (file == NULL) {
		rv = -ENOMEM;
		goto out;
	}
	rv = diskio_pread(&io, fd, MEMBERDIR_FILE, file, size, 0, &got);
	if (rv != 0)
		goto out;
	if (got != size || decode_file(file, size, d, g) != 0) {
		rv = diskio_fail(&io, STORAGE_EDAMAGED,
		    "%s/%s: damaged member directory (bad magic, length, "
		    "checksum or entries); refusing to start (restore the "
		    "file or the data directory)",
		    dir, MEMBERDIR_FILE);
		goto out;
	}
	if (le_get64(file + 8) != cluster_id) {
		rv = diskio_fail(&io, STORAGE_EDAMAGED,
		    "%s/%s: member directory of cluster %" PRIx64
		    ", not %" PRIx64 "; refusing to start",
		    dir, MEMBERDIR_FILE, le_get64(file + 8), cluster_id);
		goto out;
	}
	if (gone != NULL)
		*gone = *g;
out:
	if (rv != 0)
		memset(d, 0, sizeof(*d));
	if (fd >= 0)
		close(fd);
	free(g);
	free(file);
	diskio_close(&io);
	return rv;
}
