/*
 * wal_recover.c - rebuilding the log from its segment files at start-up.
 *
 * Every segment is read in full (the entries go to raft_new() anyway);
 * segments are chained by W5 (wal.c), then the snapshot is applied by W6,
 * whose interrupted deletions are finished here.
 *
 * Recovery reads every segment.  Ends of data: the zero header, or, in the
 * newest segment only (W3), a torn record: a bad record after which no
 * valid record follows, or one that holds a never-written 512-byte-aligned
 * (all-zero) block and ends, by its own length, before the next valid
 * record (a batch whose middle pages were lost).  A torn record is
 * neutralised (nine zero bytes written over its header, fdatasync) and
 * logged; the valid records after it belong to the same unacknowledged
 * batch.  Any other bad record, a bad header, a record out of sequence
 * and a gap between segments are corruption: wal_open() fails naming the
 * file and offset.  (A limit shared with etcd's WAL: a bit flip in the last
 * records of the newest segment, or in a record whose data holds an aligned
 * 512-byte run of zeros, looks torn.)
 *
 * Damage versus a crash.  A crash loses only what was never synced, and
 * leaves every file at the size it was created with (W2: preallocated
 * segments are born full size).  So these are damage (STORAGE_EDAMAGED,
 * unless cfg->recover), never repaired silently:
 *   - a segment whose header says "preallocated" but whose file is shorter
 *     than its capacity (cut short, at a record boundary or not), or any
 *     segment shorter than its header (W2: never renamed before it has
 *     one; the recover option sets it aside as <name>.lost);
 *   - M1 broken: the segment the hard state names as the newest is gone
 *     (the newest segment deleted);
 *   - M2 broken: the log ends before the index the hard state says was
 *     durable (the newest segment deleted, emptied or cut before it).
 * Limits: a segment written without preallocation (STORAGE_PREALLOC_NONE,
 * or a version-1 segment) can be cut at a record boundary undetected down
 * to the "durable" mark, which moves only at elections and new segments
 * (W7); a file replaced by an older copy of itself, or zeroed in place
 * past the durable mark, looks like a crash.
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

#define SECTOR 512
#define SEG_LOST 1 /* load_seg(): the segment is to be set aside */
#define READ_CHUNK (256u * 1024)

/* One segment's contents while recovering. */
struct segread {
	const char *name;
	int fd;
	uint64_t fsize;
	uint8_t *buf; /* file bytes [0, have) */
	size_t have;
};

/* Parse "wal-<20 digits>.seg" (tmp: with ".tmp"); strict. */
static bool parse_name(const char *name, bool tmp, raft_index *first)
{
	return diskio_parse_name(name, "wal-", tmp ? ".seg.tmp" : ".seg",
	    first);
}

/* ------------------------------------------------------------- records */

enum rec_status { REC_OK, REC_END, REC_BAD, REC_CORRUPT };

static const char WHY_SHORT_HDR[] = "record header cut short";
static const char WHY_PAST_EOF[] = "record runs past the end of the file";

struct rec {
	raft_index index;
	raft_term term;
	uint8_t etype;
	uint32_t dlen;
	size_t data_off; /* offset of the data in the segment buffer */
	const uint8_t *data; /* the same once the buffer is final */
	uint32_t bytes;
	raft_index seg; /* first index of its segment, for messages */
};

/*
 * Parse the record at @p with @avail bytes to the end of the file.
 * REC_BAD: may be a torn write; REC_CORRUPT: checks out but is wrong.
 */
