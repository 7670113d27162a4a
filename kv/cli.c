/*
 * cli.c - raftkv(1): the command-line client.
 *
 * One subcommand per invocation, table-driven; output is plain and easy
 * to script (values raw on stdout, listings tab-separated, one per line).
 * Exit status tells the outcome apart (see enum below and raftkv(1)).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "kv/clerk.h"
#include "kv/cli_member.h"
#include "kv/init.h"
#include "kv/kv.h"
#include "kv/lockguard.h"
#include "raft/client/keys.h"
#include "raft/client/cproto.h"
#include "raft/raft.h"
#include "raft/util/clock.h"
#include "raft/util/num.h"

enum exit_code {
	EXIT_OKAY = 0,
	EXIT_NOTFOUND = 1,
	EXIT_CONFLICT = 2,
	EXIT_MAYBE = 3,
	EXIT_UNAVAILABLE = 4,
	EXIT_ERROR = 5,
	EXIT_USAGE = 64,
};

#define DEFAULT_CLUSTER "/etc/raftkv/cluster.conf"

struct ctx {
	struct clerk *ck;
	int argc;
	char **argv;
	int64_t version; /* --version, -1 unset */
	int timeout_ms;
	int shared; /* lock --shared */
	int nowait; /* lock --nb */
	uint64_t fence; /* put --fence TOKEN (0: none) */
	const char *fence_lock; /* put --lock KEY */
	int recursive;
	int with_version; /* get -v: the version line first */
	int json; /* get/ls --json */
	int nul; /* ls -0: NUL-terminated raw keys */
	int keepalive_ms; /* lock: renew the lease this often (a third of
	                     the cluster's lock lease) */
	int lease_ms; /* lock: the cluster's lock lease */
};

static const char *prog = "raftkv";

static int outcome(int rv, const char *what)
{
	switch (rv) {
	case KV_OK:
		return EXIT_OKAY;
	case KV_ENOKEY:
		fprintf(stderr, "%s: %s: no such key\n", prog, what);
		return EXIT_NOTFOUND;
	case KV_EVERSION:
		fprintf(stderr, "%s: %s: version conflict\n", prog, what);
		return EXIT_CONFLICT;
	case KV_EMAYBE:
		fprintf(stderr, "%s: %s: outcome unknown (may have applied)\n",
		    prog, what);
		return EXIT_MAYBE;
	case CLERK_EUNAVAILABLE:
		fprintf(stderr, "%s: %s: cluster unavailable\n", prog, what);
		return EXIT_UNAVAILABLE;
	case KV_ETOOBIG:
	case -EFBIG:
		/* Only a put gets here (get reads big values in ranges). */
		fprintf(stderr,
		    "%s: %s: value larger than %u bytes (16 MiB), the most "
		    "one put can store atomically; write larger files "
		    "through a mount (mount.raftkv(8)), e.g. "
		    "cp FILE MOUNTPOINT/KEY\n",
		    prog, what, KV_VALUE_MAX);
		return EXIT_ERROR;
	case KV_ENOSPC:
		fprintf(stderr,
		    "%s: %s: no space: the cluster's size quota is "
		    "reached (raftkv df)\n",
		    prog, what);
		return EXIT_ERROR;
	case KV_EFENCED:
		fprintf(stderr,
		    "%s: %s: fenced: the token is not a live grant of "
		    "the lock (lost or released)\n",
		    prog, what);
		return EXIT_CONFLICT;
	}
	fprintf(stderr, "%s: %s: %s\n", prog, what, clerk_strerror(rv));
	return EXIT_ERROR;
}

static int read_stdin(char **buf, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *b = malloc(cap);

	if (b == NULL)
		return -ENOMEM;
	for (;;) {
		size_t r;

		if (n == cap) {
			char *p;

			if (cap > KV_VALUE_MAX) {
				free(b);
				return -EFBIG;
			}
			p = realloc(b, cap * 2);
			if (p == NULL) {
				free(b);
				return -ENOMEM;
			}
			b = p;
			cap *= 2;
		}
		r = fread(b + n, 1, cap - n, stdin);
		n += r;
		if (r == 0)
			break;
	}
	if (n > KV_VALUE_MAX) {
		free(b);
		return -EFBIG;
	}
	if (ferror(stdin)) {
		free(b);
		return -EIO;
	}
	*buf = b;
	*len = n;
	return 0;
}

/*
 * @p as a JSON string: UTF-8 is not assumed, every byte is one character
 * (bytes 0x80..0xff are written \u0080..\u00ff, controls escaped), so
 * any bytes round-trip and the output is always valid JSON.
 */
static void json_string(const uint8_t *p, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '"' || p[i] == '\\')
			printf("\\%c", p[i]);
		else if (p[i] < 0x20 || p[i] >= 0x7f)
			printf("\\u%04x", p[i]);
		else
			putchar(p[i]);
	}
	putchar('"');
}

/* A key for a line of `ls`: printable ASCII as is, anything that could
 * make it ambiguous (controls, tab, newline, backslash, bytes >= 0x7f) as
 * a C escape, so every line names exactly one key. */
