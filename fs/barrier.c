/*
 * barrier.c - batched read barriers (see barrier.h).
 *
 * Rounds are numbered.  A caller needs round started + 1 (the first that
 * starts after it arrived).  Whoever finds no round running starts the next
 * one itself, without the lock, and publishes its outcome; the others wait
 * on the condition variable.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "fs/barrier.h"
#include "fs/fsmember.h"
#include "raft/err.h"
#include "raft/util/clock.h"

struct barrier {
	struct fsm *m;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool running;
	uint64_t started; /* last round started */
	uint64_t done; /* last round finished */
	uint64_t ok; /* last round that succeeded */
};

struct barrier *barrier_new(struct fsm *m)
{
	struct barrier *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->m = m;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	return b;
}

void barrier_free(struct barrier *b)
{
	if (b == NULL)
		return;
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
	free(b);
}

int barrier_wait(struct barrier *b, int timeout_ms)
{
	uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
	uint64_t need;
	int rv = -EIO;

	pthread_mutex_lock(&b->mu);
	need = b->started + 1;
	while (b->ok < need) {
		uint64_t now = mono_ms(), round;
		int r;

		if (now >= deadline)
			break;
		if (b->running) {
			/* Wait for the running round, at most 50 ms at a time
			 * (the deadline is checked between waits). */
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 50 * 1000000l;
			if (ts.tv_nsec >= 1000000000l) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000l;
			}
			pthread_cond_timedwait(&b->cv, &b->mu, &ts);
			continue;
		}
		if (b->done >= need && b->ok < need) {
			/* Our round failed: a new one (still after us). */
			need = b->started + 1;
		}
		b->running = true;
		round = ++b->started;
		pthread_mutex_unlock(&b->mu);
		r = fsm_read_barrier(b->m, (int)(deadline - now));
		pthread_mutex_lock(&b->mu);
		b->running = false;
		b->done = round;
		if (r == 0 && round > b->ok)
			b->ok = round;
		pthread_cond_broadcast(&b->cv);
		if (r == NODE_ESHUTDOWN)
			break;
		if (r != 0) {
			/* No leader yet, or lost: pause a little, retry. */
			pthread_mutex_unlock(&b->mu);
			struct timespec ts = { 0, 20 * 1000000l };
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&b->mu);
		}
	}
	if (b->ok >= need)
		rv = 0;
	pthread_mutex_unlock(&b->mu);
	return rv;
}
