// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The process sensor: fork, exec and exit of every task, credential and comm changes, and vigil_procs, the
 * kernel-side mirror of the process cache. Each hook comes in the variants the manager's selectors choose
 * between (tp_btf where the kernel has BTF tracepoints, raw_tp otherwise); both share the same body.
 *
 * An exec record carries everything needed to identify the new image at the moment it starts (never read
 * later from /proc): path of the executed file (walked from its dentry), the filename as passed, argv and
 * envp up to configurable limits with truncation flags, creds, capabilities, tty, namespaces and cgroup.
 */
#include "vigil.h"
#include "path.h"
#include "match.h"

/* Limits, set by the loader before load. */
const volatile __u32 max_args_bytes = VIGIL_ARGS_CAP;
const volatile __u32 max_env_bytes = VIGIL_ENV_CAP;
const volatile __u32 emit_threads = 1;

#define EXEC_BUF_SZ (sizeof(struct exec_event) + 2 * VIGIL_PATH_MAX + VIGIL_ARGS_CAP + VIGIL_ENV_CAP)

/* Per-CPU exec buffer, too big for a per-CPU array (32 KiB limit): an array indexed by CPU id. The loader
 * sizes max_entries to the number of possible CPUs. */
struct exec_buf {
	__u8 data[EXEC_BUF_SZ];
};
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_buf);
} exec_heap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct proc_entry);
} vigil_procs SEC(".maps");

/*
 * In-kernel kill rules on execs (src/rules/kernel.ts), the set in force (proc_kill_config) and what they did,
 * per CPU (proc_kill_stats). Written by user space at any time.
 */
VIGIL_KILL_MAPS(proc_kill_rules, proc_kill_values, proc_kill_scopes);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_kill_set);
} proc_kill_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_PROC_KILL_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} proc_kill_stats SEC(".maps");

/* CO-RE flavors of struct inode's mtime across kernels. */
struct inode___v611 {
	time64_t i_mtime_sec;
	u32 i_mtime_nsec;
} __attribute__((preserve_access_index));
struct inode___v66 {
	struct timespec64 __i_mtime;
} __attribute__((preserve_access_index));
struct inode___old {
	struct timespec64 i_mtime;
} __attribute__((preserve_access_index));

static __always_inline void read_cred(const struct cred *cred, struct task_struct *task, struct proc_creds *c)
{
	c->uid = BPF_CORE_READ(cred, uid.val);
	c->gid = BPF_CORE_READ(cred, gid.val);
	c->euid = BPF_CORE_READ(cred, euid.val);
	c->egid = BPF_CORE_READ(cred, egid.val);
	c->suid = BPF_CORE_READ(cred, suid.val);
	c->sgid = BPF_CORE_READ(cred, sgid.val);
	c->fsuid = BPF_CORE_READ(cred, fsuid.val);
	c->fsgid = BPF_CORE_READ(cred, fsgid.val);
	/* kernel_cap_t is a u64 since 6.3 and two u32 before: 8 bytes either way. */
	bpf_core_read(&c->cap_effective, sizeof(__u64), &cred->cap_effective);
	bpf_core_read(&c->cap_permitted, sizeof(__u64), &cred->cap_permitted);
	bpf_core_read(&c->cap_inheritable, sizeof(__u64), &cred->cap_inheritable);
	if (bpf_core_field_exists(task->loginuid))
		c->loginuid = BPF_CORE_READ(task, loginuid.val);
	else
		c->loginuid = 0xffffffff;
	c->_pad0 = 0;
}

/* Compares two proc_creds (64 bytes, 8-aligned) word by word: BPF has no memcmp. */
static __always_inline int creds_equal(const struct proc_creds *a, const struct proc_creds *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*a) / 8); i++)
		if (x[i] != y[i])
			return 0;
	return 1;
}

static __always_inline void read_creds(struct task_struct *task, struct proc_creds *c)
{
	read_cred(BPF_CORE_READ(task, cred), task, c);
}

