/*
 * cluster.c - parsing and validating the cluster file (see cluster.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raft/client/cluster.h"
#include "raft/memberdir.h"
#include "raft/util/num.h"

#define CLUSTER_FILE_MAX (64 * 1024)

static int fail(char *err, size_t errlen, const char *name, int line,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(char *err, size_t errlen, const char *name, int line,
    const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s:%d: %s", name, line, msg);
	return -EINVAL;
}

int cluster_check_endpoint(const char *ep)
{
	if (strlen(ep) >= CLUSTER_ENDPOINT_MAX || !memberdir_endpoint_ok(ep))
		return -EINVAL;
	return 0;
}

static bool z85_key(const char *k)
{
	return memberdir_key_ok(k);
}

static int parse_credential(char *args, struct cluster *c, const char *name,
    int line, char *err, size_t errlen)
{
	struct cluster_cred *cr;
	char *tok, *save = NULL;
	int role;

	tok = strtok_r(args, " \t", &save);
	if (tok != NULL && strcmp(tok, "client") == 0)
		role = CLUSTER_CLIENT;
	else if (tok != NULL && strcmp(tok, "admin") == 0)
		role = CLUSTER_ADMIN;
	else
		return fail(err, errlen, name, line,
		    "credential must be "
		    "'credential client key=...' or 'credential admin "
		    "key=...'");
	tok = strtok_r(NULL, " \t", &save);
	if (tok == NULL || strncmp(tok, "key=", 4) != 0 || !z85_key(tok + 4))
		return fail(err, errlen, name, line,
		    "credential needs "
		    "key=<40-character Z85 CURVE public key>");
	if (strtok_r(NULL, " \t", &save) != NULL)
		return fail(err, errlen, name, line,
		    "unexpected words after "
		    "the credential's key");
	if (c->n_creds == CLUSTER_MAX_CREDS)
		return fail(err, errlen, name, line, "more than %d credentials",
		    CLUSTER_MAX_CREDS);
	for (uint32_t i = 0; i < c->n_creds; i++)
		if (strcmp(c->creds[i].key, tok + 4) == 0)
			return fail(err, errlen, name, line,
			    "credential listed "
			    "twice");
	cr = &c->creds[c->n_creds++];
	cr->role = role;
	strcpy(cr->key, tok + 4);
	return 0;
}

/* Cut @ln at its comment: a '#' at the start or after white space. */
static void strip_comment(char *ln)
{
	for (char *p = ln; *p; p++)
		if (*p == '#' &&
		    (p == ln || p[-1] == ' ' || p[-1] == '\t' ||
		        p[-1] == '\r')) {
			*p = '\0';
			return;
		}
}

static int parse_member(char *args, struct cluster *c, const char *name,
    int line, char *err, size_t errlen)
{
	struct cluster_member *m;
	char *tok, *save = NULL;
	uint64_t id;

	tok = strtok_r(args, " \t", &save);
	if (tok == NULL || num_parse_u64(tok, 10, 1, INT64_MAX, &id) != 0)
		return fail(err, errlen, name, line,
		    "member id must be a "
		    "number from 1 to 2^63");
	if (cluster_find(c, id) != NULL)
		return fail(err, errlen, name, line,
		    "member %" PRIu64 " listed twice", id);
	if (c->n == RAFT_MAX_MEMBERS)
		return fail(err, errlen, name, line, "more than %d members",
		    RAFT_MAX_MEMBERS);
	m = &c->members[c->n];
	memset(m, 0, sizeof(*m));
	m->id = id;
	while ((tok = strtok_r(NULL, " \t", &save)) != NULL) {
		char *eq = strchr(tok, '=');
		char *dst = NULL;
		size_t cap = 0;

		if (eq == NULL)
			return fail(err, errlen, name, line,
			    "expected "
			    "name=value, got '%s'",
			    tok);
		*eq = '\0';
		if (strcmp(tok, "peer") == 0)
			dst = m->peer, cap = sizeof(m->peer);
		else if (strcmp(tok, "client") == 0)
			dst = m->client, cap = sizeof(m->client);
		else if (strcmp(tok, "key") == 0)
			dst = m->key, cap = sizeof(m->key);
		else
			return fail(err, errlen, name, line,
			    "unknown member "
			    "attribute '%s'",
			    tok);
		if (dst[0] != '\0' || strlen(eq + 1) >= cap)
			return fail(err, errlen, name, line,
			    "'%s' repeated or "
			    "too long",
			    tok);
		strcpy(dst, eq + 1);
	}
	if (cluster_check_endpoint(m->peer) != 0 ||
	    cluster_check_endpoint(m->client) != 0)
		return fail(err, errlen, name, line,
		    "member %" PRIu64 " needs "
		    "peer= and client= endpoints of the form tcp://host:port",
		    id);
	if (m->key[0] != '\0' && !z85_key(m->key))
		return fail(err, errlen, name, line,
		    "key of member %" PRIu64
		    " is not a 40-character Z85 CURVE public key",
		    id);
	if (strcmp(m->peer, m->client) == 0)
		return fail(err, errlen, name, line,
		    "member %" PRIu64 " has "
		    "the same peer and client endpoint",
		    id);
	for (uint32_t i = 0; i < c->n; i++) {
		const struct cluster_member *o = &c->members[i];

		if (strcmp(o->peer, m->peer) == 0 ||
		    strcmp(o->client, m->peer) == 0 ||
		    strcmp(o->peer, m->client) == 0 ||
		    strcmp(o->client, m->client) == 0)
			return fail(err, errlen, name, line,
			    "member %" PRIu64
			    " shares an endpoint with member %" PRIu64,
			    id, o->id);
	}
	c->n++;
	return 0;
}

