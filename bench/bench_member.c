/*
 * bench_member.c - membership change cost (issue #13 Benchmark): a real
 * 3-member kv/raftkv-server cluster holding N MiB of state, closed-loop
 * writers running all along, and a fourth member that joins: the time
 * from `member add` to the new member's promotion (its catch-up, through
 * a snapshot), and the writers' throughput during that catch-up against
 * the same cluster without a change, measured in the same run.  The state
 * is random bytes (snapshots are compressed).
 *
 * Usage: bench_member [-m MIB] [-w WRITERS] [-s SECONDS] [-d DIR]
 *   -m MIB      state to hold before the change (default 64; the issue's
 *               1 GiB is -m 1024, minutes on a small machine)
 *   -w WRITERS  concurrent closed-loop writers of 1 KiB puts (default 8)
 *   -s SECONDS  baseline measurement (default 5)
 *   -d DIR      where the data directories go (default: the current
 *               directory, i.e. the build's disk)
 *
 * One table: the baseline row and the change row (its duration is the
 * add-to-promotion time).  Figures are printed, never asserted.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv/clerk.h"
#include "kv/cmd.h"
#include "kv/kv.h"
#include "raft/client/cproto.h"
#include "raft/util/num.h"
#include "tests/integration/harness.h"

#define VALUE_FILL (64u << 10)
#define VALUE_WRITE 1024u
#define FILLERS 8u

struct writer {
	struct harness *h;
	atomic_bool *stop;
	atomic_uint_fast64_t *ops;
	unsigned me;
	int err;
	pthread_t tid;
};

static struct clerk *new_clerk(struct harness *h)
{
	struct clerk_options o;
	struct clerk *ck;

	clerk_options_defaults(&o);
	o.deadline_ms = 30000;
	if (clerk_new(harness_cluster(h), &o, &ck) != 0)
		return NULL;
	return ck;
}

static void *writer_main(void *p)
{
	struct writer *w = p;
	struct clerk *ck = new_clerk(w->h);
	char key[32], val[VALUE_WRITE];
	uint64_t n = 0;

	memset(val, 'w', sizeof(val));
	if (ck == NULL) {
		w->err = -ENOMEM;
		return NULL;
	}
	while (!atomic_load(w->stop)) {
		int rv;

		snprintf(key, sizeof(key), "w%u/%" PRIu64, w->me, n++ % 1000);
		rv = clerk_put(ck, key, strlen(key), val, sizeof(val), 0,
		    KV_F_ANYVER, NULL, NULL);
		if (rv != KV_OK && rv != KV_EMAYBE) {
			w->err = rv;
			break;
		}
		atomic_fetch_add(w->ops, 1);
	}
	clerk_free(ck);
	return NULL;
}

struct filler {
	struct harness *h;
	unsigned me, mib;
	int err;
	pthread_t tid;
};

/* Put every FILLERS-th 64 KiB value of the state, from value @me on. */
static void *filler_main(void *p)
{
	struct filler *f = p;
	struct clerk *ck = new_clerk(f->h);
	uint64_t rng = 0x9e3779b97f4a7c15ull + f->me;
	char *val = malloc(VALUE_FILL);

	if (ck == NULL || val == NULL) {
		f->err = -ENOMEM;
		goto out;
	}
	for (unsigned i = f->me; i < f->mib * 16; i += FILLERS) {
		char key[32];
		int rv;

		/* Incompressible: snapshots are zstd-compressed. */
		for (size_t k = 0; k < VALUE_FILL; k += 8) {
			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			memcpy(val + k, &rng, 8);
		}
		snprintf(key, sizeof(key), "state/%u", i);
		rv = clerk_put(ck, key, strlen(key), val, VALUE_FILL, 0,
		    KV_F_ANYVER, NULL, NULL);
		if (rv != KV_OK && rv != KV_EMAYBE) {
			f->err = rv;
			break;
		}
	}
out:
	free(val);
	if (ck != NULL)
		clerk_free(ck);
	return NULL;
}

/* Fill @mib MiB of state with FILLERS concurrent clerks; 0 or an error. */
static int fill(struct harness *h, unsigned mib)
{
	struct filler f[FILLERS];
	int rv = 0;

	for (unsigned i = 0; i < FILLERS; i++) {
		f[i] = (struct filler){ .h = h, .me = i, .mib = mib };
		if (pthread_create(&f[i].tid, NULL, filler_main, &f[i]) != 0) {
			f[i].err = -EAGAIN;
			f[i].h = NULL;
		}
	}
	for (unsigned i = 0; i < FILLERS; i++) {
		if (f[i].h != NULL)
			pthread_join(f[i].tid, NULL);
		if (f[i].err != 0 && rv == 0)
			rv = f[i].err;
	}
	return rv;
}

static double secs(uint64_t ms)
{
	return (double)ms / 1000.0;
}

