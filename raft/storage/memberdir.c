/*
 * memberdir.c - the member directory, its codec and its file (see
 * memberdir.h).  File operations go through diskio.c, like the other
 * storage files, so failures name the file, operation and cause.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raft/le.h"
#include "raft/storage/crc32c.h"
#include "raft/storage/diskio.h"
#include "raft/storage/memberdir.h"

#define MD_VERSION 1
#define MD_MAGIC "RKMEMBR1"
#define MD_TMP "members.tmp"
#define MD_HDR (8 + 8 + 4)
#define MD_FILE_MAX (MD_HDR + 2 + MEMBERDIR_MAX * (8 + 6 + 2 * 127 + 40) + 4)

const struct memberdir_entry *memberdir_find(const struct memberdir *d,
    raft_id id)
{
	for (uint32_t i = 0; i < d->n; i++)
		if (d->m[i].id == id)
			return &d->m[i];
	return NULL;
}

static bool entry_ok(const struct memberdir_entry *e)
{
	size_t p = strnlen(e->peer, sizeof(e->peer));
	size_t c = strnlen(e->client, sizeof(e->client));
	size_t k = strnlen(e->key, sizeof(e->key));

	return e->id != 0 && p > 0 && p < sizeof(e->peer) && c > 0 &&
	    c < sizeof(e->client) && (k == 0 || k == 40);
}

int memberdir_put(struct memberdir *d, const struct memberdir_entry *e)
{
	struct memberdir_entry *slot;

	if (!entry_ok(e))
		return -EINVAL;
	slot = (struct memberdir_entry *)memberdir_find(d, e->id);
	if (slot == NULL) {
		if (d->n >= MEMBERDIR_MAX)
			return -ENOSPC;
		slot = &d->m[d->n++];
	}
	*slot = *e;
	return 0;
}

void memberdir_del(struct memberdir *d, raft_id id)
{
	for (uint32_t i = 0; i < d->n; i++)
		if (d->m[i].id == id) {
			d->m[i] = d->m[--d->n];
			return;
		}
}

int memberdir_merge(struct memberdir *d, const struct memberdir *src)
{
	for (uint32_t i = 0; i < src->n; i++) {
		int rv = memberdir_put(d, &src->m[i]);

		if (rv != 0)
			return rv;
	}
	return 0;
}

static uint8_t *put_str(uint8_t *p, const char *s)
{
	size_t n = strlen(s);

	le_put16(p, (uint16_t)n);
	memcpy(p + 2, s, n);
	return p + 2 + n;
}

int memberdir_encode(const struct memberdir *d, uint8_t **out, uint32_t *len)
{
	size_t cap = 2;
	uint8_t *buf, *p;

	for (uint32_t i = 0; i < d->n; i++)
		cap += 8 + 6 + strlen(d->m[i].peer) + strlen(d->m[i].client) +
		    strlen(d->m[i].key);
	buf = malloc(cap);
	if (buf == NULL)
		return -ENOMEM;
	p = buf;
	*p++ = MD_VERSION;
	*p++ = (uint8_t)d->n;
	for (uint32_t i = 0; i < d->n; i++) {
		le_put64(p, d->m[i].id);
		p = put_str(p + 8, d->m[i].peer);
		p = put_str(p, d->m[i].client);
		p = put_str(p, d->m[i].key);
	}
	*out = buf;
	*len = (uint32_t)(p - buf);
	return 0;
}

/* One length-prefixed string into @s (capacity @cap, NUL added). */
static int get_str(const uint8_t **p, const uint8_t *end, char *s, size_t cap)
{
	size_t n;

	if (end - *p < 2)
		return -EINVAL;
	n = le_get16(*p);
	*p += 2;
	if (n >= cap || (size_t)(end - *p) < n || memchr(*p, 0, n) != NULL)
		return -EINVAL;
	memcpy(s, *p, n);
	s[n] = '\0';
	*p += n;
	return 0;
}

int memberdir_decode(const uint8_t *buf, size_t len, struct memberdir *d)
{
	const uint8_t *p = buf, *end = buf + len;
	uint32_t n;

	memset(d, 0, sizeof(*d));
	if (len < 2 || buf[0] != MD_VERSION || buf[1] > MEMBERDIR_MAX)
		return -EINVAL;
	n = buf[1];
	p += 2;
	for (uint32_t i = 0; i < n; i++) {
		struct memberdir_entry e = { 0 };

		if (end - p < 8)
			return -EINVAL;
		e.id = le_get64(p);
		p += 8;
		if (get_str(&p, end, e.peer, sizeof(e.peer)) ||
		    get_str(&p, end, e.client, sizeof(e.client)) ||
		    get_str(&p, end, e.key, sizeof(e.key)) || !entry_ok(&e) ||
		    memberdir_find(d, e.id) != NULL)
			return -EINVAL;
		d->m[d->n++] = e;
	}
	return p == end ? 0 : -EINVAL;
}

int memberdir_save(const char *dir, uint64_t cluster_id,
    const struct memberdir *d, char *err, size_t errlen)
{
	struct diskio io;
	uint8_t *body = NULL, *file = NULL;
	uint32_t blen;
	size_t flen;
	int fd = -1, rv;

	rv = diskio_init(&io, dir, 1, NULL, NULL, NULL, NULL, err, errlen);
	if (rv != 0)
		goto out;
	rv = memberdir_encode(d, &body, &blen);
	if (rv == 0 && (file = malloc(MD_HDR + blen + 4)) == NULL)
		rv = -ENOMEM;
	if (rv != 0) {
		rv = diskio_fail(&io, rv, "%s/%s: out of memory", dir,
		    MEMBERDIR_FILE);
		goto out;
	}
	memcpy(file, MD_MAGIC, 8);
	le_put64(file + 8, cluster_id);
	le_put32(file + 16, blen);
	memcpy(file + MD_HDR, body, blen);
	flen = MD_HDR + blen;
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
	free(file);
	diskio_close(&io);
	return rv;
}

int memberdir_load(const char *dir, uint64_t cluster_id, struct memberdir *d,
    char *err, size_t errlen)
{
	struct diskio io;
	uint8_t *file = NULL;
	uint64_t size = 0;
	size_t got = 0;
	uint32_t blen;
	int fd = -1, exists = 0, rv;

	memset(d, 0, sizeof(*d));
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
	blen = le_get32(file + 16);
	if (got != size || memcmp(file, MD_MAGIC, 8) != 0 ||
	    (uint64_t)MD_HDR + blen + 4 != size ||
	    le_get32(file + size - 4) != crc32c(0, file, size - 4) ||
	    memberdir_decode(file + MD_HDR, blen, d) != 0) {
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
out:
	if (rv != 0)
		memset(d, 0, sizeof(*d));
	if (fd >= 0)
		close(fd);
	free(file);
	diskio_close(&io);
	return rv;
}
