// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * bench/exec workload: N fork + execve + waitpid, sequentially or split over K parallel workers. Every child
 * execs /bin/true with a recognisable argv, "true vigil-storm <run> <i>", i = 0..N-1 across all workers, so a
 * consumer's output can be checked exec by exec. Prints its pid first and waits for a line on stdin (so the
 * consumers can attach to a known workload first), then prints one JSON line with what it did and exits.
 *
 * usage: exec_storm N K RUN    (K = 1: the loop runs in this process; K > 1: K worker processes)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

static const char *TRUE_BIN = "/bin/true";

/*
 * The child execs with its path and argv in memory it has just written, as a shell's child does. This
 * matters to tracers that read them at sys_enter_execve (execsnoop): string literals sit in .rodata pages
 * whose page-table entries fork does not copy, a BPF probe read cannot fault them in, and such an exec is
 * reported with no filename and no arguments. vigil reads argv from the new image at sched_process_exec and
 * is not affected either way.
 */
static void child_exec(const char *run, const char *idx)
{
	char path[32], a0[8], a1[16], a2[32], a3[24];
	char *args[5] = { a0, a1, a2, a3, NULL };

	snprintf(path, sizeof(path), "%s", TRUE_BIN);
	snprintf(a0, sizeof(a0), "true");
	snprintf(a1, sizeof(a1), "vigil-storm");
	snprintf(a2, sizeof(a2), "%s", run);
	snprintf(a3, sizeof(a3), "%s", idx);
	execve(path, args, environ);
	_exit(127);
}

/* Runs execs i = first, first + step, ... < n. Returns how many failed (fork, exec or a non-zero status). */
static unsigned long run_share(unsigned long n, unsigned long first, unsigned long step, const char *run)
{
	unsigned long i, failed = 0;
	char idx[24];
	int status;
	pid_t pid;

	for (i = first; i < n; i += step) {
		/* The index is formatted before fork, so the child only copies it. */
		snprintf(idx, sizeof(idx), "%lu", i);
		pid = fork();
		if (pid < 0) {
			failed++;
			continue;
		}
		if (pid == 0)
			child_exec(run, idx);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	return failed;
}

int main(int argc, char **argv)
{
	unsigned long n, k, w, failed = 0;
	unsigned long long t0, t1;
	struct rusage self, kids;
	pid_t workers[64];
	char line[64];
	int status;

	if (argc < 4) {
		fprintf(stderr, "usage: %s N K RUN\n", argv[0]);
		return 2;
	}
	n = strtoul(argv[1], NULL, 10);
	k = strtoul(argv[2], NULL, 10);
	if (k < 1 || k > 64) {
		fprintf(stderr, "K must be between 1 and 64\n");
		return 2;
	}
	if (access(TRUE_BIN, X_OK)) {
		perror(TRUE_BIN);
		return 1;
	}
	printf("{\"ready\":true,\"pid\":%d}\n", getpid());
	fflush(stdout);
	/* EOF instead of a line means "abort". */
	if (!fgets(line, sizeof(line), stdin))
		return 3;

	t0 = now_ns();
	if (k == 1) {
		failed = run_share(n, 0, 1, argv[3]);
	} else {
		for (w = 0; w < k; w++) {
			workers[w] = fork();
			if (workers[w] < 0) {
				perror("fork worker");
				return 1;
			}
			if (workers[w] == 0) {
				/* A worker must not outlive the storm if it is killed. */
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				failed = run_share(n, w, k, argv[3]);
				_exit(failed > 250 ? 250 : (int)failed);
			}
		}
		for (w = 0; w < k; w++) {
			while (waitpid(workers[w], &status, 0) < 0 && errno == EINTR)
				;
			/* A worker reports its failures (capped) as its exit status. */
			if (!WIFEXITED(status))
				failed += n / k;
			else
				failed += WEXITSTATUS(status);
		}
	}
	t1 = now_ns();

	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	printf("{\"execs\":%lu,\"workers\":%lu,\"failed\":%lu,\"start_ns\":%llu,\"end_ns\":%llu,\"elapsed_ns\":%llu,"
	       "\"rate\":%.1f,\"cpu_s\":%.6f}\n",
	       n, k, failed, t0, t1, t1 - t0, n / ((t1 - t0) / 1e9),
	       tv_s(self.ru_utime) + tv_s(self.ru_stime) + tv_s(kids.ru_utime) + tv_s(kids.ru_stime));
	fflush(stdout);
	return 0;
}
