/*
 * lockguard.c - the guard of `raftkv lock KEY -- command` (lockguard.h).
 *
 * A forked process (no exec), in a session of its own, that shares two
 * words with raftkv through an anonymous shared mapping (the deadline
 * and whether it fired) and reads one pipe whose only writer is raftkv:
 * one byte there means "done, kill nothing", end of file means raftkv
 * died.  raftkv's clerk may have threads, so the guard only calls
 * async-signal-safe functions (poll, read, open, kill, clock_gettime).
 */
#define _GNU_SOURCE /* pipe2, close_range */
#include "kv/lockguard.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "raft/util/clock.h"

/* How often the guard looks again at a stopped command past its
 * deadline (it may be continued without raftkv). */
#define LOCKGUARD_STOPPED_RECHECK_MS 100

struct lockguard_shared {
	_Atomic uint64_t until; /* mono_ms(); 0: stood down */
	atomic_int fired;
};

struct lockguard {
	pid_t pid;
	int wfd;
	struct lockguard_shared *sh;
};

/* Is the leader @pgrp of the group stopped (job control or a tracer)?
 * False if it is gone, a zombie, or unreadable. */
static bool leader_stopped(pid_t pgrp)
{
	char path[64], st[512];
	const char *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pgrp);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, st, sizeof(st) - 1);
	close(fd);
	if (n <= 0)
		return false;
	st[n] = '\0';
	p = strrchr(st, ')'); /* "pid (comm) S ..." */
	return p != NULL && p[1] == ' ' && (p[2] == 'T' || p[2] == 't');
}

static void guard_run(struct lockguard_shared *sh, pid_t pgrp, int rfd,
    int margin_ms)
{
	bool fired = false;

	for (;;) {
		uint64_t u = atomic_load(&sh->until), now = mono_ms();
		struct pollfd p = { .fd = rfd, .events = POLLIN };
		int ms = -1;
		ssize_t n;
		char b;

		if (!fired && u != 0 && now >= u + (uint64_t)margin_ms) {
			if (leader_stopped(pgrp)) {
				ms = LOCKGUARD_STOPPED_RECHECK_MS;
			} else {
				atomic_store(&sh->fired, 1);
				kill(-pgrp, SIGKILL);
				fired = true;
			}
		} else if (!fired && u != 0) {
			ms = (int)(u + (uint64_t)margin_ms - now);
		}
		if (poll(&p, 1, ms) <= 0)
			continue;
		n = read(rfd, &b, 1);
		if (n == 1)
			_exit(0); /* done: the group is raftkv's business */
		if (n == 0) {
			kill(-pgrp, SIGKILL); /* raftkv died */
			_exit(0);
		}
		if (errno != EINTR && errno != EAGAIN)
			_exit(1);
	}
}

struct lockguard *lockguard_start(pid_t pgrp, uint64_t until_ms, int margin_ms)
{
	struct lockguard *g = calloc(1, sizeof(*g));
	int p[2] = { -1, -1 }, e;

	if (g == NULL)
		return NULL;
	g->sh = mmap(NULL, sizeof(*g->sh), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g->sh == MAP_FAILED)
		goto fail;
	atomic_store(&g->sh->until, until_ms);
	atomic_store(&g->sh->fired, 0);
	if (pipe2(p, O_CLOEXEC) != 0)
		goto fail;
	g->pid = fork();
	if (g->pid == 0) {
		int fd = p[0] >= 3 ? p[0] : fcntl(p[0], F_DUPFD_CLOEXEC, 3);

		if (fd < 0)
			_exit(1);
		/* Out of raftkv's group and off its terminal: what kills
		 * those must not kill the guard. */
		setsid();
		close_range(0, (unsigned)fd - 1, 0);
		close_range((unsigned)fd + 1, ~0U, 0);
		guard_run(g->sh, pgrp, fd, margin_ms);
		_exit(0);
	}
	if (g->pid < 0)
		goto fail;
	close(p[0]);
	g->wfd = p[1];
	return g;
fail:
	e = errno;
	if (p[0] >= 0) {
		close(p[0]);
		close(p[1]);
	}
	if (g->sh != NULL && g->sh != MAP_FAILED)
		munmap(g->sh, sizeof(*g->sh));
	free(g);
	errno = e;
	return NULL;
}

void lockguard_renewed(struct lockguard *g, uint64_t until_ms)
{
	if (g != NULL && atomic_load(&g->sh->until) != 0)
		atomic_store(&g->sh->until, until_ms);
}

void lockguard_stand_down(struct lockguard *g)
{
	if (g != NULL)
		atomic_store(&g->sh->until, 0);
}

bool lockguard_fired(const struct lockguard *g)
{
	return g != NULL && atomic_load(&g->sh->fired) != 0;
}

void lockguard_end(struct lockguard *g)
{
	if (g == NULL)
		return;
	(void)!write(g->wfd, "d", 1);
	close(g->wfd);
	while (waitpid(g->pid, NULL, 0) < 0 && errno == EINTR)
		;
	munmap(g->sh, sizeof(*g->sh));
	free(g);
}