static __always_inline void read_ns(struct task_struct *task, struct proc_ns *ns)
{
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);
	struct pid *tp = BPF_CORE_READ(leader, thread_pid);
	unsigned int level = BPF_CORE_READ(tp, level);
	struct upid up = {};

	/* The thread group's pid as its own pid namespace numbers it: numbers[level]. */
	bpf_core_read(&up, sizeof(up), &tp->numbers[level & 31]);
	ns->nspid = up.nr;
	ns->pidns = BPF_CORE_READ(up.ns, ns.inum);
	ns->mntns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	/* The cgroup of `current`: every hook here runs in the task's own context (or its parent's for fork,
	 * whose child starts in the parent's cgroup). */
	ns->cgroup_id = vigil_cgroup_id();
	ns->_pad0 = 0;
}

/*
 * The start time of the process `task` belongs to: its group leader's. A parent or a forking task is often a
 * thread (Go runtimes fork from any thread; so do containerd-shim, dockerd and kubelet), and a thread's own
 * start time would name a process that does not exist, breaking its children's lineage.
 */
static __always_inline __u64 task_start(struct task_struct *task)
{
	return BPF_CORE_READ(task, group_leader, start_boottime);
}

static __always_inline void read_tty(struct task_struct *task, char *out)
{
	struct tty_struct *tty = BPF_CORE_READ(task, signal, tty);

	if (!tty) {
		out[0] = 0;
		return;
	}
	bpf_probe_read_kernel_str(out, VIGIL_TTY_LEN, &tty->name);
}

#define OVERLAYFS_SUPER_MAGIC_ 0x794c7630

/*
 * Whether an executed file is on an overlay file system with a copy in its upper layer (a container's own
 * writes, not its image's files): the overlay inode's upper dentry. Kernels without overlayfs in their BTF
 * leave the read out at load.
 */
static __always_inline int exe_in_upper_layer(struct inode *inode)
{
	struct ovl_inode *oi;

	if (!bpf_core_type_exists(struct ovl_inode) || BPF_CORE_READ(inode, i_sb, s_magic) != OVERLAYFS_SUPER_MAGIC_)
		return 0;
	oi = (struct ovl_inode *)((void *)inode - bpf_core_field_offset(struct ovl_inode, vfs_inode));
	return BPF_CORE_READ(oi, __upperdentry) != 0;
}

static __always_inline void read_mtime(struct inode *inode, struct exec_event *e)
{
	if (bpf_core_field_exists(((struct inode___v611 *)inode)->i_mtime_sec)) {
		e->exe_mtime_sec = BPF_CORE_READ((struct inode___v611 *)inode, i_mtime_sec);
		e->exe_mtime_nsec = BPF_CORE_READ((struct inode___v611 *)inode, i_mtime_nsec);
	} else if (bpf_core_field_exists(((struct inode___v66 *)inode)->__i_mtime)) {
		e->exe_mtime_sec = BPF_CORE_READ((struct inode___v66 *)inode, __i_mtime.tv_sec);
		e->exe_mtime_nsec = BPF_CORE_READ((struct inode___v66 *)inode, __i_mtime.tv_nsec);
	} else {
		e->exe_mtime_sec = BPF_CORE_READ((struct inode___old *)inode, i_mtime.tv_sec);
		e->exe_mtime_nsec = BPF_CORE_READ((struct inode___old *)inode, i_mtime.tv_nsec);
	}
}

/* Copies the user range [start, end) (argv or envp) to dst, at most max bytes; counts NULs into *count. */
static __always_inline __u32 read_user_range(void *dst, unsigned long start, unsigned long end, __u32 max,
					     __u32 cap, __u32 *flags, __u32 trunc_flag)
{
	unsigned long want = end > start ? end - start : 0;
	__u32 len = want;

	if (want > max) {
		len = max;
		*flags |= trunc_flag;
	}
	if (len > cap)
		len = cap;
	if (!len)
		return 0;
	if (bpf_probe_read_user(dst, len, (void *)start) < 0) {
		*flags |= VIGIL_PROC_ARGV_UNREADABLE;
		return 0;
	}
	return len;
}