static enum rec_status parse_rec(const uint8_t *p, size_t avail,
    raft_index expect, struct rec *r, const char **why)
{
	uint32_t len;

	if (avail < REC_HDR) {
		for (size_t i = 0; i < avail; i++)
			if (p[i] != 0)
				return *why = WHY_SHORT_HDR, REC_BAD;
		return REC_END;
	}
	len = le_get32(p);
	if (len == 0) {
		if (le_get32(p + 4) == 0 && p[8] == 0)
			return REC_END;
		return *why = "zero length", REC_BAD;
	}
	if (len < ENTRY_FIXED || len > REC_MAX_LEN)
		return *why = "impossible length", REC_BAD;
	if ((size_t)len > avail - REC_HDR)
		return *why = WHY_PAST_EOF, REC_BAD;
	if (wal_rec_crc(p, len) != le_get32(p + 4))
		return *why = "checksum mismatch", REC_BAD;
	if (p[8] != REC_ENTRY)
		return *why = "unknown record type", REC_CORRUPT;
	r->index = le_get64(p + 9);
	r->term = le_get64(p + 17);
	r->etype = p[25];
	r->dlen = len - ENTRY_FIXED;
	r->bytes = REC_HDR + len;
	if (r->index != expect)
		return *why = "record index out of sequence", REC_CORRUPT;
	if (r->term == 0)
		return *why = "record with term 0", REC_CORRUPT;
	return REC_OK;
}

