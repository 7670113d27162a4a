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

static void write_job(struct persist *p, struct persist_job *j)
{
	int rv = 0;

	if (j->has_snapshot) {
		uint64_t t0 = mono_ms();

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
			write_job(p, j);
			j->next = NULL;
			*tail = j;
			tail = &j->next;
		}
		rv = storage_sync(p->st);
		if (rv != 0)
			fatalx("storage sync failed, stopping: %s",
			    storage_errmsg(p->st));
		publish_stats(p);
		if (p->done(p->done_arg, first) != 0)
			persist_job_free_chain(first); /* stopping: nobody will
			                                  send or count these */
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

uint64_t persist_log_bytes(struct persist *p)
{
	return atomic_load(&p->log_bytes);
}