static void escaped_key(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\\')
			fputs("\\\\", stdout);
		else if (p[i] == '\t')
			fputs("\\t", stdout);
		else if (p[i] == '\n')
			fputs("\\n", stdout);
		else if (p[i] < 0x20 || p[i] >= 0x7f)
			printf("\\x%02x", p[i]);
		else
			putchar(p[i]);
	}
}

/* How often `get` starts over when a big value changes while it reads
 * its ranges, and their size: 4 MiB, not the 16 MiB a reply may carry,
 * so that each one is well within the clerk's per-attempt timeout (1 s)
 * on a busy member (a 16 MiB reply can take longer: retried over and
 * over). */
#define GET_RETRIES 10
#define GET_RANGE (4u << 20)

static int cmd_get(struct ctx *c)
{
	struct kv_attr a;
	void *v;
	size_t len;
	int rv;

	/* A value over KV_VALUE_MAX comes in ranges, all of one version
	 * (clerk_get_large), and is written out only once read whole. */
	rv = clerk_get_large(c->ck, c->argv[0], strlen(c->argv[0]), GET_RANGE,
	    GET_RETRIES, &a, &v, &len);
	if (rv == KV_EVERSION) {
		fprintf(stderr,
		    "%s: %s: the value changed %d times while it was "
		    "read; try again\n",
		    prog, c->argv[0], GET_RETRIES + 1);
		return EXIT_CONFLICT;
	}
	if (rv == KV_OK && c->json) {
		printf("{\"key\":");
		json_string((const uint8_t *)c->argv[0], strlen(c->argv[0]));
		printf(",\"version\":%" PRIu64 ",\"size\":%" PRIu64
		       ",\"value\":",
		    a.version, a.size);
		json_string(v, len);
		printf("}\n");
		free(v);
	} else if (rv == KV_OK) {
		/* -v: one line with the version, then the value: what a
		 * read-modify-cas needs, in one call. */
		if (c->with_version)
			printf("%" PRIu64 "\n", a.version);
		if (len && fwrite(v, 1, len, stdout) != len)
			rv = -EIO;
		free(v);
	}
	return outcome(rv, c->argv[0]);
}

static int cmd_stat(struct ctx *c)
{
	struct kv_attr a;
	int rv = clerk_get(c->ck, c->argv[0], strlen(c->argv[0]), &a, NULL,
	    NULL);

	if (rv == KV_OK)
		printf("key\t%s\nversion\t%" PRIu64 "\ninode\t%" PRIu64
		       "\nsize\t%" PRIu64 "\nmode\t%04o\nuid\t%u\ngid\t%u\n"
		       "mtime_ns\t%" PRId64 "\nctime_ns\t%" PRId64
		       "\nnlink\t%u\n",
		    c->argv[0], a.version, a.inode, a.size, a.mode, a.uid,
		    a.gid, a.mtime_ns, a.ctime_ns, a.nlink);
	return outcome(rv, c->argv[0]);
}

static int do_put(struct ctx *c, const char *key, const char *val,
    int64_t version)
{
	struct kv_attr a;
	char *buf = NULL;
	size_t len;
	int rv;

	if (val == NULL) {
		rv = read_stdin(&buf, &len);
		if (rv != 0)
			return outcome(rv, "standard input");
		val = buf;
	} else {
		len = strlen(val);
	}
	if (c->fence != 0)
		rv = clerk_put_fenced(c->ck, c->fence_lock,
		    strlen(c->fence_lock), c->fence, key, strlen(key), val, len,
		    version < 0 ? 0 : (uint64_t)version,
		    version < 0 ? KV_F_ANYVER : 0, NULL, &a);
	else
		rv = clerk_put(c->ck, key, strlen(key), val, len,
		    version < 0 ? 0 : (uint64_t)version,
		    version < 0 ? KV_F_ANYVER : 0, NULL, &a);
	free(buf);
	if (rv == KV_OK)
		printf("%" PRIu64 "\n", a.version);
	return outcome(rv, key);
}

static int cmd_put(struct ctx *c)
{
	return do_put(c, c->argv[0], c->argc > 1 ? c->argv[1] : NULL,
	    c->version);
}

static int cmd_cas(struct ctx *c)
{
	uint64_t v;

	if (num_parse_u64(c->argv[1], 10, 0, INT64_MAX, &v) != 0) {
		fprintf(stderr, "%s: cas: bad version '%s'\n", prog,
		    c->argv[1]);
		return EXIT_USAGE;
	}
	return do_put(c, c->argv[0], c->argc > 2 ? c->argv[2] : NULL,
	    (int64_t)v);
}

static int cmd_del(struct ctx *c)
{
	int rv = clerk_delete(c->ck, c->argv[0], strlen(c->argv[0]),
	    c->version < 0 ? 0 : (uint64_t)c->version,
	    c->version < 0 ? KV_F_ANYVER : 0, NULL);

	return outcome(rv, c->argv[0]);
}

