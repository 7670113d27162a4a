/*
 * main.c - mount.raftkv(8): one process = one Raft member of the cluster
 * (the runtime raftkv-server runs, embedded, serving raftkv clients too)
 * plus a FUSE session on the low-level API showing the KV store as a
 * directory tree (fs.h).
 *
 *   mount.raftkv CLUSTER-FILE MOUNTPOINT -o id=N[,data=DIR][,options] [-f] [-d]
 *
 * also as mount(8) runs it (/sbin/mount.raftkv, /sbin/mount.fuse.raftkv):
 * CLUSTER-FILE MOUNTPOINT [-sfnv] [-N NAMESPACE] [-o OPTIONS] [-t TYPE],
 * with fstab-only options among OPTIONS (mount.raftkv(8)).
 *
 * Start-up: options -> checks that give one clear line each (mountpoint
 * missing, not a directory, already a raftkv mount or a dead mount; id
 * not in the cluster file; FUSE not available) -> unless -f, fork: the
 * parent waits until the child reports the mount ready (or its one-line
 * error) and exits accordingly; the child logs to syslog or log=FILE
 * -> signals blocked -> the member (storage recovery, peer and client
 * endpoints) -> the FUSE session, mounted ->
 * the notifier -> ready -> the FUSE loop until SIGTERM/SIGINT/SIGHUP or
 * an unmount (umount, fusermount3 -u) -> unmount, stop the member.
 */
#define _GNU_SOURCE /* pipe2, memrchr, setns */
#define FUSE_USE_VERSION 35

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs/barrier.h"
#include "fs/ckpool.h"
#include "fs/fs.h"
#include "fs/fsapp.h"
#include "fs/fsmember.h"
#include "fs/inode.h"
#include "fs/notify.h"
#include "fs/rkfs_int.h"
#include "fs/rklock.h"
#include "fs/rkopen.h"
#include "fs/wbuf.h"
#include "raft/client/cluster.h"
#include "raft/client/keys.h"
#include "raft/member/member_join.h"
#include "raft/storage/memberdir_file.h"
#include "raft/util/logging.h"
#include "raft/util/num.h"

#define PROG "mount.raftkv"
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_WRITEBUF (1u << 20)
#define DEFAULT_DATA_ROOT "/var/lib/raftkv"

struct mopts {
	const char *cluster_file;
	const char *mountpoint;
	char mnt[PATH_MAX]; /* realpath of the mountpoint */
	char data[PATH_MAX];
	char log_file[PATH_MAX];
	char secret[PATH_MAX];
	char credential[PATH_MAX];
	char peer[256]; /* join: this member's endpoints */
	char client[256];
	enum log_level log_level; /* log_level= (default info) */
	const char *mntns; /* -N: the mount namespace to mount in */
	char vfs[128]; /* ",nosuid,nodev"...: VFS flags for the mount */
	bool foreground;
	bool debug;
	bool allow_other;
	bool default_permissions;
	struct member_options member;
	struct fs_options fs;
	bool have_id;
	/* fault_unlock_owner=COUNT:MS (tests, with fault_injection) */
	unsigned fault_uo_ms[RKLOCK_FAULTS_MAX], fault_uo_n;
	/* fault_opens_maybe or _lost=FROM:COUNT (tests, fault_injection) */
	unsigned fault_om_from, fault_om_count;
	bool fault_om_lost;
};

