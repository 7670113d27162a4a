/*
 * storage.c - durable state of one Raft member: term/vote, the log, snapshots.
 *
 * This file ties together the data directory's parts (see storage.h for
 * the list): the identity file, the hard state file, the log (wal.c) and
 * the snapshot files (snapfile.c), and owns the failure policy.
 *
 * meta and hardstate are small files, little-endian:
 *   magic ("RAFTKVMD" / "RAFTKVHS") | u32 version | u32 zero
 *   | u64 fields... | u32 CRC32C of everything before it | u32 zero
 *   meta:          version 2, fields cluster id, member id (40 bytes)
 *   hardstate:     version 2, fields term, vote, and the tail marks
 *                  seg, durable (wal.h), snap (64 bytes)
 * Version 1 (both 40 bytes; hardstate without the marks) is what the
 * first releases wrote: such a directory still opens, with the checks
 * below that need the marks skipped, and is upgraded at that open (the
 * marks written to a version-2 hardstate, then meta rewritten as version
 * 2), so from then on it is checked in full.
 * Both are replaced only by writing <name>.tmp, fdatasync, rename over,
 * fsync the directory: a crash at any byte leaves the old or the new
 * file, and a leftover .tmp is removed at open.  The alternative, two
 * checksummed slots in one file, saves the rename but cannot tell a bit
 * flip in the newer slot from a torn write of it, and would silently fall
 * back to the older vote; with rename every checksum failure is corruption.
 * The hard state is written at save time and made durable at the next
 * storage_sync(), after the log's fdatasync: term/vote changes are rare
 * (elections), so the extra syncs do not touch the append path.
 *
 * States (the SQLite pager's shape):
 *
 *   OPEN ──(any failed write, fsync, rename, unlink)──> POISONED
 *
 *   OPEN:      storage_append / _save_hard_state write; storage_sync makes
 *              them durable; storage_save_snapshot is durable on return.
 *   POISONED:  every call returns the first error, does nothing.  Entered
 *              by poison(), from every function that does I/O.  There is
 *              no way back: the member must exit (storage_errmsg() says
 *              why) and recover from what is on disk at the next start.
 *
 * Snapshot install order (each step's crash outcome in brackets):
 *   1. write snap-I.snap.tmp, fdatasync   [tmp removed at open: old state]
 *   2. rename to snap-I.snap, fsync dir   [new snapshot + old log: open
 *                                          applies the snapshot to the log]
 *   3. hardstate: snap mark = I           [as 2]
 *   4. wal_compact: drop covered segments  [open finishes it]
 *   5. unlink the older snapshot, fsync    [open removes older snapshots]
 * storage_snap_write() is step 1 alone, on any one thread, through a copy
 * of the directory handle (struct storage_snap); storage_snap_finish()
 * syncs the appends made meanwhile, then takes steps 2-5 on the owner's.
 *
 * Damaged data directories.  A crash loses only writes that were never
 * synced, so never an acknowledged entry, a vote or a snapshot; an
 * operator's mistake, a bad restore or a failing disk can lose any file.
 * Started on such a directory, a member would serve a shorter log or
 * forget its vote, and on a majority of members acknowledged writes
 * would vanish without a trace.  So open refuses (STORAGE_EDAMAGED, one
 * message naming the file and what is lost) when it finds what no crash
 * leaves:
 *   - meta missing while other files are there (a fresh directory gets
 *     hardstate first and meta last: meta means "initialised");
 *   - hardstate missing while meta (version 2) is there;
 *   - the snapshot the hard state's snap mark names missing (its log
 *     was compacted away: nothing else holds those entries);
 *   - the log's newest segment missing, a preallocated segment cut
 *     short, or the log ending before the durable mark (wal_recover.c).
 * The marks cost no sync on the append path (wal.c, W7): they ride on
 * the hard state's own syncs (a term or vote change, storage_sync), on
 * segment creation, and on snapshots, each of which already syncs.
 * Compaction deletes only segments the snapshot covers, and truncation
 * lowers the marks before it deletes anything, so neither looks like
 * damage.  With storage_options.recover the member starts anyway: each
 * finding is logged as a warning, and the directory is repaired (marks
 * rewritten, files restored or set aside) so that the next start is
 * clean.  Limits are in wal_recover.c and raftkv(7).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "raft/storage/crc32c.h"
#include "raft/storage/diskio.h"
#include "raft/storage/snapfile.h"
#include "raft/storage/storage.h"
#include "raft/storage/wal.h"

#define SMALL_MAX 64 /* the biggest small file: hardstate v2 */
#define SMALL_VERSION 2
#define META_FIELDS 2
#define HS_FIELDS 5 /* term, vote, seg, durable, snap */
#define META "meta"
#define META_TMP "meta.tmp"
#define HS "hardstate"
#define HS_TMP "hardstate.tmp"
#define ERRMSG_LEN 1024

