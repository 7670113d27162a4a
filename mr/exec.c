/*
 * exec.c - one map or reduce task, and the sequential runner (exec.h).
 */
#define _GNU_SOURCE
#include "mr/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mr/kvgroup.h"
#include "mr/xmem.h"

/* Combine the map's buffers when their pairs exceed this many bytes. */
#define COMPACT_BYTES (32u << 20)
/* First combine round of the hash-grouped path (kvgroup.h). */
#define GROUP_BYTES (1u << 20)

struct map_state {
	struct mr_ctx ctx;
	struct exec_env *e;
	struct kvbuf *parts;
	struct kvgroup *kg; /* shared-object combiner: group by hash */
	kvgroup_combine_fn fn;
	size_t used;
	uint64_t emitted;
	int combine;
	int failed;
};

struct out_state {
	struct mr_ctx ctx;
	FILE *f;
	struct kvbuf *kb; /* combine: pairs go here instead */
	struct counters *counters;
	uint64_t records, bytes;
};

static void ctr_cb(struct mr_ctx *ctx, const char *name, int64_t d)
{
	counters_add(ctx->priv, name, d);
}

static int combine_part(struct exec_env *e, struct kvbuf *kb, uint32_t task,
    uint32_t attempt);

/*
 * A map emit.  With a combiner, the buffers are combined whenever they
 * pass COMPACT_BYTES, so a map's memory is bounded by its distinct keys,
 * not by its input (word count over a 64 MiB split stays small).
 */
static void map_emit(struct mr_ctx *ctx, const char *k, size_t kl,
    const char *v, size_t vl)
{
	struct map_state *m = (struct map_state *)ctx;
	uint32_t r;

	m->emitted++;
	if (m->kg) {
		if (kvgroup_add(m->kg, k, kl, v, vl, m->fn, ctx) < 0)
			m->failed = 1;
		return;
	}
	r = app_partition(m->e->app, k, kl, m->e->nreduce);
	if (kvbuf_add(&m->parts[r], k, kl, v, vl) < 0)
		m->failed = 1;
	m->used += kl + vl + 2 + sizeof(struct kvrec);
	if (m->used > COMPACT_BYTES && m->combine && !m->failed) {
		m->used = 0;
		for (r = 0; r < m->e->nreduce; r++) {
			if (combine_part(m->e, &m->parts[r], ctx->task,
			        ctx->attempt))
				m->failed = 1;
			m->used += m->parts[r].used +
			    m->parts[r].n * sizeof(struct kvrec);
		}
		if (m->used > COMPACT_BYTES / 2)
			m->combine = 0; /* few repeats: stop trying */
	}
}

static void out_emit(struct mr_ctx *ctx, const char *k, size_t kl,
    const char *v, size_t vl)
{
	struct out_state *o = (struct out_state *)ctx;

	o->records++;
	if (o->kb) {
		kvbuf_add(o->kb, k, kl, v, vl);
		return;
	}
	fwrite(k, 1, kl, o->f);
	fputc(' ', o->f);
	fwrite(v, 1, vl, o->f);
	fputc('\n', o->f);
	o->bytes += kl + vl + 2;
}

static void ctx_init(struct mr_ctx *c, struct exec_env *e, uint32_t task,
    uint32_t attempt, int is_map)
{
	c->counter = ctr_cb;
	c->worker_pid = e->worker_pid;
	c->task = task;
	c->attempt = attempt;
	c->nreduce = e->nreduce;
	c->is_map = is_map;
	c->priv = &e->counters;
}

/* Sort and combine one partition in place.  0 or the app's failure. */
static int combine_part(struct exec_env *e, struct kvbuf *kb, uint32_t task,
    uint32_t attempt)
{
	struct kvbuf out;
	struct out_state o = { .kb = &out };
	int rc;

	kvbuf_init(&out);
	kvbuf_sort(kb);
	ctx_init(&o.ctx, e, task, attempt, 1);
	o.ctx.emit = out_emit;
	rc = app_combine(e->app, &o.ctx, kb);
	kvbuf_close(kb);
	*kb = out;
	return rc;
}

