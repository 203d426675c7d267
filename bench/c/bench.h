/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Helpers every bench/c program shares: the clock the benchmarks time with (CLOCK_MONOTONIC: the one the
 * generators and consumers stamp records and their last record with, across processes), and rusage seconds.
 */
#ifndef VIGIL_BENCH_H
#define VIGIL_BENCH_H

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static inline unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Pins this process to CPU `cpu` (negative: leaves it where it is). 0, or -1 after saying why on stderr. */
static inline int pin_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		perror("sched_setaffinity");
		return -1;
	}
	return 0;
}

static inline double tv_s(struct timeval tv)
{
	return tv.tv_sec + tv.tv_usec / 1e6;
}

/*
 * Touches VIGIL_BENCH_PREWARM_BYTES (unset: none) of pages before a measured window: a scratch file in the
 * output's directory, written and deleted. This VM's balloon returns free pages to its host, and a reported
 * page costs a host fault the next time it is used; see bench/lib/memory.ts, which the TypeScript consumers use.
 */
static inline void prewarm_pages(const char *out_path)
{
	static char chunk[1 << 20];
	const char *env = getenv("VIGIL_BENCH_PREWARM_BYTES");
	long long bytes = env ? atoll(env) : 0;
	char dir[PATH_MAX], file[PATH_MAX + 32];
	int fd;

	if (bytes <= 0)
		return;
	snprintf(dir, sizeof(dir), "%s", out_path);
	snprintf(file, sizeof(file), "%s/.prewarm-%d", dirname(dir), getpid());
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return;
	memset(chunk, ' ', sizeof(chunk));
	for (long long n = 0; n < bytes; n += sizeof(chunk))
		if (write(fd, chunk, sizeof(chunk)) != (ssize_t)sizeof(chunk))
			break;
	close(fd);
	unlink(file);
}

#endif
