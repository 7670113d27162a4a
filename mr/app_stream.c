/*
 * app_stream.c - Hadoop Streaming's contract for mapper/reducer commands.
 *
 * A task starts its command once (/bin/sh -c CMD), writes its input to the
 * command's stdin and reads its stdout as lines:
 *   map      stdin = the split's bytes as they are in the file;
 *   reduce   stdin = "key\tvalue\n" per pair, sorted by key (and by value
 *            within a key, a free secondary sort);
 *   output   each stdout line is split at its first tab into key and value
 *            (no tab: the whole line is the key, the value is empty).
 * stderr lines "reporter:counter:GROUP,NAME,AMOUNT" add to counter
 * GROUP.NAME, "reporter:status:MSG" are accepted and dropped, any other
 * line is copied to our stderr.  A non-zero exit (or death by a signal)
 * fails the attempt.  Task metadata reaches the command in environment
 * variables, dots of Hadoop's names replaced by underscores:
 *   mapreduce_task_id, mapreduce_task_attempt_id, mapreduce_task_partition,
 *   mapreduce_task_ismap, mapreduce_job_reduces, map_input_file,
 *   map_input_start, map_input_length.
 *
 * One poll(2) loop feeds stdin and drains stdout and stderr together, so a
 * command that writes before it has read everything cannot deadlock us.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mr/app_int.h"
#include "mr/xmem.h"

struct linebuf {
	char *p;
	size_t len, cap;
};

static void lb_append(struct linebuf *lb, const char *s, size_t n)
{
	if (lb->len + n + 1 > lb->cap) {
		lb->cap = (lb->len + n + 1) * 2;
		lb->p = xrealloc(lb->p, lb->cap);
	}
	memcpy(lb->p + lb->len, s, n);
	lb->len += n;
}

static void out_line(struct mr_ctx *ctx, const char *s, size_t n)
{
	const char *tab = memchr(s, '\t', n);

	if (tab)
		ctx->emit(ctx, s, (size_t)(tab - s), tab + 1,
		    n - (size_t)(tab - s) - 1);
	else
		ctx->emit(ctx, s, n, "", 0);
}

static void err_line(struct mr_ctx *ctx, const char *s, size_t n)
{
	static const char ctr[] = "reporter:counter:";
	static const char st[] = "reporter:status:";
	char buf[512], *c1, *c2;
	long long amount;

	if (n >= sizeof(ctr) - 1 && memcmp(s, ctr, sizeof(ctr) - 1) == 0 &&
	    n - (sizeof(ctr) - 1) < sizeof(buf)) {
		memcpy(buf, s + sizeof(ctr) - 1, n - (sizeof(ctr) - 1));
		buf[n - (sizeof(ctr) - 1)] = '\0';
		c1 = strchr(buf, ',');
		c2 = c1 ? strchr(c1 + 1, ',') : NULL;
		if (c2) {
			*c1 = '.';
			*c2 = '\0';
			amount = strtoll(c2 + 1, NULL, 10);
			ctx->counter(ctx, buf, amount);
			return;
		}
	}
	if (n >= sizeof(st) - 1 && memcmp(s, st, sizeof(st) - 1) == 0)
		return;
	fprintf(stderr, "%.*s\n", (int)n, s);
}

/* Hand every complete line of @lb to @fn; keep the tail. */
static void lb_lines(struct linebuf *lb, struct mr_ctx *ctx, int final,
    void (*fn)(struct mr_ctx *, const char *, size_t))
{
	size_t start = 0;
	char *nl;

	if (lb->len == 0)
		return;
	while ((nl = memchr(lb->p + start, '\n', lb->len - start)) != NULL) {
		fn(ctx, lb->p + start, (size_t)(nl - lb->p - start));
		start = (size_t)(nl - lb->p) + 1;
	}
	if (final && start < lb->len) {
		fn(ctx, lb->p + start, lb->len - start);
		start = lb->len;
	}
	memmove(lb->p, lb->p + start, lb->len - start);
	lb->len -= start;
}