int exec_prepare_outdir(const char *outdir)
{
	char path[4096];

	if (mkdir(outdir, 0777) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/" EXEC_TMPDIR, outdir);
	if (mkdir(path, 0777) < 0 && errno != EEXIST)
		return -errno;
	return access(path, W_OK | X_OK) < 0 ? -errno : 0;
}

static int write_part(const char *path, const struct kvbuf *kb)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	int rc;

	if (fd < 0)
		return -errno;
	rc = kvbuf_write_fd(kb, fd);
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* Move the grouped pairs of @kg into the partitions' buffers. */
static void ungroup(struct exec_env *e, struct kvgroup *kg, struct kvbuf *parts)
{
	size_t i;

	for (i = 0; i < kg->ng; i++) {
		const struct kvg_grp *g = &kg->g[i];
		uint32_t r = app_partition(e->app, kvgroup_key(kg, i), g->klen,
		             e->nreduce),
		         x;

		for (x = g->head; x; x = kg->v[x - 1].next)
			kvbuf_add(&parts[r], kvgroup_key(kg, i), g->klen,
			    kg->vdata + kg->v[x - 1].off, kg->v[x - 1].len);
	}
}

int exec_map(struct exec_env *e, uint32_t task, uint32_t attempt,
    const struct split *s)
{
	struct map_state m = { .e = e };
	struct app_input in = { s->name, s->off, s->len };
	struct kvgroup kg;
	char *data = NULL, path[4096];
	uint32_t r;
	int rc;

	memset(&e->counters, 0, sizeof(e->counters));
	e->bytes_in = e->bytes_out = 0;
	rc = split_read(s, &data);
	if (rc < 0) {
		fprintf(stderr, "raftkv-mr: map %" PRIu32 ": %s: %s\n", task,
		    s->name, strerror(-rc));
		return rc;
	}
	e->bytes_in = s->len;
	m.parts = xcalloc(e->nreduce, sizeof(*m.parts));
	ctx_init(&m.ctx, e, task, attempt, 1);
	m.ctx.emit = map_emit;
	m.combine = app_has_combiner(e->app);
	m.fn = app_combine_fn(e->app);
	if (m.fn) {
		kvgroup_init(&kg, GROUP_BYTES);
		m.kg = &kg;
	}
	rc = app_map(e->app, &m.ctx, &in, data, s->len);
	free(data);
	if (rc == 0 && m.kg)
		rc = kvgroup_combine(&kg, m.fn, &m.ctx) || kg.failed;
	if (m.kg) {
		ungroup(e, &kg, m.parts);
		kvgroup_close(&kg);
	}
	if (rc == 0 && m.failed)
		rc = 1;
	for (r = 0; r < e->nreduce && rc == 0; r++) {
		if (m.combine && !m.kg)
			rc = combine_part(e, &m.parts[r], task, attempt);
		else
			kvbuf_sort(&m.parts[r]);
		if (rc)
			break;
		snprintf(path, sizeof(path),
		    "%s/" EXEC_TMPDIR "/mr-%" PRIu32 "-%" PRIu32 ".a%" PRIu32,
		    e->outdir, task, r, attempt);
		rc = write_part(path, &m.parts[r]);
		e->bytes_out += m.parts[r].used;
		if (rc < 0)
			fprintf(stderr, "raftkv-mr: map %" PRIu32 ": %s: %s\n",
			    task, path, strerror(-rc));
	}
	counters_add(&e->counters, "map_output_records", (int64_t)m.emitted);
	for (r = 0; r < e->nreduce; r++)
		kvbuf_close(&m.parts[r]);
	free(m.parts);
	counters_add(&e->counters, "map_input_bytes", (int64_t)e->bytes_in);
	return rc;
}

/* Reduce sorted @kb into a new file @tmp.  0, -errno or 1 (app failed). */
static int reduce_to(struct exec_env *e, struct mr_ctx *base,
    const struct kvbuf *kb, const char *tmp)
{
	struct out_state o = { .ctx = *base };
	int rc, fd;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0 || (o.f = fdopen(fd, "w")) == NULL) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return rc;
	}
	o.ctx.emit = out_emit;
	rc = app_reduce(e->app, &o.ctx, kb);
	if (fflush(o.f) != 0 && rc == 0)
		rc = -errno;
	if (fclose(o.f) != 0 && rc == 0)
		rc = -errno;
	counters_add(&e->counters, "reduce_output_records", (int64_t)o.records);
	e->bytes_out = o.bytes;
	return rc;
}

