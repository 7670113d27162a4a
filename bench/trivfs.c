/*
 * trivfs.c - a trivial in-memory FUSE file system on the libfuse 3
 * low-level API, the "cost of FUSE itself" reference of bench/bench_fs.sh.
 *
 *   bench/trivfs MOUNTPOINT [-o cached]
 *
 * It runs in the foreground until unmounted (fusermount3 -u) or signalled.
 * Files, directories, create/mknod/mkdir/unlink/rmdir/rename, read/write,
 * getattr/setattr (size, mode, times), fsync (nothing to do), readdir;
 * all under one mutex.  The FUSE settings are mount.raftkv's where they
 * matter for a fair comparison: a multithreaded session (clone_fd 0, 16
 * idle threads), default_permissions (the kernel checks permissions,
 * which with zero timeouts costs a GETATTR per directory of a path walk),
 * no writeback cache, max_write 1 MiB, no readahead, zero
 * entry and attribute timeouts and direct_io on every open file.  With
 * "-o cached" instead: 1 s timeouts and the page cache (keep_cache), the
 * kernel-cached figure for reference.
 *
 * Inodes are an array indexed by inode number (never reused while the
 * file system runs); a directory's entries are an array of inode numbers
 * (readdir offset = index + 1) and every (parent, name) is also in one
 * hash table for lookups; a rename keeps the inode number.  Not a real
 * file system: no hard links, no forget accounting (inodes of unlinked
 * files are freed at unlink).
 */
#define FUSE_USE_VERSION 35

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

struct tnode {
	bool used;
	mode_t mode;
	fuse_ino_t parent;
	char *name;
	size_t dirpos; /* index in the parent's entries */
	struct timespec mtime, ctime;
	char *data; /* regular file */
	size_t size, cap;
	fuse_ino_t *ents; /* directory */
	size_t nents, entcap;
};

struct hent {
	fuse_ino_t parent, ino;
	struct hent *next;
};

struct trivfs {
	pthread_mutex_t mu;
	struct tnode *nodes;
	size_t nnodes, capnodes;
	struct hent **hash;
	size_t hsize, hcount;
	double timeout;
	bool cached;
};

static struct trivfs *tfs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static size_t hash_of(fuse_ino_t parent, const char *name, size_t hsize)
{
	uint64_t h = 1469598103934665603ull ^ parent;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)(h & (hsize - 1));
}

static int hash_grow(struct trivfs *t)
{
	size_t nsize = t->hsize ? t->hsize * 2 : 1024;
	struct hent **nh = calloc(nsize, sizeof(*nh));

	if (nh == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < t->hsize; i++) {
		struct hent *e = t->hash[i], *next;

		for (; e != NULL; e = next) {
			size_t b = hash_of(e->parent, t->nodes[e->ino].name,
			    nsize);

			next = e->next;
			e->next = nh[b];
			nh[b] = e;
		}
	}
	free(t->hash);
	t->hash = nh;
	t->hsize = nsize;
	return 0;
}

static fuse_ino_t hash_find(struct trivfs *t, fuse_ino_t parent,
    const char *name)
{
	struct hent *e = t->hash[hash_of(parent, name, t->hsize)];

	for (; e != NULL; e = e->next)
		if (e->parent == parent &&
		    strcmp(t->nodes[e->ino].name, name) == 0)
			return e->ino;
	return 0;
}

static void hash_del(struct trivfs *t, fuse_ino_t parent, const char *name)
{
	struct hent **pp = &t->hash[hash_of(parent, name, t->hsize)];

	for (; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->parent == parent &&
		    strcmp(t->nodes[(*pp)->ino].name, name) == 0) {
			struct hent *e = *pp;

			*pp = e->next;
			free(e);
			t->hcount--;
			return;
		}
}

static void now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

static void fill_stat(struct trivfs *t, fuse_ino_t ino, struct stat *st)
{
	struct tnode *n = &t->nodes[ino];

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = n->mode;
	st->st_nlink = S_ISDIR(n->mode) ? 2 : 1;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_size = (off_t)(S_ISDIR(n->mode) ? 4096 : n->size);
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
	st->st_mtim = n->mtime;
	st->st_ctim = n->ctime;
	st->st_atim = n->mtime;
}

static void reply_entry(fuse_req_t req, struct trivfs *t, fuse_ino_t ino)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = ino;
	e.generation = 1;
	e.attr_timeout = t->timeout;
	e.entry_timeout = t->timeout;
	fill_stat(t, ino, &e.attr);
	pthread_mutex_unlock(&t->mu);
	fuse_reply_entry(req, &e);
}