/* A hard link (kv.h, LINK): DST becomes another name of SRC's inode. */
static int cmd_link(struct ctx *c)
{
	struct kv_cmd cmd = { .type = KV_OP_LINK };
	struct kv_result res;
	int rv;

	cmd.op = (struct kv_op){ .type = KV_OP_LINK,
		.flags = c->version < 0 ? KV_F_ANYVER : 0,
		.version = c->version < 0 ? 0 : (uint64_t)c->version,
		.key = c->argv[0],
		.keylen = (uint32_t)strlen(c->argv[0]),
		.key2 = c->argv[1],
		.key2len = (uint32_t)strlen(c->argv[1]) };
	rv = clerk_mutate(c->ck, &cmd, &res);
	if (rv == KV_EVERSION && c->version < 0) {
		fprintf(stderr, "%s: link %s: already exists\n", prog,
		    c->argv[1]);
		return EXIT_CONFLICT;
	}
	if (rv == KV_EINVAL) {
		fprintf(stderr, "%s: link %s: a directory, or too many links\n",
		    prog, c->argv[0]);
		return EXIT_ERROR;
	}
	if (rv == KV_OK)
		printf("%u\n", res.attr.nlink);
	return outcome(rv, c->argv[0]);
}

static int cmd_ls(struct ctx *c)
{
	const char *prefix = c->argc > 0 ? c->argv[0] : "";
	char *after = NULL;
	size_t afterlen = 0;
	int rv;

	for (;;) {
		struct clerk_entry *e;
		size_t n;

		rv = clerk_list(c->ck, prefix, strlen(prefix), after, afterlen,
		    0, c->recursive ? -1 : '/', &e, &n);
		if (rv != KV_OK)
			break;
		for (size_t i = 0; i < n; i++) {
			const uint8_t *k = (const uint8_t *)e[i].key;

			if (c->nul) {
				fwrite(k, 1, e[i].keylen, stdout);
				putchar('\0');
			} else if (c->json) {
				printf("{\"key\":");
				json_string(k, e[i].keylen);
				printf(",\"version\":%" PRIu64
				       ",\"size\":%" PRIu64 "}\n",
				    e[i].attr.version, e[i].attr.size);
			} else {
				escaped_key(k, e[i].keylen);
				printf("\t%" PRIu64 "\t%" PRIu64 "\n",
				    e[i].attr.version, e[i].attr.size);
			}
		}
		if (n == 0) {
			clerk_entries_free(e, n);
			break;
		}
		free(after);
		after = e[n - 1].key;
		afterlen = e[n - 1].keylen;
		e[n - 1].key = NULL;
		clerk_entries_free(e, n);
	}
	free(after);
	return outcome(rv, prefix[0] ? prefix : "(all keys)");
}

/* ------------------------------------------------------------------------
 * lock / unlock: the committed locks of kv.h (LOCKS), flock kind
 * ------------------------------------------------------------------------ */

static void lock_req(struct ctx *c, const char *key, uint64_t owner,
    struct clerk_lock_req *rq)
{
	memset(rq, 0, sizeof(*rq));
	rq->key = key;
	rq->keylen = strlen(key);
	rq->kind = KV_LK_FLOCK;
	rq->mode = c->shared ? KV_LK_SHARED : KV_LK_EXCL;
	rq->owner = owner;
	rq->pid = (uint32_t)getpid();
}

/* Take the lock: KEY created empty first if missing (the create may lose
 * a race: fine). */
static int take_lock(struct ctx *c, const struct clerk_lock_req *rq,
    uint64_t *token)
{
	struct kv_lock who;
	int rv;

	rv = clerk_put(c->ck, rq->key, rq->keylen, "", 0, 0, 0, NULL, NULL);
	if (rv != KV_OK && rv != KV_EVERSION)
		return outcome(rv, rq->key);
	if (c->nowait)
		rv = clerk_lock(c->ck, rq, false, token, &who);
	else
		rv = clerk_lock_acquire(c->ck, rq, c->timeout_ms,
		    c->keepalive_ms, token);
	if (rv == KV_ELOCKED) {
		if (c->nowait && who.session != 0)
			fprintf(stderr,
			    "%s: lock %s: held by session %" PRIu64
			    ", pid %u\n",
			    prog, (const char *)rq->key, who.session, who.pid);
		else
			fprintf(stderr, "%s: lock %s: held by someone else\n",
			    prog, (const char *)rq->key);
		return EXIT_CONFLICT;
	}
	if (rv == KV_ENOLOCK) {
		fprintf(stderr, "%s: lock %s: the wait was lost\n", prog,
		    (const char *)rq->key);
		return EXIT_ERROR;
	}
	return outcome(rv, rq->key);
}

/* Still ours?  One linearizable look; unanswered counts as yes (the
 * local deadline below decides then). */
static bool still_held(struct ctx *c, const struct clerk_lock_req *rq,
    uint64_t token)
{
	uint64_t now = 0;
	int rv = clerk_lock_wait(c->ck, rq, 0, &now);

	return rv != KV_OK ? rv == CLERK_EUNAVAILABLE : now == token;
}

