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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv/clerk.h"
#include "kv/cmd.h"
#include "kv/kv.h"
#include "raft/client/cproto.h"
#include "tests/integration/harness.h"

#define VALUE_FILL (64u << 10)
#define VALUE_WRITE 1024u

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
	struct clerk *ck;
	char bd[4096], member[4200];
	uint64_t t0, t1, o0, o1, base_ops, base_ms, chg_ops, chg_ms;
	char *val;
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	int c, rv;

	while ((c = getopt(argc, argv, "m:w:s:d:")) != -1) {
		switch (c) {
		case 'm':
			mib = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'w':
			nw = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 's':
			seconds = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'd':
			dir = optarg;
			break;
		default:
			fprintf(stderr,
			    "usage: %s [-m MIB] [-w WRITERS] [-s SECONDS] "
			    "[-d DIR]\n",
			    argv[0]);
			return 2;
		}
	}
	if (mib == 0 || nw == 0 || nw > 256 || seconds == 0)
		return 2;
	snprintf(bd, sizeof(bd), "%s",
	    getenv("RAFTKV_BUILDDIR") ? getenv("RAFTKV_BUILDDIR") : ".");
	snprintf(member, sizeof(member), "%s/kv/raftkv-server", bd);
	harness_options_defaults(&ho);
	ho.name = "bench-member";
	ho.member_path = member;
	ho.base_dir = dir;
	ho.spares = 1;
	ho.no_fault_injection = true;
	ho.max_raft_state = 16 << 20; /* the learner catches up by snapshot */
	ho.workers = 64;
	h = harness_new(3, &ho);
	if (h == NULL)
		return 1;
	harness_mark_passed(h); /* no logs at the end */

	/* The state: mib MiB of 64 KiB values. */
	fprintf(stderr, "filling %u MiB...\n", mib);
	ck = new_clerk(h);
	val = malloc(VALUE_FILL);
	if (ck == NULL || val == NULL)
		return 1;
	for (unsigned i = 0; i < mib * 16; i++) {
		char key[32];

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
			fprintf(stderr, "fill: %s\n", clerk_strerror(rv));
			return 1;
		}
	}
	clerk_free(ck);
	free(val);

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
