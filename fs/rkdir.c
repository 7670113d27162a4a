/*
 * rkdir.c - the FUSE operations on directory listings (opendir, readdir,
 * readdirplus, releasedir).  See rkfs.c for the shared rules.
 *
 * A listing is taken whole when a handle reads from offset 0 (rewinddir):
 * one walk of the directory's direct children under the inode table lock,
 * served by index from then on (the offset of an entry is its index + 1).
 *
 * readdirplus also hands the kernel each entry's inode and attributes, so
 * that `ls -l` needs no lookup per entry where the kernel may cache them
 * (cache=relaxed: entry_timeout, attr_timeout).  The names come from the
 * listing; the inode and attributes of each entry are read from the local
 * state when the entry is sent, after this call's own barrier (strict),
 * and only if the name still names the inode listed: a name removed or
 * replaced since the walk goes out as a plain entry (node id 0: the
 * kernel learns no inode from it).  In strict mode the timeouts are 0, so
 * the kernel looks every name up again before it uses it: the entries
 * cannot make anything stale.  Every entry sent with a node id counts one
 * kernel lookup (inode_ref_locked), undone if the reply fails.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/inode.h"
#include "fs/rkfs_int.h"
#include "kv/kv.h"

struct dent {
	char *name;
	uint64_t ino;
	uint8_t kind;
};

struct dirh {
	struct dent *e;
	size_t n, cap;
	bool loaded;
	bool nomem;
	size_t plen; /* listing: length of the prefix "DIR/" */
};

static void dirh_clear(struct dirh *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->e[i].name);
	free(d->e);
	d->e = NULL;
	d->n = d->cap = 0;
	d->loaded = false;
	d->nomem = false;
}

static int dirh_add(struct dirh *d, const char *name, size_t len, uint64_t ino,
    uint8_t kind)
{
	char *s;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 32;
		struct dent *e = realloc(d->e, cap * sizeof(*e));

		if (e == NULL)
			return -ENOMEM;
		d->e = e;
		d->cap = cap;
	}
	s = malloc(len + 1);
	if (s == NULL)
		return -ENOMEM;
	memcpy(s, name, len);
	s[len] = '\0';
	d->e[d->n++] = (struct dent){ s, ino, kind };
	return 0;
}