/* Put node @ino (its name set) into directory @parent (locked): its
 * entries and the lookup hash.  0 or -ENOMEM. */
static int node_link(struct trivfs *t, fuse_ino_t parent, fuse_ino_t ino)
{
	struct tnode *p = &t->nodes[parent], *n = &t->nodes[ino];
	struct hent *he;
	size_t bucket;

	if (t->hcount >= t->hsize && hash_grow(t) != 0)
		return -ENOMEM;
	if (p->nents == p->entcap) {
		size_t nc = p->entcap ? p->entcap * 2 : 16;
		fuse_ino_t *ne = realloc(p->ents, nc * sizeof(*ne));

		if (ne == NULL)
			return -ENOMEM;
		p->ents = ne;
		p->entcap = nc;
	}
	he = malloc(sizeof(*he));
	if (he == NULL)
		return -ENOMEM;
	n->parent = parent;
	n->dirpos = p->nents;
	p->ents[p->nents++] = ino;
	now(&p->mtime);
	he->parent = parent;
	he->ino = ino;
	bucket = hash_of(parent, n->name, t->hsize);
	he->next = t->hash[bucket];
	t->hash[bucket] = he;
	t->hcount++;
	return 0;
}

/* Is @parent a directory, and is @name free and short enough in it? */
static int name_free(struct trivfs *t, fuse_ino_t parent, const char *name)
{
	if (parent >= t->nnodes || !t->nodes[parent].used ||
	    !S_ISDIR(t->nodes[parent].mode))
		return -ENOTDIR;
	if (strlen(name) > 255)
		return -ENAMETOOLONG;
	if (hash_find(t, parent, name) != 0)
		return -EEXIST;
	return 0;
}

/* A new node named @name in directory @parent (locked).  0 or -errno;
 * the new inode number in *@out. */
static int node_add(struct trivfs *t, fuse_ino_t parent, const char *name,
    mode_t mode, fuse_ino_t *out)
{
	struct tnode *n;
	int rv = name_free(t, parent, name);

	if (rv != 0)
		return rv;
	if (t->nnodes == t->capnodes) {
		size_t nc = t->capnodes * 2;
		struct tnode *nn = realloc(t->nodes, nc * sizeof(*nn));

		if (nn == NULL)
			return -ENOMEM;
		memset(nn + t->capnodes, 0, (nc - t->capnodes) * sizeof(*nn));
		t->nodes = nn;
		t->capnodes = nc;
	}
	n = &t->nodes[t->nnodes];
	n->name = strdup(name);
	if (n->name == NULL)
		return -ENOMEM;
	n->mode = mode;
	now(&n->mtime);
	n->ctime = n->mtime;
	rv = node_link(t, parent, t->nnodes);
	if (rv != 0) {
		free(n->name);
		n->name = NULL;
		return rv;
	}
	n->used = true;
	*out = t->nnodes++;
	return 0;
}

/* Free node @ino's memory; its slot is never used again. */
static void node_free(struct trivfs *t, fuse_ino_t ino)
{
	struct tnode *n = &t->nodes[ino];

	free(n->name);
	free(n->data);
	free(n->ents);
	memset(n, 0, sizeof(*n));
}

/* Take node @ino out of its directory (locked); free it if @drop. */
static void node_unlink(struct trivfs *t, fuse_ino_t ino, bool drop)
{
	struct tnode *n = &t->nodes[ino], *p = &t->nodes[n->parent];
	fuse_ino_t last = p->ents[p->nents - 1];

	hash_del(t, n->parent, n->name);
	p->ents[n->dirpos] = last;
	t->nodes[last].dirpos = n->dirpos;
	p->nents--;
	now(&p->mtime);
	if (drop)
		node_free(t, ino);
}

static void t_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	conn->want &= ~(unsigned)FUSE_CAP_ATOMIC_O_TRUNC;
	conn->max_write = 1024 * 1024;
	conn->max_readahead = 0;
}

static void t_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct trivfs *t = tfs(req);
	fuse_ino_t ino;

	pthread_mutex_lock(&t->mu);
	ino = hash_find(t, parent, name);
	if (ino == 0) {
		pthread_mutex_unlock(&t->mu);
		fuse_reply_err(req, ENOENT);
		return;
	}
	reply_entry(req, t, ino);
}

static bool valid(struct trivfs *t, fuse_ino_t ino)
{
	return ino < t->nnodes && t->nodes[ino].used;
}

static void t_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct trivfs *t = tfs(req);
	struct stat st;

	(void)fi;
	pthread_mutex_lock(&t->mu);
	if (!valid(t, ino)) {
		pthread_mutex_unlock(&t->mu);
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_stat(t, ino, &st);
	pthread_mutex_unlock(&t->mu);
	fuse_reply_attr(req, &st, t->timeout);
}

static int resize(struct tnode *n, size_t size)
{
	if (size > n->cap) {
		size_t nc = n->cap ? n->cap : 4096;
		char *nd;

		while (nc < size)
			nc *= 2;
		nd = realloc(n->data, nc);
		if (nd == NULL)
			return -ENOMEM;
		n->data = nd;
		n->cap = nc;
	}
	if (size > n->size)
		memset(n->data + n->size, 0, size - n->size);
	n->size = size;
	return 0;
}

static void t_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
    int to_set, struct fuse_file_info *fi)
{
	struct trivfs *t = tfs(req);
	struct tnode *n;
	struct stat st;
	int rv = 0;

	(void)fi;
	pthread_mutex_lock(&t->mu);
	if (!valid(t, ino)) {
		pthread_mutex_unlock(&t->mu);
		fuse_reply_err(req, ENOENT);
		return;
	}
	n = &t->nodes[ino];
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (S_ISDIR(n->mode))
			rv = -EISDIR;
		else
			rv = resize(n, (size_t)attr->st_size);
	}
	if (rv == 0 && (to_set & FUSE_SET_ATTR_MODE))
		n->mode = (n->mode & S_IFMT) | (attr->st_mode & 07777);
	if (rv == 0 && (to_set & FUSE_SET_ATTR_MTIME))
		n->mtime = attr->st_mtim;
	if (rv == 0 && (to_set & FUSE_SET_ATTR_MTIME_NOW))
		now(&n->mtime);
	if (rv == 0)
		now(&n->ctime);
	fill_stat(t, ino, &st);
	pthread_mutex_unlock(&t->mu);
	if (rv != 0)
		fuse_reply_err(req, -rv);
	else
		fuse_reply_attr(req, &st, t->timeout);
}

static void make(fuse_req_t req, fuse_ino_t parent, const char *name,
    mode_t mode, struct fuse_file_info *fi)
{
	struct trivfs *t = tfs(req);
	struct fuse_entry_param e;
	fuse_ino_t ino;
	int rv;

	pthread_mutex_lock(&t->mu);
	rv = node_add(t, parent, name, mode, &ino);
	if (rv != 0) {
		pthread_mutex_unlock(&t->mu);
		fuse_reply_err(req, -rv);
		return;
	}
	if (fi == NULL) {
		reply_entry(req, t, ino);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = ino;
	e.generation = 1;
	e.attr_timeout = t->timeout;
	e.entry_timeout = t->timeout;
	fill_stat(t, ino, &e.attr);
	pthread_mutex_unlock(&t->mu);
	fi->direct_io = !t->cached;
	fi->keep_cache = t->cached;
	fuse_reply_create(req, &e, fi);
}

static void t_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
    mode_t mode, dev_t rdev)
{
	(void)rdev;
	if (!S_ISREG(mode)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	make(req, parent, name, mode, NULL);
}

static void t_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
    mode_t mode)
{
	make(req, parent, name, S_IFDIR | (mode & 07777), NULL);
}

static void t_create(fuse_req_t req, fuse_ino_t parent, const char *name,
    mode_t mode, struct fuse_file_info *fi)
{
	make(req, parent, name, S_IFREG | (mode & 07777), fi);
}

static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name,
    bool dir)
{
	struct trivfs *t = tfs(req);
	fuse_ino_t ino;
	int rv = 0;

	pthread_mutex_lock(&t->mu);
	ino = hash_find(t, parent, name);
	if (ino == 0)
		rv = -ENOENT;
	else if (dir && !S_ISDIR(t->nodes[ino].mode))
		rv = -ENOTDIR;
	else if (!dir && S_ISDIR(t->nodes[ino].mode))
		rv = -EISDIR;
	else if (dir && t->nodes[ino].nents > 0)
		rv = -ENOTEMPTY;
	else
		node_unlink(t, ino, true);
	pthread_mutex_unlock(&t->mu);
	fuse_reply_err(req, -rv);
}