int cluster_parse_quota(const char *s, uint64_t *bytes)
{
	char digits[32];
	unsigned shift = 0;
	uint64_t v;
	size_t n = strlen(s);

	if (n == 0 || n >= sizeof(digits))
		return -EINVAL;
	memcpy(digits, s, n + 1);
	if (n > 1 && strchr("KMGT", digits[n - 1]) != NULL) {
		shift = 10u *
		    (unsigned)(strchr("KMGT", digits[n - 1]) - "KMGT" + 1);
		digits[n - 1] = '\0';
	}
	if (num_parse_u64(digits, 10, 1, (1ull << 62) >> shift, &v) != 0)
		return -EINVAL;
	*bytes = v << shift;
	return 0;
}

/* "quota <bytes>[K|M|G|T]": 1 byte .. 2^62, binary units. */
static int parse_quota(char *rest, struct cluster *c, const char *name,
    int line, char *err, size_t errlen)
{
	char *w = rest + strspn(rest, " \t"), *end;

	end = w + strcspn(w, " \t");
	if (end[strspn(end, " \t")] != '\0')
		return fail(err, errlen, name, line,
		    "unexpected words after the quota");
	*end = '\0';
	if (c->quota != 0)
		return fail(err, errlen, name, line, "quota given twice");
	if (cluster_parse_quota(w, &c->quota) != 0)
		return fail(err, errlen, name, line,
		    "quota must be a number of bytes, 1 to 2^62, with an "
		    "optional K, M, G or T");
	return 0;
}

/* "lock_lease <ms>": 100 ms .. 1 hour. */
static int parse_lock_lease(char *rest, struct cluster *c, const char *name,
    int line, char *err, size_t errlen)
{
	char *w = rest + strspn(rest, " \t"), *end;
	uint64_t v;

	end = w + strcspn(w, " \t");
	if (end[strspn(end, " \t")] != '\0')
		return fail(err, errlen, name, line,
		    "unexpected words after the lock lease");
	*end = '\0';
	if (c->lock_lease_ms != 0)
		return fail(err, errlen, name, line, "lock_lease given twice");
	if (num_parse_u64(w, 10, 100, 3600000, &v) != 0)
		return fail(err, errlen, name, line,
		    "lock_lease must be milliseconds, 100 to 3600000");
	c->lock_lease_ms = (int64_t)v;
	return 0;
}

/* "session_ttl <ms>": 1 s .. 1 day. */
static int parse_session_ttl(char *rest, struct cluster *c, const char *name,
    int line, char *err, size_t errlen)
{
	char *w = rest + strspn(rest, " \t"), *end;
	uint64_t v;

	end = w + strcspn(w, " \t");
	if (end[strspn(end, " \t")] != '\0')
		return fail(err, errlen, name, line,
		    "unexpected words after the session ttl");
	*end = '\0';
	if (c->session_ttl_ms != 0)
		return fail(err, errlen, name, line, "session_ttl given twice");
	if (num_parse_u64(w, 10, 1000, 86400000, &v) != 0)
		return fail(err, errlen, name, line,
		    "session_ttl must be milliseconds, 1000 to 86400000");
	c->session_ttl_ms = (int64_t)v;
	return 0;
}

