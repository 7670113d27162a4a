/*
 * sim_int.h - what the simulator's files share (not for the tests: they
 * use sim.h only).
 *
 * The simulator is split by job:
 *   sim.c         the cluster and the driver: PRNG, trace ring and
 *                 failure report, the event queue, raft_ready -> handle ->
 *                 raft_advance, member start / crash / restart, creation
 *                 and introspection
 *   sim_net.c     the network model: links and partitions, labrpc's drops,
 *                 delays and reordering, encode on send
 *   sim_disk.c    the disk model: durable state per member, a FIFO of
 *                 pending writes, unsynced writes lost on crash, the lying
 *                 disk of the checker self-test
 *   sim_check.c   the invariant checks: election safety, log matching (the
 *                 mirror of every member's log), leader append-only and
 *                 completeness, state-machine safety (the tester's apply
 *                 model), commit monotonicity, read index safety
 *   sim_tester.c  the raft1 test.go helpers and the end-of-run checks
 *
 * Everything here runs in one thread and is deterministic: the order of
 * sim_rand() calls is the run, so moving a call from one place to another
 * changes every later random choice of a seed.
 *
 * Names: a function defined in sim_X.c and shared through this header is
 * sim_X_*; the small helpers below (allocation that aborts, hashes, the
 * growable array, the mirror and disk accessors) are static inline.
 */
#ifndef RAFTKV_SIM_INT_H
#define RAFTKV_SIM_INT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/msg.h"
#include "tests/sim/sim.h"

/* ===================================================================== */
/* util                                                                  */
/* ===================================================================== */

static inline void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL) {
		fprintf(stderr, "sim: out of memory\n");
		abort();
	}
	return p;
}

static inline void *xcalloc(size_t a, size_t b)
{
	void *p = calloc(a ? a : 1, b ? b : 1);
	if (p == NULL) {
		fprintf(stderr, "sim: out of memory\n");
		abort();
	}
	return p;
}

static inline void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL) {
		fprintf(stderr, "sim: out of memory\n");
		abort();
	}
	return p;
}

static inline void *xmemdup(const void *src, size_t n)
{
	void *p = xmalloc(n);
	if (n)
		memcpy(p, src, n);
	return p;
}

static inline uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static inline uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const uint8_t *b = p;
	uint64_t h = mix64(seed ^ (n * 0x9e3779b97f4a7c15ull));
	uint64_t v;

	while (n >= 8) {
		memcpy(&v, b, 8);
		h = rotl(h ^ (v * 0xff51afd7ed558ccdull), 29) *
		    0xc4ceb9fe1a85ec53ull;
		b += 8;
		n -= 8;
	}
	v = 0;
	if (n)
		memcpy(&v, b, n);
	return mix64(h ^ v ^ 0xa5a5a5a5a5a5a5a5ull);
}

static inline uint64_t entry_value_hash(uint8_t type, const void *data,
    uint32_t len)
{
	return hash_bytes(data, len, type);
}

static inline uint64_t chain_hash(uint64_t prev, raft_term term, uint64_t vh)
{
	return mix64(prev ^ mix64(term * 0x9e3779b97f4a7c15ull ^ vh));
}

/* Growable array helper: ensure room for @need elements of @size. */
static inline void grow(void **arr, size_t *cap, size_t need, size_t size)
{
	size_t c = *cap ? *cap : 16;

	if (need <= *cap)
		return;
	while (c < need)
		c *= 2;
	*arr = xrealloc(*arr, c * size);
	memset((char *)*arr + *cap * size, 0, (c - *cap) * size);
	*cap = c;
}

static inline bool is_request(uint8_t t)
{
	switch (t) {
	case RAFT_MSG_PREVOTE:
	case RAFT_MSG_VOTE:
	case RAFT_MSG_APPEND:
	case RAFT_MSG_HEARTBEAT:
	case RAFT_MSG_SNAPSHOT:
	case RAFT_MSG_TIMEOUT_NOW:
	case RAFT_MSG_READ_INDEX:
		return true;
	default:
		return false;
	}
}

/* ===================================================================== */
/* data structures                                                       */
/* ===================================================================== */

enum ev_kind { EV_TICK = 1, EV_DELIVER, EV_DISK, EV_CALL };