/*
 * Until when (mono_ms()) the lock is surely still ours after a lease
 * renewal sent at @sent_ms: the renewal commits after it was sent, and
 * the lease runs @lease_ms of committed time from its commit; a tenth is
 * kept back for clock rates and for the command to stop.
 */
static uint64_t lock_valid_until(uint64_t sent_ms, int lease_ms)
{
	return sent_ms + (uint64_t)lease_ms - (uint64_t)lease_ms / 10;
}

/* One renewal period of run_holding(): renew, look.  Every call gets at
 * most the time left before *@until (moved on by a renewal that
 * succeeds, and published to the guard @g at once: the look after it
 * may take a while).  False if the lock is lost, or may be (the deadline
 * passed without a renewal: cut off from the cluster). */
static bool renew_held(struct ctx *c, const struct clerk_lock_req *rq,
    uint64_t token, uint64_t *until, struct lockguard *g)
{
	uint64_t sent = mono_ms();
	int saved, rv;
	bool held;

	if (sent >= *until)
		return false;
	saved = clerk_set_deadline(c->ck, (int)(*until - sent));
	rv = clerk_keepalive(c->ck);
	if (rv == KV_OK) {
		*until = lock_valid_until(sent, c->lease_ms);
		lockguard_renewed(g, *until);
	}
	held = mono_ms() < *until;
	if (held) {
		clerk_set_deadline(c->ck, (int)(*until - mono_ms()));
		held = still_held(c, rq, token) && mono_ms() < *until;
	}
	clerk_set_deadline(c->ck, saved);
	return held;
}

/* After the lock is lost, how long the command has to end after SIGTERM
 * before it gets SIGKILL (raftkv(1)). */
#define LOST_KILL_GRACE_MS 5000

/* Our controlling terminal on stdin, stdout or stderr (its job control
 * applies to the command's group: follow_stop()), or -1 (no terminal, or
 * not ours: the command's group then runs on its own, and what we get is
 * passed on). */
static int ctl_tty(void)
{
	for (int fd = 0; fd <= 2; fd++)
		if (isatty(fd) && tcgetpgrp(fd) > 0 &&
		    tcgetsid(fd) == getsid(0))
			return fd;
	return -1;
}

/* If the foreground group of @tty (nothing if @tty < 0) is @from, make it
 * @to, with SIGTTOU blocked: we may be in the background then.  (Never
 * taken from anyone else: a background job does not steal it.) */
static void tty_pass(int tty, pid_t from, pid_t to)
{
	sigset_t s, o;

	if (tty < 0 || tcgetpgrp(tty) != from)
		return;
	sigemptyset(&s);
	sigaddset(&s, SIGTTOU);
	sigprocmask(SIG_BLOCK, &s, &o);
	(void)tcsetpgrp(tty, to);
	sigprocmask(SIG_SETMASK, &o, NULL);
}

/*
 * The command's group @pgrp stopped (^Z on the terminal @tty, or a
 * background read of it): stop too, as a job, the terminal back to our
 * group if the command had it, so that the shell sees the job stopped.
 * When continued, first make sure the lock is still ours (renew_held(),
 * *@until and the guard @g moved on): if not, return false with the
 * group still stopped (the caller kills it: it must not run again as if
 * it held the lock).  Else hand the terminal on if the shell made us the
 * foreground again (fg; not for bg), continue the group, return true.
 * (While we are stopped, the guard kills the group past the lease,
 * stopped or not: lockguard.h.)
 */
static bool follow_stop(struct ctx *c, const struct clerk_lock_req *rq,
    uint64_t token, uint64_t *until, struct lockguard *g, int tty, pid_t pgrp)
{
	tty_pass(tty, pgrp, getpgrp());
	kill(getpid(), SIGSTOP);
	if (!renew_held(c, rq, token, until, g))
		return false;
	tty_pass(tty, getpgrp(), pgrp);
	kill(-pgrp, SIGCONT);
	return true;
}

/* The command's group @pgrp after its leader (the command) was reaped,
 * the lock lost: whatever is left of it gets until @kill_at (mono_ms())
 * to end after the SIGTERM it had, then SIGKILL. */
static void end_group(pid_t pgrp, uint64_t kill_at)
{
	while (kill(-pgrp, 0) == 0 && mono_ms() < kill_at)
		usleep(50000);
	if (kill(-pgrp, 0) == 0)
		kill(-pgrp, SIGKILL);
}

/*
 * Run @argv holding the lock, in a process group of its own (so that all
 * it starts can be stopped with it), which gets the terminal if we had
 * it (ctl_tty(); a ^Z of it stops us too: follow_stop()).  SIGCHLD and
 * the signals we forward to that group are blocked and taken with
 * sigtimedwait(), which also paces the lease renewals, so nothing polls.
 * Returns the child's exit status (128 + signal if killed), or
 * EXIT_ERROR if the lock was lost meanwhile (the group is then sent
 * SIGTERM, and SIGKILL if the command or anything left of its group has
 * not ended LOST_KILL_GRACE_MS later: none of it must go on as if it
 * held the lock; a stopped command is not continued then, and one found
 * stopped past the lease is killed at once).  A guard (lockguard.h) kills
 * the group if we die, or if the lease runs out while the command runs
 * and we do not (stopped), whatever the state of the group, and at the
 * end of the grace after a loss: we may be killed with SIGKILL by pid or
 * group (timeout -k), or stopped, and the command's group is not ours.
 * The command is run only once the guard is up (else EXIT_ERROR, not
 * run), and killed if the guard ends early (EXIT_ERROR).  It also dies
 * with us (PR_SET_PDEATHSIG).
 */