/* Can the mount show this name? */
static bool showable(const char *name, size_t len)
{
	if (len == 0 || len > FS_NAME_MAX || memchr(name, '\0', len))
		return false;
	if (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')))
		return false;
	return true;
}

static int list_cb(void *arg, const void *key, size_t keylen,
    const struct kv_attr *attr, const void *value)
{
	struct dirh *d = arg;
	const char *name = (const char *)key + d->plen;
	size_t len = keylen - d->plen;

	(void)value;
	if (!showable(name, len))
		return 0;
	if (dirh_add(d, name, len, attr->inode, attr->kind) != 0) {
		d->nomem = true;
		return 1;
	}
	return 0;
}

/* The implicit directories of a listing, to be made real. */
struct implicit {
	char *keys[KV_TXN_MAX];
	size_t lens[KV_TXN_MAX];
	size_t n;
};

static void implicit_clear(struct implicit *im)
{
	for (size_t i = 0; i < im->n; i++)
		free(im->keys[i]);
	im->n = 0;
}

/* With the table lock held: collect (up to KV_TXN_MAX of) the implicit
 * directories in the directory whose key is @dir.  0 or -ENOMEM. */
static int implicit_find_locked(struct fs *fs, const char *dir, size_t dlen,
    struct implicit *im)
{
	char name[FS_NAME_MAX + 1], key[KV_KEY_MAX + 1];
	const char *after = NULL;

	while (im->n < KV_TXN_MAX &&
	    rkfs_next_implicit_locked(fs, dir, dlen, after, name) > 0) {
		long klen = rkfs_child_key(dir, dlen, name, key);

		after = name;
		if (klen < 0)
			continue;
		im->keys[im->n] = malloc((size_t)klen);
		if (im->keys[im->n] == NULL)
			return -ENOMEM;
		memcpy(im->keys[im->n], key, (size_t)klen);
		im->lens[im->n++] = (size_t)klen;
	}
	return 0;
}

/* One walk of directory @ino into @d, after a barrier (relaxed: opendir
 * passed one).  Implicit directories found in it are collected in @im
 * (unless @im is NULL: then they are left out). */
static int dirh_walk(struct fs *fs, fuse_ino_t ino, struct dirh *d,
    struct implicit *im)
{
	char key[KV_KEY_MAX + 2];
	struct kv_attr a;
	size_t klen;
	int rv;

	dirh_clear(d);
	rv = rkfs_fresh_read(fs);
	if (rv != 0)
		return rv;
	inode_lock(fs->inodes);
	rv = rkfs_get_ino_locked(fs, ino, key, &klen, &a);
	if (rv == 0 && a.kind != KV_KIND_DIR)
		rv = -ENOTDIR;
	if (rv == 0 &&
	    (dirh_add(d, ".", 1, ino, KV_KIND_DIR) != 0 ||
	        dirh_add(d, "..", 2, FUSE_ROOT_ID, KV_KIND_DIR) != 0))
		rv = -ENOMEM;
	if (rv == 0 && im != NULL)
		rv = implicit_find_locked(fs, key, klen, im);
	if (rv == 0 && (im == NULL || im->n == 0)) {
		key[klen] = '/';
		d->plen = klen + 1;
		kv_list(fs->kv, key, klen + 1, NULL, 0, 0, '/', list_cb, d);
		if (d->nomem)
			rv = -ENOMEM;
	}
	inode_unlock(fs->inodes);
	return rv;
}

/* Load the listing of @ino into @d; implicit directories in it are made
 * real first (rkfs_make_dirs).  Where they cannot be (a read-only mount,
 * the quota reached) the listing leaves them out. */
static int dirh_load(struct fs *fs, fuse_ino_t ino, struct dirh *d)
{
	struct implicit *im = calloc(1, sizeof(*im));
	int rv = -EIO;

	if (im == NULL)
		return -ENOMEM;
	for (int attempt = 0; attempt < RKFS_RETRIES; attempt++) {
		rv = dirh_walk(fs, ino, d, fs->opt.ro ? NULL : im);
		if (rv != 0 || im->n == 0)
			break;
		rv = rkfs_make_dirs(fs, im->keys, im->lens, im->n);
		implicit_clear(im);
		if (rv == -ENOSPC) {
			rv = dirh_walk(fs, ino, d, NULL);
			break;
		}
		if (rv != 0)
			break;
		rv = -EIO; /* all tries used */
	}
	implicit_clear(im);
	free(im);
	if (rv == 0)
		d->loaded = true;
	else
		dirh_clear(d);
	return rv;
}

void rkfile_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = rkfs_of(req);
	char key[KV_KEY_MAX + 1];
	struct kv_attr a;
	struct dirh *d;
	size_t klen;
	int rv = rkfs_fresh(fs);

	if (rv == 0) {
		inode_lock(fs->inodes);
		rv = rkfs_get_ino_locked(fs, ino, key, &klen, &a);
		inode_unlock(fs->inodes);
	}
	if (rv == 0 && a.kind != KV_KIND_DIR)
		rv = -ENOTDIR;
	if (rv != 0) {
		fuse_reply_err(req, -rv);
		return;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi) != 0)
		free(d);
}

static mode_t kind_type(uint8_t kind)
{
	switch (kind) {
	case KV_KIND_DIR:
		return S_IFDIR;
	case KV_KIND_SYMLINK:
		return S_IFLNK;
	default:
		return S_IFREG;
	}
}

/* The listing of handle @fi from @off: loaded (again) at offset 0, and a
 * reply buffer of @size bytes.  NULL after replying with an error. */
static char *listing_at(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi, struct dirh **dp)
{
	struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
	char *buf;
	int rv;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return NULL;
	}
	if (off == 0 || !d->loaded) {
		rv = dirh_load(rkfs_of(req), ino, d);
		if (rv != 0) {
			fuse_reply_err(req, -rv);
			return NULL;
		}
	}
	buf = malloc(size ? size : 1);
	if (buf == NULL)
		fuse_reply_err(req, ENOMEM);
	*dp = d;
	return buf;
}

