/*
 * node.h - a running Raft member: the core driven by real time, a real
 * disk and a real network, with the replicated state machine (rsm.h) on
 * top.  node.c is the request loop, node_ready.c the ready hand-off,
 * persist.c the persister, rsm.c the RSM.
 *
 * Threads (each owns what it touches; they talk through mailboxes):
 *
 *   loop     owns struct raft and the transport: poll() over the peer
 *            socket's fd (after a ZMQ_EVENTS check), its mailbox's
 *            eventfd and an attached endpoint's; ticks, raft_step, the
 *            RSM's proposals and read-index requests, and the raft_ready
 *            hand-off.  Sends rd.msgs at once (a leader replicates while
 *            its own write is still in flight), queues the persistence to
 *            the persister, committed entries to the RSM.
 *   persister owns struct storage: takes every queued batch, writes them,
 *            syncs ONCE (group commit), then hands the batches back so
 *            the loop sends their msgs_after_persist and calls
 *            raft_persisted().  A failed write or sync is fatal: the
 *            member exits with the storage's message, never acknowledging.
 *            A small batch while it is idle is persisted on the loop.
 *   applier  (the RSM's) feeds committed entries, in order, to the
 *            application; wakes the submitters waiting for them; asks
 *            the application for a snapshot when the log on disk exceeds
 *            max_raft_state (with snapshot_begin(), it only waits while
 *            the RSM's snapshot thread copies the state, which that
 *            thread then compresses while applying goes on).  When it is idle with nothing queued, the
 *            loop applies a small committed batch itself (no hand-off:
 *            the lone submitter's latency); callbacks still run one at a
 *            time, in order.
 *
 * Dependencies run one way: the loop calls the persister and the RSM;
 * each reaches the loop only through a callback given at creation.
 */
#ifndef RAFTKV_NODE_H
#define RAFTKV_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"
#include "raft/storage/memberdir_file.h"
#include "raft/storage/storage.h"
#include "raft/member/rsm.h"

struct node_member {
	raft_id id;
	char peer_endpoint[128]; /* "tcp://127.0.0.1:7001" */
	char curve_public[41]; /* Z85 public key, "" when CURVE is off */
};

struct node_config {
	uint64_t cluster_id;
	raft_id id;
	/* The bootstrap voters (the cluster file's members): the
	 * configuration in force until the log or a snapshot holds one. */
	uint32_t n_members;
	struct node_member members[RAFT_MAX_MEMBERS];
	/* Where every known member is (memberdir.h): the bootstrap members,
	 * what the data directory's "members" file adds, self.  The node
	 * adds what change entries and snapshots bring, keeps the file up
	 * to date, and connects to the members of the configuration in
	 * force that it finds here. */
	struct memberdir dir;
	/* The members seen removed (memberdir_gone.h), from the "members"
	 * file: kept out even when the log no longer has their removal. */
	struct memberdir_gone gone;
	/* The members of the newest configuration the running cluster told
	 * at start (member_refresh_directory; n 0: none) and that
	 * configuration's index.  When it is newer than every change the
	 * log holds (a member down while members were removed and added
	 * again), it wins over the log: their entries replace the log's
	 * and their ids are no longer taken as removed. */
	struct memberdir fresh;
	raft_index fresh_index;
	/* Self is not a bootstrap voter: it starts as a learner of them
	 * (joining a running cluster; or restarting after it joined). */
	int join;
	/* Called once, on the loop thread, when a committed change has
	 * removed this member (after a short grace so the commit reaches
	 * the others): e.g. make the process stop.  May be NULL. */
	void (*removed)(void *arg);
	void *removed_arg;
	char curve_secret[41]; /* own Z85 secret key, "" when CURVE is off */
	char data_dir[4096];
	unsigned tick_ms; /* default 10 */
	unsigned election_tick; /* default 30 (300-600 ms) */
	unsigned heartbeat_tick; /* default 5 (50 ms) */
	int64_t
	    max_raft_state; /* bytes of log before a snapshot; <= 0: never */
	int fault_injection; /* allow node_set_fault(); tests only */
	int read_via_log; /* read barriers commit an empty entry
	                              instead of using ReadIndex (comparison) */
	int read_no_lease; /* raft_config.disable_lease_read: every
	                              ReadIndex takes a heartbeat round */
	struct storage_options storage;
	struct rsm_app app; /* apply, snapshot, restore required */
};

/* Fill @c with the defaults above (members, ids and the app left empty). */
void node_config_defaults(struct node_config *c);

struct node;

/*
 * Open the data directory, recover, restore the application from the
 * latest snapshot, replay nothing yet (the log's committed entries are
 * re-applied as the cluster confirms them), bind the peer socket and start
 * the threads.  On failure writes one clear message into @err and returns
 * a negative code (storage codes, -EADDRINUSE, -EINVAL, -ENOMEM).
 */
int node_start(const struct node_config *cfg, struct node **out, char *err,
    size_t errlen);

