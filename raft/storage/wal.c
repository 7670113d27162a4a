/*
 * wal.c - the Raft log on disk: segment files of CRC32C-checked records.
 *
 * Segment file wal-<first index, 20 digits>.seg, preallocated to
 * segment_size (storage.h: zero-filled by default, so that an append's
 * fdatasync is an overwrite of written blocks, about half the cost of an
 * append that grows the file or converts fallocate()d extents):
 *
 *   offset 0   header, 64 bytes, little-endian:
 *              magic "RAFTKVWL" | u32 version (2) | u32 header size (64)
 *              | u64 cluster id | u64 member id | u64 first index
 *              | u64 capacity | u32 flags | 8 zero bytes
 *              | u32 CRC32C of bytes 0..59
 *              flags: 1 = preallocated (zero-filled or fallocate()d), so
 *              the file is exactly "capacity" bytes for its whole life.
 *              Version 1 (before flags) had zeros there; such segments
 *              are still read, and never written (W4), so a directory is
 *              upgraded segment by segment as the log moves on.
 *   offset 64  records, back to back:
 *              u32 len | u32 crc | u8 type | body (len bytes)
 *              crc = CRC32C(len bytes || type || body); type 1 = entry,
 *              body = u64 index | u64 term | u8 entry type | data
 *   then       zeros: a record header of nine zero bytes ends the data.
 *
 * Invariants:
 *   W1. Records in a segment hold consecutive indexes from its first index.
 *   W2. Segments are created complete (header written, space reserved,
 *       fdatasync, then renamed from .tmp and the directory fsynced), so a
 *       segment that has its name has a good header.
 *   W3. Only the newest segment (largest first index) can hold unsynced
 *       records: the open segment is fdatasynced before a newer one is
 *       created (roll-over, truncation).
 *   W4. A process never appends to a segment it did not create: after a
 *       restart the first append creates a new segment.  So stale bytes
 *       after the end of a recovered segment can never be mistaken for
 *       records that follow new ones.
 *   W5. Segment k+1 starts at most one past the end of segment k's log; a
 *       segment starting *inside* the log so far supersedes everything
 *       from its first index on.  That is how a conflicting suffix is
 *       replaced crash-safely: delete the segments that start at or after
 *       the cut (newest first, directory fsynced after each, so every
 *       crash state is a prefix of the old log), then create a segment
 *       starting at the cut.  The older segment keeps its stale tail
 *       until the snapshot covers it.
 *   W6. Snapshot at (I, T): if the log holds I with a term other than T,
 *       the whole log is discarded (Raft Figure 13, step 7): all segments
 *       are deleted, newest first, directory fsynced after each.  Else
 *       the segments whose records are all <= I are deleted, oldest first.
 *       Recovery applies the same rule, so a crash in between is finished
 *       at the next start.
 *
 *   W7. The tail marks (wal.h: M1, M2), kept in the hard state file, are
 *       moved where a sync happens anyway, never on the append path:
 *       create_seg() records the new segment and the log's last index
 *       (everything before it was fdatasynced: W3) after the segment's
 *       rename is durable, at the cost of one small-file sync per
 *       segment (a segment already costs a zero-fill of segment_size,
 *       an fdatasync and a directory fsync); storage.c adds the last
 *       index whenever it syncs the hard state for a term or vote.  The
 *       marks only go down *before* the log shrinks: truncate_from()
 *       and a discarding wal_compact() lower them first, so a crash in
 *       the middle leaves marks the disk satisfies.  A torn tail is no
 *       exception: it was never synced, so it is past "durable".
 *
 * Recovery (wal_recover.c) reads every segment and applies W5 and W6;
 * its header says how a torn tail is told from corruption, and how
 * damage (a lost or shortened newest segment) is told from a crash.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raft/storage/wal_int.h"

#define FLUSH_BYTES (1u << 20)

/* ------------------------------------------------------------------ names */

