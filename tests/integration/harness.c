/*
 * harness.c - member processes for integration tests (see harness.h).
 *
 * State of one member, as the harness sees it:
 *
 *             spawn_member()                 reap() [waitpid]
 *   STOPPED ----------------> RUNNING ----------------------> STOPPED
 *      ^                     (pid != 0)   expected: killed by us
 *      |                                  unexpected: reported once by
 *      +---- harness_restart()            harness_unexpected_exits()
 *
 * Every waitpid() is WNOHANG and made under h->mu, so any thread may ask
 * whether a member runs; waiting for an exit polls.  The only global
 * mutable state is the registry below: the pids of all children, the
 * harnesses alive and their directories, so that exit and termination
 * signals can kill and remove what a failing test left behind (the
 * signal handler only uses async-signal-safe calls: kill, waitpid, fork,
 * execv of rm).
 *
 * Clients: a struct client is single-threaded, so each thread gets its
 * own (struct tclerk, found through a pthread key); a thread's client goes
 * back to a free list when the thread exits.  The leader guess is shared.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "raft/client/keys.h"
#include "raft/member/node.h"
#include "raft/storage/storage.h"
#include "tests/integration/harness.h"

#define DEFAULT_MEMBER "tests/integration/counter-member"
#define DEFAULT_TICK_MS 10
#define DEFAULT_START_TIMEOUT_MS 20000
#define DEFAULT_ATTEMPT_TIMEOUT_MS 1000
#define TERM_GRACE_MS 3000 /* harness_free(): SIGTERM, then SIGKILL */
#define KILL_TERM_WAIT_MS 10000 /* harness_kill(SIGTERM) */
#define FAULT_TIMEOUT_MS 3000
#define FAULT_TRIES 3 /* fault calls are repeated on a timeout */
#define START_ATTEMPTS 5
#define REG_MAX 1024
#define MAX_ARGS 64

struct link_fault {
	unsigned drop_pct;
	unsigned delay_ms;
	bool blocked;
};

struct member_proc {
	pid_t pid; /* 0: not running */
	bool killing; /* the harness signalled it to exit */
	int kill_sig; /* ... with this signal (the last sent) */
	bool unexpected; /* exited on its own */
	bool reported; /* ... and harness_unexpected_exits() said so */
	int status; /* last wait status */
	unsigned starts;
	off_t log_start; /* log size when the current run started */
	char data_dir[PATH_MAX];
	char log_path[PATH_MAX];
};

struct tclerk {
	struct harness *h;
	struct client *cl;
	unsigned gen; /* cluster generation the client was made for */
	struct tclerk *next_all;
	struct tclerk *next_free;
};

struct harness {
	struct harness_options o;
	char name[64];
	char member_path[PATH_MAX];
	char dir[PATH_MAX - 256]; /* room for the names inside it */
	char cluster_path[PATH_MAX];
	int n; /* every member slot, spares included */
	int n_boot; /* the cluster file's: 0..n_boot-1 */
	struct cluster cl; /* every slot (the file: n_boot) */
	unsigned gen; /* bumped when the cluster file changes */
	pthread_mutex_t mu; /* m[], f[], the clerk lists */
	struct member_proc m[HARNESS_MAX];
	struct link_fault f[HARNESS_MAX][HARNESS_MAX]; /* [from][to] */
	pthread_key_t key;
	struct tclerk *clerks;
	struct tclerk *free_clerks;
	void *zctx;
	atomic_int leader_guess; /* index, -1: unknown */
	pthread_t creator;
	bool passed;
	struct harness *next_live;
};

/* ------------------------------------------------------------------ */
/* The registry: children and live harnesses, for emergency cleanup.    */
/* ------------------------------------------------------------------ */

#define REG_DIRS 64

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t reg_pids[REG_MAX]; /* read by signal handlers */
static const char *volatile reg_dirs[REG_DIRS]; /* ditto: live h->dir */
static volatile sig_atomic_t reg_keep; /* RAFTKV_KEEP was set */
static struct harness *reg_live;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static void reg_add_pid(pid_t pid)
{
	pthread_mutex_lock(&reg_mu);
	for (int k = 0; k < REG_MAX; k++) {
		if (reg_pids[k] == 0) {
			reg_pids[k] = pid;
			break;
		}
	}
	pthread_mutex_unlock(&reg_mu);
}

static void reg_del_pid(pid_t pid)
{
	pthread_mutex_lock(&reg_mu);
	for (int k = 0; k < REG_MAX; k++)
		if (reg_pids[k] == pid)
			reg_pids[k] = 0;
	pthread_mutex_unlock(&reg_mu);
}

/* Async-signal-safe: kill() only. */
static void kill_registered(void)
{
	for (int k = 0; k < REG_MAX; k++) {
		pid_t pid = reg_pids[k];

		if (pid > 0)
			kill(pid, SIGKILL);
	}
}