static __always_inline void update_proc_entry(__u32 tgid, struct exec_event *e, __u64 now)
{
	struct proc_entry pe = {};

	pe.start_ns = e->start_ns;
	pe.parent_start_ns = e->parent_start_ns;
	pe.exec_ns = now;
	pe.ppid = e->ppid;
	pe.flags = e->flags & VIGIL_PROC_SUBREAPER;
	pe.creds = e->creds;
	pe.ns = e->ns;
	__builtin_memcpy(pe.comm, e->comm, VIGIL_COMM_LEN);
	bpf_map_update_elem(&vigil_procs, &tgid, &pe, BPF_ANY);
}

/* ---- in-kernel kill rules on execs ---------------------------------------------------------------------- */

/*
 * Where an exec's argv elements start (offsets into its argv), for kill rules about argv: the first
 * VIGIL_KILL_ARGS_MAX whole elements (each ends with its NUL) within the first VIGIL_KILL_ARGV_SCAN bytes.
 * Per CPU: too big for the stack the check's callbacks share.
 */
struct exec_argv_index {
	__u32 count;      /* elements in start[] */
	__u32 partial;    /* argv has more than start[] holds (elements or bytes past the limits, truncated, unreadable) */
	__u32 next;       /* where the first element not in start[] starts */
	__u32 _pad;
	__u16 start[VIGIL_KILL_ARGS_MAX];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_argv_index);
} exec_argv_idx SEC(".maps");

struct exec_kill_ctx {
	struct kill_scan scan;
	__u32 cpu;        /* the exec record is exec_heap[cpu]: its exe path follows the fixed part */
	__u32 argv_off;   /* where its argv is in it */
	__u32 argv_len;
	__u32 _pad;
	__u64 comm[2];    /* the new image's comm (the exec's task leads its process now) */
	__u64 pcomm[2];   /* the parent's, its leader's */
	/* Per rule, bit t: term t is about argv, no value of it matched, and argv was not seen whole (see argv_matches). */
	__u8 unsure[VIGIL_KILL_RULES_MAX];
};

/*
 * Indexes word i of the exec's argv (bpf_loop): each NUL in it ends an element, whose start goes into
 * exec_argv_idx. A word without a NUL (the common case) is one load and a few word operations.
 */
