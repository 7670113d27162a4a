/*
 * fsharness.c - the three-mount cluster of the filesystem tests (see
 * fsharness.h).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kv/clerk.h"
#include "raft/client/client.h"
#include "raft/client/cproto.h"
#include "raft/client/keys.h"
#include "tests/fs/fsharness.h"

char dir[PATH_MAX];
char conf[PATH_MAX + 32];
char mnt[N][PATH_MAX + 32];
char data[N][PATH_MAX + 32];
pid_t pids[N];
const char *prog;
struct cluster cl;
pid_t main_pid;
bool fsh_failed;

/* Lines fsh_setup() appends to the cluster file. */
static const char *conf_extra = "";

void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000l };

	nanosleep(&ts, NULL);
}

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int run(const char *const argv[])
{
	pid_t p = fork();
	int st;

	if (p == 0) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (p < 0 || waitpid(p, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool is_mounted(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[8192], m[4096], fstype[256];
	bool found = false;

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *dash = strstr(line, " - ");

		if (dash && sscanf(line, "%*s %*s %*s %*s %4095s", m) == 1 &&
		    sscanf(dash + 3, "%255s", fstype) == 1)
			found = strcmp(m, path) == 0 &&
			    strcmp(fstype, "fuse.raftkv") == 0;
	}
	fclose(f);
	return found;
}

void unmount(int i)
{
	const char *u[] = { "fusermount3", "-u", mnt[i], NULL };
	const char *z[] = { "fusermount3", "-u", "-z", mnt[i], NULL };

	if (!is_mounted(mnt[i]))
		return;
	if (run(u) != 0)
		run(z);
}

/* Stop mount @i: unmount, then wait for the process (TERM after 20 s, KILL
 * after 30 s).  Returns its wait status (-1 if it was not running). */
int stop(int i)
{
	int st = -1;

	if (pids[i] > 0)
		kill(pids[i], SIGCONT); /* a test that failed while it was
		                           stopped: let it see the unmount */
	unmount(i);
	if (pids[i] <= 0)
		return -1;
	/* A clean stop can take a while on a loaded machine (lock worker
	 * and keeper finishing their calls, the member's last writes): the
	 * test checks that it ends cleanly, not how fast.  SIGTERM after
	 * 20 s, SIGKILL after 30 s. */
	for (int t = 0; t < 600; t++) {
		if (waitpid(pids[i], &st, WNOHANG) == pids[i]) {
			if (t >= 100)
				fprintf(stderr,
				    "fsharness: mount %d took %d ms "
				    "to stop after its unmount\n",
				    i + 1, t * 50);
			pids[i] = 0;
			return st;
		}
		if (t == 400) {
			fprintf(stderr,
			    "fsharness: mount %d still running "
			    "20 s after its unmount: SIGTERM\n",
			    i + 1);
			kill(pids[i], SIGTERM);
		}
		sleep_ms(50);
	}
	kill(pids[i], SIGKILL);
	waitpid(pids[i], &st, 0);
	pids[i] = 0;
	return st;
}

/* The last @lines lines of mount @i's log, to stderr.  Read here, not by
 * tail(1): a child inherits this process's descriptors on the mounts, and
 * its exit would wait for the flush of a stopped mount forever. */
static void print_log_tail(int i, int lines)
{
	char path[PATH_MAX + 64], *buf;
	long size, from;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/mount%d.log", dir, i + 1);
	fprintf(stderr, "---- end of %s ----\n", path);
	f = fopen(path, "r");
	if (f == NULL)
		return;
	buf = malloc(65536);
	if (buf != NULL && fseek(f, 0, SEEK_END) == 0 &&
	    (size = ftell(f)) >= 0) {
		from = size > 65535 ? size - 65535 : 0;
		fseek(f, from, SEEK_SET);
		n = fread(buf, 1, 65535, f);
		buf[n] = '\0';
		for (char *q = buf + n; q > buf; q--)
			if (q[-1] == '\n' && q != buf + n && --lines <= 0) {
				fputs(q, stderr);
				goto out;
			}
		fputs(buf, stderr);
	}
out:
	free(buf);
	fclose(f);
}

/* SIGCONT to every mount: a test that fails while it keeps one stopped
 * must not leave anything (its own exit included: closing a descriptor
 * on a mount waits for the mount's flush) waiting on it. */
void fsh_resume_mounts(void)
{
	for (int i = 0; i < N; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGCONT);
}

void fsh_stop_all_clean(void)
{
	for (int i = 0; i < N; i++) {
		int st = stop(i);

		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "mount %d ended with status %#x after its unmount (see "
		    "%s/mount%d.log)",
		    i + 1, st, dir, i + 1);
	}
	printf("ok clean stops\n");
}

void cleanup(void)
{
	const char *rm[] = { "rm", "-rf", dir, NULL };

	if (getpid() != main_pid)
		return;
	fsh_resume_mounts();
	if (fsh_failed && dir[0] != '\0')
		for (int i = 0; i < N; i++)
			print_log_tail(i, 80);
	for (int i = 0; i < N; i++)
		stop(i);
	if (dir[0] != '\0' && getenv("RAFTKV_KEEP") == NULL)
		run(rm);
}

void fsh_dump_stack(pid_t pid)
{
	char path[64], pidarg[24];
	const char *gdb[] = { "timeout", "-s", "KILL", "30", "gdb", "-p",
		pidarg, "-batch", "-nx", "-ex", "thread apply all bt", NULL };
	FILE *f;
	pid_t p;
	int c;

	snprintf(path, sizeof(path), "/proc/%d/stack", (int)pid);
	fprintf(stderr, "---- kernel stack of %d ----\n", (int)pid);
	f = fopen(path, "r");
	if (f != NULL) {
		while ((c = fgetc(f)) != EOF)
			fputc(c, stderr);
		fclose(f);
	}
	snprintf(pidarg, sizeof(pidarg), "%d", (int)pid);
	fprintf(stderr, "---- threads of %d (gdb) ----\n", (int)pid);
	fflush(stderr);
	p = fork();
	if (p == 0) {
		int fd = open("/dev/null", O_RDONLY);

		if (fd >= 0)
			dup2(fd, 0);
		dup2(2, 1);
		execvp(gdb[0], (char *const *)gdb);
		_exit(127);
	}
	if (p > 0)
		waitpid(p, NULL, 0);
}

void fsh_dump_mounts(void)
{
	for (int i = 0; i < N; i++)
		if (pids[i] > 0) {
			fprintf(stderr, "==== mount %d (pid %d) ====\n", i + 1,
			    (int)pids[i]);
			fsh_dump_stack(pids[i]);
		}
}

/* SIGTERM is what the suite's deadline sends (tests/run_timed.sh): show
 * where the mounts were before they are stopped. */
static void on_signal(int sig)
{
	if (sig == SIGTERM && getpid() == main_pid) {
		fprintf(stderr,
		    "fsharness: SIGTERM (the test's deadline?): "
		    "stacks of the mounts follow\n");
		fsh_resume_mounts(); /* gdb cannot attach to a stopped one */
		fsh_dump_mounts();
		fsh_failed = true;
	}
	exit(1); /* atexit cleans up */
}
/* A free TCP port on 127.0.0.1 (bind-tested; not reserved), below the
 * kernel's ephemeral range: an outgoing connection (a member reconnecting
 * to one that was killed) could take a port in that range before its
 * member comes back. */
unsigned free_port(void)
{
	unsigned lo = 32768, hi = 60999, top;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");

	if (f != NULL) {
		if (fscanf(f, "%u %u", &lo, &hi) != 2)
			lo = 32768;
		fclose(f);
	}
	top = lo > 32768 ? 32768 : lo;
	if (top < 12000)
		top = 12000; /* an odd range: take our chances */
	for (int tries = 0; tries < 500; tries++) {
		unsigned port = 10000 + (unsigned)(rand() % (int)(top - 10000));
		struct sockaddr_in a = { .sin_family = AF_INET,
			.sin_port = htons((uint16_t)port),
			.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

		if (fd < 0)
			continue;
		ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			return port;
	}
	return 0;
}

/*
 * A free port unlike the @n already in @ports, stored as ports[@n]; 0 if
 * none.  free_port() draws at random, so two draws for one cluster could
 * be equal (the port is free again after each probe): about one cluster
 * in 4,000 failed on that.
 */
static unsigned distinct_port(unsigned *ports, int n)
{
	for (int tries = 0; tries < 100; tries++) {
		unsigned p = free_port();
		bool seen = false;

		if (p == 0)
			return 0;
		for (int k = 0; k < n; k++)
			seen = seen || ports[k] == p;
		if (!seen)
			return ports[n] = p;
	}
	return 0;
}

/*
 * A fresh authenticated cluster in @dir, as `raftkv init` makes one:
 * cluster.conf with every member's public key, memberN.key (found by
 * mount.raftkv next to the cluster file), client.key and admin.key.  A
 * retry (a port taken meanwhile) removes the previous attempt's files,
 * since keys_init_cluster() never overwrites.
 */
static void write_conf(void)
{
	static const char *const old[] = { "cluster.conf", "client.key",
		"admin.key", "member1.key", "member2.key", "member3.key" };
	char err[512], path[PATH_MAX + 64];
	unsigned ports[2 * N];
	struct cluster c;

	for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, old[i]);
		unlink(path);
	}
	memset(&c, 0, sizeof(c));
	c.id = (uint64_t)(rand() % 0xfffff) + 1;
	c.n = N;
	for (int i = 0; i < N; i++) {
		unsigned p1 = distinct_port(ports, 2 * i),
		         p2 = distinct_port(ports, 2 * i + 1);

		CHECK(p1 && p2, "no free ports");
		c.members[i].id = (raft_id)i + 1;
		snprintf(c.members[i].peer, sizeof(c.members[i].peer),
		    "tcp://127.0.0.1:%u", p1);
		snprintf(c.members[i].client, sizeof(c.members[i].client),
		    "tcp://127.0.0.1:%u", p2);
	}
	CHECK(keys_init_cluster(dir, &c, err, sizeof(err)) == 0, "%s", err);
	{
		FILE *f = fopen(conf, "a");

		CHECK(f != NULL, "open %s", conf);
		fputs(conf_extra, f);
		CHECK(fclose(f) == 0, "close %s", conf);
	}
	CHECK(cluster_load(conf, &cl, err, sizeof(err)) == 0, "%s", err);
	CHECK(keys_load_credential(&cl, conf, NULL, false, err, sizeof(err)) ==
	        0,
	    "%s", err);
}