/* Async-signal-safe removal of the live directories: fork + exec rm. */
static void remove_registered_dirs(void)
{
	for (int k = 0; k < REG_DIRS && !reg_keep; k++) {
		const char *dir = reg_dirs[k];
		pid_t pid;

		if (dir == NULL)
			continue;
		pid = fork();
		if (pid == 0) {
			char *const argv[] = { "rm", "-rf", (char *)dir, NULL };

			execv("/bin/rm", argv);
			_exit(127);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
	}
}

static void on_fatal_signal(int sig)
{
	kill_registered();
	for (int k = 0; k < REG_MAX; k++)
		if (reg_pids[k] > 0)
			waitpid(reg_pids[k], NULL, 0);
	remove_registered_dirs();
	signal(sig, SIG_DFL);
	raise(sig);
}

static bool keep_dirs(void)
{
	const char *k = getenv("RAFTKV_KEEP");

	return k && *k && strcmp(k, "0") != 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void remove_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* At exit: whatever a test left running dies, its directory goes. */
static void at_exit_cleanup(void)
{
	struct harness *h;

	if (pthread_mutex_trylock(&reg_mu) != 0) {
		kill_registered();
		return;
	}
	for (int k = 0; k < REG_MAX; k++) {
		pid_t pid = reg_pids[k];

		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			reg_pids[k] = 0;
		}
	}
	for (h = reg_live; h; h = h->next_live) {
		if (keep_dirs())
			fprintf(stderr, "harness[%s]: kept %s\n", h->name,
			    h->dir);
		else if (h->dir[0])
			remove_tree(h->dir);
	}
	reg_live = NULL;
	pthread_mutex_unlock(&reg_mu);
}

static void reg_install(void)
{
	struct sigaction sa;
	const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct rlimit rl;

	/* Each client thread holds a socket per member, each member a few
	 * dozen descriptors: lift a small soft limit (1024 on many CI
	 * machines) to the hard one; members inherit it. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max &&
	    rl.rlim_cur < 65536) {
		rl.rlim_cur = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++)
		sigaction(sigs[k], &sa, NULL);
	atexit(at_exit_cleanup);
}

static void reg_add_harness(struct harness *h)
{
	pthread_mutex_lock(&reg_mu);
	h->next_live = reg_live;
	reg_live = h;
	reg_keep = keep_dirs();
	pthread_mutex_unlock(&reg_mu);
}

/* Once h->dir exists: a signal may remove it. */
static void reg_add_dir(struct harness *h)
{
	pthread_mutex_lock(&reg_mu);
	for (int k = 0; k < REG_DIRS; k++) {
		if (reg_dirs[k] == NULL) {
			reg_dirs[k] = h->dir;
			break;
		}
	}
	pthread_mutex_unlock(&reg_mu);
}

static void reg_del_harness(struct harness *h)
{
	pthread_mutex_lock(&reg_mu);
	for (int k = 0; k < REG_DIRS; k++)
		if (reg_dirs[k] == h->dir)
			reg_dirs[k] = NULL;
	for (struct harness **p = &reg_live; *p; p = &(*p)->next_live) {
		if (*p == h) {
			*p = h->next_live;
			break;
		}
	}
	pthread_mutex_unlock(&reg_mu);
}

/* ------------------------------------------------------------------ */
/* Utilities                                                            */
/* ------------------------------------------------------------------ */

uint64_t harness_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void harness_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

bool harness_long(void)
{
	const char *l = getenv("RAFTKV_LONG");

	return l && *l && strcmp(l, "0") != 0;
}

void harness_options_defaults(struct harness_options *o)
{
	memset(o, 0, sizeof(*o));
}

int harness_n(const struct harness *h)
{
	return h->n;
}
raft_id harness_id(const struct harness *h, int i)
{
	(void)h;
	return (raft_id)i + 1;
}
const char *harness_dir(const struct harness *h)
{
	return h->dir;
}
const char *harness_data_dir(const struct harness *h, int i)
{
	return h->m[i].data_dir;
}
const char *harness_log_path(const struct harness *h, int i)
{
	return h->m[i].log_path;
}
const struct cluster *harness_cluster(const struct harness *h)
{
	return &h->cl;
}
void harness_mark_passed(struct harness *h)
{
	h->passed = true;
}

int harness_index_of(const struct harness *h, raft_id id)
{
	return id >= 1 && id <= (raft_id)h->n ? (int)id - 1 : -1;
}

static void print_tail(const char *path, const char *label, int lines)
{
	char buf[65536];
	ssize_t got;
	off_t size;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	const char *p;

	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size > (off_t)sizeof(buf) - 1)
		lseek(fd, size - (off_t)sizeof(buf) + 1, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	got = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (got < 0)
		got = 0;
	buf[got] = '\0';
	p = buf + got;
	while (p > buf && lines >= 0) {
		p--;
		if (*p == '\n' && p != buf + got - 1)
			lines--;
	}
	if (*p == '\n')
		p++;
	fprintf(stderr, "---- %s: last lines of %s\n%s%s---- end of %s\n",
	    label, path, p, got && buf[got - 1] != '\n' ? "\n" : "", label);
}

void harness_print_logs(const struct harness *h, int i, int lines)
{
	char label[160];

	for (int k = 0; k < h->n; k++) {
		if (i >= 0 && k != i)
			continue;
		snprintf(label, sizeof(label), "%s member %d (id %d)", h->name,
		    k, k + 1);
		print_tail(h->m[k].log_path, label, lines);
	}
}

/* ------------------------------------------------------------------ */
/* Directory, ports, cluster file                                       */
/* ------------------------------------------------------------------ */

static int resolve_member_path(struct harness *h)
{
	const char *bd = getenv("RAFTKV_BUILDDIR");
	int rv;

	if (h->o.member_path)
		rv = snprintf(h->member_path, sizeof(h->member_path), "%s",
		    h->o.member_path);
	else
		rv = snprintf(h->member_path, sizeof(h->member_path), "%s/%s",
		    bd && *bd ? bd : ".", DEFAULT_MEMBER);
	if (rv < 0 || (size_t)rv >= sizeof(h->member_path))
		return -ENAMETOOLONG;
	if (access(h->member_path, X_OK) != 0) {
		fprintf(stderr,
		    "harness[%s]: member program %s: %s "
		    "(set RAFTKV_BUILDDIR to the build directory)\n",
		    h->name, h->member_path, strerror(errno));
		return -ENOENT;
	}
	return 0;
}

static int make_dir(struct harness *h)
{
	const char *base = h->o.base_dir;
	int rv;

	if (base == NULL)
		base = getenv("TMPDIR");
	if (base == NULL || *base == '\0')
		base = "/tmp";
	rv = snprintf(h->dir, sizeof(h->dir), "%s/raftkv-%s-XXXXXX", base,
	    h->name);
	if (rv < 0 || (size_t)rv >= sizeof(h->dir) - 64)
		return -ENAMETOOLONG;
	if (mkdtemp(h->dir) == NULL) {
		rv = -errno;
		fprintf(stderr, "harness[%s]: mkdtemp %s: %s\n", h->name,
		    h->dir, strerror(errno));
		h->dir[0] = '\0';
		return rv;
	}
	snprintf(h->cluster_path, sizeof(h->cluster_path), "%s/cluster.conf",
	    h->dir);
	for (int i = 0; i < h->n; i++) {
		snprintf(h->m[i].data_dir, sizeof(h->m[i].data_dir),
		    "%s/data-%d", h->dir, i + 1);
		snprintf(h->m[i].log_path, sizeof(h->m[i].log_path),
		    "%s/member-%d.log", h->dir, i + 1);
	}
	return 0;
}

static bool port_free(unsigned port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static unsigned kernel_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unsigned port = 0;

	if (fd < 0)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/*
 * Choose @count free ports.  Ports inside the kernel's ephemeral range
 * could be taken by any outgoing connection (ZeroMQ reconnecting to a
 * member that is down, for one) while their member is restarting, so
 * prefer a window below (or above) that range, at an offset derived from
 * the pid and a counter so that concurrent test programs and consecutive
 * clusters spread out.  The window is bind-tested; someone may still take
 * a port before the member binds it, which harness_new() retries.
 */
static int pick_ports(int count, unsigned *ports)
{
	static atomic_uint counter;
	unsigned lo = 32768, hi = 60999, wlo, whi, span, start;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
	int got = 0;

	if (f != NULL) {
		if (fscanf(f, "%u %u", &lo, &hi) != 2) {
			lo = 32768;
			hi = 60999;
		}
		fclose(f);
	}
	if (lo >= 12000) {
		wlo = 10000;
		whi = lo > 32768 ? 32768 : lo;
	} else if (hi <= 63000) {
		wlo = hi + 1;
		whi = 65535;
	} else {
		wlo = whi = 0;
	}
	span = whi - wlo;
	if (span < 1000) {
		for (int k = 0; k < count; k++)
			if ((ports[k] = kernel_port()) == 0)
				return -EADDRNOTAVAIL;
		return 0;
	}
	start = ((unsigned)getpid() * 7919u +
	            atomic_fetch_add(&counter, 1) * 211u) %
	    span;
	for (unsigned k = 0; k < span && got < count; k++) {
		unsigned p = wlo + (start + k) % span;

		if (port_free(p))
			ports[got++] = p;
	}
	return got == count ? 0 : -EADDRNOTAVAIL;
}

/* Remove what keys_init_cluster() wrote in h->dir (a retry). */
static void remove_keys(struct harness *h)
{
	char path[PATH_MAX + 32];
	static const char *const names[] = { "cluster.conf", "client.key",
		"admin.key" };

	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		snprintf(path, sizeof(path), "%s/%s", h->dir, names[k]);
		unlink(path);
	}
	for (int i = 0; i < h->n; i++) {
		snprintf(path, sizeof(path), "%s/member%d.key", h->dir, i + 1);
		unlink(path);
	}
}

/*
 * The cluster as `raftkv init` sets it up, with keys.  Until some member's
 * public key contains a '#' (about 38% of keys do), set it up again: every
 * test cluster then proves the cluster file takes '#' inside a key.
 */
static int write_keyed_cluster(struct harness *h, uint64_t cid,
    const unsigned *ports)
{
	struct cluster c;
	char err[512];
	int rv = 0;

	for (int attempt = 0; attempt < 200; attempt++) {
		bool hash = false;

		remove_keys(h);
		memset(&c, 0, sizeof(c));
		c.id = cid;
		c.n = (uint32_t)h->n;
		for (int i = 0; i < h->n; i++) {
			c.members[i].id = (raft_id)i + 1;
			snprintf(c.members[i].peer, sizeof(c.members[i].peer),
			    "tcp://127.0.0.1:%u", ports[2 * i]);
			snprintf(c.members[i].client,
			    sizeof(c.members[i].client), "tcp://127.0.0.1:%u",
			    ports[2 * i + 1]);
		}
		rv = keys_init_cluster(h->dir, &c, err, sizeof(err));
		if (rv != 0) {
			fprintf(stderr, "harness[%s]: %s\n", h->name, err);
			return rv;
		}
		for (int i = 0; i < h->n; i++)
			hash |= strchr(c.members[i].key, '#') != NULL;
		if (hash)
			return 0;
	}
	return 0; /* astronomically unlikely; the cluster works anyway */
}

/* Rewrite the cluster file without the spare members' lines (h->cl keeps
 * them all). */
static int drop_spares(struct harness *h)
{
	char line[1024], tmp[PATH_MAX + 8];
	FILE *in, *out;
	int rv = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", h->cluster_path);
	in = fopen(h->cluster_path, "re");
	out = fopen(tmp, "we");
	if (in == NULL || out == NULL)
		rv = -errno;
	while (rv == 0 && fgets(line, sizeof(line), in) != NULL) {
		unsigned id;

		if (sscanf(line, "member %u ", &id) == 1 &&
		    id > (unsigned)h->n_boot)
			continue;
		fputs(line, out);
	}
	if (in != NULL)
		fclose(in);
	if (out != NULL && fclose(out) != 0 && rv == 0)
		rv = -EIO;
	if (rv == 0 && rename(tmp, h->cluster_path) != 0)
		rv = -errno;
	return rv;
}

static int write_cluster_file(struct harness *h)
{
	unsigned ports[2 * HARNESS_MAX];
	char err[256];
	uint64_t cid;
	FILE *f;
	int rv;

	rv = pick_ports(2 * h->n, ports);
	if (rv != 0) {
		fprintf(stderr, "harness[%s]: no free ports\n", h->name);
		return rv;
	}
	cid = ((uint64_t)getpid() << 32 | (harness_now_ms() & 0xffffffffu)) ^
	    ((uint64_t)h->gen << 56);
	if (cid == 0)
		cid = 1;
	if (!h->o.insecure) {
		rv = write_keyed_cluster(h, cid, ports);
		goto load;
	}
	f = fopen(h->cluster_path, "we");
	if (f == NULL)
		return -errno;
	fprintf(f, "# written by the raftkv test harness for %s\n", h->name);
	fprintf(f, "cluster %" PRIx64 "\n", cid);
	for (int i = 0; i < h->n; i++)
		fprintf(f,
		    "member %d peer=tcp://127.0.0.1:%u "
		    "client=tcp://127.0.0.1:%u\n",
		    i + 1, ports[2 * i], ports[2 * i + 1]);
	if (fclose(f) != 0)
		return -EIO;
load:
	if (rv == 0)
		rv = cluster_load(h->cluster_path, &h->cl, err, sizeof(err));
	if (rv == 0 && h->n_boot < h->n)
		rv = drop_spares(h);
	if (rv == 0 && !h->o.insecure) {
		char path[PATH_MAX + 16];

		snprintf(path, sizeof(path), "%s/admin.key", h->dir);
		rv = keys_read_secret(path, h->cl.cred_secret, err,
		    sizeof(err));
	}
	if (rv != 0)
		fprintf(stderr, "harness[%s]: %s\n", h->name, err);
	h->gen++;
	return rv;
}

/* ------------------------------------------------------------------ */
/* Processes                                                            */
/* ------------------------------------------------------------------ */

/*
 * Did a member we signalled with @sig end the way it should?  SIGKILL:
 * killed by it (or a clean exit just before).  SIGTERM: exit status 0
 * (the member stops cleanly; a sanitizer report, a leak, a failed
 * shutdown are non-zero), or the default action of SIGTERM if it arrived
 * before the member installed its handling.
 */
static bool clean_exit(int sig, int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st) == 0;
	return WIFSIGNALED(st) &&
	    (WTERMSIG(st) == SIGKILL ||
	        (sig == SIGTERM && WTERMSIG(st) == SIGTERM));
}

/* Reap member @i if it exited; h->mu held. */
static void reap_locked(struct harness *h, int i)
{
	struct member_proc *m = &h->m[i];
	int st;
	pid_t r;

	if (m->pid == 0)
		return;
	r = waitpid(m->pid, &st, WNOHANG);
	if (r == 0 || (r < 0 && errno == EINTR))
		return;
	if (r < 0)
		st = 0; /* somebody else reaped it: treat as gone */
	reg_del_pid(m->pid);
	m->status = st;
	if (!m->killing || !clean_exit(m->kill_sig, st)) {
		m->unexpected = true;
		m->reported = false;
	}
	m->pid = 0;
	m->killing = false;
}

pid_t harness_pid(struct harness *h, int i)
{
	pid_t pid;

	if (i < 0 || i >= h->n)
		return 0;
	pthread_mutex_lock(&h->mu);
	reap_locked(h, i);
	pid = h->m[i].pid;
	pthread_mutex_unlock(&h->mu);
	return pid;
}

bool harness_running(struct harness *h, int i)
{
	return harness_pid(h, i) != 0;
}

static int build_argv(struct harness *h, int i, char bufs[][32],
    const char **argv)
{
	const struct harness_options *o = &h->o;
	int a = 0, b = 0;

#define NUM(opt, fmt, val) \
	do { \
		argv[a++] = opt; \
		snprintf(bufs[b], sizeof(bufs[b]), fmt, val); \
		argv[a++] = bufs[b++]; \
	} while (0)
	argv[a++] = h->member_path;
	argv[a++] = "-c";
	argv[a++] = h->cluster_path;
	NUM("-i", "%d", i + 1);
	argv[a++] = "-d";
	argv[a++] = h->m[i].data_dir;
	NUM("--tick-ms", "%u", o->tick_ms ? o->tick_ms : DEFAULT_TICK_MS);
	if (o->election_ticks)
		NUM("--election-ticks", "%u", o->election_ticks);
	if (o->heartbeat_ticks)
		NUM("--heartbeat-ticks", "%u", o->heartbeat_ticks);
	if (o->max_raft_state > 0)
		NUM("--max-raft-state", "%" PRId64, o->max_raft_state);
	if (o->workers)
		NUM("--workers", "%u", o->workers);
	if (o->log_level) {
		argv[a++] = "-l";
		argv[a++] = o->log_level;
	}
	if (!o->no_fault_injection)
		argv[a++] = "--fault-injection";
	if (o->insecure)
		argv[a++] = "--insecure";
	if (o->insecure &&
	    (!o->strict_membership || (i < 32 && (o->open_members >> i) & 1)))
		argv[a++] = "--insecure-membership";
	if (i >= h->n_boot) {
		argv[a++] = "--join";
		argv[a++] = "--peer";
		argv[a++] = h->cl.members[i].peer;
		argv[a++] = "--client";
		argv[a++] = h->cl.members[i].client;
	}
	for (int k = 0; o->extra_args && o->extra_args[k]; k++) {
		if (a >= MAX_ARGS - 1)
			return -E2BIG;
		argv[a++] = o->extra_args[k];
	}
	argv[a] = NULL;
#undef NUM
	return 0;
}

/* Child side of spawn_member(): only async-signal-safe calls. */
static void exec_member(const char **argv, int logfd, bool pdeath, pid_t parent)
{
	sigset_t none;
	int nul;

	if (pdeath) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	nul = open("/dev/null", O_RDONLY);
	if (nul >= 0)
		dup2(nul, 0);
	dup2(logfd, 1);
	dup2(logfd, 2);
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3u, ~0u, 0) != 0)
#endif
		for (int fd = 3; fd < 4096; fd++)
			close(fd);
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

