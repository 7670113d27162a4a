/*
 * notify.c - the invalidation thread (see notify.h).  A ring of copied
 * keys under a mutex the apply hook holds only to enqueue; the thread
 * takes one key at a time, resolves the parent's node id in the inode
 * table (its lock held only for that), then, holding nothing, sends the
 * notification.
 */
#define _GNU_SOURCE /* pipe2, memrchr */
#define FUSE_USE_VERSION 35

#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/fs.h"
#include "fs/inode.h"
#include "fs/notify.h"
#include "raft/util/clock.h"

#define QUEUE_MAX 4096u

struct qkey {
	char *key;
	size_t len;
	bool renamed; /* notifier_push's @renamed */
};

struct notifier {
	struct fs *fs;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool started;
	bool stop;
	bool joined;
	struct qkey q[QUEUE_MAX];
	unsigned head, n;
	uint64_t sent, dropped;
	/* Keys pushed (or dropped), and keys handled (sent or dropped):
	 * notifier_caught_up(). */
	uint64_t pushed, done;
	uint64_t lost_ms; /* mono_ms() of the last drop; 0: none */
};

struct notifier *notifier_new(struct fs *fs)
{
	struct notifier *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->fs = fs;
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->cv, NULL);
	return n;
}

/*
 * Tell the kernel that @key changed.  The name is invalidated only when
 * it may now lead elsewhere: @renamed, or the key gone, or at an inode
 * the table does not know at that name.  A key that changed in place (its
 * contents or attributes, a directory's mtime when an entry is made in it)
 * keeps its dentry: an invalidated dentry is unhashed, and a process whose
 * working directory it is gets ENOENT from getcwd(3) from then on
 * (CPython's test suite run in a mount directory failed at its first
 * os.getcwd(); tests/fs/test_fs_posix.sh).
 */
static void send_one(struct notifier *n, const char *key, size_t len,
    bool renamed)
{
	struct fs *fs = n->fs;
	const char *slash = memrchr(key, '/', len);
	uint64_t parent, ino = 0, at;
	struct kv_attr a;
	bool same = false;
	size_t plen;

	if (slash == NULL)
		return; /* not a key the mount shows */
	plen = (size_t)(slash - key);
	inode_lock(fs->inodes);
	parent = inode_at_locked(fs->inodes, key, plen);
	if (!renamed) {
		at = inode_at_locked(fs->inodes, key, len);
		same = at != 0 &&
		    kv_get(fs->kv, key, len, &a, NULL, NULL) == 0 &&
		    a.inode == at;
	}
	if (fs->opt.relaxed) {
		/* The inode now at @key (one of several names of a hard
		 * link, which the table may know by another). */
		if (kv_get(fs->kv, key, len, &a, NULL, NULL) == 0)
			ino = a.inode;
		else
			ino = inode_at_locked(fs->inodes, key, len);
	}
	inode_unlock(fs->inodes);
	if (parent != 0 && !same && len - plen - 1 > 0 &&
	    len - plen - 1 <= FS_NAME_MAX) {
		fuse_lowlevel_notify_inval_entry(fs->se, parent, slash + 1,
		    len - plen - 1);
		__atomic_fetch_add(&n->sent, 1, __ATOMIC_RELAXED);
	}
	/*
	 * Strict mode sends no inval_inode: with direct I/O and zero
	 * attribute timeouts the kernel holds no data or attributes to
	 * drop, and an inode invalidation bumps the inode's attribute
	 * version, so a getattr reply in flight at that moment is thrown
	 * away (fstat still shows the new size, the inode keeps the old
	 * one: an mmap then faults with SIGBUS past the stale end; seen in
	 * test_fs_mount's model run).  Relaxed mode keeps attributes and
	 * pages, so it must drop them: the size the kernel keeps after such
	 * a race is marked stale and the next stat refetches it, but an
	 * mmap of the file may fault past the old end until then (documented
	 * in raftkv(7)).
	 */
	if (ino != 0) {
		int rv = fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);

		__atomic_fetch_add(&n->sent, 1, __ATOMIC_RELAXED);
		inode_lock(fs->inodes);
		inode_inval_result_locked(fs->inodes, ino, rv == 0);
		inode_unlock(fs->inodes);
	}
}

