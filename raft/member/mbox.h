/*
 * mbox.h - a small thread-safe FIFO of intrusive items, used by the
 * member runtime's threads to hand work to each other.
 *
 * A consumer either blocks on the condition variable (mbox_wait) or, for
 * the event loop that also polls sockets, watches mbox_fd(): an eventfd
 * that becomes readable when items arrive.  Producers never block beyond
 * the mutex.  Items are embedded in the caller's structs (struct mbox_item
 * as a member); the mailbox never allocates.
 */
#ifndef RAFTKV_MBOX_H
#define RAFTKV_MBOX_H

#include <pthread.h>
#include <stdbool.h>

struct mbox_item {
	struct mbox_item *next;
};

/* An item tagged with its kind, for a mailbox that carries several (the
 * event loop's: its own requests, the RSM's, the persister's). */
struct mbox_msg {
	struct mbox_item item; /* first: the mailbox links these */
	int kind;
};

struct mbox {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int efd; /* -1 unless created with_fd */
	struct mbox_item *head;
	struct mbox_item *tail;
	bool closed;
};

/* Returns 0 or -errno (eventfd creation). */
int mbox_init(struct mbox *b, bool with_fd);
void mbox_close(struct mbox *b);

/* Append @it (ownership passes to the consumer).  Returns 0, or -EPIPE
 * when the mailbox was shut (the caller keeps @it). */
int mbox_put(struct mbox *b, struct mbox_item *it);

/* Take every queued item, oldest first, as a NULL-terminated chain. */
struct mbox_item *mbox_take_all(struct mbox *b);

/* Block until something is queued or the mailbox is shut; then take all.
 * Returns NULL only when shut and empty. */
struct mbox_item *mbox_wait_all(struct mbox *b);

/* mbox_wait_all() for at most @ms milliseconds: NULL with *@timed_out
 * set when nothing came meanwhile (NULL without it: shut and empty). */
struct mbox_item *mbox_wait_all_for(struct mbox *b, unsigned ms,
    bool *timed_out);

/* Block until something is queued or the mailbox is shut; take the oldest
 * item only (for pools of consumers).  NULL only when shut and empty. */
struct mbox_item *mbox_wait_one(struct mbox *b);

/* Refuse further puts and wake every waiter. */
void mbox_shut(struct mbox *b);

/* The eventfd to poll (with_fd only); mbox_take_all() clears it. */
int mbox_fd(const struct mbox *b);

#endif