/* Fork and exec member @i; h->mu held.  0 or -errno. */
static int spawn_member_locked(struct harness *h, int i)
{
	struct member_proc *m = &h->m[i];
	char bufs[16][32];
	const char *argv[MAX_ARGS];
	char line[160];
	int logfd, rv, len;
	pid_t parent = getpid(), pid;
	bool pdeath = pthread_equal(pthread_self(), h->creator);

	rv = build_argv(h, i, bufs, argv);
	if (rv != 0)
		return rv;
	logfd = open(m->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	    0644);
	if (logfd < 0)
		return -errno;
	m->log_start = lseek(logfd, 0, SEEK_END);
	len = snprintf(line, sizeof(line),
	    "==== harness: start %u of member "
	    "%d (t=%" PRIu64 " ms) ====\n",
	    m->starts + 1, i + 1, harness_now_ms());
	if (write(logfd, line, (size_t)len) < 0)
		(void)0; /* the log line is a courtesy */
	pid = fork();
	if (pid < 0) {
		rv = -errno;
		close(logfd);
		return rv;
	}
	if (pid == 0)
		exec_member(argv, logfd, pdeath, parent);
	close(logfd);
	reg_add_pid(pid);
	m->pid = pid;
	m->killing = false;
	m->kill_sig = 0;
	m->starts++;
	return 0;
}

