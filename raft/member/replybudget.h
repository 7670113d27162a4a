/*
 * replybudget.h - a byte bound on the replies a member holds for its
 * clients.
 *
 * A client that sends requests and never reads the replies would make the
 * member hold every reply until ZeroMQ can write it: the ROUTER's
 * high-water mark counts messages, not bytes, so 400 unread 4 MiB GET
 * replies cost 1.6 GiB (issue 9).  So every reply is charged to its
 * connection (ROUTER routing id) from the moment it is built
 * (reply_budget_charge(), on whichever thread builds it) until ZeroMQ has
 * written it to the kernel and frees it (reply_budget_send() hands the
 * buffer over without a copy).  A reply that would take its connection
 * past @per_client bytes, or all connections past @total, is refused: the
 * endpoint answers a small error instead (CPROTO_EUNREAD), which the
 * client reads whenever it reads again.  A connection with nothing
 * outstanding may always have one reply, so a single reply larger than
 * @per_client is still delivered.  The member then holds at most @total
 * plus one reply per connection, and what its workers are building.
 *
 * Threads: every call may come from any thread (the table is locked); the
 * release runs on ZeroMQ's I/O threads.  Free the budget only after the
 * socket's context is terminated (no release can follow).
 */
#ifndef RAFTKV_REPLYBUDGET_H
#define RAFTKV_REPLYBUDGET_H

#include <stddef.h>
#include <stdint.h>

#define REPLY_BUDGET_PER_CLIENT (32u << 20) /* 32 MiB */
#define REPLY_BUDGET_TOTAL (512u << 20) /* 512 MiB */

struct reply_budget;
struct reply_charge; /* one reply's bytes, charged to its connection */

/* 0 and *@out, or -ENOMEM. */
int reply_budget_new(uint64_t per_client, uint64_t total,
    struct reply_budget **out);
void reply_budget_free(struct reply_budget *b);

/*
 * Charge @len bytes for a reply to routing id @id.  Returns 0 and
 * *@out, -ENOBUFS (over budget: build a small error reply instead; that
 * one is not charged), -EINVAL (@id empty or longer than 256 bytes) or
 * -ENOMEM.
 */
int reply_budget_charge(struct reply_budget *b, const uint8_t *id,
    size_t id_len, size_t len, struct reply_charge **out);

/* Give a charge back without sending (the reply was dropped).  NULL ok. */
void reply_budget_uncharge(struct reply_charge *c);

/*
 * Send [@id][@data] on ROUTER @sock without blocking.  @data (@len bytes,
 * from malloc) and @c (its charge, or NULL for an uncharged reply) are
 * taken over in every case: ZeroMQ frees both once the reply is written
 * (or dropped).  Returns 0 or -errno from ZeroMQ.
 */
int reply_budget_send(void *sock, const uint8_t *id, size_t id_len, void *data,
    size_t len, struct reply_charge *c);

/* Bytes charged now, and replies refused so far. */
uint64_t reply_budget_held(const struct reply_budget *b);
uint64_t reply_budget_refused(const struct reply_budget *b);

#endif