static long argv_index_cb(__u32 i, void *data)
{
	struct exec_kill_ctx *k = data;
	struct exec_argv_index *x;
	struct exec_buf *b;
	__u32 zero = 0, at = i * 8, o;
	__u64 w;

	if (at >= k->argv_len || at >= VIGIL_KILL_ARGV_SCAN)
		return 1;
	b = bpf_map_lookup_elem(&exec_heap, &k->cpu);
	o = k->argv_off + at;
	if (!b || o > EXEC_BUF_SZ - 8)
		return 1;
	w = *(__u64 *)(b->data + o);
	if (!((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL))
		return 0;
	x = bpf_map_lookup_elem(&exec_argv_idx, &zero);
	if (!x)
		return 1;
	for (__u32 j = 0; j < 8; j++) {
		if (at + j >= k->argv_len)
			return 1;
		if ((w >> (8 * j)) & 0xff)
			continue;
		if (x->count >= VIGIL_KILL_ARGS_MAX)
			return 1;
		x->start[x->count & (VIGIL_KILL_ARGS_MAX - 1)] = x->next;
		x->count++;
		x->next = at + j + 1;
	}
	return 0;
}

/* Indexes the exec's argv (exec_argv_idx) for the argv values of the set in force. */
static __always_inline void argv_index(struct exec_kill_ctx *k, __u32 argv_flags)
{
	struct exec_argv_index *x;
	__u32 zero = 0;

	x = bpf_map_lookup_elem(&exec_argv_idx, &zero);
	if (!x)
		return;
	x->count = 0;
	x->next = 0;
	bpf_loop(VIGIL_KILL_ARGV_SCAN / 8, argv_index_cb, k, 0);
	/*
	 * Bytes from the first element not indexed on: elements past the limits, or one cut short (argv truncated,
	 * not an element user space sees whole). A truncated or unreadable argv has more than anyone saw.
	 */
	x->partial = argv_flags || x->next < k->argv_len;
}

/*
 * Does some indexed element of argv match value v? When the index is partial, a miss proves nothing: the
 * value's term is marked unsure, and a rule that negates it counts it as matched (exec_kill_check), so that
 * it cannot kill, as if an unseen element matched.
 */
static __always_inline int argv_matches(struct exec_kill_ctx *k, const struct syscall_kill_value *v)
{
	struct exec_argv_index *x;
	struct exec_buf *b;
	__u32 zero = 0, o;

	x = bpf_map_lookup_elem(&exec_argv_idx, &zero);
	b = bpf_map_lookup_elem(&exec_heap, &k->cpu);
	if (!x || !b)
		return 0;
	for (__u32 j = 0; j < VIGIL_KILL_ARGS_MAX; j++) {
		if (j >= x->count)
			break;
		o = k->argv_off + x->start[j];
		if (o > EXEC_BUF_SZ - VIGIL_SYS_PREFIX_LEN)
			break;
		if (masked_prefix(b->data + o, v->prefix, v->mask))
			return 1;
	}
	if (x->partial)
		k->unsure[v->rule & (VIGIL_KILL_RULES_MAX - 1)] |= 1 << v->term;
	return 0;
}

/* Does value i match its field's string? */
static long exec_kill_value_cb(__u32 i, void *data)
{
	struct exec_kill_ctx *k = data;
	struct syscall_kill_value *v;
	struct exec_buf *b;
	int hit;

	if (i >= k->scan.count)
		return 1;
	v = kill_value_at(&proc_kill_values, &k->scan, i);
	if (!v)
		return 0;
	if (v->field == VIGIL_KILL_COMM) {
		hit = kill_comm_matches(k->comm, v);
	} else if (v->field == VIGIL_KILL_PARENT_COMM) {
		hit = kill_comm_matches(k->pcomm, v);
	} else if (v->field == VIGIL_KILL_ARGV) {
		hit = argv_matches(k, v);
	} else if (v->field == VIGIL_KILL_EXE) {
		b = bpf_map_lookup_elem(&exec_heap, &k->cpu);
		hit = b && masked_prefix(b->data + sizeof(struct exec_event), v->prefix, v->mask);
	} else {
		hit = 0; /* a file event's field: never on an exec */
	}
	if (hit)
		kill_value_hit(&k->scan, v);
	return 0;
}

/*
 * Checks the exec in exec_heap[cpu] (its comm, exe path and argv written) against the kill rules in force and, on
 * the first that matches, signals the process (kill_verdict): at sched_process_exec the new image is loaded
 * and has not run, and the signal is handled on the way back to user space, before its first instruction.
 * Returns 0 when none matched, else kill_report's id | signal << 16 | result << 24. A global function:
 * verified once, on its own.
 */
__noinline __u64 exec_kill_check(__u32 cpu, __u32 argv_off, __u32 argv_len, __u32 argv_flags)
{
	struct exec_kill_ctx k = {};
	struct vigil_kill_set *ks;
	struct syscall_kill_rule *r;
	struct exec_event *e;
	struct exec_buf *b;
	__u32 zero = 0, result;
	__s64 scope = -1;

	ks = bpf_map_lookup_elem(&proc_kill_config, &zero);
	b = bpf_map_lookup_elem(&exec_heap, &cpu);
	if (!ks || !ks->rule_count || !b)
		return 0;
	e = (struct exec_event *)b->data;
	kill_scan_start(&k.scan, ks);
	k.cpu = cpu;
	k.argv_off = argv_off;
	k.argv_len = argv_len;
	if (ks->argv_count)
		argv_index(&k, argv_flags);
	comm_key(k.comm, *(__u64 *)&e->comm[0], *(__u64 *)&e->comm[8]);
	leader_comm_of(BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), real_parent), k.pcomm);
	bpf_loop(VIGIL_KILL_VALUES_MAX, exec_kill_value_cb, &k, 0);
	for (__u32 i = 0; i < VIGIL_KILL_RULES_MAX; i++) {
		if (i >= ks->rule_count)
			return 0;
		r = kill_rule_at(&proc_kill_rules, ks, i);
		if (!r || (e->flags & r->want_flags) != r->want_flags || (e->flags & r->deny_flags))
			continue; /* the exec's flags (VIGIL_PROC_EXE_UPPER_LAYER: process.exeUpperLayer) */
		if (!kill_terms_hold(r, k.scan.matched[i] | (k.unsure[i] & r->negate)) || !kill_in_scope(&proc_kill_scopes, ks, r, i, &scope))
			continue;
		result = kill_verdict(ks, r);
		/* Counted here too: a record the ring has no room for is lost, the kill is not. */
		vigil_inc(&proc_kill_stats, VIGIL_PROC_KILL_MATCHED);
		if (result == VIGIL_KILL_SENT)
			vigil_inc(&proc_kill_stats, VIGIL_PROC_KILL_SENT);
		return kill_report(r, result);
	}
	return 0;
}

