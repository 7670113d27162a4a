/*
 * transport.h - ZeroMQ links between the members of a cluster.
 *
 * Each member binds ONE socket for its peers (a ROUTER at its own peer
 * endpoint) and connects one DEALER to each other member.  Messages are
 * one-way, etcd style: an AppendEntries response is just another message
 * travelling the other way, so the leader can pipeline appends without
 * waiting for answers.
 *
 * Sending never blocks.  Every DEALER has ZMQ_IMMEDIATE (nothing is queued
 * for a peer that is not connected), a bounded ZMQ_SNDHWM (at most that
 * many messages queued for a connected but slow peer), ZMQ_LINGER 0, and
 * ZMQ heartbeats (a peer that stops answering is disconnected, which drops
 * its queue).  When ZeroMQ cannot take a message at once it is dropped,
 * counted and transport_send() returns -EAGAIN: Raft retries on its own
 * (the next heartbeat or probe), and a dead or slow peer can never make a
 * member's memory grow.  The bound is in bytes as well as messages:
 * frames queued for a peer and not yet written to the kernel are counted,
 * and a frame that would take them past send_bytes_max is dropped the
 * same way (one frame is always allowed when nothing is queued, so an
 * entry bigger than the cap still goes).  So a peer holds at most
 * send_bytes_max (plus one frame) and the kernel's socket buffers.  On
 * receipt, frames are at most FRAME_MAX_SIZE with at most recv_hwm
 * queued per connection, and only members can connect (CURVE).  ZeroMQ
 * reconnects by itself (ZMQ_RECONNECT_IVL, backing off to
 * ZMQ_RECONNECT_IVL_MAX), so a member that comes back is talked to again
 * without anyone asking.
 *
 * Every message travels in a frame (raft/net/frame.h): a versioned header
 * with the cluster id and the sender's id, then the encoded message.
 * Incoming frames that are malformed, from another cluster or version,
 * from a non-member, forged (the body's sender differs from the header's),
 * misrouted, or (with CURVE) sent with another member's key, are dropped,
 * counted by reason (struct transport_stats) and logged at a bounded rate;
 * transport_recv() never returns them.
 *
 * Authentication.  With CURVE keys in the configuration the ROUTER is a
 * CURVE server and every DEALER a CURVE client that knows the public key
 * of the member it connects to: traffic is encrypted and authenticated.
 * libzmq's CURVE server alone admits ANY client key, so the transport also
 * runs a ZAP handler (raft/net/auth.c) that admits only the members' public
 * keys and names each connection with the member id its key belongs to;
 * every incoming frame's claimed sender must equal that id.  A stranger's
 * key is refused at the handshake, a plaintext client fails the mechanism
 * check, and a member cannot speak for another.  Without keys the
 * transport is plaintext and unauthenticated: anyone who can reach the
 * port can claim to be any member.  That mode is for trusted networks and
 * tests only.
 *
 * Fault injection (tests on real processes).  Only when the transport was
 * created with fault_injection set: transport_set_fault() makes messages to
 * a chosen peer be dropped at random, delayed, or (blocked) all dropped.
 * Faults apply to one direction, this member's sends, so a test can cut a
 * link one way (a member that hears but is not heard); a partition is
 * both members blocking each other.  On a normal member the call returns
 * -EPERM and the send path never looks at the fault table.
 *
 * Threads: a transport is used by one thread (the member's event loop),
 * except transport_set_fault(), which may be called from any thread.  The
 * transport owns its ZeroMQ context; with CURVE, the ZAP handler runs on a
 * small thread of its own.
 *
 * Errors: 0 or a negative code: -errno (-EINVAL, -ENOMEM, -EAGAIN,
 * -EADDRINUSE...) or a FRAME_E* code (frame.h).
 */
#ifndef RAFTKV_TRANSPORT_H
#define RAFTKV_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "raft/net/frame.h"
#include "raft/raft.h"

/* Z85 text of a CURVE key (zmq_curve_keypair), with its terminating NUL. */
#define TRANSPORT_KEY_Z85_LEN 41