int main(int argc, char **argv)
{
	unsigned mib = 64, nw = 8, seconds = 5;
	const char *dir = ".";
	struct harness_options ho;
	struct harness *h;
	struct writer *w;
	atomic_bool stop = false;
	atomic_uint_fast64_t ops = 0;
	char bd[4096], member[4200];
	uint64_t t0, t1, o0, o1, base_ops, base_ms, chg_ops, chg_ms;
	bool bad = false;
	int c, rv;

	while ((c = getopt(argc, argv, "m:w:s:d:")) != -1) {
		switch (c) {
		case 'm':
			bad |= num_parse_uint(optarg, 1, 65536, &mib) != 0;
			break;
		case 'w':
			bad |= num_parse_uint(optarg, 1, 256, &nw) != 0;
			break;
		case 's':
			bad |= num_parse_uint(optarg, 1, 3600, &seconds) != 0;
			break;
		case 'd':
			dir = optarg;
			break;
		default:
			bad = true;
			break;
		}
	}
	if (bad || optind != argc) {
		fprintf(stderr,
		    "usage: %s [-m MIB 1-65536] [-w WRITERS 1-256] "
		    "[-s SECONDS 1-3600] [-d DIR]\n",
		    argv[0]);
		return 2;
	}
	snprintf(bd, sizeof(bd), "%s",
	    getenv("RAFTKV_BUILDDIR") ? getenv("RAFTKV_BUILDDIR") : ".");
	snprintf(member, sizeof(member), "%s/kv/raftkv-server", bd);
	harness_options_defaults(&ho);
	ho.name = "bench-member";
	ho.member_path = member;
	ho.base_dir = dir;
	ho.spares = 1;
	ho.no_fault_injection = true;
	/*
	 * The learner catches up by snapshot.  A snapshot every 16 MiB of
	 * log made the fill quadratic (64 snapshots of a growing state at
	 * 1 GiB); a quarter of the state keeps it to a few.
	 */
	ho.max_raft_state = mib <= 64 ? (int64_t)16 << 20 : (int64_t)mib << 18;
	ho.workers = 64;
	h = harness_new(3, &ho);
	if (h == NULL)
		return 1;
	harness_mark_passed(h); /* no logs at the end */

	/* The state: mib MiB of 64 KiB values, put by FILLERS clerks. */
	fprintf(stderr, "filling %u MiB...\n", mib);
	t0 = harness_now_ms();
	rv = fill(h, mib);
	if (rv != 0) {
		fprintf(stderr, "fill: %s\n", clerk_strerror(rv));
		harness_free(h);
		return 1;
	}
	fprintf(stderr, "filled in %.1f s\n", secs(harness_now_ms() - t0));

	w = calloc(nw, sizeof(*w));
	for (unsigned i = 0; i < nw; i++) {
		w[i] = (struct writer){ .h = h,
			.stop = &stop,
			.ops = &ops,
			.me = i };
		pthread_create(&w[i].tid, NULL, writer_main, &w[i]);
	}
	harness_sleep_ms(1000); /* warm-up */

	/* Baseline: no change. */
	o0 = atomic_load(&ops);
	t0 = harness_now_ms();
	harness_sleep_ms(seconds * 1000);
	base_ops = atomic_load(&ops) - o0;
	base_ms = harness_now_ms() - t0;

	/* The change: add, join, promote (retried until caught up). */
	o1 = atomic_load(&ops);
	t1 = harness_now_ms();
	rv = harness_member_change(h, CPROTO_MEMBER_ADD, 3, 600000);
	if (rv == 0)
		rv = harness_join(h, 3);
	if (rv == 0)
		rv = harness_member_change(h, CPROTO_MEMBER_PROMOTE, 3,
		    3600000);
	chg_ops = atomic_load(&ops) - o1;
	chg_ms = harness_now_ms() - t1;

	atomic_store(&stop, true);
	for (unsigned i = 0; i < nw; i++) {
		pthread_join(w[i].tid, NULL);
		if (w[i].err != 0 && rv == 0)
			rv = w[i].err;
	}
	if (rv != 0) {
		fprintf(stderr, "change failed: %s\n", rk_strerror(rv));
		harness_free(h);
		return 1;
	}
	printf("membership change: 3 kv members (fsync on) holding %u MiB, "
	       "%u writers of %u-byte puts, a 4th member joins\n",
	    mib, nw, VALUE_WRITE);
	printf("%-34s %10s %12s\n", "row", "seconds", "writes/s");
	printf("%-34s %10.2f %12.0f\n", "no change (same run)", secs(base_ms),
	    (double)base_ops * 1000.0 / (double)base_ms);
	printf("%-34s %10.2f %12.0f\n", "member add -> promoted (catch-up)",
	    secs(chg_ms), (double)chg_ops * 1000.0 / (double)chg_ms);
	free(w);
	harness_free(h);
	return 0;
}
