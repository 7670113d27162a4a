/*
 * clock.h - milliseconds of CLOCK_MONOTONIC: the one clock for deadlines,
 * timers and rate limits in the member and the clients (header only).
 */
#ifndef RAFTKV_CLOCK_H
#define RAFTKV_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif
