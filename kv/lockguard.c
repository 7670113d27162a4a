/*
 * lockguard.c - the guard of `raftkv lock KEY -- command` (lockguard.h).
 *
 * A forked process (no exec; named "raftkv-guard"), in a session of its
 * own, that shares two words with raftkv through an anonymous shared
 * mapping (when to kill the group, and whether it did) and reads one
 * stream socket whose only other end is raftkv's: 'd' there means
 * "done, kill nothing", 'k' "look at the deadline again" (brought
 * forward), end of file means raftkv died.  raftkv's clerk
 * may have threads, so the guard only calls async-signal-safe functions
 * (poll, read, close, kill, prctl, clock_gettime).
 */
#define _GNU_SOURCE /* close_range */
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "raft/util/clock.h"

/* The guard's process name (comm): not "raftkv", so that `pkill raftkv`
 * does not take it for raftkv. */
#define LOCKGUARD_NAME "raftkv-guard"

/* The deadline is shared with another process: its atomics must not
 * take a lock (a process-local one would not exclude the other side). */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2,
    "lockguard: the shared deadline needs lock-free 64-bit atomics");

struct lockguard_shared {
	atomic_ullong kill_at; /* mono_ms() */
	atomic_int fired;
};

struct lockguard {
	pid_t pid;
	int wfd;
	int margin_ms;
	bool final; /* lockguard_kill_at(): renewals no longer move it */
	bool gone; /* the guard was reaped (lockguard_alive()) */
	struct lockguard_shared *sh;
};

static void guard_run(struct lockguard_shared *sh, pid_t pgrp, int rfd)
{
	bool fired = false;

	for (;;) {
		uint64_t k = atomic_load(&sh->kill_at), now = mono_ms();
		struct pollfd p = { .fd = rfd, .events = POLLIN };
		int ms = -1;
		ssize_t n;
		char b;

		/* Whatever the state of the group (a stopped leader does
		 * not stop the rest of it). */
		if (!fired && now >= k) {
			atomic_store(&sh->fired, 1);
			kill(-pgrp, SIGKILL);
			fired = true;
		} else if (!fired) {
			ms = k - now > 60000 ? 60000 : (int)(k - now);
		}
		if (poll(&p, 1, ms) <= 0)
			continue;
		n = read(rfd, &b, 1);
		if (n == 1 && b == 'd')
			_exit(0); /* done: the group is raftkv's business */
		if (n == 1)
			continue; /* 'k': a deadline brought forward */
		if (n == 0) {
			kill(-pgrp, SIGKILL); /* raftkv died */
			_exit(0);
		}
		if (errno != EINTR && errno != EAGAIN)
			_exit(1);
	}
}

/* In the guard: close every descriptor but @keep (one by one if
 * close_range() fails). */
static void guard_close_others(int keep)
{
	if (keep > 0 && close_range(0, (unsigned)keep - 1, 0) != 0)
		goto slow;
	if (close_range((unsigned)keep + 1, ~0U, 0) != 0)
		goto slow;
	return;
slow:
	for (int fd = 0; fd < 65536; fd++)
		if (fd != keep)
			(void)close(fd);
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
	g->margin_ms = margin_ms;
	atomic_store(&g->sh->kill_at, until_ms + (uint64_t)margin_ms);
	atomic_store(&g->sh->fired, 0);
	/* A socket, not a pipe: lockguard_end() writes with MSG_NOSIGNAL
	 * (no SIGPIPE if the guard is gone). */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) != 0)
		goto fail;
	g->pid = fork();
	if (g->pid == 0) {
		int fd = p[0] >= 3 ? p[0] : fcntl(p[0], F_DUPFD_CLOEXEC, 3);

		if (fd < 0)
			_exit(1);
		/* Out of raftkv's group and off its terminal: what kills
		 * those must not kill the guard. */
		setsid();
		(void)prctl(PR_SET_NAME, LOCKGUARD_NAME);
		/* raftkv's end of the socket first: held here, the guard
		 * would never see raftkv die. */
		if (close(p[1]) != 0)
			_exit(1);
		guard_close_others(fd);
		guard_run(g->sh, pgrp, fd);
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
	if (g != NULL && !g->final)
		atomic_store(&g->sh->kill_at,
		    until_ms + (uint64_t)g->margin_ms);
}

void lockguard_kill_at(struct lockguard *g, uint64_t kill_at_ms)
{
	if (g == NULL)
		return;
	if (!g->final || kill_at_ms < atomic_load(&g->sh->kill_at))
		atomic_store(&g->sh->kill_at, kill_at_ms);
	g->final = true;
	/* Wake the guard: it may sleep until a later deadline. */
	if (!g->gone)
		(void)!send(g->wfd, "k", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
}

bool lockguard_fired(const struct lockguard *g)
{
	return g != NULL && atomic_load(&g->sh->fired) != 0;
}

bool lockguard_alive(struct lockguard *g, int *wstatus)
{
	pid_t r;

	if (g == NULL || g->gone)
		return false;
	r = waitpid(g->pid, wstatus, WNOHANG);
	if (r == g->pid || (r < 0 && errno == ECHILD)) {
		g->gone = true;
		return false;
	}
	return true;
}

void lockguard_end(struct lockguard *g)
{
	if (g == NULL)
		return;
	/* MSG_NOSIGNAL: a guard that died must not take raftkv (and the
	 * unlock after this) with it by SIGPIPE. */
	if (!g->gone)
		(void)!send(g->wfd, "d", 1, MSG_NOSIGNAL);
	close(g->wfd);
	while (!g->gone && waitpid(g->pid, NULL, 0) < 0 && errno == EINTR)
		;
	munmap(g->sh, sizeof(*g->sh));
	free(g);
}