/* Rename @tmp to @final unless @final exists (first commit wins). */
static int commit(const char *tmp, const char *final)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EEXIST) {
		unlink(tmp);
		return 0;
	}
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	return rename(tmp, final) < 0 ? -errno : 0;
}

int exec_reduce(struct exec_env *e, uint32_t task, uint32_t attempt,
    const uint32_t *winners)
{
	char path[4096], tmp[4096];
	struct mr_ctx base = { 0 };
	struct kvbuf kb;
	uint32_t m;
	int rc = 0;

	memset(&e->counters, 0, sizeof(e->counters));
	e->bytes_in = e->bytes_out = 0;
	kvbuf_init(&kb);
	for (m = 0; m < e->nmap; m++) {
		snprintf(path, sizeof(path),
		    "%s/" EXEC_TMPDIR "/mr-%" PRIu32 "-%" PRIu32 ".a%" PRIu32,
		    e->outdir, m, task, winners[m]);
		rc = kvbuf_read_file(&kb, path);
		if (rc < 0) {
			fprintf(stderr,
			    "raftkv-mr: reduce %" PRIu32 ": %s: %s\n", task,
			    path, strerror(-rc));
			goto out;
		}
	}
	e->bytes_in = kb.used;
	counters_add(&e->counters, "reduce_input_records", (int64_t)kb.n);
	kvbuf_sort(&kb);
	ctx_init(&base, e, task, attempt, 0);
	snprintf(tmp, sizeof(tmp),
	    "%s/.mr-out-%" PRIu32 ".a%" PRIu32 ".%ld.tmp", e->outdir, task,
	    attempt, (long)getpid());
	rc = reduce_to(e, &base, &kb, tmp);
	if (rc == 0) {
		snprintf(path, sizeof(path), "%s/mr-out-%" PRIu32, e->outdir,
		    task);
		rc = commit(tmp, path);
	}
	if (rc != 0)
		unlink(tmp);
	if (rc < 0)
		fprintf(stderr, "raftkv-mr: reduce %" PRIu32 ": %s\n", task,
		    strerror(-rc));
out:
	kvbuf_close(&kb);
	return rc;
}

int exec_seq(struct app *app, const struct split *splits, size_t n,
    const char *outpath, struct counters *counters)
{
	struct exec_env e = { .app = app,
		.nmap = (uint32_t)n,
		.nreduce = 1,
		.worker_pid = getpid() };
	struct map_state m = { .e = &e };
	struct mr_ctx base = { 0 };
	struct kvbuf kb;
	char tmp[4096];
	size_t i;
	int rc = 0;

	kvbuf_init(&kb);
	m.parts = &kb;
	ctx_init(&m.ctx, &e, 0, 0, 1);
	m.ctx.emit = map_emit;
	rc = app_init(app, &m.ctx);
	for (i = 0; i < n && rc == 0; i++) {
		struct app_input in = { splits[i].name, splits[i].off,
			splits[i].len };
		char *data;

		m.ctx.task = (uint32_t)i;
		rc = split_read(&splits[i], &data);
		if (rc < 0) {
			fprintf(stderr, "raftkv-mr: %s: %s\n", splits[i].name,
			    strerror(-rc));
			break;
		}
		rc = app_map(app, &m.ctx, &in, data, splits[i].len);
		free(data);
		counters_add(&e.counters, "map_input_bytes",
		    (int64_t)splits[i].len);
	}
	if (rc == 0 && m.failed)
		rc = 1;
	if (rc == 0) {
		counters_add(&e.counters, "map_output_records",
		    (int64_t)m.emitted);
		kvbuf_sort(&kb);
		ctx_init(&base, &e, 0, 0, 0);
		snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", outpath,
		    (long)getpid());
		rc = reduce_to(&e, &base, &kb, tmp);
		if (rc == 0 && rename(tmp, outpath) < 0)
			rc = -errno;
		if (rc != 0)
			unlink(tmp);
	}
	app_fini(app, &m.ctx);
	kvbuf_close(&kb);
	if (counters)
		counters_merge(counters, &e.counters);
	return rc;
}
