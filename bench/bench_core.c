/*
 * bench_core.c - the Raft core's own cost, without I/O.
 *
 * An in-memory 3-member cluster in one thread: the leader is given
 * proposals in batches, every message a member hands out in a ready batch
 * is given at once to its target's raft_step() (as a struct, borrowed for
 * the call, so no copy and no encoding), persistence is acknowledged
 * immediately (raft_persisted() right after raft_advance()), and the
 * application "applies" by counting.  Logs are compacted every 64 Ki
 * entries so memory stays flat.
 *
 * Reported per entry size (64 B and 4 KiB): committed entries per second
 * (counted on the leader's committed stream), payload MB/s, and messages
 * per committed entry; then the same with every message encoded with
 * msg_encode() and decoded with msg_decode() on the way (what a real
 * transport adds), for reference.  Goal: >= 1,000,000 64-byte entries/s
 * on one core with structs.
 *
 *   bench_core [--entries N] [--batch N]
 *
 * This is a benchmark, not a test: it measures wall-clock time and never
 * fails on a number.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft/msg.h"
#include "raft/raft.h"
#include "raft/util/num.h"

#define N 3
#define COMPACT_EVERY 65536

struct bench {
	struct raft *r[N];
	bool encode;
	uint8_t *buf;
	size_t buf_cap;
	uint64_t msgs;
	uint64_t bytes; /* encoded bytes (encode mode only) */
	uint64_t committed; /* normal entries committed on the leader */
	raft_index applied[N];
	raft_index compacted[N];
	int leader;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_core: %s: %s\n", what, rk_strerror(rc));
	exit(1);
}

static void deliver(struct bench *b, const struct raft_msg *m)
{
	int to = (int)m->to - 1, rc;

	if (to < 0 || to >= N)
		return;
	b->msgs++;
	if (b->encode) {
		struct raft_msg d;
		size_t n = msg_encoded_size(m);
		long w;

		if (n > b->buf_cap) {
			b->buf_cap = n * 2;
			b->buf = realloc(b->buf, b->buf_cap);
			if (b->buf == NULL)
				die("realloc", -ENOMEM);
		}
		w = msg_encode(m, b->buf, b->buf_cap);
		if (w < 0)
			die("msg_encode", (int)w);
		b->bytes += (uint64_t)w;
		rc = msg_decode(b->buf, (size_t)w, &d);
		if (rc)
			die("msg_decode", rc);
		rc = raft_step(b->r[to], &d);
		msg_release(&d);
	} else {
		rc = raft_step(b->r[to], m);
	}
	if (rc)
		die("raft_step", rc);
}

/* Drain member @i's ready batches.  Returns whether there was any. */
static bool pump_one(struct bench *b, int i)
{
	struct raft_ready rd;
	bool any = false;
	uint32_t k;
	int rc;

	while (raft_ready(b->r[i], &rd)) {
		struct raft_persist_token tok = rd.persist_token;
		bool must = rd.must_persist;

		any = true;
		for (k = 0; k < rd.n_msgs; k++)
			deliver(b, &rd.msgs[k]);
		for (k = 0; k < rd.n_msgs_after_persist; k++)
			deliver(b, &rd.msgs_after_persist[k]);
		if (rd.role == RAFT_LEADER)
			b->leader = i;
		for (k = 0; k < rd.n_committed; k++) {
			if (rd.role == RAFT_LEADER &&
			    rd.committed[k].type == RAFT_ENTRY_NORMAL)
				b->committed++;
			b->applied[i] = rd.committed[k].index;
		}
		if (rd.snapshot_install)
			b->applied[i] = rd.snap_meta.index;
		raft_advance(b->r[i], &rd);
		if (must) {
			rc = raft_persisted(b->r[i], &tok);
			if (rc)
				die("raft_persisted", rc);
		}
		if (b->applied[i] >= b->compacted[i] + COMPACT_EVERY) {
			rc = raft_compact(b->r[i], b->applied[i], "s", 1);
			if (rc && rc != RAFT_ESTALE)
				die("raft_compact", rc);
			b->compacted[i] = b->applied[i];
		}
	}
	return any;
}

static void pump(struct bench *b)
{
	bool any;
	int i;

	do {
		any = false;
		for (i = 0; i < N; i++)
			any |= pump_one(b, i);
	} while (any);
}

