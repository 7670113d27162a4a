/*
 * stfx.c - the storage test fixture (see stfx.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "raft/le.h"
#include "tests/lib/stfx.h"

static void log_sink(void *arg, int level, const char *msg)
{
	struct stfx *f = arg;
	size_t used = strlen(f->logs);

	if (level >= STORAGE_LOG_WARN)
		f->n_warn++;
	f->n_logs++;
	snprintf(f->last_log, sizeof f->last_log, "%s", msg);
	snprintf(f->logs + used, sizeof f->logs - used, "%s\n", msg);
}

static int fault_hook(void *arg, enum storage_op op, const char *file)
{
	struct stfx *f = arg;

	(void)file;
	if (f->fail_at > 0 && f->ops >= f->fail_at && op == STORAGE_OP_SYNC)
		f->syncs_after_fail++; /* the failure has already fired */
	if (f->fail_op != 0 && op != f->fail_op)
		return 0;
	if (++f->ops == f->fail_at)
		return f->fail_rc;
	return 0;
}

int stfx_setup(void **state, const char *name)
{
	struct stfx *f = calloc(1, sizeof *f);
	const char *tmp = getenv("TMPDIR");

	assert_non_null(f);
	snprintf(f->root, sizeof f->root, "%s/%s.XXXXXX",
	    tmp != NULL ? tmp : "/tmp", name);
	assert_non_null(mkdtemp(f->root));
	snprintf(f->dir, sizeof f->dir, "%s/data", f->root);
	storage_options_defaults(&f->opt);
	f->opt.segment_size = 4096;
	f->opt.log = log_sink;
	f->opt.log_arg = f;
	f->opt.fault = fault_hook;
	f->opt.fault_arg = f;
	*state = f;
	return 0;
}

int stfx_teardown(void **state)
{
	struct stfx *f = *state;

	stfx_rm_rf(f->root);
	free(f);
	return 0;
}

void stfx_clear_logs(struct stfx *f)
{
	f->logs[0] = '\0';
	f->last_log[0] = '\0';
	f->n_logs = 0;
	f->n_warn = 0;
}

static int rm_one(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void stfx_rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void stfx_copy_dir(const char *src, const char *dst)
{
	char cmd[1024];

	stfx_rm_rf(dst);
	snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", src, dst);
	assert_int_equal(system(cmd), 0);
}

uint32_t stfx_payload_len(raft_index index)
{
	return 20 + (uint32_t)(index * 37 % 100);
}

uint8_t stfx_payload_byte(raft_index index, raft_term term, uint32_t j)
{
	return (uint8_t)(index * 131 + term * 7 + j + 1);
}

struct raft_entry *stfx_make_entries(raft_index first, uint32_t n,
    raft_term term)
{
	struct raft_entry *e = calloc(n, sizeof *e);

	assert_non_null(e);
	for (uint32_t i = 0; i < n; i++) {
		e[i].index = first + i;
		e[i].term = term;
		e[i].type = RAFT_ENTRY_NORMAL;
		e[i].len = stfx_payload_len(first + i);
		e[i].data = malloc(e[i].len);
		assert_non_null(e[i].data);
		for (uint32_t j = 0; j < e[i].len; j++)
			e[i].data[j] = stfx_payload_byte(first + i, term, j);
	}
	return e;
}

void stfx_free_entries(struct raft_entry *e, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		free(e[i].data);
	free(e);
}

void stfx_append(struct storage *s, raft_index first, uint32_t n,
    raft_term term)
{
	struct raft_entry *e = stfx_make_entries(first, n, term);

	assert_int_equal(storage_append(s, e, n), 0);
	stfx_free_entries(e, n);
}

struct raft_snapshot_meta stfx_snap_meta(raft_index index, raft_term term)
{
	struct raft_snapshot_meta m;

	memset(&m, 0, sizeof m);
	m.index = index;
	m.term = term;
	m.n_voters = 3;
	m.voters[0] = 1;
	m.voters[1] = 2;
	m.voters[2] = 3;
	return m;
}

struct storage *stfx_open(struct stfx *f, const char *dir,
    struct raft_boot *boot)
{
	struct storage *s = NULL;
	char err[1024];
	int rc = storage_open(dir, STFX_CLUSTER, STFX_MEMBER, &f->opt, &s, boot,
	    err, sizeof err);

	if (rc != 0)
		fail_msg("storage_open(%s): %d: %s", dir, rc, err);
	return s;
}

void stfx_path(const char *dir, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

void stfx_seg_name(raft_index first, char *buf, size_t len)
{
	snprintf(buf, len, "wal-%020" PRIu64 ".seg", first);
}

bool stfx_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

uint64_t stfx_file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

size_t stfx_list_segments(const char *dir, raft_index *firsts, size_t max)
{
	char cmd[600];
	unsigned long long v;
	size_t n = 0;
	FILE *p;

	snprintf(cmd, sizeof cmd,
	    "ls '%s' | "
	    "sed -n 's/^wal-\\([0-9]*\\)\\.seg$/\\1/p' | sort -n",
	    dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (n < max && fscanf(p, "%llu", &v) == 1)
		firsts[n++] = v;
	pclose(p);
	return n;
}

size_t stfx_record_offsets(const char *path, uint64_t *offs, size_t max)
{
	int fd = open(path, O_RDONLY);
	uint64_t off = 64;
	uint8_t h[4];
	size_t n = 0;

	assert_true(fd >= 0);
	while (n < max && pread(fd, h, 4, (off_t)off) == 4) {
		uint32_t len = le_get32(h);

		if (len == 0)
			break;
		offs[n++] = off;
		off += 9 + len;
	}
	offs[n] = off; /* the end */
	close(fd);
	return n;
}

void stfx_read_at(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

void stfx_write_at(const char *path, uint64_t off, const void *buf, size_t len)
{
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

void stfx_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}