/* Did member @i's current run say "Address already in use"? */
static bool log_says_addr_in_use(const struct harness *h, int i)
{
	char buf[8192];
	int fd = open(h->m[i].log_path, O_RDONLY | O_CLOEXEC);
	ssize_t got;

	if (fd < 0)
		return false;
	lseek(fd, h->m[i].log_start, SEEK_SET);
	got = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (got <= 0)
		return false;
	buf[got] = '\0';
	return strstr(buf, "in use") != NULL;
}

/*
 * Wait until member @i answers STATUS.  0; -EIO when it exited (or did not
 * answer by @deadline, reported on stderr).
 */
static int wait_ready(struct harness *h, int i, uint64_t deadline)
{
	struct cproto_status st;

	for (;;) {
		if (!harness_running(h, i))
			return -EIO;
		if (harness_status(h, i, &st) == 0)
			return 0;
		if (harness_now_ms() >= deadline) {
			fprintf(stderr,
			    "harness[%s]: member %d (pid %d) did "
			    "not answer within %d ms\n",
			    h->name, i, (int)harness_pid(h, i),
			    h->o.start_timeout_ms);
			return -EIO;
		}
		harness_sleep_ms(20);
	}
}

static int apply_fault(struct harness *h, int i, int j);

/* Re-apply every non-default fault of member @i's outgoing links. */
static int reapply_faults(struct harness *h, int i)
{
	int rv = 0;

	for (int j = 0; j < h->n; j++) {
		struct link_fault f;

		pthread_mutex_lock(&h->mu);
		f = h->f[i][j];
		pthread_mutex_unlock(&h->mu);
		if (j != i && (f.blocked || f.drop_pct || f.delay_ms)) {
			int r = apply_fault(h, i, j);

			if (r != 0 && rv == 0)
				rv = r;
		}
	}
	return rv;
}

/* Wait for members in @mask, up to @timeout_ms, polling every 2 ms. */
static void wait_exits(struct harness *h, uint32_t mask, int timeout_ms)
{
	uint64_t deadline = harness_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		uint32_t left = 0;

		for (int i = 0; i < h->n; i++)
			if (mask & (1u << i) && harness_running(h, i))
				left |= 1u << i;
		if (left == 0 || harness_now_ms() >= deadline)
			return;
		harness_sleep_ms(2);
	}
}

static uint32_t signal_members(struct harness *h, uint32_t mask, int sig)
{
	uint32_t sent = 0;

	pthread_mutex_lock(&h->mu);
	for (int i = 0; i < h->n; i++) {
		struct member_proc *m = &h->m[i];

		if (!(mask & (1u << i)))
			continue;
		reap_locked(h, i);
		if (m->pid == 0)
			continue;
		if (sig == SIGKILL || sig == SIGTERM) {
			m->killing = true;
			m->kill_sig = sig;
		}
		kill(m->pid, sig);
		if (sig == SIGTERM)
			kill(m->pid,
			    SIGCONT); /* a stopped member must see it */
		sent |= 1u << i;
	}
	pthread_mutex_unlock(&h->mu);
	return sent;
}

/* SIGKILL whatever in @mask still runs, and wait for it. */
static void force_kill(struct harness *h, uint32_t mask, const char *why)
{
	uint32_t left = 0;

	for (int i = 0; i < h->n; i++)
		if (mask & (1u << i) && harness_running(h, i))
			left |= 1u << i;
	if (left == 0)
		return;
	if (why)
		for (int i = 0; i < h->n; i++)
			if (left & (1u << i))
				fprintf(stderr,
				    "harness[%s]: member %d did "
				    "not exit after SIGTERM (%s): SIGKILL\n",
				    h->name, i, why);
	signal_members(h, left, SIGKILL);
	wait_exits(h, left, 60000);
}

static void stop_members(struct harness *h, uint32_t mask, int sig,
    int grace_ms)
{
	uint32_t sent = signal_members(h, mask, sig);

	if (sig != SIGKILL && sig != SIGTERM)
		return;
	wait_exits(h, sent, sig == SIGKILL ? 60000 : grace_ms);
	if (sig == SIGTERM)
		force_kill(h, sent, "grace period over");
}

int harness_kill(struct harness *h, int i, int sig)
{
	if (i < 0 || i >= h->n || !harness_running(h, i))
		return HARNESS_ENOTRUNNING;
	stop_members(h, 1u << i, sig, KILL_TERM_WAIT_MS);
	return 0;
}

void harness_kill_all(struct harness *h, int sig)
{
	stop_members(h, (1u << h->n) - 1, sig, KILL_TERM_WAIT_MS);
}

static int start_timeout(const struct harness *h)
{
	return h->o.start_timeout_ms > 0 ? h->o.start_timeout_ms
	                                 : DEFAULT_START_TIMEOUT_MS;
}

/* Start every member in @mask, wait for all; 0 or the first error. */
static int start_members(struct harness *h, uint32_t mask)
{
	uint64_t deadline;
	int rv = 0;

	pthread_mutex_lock(&h->mu);
	for (int i = 0; i < h->n && rv == 0; i++) {
		if (!(mask & (1u << i)))
			continue;
		reap_locked(h, i);
		if (h->m[i].pid != 0)
			rv = -EBUSY;
		else
			rv = spawn_member_locked(h, i);
	}
	pthread_mutex_unlock(&h->mu);
	if (rv != 0)
		return rv;
	deadline = harness_now_ms() + (uint64_t)start_timeout(h);
	for (int i = 0; i < h->n; i++) {
		int r;

		if (!(mask & (1u << i)))
			continue;
		r = wait_ready(h, i, deadline);
		if (r == 0)
			r = reapply_faults(h, i);
		if (r != 0 && rv == 0)
			rv = r;
	}
	return rv;
}

int harness_restart(struct harness *h, int i)
{
	int rv;

	if (i < 0 || i >= h->n)
		return -EINVAL;
	for (int attempt = 0;; attempt++) {
		rv = start_members(h, 1u << i);
		/* Our port can only be taken by a stranger; it is worth
		 * waiting a little for it to go. */
		if (rv != -EIO || attempt == 10 || harness_running(h, i) ||
		    !log_says_addr_in_use(h, i))
			break;
		pthread_mutex_lock(&h->mu);
		h->m[i].unexpected = false;
		pthread_mutex_unlock(&h->mu);
		harness_sleep_ms(200);
	}
	if (rv == -EIO)
		harness_print_logs(h, i, 20);
	return rv;
}

int harness_restart_all(struct harness *h)
{
	uint32_t mask = 0;
	int rv;

	for (int i = 0; i < h->n; i++)
		if (!harness_running(h, i))
			mask |= 1u << i;
	rv = start_members(h, mask);
	if (rv == -EIO)
		harness_print_logs(h, -1, 20);
	return rv;
}

