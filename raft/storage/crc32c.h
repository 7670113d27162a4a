/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of every on-disk record.
 *
 * Two implementations with one result: a portable slicing-by-8 table
 * version and, on x86-64 CPUs that have SSE4.2, the crc32 instruction.
 * crc32c() picks the fastest one once (cpuid); both are exported so the
 * tests can check each against the known vectors.
 *
 * The running value is the *finished* CRC, so checksums chain:
 * crc32c(crc32c(0, a, na), b, nb) == crc32c(0, a || b, na + nb).
 */
#ifndef RAFTKV_CRC32C_H
#define RAFTKV_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CRC-32C of @len bytes at @buf, continuing from @crc (0 to start). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* The table implementation, always available. */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* Whether this CPU has the SSE4.2 crc32 instruction. */
bool crc32c_hw_available(void);

/* The instruction implementation.  Only call when crc32c_hw_available(). */
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len);

#endif
