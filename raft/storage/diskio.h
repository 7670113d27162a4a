/*
 * diskio.h - system calls on one data directory, with messages and faults.
 *
 * Every storage file operation goes through here so that (1) a failure
 * always produces one message naming the file, the operation, the offset
 * and the cause, written into the caller's error buffer; (2) the test
 * fault hook (storage_options.fault) sees every operation; (3) fsyncs are
 * counted.  Files are named relative to the directory (openat on a
 * directory descriptor), so the directory can be fsynced and renames are
 * within one directory.
 *
 * Every function returns 0 or a negative errno, having formatted the
 * message; diskio_fail() formats a message for other errors (corruption).
 * diskio_parse_name() is the one strict parser of the directory's
 * numbered file names (wal.c's segments, snapfile.c's snapshots).
 */
#ifndef RAFTKV_DISKIO_H
#define RAFTKV_DISKIO_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/le.h"
#include "raft/raft.h"
#include "raft/storage/storage.h"

struct diskio {
	int dirfd;
	char *dir; /* for messages; owned */
	storage_fault_fn fault;
	void *fault_arg;
	storage_log_fn log;
	void *log_arg;
	char *errbuf; /* where messages go (borrowed) */
	size_t errlen;
	uint64_t n_fsyncs;
};

/* Open (creating it when @create) directory @dir.  Fills @d. */
int diskio_init(struct diskio *d, const char *dir, int create,
    storage_fault_fn fault, void *fault_arg, storage_log_fn log, void *log_arg,
    char *errbuf, size_t errlen);
void diskio_close(struct diskio *d);

/* Format a message into the error buffer and return @rc. */
int diskio_fail(struct diskio *d, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A log line (STORAGE_LOG_*). */
void diskio_log(struct diskio *d, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Damage found at open (storage.c, "Damaged data directories"): without
 * @recover, format "<@fmt>; refusing to start (...)" as the message and
 * return STORAGE_EDAMAGED; with it, log the finding as a warning, count
 * it in *@count and return 0 (the caller then repairs).
 */
int diskio_damage(struct diskio *d, bool recover, uint64_t *count,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

int diskio_open(struct diskio *d, const char *name, int flags, int *fd);
/* ftruncate (a fault hook sees STORAGE_OP_ALLOCATE). */
int diskio_truncate(struct diskio *d, int fd, const char *name, uint64_t len);
int diskio_exists(struct diskio *d, const char *name, int *exists);
/* Write all @len bytes at @off (short writes are continued). */
int diskio_pwrite(struct diskio *d, int fd, const char *name, const void *buf,
    size_t len, uint64_t off);
/* Read up to @len bytes at @off; *@got < @len only at end of file. */
int diskio_pread(struct diskio *d, int fd, const char *name, void *buf,
    size_t len, uint64_t off, size_t *got);
int diskio_size(struct diskio *d, int fd, const char *name, uint64_t *size);
int diskio_fdatasync(struct diskio *d, int fd, const char *name);
int diskio_syncdir(struct diskio *d);
/* fsync the directory holding the data directory (its entry there); the
 * fault hook sees STORAGE_OP_DIRSYNC on "..". */
int diskio_sync_parent(struct diskio *d);
/* Reserve [0, @len) of a new file the way @mode says. */
int diskio_prealloc(struct diskio *d, int fd, const char *name,
    enum storage_prealloc mode, uint64_t len);
int diskio_rename(struct diskio *d, const char *from, const char *to);
int diskio_unlink(struct diskio *d, const char *name);
/*
 * Whether @name is exactly @prefix, 20 decimal digits, @suffix (the names
 * of wal-<index>.seg and snap-<index>.snap files, and their .tmp); sets
 * *@index to the digits' value, which must be > 0.
 */
bool diskio_parse_name(const char *name, const char *prefix, const char *suffix,
    raft_index *index);
/* Names in the directory, sorted; caller frees with diskio_free_names(). */
int diskio_list(struct diskio *d, char ***names, size_t *n);
void diskio_free_names(char **names, size_t n);

#endif
