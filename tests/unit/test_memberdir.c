/*
 * test_memberdir.c - the member directory (raft/storage/memberdir.c): the
 * codec round-trips and refuses what is not exactly one directory; the
 * file round-trips with the removed members (raft/memberdir_gone.h),
 * reads an RKMEMBR1 file (no removed members) as before, is absent as
 * -ENOENT, and every kind of damage (a flipped byte anywhere, a short
 * file, another cluster's, an unknown format or bad content under a
 * right checksum) is refused as STORAGE_EDAMAGED, fail-closed; the
 * removed sets refuse past their bound and forget nothing.
 */
#include <errno.h>
#include <fcntl.h>
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

#include "raft/err.h"
#include "raft/le.h"
#include "raft/storage/crc32c.h"
#include "raft/storage/memberdir_file.h"

static void fill(struct memberdir *d, uint32_t n, bool keys)
{
	memset(d, 0, sizeof(*d));
	for (uint32_t i = 0; i < n; i++) {
		struct memberdir_entry e = { .id = i + 1 };

		snprintf(e.peer, sizeof(e.peer), "tcp://127.0.0.1:%u",
		    7001 + i);
		snprintf(e.client, sizeof(e.client), "tcp://127.0.0.1:%u",
		    7101 + i);
		if (keys)
			memset(e.key, 'a' + (int)i, 40);
		assert_int_equal(memberdir_put(d, &e), 0);
	}
}

/* Removed members: ids 10.. and keys 'A'.. */
static void fill_gone(struct memberdir_gone *g, uint32_t n)
{
	char key[MEMBERDIR_KEY_MAX] = "";

	memset(g, 0, sizeof(*g));
	for (uint32_t i = 0; i < n; i++) {
		memberdir_gone_add_id(g, 10 + i);
		memset(key, 'A' + (int)i, 40);
		memberdir_gone_add_key(g, key);
	}
}

static void test_memberdir_gone_set_and_codec(void **state)
{
	struct memberdir_gone g, back;
	char key[MEMBERDIR_KEY_MAX] = "";
	uint8_t *buf;
	uint32_t len;

	(void)state;
	fill_gone(&g, 3);
	memberdir_gone_add_id(&g, 10); /* already there */
	memberdir_gone_add_key(&g, g.keys[0]);
	memberdir_gone_add_key(&g, "not a key");
	assert_int_equal(g.n_ids, 3);
	assert_int_equal(g.n_keys, 3);
	assert_true(memberdir_gone_has_id(&g, 11));
	assert_false(memberdir_gone_has_key(&g, ""));
	memberdir_gone_del_id(&g, 11);
	assert_false(memberdir_gone_has_id(&g, 11));
	assert_true(memberdir_gone_has_id(&g, 12));
	assert_int_equal(memberdir_gone_encode(&g, &buf, &len), 0);
	assert_int_equal(memberdir_gone_decode(buf, len, &back), 0);
	assert_memory_equal(&back, &g, sizeof(g));
	for (uint32_t cut = 0; cut < len; cut++)
		assert_int_equal(memberdir_gone_decode(buf, cut, &back),
		    -EINVAL);
	/* A duplicate key is not one set. */
	memcpy(buf + len - 40, buf + len - 80, 40);
	assert_int_equal(memberdir_gone_decode(buf, len, &back), -EINVAL);
	free(buf);
	/* Full: nothing is forgotten, a new one is refused (a forgotten
	 * id or key would be admitted again). */
	memset(&g, 0, sizeof(g));
	for (uint32_t i = 0; i < MEMBERDIR_GONE_MAX; i++) {
		assert_true(memberdir_gone_room(&g, 1000 + i, key));
		assert_int_equal(memberdir_gone_add_id(&g, 1000 + i), 0);
		snprintf(key, sizeof(key), "%040u", i);
		assert_int_equal(memberdir_gone_add_key(&g, key), 0);
	}
	back = g;
	snprintf(key, sizeof(key), "%040u", MEMBERDIR_GONE_MAX);
	assert_false(memberdir_gone_room(&g, 1000 + MEMBERDIR_GONE_MAX, ""));
	assert_false(memberdir_gone_room(&g, 1000, key));
	assert_true(memberdir_gone_room(&g, 1000, ""));
	assert_true(memberdir_gone_room(&g, 1000, g.keys[3]));
	assert_int_equal(memberdir_gone_add_id(&g, 1000 + MEMBERDIR_GONE_MAX),
	    -ENOSPC);
	assert_int_equal(memberdir_gone_add_key(&g, key), -ENOSPC);
	assert_int_equal(memberdir_gone_add_id(&g, 1000), 0); /* there */
	assert_int_equal(memberdir_gone_add_key(&g, g.keys[0]), 0);
	assert_memory_equal(&back, &g, sizeof(g));
	assert_true(memberdir_gone_has_id(&g, 1000));
	assert_false(memberdir_gone_has_id(&g, 1000 + MEMBERDIR_GONE_MAX));
	assert_false(memberdir_gone_has_key(&g, key));
	/* A merge adds what fits and says the rest did not. */
	memset(&back, 0, sizeof(back));
	assert_int_equal(memberdir_gone_add_id(&back, 7), 0);
	assert_int_equal(memberdir_gone_add_key(&back, key), 0);
	assert_int_equal(memberdir_gone_merge(&g, &back), -ENOSPC);
	assert_int_equal(memberdir_gone_merge(&back, &back), 0);
	assert_int_equal(memberdir_gone_encode(&g, &buf, &len), 0);
	assert_int_equal(memberdir_gone_decode(buf, len, &back), 0);
	assert_memory_equal(&back, &g, sizeof(g));
	free(buf);
}