/* The pipe to the waiting parent (-1 in the foreground). */
static int ready_fd = -1;

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: " PROG
	    " CLUSTER-FILE MOUNTPOINT -o id=N[,options] [-f] [-d]\n"
	    "options (mount.raftkv(8)):\n"
	    "  id=N                 this member's id in CLUSTER-FILE "
	    "(required)\n"
	    "  data=DIR             data directory (default " DEFAULT_DATA_ROOT
	    "/ID)\n"
	    "  timeout=MS           fail an operation with EIO after MS "
	    "(10000)\n"
	    "  sync                 commit every write before it returns\n"
	    "  writebuf=BYTES       buffer per file until close/fsync (1 MiB; "
	    "0: none)\n"
	    "  cache=strict|relaxed linearizable (default), or close-to-open\n"
	    "  attr_timeout=SEC     relaxed: kernel attribute cache (1)\n"
	    "  entry_timeout=SEC    relaxed: kernel name cache (1)\n"
	    "  ro                   read-only mount\n"
	    "  allow_other          let other users use the mount\n"
	    "  default_permissions  kernel permission checks (the default);\n"
	    "  no_default_permissions  turn them off\n"
	    "  log=FILE             log file when daemonized (default: "
	    "syslog)\n"
	    "  log_level=LEVEL      debug, info (default) or warn\n"
	    "  curve_secret=FILE    this member's CURVE secret key\n"
	    "                       (default: memberID.key next to "
	    "CLUSTER-FILE)\n"
	    "  credential=FILE      client credential of the mount's own "
	    "requests\n"
	    "                       (default: as raftkv(1) finds it)\n"
	    "  join,peer=EP,client=EP  join a running cluster as a new member\n"
	    "                       (a learner until `raftkv member promote`)\n"
	    "  insecure             run a cluster file without keys: NO\n"
	    "                       authentication (warned at every start)\n"
	    "  insecure_membership  with insecure: let any client change the\n"
	    "                       membership (refused otherwise)\n"
	    "  read_mode=MODE       lease (default), index or log: how "
	    "reads are\n"
	    "                       confirmed (raftkv-server(8) "
	    "--read-mode)\n"
	    "  tick_ms=N, election_ticks=N, heartbeat_ticks=N, "
	    "max_raft_state=N\n"
	    "  -f  stay in the foreground    -d  FUSE debug output (implies "
	    "-f)\n"
	    "  -N NS  mount in mount namespace NS (a path or a PID)\n"
	    "  -s, -n, -v, -t TYPE: from mount(8), ignored\n");
}

/* Print one line (to the waiting parent too) and exit 1. */
static void die(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = (int)sizeof(msg) - 1;
	if (ready_fd >= 0) {
		/* The parent prints it; our stderr is the log file. */
		if (write(ready_fd, msg, (size_t)n) < 0) {
			/* the parent is gone: nothing else to tell */
		}
		close(ready_fd);
		ready_fd = -1;
		log_warnx("%s", msg);
	} else {
		fprintf(stderr, PROG ": %s\n", msg);
	}
	exit(1);
}

static void absolute(const char *path, char *out, size_t cap, const char *what)
{
	char cwd[PATH_MAX];
	int n;

	if (path[0] == '/') {
		n = snprintf(out, cap, "%s", path);
	} else {
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			die("cannot resolve the %s path: %s", what,
			    strerror(errno));
		n = snprintf(out, cap, "%s/%s", cwd, path);
	}
	if (n < 0 || (size_t)n >= cap)
		die("%s path too long", what);
}

static unsigned opt_uint(const char *name, const char *v, uint64_t min,
    uint64_t max)
{
	uint64_t x;

	if (num_parse_u64(v, 10, min, max, &x) != 0)
		die("invalid value '%s' for option %s", v, name);
	return (unsigned)x;
}

