// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * bench/ringbuf workload: waits for a line on stdin (so the loader can learn this pid and aim the probe at
 * it first), makes N getppid() syscalls as fast as it can, prints what it did as one JSON line, and exits.
 *
 * usage: getppid_gen N [cpu]    (cpu: pin this process to that CPU first; -1 or absent: no pinning)
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

int main(int argc, char **argv)
{
	unsigned long long n, i, t0, t1;
	struct rusage ru;
	char line[64];
	int cpu = -1;

	if (argc < 2) {
		fprintf(stderr, "usage: %s N [cpu]\n", argv[0]);
		return 2;
	}
	n = strtoull(argv[1], NULL, 10);
	if (argc > 2)
		cpu = atoi(argv[2]);
	if (pin_cpu(cpu))
		return 1;
	/* Ready: the loader aims the probe at our pid, then sends a line. EOF means "abort". */
	printf("{\"ready\":true,\"pid\":%d}\n", getpid());
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 3;

	t0 = now_ns();
	/* syscall(2) directly: glibc's getppid() is not cached, but this makes one syscall per call explicit. */
	for (i = 0; i < n; i++)
		syscall(SYS_getppid);
	t1 = now_ns();

	getrusage(RUSAGE_SELF, &ru);
	printf("{\"calls\":%llu,\"start_ns\":%llu,\"end_ns\":%llu,\"elapsed_ns\":%llu,\"rate\":%.0f,"
	       "\"utime_s\":%.6f,\"stime_s\":%.6f}\n",
	       n, t0, t1, t1 - t0, n / ((t1 - t0) / 1e9), tv_s(ru.ru_utime), tv_s(ru.ru_stime));
	fflush(stdout);
	return 0;
}