int harness_unexpected_exits(struct harness *h)
{
	int count = 0;

	for (int i = 0; i < h->n; i++) {
		struct member_proc *m = &h->m[i];
		bool report;
		int st;

		pthread_mutex_lock(&h->mu);
		reap_locked(h, i);
		report = m->unexpected && !m->reported;
		if (m->unexpected)
			count++;
		m->reported = m->reported || m->unexpected;
		st = m->status;
		pthread_mutex_unlock(&h->mu);
		if (!report)
			continue;
		if (WIFSIGNALED(st))
			fprintf(stderr,
			    "harness[%s]: member %d died of signal "
			    "%d%s\n",
			    h->name, i, WTERMSIG(st),
			    m->kill_sig ? " while being stopped" : "");
		else
			fprintf(stderr,
			    "harness[%s]: member %d exited with "
			    "status %d%s\n",
			    h->name, i, WEXITSTATUS(st),
			    m->kill_sig ? " while being stopped" : "");
		harness_print_logs(h, i, 20);
	}
	return count;
}

/* ------------------------------------------------------------------ */
/* Per-thread clients                                                   */
/* ------------------------------------------------------------------ */

static void clerk_release(void *p)
{
	struct tclerk *ck = p;
	struct harness *h = ck->h;

	pthread_mutex_lock(&h->mu);
	ck->next_free = h->free_clerks;
	h->free_clerks = ck;
	pthread_mutex_unlock(&h->mu);
}

static struct tclerk *clerk_get(struct harness *h)
{
	struct tclerk *ck = pthread_getspecific(h->key);

	if (ck != NULL && ck->gen == h->gen)
		return ck;
	if (ck == NULL) {
		pthread_mutex_lock(&h->mu);
		ck = h->free_clerks;
		if (ck != NULL) {
			h->free_clerks = ck->next_free;
		} else if ((ck = calloc(1, sizeof(*ck))) != NULL) {
			ck->h = h;
			ck->next_all = h->clerks;
			h->clerks = ck;
		}
		pthread_mutex_unlock(&h->mu);
		if (ck == NULL)
			return NULL;
		pthread_setspecific(h->key, ck);
	}
	if (ck->cl == NULL || ck->gen != h->gen) {
		client_free(ck->cl);
		ck->cl = NULL;
		if (client_new(&h->cl, h->zctx, &ck->cl) != 0)
			return NULL;
		ck->gen = h->gen;
	}
	return ck;
}

/* ------------------------------------------------------------------ */
/* Client calls                                                         */
/* ------------------------------------------------------------------ */

int harness_call(struct harness *h, int i, uint8_t op, const void *payload,
    size_t len, int timeout_ms, struct client_reply *rep)
{
	struct tclerk *ck;

	memset(rep, 0, sizeof(*rep));
	if (i < 0 || i >= h->n || len > UINT32_MAX)
		return -EINVAL;
	if (!harness_running(h, i))
		return HARNESS_ENOTRUNNING;
	ck = clerk_get(h);
	if (ck == NULL)
		return -ENOMEM;
	return client_call(ck->cl, (uint32_t)i, op, payload, (uint32_t)len,
	    timeout_ms, rep);
}

static int call_status(struct harness *h, int i, uint8_t op,
    const void *payload, size_t len, int timeout_ms, struct client_reply *rep)
{
	struct client_reply r;
	int rv = harness_call(h, i, op, payload, len, timeout_ms, &r);

	if (rv == 0)
		rv = r.status;
	if (rep != NULL)
		*rep = r;
	else
		free(r.data);
	return rv;
}

int harness_submit(struct harness *h, int i, const void *cmd, size_t len,
    int timeout_ms, struct client_reply *rep)
{
	return call_status(h, i, CPROTO_SUBMIT, cmd, len, timeout_ms, rep);
}

int harness_query(struct harness *h, int i, bool linearizable, const void *q,
    size_t len, int timeout_ms, struct client_reply *rep)
{
	return call_status(h, i, linearizable ? CPROTO_READ : CPROTO_READ_STALE,
	    q, len, timeout_ms, rep);
}

int harness_status(struct harness *h, int i, struct cproto_status *st)
{
	struct client_reply r;
	int rv = call_status(h, i, CPROTO_STATUS, NULL, 0, 1000, &r);

	if (rv == 0)
		rv = cproto_decode_status(r.data, r.len, st);
	free(r.data);
	return rv;
}

int harness_leader(struct harness *h, int timeout_ms)
{
	uint64_t deadline = harness_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		struct cproto_status st[HARNESS_MAX];
		bool ok[HARNESS_MAX];
		uint64_t top = 0;
		int leader = -1, leaders = 0;

		for (int i = 0; i < h->n; i++) {
			ok[i] = harness_status(h, i, &st[i]) == 0;
			if (ok[i] && st[i].term > top)
				top = st[i].term;
		}
		for (int i = 0; i < h->n; i++) {
			if (!ok[i] || st[i].role != RAFT_LEADER)
				continue;
			for (int j = 0; j < i; j++) {
				if (ok[j] && st[j].role == RAFT_LEADER &&
				    st[j].term == st[i].term) {
					fprintf(stderr,
					    "harness[%s]: members "
					    "%d and %d both lead term %" PRIu64
					    "\n",
					    h->name, j, i, st[i].term);
					return -2;
				}
			}
			if (st[i].term == top) {
				leader = i;
				leaders++;
			}
		}
		if (leaders == 1) {
			atomic_store(&h->leader_guess, leader);
			return leader;
		}
		if (harness_now_ms() >= deadline)
			return -1;
		harness_sleep_ms(20);
	}
}

int harness_wait_converged(struct harness *h, int timeout_ms)
{
	uint64_t deadline = harness_now_ms() + (uint64_t)timeout_ms;
	struct cproto_status st[HARNESS_MAX];
	int errs[HARNESS_MAX];

	for (;;) {
		bool same = true, any = false;
		uint64_t last = 0;

		for (int i = 0; i < h->n; i++) {
			errs[i] = harness_running(h, i)
			    ? harness_status(h, i, &st[i])
			    : HARNESS_ENOTRUNNING;
			if (errs[i] == HARNESS_ENOTRUNNING)
				continue;
			if (errs[i] != 0) {
				same = false;
				continue;
			}
			if (!any)
				last = st[i].last_index;
			any = true;
			if (st[i].last_index != last || st[i].commit != last ||
			    st[i].applied != last)
				same = false;
		}
		if (same)
			return 0;
		if (harness_now_ms() >= deadline)
			break;
		harness_sleep_ms(20);
	}
	fprintf(stderr, "harness[%s]: members did not converge:\n", h->name);
	for (int i = 0; i < h->n; i++) {
		if (errs[i] != 0)
			fprintf(stderr, "  [%d] error %d\n", i, errs[i]);
		else
			fprintf(stderr,
			    "  [%d] role %u term %" PRIu64 " last %" PRIu64
			    " commit %" PRIu64 " applied %" PRIu64 "\n",
			    i, st[i].role, st[i].term, st[i].last_index,
			    st[i].commit, st[i].applied);
	}
	return HARNESS_EDEADLINE;
}

/* Outcomes that prove the command was not (and will never be) applied. */
static bool definitely_not_applied(int rv)
{
	switch (rv) {
	case RAFT_ENOTLEADER: /* refused at proposal */
	case RAFT_EBUSY:
	case RAFT_ETRANSFER:
	case NODE_ELOST: /* replaced by another leader's entry */
	case NODE_ENOLEADER:
	case CLIENT_EUNREACHABLE: /* never sent (ZMQ_IMMEDIATE) */
	case HARNESS_ENOTRUNNING:
	case CPROTO_EMALFORMED:
	case CPROTO_EFOREIGN:
	case CPROTO_EBADOP:
	case -EINVAL:
		return true;
	}
	return false;
}

static int next_in_mask(const struct harness *h, uint32_t mask, int i)
{
	for (int k = 1; k <= h->n; k++) {
		int j = (i + k) % h->n;

		if (mask & (1u << j))
			return j;
	}
	return i;
}