void wal_seg_name(raft_index first, char *buf, size_t len, bool tmp)
{
	snprintf(buf, len, "wal-%020" PRIu64 ".seg%s", first,
	    tmp ? ".tmp" : "");
}

/* --------------------------------------------------------- live entries */

static struct ent *ent_at(const struct wal *w, raft_index i)
{
	return &w->ents[w->head + (i - w->first)];
}

int wal_push_ent(struct wal *w, raft_term term, uint32_t bytes)
{
	size_t n = (size_t)(w->last + 1 - w->first);

	if (w->head + n == w->cap_ents) {
		if (w->head > 0 && w->head >= w->cap_ents / 2) {
			memmove(w->ents, w->ents + w->head,
			    n * sizeof *w->ents);
			w->head = 0;
		} else {
			size_t cap = w->cap_ents ? 2 * w->cap_ents : 1024;
			struct ent *e = realloc(w->ents, cap * sizeof *e);

			if (e == NULL)
				return -ENOMEM;
			w->ents = e;
			w->cap_ents = cap;
		}
	}
	w->ents[w->head + n] = (struct ent){ term, bytes };
	w->last++;
	w->live_bytes += bytes;
	return 0;
}

/* Drop live entries >= @index. */
static void trim_after(struct wal *w, raft_index index)
{
	while (w->last >= index && w->last >= w->first) {
		w->live_bytes -= ent_at(w, w->last)->bytes;
		w->last--;
	}
}

/* Drop live entries <= @index; the log then starts at @index + 1 at least. */
static void trim_before(struct wal *w, raft_index index)
{
	while (w->first <= index && w->first <= w->last) {
		w->live_bytes -= ent_at(w, w->first)->bytes;
		w->first++;
		w->head++;
	}
	if (w->first <= index) { /* log now empty */
		w->first = index + 1;
		w->last = index;
		w->head = 0;
	}
}

/* ------------------------------------------------------------- segments */

int wal_push_seg(struct wal *w, const struct seg *sg)
{
	if (w->n_segs == w->cap_segs) {
		size_t cap = w->cap_segs ? 2 * w->cap_segs : 64;
		struct seg *s = realloc(w->segs, cap * sizeof *s);

		if (s == NULL)
			return -ENOMEM;
		w->segs = s;
		w->cap_segs = cap;
	}
	w->segs[w->n_segs++] = *sg;
	return 0;
}

static void encode_header(const struct wal *w, raft_index first, uint64_t cap,
    uint8_t *h)
{
	memset(h, 0, SEG_HDR);
	memcpy(h, SEG_MAGIC, 8);
	le_put32(h + 8, SEG_VERSION);
	le_put32(h + 12, SEG_HDR);
	le_put64(h + 16, w->cfg.cluster_id);
	le_put64(h + 24, w->cfg.member_id);
	le_put64(h + 32, first);
	le_put64(h + 40, cap);
	le_put32(h + 48,
	    w->cfg.prealloc != STORAGE_PREALLOC_NONE ? SEG_FLAG_FULLSIZE : 0);
	le_put32(h + 60, crc32c(0, h, 60));
}

/* Delete segs[k] (closing it if open) and forget it. */
static int delete_seg(struct wal *w, size_t k)
{
	char name[SEG_NAME_MAX];
	int rc;

	if (k == w->n_segs - 1 && w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
		w->dirty = false;
	}
	wal_seg_name(w->segs[k].first, name, sizeof name, false);
	if ((rc = diskio_unlink(w->io, name)) != 0)
		return rc;
	memmove(&w->segs[k], &w->segs[k + 1],
	    (w->n_segs - k - 1) * sizeof *w->segs);
	w->n_segs--;
	return 0;
}

