// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * bench/pipeline C reference consumer: one line per event written to a file with stdio, the way a small C
 * tool (execsnoop, opensnoop) reports events. Per record it dispatches on the opcode, keeps a pid -> (comm,
 * ppid) table up to date from fork/exec/exit records (so lines name the process, like those tools do), and
 * fprintf's the record's main fields: type, time, pid, tid, ppid, comm and the event's own fields (exe and
 * argv of an exec, path, flags and result of a file syscall, addresses and ports of a socket call, ...).
 *
 * Two sources, the same per-record work:
 *   replay LOOPS_FILE PASSES WARM OUT   the passes of a recording (bench/pipeline/recording.ts framing); the
 *                                       first WARM passes are not timed. Prints one JSON line.
 *   ring PIN OUT GEN_TGID [BATCH_US]     a BPF ring buffer pinned at PIN, read with vigil's wakeup policy
 *                                       (sleep in epoll until woken, then drain every BATCH_US while records
 *                                       keep coming; default 1000). Prints {"ready":...}, then on SIGTERM
 *                                       drains the rest and prints its counts and CPU since ready.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench.h"
#include "../../bpf/include/events.h"

/* ---- the per-record work --------------------------------------------------------------------------------- */

#define PIDS 65536 /* open-addressing table of processes, a power of two */
#define GEN_MARK "vigil-bench" /* in every path the live generator's storm uses */

struct proc {
	__u32 pid;
	__u32 ppid;
	char comm[VIGIL_COMM_LEN];
};

struct consumer {
	FILE *out;
	struct proc procs[PIDS];
	unsigned long long records, lines, bad, gen;
	__u32 gen_tgid;
	unsigned long long last_ns;
};

static struct proc *proc_slot(struct consumer *c, __u32 pid, int create)
{
	__u32 i = (pid * 2654435761u) & (PIDS - 1);
	int n;

	for (n = 0; n < PIDS; n++, i = (i + 1) & (PIDS - 1)) {
		struct proc *p = &c->procs[i];

		if (p->pid == pid)
			return p;
		if (p->pid == 0) {
			if (!create)
				return NULL;
			p->pid = pid;
			return p;
		}
	}
	return NULL;
}

/* A NUL-terminated string within [s, s + n): never reads past n. */
static const char *str(const char *s, __u32 n, char *tmp, size_t tmpsz)
{
	if (n == 0)
		return "";
	if (memchr(s, 0, n))
		return s;
	n = n < tmpsz - 1 ? n : tmpsz - 1;
	memcpy(tmp, s, n);
	tmp[n] = 0;
	return tmp;
}

static const char *file_op(__u32 op)
{
	switch (op) {
	case VIGIL_SYS_OPEN: return "open";
	case VIGIL_SYS_UNLINK: return "unlink";
	case VIGIL_SYS_RMDIR: return "rmdir";
	case VIGIL_SYS_RENAME: return "rename";
	case VIGIL_SYS_CHMOD: return "chmod";
	case VIGIL_SYS_CHOWN: return "chown";
	case VIGIL_SYS_MKDIR: return "mkdir";
	default: return "file?";
	}
}

static const char *net_op(__u32 op)
{
	switch (op) {
	case VIGIL_SYS_CONNECT: return "connect";
	case VIGIL_SYS_ACCEPT: return "accept";
	case VIGIL_SYS_BIND: return "bind";
	case VIGIL_SYS_LISTEN: return "listen";
	case VIGIL_SYS_TCP_STATE: return "tcp_state";
	default: return "net?";
	}
}

static void addr(char *buf, size_t n, __u16 family, const __u8 *a, __u16 port)
{
	char ip[INET6_ADDRSTRLEN];

	if (family != 2 && family != 10) {
		snprintf(buf, n, "-");
		return;
	}
	inet_ntop(family == 2 ? AF_INET : AF_INET6, a, ip, sizeof(ip));
	snprintf(buf, n, "%s:%u", ip, port);
}

