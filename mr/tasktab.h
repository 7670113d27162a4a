/*
 * tasktab.h - the coordinator's task table: which map and reduce tasks are
 * idle, running (under which attempts, leased until when) or done.
 *
 * Pure: no I/O and no clock; every call takes the time (ms) from its
 * caller, so the unit tests drive it through timeouts deterministically.
 *
 * States of a task and the call that moves it:
 *
 *   IDLE --assign--> RUNNING --complete (first one)--> DONE
 *   RUNNING --fail / lease expired, no other attempt--> IDLE
 *
 * Invariants:
 *  1. Reduce tasks are handed out only once every map is DONE (they read
 *     every map's output).
 *  2. DONE is final: a later completion of the same task (a duplicate or a
 *     backup) is reported as a duplicate and changes nothing; the accepted
 *     attempt's number is kept (tasktab_winner) so reduces read exactly
 *     that map attempt's files.
 *  3. An attempt's lease is renewed by each heartbeat; an attempt not heard
 *     from for lease_ms is dropped (a "reassignment": the task goes IDLE
 *     and is handed out again), so a dead or stalled worker costs one lease.
 *  4. Backup attempts (the paper's stragglers): only when the phase is at
 *     least 90% done, only for a task with a single attempt that has run
 *     longer than max(2 x the median duration of the phase's completed
 *     tasks, backup_floor_ms), at most max(1, n/10) per phase.  A healthy
 *     job whose tasks all take similar times never runs a task twice.
 *  5. A task that failed max_failures times fails the job.
 */
#ifndef RAFTKV_MR_TASKTAB_H
#define RAFTKV_MR_TASKTAB_H

#include <stdint.h>

#define TT_MAX_RUN 4 /* concurrent attempts of one task */

enum tt_phase { TT_MAP = 0, TT_REDUCE = 1 };
enum tt_state { TT_IDLE = 0, TT_RUNNING, TT_DONE };

enum tt_result {
	TT_ASSIGNED = 0, /* *phase, *task, *attempt set */
	TT_WAIT, /* nothing to hand out now: ask again */
	TT_ALLDONE, /* every reduce committed */
	TT_FAILED, /* a task failed max_failures times */
};

struct tt_run {
	uint32_t attempt;
	uint64_t start_ms, seen_ms;
};

struct tt_task {
	enum tt_state state;
	uint32_t next_attempt; /* attempts handed out so far */
	uint32_t winner; /* accepted attempt (DONE) */
	uint32_t failures;
	uint32_t nrun;
	struct tt_run run[TT_MAX_RUN];
};

struct tt_stats {
	uint64_t attempts, failures, reassigned, backups, duplicates;
};

struct tasktab {
	uint32_t n[2];
	uint32_t ndone[2];
	uint32_t nbackup[2];
	struct tt_task *t[2];
	uint64_t *dur[2]; /* durations of completed tasks */
	uint64_t lease_ms;
	uint64_t backup_floor_ms;
	uint32_t max_failures;
	int failed;
	struct tt_stats st;
};

/*
 * Set up @nmap map and @nreduce reduce tasks (both > 0), all IDLE, with a
 * lease of @lease_ms.  backup_floor_ms defaults to lease_ms and
 * max_failures to 20; change them in the struct before the first assign.
 * Aborts on out of memory.  Release with tasktab_close().
 */
void tasktab_init(struct tasktab *tt, uint32_t nmap, uint32_t nreduce,
    uint64_t lease_ms);
void tasktab_close(struct tasktab *tt);

/* Drop attempts whose lease ran out at @now (invariant 3). */
void tasktab_expire(struct tasktab *tt, uint64_t now);

/* Hand out an attempt at @now (expires leases first).  See enum tt_result. */
enum tt_result tasktab_assign(struct tasktab *tt, uint64_t now,
    enum tt_phase *phase, uint32_t *task, uint32_t *attempt);

/*
 * Renew the lease of a running attempt.  Returns 0, -ESTALE if the task is
 * DONE or the attempt is no longer running (its worker should stop it), or
 * -EINVAL for a task or attempt that was never handed out.
 */
int tasktab_heartbeat(struct tasktab *tt, uint64_t now, enum tt_phase phase,
    uint32_t task, uint32_t attempt);

/*
 * An attempt finished successfully.  Returns 1 if accepted (the task is
 * now DONE with this winner), 0 for a duplicate (task already DONE),
 * -EINVAL for a task or attempt never handed out.  A completion from an
 * attempt whose lease had expired is still accepted if the task is not
 * DONE: its output is as good as any.
 */
int tasktab_complete(struct tasktab *tt, uint64_t now, enum tt_phase phase,
    uint32_t task, uint32_t attempt);

/* An attempt failed.  0, or -EINVAL as tasktab_heartbeat. */
int tasktab_fail(struct tasktab *tt, enum tt_phase phase, uint32_t task,
    uint32_t attempt);

/* Accepted attempt of DONE map task @task. */
uint32_t tasktab_winner(const struct tasktab *tt, enum tt_phase phase,
    uint32_t task);

/* Tasks of @phase in each state. */
void tasktab_count(const struct tasktab *tt, enum tt_phase phase,
    uint32_t *idle, uint32_t *running, uint32_t *done);

int tasktab_all_done(const struct tasktab *tt);

#endif