static int run_holding(struct ctx *c, const struct clerk_lock_req *rq,
    uint64_t token, char **argv)
{
	sigset_t set, old, ttou;
	char tok[32];
	pid_t pid, r;
	int ws, status = -1, tty = ctl_tty();
	pid_t mine = getpgrp(), me = getpid();
	struct lockguard *g;
	bool lost = false, killed = false, unguarded = false;
	int go[2];
	uint64_t kill_at = 0;
	/* The acquire renewed the lease at least once a period while it
	 * waited: surely ours for a lease less a period from now. */
	uint64_t until = lock_valid_until(mono_ms(), c->lease_ms) -
	    (uint64_t)c->keepalive_ms;
	/* The next renewal: paced by the clock, not by the signals that
	 * wake us (a command that stops and continues often, SIGCONT). */
	uint64_t renew_at = mono_ms() + (uint64_t)c->keepalive_ms;

	snprintf(tok, sizeof(tok), "%" PRIu64, token);
	setenv("RAFTKV_LOCK_TOKEN", tok, 1);
	setenv("RAFTKV_LOCK_KEY", (const char *)rq->key, 1);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCONT); /* still continues us: taken to see fg */
	sigprocmask(SIG_BLOCK, &set, &old);
	/* Our diagnostics go out even in the background with `stty tostop`
	 * (the command's group has the terminal): a SIGTTOU must not stop
	 * us between a lost lock and the signals that end the command.  Not
	 * waited for: blocked, it is never sent for a write. */
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	sigprocmask(SIG_BLOCK, &ttou, NULL);
	/* The command waits for the guard: a byte on @go, EOF = give up. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, go) != 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return EXIT_ERROR;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		char b = 0;
		ssize_t n;

		/* Both sides set the group and the terminal: whichever runs
		 * first, the command starts in its group (in the foreground if
		 * we were). */
		setpgid(0, 0);
		/* Die with raftkv (checked after: it may be dead already). */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != me)
			_exit(127);
		tty_pass(tty, mine, getpid());
		close(go[1]);
		while ((n = read(go[0], &b, 1)) < 0 && errno == EINTR)
			;
		if (n != 1)
			_exit(127); /* no guard: not run */
		close(go[0]);
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(argv[0], argv);
		fprintf(stderr, "%s: %s: %s\n", prog, argv[0], strerror(errno));
		_exit(127);
	}
	close(go[0]);
	if (pid < 0) {
		close(go[1]);
		sigprocmask(SIG_SETMASK, &old, NULL);
		return EXIT_ERROR;
	}
	setpgid(pid, pid); /* EACCES once it has exec'd: done by then */
	tty_pass(tty, mine, pid);
	/* It acts a twentieth of a lease past our deadline: half the margin
	 * lock_valid_until() keeps, so still inside the lease. */
	g = lockguard_start(pid, until, c->lease_ms / 20);
	if (g == NULL) {
		/* Fail closed: the command never runs unguarded. */
		int e = errno;

		close(go[1]);
		kill(-pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		tty_pass(tty, pid, mine);
		sigprocmask(SIG_SETMASK, &old, NULL);
		fprintf(stderr,
		    "%s: lock %s: cannot start the guard (%s): the command "
		    "was not run\n",
		    prog, (const char *)rq->key, strerror(e));
		return EXIT_ERROR;
	}
	(void)!send(go[1], "g", 1, MSG_NOSIGNAL); /* not if it was killed */
	close(go[1]);
	while (status < 0) {
		uint64_t now = mono_ms();
		int wait_ms = lost   ? c->keepalive_ms
		    : renew_at > now ? (int)(renew_at - now)
		                     : 0;
		struct timespec ts;
		int sig;

		/* Wake at the deadline too, to stop the command in time. */
		if (!lost && until > now && until - now < (uint64_t)wait_ms)
			wait_ms = (int)(until - now);
		if (!lost && until <= now)
			wait_ms = 0;
		/* And at the end of the grace of a command that was told. */
		if (lost && !killed && kill_at <= now)
			wait_ms = 0;
		else if (lost && !killed && kill_at - now < (uint64_t)wait_ms)
			wait_ms = (int)(kill_at - now);
		ts.tv_sec = wait_ms / 1000;
		ts.tv_nsec = (long)(wait_ms % 1000) * 1000000L;
		sig = sigtimedwait(&set, NULL, &ts);

		/* fg of a job started in the background (&): the shell
		 * gave the terminal to our group and continued it; the
		 * command's group is the one that reads it. */
		if (sig == SIGCONT && !lost)
			tty_pass(tty, mine, pid);
		if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
			kill(-pid, sig); /* the command decides; we wait */
			if (!lost)
				kill(-pid, SIGCONT); /* if stopped */
		}
		/* The guard ended early (killed: `pkill -9`): nothing
		 * would stop the group if we were stopped or killed now. */
		if (!unguarded && !killed && !lockguard_alive(g, NULL)) {
			kill(-pid, SIGKILL);
			unguarded = lost = killed = true;
			fprintf(stderr,
			    "%s: lock %s: the guard ended: the command was "
			    "killed\n",
			    prog, (const char *)rq->key);
		}
		r = waitpid(pid, &ws, WNOHANG | (tty >= 0 ? WUNTRACED : 0));
		if (r == pid && WIFSTOPPED(ws)) {
			if (lost ||
			    follow_stop(c, rq, token, &until, g, tty, pid))
				continue;
			/* Signal first, then say so (we may be stopped). */
			kill(-pid, SIGKILL);
			lockguard_kill_at(g, mono_ms());
			lost = killed = true;
			fprintf(stderr,
			    "%s: lock %s: lost while the command was stopped: "
			    "SIGKILL\n",
			    prog, (const char *)rq->key);
			continue;
		}
		if (r == pid) {
			status = WIFEXITED(ws) ? WEXITSTATUS(ws)
			                       : 128 + WTERMSIG(ws);
			break;
		}
		if (!lost && (mono_ms() >= renew_at || mono_ms() >= until)) {
			/* A renewal period passed: keep the lease, and make
			 * sure the lock is still ours. */
			bool held = renew_held(c, rq, token, &until, g);

			renew_at = mono_ms() + (uint64_t)c->keepalive_ms;
			if (!held) {
				/* A stopped command stays stopped: it
				 * gets SIGKILL at the end of the grace,
				 * from the guard too if we are stopped
				 * by then.  Signals first, then words. */
				lost = true;
				kill_at = mono_ms() + LOST_KILL_GRACE_MS;
				lockguard_kill_at(g, kill_at);
				kill(-pid, SIGTERM);
				fprintf(stderr,
				    "%s: lock %s: lost (lease expired, or "
				    "no renewal for a lease); "
				    "stopping the command\n",
				    prog, (const char *)rq->key);
			}
		} else if (lost && !killed && mono_ms() >= kill_at) {
			kill(-pid, SIGKILL);
			killed = true;
			fprintf(stderr,
			    "%s: lock %s: the command did not end %d s after "
			    "SIGTERM: SIGKILL\n",
			    prog, (const char *)rq->key,
			    LOST_KILL_GRACE_MS / 1000);
		}
	}
	tty_pass(tty, pid, mine);
	if (!lost && lockguard_fired(g)) {
		fprintf(stderr,
		    "%s: lock %s: lost while raftkv was stopped: the command "
		    "was killed\n",
		    prog, (const char *)rq->key);
		lost = killed = true;
	}
	if (!lost && kill(-pid, 0) == 0) {
		/* The command ended and left something in its group: that
		 * must not run on after the unlock.  SIGTERM (continued, if
		 * stopped: the lease is still ours), SIGKILL after the grace
		 * or at the end of the lease, whichever comes first. */
		uint64_t end = mono_ms() + LOST_KILL_GRACE_MS;

		kill(-pid, SIGTERM);
		kill(-pid, SIGCONT);
		end_group(pid, end < until ? end : until);
	}
	if (lost)
		end_group(pid, killed ? 0 : kill_at);
	lockguard_end(g);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return lost ? EXIT_ERROR : status;
}

