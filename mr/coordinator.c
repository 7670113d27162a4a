/*
 * coordinator.c - the job's coordinator loop (see coordinator.h).
 *
 * One thread: receive a request (waiting at most 100 ms), answer it from
 * the task table at once, then do the periodic work (progress line, end of
 * job).  Nothing here touches an input or an intermediate except the
 * split computation at the start and the clean-up at the end, so the
 * coordinator is never slow to answer and a worker's heartbeat is never
 * late because of another worker.
 */
#define _GNU_SOURCE
#include "mr/coordinator.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mr/counters.h"
#include "mr/exec.h"
#include "mr/rpc.h"
#include "mr/split.h"
#include "mr/tasktab.h"
#include "mr/xmem.h"
#include "raft/util/clock.h"

#include <zmq.h>

struct coord {
	const struct coord_opts *o;
	struct split *splits;
	size_t nsplit;
	struct tasktab tt;
	struct rpc_server *srv;
	struct counters counters;
	uint64_t bytes_in, bytes_total, failed[2];
	uint64_t t0;
	uint32_t *winners;
};

static void reply_task(struct coord *c, enum tt_phase p, uint32_t task,
    uint32_t attempt)
{
	struct msg r = { .type = MSG_TASK,
		.task = task,
		.attempt = attempt,
		.nmap = (uint32_t)c->nsplit,
		.nreduce = c->o->nreduce };
	uint32_t m;

	r.wait_ms = (uint32_t)(c->o->lease_ms / 4 ? c->o->lease_ms / 4 : 1);
	r.s2 = c->o->outdir;
	r.s2len = (uint32_t)strlen(c->o->outdir);
	if (p == TT_MAP) {
		r.phase = MSG_PHASE_MAP;
		r.s1 = c->splits[task].name;
		r.s1len = (uint32_t)strlen(r.s1);
		r.off = c->splits[task].off;
		r.len = c->splits[task].len;
	} else {
		r.phase = MSG_PHASE_REDUCE;
		for (m = 0; m < c->nsplit; m++)
			c->winners[m] = tasktab_winner(&c->tt, TT_MAP, m);
		/* host order = little-endian on every machine we build for */
		r.s1 = (const char *)c->winners;
		r.s1len = (uint32_t)(c->nsplit * sizeof(uint32_t));
	}
	rpc_server_reply(c->srv, &r);
}

static void handle(struct coord *c, const struct msg *m, uint64_t now)
{
	struct msg r = { .type = MSG_OK };
	enum tt_phase p = m->phase == MSG_PHASE_REDUCE ? TT_REDUCE : TT_MAP;
	uint32_t task = 0, attempt = 0;
	struct counters ctr;
	int rc;

	switch (m->type) {
	case MSG_GET:
		switch (tasktab_assign(&c->tt, now, &p, &task, &attempt)) {
		case TT_ASSIGNED:
			reply_task(c, p, task, attempt);
			return;
		case TT_WAIT:
			r.type = MSG_WAIT;
			r.wait_ms = 50;
			break;
		default:
			r.type = MSG_EXIT;
		}
		break;
	case MSG_HEARTBEAT:
		if (tasktab_heartbeat(&c->tt, now, p, m->task, m->attempt) < 0)
			r.type = MSG_ABANDON;
		break;
	case MSG_DONE:
		rc = tasktab_complete(&c->tt, now, p, m->task, m->attempt);
		if (rc == 1) {
			memset(&ctr, 0, sizeof(ctr));
			if (counters_parse(&ctr, m->s1, m->s1len) == 0)
				counters_merge(&c->counters, &ctr);
			if (p == TT_MAP)
				c->bytes_in += m->bytes_in;
		}
		break;
	case MSG_FAIL:
		if (tasktab_fail(&c->tt, p, m->task, m->attempt) == 0) {
			c->failed[p]++;
			if (!c->o->progress)
				break;
			fprintf(stderr,
			    "\rraftkv-mr: %s task %" PRIu32 " attempt %" PRIu32
			    " failed: %.*s\n",
			    p == TT_MAP ? "map" : "reduce", m->task, m->attempt,
			    (int)(m->s1len > 200 ? 200 : m->s1len), m->s1);
		}
		break;
	default:
		r.type = MSG_EXIT;
	}
	rpc_server_reply(c->srv, &r);
}

static double mib(uint64_t b)
{
	return (double)b / (1024.0 * 1024.0);
}

static void progress(struct coord *c, uint64_t now)
{
	uint32_t i[2], r[2], d[2];
	double s = (double)(now - c->t0) / 1000.0;

	tasktab_count(&c->tt, TT_MAP, &i[0], &r[0], &d[0]);
	tasktab_count(&c->tt, TT_REDUCE, &i[1], &r[1], &d[1]);
	fprintf(stderr,
	    "\rmap %" PRIu32 "/%" PRIu32 " done %" PRIu32 " running %" PRIu64
	    " failed | reduce %" PRIu32 "/%" PRIu32 " done %" PRIu32
	    " running %" PRIu64 " failed | %.1f MiB in, "
	    "%.1f MiB/s   ",
	    d[0], c->tt.n[0], r[0], c->failed[0], d[1], c->tt.n[1], r[1],
	    c->failed[1], mib(c->bytes_in), s > 0 ? mib(c->bytes_in) / s : 0.0);
}

