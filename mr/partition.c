/*
 * partition.c - the default partitioner (see partition.h).
 */
#include "mr/partition.h"

#include <assert.h>

uint32_t partition_hash(const char *key, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (uint8_t)key[i];
		h *= 16777619u;
	}
	return h & 0x7fffffffu;
}

uint32_t partition_of(const char *key, size_t len, uint32_t nreduce)
{
	assert(nreduce > 0);
	return partition_hash(key, len) % nreduce;
}
