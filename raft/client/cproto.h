/*
 * cproto.h - the client protocol: requests to a member's client endpoint
 * and their replies (one ZeroMQ message each, after the routing frame).
 *
 * Request (little-endian):
 *   u16 magic 0x4b52 ("RK")  u8 version (1)  u8 op
 *   u64 cluster id  u64 request id  u32 timeout ms  u32 payload length
 *   payload
 * Reply:
 *   u16 magic  u8 version  u8 op | CPROTO_REPLY
 *   u64 request id  i32 status (0 or a negative code)  u64 leader hint
 *   u32 payload length  payload
 *
 * The payload of SUBMIT is an application command (e.g. a KV command,
 * kv/cmd.h) and of READ an application query; the reply payload is the
 * application's answer.  STATUS answers a struct cproto_status; FAULT and
 * TRANSFER carry the small structs below; MEMBER a struct
 * cproto_member_req, and its LIST answers a struct cproto_member_list.  Decoding checks magic, version,
 * op, lengths and that nothing trails: anything else is CPROTO_EMALFORMED.
 */
#ifndef RAFTKV_CPROTO_H
#define RAFTKV_CPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/err.h"
#include "raft/memberdir.h"
#include "raft/raft.h"

#define CPROTO_MAGIC 0x4b52
#define CPROTO_VERSION 1
#define CPROTO_REPLY 0x80
#define CPROTO_MAX_PAYLOAD (64u * 1024 * 1024 + 64 * 1024)
#define CPROTO_REQ_HDR 28
#define CPROTO_REP_HDR 28

enum cproto_op {
	CPROTO_SUBMIT = 1, /* replicate a command, reply once applied */
	CPROTO_READ = 2, /* linearizable query of the local state */
	CPROTO_STATUS = 3, /* the member's role, term, indices */
	CPROTO_FAULT = 4, /* fault injection (only when enabled) */
	CPROTO_TRANSFER = 5, /* leadership transfer */
	CPROTO_READ_STALE = 6, /* query local state without a barrier */
	CPROTO_MEMBER = 7, /* membership: list, add, promote, remove */
};

struct cproto_req {
	uint8_t op;
	uint64_t cluster_id;
	uint64_t req_id;
	uint32_t timeout_ms;
	uint32_t len;
	const uint8_t *payload; /* borrowed from the decoded buffer */
};

struct cproto_rep {
	uint8_t op;
	uint64_t req_id;
	int32_t status;
	uint64_t leader;
	uint32_t len;
	const uint8_t *payload;
};

struct cproto_status {
	uint64_t id, term, vote, leader, commit, applied, last_index;
	uint64_t snap_index, log_bytes, syncs, entries_persisted;
	uint8_t role;
};
#define CPROTO_STATUS_LEN (11 * 8 + 1)

struct cproto_fault {
	uint64_t peer;
	uint32_t drop_pct;
	uint32_t delay_ms;
	uint8_t blocked;
};
#define CPROTO_FAULT_LEN 17

/*
 * MEMBER request payload: action u8, id u64, then for ADD the new
 * member's directory entry as a one-entry directory (raft/memberdir.h).
 * LIST answers with any credential; ADD, PROMOTE and REMOVE are
 * administrative (CPROTO_EDENIED otherwise) and answered by the leader
 * once the change is committed (raft_propose_conf_change's codes).
 * LIST's reply payload: conf_index u64, n_voters u8, voters u64...,
 * n_learners u8, learners u64..., then the directory.
 */
enum cproto_member_action {
	CPROTO_MEMBER_LIST = 1,
	CPROTO_MEMBER_ADD = 2, /* as a learner */
	CPROTO_MEMBER_PROMOTE = 3, /* a caught-up learner to voter */
	CPROTO_MEMBER_REMOVE = 4,
};

struct cproto_member_req {
	uint8_t action;
	uint64_t id;
	struct memberdir_entry entry; /* ADD: entry.id == id */
};

struct cproto_member_list {
	uint64_t conf_index; /* where the configuration comes from */
	struct raft_conf conf;
	struct memberdir dir; /* the addresses the member knows */
};

/* Encoders: a fresh buffer (*@out, *@len; the caller frees); 0 or
 * -ENOMEM.  Decoders: 0 or CPROTO_EMALFORMED. */
int cproto_encode_member_req(const struct cproto_member_req *r, uint8_t **out,
    uint32_t *len);
int cproto_decode_member_req(const uint8_t *buf, size_t len,
    struct cproto_member_req *r);
int cproto_encode_member_list(const struct cproto_member_list *l, uint8_t **out,
    uint32_t *len);
int cproto_decode_member_list(const uint8_t *buf, size_t len,
    struct cproto_member_list *l);

/* True for the administrative ops (TRANSFER, FAULT): with authentication
 * on, a member answers them only to the admin credential (CPROTO_EDENIED
 * otherwise). */
bool cproto_op_is_admin(uint8_t op);

/* Encoders write header + payload into @buf (size needed: HDR + len). */
size_t cproto_encode_req(const struct cproto_req *r, uint8_t *buf);
size_t cproto_encode_rep(const struct cproto_rep *r, uint8_t *buf);
int cproto_decode_req(const uint8_t *buf, size_t len, struct cproto_req *r);
int cproto_decode_rep(const uint8_t *buf, size_t len, struct cproto_rep *r);

void cproto_encode_status(const struct cproto_status *s, uint8_t *buf);
int cproto_decode_status(const uint8_t *buf, size_t len,
    struct cproto_status *s);
void cproto_encode_fault(const struct cproto_fault *f, uint8_t *buf);
int cproto_decode_fault(const uint8_t *buf, size_t len, struct cproto_fault *f);

#endif
