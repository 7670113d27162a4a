/*
 * fsmember.c - the embedded member (see fsmember.h): member_start() with
 * kvapp, its create() followed by the filesystem's hook.  member_app's
 * create() takes no argument of ours, hence the hook in a static (one
 * member per process).
 */
#include <errno.h>
#include <stdlib.h>

#include "fs/fsmember.h"
#include "kv/kvapp.h"

struct fsm {
	struct member *m;
};

static fsm_hook_fn hook_fn;
static void *hook_arg;

static int fs_app_create(void **arg, const struct cluster *cl,
    struct rsm_app *rapp, struct endpoint_app *eapp)
{
	int rv = kvapp.create(arg, cl, rapp, eapp);

	if (rv == 0 && hook_fn != NULL)
		hook_fn(hook_arg, rapp, *arg);
	return rv;
}

static void fs_app_destroy(void *arg)
{
	kvapp.destroy(arg);
}

static const struct member_app fs_app = {
	.name = "kv",
	.create = fs_app_create,
	.destroy = fs_app_destroy,
	.start = kvapp_start, /* TICKs for lock leases (kvapp.h) */
	.stop = kvapp_stop,
};

int fsm_start(const struct member_options *o, fsm_hook_fn hook, void *arg,
    struct fsm **out, char *err, size_t errlen)
{
	struct fsm *f = calloc(1, sizeof(*f));
	int rv;

	if (f == NULL)
		return -ENOMEM;
	hook_fn = hook;
	hook_arg = arg;
	rv = member_start(o, &fs_app, &f->m, err, errlen);
	if (rv != 0) {
		free(f);
		return rv;
	}
	*out = f;
	return 0;
}

void fsm_stop(struct fsm *f)
{
	if (f == NULL)
		return;
	member_stop(f->m);
	free(f);
}

struct kv *fsm_kv(struct fsm *f)
{
	return member_app_arg(f->m);
}

bool fsm_leading(struct fsm *f)
{
	struct node_status st;

	member_status(f->m, &st);
	return st.raft.role == RAFT_LEADER;
}

int fsm_read_barrier(struct fsm *f, int timeout_ms)
{
	return rsm_read_barrier(member_rsm(f->m), timeout_ms, NULL);
}