static void on_event(struct consumer *c, const void *data, size_t len)
{
	const struct event_header *h = data;
	const char *base = data;
	struct proc *p;
	char t1[4096], t2[4096];
	const char *comm;
	__u32 ppid;

	c->records++;
	if (len < sizeof(*h) || h->size > len) {
		c->bad++;
		return;
	}
	/* State first, like any consumer that names processes. */
	if (h->opcode == VIGIL_OP_FORK && len >= sizeof(struct fork_event)) {
		const struct fork_event *e = data;
		struct proc *parent = proc_slot(c, h->pid, 0);

		if (!(e->flags & VIGIL_PROC_THREAD) && (p = proc_slot(c, e->child_tgid, 1))) {
			p->ppid = e->child_ppid;
			memcpy(p->comm, parent ? parent->comm : e->comm, VIGIL_COMM_LEN);
		}
	} else if (h->opcode == VIGIL_OP_EXEC && len >= sizeof(struct exec_event)) {
		const struct exec_event *e = data;

		if ((p = proc_slot(c, h->pid, 1))) {
			p->ppid = e->ppid;
			memcpy(p->comm, e->comm, VIGIL_COMM_LEN);
		}
	}
	p = proc_slot(c, h->pid, 0);
	comm = p ? p->comm : "?";
	ppid = p ? p->ppid : 0;

#define COMMON "%s %llu pid=%u tid=%u ppid=%u comm=%.16s cgroup=%llu"
#define ARGS(type) type, (unsigned long long)h->ktime_ns, h->pid, h->tid, ppid, comm, (unsigned long long)h->cgroup_id
	switch (h->opcode) {
	case VIGIL_OP_EXEC: {
		const struct exec_event *e = data;
		const char *s = base + sizeof(*e);
		__u32 i, n;

		if (sizeof(*e) + e->exe_len + e->filename_len + e->argv_len + e->env_len > len)
			goto bad;
		/* argv: NUL-separated, printed space-separated */
		n = e->argv_len < sizeof(t2) - 1 ? e->argv_len : sizeof(t2) - 1;
		memcpy(t2, s + e->exe_len + e->filename_len, n);
		for (i = 0; i < n; i++)
			if (!t2[i])
				t2[i] = ' ';
		t2[n] = 0;
		fprintf(c->out, COMMON " uid=%u exe=%s argv=%s\n", ARGS("exec"), e->creds.uid, str(s, e->exe_len, t1, sizeof(t1)), t2);
		break;
	}
	case VIGIL_OP_FORK: {
		const struct fork_event *e = data;

		fprintf(c->out, COMMON " child=%u thread=%d\n", ARGS("fork"), e->child_tgid, !!(e->flags & VIGIL_PROC_THREAD));
		break;
	}
	case VIGIL_OP_EXIT: {
		const struct exit_event *e = data;

		if (len < sizeof(*e))
			goto bad;
		fprintf(c->out, COMMON " status=%u\n", ARGS("exit"), e->exit_code);
		break;
	}
	case VIGIL_OP_FILE: {
		const struct file_event *e = data;
		const char *s = base + sizeof(*e), *path;

		if (len < sizeof(*e) || sizeof(*e) + e->path_len + e->path2_len + e->resolved_len + e->resolved2_len > len)
			goto bad;
		path = str(s, e->path_len, t1, sizeof(t1));
		fprintf(c->out, COMMON " ret=%lld flags=0x%x path=%s resolved=%s\n", ARGS(file_op(e->op)), (long long)e->ret, e->flags, path,
			str(s + e->path_len + e->path2_len, e->resolved_len, t2, sizeof(t2)));
		/* The generator's storm events (not its start-up opens): their paths name the bench. */
		if (h->pid == c->gen_tgid && strstr(path, GEN_MARK))
			c->gen++;
		break;
	}
	case VIGIL_OP_NET: {
		const struct net_event *e = data;

		if (len < sizeof(*e))
			goto bad;
		addr(t1, sizeof(t1), e->family, e->laddr, e->lport);
		addr(t2, sizeof(t2), e->family, e->raddr, e->rport);
		if (e->family == 1) {
			/* unix socket: the path, printed as remote for connect, local otherwise */
			snprintf(e->op == VIGIL_SYS_CONNECT ? t2 : t1, 256, "%.*s", (int)(e->unix_path_len < sizeof(e->unix_path) ? e->unix_path_len : sizeof(e->unix_path)), e->unix_path);
			if (h->pid == c->gen_tgid && memmem(e->unix_path, sizeof(e->unix_path), GEN_MARK, strlen(GEN_MARK)))
				c->gen++;
		}
		fprintf(c->out, COMMON " ret=%lld family=%u local=%s remote=%s\n", ARGS(net_op(e->op)), (long long)e->ret, e->family, t1, t2);
		break;
	}
	case VIGIL_OP_SYS: {
		const struct sys_event *e = data;

		if (len < sizeof(*e))
			goto bad;
		fprintf(c->out, COMMON " op=%u ret=%lld arg0=%llu\n", ARGS("sys"), e->op, (long long)e->ret, (unsigned long long)e->args[0]);
		break;
	}
	case VIGIL_OP_CGROUP: {
		const struct cgroup_event *e = data;

		if (len < sizeof(*e))
			goto bad;
		fprintf(c->out, COMMON " op=%u id=%llu path=%s\n", ARGS("cgroup"), e->op, (unsigned long long)e->id, str(e->path, sizeof(e->path), t1, sizeof(t1)));
		break;
	}
	case VIGIL_OP_CREDS: {
		const struct creds_event *e = data;

		if (len < sizeof(*e))
			goto bad;
		fprintf(c->out, COMMON " uid=%u euid=%u\n", ARGS("creds"), e->creds.uid, e->creds.euid);
		break;
	}
	case VIGIL_OP_COMM: {
		const struct comm_event *e = data;

		if (len < sizeof(*e))
			goto bad;
		if (p)
			memcpy(p->comm, e->comm, VIGIL_COMM_LEN);
		fprintf(c->out, COMMON " new=%.16s\n", ARGS("comm"), e->comm);
		break;
	}
	default:
		goto bad;
	}
	c->lines++;
	return;
bad:
	c->bad++;
}

