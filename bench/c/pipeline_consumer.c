// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * bench/pipeline C reference consumer: one line per event written to a file with stdio, the way a small C
 * tool (execsnoop, opensnoop) reports events. Per record it dispatches on the opcode, keeps a pid -> (comm,
 * ppid) table up to date from fork/exec/exit records (so lines name the process, like those tools do), and
 * fprintf's the record's main fields: type, time, pid, tid, ppid, comm and the event's own fields (exe and
 * argv of an exec, path, flags and result of a file syscall, addresses and ports of a socket call, ...).
 *
 * With -j, it writes what vigil writes instead, by hand the way a careful C programmer would: a JSON line per
 * event with the process (pid, ppid, comm, exe, argv, uid, gid), its parent (pid, comm, exe, argv) and its
 * ancestry, kept per pid from fork/exec records and rendered once per process, then the event's own fields.
 * It names the process as vigil does (key, execId, start, user), the syscall and open flags by name, and
 * learns the processes that existed before the recording from a snapshot file (-j SNAPSHOT, which
 * bench/pipeline writes from the recording's /proc snapshot; "-": none). That is the like-for-like baseline
 * for vigil's enriched line (bench/pipeline reports both); it leaves out what vigil does besides (reordering,
 * scrubbing, containers, credential changes, UTF-8 checks).
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
#include <pwd.h>
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
	/* -j only: the image as JSON ("exe" and "argv" members, escaped), and the process's rendered parts */
	char *image;
	__u32 uid, gid;
	__u64 start_ns;
	__u64 exec_ns;   /* the exec's ktime; 0: inherited at fork; ~0: from the snapshot */
	char *memo;
	size_t memo_len;
};

/* A growable line buffer (-j). */
struct sbuf {
	char *p;
	size_t len, cap;
};

struct consumer {
	FILE *out;
	struct proc procs[PIDS];
	unsigned long long records, lines, bad, gen;
	__u32 gen_tgid;
	unsigned long long last_ns;
	int json;                   /* -j */
	struct sbuf line;
	long long boot_to_epoch_ns; /* wall clock = ktime (boot) + this */
	long long iso_sec;          /* the second iso holds */
	char iso[32];               /* "YYYY-MM-DDTHH:MM:SS." */
};

/* -j: the enriched JSON line (see the top of this file); the modes' own arguments follow as without it. */
static int json_mode;

static int consumer_init(struct consumer *c);
static void track_processes(struct consumer *c, const void *data, size_t len);

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

/* The line's type of a record (a file or socket call by its op), or NULL for one that cannot be read. */
static const char *record_type(const void *data, size_t len)
{
	const struct event_header *h = data;

	switch (h->opcode) {
	case VIGIL_OP_EXEC: return "exec";
	case VIGIL_OP_FORK: return "fork";
	case VIGIL_OP_EXIT: return "exit";
	case VIGIL_OP_FILE: return len >= sizeof(struct file_event) ? file_op(((const struct file_event *)data)->op) : NULL;
	case VIGIL_OP_NET: return len >= sizeof(struct net_event) ? net_op(((const struct net_event *)data)->op) : NULL;
	case VIGIL_OP_SYS: return "sys";
	case VIGIL_OP_CGROUP: return "cgroup";
	case VIGIL_OP_CREDS: return "creds";
	case VIGIL_OP_COMM: return "comm";
	default: return NULL;
	}
}

/* Whether an exec record's strings lie within its `len` bytes. */
static int exec_fits(const struct exec_event *e, size_t len)
{
	return len >= sizeof(*e) && sizeof(*e) + e->exe_len + e->filename_len + e->argv_len + e->env_len <= len;
}

/* Whether a file record's paths lie within its `len` bytes. */
static int file_fits(const struct file_event *e, size_t len)
{
	return len >= sizeof(*e) && sizeof(*e) + e->path_len + e->path2_len + e->resolved_len + e->resolved2_len <= len;
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
	const char *comm, *type;
	__u32 ppid;

	c->records++;
	if (len < sizeof(*h) || h->size > len) {
		c->bad++;
		return;
	}
	/* State first, like any consumer that names processes. */
	track_processes(c, data, len);
	if (!(type = record_type(data, len)))
		goto bad;
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

		if (!exec_fits(e, len))
			goto bad;
		/* argv: NUL-separated, printed space-separated */
		n = e->argv_len < sizeof(t2) - 1 ? e->argv_len : sizeof(t2) - 1;
		memcpy(t2, s + e->exe_len + e->filename_len, n);
		for (i = 0; i < n; i++)
			if (!t2[i])
				t2[i] = ' ';
		t2[n] = 0;
		fprintf(c->out, COMMON " uid=%u exe=%s argv=%s\n", ARGS(type), e->creds.uid, str(s, e->exe_len, t1, sizeof(t1)), t2);
		break;
	}
	case VIGIL_OP_FORK: {
		const struct fork_event *e = data;

		fprintf(c->out, COMMON " child=%u thread=%d\n", ARGS(type), e->child_tgid, !!(e->flags & VIGIL_PROC_THREAD));
		break;
	}
	case VIGIL_OP_EXIT: {
		const struct exit_event *e = data;

		if (len < sizeof(*e))
			goto bad;
		fprintf(c->out, COMMON " status=%u\n", ARGS(type), e->exit_code);
		break;
	}
	case VIGIL_OP_FILE: {
		const struct file_event *e = data;
		const char *s = base + sizeof(*e), *path;

		if (!file_fits(e, len))
			goto bad;
		path = str(s, e->path_len, t1, sizeof(t1));
		fprintf(c->out, COMMON " ret=%lld flags=0x%x path=%s resolved=%s\n", ARGS(type), (long long)e->ret, e->flags, path,
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
		fprintf(c->out, COMMON " ret=%lld family=%u local=%s remote=%s\n", ARGS(type), (long long)e->ret, e->family, t1, t2);
		break;
	}
	case VIGIL_OP_SYS: {
		const struct sys_event *e = data;

		if (len < sizeof(*e))
			goto bad;
		fprintf(c->out, COMMON " op=%u ret=%lld arg0=%llu\n", ARGS(type), e->op, (long long)e->ret, (unsigned long long)e->args[0]);
		break;
	}
	case VIGIL_OP_CGROUP: {
		const struct cgroup_event *e = data;

		if (len < sizeof(*e))
			goto bad;
		fprintf(c->out, COMMON " op=%u id=%llu path=%s\n", ARGS(type), e->op, (unsigned long long)e->id, str(e->path, sizeof(e->path), t1, sizeof(t1)));
		break;
	}
	case VIGIL_OP_CREDS: {
		const struct creds_event *e = data;

		if (len < sizeof(*e))
			goto bad;
		fprintf(c->out, COMMON " uid=%u euid=%u\n", ARGS(type), e->creds.uid, e->creds.euid);
		break;
	}
	case VIGIL_OP_COMM: {
		const struct comm_event *e = data;

		if (len < sizeof(*e))
			goto bad;
		fprintf(c->out, COMMON " new=%.16s\n", ARGS(type), e->comm);
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

/* ---- -j: vigil's enriched JSON line, by hand --------------------------------------------------------------- */

static void sb_need(struct sbuf *b, size_t n)
{
	if (b->len + n <= b->cap)
		return;
	while (b->len + n > b->cap)
		b->cap = b->cap ? b->cap * 2 : 1 << 16;
	b->p = realloc(b->p, b->cap);
	if (!b->p) {
		perror("realloc");
		exit(1);
	}
}

static inline void sb_raw(struct sbuf *b, const char *s, size_t n)
{
	sb_need(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

#define SB_LIT(b, lit) sb_raw(b, lit, sizeof(lit) - 1)
/* ,"key":<number> */
#define SB_U64_MEMBER(b, key, v) (SB_LIT(b, ",\"" key "\":"), sb_u64(b, v))
#define SB_I64_MEMBER(b, key, v) (SB_LIT(b, ",\"" key "\":"), sb_i64(b, v))

static inline void sb_u64(struct sbuf *b, unsigned long long v)
{
	char d[24];
	int i = sizeof(d);

	do {
		d[--i] = '0' + v % 10;
		v /= 10;
	} while (v);
	sb_raw(b, d + i, sizeof(d) - i);
}

static inline void sb_i64(struct sbuf *b, long long v)
{
	if (v < 0) {
		SB_LIT(b, "-");
		sb_u64(b, 0ull - (unsigned long long)v);
	} else
		sb_u64(b, v);
}

/* Bytes [s, s + n) up to a NUL as a JSON string: quote, backslash and control characters escaped. */
static void sb_str(struct sbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char *o;

	sb_need(b, n * 6 + 2);
	o = b->p + b->len;
	*o++ = '"';
	for (size_t i = 0; i < n && s[i]; i++) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = c;
		} else if (c < 0x20) {
			memcpy(o, "\\u00", 4);
			o[4] = hex[c >> 4];
			o[5] = hex[c & 15];
			o += 6;
		} else
			*o++ = c;
	}
	*o++ = '"';
	b->len = o - b->p;
}

/* "pid:ticks", the process's identity as vigil writes it (start time in clock ticks, what /proc gives). */
static void sb_key(struct sbuf *b, const struct proc *p)
{
	sb_u64(b, p->pid);
	SB_LIT(b, ":");
	sb_u64(b, p->start_ns / 10000000);
}

/* key:<exec ktime>, key:fork (an image inherited at fork) or key:snap (from the snapshot), as vigil's execId. */
static void sb_exec_id(struct sbuf *b, const struct proc *p)
{
	SB_LIT(b, "\"");
	sb_key(b, p);
	if (p->exec_ns == ~0ull)
		SB_LIT(b, ":snap\"");
	else if (!p->exec_ns)
		SB_LIT(b, ":fork\"");
	else {
		SB_LIT(b, ":");
		sb_u64(b, p->exec_ns);
		SB_LIT(b, "\"");
	}
}

/* A user's name, looked up once per uid seen last. */
static const char *user_name(__u32 uid)
{
	static __u32 last_uid = ~0u;
	static char name[64];
	struct passwd pw, *res = NULL;
	char tmp[1024];

	if (uid == last_uid)
		return name[0] ? name : NULL;
	last_uid = uid;
	name[0] = 0;
	if (!getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) && res)
		snprintf(name, sizeof(name), "%s", res->pw_name);
	return name[0] ? name : NULL;
}

/* x86-64 syscall names of the file and socket calls the sensor reports. */
static const char *syscall_name(int nr)
{
	switch (nr) {
	case 2: return "open";
	case 257: return "openat";
	case 437: return "openat2";
	case 85: return "creat";
	case 87: return "unlink";
	case 263: return "unlinkat";
	case 84: return "rmdir";
	case 82: return "rename";
	case 264: return "renameat";
	case 316: return "renameat2";
	case 90: return "chmod";
	case 91: return "fchmod";
	case 268: return "fchmodat";
	case 452: return "fchmodat2";
	case 92: return "chown";
	case 93: return "fchown";
	case 94: return "lchown";
	case 260: return "fchownat";
	case 83: return "mkdir";
	case 258: return "mkdirat";
	case 42: return "connect";
	case 43: return "accept";
	case 288: return "accept4";
	case 49: return "bind";
	case 50: return "listen";
	default: return NULL;
	}
}

/* open(2) flags by name, "O_RDONLY|O_CLOEXEC" as vigil writes them. */
static void sb_open_flags(struct sbuf *b, __u32 f)
{
	static const struct { __u32 bit; const char *name; } bits[] = {
		{ 0100, "O_CREAT" }, { 0200, "O_EXCL" }, { 0400, "O_NOCTTY" }, { 01000, "O_TRUNC" }, { 02000, "O_APPEND" },
		{ 04000, "O_NONBLOCK" }, { 010000, "O_DSYNC" }, { 020000, "O_ASYNC" }, { 040000, "O_DIRECT" },
		{ 0200000, "O_DIRECTORY" }, { 0400000, "O_NOFOLLOW" }, { 01000000, "O_NOATIME" }, { 02000000, "O_CLOEXEC" },
		{ 04000000, "__O_SYNC" }, { 010000000, "O_PATH" }, { 020000000, "__O_TMPFILE" },
	};
	static const char *acc[] = { "O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE" };

	SB_LIT(b, ",\"flagNames\":\"");
	sb_raw(b, acc[f & 3], strlen(acc[f & 3]));
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (f & bits[i].bit) {
			SB_LIT(b, "|");
			sb_raw(b, bits[i].name, strlen(bits[i].name));
		}
	SB_LIT(b, "\"");
}

/* ,"syscall":"<name>","nr":<nr> */
static void sb_syscall(struct sbuf *b, int nr)
{
	const char *name = syscall_name(nr);

	if (name) {
		SB_LIT(b, ",\"syscall\":\"");
		sb_raw(b, name, strlen(name));
		SB_LIT(b, "\"");
	}
	SB_I64_MEMBER(b, "nr", nr);
}

/* The process's image from an exec record: ,"exe":"…","argv":["…",…] */
static char *render_image(const struct exec_event *e, const char *s)
{
	struct sbuf b = { 0 };
	const char *a = s + e->exe_len + e->filename_len, *end = a + e->argv_len;

	SB_LIT(&b, ",\"exe\":");
	sb_str(&b, s, e->exe_len);
	SB_LIT(&b, ",\"argv\":[");
	for (const char *p = a; p < end;) {
		size_t n = strnlen(p, end - p);

		if (p != a)
			SB_LIT(&b, ",");
		sb_str(&b, p, n);
		p += n + 1;
	}
	SB_LIT(&b, "]");
	sb_need(&b, 1);
	b.p[b.len] = 0;
	return b.p;
}

static void forget_memo(struct proc *p)
{
	free(p->memo);
	p->memo = NULL;
}

/* ,"process":{…},"parent":{…},"ancestors":[…] of a process, rendered once (until it forks or execs). */
static const char *proc_memo(struct consumer *c, struct proc *p, size_t *len)
{
	struct sbuf b = { 0 };
	struct proc *pp = p->ppid ? proc_slot(c, p->ppid, 0) : NULL;
	const char *user;

	if (p->memo) {
		*len = p->memo_len;
		return p->memo;
	}
	SB_LIT(&b, ",\"process\":{\"pid\":");
	sb_u64(&b, p->pid);
	SB_U64_MEMBER(&b, "ppid", p->ppid);
	SB_LIT(&b, ",\"key\":\"");
	sb_key(&b, p);
	SB_LIT(&b, "\",\"execId\":");
	sb_exec_id(&b, p);
	SB_U64_MEMBER(&b, "startNs", p->start_ns);
	SB_LIT(&b, ",\"comm\":");
	sb_str(&b, p->comm, VIGIL_COMM_LEN);
	if (p->image)
		sb_raw(&b, p->image, strlen(p->image));
	SB_U64_MEMBER(&b, "uid", p->uid);
	SB_U64_MEMBER(&b, "gid", p->gid);
	if ((user = user_name(p->uid))) {
		SB_LIT(&b, ",\"user\":");
		sb_str(&b, user, strlen(user));
	}
	SB_LIT(&b, "}");
	if (pp) {
		SB_LIT(&b, ",\"parent\":{\"pid\":");
		sb_u64(&b, pp->pid);
		SB_LIT(&b, ",\"comm\":");
		sb_str(&b, pp->comm, VIGIL_COMM_LEN);
		if (pp->image)
			sb_raw(&b, pp->image, strlen(pp->image));
		SB_LIT(&b, ",\"execId\":");
		sb_exec_id(&b, pp);
		SB_LIT(&b, "}");
	}
	if (p->ppid) {
		/* up the ppid chain, as far as the table knows it (16 at most, as vigil reports) */
		SB_LIT(&b, ",\"ancestors\":[");
		sb_u64(&b, p->ppid);
		for (int n = 1; pp && pp->ppid && pp->ppid != pp->pid && n < 16; n++) {
			SB_LIT(&b, ",");
			sb_u64(&b, pp->ppid);
			pp = proc_slot(c, pp->ppid, 0);
		}
		SB_LIT(&b, "]");
	}
	p->memo = b.p;
	p->memo_len = b.len;
	*len = b.len;
	return b.p;
}

/* The pid table from fork, exec and comm records: ppid and comm, and with -j the image, ids and times. */
static void track_processes(struct consumer *c, const void *data, size_t len)
{
	const struct event_header *h = data;
	struct proc *p;

	if (h->opcode == VIGIL_OP_FORK && len >= sizeof(struct fork_event)) {
		const struct fork_event *e = data;
		struct proc *parent = proc_slot(c, h->pid, 0);

		if (!(e->flags & VIGIL_PROC_THREAD) && (p = proc_slot(c, e->child_tgid, 1))) {
			p->ppid = e->child_ppid;
			memcpy(p->comm, parent ? parent->comm : e->comm, VIGIL_COMM_LEN);
			if (!c->json)
				return;
			free(p->image);
			p->image = parent && parent->image ? strdup(parent->image) : NULL;
			p->uid = parent ? parent->uid : 0;
			p->gid = parent ? parent->gid : 0;
			p->start_ns = e->child_start_ns;
			p->exec_ns = 0;
			forget_memo(p);
		}
	} else if (h->opcode == VIGIL_OP_EXEC && len >= sizeof(struct exec_event)) {
		const struct exec_event *e = data;

		if (exec_fits(e, len) && (p = proc_slot(c, h->pid, 1))) {
			p->ppid = e->ppid;
			memcpy(p->comm, e->comm, VIGIL_COMM_LEN);
			if (!c->json)
				return;
			free(p->image);
			p->image = render_image(e, (const char *)data + sizeof(*e));
			p->uid = e->creds.uid;
			p->gid = e->creds.gid;
			p->start_ns = e->start_ns;
			p->exec_ns = h->ktime_ns;
			forget_memo(p);
		}
	} else if (h->opcode == VIGIL_OP_COMM && len >= sizeof(struct comm_event)) {
		const struct comm_event *e = data;

		if ((p = proc_slot(c, h->pid, 0))) {
			memcpy(p->comm, e->comm, VIGIL_COMM_LEN);
			forget_memo(p);
		}
	}
}

/* An address as "ip:port", or a unix socket's path. */
static void sb_addr(struct sbuf *b, const struct net_event *e, const __u8 *a, __u16 port, int is_unix_end)
{
	char ip[INET6_ADDRSTRLEN];

	if (e->family == 1) {
		sb_str(b, is_unix_end ? e->unix_path : "", is_unix_end ? (e->unix_path_len < sizeof(e->unix_path) ? e->unix_path_len : sizeof(e->unix_path)) : 0);
		return;
	}
	if (e->family != 2 && e->family != 10) {
		SB_LIT(b, "null");
		return;
	}
	inet_ntop(e->family == 2 ? AF_INET : AF_INET6, a, ip, sizeof(ip));
	SB_LIT(b, "\"");
	sb_raw(b, ip, strlen(ip));
	SB_LIT(b, ":");
	sb_u64(b, port);
	SB_LIT(b, "\"");
}

static void on_event_json(struct consumer *c, const void *data, size_t len)
{
	const struct event_header *h = data;
	const char *base = data, *type;
	struct sbuf *b = &c->line;
	struct proc *p;
	long long wall_ns, sec;
	size_t memo_len;
	const char *memo;

	c->records++;
	if (len < sizeof(*h) || h->size > len) {
		c->bad++;
		return;
	}
	track_processes(c, data, len);
	if (!(type = record_type(data, len))) {
		c->bad++;
		return;
	}
	b->len = 0;
	SB_LIT(b, "{\"type\":\"");
	sb_raw(b, type, strlen(type));
	SB_LIT(b, "\",\"time\":\"");
	wall_ns = c->boot_to_epoch_ns + (long long)h->ktime_ns;
	sec = wall_ns / 1000000000;
	if (sec != c->iso_sec) {
		time_t t = sec;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(c->iso, sizeof(c->iso), "%Y-%m-%dT%H:%M:%S.", &tm);
		c->iso_sec = sec;
	}
	sb_raw(b, c->iso, strlen(c->iso));
	{
		unsigned ms = (wall_ns / 1000000) % 1000;
		char d[3] = { '0' + ms / 100, '0' + ms / 10 % 10, '0' + ms % 10 };

		sb_raw(b, d, 3);
	}
	SB_LIT(b, "Z\",\"ktimeNs\":");
	sb_u64(b, h->ktime_ns);
	p = proc_slot(c, h->pid, 0);
	if (p) {
		memo = proc_memo(c, p, &memo_len);
		sb_raw(b, memo, memo_len);
	} else {
		SB_LIT(b, ",\"process\":{\"pid\":");
		sb_u64(b, h->pid);
		SB_LIT(b, ",\"unknown\":[\"process\"]}");
	}
	if (h->tid != h->pid) {
		SB_U64_MEMBER(b, "tid", h->tid);
	}
	switch (h->opcode) {
	case VIGIL_OP_EXEC: {
		const struct exec_event *e = data;

		if (!exec_fits(e, len))
			goto bad;
		SB_LIT(b, ",\"filename\":");
		sb_str(b, base + sizeof(*e) + e->exe_len, e->filename_len);
		SB_U64_MEMBER(b, "argc", e->argc);
		break;
	}
	case VIGIL_OP_FORK: {
		const struct fork_event *e = data;

		SB_LIT(b, ",\"child\":{\"pid\":");
		sb_u64(b, e->child_tgid);
		SB_U64_MEMBER(b, "tid", e->child_pid);
		SB_U64_MEMBER(b, "ppid", e->child_ppid);
		SB_LIT(b, "}");
		break;
	}
	case VIGIL_OP_EXIT: {
		const struct exit_event *e = data;

		if (len < sizeof(*e))
			goto bad;
		SB_U64_MEMBER(b, "status", e->exit_code);
		break;
	}
	case VIGIL_OP_FILE: {
		const struct file_event *e = data;
		const char *s = base + sizeof(*e);

		if (!file_fits(e, len))
			goto bad;
		SB_LIT(b, ",\"group\":\"file\"");
		sb_syscall(b, e->nr);
		SB_I64_MEMBER(b, "ret", e->ret);
		if (e->ret < 0) {
			const char *name = strerrorname_np(-e->ret);

			if (name) {
				SB_LIT(b, ",\"errno\":\"");
				sb_raw(b, name, strlen(name));
				SB_LIT(b, "\"");
			}
		}
		SB_LIT(b, ",\"path\":");
		sb_str(b, s, e->path_len);
		if (e->path2_len) {
			SB_LIT(b, ",\"newPath\":");
			sb_str(b, s + e->path_len, e->path2_len);
		}
		if (e->resolved_len) {
			SB_LIT(b, ",\"resolved\":");
			sb_str(b, s + e->path_len + e->path2_len, e->resolved_len);
		}
		SB_I64_MEMBER(b, "dfd", e->dfd);
		SB_U64_MEMBER(b, "flags", e->flags);
		if (e->op == VIGIL_SYS_OPEN)
			sb_open_flags(b, e->flags);
		if (h->pid == c->gen_tgid && memmem(s, e->path_len, GEN_MARK, strlen(GEN_MARK)))
			c->gen++;
		break;
	}
	case VIGIL_OP_NET: {
		const struct net_event *e = data;

		SB_LIT(b, ",\"group\":\"network\"");
		sb_syscall(b, e->nr);
		SB_I64_MEMBER(b, "ret", e->ret);
		SB_I64_MEMBER(b, "fd", e->fd);
		SB_U64_MEMBER(b, "family", e->family);
		SB_LIT(b, ",\"local\":");
		sb_addr(b, e, e->laddr, e->lport, e->op != VIGIL_SYS_CONNECT);
		SB_LIT(b, ",\"remote\":");
		sb_addr(b, e, e->raddr, e->rport, e->op == VIGIL_SYS_CONNECT);
		if (e->family == 1 && h->pid == c->gen_tgid && memmem(e->unix_path, sizeof(e->unix_path), GEN_MARK, strlen(GEN_MARK)))
			c->gen++;
		break;
	}
	case VIGIL_OP_SYS: {
		const struct sys_event *e = data;

		if (len < sizeof(*e))
			goto bad;
		SB_U64_MEMBER(b, "op", e->op);
		SB_I64_MEMBER(b, "ret", e->ret);
		break;
	}
	default:
		break;
	}
	SB_LIT(b, "}\n");
	fwrite_unlocked(b->p, 1, b->len, c->out);
	c->lines++;
	return;
bad:
	c->bad++;
}

static void consume(struct consumer *c, const void *data, size_t len)
{
	if (c->json)
		on_event_json(c, data, len);
	else
		on_event(c, data, len);
}

/* Boot time to wall clock, as vigil's clock.ts calibrates it. */
static long long boot_to_epoch_ns(void)
{
	struct timespec rt, bt;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_BOOTTIME, &bt);
	return (rt.tv_sec - bt.tv_sec) * 1000000000ll + (rt.tv_nsec - bt.tv_nsec);
}

