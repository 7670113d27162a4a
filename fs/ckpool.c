/*
 * ckpool.c - a free list of clerks sharing one ZeroMQ context (ckpool.h).
 */
#include <pthread.h>
#include <stdlib.h>
#include <zmq.h>

#include "fs/ckpool.h"

#define POOL_MAX 64

struct ckpool {
	pthread_mutex_t mu;
	struct cluster cl;
	struct clerk_options opt;
	void *zctx;
	struct clerk *free[POOL_MAX];
	unsigned nfree;
};

struct ckpool *ckpool_new(const struct cluster *cl, int deadline_ms, int prefer)
{
	struct ckpool *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->zctx = zmq_ctx_new();
	if (p->zctx == NULL) {
		free(p);
		return NULL;
	}
	p->cl = *cl;
	clerk_options_defaults(&p->opt);
	p->opt.deadline_ms = deadline_ms;
	p->opt.prefer_member = prefer;
	p->opt.zctx = p->zctx;
	pthread_mutex_init(&p->mu, NULL);
	return p;
}

void ckpool_free(struct ckpool *p)
{
	if (p == NULL)
		return;
	for (unsigned i = 0; i < p->nfree; i++)
		clerk_free(p->free[i]);
	zmq_ctx_term(p->zctx);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

struct clerk *ckpool_get(struct ckpool *p)
{
	struct clerk *ck = NULL;

	pthread_mutex_lock(&p->mu);
	if (p->nfree > 0)
		ck = p->free[--p->nfree];
	pthread_mutex_unlock(&p->mu);
	if (ck == NULL && clerk_new(&p->cl, &p->opt, &ck) != 0)
		return NULL;
	return ck;
}

void ckpool_put(struct ckpool *p, struct clerk *ck)
{
	pthread_mutex_lock(&p->mu);
	if (p->nfree < POOL_MAX) {
		p->free[p->nfree++] = ck;
		ck = NULL;
	}
	pthread_mutex_unlock(&p->mu);
	clerk_free(ck);
}