static uint64_t random_owner(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v) || v == 0)
		v = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL) ^ 1;
	return v;
}

static int cmd_lock(struct ctx *c)
{
	struct clerk_lock_req rq;
	uint64_t token = 0, session = 0;
	char **argv;
	int rv, status;

	if (c->argc > 1 && strcmp(c->argv[1], "--") == 0)
		argv = c->argv + 2; /* "lock KEY -- cmd" */
	else
		argv = c->argv + 1;
	lock_req(c, c->argv[0], random_owner(), &rq);
	rv = take_lock(c, &rq, &token);
	if (rv != EXIT_OKAY)
		return rv;
	if (*argv == NULL) {
		/* No command: the lock stays held (at most one lease unless
		 * released sooner); the handle lets `unlock` release it. */
		if (clerk_session(c->ck, &session) != 0)
			return EXIT_ERROR;
		printf("%" PRIu64 "\t%" PRIu64 ":%" PRIu64 ":%" PRIu64 "\n",
		    token, session, clerk_seq(c->ck), rq.owner);
		return EXIT_OKAY;
	}
	status = run_holding(c, &rq, token, argv);
	rv = clerk_unlock(c->ck, &rq);
	if (rv != KV_OK)
		fprintf(stderr, "%s: unlock %s: %s\n", prog, c->argv[0],
		    clerk_strerror(rv));
	return status;
}