static void t_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, false);
}

static void t_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, true);
}

static void t_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
    fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct trivfs *t = tfs(req);
	fuse_ino_t ino, old;
	char *nm;
	int rv = 0;

	if (flags != 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	pthread_mutex_lock(&t->mu);
	ino = hash_find(t, parent, name);
	old = hash_find(t, newparent, newname);
	if (ino == 0) {
		rv = -ENOENT;
	} else if (old == ino) {
		rv = 0;
	} else if (old != 0 && S_ISDIR(t->nodes[old].mode)) {
		rv = -EISDIR; /* not needed by the benchmark */
	} else if ((nm = strdup(newname)) == NULL) {
		rv = -ENOMEM;
	} else {
		/* The node keeps its number (and its children their hash
		 * entries, keyed by it); only its name and parent change. */
		if (old != 0)
			node_unlink(t, old, true);
		node_unlink(t, ino, false);
		free(t->nodes[ino].name);
		t->nodes[ino].name = nm;
		rv = node_link(t, newparent, ino);
		if (rv != 0) /* out of memory: the node is lost */
			node_free(t, ino);
	}
	pthread_mutex_unlock(&t->mu);
	fuse_reply_err(req, -rv);
}

static void t_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct trivfs *t = tfs(req);
	int rv = 0;

	pthread_mutex_lock(&t->mu);
	if (!valid(t, ino))
		rv = -ENOENT;
	else if (S_ISDIR(t->nodes[ino].mode))
		rv = -EISDIR;
	else if (fi->flags & O_TRUNC)
		rv = resize(&t->nodes[ino], 0);
	pthread_mutex_unlock(&t->mu);
	if (rv != 0) {
		fuse_reply_err(req, -rv);
		return;
	}
	fi->direct_io = !t->cached;
	fi->keep_cache = t->cached;
	fuse_reply_open(req, fi);
}

static void t_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct trivfs *t = tfs(req);
	struct tnode *n;
	char *buf = NULL;
	size_t len = 0;

	(void)fi;
	pthread_mutex_lock(&t->mu);
	if (!valid(t, ino)) {
		pthread_mutex_unlock(&t->mu);
		fuse_reply_err(req, ENOENT);
		return;
	}
	n = &t->nodes[ino];
	if ((size_t)off < n->size) {
		len = n->size - (size_t)off < size ? n->size - (size_t)off
		                                   : size;
		buf = malloc(len);
		if (buf == NULL) {
			pthread_mutex_unlock(&t->mu);
			fuse_reply_err(req, ENOMEM);
			return;
		}
		memcpy(buf, n->data + off, len);
	}
	pthread_mutex_unlock(&t->mu);
	fuse_reply_buf(req, buf, len);
	free(buf);
}

static void t_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
    size_t size, off_t off, struct fuse_file_info *fi)
{
	struct trivfs *t = tfs(req);
	struct tnode *n;
	int rv = 0;

	(void)fi;
	pthread_mutex_lock(&t->mu);
	if (!valid(t, ino)) {
		rv = -ENOENT;
	} else {
		n = &t->nodes[ino];
		if ((size_t)off + size > n->size)
			rv = resize(n, (size_t)off + size);
		if (rv == 0) {
			memcpy(n->data + off, buf, size);
			now(&n->mtime);
		}
	}
	pthread_mutex_unlock(&t->mu);
	if (rv != 0)
		fuse_reply_err(req, -rv);
	else
		fuse_reply_write(req, size);
}

static void t_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
    struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void t_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct trivfs *t = tfs(req);
	int rv = 0;

	pthread_mutex_lock(&t->mu);
	if (!valid(t, ino))
		rv = ENOENT;
	else if (!S_ISDIR(t->nodes[ino].mode))
		rv = ENOTDIR;
	pthread_mutex_unlock(&t->mu);
	if (rv != 0)
		fuse_reply_err(req, rv);
	else
		fuse_reply_open(req, fi);
}