static void *notifier_main(void *arg)
{
	struct notifier *n = arg;

	pthread_mutex_lock(&n->mu);
	for (;;) {
		struct qkey k;

		while (n->n == 0 && !n->stop)
			pthread_cond_wait(&n->cv, &n->mu);
		if (n->stop)
			break;
		k = n->q[n->head];
		n->head = (n->head + 1) % QUEUE_MAX;
		n->n--;
		pthread_mutex_unlock(&n->mu);
		send_one(n, k.key, k.len, k.renamed);
		free(k.key);
		pthread_mutex_lock(&n->mu);
		n->done++;
	}
	pthread_mutex_unlock(&n->mu);
	return NULL;
}

int notifier_start(struct notifier *n)
{
	int rv = pthread_create(&n->thread, NULL, notifier_main, n);

	if (rv != 0)
		return -rv;
	pthread_mutex_lock(&n->mu);
	n->started = true;
	pthread_mutex_unlock(&n->mu);
	return 0;
}

int notifier_stop(struct notifier *n, int wait_ms)
{
	struct timespec ts;
	bool joinable;
	int rv;

	if (n == NULL)
		return 0;
	pthread_mutex_lock(&n->mu);
	n->stop = true;
	joinable = n->started && !n->joined;
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->mu);
	if (!joinable)
		return 0;
	ts = clock_after_ms(CLOCK_REALTIME, (uint64_t)wait_ms);
	rv = pthread_timedjoin_np(n->thread, NULL, &ts);
	if (rv != 0)
		return -rv;
	pthread_mutex_lock(&n->mu);
	n->joined = true;
	pthread_mutex_unlock(&n->mu);
	return 0;
}

void notifier_free(struct notifier *n)
{
	if (n == NULL)
		return;
	if (notifier_stop(n, 0) != 0) {
		/* Still blocked (never after the connection was aborted):
		 * leave the thread, it holds only the queue. */
		pthread_detach(n->thread);
		return;
	}
	for (unsigned i = 0; i < n->n; i++)
		free(n->q[(n->head + i) % QUEUE_MAX].key);
	pthread_mutex_destroy(&n->mu);
	pthread_cond_destroy(&n->cv);
	free(n);
}

void notifier_push(struct notifier *n, const void *key, size_t len,
    bool renamed)
{
	char *copy;

	if (n == NULL)
		return;
	pthread_mutex_lock(&n->mu);
	if (!n->started || n->stop || n->n == QUEUE_MAX) {
		if (n->started && !n->stop) {
			n->dropped++;
			n->lost_ms = mono_ms();
		}
		pthread_mutex_unlock(&n->mu);
		return;
	}
	copy = malloc(len + 1);
	if (copy == NULL) {
		n->dropped++;
		n->lost_ms = mono_ms();
		pthread_mutex_unlock(&n->mu);
		return;
	}
	n->pushed++;
	memcpy(copy, key, len);
	copy[len] = '\0';
	n->q[(n->head + n->n) % QUEUE_MAX] = (struct qkey){ copy, len,
		renamed };
	n->n++;
	pthread_cond_signal(&n->cv);
	pthread_mutex_unlock(&n->mu);
}

void notifier_stats(struct notifier *n, uint64_t *sent, uint64_t *dropped)
{
	pthread_mutex_lock(&n->mu);
	*sent = __atomic_load_n(&n->sent, __ATOMIC_RELAXED);
	*dropped = n->dropped;
	pthread_mutex_unlock(&n->mu);
}

uint64_t notifier_mark(struct notifier *n)
{
	uint64_t m;

	pthread_mutex_lock(&n->mu);
	m = n->pushed;
	pthread_mutex_unlock(&n->mu);
	return m;
}

bool notifier_caught_up(struct notifier *n, uint64_t mark, unsigned grace_ms)
{
	bool ok;

	pthread_mutex_lock(&n->mu);
	ok = n->started && !n->stop && n->done >= mark &&
	    (n->lost_ms == 0 || mono_ms() - n->lost_ms > grace_ms);
	pthread_mutex_unlock(&n->mu);
	return ok;
}
