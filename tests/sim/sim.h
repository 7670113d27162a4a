/*
 * sim.h - deterministic discrete-event simulator for the pure Raft core.
 *
 * A struct sim holds N members (raft_new() instances), a virtual clock in
 * microseconds, one priority queue of events ordered by (time, sequence
 * number), a lossy network, a simulated disk per member and a tester-side
 * apply model.  Every random choice (network delays and drops, election
 * timeouts through raft_config.seed, the tests' own choices) comes from one
 * PRNG seeded by the test seed, so a run is a pure function of its seed:
 * a failure prints the seed and `SIM_SEED=N` replays it exactly.
 *
 * Events:
 *   tick      member i's clock advanced by tick_us: raft_tick()
 *   deliver   an encoded message arrives: msg_decode() + raft_step()
 *   disk      the oldest pending write of member i is durable: apply it to
 *             the durable state, send its msgs_after_persist, then
 *             raft_persisted()
 *   call      a test callback (concurrent clients, fault schedules)
 * After every input a member is "driven": raft_ready() -> handle ->
 * raft_advance() until idle.  Messages are encoded with msg_encode() when
 * sent and decoded on delivery, so byte counts are real wire bytes.
 *
 * Network (per directed link): enabled or not (partitions are sets of
 * disabled links, so symmetric, asymmetric, minority/majority and bridge
 * shapes are all expressible), plus global drop, duplicate and delay
 * parameters and labrpc's "long reordering".  Crashing a member frees it,
 * loses its pending (not yet durable) writes and drops every message in
 * flight to or from it; restarting builds a new incarnation from the
 * durable state only.
 *
 * Invariants, checked incrementally after every event (a violation calls
 * the failure hook with the seed, the virtual time and the recent trace):
 *   1 election safety      at most one leader per term, ever
 *   2 leader append-only   a leader never truncates or overwrites its log
 *   3 log matching         same (index, term) => same prefix (chained hash)
 *   4 leader completeness  a new leader holds every entry known committed
 *   5 state-machine safety every member applies the same value at an index,
 *                          in order, and only entries it has made durable
 *   6 commit monotonic     commit index never moves back in an incarnation
 *   7 no lost entries      after healing, every member applies everything
 *                          any member ever applied (sim_heal_and_check)
 *   8 liveness             after healing, a leader is elected and a new
 *                          proposal commits within a bounded virtual time
 *   9 read index safety    a read point is >= every commit index that was
 *                          known anywhere when the read was requested
 *  10 configurations       (membership changes, raft/config.h) every
 *                          change a member appends is one single-server
 *                          change of the configuration before it in its
 *                          log (so the two differ by at most one voter);
 *                          after every event, no two configurations in
 *                          force on live members that could each decide
 *                          have disjoint majorities (a member could
 *                          decide if it is a voter of its configuration
 *                          and a quorum of its voters has logs no more up
 *                          to date than its own, or it leads and a quorum
 *                          is at its term or below; members down count
 *                          with their durable state): a lagging member's
 *                          old configuration may share no voter with the
 *                          current one, harmlessly, since the newer logs
 *                          will not vote for it; a leader appends a
 *                          change only when the previous one is committed
 *                          and an entry of its term is; a snapshot
 *                          carries the configuration at its index; after
 *                          every batch, a member's configuration in force
 *                          is the latest change in its log (or its
 *                          snapshot's, or the bootstrap one) and what
 *                          rd.conf reported; a leader is a voter of it.
 *                          Invariants 1-9 hold across changes; 7 and 8
 *                          count the members of the final configuration.
 *
 * Lab helpers (sim_check_one_leader, sim_one, sim_wait, ...) reproduce the
 * 6.5840 raft1 tester (6.5840-tests.md 1.2, 2.1) in virtual time.  Log
 * indices: our leaders append a no-op entry when elected, so the
 * application-visible "command index" of the lab (which counts only
 * commands) is sim_cmd_index(); tests that check exact lab indices check
 * command indices.
 *
 * Environment: SIM_SEED=N (run only seed N), SIM_SEEDS=N (how many seeds
 * the sweep runs), SIM_TRACE=1 (print every event; 2 also the core's own
 * trace), RAFTKV_LONG=1 (long variants).
 */
