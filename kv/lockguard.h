/*
 * lockguard.h - the guard of `raftkv lock KEY -- command` (cli.c).
 *
 * The command runs in a process group of its own, so a SIGKILL of raftkv
 * (or of raftkv's group: `timeout -k`, `kill -9 -PGID`), or raftkv being
 * stopped while the command (or part of its group) is not, would leave
 * it running with nobody renewing the lease, as if it held the lock.
 * The guard is a small process of raftkv's ("raftkv-guard"), in a
 * session of its own (no terminal's or group's signal reaches it), that
 * kills the command's whole group with SIGKILL:
 *   - at once when raftkv dies (the end of a socket only raftkv holds);
 *   - when the lease deadline raftkv published passes by a margin,
 *     whatever the state of the group (raftkv stopped, dead-locked or
 *     too slow to act);
 *   - once the lock is lost, at the end of the grace raftkv gives the
 *     command (lockguard_kill_at()), even if raftkv is stopped by then.
 * raftkv publishes each new deadline after a renewal.  raftkv treats the
 * guard's own early end as fatal for the command (lockguard_alive()).
 * Linux only.
 */
#ifndef RAFTKV_KV_LOCKGUARD_H
#define RAFTKV_KV_LOCKGUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct lockguard;

/* Start the guard of process group @pgrp (the command's, its leader's
 * pid), which must end by @until_ms (mono_ms()) unless lockguard_renewed()
 * moves that on; @margin_ms past it the guard kills the group.  Returns
 * NULL (errno set) if it cannot: the caller must not run the command
 * then.  The guard is a child of the caller: its SIGCHLD comes too. */
struct lockguard *lockguard_start(pid_t pgrp, uint64_t until_ms, int margin_ms);

/* The lease is ours until @until_ms now (no effect after
 * lockguard_kill_at()). */
void lockguard_renewed(struct lockguard *g, uint64_t until_ms);

/* The lock is lost: the guard kills the group at @kill_at_ms (mono_ms())
 * at the latest, whatever raftkv does; renewals no longer move it, a
 * later call only brings it forward. */
void lockguard_kill_at(struct lockguard *g, uint64_t kill_at_ms);

/* Did the guard kill the group on a deadline? */
bool lockguard_fired(const struct lockguard *g);

/* Is the guard still running?  If it ended, it is reaped here (its wait
 * status in *@wstatus if not NULL) and false is returned from then on;
 * false for NULL. */
bool lockguard_alive(struct lockguard *g, int *wstatus);

/* End the guard without it killing anything (the command's group is
 * done with), reap it and free @g.  Safe if the guard died (no SIGPIPE).
 * NULL is a no-op. */
void lockguard_end(struct lockguard *g);

#endif
