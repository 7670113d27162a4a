/*
 * lockguard.h - the guard of `raftkv lock KEY -- command` (cli.c).
 *
 * The command runs in a process group of its own, so a SIGKILL of raftkv
 * (or of raftkv's group: `timeout -k`, `kill -9 -PGID`), or raftkv being
 * stopped while the command is not, would leave the command running with
 * nobody renewing the lease, as if it held the lock.  The guard is a
 * small process of raftkv's, in a session of its own (no terminal's or
 * group's signal reaches it), that watches for that and kills the
 * command's whole group with SIGKILL:
 *   - at once when raftkv dies (the end of a pipe only raftkv writes);
 *   - when the lease deadline raftkv published passes by a margin while
 *     the command's leader is not stopped (raftkv stopped, dead-locked or
 *     too slow to act, and the command running).
 * raftkv publishes each new deadline after a renewal, and stands the
 * guard down (lockguard_stand_down()) when it deals with a lost lock
 * itself (SIGTERM, grace, SIGKILL: raftkv(1)).  Linux only (/proc).
 */
#ifndef RAFTKV_KV_LOCKGUARD_H
#define RAFTKV_KV_LOCKGUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct lockguard;

/* Start the guard of process group @pgrp (the command's, its leader's
 * pid), which must end by @until_ms (mono_ms()) unless lockguard_renewed()
 * moves that on; @margin_ms past it the guard kills the group unless its
 * leader is stopped.  Returns NULL (errno set) if it cannot: the caller
 * then runs without one. */
struct lockguard *lockguard_start(pid_t pgrp, uint64_t until_ms, int margin_ms);

/* The lease is ours until @until_ms now. */
void lockguard_renewed(struct lockguard *g, uint64_t until_ms);

/* raftkv deals with the group itself from now on (lost lock): the guard
 * kills nothing on a deadline, only if raftkv dies. */
void lockguard_stand_down(struct lockguard *g);

/* Did the guard kill the group (a deadline passed with the command
 * running)? */
bool lockguard_fired(const struct lockguard *g);

/* End the guard without it killing anything (the command's group is
 * done with), reap it and free @g.  NULL is a no-op. */
void lockguard_end(struct lockguard *g);

#endif
