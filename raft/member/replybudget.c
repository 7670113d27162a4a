/*
 * replybudget.c - per-connection byte accounting of replies not yet
 * written (see replybudget.h).
 *
 * Connections are found by routing id in a fixed open-addressed table
 * (REPLY_BUDGET_SLOTS, probed over a window of REPLY_BUDGET_PROBE): a
 * slot belongs to a routing id while it has bytes outstanding and is free
 * for another once they are all released, so the table needs no removal
 * and a release (on an I/O thread) touches only atomic counters.  A
 * routing id that finds neither its slot nor a free one in its window is
 * refused, as if over budget.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "raft/member/replybudget.h"
#include "raft/util/clock.h"
#include "raft/util/logging.h"

#define REPLY_BUDGET_SLOTS 4096
#define REPLY_BUDGET_PROBE 32
#define REPLY_BUDGET_ID_MAX 256

struct slot {
	atomic_uint_fast64_t bytes; /* outstanding; 0: slot free */
	size_t id_len; /* under the table lock */
	uint8_t id[REPLY_BUDGET_ID_MAX];
};

struct reply_budget {
	pthread_mutex_t mu; /* slot assignment, the log limit */
	uint64_t per_client;
	uint64_t total;
	atomic_uint_fast64_t held;
	atomic_uint_fast64_t refused;
	uint64_t last_log_ms;
	struct slot slots[REPLY_BUDGET_SLOTS];
};

struct reply_charge {
	struct reply_budget *b;
	struct slot *slot;
	uint64_t len;
};

int reply_budget_new(uint64_t per_client, uint64_t total,
    struct reply_budget **out)
{
	struct reply_budget *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return -ENOMEM;
	pthread_mutex_init(&b->mu, NULL);
	b->per_client = per_client;
	b->total = total;
	*out = b;
	return 0;
}

void reply_budget_free(struct reply_budget *b)
{
	if (b == NULL)
		return;
	pthread_mutex_destroy(&b->mu);
	free(b);
}

static uint64_t hash(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* The slot of @id, or a free one claimed for it, or NULL.  b->mu held. */
static struct slot *find(struct reply_budget *b, const uint8_t *id,
    size_t id_len)
{
	uint64_t h = hash(id, id_len);
	struct slot *free_slot = NULL;

	for (int k = 0; k < REPLY_BUDGET_PROBE; k++) {
		struct slot *s =
		    &b->slots[(h + (uint64_t)k) % REPLY_BUDGET_SLOTS];
		uint64_t bytes = atomic_load(&s->bytes);

		if (bytes != 0 && s->id_len == id_len &&
		    memcmp(s->id, id, id_len) == 0)
			return s;
		if (bytes == 0 && free_slot == NULL)
			free_slot = s;
	}
	if (free_slot != NULL) {
		free_slot->id_len = id_len;
		memcpy(free_slot->id, id, id_len);
	}
	return free_slot;
}

/* b->mu held. */
static void note_refusal(struct reply_budget *b, uint64_t client_bytes)
{
	uint64_t now = mono_ms(), n = atomic_fetch_add(&b->refused, 1) + 1;

	if (b->last_log_ms != 0 && now - b->last_log_ms < 1000)
		return;
	b->last_log_ms = now;
	log_warnx("client endpoint: a client is not reading its replies "
	          "(%" PRIu64 " bytes unsent to it, %" PRIu64 " to all): reply "
	          "refused (%" PRIu64 " so far)",
	    client_bytes, (uint64_t)atomic_load(&b->held), n);
}

int reply_budget_charge(struct reply_budget *b, const uint8_t *id,
    size_t id_len, size_t len, struct reply_charge **out)
{
	struct reply_charge *c;
	struct slot *s;
	uint64_t mine;

	*out = NULL;
	if (id_len == 0 || id_len > REPLY_BUDGET_ID_MAX)
		return -EINVAL;
	c = malloc(sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&b->mu);
	s = find(b, id, id_len);
	mine = s != NULL ? atomic_load(&s->bytes) : 0;
	if (s == NULL || (mine != 0 && mine + len > b->per_client) ||
	    (mine != 0 && atomic_load(&b->held) + len > b->total)) {
		note_refusal(b, mine);
		pthread_mutex_unlock(&b->mu);
		free(c);
		return -ENOBUFS;
	}
	/* Counted under the lock: the slot cannot be reassigned now. */
	atomic_fetch_add(&s->bytes, len);
	atomic_fetch_add(&b->held, len);
	pthread_mutex_unlock(&b->mu);
	c->b = b;
	c->slot = s;
	c->len = len;
	*out = c;
	return 0;
}

void reply_budget_uncharge(struct reply_charge *c)
{
	if (c == NULL)
		return;
	atomic_fetch_sub(&c->slot->bytes, c->len);
	atomic_fetch_sub(&c->b->held, c->len);
	free(c);
}

/* ZeroMQ's free callback (an I/O thread, or the caller on failure). */
static void release(void *data, void *hint)
{
	reply_budget_uncharge(hint);
	free(data);
}

int reply_budget_send(void *sock, const uint8_t *id, size_t id_len, void *data,
    size_t len, struct reply_charge *c)
{
	zmq_msg_t m;
	int err;

	if (zmq_msg_init_data(&m, data, len, release, c) != 0) {
		release(data, c);
		return -ENOMEM;
	}
	if (zmq_send(sock, id, id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
		err = zmq_errno();
		zmq_msg_close(&m); /* releases */
		return -err;
	}
	if (zmq_msg_send(&m, sock, ZMQ_DONTWAIT) < 0) {
		err = zmq_errno();
		zmq_msg_close(&m);
		return -err;
	}
	return 0;
}

uint64_t reply_budget_held(const struct reply_budget *b)
{
	return atomic_load(&((struct reply_budget *)b)->held);
}

uint64_t reply_budget_refused(const struct reply_budget *b)
{
	return atomic_load(&((struct reply_budget *)b)->refused);
}