/*
 * -j's snapshot file, from bench/pipeline: "pid ppid uid gid startNs comm image" per line, tab-separated
 * (image: ,"exe":…,"argv":[…] or empty).
 */
static const char *snapshot_path;

static int load_snapshot(struct consumer *c, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f) {
		fprintf(stderr, "open %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		unsigned pid, ppid, uid, gid;
		unsigned long long start;
		int off = 0;
		char *comm, *image, *tab;
		struct proc *p;

		if (line[n - 1] == '\n')
			line[n - 1] = 0;
		if (sscanf(line, "%u\t%u\t%u\t%u\t%llu\t%n", &pid, &ppid, &uid, &gid, &start, &off) != 5 || !off)
			goto bad;
		comm = line + off;
		if (!(tab = strchr(comm, '\t')))
			goto bad;
		*tab = 0;
		image = tab + 1;
		if (!(p = proc_slot(c, pid, 1)))
			continue;
		p->ppid = ppid;
		p->uid = uid;
		p->gid = gid;
		p->start_ns = start;
		p->exec_ns = ~0ull;
		memset(p->comm, 0, VIGIL_COMM_LEN);
		memcpy(p->comm, comm, strnlen(comm, VIGIL_COMM_LEN)); /* as the kernel keeps it: NUL-terminated unless 16 long */
		p->image = *image ? strdup(image) : NULL;
	}
	free(line);
	fclose(f);
	return 0;
bad:
	fprintf(stderr, "%s: cannot read \"%s\"\n", path, line);
	free(line);
	fclose(f);
	return -1;
}