struct event {
	uint64_t t, seq;
	uint8_t kind;
	uint8_t from, to, mtype; /* member indices (0-based), message type */
	uint32_t from_inc, to_inc;
	uint8_t *buf;
	uint32_t len;
	void (*fn)(struct sim *, void *);
	void *arg;
};

/* One record of the trace ring (formatted only when printed). */
struct trace_rec {
	uint64_t t;
	uint8_t kind; /* enum ev_kind, or TR_* below */
	uint8_t a, b, mtype;
	uint64_t x, y;
};
enum {
	TR_CRASH = 20,
	TR_START,
	TR_LINK,
	TR_LEADER,
	TR_PROPOSE,
	TR_DROP,
	TR_COMPACT,
	TR_INSTALL,
	TR_NET,
	TR_CONF
};
#define TRACE_RING 96

/* A log entry as the durable state holds it (data owned). */
struct dentry {
	raft_term term;
	uint8_t type;
	uint32_t len;
	uint8_t *data;
};

/* An encoded message waiting for its batch to become durable. */
struct pmsg {
	uint8_t *buf;
	uint32_t len;
	uint8_t to, mtype;
};

/* One pending write (a ready batch's persist part). */
struct pwrite {
	struct pwrite *next;
	uint64_t done_at;
	bool must_persist;
	struct raft_persist_token token;
	bool hs_changed;
	struct raft_hard_state hs;
	struct dentry *ents;
	uint32_t n_ents;
	raft_index first_index;
	bool has_snap, snap_keep_suffix;
	struct raft_snapshot_meta snap;
	uint8_t *snap_data;
	uint64_t snap_len;
	struct pmsg *msgs;
	uint32_t n_msgs;
};

/* Our view of one entry of a member's in-memory log. */
struct ment {
	raft_term term;
	uint8_t type;
	uint64_t hash; /* chained hash of the prefix ending here */
	uint64_t cum; /* commands (normal entries) up to here */
};

/* What is known committed at an index (applied by at least one member). */
struct gent {
	raft_term term;
	uint64_t vh; /* value hash */
	uint64_t state; /* chained hash of values 1..index */
	uint64_t cum; /* commands up to here */
	raft_term cterm; /* upper bound of the term it was committed in (0:
	                    unknown): a member whose commit index covers it
	                    learned that in its current term or earlier */
	uint8_t type;
	bool set;
};

/* (index, term) -> chained hash: the log matching witness. */
struct cslot {
	raft_index index;
	raft_term term;
	uint64_t hash;
};

/* A change in a member's mirrored log. */
struct mconf {
	raft_index index;
	struct raft_conf conf;
};

struct read_req {
	uint64_t ctx;
	int member;
	raft_index floor;
};

struct member {
	struct raft *r; /* NULL when crashed */
	uint32_t inc; /* incarnation */
	bool connected; /* lab group flag */
	uint64_t tick_us; /* this member's clock period */
	uint64_t paused_until;

	/* durable state */
	struct raft_hard_state hs;
	bool has_snap;
	struct raft_snapshot_meta snap;
	uint8_t *snap_data;
	uint64_t snap_len;
	struct dentry *log; /* entries snap.index+1 .. */
	size_t log_n, log_cap;
	struct pwrite *wq_head, *wq_tail;
	struct pwrite *wq_batch; /* the write of the batch being handled */
	uint64_t last_done_at;

	/* mirror of the in-memory log: entries mbase+1 .. mbase+mn */
	raft_index mbase;
	raft_term mbase_term;
	uint64_t mbase_hash, mbase_cum;
	struct ment *mlog;
	size_t mn, mcap;
	/* configurations of the mirror: at mbase, and each change after */
	struct raft_conf mbase_conf;
	raft_index mbase_conf_index;
	struct mconf *mconfs; /* increasing index, all > mbase */
	size_t mconf_n, mconf_cap;

	/* tester apply model */
	raft_index applied;
	uint64_t state;
	raft_index pending_compact;

	/* invariant bookkeeping for this incarnation */
	raft_index cterm_upto; /* g[].cterm updated up to this index */
	raft_index last_commit;
	raft_term last_term;
	enum raft_role last_role;

	uint64_t rpcs_in;
	uint64_t append_rejects;
};

struct sim {
	struct sim_config cfg;
	int n;
	uint64_t now;
	uint64_t seq;
	uint64_t rng[4];
	const char *name;

