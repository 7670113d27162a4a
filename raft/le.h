/*
 * le.h - little-endian loads and stores for the wire and disk encodings
 * (header only).  memcpy, so alignment never matters and the compiler
 * emits one load or store; a byte swap only on a big-endian host.  The
 * one implementation every codec uses (messages, frames, WAL, snapshots,
 * the client protocol, KV commands).
 */
#ifndef RAFTKV_LE_H
#define RAFTKV_LE_H

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define LE_SWAP16(x) __builtin_bswap16(x)
#define LE_SWAP32(x) __builtin_bswap32(x)
#define LE_SWAP64(x) __builtin_bswap64(x)
#else
#define LE_SWAP16(x) (x)
#define LE_SWAP32(x) (x)
#define LE_SWAP64(x) (x)
#endif

static inline void le_put16(uint8_t *p, uint16_t v)
{
	v = LE_SWAP16(v);
	memcpy(p, &v, sizeof(v));
}

static inline void le_put32(uint8_t *p, uint32_t v)
{
	v = LE_SWAP32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void le_put64(uint8_t *p, uint64_t v)
{
	v = LE_SWAP64(v);
	memcpy(p, &v, sizeof(v));
}

static inline uint16_t le_get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return LE_SWAP16(v);
}

static inline uint32_t le_get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return LE_SWAP32(v);
}

static inline uint64_t le_get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return LE_SWAP64(v);
}

#endif
