/*
 * clerk.c - the KV client library (contract in clerk.h).
 *
 * One attempt = one request to one member (raft/client/client.c).  What an
 * attempt's outcome means for the retry loop:
 *
 *   reply, status 0            done: decode the application's answer
 *   NOT_LEADER / NO_LEADER     try the hinted leader, else the next member
 *   ETIMEDOUT / ELOST / BUSY   the member could not say; retry (for a
 *                              mutation the request may have applied:
 *                              remember that it was sent)
 *   SHUTDOWN, unreachable      next member
 *   no reply before try time   next member; a mutation "may have applied"
 *
 * "May have applied" matters only when the deadline passes (KV_EMAYBE
 * instead of CLERK_EUNAVAILABLE) and in the seeds' mode, where a re-sent
 * Put answered ErrVersion becomes ErrMaybe.  With sessions the state
 * machine recognises the retry (same client id and seq) and answers with
 * the first result, so the answer is exact.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv/clerk.h"
#include "kv/kv.h"
#include "kv/query.h"
#include "raft/client/client.h"
#include "raft/client/cproto.h"
#include "raft/le.h"
#include "raft/err.h"
#include "raft/util/clock.h"

struct clerk {
	struct cluster cl;
	struct clerk_options o;
	struct client *cli;
	int leader; /* member index, -1 unknown */
	uint32_t next_try;
	uint64_t client_id; /* 0: no session yet */
	uint64_t seq;
	uint64_t session_used_ms; /* mono_ms() of its last mutation's answer */
	uint64_t session_ttl_ms; /* the cluster's idle session lifetime */
	bool session_pinned; /* its id was given out or resumed */
};

struct attempt {
	bool maybe_sent; /* some attempt may have reached the log */
	int tries;
};

