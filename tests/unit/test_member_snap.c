/*
 * test_member_snap.c - the member snapshot header (member_snap.h):
 * RKMDSNP2 round trip, RKMDSNP1 (no removed members) still read, a
 * snapshot without a header left to the application, and every damaged
 * header refused with STORAGE_ECORRUPT and a message (fail-closed).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "raft/err.h"
#include "raft/le.h"
#include "raft/member/member_snap.h"

static const char app[] = "the application's snapshot";

static void fill(struct memberdir *d, struct memberdir_gone *g)
{
	char key[MEMBERDIR_KEY_MAX] = "";

	memset(d, 0, sizeof(*d));
	memset(g, 0, sizeof(*g));
	for (uint32_t i = 0; i < 3; i++) {
		struct memberdir_entry e = { .id = i + 1 };

		snprintf(e.peer, sizeof(e.peer), "tcp://127.0.0.1:%u",
		    7001 + i);
		snprintf(e.client, sizeof(e.client), "tcp://127.0.0.1:%u",
		    7101 + i);
		memset(e.key, 'a' + (int)i, 40);
		assert_int_equal(memberdir_put(d, &e), 0);
	}
	assert_int_equal(memberdir_gone_add_id(g, 9), 0);
	memset(key, 'Z', 40);
	assert_int_equal(memberdir_gone_add_key(g, key), 0);
}

/* A snapshot: @hdr then the application's data. */
static uint8_t *snap(const uint8_t *hdr, uint32_t hlen, size_t *len)
{
	uint8_t *s = malloc(hlen + sizeof(app));

	assert_non_null(s);
	memcpy(s, hdr, hlen);
	memcpy(s + hlen, app, sizeof(app));
	*len = hlen + sizeof(app);
	return s;
}

