/*
 * harness.h - real member processes on 127.0.0.1 for integration tests and
 * benchmarks: start, kill, restart, inject network faults, talk to them.
 *
 * A struct harness owns one cluster: a fresh temporary directory holding
 * the cluster file and its keys (keys_init_cluster(), as `raftkv init`
 * writes them; at least one member's public key contains a '#', which the
 * cluster file must take as a key character), one data directory and one
 * log file per member, and
 * one child process per running member (fork + exec of a member program
 * such as tests/integration/counter-member).  Members are numbered by
 * INDEX 0..n-1 everywhere in this API; member index i has Raft id i + 1.
 *
 * Processes are only ever signalled by the pid the harness got from
 * fork(), never by name.  Cleanup is unconditional:
 *   - harness_free() stops every child (SIGTERM, then SIGKILL after a
 *     grace period), reaps it and removes the directory (kept, and its
 *     path printed, when RAFTKV_KEEP=1);
 *   - if the test did not call harness_mark_passed(), harness_free()
 *     first prints the tail of every member's log (for CI);
 *   - an atexit() handler and SIGINT/SIGTERM/SIGHUP handlers kill every
 *     child still registered (a failed cmocka assertion longjmps to the
 *     test's teardown, which must call harness_free(); see the tests);
 *   - each child asks the kernel for SIGKILL when its parent thread dies
 *     (PR_SET_PDEATHSIG), so even a kill -9 of the test leaks nothing
 *     but the directory.
 *
 * Network faults go through the members' fault injection (the members
 * run with --fault-injection): they affect only PEER traffic between
 * members.  Clients reach every running member whatever the faults, as
 * the labs' clerks keep their own connectivity.  The harness remembers
 * the fault state of every directed link and re-applies it to a member it
 * restarts, so a partition outlives a crash.
 *
 * Threads: every function taking a struct harness may be called from any
 * thread.  Each thread gets its own ZeroMQ client on first use (a client
 * is single-threaded); it is recycled when the thread exits.  Every
 * thread that uses the harness must be joined before harness_free().
 * Process control (harness_new, _kill, _restart, _free) is meant for the
 * thread that created the harness: only children forked by that thread
 * get PR_SET_PDEATHSIG.  Test threads must not call cmocka assertions
 * (cmocka's longjmp would cross stacks): record, join, then assert.
 *
 * Error codes: 0 or negative.  Calls to members return the member's
 * status (cproto.h / node.h codes) or the client's (client.h:
 * CLIENT_EUNREACHABLE, CLIENT_ETIMEDOUT); HARNESS_ENOTRUNNING is returned
 * at once for a member that the harness knows is not running.
 */
#ifndef RAFTKV_HARNESS_H
#define RAFTKV_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "raft/client/client.h"
#include "raft/client/cluster.h"
#include "raft/client/cproto.h"

#define HARNESS_MAX RAFT_MAX_MEMBERS

enum harness_err {
	HARNESS_ENOTRUNNING = -1901, /* the member's process is not running */
	HARNESS_EDEADLINE = -1902, /* nothing succeeded before the deadline */
};

struct harness_options {
	const char *name; /* test name: temp dir prefix, messages */
	const char *member_path; /* NULL: $RAFTKV_BUILDDIR (or .) +
				      /tests/integration/counter-member */
	const char *base_dir; /* NULL: $TMPDIR, else /tmp */
	unsigned tick_ms; /* 0: 10 */
	unsigned election_ticks; /* 0: the member's default */
	unsigned heartbeat_ticks; /* 0: the member's default */
	int64_t max_raft_state; /* <= 0: not passed (never snapshot) */
	unsigned workers; /* client workers per member; 0: default */
	const char *log_level; /* NULL: the member's default */
	const char *const *extra_args; /* NULL-terminated, appended to argv */
	bool no_fault_injection; /* do not pass --fault-injection */
	bool insecure; /* no keys, members run --insecure (the
				      default is a cluster set up as
				      `raftkv init` does: CURVE keys for
				      members, client.key and admin.key;
				      the harness's clients are admins;
				      RAFTKV_INSECURE=1 in the environment
				      forces it on for every cluster) */
	bool strict_membership; /* with insecure: do not pass
				      --insecure-membership (membership
				      changes are then refused) */
	uint32_t open_members; /* with strict_membership: the members
				      (bit i: member i) passed
				      --insecure-membership all the same */
	int spares; /* membership tests: members n..n+spares-1 have
				      ports, keys and data directories but are
				      not in the cluster file and not started:
				      harness_join() starts one with --join
				      (harness_n() counts them; the harness's
				      clients know their endpoints) */
	int start_timeout_ms; /* wait for a member to answer; 0: 20000 */
	int attempt_timeout_ms; /* harness_submit_any per member; 0: 1000 */
};