int harness_submit_any(struct harness *h, uint32_t mask, const void *cmd,
    size_t len, int deadline_ms, struct client_reply *rep,
    struct harness_submit_info *info)
{
	uint64_t deadline = harness_now_ms() + (uint64_t)deadline_ms;
	struct harness_submit_info dummy;
	int attempt_ms = h->o.attempt_timeout_ms > 0
	    ? h->o.attempt_timeout_ms
	    : DEFAULT_ATTEMPT_TIMEOUT_MS;
	int cur = atomic_load(&h->leader_guess), since_sleep = 0;

	if (info == NULL)
		info = &dummy;
	memset(info, 0, sizeof(*info));
	info->member = -1;
	if (rep != NULL)
		memset(rep, 0, sizeof(*rep));
	if (mask == 0)
		mask = (1u << h->n) - 1;
	if (cur < 0 || !(mask & (1u << cur)))
		cur = next_in_mask(h, mask, h->n - 1);
	for (;;) {
		uint64_t now = harness_now_ms();
		struct client_reply r;
		int hint, rv, tmo;

		if (now >= deadline)
			return HARNESS_EDEADLINE;
		if (harness_running(h, cur)) {
			tmo = deadline - now < (uint64_t)attempt_ms
			    ? (int)(deadline - now)
			    : attempt_ms;
			rv = harness_submit(h, cur, cmd, len, tmo, &r);
			info->attempts++;
			if (rv == 0) {
				atomic_store(&h->leader_guess, cur);
				info->member = cur;
				if (rep != NULL)
					*rep = r;
				else
					free(r.data);
				return 0;
			}
			free(r.data);
			if (!definitely_not_applied(rv))
				info->maybe++;
			hint = harness_index_of(h, r.leader);
			if (hint >= 0 && hint != cur && (mask & (1u << hint)))
				cur = hint;
			else
				cur = next_in_mask(h, mask, cur);
		} else {
			cur = next_in_mask(h, mask, cur);
		}
		if (++since_sleep >= h->n) {
			since_sleep = 0;
			harness_sleep_ms(50);
		}
	}
}

/* ------------------------------------------------------------------ */
/* Faults                                                               */
/* ------------------------------------------------------------------ */

static int apply_fault(struct harness *h, int i, int j)
{
	struct cproto_fault cf;
	uint8_t buf[CPROTO_FAULT_LEN];
	int rv;

	pthread_mutex_lock(&h->mu);
	cf.peer = harness_id(h, j);
	cf.drop_pct = h->f[i][j].drop_pct;
	cf.delay_ms = h->f[i][j].delay_ms;
	cf.blocked = h->f[i][j].blocked;
	pthread_mutex_unlock(&h->mu);
	cproto_encode_fault(&cf, buf);
	/*
	 * A fault call sets the link's state outright, so repeating it is
	 * safe.  A member whose loop stalled under load can miss the 3 s
	 * limit once; each failed try is logged, so a member that never
	 * answers still shows.
	 */
	for (int try = 1;; try++) {
		rv = call_status(h, i, CPROTO_FAULT, buf, sizeof(buf),
		    FAULT_TIMEOUT_MS, NULL);
		if (rv == HARNESS_ENOTRUNNING)
			return 0; /* applied when it restarts */
		if (rv == 0)
			return 0;
		fprintf(stderr,
		    "harness[%s]: fault injection %d->%d, try %d of %d: %d "
		    "(%s)\n",
		    h->name, i, j, try, FAULT_TRIES, rv, rk_strerror(rv));
		if (rv != CLIENT_ETIMEDOUT || try == FAULT_TRIES)
			return rv;
	}
}

/* Set link i->j to @nf and tell member i if it changed. */
static int set_link(struct harness *h, int i, int j, struct link_fault nf)
{
	bool changed;

	if (i < 0 || j < 0 || i >= h->n || j >= h->n)
		return -EINVAL;
	if (i == j)
		return 0;
	pthread_mutex_lock(&h->mu);
	changed = h->f[i][j].blocked != nf.blocked ||
	    h->f[i][j].drop_pct != nf.drop_pct ||
	    h->f[i][j].delay_ms != nf.delay_ms;
	h->f[i][j] = nf;
	pthread_mutex_unlock(&h->mu);
	return changed ? apply_fault(h, i, j) : 0;
}

static struct link_fault get_link(struct harness *h, int i, int j)
{
	struct link_fault f;

	pthread_mutex_lock(&h->mu);
	f = h->f[i][j];
	pthread_mutex_unlock(&h->mu);
	return f;
}

static int set_blocked(struct harness *h, int i, int j, bool blocked)
{
	struct link_fault f;

	if (i < 0 || j < 0 || i >= h->n || j >= h->n)
		return -EINVAL;
	f = get_link(h, i, j);
	f.blocked = blocked;
	return set_link(h, i, j, f);
}

static int first_error(int a, int b)
{
	return a != 0 ? a : b;
}

int harness_block(struct harness *h, int i, int j, bool blocked)
{
	return set_blocked(h, i, j, blocked);
}

int harness_link(struct harness *h, int i, int j, bool connected)
{
	int rv = set_blocked(h, i, j, !connected);

	return first_error(rv, set_blocked(h, j, i, !connected));
}

int harness_isolate(struct harness *h, int i, bool isolated)
{
	int rv = 0;

	for (int j = 0; j < h->n; j++)
		if (j != i)
			rv = first_error(rv, harness_link(h, i, j, !isolated));
	return rv;
}

int harness_partition(struct harness *h, const int *group)
{
	int rv = 0;

	for (int i = 0; i < h->n; i++) {
		for (int j = 0; j < h->n; j++) {
			bool cut = group[i] != group[j] &&
			    group[i] != HARNESS_BRIDGE &&
			    group[j] != HARNESS_BRIDGE;

			if (i != j)
				rv = first_error(rv, set_blocked(h, i, j, cut));
		}
	}
	return rv;
}

int harness_deafen(struct harness *h, int i, bool deaf)
{
	int rv = 0;

	for (int j = 0; j < h->n; j++)
		if (j != i)
			rv = first_error(rv, set_blocked(h, j, i, deaf));
	return rv;
}

int harness_mute(struct harness *h, int i, bool mute)
{
	int rv = 0;

	for (int j = 0; j < h->n; j++)
		if (j != i)
			rv = first_error(rv, set_blocked(h, i, j, mute));
	return rv;
}

int harness_heal(struct harness *h)
{
	int rv = 0;

	for (int i = 0; i < h->n; i++)
		for (int j = 0; j < h->n; j++)
			if (i != j)
				rv = first_error(rv,
				    set_blocked(h, i, j, false));
	return rv;
}

static int set_all(struct harness *h, bool drop, unsigned v)
{
	int rv = 0;

	if (drop && v > 100)
		return -EINVAL;
	for (int i = 0; i < h->n; i++) {
		for (int j = 0; j < h->n; j++) {
			struct link_fault f;

			if (i == j)
				continue;
			f = get_link(h, i, j);
			if (drop)
				f.drop_pct = v;
			else
				f.delay_ms = v;
			rv = first_error(rv, set_link(h, i, j, f));
		}
	}
	return rv;
}

int harness_set_drop(struct harness *h, unsigned pct)
{
	return set_all(h, true, pct);
}

int harness_set_delay(struct harness *h, unsigned ms)
{
	return set_all(h, false, ms);
}

/* ------------------------------------------------------------------ */
/* Durable logs                                                         */
/* ------------------------------------------------------------------ */

static void quiet_log(void *arg, int level, const char *msg)
{
	const struct harness *h = arg;

	if (level >= STORAGE_LOG_WARN)
		fprintf(stderr, "harness[%s]: storage: %s\n", h->name, msg);
}

void harness_log_free(struct harness_log *log)
{
	if (log == NULL)
		return;
	for (uint64_t k = 0; k < log->n; k++)
		free(log->entries[k].data);
	free(log->entries);
	memset(log, 0, sizeof(*log));
}