/* Close the open segment, fdatasyncing it first if it was written (W3). */
static int close_open_seg(struct wal *w)
{
	char name[SEG_NAME_MAX];
	int rc = 0;

	if (w->fd < 0)
		return 0;
	if (w->dirty) {
		wal_seg_name(w->segs[w->n_segs - 1].first, name, sizeof name,
		    false);
		rc = diskio_fdatasync(w->io, w->fd, name);
	}
	close(w->fd);
	w->fd = -1;
	w->dirty = false;
	return rc;
}

/*
 * Create segment @first with room for at least one @need-byte record and
 * make it the open segment (W2).  Replaces an empty newest segment of the
 * same name (rename is atomic).
 */
static int create_seg(struct wal *w, raft_index first, uint64_t need)
{
	char name[SEG_NAME_MAX], tmp[SEG_NAME_MAX];
	uint8_t h[SEG_HDR];
	struct seg sg = { first, first - 1, SEG_HDR, w->cfg.segment_size };
	int fd, rc;

	if (sg.cap < SEG_HDR + need + REC_HDR)
		sg.cap = SEG_HDR + need + REC_HDR;
	wal_seg_name(first, name, sizeof name, false);
	wal_seg_name(first, tmp, sizeof tmp, true);
	if ((rc = diskio_open(w->io, tmp, O_RDWR | O_CREAT | O_TRUNC, &fd)) !=
	    0)
		return rc;
	encode_header(w, first, sg.cap, h);
	if ((rc = diskio_prealloc(w->io, fd, tmp, w->cfg.prealloc, sg.cap)) !=
	        0 ||
	    (rc = diskio_pwrite(w->io, fd, tmp, h, SEG_HDR, 0)) != 0 ||
	    (rc = diskio_fdatasync(w->io, fd, tmp)) != 0 ||
	    (rc = diskio_rename(w->io, tmp, name)) != 0 ||
	    (rc = diskio_syncdir(w->io)) != 0) {
		close(fd);
		return rc;
	}
	if (w->n_segs > 0 && w->segs[w->n_segs - 1].first == first)
		w->n_segs--; /* the empty segment we just replaced */
	if ((rc = wal_push_seg(w, &sg)) != 0) {
		close(fd);
		return diskio_fail(w->io, rc, "%s: out of memory", name);
	}
	w->fd = fd;
	/* W7: the segment's name is durable; now the mark may name it. */
	return wal_save_mark(w, first, w->last);
}

/* ------------------------------------------------------------- records */

static size_t encode_rec(const struct raft_entry *e, uint8_t *p)
{
	uint32_t len = ENTRY_FIXED + e->len;

	le_put32(p, len);
	p[8] = REC_ENTRY;
	le_put64(p + 9, e->index);
	le_put64(p + 17, e->term);
	p[25] = e->type;
	if (e->len > 0)
		memcpy(p + REC_HDR + ENTRY_FIXED, e->data, e->len);
	le_put32(p + 4, wal_rec_crc(p, len));
	return REC_HDR + len;
}

/* ---------------------------------------------------------- compaction */

/*
 * Segment k's records are all covered by the snapshot (W6).  Its live
 * part ends where the next segment starts (W5: a newer segment supersedes
 * the stale tail), so the tail must not keep it, and every segment after
 * it, alive until the snapshot passes records nobody reads.
 */
static bool covered(const struct wal *w, size_t k)
{
	const struct seg *sg = &w->segs[k];
	raft_index last = sg->last_rec;

	if (k + 1 < w->n_segs && w->segs[k + 1].first - 1 < last)
		last = w->segs[k + 1].first - 1;
	if (last >= sg->first)
		return last <= w->snap_index;
	return sg->first <= w->snap_index;
}

int wal_save_mark(struct wal *w, raft_index seg, raft_index durable)
{
	struct wal_mark m = { seg, durable };
	int rc;

	if (w->mark.seg == seg && w->mark.durable == durable)
		return 0;
	if ((rc = w->cfg.save_mark(w->cfg.mark_arg, &m)) != 0)
		return rc;
	w->mark = m;
	return 0;
}