void clerk_options_defaults(struct clerk_options *o)
{
	memset(o, 0, sizeof(*o));
	o->deadline_ms = 10000;
	o->try_timeout_ms = 1000;
	o->backoff_min_ms = 5;
	o->backoff_max_ms = 200;
	o->prefer_member = -1;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int clerk_new(const struct cluster *cl, const struct clerk_options *opt,
    struct clerk **out)
{
	struct clerk *ck = calloc(1, sizeof(*ck));
	int rv;

	if (ck == NULL)
		return -ENOMEM;
	ck->cl = *cl;
	if (opt)
		ck->o = *opt;
	else
		clerk_options_defaults(&ck->o);
	if (ck->o.deadline_ms <= 0 || ck->o.try_timeout_ms <= 0 ||
	    ck->o.backoff_min_ms <= 0 ||
	    ck->o.backoff_max_ms < ck->o.backoff_min_ms) {
		free(ck);
		return -EINVAL;
	}
	ck->leader = ck->o.prefer_member >= 0 &&
	        (uint32_t)ck->o.prefer_member < cl->n
	    ? ck->o.prefer_member
	    : -1;
	ck->next_try = (uint32_t)rand() % cl->n;
	ck->session_ttl_ms = cl->session_ttl_ms > 0
	    ? (uint64_t)cl->session_ttl_ms
	    : (uint64_t)(KV_SESSION_TTL_NS / 1000000);
	rv = client_new(cl, ck->o.zctx, &ck->cli);
	if (rv != 0) {
		free(ck);
		return rv;
	}
	if (ck->o.loss_pct)
		client_set_loss(ck->cli, ck->o.loss_pct, ck->o.loss_seed);
	*out = ck;
	return 0;
}

void clerk_free(struct clerk *ck)
{
	if (ck == NULL)
		return;
	client_free(ck->cli);
	free(ck);
}

const char *clerk_strerror(int rv)
{
	if (rv == KV_EMAYBE)
		return "ErrMaybe (the operation may or may not have applied)";
	if (rv == CLERK_EUNAVAILABLE)
		return "cluster unavailable (no member answered in time)";
	if (rv >= 0 && rv < KV_STATUS_COUNT)
		return kv_status_name(rv);
	if (rv < 0 && rv > -1000)
		return strerror(-rv);
	return rk_strerror(rv);
}

static int pick(struct clerk *ck)
{
	if (ck->leader >= 0)
		return ck->leader;
	return (int)(ck->next_try++ % ck->cl.n);
}

/*
 * Membership changes: the leader a member names may be one added since
 * the cluster file was written.  Ask that member (it just answered) for
 * the current members (CPROTO_MEMBER LIST) and talk to them from now on.
 * Best effort: on any failure the clerk goes on with what it has.
 */
static void refresh_members(struct clerk *ck, int asked)
{
	struct cproto_member_req req = { .action = CPROTO_MEMBER_LIST };
	struct cproto_member_list *l = malloc(sizeof(*l));
	struct cluster *cl = malloc(sizeof(*cl));
	struct client_reply rep = { 0 };
	struct client *cli = NULL;
	uint8_t *buf = NULL;
	uint32_t len;

	if (l == NULL || cl == NULL ||
	    cproto_encode_member_req(&req, &buf, &len) != 0 ||
	    client_call(ck->cli, (uint32_t)asked, CPROTO_MEMBER, buf, len,
	        ck->o.try_timeout_ms, &rep) != 0 ||
	    rep.status != 0 ||
	    cproto_decode_member_list(rep.data, rep.len, l) != 0)
		goto out;
	*cl = ck->cl;
	cl->n = 0;
	for (uint32_t i = 0; i < l->dir.n && cl->n < RAFT_MAX_MEMBERS; i++) {
		const struct memberdir_entry *e = &l->dir.m[i];
		struct cluster_member *m = &cl->members[cl->n];
		bool member = false;

		for (uint32_t k = 0; k < l->conf.n_voters; k++)
			member |= l->conf.voters[k] == e->id;
		for (uint32_t k = 0; k < l->conf.n_learners; k++)
			member |= l->conf.learners[k] == e->id;
		if (!member)
			continue;
		m->id = e->id;
		snprintf(m->peer, sizeof(m->peer), "%s", e->peer);
		snprintf(m->client, sizeof(m->client), "%s", e->client);
		snprintf(m->key, sizeof(m->key), "%s", e->key);
		cl->n++;
	}
	if (cl->n == 0 || client_new(cl, ck->o.zctx, &cli) != 0)
		goto out;
	if (ck->o.loss_pct)
		client_set_loss(cli, ck->o.loss_pct, ck->o.loss_seed);
	client_free(ck->cli);
	ck->cli = cli;
	ck->cl = *cl;
	ck->next_try = 0;
out:
	free(rep.data);
	free(buf);
	if (cl != NULL)
		explicit_bzero(cl, sizeof(*cl));
	free(cl);
	free(l);
}

static void follow_hint(struct clerk *ck, int tried, uint64_t hint)
{
	int idx = hint ? client_index_of(ck->cli, hint) : -1;

	if (hint != 0 && idx < 0) {
		refresh_members(ck, tried);
		idx = client_index_of(ck->cli, hint);
		tried = -1; /* indexes changed */
	}

	ck->leader = idx >= 0 && idx != tried ? idx : -1;
	if (ck->leader < 0)
		ck->next_try = (uint32_t)(tried + 1);
}

/*
 * Send @op until a member gives a definite answer (status 0 in *@rep) or
 * the deadline passes.  Returns 0, CLERK_EUNAVAILABLE, or a definite
 * error status from a member.
 */
static int call(struct clerk *ck, uint8_t op, const void *payload, uint32_t len,
    struct attempt *at, struct client_reply *rep)
{
	uint64_t deadline = mono_ms() + (uint64_t)ck->o.deadline_ms;
	int backoff = ck->o.backoff_min_ms;

	for (;;) {
		uint64_t now = mono_ms();
		int idx, tmo, rv;

		if (now >= deadline)
			return CLERK_EUNAVAILABLE;
		tmo = ck->o.try_timeout_ms;
		if ((uint64_t)tmo > deadline - now)
			tmo = (int)(deadline - now);
		idx = pick(ck);
		at->tries++;
		rv = client_call(ck->cli, (uint32_t)idx, op, payload, len, tmo,
		    rep);
		if (rv == 0 && rep->status == 0) {
			ck->leader = idx;
			return 0;
		}
		if (rv == 0) {
			switch (rep->status) {
			case RAFT_ENOTLEADER:
			case NODE_ENOLEADER:
				follow_hint(ck, idx, rep->leader);
				break;
			case NODE_ETIMEDOUT:
			case NODE_ELOST:
			case RAFT_EBUSY:
			case RAFT_ETRANSFER:
				at->maybe_sent |= rep->status == NODE_ETIMEDOUT;
				ck->leader = -1;
				ck->next_try = (uint32_t)idx + 1;
				break;
			case NODE_ESHUTDOWN:
				ck->leader = -1;
				ck->next_try = (uint32_t)idx + 1;
				break;
			default:
				return rep->status; /* definite: bad request */
			}
			free(rep->data);
			memset(rep, 0, sizeof(*rep));
			if (ck->leader >= 0)
				continue; /* a fresh hint: no need to wait */
		} else if (rv == CLIENT_ETIMEDOUT) {
			at->maybe_sent = true;
			ck->leader = -1;
			ck->next_try = (uint32_t)idx + 1;
		} else if (rv == CLIENT_EUNREACHABLE) {
			ck->leader = -1;
			ck->next_try = (uint32_t)idx + 1;
		} else {
			return rv;
		}
		sleep_ms(backoff);
		backoff = backoff * 2 > ck->o.backoff_max_ms
		    ? ck->o.backoff_max_ms
		    : backoff * 2;
	}
}

static int submit(struct clerk *ck, struct kv_cmd *c, struct attempt *at,
    struct kv_result *res)
{
	struct client_reply rep;
	void *buf;
	size_t len;
	int rv;

	rv = kv_cmd_encode_alloc(c, &buf, &len);
	if (rv != 0)
		return rv;
	rv = call(ck, CPROTO_SUBMIT, buf, (uint32_t)len, at, &rep);
	free(buf);
	if (rv != 0)
		return rv;
	rv = kv_result_decode(rep.data, rep.len, res);
	res->value = NULL; /* points into rep.data, freed below */
	res->value_len = 0;
	free(rep.data);
	return rv == 0 ? 0 : -EBADMSG;
}

static int ensure_session(struct clerk *ck)
{
	struct kv_cmd c = { .type = KV_OP_REGISTER };
	struct attempt at = { 0 };
	struct kv_result res;
	int rv;

	if (ck->o.no_sessions || ck->client_id != 0)
		return 0;
	rv = submit(ck, &c, &at, &res);
	if (rv != 0)
		return rv;
	if (res.status != KV_OK || res.client_id == 0)
		return -EPROTO;
	ck->client_id = res.client_id;
	ck->seq = 0;
	ck->session_used_ms = mono_ms();
	return 0;
}

/*
 * A session idle for half the cluster's session TTL may be evicted by the
 * time this mutation is applied (kv.h, SESSIONS).  Under an evicted
 * session a retry answers ErrSession, and if an earlier attempt went to a
 * leader that died without answering, the clerk cannot tell whether that
 * attempt applied: ErrMaybe for a plain write on a merely idle client.  So
 * such a session is given up before the mutation and a new one registered
 * first (the old one expires unused).  Not for session_strict clerks,
 * whose session identity is the point (the lock clerk keeps its own
 * alive), nor once clerk_session() gave the id out,
 * clerk_resume_session() took one up or a lock command or keepalive used
 * it (locks are held by the session).
 */
static void drop_idle_session(struct clerk *ck)
{
	if (ck->o.no_sessions || ck->o.session_strict || ck->client_id == 0 ||
	    ck->session_pinned)
		return;
	if (mono_ms() - ck->session_used_ms > ck->session_ttl_ms / 2)
		ck->client_id = 0;
}

int clerk_mutate(struct clerk *ck, struct kv_cmd *c, struct kv_result *res)
{
	struct attempt at = { 0 };
	int rv;

	kv_result_init(res);
	drop_idle_session(ck);
	for (int round = 0; round < 3; round++) {
		rv = ensure_session(ck);
		if (rv != 0)
			return rv == CLERK_EUNAVAILABLE && at.maybe_sent
			    ? KV_EMAYBE
			    : rv;
		c->client_id = ck->client_id;
		c->seq = ck->o.no_sessions ? 0 : ++ck->seq;
		c->time_ns = 0; /* the proposing member stamps its clock */
		rv = submit(ck, c, &at, res);
		if (rv == CLERK_EUNAVAILABLE)
			return at.maybe_sent ? KV_EMAYBE : rv;
		if (rv != 0)
			return rv;
		if (res->status == KV_ESESSION) {
			/* Evicted: a new session cannot tell whether the
			 * pending op applied. */
			ck->client_id = 0;
			if (at.maybe_sent || at.tries > 1)
				return KV_EMAYBE;
			if (ck->o.session_strict)
				return KV_ESESSION;
			continue;
		}
		ck->session_used_ms = mono_ms();
		if (res->status == KV_ESTALE)
			return KV_EMAYBE;
		if (ck->o.no_sessions && at.tries > 1 && at.maybe_sent &&
		    res->status == KV_EVERSION)
			return KV_EMAYBE; /* the seeds' rule */
		return res->status;
	}
	return KV_EMAYBE;
}

int clerk_put(struct clerk *ck, const void *key, size_t keylen,
    const void *value, size_t len, uint64_t version, uint32_t flags,
    const struct kv_meta *meta, struct kv_attr *attr)
{
	struct kv_cmd c = { .type = KV_OP_PUT };
	struct kv_result res;
	int rv;

	if (keylen == 0 || keylen > KV_KEY_MAX)
		return -EINVAL;
	if (len > KV_VALUE_MAX)
		return KV_ETOOBIG; /* what the member would answer */
	c.op.type = KV_OP_PUT;
	c.op.flags = flags;
	c.op.version = version;
	c.op.key = key;
	c.op.keylen = (uint32_t)keylen;
	c.op.data = value;
	c.op.datalen = (uint32_t)len;
	if (meta)
		c.op.meta = *meta;
	else
		c.op.meta = (struct kv_meta){ .kind = KV_KIND_FILE,
			.mode = 0644 };
	rv = clerk_mutate(ck, &c, &res);
	if (rv == KV_OK && attr)
		*attr = res.attr;
	return rv;
}

int clerk_delete(struct clerk *ck, const void *key, size_t keylen,
    uint64_t version, uint32_t flags, struct kv_attr *attr)
{
	struct kv_cmd c = { .type = KV_OP_DELETE };
	struct kv_result res;
	int rv;

	if (keylen == 0 || keylen > KV_KEY_MAX)
		return -EINVAL;
	c.op.type = KV_OP_DELETE;
	c.op.flags = flags;
	c.op.version = version;
	c.op.key = key;
	c.op.keylen = (uint32_t)keylen;
	rv = clerk_mutate(ck, &c, &res);
	if (rv == KV_OK && attr)
		*attr = res.attr;
	return rv;
}

static int read_query(struct clerk *ck, int idx, const struct query *q,
    struct client_reply *rep)
{
	struct attempt at = { 0 };
	uint8_t *buf;
	size_t len;
	int rv = query_encode(q, &buf, &len);

	if (rv != 0)
		return rv;
	if (idx < 0) {
		rv = call(ck, CPROTO_READ, buf, (uint32_t)len, &at, rep);
	} else {
		rv = client_call(ck->cli, (uint32_t)idx, CPROTO_READ_STALE, buf,
		    (uint32_t)len, ck->o.try_timeout_ms, rep);
		if (rv == 0 && rep->status != 0) {
			rv = rep->status;
			free(rep->data);
		}
		if (rv == CLIENT_ETIMEDOUT || rv == CLIENT_EUNREACHABLE)
			rv = CLERK_EUNAVAILABLE;
	}
	free(buf);
	return rv;
}

static int get_common(struct clerk *ck, int idx, const void *key, size_t keylen,
    struct kv_attr *attr, void **value, size_t *len)
{
	struct query q = { .kind = QUERY_GET,
		.key = key,
		.keylen = (uint32_t)keylen };
	struct client_reply rep;
	struct kv_result res;
	int rv;

	if (value)
		*value = NULL;
	if (len)
		*len = 0;
	if (keylen == 0 || keylen > KV_KEY_MAX)
		return -EINVAL;
	if (value == NULL) {
		/* Attributes only: a read of no bytes, so that the member
		 * copies no value, and a value of any size answers OK. */
		q.kind = QUERY_READ;
		q.offset = 0;
		q.length = 0;
	}
	rv = read_query(ck, idx, &q, &rep);
	if (rv != 0)
		return rv;
	if (kv_result_decode(rep.data, rep.len, &res) != 0) {
		free(rep.data);
		return -EBADMSG;
	}
	if (res.status == KV_ETOOBIG && attr)
		*attr = res.attr; /* the size: read it in ranges */
	if (res.status == KV_OK) {
		if (attr)
			*attr = res.attr;
		if (value && res.value_len) {
			*value = malloc(res.value_len);
			if (*value == NULL) {
				free(rep.data);
				return -ENOMEM;
			}
			memcpy(*value, res.value, res.value_len);
		}
		if (len)
			*len = res.value_len;
	}
	free(rep.data);
	return res.status;
}

int clerk_read(struct clerk *ck, const void *key, size_t keylen,
    uint64_t offset, void *buf, size_t cap, struct kv_attr *attr, size_t *n)
{
	struct query q = { .kind = QUERY_READ,
		.key = key,
		.keylen = (uint32_t)keylen,
		.offset = offset,
		.length = (uint32_t)cap };
	struct client_reply rep;
	struct kv_result res;
	int rv;

	*n = 0;
	if (keylen == 0 || keylen > KV_KEY_MAX || cap > KV_VALUE_MAX ||
	    (buf == NULL && cap > 0))
		return -EINVAL;
	rv = read_query(ck, -1, &q, &rep);
	if (rv != 0)
		return rv;
	if (kv_result_decode(rep.data, rep.len, &res) != 0 ||
	    res.value_len > cap) {
		free(rep.data);
		return -EBADMSG;
	}
	if (res.status == KV_OK) {
		if (attr)
			*attr = res.attr;
		if (res.value_len > 0)
			memcpy(buf, res.value, res.value_len);
		*n = res.value_len;
	}
	free(rep.data);
	return res.status;
}

/* One attempt of clerk_get_large() at a value described by @a (from its
 * first read): KV_OK with the whole value in @v, KV_EVERSION if it
 * changed meanwhile, or an error. */
static int read_ranges(struct clerk *ck, const void *key, size_t keylen,
    size_t chunk, const struct kv_attr *a, unsigned char *v)
{
	for (uint64_t off = 0; off < a->size;) {
		struct kv_attr b;
		size_t want = a->size - off < chunk ? (size_t)(a->size - off)
		                                    : chunk;
		size_t n;
		int rv = clerk_read(ck, key, keylen, off, v + off, want, &b,
		    &n);

		if (rv != KV_OK)
			return rv == KV_ENOKEY ? KV_EVERSION : rv;
		if (b.inode != a->inode || b.version != a->version)
			return KV_EVERSION;
		if (n != want || b.size != a->size)
			return -EBADMSG; /* same version, other size: a bug */
		off += n;
	}
	return KV_OK;
}

int clerk_get_large(struct clerk *ck, const void *key, size_t keylen,
    size_t chunk, int retries, struct kv_attr *attr, void **value, size_t *len)
{
	int rv;

	if (value == NULL || len == NULL)
		return -EINVAL;
	if (chunk == 0 || chunk > KV_VALUE_MAX)
		chunk = KV_VALUE_MAX;
	for (int attempt = 0;; attempt++) {
		struct kv_attr a;
		unsigned char *v;

		rv = clerk_get(ck, key, keylen, &a, value, len);
		if (rv != KV_ETOOBIG) {
			if (rv == KV_OK && attr)
				*attr = a;
			return rv;
		}
		if (a.size > KV_FILE_MAX)
			return -EBADMSG;
		v = malloc((size_t)a.size);
		if (v == NULL)
			return -ENOMEM;
		rv = read_ranges(ck, key, keylen, chunk, &a, v);
		if (rv == KV_OK) {
			if (attr)
				*attr = a;
			*value = v;
			*len = (size_t)a.size;
			return KV_OK;
		}
		free(v);
		if (rv != KV_EVERSION || attempt >= retries)
			return rv;
	}
}

int clerk_usage(struct clerk *ck, uint64_t *used, uint64_t *quota,
    uint64_t *keys)
{
	struct query q = { .kind = QUERY_USAGE };
	struct client_reply rep;
	const uint8_t *b;
	int rv = read_query(ck, -1, &q, &rep);

	if (rv != 0)
		return rv;
	b = rep.data;
	if (rep.len != QUERY_USAGE_LEN || b[0] != QUERY_VERSION ||
	    b[1] != KV_OK) {
		free(rep.data);
		return -EBADMSG;
	}
	*used = le_get64(b + 2);
	*quota = le_get64(b + 10);
	*keys = le_get64(b + 18);
	free(rep.data);
	return KV_OK;
}

int clerk_get(struct clerk *ck, const void *key, size_t keylen,
    struct kv_attr *attr, void **value, size_t *len)
{
	return get_common(ck, -1, key, keylen, attr, value, len);
}

int clerk_get_stale(struct clerk *ck, uint32_t idx, const void *key,
    size_t keylen, struct kv_attr *attr, void **value, size_t *len)
{
	if (idx >= ck->cl.n)
		return -EINVAL;
	return get_common(ck, (int)idx, key, keylen, attr, value, len);
}

void clerk_entries_free(struct clerk_entry *e, size_t n)
{
	for (size_t i = 0; e && i < n; i++)
		free(e[i].key);
	free(e);
}

static int parse_list(const uint8_t *b, size_t len, struct clerk_entry **out,
    size_t *n)
{
	struct clerk_entry *e;
	size_t off = 6;
	uint32_t count;

	if (len < 6 || b[0] != QUERY_VERSION)
		return -EBADMSG;
	if (b[1] != KV_OK)
		return b[1];
	count = le_get32(b + 2);
	if (count > QUERY_LIST_PAGE_MAX)
		return -EBADMSG;
	e = calloc(count ? count : 1, sizeof(*e));
	if (e == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t kl;

		if (len - off < 4)
			goto bad;
		kl = le_get32(b + off);
		off += 4;
		if (kl == 0 || kl > KV_KEY_MAX ||
		    len - off < (size_t)kl + QUERY_ATTR_LEN)
			goto bad;
		e[i].key = malloc(kl + 1);
		if (e[i].key == NULL) {
			clerk_entries_free(e, count);
			return -ENOMEM;
		}
		memcpy(e[i].key, b + off, kl);
		e[i].key[kl] = '\0';
		e[i].keylen = kl;
		off += kl;
		query_get_attr(b + off, &e[i].attr);
		off += QUERY_ATTR_LEN;
	}
	if (off != len)
		goto bad;
	*out = e;
	*n = count;
	return KV_OK;
bad:
	clerk_entries_free(e, count);
	return -EBADMSG;
}

int clerk_list(struct clerk *ck, const void *prefix, size_t prefixlen,
    const void *after, size_t afterlen, uint32_t limit, int delim,
    struct clerk_entry **out, size_t *n)
{
	struct query q = { .kind = QUERY_LIST,
		.key = prefix,
		.keylen = (uint32_t)prefixlen,
		.after = after,
		.afterlen = (uint32_t)afterlen,
		.limit = limit,
		.delim = delim };
	struct client_reply rep;
	int rv;

	*out = NULL;
	*n = 0;
	if (delim < -1 || delim > 255)
		return -EINVAL;
	rv = read_query(ck, -1, &q, &rep);
	if (rv != 0)
		return rv;
	rv = parse_list(rep.data, rep.len, out, n);
	free(rep.data);
	return rv;
}

int clerk_member_status(struct clerk *ck, uint32_t idx,
    struct cproto_status *st)
{
	struct client_reply rep;
	int rv;

	if (idx >= ck->cl.n)
		return -EINVAL;
	rv = client_call(ck->cli, idx, CPROTO_STATUS, NULL, 0,
	    ck->o.try_timeout_ms, &rep);
	if (rv != 0)
		return rv;
	rv = rep.status ? rep.status
	                : cproto_decode_status(rep.data, rep.len, st);
	free(rep.data);
	return rv;
}

uint32_t clerk_members(const struct clerk *ck)
{
	return ck->cl.n;
}

/* ------------------------------------------------------------------------
 * Locks (clerk.h)
 * ------------------------------------------------------------------------ */

int clerk_session(struct clerk *ck, uint64_t *session)
{
	int rv;

	if (ck->o.no_sessions)
		return -EINVAL;
	rv = ensure_session(ck);
	if (rv == 0) {
		*session = ck->client_id;
		ck->session_pinned = true;
	}
	return rv;
}

/* @rq as the body of a lock command of @type. */
static int lock_cmd(const struct clerk_lock_req *rq, uint8_t type,
    struct kv_cmd *c)
{
	if (rq->keylen > KV_KEY_MAX || (rq->keylen == 0 && rq->inode == 0))
		return -EINVAL;
	memset(c, 0, sizeof(*c));
	c->type = type;
	c->op.type = type;
	c->op.key = rq->keylen ? rq->key : NULL;
	c->op.keylen = (uint32_t)rq->keylen;
	c->op.inode = rq->inode;
	c->op.lkind = rq->kind;
	c->op.owner = rq->owner;
	if (rq->kind == KV_LK_POSIX && type != KV_OP_UNLOCK_OWNER) {
		c->op.start = rq->start;
		c->op.end = rq->end;
	}
	if (type == KV_OP_LOCK || type == KV_OP_GETLK)
		c->op.lmode = rq->mode;
	if (type == KV_OP_LOCK)
		c->op.pid = rq->pid;
	return kv_cmd_size(c) == 0 ? -EINVAL : 0;
}

static int lock_mutate(struct clerk *ck, const struct clerk_lock_req *rq,
    uint8_t type, uint32_t flags, struct kv_result *res)
{
	struct kv_cmd c;
	int rv;

	kv_result_init(res);
	if (ck->o.no_sessions)
		return -EINVAL;
	rv = lock_cmd(rq, type, &c);
	if (rv != 0)
		return rv;
	c.op.flags = flags;
	ck->session_pinned = true; /* its locks are the session's */
	return clerk_mutate(ck, &c, res);
}

int clerk_lock(struct clerk *ck, const struct clerk_lock_req *rq, bool wait,
    uint64_t *token, struct kv_lock *conflict)
{
	struct kv_result res;
	int rv = lock_mutate(ck, rq, KV_OP_LOCK, wait ? KV_F_WAIT : 0, &res);

	if (rv == KV_OK && token != NULL)
		*token = res.attr.version;
	if (rv == KV_ELOCKED && conflict != NULL) {
		if (res.flags & KV_RES_LOCK)
			*conflict = res.lock;
		else
			memset(conflict, 0, sizeof(*conflict)); /* a DUP */
	}
	return rv;
}

/* A lock query (GETLK, LOCKWAIT) holding @c, asked with per-attempt
 * timeouts of @extra_ms more than usual; the answer in @res. */
static int lock_query(struct clerk *ck, uint8_t kind, struct kv_cmd *c,
    uint32_t limit, int extra_ms, struct kv_result *res)
{
	struct query q = { .kind = kind, .limit = limit };
	struct client_reply rep;
	struct clerk_options saved = ck->o;
	void *buf;
	size_t len;
	int rv;

	kv_result_init(res);
	rv = kv_cmd_encode_alloc(c, &buf, &len);
	if (rv != 0)
		return rv;
	q.key = buf;
	q.keylen = (uint32_t)len;
	ck->o.try_timeout_ms += extra_ms;
	if (ck->o.deadline_ms < ck->o.try_timeout_ms + saved.try_timeout_ms)
		ck->o.deadline_ms = ck->o.try_timeout_ms + saved.try_timeout_ms;
	rv = read_query(ck, -1, &q, &rep);
	ck->o = saved;
	free(buf);
	if (rv != 0)
		return rv;
	rv = kv_result_decode(rep.data, rep.len, res);
	res->value = NULL;
	res->value_len = 0;
	free(rep.data);
	return rv == 0 ? res->status : -EBADMSG;
}

int clerk_lock_wait(struct clerk *ck, const struct clerk_lock_req *rq,
    int wait_ms, uint64_t *token)
{
	struct kv_result res;
	struct kv_cmd c;
	uint64_t t0;
	int rv;

	if (wait_ms < 0 || wait_ms > QUERY_LOCKWAIT_MAX_MS || ck->o.no_sessions)
		return -EINVAL;
	rv = lock_cmd(rq, KV_OP_LOCK, &c);
	if (rv == 0)
		rv = clerk_session(ck, &c.client_id);
	if (rv != 0)
		return rv;
	t0 = mono_ms();
	rv = lock_query(ck, QUERY_LOCKWAIT, &c, (uint32_t)wait_ms, wait_ms,
	    &res);
	if (rv == KV_OK && token != NULL)
		*token = res.attr.version;
	/* Queued long before the wait was over: the member was full of
	 * waiters (kv.h) and only looked.  Pause before the caller asks
	 * again: the one place a lock wait polls. */
	if (rv == KV_EQUEUED && mono_ms() - t0 < (uint64_t)wait_ms / 2) {
		int pause = 50 + rand() % 200;

		sleep_ms(pause < wait_ms ? pause : wait_ms);
	}
	return rv;
}

int clerk_unlock(struct clerk *ck, const struct clerk_lock_req *rq)
{
	struct kv_result res;

	return lock_mutate(ck, rq, KV_OP_UNLOCK, 0, &res);
}

int clerk_unlock_owner(struct clerk *ck, const struct clerk_lock_req *rq)
{
	struct kv_result res;

	return lock_mutate(ck, rq, KV_OP_UNLOCK_OWNER, 0, &res);
}

int clerk_lock_cancel(struct clerk *ck, const struct clerk_lock_req *rq)
{
	struct kv_result res;

	return lock_mutate(ck, rq, KV_OP_CANCEL, 0, &res);
}

int clerk_lock_acquire(struct clerk *ck, const struct clerk_lock_req *rq,
    int timeout_ms, int keepalive_ms, uint64_t *token)
{
	uint64_t start = mono_ms();
	int rv;

	if (keepalive_ms <= 0 || keepalive_ms > QUERY_LOCKWAIT_MAX_MS)
		return -EINVAL;
	rv = clerk_lock(ck, rq, true, token, NULL);
	if (rv != KV_EQUEUED)
		return rv;
	for (;;) {
		int slice = keepalive_ms;

		if (timeout_ms >= 0) {
			uint64_t spent = mono_ms() - start;

			if (spent >= (uint64_t)timeout_ms)
				break;
			if ((uint64_t)slice > timeout_ms - spent)
				slice = (int)(timeout_ms - spent);
		}
		rv = clerk_lock_wait(ck, rq, slice, token);
		if (rv != KV_EQUEUED)
			return rv; /* KV_OK, KV_ENOLOCK, errors */
		rv = clerk_keepalive(ck);
		if (rv != KV_OK)
			return rv;
	}
	/* Timed out: withdraw; if the grant won the race, give it back. */
	rv = clerk_lock_cancel(ck, rq);
	if (rv != KV_OK)
		return rv;
	if (clerk_lock_wait(ck, rq, 0, NULL) == KV_OK) {
		rv = clerk_unlock(ck, rq);
		if (rv != KV_OK)
			return rv;
	}
	return KV_ELOCKED;
}

int clerk_getlk(struct clerk *ck, const struct clerk_lock_req *rq,
    struct kv_lock *conflict)
{
	struct kv_result res;
	struct kv_cmd c;
	int rv = lock_cmd(rq, KV_OP_GETLK, &c);

	if (rv != 0)
		return rv;
	c.client_id = ck->client_id; /* 0: every lock is someone else's */
	rv = lock_query(ck, QUERY_GETLK, &c, 0, 0, &res);
	if (rv == KV_ELOCKED && conflict != NULL)
		*conflict = res.lock;
	return rv;
}

int clerk_keepalive(struct clerk *ck)
{
	struct kv_cmd c = { .type = KV_OP_KEEPALIVE };
	struct kv_result res;

	if (ck->o.no_sessions)
		return -EINVAL;
	ck->session_pinned = true;
	return clerk_mutate(ck, &c, &res);
}

int clerk_put_fenced(struct clerk *ck, const void *lock, size_t locklen,
    uint64_t token, const void *key, size_t keylen, const void *value,
    size_t len, uint64_t version, uint32_t flags, const struct kv_meta *meta,
    struct kv_attr *attr)
{
	struct kv_op ops[2] = {
		{ .type = KV_OP_FENCE,
		    .key = lock,
		    .keylen = (uint32_t)locklen,
		    .token = token },
		{ .type = KV_OP_PUT,
		    .flags = flags,
		    .version = version,
		    .key = key,
		    .keylen = (uint32_t)keylen,
		    .data = value,
		    .datalen = (uint32_t)len },
	};
	struct kv_cmd c = { .type = KV_OP_TXN, .ops = ops, .nops = 2 };
	struct kv_result res;
	int rv;

	if (locklen == 0 || locklen > KV_KEY_MAX || keylen == 0 ||
	    keylen > KV_KEY_MAX || token == 0)
		return -EINVAL;
	if (len > KV_VALUE_MAX)
		return KV_ETOOBIG;
	ops[1].meta = meta
	    ? *meta
	    : (struct kv_meta){ .kind = KV_KIND_FILE, .mode = 0644 };
	rv = clerk_mutate(ck, &c, &res);
	if (rv == KV_OK && attr)
		*attr = res.attr;
	return rv;
}

int clerk_resume_session(struct clerk *ck, uint64_t session, uint64_t seq)
{
	if (ck->o.no_sessions || session == 0)
		return -EINVAL;
	ck->client_id = session;
	ck->seq = seq;
	ck->session_pinned = true;
	return 0;
}

int clerk_set_deadline(struct clerk *ck, int ms)
{
	int old = ck->o.deadline_ms;

	if (ms > 0)
		ck->o.deadline_ms = ms;
	return old;
}

uint64_t clerk_seq(const struct clerk *ck)
{
	return ck->seq;
}
