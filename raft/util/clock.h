/*
 * clock.h - milliseconds of CLOCK_MONOTONIC: the one clock for deadlines,
 * timers and rate limits in the member and the clients, and absolute
 * times for timed waits (header only).
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

/* The time @ms milliseconds from now on clock @clk, for the timed waits
 * that take an absolute time (pthread_cond_timedwait on a condition
 * variable of that clock, pthread_timedjoin_np on CLOCK_REALTIME). */
static inline struct timespec clock_after_ms(clockid_t clk, uint64_t ms)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

#endif
