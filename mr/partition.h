/*
 * partition.h - which reduce task a key goes to: the lab's ihash, FNV-1a
 * 32-bit masked to 31 bits, modulo nreduce (6.5840 mr/worker.go), so a key
 * lands in the same mr-out-R as with the lab's Go code.  Apps may override
 * it with mr_partition (mr.h).
 */
#ifndef RAFTKV_MR_PARTITION_H
#define RAFTKV_MR_PARTITION_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a 32 of @len bytes at @key, masked with 0x7fffffff. */
uint32_t partition_hash(const char *key, size_t len);

/* partition_hash(key) % nreduce.  @nreduce must be > 0. */
uint32_t partition_of(const char *key, size_t len, uint32_t nreduce);

#endif
