/*
 * snapfile.c - one snapshot file: a checked header, then one zstd frame.
 *
 * Layout of snap-<index>.snap (little-endian):
 *
 *   offset   0  magic "RAFTKVSN"
 *            8  u32 format version (1 or 2)  12  u32 header size (192)
 *           16  u64 cluster id              24  u64 member id (the writer)
 *           32  u64 last included index     40  u64 its term
 *           48  u16 number of voters        50  u16 number of learners
 *           52  u32 CRC32C of the zstd frame
 *           56  u64 ids[15]: the voters, then the learners (unused slots
 *               zero; voters + learners <= 15)
 *          176  u64 uncompressed size      184  u32 CRC32C of the uncompressed data
 *          188  u32 CRC32C of bytes 0..187
 *   offset 192  one zstd frame, content size and frame checksum (XXH64) on,
 *               ending exactly at the end of the file.
 *
 * Three checksums on purpose: zstd's (XXH64 of the content) is checked by
 * the decoder; ours of the uncompressed data covers what the application
 * handed us, so a bug in the compression path is caught too; and ours of
 * the compressed frame catches the bit flips that decode to the same
 * bytes (a flip in an unused code length or in padding bits), so that a
 * damaged file is always reported rather than trusted because it happened
 * to decode.
 *
 * Versions: 1 has no learners (bytes 50-51 zero: in version 1 offset 48
 * was a u32 voter count, always <= 15); 2 has learners.  A snapshot
 * without learners is written as version 1, byte for byte what older
 * binaries wrote and read; one with learners as version 2, which older
 * binaries refuse with "unknown format version 2".  Both are read.  The header is written last, once the frame's CRC is known.  Both the compressor and the
 * decompressor stream through bounded buffers (ZSTD_compressStream2,
 * ZSTD_decompressStream); only the uncompressed state itself is in memory
 * in one piece, since that is how the application hands it over.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "raft/storage/crc32c.h"
#include "raft/storage/snapfile.h"
#include "raft/storage/storage.h"

#define SNAP_MAGIC "RAFTKVSN"
#define SNAP_VERSION 1 /* no learners */
#define SNAP_VERSION_LEARNERS 2
#define SNAP_HDR 192

void snapfile_name(raft_index index, bool tmp, char *buf, size_t len)
{
	snprintf(buf, len, "snap-%020" PRIu64 ".snap%s", index,
	    tmp ? ".tmp" : "");
}

bool snapfile_parse_name(const char *name, bool tmp, raft_index *index)
{
	return diskio_parse_name(name, "snap-", tmp ? ".snap.tmp" : ".snap",
	    index);
}

static void encode_header(uint8_t *h, uint64_t cluster_id, raft_id member_id,
    const struct raft_snapshot_meta *meta, uint64_t len, uint32_t crc,
    uint32_t frame_crc)
{
	memset(h, 0, SNAP_HDR);
	memcpy(h, SNAP_MAGIC, 8);
	le_put32(h + 8,
	    meta->n_learners ? SNAP_VERSION_LEARNERS : SNAP_VERSION);
	le_put32(h + 12, SNAP_HDR);
	le_put64(h + 16, cluster_id);
	le_put64(h + 24, member_id);
	le_put64(h + 32, meta->index);
	le_put64(h + 40, meta->term);
	le_put16(h + 48, (uint16_t)meta->n_voters);
	le_put16(h + 50, (uint16_t)meta->n_learners);
	le_put32(h + 52, frame_crc);
	for (uint32_t i = 0; i < meta->n_voters && i < RAFT_MAX_MEMBERS; i++)
		le_put64(h + 56 + 8 * i, meta->voters[i]);
	for (uint32_t i = 0;
	     i < meta->n_learners && meta->n_voters + i < RAFT_MAX_MEMBERS; i++)
		le_put64(h + 56 + 8 * (meta->n_voters + i), meta->learners[i]);
	le_put64(h + 176, len);
	le_put32(h + 184, crc);
	le_put32(h + 188, crc32c(0, h, 188));
}

/* Compress @data into @fd after the header; sets *@end to the file size
 * and *@frame_crc to the CRC32C of the frame. */
