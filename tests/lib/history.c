/*
 * history.c - recording, saving and loading client histories (history.h).
 *
 * The file parser is the inverse of history_save() (which writes
 * linz_op_print()'s form) and is strict: one malformed line fails the load
 * with its line number, since a silently skipped operation would change
 * the verdict.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/lib/history.h"

uint64_t history_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ----------------------------------------------------------------------
 * shorthands
 * ---------------------------------------------------------------------- */

static int add(struct linz_history *h, uint64_t client, uint64_t call,
    uint64_t ret, int kind, const char *key, const char *value,
    uint64_t version, int result)
{
	struct linz_op op = {
		.client = client,
		.call_ns = call,
		.ret_ns = ret,
		.kind = kind,
		.key = key,
		.key_len = strlen(key),
		.value = value ? value : "",
		.value_len = value ? strlen(value) : 0,
		.version = version,
		.result = result,
	};

	return linz_add(h, &op);
}

int history_get(struct linz_history *h, uint64_t client, uint64_t call,
    uint64_t ret, const char *key, int result, const char *value,
    uint64_t version)
{
	return add(h, client, call, ret, LINZ_GET, key, value, version, result);
}

int history_put(struct linz_history *h, uint64_t client, uint64_t call,
    uint64_t ret, const char *key, const char *value, uint64_t version,
    int result)
{
	return add(h, client, call, ret, LINZ_PUT, key, value, version, result);
}

int history_del(struct linz_history *h, uint64_t client, uint64_t call,
    uint64_t ret, const char *key, uint64_t version, int result)
{
	return add(h, client, call, ret, LINZ_DEL, key, NULL, version, result);
}

/* ----------------------------------------------------------------------
 * saving
 * ---------------------------------------------------------------------- */

int history_save(struct linz_history *h, FILE *f)
{
	size_t i, n = linz_history_len(h);
	struct linz_op op;

	fprintf(f,
	    "# raftkv linearizability history v1: %zu operations\n"
	    "# c<client> <call_ns> <ret_ns|never> <operation>\n",
	    n);
	for (i = 0; i < n; i++) {
		if (linz_history_get(h, i, &op) != 0)
			return -EIO;
		fprintf(f, "c%llu %llu ", (unsigned long long)op.client,
		    (unsigned long long)op.call_ns);
		if (op.ret_ns == LINZ_NEVER)
			fputs("never ", f);
		else
			fprintf(f, "%llu ", (unsigned long long)op.ret_ns);
		linz_op_print(&op, f, SIZE_MAX);
		fputc('\n', f);
	}
	return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}

/* ----------------------------------------------------------------------
 * loading
 * ---------------------------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_push(struct buf *b, char c)
{
	if (b->len == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL)
			abort();
	}
	b->p[b->len++] = c;
}

static void skip_spaces(const char **s)
{
	while (**s == ' ' || **s == '\t')
		(*s)++;
}

/* Match the word @w followed by a space or the end of the line. */
static bool parse_word(const char **s, const char *w)
{
	size_t n = strlen(w);

	skip_spaces(s);
	if (strncmp(*s, w, n) != 0)
		return false;
	if ((*s)[n] != '\0' && (*s)[n] != ' ' && (*s)[n] != '\t' &&
	    (*s)[n] != '\n' && (*s)[n] != '\r')
		return false;
	*s += n;
	return true;
}