struct transport_member {
	raft_id id;
	char endpoint[256]; /* "tcp://127.0.0.1:7001"; for self, where
	                            to bind ("tcp://127.0.0.1:*" picks a port:
	                            see transport_endpoint()) */
	char curve_public[TRANSPORT_KEY_Z85_LEN]; /* "" when CURVE is off */
};

struct transport_config {
	uint64_t
	    cluster_id; /* non-zero; frames of other clusters are refused */
	raft_id self; /* must be one of @members */
	uint32_t n_members; /* 1..RAFT_MAX_MEMBERS, self included */
	struct transport_member members[RAFT_MAX_MEMBERS];
	/* Own CURVE secret key (Z85).  "" = plaintext: then every member's
	 * curve_public must be "" too.  Otherwise every member needs a public
	 * key, and self's must be the one belonging to this secret. */
	char curve_secret[TRANSPORT_KEY_Z85_LEN];

	/* Defaults from transport_config_defaults(). */
	int send_hwm; /* messages queued per connected peer: 1000 */
	uint64_t send_bytes_max; /* and their bytes: 64 MiB */
	int recv_hwm; /* messages queued per incoming connection: 1000 */
	int reconnect_ivl_ms; /* first reconnect attempt after 100 ms */
	int reconnect_ivl_max_ms; /* backing off to 1000 ms */
	int heartbeat_ivl_ms; /* ZMTP PING every 1000 ms */
	int heartbeat_timeout_ms; /* no traffic for 3000 ms: connection dropped */
	int handshake_ivl_ms; /* a handshake must finish within 5000 ms */

	/* Fault injection: off unless set (see transport_set_fault()). */
	bool fault_injection;
	uint64_t fault_seed; /* random drops; 0: seeded from the clock */
	uint32_t max_delayed; /* delayed frames held at most: 4096 */
	uint64_t max_delayed_bytes; /* and their bytes: 64 MiB */
};

/* Fill @c with the defaults above; ids, members and keys empty. */
void transport_config_defaults(struct transport_config *c);

struct transport_stats {
	uint64_t sent; /* frames handed to ZeroMQ */
	uint64_t dropped; /* not taken by ZeroMQ (peer not connected or
	                            at its high-water mark): -EAGAIN */
	uint64_t send_errors; /* refused messages (-EINVAL) and other
	                            send failures */
	uint64_t received; /* frames accepted and handed out */
	uint64_t rejected; /* sum of the rejected_* below */
	uint64_t rejected_malformed; /* FRAME_EMALFORMED, extra message parts */
	uint64_t rejected_version; /* FRAME_EVERSION */
	uint64_t rejected_cluster; /* FRAME_ECLUSTER */
	uint64_t rejected_sender; /* FRAME_ESENDER */
	uint64_t rejected_forged; /* FRAME_EFORGED */
	uint64_t rejected_misrouted; /* FRAME_EMISROUTED */
	uint64_t rejected_auth; /* FRAME_EAUTH */
	uint64_t auth_admitted; /* CURVE handshakes the ZAP handler admitted */
	uint64_t auth_denied; /* ... and refused (keys of non-members) */
	uint64_t fault_dropped; /* dropped on purpose: random, blocked,
	                            delay queue full */
	uint64_t fault_delayed; /* queued for later by a delay */
};

struct transport;

/*
 * Create the transport described by @cfg (copied): bind the peer socket,
 * start the ZAP handler if CURVE is on, connect to every other member
 * (connections are made in the background and retried forever).
 * Returns 0 and sets *@out, or -EINVAL (bad configuration: ids 0 or
 * repeated, self not a member, a malformed endpoint or key, keys on some
 * members only, a secret that does not match self's public key),
 * -ENOTSUP (CURVE asked for, libzmq built without it), -EADDRINUSE (the
 * peer endpoint is taken), -ENOMEM, or another -errno from ZeroMQ.
 */
int transport_new(const struct transport_config *cfg, struct transport **out);

/* Close every socket (unsent messages are discarded: linger 0), stop the
 * ZAP handler, free.  Accepts NULL. */
void transport_free(struct transport *t);