/* Zero @o (every field then means "default"). */
void harness_options_defaults(struct harness_options *o);

struct harness;

/*
 * Create the directory and cluster file for @n members (1..HARNESS_MAX)
 * and start them all; returns once every member answers STATUS.  Ports
 * are chosen free (outside the kernel's ephemeral range, so peers'
 * outgoing connections cannot take them); if a member nevertheless fails
 * to bind, the whole start is retried on other ports.  @o may be NULL.
 * Returns NULL after printing why on stderr.
 */
struct harness *harness_new(int n, const struct harness_options *o);

/* Stop every child, remove the directory (see the file comment).  NULL
 * is accepted. */
void harness_free(struct harness *h);

/* The test passed: harness_free() need not print the member logs. */
void harness_mark_passed(struct harness *h);

int harness_n(const struct harness *h);
raft_id harness_id(const struct harness *h, int i);
int harness_index_of(const struct harness *h, raft_id id); /* -1: none */
const char *harness_dir(const struct harness *h);
const char *harness_data_dir(const struct harness *h, int i);
const char *harness_log_path(const struct harness *h, int i);
const struct cluster *harness_cluster(const struct harness *h);

/* --- processes ------------------------------------------------------- */

/* Pid of member @i's process, 0 when not running (reaps it if it died). */
pid_t harness_pid(struct harness *h, int i);
bool harness_running(struct harness *h, int i);

/*
 * Send @sig to member @i's process.  For SIGKILL and SIGTERM, wait until
 * it has exited (SIGTERM: SIGKILL after 10 s, reported on stderr) and
 * reap it; other signals (SIGSTOP, SIGCONT) are only sent.  Returns 0, or
 * HARNESS_ENOTRUNNING.
 */
int harness_kill(struct harness *h, int i, int sig);

/* harness_kill() of every running member, all signalled before any wait
 * (a simultaneous crash). */
void harness_kill_all(struct harness *h, int sig);

/*
 * Start member @i again on its data directory and wait until it answers
 * STATUS, then re-apply the fault state of its outgoing links.  Returns 0,
 * -EBUSY (still running), or -EIO (it exited or never answered; its log
 * says why).
 */
int harness_restart(struct harness *h, int i);

/*
 * Start spare member @i (options.spares) for the first time, joining the
 * running cluster as a learner (--join with its endpoints; add it with
 * harness_member_change() first or after).  Later restarts are
 * harness_restart().  Returns as harness_restart().
 */
int harness_join(struct harness *h, int i);

/* Start /bin/sh -c @script with RAFTKV_CLUSTER set to the harness's
 * cluster file, PATH starting with the build's kv/ (our raftkv) and $D
 * the harness's directory.  Its pid, or -1. */
pid_t harness_sh(struct harness *h, const char *script);

/* Wait for child @pid: its exit status, 128 + the signal that killed it,
 * or -1. */
int harness_wait_status(pid_t pid);

/* Member @i was removed: wait up to @timeout_ms for its process to stop
 * by itself (raftkv-server exits 0 once its removal is committed), which
 * is then not an unexpected exit.  0 or HARNESS_EDEADLINE. */
int harness_wait_removed_exit(struct harness *h, int i, int timeout_ms);

/* Member @i, running, is being removed: its exit 0 from now on (when it
 * learns of the removal) is not an unexpected exit. */
void harness_expect_removed_exit(struct harness *h, int i);

/* Remove stopped member @i's data directory (its next start is a fresh
 * member).  0 or -EBUSY (running). */
