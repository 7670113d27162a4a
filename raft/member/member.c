/*
 * member.c - start and stop a member (see member.h).
 *
 * Start-up order: cluster file -> node configuration (CURVE secret;
 * secure by default, see load_secret()) ->
 * application -> node (storage recovery, core, transport, threads) ->
 * client endpoint.  member_stop() runs it backwards.  Every failure
 * writes one line naming what and why.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/client/cluster.h"
#include "raft/client/keys.h"
#include "raft/util/logging.h"
#include "raft/member/endpoint_auth.h"
#include "raft/member/member.h"

struct member {
	const struct member_app *app;
	void *app_arg;
	bool app_created;
	struct node *node;
	struct endpoint *ep;
	void *app_run; /* app->start()'s, for app->stop() */
	bool app_started;
};

/* Storage's recovery notes (torn tail repaired, damage accepted with
 * --recover) go to the member's log like everything else. */
static void storage_log(void *arg, int level, const char *msg)
{
	(void)arg;
	if (level >= STORAGE_LOG_WARN)
		log_warnx("storage: %s", msg);
	else
		log_info("storage: %s", msg);
}

static int build_config(const struct member_options *o,
    const struct cluster *cl, struct node_config *nc)
{
	node_config_defaults(nc);
	nc->cluster_id = cl->id;
	nc->id = o->id;
	nc->n_members = cl->n;
	for (uint32_t i = 0; i < cl->n; i++) {
		nc->members[i].id = cl->members[i].id;
		snprintf(nc->members[i].peer_endpoint,
		    sizeof(nc->members[i].peer_endpoint), "%s",
		    cl->members[i].peer);
		snprintf(nc->members[i].curve_public,
		    sizeof(nc->members[i].curve_public), "%s",
		    cl->members[i].key);
	}
	if (o->data_dir == NULL ||
	    snprintf(nc->data_dir, sizeof(nc->data_dir), "%s", o->data_dir) >=
	        (int)sizeof(nc->data_dir))
		return -ENAMETOOLONG;
	if (o->tick_ms)
		nc->tick_ms = o->tick_ms;
	if (o->election_ticks)
		nc->election_tick = o->election_ticks;
	if (o->heartbeat_ticks)
		nc->heartbeat_tick = o->heartbeat_ticks;
	if (nc->heartbeat_tick >= nc->election_tick)
		return -EINVAL;
	nc->max_raft_state = o->max_raft_state;
	if (o->segment_size)
		nc->storage.segment_size = o->segment_size;
	nc->fault_injection = o->fault_injection;
	nc->read_via_log = o->read_via_log;
	nc->read_no_lease = o->read_no_lease;
	nc->storage.recover = o->recover != 0;
	nc->storage.log = storage_log;
	return 0;
}

/*
 * Secure by default: a cluster file with keys needs this member's secret
 * (--curve-secret, else member<ID>.key next to the cluster file, as
 * `raftkv init` writes it); one without keys is refused unless the
 * operator says --insecure, and then every start says what that means.
 */
static int load_secret(const struct member_options *o, const struct cluster *cl,
    struct node_config *nc, char *err, size_t errlen)
{
	char dir[2048], path[2200], kerr[512], pub[CLUSTER_KEY_LEN + 1];
	const char *file = o->secret_file;
	int rv;

	if (!cl->curve) {
		if (!o->insecure) {
			snprintf(err, errlen,
			    "%s has no CURVE keys: anyone who "
			    "can reach this member could forge peer messages "
			    "and write to it. Set the cluster up with 'raftkv "
			    "init', or pass --insecure to run without "
			    "authentication",
			    o->cluster_file);
			return -EPERM;
		}
		log_warnx(
		    "INSECURE: %s has no keys and --insecure was given: "
		    "peers and clients are NOT authenticated; anyone who can "
		    "reach this member's peer or client port can write to "
		    "the cluster",
		    o->cluster_file);
		return 0;
	}
	if (o->insecure)
		log_warnx("--insecure ignored: %s has CURVE keys",
		    o->cluster_file);
	if (file == NULL) {
		keys_dir_of(o->cluster_file, dir, sizeof(dir));
		snprintf(path, sizeof(path), "%s/member%" PRIu64 ".key", dir,
		    o->id);
		file = path;
	}
	rv = keys_read_secret(file, nc->curve_secret, kerr, sizeof(kerr));
	if (rv != 0) {
		snprintf(err, errlen,
		    "%s uses CURVE keys: this member's secret "
		    "key: %s",
		    o->cluster_file, kerr);
		return rv;
	}
	if (keys_public(nc->curve_secret, pub) != 0 ||
	    strcmp(pub, cluster_find(cl, o->id)->key) != 0) {
		snprintf(err, errlen,
		    "%s is not member %" PRIu64 "'s secret "
		    "key: its public key is not the one %s gives member "
		    "%" PRIu64,
		    file, o->id, o->cluster_file, o->id);
		return -EINVAL;
	}
	if (cl->n_creds == 0)
		log_warnx("%s lists no 'credential' lines: no client can "
		          "connect",
		    o->cluster_file);
	return 0;
}

