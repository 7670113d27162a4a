/*
 * fsharness.h - the three-mount cluster the filesystem tests run against
 * (tests/fs/test_fs_mount.c, tests/fs/test_fs_locks.c): a fresh
 * authenticated cluster of N members on 127.0.0.1, each member a real
 * mount.raftkv in the foreground as a child of the test (PR_SET_PDEATHSIG),
 * with fault injection on; helpers to stop, restart, isolate them and to
 * read and write files through them.
 *
 * Cleanup (atexit, also after a failed CHECK or SIGINT/SIGTERM/SIGHUP)
 * unmounts with fusermount3 -u (lazily if busy) and kills by PID; only the
 * test's main process cleans up (forked children exit without touching
 * the mounts).  One cluster per test program; the state below is the
 * test's (a test program is one process with one cluster).
 */
#ifndef RAFTKV_TESTS_FS_FSHARNESS_H
#define RAFTKV_TESTS_FS_FSHARNESS_H

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "raft/client/cluster.h"

#define N 3
#define OP_TIMEOUT_MS 6000 /* the mounts' timeout= option */

extern char dir[PATH_MAX]; /* the test's temporary directory */
extern char conf[PATH_MAX + 32]; /* its cluster file */
extern char mnt[N][PATH_MAX + 32]; /* mountpoints */
extern char data[N][PATH_MAX + 32]; /* data directories */
extern pid_t pids[N]; /* mount processes (0: not running) */
extern const char *prog; /* the mount.raftkv binary */
extern struct cluster cl; /* the cluster file, with the client key */
extern pid_t main_pid;
/* Options of the next start(): the members' max_raft_state (1 MiB), the
 * mounts' timeout= (OP_TIMEOUT_MS) and election_ticks (30). */
extern unsigned long max_raft_state;
extern int op_timeout_ms;
extern unsigned election_ticks;
extern const char *extra_opts[N]; /* appended to a mount's -o ("" or ",...") */

/* Set by CHECK on a failure: the cleanup then prints the end of every
 * mount's log (the test's directory is removed after). */
extern bool fsh_failed;

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) { \
			fsh_failed = true; \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, \
			    __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__); \
			fprintf(stderr, " (errno %d %s)\n", errno, \
			    strerror(errno)); \
			exit(1); \
		} \
	} while (0)

/*
 * Set everything up: exit status 77 (SKIP) when FUSE cannot be used here
 * (returned, the caller returns it), else a temporary directory
 * "$TMPDIR/raftkv-@tag-XXXXXX", a cluster file with @conf_extra appended
 * (lines such as "quota 12M\n"), and N started mounts.  Returns 0; fails
 * the test (CHECK) on anything else.
 */
int fsh_setup(const char *tag, const char *conf_extra);

void sleep_ms(long ms);
/* A free TCP port on 127.0.0.1 below the ephemeral range (0: none). */
unsigned free_port(void);
bool log_says(const char *path, const char *what); /* @path contains @what */
uint64_t now_ms(void); /* CLOCK_MONOTONIC */
/* Run @argv (stdout, stderr to /dev/null); its exit status or -1. */
int run(const char *const argv[]);
bool is_mounted(const char *path);
void unmount(int i);
/* Stop mount @i: unmount, then wait for the process (TERM after 20 s, KILL
 * after 30 s).  Returns its wait status (-1 if it was not running). */
int stop(int i);
/* stop() every mount and CHECK that each exited 0 after its unmount (no
 * sanitizer report, no leak, its threads ended); prints "ok clean stops". */
void fsh_stop_all_clean(void);
/* Start mount @i (after stop() or a kill) and wait until it is mounted. */
void start(int i);
void cleanup(void);
/* For a test that hangs: print to stderr the kernel stack of process
 * @pid and, when gdb is installed, every thread's backtrace. */
void fsh_dump_stack(pid_t pid);
/* fsh_dump_stack() of every running mount. */
void fsh_dump_mounts(void);
/* SIGCONT to every running mount (first thing in cleanup()). */
void fsh_resume_mounts(void);
/* @out (PATH_MAX bytes) = mount @i's path of the relative name. */
void pathf(char *out, int i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void put_file(const char *path, const char *s, int flags);
/* The file's contents (at most 64 KiB, static buffer), or NULL with
 * errno. */
char *get_file(const char *path);
void expect_file(int i, const char *rel, const char *want);
void expect_errno(int i, const char *rel, int want);
/* Set member @from's fault injection for its messages to member @to
 * (indexes): @drop_pct, @delay_ms, @blocked (cproto.h).  The call goes
 * through a client with the admin key; a failed call is logged and tried
 * again (3 tries of 5 s) before the CHECK fails. */
/* The number of keys under @prefix, read through a fresh clerk (linearizable). */
size_t fsh_count_keys(const char *prefix);

/*
 * Wait (up to 20 s) until @prefix holds @want keys; false if it never
 * did.  The kernel sends a file's release after close(2) has returned,
 * so what a close frees shows a little later.
 */
bool fsh_wait_keys(const char *prefix, size_t want);

void fsh_fault(int from, int to, unsigned drop_pct, unsigned delay_ms,
    bool blocked);
/* Block (or heal) every link between member @i and the others. */
void isolate(int i, bool blocked);
/* The index of the mount whose member leads now (asked until one knows). */
int leader_index(void);

#endif
