/*
 * worker.c - the worker loop (see worker.h).
 */
#define _GNU_SOURCE
#include "mr/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mr/exec.h"
#include "mr/rpc.h"
#include "mr/xmem.h"
#include "raft/util/clock.h"

/* Wait for one answer at most this long before resetting the socket. */
#define CALL_TIMEOUT_MS 1000

struct worker {
	struct app *app;
	const struct worker_opts *o;
	struct rpc_client *cli;
	pid_t pid; /* this worker's, for its children */
	char name[128];
	char result[MSG_STR_MAX]; /* the child's counters text */
	size_t rlen;
};

/* A call retried until answered or gone_ms have passed. */
static int call(struct worker *w, const struct msg *req, struct msg *rep)
{
	uint64_t deadline = mono_ms() + w->o->gone_ms;
	int rc;

	for (;;) {
		rc = rpc_call(w->cli, req, rep, CALL_TIMEOUT_MS);
		if (rc != -ETIMEDOUT && rc != -EBADMSG)
			return rc;
		if (mono_ms() >= deadline)
			return -ETIMEDOUT;
	}
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* In the child: run the task, write counters to @fd, exit 0 or 1. */
static void child(struct worker *w, const struct msg *t, int fd)
{
	struct exec_env e = { .app = w->app,
		.nmap = t->nmap,
		.nreduce = t->nreduce,
		.worker_pid = w->pid };
	char outdir[4096], name[4096], buf[MSG_STR_MAX];
	struct mr_ctx ictx = { .worker_pid = w->pid,
		.task = t->task,
		.attempt = t->attempt,
		.nreduce = t->nreduce,
		.is_map = t->phase == MSG_PHASE_MAP };
	uint32_t *winners = NULL;
	size_t n;
	int rc;

	/* die with the worker: an orphaned attempt would only waste time */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != e.worker_pid)
		_exit(1);
	signal(SIGPIPE, SIG_DFL);
	if (w->o->outdir)
		snprintf(outdir, sizeof(outdir), "%s", w->o->outdir);
	else
		snprintf(outdir, sizeof(outdir), "%.*s", (int)t->s2len, t->s2);
	e.outdir = outdir;
	rc = app_init(w->app, &ictx);
	if (rc == 0 && t->phase == MSG_PHASE_MAP) {
		struct split s = { name, t->off, t->len };

		snprintf(name, sizeof(name), "%.*s", (int)t->s1len, t->s1);
		rc = exec_map(&e, t->task, t->attempt, &s);
	} else if (rc == 0) {
		winners = xmalloc(t->nmap * sizeof(uint32_t) + 1);
		memcpy(winners, t->s1, t->nmap * sizeof(uint32_t));
		rc = exec_reduce(&e, t->task, t->attempt, winners);
	}
	if (rc == 0) {
		app_fini(w->app, &ictx);
		/* first line: bytes in; then the counters */
		n = (size_t)snprintf(buf, 32, "%" PRIu64 "\n", e.bytes_in);
		n += counters_format(&e.counters, buf + n, sizeof(buf) - n);
		if (write(fd, buf, n) != (ssize_t)n)
			rc = 1;
	}
	_exit(rc == 0 ? 0 : 1);
}

/* Validate a TASK before forking for it. */
static int task_ok(const struct msg *t)
{
	if (t->phase == MSG_PHASE_MAP)
		return t->task < t->nmap && t->s1len > 0 && t->nreduce > 0 &&
		    !memchr(t->s1, '\0', t->s1len);
	if (t->phase == MSG_PHASE_REDUCE)
		return t->task < t->nreduce && t->nmap > 0 &&
		    t->nmap <= MSG_MAX_MAPS &&
		    t->s1len == t->nmap * sizeof(uint32_t);
	return 0;
}

/* Read what the child wrote until EOF or @ms elapse.  1 at EOF. */
static int collect(struct worker *w, int fd, int ms)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	ssize_t r;

	if (poll(&pf, 1, ms) <= 0)
		return 0;
	r = read(fd, w->result + w->rlen, sizeof(w->result) - 1 - w->rlen);
	if (r > 0) {
		w->rlen += (size_t)r;
		return 0;
	}
	return r == 0 || errno != EINTR;
}

