/*
 * cli_member.c - `raftkv member list|add|promote|remove|keygen` (see
 * cli_member.h).
 *
 * The cluster file names the bootstrap members only, so every command
 * first asks any of them for the current configuration and directory
 * (LIST), then talks to the members listed there: the leader may be a
 * member added since.  A change goes to the leader (following NOT_LEADER
 * hints) and waits until it is committed; a promotion of a learner still
 * catching up is retried until it has caught up or time runs out.  A
 * change refused because another is not committed yet is retried for
 * PENDING_MS at most (the leader's own no-op after an election, or a
 * change that is about to commit), then refused: the operator looks at
 * `raftkv member list` and decides, rather than queueing behind a
 * change that may never commit.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv/cli_member.h"
#include "raft/client/client.h"
#include "raft/client/cproto.h"
#include "raft/client/keys.h"
#include "raft/memberdir_gone.h"
#include "raft/util/clock.h"
#include "raft/util/num.h"

#define CALL_MS 3000
#define PENDING_MS 5000

enum { OKAY = 0, MAYBE = 3, UNAVAILABLE = 4, ERROR = 5, USAGE = 64 };

static const char *prog = "raftkv member";

static void pause_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/*
 * LIST from every member of @c that answers, keeping the newest
 * configuration (a member that is down long, or was removed, may answer
 * with an old one); retried until one answers or @deadline.
 */
static int get_list(struct client *c, uint32_t n, uint64_t deadline,
    struct cproto_member_list *l)
{
	struct cproto_member_req req = { .action = CPROTO_MEMBER_LIST };
	struct cproto_member_list *one = malloc(sizeof(*one));
	bool got = false;
	uint8_t *buf = NULL;
	uint32_t len;
	int rv = one == NULL ? -ENOMEM
	                     : cproto_encode_member_req(&req, &buf, &len);

	while (rv <= 0 && !got) {
		for (uint32_t i = 0; i < n; i++) {
			struct client_reply rep = { 0 };

			rv = client_call(c, i, CPROTO_MEMBER, buf, len, CALL_MS,
			    &rep);
			if (rv == 0)
				rv = rep.status;
			if (rv == 0)
				rv = cproto_decode_member_list(rep.data,
				    rep.len, one);
			free(rep.data);
			if (rv == 0 &&
			    (!got || one->conf_index > l->conf_index)) {
				*l = *one;
				got = true;
			}
			if (rv == CLIENT_EAUTH)
				goto out;
		}
		if (got || mono_ms() >= deadline)
			break;
		pause_ms(200);
	}
out:
	free(buf);
	free(one);
	return got ? 0 : rv;
}

static const char *role_of(const struct raft_conf *c, uint64_t id)
{
	for (uint32_t i = 0; i < c->n_voters; i++)
		if (c->voters[i] == id)
			return "voter";
	for (uint32_t i = 0; i < c->n_learners; i++)
		if (c->learners[i] == id)
			return "learner";
	return NULL;
}

static void print_list(const struct cproto_member_list *l)
{
	printf("member\trole\tpeer\tclient\n");
	for (uint32_t k = 0; k < 2; k++) {
		uint32_t n = k == 0 ? l->conf.n_voters : l->conf.n_learners;
		const raft_id *ids = k == 0 ? l->conf.voters : l->conf.learners;

		for (uint32_t i = 0; i < n; i++) {
			const struct memberdir_entry *e =
			    memberdir_find(&l->dir, ids[i]);

			printf("%" PRIu64 "\t%s\t%s\t%s\n", ids[i],
			    k == 0 ? "voter" : "learner", e ? e->peer : "?",
			    e ? e->client : "?");
		}
	}
}

/* The members of the configuration in force, as a cluster to talk to. */
static void current_cluster(const struct cluster *file,
    const struct cproto_member_list *l, struct cluster *out)
{
	*out = *file;
	out->n = 0;
	for (uint32_t i = 0; i < l->dir.n && out->n < RAFT_MAX_MEMBERS; i++) {
		const struct memberdir_entry *e = &l->dir.m[i];
		struct cluster_member *m = &out->members[out->n];

		if (role_of(&l->conf, e->id) == NULL)
			continue;
		m->id = e->id;
		snprintf(m->peer, sizeof(m->peer), "%s", e->peer);
		snprintf(m->client, sizeof(m->client), "%s", e->client);
		snprintf(m->key, sizeof(m->key), "%s", e->key);
		out->n++;
	}
	if (out->n == 0)
		*out = *file;
}