/* The cluster file and the options as a node configuration. */
static int configure(const struct member_options *o, struct cluster *cl,
    const struct cluster_member **me, struct node_config *nc, char *err,
    size_t errlen)
{
	int rv;

	if (o->cluster_file == NULL) {
		snprintf(err, errlen, "no cluster file");
		return -EINVAL;
	}
	rv = cluster_load(o->cluster_file, cl, err, errlen);
	if (rv != 0)
		return rv;
	*me = cluster_find(cl, o->id);
	if (*me == NULL) {
		snprintf(err, errlen, "member %" PRIu64 " is not in %s", o->id,
		    o->cluster_file);
		return -EINVAL;
	}
	rv = build_config(o, cl, nc);
	if (rv != 0) {
		snprintf(err, errlen,
		    "invalid timing or data directory "
		    "options: %s",
		    strerror(-rv));
		return rv;
	}
	return load_secret(o, cl, nc, err, errlen);
}

int member_start(const struct member_options *opts,
    const struct member_app *app, struct member **out, char *err, size_t errlen)
{
	struct endpoint_app eapp = { 0 };
	struct endpoint_auth eauth;
	struct node_config nc;
	struct cluster cl;
	const struct cluster_member *me = NULL;
	struct member *m;
	int rv;

	rv = configure(opts, &cl, &me, &nc, err, errlen);
	if (rv != 0)
		return rv < 0 ? rv : -EINVAL;
	if (nc.fault_injection)
		log_warnx("fault injection is ENABLED: for tests only");
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->app = app;
	rv = app->create(&m->app_arg, &cl, &nc.app, &eapp);
	if (rv != 0) {
		snprintf(err, errlen, "cannot create the %s application: %s",
		    app->name, strerror(-rv));
		goto err;
	}
	m->app_created = true;
	rv = node_start(&nc, &m->node, err, errlen);
	if (rv != 0)
		goto err;
	endpoint_auth_from_cluster(&eauth, &cl, nc.curve_secret);
	rv = endpoint_start(m->node, cl.id, me->client, &eapp, &eauth,
	    opts->workers, &m->ep, err, errlen);
	explicit_bzero(&eauth, sizeof(eauth));
	explicit_bzero(nc.curve_secret, sizeof(nc.curve_secret));
	if (rv != 0)
		goto err;
	if (app->start != NULL) {
		rv = app->start(m->app_arg, m, &m->app_run);
		if (rv != 0) {
			snprintf(err, errlen,
			    "cannot start the %s application: %s", app->name,
			    strerror(-rv));
			goto err;
		}
		m->app_started = true;
	}
	log_info("%s member %" PRIu64 " serving clients on %s, peers on %s",
	    app->name, opts->id, me->client, me->peer);
	*out = m;
	return 0;

err:
	member_stop(m);
	return rv;
}

void member_stop(struct member *m)
{
	if (m == NULL)
		return;
	if (m->app_started && m->app->stop != NULL)
		m->app->stop(m->app_run);
	endpoint_stop(m->ep);
	node_stop(m->node);
	if (m->app_created)
		m->app->destroy(m->app_arg);
	free(m);
}

struct rsm *member_rsm(struct member *m)
{
	return node_rsm(m->node);
}

struct node *member_node(struct member *m)
{
	return m->node;
}

void *member_app_arg(struct member *m)
{
	return m->app_arg;
}

void member_status(struct member *m, struct node_status *st)
{
	node_status(m->node, st);
}