int harness_read_log(struct harness *h, int i, struct harness_log *log)
{
	struct storage_options so;
	struct storage *s;
	struct raft_boot boot;
	char err[512];
	int rv;

	memset(log, 0, sizeof(*log));
	if (harness_running(h, i))
		return -EBUSY;
	storage_options_defaults(&so);
	so.log = quiet_log;
	so.log_arg = h;
	rv = storage_open(h->m[i].data_dir, h->cl.id, harness_id(h, i), &so, &s,
	    &boot, err, sizeof(err));
	if (rv != 0) {
		fprintf(stderr, "harness[%s]: member %d: %s\n", h->name, i,
		    err);
		return rv;
	}
	if (boot.has_snapshot) {
		log->snap_index = boot.snap.index;
		log->snap_term = boot.snap.term;
	}
	log->entries = calloc(boot.n_entries ? boot.n_entries : 1,
	    sizeof(*log->entries));
	if (log->entries == NULL) {
		storage_close(s);
		return -ENOMEM;
	}
	for (uint64_t k = 0; k < boot.n_entries; k++) {
		struct raft_entry *e = &log->entries[k];

		*e = boot.entries[k];
		e->data = NULL;
		if (e->len) {
			e->data = malloc(e->len);
			if (e->data == NULL) {
				storage_close(s);
				harness_log_free(log);
				return -ENOMEM;
			}
			memcpy(e->data, boot.entries[k].data, e->len);
		}
		log->n++;
	}
	log->first_index = log->n ? log->entries[0].index : log->snap_index + 1;
	storage_close(s);
	return 0;
}

static const struct raft_entry *log_at(const struct harness_log *l,
    raft_index idx)
{
	if (idx < l->first_index || idx >= l->first_index + l->n)
		return NULL;
	return &l->entries[idx - l->first_index];
}

int harness_check_logs(struct harness *h)
{
	struct harness_log logs[HARNESS_MAX];
	int rv = 0;

	memset(logs, 0, sizeof(logs));
	for (int i = 0; i < h->n && rv == 0; i++)
		rv = harness_read_log(h, i, &logs[i]);
	for (int i = 1; i < h->n && rv == 0; i++) {
		const struct harness_log *a = &logs[0], *b = &logs[i];
		raft_index a_last = a->first_index + a->n - 1;
		raft_index b_last = b->first_index + b->n - 1;

		if (a_last != b_last) {
			fprintf(stderr,
			    "harness[%s]: log of member 0 ends at %" PRIu64
			    ", of member %d at %" PRIu64 "\n",
			    h->name, a_last, i, b_last);
			rv = -1;
		}
		for (raft_index x = 1; x <= a_last && rv == 0; x++) {
			const struct raft_entry *ea = log_at(a, x);
			const struct raft_entry *eb = log_at(b, x);

			if (ea == NULL || eb == NULL)
				continue;
			if (ea->term != eb->term || ea->type != eb->type ||
			    ea->len != eb->len ||
			    (ea->len && memcmp(ea->data, eb->data, ea->len))) {
				fprintf(stderr,
				    "harness[%s]: logs of members "
				    "0 and %d differ at index %" PRIu64
				    " (terms %" PRIu64 "/%" PRIu64 ")\n",
				    h->name, i, x, ea->term, eb->term);
				rv = -1;
			}
		}
	}
	for (int i = 0; i < h->n; i++)
		harness_log_free(&logs[i]);
	return rv;
}

/* ------------------------------------------------------------------ */
/* The counter application                                              */
/* ------------------------------------------------------------------ */

static int decode_u64(const struct client_reply *r, uint64_t *v)
{
	if (r->len != 8)
		return CPROTO_EMALFORMED;
	memcpy(v, r->data, 8); /* counter_member.c: host order (LE) */
	return 0;
}

int harness_counter_get(struct harness *h, int i, uint64_t *v)
{
	struct client_reply r;
	int rv = harness_query(h, i, false, NULL, 0, 2000, &r);

	if (rv == 0)
		rv = decode_u64(&r, v);
	free(r.data);
	return rv;
}

int harness_counter_inc(struct harness *h, uint32_t mask, int deadline_ms,
    uint64_t *v, struct harness_submit_info *info)
{
	struct client_reply r;
	int rv = harness_submit_any(h, mask, "I", 1, deadline_ms, &r, info);

	if (rv == 0)
		rv = decode_u64(&r, v);
	free(r.data);
	return rv;
}