/* Make at least @need bytes of the file (or all of it) available. */
static int read_upto(struct wal *w, struct segread *sr, uint64_t need)
{
	size_t got;
	uint64_t want;
	int rc;

	if (need > sr->fsize)
		need = sr->fsize;
	if (need <= sr->have)
		return 0;
	want = need - sr->have < READ_CHUNK ? sr->have + READ_CHUNK : need;
	if (want > sr->fsize)
		want = sr->fsize;
	uint8_t *b = realloc(sr->buf, (size_t)want);
	if (b == NULL)
		return diskio_fail(w->io, -ENOMEM, "%s/%s: out of memory",
		    w->io->dir, sr->name);
	sr->buf = b;
	rc = diskio_pread(w->io, sr->fd, sr->name, b + sr->have,
	    (size_t)(want - sr->have), sr->have, &got);
	if (rc != 0)
		return rc;
	sr->have += got;
	if (sr->have < want) /* the file shrank under us */
		sr->fsize = sr->have;
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/* Offset of the first valid record after @off, or 0 if there is none. */
static uint64_t next_valid(const struct segread *sr, uint64_t off)
{
	const uint8_t *b = sr->buf;
	const char *why;
	struct rec r;

	for (uint64_t p = off + 1; p + REC_HDR + ENTRY_FIXED <= sr->fsize;
	     p++) {
		if (b[p] == 0 && b[p + 1] == 0 && b[p + 2] == 0 &&
		    b[p + 3] == 0)
			continue;
		if (parse_rec(b + p, (size_t)(sr->fsize - p),
		        le_get64(b + p + 9), &r, &why) == REC_OK)
			return p;
	}
	return 0;
}

/*
 * The record at @off is bad and this is the newest segment: is it a torn
 * write?  A torn write is the last thing in the file, except that a batch
 * whose middle pages never reached the disk leaves a record with a
 * never-written (all-zero, sector-aligned) block, followed by records of
 * the same batch.  Needs the whole file in sr->buf.  Sets *@valid_after to
 * the valid record that proves corruption.
 */
static bool is_torn(const struct segread *sr, uint64_t off,
    uint64_t *valid_after)
{
	uint32_t len = off + 4 <= sr->fsize ? le_get32(sr->buf + off) : 0;
	uint64_t next = next_valid(sr, off), end = off + REC_HDR + len;

	*valid_after = next;
	if (next == 0)
		return true;
	/* The length is not checksummed yet: trust it only that far. */
	if (len < ENTRY_FIXED || end > next)
		return false;
	for (uint64_t c = off / SECTOR * SECTOR; c < end; c += SECTOR) {
		uint64_t ce = c + SECTOR < sr->fsize ? c + SECTOR : sr->fsize;

		if (all_zero(sr->buf + c, (size_t)(ce - c)))
			return true;
	}
	return false;
}

/* --------------------------------------------------------------- recovery */

struct loaded {
	struct rec *recs;
	size_t n, cap;
};

static int check_header(struct wal *w, struct segread *sr, raft_index first)
{
	const uint8_t *h = sr->buf;
	const char *dir = w->io->dir, *name = sr->name;

	if (sr->fsize < SEG_HDR)
		return diskio_fail(w->io, STORAGE_ECORRUPT,
		    "%s/%s: bad segment header at offset 0: file is only "
		    "%" PRIu64 " bytes",
		    dir, name, sr->fsize);
	if (memcmp(h, SEG_MAGIC, 8) != 0 ||
	    crc32c(0, h, 60) != le_get32(h + 60))
		return diskio_fail(w->io, STORAGE_ECORRUPT,
		    "%s/%s: bad segment header at offset 0: %s", dir, name,
		    memcmp(h, SEG_MAGIC, 8) ? "wrong magic"
		                            : "checksum mismatch");
	if ((le_get32(h + 8) != SEG_VERSION && le_get32(h + 8) != 1) ||
	    le_get32(h + 12) != SEG_HDR)
		return diskio_fail(w->io, STORAGE_ECORRUPT,
		    "%s/%s: bad segment header at offset 8: unknown format "
		    "version %u",
		    dir, name, le_get32(h + 8));
	if ((le_get32(h + 48) & ~SEG_FLAG_FULLSIZE) != 0 ||
	    (le_get32(h + 8) == 1 && le_get32(h + 48) != 0))
		return diskio_fail(w->io, STORAGE_ECORRUPT,
		    "%s/%s: bad segment header at offset 48: unknown flags %#x",
		    dir, name, le_get32(h + 48));
	if (le_get64(h + 16) != w->cfg.cluster_id ||
	    le_get64(h + 24) != w->cfg.member_id)
		return diskio_fail(w->io, STORAGE_EFOREIGN,
		    "%s/%s: segment belongs to cluster %" PRIx64
		    " member %" PRIu64 ", not cluster %" PRIx64
		    " member %" PRIu64,
		    dir, name, le_get64(h + 16), le_get64(h + 24),
		    w->cfg.cluster_id, w->cfg.member_id);
	if (le_get64(h + 32) != first)
		return diskio_fail(w->io, STORAGE_ECORRUPT,
		    "%s/%s: bad segment header at offset 32: first index "
		    "%" PRIu64 " does not match the file name",
		    dir, name, le_get64(h + 32));
	return 0;
}

/*
 * Make the data of segment @sr end at @off for good: give the file its
 * size @cap back when @cap is non-zero (a preallocated segment cut
 * short: zeros), write a zero record header at @off when @bad (a torn or
 * partial record starts there), and fdatasync.
 */
static int end_data_at(struct wal *w, struct segread *sr, uint64_t off,
    bool bad, uint64_t cap)
{
	static const uint8_t zero[REC_HDR];
	int fd, rc;

	if ((rc = diskio_open(w->io, sr->name, O_RDWR, &fd)) != 0)
		return rc;
	if (cap != 0)
		rc = diskio_truncate(w->io, fd, sr->name, cap);
	if (rc == 0 && bad)
		rc = diskio_pwrite(w->io, fd, sr->name, zero, REC_HDR, off);
	if (rc == 0)
		rc = diskio_fdatasync(w->io, fd, sr->name);
	close(fd);
	return rc;
}

/* A torn record at @off of the newest segment: cut the log there. */
static int cut_torn(struct wal *w, struct segread *sr, uint64_t off,
    const char *why, raft_index last)
{
	diskio_log(w->io, STORAGE_LOG_WARN,
	    "%s/%s: torn record at offset %" PRIu64 " (%s), left by a crash "
	    "during a write that was never acknowledged: truncating the log "
	    "after index %" PRIu64,
	    w->io->dir, sr->name, off, why, last);
	return end_data_at(w, sr, off, true, 0);
}

/* Read segment @first, appending its records to @ld; keeps the buffer.
 * The newest segment is fdatasynced (wal_open()).  Returns SEG_LOST when
 * the recover option accepted a segment shorter than its header: the
 * caller sets it aside. */
static int load_seg(struct wal *w, raft_index first, bool newest,
    struct loaded *ld, struct seg *sg, uint64_t *n_damage)
{
	bool cut_short;
	char name[SEG_NAME_MAX];
	struct segread sr = { name, -1, 0, NULL, 0 };
	uint64_t off = SEG_HDR, after = 0;
	raft_index expect = first;
	const char *why = NULL;
	enum rec_status st;
	size_t n0 = ld->n;
	struct rec r;
	int rc;

	wal_seg_name(first, name, sizeof name, false);
	if ((rc = diskio_open(w->io, name, O_RDONLY, &sr.fd)) != 0 ||
	    (rc = diskio_size(w->io, sr.fd, name, &sr.fsize)) != 0)
		goto out;
	if (sr.fsize < SEG_HDR) {
		/* W2: a crash never leaves a named segment without its header. */
		rc = diskio_damage(w->io, w->cfg.recover, n_damage,
		    "%s/%s: cut short: %" PRIu64
		    " bytes, less than its header; "
		    "entries from index %" PRIu64 " on are lost",
		    w->io->dir, name, sr.fsize, first);
		if (rc == 0)
			rc = SEG_LOST;
		goto out;
	}
	if ((rc = read_upto(w, &sr, SEG_HDR + READ_CHUNK)) != 0 ||
	    (rc = check_header(w, &sr, first)) != 0)
		goto out;
	*sg = (struct seg){ first, first - 1, SEG_HDR, le_get64(sr.buf + 40) };
	/* Decided before any record is read: a record cut by a shortened
	 * file must not pass for a torn write. */
	cut_short = (le_get32(sr.buf + 48) & SEG_FLAG_FULLSIZE) != 0 &&
	    sr.fsize < sg->cap;
	for (;;) {
		if ((rc = read_upto(w, &sr, off + REC_HDR)) != 0 ||
		    (sr.have >= off + REC_HDR &&
		        (rc = read_upto(w, &sr,
		             off + REC_HDR + le_get32(sr.buf + off))) != 0))
			goto out;
		st = parse_rec(sr.buf + off, (size_t)(sr.have - off), expect,
		    &r, &why);
		if (st != REC_OK)
			break;
		if (ld->n == ld->cap) {
			size_t cap = ld->cap ? 2 * ld->cap : 1024;
			struct rec *g = realloc(ld->recs, cap * sizeof *g);

			if (g == NULL) {
				rc = diskio_fail(w->io, -ENOMEM,
				    "%s: out of memory", name);
				goto out;
			}
			ld->recs = g;
			ld->cap = cap;
		}
		r.data_off = (size_t)off + REC_HDR + ENTRY_FIXED;
		r.seg = first;
		ld->recs[ld->n++] = r;
		off += r.bytes;
		expect++;
	}
	sg->end = off;
	sg->last_rec = expect - 1;
	if (cut_short) {
		/* The recover option accepted it: the segment gets its size
		 * back, so that the next open finds it whole. */
		rc = diskio_damage(w->io, w->cfg.recover, n_damage,
		    "%s/%s: cut short: %" PRIu64 " bytes, but it was "
		    "preallocated to %" PRIu64 "; its records end at index "
		    "%" PRIu64 ", later entries in it are lost",
		    w->io->dir, name, sr.fsize, sg->cap, expect - 1);
		if (rc == 0)
			rc = end_data_at(w, &sr, off, st != REC_END, sg->cap);
	} else if (st == REC_BAD && newest) {
		if ((rc = read_upto(w, &sr, sr.fsize)) != 0)
			goto out;
		if (is_torn(&sr, off, &after))
			rc = cut_torn(w, &sr, off, why, expect - 1);
		else
			rc = diskio_fail(w->io, STORAGE_ECORRUPT,
			    "%s/%s: corrupt record at offset %" PRIu64 " (%s), "
			    "followed by a valid record at offset %" PRIu64,
			    w->io->dir, name, off, why, after);
	} else if (st != REC_END) {
		rc = diskio_fail(w->io, STORAGE_ECORRUPT,
		    "%s/%s: corrupt record at offset %" PRIu64 " (%s)",
		    w->io->dir, name, off, why);
	}
	/* What is read here may be only in the page cache (the process, not
	 * the machine, stopped): make it as durable as the marks will say. */
	if (rc == 0 && newest)
		rc = diskio_fdatasync(w->io, sr.fd, name);
out:
	if (sr.fd >= 0)
		close(sr.fd);
	if (rc == 0 && sr.buf != NULL) {
		uint8_t **bufs = realloc(w->bufs,
		    (w->n_bufs + 1) * sizeof *bufs);

		if (bufs == NULL) {
			free(sr.buf);
			return diskio_fail(w->io, -ENOMEM, "%s: out of memory",
			    name);
		}
		w->bufs = bufs;
		w->bufs[w->n_bufs++] = sr.buf;
		/* The buffer has stopped moving: offsets become pointers. */
		for (size_t i = n0; i < ld->n; i++)
			ld->recs[i].data = sr.buf + ld->recs[i].data_off;
		return 0;
	}
	free(sr.buf);
	return rc;
}

/*
 * W5: fit segment @first after the log so far (@ld, ending at *@last).
 * Returns 1 for a gap (the message formatted), else 0.
 */
static int chain_seg(struct wal *w, raft_index first, struct loaded *ld,
    raft_index *last)
{
	char name[SEG_NAME_MAX];

	if (first <= *last + 1) {
		while (ld->n > 0 && ld->recs[ld->n - 1].index >= first)
			ld->n--; /* superseded by this segment */
	} else if (first <= w->snap_index + 1) {
		ld->n = 0; /* the gap is covered by the snapshot */
	} else {
		wal_seg_name(first, name, sizeof name, false);
		diskio_fail(w->io, STORAGE_ECORRUPT,
		    "%s/%s: bad segment header at offset 32: log starts at "
		    "index "
		    "%" PRIu64 " but the log before it ends at %" PRIu64
		    " and the snapshot at %" PRIu64 ": entries are missing",
		    w->io->dir, name, first, *last, w->snap_index);
		return 1;
	}
	*last = first - 1;
	return 0;
}

/*
 * The recover option accepted a gap before segment firsts[0], or a
 * segment (n = 1) it cannot read: the log is kept up to there; the
 * segments are renamed <name>.lost (for the operator; recovery ignores
 * them) so that the next open is clean.
 */
static int set_aside(struct wal *w, const raft_index *firsts, size_t n)
{
	char name[SEG_NAME_MAX], lost[SEG_NAME_MAX + 8];
	int rc;

	for (size_t k = 0; k < n; k++) {
		wal_seg_name(firsts[k], name, sizeof name, false);
		snprintf(lost, sizeof lost, "%s.lost", name);
		diskio_log(w->io, STORAGE_LOG_WARN,
		    "%s/%s: renamed to %s: its "
		    "entries cannot be used",
		    w->io->dir, name, lost);
		if ((rc = diskio_rename(w->io, name, lost)) != 0)
			return rc;
	}
	return diskio_syncdir(w->io);
}

/* Terms never decrease along the log, nor fall below the snapshot's. */
static int check_terms(struct wal *w, const struct loaded *ld)
{
	raft_term prev = w->snap_term;
	char name[SEG_NAME_MAX];

	for (size_t i = 0; i < ld->n; i++) {
		if (ld->recs[i].term < prev) {
			wal_seg_name(ld->recs[i].seg, name, sizeof name, false);
			return diskio_fail(w->io, STORAGE_ECORRUPT,
			    "%s/%s: entry %" PRIu64 " has term %" PRIu64
			    ", older than term %" PRIu64 " before it",
			    w->io->dir, name, ld->recs[i].index,
			    ld->recs[i].term, prev);
		}
		prev = ld->recs[i].term;
	}
	return 0;
}

/* Apply the snapshot to the recovered records; sets *@discard. */
static void apply_snapshot(struct wal *w, struct loaded *ld, bool *discard)
{
	raft_index first = ld->n ? ld->recs[0].index : 0, skip;

	*discard = false;
	if (w->snap_index == 0 || ld->n == 0 || first > w->snap_index)
		return;
	skip = w->snap_index - first + 1; /* records <= snap_index */
	if (skip <= ld->n && ld->recs[skip - 1].term != w->snap_term) {
		*discard = true;
		skip = ld->n;
	}
	if (skip > ld->n)
		skip = ld->n;
	memmove(ld->recs, ld->recs + skip, (ld->n - skip) * sizeof *ld->recs);
	ld->n -= skip;
}

static int list_segs(struct wal *w, raft_index **firsts, size_t *n)
{
	char **names;
	size_t n_names, k = 0;
	raft_index f;
	int rc;

	if ((rc = diskio_list(w->io, &names, &n_names)) != 0)
		return rc;
	*firsts = calloc(n_names + 1, sizeof **firsts);
	if (*firsts == NULL) {
		diskio_free_names(names, n_names);
		return diskio_fail(w->io, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n_names && rc == 0; i++) {
		if (parse_name(names[i], false, &f)) {
			(*firsts)[k++] = f;
		} else if (parse_name(names[i], true, &f)) {
			diskio_log(w->io, STORAGE_LOG_INFO,
			    "%s/%s: removing an "
			    "interrupted segment creation",
			    w->io->dir, names[i]);
			rc = diskio_unlink(w->io, names[i]);
		}
	}
	diskio_free_names(names, n_names);
	*n = k; /* names are sorted and zero-padded: numeric order */
	return rc;
}

/* Take the live records as the log and as the boot entries. */
static int adopt(struct wal *w, const struct loaded *ld)
{
	w->first = ld->n ? ld->recs[0].index : w->snap_index + 1;
	w->last = w->first - 1;
	w->boot = calloc(ld->n + 1, sizeof *w->boot);
	if (w->boot == NULL)
		return diskio_fail(w->io, -ENOMEM, "out of memory");
	for (size_t i = 0; i < ld->n; i++) {
		const struct rec *r = &ld->recs[i];

		if (wal_push_ent(w, r->term, r->bytes) != 0)
			return diskio_fail(w->io, -ENOMEM, "out of memory");
		w->boot[i] = (struct raft_entry){ r->term, r->index, r->etype,
			r->dlen, r->dlen ? (uint8_t *)r->data : NULL };
	}
	w->n_boot = ld->n;
	return 0;
}

/* M1 (wal.h): the segment the marks name as the newest must be there. */
static int check_newest(struct wal *w, const raft_index *firsts, size_t n,
    const struct wal_mark *stored, uint64_t *n_damage)
{
	char name[SEG_NAME_MAX];

	if (stored->seg <= w->snap_index)
		return 0; /* none named, or compacted away */
	for (size_t k = 0; k < n; k++)
		if (firsts[k] == stored->seg)
			return 0;
	wal_seg_name(stored->seg, name, sizeof name, false);
	return diskio_damage(w->io, w->cfg.recover, n_damage,
	    "%s/%s: missing: "
	    "hardstate records it as the log's newest segment; entries from "
	    "index %" PRIu64 " on are lost",
	    w->io->dir, name, stored->seg);
}

/* M2 (wal.h): the log reaches what was durable. */
static int check_durable(struct wal *w, const raft_index *firsts, size_t n,
    const struct loaded *ld, const struct wal_mark *stored, uint64_t *n_damage)
{
	raft_index end = ld->n > 0 ? ld->recs[ld->n - 1].index : w->snap_index;
	char name[SEG_NAME_MAX + 16];

	if (end >= stored->durable)
		return 0;
	if (n > 0)
		wal_seg_name(firsts[n - 1], name, sizeof name, false);
	else
		snprintf(name, sizeof name, "wal-*.seg");
	return diskio_damage(w->io, w->cfg.recover, n_damage,
	    "%s/%s: the log "
	    "ends at index %" PRIu64 " but hardstate records index %" PRIu64
	    " as durable: entries %" PRIu64 "..%" PRIu64 " are lost (%s)",
	    w->io->dir, name, end, stored->durable, end + 1, stored->durable,
	    n > 0 ? "a segment was cut, emptied or deleted"
	          : "every segment is gone");
}

int wal_open(struct diskio *io, const struct wal_config *cfg,
    raft_index snap_index, raft_term snap_term, const struct wal_mark *stored,
    uint64_t *n_damage, struct wal **out)
{
	struct loaded ld = { NULL, 0, 0 };
	raft_index *firsts = NULL, last = 0;
	size_t n = 0;
	struct seg sg;
	bool discard;
	struct wal *w;
	int rc;

	if ((w = calloc(1, sizeof *w)) == NULL)
		return diskio_fail(io, -ENOMEM, "out of memory");
	w->io = io;
	w->cfg = *cfg;
	w->fd = -1;
	w->snap_index = snap_index;
	w->snap_term = snap_term;
	w->mark = *stored;
	if ((rc = list_segs(w, &firsts, &n)) != 0 ||
	    (rc = check_newest(w, firsts, n, stored, n_damage)) != 0)
		goto err;
	for (size_t k = 0; k < n; k++) {
		if (chain_seg(w, firsts[k], &ld, &last) != 0) {
			rc = !cfg->recover ? STORAGE_ECORRUPT
			                   : diskio_damage(io, true, n_damage,
			                         "%s", io->errbuf);
			if (rc != 0 ||
			    (rc = set_aside(w, firsts + k, n - k)) != 0)
				goto err;
			n = k;
			break;
		}
		rc = load_seg(w, firsts[k], k == n - 1, &ld, &sg, n_damage);
		if (rc == SEG_LOST) {
			if ((rc = set_aside(w, firsts + k, 1)) != 0)
				goto err;
			continue;
		}
		if (rc != 0)
			goto err;
		if ((rc = wal_push_seg(w, &sg)) != 0) {
			rc = diskio_fail(io, rc, "out of memory");
			goto err;
		}
		last = sg.last_rec;
	}
	apply_snapshot(w, &ld, &discard);
	/* A log the snapshot replaces (W6) may end anywhere: no M2. */
	if ((rc = check_terms(w, &ld)) != 0 ||
	    (!discard &&
	        (rc = check_durable(w, firsts, n, &ld, stored, n_damage)) != 0))
		goto err;
	if (discard) {
		diskio_log(io, STORAGE_LOG_INFO,
		    "%s: the log disagrees with the "
		    "snapshot at index %" PRIu64 ": finishing its removal",
		    io->dir, snap_index);
		/* W7: lower the marks before the log goes, as wal_compact(). */
		rc = wal_save_mark(w, 0,
		    stored->durable < snap_index ? stored->durable
		                                 : snap_index);
		if (rc == 0)
			rc = wal_delete_all(w);
	} else {
		rc = wal_delete_covered(w);
	}
	if (rc == 0)
		rc = adopt(w, &ld);
	if (rc != 0)
		goto err;
	free(firsts);
	free(ld.recs);
	*out = w;
	return 0;
err:
	free(firsts);
	free(ld.recs);
	wal_close(w);
	return rc;
}

void wal_boot_entries(const struct wal *w, const struct raft_entry **entries,
    uint64_t *n)
{
	*entries = w->boot;
	*n = w->n_boot;
}

void wal_release_boot(struct wal *w)
{
	for (size_t i = 0; i < w->n_bufs; i++)
		free(w->bufs[i]);
	free(w->bufs);
	free(w->boot);
	w->bufs = NULL;
	w->n_bufs = 0;
	w->boot = NULL;
	w->n_boot = 0;
}
