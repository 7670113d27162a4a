/*
 * netfault.c - per-peer fault settings and the delayed-frame queue
 * (contract in netfault.h).
 *
 * Delayed frames wait, already encoded, in a binary min-heap ordered by
 * (due time, sequence number): a delay that is the same for every frame
 * keeps their order, and a delay changed at run time reorders them as a
 * real network might.  The queue is bounded in frames and bytes so that a
 * long delay on a busy link cannot eat the member's memory; beyond the
 * bound frames are dropped, which Raft tolerates.
 *
 * Random drops use xorshift64 from the seed: plenty for tests, and a run
 * with a fixed seed drops the same messages (given the same sends).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "raft/net/netfault.h"

struct fault {
	raft_id peer;
	unsigned drop_pct;
	unsigned delay_ms;
	bool blocked;
};

struct netfault {
	pthread_mutex_t mu; /* guards faults[] */
	uint32_t n_faults;
	struct fault faults[NETFAULT_MAX_PEERS];
	uint64_t rng; /* owner thread only, as below */
	struct netfault_frame **heap;
	uint32_t n_frames;
	uint32_t max_frames;
	uint64_t bytes;
	uint64_t max_bytes;
	uint64_t seq;
};

int netfault_new(const raft_id *peers, uint32_t n_peers, uint32_t max_frames,
    uint64_t max_bytes, uint64_t seed, struct netfault **out)
{
	struct netfault *nf;

	if (n_peers > RAFT_MAX_MEMBERS || max_frames == 0)
		return -EINVAL;
	nf = calloc(1, sizeof(*nf));
	if (nf == NULL)
		return -ENOMEM;
	nf->heap = calloc(max_frames, sizeof(*nf->heap));
	if (nf->heap == NULL) {
		free(nf);
		return -ENOMEM;
	}
	pthread_mutex_init(&nf->mu, NULL);
	nf->n_faults = n_peers;
	for (uint32_t i = 0; i < n_peers; i++)
		nf->faults[i].peer = peers[i];
	if (seed == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
		    (uint64_t)(uintptr_t)nf;
	}
	nf->rng = seed | 1; /* xorshift must not start at 0 */
	nf->max_frames = max_frames;
	nf->max_bytes = max_bytes;
	*out = nf;
	return 0;
}

void netfault_free(struct netfault *nf)
{
	if (nf == NULL)
		return;
	for (uint32_t i = 0; i < nf->n_frames; i++)
		free(nf->heap[i]);
	free(nf->heap);
	pthread_mutex_destroy(&nf->mu);
	free(nf);
}

/* Call with nf->mu held. */
static struct fault *find(struct netfault *nf, raft_id peer)
{
	for (uint32_t i = 0; i < nf->n_faults; i++)
		if (nf->faults[i].peer == peer)
			return &nf->faults[i];
	return NULL;
}

int netfault_add_peer(struct netfault *nf, raft_id peer)
{
	int rv = 0;

	pthread_mutex_lock(&nf->mu);
	if (find(nf, peer) == NULL) {
		if (nf->n_faults < NETFAULT_MAX_PEERS)
			nf->faults[nf->n_faults++] = (struct fault){
				.peer = peer
			};
		else
			rv = -ENOSPC;
	}
	pthread_mutex_unlock(&nf->mu);
	return rv;
}

int netfault_set(struct netfault *nf, raft_id peer, unsigned drop_pct,
    unsigned delay_ms, bool blocked)
{
	struct fault *f;
	int rv = -EINVAL;

	if (drop_pct > 100)
		return -EINVAL;
	pthread_mutex_lock(&nf->mu);
	f = find(nf, peer);
	if (f != NULL) {
		f->drop_pct = drop_pct;
		f->delay_ms = delay_ms;
		f->blocked = blocked;
		rv = 0;
	}
	pthread_mutex_unlock(&nf->mu);
	return rv;
}

bool netfault_blocked(struct netfault *nf, raft_id peer)
{
	struct fault *f;
	bool blocked;

	pthread_mutex_lock(&nf->mu);
	f = find(nf, peer);
	blocked = f != NULL && f->blocked;
	pthread_mutex_unlock(&nf->mu);
	return blocked;
}

static uint64_t next_random(struct netfault *nf)
{
	nf->rng ^= nf->rng << 13;
	nf->rng ^= nf->rng >> 7;
	nf->rng ^= nf->rng << 17;
	return nf->rng;
}

enum netfault_verdict netfault_outgoing(struct netfault *nf, raft_id peer,
    unsigned *delay_ms)
{
	struct fault copy = { 0 }, *f;

	pthread_mutex_lock(&nf->mu);
	f = find(nf, peer);
	if (f != NULL)
		copy = *f;
	pthread_mutex_unlock(&nf->mu);
	if (copy.blocked ||
	    (copy.drop_pct > 0 && next_random(nf) % 100 < copy.drop_pct))
		return NETFAULT_DROP;
	*delay_ms = copy.delay_ms;
	return copy.delay_ms > 0 ? NETFAULT_DELAY : NETFAULT_SEND;
}

static bool before(const struct netfault_frame *a,
    const struct netfault_frame *b)
{
	return a->due_ms < b->due_ms ||
	    (a->due_ms == b->due_ms && a->seq < b->seq);
}

uint8_t *netfault_hold(struct netfault *nf, raft_id peer, size_t len,
    uint64_t due_ms)
{
	struct netfault_frame *fr;
	uint32_t i;

	if (nf->n_frames >= nf->max_frames || len > nf->max_bytes ||
	    nf->bytes > nf->max_bytes - len)
		return NULL;
	fr = malloc(sizeof(*fr) + len);
	if (fr == NULL)
		return NULL;
	fr->due_ms = due_ms;
	fr->seq = nf->seq++;
	fr->peer = peer;
	fr->len = len;
	nf->bytes += len;
	/* Sift up. */
	for (i = nf->n_frames++; i > 0 && before(fr, nf->heap[(i - 1) / 2]);
	     i = (i - 1) / 2)
		nf->heap[i] = nf->heap[(i - 1) / 2];
	nf->heap[i] = fr;
	return fr->data;
}

long netfault_next_ms(const struct netfault *nf, uint64_t now_ms)
{
	uint64_t due;

	if (nf->n_frames == 0)
		return -1;
	due = nf->heap[0]->due_ms;
	return due <= now_ms ? 0 : (long)(due - now_ms);
}

struct netfault_frame *netfault_pop_due(struct netfault *nf, uint64_t now_ms)
{
	struct netfault_frame *top, *last;
	uint32_t i = 0, n;

	if (nf->n_frames == 0 || nf->heap[0]->due_ms > now_ms)
		return NULL;
	top = nf->heap[0];
	last = nf->heap[--nf->n_frames];
	n = nf->n_frames;
	/* Sift the last frame down from the root. */
	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && before(nf->heap[c + 1], nf->heap[c]))
			c++;
		if (!before(nf->heap[c], last))
			break;
		nf->heap[i] = nf->heap[c];
		i = c;
	}
	if (n > 0)
		nf->heap[i] = last;
	nf->bytes -= top->len;
	return top;
}