/* Say why change @r failed with @rv (@curve: the cluster has keys);
 * the exit status. */
static int explain(int rv, const struct cproto_member_req *r, bool curve)
{
	const char *what = r->action == CPROTO_MEMBER_ADD ? "add"
	    : r->action == CPROTO_MEMBER_PROMOTE          ? "promote"
	                                                  : "remove";

	fprintf(stderr, "%s %s %" PRIu64 ": ", prog, what, r->id);
	switch (rv) {
	case -EEXIST:
		fprintf(stderr,
		    r->action == CPROTO_MEMBER_ADD ? "it is a member already\n"
		                                   : "it is a voter already\n");
		return ERROR;
	case -ENOENT:
		fprintf(stderr,
		    r->action == CPROTO_MEMBER_PROMOTE
		        ? "it is not a learner of the cluster (add it first)\n"
		        : "it is not a member of the cluster\n");
		return ERROR;
	case -ENOSPC:
		fprintf(stderr,
		    "the cluster has the most members it can have "
		    "(%d)\n",
		    RAFT_MAX_MEMBERS);
		return ERROR;
	case -EINVAL:
		fprintf(stderr,
		    "refused: bad endpoints, or a key missing (CURVE "
		    "cluster) or given (cluster without keys)\n");
		return ERROR;
	case -EKEYREJECTED:
		fprintf(stderr,
		    "refused: that key belonged to a removed member; a "
		    "member comes back with a new key (raftkv member "
		    "keygen)\n");
		return ERROR;
	case RAFT_ENOQUORUM:
		fprintf(stderr,
		    "refused: the voters the leader hears from would not "
		    "make a quorum of the new configuration (bring members "
		    "back first)\n");
		return ERROR;
	case RAFT_ELASTVOTER:
		fprintf(stderr, "refused: it is the last voter\n");
		return ERROR;
	case NODE_EGONEFULL:
		fprintf(stderr,
		    "refused: the cluster keeps %d removed member ids and "
		    "%d removed keys at most and forgets none (a forgotten "
		    "one could be admitted again), and the removal would "
		    "add one past that; see raftkv(7), MEMBERSHIP\n",
		    MEMBERDIR_GONE_MAX, MEMBERDIR_GONE_MAX);
		return ERROR;
	case RAFT_ENOTCAUGHTUP:
		fprintf(stderr,
		    "it has not caught up with the log yet; try again "
		    "later (or with a longer --timeout)\n");
		return UNAVAILABLE;
	case RAFT_ECONFPENDING:
		fprintf(stderr,
		    "refused: another membership change is not committed "
		    "yet (one change at a time); see raftkv member list, "
		    "then run this one again\n");
		return UNAVAILABLE;
	case CPROTO_EDENIED:
		fprintf(stderr,
		    curve ? "refused: membership changes need the admin "
		            "credential (-k admin.key)\n"
		          : "refused: the cluster has no keys, so its members "
		            "cannot tell an admin from anyone and refuse "
		            "membership changes unless the leader was started "
		            "with --insecure-membership (raftkv-server(8))\n");
		return ERROR;
	case NODE_ELOST:
		fprintf(stderr,
		    "the change was lost (the leader changed before it "
		    "committed); run it again\n");
		return UNAVAILABLE;
	case NODE_ETIMEDOUT:
	case CLIENT_ETIMEDOUT:
		fprintf(stderr,
		    "outcome unknown: no answer in time (see raftkv "
		    "member list)\n");
		return MAYBE;
	}
	fprintf(stderr, "%s\n", rk_strerror(rv));
	return UNAVAILABLE;
}