static int compress_to(struct diskio *io, int fd, const char *name,
    const void *data, uint64_t len, int level, uint64_t *end,
    uint32_t *frame_crc)
{
	ZSTD_inBuffer in = { data, (size_t)len, 0 };
	size_t outcap = ZSTD_CStreamOutSize(), left;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	uint8_t *out = malloc(outcap);
	uint64_t off = SNAP_HDR;
	int rc = 0;

	if (cctx == NULL || out == NULL) {
		rc = diskio_fail(io, -ENOMEM, "%s/%s: out of memory", io->dir,
		    name);
		goto out;
	}
	if (ZSTD_isError(
	        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(
	        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(cctx, len))) {
		rc = diskio_fail(io, -EINVAL,
		    "%s/%s: zstd refused the parameters "
		    "(level %d)",
		    io->dir, name, level);
		goto out;
	}
	do {
		ZSTD_outBuffer ob = { out, outcap, 0 };

		left = ZSTD_compressStream2(cctx, &ob, &in, ZSTD_e_end);
		if (ZSTD_isError(left)) {
			rc = diskio_fail(io, -EIO,
			    "%s/%s: zstd compression failed: %s", io->dir, name,
			    ZSTD_getErrorName(left));
			goto out;
		}
		if ((rc = diskio_pwrite(io, fd, name, out, ob.pos, off)) != 0)
			goto out;
		*frame_crc = crc32c(*frame_crc, out, ob.pos);
		off += ob.pos;
	} while (left != 0);
	*end = off;
out:
	free(out);
	ZSTD_freeCCtx(cctx);
	return rc;
}

int snapfile_write(struct diskio *io, const char *name, uint64_t cluster_id,
    raft_id member_id, const struct raft_snapshot_meta *meta, const void *data,
    uint64_t len, int level, uint64_t *file_bytes)
{
	uint8_t h[SNAP_HDR];
	uint32_t frame_crc = 0;
	int fd, rc;

	if ((rc = diskio_open(io, name, O_WRONLY | O_CREAT | O_TRUNC, &fd)) !=
	    0)
		return rc;
	rc = compress_to(io, fd, name, data, len, level, file_bytes,
	    &frame_crc);
	if (rc == 0) {
		encode_header(h, cluster_id, member_id, meta, len,
		    crc32c(0, data, (size_t)len), frame_crc);
		rc = diskio_pwrite(io, fd, name, h, SNAP_HDR, 0);
	}
	if (rc == 0)
		rc = diskio_fdatasync(io, fd, name);
	close(fd);
	return rc;
}

static int check_header(struct diskio *io, const char *name, const uint8_t *h,
    size_t got, uint64_t cluster_id, raft_id member_id, raft_index index)
{
	const char *dir = io->dir;

	if (got < SNAP_HDR)
		return diskio_fail(io, STORAGE_ECORRUPT,
		    "%s/%s: bad snapshot header "
		    "at offset 0: file is only %zu bytes",
		    dir, name, got);
	if (memcmp(h, SNAP_MAGIC, 8) != 0 ||
	    crc32c(0, h, 188) != le_get32(h + 188))
		return diskio_fail(io, STORAGE_ECORRUPT,
		    "%s/%s: bad snapshot header "
		    "at offset 0: %s",
		    dir, name,
		    memcmp(h, SNAP_MAGIC, 8) ? "wrong magic"
		                             : "checksum mismatch");
	if ((le_get32(h + 8) != SNAP_VERSION &&
	        le_get32(h + 8) != SNAP_VERSION_LEARNERS) ||
	    le_get32(h + 12) != SNAP_HDR)
		return diskio_fail(io, STORAGE_ECORRUPT,
		    "%s/%s: bad snapshot header "
		    "at offset 8: unknown format version %u",
		    dir, name, le_get32(h + 8));
	if (le_get64(h + 16) != cluster_id || le_get64(h + 24) != member_id)
		return diskio_fail(io, STORAGE_EFOREIGN,
		    "%s/%s: snapshot belongs to "
		    "cluster %" PRIx64 " member %" PRIu64
		    ", not cluster %" PRIx64 " member %" PRIu64,
		    dir, name, le_get64(h + 16), le_get64(h + 24), cluster_id,
		    member_id);
	if (le_get64(h + 32) != index || le_get64(h + 40) == 0 ||
	    le_get16(h + 48) == 0 ||
	    le_get16(h + 48) + le_get16(h + 50) > RAFT_MAX_MEMBERS ||
	    (le_get32(h + 8) == SNAP_VERSION && le_get16(h + 50) != 0))
		return diskio_fail(io, STORAGE_ECORRUPT,
		    "%s/%s: bad snapshot header at offset 32: index, "
		    "term, voter or learner count impossible",
		    dir, name);
	return 0;
}

/* Decompress the frame at offset SNAP_HDR of @fd into @data (@len bytes),
 * checking it against @frame_crc. */
static int decompress_from(struct diskio *io, int fd, const char *name,
    uint64_t fsize, uint8_t *data, uint64_t len, uint32_t frame_crc)
{
	uint32_t crc = 0;
	size_t incap = ZSTD_DStreamInSize(), got, ret = 1;
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	uint8_t *in = malloc(incap);
	/* One spare byte: a frame bigger than the header says overflows into it. */
	ZSTD_outBuffer out = { data, (size_t)len + 1, 0 };
	uint64_t off = SNAP_HDR;
	int rc = 0;

	if (dctx == NULL || in == NULL) {
		rc = diskio_fail(io, -ENOMEM, "%s/%s: out of memory", io->dir,
		    name);
		goto out;
	}
	while (off < fsize && ret != 0) {
		ZSTD_inBuffer ib = { in, 0, 0 };

		if ((rc = diskio_pread(io, fd, name, in, incap, off, &got)) !=
		    0)
			goto out;
		ib.size = got;
		while (ib.pos < ib.size && ret != 0) {
			ret = ZSTD_decompressStream(dctx, &out, &ib);
			if (ZSTD_isError(ret) || out.pos > len) {
				rc = diskio_fail(io, STORAGE_ECORRUPT,
				    "%s/%s: corrupt "
				    "compressed data near offset %" PRIu64
				    ": %s",
				    io->dir, name, off + ib.pos,
				    ZSTD_isError(ret)
				        ? ZSTD_getErrorName(ret)
				        : "more data than the header says");
				goto out;
			}
		}
		crc = crc32c(crc, in, ib.pos);
		off += ib.pos;
		if (got == 0)
			break;
	}
	if (ret != 0 || off != fsize || out.pos != len)
		rc = diskio_fail(io, STORAGE_ECORRUPT,
		    "%s/%s: corrupt compressed data "
		    "at offset %" PRIu64 ": %s",
		    io->dir, name, off,
		    ret != 0           ? "the zstd frame is cut short"
		        : off != fsize ? "bytes after the end of the zstd frame"
		                       : "less data than the header says");
	else if (crc != frame_crc)
		rc = diskio_fail(io, STORAGE_ECORRUPT,
		    "%s/%s: the zstd frame at "
		    "offsets %d..%" PRIu64
		    " does not match its checksum (header "
		    "offset 52)",
		    io->dir, name, SNAP_HDR, fsize);
out:
	free(in);
	ZSTD_freeDCtx(dctx);
	return rc;
}

int snapfile_read(struct diskio *io, const char *name, uint64_t cluster_id,
    raft_id member_id, uint64_t max_bytes, struct raft_snapshot_meta *meta,
    uint8_t **data, uint64_t *len, uint64_t *file_bytes)
{
	uint8_t h[SNAP_HDR], *buf = NULL;
	raft_index index = 0;
	uint64_t fsize, n;
	size_t got;
	int fd, rc;

	snapfile_parse_name(name, false, &index);
	if ((rc = diskio_open(io, name, O_RDONLY, &fd)) != 0)
		return rc;
	if ((rc = diskio_size(io, fd, name, &fsize)) != 0 ||
	    (rc = diskio_pread(io, fd, name, h, SNAP_HDR, 0, &got)) != 0 ||
	    (rc = check_header(io, name, h, got, cluster_id, member_id,
	         index)) != 0)
		goto out;
	n = le_get64(h + 176);
	if (n > max_bytes || (buf = malloc((size_t)n + 1)) == NULL) {
		rc = diskio_fail(io, n > max_bytes ? STORAGE_ECORRUPT : -ENOMEM,
		    "%s/%s: snapshot of %" PRIu64
		    " bytes (header offset 176): %s",
		    io->dir, name, n,
		    n > max_bytes ? "over the configured maximum"
		                  : "out of memory");
		goto out;
	}
	if ((rc = decompress_from(io, fd, name, fsize, buf, n,
	         le_get32(h + 52))) != 0)
		goto out;
	if (crc32c(0, buf, (size_t)n) != le_get32(h + 184)) {
		rc = diskio_fail(io, STORAGE_ECORRUPT,
		    "%s/%s: the uncompressed data "
		    "does not match its checksum (header offset 184)",
		    io->dir, name);
		goto out;
	}
	memset(meta, 0, sizeof *meta);
	meta->index = index;
	meta->term = le_get64(h + 40);
	meta->n_voters = le_get16(h + 48);
	for (uint32_t i = 0; i < meta->n_voters; i++)
		meta->voters[i] = le_get64(h + 56 + 8 * i);
	meta->n_learners = le_get16(h + 50);
	for (uint32_t i = 0; i < meta->n_learners; i++)
		meta->learners[i] = le_get64(h + 56 + 8 * (meta->n_voters + i));
	*data = buf;
	*len = n;
	*file_bytes = fsize;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}
