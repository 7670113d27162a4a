/*
 * counter_member.c - a member process running the 6.5840 RSM test
 * application: an integer counter (rsm/server.go of the labs).
 *
 * Commands (one byte): 'I' Inc -> reply the new value (u64 LE);
 * 'N' Null -> empty reply; 'D' Dec -> must NEVER be applied (the labs'
 * TestLeaderPartition4A submits Decs to a deposed leader): applying one
 * aborts the process, which the test then notices.  Anything else is
 * answered with an empty reply and changes nothing.
 * Query (any bytes): the counter (u64 LE).  Snapshot: the counter.
 *
 * Used by the integration tests; not installed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/util/logging.h"
#include "raft/member/member.h"

struct counter {
	pthread_mutex_t mu;
	uint64_t value;
};

static int reply_u64(uint64_t v, void **reply, size_t *len)
{
	*reply = malloc(8);
	if (*reply == NULL)
		return -ENOMEM;
	memcpy(*reply, &v, 8);
	*len = 8;
	return 0;
}

static int counter_apply(void *arg, raft_index index, const void *cmd,
    size_t len, void **reply, size_t *reply_len)
{
	struct counter *c = arg;
	uint64_t v;

	*reply = NULL;
	*reply_len = 0;
	if (len != 1)
		return 0;
	switch (*(const char *)cmd) {
	case 'I':
		pthread_mutex_lock(&c->mu);
		v = ++c->value;
		pthread_mutex_unlock(&c->mu);
		return reply_u64(v, reply, reply_len);
	case 'D':
		fatalx("Dec applied at index %llu: a deposed leader's entry "
		       "committed",
		    (unsigned long long)index);
	}
	return 0;
}

static int counter_snapshot(void *arg, void **data, size_t *len)
{
	struct counter *c = arg;
	uint64_t v;

	pthread_mutex_lock(&c->mu);
	v = c->value;
	pthread_mutex_unlock(&c->mu);
	return reply_u64(v, data, len);
}

static int counter_restore(void *arg, const void *data, size_t len)
{
	struct counter *c = arg;

	if (len != 8)
		return -EINVAL;
	pthread_mutex_lock(&c->mu);
	memcpy(&c->value, data, 8);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

static int counter_query(void *arg, const void *q, size_t len, void **reply,
    size_t *reply_len)
{
	(void)q;
	(void)len;
	return counter_snapshot(arg, reply, reply_len);
}

static int counter_create(void **arg, const struct cluster *cl,
    struct rsm_app *rapp, struct endpoint_app *eapp)
{
	struct counter *c = calloc(1, sizeof(*c));

	(void)cl;
	if (c == NULL)
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	(void)eapp;
	rapp->arg = c;
	rapp->apply = counter_apply;
	rapp->snapshot = counter_snapshot;
	rapp->restore = counter_restore;
	rapp->query = counter_query;
	*arg = c;
	return 0;
}

static void counter_destroy(void *arg)
{
	struct counter *c = arg;

	pthread_mutex_destroy(&c->mu);
	free(c);
}

int main(int argc, char **argv)
{
	static const struct member_app app = {
		.name = "counter",
		.create = counter_create,
		.destroy = counter_destroy,
	};

	return member_main(argc, argv, &app, "counter-member");
}
