/*
 * persist.c - the member's persistence thread: group commit of raft_ready
 * batches (see persist.h).
 *
 * Dependency: the loop -> this file.  It includes no loop or RSM header:
 * jobs come in through persist_queue() and go back through the
 * persist_done_fn given at persist_new().
 *
 * The loop queues one struct persist_job per batch that has something to
 * write or messages that must wait for the disk.  This thread takes every
 * queued job at once, writes them in order (snapshot, entries, hard state),
 * then makes them durable with ONE storage_sync() — under load many
 * batches, from many submitters, share one fdatasync.  It then hands the
 * whole chain back to the loop, which sends their msgs_after_persist and
 * calls raft_persisted() for each, oldest first (and tells the RSM when a
 * snapshot was saved, so that another compaction may start).
 *
 * A small batch while this thread is idle is persisted by the loop itself
 * (persist_inline).
 *
 * A compaction's snapshot (the log holds the entry it ends at) is written
 * beside the log, by a thread of its own (snap_main): writing and syncing
 * a GiB takes seconds, and in line it held every append and sync queued
 * behind it, on two followers at once, so that nothing could commit
 * meanwhile.  The job carrying it goes back at once without snap_saved;
 * the snapshot exists only once its file is complete and synced and
 * storage_snap_finish() has installed it (rename, hard state, log
 * compaction) on this thread, which the writer asks for by queueing an
 * internal job; that job then tells the loop snap_saved.  A crash
 * before leaves the old snapshot and the whole log (the .tmp is removed
 * at open).  Another snapshot (an InstallSnapshot from the leader) first
 * waits for the write out to finish.
 *
 * A failed write or sync poisons the storage; the member must never
 * acknowledge again, so this thread stops the process with the storage's
 * one-line message (naming file, offset and cause).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "raft/util/clock.h"
#include "raft/util/logging.h"
#include "raft/member/persist.h"

struct persist {
	struct storage *st; /* the thread's, or the loop's inline */
	persist_done_fn done;
	void *done_arg;
	struct mbox box; /* jobs to persist */
	pthread_t thread;
	bool thread_started;

	/* The snapshot written beside the log (snap_main); the fields are
	 * the persister thread's, snap_busy any thread's. */
	pthread_t snap_thread;
	bool snap_running;
	struct storage_snap *snap_w;
	struct raft_snap_buf *snap_buf; /* the writer's reference */
	struct persist_job *snap_done; /* handed to the writer */
	uint64_t snap_t0;
	raft_index snap_index;
	atomic_bool snap_busy;

	atomic_uint_fast64_t log_bytes; /* published after each sync */
	atomic_uint_fast64_t syncs;
	atomic_uint_fast64_t fsyncs;
	atomic_uint_fast64_t entries_persisted;
};

void persist_job_free(struct persist_job *j)
{
	if (j == NULL)
		return;
	free(j->entries);
	free(j->blob);
	raft_snap_buf_unref(j->snap_buf);
	free(j->after);
	free(j);
}

void persist_job_free_chain(struct persist_job *j)
{
	while (j != NULL) {
		struct persist_job *next = j->next;

		persist_job_free(j);
		j = next;
	}
}

static void fail_write(struct persist *p, int rv)
{
	fatalx("storage failed, stopping: %s",
	    storage_errmsg(p->st)[0] ? storage_errmsg(p->st) : rk_strerror(rv));
}

/* Entries (replacing any suffix from the first one on), then the hard
 * state when @hs is not NULL: the order raft.h asks for. */
static void write_log(struct persist *p, const struct raft_entry *entries,
    uint32_t count, const struct raft_hard_state *hs)
{
	int rv = 0;

	if (count > 0) {
		rv = storage_append(p->st, entries, count);
		atomic_fetch_add(&p->entries_persisted, count);
	}
	if (rv == 0 && hs != NULL)
		rv = storage_save_hard_state(p->st, hs);
	if (rv != 0)
		fail_write(p, rv);
}

