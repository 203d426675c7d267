// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * bench/exec memory workload: forks N children that block reading a pipe, so that N processes are alive while
 * the agent snapshots /proc. Prints {"pid":…,"children":N} once all are forked, then waits for a line on
 * stdin (or EOF), closes the pipe (every child reads EOF and exits), reaps them all and prints a last line.
 * If this process is killed instead, the children still go: the pipe's write end closes with it, and each
 * child also has PR_SET_PDEATHSIG.
 *
 * usage: proc_herd N
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned long n, i, forked = 0, reaped = 0;
	char line[64], c;
	int fds[2];
	pid_t pid;

	if (argc < 2) {
		fprintf(stderr, "usage: %s N\n", argv[0]);
		return 2;
	}
	n = strtoul(argv[1], NULL, 10);
	if (pipe(fds)) {
		perror("pipe");
		return 1;
	}
	for (i = 0; i < n; i++) {
		pid = fork();
		if (pid < 0) {
			perror("fork");
			break;
		}
		if (pid == 0) {
			/* Child: keep only the read end, and block on it until the herd is released. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(fds[1]);
			while (read(fds[0], &c, 1) < 0 && errno == EINTR)
				;
			_exit(0);
		}
		forked++;
	}
	printf("{\"pid\":%d,\"children\":%lu}\n", getpid(), forked);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin)) {
		/* EOF: release the herd all the same. */
	}
	close(fds[1]);
	while (reaped < forked) {
		if (wait(NULL) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		reaped++;
	}
	printf("{\"reaped\":%lu}\n", reaped);
	fflush(stdout);
	return forked == n ? 0 : 1;
}