void wal_mark_saved(struct wal *w, const struct wal_mark *m)
{
	w->mark = *m;
}

void wal_current_mark(const struct wal *w, struct wal_mark *m)
{
	m->seg = w->n_segs > 0 ? w->segs[w->n_segs - 1].first : 0;
	m->durable = w->last;
}

int wal_delete_all(struct wal *w)
{
	int rc;

	while (w->n_segs > 0)
		if ((rc = delete_seg(w, w->n_segs - 1)) != 0 ||
		    (rc = diskio_syncdir(w->io)) != 0)
			return rc;
	return 0;
}

int wal_delete_covered(struct wal *w)
{
	bool any = false;
	int rc;

	while (w->n_segs > 0 && covered(w, 0)) {
		if ((rc = delete_seg(w, 0)) != 0)
			return rc;
		any = true;
	}
	return any ? diskio_syncdir(w->io) : 0;
}

/* ---------------------------------------------------------------- append */

static int flush(struct wal *w)
{
	struct seg *sg = &w->segs[w->n_segs - 1];
	char name[SEG_NAME_MAX];
	int rc;

	if (w->wlen == 0)
		return 0;
	wal_seg_name(sg->first, name, sizeof name, false);
	if ((rc = diskio_pwrite(w->io, w->fd, name, w->wbuf, w->wlen,
	         sg->end)) != 0)
		return rc;
	sg->end += w->wlen;
	w->wlen = 0;
	w->dirty = true;
	return 0;
}

/* W5: replace the log from @index on. */
static int truncate_from(struct wal *w, raft_index index)
{
	raft_index durable = w->mark.durable, seg = 0;
	int rc;

	if ((rc = close_open_seg(w)) != 0)
		return rc;
	/* W7: lower the marks before the log shrinks (M1, M2). */
	for (size_t k = w->n_segs; k > 0 && seg == 0; k--)
		if (w->segs[k - 1].first < index)
			seg = w->segs[k - 1].first;
	if (durable >= index)
		durable = index - 1;
	if (seg < w->mark.seg || durable < w->mark.durable) {
		if (seg > w->mark.seg)
			seg = w->mark.seg;
		if ((rc = wal_save_mark(w, seg, durable)) != 0)
			return rc;
	}
	while (w->n_segs > 0 && w->segs[w->n_segs - 1].first >= index)
		if ((rc = delete_seg(w, w->n_segs - 1)) != 0 ||
		    (rc = diskio_syncdir(w->io)) != 0)
			return rc;
	trim_after(w, index);
	return 0;
}

int wal_check_append(const struct wal *w, const struct raft_entry *e,
    uint32_t n)
{
	raft_index prev;
	raft_term prev_term;

	if (n == 0 || e[0].index <= w->snap_index || e[0].index > w->last + 1)
		return -EINVAL;
	/* Terms never decrease along the log: recovery refuses a log where
	 * they do, so such a batch must not be written in the first place. */
	prev = e[0].index - 1;
	prev_term = prev > w->snap_index && prev >= w->first && prev <= w->last
	    ? ent_at(w, prev)->term
	    : w->snap_term;
	for (uint32_t i = 0; i < n; i++) {
		if (e[i].index != e[0].index + i || e[i].term < prev_term ||
		    e[i].term == 0 || e[i].len > REC_MAX_LEN - ENTRY_FIXED ||
		    (e[i].len > 0 && e[i].data == NULL))
			return -EINVAL;
		prev_term = e[i].term;
	}
	return 0;
}

/* Room for @need more bytes in the write buffer. */
static int reserve(struct wal *w, size_t need)
{
	if (w->wlen + need > w->wcap) {
		size_t cap = w->wcap ? w->wcap : 64 * 1024;
		uint8_t *b;

		while (cap < w->wlen + need)
			cap *= 2;
		if ((b = realloc(w->wbuf, cap)) == NULL)
			return diskio_fail(w->io, -ENOMEM, "out of memory");
		w->wbuf = b;
		w->wcap = cap;
	}
	return 0;
}

