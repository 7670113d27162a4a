/*
 * tasktab.c - the coordinator's task table (see tasktab.h for the states
 * and invariants).
 */
#include "mr/tasktab.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mr/xmem.h"

void tasktab_init(struct tasktab *tt, uint32_t nmap, uint32_t nreduce,
    uint64_t lease_ms)
{
	int p;

	assert(nmap > 0 && nreduce > 0);
	memset(tt, 0, sizeof(*tt));
	tt->n[TT_MAP] = nmap;
	tt->n[TT_REDUCE] = nreduce;
	for (p = 0; p < 2; p++) {
		tt->t[p] = xcalloc(tt->n[p], sizeof(struct tt_task));
		tt->dur[p] = xcalloc(tt->n[p], sizeof(uint64_t));
	}
	tt->lease_ms = lease_ms;
	tt->backup_floor_ms = lease_ms;
	tt->max_failures = 20;
}

void tasktab_close(struct tasktab *tt)
{
	int p;

	for (p = 0; p < 2; p++) {
		free(tt->t[p]);
		free(tt->dur[p]);
	}
	memset(tt, 0, sizeof(*tt));
}

static void drop_run(struct tt_task *t, uint32_t i)
{
	t->run[i] = t->run[--t->nrun];
	if (t->nrun == 0 && t->state == TT_RUNNING)
		t->state = TT_IDLE;
}

void tasktab_expire(struct tasktab *tt, uint64_t now)
{
	uint32_t p, i, j;

	for (p = 0; p < 2; p++)
		for (i = 0; i < tt->n[p]; i++) {
			struct tt_task *t = &tt->t[p][i];

			for (j = 0; j < t->nrun;) {
				if (now - t->run[j].seen_ms > tt->lease_ms) {
					drop_run(t, j);
					tt->st.reassigned++;
				} else {
					j++;
				}
			}
		}
}

static uint32_t start(struct tasktab *tt, struct tt_task *t, uint64_t now)
{
	struct tt_run *r = &t->run[t->nrun++];

	r->attempt = t->next_attempt++;
	r->start_ms = r->seen_ms = now;
	t->state = TT_RUNNING;
	tt->st.attempts++;
	return r->attempt;
}

static int u64cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(const struct tasktab *tt, int p)
{
	uint32_t n = tt->ndone[p];
	uint64_t *c, m;

	if (n == 0)
		return 0;
	c = xmalloc(n * sizeof(*c));
	memcpy(c, tt->dur[p], n * sizeof(*c));
	qsort(c, n, sizeof(*c), u64cmp);
	m = c[n / 2];
	free(c);
	return m;
}

/* A straggler of phase @p worth a backup attempt (invariant 4), or -1. */
static int64_t backup_candidate(struct tasktab *tt, int p, uint64_t now)
{
	uint32_t n = tt->n[p], cap = n / 10 ? n / 10 : 1, i;
	uint64_t limit;

	if (tt->ndone[p] * 10ull < n * 9ull || tt->nbackup[p] >= cap)
		return -1;
	limit = 2 * median(tt, p);
	if (limit < tt->backup_floor_ms)
		limit = tt->backup_floor_ms;
	for (i = 0; i < n; i++) {
		struct tt_task *t = &tt->t[p][i];

		if (t->state == TT_RUNNING && t->nrun == 1 &&
		    now - t->run[0].start_ms > limit)
			return i;
	}
	return -1;
}

enum tt_result tasktab_assign(struct tasktab *tt, uint64_t now,
    enum tt_phase *phase, uint32_t *task, uint32_t *attempt)
{
	int p = tt->ndone[TT_MAP] < tt->n[TT_MAP] ? TT_MAP : TT_REDUCE;
	int64_t b;
	uint32_t i;

	if (tt->failed)
		return TT_FAILED;
	if (tasktab_all_done(tt))
		return TT_ALLDONE;
	tasktab_expire(tt, now);
	for (i = 0; i < tt->n[p]; i++)
		if (tt->t[p][i].state == TT_IDLE)
			break;
	if (i == tt->n[p]) {
		b = backup_candidate(tt, p, now);
		if (b < 0)
			return TT_WAIT;
		i = (uint32_t)b;
		tt->nbackup[p]++;
		tt->st.backups++;
	}
	*phase = (enum tt_phase)p;
	*task = i;
	*attempt = start(tt, &tt->t[p][i], now);
	return TT_ASSIGNED;
}

static struct tt_task *lookup(struct tasktab *tt, enum tt_phase p,
    uint32_t task, uint32_t attempt)
{
	if ((p != TT_MAP && p != TT_REDUCE) || task >= tt->n[p] ||
	    attempt >= tt->t[p][task].next_attempt)
		return NULL;
	return &tt->t[p][task];
}

static int find_run(const struct tt_task *t, uint32_t attempt)
{
	uint32_t i;

	for (i = 0; i < t->nrun; i++)
		if (t->run[i].attempt == attempt)
			return (int)i;
	return -1;
}

int tasktab_heartbeat(struct tasktab *tt, uint64_t now, enum tt_phase phase,
    uint32_t task, uint32_t attempt)
{
	struct tt_task *t = lookup(tt, phase, task, attempt);
	int i;

	if (t == NULL)
		return -EINVAL;
	if (t->state == TT_DONE || (i = find_run(t, attempt)) < 0)
		return -ESTALE;
	t->run[i].seen_ms = now;
	return 0;
}

int tasktab_complete(struct tasktab *tt, uint64_t now, enum tt_phase phase,
    uint32_t task, uint32_t attempt)
{
	struct tt_task *t = lookup(tt, phase, task, attempt);
	uint64_t began = now;
	int i;

	if (t == NULL)
		return -EINVAL;
	if (t->state == TT_DONE) {
		tt->st.duplicates++;
		return 0;
	}
	i = find_run(t, attempt);
	if (i >= 0)
		began = t->run[i].start_ms;
	t->state = TT_DONE;
	t->winner = attempt;
	t->nrun = 0;
	tt->dur[phase][tt->ndone[phase]++] = now - began;
	return 1;
}

int tasktab_fail(struct tasktab *tt, enum tt_phase phase, uint32_t task,
    uint32_t attempt)
{
	struct tt_task *t = lookup(tt, phase, task, attempt);
	int i;

	if (t == NULL)
		return -EINVAL;
	tt->st.failures++;
	if (t->state == TT_DONE)
		return 0;
	i = find_run(t, attempt);
	if (i >= 0)
		drop_run(t, (uint32_t)i);
	if (++t->failures >= tt->max_failures)
		tt->failed = 1;
	return 0;
}

uint32_t tasktab_winner(const struct tasktab *tt, enum tt_phase phase,
    uint32_t task)
{
	assert(task < tt->n[phase] && tt->t[phase][task].state == TT_DONE);
	return tt->t[phase][task].winner;
}

void tasktab_count(const struct tasktab *tt, enum tt_phase phase,
    uint32_t *idle, uint32_t *running, uint32_t *done)
{
	uint32_t i;

	*idle = *running = *done = 0;
	for (i = 0; i < tt->n[phase]; i++)
		switch (tt->t[phase][i].state) {
		case TT_IDLE:
			(*idle)++;
			break;
		case TT_RUNNING:
			(*running)++;
			break;
		case TT_DONE:
			(*done)++;
			break;
		}
}

int tasktab_all_done(const struct tasktab *tt)
{
	return tt->ndone[TT_REDUCE] == tt->n[TT_REDUCE];
}