static bool parse_u64(const char **s, const char *prefix, uint64_t *v)
{
	char *end;
	unsigned long long x;

	skip_spaces(s);
	if (strncmp(*s, prefix, strlen(prefix)) != 0)
		return false;
	*s += strlen(prefix);
	if (**s < '0' || **s > '9')
		return false;
	errno = 0;
	x = strtoull(*s, &end, 10);
	if (errno != 0)
		return false;
	*s = end;
	*v = x;
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A quoted string as linz_op_print() writes it, into @b (reset first). */
static bool parse_quoted(const char **s, struct buf *b)
{
	const char *p;

	skip_spaces(s);
	p = *s;
	b->len = 0;
	if (*p++ != '"')
		return false;
	for (;;) {
		if (*p == '\0')
			return false;
		if (*p == '"')
			break;
		if (*p != '\\') {
			buf_push(b, *p++);
			continue;
		}
		p++;
		if (*p == '"' || *p == '\\') {
			buf_push(b, *p++);
		} else if (*p == 'x' && hexval(p[1]) >= 0 &&
		    hexval(p[2]) >= 0) {
			buf_push(b, (char)(hexval(p[1]) * 16 + hexval(p[2])));
			p += 3;
		} else {
			return false;
		}
	}
	*s = p + 1;
	return true;
}

static bool parse_result(const char **s, int *result)
{
	int r;

	for (r = LINZ_RES_OK; r <= LINZ_RES_UNKNOWN; r++) {
		if (parse_word(s, linz_res_name(r))) {
			*result = r;
			return true;
		}
	}
	return false;
}

static bool at_end(const char *s)
{
	skip_spaces(&s);
	return *s == '\0' || *s == '\n' || *s == '\r';
}

/* One operation line into @op (strings in @key/@val). */
static bool parse_line(const char *s, struct linz_op *op, struct buf *key,
    struct buf *val)
{
	memset(op, 0, sizeof(*op));
	if (!parse_u64(&s, "c", &op->client) ||
	    !parse_u64(&s, "", &op->call_ns))
		return false;
	if (parse_word(&s, "never"))
		op->ret_ns = LINZ_NEVER;
	else if (!parse_u64(&s, "", &op->ret_ns))
		return false;
	if (parse_word(&s, "get"))
		op->kind = LINZ_GET;
	else if (parse_word(&s, "put"))
		op->kind = LINZ_PUT;
	else if (parse_word(&s, "del"))
		op->kind = LINZ_DEL;
	else
		return false;
	val->len = 0;
	if (!parse_quoted(&s, key))
		return false;
	if (op->kind == LINZ_PUT && !parse_quoted(&s, val))
		return false;
	if (op->kind != LINZ_GET && !parse_u64(&s, "ver=", &op->version))
		return false;
	if (!parse_word(&s, "->") || !parse_result(&s, &op->result))
		return false;
	if (op->kind == LINZ_GET && op->result != LINZ_RES_UNKNOWN &&
	    (!parse_quoted(&s, val) || !parse_u64(&s, "ver=", &op->version)))
		return false;
	op->key = key->p ? key->p : "";
	op->key_len = key->len;
	op->value = val->p ? val->p : "";
	op->value_len = val->len;
	return at_end(s);
}

int history_load(FILE *f, struct linz_history **out, size_t *bad_line)
{
	struct linz_history *h = linz_history_new();
	struct buf key = { 0 }, val = { 0 };
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	struct linz_op op;
	int rc = 0;

	while (getline(&line, &cap, f) >= 0) {
		const char *s = line;

		lineno++;
		skip_spaces(&s);
		if (*s == '#' || at_end(s))
			continue;
		if (!parse_line(s, &op, &key, &val) || linz_add(h, &op) != 0) {
			rc = -EINVAL;
			if (bad_line != NULL)
				*bad_line = lineno;
			break;
		}
	}
	if (rc == 0 && ferror(f))
		rc = -EIO;
	free(line);
	free(key.p);
	free(val.p);
	if (rc != 0) {
		linz_history_free(h);
		h = NULL;
	}
	*out = h;
	return rc;
}

/* ----------------------------------------------------------------------
 * checking from tests
 * ---------------------------------------------------------------------- */

static void save_for_replay(struct linz_history *h, enum linz_model model,
    const char *name)
{
	const char *dir = getenv("RAFTKV_HISTORY_DIR");
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.linz", dir && *dir ? dir : ".",
	    name);
	f = fopen(path, "w");
	if (f == NULL) {
		fprintf(stderr, "linz: cannot write %s: %s\n", path,
		    strerror(errno));
		return;
	}
	if (history_save(h, f) != 0 || fclose(f) != 0) {
		fprintf(stderr, "linz: error writing %s\n", path);
		return;
	}
	fprintf(stderr,
	    "linz: history saved to %s; replay with: "
	    "tools/linz-check%s -v %s\n",
	    path, model == LINZ_MODEL_LAB ? " --lab" : "", path);
}

enum linz_verdict history_check(struct linz_history *h, enum linz_model model,
    double timeout_s, const char *name)
{
	struct linz_result res;
	enum linz_verdict v = linz_check(h, model, timeout_s, &res);

	fprintf(stderr, "[%s] ", name);
	linz_result_print(&res, stderr);
	if (v == LINZ_ILLEGAL)
		save_for_replay(h, model, name);
	linz_result_close(&res);
	return v;
}