/*
 * Run task @t (its strings are copied first: the next call reuses the
 * reply buffer).  Returns 0, or -ETIMEDOUT when the coordinator is gone.
 */
static int run_task(struct worker *w, const struct msg *t0)
{
	struct msg t = *t0, req = { 0 }, rep;
	char *s1 = xmalloc(t0->s1len + 1), *s2 = xmalloc(t0->s2len + 1);
	uint64_t next_hb;
	int p[2], status = 0, rc = 0, eof = 0, abandoned = 0;
	pid_t pid;

	memcpy(s1, t0->s1, t0->s1len);
	memcpy(s2, t0->s2, t0->s2len);
	t.s1 = s1;
	t.s2 = s2;
	req.phase = t.phase;
	req.task = t.task;
	req.attempt = t.attempt;
	w->rlen = 0;
	if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		req.type = MSG_FAIL;
		req.s1 = "worker: cannot fork";
		req.s1len = (uint32_t)strlen(req.s1);
		goto report;
	}
	if (pid == 0) {
		close(p[0]);
		child(w, &t, p[1]);
	}
	close(p[1]);
	next_hb = mono_ms() + t.wait_ms;
	while (!eof) {
		uint64_t now = mono_ms();

		if (now >= next_hb) {
			req.type = MSG_HEARTBEAT;
			rc = call(w, &req, &rep);
			if (rc < 0 || rep.type == MSG_ABANDON) {
				kill(pid, SIGKILL);
				abandoned = 1;
				break;
			}
			next_hb = mono_ms() + t.wait_ms;
			continue;
		}
		eof = collect(w, p[0], (int)(next_hb - now));
	}
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (abandoned)
		goto out;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		char *nl;

		w->result[w->rlen] = '\0';
		req.type = MSG_DONE;
		nl = strchr(w->result, '\n');
		req.bytes_in = strtoull(w->result, NULL, 10);
		if (nl) {
			req.s1 = nl + 1;
			req.s1len = (uint32_t)(w->rlen -
			    (size_t)(nl + 1 - w->result));
		}
	} else {
		static char why[64];

		req.type = MSG_FAIL;
		if (WIFSIGNALED(status))
			snprintf(why, sizeof(why), "killed by signal %d",
			    WTERMSIG(status));
		else
			snprintf(why, sizeof(why), "exit status %d",
			    WEXITSTATUS(status));
		req.s1 = why;
		req.s1len = (uint32_t)strlen(why);
	}
report:
	rc = call(w, &req, &rep);
out:
	free(s1);
	free(s2);
	return rc == -ETIMEDOUT ? rc : 0;
}

int worker_run(struct app *app, const struct worker_opts *o)
{
	struct worker w = { .app = app, .o = o, .pid = getpid() };
	struct msg req = { .type = MSG_GET }, rep;
	int rc;

	w.cli = rpc_client_new(o->endpoint);
	if (w.cli == NULL) {
		rc = -errno;
		fprintf(stderr, "raftkv-mr worker: %s: %s\n", o->endpoint,
		    strerror(-rc));
		return rc;
	}
	gethostname(w.name, sizeof(w.name) - 24);
	snprintf(w.name + strlen(w.name), 24, ":%ld", (long)getpid());
	req.s1 = w.name;
	req.s1len = (uint32_t)strlen(w.name);
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		rc = call(&w, &req, &rep);
		if (rc < 0)
			break;
		if (rep.type == MSG_EXIT)
			break;
		if (rep.type == MSG_TASK && task_ok(&rep)) {
			rc = run_task(&w, &rep);
			if (rc < 0)
				break;
		} else {
			sleep_ms(rep.type == MSG_WAIT && rep.wait_ms <= 1000
			        ? rep.wait_ms
			        : 100);
		}
	}
	if (rc == -ETIMEDOUT)
		fprintf(stderr,
		    "raftkv-mr worker: no coordinator at %s for "
		    "%" PRIu64 " ms: exiting\n",
		    o->endpoint, o->gone_ms);
	rpc_client_free(w.cli);
	return rc < 0 ? rc : 0;
}