int harness_wipe_data(struct harness *h, int i);

/* Give stopped member @i a new CURVE key pair: its secret file and the
 * harness's view of its public key (clients are rebuilt), as an
 * operator does for a member added again after its removal.  0, -EBUSY
 * (running), or a key error. */
int harness_rekey(struct harness *h, int i);

/* Whether member @i is one of the cluster file's (not a spare). */
bool harness_bootstrap(const struct harness *h, int i);

/*
 * A membership change through the client protocol (CPROTO_MEMBER),
 * sent to the leader (found among the running members, following hints)
 * until it is answered or @deadline_ms passed: @action is a
 * cproto_member_action (ADD: member @i's endpoints and key), for member
 * @i.  Retries RAFT_ENOTCAUGHTUP and RAFT_ECONFPENDING, and an attempt
 * whose outcome is unknown (then -EEXIST, or -ENOENT for a removal,
 * means an earlier attempt made it: 0).  Returns the
 * member's final status (0: committed), or HARNESS_EDEADLINE.
 */
int harness_member_change(struct harness *h, int action, int i,
    int deadline_ms);

/* harness_restart() of every member not running (started in parallel). */
int harness_restart_all(struct harness *h);

/*
 * Members whose process exited although the harness did not kill it (for
 * example the counter application aborting on an applied Dec), or did
 * not stop cleanly when the harness sent SIGTERM (a non-zero exit status:
 * a failed shutdown, a sanitizer or leak report).  Prints each one with
 * its exit status and log tail; returns how many.  Each is printed once.
 */
int harness_unexpected_exits(struct harness *h);

/* Print the last @lines lines of member @i's log (-1: every member). */
void harness_print_logs(const struct harness *h, int i, int lines);

/* --- network faults (peer traffic only) ------------------------------ */

/* Block (or unblock) what member @i sends to member @j. */
int harness_block(struct harness *h, int i, int j, bool blocked);

/* Connect or cut the link between @i and @j, both directions. */
int harness_link(struct harness *h, int i, int j, bool connected);

/* Cut (or restore) every link of member @i, both directions: the labs'
 * DisconnectAll(i) (and, with false, a ConnectOne(i) to everyone). */
int harness_isolate(struct harness *h, int i, bool isolated);

/*
 * Symmetric partition: @group[i] names member i's group (any int); links
 * inside a group are connected, links between groups cut.  A member in
 * group HARNESS_BRIDGE is connected to everyone: {0,0,HARNESS_BRIDGE,1,1}
 * is the bridge shape (two groups that only member 2 joins).  Other
 * faults (drop, delay) are kept.
 */
#define HARNESS_BRIDGE (-1000000)
int harness_partition(struct harness *h, const int *group);

/* Asymmetric faults: member @i hears nobody (deafen: every j->i blocked)
 * or nobody hears it (mute: every i->j blocked); false undoes it. */
int harness_deafen(struct harness *h, int i, bool deaf);
int harness_mute(struct harness *h, int i, bool mute);

/* Unblock every link (drop and delay are kept). */
int harness_heal(struct harness *h);

/* Drop @pct % (0..100) / delay by @ms every peer message on every link. */
int harness_set_drop(struct harness *h, unsigned pct);
int harness_set_delay(struct harness *h, unsigned ms);

/* --- client calls ---------------------------------------------------- */

/*
 * Send one request (cproto.h @op) to member @i and wait up to @timeout_ms.
 * Returns 0 with @rep filled (rep->status is the member's answer; the
 * caller frees rep->data), or HARNESS_ENOTRUNNING / a client.h error.
 */
int harness_call(struct harness *h, int i, uint8_t op, const void *payload,
    size_t len, int timeout_ms, struct client_reply *rep);

/* SUBMIT @cmd to member @i.  Returns the member's status (0: applied,
 * reply in @rep, caller frees rep->data) or a harness/client error.
 * @rep may be NULL when the reply is not wanted. */
int harness_submit(struct harness *h, int i, const void *cmd, size_t len,
    int timeout_ms, struct client_reply *rep);

