// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * bench/gate workload for the deny rules' cgroup hooks: waits for a line on stdin, then makes N calls of one
 * kind on a UDP socket as fast as it can, prints what it did as one JSON line (wall time, calls that failed),
 * and exits:
 *   sendto    a one-byte datagram to a loopback socket of its own, with the address (cgroup/sendmsg4 runs)
 *   connect   connect() of the UDP socket to that address, again and again (cgroup/connect4 runs)
 *   unix      connect() of a unix stream socket to a path nobody listens on, again and again: each fails
 *             with ENOENT after cgroup/connect_unix ran (failures are not counted in this mode)
 *   unixdgram a one-byte unix datagram sent to that path with sendto(): each fails with ENOENT after
 *             cgroup/sendmsg_unix ran (failures are not counted in this mode either)
 * The receiving socket is never read: once its buffer is full the kernel drops what arrives, as sendto
 * succeeds, so no ICMP error is made and no receive is timed.
 *
 * usage: udp_storm N sendto|connect|unix|unixdgram [cpu]    (cpu: pin to that CPU first, -1: no pinning)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench.h"

int main(int argc, char **argv)
{
	unsigned long long n, i, t0, t1, failed = 0;
	struct sockaddr_in to = { .sin_family = AF_INET };
	struct sockaddr_un nowhere = { .sun_family = AF_UNIX, .sun_path = "/run/vigil-bench-nowhere.sock" };
	socklen_t len = sizeof(to);
	int rx, tx, ux, ud, cpu = -1, first_errno = 0, send_mode, unix_mode, unix_dgram_mode;
	char line[64], byte = 'x';

	if (argc < 3 || (strcmp(argv[2], "sendto") && strcmp(argv[2], "connect") && strcmp(argv[2], "unix") && strcmp(argv[2], "unixdgram"))) {
		fprintf(stderr, "usage: %s N sendto|connect|unix|unixdgram [cpu]\n", argv[0]);
		return 2;
	}
	n = strtoull(argv[1], NULL, 10);
	send_mode = !strcmp(argv[2], "sendto");
	unix_mode = !strcmp(argv[2], "unix");
	unix_dgram_mode = !strcmp(argv[2], "unixdgram");
	if (argc > 3)
		cpu = atoi(argv[3]);
	if (pin_cpu(cpu))
		return 1;
	rx = socket(AF_INET, SOCK_DGRAM, 0);
	tx = socket(AF_INET, SOCK_DGRAM, 0);
	ux = socket(AF_UNIX, SOCK_STREAM, 0);
	ud = socket(AF_UNIX, SOCK_DGRAM, 0);
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (rx < 0 || tx < 0 || ux < 0 || ud < 0 || bind(rx, (struct sockaddr *)&to, sizeof(to)) || getsockname(rx, (struct sockaddr *)&to, &len)) {
		perror("udp_storm: socket");
		return 1;
	}
	printf("{\"ready\":true,\"pid\":%d}\n", getpid());
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 3; /* EOF: the loader gave up */

	t0 = now_ns();
	for (i = 0; i < n; i++) {
		int r = send_mode   ? (int)sendto(tx, &byte, 1, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to))
			: unix_mode ? (connect(ux, (struct sockaddr *)&nowhere, sizeof(nowhere)), 0)
			: unix_dgram_mode ? ((void)sendto(ud, &byte, 1, MSG_DONTWAIT, (struct sockaddr *)&nowhere, sizeof(nowhere)), 0)
				    : connect(tx, (struct sockaddr *)&to, sizeof(to));

		if (r < 0 && !failed++)
			first_errno = errno;
	}
	t1 = now_ns();
	printf("{\"calls\":%llu,\"failed\":%llu,\"first_errno\":%d,\"elapsed_ns\":%llu}\n", n, failed, first_errno, t1 - t0);
	fflush(stdout);
	return 0;
}