/*
 * Membership changes: make @members (@n, self included when it is still
 * a member; the same rules as transport_config.members) the members.  A
 * new member's DEALER is connected; a removed member's (or one whose
 * endpoint or key changed) is closed, its queued messages dropped; the
 * frame filter and, with CURVE, the ZAP allowlist admit exactly the new
 * members from now on (a removed member's key is refused at its next
 * handshake, and its frames on a connection already open are refused
 * as from a non-member).  Self may be left out (a member that was
 * removed): it is kept, with its own socket.  Loop thread only.  0, -EINVAL
 * (as transport_new()), -ENOMEM, or another -errno from ZeroMQ (the
 * members that could be set up are).
 */
int transport_set_members(struct transport *t,
    const struct transport_member *members, uint32_t n);

/*
 * Send @m to member @m->to without blocking.  @m is only read; it may be
 * a message borrowed from a raft_ready batch.  Returns:
 *   0          handed to ZeroMQ (or, with fault injection, dropped or
 *              delayed on purpose: that looks like a lossy network);
 *   -EAGAIN    dropped: the peer is not connected or not keeping up.
 *              The peer counts as unreachable (transport_peer_reachable())
 *              until a send to it succeeds again;
 *   -EINVAL    @m->to is not another member, @m->from is not self, or @m
 *              cannot be encoded (msg_encode()'s limits);
 *   -ENOMEM, or another -errno from ZeroMQ (-ETERM...).
 */
int transport_send(struct transport *t, const struct raft_msg *m);

/*
 * Take the next valid incoming message, without blocking.  Returns 1 and
 * fills @m; 0 when nothing valid is waiting; -ENOMEM (one frame could not
 * be decoded for want of memory and was dropped: call again later); another
 * -errno if the socket failed (e.g. -ETERM).  Invalid frames are dropped,
 * counted and logged; at most 256 of them are skipped per call (then 0 is
 * returned even if more are waiting, so a flood cannot starve the loop:
 * the socket stays readable and the caller's poll comes straight back).
 *
 * @m's entries array, entry data and snapshot chunk are borrowed from the
 * transport until transport_recv_done(), which must be called before the
 * next transport_recv() (one message outstanding at a time).
 */
int transport_recv(struct transport *t, struct raft_msg *m);

/* Give back what transport_recv() lent in @m (zeroed).  Accepts a message
 * that holds nothing. */
void transport_recv_done(struct transport *t, struct raft_msg *m);

/* The peer socket, for zmq_poll() with ZMQ_POLLIN: readable means
 * transport_recv() has something to look at.  Owned by the transport. */
void *transport_socket(struct transport *t);

/* The endpoint actually bound (a wildcard port resolved), e.g.
 * "tcp://127.0.0.1:41234".  Owned by the transport. */
const char *transport_endpoint(const struct transport *t);

/* false after a send to @peer was dropped with -EAGAIN, true again after
 * one succeeds (and initially).  false for an unknown @peer. */
bool transport_peer_reachable(const struct transport *t, raft_id peer);

/* Copy the counters. */
void transport_stats(const struct transport *t, struct transport_stats *st);

/*
 * Fault injection for member @peer, replacing earlier settings for it:
 *   @drop_pct   0..100: percentage of messages to @peer dropped at random;
 *   @delay_ms   messages to @peer held back this long (sent by
 *               transport_run_timers(); at most max_delayed frames and
 *               max_delayed_bytes are held, beyond that they are dropped);
 *   @blocked    drop every message to @peer (also frames already
 *               delayed, when they fall due).  Messages FROM @peer are
 *               not affected: block on both members for a partition.
 * All zero restores normal service.  May be called from any thread.
 * Returns 0, -EPERM (the transport was not created with fault_injection),
 * -EINVAL (@peer is not another member, @drop_pct > 100).
 */
int transport_set_fault(struct transport *t, raft_id peer, unsigned drop_pct,
    unsigned delay_ms, bool blocked);

/*
 * Timers (delayed frames; only ever set by fault injection).  Times are
 * milliseconds of CLOCK_MONOTONIC, the clock transport_send() stamps
 * delayed frames with.  transport_next_timer_ms() returns how long the
 * event loop may sleep before calling transport_run_timers(): -1 when no
 * timer is pending, else 0 or more.  transport_run_timers() sends every
 * frame due at @now_ms.
 */
long transport_next_timer_ms(const struct transport *t, uint64_t now_ms);
void transport_run_timers(struct transport *t, uint64_t now_ms);

#endif