/* One "-o" option (already split at commas). */
static void parse_one(struct mopts *o, char *opt)
{
	/* mount(8) and fstab options that mean nothing to this mount, or
	 * that mount(8) has handled already (user: who may mount). */
	static const char *const ignored[] = {
		"rw",
		"_netdev",
		"netdev",
		"no_netdev",
		"auto",
		"noauto",
		"user",
		"nouser",
		"users",
		"owner",
		"group",
		"defaults",
		"atime",
		"noatime",
		"relatime",
		"nofail",
		NULL,
	};
	/* VFS flags passed on to the FUSE mount as they are. */
	static const char *const vfs_flags[] = {
		"dev",
		"nodev",
		"suid",
		"nosuid",
		"exec",
		"noexec",
		NULL,
	};
	char *v = strchr(opt, '=');

	if (v != NULL)
		*v++ = '\0';
	if (*opt == '\0')
		return;
	for (int i = 0; ignored[i] != NULL; i++)
		if (strcmp(opt, ignored[i]) == 0)
			return;
	if (strncmp(opt, "x-", 2) == 0 || strcmp(opt, "comment") == 0)
		return;
	for (int i = 0; vfs_flags[i] != NULL; i++) {
		if (v == NULL && strcmp(opt, vfs_flags[i]) == 0) {
			size_t len = strlen(o->vfs);

			if (len + strlen(opt) + 2 > sizeof(o->vfs))
				die("too many mount flags");
			snprintf(o->vfs + len, sizeof(o->vfs) - len, ",%s",
			    opt);
			return;
		}
	}
	if (strcmp(opt, "sync") == 0) {
		o->fs.sync = true;
	} else if (strcmp(opt, "ro") == 0) {
		o->fs.ro = true;
	} else if (strcmp(opt, "allow_other") == 0) {
		o->allow_other = true;
	} else if (strcmp(opt, "default_permissions") == 0) {
		o->default_permissions = true;
	} else if (strcmp(opt, "no_default_permissions") == 0) {
		o->default_permissions = false;
	} else if (strcmp(opt, "fault_injection") == 0) {
		o->member.fault_injection = 1;
	} else if (strcmp(opt, "insecure") == 0) {
		o->member.insecure = 1;
	} else if (strcmp(opt, "insecure_membership") == 0) {
		o->member.insecure_membership = 1;
	} else if (strcmp(opt, "join") == 0) {
		o->member.join = 1;
	} else if (v == NULL) {
		die("unknown option '%s' (see mount.raftkv(8))", opt);
	} else if (strcmp(opt, "id") == 0) {
		uint64_t id;

		if (num_parse_u64(v, 10, 1, INT64_MAX, &id) != 0)
			die("invalid member id '%s'", v);
		o->member.id = id;
		o->have_id = true;
	} else if (strcmp(opt, "peer") == 0 || strcmp(opt, "client") == 0) {
		char *dst = opt[0] == 'p' ? o->peer : o->client;

		if (strlen(v) >= sizeof(o->peer))
			die("%s endpoint too long", opt);
		snprintf(dst, sizeof(o->peer), "%s", v);
	} else if (strcmp(opt, "data") == 0) {
		absolute(v, o->data, sizeof(o->data), "data directory");
	} else if (strcmp(opt, "log") == 0) {
		absolute(v, o->log_file, sizeof(o->log_file), "log file");
	} else if (strcmp(opt, "curve_secret") == 0) {
		absolute(v, o->secret, sizeof(o->secret), "secret key");
	} else if (strcmp(opt, "credential") == 0) {
		absolute(v, o->credential, sizeof(o->credential), "credential");
	} else if (strcmp(opt, "log_level") == 0) {
		/* now: @v points into a copy freed after parsing */
		if (log_level_parse(v, &o->log_level) != 0)
			die("unknown log level '%s'", v);
	} else if (strcmp(opt, "writebuf") == 0) {
		o->fs.writebuf = opt_uint(opt, v, 0, 16u << 20);
	} else if (strcmp(opt, "cache") == 0) {
		if (strcmp(v, "strict") == 0)
			o->fs.relaxed = false;
		else if (strcmp(v, "relaxed") == 0)
			o->fs.relaxed = true;
		else
			die("invalid value '%s' for option cache (strict or "
			    "relaxed)",
			    v);
	} else if (strcmp(opt, "attr_timeout") == 0) {
		o->fs.attr_timeout = opt_uint(opt, v, 0, 3600);
	} else if (strcmp(opt, "entry_timeout") == 0) {
		o->fs.entry_timeout = opt_uint(opt, v, 0, 3600);
	} else if (strcmp(opt, "timeout") == 0) {
		o->fs.timeout_ms = (int)opt_uint(opt, v, 100, 3600 * 1000);
	} else if (strcmp(opt, "read_mode") == 0) {
		o->member.read_no_lease = strcmp(v, "index") == 0;
		o->member.read_via_log = strcmp(v, "log") == 0;
		if (strcmp(v, "lease") != 0 && !o->member.read_no_lease &&
		    !o->member.read_via_log)
			die("invalid value '%s' for option read_mode (lease, "
			    "index or log)",
			    v);
	} else if (strcmp(opt, "tick_ms") == 0) {
		o->member.tick_ms = opt_uint(opt, v, 1, 100000);
	} else if (strcmp(opt, "election_ticks") == 0) {
		o->member.election_ticks = opt_uint(opt, v, 2, 100000);
	} else if (strcmp(opt, "heartbeat_ticks") == 0) {
		o->member.heartbeat_ticks = opt_uint(opt, v, 1, 100000);
	} else if (strcmp(opt, "fault_unlock_owner") == 0) {
		char *save = NULL;

		o->fault_uo_n = 0;
		for (char *ms = strtok_r(v, ":", &save); ms != NULL;
		     ms = strtok_r(NULL, ":", &save)) {
			if (o->fault_uo_n == RKLOCK_FAULTS_MAX)
				die("option fault_unlock_owner: at most %d "
				    "delays",
				    RKLOCK_FAULTS_MAX);
			o->fault_uo_ms[o->fault_uo_n++] = opt_uint(opt, ms, 0,
			    60000);
		}
	} else if (strcmp(opt, "fault_opens_maybe") == 0 ||
	    strcmp(opt, "fault_opens_lost") == 0) {
		char *count = strchr(v, ':');

		if (count == NULL)
			die("option %s: FROM:COUNT", opt);
		o->fault_om_lost = strcmp(opt, "fault_opens_lost") == 0;
		*count++ = '\0';
		o->fault_om_from = opt_uint(opt, v, 1, 1000000);
		o->fault_om_count = opt_uint(opt, count, 1, 1000000);
	} else if (strcmp(opt, "max_raft_state") == 0) {
		uint64_t x;

		if (num_parse_u64(v, 10, 0, INT64_MAX, &x) != 0)
			die("invalid value '%s' for option max_raft_state", v);
		o->member.max_raft_state = (int64_t)x;
	} else {
		die("unknown option '%s' (see mount.raftkv(8))", opt);
	}
}