	struct event **heap;
	size_t heap_n, heap_cap;
	struct event *free_ev;
	struct event *cur; /* being handled: a failure that leaves
	                             the run mid-event leaves it to sim_free */
	struct pwrite *cur_w; /* the same for a disk write taken off its
	                             member's queue */

	struct member m[SIM_MAX_MEMBERS];
	bool link[SIM_MAX_MEMBERS][SIM_MAX_MEMBERS];
	/* appends carrying entries sent a->b and not yet answered */
	int inflight[SIM_MAX_MEMBERS][SIM_MAX_MEMBERS];
	uint64_t link_last[SIM_MAX_MEMBERS][SIM_MAX_MEMBERS]; /* FIFO */
	uint8_t drop_next[SIM_MAX_MEMBERS][SIM_MAX_MEMBERS]; /* msg type */
	int inflight_max[SIM_MAX_MEMBERS][SIM_MAX_MEMBERS];

	/* global invariant state */
	raft_id *leader_of; /* term -> leader id (1-based), 0 none */
	size_t leader_cap;
	struct gent *g; /* index -> committed knowledge */
	size_t g_cap;
	raft_index g_max;
	struct cslot *cmap;
	size_t cmap_cap, cmap_n;
	struct read_req *reads;
	size_t reads_n, reads_cap;
	uint64_t next_ctx;

	struct sim_stats st;
	struct trace_rec trace[TRACE_RING];
	uint64_t trace_n;

	sim_fail_fn fail_fn;
	void *fail_arg;
	sim_log_fn log_fn;
	void *log_arg;
	bool failing;
};

/* ===================================================================== */
/* accessors (mirror and durable log of one member)                      */
/* ===================================================================== */

/* Last index of our mirror of the member's in-memory log. */
static inline raft_index mlast(const struct member *m)
{
	return m->mbase + m->mn;
}

/* Term, chained hash and command count of mirror entry @i, which must be
 * in [mbase, mlast]. */
static inline raft_term mterm(const struct member *m, raft_index i)
{
	if (i == m->mbase)
		return m->mbase_term;
	return m->mlog[i - m->mbase - 1].term;
}

static inline uint64_t mhash(const struct member *m, raft_index i)
{
	if (i == m->mbase)
		return m->mbase_hash;
	return m->mlog[i - m->mbase - 1].hash;
}

static inline uint64_t mcum(const struct member *m, raft_index i)
{
	if (i == m->mbase)
		return m->mbase_cum;
	return m->mlog[i - m->mbase - 1].cum;
}

/* Last index of the member's durable log. */
static inline raft_index disk_last(const struct member *m)
{
	return m->snap.index + m->log_n;
}

static inline void put_u64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8); /* the simulator only runs on little-endian hosts */
}

static inline uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* ===================================================================== */
/* sim.c: randomness, trace, events, driver                              */
/* ===================================================================== */

/* A uniform value in [@lo, @hi] (@lo if the range is empty). */
uint64_t sim_rand_range(struct sim *s, uint64_t lo, uint64_t hi);

/* Record one trace event in the ring (and print it under SIM_TRACE). */
void sim_trace(struct sim *s, uint8_t kind, int a, int b, uint8_t mtype,
    uint64_t x, uint64_t y);

#define slog sim_logf

/* A zeroed event from the free list; sim_ev_push() queues it at @at
 * (virtual time) and takes ownership of it and of its buf. */
struct event *sim_ev_alloc(struct sim *s);
void sim_ev_push(struct sim *s, struct event *e, uint64_t at);

/* ===================================================================== */
/* sim_net.c: network model                                              */
/* ===================================================================== */

/* Is the directed link @from -> @to enabled? */
bool sim_net_link_up(const struct sim *s, int from, int to);

/*
 * Send an encoded message @from -> @to (-1: an unknown destination):
 * applies the fault model (drop_next, disabled link, dead receiver,
 * unreliable drops, duplicates, delays, long reordering) and schedules a
 * deliver event per copy.  Takes ownership of @buf.  Draws from the PRNG.
 */
void sim_net_send(struct sim *s, int from, int to, uint8_t *buf, uint32_t len,
    uint8_t mtype);

/* Encode @m into a fresh buffer the caller frees; fails the run if the
 * codec refuses. */
uint8_t *sim_net_encode(struct sim *s, const struct raft_msg *m, uint32_t *len);