struct storage {
	struct diskio io;
	struct storage_options opt;
	uint64_t cluster_id;
	raft_id member_id;
	struct wal *wal;
	struct raft_hard_state hs;
	struct wal_mark mark; /* the marks in the durable hardstate */
	raft_index snap_mark; /* the snapshot it records (0: none) */
	uint32_t meta_version; /* of meta as found (0: created now) */
	bool hs_found;
	uint64_t n_damage; /* findings accepted by opt.recover */
	int hs_fd; /* hardstate.tmp written, not yet renamed; or -1 */
	bool hs_pending; /* a term/vote saved since the last sync */
	bool has_snap;
	struct raft_snapshot_meta snap;
	uint64_t snap_file_bytes;
	uint8_t *boot_snap; /* recovered snapshot data, until released */
	uint64_t boot_snap_len;
	uint64_t n_syncs;
	bool snap_out; /* a storage_snap write is out */
	int err; /* POISONED when non-zero */
	char errmsg[ERRMSG_LEN];
};

void storage_options_defaults(struct storage_options *o)
{
	memset(o, 0, sizeof *o);
	o->segment_size = 16u << 20;
	o->prealloc = STORAGE_PREALLOC_ZERO;
	o->zstd_level = 3;
	o->max_snapshot_bytes = (uint64_t)16 << 30;
}

/* OPEN -> POISONED on the first error; later errors keep the first. */
static int poison(struct storage *s, int rc)
{
	if (rc != 0 && s->err == 0)
		s->err = rc;
	return rc;
}

/* ------------------------------------------------------- small files */

static size_t small_size(int n_fields)
{
	return 16 + 8 * (size_t)n_fields + 8;
}

/* Encode a version-2 small file; returns its size. */
static size_t encode_small(uint8_t *b, const char *magic, const uint64_t *f,
    int n)
{
	size_t size = small_size(n);

	memset(b, 0, size);
	memcpy(b, magic, 8);
	le_put32(b + 8, SMALL_VERSION);
	for (int i = 0; i < n; i++)
		le_put64(b + 16 + 8 * i, f[i]);
	le_put32(b + size - 8, crc32c(0, b, size - 8));
	return size;
}

/*
 * Read small file @name: *@found, and if found its *@version and fields
 * into @f (@n_v2 of them in version 2, 2 in version 1; the rest zeroed).
 */
static int read_small(struct diskio *io, const char *name, const char *magic,
    int n_v2, int *found, uint32_t *version, uint64_t *f)
{
	uint8_t b[SMALL_MAX + 1];
	size_t got, size;
	int fd, rc, n;

	memset(f, 0, sizeof *f * (size_t)n_v2);
	if ((rc = diskio_exists(io, name, found)) != 0 || !*found)
		return rc;
	if ((rc = diskio_open(io, name, O_RDONLY, &fd)) != 0)
		return rc;
	rc = diskio_pread(io, fd, name, b, sizeof b, 0, &got);
	close(fd);
	if (rc != 0)
		return rc;
	if (got < 16 || memcmp(b, magic, 8) != 0)
		return diskio_fail(io, STORAGE_ECORRUPT,
		    "%s/%s: corrupt at offset "
		    "0: %s",
		    io->dir, name, got < 16 ? "wrong size" : "wrong magic");
	*version = le_get32(b + 8);
	if (*version != 1 && *version != SMALL_VERSION)
		return diskio_fail(io, STORAGE_ECORRUPT,
		    "%s/%s: unknown format "
		    "version %u at offset 8",
		    io->dir, name, *version);
	n = *version == 1 ? 2 : n_v2;
	size = small_size(n);
	if (got != size || crc32c(0, b, size - 8) != le_get32(b + size - 8) ||
	    le_get32(b + size - 4) != 0)
		return diskio_fail(io, STORAGE_ECORRUPT,
		    "%s/%s: corrupt at offset "
		    "0: %s",
		    io->dir, name,
		    got != size ? "wrong size" : "checksum mismatch");
	for (int i = 0; i < n; i++)
		f[i] = le_get64(b + 16 + 8 * i);
	return 0;
}