static __always_inline int on_exec(void *ctx, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 cpu = bpf_get_smp_processor_id(), zero = 0, trunc = 0;
	struct vigil_path_buf *pb;
	struct signal_struct *sig;
	struct exec_event *e;
	struct task_struct *parent;
	struct mm_struct *mm;
	struct file *file;
	struct inode *inode;
	__u8 *buf;
	__u32 off, n, pos;
	__u64 kill;
	int len;

	buf = bpf_map_lookup_elem(&exec_heap, &cpu);
	pb = bpf_map_lookup_elem(&vigil_path_heap, &zero);
	if (!buf || !pb) {
		vigil_count_lost(VIGIL_OP_EXEC, VIGIL_STAT_OUTPUT_FAILED);
		return 0;
	}
	e = (struct exec_event *)buf;
	e->start_ns = task_start(task);
	parent = BPF_CORE_READ(task, real_parent);
	e->ppid = BPF_CORE_READ(parent, tgid);
	e->parent_start_ns = task_start(parent);
	e->old_pid = old_pid;
	read_creds(task, &e->creds);
	read_ns(task, &e->ns);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	read_tty(task, e->tty);
	sig = BPF_CORE_READ(task, signal);
	e->flags = BPF_CORE_READ_BITFIELD_PROBED(sig, is_child_subreaper) ? VIGIL_PROC_SUBREAPER : 0;

	/* The executed file: its identity and its path as its mount namespace sees it. */
	file = BPF_CORE_READ(bprm, file);
	inode = BPF_CORE_READ(file, f_inode);
	e->exe_ino = BPF_CORE_READ(inode, i_ino);
	e->exe_dev = BPF_CORE_READ(inode, i_sb, s_dev);
	read_mtime(inode, e);
	if (exe_in_upper_layer(inode))
		e->flags |= VIGIL_PROC_EXE_UPPER_LAYER;
	pos = vigil_walk_path(&file->f_path, pb, &trunc);
	if (trunc)
		e->flags |= VIGIL_PROC_PATH_TRUNCATED;
	off = sizeof(*e);
	pos &= (VIGIL_PATH_MAX - 1);
	len = bpf_probe_read_kernel_str(buf + off, VIGIL_PATH_MAX, pb->data + pos);
	n = len > 0 ? len : 0;
	if (n > VIGIL_PATH_MAX)
		n = VIGIL_PATH_MAX;
	e->exe_len = n;
	off += n;

	/* The filename as passed to execve (relative, or through a symlink). */
	if (off > sizeof(*e) + VIGIL_PATH_MAX)
		return 0;
	len = bpf_probe_read_kernel_str(buf + off, VIGIL_PATH_MAX, BPF_CORE_READ(bprm, filename));
	n = len > 0 ? len : 0;
	if (n > VIGIL_PATH_MAX)
		n = VIGIL_PATH_MAX;
	if (n == VIGIL_PATH_MAX)
		e->flags |= VIGIL_PROC_FILENAME_TRUNCATED;
	e->filename_len = n;
	off += n;

	/* argv and envp, straight from the new image's stack. */
	mm = BPF_CORE_READ(task, mm);
	e->argc = BPF_CORE_READ(bprm, argc);
	if (off > sizeof(*e) + 2 * VIGIL_PATH_MAX)
		return 0;
	n = read_user_range(buf + off, BPF_CORE_READ(mm, arg_start), BPF_CORE_READ(mm, arg_end), max_args_bytes,
			    VIGIL_ARGS_CAP, &e->flags, VIGIL_PROC_ARGV_TRUNCATED);
	e->argv_len = n;
	/* The kill rules see the new image's comm, exe path and argv, before it runs. */
	kill = exec_kill_check(cpu, off, n, e->flags & (VIGIL_PROC_ARGV_TRUNCATED | VIGIL_PROC_ARGV_UNREADABLE));
	e->kill_rule = kill & 0xffff;
	e->kill_signal = (kill >> 16) & 0xff;
	e->kill_result = (kill >> 24) & 0xff;
	e->_pad1 = 0;
	off += n;
	e->env_len = 0;
	if (max_env_bytes) {
		if (off > sizeof(*e) + 2 * VIGIL_PATH_MAX + VIGIL_ARGS_CAP)
			return 0;
		n = read_user_range(buf + off, BPF_CORE_READ(mm, env_start), BPF_CORE_READ(mm, env_end), max_env_bytes,
				    VIGIL_ENV_CAP, &e->flags, VIGIL_PROC_ENV_TRUNCATED);
		e->env_len = n;
		off += n;
	} else {
		e->flags |= VIGIL_PROC_ENV_OMITTED;
	}

	vigil_fill_header(&e->hdr, VIGIL_OP_EXEC, off);
	e->hdr.flags = 0;
	update_proc_entry(e->hdr.pid, e, e->hdr.ktime_ns);
	vigil_output(ctx, buf, off, EXEC_BUF_SZ, VIGIL_OP_EXEC);
	return 0;
}