/* Stop the threads (the RSM's waiters get NODE_ESHUTDOWN), close
 * everything, free.  NULL is fine.
 * What was acknowledged is durable already; nothing more is synced. */
void node_stop(struct node *n);

/* The node's RSM: submit commands, read barriers (rsm.h).  Valid until
 * node_stop(). */
struct rsm *node_rsm(struct node *n);

/*
 * An endpoint served on the loop thread itself: the client endpoint, so
 * that a request and its reply cost no hand-off between threads.  The loop
 * polls @sock (a ZeroMQ socket, owned by the loop while attached) and @fd
 * (e.g. a mailbox's eventfd, or -1) and, on every turn, calls @recv after
 * the peers' messages (what it posts with rsm_*_async() is handled in the
 * same turn) and @flush after the turn's ready batch (replies to commands
 * applied on the loop leave at once).  Both run on the loop thread and
 * must not block.
 */
struct node_endpoint {
	void *sock;
	int fd;
	void (*recv)(void *arg);
	void (*flush)(void *arg);
	void *arg;
};

/* Hand @ep to the loop; returns once the loop serves it: 0, -EINVAL (no
 * socket or callback), -EBUSY (one is attached already), -EDEADLK (called
 * on the loop thread), -ENOMEM or NODE_ESHUTDOWN. */
int node_attach_endpoint(struct node *n, const struct node_endpoint *ep);

/* Take the endpoint back: the loop calls @flush a last time and, once
 * this returns, never touches it again (the caller may close it) — also
 * when the node is stopping meanwhile: then it returns once the loop
 * thread has exited.  Call it before node_stop() returns, never from the
 * loop thread (an endpoint callback or an rsm_done_fn). */
void node_detach_endpoint(struct node *n);

struct node_status {
	struct raft_status raft;
	raft_index applied; /* applied by the application */
	uint64_t log_bytes; /* raft state size on disk */
	uint64_t snap_index;
	uint64_t syncs;
	uint64_t fsyncs;
	uint64_t entries_persisted;
	uint64_t msgs_sent; /* peer messages, as of the last batch */
	uint64_t msgs_received;
	uint64_t msgs_dropped; /* not sent (peer unreachable) or refused */
};
void node_status(struct node *n, struct node_status *st);

/*
 * Membership change (leader only; node_member.c): @type is a
 * raft_conf_change_type; @e the new member's directory entry for
 * RAFT_CONF_ADD_LEARNER (ignored otherwise); waits up to @timeout_ms
 * until the change is committed.  @allowed: the caller may change the
 * membership here (with CURVE: an admin's request; without keys: this
 * member was started with --insecure-membership); it counts only when
 * this member leads, as the leader alone proposes, so the leader's
 * setting decides for the cluster whichever member a client reaches
 * first.  Returns 0, or RAFT_ENOTLEADER (with *@leader the hint),
 * CPROTO_EDENIED (leading, and !@allowed), RAFT_ECONFPENDING,
 * RAFT_ENOTCAUGHTUP, RAFT_ENOQUORUM, RAFT_ELASTVOTER, NODE_EGONEFULL,
 * -EEXIST, -ENOENT, -ENOSPC, -EINVAL (bad entry: endpoints, or a key
 * missing with CURVE on / given with it off), -EKEYREJECTED (a removed
 * member's key), NODE_ELOST (the entry was overwritten), NODE_ETIMEDOUT,
 * NODE_ESHUTDOWN, -ENOMEM.  Never from the loop thread.
 */
int node_member_change(struct node *n, int type, raft_id id,
    const struct memberdir_entry *e, bool allowed, int timeout_ms,
    raft_id *leader);

/* The configuration in force, the index it comes from, and the
 * directory (any thread). */
void node_members(struct node *n, struct raft_conf *conf,
    raft_index *conf_index, struct memberdir *dir);

/* Add what @d knows to the directory (a member snapshot's; any thread):
 * the loop connects to members it could not reach before. */
void node_merge_directory(struct node *n, const struct memberdir *d);

/* The members this node saw removed (any thread). */
void node_gone(struct node *n, struct memberdir_gone *g);

/* Add the removed members @g (a member snapshot's; any thread): their
 * keys, and their ids but those the configuration in force or cfg.fresh
 * has (added again since: held aside until that is committed or
 * truncated; with @older, the node's own snapshot restored at start,
 * cfg.fresh's members whatever its index).  A key that does not fit
 * stops the member (fatal); an id that does not fit, its directory
 * entry is dropped (node_member.c). */
void node_merge_gone(struct node *n, const struct memberdir_gone *g,
    bool older);

/* Ask the leader to hand over to @to.  0, RAFT_ENOTLEADER, -EINVAL. */
int node_transfer_leadership(struct node *n, raft_id to);

/* Fault injection (only if cfg.fault_injection): messages to @peer are
 * dropped with probability @drop_pct %, delayed by @delay_ms, or all
 * dropped while @blocked.  -EPERM when not enabled, -EINVAL bad peer. */
int node_set_fault(struct node *n, raft_id peer, unsigned drop_pct,
    unsigned delay_ms, int blocked);

#endif