#ifndef RAFTKV_SIM_H
#define RAFTKV_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

#define SIM_MAX_MEMBERS 9
#define SIM_MS ((uint64_t)1000) /* virtual microseconds per ms */
#define SIM_SEC ((uint64_t)1000000) /* virtual microseconds per second */

struct sim;

/* Parameters of one simulated cluster.  sim_config_lab() fills the lab's. */
struct sim_config {
	uint64_t seed;
	int n; /* members, 1..SIM_MAX_MEMBERS */
	int n_voters; /* the bootstrap voters are members 1..n_voters (0:
	                    all n); the others start as learners of their own
	                    bootstrap configuration, idle until a membership
	                    change adds them (sim_conf_change) */

	/* Time. */
	uint64_t tick_us; /* period of raft_tick(); default 50 ms */
	unsigned election_tick; /* default 10 (timeout 500-1000 ms) */
	unsigned heartbeat_tick; /* default 2 (100 ms) */

	/* Disk: each write completes after a delay in [min, max] (FIFO). */
	uint64_t disk_min_us, disk_max_us;

	/* Network. */
	uint64_t delay_min_us, delay_max_us; /* base one-way delay */
	bool reliable; /* false: labrpc unreliable (see sim_net.c) */
	bool long_reordering; /* labrpc long reordering of responses */
	uint32_t drop_ppm; /* extra drop probability, per million */
	uint32_t dup_ppm; /* duplicate probability, per million */
	uint32_t reorder_ppm; /* long delay on any message, per million */
	bool shuffle_links; /* base delays drawn per message, so a
	                                burst on one link arrives in random
	                                order; default: each directed link is
	                                FIFO for messages with only the base
	                                delay (TCP/ZeroMQ, labrpc's reliable
	                                immediate dispatch) */

	/* Apply model / snapshots. */
	unsigned snap_every; /* compact after index i when (i+1) % k == 0;
	                                0: never (3A-3C); 10 in 3D */
	bool lab_blob; /* blob = index + every applied value (3D);
	                                else index + state hash + padding */
	uint32_t snap_pad; /* padding bytes in non-lab blobs */

	/* Core knobs passed to raft_config (0 = core default). */
	bool disable_prevote;
	bool disable_check_quorum;
	bool disable_lease_read; /* lease reads are on by default */
	unsigned lease_ticks;
	uint32_t max_msg_entries;
	uint32_t max_inflight_msgs;
	uint64_t max_uncommitted_bytes;
	uint32_t snapshot_chunk_bytes;

	/* Harsher than the lab (the sweep): messages in flight survive a
	 * crash and reach the next incarnation (a quick restart on the same
	 * address); each member's clock runs up to tick_jitter_pct percent
	 * slower or faster than tick_us. */
	bool keep_inflight_on_crash;
	unsigned tick_jitter_pct;
	/* Member i's clock period in percent of tick_us (0: tick_us and
	 * tick_jitter_pct), for clocks drifting apart by a chosen amount. */
	unsigned clock_pct[SIM_MAX_MEMBERS];

	/* Trace: 0 none, 1 every event, 2 also the core's trace. */
	int trace;

	/* Checker self-test: a disk that lies.  On every crash the member
	 * loses its vote and its last durable entry, as if fsync had been a
	 * no-op.  The invariants must then catch violations. */
	bool lying_disk;
	/* Checker self-test: a driver that forgets raft_tick_gap() when a
	 * member stalls (sim_pause), so a stalled leader believes a lease
	 * that ran out while it was stopped. */
	bool forget_tick_gap;
};

/* Defaults of the raft1 tester: @n members, reliable or not, 3D apply
 * model if @snapshot, long delays on (they only matter for requests to a
 * disconnected peer, which we drop). */
