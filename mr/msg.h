/*
 * msg.h - the coordinator <-> worker messages and their wire codec.
 *
 * Pure: encoding and decoding of a bounded, versioned binary message; rpc.c
 * moves them over ZeroMQ.  Layout (little-endian):
 *
 *   0  'M' 'R' version(1) type(1) phase(1) 0 0 0
 *   8  task attempt nmap nreduce wait_ms              5 x u32
 *  28  off len bytes_in bytes_out                     4 x u64
 *  60  s1len s2len                                    2 x u32
 *  68  s1 bytes, s2 bytes
 *
 * Worker -> coordinator: GET (s1 = worker name), HEARTBEAT, DONE (s1 =
 * counters text, bytes_in/out), FAIL (s1 = reason).  Coordinator ->
 * worker: TASK (map: s1 = input name, off/len = split; reduce: s1 = nmap
 * u32 accepted attempt numbers; s2 = OUTDIR; wait_ms = heartbeat period),
 * WAIT (wait_ms), EXIT, OK, ABANDON (stop this attempt: it is no longer
 * needed).  The decoder checks magic, version, type, phase, every length
 * against the frame, and the string bounds before anything is used.
 */
#ifndef RAFTKV_MR_MSG_H
#define RAFTKV_MR_MSG_H

#include <stddef.h>
#include <stdint.h>

#define MSG_VERSION 1
#define MSG_HDR 68
#define MSG_STR_MAX 32768u
#define MSG_MAX (MSG_HDR + 2 * MSG_STR_MAX)
/* The most map tasks a job may have (a reduce TASK lists one u32 each). */
#define MSG_MAX_MAPS (MSG_STR_MAX / 4)

enum msg_type {
	MSG_GET = 1,
	MSG_HEARTBEAT = 2,
	MSG_DONE = 3,
	MSG_FAIL = 4,
	MSG_TASK = 16,
	MSG_WAIT = 17,
	MSG_EXIT = 18,
	MSG_OK = 19,
	MSG_ABANDON = 20,
};

enum msg_phase {
	MSG_PHASE_NONE = 0,
	MSG_PHASE_MAP = 1,
	MSG_PHASE_REDUCE = 2,
};

struct msg {
	uint8_t type, phase;
	uint32_t task, attempt, nmap, nreduce, wait_ms;
	uint64_t off, len, bytes_in, bytes_out;
	const char *s1, *s2; /* borrowed: from the caller or the frame */
	uint32_t s1len, s2len;
};

/*
 * Encode @m into @buf (at least MSG_MAX bytes).  Returns the length, or
 * -EMSGSIZE if a string is longer than MSG_STR_MAX, -EINVAL for an unknown
 * type or phase.
 */
int msg_encode(const struct msg *m, uint8_t *buf, size_t size);

/*
 * Decode a frame of @len bytes.  On success @m's strings point into @buf
 * (valid while @buf is).  Returns 0 or -EBADMSG.
 */
int msg_decode(struct msg *m, const uint8_t *buf, size_t len);

const char *msg_type_name(int type);

#endif