int cluster_parse(const char *text, const char *name, struct cluster *c,
    char *err, size_t errlen)
{
	char *copy = strdup(text), *next, *ln;
	int line = 0, rv = 0, keys = 0, ttl_line = 0, lease_line = 0;
	int64_t lease, ttl;

	if (copy == NULL)
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	/* strsep, not strtok: blank lines count, so line numbers are true. */
	for (next = copy; rv == 0 && (ln = strsep(&next, "\n")) != NULL;) {
		char *kw, *rest;

		line++;
		strip_comment(ln);
		kw = ln + strspn(ln, " \t\r");
		rest = kw + strcspn(kw, " \t\r");
		if (*kw == '\0')
			continue;
		if (*rest != '\0')
			*rest++ = '\0';
		rest[strcspn(rest, "\r")] = '\0';
		if (strcmp(kw, "cluster") == 0) {
			uint64_t id;
			char *id_end;

			rest += strspn(rest, " \t");
			id_end = rest + strcspn(rest, " \t");
			if (id_end[strspn(id_end, " \t")] != '\0')
				rv = fail(err, errlen, name, line,
				    "unexpected "
				    "words after the cluster id");
			*id_end = '\0';
			if (rv != 0)
				break;
			if (c->id != 0)
				rv = fail(err, errlen, name, line,
				    "cluster id "
				    "given twice");
			else if (num_parse_u64(rest, 16, 1, UINT64_MAX, &id) !=
			    0)
				rv = fail(err, errlen, name, line,
				    "cluster id "
				    "must be a non-zero hexadecimal number");
			else
				c->id = id;
		} else if (strcmp(kw, "member") == 0) {
			rv = parse_member(rest, c, name, line, err, errlen);
		} else if (strcmp(kw, "credential") == 0) {
			rv = parse_credential(rest, c, name, line, err, errlen);
		} else if (strcmp(kw, "quota") == 0) {
			rv = parse_quota(rest, c, name, line, err, errlen);
		} else if (strcmp(kw, "lock_lease") == 0) {
			rv = parse_lock_lease(rest, c, name, line, err, errlen);
			lease_line = line;
		} else if (strcmp(kw, "session_ttl") == 0) {
			rv = parse_session_ttl(rest, c, name, line, err,
			    errlen);
			ttl_line = line;
		} else {
			rv = fail(err, errlen, name, line,
			    "unknown directive "
			    "'%s'",
			    kw);
		}
	}
	free(copy);
	if (rv != 0)
		return rv;
	if (c->id == 0)
		return fail(err, errlen, name, line, "no 'cluster <id>' line");
	if (c->n == 0)
		return fail(err, errlen, name, line, "no members");
	for (uint32_t i = 0; i < c->n; i++)
		keys += c->members[i].key[0] != '\0';
	if (keys != 0 && keys != (int)c->n)
		return fail(err, errlen, name, line,
		    "either every member has "
		    "a key= or none has");
	c->curve = keys != 0;
	if (!c->curve && c->n_creds > 0)
		return fail(err, errlen, name, line,
		    "credential lines need "
		    "members with key=");
	/* The effective values: a line's, or the default.  Reported at the
	 * session_ttl line, or at the lock_lease line when only that one
	 * was given (the default TTL is too short for that lease). */
	lease = c->lock_lease_ms != 0 ? c->lock_lease_ms
	                              : CLUSTER_LOCK_LEASE_DEFAULT_MS;
	ttl = c->session_ttl_ms != 0 ? c->session_ttl_ms
	                             : CLUSTER_SESSION_TTL_DEFAULT_MS;
	if (ttl < CLUSTER_TTL_MIN_LEASES * lease)
		return fail(err, errlen, name,
		    c->session_ttl_ms != 0 ? ttl_line : lease_line,
		    "session_ttl %" PRId64 "%s is shorter than %d lock leases "
		    "(%d x %" PRId64
		    " ms%s): idle mounts could not renew their "
		    "sessions in time%s",
		    ttl, c->session_ttl_ms != 0 ? "" : " (the default)",
		    CLUSTER_TTL_MIN_LEASES, CLUSTER_TTL_MIN_LEASES, lease,
		    c->lock_lease_ms != 0 ? "" : ", the default lease",
		    c->session_ttl_ms != 0 ? ""
		                           : "; add a longer session_ttl line");
	return 0;
}

int cluster_load(const char *path, struct cluster *c, char *err, size_t errlen)
{
	char *buf;
	ssize_t n;
	int fd, rv;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rv = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rv;
	}
	buf = malloc(CLUSTER_FILE_MAX + 1);
	if (buf == NULL) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, buf, CLUSTER_FILE_MAX + 1);
	rv = n < 0 ? -errno : 0;
	close(fd);
	if (rv == 0 && n > CLUSTER_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", path,
		    CLUSTER_FILE_MAX);
		rv = -EINVAL;
	} else if (rv == 0 && memchr(buf, '\0', (size_t)n) != NULL) {
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		rv = -EINVAL;
	} else if (rv != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rv));
	} else {
		buf[n] = '\0';
		rv = cluster_parse(buf, path, c, err, errlen);
	}
	free(buf);
	return rv;
}

const struct cluster_member *cluster_find(const struct cluster *c, raft_id id)
{
	for (uint32_t i = 0; i < c->n; i++)
		if (c->members[i].id == id)
			return &c->members[i];
	return NULL;
}