void sim_config_lab(struct sim_config *c, int n, bool reliable, bool snapshot,
    uint64_t seed);

/* Counters, for tests and the printed summaries. */
struct sim_stats {
	uint64_t events;
	uint64_t msgs_sent; /* encoded and handed to the network */
	uint64_t bytes_sent; /* their encoded bytes */
	uint64_t msgs_delivered;
	uint64_t msgs_dropped; /* lost: random drop, link down, crash */
	uint64_t msgs_duplicated;
	uint64_t msgs_reordered; /* given a long delay */
	uint64_t rpcs; /* request-type messages delivered */
	uint64_t sent_by_type[RAFT_MSG_TYPE_MAX + 1];
	uint64_t bytes_by_type[RAFT_MSG_TYPE_MAX + 1];
	uint64_t elections; /* terms in which a leader was seen */
	uint64_t crashes, restarts;
	uint64_t writes_lost; /* pending writes dropped by crashes */
	uint64_t link_changes; /* connect/disconnect/partition calls */
	uint64_t proposals; /* accepted raft_propose() calls */
	uint64_t snapshots_taken; /* raft_compact() accepted */
	uint64_t snapshots_installed; /* snapshot_install batches applied */
	uint64_t reads_ok, reads_failed;
	uint64_t lease_reads; /* answered from a lease (crashed members
	                                only; sim_lease_reads() adds the live) */
	uint64_t transfers;
	uint64_t conf_changes; /* accepted raft_propose_conf_change() */
	uint64_t pauses;
	uint64_t checks; /* invariant checks performed */
};

/*
 * Create a cluster and start every member (empty state, all links up).
 * Never fails (allocation failures abort: this is test code).
 */
struct sim *sim_new(const struct sim_config *c);
void sim_free(struct sim *s); /* accepts NULL */

/*
 * Failure hook: called with a one-line description after the seed, the
 * virtual time, the failure and the recent trace have been printed to
 * stderr.  The default hook calls abort().  cmocka tests install one that
 * calls fail_msg(); the sweep one longjmp()s.  The hook must not return;
 * if it does, sim_fail() aborts.
 */
