/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Helpers every bench/c program shares: the clock the benchmarks time with (CLOCK_MONOTONIC: the one the
 * generators and consumers stamp records and their last record with, across processes), and rusage seconds.
 */
#ifndef VIGIL_BENCH_H
#define VIGIL_BENCH_H

#include <sys/time.h>
#include <time.h>

static inline unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static inline double tv_s(struct timeval tv)
{
	return tv.tv_sec + tv.tv_usec / 1e6;
}

#endif