static void test_memberdir_codec_round_trip(void **state)
{
	struct memberdir d, back;
	uint8_t *buf;
	uint32_t len;

	(void)state;
	fill(&d, 5, true);
	assert_int_equal(memberdir_encode(&d, &buf, &len), 0);
	assert_int_equal(memberdir_decode(buf, len, &back), 0);
	assert_int_equal(back.n, 5);
	assert_memory_equal(&back.m[0], &d.m[0], sizeof(d.m[0]) * 5);
	/* Every strict prefix and one trailing byte are refused. */
	for (uint32_t cut = 0; cut < len; cut++)
		assert_int_equal(memberdir_decode(buf, cut, &back), -EINVAL);
	buf = realloc(buf, len + 1);
	buf[len] = 0;
	assert_int_equal(memberdir_decode(buf, len + 1, &back), -EINVAL);
	free(buf);
	/* A repeated id is refused. */
	d.m[1].id = 1;
	assert_int_equal(memberdir_encode(&d, &buf, &len), 0);
	assert_int_equal(memberdir_decode(buf, len, &back), -EINVAL);
	free(buf);
}

static void test_memberdir_put_replaces_and_checks(void **state)
{
	struct memberdir d;
	struct memberdir_entry e = { .id = 2 };

	(void)state;
	fill(&d, 3, false);
	snprintf(e.peer, sizeof(e.peer), "tcp://10.0.0.2:1");
	snprintf(e.client, sizeof(e.client), "tcp://10.0.0.2:2");
	assert_int_equal(memberdir_put(&d, &e), 0);
	assert_int_equal(d.n, 3);
	assert_string_equal(memberdir_find(&d, 2)->peer, "tcp://10.0.0.2:1");
	memberdir_del(&d, 2);
	assert_null(memberdir_find(&d, 2));
	assert_int_equal(d.n, 2);
	e.id = 0;
	assert_int_equal(memberdir_put(&d, &e), -EINVAL);
	e.id = 9;
	memset(e.key, 'k', 12);
	assert_int_equal(memberdir_put(&d, &e), -EINVAL); /* short key */
	e.key[0] = '\0';
	e.peer[0] = '\0';
	assert_int_equal(memberdir_put(&d, &e), -EINVAL);
	fill(&d, MEMBERDIR_MAX, false);
	snprintf(e.peer, sizeof(e.peer), "tcp://x:1");
	e.id = 1000;
	assert_int_equal(memberdir_put(&d, &e), -ENOSPC);
}