static void parse_opts_string(struct mopts *o, const char *s)
{
	char *copy = strdup(s), *save = NULL, *tok;

	if (copy == NULL)
		die("out of memory");
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save))
		parse_one(o, tok);
	free(copy);
}

static void parse_args(int argc, char **argv, struct mopts *o)
{
	int npos = 0;

	member_options_defaults(&o->member);
	o->fs.timeout_ms = DEFAULT_TIMEOUT_MS;
	o->log_level = LOG_LEVEL_INFO;
	o->fs.writebuf = DEFAULT_WRITEBUF;
	o->fs.attr_timeout = 1;
	o->fs.entry_timeout = 1;
	o->default_permissions = true;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "-o") == 0) {
			if (++i == argc)
				die("-o needs an argument");
			parse_opts_string(o, argv[i]);
		} else if (strncmp(a, "-o", 2) == 0) {
			parse_opts_string(o, a + 2);
		} else if (strcmp(a, "-f") == 0) {
			o->foreground = true;
		} else if (strcmp(a, "-d") == 0) {
			o->debug = true;
			o->foreground = true;
		} else if (strcmp(a, "-s") == 0 || strcmp(a, "-n") == 0 ||
		    strcmp(a, "-v") == 0) {
			/* mount(8)'s sloppy, no-mtab, verbose: nothing to do */
		} else if (strcmp(a, "-t") == 0 || strcmp(a, "-N") == 0) {
			/* mount(8): -t TYPE.SUBTYPE (we are the helper of
			 * that type already), -N NAMESPACE */
			if (++i == argc)
				die("%s needs an argument", a);
			if (a[1] == 'N')
				o->mntns = argv[i];
		} else if (strncmp(a, "-t", 2) == 0) {
			/* -tTYPE */
		} else if (strncmp(a, "-N", 2) == 0) {
			o->mntns = a + 2;
		} else if (a[0] == '-' && a[1] != '\0') {
			usage(stderr);
			die("unknown flag '%s'", a);
		} else if (npos == 0) {
			o->cluster_file = a;
			npos++;
		} else if (npos == 1) {
			o->mountpoint = a;
			npos++;
		} else {
			usage(stderr);
			die("unexpected argument '%s'", a);
		}
	}
	if (npos != 2) {
		usage(stderr);
		exit(2);
	}
	if (!o->have_id)
		die("-o id=N is required (this member's id in %s)",
		    o->cluster_file);
	if (o->fault_uo_n > 0 && !o->member.fault_injection)
		die("fault_unlock_owner needs fault_injection (tests only)");
	if (o->fault_om_count > 0 && !o->member.fault_injection)
		die("fault_opens_maybe, fault_opens_lost need fault_injection "
		    "(tests only)");
}

/* Unescape mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *w = s;

	for (char *r = s; *r != '\0'; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' &&
		    r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 +
			    (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

/* Is @path a raftkv mount already (per /proc/self/mountinfo)? */
static bool is_raftkv_mount(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	bool found = false;

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		char mnt[4096], fstype[256];
		char *dash = strstr(line, " - ");

		if (dash == NULL ||
		    sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(dash + 3, "%255s", fstype) != 1)
			continue;
		unescape(mnt);
		found = strcmp(mnt, path) == 0 &&
		    strcmp(fstype, "fuse.raftkv") == 0;
	}
	fclose(f);
	return found;
}

static void check_mountpoint(struct mopts *o)
{
	struct stat st;

	if (stat(o->mountpoint, &st) != 0) {
		if (errno == ENOTCONN)
			die("mountpoint %s is a dead FUSE mount (a crashed "
			    "mount.raftkv?): unmount it with fusermount3 -u "
			    "first",
			    o->mountpoint);
		die("mountpoint %s: %s", o->mountpoint, strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		die("mountpoint %s is not a directory", o->mountpoint);
	if (realpath(o->mountpoint, o->mnt) == NULL)
		die("mountpoint %s: %s", o->mountpoint, strerror(errno));
	if (is_raftkv_mount(o->mnt))
		die("%s is already a raftkv mount", o->mnt);
}

/* -N NS (mount(8) --namespace): mount in another mount namespace, given
 * as a path (/proc/PID/ns/mnt, or the /proc/self/fd/N mount(8) passes)
 * or as the PID of a process in it.  Called single-threaded, before any
 * path is resolved; the positional paths are made absolute first (setns
 * moves the root and working directory to the namespace's). */
static void enter_mntns(struct mopts *o, char *cfile, size_t cfcap,
    char *mpoint, size_t mpcap)
{
	char path[64];
	const char *ns = o->mntns;
	uint64_t pid;
	int fd;

	absolute(o->cluster_file, cfile, cfcap, "cluster file");
	absolute(o->mountpoint, mpoint, mpcap, "mountpoint");
	o->cluster_file = cfile;
	o->mountpoint = mpoint;
	if (num_parse_u64(ns, 10, 1, INT32_MAX, &pid) == 0) {
		snprintf(path, sizeof(path), "/proc/%" PRIu64 "/ns/mnt", pid);
		ns = path;
	}
	fd = open(ns, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("mount namespace %s: %s", ns, strerror(errno));
	if (setns(fd, CLONE_NEWNS) != 0)
		die("cannot enter the mount namespace %s: %s", ns,
		    strerror(errno));
	close(fd);
}

static void check_fuse(void)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		die("FUSE is not available: /dev/fuse: %s", strerror(errno));
	close(fd);
}

/* libfuse's messages, into our log (when daemonized: -d keeps them on
 * stderr); they end in a newline, our lines get their own. */
static void fuse_to_log(enum fuse_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void fuse_to_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char msg[1024];
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);

	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		n = (int)sizeof(msg) - 1;
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	if (level <= FUSE_LOG_WARNING)
		log_warnx("fuse: %s", msg);
	else if (level <= FUSE_LOG_INFO)
		log_info("fuse: %s", msg);
	else
		log_debug("fuse: %s", msg);
}

/* Fork; the parent waits for the child's verdict and exits with it.  The
 * child logs to @log_file, or to syslog if it is empty. */
static void daemonize(const char *log_file)
{
	int p[2], fd;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0)
		die("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid > 0) {
		char msg[1024];
		ssize_t n;
		int status;

		close(p[1]);
		do
			n = read(p[0], msg, sizeof(msg) - 1);
		while (n < 0 && errno == EINTR);
		if (n == 2 && memcmp(msg, "ok", 2) == 0)
			_exit(0);
		if (n <= 0) {
			/* The child died without a word. */
			waitpid(pid, &status, 0);
			fprintf(stderr,
			    PROG ": the member process exited "
			         "before the mount was ready (see %s)\n",
			    log_file[0] ? log_file : "the system log");
		} else {
			msg[n] = '\0';
			fprintf(stderr, PROG ": %s\n", msg);
		}
		_exit(1);
	}
	close(p[0]);
	ready_fd = p[1];
	if (setsid() < 0)
		die("setsid: %s", strerror(errno));
	/* From here on the log goes to the log file or syslog; a refusal
	 * still reaches the user through the parent. */
	if (log_file[0] != '\0') {
		fd = open(log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		    0640);
		if (fd < 0)
			die("log file %s: %s", log_file, strerror(errno));
	} else {
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			die("/dev/null: %s", strerror(errno));
		log_syslog_open(PROG); /* lines keep the tag fsN */
	}
	dup2(fd, STDERR_FILENO);
	close(fd);
	fuse_set_log_func(fuse_to_log);
}