static void test_member_snap_v2_round_trip(void **state)
{
	struct memberdir d, bd;
	struct memberdir_gone g, bg;
	char err[256] = "";
	uint8_t *hdr, *s;
	uint32_t hlen;
	size_t len, off;

	(void)state;
	fill(&d, &g);
	assert_int_equal(member_snap_header(&d, &g, &hdr, &hlen), 0);
	assert_memory_equal(hdr, "RKMDSNP2", 8);
	s = snap(hdr, hlen, &len);
	assert_int_equal(member_snap_parse(s, len, &bd, &bg, &off, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(off, hlen);
	assert_int_equal(bd.n, 3);
	assert_memory_equal(&bd.m[0], &d.m[0], 3 * sizeof(d.m[0]));
	assert_memory_equal(&bg, &g, sizeof(g));
	/* An empty application snapshot is one too. */
	assert_int_equal(member_snap_parse(hdr, hlen, &bd, &bg, &off, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(off, hlen);
	free(s);
	free(hdr);
}

/* RKMDSNP1: RKMDSNP2 without the removed members. */
static void test_member_snap_reads_v1(void **state)
{
	struct memberdir d, bd;
	struct memberdir_gone g, bg;
	char err[256] = "";
	uint8_t *hdr, *s, *dir;
	uint32_t hlen, dlen;
	size_t len, off;

	(void)state;
	fill(&d, &g);
	assert_int_equal(memberdir_encode(&d, &dir, &dlen), 0);
	hlen = 12 + dlen;
	hdr = malloc(hlen);
	assert_non_null(hdr);
	memcpy(hdr, "RKMDSNP1", 8);
	le_put32(hdr + 8, dlen);
	memcpy(hdr + 12, dir, dlen);
	free(dir);
	s = snap(hdr, hlen, &len);
	memset(&bg, 0xff, sizeof(bg));
	assert_int_equal(member_snap_parse(s, len, &bd, &bg, &off, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(off, hlen);
	assert_int_equal(bd.n, 3);
	assert_true(memberdir_gone_empty(&bg));
	assert_memory_equal(s + off, app, sizeof(app));
	/* Damaged: the directory cut short. */
	le_put32(s + 8, dlen - 1);
	assert_int_equal(member_snap_parse(s, len, &bd, &bg, &off, err,
	                     sizeof(err)),
	    STORAGE_ECORRUPT);
	assert_non_null(strstr(err, "RKMDSNP1"));
	free(s);
	free(hdr);
}

/* Without a magic: the application's alone, untouched. */
static void test_member_snap_plain(void **state)
{
	struct memberdir bd;
	struct memberdir_gone bg;
	char err[256] = "";
	size_t off = 99;

	(void)state;
	assert_int_equal(member_snap_parse(app, sizeof(app), &bd, &bg, &off,
	                     err, sizeof(err)),
	    1);
	assert_int_equal(off, 0);
	assert_int_equal(bd.n, 0);
	assert_int_equal(member_snap_parse("RKMDSNP2", 8, &bd, &bg, &off, err,
	                     sizeof(err)),
	    1); /* shorter than a header: not one */
	assert_int_equal(member_snap_parse("", 0, &bd, &bg, &off, err,
	                     sizeof(err)),
	    1);
}

/* Every header cut short, every length past the end, and a directory or
 * removed set that does not decode: refused with a message. */
static void test_member_snap_damage_refused(void **state)
{
	struct memberdir d, bd;
	struct memberdir_gone g, bg;
	char err[256];
	uint8_t *hdr, *s;
	uint32_t hlen, dlen;
	size_t len, off;

	(void)state;
	fill(&d, &g);
	assert_int_equal(member_snap_header(&d, &g, &hdr, &hlen), 0);
	dlen = le_get32(hdr + 8);
	/* Cut anywhere inside the header (past the magic and length). */
	for (uint32_t cut = 12; cut < hlen; cut++) {
		err[0] = '\0';
		assert_int_equal(member_snap_parse(hdr, cut, &bd, &bg, &off,
		                     err, sizeof(err)),
		    STORAGE_ECORRUPT);
		assert_non_null(strstr(err, "RKMDSNP2"));
		assert_int_equal(bd.n, 0);
		assert_true(memberdir_gone_empty(&bg));
	}
	s = snap(hdr, hlen, &len);
	/* The directory's length past the end. */
	le_put32(s + 8, (uint32_t)len);
	assert_int_equal(member_snap_parse(s, len, &bd, &bg, &off, err,
	                     sizeof(err)),
	    STORAGE_ECORRUPT);
	assert_non_null(strstr(err, "directory length past the end"));
	le_put32(s + 8, dlen);
	/* The removed members' length past the end. */
	le_put32(s + 12 + dlen, (uint32_t)len);
	assert_int_equal(member_snap_parse(s, len, &bd, &bg, &off, err,
	                     sizeof(err)),
	    STORAGE_ECORRUPT);
	assert_non_null(strstr(err, "removed members' length"));
	le_put32(s + 12 + dlen, hlen - 16 - dlen);
	/* A removed set that does not decode (its version byte). */
	s[16 + dlen] ^= 0xff;
	assert_int_equal(member_snap_parse(s, len, &bd, &bg, &off, err,
	                     sizeof(err)),
	    STORAGE_ECORRUPT);
	assert_non_null(strstr(err, "removed members do not decode"));
	s[16 + dlen] ^= 0xff;
	/* A directory that does not decode (its version byte). */
	s[12] ^= 0xff;
	assert_int_equal(member_snap_parse(s, len, &bd, &bg, &off, err,
	                     sizeof(err)),
	    STORAGE_ECORRUPT);
	assert_non_null(strstr(err, "directory does not decode"));
	s[12] ^= 0xff;
	/* Put back: whole again. */
	assert_int_equal(member_snap_parse(s, len, &bd, &bg, &off, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(off, hlen);
	free(s);
	free(hdr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_member_snap_v2_round_trip),
		cmocka_unit_test(test_member_snap_reads_v1),
		cmocka_unit_test(test_member_snap_plain),
		cmocka_unit_test(test_member_snap_damage_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