static void bench_init(struct bench *b, bool encode)
{
	raft_id voters[N] = { 1, 2, 3 };
	struct raft_config c;
	int i, rc;

	memset(b, 0, sizeof *b);
	b->encode = encode;
	b->leader = -1;
	for (i = 0; i < N; i++) {
		raft_config_defaults(&c, (raft_id)i + 1, voters, N);
		c.seed = 42 + (uint64_t)i;
		rc = raft_new(&c, NULL, &b->r[i]);
		if (rc)
			die("raft_new", rc);
	}
	rc = raft_campaign(b->r[0]);
	if (rc)
		die("raft_campaign", rc);
	pump(b);
	if (b->leader != 0) {
		fprintf(stderr, "bench_core: no leader after campaign\n");
		exit(1);
	}
}

static void bench_free(struct bench *b)
{
	int i;

	for (i = 0; i < N; i++)
		raft_free(b->r[i]);
	free(b->buf);
}

struct result {
	double eps, mbps, msgs_per_entry, bytes_per_entry;
};

static struct result run(size_t size, uint64_t entries, uint32_t batch,
    bool encode)
{
	struct bench b;
	struct result res;
	uint8_t *data = malloc(size);
	uint64_t proposed = 0, msgs0, committed0;
	double t0, dt;
	int rc;

	if (data == NULL)
		die("malloc", -ENOMEM);
	memset(data, 'x', size);
	bench_init(&b, encode);
	msgs0 = b.msgs;
	committed0 = b.committed;
	t0 = now_s();
	while (proposed < entries) {
		uint32_t k;
		for (k = 0; k < batch && proposed < entries; k++) {
			memcpy(data, &proposed, sizeof proposed);
			rc = raft_propose(b.r[b.leader], data, (uint32_t)size,
			    NULL, NULL);
			if (rc == RAFT_EBUSY)
				break;
			if (rc)
				die("raft_propose", rc);
			proposed++;
		}
		pump(&b);
	}
	dt = now_s() - t0;
	if (b.committed - committed0 != entries) {
		fprintf(stderr,
		    "bench_core: %" PRIu64 " of %" PRIu64
		    " entries committed\n",
		    b.committed - committed0, entries);
		exit(1);
	}
	res.eps = entries / dt;
	res.mbps = entries * (double)size / dt / 1e6;
	res.msgs_per_entry = (double)(b.msgs - msgs0) / entries;
	res.bytes_per_entry = encode ? (double)b.bytes / entries : 0;
	bench_free(&b);
	free(data);
	return res;
}

int main(int argc, char **argv)
{
	uint64_t entries64 = 2000000, entries4k = 200000;
	uint32_t batch = 1024;
	static const size_t sizes[] = { 64, 4096 };
	int i, e;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--entries") == 0 && i + 1 < argc) {
			if (num_parse_u64(argv[++i], 10, 1, UINT32_MAX,
			        &entries64) != 0) {
				fprintf(stderr,
				    "bench_core: --entries: '%s' is "
				    "not a number from 1 to %" PRIu32 "\n",
				    argv[i], UINT32_MAX);
				return 2;
			}
			entries4k = entries64 / 10 ? entries64 / 10 : 1;
		} else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
			unsigned b;

			if (num_parse_uint(argv[++i], 1, UINT32_MAX, &b) != 0) {
				fprintf(stderr,
				    "bench_core: --batch: '%s' is "
				    "not a number from 1 to %" PRIu32 "\n",
				    argv[i], UINT32_MAX);
				return 2;
			}
			batch = b;
		} else {
			fprintf(stderr,
			    "usage: bench_core [--entries N] "
			    "[--batch N]\n");
			return 2;
		}
	}
	printf("bench_core: 3 members in one thread, proposals in batches "
	       "of %u, persistence acknowledged at once\n\n",
	    batch);
	printf("%-7s %-14s %6s %10s %14s %10s %11s %12s\n", "entry", "messages",
	    "batch", "entries", "entries/s", "MB/s", "msgs/entry",
	    "wire B/entry");
	run(64, entries64 / 10 + 1, batch, false); /* warm up the heap */
	for (e = 0; e < 3; e++) {
		for (i = 0; i < 2; i++) {
			size_t size = sizes[i];
			uint64_t n = size == 64 ? entries64 : entries4k;
			uint32_t bt = e == 2 ? 1 : batch;
			struct result r;
			char wire[32] = "-";

			if (e == 2)
				n /= 10;
			r = run(size, n, bt, e == 1);
			if (e == 1)
				snprintf(wire, sizeof wire, "%.1f",
				    r.bytes_per_entry);
			printf("%-7s %-14s %6u %10" PRIu64 " %14.0f %10.1f "
			       "%11.3f %12s\n",
			    size == 64 ? "64 B" : "4 KiB",
			    e == 1 ? "encode+decode" : "structs", bt, n, r.eps,
			    r.mbps, r.msgs_per_entry, wire);
		}
	}
	printf("\ngoal: >= 1,000,000 64-byte entries/s with structs on one "
	       "core\n");
	return 0;
}