int wal_append(struct wal *w, const struct raft_entry *e, uint32_t n)
{
	int rc;

	if ((rc = wal_check_append(w, e, n)) != 0)
		return rc;
	if (e[0].index <= w->last && (rc = truncate_from(w, e[0].index)) != 0)
		return rc;
	/* W1: the open segment takes only its next index (a snapshot may
	 * have moved the log past it). */
	if (w->fd >= 0 && w->segs[w->n_segs - 1].last_rec + 1 != e[0].index &&
	    (rc = close_open_seg(w)) != 0)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		size_t need = REC_HDR + ENTRY_FIXED + (size_t)e[i].len;
		struct seg *sg = w->n_segs ? &w->segs[w->n_segs - 1] : NULL;

		if (w->fd >= 0 &&
		    sg->end + w->wlen + need + REC_HDR > sg->cap) {
			/* Full (a zero header must still fit): roll over (W3). */
			if ((rc = flush(w)) != 0 ||
			    (rc = close_open_seg(w)) != 0)
				return rc;
		}
		if (w->fd < 0 && (rc = create_seg(w, e[i].index, need)) != 0)
			return rc;
		if ((rc = reserve(w, need)) != 0)
			return rc;
		w->wlen += encode_rec(&e[i], w->wbuf + w->wlen);
		w->segs[w->n_segs - 1].last_rec = e[i].index;
		if ((rc = wal_push_ent(w, e[i].term, (uint32_t)need)) != 0)
			return diskio_fail(w->io, rc, "out of memory");
		if (w->wlen >= FLUSH_BYTES && (rc = flush(w)) != 0)
			return rc;
	}
	return flush(w);
}

int wal_sync(struct wal *w, bool *synced)
{
	char name[SEG_NAME_MAX];
	int rc;

	*synced = false;
	if (w->fd < 0 || !w->dirty)
		return 0;
	wal_seg_name(w->segs[w->n_segs - 1].first, name, sizeof name, false);
	if ((rc = diskio_fdatasync(w->io, w->fd, name)) != 0)
		return rc;
	w->dirty = false;
	*synced = true;
	return 0;
}

int wal_compact(struct wal *w, raft_index index, raft_term term)
{
	bool discard = index >= w->first && index <= w->last &&
	    ent_at(w, index)->term != term;

	w->snap_index = index;
	w->snap_term = term;
	if (discard) {
		/* W7: the log shrinks to the snapshot; M1 holds with seg 0. */
		int rc = wal_save_mark(w, 0,
		    w->mark.durable < index ? w->mark.durable : index);

		if (rc != 0)
			return rc;
		trim_after(w, w->first);
		w->first = index + 1;
		w->last = index;
		w->head = 0;
		return wal_delete_all(w);
	}
	trim_before(w, index);
	return wal_delete_covered(w);
}

bool wal_holds(const struct wal *w, raft_index index, raft_term term)
{
	return index >= w->first && index <= w->last &&
	    ent_at(w, index)->term == term;
}

void wal_stats(const struct wal *w, struct storage_stats *st)
{
	st->log_bytes = w->live_bytes;
	st->n_segments = w->n_segs;
	st->disk_bytes = 0;
	for (size_t k = 0; k < w->n_segs; k++)
		st->disk_bytes += w->cfg.prealloc == STORAGE_PREALLOC_NONE
		    ? w->segs[k].end
		    : w->segs[k].cap;
	st->first_index = w->first;
	st->last_index = w->last;
	st->last_term = w->last >= w->first ? ent_at(w, w->last)->term
	                                    : w->snap_term;
}

void wal_close(struct wal *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	wal_release_boot(w);
	free(w->segs);
	free(w->ents);
	free(w->wbuf);
	free(w);
}
