/*
 * fsmember.c - the embedded member (see fsmember.h): what member_main()
 * does for raftkv-server, without its option parsing and signal loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fsmember.h"
#include "kv/kvapp.h"
#include "raft/member/endpoint.h"

struct fsm {
	struct node *node;
	struct server *srv;
	void *app_arg;
};

static int read_secret(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (f == NULL)
		return -errno;
	n = fread(out, 1, cap - 1, f);
	fclose(f);
	out[n] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	return strlen(out) == CLUSTER_KEY_LEN ? 0 : -EINVAL;
}

static int build_config(const struct cluster *cl, const struct fsm_options *o,
    struct node_config *nc, char *err, size_t errlen)
{
	int rv;

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
	if (snprintf(nc->data_dir, sizeof(nc->data_dir), "%s", o->data_dir) >=
	    (int)sizeof(nc->data_dir)) {
		snprintf(err, errlen, "data directory path too long");
		return -ENAMETOOLONG;
	}
	if (o->tick_ms)
		nc->tick_ms = o->tick_ms;
	if (o->election_ticks)
		nc->election_tick = o->election_ticks;
	if (o->heartbeat_ticks)
		nc->heartbeat_tick = o->heartbeat_ticks;
	if (nc->heartbeat_tick >= nc->election_tick) {
		snprintf(err, errlen, "heartbeat ticks must be below "
		    "election ticks");
		return -EINVAL;
	}
	nc->max_raft_state = o->max_raft_state;
	nc->fault_injection = o->fault_injection;
	if (cl->curve) {
		if (o->secret_file == NULL) {
			snprintf(err, errlen, "the cluster uses CURVE keys: "
			    "-o curve_secret=FILE is required");
			return -EINVAL;
		}
		rv = read_secret(o->secret_file, nc->curve_secret,
		    sizeof(nc->curve_secret));
		if (rv != 0) {
			snprintf(err, errlen, "%s: cannot read a 40-character "
			    "Z85 secret key: %s", o->secret_file,
			    strerror(-rv));
			return rv;
		}
	}
	return 0;
}

int fsm_start(const struct cluster *cl, const struct fsm_options *o,
    fsm_hook_fn hook, void *hook_arg, struct fsm **out, char *err,
    size_t errlen)
{
	struct node_config *nc;
	struct server_app sapp = { 0 };
	const struct cluster_member *me = cluster_find(cl, o->id);
	struct fsm *m;
	int rv;

	if (me == NULL) {
		snprintf(err, errlen, "member %llu is not in the cluster file",
		    (unsigned long long)o->id);
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	nc = malloc(sizeof(*nc));
	if (m == NULL || nc == NULL) {
		snprintf(err, errlen, "out of memory");
		rv = -ENOMEM;
		goto fail;
	}
	rv = build_config(cl, o, nc, err, errlen);
	if (rv != 0)
		goto fail;
	rv = kvapp.create(&m->app_arg, &nc->app, &sapp);
	if (rv != 0) {
		snprintf(err, errlen, "cannot create the KV application: %s",
		    strerror(-rv));
		goto fail;
	}
	if (hook != NULL)
		hook(hook_arg, &nc->app, m->app_arg);
	rv = node_start(nc, &m->node, err, errlen);
	if (rv != 0)
		goto fail;
	rv = server_start(m->node, cl->id, me->client, &sapp, o->workers,
	    &m->srv, err, errlen);
	if (rv != 0)
		goto fail;
	free(nc);
	*out = m;
	return 0;
fail:
	free(nc);
	if (m != NULL) {
		if (m->node != NULL)
			node_stop(m->node);
		if (m->app_arg != NULL)
			kvapp.destroy(m->app_arg);
		free(m);
	}
	return rv;
}

void fsm_stop(struct fsm *m)
{
	if (m == NULL)
		return;
	server_stop(m->srv);
	node_stop(m->node);
	kvapp.destroy(m->app_arg);
	free(m);
}

struct kv *fsm_kv(struct fsm *m)
{
	return m->app_arg;
}

int fsm_read_barrier(struct fsm *m, int timeout_ms)
{
	return node_read_barrier(m->node, timeout_ms, NULL);
}