static __always_inline int on_fork(void *ctx, struct task_struct *parent, struct task_struct *child)
{
	struct fork_event *e;
	__u32 child_tgid = BPF_CORE_READ(child, tgid);
	__u32 child_pid = BPF_CORE_READ(child, pid);
	__u32 is_thread = child_pid != child_tgid;
	struct proc_entry *pp, pe;
	__u32 parent_tgid;

	if (!is_thread) {
		/* Mirror the new process in the kernel map, inheriting the parent's image until it execs. */
		parent_tgid = BPF_CORE_READ(parent, tgid);
		pp = bpf_map_lookup_elem(&vigil_procs, &parent_tgid);
		if (pp)
			pe = *pp;
		else
			__builtin_memset(&pe, 0, sizeof(pe));
		pe.start_ns = task_start(child);
		pe.ppid = BPF_CORE_READ(child, real_parent, tgid);
		pe.parent_start_ns = task_start(parent);
		pe.flags &= ~VIGIL_PROC_SNAPSHOT;
		bpf_map_update_elem(&vigil_procs, &child_tgid, &pe, BPF_ANY);
	} else if (!emit_threads) {
		return 0;
	}
	e = vigil_reserve(sizeof(*e), VIGIL_OP_FORK);
	if (!e)
		return 0;
	vigil_fill_header(&e->hdr, VIGIL_OP_FORK, sizeof(*e));
	e->parent_start_ns = task_start(parent);
	e->child_start_ns = task_start(child);
	e->child_pid = child_pid;
	e->child_tgid = child_tgid;
	e->child_ppid = BPF_CORE_READ(child, real_parent, tgid);
	e->flags = is_thread ? VIGIL_PROC_THREAD : 0;
	e->_pad0 = 0;
	BPF_CORE_READ_STR_INTO(&e->comm, child, comm);
	vigil_submit(ctx, e, sizeof(*e), VIGIL_OP_FORK);
	return 0;
}