/* Keys are Z85 and endpoints what libzmq accepts: one bad ADD must not
 * reach a directory that every member then fails to start from. */
static void test_memberdir_refuses_what_zmq_refuses(void **state)
{
	static const char *bad[] = { "tcp://-host:7001", "tcp://...:5",
		"tcp://.a:5", "tcp://_x:5", "tcp://x:0", "tcp://x:65536",
		"tcp://x:", "udp://x:5", "tcp://a b:5", "tcp://[::1:5",
		"tcp://x:5x" };
	static const char *good[] = { "tcp://127.0.0.1:7001",
		"tcp://host-1.example:5", "tcp://x_y:65535", "tcp://[::1]:5",
		"tcp://9:5" };
	struct memberdir d;
	struct memberdir_entry e = { .id = 7 };
	uint8_t *buf;
	uint32_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(memberdir_endpoint_ok(bad[i]));
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(memberdir_endpoint_ok(good[i]));
	assert_true(
	    memberdir_key_ok("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"));
	assert_false(
	    memberdir_key_ok("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf"));
	assert_false(
	    memberdir_key_ok("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]y f"));
	assert_false(
	    memberdir_key_ok("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]y~7"));

	fill(&d, 2, false);
	snprintf(e.peer, sizeof(e.peer), "tcp://-host:7001");
	snprintf(e.client, sizeof(e.client), "tcp://ok:7002");
	assert_int_equal(memberdir_put(&d, &e), -EINVAL);
	snprintf(e.peer, sizeof(e.peer), "tcp://ok:7001");
	snprintf(e.client, sizeof(e.client), "tcp://...:5");
	assert_int_equal(memberdir_put(&d, &e), -EINVAL);
	snprintf(e.client, sizeof(e.client), "tcp://ok:7002");
	memset(e.key, '~', 40); /* 40 characters, not Z85 */
	assert_int_equal(memberdir_put(&d, &e), -EINVAL);
	/* Nor does a decoded directory carry one. */
	fill(&d, 2, true);
	memset(d.m[1].key, '~', 40);
	assert_int_equal(memberdir_encode(&d, &buf, &len), 0);
	assert_int_equal(memberdir_decode(buf, len, &d), -EINVAL);
	free(buf);
	fill(&d, 2, false);
	snprintf(d.m[0].peer, sizeof(d.m[0].peer), "tcp://...:5");
	assert_int_equal(memberdir_encode(&d, &buf, &len), 0);
	assert_int_equal(memberdir_decode(buf, len, &d), -EINVAL);
	free(buf);
}

static void tmpdir(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/test_memberdir.XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void cleanup(const char *dir)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/members", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/members.tmp", dir);
	unlink(p);
	rmdir(dir);
}

