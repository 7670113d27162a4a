/*
 * progress.c - per-follower replication state kept by the leader
 * (see progress.h for the state diagram).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raft/progress.h"

int progress_init(struct progress *p, raft_id id, uint32_t max_inflight,
    uint64_t max_inflight_bytes)
{
	memset(p, 0, sizeof(*p));
	p->id = id;
	p->infl_cap = max_inflight ? max_inflight : 1;
	p->infl_max_bytes = max_inflight_bytes;
	p->infl = calloc(p->infl_cap, sizeof(*p->infl));
	return p->infl ? 0 : -ENOMEM;
}

void progress_close(struct progress *p)
{
	free(p->infl);
	p->infl = NULL;
}

static void infl_clear(struct progress *p)
{
	p->infl_head = 0;
	p->infl_count = 0;
	p->infl_bytes = 0;
}

void progress_reset(struct progress *p, raft_index last_index)
{
	p->state = PROGRESS_PROBE;
	p->match = 0;
	p->next = last_index + 1;
	p->probe_sent = false;
	p->probe_last = 0;
	p->recent_active = false;
	p->active_prev = false;
	p->commit_sent = 0;
	p->match_at_hb = 0;
	p->snap_index = 0;
	p->snap_offset = 0;
	infl_clear(p);
}

void progress_become_probe(struct progress *p)
{
	if (p->state == PROGRESS_SNAPSHOT) {
		/* The follower holds the snapshot: continue right after it. */
		raft_index after = p->snap_index + 1;

		p->next = p->match + 1 > after ? p->match + 1 : after;
	} else {
		p->next = p->match + 1;
	}
	p->state = PROGRESS_PROBE;
	p->probe_sent = false;
	infl_clear(p);
}

void progress_become_replicate(struct progress *p)
{
	raft_index probed = p->probe_last;

	p->state = PROGRESS_REPLICATE;
	p->next = p->match + 1;
	p->probe_sent = false;
	infl_clear(p);
	/* The latest probe may still be on its way with entries past match:
	 * continue after them instead of sending them again (if it was lost,
	 * the follower rejects the next append and we back up). */
	if (probed > p->match)
		progress_sent(p, probed, 0);
	p->probe_last = 0;
}

void progress_become_snapshot(struct progress *p, raft_index index)
{
	p->state = PROGRESS_SNAPSHOT;
	p->snap_index = index;
	p->snap_offset = 0;
	p->snap_idle_ticks = 0;
	p->probe_sent = false;
	infl_clear(p);
}

bool progress_window_full(const struct progress *p)
{
	return p->infl_count >= p->infl_cap ||
	    (p->infl_max_bytes && p->infl_bytes >= p->infl_max_bytes);
}

bool progress_paused(const struct progress *p)
{
	switch (p->state) {
	case PROGRESS_PROBE:
		return p->probe_sent;
	case PROGRESS_REPLICATE:
		return progress_window_full(p);
	case PROGRESS_SNAPSHOT:
		return true;
	}
	return true;
}

void progress_sent(struct progress *p, raft_index last, uint64_t bytes)
{
	uint32_t slot;

	if (p->state == PROGRESS_PROBE) {
		p->probe_sent = true;
		p->probe_last = last;
		return;
	}
	if (p->state != PROGRESS_REPLICATE)
		return;
	if (last >= p->next)
		p->next = last + 1;
	if (p->infl_count >= p->infl_cap)
		return; /* forced through a full window: not tracked */
	slot = (p->infl_head + p->infl_count) % p->infl_cap;
	p->infl[slot].last = last;
	p->infl[slot].bytes = bytes;
	p->infl_count++;
	p->infl_bytes += bytes;
}

void progress_free_to(struct progress *p, raft_index index)
{
	while (p->infl_count > 0 && p->infl[p->infl_head].last <= index) {
		p->infl_bytes -= p->infl[p->infl_head].bytes;
		p->infl_head = (p->infl_head + 1) % p->infl_cap;
		p->infl_count--;
	}
}

void progress_free_first(struct progress *p)
{
	if (p->infl_count == 0)
		return;
	progress_free_to(p, p->infl[p->infl_head].last);
}
