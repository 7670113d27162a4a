/*
 * lock.c - the distributed lock (contract in lock.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kv/lock.h"
#include "raft/util/clock.h"
#include "raft/util/num.h"

struct kvlock {
	struct clerk *ck;
	char *key;
	size_t keylen;
	uint32_t lease_ms;
	char owner[64]; /* "<owner>" or "<owner> <lease>" */
	size_t owner_len;
	uint64_t version; /* the key's version while we hold it */
	uint64_t token;
	int held;
};

static int64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

int kvlock_new(struct clerk *ck, const char *key, uint32_t lease_ms,
    struct kvlock **out)
{
	struct kvlock *l;
	struct timespec ts;
	uint64_t nonce;

	if (key == NULL || *key == '\0' || strlen(key) > KV_KEY_MAX)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (l == NULL || (l->key = strdup(key)) == NULL) {
		free(l);
		return -ENOMEM;
	}
	l->ck = ck;
	l->keylen = strlen(key);
	l->lease_ms = lease_ms;
	clock_gettime(CLOCK_REALTIME, &ts);
	nonce = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
	    ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)l;
	if (lease_ms)
		snprintf(l->owner, sizeof(l->owner), "%016" PRIx64 " %u", nonce,
		    lease_ms);
	else
		snprintf(l->owner, sizeof(l->owner), "%016" PRIx64, nonce);
	l->owner_len = strlen(l->owner);
	*out = l;
	return 0;
}

void kvlock_free(struct kvlock *l)
{
	if (l == NULL)
		return;
	free(l->key);
	free(l);
}

/* Is the value a lock whose lease ran out? */
static int expired(const char *v, size_t len, const struct kv_attr *a)
{
	const char *sp = memchr(v, ' ', len);
	uint64_t lease;
	char num[16];
	int64_t now;
	size_t n;

	if (sp == NULL)
		return 0;
	n = len - (size_t)(sp + 1 - v);
	if (n == 0 || n >= sizeof(num))
		return 0;
	memcpy(num, sp + 1, n);
	num[n] = '\0';
	/* Anyone may write the lock key: a lease that is not a plain number
	 * means none, and the age is compared in ms so nothing overflows. */
	if (num_parse_u64(num, 10, 1, UINT64_MAX, &lease) != 0)
		return 0;
	now = real_ns();
	return now > a->mtime_ns &&
	    ((uint64_t)now - (uint64_t)a->mtime_ns) / 1000000 > lease;
}

static int read_lock(struct kvlock *l, char **v, size_t *len, struct kv_attr *a)
{
	int rv = clerk_get(l->ck, l->key, l->keylen, a, (void **)v, len);

	if (rv == KV_ENOKEY) {
		memset(a, 0, sizeof(*a));
		*v = NULL;
		*len = 0;
		return KV_OK;
	}
	return rv;
}

static int mine(const struct kvlock *l, const char *v, size_t len)
{
	return len == l->owner_len && memcmp(v, l->owner, len) == 0;
}

int kvlock_try_acquire(struct kvlock *l, uint64_t *token)
{
	struct kv_attr a;
	char *v;
	size_t len;
	int rv;

	rv = read_lock(l, &v, &len, &a);
	if (rv != KV_OK)
		return rv < 0 ? rv : CLERK_EUNAVAILABLE;
	if (len != 0 && !mine(l, v, len) && !expired(v, len, &a)) {
		free(v);
		return -EBUSY;
	}
	if (len != 0 && mine(l, v, len))
		goto held; /* an earlier ErrMaybe put did apply */
	free(v);
	rv = clerk_put(l->ck, l->key, l->keylen, l->owner, l->owner_len,
	    a.version, 0, NULL, &a);
	if (rv == KV_OK) {
		l->version = a.version;
		goto got;
	}
	if (rv == KV_EVERSION || rv == KV_ENOKEY)
		return -EBUSY; /* someone else moved first */
	if (rv != KV_EMAYBE)
		return rv < 0 ? rv : CLERK_EUNAVAILABLE;
	/* Maybe: our owner string is there exactly when our put applied. */
	rv = read_lock(l, &v, &len, &a);
	if (rv != KV_OK)
		return rv < 0 ? rv : CLERK_EUNAVAILABLE;
	if (len == 0 || !mine(l, v, len)) {
		free(v);
		return -EBUSY;
	}
held:
	free(v);
	l->version = a.version;
got:
	l->held = 1;
	l->token = l->version;
	if (token)
		*token = l->token;
	return 0;
}

