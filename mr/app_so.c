/*
 * app_so.c - loading a shared-object app (mr.h ABI) and calling it, plus
 * the dispatch of app.h to the shared-object or streaming code.
 *
 * The version check comes first: a .so built against another ABI version
 * is refused before any of its functions is looked up, with one line that
 * names both versions.  RTLD_NOW makes an unresolved symbol inside the .so
 * a load error rather than a crash in the middle of a task.
 */
#include "mr/app.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mr/app_int.h"
#include "mr/partition.h"
#include "mr/xmem.h"

static void *need(void *dl, const char *path, const char *sym, char *err,
    size_t errlen)
{
	void *p = dlsym(dl, sym);

	if (p == NULL)
		snprintf(err, errlen, "%s: not a raftkv-mr app: no symbol %s",
		    path, sym);
	return p;
}

int app_open_so(const char *path, struct app **out, char *err, size_t errlen)
{
	const uint32_t *ver;
	struct app *a;
	void *dl;

	char local[4096];

	*out = NULL;
	if (strchr(path, '/') == NULL) {
		/* "wc.so" means the file here, not a library search */
		snprintf(local, sizeof(local), "./%s", path);
		dl = dlopen(local, RTLD_NOW | RTLD_LOCAL);
	} else {
		dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	}
	if (dl == NULL) {
		snprintf(err, errlen, "cannot load app %s", dlerror());
		return -ENOENT;
	}
	ver = need(dl, path, "mr_abi_version", err, errlen);
	if (ver == NULL)
		goto err_dl;
	if (*ver != MR_ABI_VERSION) {
		snprintf(err, errlen,
		    "%s: app ABI version %u, this raftkv-mr "
		    "speaks version %u: rebuild the app against mr/mr.h",
		    path, *ver, MR_ABI_VERSION);
		goto err_dl;
	}
	a = xcalloc(1, sizeof(*a));
	a->dl = dl;
	a->name = xstrdup(path);
	*(void **)&a->map = need(dl, path, "mr_map", err, errlen);
	*(void **)&a->reduce = need(dl, path, "mr_reduce", err, errlen);
	if (a->map == NULL || a->reduce == NULL) {
		app_free(a);
		return -EINVAL;
	}
	*(void **)&a->combine = dlsym(dl, "mr_combine");
	*(void **)&a->part = dlsym(dl, "mr_partition");
	*(void **)&a->init = dlsym(dl, "mr_init");
	*(void **)&a->fini = dlsym(dl, "mr_fini");
	*out = a;
	return 0;
err_dl:
	dlclose(dl);
	return -EINVAL;
}

struct app *app_open_stream(const char *mapper, const char *reducer,
    const char *combiner)
{
	struct app *a = xcalloc(1, sizeof(*a));
	size_t n = strlen(mapper) + strlen(reducer) + 16;

	a->mapper = xstrdup(mapper);
	a->reducer = xstrdup(reducer);
	a->combiner = combiner ? xstrdup(combiner) : NULL;
	a->name = xmalloc(n);
	snprintf(a->name, n, "stream:%s|%s", mapper, reducer);
	return a;
}

void app_free(struct app *a)
{
	if (a == NULL)
		return;
	if (a->dl)
		dlclose(a->dl);
	free(a->name);
	free(a->mapper);
	free(a->reducer);
	free(a->combiner);
	free(a);
}

const char *app_name(const struct app *a)
{
	return a->name;
}

int app_init(struct app *a, struct mr_ctx *ctx)
{
	return a->init ? a->init(ctx) : 0;
}

void app_fini(struct app *a, struct mr_ctx *ctx)
{
	if (a->fini)
		a->fini(ctx);
}

int app_map(struct app *a, struct mr_ctx *ctx, const struct app_input *in,
    const char *data, size_t len)
{
	if (a->dl == NULL)
		return app_stream_map(a, ctx, in, data, len);
	return a->map(ctx, in->name, data, len);
}

int app_has_combiner(const struct app *a)
{
	return a->dl ? a->combine != NULL : a->combiner != NULL;
}

/* The reduce-side context: forwards emits with the current group's key. */
struct keyed_ctx {
	struct mr_ctx c;
	struct mr_ctx *outer;
	const char *key;
	size_t klen;
};

static void keyed_emit(struct mr_ctx *ctx, const char *key, size_t klen,
    const char *val, size_t vlen)
{
	struct keyed_ctx *k = (struct keyed_ctx *)ctx;

	(void)key;
	(void)klen;
	k->outer->emit(k->outer, k->key, k->klen, val, vlen);
}

static void keyed_counter(struct mr_ctx *ctx, const char *name, int64_t d)
{
	struct keyed_ctx *k = (struct keyed_ctx *)ctx;

	k->outer->counter(k->outer, name, d);
}

static int so_reduce(app_reduce_fn fn, struct mr_ctx *ctx,
    const struct kvbuf *kb)
{
	struct keyed_ctx k = { .c = *ctx, .outer = ctx };
	const char **v = NULL;
	size_t *len = NULL, nalloc = 0, i, j, g;
	int rc = 0;

	k.c.emit = keyed_emit;
	k.c.counter = keyed_counter;
	for (i = 0; i < kb->n && rc == 0; i = g) {
		struct mr_values vals;

		g = kvbuf_group_end(kb, i);
		if (g - i > nalloc) {
			nalloc = g - i;
			v = xrealloc(v, nalloc * sizeof(*v));
			len = xrealloc(len, nalloc * sizeof(*len));
		}
		for (j = i; j < g; j++) {
			v[j - i] = kvbuf_val(kb, j);
			len[j - i] = kb->recs[j].vlen;
		}
		vals.n = g - i;
		vals.v = v;
		vals.len = len;
		k.key = kvbuf_key(kb, i);
		k.klen = kb->recs[i].klen;
		rc = fn(&k.c, k.key, k.klen, &vals);
	}
	free(v);
	free(len);
	return rc;
}

int app_reduce(struct app *a, struct mr_ctx *ctx, const struct kvbuf *kb)
{
	if (a->dl == NULL)
		return app_stream_reduce(a, a->reducer, ctx, kb);
	return so_reduce(a->reduce, ctx, kb);
}

int app_combine(struct app *a, struct mr_ctx *ctx, const struct kvbuf *kb)
{
	if (a->dl == NULL)
		return app_stream_reduce(a, a->combiner, ctx, kb);
	return so_reduce(a->combine, ctx, kb);
}

int (*app_combine_fn(const struct app *a))(struct mr_ctx *, const char *,
    size_t, const struct mr_values *)
{
	return a->dl ? a->combine : NULL;
}

uint32_t app_partition(const struct app *a, const char *key, size_t klen,
    uint32_t nreduce)
{
	if (a->part)
		return a->part(key, klen, nreduce) % nreduce;
	return partition_of(key, klen, nreduce);
}
