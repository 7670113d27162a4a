/*
 * member_snap.c - the member snapshot header's codec (member_snap.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/err.h"
#include "raft/le.h"
#include "raft/member/member_snap.h"

#define SNAP_MAGIC1 "RKMDSNP1"
#define SNAP_MAGIC2 "RKMDSNP2"
#define SNAP_HDR 12

int member_snap_header(const struct memberdir *d,
    const struct memberdir_gone *g, uint8_t **out, uint32_t *len)
{
	uint8_t *dir = NULL, *gone = NULL;
	uint32_t dlen = 0, glen = 0;
	int rv;

	rv = memberdir_encode(d, &dir, &dlen);
	if (rv == 0)
		rv = memberdir_gone_encode(g, &gone, &glen);
	if (rv == 0 && (*out = malloc(SNAP_HDR + dlen + 4 + glen)) == NULL)
		rv = -ENOMEM;
	if (rv == 0) {
		memcpy(*out, SNAP_MAGIC2, 8);
		le_put32(*out + 8, dlen);
		memcpy(*out + SNAP_HDR, dir, dlen);
		le_put32(*out + SNAP_HDR + dlen, glen);
		memcpy(*out + SNAP_HDR + dlen + 4, gone, glen);
		*len = SNAP_HDR + dlen + 4 + glen;
	}
	free(dir);
	free(gone);
	return rv;
}

int member_snap_parse(const void *data, size_t len, struct memberdir *d,
    struct memberdir_gone *g, size_t *app_off, char *err, size_t errlen)
{
	const uint8_t *p = data;
	const char *what = NULL;
	uint32_t dlen, glen = 0;
	size_t off;
	bool v2;

	memset(d, 0, sizeof(*d));
	memset(g, 0, sizeof(*g));
	*app_off = 0;
	if (len < SNAP_HDR ||
	    (memcmp(p, SNAP_MAGIC1, 8) != 0 && memcmp(p, SNAP_MAGIC2, 8) != 0))
		return 1;
	v2 = memcmp(p, SNAP_MAGIC2, 8) == 0;
	dlen = le_get32(p + 8);
	off = SNAP_HDR + (size_t)dlen;
	if (dlen > len - SNAP_HDR) {
		what = "directory length past the end";
	} else if (v2 && len - off < 4) {
		what = "no removed members' length";
	} else if (v2 && (glen = le_get32(p + off)) > len - off - 4) {
		what = "removed members' length past the end";
	} else if (memberdir_decode(p + SNAP_HDR, dlen, d) != 0) {
		what = "directory does not decode";
	} else if (v2 && memberdir_gone_decode(p + off + 4, glen, g) != 0) {
		what = "removed members do not decode";
	}
	if (what != NULL) {
		memset(d, 0, sizeof(*d));
		memset(g, 0, sizeof(*g));
		snprintf(err, errlen,
		    "member snapshot header (%.8s, %zu bytes) damaged: %s", p,
		    len, what);
		return STORAGE_ECORRUPT;
	}
	*app_off = off + (v2 ? 4 + (size_t)glen : 0);
	return 0;
}