typedef void (*sim_fail_fn)(struct sim *s, const char *what, void *arg);
void sim_set_fail_hook(struct sim *s, sim_fail_fn fn, void *arg);
/* A name printed with failures ("test_backup_3b"), borrowed. */
void sim_set_name(struct sim *s, const char *name);
_Noreturn void sim_fail(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Notable-event log (elections, crashes, partitions...), for the demo. */
typedef void (*sim_log_fn)(struct sim *s, const char *line, void *arg);
void sim_set_log(struct sim *s, sim_log_fn fn, void *arg);
/* Emit a line to the log callback (if any). */
void sim_logf(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* --- time ------------------------------------------------------------ */

uint64_t sim_now(const struct sim *s);
/* Run every event up to now + @us; the clock then reads now + @us. */
void sim_sleep(struct sim *s, uint64_t us);
/* Run events until *@flag is true; fails if nothing is left to run. */
void sim_run_until_flag(struct sim *s, const bool *flag);
/* Schedule @fn(@s, @arg) at now + @us (a "goroutine" step). */
void sim_after(struct sim *s, uint64_t us, void (*fn)(struct sim *s, void *arg),
    void *arg);

/* --- randomness (the one PRNG of the run) ----------------------------- */

uint64_t sim_rand(struct sim *s);
uint64_t sim_randn(struct sim *s, uint64_t n); /* [0, n), n > 0 */
bool sim_chance(struct sim *s, uint32_t ppm); /* true with ppm / 1e6 */
uint64_t sim_seed(const struct sim *s);

/* --- members ---------------------------------------------------------- */

int sim_n(const struct sim *s);
bool sim_alive(const struct sim *s, int i);
/* The live core of member @i, or NULL if crashed (for introspection). */
struct raft *sim_raft(struct sim *s, int i);
/* (term, is_leader) of a live member; (0, false) if crashed. */
raft_term sim_get_state(struct sim *s, int i, bool *is_leader);

/*
 * Propose @len bytes on member @i (lab Start()).  Returns 0 and the index
 * and term, or the raft_propose() error (RAFT_ENOTLEADER...), or
 * RAFT_ENOTLEADER if @i is crashed.  The member is driven at once.
 */
int sim_propose(struct sim *s, int i, const void *data, uint32_t len,
    raft_index *index, raft_term *term);
/* Ask member @i for a read index; checked by invariant 9 on arrival. */
int sim_read_index(struct sim *s, int i);
/* Read indexes leaders answered from their lease, over every incarnation. */
uint64_t sim_lease_reads(const struct sim *s);
/* raft_propose_conf_change(@type, id of member @who) on member @i:
 * returns its result (RAFT_ENOTLEADER if @i is crashed). */
int sim_conf_change(struct sim *s, int i, int type, int who);
/* The configuration in force on live member @i (false if crashed). */
bool sim_get_conf(struct sim *s, int i, struct raft_conf *conf);
/* The configuration of the most advanced live leader, else of the live
 * member with the highest configuration index; false if none is live. */
bool sim_current_conf(struct sim *s, struct raft_conf *conf);
/* raft_transfer_leadership() on member @i towards member @to. */
int sim_transfer(struct sim *s, int i, int to);
/* raft_campaign() on member @i. */
int sim_campaign(struct sim *s, int i);

/* Crash (lab ShutdownServer: disconnect, then kill, losing pending
 * writes), start (lab StartServer: from durable state, not connected) and
 * restart (raft1 tester restart(): StartServer + ConnectAll). */
void sim_crash(struct sim *s, int i);
void sim_start(struct sim *s, int i);
void sim_restart(struct sim *s, int i);
void sim_crash_all(struct sim *s); /* lab Shutdown() */
/* Stall member @i (a SIGSTOP) for @us: its ticks, deliveries and disk
 * completions wait until then, in their original order.  The ticks it
 * misses are not made up: the driver reports them (raft_tick_gap), as
 * raft/member/node.c does. */
void sim_pause(struct sim *s, int i, uint64_t us);
void sim_start_all(struct sim *s); /* lab StartServers(): start + ConnectAll */

/* --- network ---------------------------------------------------------- */

/* Lab group semantics (6.5840-tests.md 1.2). */
bool sim_connected(const struct sim *s, int i); /* IsConnected */
void sim_disconnect(struct sim *s, int i); /* DisconnectAll(i) */
void sim_connect(struct sim *s, int i); /* ConnectOne(i) */
void sim_connect_all(struct sim *s); /* ConnectAll() */
/* Members with equal side[i] can talk; others cannot (lab Partition). */
void sim_partition(struct sim *s, const int *side);
/* Drop the next message of @type sent from @from to @to (once). */
void sim_drop_next(struct sim *s, int from, int to, uint8_t type);
/* One directed link (asymmetric faults). */
void sim_set_link(struct sim *s, int from, int to, bool up);
bool sim_link(const struct sim *s, int from, int to);

void sim_set_reliable(struct sim *s, bool reliable);
void sim_set_long_reordering(struct sim *s, bool on);
/* Sweep knobs; all 0 = none. */
void sim_set_faults(struct sim *s, uint32_t drop_ppm, uint32_t dup_ppm,
    uint32_t reorder_ppm, uint64_t delay_min_us, uint64_t delay_max_us);

/* --- tester (raft1 test.go) helpers ----------------------------------- */

/* Command values: a value is identified by a 64-bit hash of its bytes. */
uint64_t sim_value_hash(const void *data, uint32_t len);
uint64_t sim_int_hash(uint64_t v); /* hash of an 8-byte LE integer */
void sim_int_bytes(uint64_t v, uint8_t out[8]);

/* checkOneLeader(): up to 10 rounds of a 450-549 ms sleep; returns the
 * leader of the highest term among connected members; fails after 10. */
int sim_check_one_leader(struct sim *s);
/* checkTerms(): connected live members agree on the term; returns it. */
raft_term sim_check_terms(struct sim *s);
/* checkNoLeader(): no connected member claims leadership. */
void sim_check_no_leader(struct sim *s);
/* nCommitted(index): members whose tester apply map holds @index (a
 * crashed member keeps its map until restarted).  *@vh = value hash
 * (0 if none), *@normal = whether it is a command (not a no-op). */
int sim_n_committed(struct sim *s, raft_index index, uint64_t *vh,
    bool *normal);
/* checkNoAgreement(index). */
void sim_check_no_agreement(struct sim *s, raft_index index);
/*
 * one(cmd, expected, retry): up to 10 s, Start() on connected members in
 * turn; after an accept, poll every 20 ms for up to 2 s until >= @expected
 * members applied @cmd at that index.  Returns the index; fails otherwise.
 */
raft_index sim_one(struct sim *s, const void *cmd, uint32_t len, int expected,
    bool retry);
raft_index sim_one_int(struct sim *s, uint64_t v, int expected, bool retry);
/*
 * wait(index, n, start_term): polls (10 ms doubling to ~1 s, 30 times)
 * until >= @n members applied @index.  Returns false early if some member's
 * term exceeds @start_term (when @start_term is not (raft_term)-1).  Fails
 * if fewer than @n applied it.  *@vh (may be NULL) = the value hash.
 */
bool sim_wait(struct sim *s, raft_index index, int n, raft_term start_term,
    uint64_t *vh, bool *normal);
#define SIM_NO_TERM ((raft_term)-1)

/*
 * Asynchronous one(): a client "goroutine" stepping in virtual time.
 * sim_one_start() copies @cmd; sim_one_done() tells whether it finished;
 * sim_one_result() returns its index (fails the test if it failed).
 */
struct sim_one;
struct sim_one *sim_one_start(struct sim *s, const void *cmd, uint32_t len,
    int expected, bool retry);
bool sim_one_done(const struct sim_one *op);
raft_index sim_one_finish(struct sim *s, struct sim_one *op); /* frees op */

/* The lab's command index (commands only, no-ops skipped) of raft index
 * @index in member @i's log (or in the committed log if @i < 0). */
uint64_t sim_cmd_index(struct sim *s, int i, raft_index index);

/* Lab LogSize(): max over members of the durable raft state size in bytes
 * (encoded hard state + msg_entry_encoded_size() of every stored entry). */
uint64_t sim_log_size(struct sim *s);
uint64_t sim_snapshot_size(struct sim *s);

/* Per-member RPCs received (RpcCount) and totals. */
uint64_t sim_rpc_count(const struct sim *s, int i);
uint64_t sim_rpc_total(const struct sim *s);
uint64_t sim_bytes_total(const struct sim *s);
const struct sim_stats *sim_stats(const struct sim *s);

/* Highest index any member applied; its term. */
raft_index sim_max_applied(const struct sim *s);
raft_index sim_applied(const struct sim *s, int i);
/* AppendEntries rejections sent by member @i (all incarnations). */
uint64_t sim_append_rejects(const struct sim *s, int i);
/* Highest number of entry-carrying appends from @from to @to that were in
 * flight at once (sent, not yet answered); reset with sim_reset_inflight().
 * Exact only on a loss-free network. */
int sim_max_inflight(const struct sim *s, int from, int to);
void sim_reset_inflight(struct sim *s);

/* --- end-of-run checks ------------------------------------------------ */

/*
 * Liveness (8) and durability (7): restart every crashed member, connect
 * everything, make the network reliable, then within @live_us a leader
 * must exist and a fresh proposal must be applied by a majority of the
 * voters of its configuration; then, within another @catchup_us, every
 * member of that configuration (voters and learners: removed members and
 * spares never added are left alone) must have applied at least every
 * index any member ever applied (a member that was down for long
 * may have a long way to go on a slow configuration).  Fails otherwise.
 */
void sim_heal_and_check(struct sim *s, uint64_t live_us, uint64_t catchup_us);

#endif
