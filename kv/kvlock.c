/*
 * kvlock.c - lock commands on the KV state (see kvlock.h).
 */
#include <string.h>

#include "kv/kvexec.h"
#include "kv/kvlock.h"

bool kvlock_is_mutation(uint8_t type)
{
	return type == KV_OP_LOCK || type == KV_OP_UNLOCK ||
	    type == KV_OP_UNLOCK_OWNER || type == KV_OP_CANCEL ||
	    type == KV_OP_KEEPALIVE;
}

uint64_t kvlock_resolve(const struct keyspace *ks, const struct kv_op *op,
    int *status)
{
	const struct kv_rec *r;

	*status = KV_OK;
	if (op->keylen == 0)
		return op->inode; /* the codec: then inode != 0 */
	r = kvexec_live(ks, op->key, op->keylen);
	if (r == NULL || (op->inode != 0 && r->ino->attr.inode != op->inode)) {
		*status = KV_ENOKEY;
		return 0;
	}
	return r->ino->attr.inode;
}

void kvlock_req(const struct kv_op *op, uint64_t session, uint64_t inode,
    struct locktab_req *rq)
{
	memset(rq, 0, sizeof(*rq));
	rq->inode = inode;
	rq->session = session;
	rq->owner = op->owner;
	rq->start = op->start;
	rq->end = op->end;
	rq->pid = op->pid;
	rq->kind = op->lkind;
	rq->mode = op->lmode;
	rq->wait = (op->flags & KV_F_WAIT) != 0;
}

int kvlock_exec(struct locktab *t, const struct keyspace *ks,
    const struct kv_cmd *c, uint64_t index, struct kv_result *out)
{
	struct locktab_req rq;
	uint64_t ino;
	int status;

	if (c->type == KV_OP_KEEPALIVE)
		return 0; /* the renewal is kv.c's, for every command */
	ino = kvlock_resolve(ks, &c->op, &status);
	if (status != KV_OK) {
		out->status = status;
		return 0;
	}
	kvlock_req(&c->op, c->client_id, ino, &rq);
	switch (c->type) {
	case KV_OP_LOCK:
		return locktab_lock(t, &rq, index, out);
	case KV_OP_UNLOCK:
		return locktab_unlock(t, &rq, index, out);
	case KV_OP_UNLOCK_OWNER:
		locktab_unlock_owner(t, ino, c->client_id, c->op.owner,
		    c->op.lkind, index, out);
		return 0;
	case KV_OP_CANCEL:
		locktab_cancel(t, &rq, index, out);
		return 0;
	default:
		out->status = KV_EINVAL; /* not reached: kvlock_is_mutation */
		return 0;
	}
}

void kvlock_getlk(const struct locktab *t, const struct keyspace *ks,
    uint64_t session, const struct kv_op *op, struct kv_result *out)
{
	struct locktab_req rq;
	uint64_t ino;
	int status;

	ino = kvlock_resolve(ks, op, &status);
	if (status != KV_OK) {
		out->status = status;
		return;
	}
	kvlock_req(op, session, ino, &rq);
	locktab_getlk(t, &rq, out);
}

int kvlock_fences(const struct locktab *t, const struct keyspace *ks,
    const struct kv_cmd *c, uint32_t *nfence, struct kv_result *out)
{
	struct kv_cmd_iter it;
	struct kv_op op;
	uint32_t i = 0;

	*nfence = 0;
	kv_cmd_op_iter(c, &it);
	while (kv_cmd_next_op(&it, &op) && op.type == KV_OP_FENCE) {
		int status;
		uint64_t ino = kvlock_resolve(ks, &op, &status);

		if (status == KV_OK && !locktab_fence(t, ino, op.token))
			status = KV_EFENCED;
		if (status != KV_OK) {
			out->status = status;
			out->fail_op = i;
			return status;
		}
		i++;
	}
	*nfence = i;
	return KV_OK;
}

void kvlock_skip_ops(const struct kv_cmd *c, uint32_t n, struct kv_cmd *rest)
{
	struct kv_cmd_iter it;
	struct kv_op op;

	*rest = *c;
	if (n == 0)
		return;
	rest->nops = c->nops - n;
	if (c->ops != NULL) {
		rest->ops = c->ops + n;
		return;
	}
	kv_cmd_op_iter(c, &it);
	for (uint32_t i = 0; i < n; i++)
		kv_cmd_next_op(&it, &op);
	rest->raw_ops = it.p;
	rest->raw_ops_len = c->raw_ops_len - (size_t)(it.p - c->raw_ops);
	if (rest->nops == 0) {
		rest->raw_ops = NULL;
		rest->raw_ops_len = 0;
	}
}
