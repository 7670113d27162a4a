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
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raft/client/cluster.h"
#include "raft/client/keys.h"
#include "raft/member/member_join.h"
#include "raft/member/member_snap.h"
#include "raft/storage/memberdir_file.h"
#include "raft/util/logging.h"
#include "raft/member/endpoint_auth.h"
#include "raft/member/member.h"

struct member {
	const struct member_app *app;
	void *app_arg;
	struct rsm_app inner; /* the application's; nc->app wraps it */
	pthread_mutex_t mu; /* guards node_up, pending */
	bool node_up; /* restores merge into the node's directory */
	struct memberdir pending; /* ... or here until it runs */
	struct memberdir_gone pending_gone; /* the same for removed ones */
	struct memberdir boot; /* the cluster file's members */
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

/* Member snapshots: the directory and the removed members in front of
 * the application's snapshot (member_snap.h). */

/* Every entry of @d is in @boot, the same. */
static bool dir_within(const struct memberdir *d, const struct memberdir *boot)
{
	for (uint32_t i = 0; i < d->n; i++) {
		const struct memberdir_entry *b = memberdir_find(boot,
		    d->m[i].id);

		if (b == NULL || memcmp(b, &d->m[i], sizeof(*b)) != 0)
			return false;
	}
	return true;
}

/* The snapshot header: directory and removed members, encoded. */
static int snap_header(struct member *m, uint8_t **out, uint32_t *len,
    bool *plain)
{
	struct raft_conf conf;
	raft_index ci;
	struct memberdir *d = calloc(1, sizeof(*d));
	struct memberdir_gone *g = calloc(1, sizeof(*g));
	int rv = -ENOMEM;

	*plain = false;
	if (d == NULL || g == NULL)
		goto out;
	pthread_mutex_lock(&m->mu);
	if (m->node_up) {
		node_members(m->node, &conf, &ci, d);
		node_gone(m->node, g);
	} else {
		*d = m->pending;
		*g = m->pending_gone;
	}
	pthread_mutex_unlock(&m->mu);
	/* No member added, moved or removed: the cluster file says it all,
	 * and the snapshot is the application's alone (as before
	 * membership changes: the labs' snapshot size limits hold). */
	if (dir_within(d, &m->boot) && memberdir_gone_empty(g)) {
		*plain = true;
		rv = 0;
		goto out;
	}
	rv = member_snap_header(d, g, out, len);
out:
	free(d);
	free(g);
	return rv;
}

static int snap_wrapped(void *arg, void **data, size_t *len)
{
	struct member *m = arg;
	uint8_t *hdr = NULL, *out;
	uint32_t hlen = 0;
	void *inner = NULL;
	size_t ilen = 0;
	bool plain;
	int rv;

	rv = snap_header(m, &hdr, &hlen, &plain);
	if (rv == 0 && plain)
		return m->inner.snapshot(m->inner.arg, data, len);
	if (rv == 0)
		rv = m->inner.snapshot(m->inner.arg, &inner, &ilen);
	if (rv != 0) {
		free(hdr);
		return rv;
	}
	out = malloc(hlen + ilen);
	if (out == NULL) {
		free(hdr);
		free(inner);
		return -ENOMEM;
	}
	memcpy(out, hdr, hlen);
	if (ilen > 0)
		memcpy(out + hlen, inner, ilen);
	free(hdr);
	free(inner);
	*data = out;
	*len = hlen + ilen;
	return 0;
}

/*
 * The two-step snapshot (rsm.h) passed through, so the application's state
 * is still copied quickly between applies and compressed beside them: the
 * header is taken with the application's view, put in front at the end.
 */
struct snap_view {
	void *inner; /* the application's view */
	uint8_t *hdr; /* NULL if plain */
	uint32_t hlen;
	bool plain;
};

static int snap_begin_wrapped(void *arg, void **view)
{
	struct member *m = arg;
	struct snap_view *v = calloc(1, sizeof(*v));
	int rv;

	if (v == NULL)
		return -ENOMEM;
	rv = snap_header(m, &v->hdr, &v->hlen, &v->plain);
	if (rv == 0)
		rv = m->inner.snapshot_begin(m->inner.arg, &v->inner);
	if (rv != 0) {
		free(v->hdr);
		free(v);
		return rv;
	}
	*view = v;
	return 0;
}

static int snap_finish_wrapped(void *arg, void *view, void **data, size_t *len)
{
	struct member *m = arg;
	struct snap_view *v = view;
	uint8_t *inner = NULL, *out;
	size_t ilen = 0;
	int rv;

	if (data == NULL || v->plain) {
		rv = m->inner.snapshot_finish(m->inner.arg, v->inner, data,
		    len);
		goto out;
	}
	rv = m->inner.snapshot_finish(m->inner.arg, v->inner, (void **)&inner,
	    &ilen);
	if (rv != 0)
		goto out;
	/* In place: a big state is not copied once more. */
	out = realloc(inner, v->hlen + ilen);
	if (out == NULL) {
		free(inner);
		rv = -ENOMEM;
		goto out;
	}
	if (ilen > 0)
		memmove(out + v->hlen, out, ilen);
	memcpy(out, v->hdr, v->hlen);
	*data = out;
	*len = v->hlen + ilen;
out:
	free(v->hdr);
	free(v);
	return rv;
}

/*
 * The directory of the snapshot restored at start (@pending) is older
 * than the members file and the log's change entries the node started
 * with: it only fills in the ids those do not know, as if merged first.
 */
static void fill_directory(struct node *node, struct memberdir *pending)
{
	struct memberdir *now = malloc(sizeof(*now));
	struct raft_conf c;
	raft_index ci;

	if (now == NULL) {
		log_warnx("member directory: out of memory: the restored "
		          "snapshot's directory is not used");
		return;
	}
	node_members(node, &c, &ci, now);
	for (uint32_t i = 0; i < pending->n;)
		if (memberdir_find(now, pending->m[i].id) != NULL)
			memberdir_del(pending, pending->m[i].id);
		else
			i++;
	free(now);
	node_merge_directory(node, pending);
}

static int restore_wrapped(void *arg, const void *data, size_t len)
{
	struct member *m = arg;
	struct memberdir *d = calloc(1, sizeof(*d));
	struct memberdir_gone *g = calloc(1, sizeof(*g));
	char err[256];
	size_t off = 0;
	int rv = -ENOMEM;

	if (d == NULL || g == NULL)
		goto out;
	rv = member_snap_parse(data, len, d, g, &off, err, sizeof(err));
	if (rv < 0) {
		log_warnx("%s", err);
		goto out;
	}
	if (rv == 0) {
		pthread_mutex_lock(&m->mu);
		if (m->node_up) {
			node_merge_directory(m->node, d);
			node_merge_gone(m->node, g, false);
		} else {
			(void)memberdir_merge(&m->pending, d);
			(void)memberdir_gone_merge(&m->pending_gone, g);
		}
		pthread_mutex_unlock(&m->mu);
	}
	rv = m->inner.restore(m->inner.arg, (const uint8_t *)data + off,
	    len - off);
out:
	free(d);
	free(g);
	return rv;
}

static int apply_inner(void *arg, raft_index index, const void *cmd, size_t len,
    void **reply, size_t *reply_len)
{
	struct member *m = arg;

	return m->inner.apply(m->inner.arg, index, cmd, len, reply, reply_len);
}

static int query_inner(void *arg, const void *q, size_t len, void **reply,
    size_t *reply_len)
{
	struct member *m = arg;

	return m->inner.query(m->inner.arg, q, len, reply, reply_len);
}

static int query_quick_inner(void *arg, const void *q, size_t len, void **reply,
    size_t *reply_len)
{
	struct member *m = arg;

	return m->inner.query_quick(m->inner.arg, q, len, reply, reply_len);
}

static void wrap_app(struct member *m, struct rsm_app *out)
{
	out->arg = m;
	out->apply = m->inner.apply ? apply_inner : NULL;
	out->snapshot = m->inner.snapshot ? snap_wrapped : NULL;
	if (m->inner.snapshot_begin && m->inner.snapshot_finish) {
		out->snapshot_begin = snap_begin_wrapped;
		out->snapshot_finish = snap_finish_wrapped;
	}
	out->restore = m->inner.restore ? restore_wrapped : NULL;
	out->query = m->inner.query ? query_inner : NULL;
	out->query_quick = m->inner.query_quick ? query_quick_inner : NULL;
}

/* node_config.removed: this member was removed; the process stops as on
 * SIGTERM (raftkv-server's sigwait, mount.raftkv's FUSE loop). */
static void removed(void *arg)
{
	(void)arg;
	log_warnx("removed from the cluster: stopping");
	kill(getpid(), SIGTERM);
}

static int build_config(const struct member_options *o,
    const struct cluster *cl, struct node_config *nc)
{
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
		if (o->insecure_membership)
			log_warnx("INSECURE: --insecure-membership: while this "
			          "member leads, anyone who can reach a client "
			          "port can add and remove members");
		else
			log_info("membership changes are refused while this "
			         "member leads: the cluster has no keys to "
			         "tell an admin (see --insecure-membership)");
		return 0;
	}
	if (o->insecure)
		log_warnx("--insecure ignored: %s has CURVE keys",
		    o->cluster_file);
	if (o->insecure_membership)
		log_warnx("--insecure-membership ignored: %s has CURVE keys "
		          "(membership changes need the admin credential)",
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
	    strcmp(pub, memberdir_find(&nc->dir, o->id)->key) != 0) {
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

static void dir_from_cluster(const struct cluster *cl, struct memberdir *d)
{
	for (uint32_t i = 0; i < cl->n; i++) {
		struct memberdir_entry e = { .id = cl->members[i].id };

		snprintf(e.peer, sizeof(e.peer), "%s", cl->members[i].peer);
		snprintf(e.client, sizeof(e.client), "%s",
		    cl->members[i].client);
		snprintf(e.key, sizeof(e.key), "%s", cl->members[i].key);
		(void)memberdir_put(d, &e);
	}
}

/*
 * The member directory: the cluster file's members, then what the data
 * directory's "members" file says (it wins: it is the latest this member
 * saw), then what the cluster says: joining, its directory and our own
 * entry; otherwise, best effort, its newest configuration's members.
 */
static int build_dir(const struct member_options *o, const struct cluster *cl,
    struct node_config *nc, char *err, size_t errlen)
{
	struct memberdir *file = calloc(1, sizeof(*file));
	int rv;

	if (file == NULL)
		return -ENOMEM;
	dir_from_cluster(cl, &nc->dir);
	rv = memberdir_load(o->data_dir, cl->id, file, &nc->gone, err, errlen);
	if (rv == 0)
		rv = memberdir_merge(&nc->dir, file);
	else if (rv == -ENOENT)
		rv = 0;
	free(file);
	if (rv != 0)
		return rv;
	if (!o->join || memberdir_find(&nc->dir, o->id) != NULL ||
	    cluster_find(cl, o->id) != NULL) {
		/* The configuration may have moved on while we were down. */
		member_refresh_directory(o, cl, &nc->dir, &nc->fresh,
		    &nc->fresh_index);
		return 0;
	}
	/* Joining for the first time. */
	return member_join_directory(o, cl, &nc->dir, err, errlen);
}

/* The cluster file and the options as a node configuration. */
static int configure(const struct member_options *o, struct cluster *cl,
    const struct memberdir_entry **me, struct node_config *nc, char *err,
    size_t errlen)
{
	int rv;

	if (o->cluster_file == NULL || o->data_dir == NULL) {
		snprintf(err, errlen, "no cluster file or data directory");
		return -EINVAL;
	}
	rv = cluster_load(o->cluster_file, cl, err, errlen);
	if (rv != 0)
		return rv;
	node_config_defaults(nc);
	if (o->join && cluster_find(cl, o->id) != NULL) {
		snprintf(err, errlen,
		    "member %" PRIu64 " is in %s already: "
		    "--join is for a new member",
		    o->id, o->cluster_file);
		return -EINVAL;
	}
	rv = build_dir(o, cl, nc, err, errlen);
	if (rv != 0)
		return rv;
	*me = memberdir_find(&nc->dir, o->id);
	if (*me == NULL) {
		snprintf(err, errlen,
		    "member %" PRIu64 " is not in %s nor in "
		    "the member directory of %s (a new member joins with "
		    "--join)",
		    o->id, o->cluster_file, o->data_dir);
		return -EINVAL;
	}
	/* Not a bootstrap voter: a learner until the log says otherwise. */
	nc->join = cluster_find(cl, o->id) == NULL;
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
	struct node_config *nc = calloc(1, sizeof(*nc));
	struct cluster cl;
	const struct memberdir_entry *me = NULL;
	char client_ep[MEMBERDIR_EP_MAX], peer_ep[MEMBERDIR_EP_MAX];
	struct member *m;
	int rv;

	if (nc == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rv = configure(opts, &cl, &me, nc, err, errlen);
	if (rv != 0) {
		explicit_bzero(nc, sizeof(*nc));
		free(nc);
		return rv < 0 ? rv : -EINVAL;
	}
	snprintf(client_ep, sizeof(client_ep), "%s", me->client);
	snprintf(peer_ep, sizeof(peer_ep), "%s", me->peer);
	if (nc->fault_injection)
		log_warnx("fault injection is ENABLED: for tests only");
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		explicit_bzero(nc, sizeof(*nc));
		free(nc);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&m->mu, NULL);
	dir_from_cluster(&cl, &m->boot);
	m->app = app;
	rv = app->create(&m->app_arg, &cl, &m->inner, &eapp);
	wrap_app(m, &nc->app);
	nc->removed = removed;
	nc->removed_arg = m;
	if (rv != 0) {
		snprintf(err, errlen, "cannot create the %s application: %s",
		    app->name, strerror(-rv));
		goto err;
	}
	m->app_created = true;
	rv = node_start(nc, &m->node, err, errlen);
	if (rv != 0)
		goto err;
	pthread_mutex_lock(&m->mu);
	m->node_up = true;
	fill_directory(m->node, &m->pending);
	node_merge_gone(m->node, &m->pending_gone, true);
	pthread_mutex_unlock(&m->mu);
	endpoint_auth_from_cluster(&eauth, &cl, nc->curve_secret);
	eauth.open_membership = !cl.curve && opts->insecure_membership;
	rv = endpoint_start(m->node, cl.id, client_ep, &eapp, &eauth,
	    opts->workers, &m->ep, err, errlen);
	explicit_bzero(&eauth, sizeof(eauth));
	explicit_bzero(nc, sizeof(*nc));
	free(nc);
	nc = NULL;
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
	    app->name, opts->id, client_ep, peer_ep);
	*out = m;
	return 0;

err:
	if (nc != NULL) {
		explicit_bzero(nc, sizeof(*nc));
		free(nc);
	}
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
	pthread_mutex_destroy(&m->mu);
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