void rkfile_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct dirh *d;
	char *buf = listing_at(req, ino, size, off, fi, &d);
	size_t pos = 0;

	if (buf == NULL)
		return;
	for (size_t i = (size_t)off; i < d->n; i++) {
		struct stat st = { 0 };
		size_t need;

		st.st_ino = d->e[i].ino;
		st.st_mode = kind_type(d->e[i].kind);
		need = fuse_add_direntry(req, buf + pos, size - pos,
		    d->e[i].name, &st, (off_t)(i + 1));
		if (need > size - pos)
			break;
		pos += need;
	}
	fuse_reply_buf(req, buf, pos);
	free(buf);
}

/*
 * With the table lock held: fill @e for entry @de of the directory whose
 * key is @dir (@dlen bytes; @key: room for the child's key) from the
 * local state, counting one kernel lookup, if the name still names the
 * inode listed; otherwise a plain entry (node id 0, nothing counted).
 * Returns 1 when a lookup was counted, 0 when not.
 */
static int plus_entry_locked(struct fs *fs, const char *dir, size_t dlen,
    const struct dent *de, char *key, struct fuse_entry_param *e)
{
	struct kv_attr a;
	long klen;

	memset(e, 0, sizeof(*e));
	e->attr.st_ino = de->ino;
	e->attr.st_mode = kind_type(de->kind);
	if (strcmp(de->name, ".") == 0 || strcmp(de->name, "..") == 0)
		return 0; /* the kernel takes no inode from these */
	klen = rkfs_child_key(dir, dlen, de->name, key);
	if (klen < 0 ||
	    kv_get(fs->kv, key, (size_t)klen, &a, NULL, NULL) != 0 ||
	    a.inode != de->ino)
		return 0; /* changed since the listing: name only */
	if (inode_ref_locked(fs->inodes, a.inode, key, (size_t)klen) != 0)
		return 0;
	inode_attr_sent_locked(fs->inodes, a.inode, a.version);
	rkfs_entry_of(fs, &a, e);
	return 1;
}

void rkfile_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct fs *fs = rkfs_of(req);
	char dir[KV_KEY_MAX + 1], key[KV_KEY_MAX + 1];
	struct kv_attr da;
	struct dirh *d;
	uint64_t *refs = NULL;
	size_t dlen, pos = 0, nrefs = 0;
	char *buf;
	int rv;

	if (off != 0 && !fs->opt.relaxed) {
		/* The attributes sent are the state's after this barrier. */
		rv = rkfs_fresh(fs);
		if (rv != 0) {
			fuse_reply_err(req, -rv);
			return;
		}
	}
	buf = listing_at(req, ino, size, off, fi, &d);
	if (buf == NULL)
		return;
	/* At most one entry per 24 bytes of reply: the lookups counted. */
	refs = malloc((size / 24 + 1) * sizeof(*refs));
	if (refs == NULL) {
		free(buf);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	inode_lock(fs->inodes);
	rv = rkfs_get_ino_locked(fs, ino, dir, &dlen, &da);
	for (size_t i = (size_t)off; rv == 0 && i < d->n; i++) {
		struct fuse_entry_param e;
		size_t need = fuse_add_direntry_plus(req, NULL, 0, d->e[i].name,
		    NULL, 0);

		if (need > size - pos)
			break;
		if (plus_entry_locked(fs, dir, dlen, &d->e[i], key, &e) == 1)
			refs[nrefs++] = e.ino;
		pos += fuse_add_direntry_plus(req, buf + pos, size - pos,
		    d->e[i].name, &e, (off_t)(i + 1));
	}
	inode_unlock(fs->inodes);
	if (rv != 0) {
		fuse_reply_err(req, -rv);
	} else if (fuse_reply_buf(req, buf, pos) != 0) {
		for (size_t i = 0; i < nrefs; i++)
			inode_forget(fs->inodes, refs[i], 1);
	}
	free(refs);
	free(buf);
}

void rkfile_releasedir(fuse_req_t req, fuse_ino_t ino,
    struct fuse_file_info *fi)
{
	struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;

	(void)ino;
	if (d != NULL) {
		dirh_clear(d);
		free(d);
	}
	fuse_reply_err(req, 0);
}