/* Write @tmp (left open in *@fd_out if non-NULL, else synced+renamed). */
static int write_small(struct diskio *io, const char *tmp, const char *name,
    const char *magic, const uint64_t *f, int n, int *fd_out)
{
	uint8_t b[SMALL_MAX];
	size_t size = encode_small(b, magic, f, n);
	int fd, rc;

	if ((rc = diskio_open(io, tmp, O_WRONLY | O_CREAT | O_TRUNC, &fd)) != 0)
		return rc;
	if ((rc = diskio_pwrite(io, fd, tmp, b, size, 0)) != 0) {
		close(fd);
		return rc;
	}
	if (fd_out != NULL) {
		*fd_out = fd;
		return 0;
	}
	rc = diskio_fdatasync(io, fd, tmp);
	close(fd);
	if (rc == 0)
		rc = diskio_rename(io, tmp, name);
	if (rc == 0)
		rc = diskio_syncdir(io);
	return rc;
}

static void hs_fields(const struct storage *s, const struct raft_hard_state *hs,
    const struct wal_mark *m, uint64_t *f)
{
	f[0] = hs->term;
	f[1] = hs->vote;
	f[2] = m->seg;
	f[3] = m->durable;
	f[4] = s->snap_mark;
}

/*
 * Make the hard state (s->hs), the marks @m and s->snap_mark durable now.
 * Supersedes a pending hardstate.tmp: s->hs is its newest content, and
 * making a term or vote durable early is safe (nothing was sent on it).
 * Also the wal's mark callback (wal.h).
 */
static int write_hs(void *arg, const struct wal_mark *m)
{
	struct storage *s = arg;
	uint64_t f[HS_FIELDS];
	int rc;

	if (s->hs_fd >= 0) { /* hs_pending stays: see sync_hard_state */
		close(s->hs_fd);
		s->hs_fd = -1;
	}
	hs_fields(s, &s->hs, m, f);
	if ((rc = write_small(&s->io, HS_TMP, HS, "RAFTKVHS", f, HS_FIELDS,
	         NULL)) != 0)
		return rc;
	s->mark = *m;
	return 0;
}

static int write_meta(struct storage *s)
{
	uint64_t f[META_FIELDS] = { s->cluster_id, s->member_id };

	return write_small(&s->io, META_TMP, META, "RAFTKVMD", f, META_FIELDS,
	    NULL);
}

/* -------------------------------------------------------------- open */

static bool ours(const char *name)
{
	raft_index i;

	return strcmp(name, HS) == 0 || strncmp(name, "wal-", 4) == 0 ||
	    snapfile_parse_name(name, false, &i);
}

/*
 * Check the identity file and read the hard state; create both in a
 * directory without our files (hardstate first: meta means initialised).
 */
