/*
 * member_join.c - a member's directory before its node starts (see
 * member_join.h): asked of the cluster on a first join, refreshed from it
 * (best effort) on every other start.  Why ask the cluster: the cluster
 * file names the bootstrap members only, and a member that was down may
 * have missed changes; the leader may be a member added since, whose
 * address and key this member must know to accept its appends (the
 * transport admits every member of the directory it is given that the
 * member has not seen removed, node_member.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft/client/client.h"
#include "raft/client/cproto.h"
#include "raft/client/keys.h"
#include "raft/config.h"
#include "raft/util/clock.h"
#include "raft/util/logging.h"
#include "raft/member/member_join.h"

#define JOIN_TRY_MS 15000
#define JOIN_CALL_MS 2000
#define REFRESH_CALL_MS 500

static int own_entry(const struct member_options *o, const struct cluster *cl,
    struct memberdir_entry *e, char *err, size_t errlen)
{
	char dir[2048], path[2200], sec[KEYS_Z85_LEN + 1], kerr[512];
	const char *file = o->secret_file;
	int rv;

	memset(e, 0, sizeof(*e));
	e->id = o->id;
	if (o->peer == NULL || o->client == NULL ||
	    cluster_check_endpoint(o->peer) != 0 ||
	    cluster_check_endpoint(o->client) != 0 ||
	    strlen(o->peer) >= sizeof(e->peer) ||
	    strlen(o->client) >= sizeof(e->client)) {
		snprintf(err, errlen,
		    "a joining member needs its endpoints: "
		    "--peer tcp://HOST:PORT and --client tcp://HOST:PORT");
		return -EINVAL;
	}
	snprintf(e->peer, sizeof(e->peer), "%s", o->peer);
	snprintf(e->client, sizeof(e->client), "%s", o->client);
	if (!cl->curve)
		return 0;
	if (file == NULL) {
		keys_dir_of(o->cluster_file, dir, sizeof(dir));
		snprintf(path, sizeof(path), "%s/member%" PRIu64 ".key", dir,
		    o->id);
		file = path;
	}
	rv = keys_read_secret(file, sec, kerr, sizeof(kerr));
	if (rv == 0)
		rv = keys_public(sec, e->key);
	explicit_bzero(sec, sizeof(sec));
	if (rv != 0)
		snprintf(err, errlen, "joining member's secret key: %s", kerr);
	return rv;
}

/* LIST from every member of @c that answers, keeping the newest
 * configuration (a removed or lagging member may answer with an old
 * one).  0 with @l filled, or the last error. */
static int ask(struct client *c, uint32_t n, int call_ms,
    struct cproto_member_list *l)
{
	struct cproto_member_req req = { .action = CPROTO_MEMBER_LIST };
	struct cproto_member_list *one = malloc(sizeof(*one));
	bool got = false;
	uint8_t *buf = NULL;
	uint32_t len;
	int rv = one == NULL ? -ENOMEM
	                     : cproto_encode_member_req(&req, &buf, &len);

	for (uint32_t i = 0; rv <= 0 && i < n; i++) {
		struct client_reply rep = { 0 };

		rv = client_call(c, i, CPROTO_MEMBER, buf, len, call_ms, &rep);
		if (rv == 0)
			rv = rep.status;
		if (rv == 0)
			rv = cproto_decode_member_list(rep.data, rep.len, one);
		free(rep.data);
		if (rv == 0 && (!got || one->conf_index > l->conf_index)) {
			*l = *one;
			got = true;
		}
	}
	free(buf);
	free(one);
	return got ? 0 : rv;
}