/* The writer: the file, then the internal job that asks the persister
 * thread to install it. */
static void *snap_main(void *arg)
{
	struct persist *p = arg;
	struct persist_job *d = p->snap_done;

	storage_snap_write(p->snap_w, raft_snap_buf_data(p->snap_buf),
	    raft_snap_buf_len(p->snap_buf));
	if (mbox_put(&p->box, &d->item) != 0)
		persist_job_free(d); /* stopping: persist_main aborts it */
	return NULL;
}

/* Start writing @j's snapshot beside the log.  0, or nonzero when it
 * must be written in line (not a compaction of the log; no memory; no
 * thread). */
static int snap_start(struct persist *p, struct persist_job *j)
{
	struct persist_job *d = calloc(1, sizeof(*d));
	int rv;

	if (d == NULL)
		return -ENOMEM;
	rv = storage_snap_begin(p->st, &j->snap, &p->snap_w);
	if (rv != 0) {
		free(d);
		return rv;
	}
	d->internal = true;
	d->snap.index = j->snap.index;
	p->snap_done = d;
	p->snap_buf = raft_snap_buf_ref(j->snap_buf);
	p->snap_t0 = mono_ms();
	p->snap_index = j->snap.index;
	rv = pthread_create(&p->snap_thread, NULL, snap_main, p);
	if (rv != 0) {
		storage_snap_abort(p->st, p->snap_w);
		raft_snap_buf_unref(p->snap_buf);
		p->snap_w = NULL;
		p->snap_buf = NULL;
		p->snap_done = NULL;
		free(d);
		return -rv;
	}
	p->snap_running = true;
	atomic_store(&p->snap_busy, true);
	return 0;
}

/* Wait for the write out, if any, and install its snapshot (durable on
 * return).  A failed write is fatal, as any failed storage write. */
static void snap_finish(struct persist *p)
{
	int rv;

	if (!p->snap_running)
		return;
	pthread_join(p->snap_thread, NULL);
	p->snap_running = false;
	rv = storage_snap_finish(p->st, p->snap_w);
	p->snap_w = NULL;
	raft_snap_buf_unref(p->snap_buf);
	p->snap_buf = NULL;
	if (rv != 0)
		fail_write(p, rv);
	log_info("snapshot at %llu written in %llu ms, beside the log",
	    (unsigned long long)p->snap_index,
	    (unsigned long long)(mono_ms() - p->snap_t0));
}

static void write_job(struct persist *p, struct persist_job *j)
{
	int rv = 0;

	if (j->has_snapshot) {
		uint64_t t0 = mono_ms();

		/* in order: the one being written first */
		snap_finish(p);
		if (snap_start(p, j) == 0) {
			j->snap_saved = false; /* said by the internal job */
			write_log(p, j->entries, j->n_entries,
			    j->hs_changed ? &j->hs : NULL);
			return;
		}

		rv = storage_save_snapshot(p->st, &j->snap,
		    raft_snap_buf_data(j->snap_buf),
		    raft_snap_buf_len(j->snap_buf));
		if (rv == RAFT_ESTALE)
			rv = 0; /* an older one than we hold: nothing to do */
		j->snap_saved = rv == 0;
		if (rv == 0)
			log_info("snapshot at %llu written in %llu ms",
			    (unsigned long long)j->snap.index,
			    (unsigned long long)(mono_ms() - t0));
	}
	if (rv != 0)
		fail_write(p, rv);
	write_log(p, j->entries, j->n_entries, j->hs_changed ? &j->hs : NULL);
}

static void publish_stats(struct persist *p)
{
	struct storage_stats st;

	storage_stats(p->st, &st);
	atomic_store(&p->log_bytes, st.log_bytes);
	atomic_store(&p->syncs, st.syncs);
	atomic_store(&p->fsyncs, st.fsyncs);
}

/*
 * It saves the two hand-offs (loop to disk, disk to loop) that dominate an
 * idle cluster's commit latency; under load batches grow and go to the
 * thread.
 */