static bool mounted_once;
static bool setting_up; /* the first start of the cluster */
static bool addr_in_use; /* a member of it found its port taken */

/* The members' max_raft_state: a snapshot every MiB of log (test_minority
 * catches up by one); test_bigfile takes more, not to snapshot a 64 MiB
 * file after every MiB written. */
unsigned long max_raft_state = 1048576;
/* The mounts' timeout= option: OP_TIMEOUT_MS, and longer for test_bigfile
 * (a member snapshotting a big state, on a loaded machine, can hold a
 * commit for seconds; the minority scenario is over by then). */
int op_timeout_ms = OP_TIMEOUT_MS;
/* The members' election timeout in 10 ms ticks: the default (30), and more
 * for test_bigfile, whose 1 MiB entries and snapshots on a loaded machine
 * can delay a leader's heartbeats past 300 ms (an election then, and an
 * ErrMaybe commit, EIO: nothing wrong, but not what that scenario tests). */
unsigned election_ticks = 30;
/* More -o options for a mount (test_relaxed: cache=relaxed), by index. */
const char *extra_opts[N] = { "", "", "" };

/* Does the file @path contain @what? */
bool log_says(const char *path, const char *what)
{
	static char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, what) != NULL;
}

void start(int i)
{
	char opts[PATH_MAX + 128], log[PATH_MAX + 64];
	pid_t p;

	/* Snapshots every MiB of log: a member that falls behind during a
	 * partition catches up by installing one (test_minority). */
	snprintf(opts, sizeof(opts),
	    "id=%d,data=%s,timeout=%d,"
	    "max_raft_state=%lu,election_ticks=%u,fault_injection%s",
	    i + 1, data[i], op_timeout_ms, max_raft_state, election_ticks,
	    extra_opts[i]);
	snprintf(log, sizeof(log), "%s/mount%d.log", dir, i + 1);
	p = fork();
	CHECK(p >= 0, "fork");
	if (p == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(prog, prog, conf, mnt[i], "-f", "-o", opts, (char *)NULL);
		_exit(127);
	}
	pids[i] = p;
	for (int t = 0; t < 600 && !is_mounted(mnt[i]); t++) {
		int st;

		if (waitpid(p, &st, WNOHANG) == p) {
			pids[i] = 0;
			if (setting_up && log_says(log, "in use")) {
				/* A port taken since it was tested: the
				 * caller picks new ones. */
				addr_in_use = true;
				return;
			}
			if (!mounted_once && log_says(log, "cannot mount on")) {
				/* /dev/fuse opens, but mounting is not
				 * allowed here (a container, say). */
				printf("SKIP: FUSE mounts are not permitted "
				       "here (see %s)\n",
				    log);
				exit(77);
			}
			fprintf(stderr,
			    "mount %d exited (status %d) before it "
			    "was mounted; see %s\n",
			    i + 1, st, log);
			exit(99);
		}
		sleep_ms(50);
	}
	CHECK(is_mounted(mnt[i]), "mount %d not ready after 30 s", i + 1);
	mounted_once = true;
}