static int check_identity(struct storage *s, char **names, size_t n)
{
	uint64_t m[META_FIELDS], h[HS_FIELDS];
	uint32_t hs_version = 0;
	const char *other = NULL;
	int found, rc;

	if ((rc = read_small(&s->io, META, "RAFTKVMD", META_FIELDS, &found,
	         &s->meta_version, m)) != 0)
		return rc;
	if (found && (m[0] != s->cluster_id || m[1] != s->member_id))
		return diskio_fail(&s->io, STORAGE_EFOREIGN,
		    "%s/%s: this data "
		    "directory belongs to cluster %" PRIx64 " member %" PRIu64
		    ", not cluster %" PRIx64 " member %" PRIu64,
		    s->io.dir, META, m[0], m[1], s->cluster_id, s->member_id);
	if (!found)
		s->meta_version = 0;
	if ((rc = read_small(&s->io, HS, "RAFTKVHS", HS_FIELDS, &found,
	         &hs_version, h)) != 0)
		return rc;
	s->hs_found = found;
	s->hs = (struct raft_hard_state){ h[0], h[1] };
	s->mark = (struct wal_mark){ h[2], h[3] };
	s->snap_mark = h[4];
	for (size_t i = 0; i < n && other == NULL; i++)
		if (ours(names[i]) && strcmp(names[i], HS) != 0)
			other = names[i];
	if (s->meta_version == 0 && other == NULL &&
	    (!found ||
	        (h[0] == 0 && h[1] == 0 && h[2] == 0 && h[3] == 0 &&
	            h[4] == 0))) {
		/* Fresh, or a creation interrupted before meta was written:
		 * the directory's own entry first (mkdir may be all an
		 * interrupted start did), then hardstate, then meta. */
		struct wal_mark none = { 0, 0 };

		if ((rc = diskio_sync_parent(&s->io)) != 0 ||
		    (rc = write_hs(s, &none)) != 0 || (rc = write_meta(s)) != 0)
			return rc;
		s->meta_version = SMALL_VERSION;
		s->hs_found = true;
		return 0;
	}
	if (s->meta_version == 0) {
		if ((rc = diskio_damage(&s->io, s->opt.recover, &s->n_damage,
		         "%s/%s: missing, but the directory holds %s: the "
		         "identity "
		         "file is gone",
		         s->io.dir, META, other != NULL ? other : HS)) != 0)
			return rc;
		if ((rc = write_meta(s)) != 0)
			return rc;
		s->meta_version = SMALL_VERSION;
	}
	if (!s->hs_found && s->meta_version >= 2 &&
	    (rc = diskio_damage(&s->io, s->opt.recover, &s->n_damage,
	         "%s/%s: missing: this member's term and vote are lost (it "
	         "could "
	         "vote twice in one term)",
	         s->io.dir, HS)) != 0)
		return rc;
	return 0;
}

/*
 * Remove leftovers of interrupted writes (not wal's: wal_open does those).
 * @names was listed before check_identity(), which may have written (and
 * so renamed away) hardstate.tmp and meta.tmp: skip what is gone.
 */
static int remove_tmp(struct storage *s, char **names, size_t n)
{
	raft_index i;
	int rc, there;

	for (size_t k = 0; k < n; k++) {
		if (strcmp(names[k], META_TMP) != 0 &&
		    strcmp(names[k], HS_TMP) != 0 &&
		    !snapfile_parse_name(names[k], true, &i))
			continue;
		if ((rc = diskio_exists(&s->io, names[k], &there)) != 0)
			return rc;
		if (!there)
			continue;
		diskio_log(&s->io, STORAGE_LOG_INFO,
		    "%s/%s: removing the leftover "
		    "of an interrupted write",
		    s->io.dir, names[k]);
		if ((rc = diskio_unlink(&s->io, names[k])) != 0)
			return rc;
	}
	return 0;
}

/* Load the newest snapshot; remove older ones (an interrupted step 4). */
static int load_snapshots(struct storage *s, char **names, size_t n)
{
	raft_index newest = 0, i;
	bool removed = false;
	char name[SNAPFILE_NAME_MAX];
	int rc;

	for (size_t k = 0; k < n; k++)
		if (snapfile_parse_name(names[k], false, &i) && i > newest)
			newest = i;
	if (s->snap_mark > newest) {
		snapfile_name(s->snap_mark, false, name, sizeof name);
		if ((rc = diskio_damage(&s->io, s->opt.recover, &s->n_damage,
		         "%s/%s: missing: %s records a snapshot at index "
		         "%" PRIu64 "; the log it replaced is gone with it",
		         s->io.dir, name, HS, s->snap_mark)) != 0)
			return rc;
	}
	if (newest == 0)
		return 0;
	snapfile_name(newest, false, name, sizeof name);
	if ((rc = snapfile_read(&s->io, name, s->cluster_id, s->member_id,
	         s->opt.max_snapshot_bytes, &s->snap, &s->boot_snap,
	         &s->boot_snap_len, &s->snap_file_bytes)) != 0)
		return rc;
	s->has_snap = true;
	for (size_t k = 0; k < n; k++) {
		if (!snapfile_parse_name(names[k], false, &i) || i == newest)
			continue;
		diskio_log(&s->io, STORAGE_LOG_INFO,
		    "%s/%s: removing a snapshot "
		    "older than %s",
		    s->io.dir, names[k], name);
		if ((rc = diskio_unlink(&s->io, names[k])) != 0)
			return rc;
		removed = true;
	}
	return removed ? diskio_syncdir(&s->io) : 0;
}