int member_join_directory(const struct member_options *o,
    const struct cluster *cl, struct memberdir *d, char *err, size_t errlen)
{
	struct memberdir_entry self;
	struct cproto_member_list *l = NULL;
	struct cluster *c = NULL;
	struct client *cli = NULL;
	uint64_t deadline = mono_ms() + JOIN_TRY_MS;
	int rv;

	rv = own_entry(o, cl, &self, err, errlen);
	if (rv != 0)
		return rv;
	c = malloc(sizeof(*c));
	l = malloc(sizeof(*l));
	if (c == NULL || l == NULL) {
		rv = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	*c = *cl;
	if (c->curve && c->cred_secret[0] == '\0') {
		rv = keys_load_credential(c, o->cluster_file, NULL, false, err,
		    errlen);
		if (rv != 0)
			goto out;
	}
	rv = client_new(c, NULL, &cli);
	if (rv != 0) {
		snprintf(err, errlen, "cannot reach the cluster to join: %s",
		    rk_strerror(rv));
		goto out;
	}
	do {
		rv = ask(cli, c->n, JOIN_CALL_MS, l);
	} while (rv != 0 && mono_ms() < deadline);
	if (rv != 0) {
		snprintf(err, errlen,
		    "joining: no member of %s answered with "
		    "the member list: %s",
		    o->cluster_file, rk_strerror(rv));
		goto out;
	}
	/* Only a member of the configuration: a removed member's id may
	 * be added again, with a new key. */
	if (config_member_index(&l->conf, o->id) >= 0 &&
	    memberdir_find(&l->dir, o->id) != NULL &&
	    strcmp(memberdir_find(&l->dir, o->id)->key, self.key) != 0) {
		rv = -EEXIST;
		snprintf(err, errlen,
		    "joining: the cluster has a member %" PRIu64 " with "
		    "another key (remove it first, or use another id)",
		    o->id);
		goto out;
	}
	/* Only the members of the newest configuration: the cluster's
	 * directory and the cluster file may name removed members, whose
	 * keys we must not admit (the snapshot that tells us they are
	 * removed comes later). */
	for (uint32_t i = 0; i < d->n;)
		if (d->m[i].id != o->id &&
		    config_member_index(&l->conf, d->m[i].id) < 0)
			memberdir_del(d, d->m[i].id);
		else
			i++;
	for (uint32_t i = 0; rv == 0 && i < l->dir.n; i++)
		if (l->dir.m[i].id != o->id &&
		    config_member_index(&l->conf, l->dir.m[i].id) >= 0)
			rv = memberdir_put(d, &l->dir.m[i]);
	if (rv == 0)
		rv = memberdir_put(d, &self);
	if (rv != 0)
		snprintf(err, errlen, "joining: member directory: %s",
		    strerror(-rv));
	else
		log_info("joining: the cluster's configuration (index "
		         "%" PRIu64 ") has %u members; this member is "
		         "%" PRIu64 " at %s",
		    l->conf_index, config_n_members(&l->conf), o->id, o->peer);
out:
	client_free(cli);
	if (c != NULL)
		explicit_bzero(c, sizeof(*c));
	free(c);
	free(l);
	return rv;
}

void member_refresh_directory(const struct member_options *o,
    const struct cluster *cl, struct memberdir *d, struct memberdir *fresh,
    raft_index *fresh_index)
{
	struct cproto_member_list *l = malloc(sizeof(*l));
	struct cluster *c = malloc(sizeof(*c));
	struct client *cli = NULL;
	char err[512];
	uint32_t added = 0;

	fresh->n = 0;
	*fresh_index = 0;
	if (c == NULL || l == NULL)
		goto out;
	*c = *cl;
	/* Ask every member the directory knows (but this one), not only
	 * the cluster file's: those may all be gone. */
	c->n = 0;
	for (uint32_t i = 0; i < d->n && c->n < RAFT_MAX_MEMBERS; i++) {
		const struct memberdir_entry *e = &d->m[i];
		struct cluster_member *m = &c->members[c->n];

		if (e->id == o->id || (cl->curve && e->key[0] == '\0'))
			continue;
		memset(m, 0, sizeof(*m));
		m->id = e->id;
		snprintf(m->peer, sizeof(m->peer), "%s", e->peer);
		snprintf(m->client, sizeof(m->client), "%s", e->client);
		snprintf(m->key, sizeof(m->key), "%s", e->key);
		c->n++;
	}
	if (c->n == 0)
		goto out;
	if (c->curve && c->cred_secret[0] == '\0' &&
	    keys_load_credential(c, o->cluster_file, NULL, false, err,
	        sizeof(err)) != 0) {
		log_info("member directory not refreshed: %s", err);
		goto out;
	}
	if (client_new(c, NULL, &cli) != 0 ||
	    ask(cli, c->n, REFRESH_CALL_MS, l) != 0) {
		log_info("member directory not refreshed: no member answered "
		         "(it comes from the log)");
		goto out;
	}
	/* The members of the newest configuration returned, never our own
	 * entry (ours is the one we start with). */
	for (uint32_t i = 0; i < l->dir.n; i++) {
		const struct memberdir_entry *e = &l->dir.m[i];

		if (e->id == o->id || config_member_index(&l->conf, e->id) < 0)
			continue;
		if (memberdir_put(d, e) == 0 && memberdir_put(fresh, e) == 0)
			added++;
	}
	*fresh_index = l->conf_index;
	log_info("member directory refreshed from the cluster (configuration "
	         "index %" PRIu64 "): %u members",
	    l->conf_index, added);
out:
	client_free(cli);
	if (c != NULL)
		explicit_bzero(c, sizeof(*c));
	free(c);
	free(l);
}
