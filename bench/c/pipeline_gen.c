// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * bench/pipeline live generator: a syscall storm the syscall sensor reports, one record per call. Each
 * iteration opens and closes TARGET (a file that exists), tries to open /nonexistent/vigil-bench (ENOENT),
 * and connects a unix socket to /nonexistent/vigil-bench.sock (ENOENT): three events, file and network,
 * through the real sensor's entry and exit programs. Every path names "vigil-bench", which tells the storm's
 * events from the generator's start-up opens. Waits for a line on stdin first (so consumers can be ready),
 * runs for MS milliseconds (at most N iterations), as fast as it can or at RATE events per second, prints
 * what it did as one JSON line, and exits. Paced, it sleeps to the schedule every 64 iterations, so that a
 * consumer that keeps up is measured without the overload an unpaced storm puts on it.
 *
 * usage: pipeline_gen N MS CPU TARGET [RATE]   (CPU: pin this process to that CPU first; -1: no pinning;
 *        RATE: events per second, 0 or none: as fast as it can)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define EVENTS_PER_ITERATION 3

int main(int argc, char **argv)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	unsigned long long n, i, t0, t1, failed = 0, limit_ns, rate = 0, ns_per_64 = 0;
	struct rusage ru;
	char line[64];
	int cpu = -1, sock, fd;
	const char *target;

	if ((argc != 5 && argc != 6) || !strstr(argv[4], "vigil-bench")) {
		fprintf(stderr, "usage: %s N MS CPU TARGET [RATE]   (TARGET: an existing file whose path contains \"vigil-bench\"; RATE: events/s)\n", argv[0]);
		return 2;
	}
	n = strtoull(argv[1], NULL, 10);
	limit_ns = strtoull(argv[2], NULL, 10) * 1000000ull;
	cpu = atoi(argv[3]);
	target = argv[4];
	if (argc == 6)
		rate = strtoull(argv[5], NULL, 10);
	/* 64 iterations' worth of the schedule, in ns (events per iteration: EVENTS_PER_ITERATION). */
	if (rate)
		ns_per_64 = 64ull * EVENTS_PER_ITERATION * 1000000000ull / rate;
	if (pin_cpu(cpu))
		return 1;
	/* One socket for every connect: a failed connect leaves it unconnected, so it can try again. */
	sock = socket(AF_UNIX, SOCK_STREAM, 0);
	if (sock < 0) {
		perror("socket");
		return 1;
	}
	strcpy(sun.sun_path, "/nonexistent/vigil-bench.sock");

	printf("{\"ready\":true,\"pid\":%d}\n", getpid());
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 3;

	t0 = now_ns();
	for (i = 0; i < n; i++) {
		/* A clock read every 256 iterations: cheap next to the 3 syscalls of each. */
		if ((i & 255) == 0 && now_ns() - t0 >= limit_ns)
			break;
		if (rate && (i & 63) == 0 && i) {
			/* Ahead of the schedule: sleep until iteration i is due. */
			unsigned long long due = t0 + (i / 64) * ns_per_64, now = now_ns();

			if (due > now) {
				struct timespec ts = { .tv_sec = due / 1000000000ull, .tv_nsec = due % 1000000000ull };

				clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
			}
		}
		fd = openat(AT_FDCWD, target, O_RDONLY);
		if (fd >= 0)
			close(fd);
		else
			failed++;
		if (openat(AT_FDCWD, "/nonexistent/vigil-bench", O_RDONLY) >= 0)
			failed++;
		if (connect(sock, (struct sockaddr *)&sun, sizeof(sun)) == 0 || errno != ENOENT)
			failed++;
	}
	t1 = now_ns();

	getrusage(RUSAGE_SELF, &ru);
	printf("{\"iterations\":%llu,\"events\":%llu,\"failed\":%llu,\"start_ns\":%llu,\"end_ns\":%llu,\"elapsed_ns\":%llu,"
	       "\"utime_s\":%.6f,\"stime_s\":%.6f}\n",
	       i, i * EVENTS_PER_ITERATION, failed, t0, t1, t1 - t0, tv_s(ru.ru_utime), tv_s(ru.ru_stime));
	fflush(stdout);
	close(sock);
	return 0;
}