/*
 * After the log is read: a lost hard state gets the newest term the log
 * knows (the recover option only); the marks are brought up to date
 * (the newest segment was fdatasynced by wal_open), which also upgrades
 * a version-1 hardstate; then a version-1 meta is rewritten as version 2.
 */
static int finish_open(struct storage *s)
{
	struct storage_stats st;
	struct wal_mark m;
	int rc;

	if (!s->hs_found && s->meta_version >= 2) {
		wal_stats(s->wal, &st);
		s->hs = (struct raft_hard_state){ st.last_term, 0 };
		diskio_log(&s->io, STORAGE_LOG_WARN,
		    "%s/%s: recreated with term "
		    "%" PRIu64 " and no vote",
		    s->io.dir, HS, s->hs.term);
	}
	wal_current_mark(s->wal, &m);
	if (!s->hs_found || s->meta_version < 2 || s->n_damage > 0 ||
	    m.seg != s->mark.seg || m.durable != s->mark.durable ||
	    s->snap_mark != (s->has_snap ? s->snap.index : 0)) {
		s->snap_mark = s->has_snap ? s->snap.index : 0;
		if ((rc = write_hs(s, &m)) != 0)
			return rc;
		wal_mark_saved(s->wal, &m);
	}
	if (s->meta_version < 2) {
		if ((rc = write_meta(s)) != 0)
			return rc;
		diskio_log(&s->io, STORAGE_LOG_INFO,
		    "%s: upgraded to on-disk "
		    "format version %d",
		    s->io.dir, SMALL_VERSION);
	}
	return 0;
}

static int recover(struct storage *s, struct raft_boot *boot)
{
	struct wal_config wc = { s->cluster_id, s->member_id,
		s->opt.segment_size, s->opt.prealloc, s->opt.recover, write_hs,
		s };
	char **names = NULL;
	size_t n = 0;
	int rc;

	if ((rc = diskio_list(&s->io, &names, &n)) != 0)
		return rc;
	if ((rc = check_identity(s, names, n)) == 0 &&
	    (rc = remove_tmp(s, names, n)) == 0)
		rc = load_snapshots(s, names, n);
	diskio_free_names(names, n);
	if (rc != 0)
		return rc;
	if ((rc = wal_open(&s->io, &wc, s->has_snap ? s->snap.index : 0,
	         s->has_snap ? s->snap.term : 0, &s->mark, &s->n_damage,
	         &s->wal)) != 0 ||
	    (rc = finish_open(s)) != 0)
		return rc;
	memset(boot, 0, sizeof *boot);
	boot->hs = s->hs;
	boot->has_snapshot = s->has_snap;
	if (s->has_snap) {
		boot->snap = s->snap;
		boot->snap_data = s->boot_snap;
		boot->snap_len = s->boot_snap_len;
	}
	wal_boot_entries(s->wal, &boot->entries, &boot->n_entries);
	return 0;
}

int storage_open(const char *dir, uint64_t cluster_id, raft_id member_id,
    const struct storage_options *opt, struct storage **out,
    struct raft_boot *boot, char *errbuf, size_t errlen)
{
	struct storage *s;
	int rc;