/* Send @r to the leader until it is answered or @deadline passes. */
static int change(struct client *c, uint32_t n,
    const struct cproto_member_req *r, uint64_t deadline)
{
	uint8_t *buf;
	uint32_t len;
	int rv = cproto_encode_member_req(r, &buf, &len), idx = 0;
	bool said_waiting = false, sent = false;
	uint64_t pending_since = 0;

	while (rv <= 0) {
		struct client_reply rep = { 0 };
		uint64_t now = mono_ms();
		int left = deadline > now ? (int)(deadline - now) : 0;

		rv = client_call(c, (uint32_t)idx, CPROTO_MEMBER, buf, len,
		    left < 1000 ? 1000 : left, &rep);
		free(rep.data);
		if (rv == 0) {
			sent = true;
			rv = rep.status;
		}
		if (rv == 0 || mono_ms() >= deadline)
			break;
		if (rv == RAFT_ENOTLEADER || rv == NODE_ENOLEADER ||
		    rv == CLIENT_EUNREACHABLE || rv == CLIENT_ETIMEDOUT) {
			int hint = rep.leader && rv == RAFT_ENOTLEADER
			    ? client_index_of(c, rep.leader)
			    : -1;

			if (rv == CLIENT_ETIMEDOUT && sent)
				break; /* it may have been proposed */
			idx = hint >= 0 && hint != idx ? hint
			                               : (idx + 1) % (int)n;
			if (hint < 0)
				pause_ms(100);
			continue;
		}
		if (rv == RAFT_ENOTCAUGHTUP) {
			if (!said_waiting)
				fprintf(stderr,
				    "%s: member %" PRIu64 " is catching up; "
				    "waiting to promote it\n",
				    prog, r->id);
			said_waiting = true;
			pause_ms(300);
			continue;
		}
		if (rv == RAFT_ECONFPENDING) {
			now = mono_ms();
			if (pending_since == 0)
				pending_since = now;
			/* No retry past PENDING_MS, nor past the deadline. */
			if (now - pending_since + 200 > PENDING_MS ||
			    now + 200 > deadline)
				break;
			pause_ms(200);
			continue;
		}
		break;
	}
	free(buf);
	return rv;
}

static int parse_id(const char *s, uint64_t *id)
{
	if (num_parse_u64(s, 10, 1, INT64_MAX, id) != 0) {
		fprintf(stderr, "%s: bad member id '%s'\n", prog, s);
		return -1;
	}
	return 0;
}

/* ADD's key: the new member's secret key file (only its public key is
 * sent), or "-" for a cluster without keys. */
static int add_key(const struct cluster *cl, const char *file, char *pub)
{
	char sec[KEYS_Z85_LEN + 1], err[512];
	int rv;

	pub[0] = '\0';
	if (strcmp(file, "-") == 0) {
		if (!cl->curve)
			return 0;
		fprintf(stderr,
		    "%s add: the cluster uses CURVE keys: give the new "
		    "member's key file (raftkv member keygen)\n",
		    prog);
		return -1;
	}
	rv = keys_read_secret(file, sec, err, sizeof(err));
	if (rv == 0)
		rv = keys_public(sec, pub);
	explicit_bzero(sec, sizeof(sec));
	if (rv != 0) {
		fprintf(stderr, "%s add: %s\n", prog, err);
		return -1;
	}
	if (!cl->curve) {
		fprintf(stderr,
		    "%s add: the cluster has no keys: give '-' "
		    "as KEYFILE\n",
		    prog);
		return -1;
	}
	return 0;
}

static int keygen(const char *path)
{
	char pub[KEYS_Z85_LEN + 1], sec[KEYS_Z85_LEN + 1], err[512];
	int rv = keys_generate(pub, sec);

	if (rv == 0)
		rv = keys_write_secret(path, sec, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "%s", strerror(-rv));
	explicit_bzero(sec, sizeof(sec));
	if (rv != 0) {
		fprintf(stderr, "%s keygen: %s\n", prog, err);
		return ERROR;
	}
	printf("%s\n", pub);
	return OKAY;
}

