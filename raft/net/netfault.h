/*
 * netfault.h - the transport's fault injection: per-peer drops, delays
 * and partitions, and the bounded queue of delayed frames.
 *
 * Test machinery for real member processes (transport_set_fault()).  A
 * transport has a struct netfault only when it was created with
 * fault_injection set, so on a normal member none of this is reachable.
 *
 * Faults apply to the messages this member sends (one direction of a
 * link), as a test harness that cuts links one way expects.
 *
 * Threads: netfault_set() and netfault_blocked() may be called from any
 * thread (the settings are behind a mutex, so a test's control channel can
 * change them while the member runs); everything else belongs to the
 * thread that owns the transport.  No sockets here: the transport sends
 * what netfault_pop_due() hands back.
 */
#ifndef RAFTKV_NETFAULT_H
#define RAFTKV_NETFAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

/* A frame held back by a delay.  One allocation: free() it when done. */
struct netfault_frame {
	uint64_t due_ms;
	uint64_t seq; /* equal due times leave in the order they came */
	raft_id peer;
	size_t len;
	uint8_t data[];
};

enum netfault_verdict {
	NETFAULT_SEND = 0, /* no fault: send now */
	NETFAULT_DROP = 1, /* blocked, or lost at random */
	NETFAULT_DELAY = 2, /* hold for the returned delay */
};

struct netfault;

/*
 * A fault table for the @n_peers members @peers (all faults off), holding
 * at most @max_frames delayed frames of @max_bytes in all; @seed drives the
 * random drops (0: seeded from the clock).
 * Returns 0 and sets *@out, -EINVAL (@n_peers over RAFT_MAX_MEMBERS,
 * @max_frames 0), -ENOMEM.
 */
int netfault_new(const raft_id *peers, uint32_t n_peers, uint32_t max_frames,
    uint64_t max_bytes, uint64_t seed, struct netfault **out);

/* Free the table and every frame still held.  Accepts NULL. */
void netfault_free(struct netfault *nf);

/* Peers a table holds at most (members come and go: each keeps its slot,
 * so a member added back finds its settings). */
#define NETFAULT_MAX_PEERS (4 * RAFT_MAX_MEMBERS)

/* A member added at runtime (no fault set).  0 (also when known already)
 * or -ENOSPC.  Any thread. */
int netfault_add_peer(struct netfault *nf, raft_id peer);

/* Replace @peer's faults (see transport_set_fault()).  Any thread.
 * Returns 0, -EINVAL (@peer not in the table, @drop_pct > 100). */
int netfault_set(struct netfault *nf, raft_id peer, unsigned drop_pct,
    unsigned delay_ms, bool blocked);

/* Is @peer blocked (nothing is sent to it)?  Any thread. */
bool netfault_blocked(struct netfault *nf, raft_id peer);

/* What to do with the next message to @peer (draws the random drop).
 * Sets *@delay_ms for NETFAULT_DELAY. */
enum netfault_verdict netfault_outgoing(struct netfault *nf, raft_id peer,
    unsigned *delay_ms);

/*
 * Queue a frame of @len bytes for @peer, due at @due_ms, and return its
 * data buffer for the caller to fill at once (the frame is queued already).
 * NULL when the queue is full (count or bytes) or memory is short: the
 * frame is dropped.
 */
uint8_t *netfault_hold(struct netfault *nf, raft_id peer, size_t len,
    uint64_t due_ms);

/* Milliseconds until the earliest held frame is due: -1 if none, else 0
 * or more. */
long netfault_next_ms(const struct netfault *nf, uint64_t now_ms);

/* The earliest frame due at @now_ms, taken off the queue (the caller
 * owns it: free()), or NULL. */
struct netfault_frame *netfault_pop_due(struct netfault *nf, uint64_t now_ms);

#endif