static __always_inline int on_exit(void *ctx, struct task_struct *task)
{
	struct exit_event *e;
	__u32 pid = BPF_CORE_READ(task, pid), tgid = BPF_CORE_READ(task, tgid);
	/* signal->live was decremented before this tracepoint: 0 means the whole thread group is gone. */
	int live = BPF_CORE_READ(task, signal, live.counter);
	__u32 flags = 0;

	if (live == 0) {
		flags |= VIGIL_PROC_GROUP_DEAD;
		bpf_map_delete_elem(&vigil_procs, &tgid);
	}
	if (pid != tgid)
		flags |= VIGIL_PROC_THREAD;
	if (!(flags & VIGIL_PROC_GROUP_DEAD) && !emit_threads)
		return 0;
	e = vigil_reserve(sizeof(*e), VIGIL_OP_EXIT);
	if (!e)
		return 0;
	vigil_fill_header(&e->hdr, VIGIL_OP_EXIT, sizeof(*e));
	e->start_ns = task_start(task);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->exit_code = BPF_CORE_READ(task, exit_code);
	e->flags = flags;
	e->_pad0 = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	vigil_submit(ctx, e, sizeof(*e), VIGIL_OP_EXIT);
	return 0;
}

static __always_inline int emit_creds(void *ctx, struct task_struct *task, struct proc_creds *old, int have_old,
				      struct proc_creds *now, __u32 syscall_nr)
{
	struct creds_event *e = vigil_reserve(sizeof(*e), VIGIL_OP_CREDS);

	if (!e)
		return 0;
	vigil_fill_header(&e->hdr, VIGIL_OP_CREDS, sizeof(*e));
	e->start_ns = task_start(task);
	e->syscall_nr = syscall_nr;
	e->_pad0 = 0;
	if (have_old)
		e->old_creds = *old;
	else
		__builtin_memset(&e->old_creds, 0xff, sizeof(e->old_creds));
	e->creds = *now;
	vigil_submit(ctx, e, sizeof(*e), VIGIL_OP_CREDS);
	return 0;
}

/* After a credential syscall: emits when the creds differ from what vigil_procs last recorded. */
static __always_inline int on_creds_maybe_changed(void *ctx, __u32 syscall_nr)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct proc_entry *pe = bpf_map_lookup_elem(&vigil_procs, &tgid);
	struct proc_creds now, old;
	int have_old = 0;

	read_creds(task, &now);
	if (pe) {
		if (creds_equal(&pe->creds, &now))
			return 0; /* nothing changed (e.g. setuid to the current uid) */
		old = pe->creds;
		have_old = 1;
		pe->creds = now;
	}
	return emit_creds(ctx, task, &old, have_old, &now, syscall_nr);
}

/* commit_creds(new): the one place every credential change goes through, where the kernel can probe it. */
static __always_inline int on_commit_creds(void *ctx, const struct cred *new)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct proc_creds now, old;
	struct proc_entry *pe;

	if (BPF_CORE_READ_BITFIELD_PROBED(task, in_execve))
		return 0; /* exec reports its own creds */
	read_creds(task, &old);
	read_cred(new, task, &now);
	if (creds_equal(&old, &now))
		return 0;
	pe = bpf_map_lookup_elem(&vigil_procs, &tgid);
	if (pe)
		pe->creds = now;
	return emit_creds(ctx, task, &old, 1, &now, 0);
}

/* ---- exec ---------------------------------------------------------------------------------------------- */

SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_btf, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	return on_exec(ctx, task, old_pid, bprm);
}

SEC("raw_tp/sched_process_exec")
int exec_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_exec(ctx, (struct task_struct *)ctx->args[0], (pid_t)ctx->args[1], (struct linux_binprm *)ctx->args[2]);
}

