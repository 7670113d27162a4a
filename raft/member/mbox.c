/*
 * mbox.c - thread-safe FIFO with an optional eventfd (see mbox.h).
 */
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "raft/member/mbox.h"
#include "raft/util/clock.h"

int mbox_init(struct mbox *b, bool with_fd)
{
	b->head = b->tail = NULL;
	b->closed = false;
	b->efd = -1;
	if (with_fd) {
		b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (b->efd < 0)
			return -errno;
	}
	pthread_mutex_init(&b->mu, NULL);
	{
		pthread_condattr_t ca; /* timed waits on CLOCK_MONOTONIC */

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&b->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	return 0;
}

void mbox_close(struct mbox *b)
{
	if (b->efd >= 0)
		close(b->efd);
	b->efd = -1;
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
}

int mbox_put(struct mbox *b, struct mbox_item *it)
{
	bool was_empty;

	it->next = NULL;
	pthread_mutex_lock(&b->mu);
	if (b->closed) {
		pthread_mutex_unlock(&b->mu);
		return -EPIPE;
	}
	was_empty = b->head == NULL;
	if (b->tail)
		b->tail->next = it;
	else
		b->head = it;
	b->tail = it;
	if (was_empty) {
		pthread_cond_signal(&b->cv);
		if (b->efd >= 0) {
			uint64_t one = 1;
			ssize_t n = write(b->efd, &one, sizeof(one));

			(void)n; /* EAGAIN: the counter is already non-zero */
		}
	}
	pthread_mutex_unlock(&b->mu);
	return 0;
}

static struct mbox_item *take_locked(struct mbox *b)
{
	struct mbox_item *all = b->head;

	b->head = b->tail = NULL;
	/* The fd is written only when a put finds the box empty (or on
	 * shut): an empty box has nothing to clear, and a poller calling
	 * this on every turn pays no system call for it. */
	if (b->efd >= 0 && (all != NULL || b->closed)) {
		uint64_t v;
		ssize_t n = read(b->efd, &v, sizeof(v));

		(void)n;
	}
	return all;
}

struct mbox_item *mbox_take_all(struct mbox *b)
{
	struct mbox_item *all;

	pthread_mutex_lock(&b->mu);
	all = take_locked(b);
	pthread_mutex_unlock(&b->mu);
	return all;
}

struct mbox_item *mbox_wait_all(struct mbox *b)
{
	struct mbox_item *all;

	pthread_mutex_lock(&b->mu);
	while (b->head == NULL && !b->closed)
		pthread_cond_wait(&b->cv, &b->mu);
	all = take_locked(b);
	pthread_mutex_unlock(&b->mu);
	return all;
}

struct mbox_item *mbox_wait_all_for(struct mbox *b, unsigned ms,
    bool *timed_out)
{
	struct mbox_item *all;
	struct timespec until = clock_after_ms(CLOCK_MONOTONIC, ms);
	int rv = 0;

	*timed_out = false;
	pthread_mutex_lock(&b->mu);
	while (b->head == NULL && !b->closed && rv != ETIMEDOUT)
		rv = pthread_cond_timedwait(&b->cv, &b->mu, &until);
	all = take_locked(b);
	*timed_out = all == NULL && !b->closed;
	pthread_mutex_unlock(&b->mu);
	return all;
}

struct mbox_item *mbox_wait_one(struct mbox *b)
{
	struct mbox_item *it;

	pthread_mutex_lock(&b->mu);
	while (b->head == NULL && !b->closed)
		pthread_cond_wait(&b->cv, &b->mu);
	it = b->head;
	if (it != NULL) {
		b->head = it->next;
		if (b->head == NULL)
			b->tail = NULL;
		else
			pthread_cond_signal(&b->cv); /* more for the others */
		it->next = NULL;
	}
	pthread_mutex_unlock(&b->mu);
	return it;
}

void mbox_shut(struct mbox *b)
{
	pthread_mutex_lock(&b->mu);
	b->closed = true;
	pthread_cond_broadcast(&b->cv);
	if (b->efd >= 0) {
		uint64_t one = 1;
		ssize_t n = write(b->efd, &one, sizeof(one));

		(void)n;
	}
	pthread_mutex_unlock(&b->mu);
}

int mbox_fd(const struct mbox *b)
{
	return b->efd;
}
