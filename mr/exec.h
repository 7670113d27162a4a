/*
 * exec.h - running one map or reduce task of an app, and the sequential
 * runner built from the same pieces.
 *
 * Where intermediates live: in OUTDIR/.mr-tmp/, next to the outputs, not
 * on the worker's local disk.  When OUTDIR is in a raftkv mount, that
 * puts them in the replicated tree: a worker that dies after finishing a
 * map costs nothing (the paper must re-run completed maps of a dead worker
 * because their output sat on its disk), workers on other machines read
 * them through their own mount with no fetch service to write, secure or
 * keep alive, and the coordinator holds no per-file state.  The price is
 * that intermediate bytes go through Raft; map-side combining (wc.so has a
 * combiner) keeps that small: for word count over the Gutenberg texts the
 * intermediate is a few percent of the input (bench/bench_mr.sh prints it).
 *
 * Names: map attempt A of task M writes partition R to
 *     OUTDIR/.mr-tmp/mr-M-R.aA
 * (one name per attempt: a duplicate or half-dead attempt can never mix
 * its partitions with the accepted one's; the reduce task is told which
 * attempt of each map was accepted).  Reduce attempt A of task R writes
 *     OUTDIR/.mr-out-R.aA.PID.tmp
 * and commits it by renaming it to OUTDIR/mr-out-R: renameat2 with
 * RENAME_NOREPLACE where the filesystem has it (the first commit wins and
 * later duplicates are dropped), plain rename(2) otherwise (a duplicate
 * replaces the output atomically with equal bytes, for deterministic apps).
 * Either way no reader ever sees a partial or doubled mr-out-R.
 */
#ifndef RAFTKV_MR_EXEC_H
#define RAFTKV_MR_EXEC_H

#include <stdint.h>
#include <sys/types.h>

#include "mr/app.h"
#include "mr/counters.h"
#include "mr/split.h"

#define EXEC_TMPDIR ".mr-tmp"

struct exec_env {
	struct app *app;
	uint32_t nmap, nreduce;
	const char *outdir;
	pid_t worker_pid;
	/* results of the last task */
	struct counters counters;
	uint64_t bytes_in, bytes_out;
};

/*
 * Run map task @task (attempt @attempt) over split @s: intermediates in
 * OUTDIR/.mr-tmp/mr-TASK-R.aATTEMPT for every R.  Returns 0, -errno of a
 * failed read or write, or 1 if the app failed.
 */
int exec_map(struct exec_env *e, uint32_t task, uint32_t attempt,
    const struct split *s);

/*
 * Run reduce task @task: read partition @task of every map (map m's
 * accepted attempt is @winners[m]), reduce, commit OUTDIR/mr-out-TASK.
 * Returns 0 (also when another attempt had committed first), -errno, or 1
 * if the app failed.
 */
int exec_reduce(struct exec_env *e, uint32_t task, uint32_t attempt,
    const uint32_t *winners);

/*
 * The sequential runner: map every split in this process, sort all pairs,
 * reduce, and write "key value" lines to @outpath (via a temporary name
 * and rename).  Returns 0, -errno, or 1 if the app failed.
 */
int exec_seq(struct app *app, const struct split *splits, size_t n,
    const char *outpath, struct counters *counters);

/* Create OUTDIR and OUTDIR/.mr-tmp.  0 or -errno. */
int exec_prepare_outdir(const char *outdir);

#endif