int kvlock_acquire(struct kvlock *l, int timeout_ms, uint64_t *token)
{
	uint64_t deadline = mono_ms() +
	    (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
	int backoff = 2;

	for (;;) {
		int rv = kvlock_try_acquire(l, token);
		struct timespec ts;

		if (rv != -EBUSY && rv != CLERK_EUNAVAILABLE)
			return rv;
		if (timeout_ms >= 0 && mono_ms() >= deadline)
			return rv == -EBUSY ? KVLOCK_ETIMEDOUT : rv;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)backoff * 1000000L;
		nanosleep(&ts, NULL);
		backoff = backoff < 64 ? backoff * 2 : 64;
	}
}

/*
 * Put @value at the version we hold; ErrMaybe is resolved by reading back:
 *   our value at version + 1      it applied
 *   our owner at our version      it has not applied (yet): put again
 *   anything later, a release     without a lease nobody else can write
 *                                 while we hold it, so our release applied
 *                                 and someone acquired after it: released
 *   anything later, otherwise     with a lease it may have been taken over
 *                                 after expiring: not held any more
 */
static int put_held(struct kvlock *l, const char *value, size_t vlen,
    bool release)
{
	struct kv_attr a;
	char *v;
	size_t len;
	int rv;

	if (!l->held)
		return KVLOCK_ENOTHELD;
	for (int tries = 0; tries < 8; tries++) {
		rv = clerk_put(l->ck, l->key, l->keylen, value, vlen,
		    l->version, 0, NULL, &a);
		if (rv == KV_OK) {
			l->version = a.version;
			return 0;
		}
		if (rv == KV_EVERSION || rv == KV_ENOKEY) {
			l->held = 0; /* taken over after our lease ran out */
			return KVLOCK_ENOTHELD;
		}
		if (rv != KV_EMAYBE)
			return rv < 0 ? rv : CLERK_EUNAVAILABLE;
		rv = read_lock(l, &v, &len, &a);
		if (rv != KV_OK)
			return rv < 0 ? rv : CLERK_EUNAVAILABLE;
		if (a.version == l->version + 1 && len == vlen &&
		    memcmp(v ? v : "", value, vlen) == 0) {
			free(v);
			l->version = a.version; /* ours applied */
			return 0;
		}
		if (a.version == l->version && mine(l, v, len)) {
			free(v);
			continue; /* not applied (yet): the same put again */
		}
		free(v);
		if (a.version > l->version && l->lease_ms == 0 && release) {
			l->held = 0; /* ours applied, then the next holder's */
			return 0;
		}
		l->held = 0;
		return KVLOCK_ENOTHELD;
	}
	return CLERK_EUNAVAILABLE;
}

int kvlock_renew(struct kvlock *l)
{
	return put_held(l, l->owner, l->owner_len, false);
}

int kvlock_release(struct kvlock *l)
{
	int rv = put_held(l, "", 0, true);

	if (rv == 0)
		l->held = 0;
	return rv;
}

int kvlock_holder(struct clerk *ck, const char *key, char **owner,
    uint64_t *token)
{
	struct kv_attr a;
	char *v;
	size_t len;
	int rv;

	*owner = NULL;
	rv = clerk_get(ck, key, strlen(key), &a, (void **)&v, &len);
	if (rv == KV_ENOKEY) {
		*token = 0;
		return 0;
	}
	if (rv != KV_OK)
		return rv;
	*token = a.version;
	if (len == 0 || expired(v, len, &a)) {
		free(v);
		return 0;
	}
	*owner = malloc(len + 1);
	if (*owner == NULL) {
		free(v);
		return -ENOMEM;
	}
	memcpy(*owner, v, len);
	(*owner)[len] = '\0';
	free(v);
	return 0;
}
