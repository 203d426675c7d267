// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * bench/storm workload: waits for a line on stdin (so that the loader can learn this pid and the consumer can
 * attach first), then makes N openat(AT_FDCWD, path, O_RDONLY) + close(fd) pairs as fast as it can, prints
 * what it did as one JSON line (wall time, and its own time on a CPU), and exits. Opens that fail are counted
 * (and reported), never retried.
 *
 * usage: open_storm N [cpu] [path]    (cpu: pin to that CPU first, -1: no pinning; path: /dev/null)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/*
 * This thread's time on a CPU (ns, from /proc/thread-self/schedstat, opened before "ready" so that the storm
 * makes no other open while consumers watch): unlike the wall time, it leaves out the time other processes
 * held the CPU, so it stays meaningful on a shared machine. 0 when unavailable.
 */
static unsigned long long oncpu_ns(int fd)
{
	char buf[128];
	ssize_t n = fd < 0 ? -1 : pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = 0;
	return strtoull(buf, NULL, 10);
}

int main(int argc, char **argv)
{
	unsigned long long n, i, t0, t1, c0, c1, failed = 0;
	const char *path = "/dev/null";
	int cpu = -1, first_errno = 0, sched_fd;
	struct rusage ru;
	char line[64];

	if (argc < 2) {
		fprintf(stderr, "usage: %s N [cpu] [path]\n", argv[0]);
		return 2;
	}
	n = strtoull(argv[1], NULL, 10);
	if (argc > 2)
		cpu = atoi(argv[2]);
	if (argc > 3)
		path = argv[3];
	if (pin_cpu(cpu))
		return 1;
	sched_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	printf("{\"ready\":true,\"pid\":%d}\n", getpid());
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 3; /* EOF: the loader gave up */

	c0 = oncpu_ns(sched_fd);
	t0 = now_ns();
	/* Raw syscalls: glibc's open() is openat() too, but this keeps exactly one openat and one close per pair. */
	for (i = 0; i < n; i++) {
		long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);

		if (fd < 0) {
			if (!failed++)
				first_errno = errno;
			continue;
		}
		syscall(SYS_close, fd);
	}
	t1 = now_ns();
	c1 = oncpu_ns(sched_fd);

	getrusage(RUSAGE_SELF, &ru);
	printf("{\"calls\":%llu,\"failed\":%llu,\"first_errno\":%d,\"start_ns\":%llu,\"end_ns\":%llu,\"elapsed_ns\":%llu,"
	       "\"oncpu_ns\":%llu,\"rate\":%.0f,\"utime_s\":%.6f,\"stime_s\":%.6f,\"nivcsw\":%ld}\n",
	       n, failed, first_errno, t0, t1, t1 - t0, c1 - c0, n / ((t1 - t0) / 1e9), tv_s(ru.ru_utime), tv_s(ru.ru_stime),
	       ru.ru_nivcsw);
	fflush(stdout);
	return 0;
}