/* ---- fork ---------------------------------------------------------------------------------------------- */

SEC("tp_btf/sched_process_fork")
int BPF_PROG(fork_btf, struct task_struct *parent, struct task_struct *child)
{
	return on_fork(ctx, parent, child);
}

SEC("raw_tp/sched_process_fork")
int fork_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_fork(ctx, (struct task_struct *)ctx->args[0], (struct task_struct *)ctx->args[1]);
}

/* ---- exit ---------------------------------------------------------------------------------------------- */

SEC("tp_btf/sched_process_exit")
int BPF_PROG(exit_btf, struct task_struct *task)
{
	return on_exit(ctx, task);
}

SEC("raw_tp/sched_process_exit")
int exit_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_exit(ctx, (struct task_struct *)ctx->args[0]);
}

/* ---- comm ---------------------------------------------------------------------------------------------- */

/* task_rename fires on every comm change, exec included; exec's own record covers that case. */
static __always_inline int on_rename(void *ctx, struct task_struct *task, const char *newcomm)
{
	struct comm_event *e;
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct proc_entry *pe;

	if (BPF_CORE_READ(task, pid) != tgid)
		return 0; /* a thread's name: not the process's */
	if (bpf_core_field_exists(task->in_execve) && BPF_CORE_READ_BITFIELD_PROBED(task, in_execve))
		return 0;
	e = vigil_reserve(sizeof(*e), VIGIL_OP_COMM);
	if (!e)
		return 0;
	vigil_fill_header(&e->hdr, VIGIL_OP_COMM, sizeof(*e));
	e->start_ns = task_start(task);
	BPF_CORE_READ_STR_INTO(&e->old_comm, task, comm);
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), newcomm);
	pe = bpf_map_lookup_elem(&vigil_procs, &tgid);
	if (pe)
		bpf_probe_read_kernel_str(pe->comm, sizeof(pe->comm), newcomm);
	vigil_submit(ctx, e, sizeof(*e), VIGIL_OP_COMM);
	return 0;
}

SEC("tp_btf/task_rename")
int BPF_PROG(rename_btf, struct task_struct *task, const char *comm)
{
	return on_rename(ctx, task, comm);
}

SEC("raw_tp/task_rename")
int rename_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_rename(ctx, (struct task_struct *)ctx->args[0], (const char *)ctx->args[1]);
}

/* ---- credentials ----------------------------------------------------------------------------------------- */

/* Preferred where the kernel has them: every credential change goes through commit_creds. */
SEC("fentry/commit_creds")
int BPF_PROG(creds_fentry, const struct cred *new)
{
	return on_commit_creds(ctx, new);
}

SEC("kprobe/commit_creds")
int BPF_KPROBE(creds_kprobe, const struct cred *new)
{
	return on_commit_creds(ctx, new);
}

/*
 * Fallback: the exit of each credential-changing syscall. Syscall tracepoints put every syscall of the
 * machine on the slow path while attached, so this is the last choice of the selector.
 */
#define CREDS_SYSCALL(name, nr, check_ret)                                        \
	SEC("tp/syscalls/sys_exit_" #name)                                        \
	int creds_exit_##name(struct syscall_trace_exit *ctx)                     \
	{                                                                         \
		if (check_ret && ctx->ret != 0)                                   \
			return 0;                                                 \
		return on_creds_maybe_changed(ctx, nr);                           \
	}

CREDS_SYSCALL(setuid, 105, 1)
CREDS_SYSCALL(setgid, 106, 1)
CREDS_SYSCALL(setreuid, 113, 1)
CREDS_SYSCALL(setregid, 114, 1)
CREDS_SYSCALL(setresuid, 117, 1)
CREDS_SYSCALL(setresgid, 119, 1)
CREDS_SYSCALL(setfsuid, 122, 0) /* returns the previous fsuid, not 0 */
CREDS_SYSCALL(setfsgid, 123, 0)
CREDS_SYSCALL(capset, 126, 1)