/* ---- helpers ------------------------------------------------------------------------------------------------ */

static FILE *open_out(const char *path)
{
	FILE *f = fopen(path, "w");

	/* A 1 MiB stdio buffer: one write(2) per MiB, like the file sink's batches. */
	if (f)
		setvbuf(f, NULL, _IOFBF, 1 << 20);
	else
		fprintf(stderr, "open %s: %s\n", path, strerror(errno));
	return f;
}

static int usage(const char *argv0)
{
	fprintf(stderr, "usage: %s replay LOOPS_FILE PASSES WARM OUT\n       %s ring PIN OUT GEN_TGID [BATCH_US]\n", argv0, argv0);
	return 2;
}

/* ---- replay ------------------------------------------------------------------------------------------------- */

static void replay_range(struct consumer *c, const char *buf, size_t from, size_t to)
{
	size_t p = from;

	while (p + 8 <= to) {
		__u32 len = *(const __u32 *)(buf + p);

		on_event(c, buf + p + 8, len);
		p += 8 + ((len + 7) & ~7u);
	}
}

static int replay(int argc, char **argv)
{
	static struct consumer c;
	struct rusage r0, r1;
	unsigned long long t0, t1, rec0, lines0;
	struct stat st;
	size_t pass_bytes;
	long passes, warm;
	char *buf;
	int fd;

	if (argc != 6)
		return usage(argv[0]);
	passes = atol(argv[3]);
	warm = atol(argv[4]);
	fd = open(argv[2], O_RDONLY);
	if (fd < 0 || fstat(fd, &st)) {
		fprintf(stderr, "open %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	if (passes < 1 || warm < 0 || warm >= passes || st.st_size % passes) {
		fprintf(stderr, "%s: %lld bytes is not %ld equal passes (warm %ld)\n", argv[2], (long long)st.st_size, passes, warm);
		return 1;
	}
	/* Read into memory first, as the TypeScript replay does: the ring is memory, not a file. */
	buf = malloc(st.st_size);
	for (off_t got = 0; got < st.st_size;) {
		ssize_t n = read(fd, buf + got, st.st_size - got);

		if (n <= 0) {
			fprintf(stderr, "read %s: %s\n", argv[2], n ? strerror(errno) : "short file");
			return 1;
		}
		got += n;
	}
	close(fd);
	pass_bytes = st.st_size / passes;
	c.gen_tgid = 0;
	c.out = open_out(argv[5]);
	if (!c.out)
		return 1;
	replay_range(&c, buf, 0, warm * pass_bytes);
	fflush(c.out);
	prewarm_pages(argv[5]);
	rec0 = c.records;
	lines0 = c.lines;

	getrusage(RUSAGE_SELF, &r0);
	t0 = now_ns();
	replay_range(&c, buf, warm * pass_bytes, st.st_size);
	fflush(c.out);
	t1 = now_ns();
	getrusage(RUSAGE_SELF, &r1);
	fclose(c.out);
	printf("{\"records\":%llu,\"events\":%llu,\"bad\":%llu,\"wall_s\":%.6f,\"utime_s\":%.6f,\"stime_s\":%.6f}\n",
	       c.records - rec0, c.lines - lines0, c.bad, (t1 - t0) / 1e9, tv_s(r1.ru_utime) - tv_s(r0.ru_utime),
	       tv_s(r1.ru_stime) - tv_s(r0.ru_stime));
	free(buf);
	return 0;
}

/* ---- ring --------------------------------------------------------------------------------------------------- */

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

static int on_ring_record(void *ctx, void *data, size_t len)
{
	struct consumer *c = ctx;

	on_event(c, data, len);
	/* A clock read per record would be a cost vigil's consumer does not pay: stamp every 1024th. */
	if ((c->records & 1023) == 0)
		c->last_ns = now_ns();
	return 0;
}

static int ring(int argc, char **argv)
{
	static struct consumer c;
	struct sigaction sa = { .sa_handler = on_term };
	struct ring_buffer *rb = NULL;
	struct rusage r0, r1;
	unsigned long long polls = 0, drains = 0;
	long batch_us = 1000;
	int fd, err, ret = 1;

	if (argc != 5 && argc != 6)
		return usage(argv[0]);
	c.gen_tgid = strtoul(argv[4], NULL, 10);
	if (argc == 6)
		batch_us = atol(argv[5]);
	/* No SA_RESTART: SIGTERM must interrupt epoll_wait. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fd = bpf_obj_get(argv[2]);
	if (fd < 0) {
		fprintf(stderr, "open pinned ring %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	c.out = open_out(argv[3]);
	if (!c.out)
		return 1;
	rb = ring_buffer__new(fd, on_ring_record, &c, NULL);
	if (!rb) {
		fprintf(stderr, "ring_buffer__new: %s\n", strerror(errno));
		goto out;
	}
	prewarm_pages(argv[3]);
	getrusage(RUSAGE_SELF, &r0);
	printf("{\"ready\":true,\"pid\":%d}\n", getpid());
	fflush(stdout);
	while (!stopping) {
		/* RingBufReader's policy: one wakeup, then drain on a timer while records keep coming. */
		struct timespec delay = { .tv_sec = batch_us / 1000000, .tv_nsec = (batch_us % 1000000) * 1000 };
		struct epoll_event ev;

		err = epoll_wait(ring_buffer__epoll_fd(rb), &ev, 1, -1);
		if (err < 0 && errno != EINTR) {
			fprintf(stderr, "epoll_wait: %s\n", strerror(errno));
			goto out;
		}
		if (err <= 0)
			continue;
		polls++;
		do {
			nanosleep(&delay, NULL);
			err = ring_buffer__consume(rb);
			drains++;
		} while (err > 0 && !stopping);
		if (err < 0) {
			fprintf(stderr, "ring_buffer__consume: %s\n", strerror(-err));
			goto out;
		}
	}
	/* The generator has exited: take what is left, and write it out. */
	while ((err = ring_buffer__consume(rb)) > 0)
		;
	fflush(c.out);
	getrusage(RUSAGE_SELF, &r1);
	printf("{\"records\":%llu,\"events\":%llu,\"bad\":%llu,\"gen\":%llu,\"last_ns\":%llu,\"done_ns\":%llu,\"polls\":%llu,"
	       "\"drains\":%llu,\"utime_s\":%.6f,\"stime_s\":%.6f}\n",
	       c.records, c.lines, c.bad, c.gen, c.last_ns, now_ns(), polls, drains, tv_s(r1.ru_utime) - tv_s(r0.ru_utime),
	       tv_s(r1.ru_stime) - tv_s(r0.ru_stime));
	fflush(stdout);
	ret = 0;
out:
	ring_buffer__free(rb);
	if (c.out)
		fclose(c.out);
	close(fd);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "replay"))
		return replay(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "ring"))
		return ring(argc, argv);
	return usage(argv[0]);
}