/* Check, count (append rejects, appends in flight), encode and send a
 * message member @from handed out in raft_ready's msgs. */
void sim_net_send_msg(struct sim *s, int from, const struct raft_msg *m);

/* ===================================================================== */
/* sim_disk.c: disk model                                                */
/* ===================================================================== */

void sim_disk_dentry_free(struct dentry *d);

/* Free a pending write and everything it owns; NULL is not accepted. */
void sim_disk_write_free(struct pwrite *w);

/* Copy the persist part and the msgs_after_persist of ready batch @rd of
 * member @i into a new pending write (@keep_suffix: the snapshot keeps the
 * log after it).  Caller owns the result (sim_disk_schedule takes it). */
struct pwrite *sim_disk_write_new(struct sim *s, int i,
    const struct raft_ready *rd, bool keep_suffix);

/* Queue @w on member @i's disk (FIFO: it completes no earlier than the
 * previous write) and schedule its completion event.  Takes ownership of
 * @w.  Draws from the PRNG. */
void sim_disk_schedule(struct sim *s, int i, struct pwrite *w);

/* Make the pending write @w durable on member @i; fails the run on a
 * write that goes back (older snapshot, term or vote changed, a hole). */
void sim_disk_apply(struct sim *s, int i, struct pwrite *w);

/* Is (index, term) durable on @m (stored log or snapshot)? */
bool sim_disk_has(const struct member *m, raft_index index, raft_term term);

/* Member @i crashed: its pending writes are lost (a lying disk also loses
 * the vote and the last entry it claimed durable).  Returns how many
 * writes that had to be persisted were lost. */
uint64_t sim_disk_crash(struct sim *s, int i);

/* ===================================================================== */
/* sim_check.c: invariants, mirror, apply model                          */
/* ===================================================================== */

/* The mirror of member @i's log restarts after (@base, @base_term), with
 * configuration @conf in force there (from index @conf_index). */
void sim_check_mirror_reset(struct sim *s, int i, raft_index base,
    raft_term base_term, const struct raft_conf *conf, raft_index conf_index);

/* Member @i's bootstrap configuration. */
void sim_boot_conf(const struct sim *s, int i, struct raft_conf *c);

/* The mirror's configuration in force (the latest change, else the one at
 * its base) and its index. */
const struct raft_conf *sim_check_mirror_conf(const struct member *m,
    raft_index *index);

/* After every event: no two configurations in force on live members
 * that could each decide (elect a leader or commit) have disjoint
 * majorities (invariant 10). */
void sim_check_confs(struct sim *s);

/* A leader's batch: each change it hands out follows a committed one and
 * an entry of its term (raft/config.h C2, C3). */
void sim_check_leader_changes(struct sim *s, int i,
    const struct raft_ready *rd);

/* Entries handed out by member @i replace its log from e[0].index; checks
 * contiguity, terms, leader append-only (@leader) and log matching. */
void sim_check_mirror_append(struct sim *s, int i, const struct raft_entry *e,
    uint32_t n, bool leader);

/* The snapshot @meta replaces the mirror's prefix (its configuration must
 * be the one in force at its index).  Returns whether the suffix after it
 * is kept (the log held (index, term)). */
bool sim_check_mirror_snapshot(struct sim *s, int i,
    const struct raft_snapshot_meta *meta);

/* The tester's apply loop: a snapshot to install, an entry to apply
 * (state-machine safety, apply order, applied only once durable). */
void sim_check_apply_snapshot(struct sim *s, int i,
    const struct raft_snapshot_meta *meta, const uint8_t *data, uint64_t len);
void sim_check_apply_entry(struct sim *s, int i, const struct raft_entry *e);

/* The tester's snapshot: member @i compacts at its pending_compact index
 * (raft_compact with a blob of the applied state). */
void sim_check_compact(struct sim *s, int i);

/* Highest commit index known anywhere (the floor of a new read). */
raft_index sim_check_known_commit(struct sim *s);

/* Read states and failed reads of a batch: read index safety. */
void sim_check_reads(struct sim *s, int i, const struct raft_ready *rd);

/* After member @i's batch was advanced: compare the mirror with the core,
 * check monotonicity, election safety and leader completeness. */
void sim_check_batch(struct sim *s, int i, bool snap_dropped_suffix);

#endif