static void set_env(struct mr_ctx *ctx, const struct app_input *in)
{
	char v[64];

	snprintf(v, sizeof(v), "task_%c_%06" PRIu32, ctx->is_map ? 'm' : 'r',
	    ctx->task);
	setenv("mapreduce_task_id", v, 1);
	snprintf(v, sizeof(v), "attempt_%c_%06" PRIu32 "_%" PRIu32,
	    ctx->is_map ? 'm' : 'r', ctx->task, ctx->attempt);
	setenv("mapreduce_task_attempt_id", v, 1);
	snprintf(v, sizeof(v), "%" PRIu32, ctx->task);
	setenv("mapreduce_task_partition", v, 1);
	setenv("mapreduce_task_ismap", ctx->is_map ? "true" : "false", 1);
	snprintf(v, sizeof(v), "%" PRIu32, ctx->nreduce);
	setenv("mapreduce_job_reduces", v, 1);
	if (in) {
		setenv("map_input_file", in->name, 1);
		snprintf(v, sizeof(v), "%" PRIu64, in->off);
		setenv("map_input_start", v, 1);
		snprintf(v, sizeof(v), "%" PRIu64, in->len);
		setenv("map_input_length", v, 1);
	}
}

static int run_filter(const char *cmd, struct mr_ctx *ctx,
    const struct app_input *in, const char *data, size_t len)
{
	int pin[2], pout[2], perr[2], status, rc = 1;
	struct linebuf out = { 0 }, err = { 0 };
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	size_t sent = 0;
	pid_t pid;

	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) ||
	    pipe2(perr, O_CLOEXEC)) {
		perror("raftkv-mr: pipe");
		return 1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("raftkv-mr: fork");
		return 1;
	}
	if (pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		dup2(perr[1], 2);
		set_env(ctx, in);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	sigaction(SIGPIPE, &ign, &old);
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	if (len == 0) {
		close(pin[1]);
		pin[1] = -1;
	}
	while (pout[0] >= 0 || perr[0] >= 0) {
		struct pollfd pf[3] = {
			{ .fd = pout[0], .events = POLLIN },
			{ .fd = perr[0], .events = POLLIN },
			{ .fd = pin[1], .events = POLLOUT },
		};
		char buf[65536];
		int i;

		if (poll(pf, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pin[1] >= 0 && (pf[2].revents & (POLLOUT | POLLERR))) {
			ssize_t w = write(pin[1], data + sent, len - sent);

			if (w > 0)
				sent += (size_t)w;
			if ((w < 0 && errno != EAGAIN) || sent == len) {
				close(pin[1]);
				pin[1] = -1;
			}
		}
		for (i = 0; i < 2; i++) {
			int *fd = i == 0 ? &pout[0] : &perr[0];
			struct linebuf *lb = i == 0 ? &out : &err;
			ssize_t r;

			if (*fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP)))
				continue;
			r = read(*fd, buf, sizeof(buf));
			if (r > 0) {
				lb_append(lb, buf, (size_t)r);
				lb_lines(lb, ctx, 0, i ? err_line : out_line);
			} else if (r == 0 || errno != EINTR) {
				lb_lines(lb, ctx, 1, i ? err_line : out_line);
				close(*fd);
				*fd = -1;
			}
		}
	}
	if (pin[1] >= 0)
		close(pin[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	sigaction(SIGPIPE, &old, NULL);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		rc = 0;
	else if (WIFEXITED(status))
		fprintf(stderr, "raftkv-mr: %s: exit status %d\n", cmd,
		    WEXITSTATUS(status));
	else
		fprintf(stderr, "raftkv-mr: %s: killed by signal %d\n", cmd,
		    WTERMSIG(status));
	free(out.p);
	free(err.p);
	return rc;
}

int app_stream_map(struct app *a, struct mr_ctx *ctx,
    const struct app_input *in, const char *data, size_t len)
{
	return run_filter(a->mapper, ctx, in, data, len);
}

int app_stream_reduce(struct app *a, const char *cmd, struct mr_ctx *ctx,
    const struct kvbuf *kb)
{
	struct linebuf in = { 0 };
	size_t i;
	int rc;

	(void)a;
	for (i = 0; i < kb->n; i++) {
		lb_append(&in, kvbuf_key(kb, i), kb->recs[i].klen);
		lb_append(&in, "\t", 1);
		lb_append(&in, kvbuf_val(kb, i), kb->recs[i].vlen);
		lb_append(&in, "\n", 1);
	}
	rc = run_filter(cmd, ctx, NULL, in.p, in.len);
	free(in.p);
	return rc;
}
