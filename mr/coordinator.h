/*
 * coordinator.h - the job's coordinator: cuts the inputs into map tasks,
 * hands tasks to workers over rpc.h, renews and expires their leases
 * (tasktab.h), accepts the first completion of each task, and returns only
 * once every mr-out-R is committed in OUTDIR.
 *
 * After the last commit it writes OUTDIR/_SUCCESS (Hadoop's marker, last,
 * so a reader that sees it sees every output), removes the intermediates
 * (unless keep_tmp), then keeps answering EXIT for linger_ms so workers
 * asking for work learn the job is over and exit at once; a worker that
 * does not hear from it exits after its own gone timeout.
 */
#ifndef RAFTKV_MR_COORDINATOR_H
#define RAFTKV_MR_COORDINATOR_H

#include <stddef.h>
#include <stdint.h>

struct coord_opts {
	const char *endpoint; /* to bind, e.g. tcp://127.0.0.1:0 */
	const char *outdir;
	uint32_t nreduce; /* > 0 */
	uint64_t lease_ms; /* task timeout (10 s by default) */
	uint64_t split_size; /* 0: one map per file, never split */
	uint64_t linger_ms; /* answer EXIT this long after the end */
	int keep_tmp; /* keep OUTDIR/.mr-tmp */
	int progress; /* progress line + summary on stderr */
	int stats; /* key=value summary on stdout */
	const char *endpoint_file; /* write the bound endpoint here */
	/* Called once the endpoint is bound (e.g. to start workers). */
	void (*ready)(const char *endpoint, void *arg);
	void *ready_arg;
};

/*
 * Run a job over @n inputs.  Returns 0 once every output is committed;
 * otherwise prints one line saying why on stderr and returns -errno (an
 * input is missing, OUTDIR is not writable, the endpoint cannot be bound)
 * or 1 (a task failed too many times).
 */
int coord_run(const struct coord_opts *o, char *const *inputs, size_t n);

#endif