void pathf(char *out, int i, const char *fmt, ...)
{
	char rel[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	snprintf(out, PATH_MAX, "%s/%s", mnt[i], rel);
}

void put_file(const char *path, const char *s, int flags)
{
	int fd = open(path, O_WRONLY | O_CREAT | flags, 0644);
	size_t len = strlen(s);

	CHECK(fd >= 0, "open %s", path);
	CHECK(write(fd, s, len) == (ssize_t)len, "write %s", path);
	CHECK(close(fd) == 0, "close %s", path);
}

/* The file's contents (at most 64 KiB), or NULL with errno. */
char *get_file(const char *path)
{
	static char buf[65536];
	int fd = open(path, O_RDONLY);
	ssize_t n, total = 0;

	if (fd < 0)
		return NULL;
	while ((n = read(fd, buf + total, sizeof(buf) - 1 - (size_t)total)) > 0)
		total += n;
	if (n < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return NULL;
	}
	close(fd);
	buf[total] = '\0';
	return buf;
}

void expect_file(int i, const char *rel, const char *want)
{
	char p[PATH_MAX];
	char *got;

	pathf(p, i, "%s", rel);
	got = get_file(p);
	CHECK(got != NULL && strcmp(got, want) == 0,
	    "mount %d %s: got '%s', "
	    "want '%s'",
	    i + 1, rel, got ? got : "(error)", want);
}

void expect_errno(int i, const char *rel, int want)
{
	char p[PATH_MAX];
	struct stat st;

	pathf(p, i, "%s", rel);
	errno = 0;
	CHECK(lstat(p, &st) != 0 && errno == want,
	    "mount %d stat %s: want "
	    "%s",
	    i + 1, rel, strerror(want));
}


/* Block (or heal) every link between member @i and the others. */
void fsh_fault(int from, int to, unsigned drop_pct, unsigned delay_ms,
    bool blocked)
{
	struct cluster admin = cl; /* fault injection needs the admin key */
	struct cproto_fault f = { .peer = (uint64_t)to + 1,
		.drop_pct = drop_pct,
		.delay_ms = delay_ms,
		.blocked = blocked };
	uint8_t buf[CPROTO_FAULT_LEN];
	char err[512];
	int rv = -1;

	CHECK(keys_load_credential(&admin, conf, NULL, true, err,
	          sizeof(err)) == 0,
	    "%s", err);
	cproto_encode_fault(&f, buf);
	for (int tries = 1; tries <= 3; tries++) {
		struct client_reply rep = { 0 };
		struct client *c;

		CHECK(client_new(&admin, NULL, &c) == 0, "client");
		rv = client_call(c, (uint32_t)from, CPROTO_FAULT, buf,
		    sizeof(buf), 5000, &rep);
		if (rv == 0 && rep.status != 0)
			rv = rep.status;
		free(rep.data);
		client_free(c);
		if (rv == 0)
			return;
		fprintf(stderr, "fsharness: fault %d->%d, try %d: %s (%d)\n",
		    from + 1, to + 1, tries, rk_strerror(rv), rv);
	}
	CHECK(false, "fault %d->%d: %s", from + 1, to + 1, rk_strerror(rv));
}

void isolate(int i, bool blocked)
{
	for (int j = 0; j < N; j++)
		if (j != i) {
			fsh_fault(i, j, 0, 0, blocked);
			fsh_fault(j, i, 0, 0, blocked);
		}
}

/* The index of the mount whose member leads now (asked until one
 * knows). */
int leader_index(void)
{
	struct clerk_options o;
	struct clerk *ck;
	int found = -1;

	clerk_options_defaults(&o);
	CHECK(clerk_new(&cl, &o, &ck) == 0, "clerk");
	for (int t = 0; t < 200 && found < 0; t++) {
		for (uint32_t i = 0; i < N && found < 0; i++) {
			struct cproto_status st;

			if (pids[i] > 0 &&
			    clerk_member_status(ck, i, &st) == 0 &&
			    st.leader >= 1 && st.leader <= N)
				found = (int)st.leader - 1;
		}
		if (found < 0)
			sleep_ms(100);
	}
	clerk_free(ck);
	CHECK(found >= 0, "no leader known");
	return found;
}


int fsh_setup(const char *tag, const char *extra)
{
	const char *bd = getenv("RAFTKV_BUILDDIR");
	const char *tmp = getenv("TMPDIR");
	static char progbuf[PATH_MAX];
	int fd;

	conf_extra = extra ? extra : "";
	main_pid = getpid();
	fd = open("/dev/fuse", O_RDWR);
	if (fd < 0) {
		printf("SKIP: /dev/fuse: %s\n", strerror(errno));
		return 77;
	}
	close(fd);
	if (run((const char *[]){ "fusermount3", "-V", NULL }) != 0) {
		printf("SKIP: no fusermount3\n");
		return 77;
	}
	snprintf(progbuf, sizeof(progbuf), "%s/fs/mount.raftkv", bd ? bd : ".");
	prog = progbuf;
	CHECK(access(prog, X_OK) == 0, "%s", prog);
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	snprintf(dir, sizeof(dir), "%s/raftkv-%s-XXXXXX", tmp ? tmp : "/tmp",
	    tag);
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	snprintf(conf, sizeof(conf), "%s/cluster.conf", dir);
	for (int i = 0; i < N; i++) {
		snprintf(mnt[i], sizeof(mnt[i]), "%s/m%d", dir, i + 1);
		snprintf(data[i], sizeof(data[i]), "%s/data%d", dir, i + 1);
		CHECK(mkdir(mnt[i], 0755) == 0, "mkdir");
	}
	setting_up = true;
	for (int attempt = 0; attempt < 5; attempt++) {
		const char *rm[] = { "rm", "-rf", data[0], data[1], data[2],
			NULL };

		write_conf();
		addr_in_use = false;
		for (int i = 0; i < N && !addr_in_use; i++)
			start(i);
		if (!addr_in_use)
			break;
		fprintf(stderr, "a port was taken meanwhile: new ports\n");
		for (int i = 0; i < N; i++)
			stop(i);
		run(rm);
	}
	CHECK(!addr_in_use, "no free ports after 5 attempts");
	setting_up = false;
	return 0;
}

size_t fsh_count_keys(const char *prefix)
{
	struct clerk_options o;
	struct clerk *ck;
	struct clerk_entry *e = NULL;
	size_t n = 0;

	clerk_options_defaults(&o);
	o.deadline_ms = 20000;
	CHECK(clerk_new(&cl, &o, &ck) == 0, "clerk");
	CHECK(clerk_list(ck, prefix, strlen(prefix), NULL, 0, 0, -1, &e, &n) ==
	        KV_OK,
	    "list");
	clerk_entries_free(e, n);
	clerk_free(ck);
	return n;
}

bool fsh_wait_keys(const char *prefix, size_t want)
{
	for (int t = 0; t < 200; t++) {
		if (fsh_count_keys(prefix) == want)
			return true;
		sleep_ms(100);
	}
	return false;
}