/* The mount is live: tell the parent, detach from the terminal. */
static void report_ready(const struct mopts *o)
{
	int fd;

	(void)o;
	if (ready_fd < 0)
		return;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		close(fd);
	}
	if (write(ready_fd, "ok", 2) < 0) {
		/* the parent is gone: we run on */
	}
	close(ready_fd);
	ready_fd = -1;
	if (chdir("/") != 0) {
		/* not fatal */
	}
}

/* The device minor of the raftkv mount at @path (from mountinfo: a stat
 * would ask the daemon), or -1. */
static int mount_minor(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	int found = -1;

	if (f == NULL)
		return -1;
	while (found < 0 && fgets(line, sizeof(line), f) != NULL) {
		char mnt[4096], fstype[256];
		char *dash = strstr(line, " - ");
		unsigned maj, min;

		if (dash == NULL ||
		    sscanf(line, "%*s %*s %u:%u %*s %4095s", &maj, &min, mnt) !=
		        3 ||
		    sscanf(dash + 3, "%255s", fstype) != 1)
			continue;
		unescape(mnt);
		if (strcmp(mnt, path) == 0 &&
		    strcmp(fstype, "fuse.raftkv") == 0)
			found = (int)min;
	}
	fclose(f);
	return found;
}

/* Fail every request in flight on the mount at @mnt (fusectl's abort:
 * /sys/fs/fuse/connections/N/abort, N = the mount's device minor). */
static void abort_connection(const char *mnt)
{
	char path[128];
	int fd, min = mount_minor(mnt);

	if (min < 0)
		return; /* not mounted any more */
	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%d/abort", min);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "1", 1) < 0)
		log_warn("%s", path);
	close(fd);
}

/* The mount's source as /proc/self/mounts shows it: the cluster file's
 * real path (what an fstab line names, so that `mount -a` sees the line
 * mounted), escaped for libfuse's option parser; "raftkv" if it is too
 * long. */
static void fsname_opt(const char *cluster_file, char *out, size_t cap)
{
	char real[PATH_MAX];
	const char *p;
	size_t n = 0;

	if (realpath(cluster_file, real) == NULL)
		snprintf(real, sizeof(real), "%s", cluster_file);
	for (p = real; *p != '\0' && n + 3 < cap; p++) {
		if (*p == ',' || *p == '\\')
			out[n++] = '\\';
		out[n++] = *p;
	}
	out[n] = '\0';
	if (*p != '\0')
		snprintf(out, cap, "raftkv");
}

/*
 * Membership changes: the members this mount talks to (its clerks, its
 * lock requests) are the current ones, not only the cluster file's.
 * Its member directory (raft/memberdir.h) is the data directory's file,
 * or for a first join what the running cluster says (saved at once, so
 * that the member starts from it); every entry goes into @cl but those
 * of members seen removed (the file's removed ids: a cluster file member
 * removed since is dropped from @cl too, unless none would be left), as
 * kv/clerk.c keeps only the configuration's members.
 */
static void members_from_directory(struct mopts *o, struct cluster *cl)
{
	struct memberdir *d = calloc(1, sizeof(*d));
	struct memberdir_gone *gone = calloc(1, sizeof(*gone));
	char err[512];
	uint32_t keep = 0;
	int rv;

	if (d == NULL || gone == NULL)
		die("out of memory");
	rv = memberdir_load(o->data, cl->id, d, gone, err, sizeof(err));
	if (rv != 0 && rv != -ENOENT)
		die("%s", err);
	if (o->member.join && cluster_find(cl, o->member.id) == NULL &&
	    memberdir_find(d, o->member.id) == NULL) {
		o->member.peer = o->peer[0] ? o->peer : NULL;
		o->member.client = o->client[0] ? o->client : NULL;
		if (member_join_directory(&o->member, cl, d, err,
		        sizeof(err)) != 0 ||
		    memberdir_save(o->data, cl->id, d, gone, err,
		        sizeof(err)) != 0)
			die("%s", err);
	}
	for (uint32_t i = 0; i < d->n; i++) {
		const struct memberdir_entry *e = &d->m[i];
		struct cluster_member *m = (struct cluster_member *)
		    cluster_find(cl, e->id);

		if (memberdir_gone_has_id(gone, e->id))
			continue;
		if (m == NULL && cl->n < RAFT_MAX_MEMBERS)
			m = &cl->members[cl->n++];
		if (m == NULL)
			continue;
		m->id = e->id;
		snprintf(m->peer, sizeof(m->peer), "%s", e->peer);
		snprintf(m->client, sizeof(m->client), "%s", e->client);
		snprintf(m->key, sizeof(m->key), "%s", e->key);
	}
	for (uint32_t i = 0; i < cl->n; i++)
		if (!memberdir_gone_has_id(gone, cl->members[i].id))
			keep++;
	if (keep > 0) {
		keep = 0;
		for (uint32_t i = 0; i < cl->n; i++)
			if (!memberdir_gone_has_id(gone, cl->members[i].id))
				cl->members[keep++] = cl->members[i];
		cl->n = keep;
	}
	free(gone);
	free(d);
}