int harness_counter_wait(struct harness *h, uint64_t v, int n, int timeout_ms)
{
	uint64_t deadline = harness_now_ms() + (uint64_t)timeout_ms;
	uint64_t vals[HARNESS_MAX];
	int errs[HARNESS_MAX];
	unsigned pause = 10;
	int have;

	for (;;) {
		have = 0;
		for (int i = 0; i < h->n; i++) {
			errs[i] = harness_counter_get(h, i, &vals[i]);
			if (errs[i] == 0 && vals[i] == v)
				have++;
		}
		if (have >= n || harness_now_ms() >= deadline)
			break;
		harness_sleep_ms(pause);
		if (pause < 1280)
			pause *= 2;
	}
	if (have < n) {
		fprintf(stderr,
		    "harness[%s]: wanted %d members at counter %" PRIu64
		    ", have %d:",
		    h->name, n, v, have);
		for (int i = 0; i < h->n; i++) {
			if (errs[i] == 0)
				fprintf(stderr, " [%d]=%" PRIu64, i, vals[i]);
			else
				fprintf(stderr, " [%d]=err %d", i, errs[i]);
		}
		fprintf(stderr, "\n");
	}
	return have;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                           */
/* ------------------------------------------------------------------ */

static void clean_attempt(struct harness *h)
{
	char path[PATH_MAX];

	for (int i = 0; i < h->n; i++) {
		pthread_mutex_lock(&h->mu);
		h->m[i].unexpected = false;
		h->m[i].reported = false;
		pthread_mutex_unlock(&h->mu);
		snprintf(path, sizeof(path), "%s", h->m[i].data_dir);
		remove_tree(path);
	}
}

static void set_name(struct harness *h, const char *name)
{
	size_t k = 0;

	for (const char *p = name ? name : "test"; *p && k < 40; p++)
		h->name[k++] = (*p >= 'a' && *p <= 'z') ||
		        (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		        *p == '_' || *p == '-'
		    ? *p
		    : '_';
	h->name[k] = '\0';
}

struct harness *harness_new(int n, const struct harness_options *o)
{
	struct harness *h;
	int rv = -EINVAL, zmax = 16384;

	if (n < 1 || n + (o ? o->spares : 0) > HARNESS_MAX ||
	    (o && o->spares < 0))
		return NULL;
	pthread_once(&reg_once, reg_install);
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	if (o != NULL)
		h->o = *o;
	if (getenv("RAFTKV_INSECURE") &&
	    strcmp(getenv("RAFTKV_INSECURE"), "0") != 0)
		h->o.insecure = true; /* the pre-issue-9 default, on demand */
	set_name(h, h->o.name);
	if (h->o.start_timeout_ms <= 0)
		h->o.start_timeout_ms = DEFAULT_START_TIMEOUT_MS;
	h->n = n + h->o.spares;
	h->n_boot = n;
	h->creator = pthread_self();
	atomic_init(&h->leader_guess, -1);
	pthread_mutex_init(&h->mu, NULL);
	if (pthread_key_create(&h->key, clerk_release) != 0) {
		pthread_mutex_destroy(&h->mu);
		free(h);
		return NULL;
	}
	h->zctx = zmq_ctx_new();
	if (h->zctx != NULL)
		zmq_ctx_set(h->zctx, ZMQ_MAX_SOCKETS, zmax);
	reg_add_harness(h);
	if (h->zctx == NULL || resolve_member_path(h) != 0 || make_dir(h) != 0)
		goto fail;
	reg_add_dir(h);
	for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
		bool in_use = false;

		rv = write_cluster_file(h);
		if (rv != 0)
			goto fail;
		rv = start_members(h, (1u << n) - 1);
		if (rv == 0)
			break;
		for (int i = 0; i < n; i++)
			if (!harness_running(h, i) &&
			    log_says_addr_in_use(h, i))
				in_use = true;
		if (!in_use)
			goto fail;
		fprintf(stderr,
		    "harness[%s]: a port was taken; retrying on "
		    "other ports\n",
		    h->name);
		harness_kill_all(h, SIGKILL);
		clean_attempt(h);
	}
	if (rv != 0)
		goto fail;
	return h;
fail:
	fprintf(stderr, "harness[%s]: cannot start a %d-member cluster: %s\n",
	    h->name, n,
	    rv == -EIO ? "a member exited or did not answer"
	               : strerror(rv < 0 ? -rv : EINVAL));
	harness_free(h);
	return NULL;
}

void harness_free(struct harness *h)
{
	struct tclerk *ck, *next;

	if (h == NULL)
		return;
	if (!h->passed && h->dir[0]) {
		fprintf(stderr,
		    "harness[%s]: not marked passed; member "
		    "logs follow\n",
		    h->name);
		harness_print_logs(h, -1, 40);
	}
	stop_members(h, (1u << h->n) - 1, SIGTERM, TERM_GRACE_MS);
	pthread_setspecific(h->key, NULL);
	for (ck = h->clerks; ck; ck = next) {
		next = ck->next_all;
		client_free(ck->cl);
		free(ck);
	}
	pthread_key_delete(h->key);
	if (h->zctx)
		zmq_ctx_term(h->zctx);
	reg_del_harness(h);
	if (h->dir[0]) {
		if (keep_dirs())
			fprintf(stderr, "harness[%s]: kept %s\n", h->name,
			    h->dir);
		else
			remove_tree(h->dir);
	}
	pthread_mutex_destroy(&h->mu);
	free(h);
}

/* ------------------------------------------------------------------ */
/* Membership                                                           */
/* ------------------------------------------------------------------ */

pid_t harness_sh(struct harness *h, const char *script)
{
	const char *bd = getenv("RAFTKV_BUILDDIR");
	char path[8192], cl[4096];
	pid_t pid;

	snprintf(cl, sizeof(cl), "%s/cluster.conf", harness_dir(h));
	snprintf(path, sizeof(path), "%s/kv:%s", bd ? bd : ".",
	    getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	pid = fork();
	if (pid == 0) {
		setenv("RAFTKV_CLUSTER", cl, 1);
		setenv("PATH", path, 1);
		setenv("D", harness_dir(h), 1);
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	return pid > 0 ? pid : -1;
}

int harness_wait_status(pid_t pid)
{
	int ws;

	if (pid <= 0)
		return -1;
	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

void harness_expect_removed_exit(struct harness *h, int i)
{
	pthread_mutex_lock(&h->mu);
	if (h->m[i].pid != 0) {
		h->m[i].killing = true; /* exit 0 on SIGTERM to itself */
		h->m[i].kill_sig = SIGTERM;
	}
	pthread_mutex_unlock(&h->mu);
}

int harness_wait_removed_exit(struct harness *h, int i, int timeout_ms)
{
	uint64_t deadline = harness_now_ms() + (uint64_t)timeout_ms;
	bool running;

	harness_expect_removed_exit(h, i);
	while ((running = harness_running(h, i)) && harness_now_ms() < deadline)
		harness_sleep_ms(20);
	if (!running)
		return 0;
	pthread_mutex_lock(&h->mu);
	h->m[i].killing = false; /* it was meant to stop by itself */
	pthread_mutex_unlock(&h->mu);
	return HARNESS_EDEADLINE;
}

int harness_wipe_data(struct harness *h, int i)
{
	char path[PATH_MAX];

	if (i < 0 || i >= h->n || harness_running(h, i))
		return -EBUSY;
	snprintf(path, sizeof(path), "%s", h->m[i].data_dir);
	remove_tree(path);
	return 0;
}

bool harness_bootstrap(const struct harness *h, int i)
{
	return i >= 0 && i < h->n_boot;
}

int harness_join(struct harness *h, int i)
{
	if (i < h->n_boot || i >= h->n)
		return -EINVAL;
	return harness_restart(h, i);
}

int harness_member_change(struct harness *h, int action, int i, int deadline_ms)
{
	struct cproto_member_req r = { .action = (uint8_t)action,
		.id = (uint64_t)i + 1 };
	uint64_t deadline = harness_now_ms() + (uint64_t)deadline_ms;
	uint8_t *buf;
	uint32_t len;
	int idx = -1, rv;
	bool maybe = false;

	if (i < 0 || i >= h->n)
		return -EINVAL;
	if (action == CPROTO_MEMBER_ADD) {
		r.entry.id = r.id;
		snprintf(r.entry.peer, sizeof(r.entry.peer), "%s",
		    h->cl.members[i].peer);
		snprintf(r.entry.client, sizeof(r.entry.client), "%s",
		    h->cl.members[i].client);
		snprintf(r.entry.key, sizeof(r.entry.key), "%s",
		    h->cl.members[i].key);
	}
	rv = cproto_encode_member_req(&r, &buf, &len);
	if (rv != 0)
		return rv;
	if (action == CPROTO_MEMBER_REMOVE) {
		/* A removed member exits 0 by itself: not unexpected. */
		pthread_mutex_lock(&h->mu);
		if (h->m[i].pid != 0) {
			h->m[i].killing = true;
			h->m[i].kill_sig = SIGTERM;
		}
		pthread_mutex_unlock(&h->mu);
	}
	rv = HARNESS_EDEADLINE;
	while (harness_now_ms() < deadline) {
		struct client_reply rep = { 0 };
		int st;

		if (idx < 0 || !harness_running(h, idx))
			idx = harness_leader(h, 1000);
		if (idx < 0)
			continue;
		st = harness_call(h, idx, CPROTO_MEMBER, buf, len, 5000, &rep);
		free(rep.data);
		if (st == 0)
			st = rep.status;
		else
			rep.leader = 0;
		if (st == CLIENT_ETIMEDOUT || st == NODE_ETIMEDOUT ||
		    st == NODE_ELOST)
			maybe = true; /* retried: it may have been made */
		if (maybe &&
		    (action == CPROTO_MEMBER_REMOVE ? st == -ENOENT
		                                    : st == -EEXIST)) {
			rv = 0; /* an earlier attempt made it */
			break;
		}
		if (st == RAFT_ENOTLEADER || st == NODE_ENOLEADER ||
		    st == CLIENT_EUNREACHABLE || st == CLIENT_ETIMEDOUT ||
		    st == NODE_ETIMEDOUT || st == NODE_ELOST ||
		    st == HARNESS_ENOTRUNNING) {
			idx = rep.leader ? harness_index_of(h, rep.leader) : -1;
			harness_sleep_ms(50);
			continue;
		}
		if (st == RAFT_ENOTCAUGHTUP || st == RAFT_ECONFPENDING) {
			harness_sleep_ms(100);
			continue;
		}
		rv = st;
		break;
	}
	free(buf);
	return rv;
}

int harness_rekey(struct harness *h, int i)
{
	char pub[KEYS_Z85_LEN + 1], sec[KEYS_Z85_LEN + 1], path[PATH_MAX],
	    err[512];
	int rv;

	if (i < 0 || i >= h->n || harness_running(h, i))
		return -EBUSY;
	rv = keys_generate(pub, sec);
	if (rv != 0)
		return rv;
	snprintf(path, sizeof(path), "%s/member%d.key", h->dir, i + 1);
	(void)unlink(path);
	rv = keys_write_secret(path, sec, err, sizeof(err));
	if (rv != 0) {
		fprintf(stderr, "rekey: %s\n", err);
		return rv;
	}
	pthread_mutex_lock(&h->mu);
	snprintf(h->cl.members[i].key, sizeof(h->cl.members[i].key), "%s", pub);
	h->gen++;
	pthread_mutex_unlock(&h->mu);
	return 0;
}