static int usage(void)
{
	fprintf(stderr,
	    "usage: raftkv member list\n"
	    "       raftkv member add ID PEER-ENDPOINT CLIENT-ENDPOINT "
	    "KEYFILE|-\n"
	    "       raftkv member promote ID\n"
	    "       raftkv member remove ID\n"
	    "       raftkv member keygen KEYFILE\n");
	return USAGE;
}

int cli_member(struct cluster *cl, const char *file, const char *cred, int argc,
    char **argv, int timeout_ms)
{
	struct cproto_member_req r = { 0 };
	struct cproto_member_list *l = NULL;
	struct cluster *cur = NULL;
	struct client *c = NULL;
	uint64_t deadline;
	char err[512];
	int rv, ex = ERROR;

	if (argc < 1)
		return usage();
	if (strcmp(argv[0], "keygen") == 0)
		return argc == 2 ? keygen(argv[1]) : usage();
	if (strcmp(argv[0], "list") == 0 && argc == 1) {
		r.action = CPROTO_MEMBER_LIST;
	} else if (strcmp(argv[0], "add") == 0 && argc == 5) {
		r.action = CPROTO_MEMBER_ADD;
		if (parse_id(argv[1], &r.id) != 0 ||
		    add_key(cl, argv[4], r.entry.key) != 0)
			return USAGE;
		r.entry.id = r.id;
		if (cluster_check_endpoint(argv[2]) != 0 ||
		    cluster_check_endpoint(argv[3]) != 0 ||
		    strlen(argv[2]) >= sizeof(r.entry.peer) ||
		    strlen(argv[3]) >= sizeof(r.entry.client)) {
			fprintf(stderr,
			    "%s add: endpoints are tcp://HOST:PORT\n", prog);
			return USAGE;
		}
		snprintf(r.entry.peer, sizeof(r.entry.peer), "%s", argv[2]);
		snprintf(r.entry.client, sizeof(r.entry.client), "%s", argv[3]);
	} else if (strcmp(argv[0], "promote") == 0 && argc == 2) {
		r.action = CPROTO_MEMBER_PROMOTE;
		if (parse_id(argv[1], &r.id) != 0)
			return USAGE;
	} else if (strcmp(argv[0], "remove") == 0 && argc == 2) {
		r.action = CPROTO_MEMBER_REMOVE;
		if (parse_id(argv[1], &r.id) != 0)
			return USAGE;
	} else {
		return usage();
	}
	/* Changes need the admin credential: look for admin.key first. */
	if (keys_load_credential(cl, file, cred, r.action != CPROTO_MEMBER_LIST,
	        err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return USAGE;
	}
	deadline = mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 60000);
	l = malloc(sizeof(*l));
	cur = malloc(sizeof(*cur));
	if (l == NULL || cur == NULL || client_new(cl, NULL, &c) != 0) {
		fprintf(stderr, "%s: cannot create a client\n", prog);
		goto out;
	}
	rv = get_list(c, cl->n, deadline, l);
	client_free(c);
	c = NULL;
	if (rv != 0) {
		fprintf(stderr, "%s: no member answered: %s\n", prog,
		    rk_strerror(rv));
		ex = rv == CLIENT_EAUTH ? ERROR : UNAVAILABLE;
		goto out;
	}
	if (r.action == CPROTO_MEMBER_LIST) {
		print_list(l);
		ex = OKAY;
		goto out;
	}
	current_cluster(cl, l, cur);
	if (client_new(cur, NULL, &c) != 0) {
		fprintf(stderr, "%s: cannot create a client\n", prog);
		goto out;
	}
	rv = change(c, cur->n, &r, deadline);
	if (rv != 0) {
		ex = explain(rv, &r, cl->curve);
		goto out;
	}
	printf("member %" PRIu64 " %s\n", r.id,
	    r.action == CPROTO_MEMBER_ADD           ? "added as a learner"
	        : r.action == CPROTO_MEMBER_PROMOTE ? "promoted to voter"
	                                            : "removed");
	ex = OKAY;
out:
	client_free(c);
	if (cur != NULL)
		explicit_bzero(cur, sizeof(*cur));
	free(cur);
	free(l);
	return ex;
}
