/*
 * transport_int.h - struct transport and the helpers shared by the
 * transport's files (transport.c: life cycle, sockets, sending, faults;
 * transport_recv.c: receiving and validation).  Not for anyone else.
 */
#ifndef RAFTKV_TRANSPORT_INT_H
#define RAFTKV_TRANSPORT_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "raft/net/frame.h"
#include "raft/net/transport.h"

struct auth;
struct netfault;

/* Why a frame was rejected: one counter and one log rate limit each. */
enum transport_reason {
	TR_MALFORMED,
	TR_VERSION,
	TR_CLUSTER,
	TR_SENDER,
	TR_FORGED,
	TR_MISROUTED,
	TR_AUTH,
	TR_REASONS
};

/* At most one log line per LOG_EVERY_MS; the rest are counted. */
struct transport_ratelimit {
	uint64_t last_ms;
	uint64_t unlogged;
};

struct transport_peer {
	raft_id id;
	char endpoint[256]; /* where the DEALER connects */
	char curve_public[TRANSPORT_KEY_Z85_LEN]; /* the peer's key, or "" */
	struct transport_peer *next_retired; /* on transport.retired */
	void *sock; /* DEALER connected to the peer's ROUTER */
	void *monitor; /* PAIR: the DEALER's handshake failures */
	uint64_t reopen_at_ms; /* a refused handshake: reopen then */
	char user_id[24]; /* decimal id: what ZAP names its key */
	bool reachable;
	/* Bytes handed to ZeroMQ for this peer and not yet written to the
	 * kernel (ZeroMQ frees a sent frame from its I/O thread). */
	atomic_uint_fast64_t queued_bytes;
	uint64_t send_bytes_max;
	struct transport_ratelimit log;
};

struct transport {
	void *ctx; /* ours alone: one ZAP handler each */
	void *router;
	struct auth *auth; /* NULL in plaintext mode */
	bool curve;
	uint64_t cluster_id;
	raft_id self;
	uint32_t n_peers;
	/* Allocated one by one and never moved: ZeroMQ's free callbacks of
	 * frames still queued point at their peer.  A removed peer's socket
	 * is closed and the peer kept on @retired until transport_free(). */
	struct transport_peer *peers[RAFT_MAX_MEMBERS];
	struct transport_peer *retired;
	uint64_t monitor_seq; /* names the DEALERs' monitors */
	raft_id ids[RAFT_MAX_MEMBERS]; /* every member, for the filter */
	struct transport_config cfg; /* as created, members as last set;
	                                 the secret is wiped at free */
	struct frame_filter filter;
	char endpoint[256];

	zmq_msg_t held; /* the frame lent by transport_recv */
	bool holding;

	struct transport_stats stats;
	struct transport_ratelimit reject_log[TR_REASONS];

	struct netfault *faults; /* NULL unless fault injection */
};

/* CLOCK_MONOTONIC in milliseconds (the clock of the timer API). */

/* True (and @rl advanced) if a line may be logged now; *@unlogged is how
 * many were suppressed since the last one. */
bool transport__may_log(struct transport_ratelimit *rl, uint64_t *unlogged);

/* The peer with @id, or NULL (self and strangers are not peers). */
struct transport_peer *transport__peer(const struct transport *t, raft_id id);

#endif