/* Offsets: 1 ".", 2 "..", 3 + i entry i. */
static void t_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct trivfs *t = tfs(req);
	struct tnode *d;
	char *buf = malloc(size);
	size_t used = 0;
	struct stat st;

	(void)fi;
	if (buf == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&t->mu);
	if (!valid(t, ino)) {
		pthread_mutex_unlock(&t->mu);
		free(buf);
		fuse_reply_err(req, ENOENT);
		return;
	}
	d = &t->nodes[ino];
	for (off_t o = off; (size_t)o < d->nents + 2; o++) {
		const char *name;
		size_t need;

		memset(&st, 0, sizeof(st));
		if (o == 0) {
			name = ".";
			st.st_ino = ino;
			st.st_mode = S_IFDIR;
		} else if (o == 1) {
			name = "..";
			st.st_ino = d->parent ? d->parent : ino;
			st.st_mode = S_IFDIR;
		} else {
			fuse_ino_t c = d->ents[o - 2];

			name = t->nodes[c].name;
			st.st_ino = c;
			st.st_mode = t->nodes[c].mode;
		}
		need = fuse_add_direntry(req, buf + used, size - used, name,
		    &st, o + 1);
		if (need > size - used)
			break;
		used += need;
	}
	pthread_mutex_unlock(&t->mu);
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void t_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = 1u << 24;
	sv.f_bfree = 1u << 23;
	sv.f_bavail = 1u << 23;
	sv.f_files = 1u << 24;
	sv.f_ffree = 1u << 23;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops trivfs_ops = {
	.init = t_init,
	.lookup = t_lookup,
	.getattr = t_getattr,
	.setattr = t_setattr,
	.mknod = t_mknod,
	.mkdir = t_mkdir,
	.unlink = t_unlink,
	.rmdir = t_rmdir,
	.rename = t_rename,
	.open = t_open,
	.read = t_read,
	.write = t_write,
	.fsync = t_fsync,
	.opendir = t_opendir,
	.readdir = t_readdir,
	.statfs = t_statfs,
	.create = t_create,
};

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config lc = { .clone_fd = 0, .max_idle_threads = 16 };
	struct trivfs t;
	struct fuse_session *se;
	const char *mnt = NULL;
	int rv = 1;

	memset(&t, 0, sizeof(t));
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc &&
		    strcmp(argv[i + 1], "cached") == 0) {
			t.cached = true;
			i++;
		} else if (mnt == NULL && argv[i][0] != '-') {
			mnt = argv[i];
		} else {
			mnt = NULL;
			break;
		}
	}
	if (mnt == NULL) {
		fprintf(stderr, "usage: trivfs MOUNTPOINT [-o cached]\n");
		return 2;
	}
	t.timeout = t.cached ? 1.0 : 0.0;
	pthread_mutex_init(&t.mu, NULL);
	t.capnodes = 1024;
	t.nodes = calloc(t.capnodes, sizeof(*t.nodes));
	if (t.nodes == NULL || hash_grow(&t) != 0) {
		fprintf(stderr, "trivfs: out of memory\n");
		free(t.nodes);
		return 1;
	}
	/* 0 unused; 1 = FUSE_ROOT_ID, its own parent. */
	t.nnodes = 2;
	t.nodes[FUSE_ROOT_ID].used = true;
	t.nodes[FUSE_ROOT_ID].mode = S_IFDIR | 0755;
	t.nodes[FUSE_ROOT_ID].name = strdup("");
	now(&t.nodes[FUSE_ROOT_ID].mtime);
	t.nodes[FUSE_ROOT_ID].ctime = t.nodes[FUSE_ROOT_ID].mtime;

	if (fuse_opt_add_arg(&args, "trivfs") != 0 ||
	    fuse_opt_add_arg(&args, "-o") != 0 ||
	    fuse_opt_add_arg(&args,
	        "fsname=trivfs,subtype=trivfs,default_permissions") != 0)
		goto out;
	se = fuse_session_new(&args, &trivfs_ops, sizeof(trivfs_ops), &t);
	if (se == NULL)
		goto out;
	if (fuse_set_signal_handlers(se) != 0)
		goto destroy;
	if (fuse_session_mount(se, mnt) != 0)
		goto handlers;
	rv = fuse_session_loop_mt(se, &lc) == 0 ? 0 : 1;
	fuse_session_unmount(se);
handlers:
	fuse_remove_signal_handlers(se);
destroy:
	fuse_session_destroy(se);
out:
	fuse_opt_free_args(&args);
	for (size_t i = 0; i < t.nnodes; i++)
		node_free(&t, i);
	for (size_t i = 0; i < t.hsize; i++)
		for (struct hent *e = t.hash[i], *next; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(t.hash);
	free(t.nodes);
	pthread_mutex_destroy(&t.mu);
	return rv;
}