/* unlock KEY HANDLE: release a lock taken without a command. */
static int cmd_unlock(struct ctx *c)
{
	struct clerk_lock_req rq;
	uint64_t session, seq, owner;
	char *p = c->argv[1], *q, *r;
	int rv;

	q = strchr(p, ':');
	r = q ? strchr(q + 1, ':') : NULL;
	if (q == NULL || r == NULL) {
		fprintf(stderr, "%s: unlock: bad handle '%s'\n", prog, p);
		return EXIT_USAGE;
	}
	*q = *r = '\0';
	if (num_parse_u64(p, 10, 1, UINT64_MAX, &session) != 0 ||
	    num_parse_u64(q + 1, 10, 0, UINT64_MAX, &seq) != 0 ||
	    num_parse_u64(r + 1, 10, 0, UINT64_MAX, &owner) != 0) {
		fprintf(stderr, "%s: unlock: bad handle\n", prog);
		return EXIT_USAGE;
	}
	lock_req(c, c->argv[0], owner, &rq);
	rq.kind = 0; /* UNLOCK_OWNER: both kinds */
	clerk_resume_session(c->ck, session, seq);
	rv = clerk_unlock_owner(c->ck, &rq);
	return outcome(rv, c->argv[0]);
}

static int cmd_status(struct ctx *c)
{
	int worst = EXIT_OKAY;

	printf("member\trole\tterm\tleader\tcommit\tapplied\tlast\tsnapshot\n");
	for (uint32_t i = 0; i < clerk_members(c->ck); i++) {
		struct cproto_status st;
		int rv = clerk_member_status(c->ck, i, &st);

		if (rv != 0) {
			printf("#%u\tunreachable\n", i + 1);
			worst = EXIT_UNAVAILABLE;
			continue;
		}
		printf("%" PRIu64 "\t%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64
		       "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\n",
		    st.id, raft_role_name((enum raft_role)st.role), st.term,
		    st.leader, st.commit, st.applied, st.last_index,
		    st.snap_index);
	}
	return worst;
}

/* The size quota (kv.h, QUOTA): one line, bytes, like df -B1. */
static int cmd_df(struct ctx *c)
{
	uint64_t used, quota, keys;
	int rv = clerk_usage(c->ck, &used, &quota, &keys);

	if (rv != KV_OK)
		return outcome(rv, "df");
	printf("quota\tused\tavail\tuse%%\tkeys\n");
	printf("%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "%%\t%" PRIu64
	       "\n",
	    quota, used, used < quota ? quota - used : 0,
	    quota ? (uint64_t)((double)used * 100 / (double)quota) : 0, keys);
	return EXIT_OKAY;
}

struct command {
	const char *name;
	int min_args;
	int max_args; /* -1: any */
	int (*run)(struct ctx *);
	const char *usage;
};

static const struct command commands[] = {
	{ "get", 1, 1, cmd_get, "get [-v | --json] KEY" },
	{ "stat", 1, 1, cmd_stat, "stat KEY" },
	{ "put", 1, 2, cmd_put,
	    "put [--version N] [--fence TOKEN --lock LOCKKEY] KEY [VALUE]" },
	{ "cas", 2, 3, cmd_cas, "cas KEY VERSION [VALUE]" },
	{ "del", 1, 1, cmd_del, "del [--version N] KEY" },
	{ "link", 2, 2, cmd_link, "link [--version N] SRC DST" },
	{ "ls", 0, 1, cmd_ls, "ls [-r] [-0 | --json] [PREFIX]" },
	{ "lock", 1, -1, cmd_lock,
	    "lock [--shared] [--nb] [--timeout MS] KEY "
	    "[--] [COMMAND...]" },
	{ "unlock", 2, 2, cmd_unlock, "unlock KEY HANDLE" },
	{ "status", 0, 0, cmd_status, "status" },
	{ "df", 0, 0, cmd_df, "df" },
};

static void usage(void);

/* One option that may stand before or after the subcommand name.
 * Returns EXIT_OKAY or EXIT_USAGE (after saying why). */
static int take_option(struct ctx *c, int opt)
{
	uint64_t v;

	switch (opt) {
	case 'r':
		c->recursive = 1;
		return EXIT_OKAY;
	case 'v':
		c->with_version = 1;
		return EXIT_OKAY;
	case 'J':
		c->json = 1;
		return EXIT_OKAY;
	case '0':
		c->nul = 1;
		return EXIT_OKAY;
	case 'V':
		if (num_parse_u64(optarg, 10, 0, INT64_MAX, &v) != 0)
			break;
		c->version = (int64_t)v;
		return EXIT_OKAY;
	case 'S':
		c->shared = 1;
		return EXIT_OKAY;
	case 'N':
		c->nowait = 1;
		return EXIT_OKAY;
	case 'F':
		if (num_parse_u64(optarg, 10, 1, UINT64_MAX, &v) != 0)
			break;
		c->fence = v;
		return EXIT_OKAY;
	case 'K':
		c->fence_lock = optarg;
		return EXIT_OKAY;
	case 't':
		if (num_parse_u64(optarg, 10, 0, INT_MAX, &v) != 0)
			break;
		c->timeout_ms = (int)v;
		return EXIT_OKAY;
	default:
		usage();
		return EXIT_USAGE;
	}
	fprintf(stderr, "%s: bad option value '%s'\n", prog, optarg);
	return EXIT_USAGE;
}