static int member_index(const struct cluster *cl, uint64_t id)
{
	for (uint32_t i = 0; i < cl->n; i++)
		if (cl->members[i].id == id)
			return (int)i;
	return -1;
}

int main(int argc, char **argv)
{
	struct mopts o = { 0 };
	struct fs fs = { 0 };
	struct cluster cl;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config lc = { .clone_fd = 0, .max_idle_threads = 16 };
	char err[512] = "out of memory", mopt[2 * PATH_MAX + 256], tag[32];
	static char cfile[PATH_MAX], mpoint[PATH_MAX], fsname[2 * PATH_MAX];
	sigset_t sigs;
	int rv;

	member_process_setup();
	parse_args(argc, argv, &o);
	if (o.mntns != NULL)
		enter_mntns(&o, cfile, sizeof(cfile), mpoint, sizeof(mpoint));
	snprintf(tag, sizeof(tag), "fs%" PRIu64, o.member.id);
	log_init(o.log_level, tag);
	check_mountpoint(&o);
	if (cluster_load(o.cluster_file, &cl, err, sizeof(err)) != 0)
		die("%s", err);
	if (o.member.join && cluster_find(&cl, o.member.id) != NULL)
		die("member %" PRIu64 " is in %s already: join is for a new "
		    "member",
		    o.member.id, o.cluster_file);
	/* The mount's own requests to the leader are a client's: they need
	 * a client credential on a keyed cluster. */
	if (keys_load_credential(&cl, o.cluster_file,
	        o.credential[0] ? o.credential : NULL, false, err,
	        sizeof(err)) != 0)
		die("%s", err);
	check_fuse();
	if (o.data[0] == '\0')
		snprintf(o.data, sizeof(o.data), DEFAULT_DATA_ROOT "/%" PRIu64,
		    o.member.id);
	/* Not in the cluster file: a member that joined earlier (its data
	 * directory remembers the members) or one joining now. */
	if (cluster_find(&cl, o.member.id) == NULL && !o.member.join) {
		char mf[PATH_MAX + 16];
		struct stat sb;

		snprintf(mf, sizeof(mf), "%s/" MEMBERDIR_FILE, o.data);
		if (stat(mf, &sb) != 0)
			die("member %" PRIu64 " is not in %s (a new member "
			    "mounts with -o join,peer=EP,client=EP)",
			    o.member.id, o.cluster_file);
	}
	if (mkdir(o.data, 0700) != 0 && errno != EEXIST)
		die("data directory %s: %s", o.data, strerror(errno));
	o.member.cluster_file = o.cluster_file;
	o.member.data_dir = o.data;
	o.member.secret_file = o.secret[0] ? o.secret : NULL;
	members_from_directory(&o, &cl);
	if (cluster_find(&cl, o.member.id) == NULL)
		die("member %" PRIu64 " is not in %s (a new member mounts "
		    "with -o join,peer=EP,client=EP)",
		    o.member.id, o.cluster_file);

	if (!o.foreground)
		daemonize(o.log_file);

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	fs.opt = o.fs;
	fs.member_id = o.member.id;
	fs.inodes = inode_table_new();
	fs.notifier = notifier_new(&fs);
	fs.clerks = ckpool_new(&cl, o.fs.timeout_ms,
	    member_index(&cl, o.member.id));
	if (!o.fs.sync && o.fs.writebuf > 0)
		fs.wbufs = wbufs_new(o.fs.writebuf, rkfile_commit, &fs);
	fs.locks = rklock_new(&fs, &cl, o.fs.timeout_ms,
	    member_index(&cl, o.member.id), cl.lock_lease_ms * 1000000,
	    cl.session_ttl_ms * 1000000);
	fs.opens = rkopen_new(&fs, &cl, o.fs.timeout_ms,
	    member_index(&cl, o.member.id), cl.session_ttl_ms * 1000000);
	if (fs.locks != NULL && o.fault_uo_n > 0)
		rklock_fault_unlock_owner(fs.locks, o.fault_uo_ms,
		    o.fault_uo_n);
	if (fs.opens != NULL && o.fault_om_count > 0)
		rkopen_fault_maybe(fs.opens, o.fault_om_from, o.fault_om_count,
		    o.fault_om_lost);
	if (fs.inodes == NULL || fs.notifier == NULL || fs.clerks == NULL ||
	    fs.locks == NULL || fs.opens == NULL ||
	    (!o.fs.sync && o.fs.writebuf > 0 && fs.wbufs == NULL))
		die("out of memory");
	rv = fsm_start(&o.member, fsapp_hook, &fs, &fs.member, err,
	    sizeof(err));
	if (rv != 0)
		die("%s", err);
	fs.barrier = barrier_new(fs.member);
	if (fs.barrier == NULL)
		die("out of memory");
	if (rklock_start(fs.locks) != 0) {
		fsm_stop(fs.member);
		die("cannot start the lock threads");
	}
	/* Also deletes, from the start, the files removed while open that
	 * nobody holds open any more (a crash's leftovers). */
	if (rkopen_start(fs.opens) != 0) {
		fsm_stop(fs.member);
		die("cannot start the open registration thread");
	}

	fsname_opt(o.cluster_file, fsname, sizeof(fsname));
	snprintf(mopt, sizeof(mopt), "fsname=%s,subtype=raftkv%s%s%s%s", fsname,
	    o.default_permissions ? ",default_permissions" : "",
	    o.allow_other ? ",allow_other" : "", o.fs.ro ? ",ro" : "", o.vfs);
	if (fuse_opt_add_arg(&args, PROG) != 0 ||
	    (o.debug && fuse_opt_add_arg(&args, "-d") != 0) ||
	    fuse_opt_add_arg(&args, "-o") != 0 ||
	    fuse_opt_add_arg(&args, mopt) != 0)
		die("out of memory");
	fs.se = fuse_session_new(&args, &rkfs_ops, sizeof(rkfs_ops), &fs);
	if (fs.se == NULL) {
		fsm_stop(fs.member);
		die("cannot create the FUSE session");
	}
	if (fuse_session_mount(fs.se, o.mnt) != 0) {
		fuse_session_destroy(fs.se);
		fsm_stop(fs.member);
		die("cannot mount on %s (see the messages above)", o.mnt);
	}
	if (notifier_start(fs.notifier) != 0)
		log_warnx("no notifier thread: kernel caches rely on "
		          "timeouts alone");

	/* libfuse installs its handlers only over the default disposition;
	 * a shell starts background jobs with SIGINT ignored. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if (fuse_set_signal_handlers(fs.se) != 0)
		log_warnx("cannot install signal handlers");
	log_info("member %" PRIu64 " mounted on %s (data %s)", o.member.id,
	    o.mnt, o.data);
	report_ready(&o);

	pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
	rv = fuse_session_loop_mt(fs.se, &lc);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	log_info("unmounting %s", o.mnt);
	fuse_remove_signal_handlers(fs.se);
	if (notifier_stop(fs.notifier, 2000) != 0) {
		/* Blocked behind a request nobody will answer now. */
		log_warnx("notifier stuck: aborting the FUSE connection");
		abort_connection(o.mnt);
		if (notifier_stop(fs.notifier, 5000) != 0)
			log_warnx("notifier still stuck; leaving it");
	}
	rklock_stop(fs.locks); /* answers the parked lock waits */
	fuse_session_unmount(fs.se);
	fuse_session_destroy(fs.se);
	/* Its registrations stay until its session expires (a clean stop
	 * closed every file: nothing is registered). */
	rkopen_free(fs.opens);
	fsm_stop(fs.member);
	rklock_free(fs.locks);
	notifier_free(fs.notifier);
	barrier_free(fs.barrier);
	wbufs_free(fs.wbufs);
	ckpool_free(fs.clerks);
	inode_table_free(fs.inodes);
	fuse_opt_free_args(&args);
	log_info("stopped");
	return rv < 0 ? 1 : 0;
}