	*out = NULL;
	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	if ((s = calloc(1, sizeof *s)) == NULL) {
		if (errbuf != NULL && errlen > 0)
			snprintf(errbuf, errlen, "%s: out of memory", dir);
		return -ENOMEM;
	}
	if (opt != NULL)
		s->opt = *opt;
	else
		storage_options_defaults(&s->opt);
	s->cluster_id = cluster_id;
	s->member_id = member_id;
	s->hs_fd = -1;
	rc = diskio_init(&s->io, dir, 1, s->opt.fault, s->opt.fault_arg,
	    s->opt.log, s->opt.log_arg, s->errmsg, sizeof s->errmsg);
	if (rc == 0 &&
	    (cluster_id == 0 || member_id == 0 || s->opt.segment_size < 4096))
		rc = diskio_fail(&s->io, -EINVAL,
		    "%s: cluster id and member id "
		    "must be non-zero, segment size at least 4096",
		    dir);
	/* One process per data directory. */
	if (rc == 0 && flock(s->io.dirfd, LOCK_EX | LOCK_NB) != 0)
		rc = diskio_fail(&s->io, errno == EWOULDBLOCK ? -EBUSY : -errno,
		    "%s: locked: another process is using this data directory",
		    dir);
	if (rc == 0)
		rc = recover(s, boot);
	if (rc != 0) {
		if (errbuf != NULL && errlen > 0)
			snprintf(errbuf, errlen, "%s", s->errmsg);
		storage_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void storage_release_boot(struct storage *s)
{
	if (s->wal != NULL)
		wal_release_boot(s->wal);
	free(s->boot_snap);
	s->boot_snap = NULL;
	s->boot_snap_len = 0;
}

/* ---------------------------------------------------------- writing */

int storage_append(struct storage *s, const struct raft_entry *entries,
    uint32_t n)
{
	int rc;

	if (s->err != 0)
		return s->err;
	if ((rc = wal_check_append(s->wal, entries, n)) != 0)
		return rc;
	storage_release_boot(s);
	return poison(s, wal_append(s->wal, entries, n));
}

int storage_save_hard_state(struct storage *s, const struct raft_hard_state *hs)
{
	uint64_t f[HS_FIELDS];
	int rc;

	if (s->err != 0)
		return s->err;
	storage_release_boot(s);
	if (s->hs_fd >= 0) { /* replaced before it was synced */
		close(s->hs_fd);
		s->hs_fd = -1;
	}
	hs_fields(s, hs, &s->mark, f);
	rc = write_small(&s->io, HS_TMP, HS, "RAFTKVHS", f, HS_FIELDS,
	    &s->hs_fd);
	if (rc == 0) {
		s->hs = *hs;
		s->hs_pending = true;
	}
	return poison(s, rc);
}

/*
 * The log was just fdatasynced: the pending hard state also carries its
 * last index as the durable mark (W7: rewritten in place, no extra sync).
 */
static int sync_hard_state(struct storage *s)
{
	uint64_t f[HS_FIELDS];
	uint8_t b[SMALL_MAX];
	struct wal_mark m;
	size_t size;
	int rc;

	wal_current_mark(s->wal, &m);
	hs_fields(s, &s->hs, &m, f);
	size = encode_small(b, "RAFTKVHS", f, HS_FIELDS);
	/* A new segment's mark made the term/vote durable already
	 * (write_hs): still sync the hard state once, as without it, for the
	 * durable mark of this term change. */
	if (s->hs_fd < 0)
		rc = write_small(&s->io, HS_TMP, HS, "RAFTKVHS", f, HS_FIELDS,
		    &s->hs_fd);
	else
		rc = diskio_pwrite(&s->io, s->hs_fd, HS_TMP, b, size, 0);
	s->hs_pending = false;
	if (rc != 0)
		return rc; /* poisons; storage_close() closes hs_fd */
	rc = diskio_fdatasync(&s->io, s->hs_fd, HS_TMP);
	close(s->hs_fd);
	s->hs_fd = -1;
	if (rc == 0)
		rc = diskio_rename(&s->io, HS_TMP, HS);
	if (rc == 0)
		rc = diskio_syncdir(&s->io);
	if (rc == 0) {
		s->mark = m;
		wal_mark_saved(s->wal, &m);
	}
	return rc;
}

int storage_sync(struct storage *s)
{
	bool synced;
	int rc;

	if (s->err != 0)
		return s->err;
	if ((rc = wal_sync(s->wal, &synced)) != 0)
		return poison(s, rc);
	if (s->hs_pending) {
		if ((rc = sync_hard_state(s)) != 0)
			return poison(s, rc);
		synced = true;
	}
	if (synced)
		s->n_syncs++;
	return 0;
}

static bool meta_ok(const struct raft_snapshot_meta *m)
{
	return m->index > 0 && m->term > 0 && m->n_voters > 0 &&
	    m->n_voters <= RAFT_MAX_MEMBERS &&
	    m->n_learners <= RAFT_MAX_MEMBERS - m->n_voters;
}

/* Steps 1 and 2 of the install order (file header). */
static int write_snapshot(struct storage *s,
    const struct raft_snapshot_meta *meta, const void *data, uint64_t len,
    uint64_t *file_bytes)
{
	char tmp[SNAPFILE_NAME_MAX], name[SNAPFILE_NAME_MAX];
	int rc;

	snapfile_name(meta->index, true, tmp, sizeof tmp);
	snapfile_name(meta->index, false, name, sizeof name);
	if ((rc = snapfile_write(&s->io, tmp, s->cluster_id, s->member_id, meta,
	         data, len, s->opt.zstd_level, file_bytes)) != 0 ||
	    (rc = diskio_rename(&s->io, tmp, name)) != 0)
		return rc;
	return diskio_syncdir(&s->io);
}

/* Steps 3-5, once snap-<index>.snap is durable in place. */
static int installed(struct storage *s, const struct raft_snapshot_meta *meta,
    uint64_t file_bytes)
{
	char old[SNAPFILE_NAME_MAX];
	struct wal_mark m;
	int rc;

	/* Step 3: the snapshot is durable; from now on it must be there.
	 * The log was synced before: the durable mark moves along. */
	s->snap_mark = meta->index;
	wal_current_mark(s->wal, &m);
	if ((rc = write_hs(s, &m)) != 0)
		return poison(s, rc);
	wal_mark_saved(s->wal, &m);
	if ((rc = wal_compact(s->wal, meta->index, meta->term)) != 0)
		return poison(s, rc);
	if (s->has_snap) {
		snapfile_name(s->snap.index, false, old, sizeof old);
		if ((rc = diskio_unlink(&s->io, old)) != 0 ||
		    (rc = diskio_syncdir(&s->io)) != 0)
			return poison(s, rc);
	}
	s->has_snap = true;
	s->snap = *meta;
	s->snap_file_bytes = file_bytes;
	return 0;
}

int storage_save_snapshot(struct storage *s,
    const struct raft_snapshot_meta *meta, const void *data, uint64_t len)
{
	uint64_t file_bytes;
	int rc;

	if (s->err != 0)
		return s->err;
	if (!meta_ok(meta) || (len > 0 && data == NULL))
		return -EINVAL;
	if (s->has_snap && meta->index <= s->snap.index)
		return RAFT_ESTALE;
	if (s->snap_out)
		return -EBUSY;
	storage_release_boot(s);
	if ((rc = storage_sync(s)) != 0)
		return rc;
	if ((rc = write_snapshot(s, meta, data, len, &file_bytes)) != 0)
		return poison(s, rc);
	return installed(s, meta, file_bytes);
}

struct storage_snap {
	struct diskio io; /* a copy of the owner's: own messages, counts */
	char errmsg[ERRMSG_LEN];
	uint64_t cluster_id;
	raft_id member_id;
	int zstd_level;
	struct raft_snapshot_meta meta;
	uint64_t file_bytes;
	int rc; /* the write's result */
	bool written;
};

int storage_snap_begin(struct storage *s, const struct raft_snapshot_meta *meta,
    struct storage_snap **out)
{
	struct storage_snap *w;

	if (s->err != 0)
		return s->err;
	if (!meta_ok(meta))
		return -EINVAL;
	if (s->has_snap && meta->index <= s->snap.index)
		return RAFT_ESTALE;
	if (s->snap_out)
		return -EBUSY;
	if (!wal_holds(s->wal, meta->index, meta->term))
		return -ENOENT;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	storage_release_boot(s);
	w->io = s->io;
	w->io.errbuf = w->errmsg;
	w->io.errlen = sizeof w->errmsg;
	w->io.n_fsyncs = 0;
	w->cluster_id = s->cluster_id;
	w->member_id = s->member_id;
	w->zstd_level = s->opt.zstd_level;
	w->meta = *meta;
	s->snap_out = true;
	*out = w;
	return 0;
}

int storage_snap_write(struct storage_snap *w, const void *data, uint64_t len)
{
	char tmp[SNAPFILE_NAME_MAX];

	snapfile_name(w->meta.index, true, tmp, sizeof tmp);
	if (len > 0 && data == NULL)
		w->rc = -EINVAL;
	else
		w->rc = snapfile_write(&w->io, tmp, w->cluster_id, w->member_id,
		    &w->meta, data, len, w->zstd_level, &w->file_bytes);
	w->written = true;
	return w->rc;
}

int storage_snap_finish(struct storage *s, struct storage_snap *w)
{
	char tmp[SNAPFILE_NAME_MAX], name[SNAPFILE_NAME_MAX];
	struct raft_snapshot_meta meta = w->meta;
	uint64_t file_bytes = w->file_bytes;
	int rc = w->written ? w->rc : -EINVAL;

	s->io.n_fsyncs += w->io.n_fsyncs;
	s->snap_out = false;
	if (s->err != 0) {
		free(w);
		return s->err;
	}
	if (rc != 0) {
		snprintf(s->errmsg, sizeof s->errmsg, "%s", w->errmsg);
		free(w);
		return poison(s, rc);
	}
	free(w);
	/* Written while the log went on: its entries synced first (the
	 * hard state's durable mark), as storage_save_snapshot() does. */
	if ((rc = storage_sync(s)) != 0)
		return rc;
	snapfile_name(meta.index, true, tmp, sizeof tmp);
	snapfile_name(meta.index, false, name, sizeof name);
	if ((rc = diskio_rename(&s->io, tmp, name)) != 0 ||
	    (rc = diskio_syncdir(&s->io)) != 0)
		return poison(s, rc);
	return installed(s, &meta, file_bytes);
}

void storage_snap_abort(struct storage *s, struct storage_snap *w)
{
	if (w == NULL)
		return;
	s->io.n_fsyncs += w->io.n_fsyncs;
	s->snap_out = false;
	free(w);
}

int storage_load_snapshot(struct storage *s, struct raft_snapshot_meta *meta,
    uint8_t **data, uint64_t *len)
{
	char name[SNAPFILE_NAME_MAX];
	uint64_t file_bytes;
	int rc;

	if (s->err != 0)
		return s->err;
	if (!s->has_snap)
		return RAFT_ESTALE;
	snapfile_name(s->snap.index, false, name, sizeof name);
	rc = snapfile_read(&s->io, name, s->cluster_id, s->member_id,
	    s->opt.max_snapshot_bytes, meta, data, len, &file_bytes);
	return rc == -ENOMEM ? rc : poison(s, rc);
}

/* ------------------------------------------------------------ queries */

void storage_stats(const struct storage *s, struct storage_stats *st)
{
	memset(st, 0, sizeof *st);
	if (s->wal != NULL)
		wal_stats(s->wal, st);
	if (s->has_snap) {
		st->snap_index = s->snap.index;
		st->snap_term = s->snap.term;
		st->snap_file_bytes = s->snap_file_bytes;
	}
	st->syncs = s->n_syncs;
	st->fsyncs = s->io.n_fsyncs;
	st->damage = s->n_damage;
}

int storage_error(const struct storage *s)
{
	return s->err;
}

const char *storage_errmsg(const struct storage *s)
{
	return s->err != 0 ? s->errmsg : "";
}

void storage_close(struct storage *s)
{
	if (s == NULL)
		return;
	if (s->hs_fd >= 0)
		close(s->hs_fd);
	wal_close(s->wal);
	free(s->boot_snap);
	diskio_close(&s->io); /* closing the directory drops the flock */
	free(s);
}