static void usage(void)
{
	fprintf(stderr,
	    "usage: %s [-c CLUSTER-FILE] [-k CREDENTIAL] "
	    "[--timeout MS] COMMAND\n",
	    prog);
	fprintf(stderr,
	    "       %s init -d DIR -n N [--host HOST] "
	    "[--port-base P]\n",
	    prog);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(stderr, "       %s %s\n", prog, commands[i].usage);
	fprintf(stderr,
	    "       %s member list | add ID PEER-EP CLIENT-EP KEYFILE|- | "
	    "promote ID | remove ID | keygen KEYFILE\n",
	    prog);
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "cluster", required_argument, NULL, 'c' },
		{ "version", required_argument, NULL, 'V' },
		{ "shared", no_argument, NULL, 'S' },
		{ "nb", no_argument, NULL, 'N' },
		{ "fence", required_argument, NULL, 'F' },
		{ "lock", required_argument, NULL, 'K' },
		{ "timeout", required_argument, NULL, 't' },
		{ "recursive", no_argument, NULL, 'r' },
		{ "credential", required_argument, NULL, 'k' },
		{ "with-version", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'J' },
		{ "null", no_argument, NULL, '0' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = getenv("RAFTKV_CLUSTER"), *cred = NULL;
	struct clerk_options o;
	struct ctx c = { .version = -1, .timeout_ms = -1 };
	struct cluster cl;
	const struct command *cmd = NULL;
	char err[512];
	int opt, rv;

	if (argc >= 2 && strcmp(argv[1], "init") == 0)
		return init_main(argc - 1, argv + 1);
	while (
	    (opt = getopt_long(argc, argv, "+c:k:rv0h", longs, NULL)) != -1) {
		if (opt == 'c') {
			file = optarg;
			continue;
		}
		if (opt == 'k') {
			cred = optarg;
			continue;
		}
		if (opt == 'h') {
			usage();
			return EXIT_OKAY;
		}
		rv = take_option(&c, opt);
		if (rv != EXIT_OKAY)
			return rv;
	}
	if (optind >= argc) {
		usage();
		return EXIT_USAGE;
	}
	if (strcmp(argv[optind], "member") == 0) {
		if (file == NULL)
			file = DEFAULT_CLUSTER;
		if (optind + 1 < argc &&
		    strcmp(argv[optind + 1], "keygen") == 0)
			return cli_member(&cl, file, cred, argc - optind - 1,
			    argv + optind + 1, c.timeout_ms);
		if (cluster_load(file, &cl, err, sizeof(err)) != 0) {
			fprintf(stderr, "%s: %s\n", prog, err);
			return EXIT_USAGE;
		}
		return cli_member(&cl, file, cred, argc - optind - 1,
		    argv + optind + 1, c.timeout_ms);
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			cmd = &commands[i];
	if (cmd == NULL) {
		fprintf(stderr, "%s: unknown command '%s'\n", prog,
		    argv[optind]);
		usage();
		return EXIT_USAGE;
	}
	/* Options after the subcommand name. */
	optind++;
	while ((opt = getopt_long(argc, argv, "+rv0h", longs, NULL)) != -1) {
		rv = take_option(&c, opt == 'h' ? '?' : opt);
		if (rv != EXIT_OKAY)
			return rv;
	}
	c.argc = argc - optind;
	c.argv = argv + optind;
	if (c.argc < cmd->min_args ||
	    (cmd->max_args >= 0 && c.argc > cmd->max_args)) {
		fprintf(stderr, "usage: %s %s\n", prog, cmd->usage);
		return EXIT_USAGE;
	}
	if ((c.fence != 0) != (c.fence_lock != NULL) ||
	    (c.fence != 0 && cmd->run != cmd_put && cmd->run != cmd_cas)) {
		fprintf(stderr,
		    "%s: --fence and --lock go together, with "
		    "put or cas\n",
		    prog);
		return EXIT_USAGE;
	}
	if (file == NULL)
		file = DEFAULT_CLUSTER;
	if (cluster_load(file, &cl, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return EXIT_USAGE;
	}
	/* With keys: our credential, found next to the cluster file. */
	if (keys_load_credential(&cl, file, cred, false, err, sizeof(err)) !=
	    0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return EXIT_USAGE;
	}
	c.lease_ms = (int)(cl.lock_lease_ms ? cl.lock_lease_ms
	                                    : KV_LOCK_LEASE_NS / 1000000);
	c.keepalive_ms = c.lease_ms / 3;
	clerk_options_defaults(&o);
	if (c.timeout_ms > 0 && cmd->run != cmd_lock)
		o.deadline_ms = c.timeout_ms;
	rv = clerk_new(&cl, &o, &c.ck);
	if (rv != 0) {
		fprintf(stderr, "%s: cannot create a client: %s\n", prog,
		    rk_strerror(rv));
		return EXIT_ERROR;
	}
	rv = cmd->run(&c);
	clerk_free(c.ck);
	return rv;
}
