/*
 * disk.c - the member's persistence thread: group commit of raft_ready
 * batches.
 *
 * The loop queues one struct disk_job per batch that has something to
 * write or messages that must wait for the disk.  This thread takes every
 * queued job at once, writes them in order (snapshot, entries, hard state),
 * then makes them durable with ONE storage_sync() — under load many
 * batches, from many submitters, share one fdatasync.  It then hands the
 * whole chain back to the loop, which sends their msgs_after_persist and
 * calls raft_persisted() for each, oldest first.
 *
 * A small batch while this thread is idle is persisted by the loop itself
 * (disk_persist_inline).
 *
 * A failed write or sync poisons the storage; the member must never
 * acknowledge again, so this thread stops the process with the storage's
 * one-line message (naming file, offset and cause).
 */
#include <stdlib.h>

#include "raft/util/logging.h"
#include "raft/member/node_int.h"

void disk_job_free(struct disk_job *j)
{
	if (j == NULL)
		return;
	free(j->entries);
	free(j->blob);
	free(j->snap_data);
	free(j->after);
	free(j);
}

/* A chain handed back (disk_job.next), oldest first. */
void disk_job_free_chain(struct disk_job *j)
{
	while (j != NULL) {
		struct disk_job *next = j->next;

		disk_job_free(j);
		j = next;
	}
}

static void fail_write(struct node *n, int rv)
{
	fatalx("storage failed, stopping: %s", storage_errmsg(n->st)[0] ?
	    storage_errmsg(n->st) : rk_strerror(rv));
}

/* Entries (replacing any suffix from the first one on), then the hard
 * state when @hs is not NULL: the order raft.h asks for. */
static void write_log(struct node *n, const struct raft_entry *entries,
    uint32_t count, const struct raft_hard_state *hs)
{
	int rv = 0;

	if (count > 0) {
		rv = storage_append(n->st, entries, count);
		atomic_fetch_add(&n->entries_persisted, count);
	}
	if (rv == 0 && hs != NULL)
		rv = storage_save_hard_state(n->st, hs);
	if (rv != 0)
		fail_write(n, rv);
}

static void write_job(struct node *n, struct disk_job *j)
{
	int rv = 0;

	if (j->has_snapshot) {
		rv = storage_save_snapshot(n->st, &j->snap, j->snap_data,
		    j->snap_len);
		if (rv == RAFT_ESTALE)
			rv = 0; /* an older one than we hold: nothing to do */
		if (rv == 0) {
			pthread_mutex_lock(&n->mu);
			n->compact_pending = false;
			pthread_mutex_unlock(&n->mu);
		}
	}
	if (rv != 0)
		fail_write(n, rv);
	write_log(n, j->entries, j->n_entries, j->hs_changed ? &j->hs : NULL);
}

static void publish_stats(struct node *n)
{
	struct storage_stats st;

	storage_stats(n->st, &st);
	atomic_store(&n->log_bytes, st.log_bytes);
	atomic_store(&n->syncs, st.syncs);
	atomic_store(&n->fsyncs, st.fsyncs);
}

/*
 * A small batch written and synced on the loop thread itself, the
 * entries borrowed from the core.  The loop calls this only while no
 * batch is at this thread (disk_inflight == 0: the thread has handed
 * everything back and touches the storage no more), so the storage still
 * has one user at a time and batches stay in order.  It saves the two
 * hand-offs (loop to disk, disk to loop) that dominate an idle cluster's
 * commit latency; under load batches grow and go to this thread.
 */
void disk_persist_inline(struct node *n, const struct raft_ready *rd)
{
	int rv;

	write_log(n, rd->entries, rd->n_entries, rd->hs_changed ? &rd->hs :
	    NULL);
	rv = storage_sync(n->st);
	if (rv != 0)
		fatalx("storage sync failed, stopping: %s",
		    storage_errmsg(n->st));
	publish_stats(n);
}

void *disk_main(void *arg)
{
	struct node *n = arg;
	struct mbox_item *chain;

	while ((chain = mbox_wait_all(&n->disk_box)) != NULL) {
		struct disk_job *first = NULL, **tail = &first;
		struct loop_req *req;
		int rv;

		while (chain) {
			struct disk_job *j = (struct disk_job *)chain;

			chain = chain->next;
			write_job(n, j);
			j->next = NULL;
			*tail = j;
			tail = &j->next;
		}
		rv = storage_sync(n->st);
		if (rv != 0)
			fatalx("storage sync failed, stopping: %s",
			    storage_errmsg(n->st));
		publish_stats(n);
		req = calloc(1, sizeof(*req));
		if (req == NULL)
			fatalx("out of memory handing back a disk batch");
		req->kind = LOOP_DISK_DONE;
		req->jobs = first;
		if (node_post(n, req) != 0) {
			/* Stopping: nobody will send or count these. */
			disk_job_free_chain(first);
			free(req);
		}
	}
	return NULL;
}