static void test_memberdir_file_round_trip(void **state)
{
	struct memberdir_gone g, gback;
	struct memberdir d, back;
	char dir[64], err[512] = "";

	(void)state;
	tmpdir(dir, sizeof(dir));
	assert_int_equal(memberdir_load(dir, 7, &back, NULL, err, sizeof(err)),
	    -ENOENT);
	fill(&d, 4, true);
	fill_gone(&g, 2);
	assert_int_equal(memberdir_save(dir, 7, &d, &g, err, sizeof(err)), 0);
	assert_int_equal(memberdir_load(dir, 7, &back, &gback, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(back.n, 4);
	assert_memory_equal(&back.m[0], &d.m[0], sizeof(d.m[0]) * 4);
	assert_memory_equal(&gback, &g, sizeof(g));
	/* Saving again replaces it; NULL is no removed member. */
	d.n = 2;
	assert_int_equal(memberdir_save(dir, 7, &d, NULL, err, sizeof(err)), 0);
	assert_int_equal(memberdir_load(dir, 7, &back, &gback, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(back.n, 2);
	assert_true(memberdir_gone_empty(&gback));
	/* Another cluster's directory is refused, naming the file. */
	assert_int_equal(memberdir_load(dir, 8, &back, NULL, err, sizeof(err)),
	    STORAGE_EDAMAGED);
	assert_non_null(strstr(err, "members"));
	assert_int_equal(back.n, 0);
	cleanup(dir);
}

static void test_memberdir_damage_is_refused(void **state)
{
	struct memberdir_gone g, gback;
	struct memberdir d, back;
	char dir[64], path[128], err[512] = "";
	uint8_t buf[4096];
	ssize_t len;
	int fd;

	(void)state;
	tmpdir(dir, sizeof(dir));
	fill(&d, 3, true);
	fill_gone(&g, 2);
	assert_int_equal(memberdir_save(dir, 7, &d, &g, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/members", dir);
	fd = open(path, O_RDONLY);
	len = read(fd, buf, sizeof(buf));
	close(fd);
	assert_true(len > 24);
	/* A flipped bit anywhere, and every truncation. */
	for (ssize_t i = 0; i < len; i++) {
		buf[i] ^= 0x10;
		fd = open(path, O_WRONLY | O_TRUNC);
		assert_int_equal(write(fd, buf, (size_t)len), len);
		close(fd);
		assert_int_equal(memberdir_load(dir, 7, &back, &gback, err,
		                     sizeof(err)),
		    STORAGE_EDAMAGED);
		assert_true(memberdir_gone_empty(&gback));
		buf[i] ^= 0x10;
	}
	for (ssize_t cut = 0; cut < len; cut += 7) {
		fd = open(path, O_WRONLY | O_TRUNC);
		assert_int_equal(write(fd, buf, (size_t)cut), cut);
		close(fd);
		assert_int_equal(memberdir_load(dir, 7, &back, &gback, err,
		                     sizeof(err)),
		    STORAGE_EDAMAGED);
		assert_true(memberdir_gone_empty(&gback));
	}
	assert_non_null(strstr(err, "refusing to start"));
	cleanup(dir);
}

/* An RKMEMBR1 file (written before the removed members were kept) is
 * read as before, with none removed; damaged, it is refused too. */
static void test_memberdir_reads_version_1(void **state)
{
	struct memberdir_gone gback;
	struct memberdir d, back;
	char dir[64], path[128], err[512] = "";
	uint8_t file[4096], *body;
	uint32_t blen;
	size_t flen;
	int fd;

	(void)state;
	tmpdir(dir, sizeof(dir));
	fill(&d, 3, true);
	assert_int_equal(memberdir_encode(&d, &body, &blen), 0);
	memcpy(file, "RKMEMBR1", 8);
	le_put64(file + 8, 7);
	le_put32(file + 16, blen);
	memcpy(file + 20, body, blen);
	free(body);
	flen = 20 + blen;
	le_put32(file + flen, crc32c(0, file, flen));
	flen += 4;
	snprintf(path, sizeof(path), "%s/members", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(write(fd, file, flen), (ssize_t)flen);
	close(fd);
	memset(&gback, 0xff, sizeof(gback));
	assert_int_equal(memberdir_load(dir, 7, &back, &gback, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(back.n, 3);
	assert_memory_equal(&back.m[0], &d.m[0], sizeof(d.m[0]) * 3);
	assert_true(memberdir_gone_empty(&gback));
	file[30] ^= 1;
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, file, flen), (ssize_t)flen);
	close(fd);
	assert_int_equal(memberdir_load(dir, 7, &back, &gback, err,
	                     sizeof(err)),
	    STORAGE_EDAMAGED);
	cleanup(dir);
}

/* Rewrite @path as @len bytes of @file with its checksum made right:
 * what is refused then is the content, not the checksum. */
static void write_resealed(const char *path, uint8_t *file, size_t len)
{
	int fd;

	le_put32(file + len - 4, crc32c(0, file, len - 4));
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, file, len), (ssize_t)len);
	close(fd);
}

/* An RKMEMBR2 file whose checksum is right but whose content is not (an
 * unknown format, lengths that disagree, a removed set that does not
 * decode) is refused with a message, never read in part. */
static void test_memberdir_bad_content_refused(void **state)
{
	struct memberdir_gone g, gback;
	struct memberdir d, back;
	char dir[64], path[128], err[512];
	uint8_t buf[4096], work[4096];
	uint32_t blen;
	ssize_t len;
	int fd;

	(void)state;
	tmpdir(dir, sizeof(dir));
	fill(&d, 3, true);
	fill_gone(&g, 2);
	assert_int_equal(memberdir_save(dir, 7, &d, &g, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/members", dir);
	fd = open(path, O_RDONLY);
	len = read(fd, buf, sizeof(buf));
	close(fd);
	assert_memory_equal(buf, "RKMEMBR2", 8);
	blen = le_get32(buf + 16);
	/* A format this version does not know. */
	memcpy(work, buf, (size_t)len);
	memcpy(work, "RKMEMBR3", 8);
	write_resealed(path, work, (size_t)len);
	err[0] = '\0';
	assert_int_equal(memberdir_load(dir, 7, &back, &gback, err,
	                     sizeof(err)),
	    STORAGE_EDAMAGED);
	assert_non_null(strstr(err, "damaged member directory"));
	assert_int_equal(back.n, 0);
	/* The directory's length past the removed members'. */
	memcpy(work, buf, (size_t)len);
	le_put32(work + 16, blen + 5);
	write_resealed(path, work, (size_t)len);
	assert_int_equal(memberdir_load(dir, 7, &back, &gback, err,
	                     sizeof(err)),
	    STORAGE_EDAMAGED);
	/* The removed set's version byte. */
	memcpy(work, buf, (size_t)len);
	work[20 + blen + 4] ^= 0xff;
	write_resealed(path, work, (size_t)len);
	assert_int_equal(memberdir_load(dir, 7, &back, &gback, err,
	                     sizeof(err)),
	    STORAGE_EDAMAGED);
	assert_true(memberdir_gone_empty(&gback));
	/* A removed id repeated (the second id made the first). */
	memcpy(work, buf, (size_t)len);
	memcpy(work + 20 + blen + 4 + 3 + 8, work + 20 + blen + 4 + 3, 8);
	write_resealed(path, work, (size_t)len);
	assert_int_equal(memberdir_load(dir, 7, &back, &gback, err,
	                     sizeof(err)),
	    STORAGE_EDAMAGED);
	assert_true(memberdir_gone_empty(&gback));
	/* The original, resealed the same: read. */
	memcpy(work, buf, (size_t)len);
	write_resealed(path, work, (size_t)len);
	assert_int_equal(memberdir_load(dir, 7, &back, &gback, err,
	                     sizeof(err)),
	    0);
	assert_memory_equal(&gback, &g, sizeof(g));
	cleanup(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memberdir_codec_round_trip),
		cmocka_unit_test(test_memberdir_put_replaces_and_checks),
		cmocka_unit_test(test_memberdir_refuses_what_zmq_refuses),
		cmocka_unit_test(test_memberdir_file_round_trip),
		cmocka_unit_test(test_memberdir_damage_is_refused),
		cmocka_unit_test(test_memberdir_gone_set_and_codec),
		cmocka_unit_test(test_memberdir_reads_version_1),
		cmocka_unit_test(test_memberdir_bad_content_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