/* READ (linearizable, through the read barrier) or READ_STALE (local
 * state as it is) of member @i.  Returns as harness_submit(). */
int harness_query(struct harness *h, int i, bool linearizable, const void *q,
    size_t len, int timeout_ms, struct client_reply *rep);

/* STATUS of member @i.  0 or an error. */
int harness_status(struct harness *h, int i, struct cproto_status *st);

/*
 * The labs' checkOneLeader: poll the running members until, in the
 * highest term any of them reports, exactly one says it is leader; return
 * its index.  Two leaders in one term make it print both and return -2
 * (a safety violation).  -1 when no leader emerged within @timeout_ms.
 */
int harness_leader(struct harness *h, int timeout_ms);

/* What harness_submit_any() did, for at-most-once accounting. */
struct harness_submit_info {
	int member; /* index that applied it, -1 if none */
	unsigned attempts; /* submissions sent */
	unsigned maybe; /* attempts whose outcome is unknown: the command
			      may have been (or may still be) applied */
};

/*
 * The labs' onePartition: until @deadline_ms (from now) elapses, submit
 * @cmd to the member believed to lead (shared by all threads), following
 * leader hints and otherwise trying each running member of @mask (bit i =
 * member i; 0 = all) in turn, each attempt bounded by
 * options.attempt_timeout_ms, sleeping 50 ms after a full fruitless
 * round.  Returns 0 with the reply in @rep (may be NULL), or
 * HARNESS_EDEADLINE.  @info may be NULL.
 *
 * An attempt that timed out may still apply later: the counter
 * application has no duplicate detection, so callers counting effects use
 * info->maybe as the bound on extra applications.
 */
int harness_submit_any(struct harness *h, uint32_t mask, const void *cmd,
    size_t len, int deadline_ms, struct client_reply *rep,
    struct harness_submit_info *info);

/*
 * Wait until every running member reports the same last index, with
 * commit and applied equal to it (nothing in flight).  0, or
 * HARNESS_EDEADLINE after printing the statuses.
 */
int harness_wait_converged(struct harness *h, int timeout_ms);

/* --- durable logs (members stopped) ---------------------------------- */

/* A copy of a member's durable log, read from its data directory. */
struct harness_log {
	raft_index snap_index; /* 0: no snapshot */
	raft_term snap_term;
	raft_index first_index; /* index of entries[0] */
	uint64_t n;
	struct raft_entry *entries; /* entries[k].index == first_index + k */
};

/*
 * Read member @i's log with storage_open() (recovery as at a restart: a
 * torn tail is cut).  The member must not be running (the data directory
 * is locked while it is).  0, -EBUSY, or a storage error (printed).
 * Free with harness_log_free().
 */
int harness_read_log(struct harness *h, int i, struct harness_log *log);
void harness_log_free(struct harness_log *log);

/*
 * Read every member's log and check Log Matching: wherever two logs hold
 * the same index, the entries are identical (term, type, bytes), and
 * every log ends at the same index (the cluster converged before it was
 * stopped).  Prints the first difference.  0 or -1 (-EBUSY when a member
 * still runs).
 */
int harness_check_logs(struct harness *h);

/* --- the counter application (tests/integration/counter_member.c) ----- */

/* Member @i's counter as it is now (READ_STALE).  0 or an error. */
int harness_counter_get(struct harness *h, int i, uint64_t *v);

/* One Inc through harness_submit_any(); *@v gets the new value. */
int harness_counter_inc(struct harness *h, uint32_t mask, int deadline_ms,
    uint64_t *v, struct harness_submit_info *info);

/*
 * The labs' checkCounter: poll (10 ms, doubling to 1280 ms, about
 * @timeout_ms in all) until at least @n running members have counter
 * @v.  Returns the number of members that have it at the end, so a test
 * asserts the result is >= n.  On failure prints every member's value.
 */
int harness_counter_wait(struct harness *h, uint64_t v, int n, int timeout_ms);

/* --- small utilities ------------------------------------------------- */

uint64_t harness_now_ms(void);
void harness_sleep_ms(unsigned ms);
/* RAFTKV_LONG set and not "0". */
bool harness_long(void);

#endif