static int consumer_init(struct consumer *c)
{
	c->json = json_mode;
	c->boot_to_epoch_ns = boot_to_epoch_ns();
	c->iso_sec = -1;
	return json_mode && snapshot_path && strcmp(snapshot_path, "-") ? load_snapshot(c, snapshot_path) : 0;
}

/* ---- helpers ------------------------------------------------------------------------------------------------ */

static FILE *open_out(const char *path)
{
	FILE *f = fopen(path, "w");

	/*
	 * A 1 MiB stdio buffer: one write(2) per MiB, like the file sink's batches. The buffer must be given:
	 * glibc's setvbuf takes no size without one and keeps st_blksize (4 KiB here: a write per 4 KiB).
	 */
	static char buf[1 << 20];

	if (f)
		setvbuf(f, buf, _IOFBF, sizeof(buf));
	else
		fprintf(stderr, "open %s: %s\n", path, strerror(errno));
	return f;
}

static int usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-j SNAPSHOT|-] replay LOOPS_FILE PASSES WARM OUT\n       %s [-j SNAPSHOT|-] ring PIN OUT GEN_TGID [BATCH_US]\n", argv0, argv0);
	return 2;
}

/* ---- replay ------------------------------------------------------------------------------------------------- */

static void replay_range(struct consumer *c, const char *buf, size_t from, size_t to)
{
	size_t p = from;

	while (p + 8 <= to) {
		__u32 len = *(const __u32 *)(buf + p);

		consume(c, buf + p + 8, len);
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
	if (consumer_init(&c))
		return 1;
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

	consume(c, data, len);
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
	if (consumer_init(&c))
		return 1;
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
	char *argv0 = argv[0];

	if (argc >= 3 && !strcmp(argv[1], "-j")) {
		json_mode = 1;
		snapshot_path = argv[2];
		argv += 2;
		argc -= 2;
		argv[0] = argv0;
	}
	if (argc >= 2 && !strcmp(argv[1], "replay"))
		return replay(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "ring"))
		return ring(argc, argv);
	return usage(argv0);
}