void persist_inline(struct persist *p, const struct raft_ready *rd)
{
	int rv;

	write_log(p, rd->entries, rd->n_entries,
	    rd->hs_changed ? &rd->hs : NULL);
	rv = storage_sync(p->st);
	if (rv != 0)
		fatalx("storage sync failed, stopping: %s",
		    storage_errmsg(p->st));
	publish_stats(p);
}

static void *persist_main(void *arg)
{
	struct persist *p = arg;
	struct mbox_item *chain;

	while ((chain = mbox_wait_all(&p->box)) != NULL) {
		struct persist_job *first = NULL, **tail = &first;
		int rv;

		while (chain) {
			struct persist_job *j = (struct persist_job *)chain;

			chain = chain->next;
			if (!j->internal) {
				write_job(p, j);
			} else {
				/* the write of snapshot j->snap.index is
				 * done (unless finished already) */
				if (p->snap_running &&
				    p->snap_index == j->snap.index)
					snap_finish(p);
				j->snap_saved = true;
			}
			j->next = NULL;
			*tail = j;
			tail = &j->next;
		}
		rv = storage_sync(p->st);
		if (rv != 0)
			fatalx("storage sync failed, stopping: %s",
			    storage_errmsg(p->st));
		publish_stats(p);
		/* The loop may persist in line again once this thread has
		 * nothing more to do with the storage by itself. */
		if (!p->snap_running)
			atomic_store(&p->snap_busy, false);
		if (p->done(p->done_arg, first) != 0)
			persist_job_free_chain(first); /* stopping: nobody will
			                                  send or count these */
	}
	if (p->snap_running) {
		/* Stopping: the snapshot is dropped unfinished (its .tmp is
		 * removed at the next open, the old one stays valid). */
		pthread_join(p->snap_thread, NULL);
		p->snap_running = false;
		storage_snap_abort(p->st, p->snap_w);
		p->snap_w = NULL;
		raft_snap_buf_unref(p->snap_buf);
		p->snap_buf = NULL;
	}
	return NULL;
}

int persist_new(struct storage *st, persist_done_fn done, void *arg,
    struct persist **out)
{
	struct persist *p = calloc(1, sizeof(*p));
	struct storage_stats ss;
	int rv;

	if (p == NULL)
		return -ENOMEM;
	rv = mbox_init(&p->box, false);
	if (rv != 0) {
		free(p);
		return rv;
	}
	p->st = st;
	p->done = done;
	p->done_arg = arg;
	storage_stats(st, &ss);
	atomic_store(&p->log_bytes, ss.log_bytes);
	*out = p;
	return 0;
}

int persist_start(struct persist *p)
{
	int rv = pthread_create(&p->thread, NULL, persist_main, p);

	if (rv != 0)
		return -rv;
	p->thread_started = true;
	return 0;
}

int persist_queue(struct persist *p, struct persist_job *j)
{
	return mbox_put(&p->box, &j->item);
}

void persist_join(struct persist *p)
{
	mbox_shut(&p->box);
	if (p->thread_started)
		pthread_join(p->thread, NULL);
	p->thread_started = false;
}

void persist_free(struct persist *p)
{
	struct mbox_item *chain;

	if (p == NULL)
		return;
	persist_join(p);
	chain = mbox_take_all(&p->box);
	while (chain) {
		struct mbox_item *next = chain->next;

		persist_job_free((struct persist_job *)chain);
		chain = next;
	}
	storage_close(p->st);
	mbox_close(&p->box);
	free(p);
}

void persist_stats(struct persist *p, struct persist_stats *st)
{
	st->log_bytes = atomic_load(&p->log_bytes);
	st->syncs = atomic_load(&p->syncs);
	st->fsyncs = atomic_load(&p->fsyncs);
	st->entries_persisted = atomic_load(&p->entries_persisted);
}

bool persist_snap_busy(struct persist *p)
{
	return atomic_load(&p->snap_busy);
}

uint64_t persist_log_bytes(struct persist *p)
{
	return atomic_load(&p->log_bytes);
}