static void summary(struct coord *c, uint64_t now, int ok)
{
	const struct tt_stats *st = &c->tt.st;
	double s = (double)(now - c->t0) / 1000.0;
	size_t i;

	if (c->o->progress) {
		progress(c, now);
		fprintf(stderr,
		    "\nraftkv-mr: %s in %.2f s: %zu maps, %" PRIu32
		    " reduces, %" PRIu64 " attempts, %" PRIu64
		    " failed, %" PRIu64 " reassigned, %" PRIu64
		    " backups, %" PRIu64
		    " duplicates; %.1f MiB in (%.1f MiB/s)\n",
		    ok ? "done" : "FAILED", s, c->nsplit, c->o->nreduce,
		    st->attempts, st->failures, st->reassigned, st->backups,
		    st->duplicates, mib(c->bytes_in),
		    s > 0 ? mib(c->bytes_in) / s : 0.0);
		for (i = 0; i < c->counters.n; i++)
			fprintf(stderr, "  %-28s %" PRId64 "\n",
			    c->counters.name[i], c->counters.val[i]);
	}
	if (c->o->stats) {
		printf("status=%s\nwall_ms=%" PRIu64
		       "\nmaps=%zu\nreduces=%" PRIu32 "\nattempts=%" PRIu64
		       "\nfailed=%" PRIu64 "\nreassigned=%" PRIu64
		       "\nbackups=%" PRIu64 "\nduplicates=%" PRIu64
		       "\nbytes_in=%" PRIu64 "\n",
		    ok ? "ok" : "failed", now - c->t0, c->nsplit, c->o->nreduce,
		    st->attempts, st->failures, st->reassigned, st->backups,
		    st->duplicates, c->bytes_in);
		for (i = 0; i < c->counters.n; i++)
			printf("counter.%s=%" PRId64 "\n", c->counters.name[i],
			    c->counters.val[i]);
		fflush(stdout);
	}
}

/* Remove OUTDIR/.mr-tmp and its files (intermediates of every attempt). */
static void remove_tmp(const char *outdir)
{
	char path[4096];
	struct dirent *de;
	DIR *d;
	int dfd;

	snprintf(path, sizeof(path), "%s/" EXEC_TMPDIR, outdir);
	d = opendir(path);
	if (d == NULL)
		return;
	dfd = dirfd(d);
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "mr-", 3) == 0)
			unlinkat(dfd, de->d_name, 0);
	closedir(d);
	rmdir(path);
}

static void finish(struct coord *c)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/_SUCCESS", c->o->outdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd >= 0)
		close(fd);
	if (!c->o->keep_tmp)
		remove_tmp(c->o->outdir);
}

/* Publish the bound endpoint in o->endpoint_file (tmp + rename). */
static int write_endpoint(const struct coord_opts *o, const char *ep)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", o->endpoint_file);
	f = fopen(tmp, "w");
	if (f == NULL || fprintf(f, "%s\n", ep) < 0 || fclose(f) != 0 ||
	    rename(tmp, o->endpoint_file) < 0) {
		fprintf(stderr, "raftkv-mr: %s: %s\n", o->endpoint_file,
		    strerror(errno));
		return -errno;
	}
	return 0;
}

static int setup(struct coord *c, char *const *inputs, size_t n)
{
	char err[512];
	int rc;

	rc = split_inputs(inputs, n, c->o->split_size, &c->splits, &c->nsplit,
	    err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "raftkv-mr: %s\n", err);
		return rc;
	}
	if (c->nsplit > MSG_MAX_MAPS) {
		fprintf(stderr,
		    "raftkv-mr: %zu map tasks, at most %u: use a "
		    "larger split size\n",
		    c->nsplit, MSG_MAX_MAPS);
		return -E2BIG;
	}
	rc = exec_prepare_outdir(c->o->outdir);
	if (rc < 0) {
		fprintf(stderr, "raftkv-mr: output directory %s: %s\n",
		    c->o->outdir, strerror(-rc));
		return rc;
	}
	c->srv = rpc_server_new(c->o->endpoint);
	if (c->srv == NULL) {
		rc = -errno;
		fprintf(stderr, "raftkv-mr: cannot listen on %s: %s\n",
		    c->o->endpoint, zmq_strerror(-rc));
		return rc;
	}
	if (c->o->endpoint_file)
		return write_endpoint(c->o, rpc_server_endpoint(c->srv));
	return 0;
}

int coord_run(const struct coord_opts *o, char *const *inputs, size_t n)
{
	struct coord c = { .o = o };
	uint64_t now, end = 0, last = 0;
	struct msg m;
	int rc, ok = 0;

	rc = setup(&c, inputs, n);
	if (rc < 0)
		goto out;
	tasktab_init(&c.tt, (uint32_t)c.nsplit, o->nreduce, o->lease_ms);
	c.winners = xcalloc(c.nsplit, sizeof(uint32_t));
	c.t0 = mono_ms();
	if (o->ready)
		o->ready(rpc_server_endpoint(c.srv), o->ready_arg);
	for (;;) {
		rc = rpc_server_recv(c.srv, &m, 100);
		now = mono_ms();
		if (rc == 1)
			handle(&c, &m, now);
		if (end == 0 && (tasktab_all_done(&c.tt) || c.tt.failed)) {
			end = now;
			ok = !c.tt.failed;
			if (ok)
				finish(&c);
			summary(&c, now, ok);
		}
		if (end && now - end >= o->linger_ms)
			break;
		if (o->progress && !end && now - last >= 250) {
			progress(&c, now);
			last = now;
		}
	}
	if (!ok)
		fprintf(stderr,
		    "raftkv-mr: job failed: a task failed %" PRIu32 " times\n",
		    c.tt.max_failures);
	rc = ok ? 0 : 1;
	tasktab_close(&c.tt);
out:
	rpc_server_free(c.srv);
	free(c.splits);
	free(c.winners);
	return rc;
}
