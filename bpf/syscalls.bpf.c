// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The syscall sensor: file, socket and "other" security-relevant syscalls, each reported once, at exit, with
 * its arguments and its return value. Entry programs (one per syscall tracepoint, attached only for the
 * event types that are on) run the cheap filters first and save the arguments, user strings included, in a
 * per-thread slot; one exit program per group pairs the exit with that slot, applies the path filters and
 * emits one record. Filters live in maps that user space may rewrite at any time.
 *
 * Why a per-thread slot in task storage: a file record needs up to two 4 KiB user strings saved between
 * entry and exit. Task storage is allocated once per thread, written in place and freed with the thread,
 * so a syscall costs no allocation and no copy of the slot; a hash keyed by tid (the fallback, for kernels
 * whose tracepoint programs cannot use task storage) copies the whole slot on every insert.
 *
 * Why strings are read at entry: that is when the kernel is about to copy them; read at exit, a racing thread
 * would have the whole syscall to change the buffer after the kernel used it. A string whose page is not
 * resident yet cannot be read at entry (no faults here): it is read at exit, once the kernel faulted it in,
 * and flagged VIGIL_SYSF_PATH_AT_EXIT.
 *
 * Opens are the exception when open_args_at_exit is set (the default where bpf_task_pt_regs exists, 5.15+):
 * they are by far the most frequent of these syscalls, and an entry hook costs each of them a second trip
 * through the syscall tracepoint machinery (about 0.45 us here, measured by bench/storm). One program at the
 * exit reads the arguments from the registers saved at entry (the syscall does not change them) and the
 * path from the caller's memory, which the kernel has just faulted in. The price is the race above, widened
 * to the whole open: the resolved path (the opened file's own, for write-opens and relative paths, or for
 * every open with resolvePaths "all") is what a racing thread cannot change.
 */
#include "vigil.h"
#include "path.h"
#include "match.h"
#include <bpf/bpf_endian.h>

/* Limits and modes, set by the loader before load. */
const volatile __u32 max_path = VIGIL_PATH_MAX;   /* bytes read of each user path (NUL included) */
const volatile __u32 use_task_storage = 1;        /* 0: the tid-keyed hash fallback */
const volatile __u32 open_args_at_exit = 0;       /* 1: opens use the exit_open* programs, which need bpf_task_pt_regs */
const volatile __u32 vigil_mem_cast = 0;          /* 1: bpf_rdonly_cast(p, 0) gives plain loads at any offset (fd table slots) */

#define AT_FDCWD_ -100
#define AT_REMOVEDIR_ 0x200
#define AT_SYMLINK_NOFOLLOW_ 0x100
#define O_ACCMODE_ 3
#define O_CREAT_ 0100
#define O_TRUNC_ 01000
#define O_WRONLY_ 1
#define S_IFMT_ 0170000
#define S_IFSOCK_ 0140000
#define AF_UNIX_ 1
#define AF_INET_ 2
#define AF_INET6_ 10
#define IPPROTO_TCP_ 6
#define EPERM_ 1

#define SMALL_STR 64
#define ADDR_MAX 128
#define FIXED_MAX 128    /* >= sizeof(struct file_event), sizeof(struct sys_event) */
/* Records are built here: fixed part, then up to four strings of at most VIGIL_PATH_MAX each, plus room for
 * the bounds the verifier sees (a string start plus a full-size read, a prefix compare past a string start). */
#define OUT_SZ (FIXED_MAX + 6 * VIGIL_PATH_MAX)
#define STR_LIMIT (FIXED_MAX + 3 * VIGIL_PATH_MAX) /* no string starts beyond this */
_Static_assert(sizeof(struct file_event) <= FIXED_MAX && sizeof(struct sys_event) <= FIXED_MAX, "fixed parts fit FIXED_MAX");

/* ---- maps --------------------------------------------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct syscall_filter_config);
} sys_config SEC(".maps");

/* comm (16 bytes, NUL-padded) -> VIGIL_COMM_INCLUDE or VIGIL_COMM_EXCLUDE */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, char[VIGIL_COMM_LEN]);
	__type(value, __u32);
} sys_comm_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIGIL_SYS_PREFIX_MAX);
	__type(key, __u32);
	__type(value, struct syscall_path_prefix);
} sys_path_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIGIL_SYS_PREFIX_MAX);
	__type(key, __u32);
	__type(value, struct syscall_path_prefix);
} sys_sensitive_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIGIL_SYS_PREFIX_MAX);
	__type(key, __u32);
	__type(value, struct syscall_path_prefix);
} sys_secret_prefixes SEC(".maps");

/*
 * Log files: truncating one (an O_TRUNC open, truncate, ftruncate), removing it (unlink, rename away) or
 * renaming another file over it erases evidence; reported with sensitive writes (VIGIL_SYSF_LOG_TRUNCATED,
 * VIGIL_SYSF_LOG_REMOVED, VIGIL_SYSF_LOG_REPLACED).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIGIL_SYS_PREFIX_MAX);
	__type(key, __u32);
	__type(value, struct syscall_path_prefix);
} sys_log_prefixes SEC(".maps");

/*
 * Which entries of each directory the secret prefixes name (VIGIL_SYSCFG_SECRET_DIRS; see secret_dir_gate),
 * at the index of its inode number in syscall_filter_config.secret_dir_ino. Inode numbers alone, without the
 * device: a number shared with a file system elsewhere costs a resolution, never a flag, which the prefixes
 * decide on the resolved path. A reload writes these before the config: an open meanwhile may pair an old
 * number with a new entry, which at worst resolves one path more or gives one fewer a second look.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIGIL_SECRET_DIRS_MAX);
	__type(key, __u32);
	__type(value, struct syscall_secret_dir);
} sys_secret_dirs SEC(".maps");

/* In-kernel kill rules on file events (src/rules/kernel.ts), the set in force at the config's kill.base. */
VIGIL_KILL_MAPS(sys_kill_rules, sys_kill_values, sys_kill_scopes);

/* enum vigil_sys_stat, per CPU */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_SYS_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sys_filter_stats SEC(".maps");

/* What an entry saves for its exit. Not wire format: it never leaves the kernel. */
struct sys_pending {
	__u32 active;
	__u32 op;
	__s32 nr;
	__u32 ev_flags;
	__u32 args_at_exit;      /* filled at exit (exit_open*): strings are read from uptr, as a rule, not as a retry */
	__u32 resolve_fd;        /* an open the secret directories' gate let through: resolve it through its fd */
	/* io_uring requests (iou_*): who submitted it (0: a syscall's own slot, the current task is the caller), its
	 * cgroup, the request (its file is the socket of a connect), whether no fd is known for an open (a direct
	 * descriptor, or no result), and whether a restricted read needs the secret directories' gate at completion. */
	__u64 iou_id;
	__u64 iou_cgroup;
	__u64 iou_req;
	__u32 iou_no_fd;
	__u32 iou_gate;
	__u64 args[8];           /* per group, see the A_* and N_* indices */
	__u64 uptr[2];           /* user pointers of s0 and s1, to retry at exit when unreadable at entry */
	__u32 len0;              /* bytes (NUL included) in s0, s1, s2; 0: none */
	__u32 len1;
	__u32 len2;
	__u32 addr_len;
	__u8 addr[ADDR_MAX];     /* connect/bind: the sockaddr */
	char s2[SMALL_STR];      /* fstype, bpf object name */
	char s0[VIGIL_PATH_MAX];
	char s1[VIGIL_PATH_MAX];
};

/* file group args */
#define A_DFD 0
#define A_DFD2 1
#define A_FLAGS 2
#define A_MODE 3
#define A_UID 4
#define A_GID 5
#define A_RESOLVE 6
#define A_FDONLY 7   /* fchmod/fchown/ftruncate: no path, A_DFD is the fd (1), or the io_uring request's file (2) */
#define FDONLY_IOU_FILE 2
/* net group args */
#define N_FD 0
#define N_BACKLOG 1
#define N_FLAGS 2
#define N_START 3    /* connect, bind: bpf_ktime_get_ns() at entry (deny notes made since are this call's) */

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sys_pending);
} sys_pending_ts SEC(".maps");

/* Fallback: tid -> slot, allocated on use (no preallocation: a slot is 8.5 KiB). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct sys_pending);
} sys_pending_hash SEC(".maps");

/* Per-CPU slot: the hash fallback's template for a new entry, and the slot of an open whose arguments are
 * read at exit (nothing to keep between two programs then). Syscall tracepoint programs do not nest on a CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sys_pending);
} sys_pending_tmpl SEC(".maps");

struct sys_out {
	__u8 data[OUT_SZ];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sys_out);
} sys_out_heap SEC(".maps");

/* ---- filters ------------------------------------------------------------------------------------------ */

static __always_inline void stat_inc(__u32 idx)
{
	vigil_inc(&sys_filter_stats, idx);
}

static __always_inline struct syscall_filter_config *get_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&sys_config, &zero);
}

/*
 * The current task's comm as a sys_comm_filter key: NUL-padded 16 bytes. With task storage (5.11+, so
 * bpf_get_current_task_btf too) the comm is read straight from the task with two loads, instead of a helper
 * that copies and pads it: this runs on every hooked syscall of every process. The bytes after its NUL are
 * zeroed here, whatever the kernel left there, so that the key matches the one user space wrote.
 */
static __always_inline void current_comm(__u64 key[2])
{
	struct task_struct *t;

	/* The word masks of comm_key assume little-endian words (x86-64, arm64); others take the helper. */
	if (use_task_storage && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__) {
		t = bpf_get_current_task_btf();
		comm_key(key, *(__u64 *)&t->comm[0], *(__u64 *)&t->comm[8]);
		return;
	}
	bpf_get_current_comm(key, VIGIL_COMM_LEN);
}

/*
 * The cheap filters, cheapest first: event type (a bit), the agent itself (a compare), container or host
 * scope (one hash lookup), comm lists (one hash lookup). Returns the config when the event goes on. `counted`
 * (a constant): a syscall's entry, counted in the filter stats; the deny rules' datagram hook asks too, and
 * is not a syscall entry.
 */
#define PF_IO_WORKER_ 0x00000010 /* an io_uring thread: SQPOLL's submission thread, io-wq's workers */

/*
 * The entry filters of op. `iou` (a constant): an io_uring submission, which may be made by the kernel's
 * submission thread of the process (SQPOLL), named iou-sqp-<pid>: the comm lists see its process's name there.
 */
static __always_inline struct syscall_filter_config *filter_pass_of(__u32 op, const int counted, const int iou)
{
	struct syscall_filter_config *cfg = get_config();
	__u64 comm[2];
	__u32 *v;

	if (!cfg)
		return 0;
	if (counted)
		stat_inc(VIGIL_SYS_STAT_ENTERED);
	if (!(cfg->enabled_ops & (1ULL << (op & 63)))) {
		if (counted)
			stat_inc(VIGIL_SYS_STAT_DROP_DISABLED);
		return 0;
	}
	if (cfg->self_tgid && (bpf_get_current_pid_tgid() >> 32) == cfg->self_tgid) {
		if (counted)
			stat_inc(VIGIL_SYS_STAT_DROP_SELF);
		return 0;
	}
	if (cfg->scope != VIGIL_SCOPE_ALL) {
		__u64 cg = vigil_cgroup_id();
		int known = bpf_map_lookup_elem(&vigil_containers, &cg) != 0;

		if ((cfg->scope == VIGIL_SCOPE_CONTAINERS) != known) {
			if (counted)
				stat_inc(VIGIL_SYS_STAT_DROP_SCOPE);
			return 0;
		}
	}
	if (cfg->comm_mode) {
		struct task_struct *t = (struct task_struct *)bpf_get_current_task();

		if (iou && (BPF_CORE_READ(t, flags) & PF_IO_WORKER_))
			leader_comm_of(t, comm);
		else
			current_comm(comm);
		v = bpf_map_lookup_elem(&sys_comm_filter, comm);
		if (((cfg->comm_mode & VIGIL_COMM_INCLUDE) && (!v || *v != VIGIL_COMM_INCLUDE)) ||
		    ((cfg->comm_mode & VIGIL_COMM_EXCLUDE) && v && *v == VIGIL_COMM_EXCLUDE)) {
			if (counted)
				stat_inc(VIGIL_SYS_STAT_DROP_COMM);
			return 0;
		}
	}
	return cfg;
}

static __always_inline struct syscall_filter_config *filter_pass(__u32 op, const int counted)
{
	return filter_pass_of(op, counted, 0);
}

static __always_inline struct syscall_filter_config *filter_enter(__u32 op)
{
	return filter_pass(op, 1);
}

/* ---- the per-thread slot ------------------------------------------------------------------------------- */

static __always_inline void pending_init(struct sys_pending *p, __u32 op, __s32 nr)
{
	p->active = 1;
	p->op = op;
	p->nr = nr;
	p->ev_flags = 0;
	p->args_at_exit = 0;
	p->resolve_fd = 0;
	p->iou_id = 0;
	p->iou_cgroup = 0;
	p->iou_req = 0;
	p->iou_no_fd = 0;
	p->iou_gate = 0;
	p->len0 = 0;
	p->len1 = 0;
	p->len2 = 0;
	p->addr_len = 0;
	p->uptr[0] = 0;
	p->uptr[1] = 0;
#pragma unroll
	for (int i = 0; i < 8; i++)
		p->args[i] = 0;
}

/* Takes the current thread's slot for a new entry. NULL (counted) when none can be had. */
static __always_inline struct sys_pending *pending_start(__u32 op, __s32 nr)
{
	struct sys_pending *p, *tmpl;
	__u32 tid, zero = 0;

	if (use_task_storage) {
		p = bpf_task_storage_get(&sys_pending_ts, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	} else {
		tid = (__u32)bpf_get_current_pid_tgid();
		p = bpf_map_lookup_elem(&sys_pending_hash, &tid);
		if (!p) {
			tmpl = bpf_map_lookup_elem(&sys_pending_tmpl, &zero);
			if (tmpl) {
				tmpl->active = 0;
				bpf_map_update_elem(&sys_pending_hash, &tid, tmpl, BPF_ANY);
				p = bpf_map_lookup_elem(&sys_pending_hash, &tid);
			}
		}
	}
	if (!p) {
		stat_inc(VIGIL_SYS_STAT_NO_PENDING);
		return 0;
	}
	pending_init(p, op, nr);
	return p;
}

/* The slot its entry filled, at the exit of syscall `nr`; NULL when the entry was filtered out. */
static __always_inline struct sys_pending *pending_take(__s32 nr)
{
	struct sys_pending *p;
	__u32 tid;

	if (use_task_storage) {
		p = bpf_task_storage_get(&sys_pending_ts, bpf_get_current_task_btf(), 0, 0);
	} else {
		tid = (__u32)bpf_get_current_pid_tgid();
		p = bpf_map_lookup_elem(&sys_pending_hash, &tid);
	}
	/* A stale slot (its exit was not attached, or it belongs to another syscall) pairs with nothing. */
	if (!p || !p->active || p->nr != nr)
		return 0;
	p->active = 0;
	return p;
}

/* The file an io_uring request was made on (assigned when it was issued; read at completion), if it is still known. */
static __always_inline struct file *iou_req_file(struct sys_pending *p)
{
	struct io_kiocb *req = (struct io_kiocb *)p->iou_req; /* not inside BPF_CORE_READ: sys_pending is not the kernel's */

	return req ? BPF_CORE_READ(req, file) : 0;
}

/* An io_uring request's record names the thread that submitted it, whichever thread completes it. */
static __always_inline void iou_header(struct event_header *h, struct sys_pending *p)
{
	if (!p->iou_id)
		return;
	h->pid = p->iou_id >> 32;
	h->tid = (__u32)p->iou_id;
	h->cgroup_id = p->iou_cgroup;
}

/* After the exit: the fallback frees its slot so that dead threads leave nothing behind. */
static __always_inline void pending_done(void)
{
	__u32 tid;

	if (use_task_storage)
		return;
	tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_delete_elem(&sys_pending_hash, &tid);
}

static __always_inline __u32 str_max(void)
{
	__u32 n = max_path;

	if (n > VIGIL_PATH_MAX)
		n = VIGIL_PATH_MAX;
	if (n < 2)
		n = 2;
	return n;
}

/* Reads a user path into the slot at entry; unreadable (not resident yet) strings are retried at exit. */
static __always_inline void save_path(struct sys_pending *p, int which, const char *uptr)
{
	long n;

	if (!uptr)
		return;
	if (which == 0) {
		p->uptr[0] = (__u64)uptr;
		n = bpf_probe_read_user_str(p->s0, str_max(), uptr);
		p->len0 = n > 0 ? n : 0;
	} else {
		p->uptr[1] = (__u64)uptr;
		n = bpf_probe_read_user_str(p->s1, str_max(), uptr);
		p->len1 = n > 0 ? n : 0;
	}
	if (n >= str_max())
		p->ev_flags |= VIGIL_SYSF_PATH_TRUNCATED;
}

static __always_inline void save_small(struct sys_pending *p, const char *uptr)
{
	long n;

	if (!uptr)
		return;
	n = bpf_probe_read_user_str(p->s2, sizeof(p->s2), uptr);
	p->len2 = n > 0 ? n : 0;
}

/* ---- fds, paths, sockets --------------------------------------------------------------------------------- */

static __always_inline struct file *fd_file(int fd)
{
	struct task_struct *task;
	struct fdtable *fdt;
	unsigned int max;
	struct file **fds;
	struct file *f = 0;

	if (vigil_direct_reads) {
		/* Plain loads through the BTF task (path.h): the array slot alone is read by a helper. */
		fdt = bpf_get_current_task_btf()->files->fdt;
		max = fdt->max_fds;
		fds = fdt->fd;
	} else {
		task = (struct task_struct *)bpf_get_current_task();
		fdt = BPF_CORE_READ(task, files, fdt);
		max = BPF_CORE_READ(fdt, max_fds);
		fds = BPF_CORE_READ(fdt, fd);
	}

	if (fd < 0 || (unsigned int)fd >= max)
		return 0;
	if (vigil_direct_reads && vigil_mem_cast)
		f = ((struct file **)bpf_rdonly_cast(fds, 0))[fd];
	else
		bpf_core_read(&f, sizeof(f), &fds[fd]);
	return f;
}

/*
 * Writes the absolute path of `f` (or, f == NULL, of the working directory) at buf[off]; returns the bytes
 * written, NUL included (0: nothing).
 */
static __always_inline __u32 put_file_path(__u8 *buf, __u32 off, struct file *f, __u32 *ev_flags)
{
	__u32 zero = 0, trunc = 0, pos;
	struct vigil_path_buf *pb = bpf_map_lookup_elem(&vigil_path_heap, &zero);
	struct task_struct *task;
	long n;

	if (!pb || off > STR_LIMIT)
		return 0;
	if (f) {
		pos = vigil_walk_path(&f->f_path, pb, &trunc);
	} else {
		task = (struct task_struct *)bpf_get_current_task();
		pos = vigil_walk_path(&BPF_CORE_READ(task, fs)->pwd, pb, &trunc);
	}
	if (trunc)
		*ev_flags |= VIGIL_SYSF_RESOLVED_TRUNCATED;
	n = bpf_probe_read_kernel_str(buf + off, VIGIL_PATH_MAX, pb->data + pos);
	if (n <= 0)
		return 0;
	return n > VIGIL_PATH_MAX ? VIGIL_PATH_MAX : n;
}

/*
 * Copies a string saved in the slot, `len` bytes with its NUL (as the entry's read returned them), to
 * buf[off]; returns the bytes written. The length is known, so this is a plain copy, not a string copy that
 * tests every byte for the NUL.
 */
/*
 * A saved string's length (> 0, the caller saw it), as bytes to copy the verifier can bound: 1..VIGIL_PATH_MAX
 * without a branch (a clamp would split the verifier's states).
 */
static __always_inline __u32 saved_len(__u32 len)
{
	return ((len - 1) & (VIGIL_PATH_MAX - 1)) + 1;
}

static __always_inline __u32 put_kstr(__u8 *buf, __u32 off, const char *src, __u32 len)
{
	if (off > STR_LIMIT)
		return 0;
	len = saved_len(len);
	if (bpf_probe_read_kernel(buf + off, len, src))
		return 0;
	return len;
}

/* The small string of the slot (fstype, bpf object name: rare events), up to its NUL. */
static __always_inline __u32 put_small(__u8 *buf, __u32 off, const char *src)
{
	long n;

	if (off > STR_LIMIT)
		return 0;
	n = bpf_probe_read_kernel_str(buf + off, SMALL_STR, src);
	return n > 0 ? n : 0;
}

/* A path string of the slot, or, when it was not readable at entry or is read at exit as a rule, read now (the
 * kernel faulted it in). */
static __always_inline __u32 put_saved_path(__u8 *buf, __u32 off, struct sys_pending *p, int which, __u32 *ev_flags)
{
	__u32 len = which ? p->len1 : p->len0;
	__u64 uptr = which ? p->uptr[1] : p->uptr[0];
	long n;

	if (off > STR_LIMIT)
		return 0;
	if (len)
		return put_kstr(buf, off, which ? p->s1 : p->s0, len);
	if (!uptr)
		return 0;
	n = bpf_probe_read_user_str(buf + off, str_max(), (const void *)uptr);
	if (n > 0) {
		if (!p->args_at_exit)
			*ev_flags |= VIGIL_SYSF_PATH_AT_EXIT;
		if (n >= str_max())
			*ev_flags |= VIGIL_SYSF_PATH_TRUNCATED;
		return n;
	}
	*ev_flags |= VIGIL_SYSF_PATH_UNREADABLE;
	return 0;
}

/*
 * Resolves a relative path lexically: the directory (`dfd`'s path, or the working directory for AT_FDCWD)
 * + "/" + the path as given at buf[str_off]. Written at buf[off]; returns the bytes written, at most
 * VIGIL_PATH_MAX. Not normalised: "..", "." and symlinks stay as they are.
 */
static __always_inline __u32 put_lexical(__u8 *buf, __u32 off, __s32 dfd, __u32 str_off, __u32 *ev_flags)
{
	struct file *dir = 0;
	__u32 n, pos, room;
	long m;

	if (off > STR_LIMIT || str_off > STR_LIMIT)
		return 0;
	if (dfd != AT_FDCWD_) {
		dir = fd_file(dfd);
		if (!dir)
			return 0;
	}
	n = put_file_path(buf, off, dir, ev_flags);
	if (n > VIGIL_PATH_MAX)
		n = VIGIL_PATH_MAX;
	if (n < 2)
		return n;
	*ev_flags |= dfd == AT_FDCWD_ ? VIGIL_SYSF_RESOLVED_CWD : VIGIL_SYSF_RESOLVED_DIRFD;
	/* The base is n-1 characters and a NUL: the relative part goes after a '/' written over the NUL. The
	 * root "/" needs no second one. */
	if (n == 2) {
		pos = 1;
	} else {
		buf[off + n - 1] = '/';
		pos = n;
	}
	if (pos >= VIGIL_PATH_MAX - 1) {
		buf[off + pos - 1] = 0;
		*ev_flags |= VIGIL_SYSF_RESOLVED_TRUNCATED;
		return pos;
	}
	room = VIGIL_PATH_MAX - pos;
	m = bpf_probe_read_kernel_str(buf + off + pos, room, buf + str_off);
	if (m <= 0) {
		buf[off + pos - 1] = 0;
		return pos;
	}
	if (m >= room)
		*ev_flags |= VIGIL_SYSF_RESOLVED_TRUNCATED;
	n = pos + m;
	return n > VIGIL_PATH_MAX ? VIGIL_PATH_MAX : n;
}

/* ---- prefix matching ------------------------------------------------------------------------------------ */

enum prefix_list { LIST_PATH, LIST_SENSITIVE, LIST_SECRET, LIST_LOG };

struct match_ctx {
	__u32 off;        /* where the string starts in sys_out_heap */
	__u32 list;       /* enum prefix_list */
	__u32 count;
	__u32 matched;
};

/* Does prefix i start the string? */
static long match_cb(__u32 i, void *data)
{
	struct match_ctx *m = data;
	struct syscall_path_prefix *pfx;
	struct sys_out *out;
	__u32 zero = 0, off = m->off;

	if (i >= m->count)
		return 1;
	if (m->list == LIST_SENSITIVE)
		pfx = bpf_map_lookup_elem(&sys_sensitive_prefixes, &i);
	else if (m->list == LIST_SECRET)
		pfx = bpf_map_lookup_elem(&sys_secret_prefixes, &i);
	else if (m->list == LIST_LOG)
		pfx = bpf_map_lookup_elem(&sys_log_prefixes, &i);
	else
		pfx = bpf_map_lookup_elem(&sys_path_prefixes, &i);
	out = bpf_map_lookup_elem(&sys_out_heap, &zero);
	if (!pfx || !out || off > STR_LIMIT)
		return 1;
	if (!pfx->len || !masked_prefix(out->data + off, pfx->prefix, pfx->mask))
		return 0;
	m->matched = 1;
	return 1;
}

static __always_inline int prefix_match(__u32 off, enum prefix_list list, __u32 count)
{
	struct match_ctx m = { .off = off, .list = list, .count = count, .matched = 0 };

	if (!count)
		return 0;
	bpf_loop(VIGIL_SYS_PREFIX_MAX, match_cb, &m, 0);
	return m.matched;
}

/* ---- file group ------------------------------------------------------------------------------------------- */

static __always_inline int is_modification(__u32 op, __u32 ev_flags)
{
	return op == VIGIL_SYS_OPEN ? (ev_flags & VIGIL_SYSF_WRITE) != 0 : 1;
}

/* Is the event type enabled only for what passes its restriction (restricted_ops)? */
static __always_inline int restricted(struct syscall_filter_config *cfg, __u32 op)
{
	return (cfg->restricted_ops >> (op & 63)) & 1;
}

/*
 * What a restricted event must be flagged with to be reported, as the configuration asks: with sensitive
 * writes, VIGIL_SYSF_SENSITIVE (a modification under a sensitive prefix), VIGIL_SYSF_LOG_TRUNCATED,
 * VIGIL_SYSF_LOG_REMOVED or VIGIL_SYSF_LOG_REPLACED (a log under a log prefix truncated, removed or renamed
 * over); with secret reads, VIGIL_SYSF_SECRET (a read under a secret prefix).
 */
static __always_inline __u32 restricted_pass(struct syscall_filter_config *cfg)
{
	return ((cfg->flags & VIGIL_SYSCFG_SENSITIVE_WRITES) ?
			VIGIL_SYSF_SENSITIVE | VIGIL_SYSF_LOG_TRUNCATED | VIGIL_SYSF_LOG_REMOVED | VIGIL_SYSF_LOG_REPLACED : 0) |
	       ((cfg->flags & VIGIL_SYSCFG_SECRET_READS) ? VIGIL_SYSF_SECRET : 0);
}

/*
 * Whether `head`, a path's first 8 bytes, are those of a secret prefix (syscall_filter_config.secret_head):
 * a restricted read-only open of an absolute path whose head is none of them is turned down before its path
 * is read and matched, nearly every open of a host, each ~0.35 us cheaper (an openat+close storm of
 * /dev/null, measured by hand). Compares in the config rather than a hash map's lookup, a helper call every
 * open paid. A global function: the verifier sees its loop once.
 */
__noinline int secret_head_known(__u64 head)
{
	struct syscall_filter_config *cfg = get_config();

	if (!cfg)
		return 1;
	for (int i = 0; i < VIGIL_SYS_PREFIX_MAX; i++) {
		if (i >= cfg->secret_head_count)
			return 0;
		if (cfg->secret_head[i] == head)
			return 1;
	}
	return 0;
}

/*
 * Whether the path at buf[off] (resolved, or as given) starts with none of the secret prefixes' first 8 bytes:
 * a few compares instead of the prefix loop (~33 ns an entry) for the relative opens that were resolved
 * before they could be turned down. 0 (match it) when the heads are not all 8 bytes long.
 */
static __always_inline int secret_head_miss(struct syscall_filter_config *cfg, __u8 *buf, __u32 off)
{
	__u64 head;

	if (!(cfg->flags & VIGIL_SYSCFG_SECRET_HEADS) || off > STR_LIMIT)
		return 0;
	__builtin_memcpy(&head, buf + off, sizeof(head));
	return !secret_head_known(head);
}

/*
 * Whether the file open as `fd` is an entry of a directory a secret prefix names (by the directory's inode
 * number: syscall_filter_config.secret_dir_ino) whose name its heads allow (sys_secret_dirs). It is the
 * second look at a read-only open whose path as given starts no secret prefix, which may still reach a secret
 * through a symlink, "..", "//" or /proc/<pid>/root: a hit only says "resolve it through the fd"; the
 * secret prefixes decide on the result. It costs the fd's file, ~4 loads and a compare per directory, where
 * resolving every open (filters.resolvePaths: all) walks every path. A global function: verified once.
 */
__noinline int secret_dir_gate(int fd)
{
	struct syscall_filter_config *cfg = get_config();
	struct syscall_secret_dir *sd;
	const unsigned char *name;
	struct dentry *d, *parent;
	__u64 ino, head = 0;
	struct file *f;
	__u32 i;

	if (!cfg || !cfg->secret_dir_count)
		return 0;
	f = fd_file(fd);
	if (!f)
		return 0;
	if (vigil_direct_reads) {
		d = VIGIL_CAST(f, struct file)->f_path.dentry;
		parent = VIGIL_CAST(d, struct dentry)->d_parent;
		ino = VIGIL_CAST(VIGIL_CAST(parent, struct dentry)->d_inode, struct inode)->i_ino;
	} else {
		d = BPF_CORE_READ(f, f_path.dentry);
		parent = BPF_CORE_READ(d, d_parent);
		ino = BPF_CORE_READ(parent, d_inode, i_ino);
	}
	for (i = 0; i < VIGIL_SECRET_DIRS_MAX; i++) {
		if (i >= cfg->secret_dir_count)
			return 0;
		if (cfg->secret_dir_ino[i] == ino)
			break;
	}
	if (i >= VIGIL_SECRET_DIRS_MAX)
		return 0;
	sd = bpf_map_lookup_elem(&sys_secret_dirs, &i);
	if (!sd)
		return 0;
	if (sd->any)
		return 1;
	name = vigil_direct_reads ? VIGIL_CAST(d, struct dentry)->d_name.name : BPF_CORE_READ(d, d_name.name);
	/* A name shorter than 8 bytes is read with what follows its NUL: the NUL differs from a longer head's byte. */
	if (bpf_probe_read_kernel(&head, sizeof(head), name))
		return 1;
	for (int k = 0; k < VIGIL_SECRET_DIR_HEADS; k++)
		if (k < sd->count && !((head ^ sd->head[k]) & sd->mask[k]))
			return 1;
	return 0;
}

/* open_turned_down's `fd` for an open whose fd is not known yet, whose gate runs later (io_uring: at completion). */
#define GATE_LATER -2

/*
 * A restricted open that can be turned down before its path is read: a read-only open when secret reads are
 * not asked for, a write-open when sensitive writes are not. Counted as not sensitive. At exit (`fd` >= 0: the
 * open succeeded), a read-only open whose path missed the secret heads is kept when its file passes the
 * secret directories' gate, and marked to be resolved through its fd (p->resolve_fd, returned as -1); with
 * GATE_LATER, -1 says that only the gate can tell. `kernel` (a constant): the path is in kernel memory.
 */
static __always_inline int open_turned_down(struct syscall_filter_config *cfg, int write, const char *path, long fd, const int kernel)
{
	__u64 head;

	if (!restricted(cfg, VIGIL_SYS_OPEN))
		return 0;
	if (!(cfg->flags & (write ? VIGIL_SYSCFG_SENSITIVE_WRITES : VIGIL_SYSCFG_SECRET_READS)))
		goto down;
	/* A secret read must start with one of the heads; a relative path (or one unreadable here) is decided
	 * later, on its resolved path. Bytes past a shorter path's NUL match no head: it is shorter than them all. */
	if (!write && (cfg->flags & VIGIL_SYSCFG_SECRET_HEADS) &&
	    !(kernel ? bpf_probe_read_kernel(&head, sizeof(head), path) : bpf_probe_read_user(&head, sizeof(head), path)) &&
	    (head & 0xff) == '/' && !secret_head_known(head)) {
		if ((cfg->flags & VIGIL_SYSCFG_SECRET_DIRS) && (fd == GATE_LATER || (fd >= 0 && secret_dir_gate((int)fd))))
			return -1;
		goto down;
	}
	return 0;
down:
	stat_inc(VIGIL_SYS_STAT_DROP_NOT_SENSITIVE);
	return 1;
}

/*
 * The flag of a log file truncated (an O_TRUNC open, truncate, ftruncate) or removed (unlink, rename away: the
 * old path) when the path at off is under a log prefix, and of one replaced (a rename onto off2, its new
 * path) when that is under one; else 0. A global function: the verifier checks it
 * once, on its own, and its callers see one unknown value rather than a branch per op and per match. The
 * exit programs that inline emit_file were at ~0.8 M of the verifier's 1 M instruction budget, and these
 * compares inlined passed it.
 */
__noinline __u32 log_flag(__u32 op, __u32 flags, __u32 off, __u32 off2, __u32 count)
{
	__u32 flag;

	if (op == VIGIL_SYS_RENAME) {
		/* Its new path under a log prefix: `mv /tmp/empty /var/log/auth.log` erases the log it replaces. */
		flag = prefix_match(off, LIST_LOG, count) ? VIGIL_SYSF_LOG_REMOVED : 0;
		if (off2 && prefix_match(off2, LIST_LOG, count))
			flag |= VIGIL_SYSF_LOG_REPLACED;
		return flag;
	}
	if (op == VIGIL_SYS_UNLINK)
		flag = VIGIL_SYSF_LOG_REMOVED;
	else if (op == VIGIL_SYS_TRUNCATE || (op == VIGIL_SYS_OPEN && (flags & O_TRUNC_)))
		flag = VIGIL_SYSF_LOG_TRUNCATED;
	else
		return 0;
	return prefix_match(off, LIST_LOG, count) ? flag : 0;
}

/*
 * VIGIL_SYSF_SENSITIVE when the path at off, or at off2 (the second path: a rename's new path, the link made;
 * 0: none), is under a sensitive prefix. A symlink's target (op VIGIL_SYS_SYMLINK, len: its length with its NUL)
 * also matches as a directory: "/etc" is tested as "/etc/", so that `ln -s /etc /tmp/x` is not missed for want of
 * the slash the prefixes end with. Global, as log_flag: with both, the exit programs verify in ~0.23 M
 * instructions, not ~0.8 M.
 */
__noinline __u32 sensitive_flag(__u32 off, __u32 off2, __u32 op, __u32 len, __u32 count)
{
	struct sys_out *out;
	__u32 zero = 0, end;
	int hit;

	if (off2 && prefix_match(off2, LIST_SENSITIVE, count))
		return VIGIL_SYSF_SENSITIVE | VIGIL_SYSF_SENSITIVE_PATH2;
	if (prefix_match(off, LIST_SENSITIVE, count))
		return VIGIL_SYSF_SENSITIVE;
	if (op != VIGIL_SYS_SYMLINK || len < 2)
		return 0;
	out = bpf_map_lookup_elem(&sys_out_heap, &zero);
	end = off + len - 1; /* the NUL */
	if (!out || end < 1 || end >= OUT_SZ || out->data[end] || out->data[end - 1] == '/')
		return 0;
	/* The heap is this CPU's scratch copy of the record: the slash is put in for the match and taken out. */
	out->data[end] = '/';
	hit = prefix_match(off, LIST_SENSITIVE, count);
	out->data[end] = 0;
	return hit ? VIGIL_SYSF_SENSITIVE : 0;
}

/* ---- in-kernel kill rules ----------------------------------------------------------------------------- */

struct kill_ctx {
	struct kill_scan scan;
	__u32 off;        /* the path as given, in sys_out_heap */
	__u32 foff;       /* the resolved path, or the path as given */
	__u32 off2;       /* the second path as given (rename, link, symlink), 0: none */
	__u32 foff2;      /* the second path resolved, or as given, 0: none */
	/*
	 * The process's comm, NUL-padded: its thread group leader's, as process.comm in user space. A thread may
	 * name itself otherwise (PR_SET_NAME: "C2 CompilerThre" of a java), and a rule exempting a process by
	 * name must not kill it for one of its threads' names.
	 */
	__u64 comm[2];
};

/* Does value i start its field's string? As match_cb, under the value's mask. */
static long kill_value_cb(__u32 i, void *data)
{
	struct kill_ctx *k = data;
	struct syscall_kill_value *v;
	struct sys_out *out;
	__u32 zero = 0, off;

	if (i >= k->scan.count)
		return 1;
	v = kill_value_at(&sys_kill_values, &k->scan, i);
	if (!v)
		return 0;
	if (v->field == VIGIL_KILL_COMM) {
		if (!kill_comm_matches(k->comm, v))
			return 0;
	} else if (v->field == VIGIL_KILL_PATH || v->field == VIGIL_KILL_FILE || v->field == VIGIL_KILL_PATH2 || v->field == VIGIL_KILL_FILE2) {
		out = bpf_map_lookup_elem(&sys_out_heap, &zero);
		off = v->field == VIGIL_KILL_FILE ? k->foff : v->field == VIGIL_KILL_PATH ? k->off : v->field == VIGIL_KILL_FILE2 ? k->foff2 : k->off2;
		/* A call without a second path has no value to match there (rules about one name only the calls with one). */
		if (!out || !off || off > STR_LIMIT || !masked_prefix(out->data + off, v->prefix, v->mask))
			return 0;
	} else {
		return 0; /* an exec field: never on a file event */
	}
	kill_value_hit(&k->scan, v);
	return 0;
}

_Static_assert(VIGIL_SYSF_KILL_DRY_RUN == VIGIL_SYSF_KILL_SENT << (VIGIL_KILL_DRY_RUN - VIGIL_KILL_SENT) &&
	       VIGIL_SYSF_KILL_REFUSED == VIGIL_SYSF_KILL_SENT << (VIGIL_KILL_REFUSED - VIGIL_KILL_SENT) &&
	       VIGIL_SYSF_KILL_FAILED == VIGIL_SYSF_KILL_SENT << (VIGIL_KILL_FAILED - VIGIL_KILL_SENT),
	       "a kill result's file event flag is VIGIL_SYSF_KILL_SENT shifted by the result");

/*
 * Checks a file event about to be reported against the kill rules in force and, on the first that matches,
 * signals the current process (kill_verdict). Returns 0 when none matched, else kill_report's id | signal <<
 * 16 | result << 24. A global function: verified once, on its own.
 */
__noinline __u64 kill_check(__u32 op, __u32 foff2, __u32 foff, __u32 ev_flags, __s64 ret)
{
	struct syscall_filter_config *cfg = get_config();
	struct kill_ctx k = {};
	struct sys_out *out;
	__u32 zero = 0;
	struct syscall_kill_rule *r;
	__u32 result;
	__s64 scope = -1;

	if (!cfg || cfg->kill.rule_count == cfg->kill.deny_count)
		return 0;
	kill_scan_start(&k.scan, &cfg->kill);
	/* The record being made is at the start of sys_out_heap: the path as given follows it, then path2. */
	k.off = sizeof(struct file_event);
	k.foff = foff;
	k.foff2 = foff2;
	out = bpf_map_lookup_elem(&sys_out_heap, &zero);
	if (out && ((struct file_event *)out->data)->path2_len)
		k.off2 = sizeof(struct file_event) + ((struct file_event *)out->data)->path_len;
	leader_comm_of((struct task_struct *)bpf_get_current_task(), k.comm);
	bpf_loop(VIGIL_KILL_VALUES_MAX, kill_value_cb, &k, 0);
	for (__u32 i = 0; i < VIGIL_KILL_RULES_MAX; i++) {
		if (i >= cfg->kill.rule_count)
			return 0;
		r = kill_rule_at(&sys_kill_rules, &cfg->kill, i);
		if (!r || !(r->ops & (1ULL << (op & 63))))
			continue;
		if ((ev_flags & r->want_flags) != r->want_flags || (ev_flags & r->deny_flags))
			continue;
		if ((r->ret == VIGIL_KILL_RET_OK && ret < 0) || (r->ret == VIGIL_KILL_RET_ERR && ret >= 0))
			continue;
		if (!kill_terms_hold(r, k.scan.matched[i]) || !kill_in_scope(&sys_kill_scopes, &cfg->kill, r, i, &scope))
			continue;
		result = kill_verdict(&cfg->kill, r);
		/* Counted here too: a record the ring has no room for is lost, the kill is not. */
		stat_inc(VIGIL_SYS_STAT_KILL_MATCHED);
		if (result == VIGIL_KILL_SENT)
			stat_inc(VIGIL_SYS_STAT_KILL_SENT);
		return kill_report(r, result);
	}
	return 0;
}

/* ---- in-kernel deny rules on connects, unconnected datagrams and binds ---------------------------------- */

/* Which call a deny hook runs in (deny_check's `kind`, a constant per program). */
#define DENY_CONNECT 0
#define DENY_DATAGRAM 1  /* a UDP datagram sent with an address: a connect in all but name */
#define DENY_BIND 2
#define DENY_UNIX 3      /* a connect to a unix socket (cgroup/connect_unix, 6.7) */
#define DENY_UNIX_DATAGRAM 4 /* a unix datagram sent to a path without a connect (cgroup/sendmsg_unix, 6.7) */

/*
 * A connect (bind) a deny rule matched, for the call's exit to report (exit_net): by thread. The cgroup hook
 * runs inside the syscall, between its entry and exit tracepoints; a note older than the call's entry is one
 * whose call was not reported (filtered at entry, or made without the syscall, by io_uring), and is not
 * taken for this one.
 */
struct deny_note {
	__u64 ktime;             /* when the hook decided */
	__u32 rule;              /* syscall_kill_rule.id */
	__u32 result;            /* enum vigil_kill_result */
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct deny_note);
} sys_deny_notes SEC(".maps");

/* A unix connect's path, as deny rules compare it (VIGIL_KILL_UPATH): NUL-padded to a prefix's length. */
struct deny_path {
	__u8 s[VIGIL_SYS_PREFIX_LEN];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct deny_path);
} sys_deny_path SEC(".maps");

struct deny_ctx {
	struct kill_scan scan;
	struct vigil_deny_addr peer;  /* a connect's (datagram's) peer, a bind's own address */
	__u64 port;              /* host order, in the low 16 bits (VIGIL_KILL_RPORT, LPORT) */
	__u64 comm[2];           /* the process's comm, its thread group leader's (see kill_ctx) */
	__u32 bind;              /* the call is a bind: its address is compared with LADDR and LPORT values */
	__u32 unix_path;         /* a unix connect: its path is in sys_deny_path, compared with UPATH values */
};

/* Does value i match the call's address or process? As kill_value_cb, on the fields of a connect or bind. */
static long deny_value_cb(__u32 i, void *data)
{
	struct deny_ctx *k = data;
	struct syscall_kill_value *v;
	__u64 *peer = (__u64 *)&k->peer;

	if (i >= k->scan.count)
		return 1;
	v = kill_value_at(&sys_kill_values, &k->scan, i);
	if (!v)
		return 0;
	if (v->field == VIGIL_KILL_COMM) {
		if (!kill_comm_matches(k->comm, v))
			return 0;
	} else if (v->field == (k->bind ? VIGIL_KILL_LADDR : VIGIL_KILL_RADDR)) {
		/* Family and address under the CIDR's mask: three words, unrolled (as kill_comm_matches). */
		for (int w = 0; w < sizeof(k->peer) / 8; w++)
			if ((peer[w] ^ *(__u64 *)(v->prefix + w * 8)) & *(__u64 *)(v->mask + w * 8))
				return 0;
	} else if (v->field == (k->bind ? VIGIL_KILL_LPORT : VIGIL_KILL_RPORT)) {
		if ((k->port ^ *(__u64 *)v->prefix) & *(__u64 *)v->mask)
			return 0;
	} else if (v->field == VIGIL_KILL_UPATH && k->unix_path) {
		__u32 zero = 0;
		struct deny_path *path = bpf_map_lookup_elem(&sys_deny_path, &zero);

		if (!path || !masked_prefix(path->s, v->prefix, v->mask))
			return 0;
	} else {
		return 0; /* a file or exec field, or the other call's address: never here */
	}
	kill_value_hit(&k->scan, v);
	return 0;
}

/*
 * A datagram sent to an address without a connect (UDP, or a unix datagram to a path), which deny rule `rule`
 * matched (the datagram hooks): reported as a connect event of its own, as the sensor's filters let a connect
 * through (no syscall exit will report it: sendto and sendmsg are not traced). Without it a rule about a peer
 * would be evaded by a sendto to that peer, where a connect was denied.
 */
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym __weak;

/*
 * A unix socket address's sun_path into `dst` (VIGIL_UNIX_PATH_MAX bytes, sizeof(sun_path)): its bytes as
 * given, an abstract name's leading NUL too. How many were read; 0 for an unnamed socket or an address that
 * cannot be read.
 */
_Static_assert(VIGIL_UNIX_PATH_MAX == sizeof(((struct sockaddr_un *)0)->sun_path), "net_event.unix_path holds a whole sun_path");
static __always_inline __u32 read_sun_path(struct bpf_sock_addr *ctx, void *dst)
{
	struct bpf_sock_addr_kern *sa = bpf_cast_to_kern_ctx(ctx);
	__u32 len = sa ? BPF_CORE_READ(sa, uaddrlen) : 0;

	if (len <= offsetof(struct sockaddr_un, sun_path))
		return 0;
	len -= offsetof(struct sockaddr_un, sun_path);
	if (len > VIGIL_UNIX_PATH_MAX)
		len = VIGIL_UNIX_PATH_MAX;
	if (bpf_probe_read_kernel(dst, len & 127, (const char *)BPF_CORE_READ(sa, uaddr) + offsetof(struct sockaddr_un, sun_path)))
		return 0;
	return len;
}

static __always_inline void deny_datagram_report(struct bpf_sock_addr *ctx, struct deny_ctx *k, __u32 rule, __u32 result, const int v6)
{
	struct net_event *e;

	if (!filter_pass(VIGIL_SYS_CONNECT, 0))
		return;
	e = vigil_reserve(sizeof(*e), VIGIL_OP_NET);
	if (!e)
		return;
	__builtin_memset((void *)e + sizeof(e->hdr), 0, sizeof(*e) - sizeof(e->hdr));
	vigil_fill_header(&e->hdr, VIGIL_OP_NET, sizeof(*e));
	e->ret = result == VIGIL_KILL_SENT ? -EPERM_ : 0;
	e->op = VIGIL_SYS_CONNECT;
	e->nr = VIGIL_SYS_NR_DATAGRAM;
	e->ev_flags = VIGIL_SYSF_DATAGRAM | (VIGIL_SYSF_KILL_SENT << (result - VIGIL_KILL_SENT));
	e->fd = -1;
	e->family = k->peer.family;
	e->type = ctx->type;
	e->protocol = ctx->protocol;
	e->kill_rule = rule;
	if (k->peer.family == AF_UNIX_) {
		/* The path as the connect's event carries it. */
		e->unix_path_len = read_sun_path(ctx, e->unix_path);
	} else {
		e->rport = k->port;
		__builtin_memcpy(e->raddr, k->peer.addr, 16);
		if (!v6)
			__builtin_memset(e->raddr + 4, 0, 12);
	}
	vigil_submit(ctx, e, sizeof(*e), VIGIL_OP_NET);
}

/*
 * An abstract name's NULs past its first byte, within its `len` bytes, as 0xff: the name is its whole length
 * (the kernel's, and the event's "@name\u0000…"), not a C string. Compared as one, "@a\0b", or "@a" padded
 * with NULs to sizeof(sun_path) as many programs pass it, would equal a rule's "@a" and be denied, where the
 * rule engine, comparing the event's name, finds no match. No rule's value holds 0xff (a UTF-8 string never
 * does) nor a NUL (refused by the compiler), so such a name equals none, and starts with those its bytes
 * before the first NUL start with. Eight bytes at a time: per byte, a zero's top bit, widened to 0xff.
 */
static __always_inline void abstract_nuls_marked(__u8 *s, __u32 len)
{
	const __u64 low7 = 0x7f7f7f7f7f7f7f7fULL;

	for (int w = 0; w < (VIGIL_UNIX_PATH_MAX + 7) / 8; w++) {
		__u64 x = *(__u64 *)(s + w * 8);
		__u64 zero = ~(((x & low7) + low7) | x | low7); /* 0x80 in each zero byte, exactly */
		__s32 left = (__s32)len - w * 8;

		if (left <= 0)
			break;
		if (left < 8)
			zero &= (1ULL << (left * 8)) - 1; /* only the name's own bytes: the rest is the buffer's zeros */
		*(__u64 *)(s + w * 8) = x | ((zero >> 7) * 0xff);
	}
}

/*
 * A unix connect's path into sys_deny_path, as the event shows it: the path (up to its first NUL, as the
 * kernel reads it), or "@" and an abstract name (its whole length, NULs marked: abstract_nuls_marked). 0 when
 * it cannot be read (the rules are not checked: the call goes on).
 */
static __always_inline int deny_unix_path(struct bpf_sock_addr *ctx)
{
	struct deny_path *path;
	__u32 zero = 0, len;

	path = bpf_map_lookup_elem(&sys_deny_path, &zero);
	if (!path)
		return 0;
	__builtin_memset(path->s, 0, sizeof(path->s));
	len = read_sun_path(ctx, path->s);
	if (!len)
		return 0; /* an unnamed socket, or an unreadable address: no path to compare */
	if (!path->s[0]) {
		/* Abstract: "@" in place of the NUL that starts it, as decode writes it. */
		path->s[0] = '@';
		abstract_nuls_marked(path->s, len);
	}
	return 1;
}

/*
 * Checks a connect, a datagram sent to an address without one (UDP, unix), or a bind (`kind`) against the deny rules
 * in force (cgroup hooks, before the connection is made, the datagram sent or the address taken). Returns 0
 * to deny it (the caller gets EPERM), 1 to let it go: no rule matched, or the one that did is a dry run or
 * the process is protected. A match is counted, and noted for the call's exit (sys_deny_notes) or, for a
 * datagram, reported at once (deny_datagram_report).
 */
static __always_inline int deny_check(struct bpf_sock_addr *ctx, const int v6, const int kind)
{
	const int unix = kind == DENY_UNIX || kind == DENY_UNIX_DATAGRAM;
	const int datagram = kind == DENY_DATAGRAM || kind == DENY_UNIX_DATAGRAM;
	const __u64 op = 1ULL << (kind == DENY_BIND ? VIGIL_SYS_BIND : unix ? VIGIL_KILL_OP_UNIX_CONNECT : VIGIL_SYS_CONNECT);
	struct syscall_filter_config *cfg = get_config();
	struct deny_ctx k = {};
	struct syscall_kill_rule *r;
	struct deny_note note;
	__u32 tid;
	__s64 scope = -1;

	if (!cfg || !cfg->kill.deny_count)
		return 1;
	kill_scan_start(&k.scan, &cfg->kill);
	/* Which hook: a constant, so that each reads only the context fields its program type may (connect4 has no user_ip6). */
	if (unix) {
		k.peer.family = AF_UNIX_;
		k.unix_path = deny_unix_path(ctx);
		if (!k.unix_path)
			return 1;
	} else if (!v6) {
		k.peer.family = AF_INET_;
		*(__u32 *)&k.peer.addr[0] = ctx->user_ip4;
	} else {
		k.peer.family = AF_INET6_;
		*(__u32 *)&k.peer.addr[0] = ctx->user_ip6[0];
		*(__u32 *)&k.peer.addr[4] = ctx->user_ip6[1];
		*(__u32 *)&k.peer.addr[8] = ctx->user_ip6[2];
		*(__u32 *)&k.peer.addr[12] = ctx->user_ip6[3];
	}
	if (!unix)
		k.port = bpf_ntohs(ctx->user_port);
	k.bind = kind == DENY_BIND;
	leader_comm_of((struct task_struct *)bpf_get_current_task(), k.comm);
	bpf_loop(VIGIL_KILL_VALUES_MAX, deny_value_cb, &k, 0);
	for (__u32 i = 0; i < VIGIL_KILL_RULES_MAX; i++) {
		if (i >= cfg->kill.rule_count)
			return 1;
		r = kill_rule_at(&sys_kill_rules, &cfg->kill, i);
		if (!r || r->signal || !(r->ops & op))
			continue;
		if (!kill_terms_hold(r, k.scan.matched[i]) || !kill_in_scope(&sys_kill_scopes, &cfg->kill, r, i, &scope))
			continue;
		note.ktime = bpf_ktime_get_ns();
		note.rule = r->id;
		note.result = rule_verdict(&cfg->kill, r);
		if (datagram) {
			if (note.result >= VIGIL_KILL_SENT && note.result <= VIGIL_KILL_FAILED)
				deny_datagram_report(ctx, &k, note.rule, note.result, v6);
		} else {
			tid = (__u32)bpf_get_current_pid_tgid();
			bpf_map_update_elem(&sys_deny_notes, &tid, &note, BPF_ANY);
		}
		stat_inc(VIGIL_SYS_STAT_DENY_MATCHED);
		if (note.result != VIGIL_KILL_SENT)
			return 1;
		stat_inc(VIGIL_SYS_STAT_DENIED);
		return 0;
	}
	return 1;
}

SEC("cgroup/connect4")
int deny_connect4(struct bpf_sock_addr *ctx)
{
	return deny_check(ctx, 0, DENY_CONNECT);
}

SEC("cgroup/connect6")
int deny_connect6(struct bpf_sock_addr *ctx)
{
	return deny_check(ctx, 1, DENY_CONNECT);
}

/* Connects to unix sockets (6.7): the path a deny rule about it names (a runtime's API socket, from a container). */
SEC("cgroup/connect_unix")
int deny_connect_unix(struct bpf_sock_addr *ctx)
{
	return deny_check(ctx, 0, DENY_UNIX);
}

/* Unix datagrams sent to a path without a connect (sendto): the same rules, which a sendto would go around. */
SEC("cgroup/sendmsg_unix")
int deny_sendmsg_unix(struct bpf_sock_addr *ctx)
{
	return deny_check(ctx, 0, DENY_UNIX_DATAGRAM);
}

/* UDP sends with an address of their own (a connected socket's plain sends do not run these): the peer a deny rule is about, reached without a connect. */
SEC("cgroup/sendmsg4")
int deny_sendmsg4(struct bpf_sock_addr *ctx)
{
	return deny_check(ctx, 0, DENY_DATAGRAM);
}

SEC("cgroup/sendmsg6")
int deny_sendmsg6(struct bpf_sock_addr *ctx)
{
	return deny_check(ctx, 1, DENY_DATAGRAM);
}

/* Binds: the address a process asks for, before it is taken (a listener on a port a rule keeps free). */
SEC("cgroup/bind4")
int deny_bind4(struct bpf_sock_addr *ctx)
{
	return deny_check(ctx, 0, DENY_BIND);
}

SEC("cgroup/bind6")
int deny_bind6(struct bpf_sock_addr *ctx)
{
	return deny_check(ctx, 1, DENY_BIND);
}

/* The dfd of a path resolved against no directory fd (a symlink's target), which no fd is. */
#define NO_DIR_FD (-1)

/*
 * A file record of the call in p, with its result. `links` (a constant), when not 0, says the call is a link or
 * a symlink, known to the program: the compiler folds every test of the op for the other kinds away (`kind`).
 * Link and symlink are reported by programs of their own (exit_link, iou_*_link) that way, so that the others do
 * not test for them: every compare of an op the verifier does not know leaves it one more path through the rest
 * of this function, in each program that inlines it. Testing for rename, link and symlink here took exit_file
 * from ~0.30 M verified instructions to ~0.46 M, iou_submit from ~0.55 M to ~0.86 M of its 1 M, and the sensor's
 * load from ~4.6 s to ~7.3 s. What tells a symlink from a link here is its dfd (NO_DIR_FD), not a test of op.
 */
static __always_inline int emit_file_of(void *ctx, struct sys_pending *p, long ret, const int links)
{
	struct syscall_filter_config *cfg = get_config();
	__u32 zero = 0, off, n, foff, foff2 = 0, ev_flags = p->ev_flags, op = p->op, kind = links ? VIGIL_SYS_LINK : op;
	__s32 dfd = p->args[A_DFD], dfd2 = p->args[A_DFD2];
	struct sys_out *out = bpf_map_lookup_elem(&sys_out_heap, &zero);
	struct file_event *e;
	__u8 *buf;
	int hit, relative, head_miss = -1; /* the path as given missed the secret heads: 1, 0, or -1 not asked */
	__u64 kill;

	if (!cfg || !out)
		return 0;
	buf = out->data;
	e = (struct file_event *)buf;
	off = sizeof(*e);

	/* The paths as given. */
	n = put_saved_path(buf, off, p, 0, &ev_flags);
	e->path_len = n;
	foff = off;
	if (!n)
		buf[off] = 0; /* fchmod/fchown/ftruncate have no path: filters see "" */
	off += n;
	n = 0;
	if (links || kind == VIGIL_SYS_RENAME) /* link and symlink have theirs too */
		n = put_saved_path(buf, off, p, 1, &ev_flags);
	e->path2_len = n;
	if (n)
		foff2 = off;
	off += n;

	/*
	 * Resolved paths: the file opened, the fd's file, or directory + relative path. The walk up the dentries
	 * costs about 1 us per open, so a read-only open of an absolute path is walked only when asked for
	 * (VIGIL_SYSCFG_RESOLVE_ALL): there the given path is what filters see.
	 */
	n = 0;
	/* A symlink's target is relative to the link's directory, not to a fd: never resolved. */
	relative = (!links || dfd != NO_DIR_FD) && e->path_len > 1 && foff <= STR_LIMIT && buf[foff] != '/';
	if (cfg->flags & (VIGIL_SYSCFG_RESOLVE | VIGIL_SYSCFG_RESOLVE_ALL)) {
		/* An unrestricted read-only open of an absolute path starting no secret prefix gets the restricted
		 * ones' second look here (open_turned_down): its file may be a secret all the same. */
		if (kind == VIGIL_SYS_OPEN && ret >= 0 && !p->iou_no_fd && !(ev_flags & VIGIL_SYSF_WRITE) && !relative && !p->resolve_fd &&
		    (cfg->flags & VIGIL_SYSCFG_SECRET_DIRS) && !restricted(cfg, op)) {
			head_miss = secret_head_miss(cfg, buf, foff);
			if (head_miss && secret_dir_gate((int)ret))
				p->resolve_fd = 1;
		}
		if ((kind == VIGIL_SYS_OPEN && ret >= 0 && !p->iou_no_fd &&
		     ((ev_flags & VIGIL_SYSF_WRITE) || relative || p->resolve_fd || (cfg->flags & VIGIL_SYSCFG_RESOLVE_ALL))) ||
		    p->args[A_FDONLY]) {
			/* An io_uring request's file is its own (its fd may be an index into the ring's fixed files). */
			struct file *f = p->args[A_FDONLY] == FDONLY_IOU_FILE ? iou_req_file(p) : fd_file(kind == VIGIL_SYS_OPEN ? (int)ret : dfd);

			if (f) {
				n = put_file_path(buf, off, f, &ev_flags);
				if (n)
					ev_flags |= VIGIL_SYSF_RESOLVED_FD;
			}
		} else if (relative) {
			n = put_lexical(buf, off, dfd, foff, &ev_flags);
		}
	}
	e->resolved_len = n;
	if (n)
		foff = off;
	off += n;
	n = 0;
	if ((cfg->flags & (VIGIL_SYSCFG_RESOLVE | VIGIL_SYSCFG_RESOLVE_ALL)) && foff2 && foff2 <= STR_LIMIT && buf[foff2] != '/')
		n = put_lexical(buf, off, dfd2, foff2, &ev_flags);
	e->resolved2_len = n;
	if (n)
		foff2 = off;
	off += n;

	/* Path filters: on the resolved path where there is one, else on the path as given. */
	if (cfg->prefix_count) {
		hit = prefix_match(foff, LIST_PATH, cfg->prefix_count);
		if (!hit && foff2)
			hit = prefix_match(foff2, LIST_PATH, cfg->prefix_count);
		if (!hit) {
			stat_inc(VIGIL_SYS_STAT_DROP_PATH);
			return 0;
		}
	}
	if (cfg->sensitive_count && is_modification(kind, ev_flags))
		ev_flags |= sensitive_flag(foff, foff2, op, e->path_len, cfg->sensitive_count);
	/*
	 * A log file truncated, removed or replaced: only truncating opens, truncates, unlinks and renames pay for
	 * the prefix loop, the others a call that returns at once. A rename's old path is a log moved away, its new
	 * path a log replaced.
	 */
	if (cfg->log_count)
		ev_flags |= log_flag(op, p->args[A_FLAGS], foff, foff2, cfg->log_count);
	/* The heads' answer for the path as given, when it was asked above and the path was not resolved since. */
	if (e->resolved_len)
		head_miss = -1;
	if (cfg->secret_count && kind == VIGIL_SYS_OPEN && !(ev_flags & VIGIL_SYSF_WRITE) &&
	    !(head_miss >= 0 ? head_miss : secret_head_miss(cfg, buf, foff)) &&
	    prefix_match(foff, LIST_SECRET, cfg->secret_count))
		ev_flags |= VIGIL_SYSF_SECRET;
	if (restricted(cfg, op) && !(ev_flags & restricted_pass(cfg))) {
		stat_inc(VIGIL_SYS_STAT_DROP_NOT_SENSITIVE);
		return 0;
	}
	/* The event is reported: the kill rules check it (what they match is what a rule in user space sees). */
	/* Deny rules share the set but never match an open: a set of deny rules alone costs opens nothing. */
	kill = cfg->kill.rule_count != cfg->kill.deny_count ? kill_check(op, foff2, foff, ev_flags, ret) : 0;
	if (kill)
		ev_flags |= VIGIL_SYSF_KILL_SENT << (((kill >> 24) & 7) - VIGIL_KILL_SENT);

	vigil_fill_header(&e->hdr, VIGIL_OP_FILE, off);
	iou_header(&e->hdr, p);
	e->ret = ret;
	e->op = op;
	e->nr = p->nr;
	e->ev_flags = ev_flags;
	e->flags = p->args[A_FLAGS];
	e->resolve = p->args[A_RESOLVE];
	e->mode = p->args[A_MODE];
	e->uid = p->args[A_UID];
	e->gid = p->args[A_GID];
	e->dfd = dfd;
	e->dfd2 = dfd2;
	e->kill_rule = kill & 0xffff;
	e->kill_signal = (kill >> 16) & 0xff;
	e->_pad0 = 0;
	vigil_output(ctx, buf, off, OUT_SZ, VIGIL_OP_FILE);
	return 0;
}

static __always_inline int emit_file(void *ctx, struct sys_pending *p, long ret)
{
	return emit_file_of(ctx, p, ret, 0);
}

/* The opens' writer (exit_open_emit, slot 0), defined with the opens below. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} open_emit SEC(".maps");

/*
 * The other file syscalls' exit. Where the opens' writer is loaded (open_args_at_exit), it writes these records
 * too: the request is copied from the thread's slot into the CPU's scratch slot, where the writer finds the
 * opens' (its fixed part and the strings' bytes, not the slot's 8.5 KiB), and handed over by a tail call. The
 * verifier then checks emit_file once, not once more here (~0.4 s at every start, bench/startup). The copy
 * costs nothing measurable (bpf_stats, 4 × 100 k chmod, this program with its writer: 731-771 ns per call;
 * with its own copy of emit_file: 745-794); copying the fixed part with bpf_probe_read_kernel cost ~100 ns.
 * Where opens take their arguments at entry, the record is written here: the constant leaves the other
 * branch dead, unverified.
 */
SEC("tp/syscalls/sys_exit_openat")
int exit_file(struct syscall_trace_exit *ctx)
{
	struct sys_pending *p = pending_take(ctx->nr), *s;
	__u32 zero = 0;

	if (!p)
		return 0;
	if (!open_args_at_exit) {
		emit_file(ctx, p, ctx->ret);
		pending_done();
		return 0;
	}
	s = bpf_map_lookup_elem(&sys_pending_tmpl, &zero);
	if (s) {
		__builtin_memcpy(s, p, offsetof(struct sys_pending, addr)); /* plain loads and stores, no call */
		if (p->len0)
			bpf_probe_read_kernel(s->s0, saved_len(p->len0), p->s0);
		if (p->len1)
			bpf_probe_read_kernel(s->s1, saved_len(p->len1), p->s1);
	}
	pending_done();
	if (!s)
		return 0;
	bpf_tail_call(ctx, &open_emit, 0);
	stat_inc(VIGIL_SYS_STAT_NO_PENDING); /* the writer is not in the array: not reported, counted */
	return 0;
}

/* A link or symlink record (emit_file_of, told so). */
static __always_inline void emit_link(void *ctx, struct sys_pending *p, long ret)
{
	emit_file_of(ctx, p, ret, 1);
}

/* link, linkat, symlink, symlinkat: emit_file_of with their second path. */
SEC("tp/syscalls/sys_exit_linkat")
int exit_link(struct syscall_trace_exit *ctx)
{
	struct sys_pending *p = pending_take(ctx->nr);

	if (!p)
		return 0;
	emit_link(ctx, p, ctx->ret);
	pending_done();
	return 0;
}

/* Opens: entry filters, then the restricted shortcut (open_turned_down: by the flags and the path's head). */
static __always_inline int enter_open(struct syscall_trace_enter *ctx, __s32 dfd, const char *path, __u64 flags, __u64 mode,
				      __u64 resolve)
{
	struct syscall_filter_config *cfg = filter_enter(VIGIL_SYS_OPEN);
	int write = (flags & O_ACCMODE_) != 0 || (flags & (O_CREAT_ | O_TRUNC_)) != 0;
	struct sys_pending *p;

	if (!cfg)
		return 0;
	if (open_turned_down(cfg, write, path, -1, 0))
		return 0;
	p = pending_start(VIGIL_SYS_OPEN, ctx->nr);
	if (!p)
		return 0;
	p->args[A_DFD] = dfd;
	p->args[A_FLAGS] = flags;
	p->args[A_MODE] = mode;
	p->args[A_RESOLVE] = resolve;
	if (write)
		p->ev_flags |= VIGIL_SYSF_WRITE;
	save_path(p, 0, path);
	return 0;
}

SEC("tp/syscalls/sys_enter_openat")
int enter_openat(struct syscall_trace_enter *ctx)
{
	return enter_open(ctx, ctx->args[0], (const char *)ctx->args[1], ctx->args[2], ctx->args[3], 0);
}

SEC("tp/syscalls/sys_enter_open")
int enter_open_legacy(struct syscall_trace_enter *ctx)
{
	return enter_open(ctx, AT_FDCWD_, (const char *)ctx->args[0], ctx->args[1], ctx->args[2], 0);
}

SEC("tp/syscalls/sys_enter_creat")
int enter_creat(struct syscall_trace_enter *ctx)
{
	return enter_open(ctx, AT_FDCWD_, (const char *)ctx->args[0], O_WRONLY_ | O_CREAT_ | O_TRUNC_, ctx->args[1], 0);
}

SEC("tp/syscalls/sys_enter_openat2")
int enter_openat2(struct syscall_trace_enter *ctx)
{
	struct open_how how = {};

	/* struct open_how is read at entry: the kernel copies it then too. Unreadable: flags 0 (reported as read-only). */
	bpf_probe_read_user(&how, sizeof(how), (const void *)ctx->args[2]);
	return enter_open(ctx, ctx->args[0], (const char *)ctx->args[1], how.flags, how.mode, how.resolve);
}

/*
 * Opens with their arguments read at exit (open_args_at_exit; see the top of this file): the entry's filters,
 * then the arguments from the saved registers, then the record, all in one program. `which` picks the
 * syscall's argument layout; the loader attaches these instead of enter_open* + exit_file.
 */
enum open_call { OPEN_AT, OPEN_AT2, OPEN_LEGACY, OPEN_CREAT };

/*
 * The opens' records are written by one program (exit_open_emit), entered by a tail call from each of the four
 * exits below. With emit_file inlined into each, the verifier checked it four times over at every start, ~0.45 s
 * each (strace -T of bpf(BPF_PROG_LOAD), kernel 6.18): most of the syscall sensor's load time. An exit leaves
 * its request in the CPU's scratch slot (sys_pending_tmpl), where the emitter finds it: one program run,
 * preemption off, nothing in between. The agent fills slot 0 at load.
 */
static __always_inline int exit_open_args(struct syscall_trace_exit *ctx, enum open_call which)
{
	struct syscall_filter_config *cfg;
	struct open_how how = {};
	struct sys_pending *p;
	struct pt_regs *regs;
	__u64 flags, mode, resolve = 0;
	__s32 dfd = AT_FDCWD_;
	const char *path;
	__u32 zero = 0;
	int write, down;

	if (!open_args_at_exit)
		return 0;
	cfg = filter_enter(VIGIL_SYS_OPEN);
	if (!cfg)
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	switch (which) {
	case OPEN_AT:
		dfd = PT_REGS_PARM1_SYSCALL(regs);
		path = (const char *)PT_REGS_PARM2_SYSCALL(regs);
		flags = PT_REGS_PARM3_SYSCALL(regs);
		mode = PT_REGS_PARM4_SYSCALL(regs);
		break;
	case OPEN_AT2:
		dfd = PT_REGS_PARM1_SYSCALL(regs);
		path = (const char *)PT_REGS_PARM2_SYSCALL(regs);
		/* Unreadable: flags 0 (reported as read-only), as at entry. */
		bpf_probe_read_user(&how, sizeof(how), (const void *)PT_REGS_PARM3_SYSCALL(regs));
		flags = how.flags;
		mode = how.mode;
		resolve = how.resolve;
		break;
	case OPEN_LEGACY:
		path = (const char *)PT_REGS_PARM1_SYSCALL(regs);
		flags = PT_REGS_PARM2_SYSCALL(regs);
		mode = PT_REGS_PARM3_SYSCALL(regs);
		break;
	default:
		path = (const char *)PT_REGS_PARM1_SYSCALL(regs);
		flags = O_WRONLY_ | O_CREAT_ | O_TRUNC_;
		mode = PT_REGS_PARM2_SYSCALL(regs);
		break;
	}
	write = (flags & O_ACCMODE_) != 0 || (flags & (O_CREAT_ | O_TRUNC_)) != 0;
	down = open_turned_down(cfg, write, path, ctx->ret, 0);
	if (down > 0)
		return 0;
	p = bpf_map_lookup_elem(&sys_pending_tmpl, &zero);
	if (!p)
		return 0;
	pending_init(p, VIGIL_SYS_OPEN, ctx->nr);
	p->resolve_fd = down < 0;
	p->active = 0; /* a scratch slot: no exit will look for it */
	p->args_at_exit = 1;
	p->args[A_DFD] = dfd;
	p->args[A_FLAGS] = flags;
	p->args[A_MODE] = mode;
	p->args[A_RESOLVE] = resolve;
	p->uptr[0] = (__u64)path;
	if (write)
		p->ev_flags |= VIGIL_SYSF_WRITE;
	bpf_tail_call(ctx, &open_emit, 0);
	stat_inc(VIGIL_SYS_STAT_NO_PENDING); /* the emitter is not in the array: not reported, counted */
	return 0;
}

/* The record of a file syscall its exit program left in the scratch slot (see open_emit, exit_file). Loaded, never attached. */
SEC("tp/syscalls/sys_exit_openat")
int exit_open_emit(struct syscall_trace_exit *ctx)
{
	struct sys_pending *p;
	__u32 zero = 0;

	if (!open_args_at_exit)
		return 0;
	p = bpf_map_lookup_elem(&sys_pending_tmpl, &zero);
	if (p)
		emit_file(ctx, p, ctx->ret);
	return 0;
}

SEC("tp/syscalls/sys_exit_openat")
int exit_openat(struct syscall_trace_exit *ctx)
{
	return exit_open_args(ctx, OPEN_AT);
}

SEC("tp/syscalls/sys_exit_openat2")
int exit_openat2(struct syscall_trace_exit *ctx)
{
	return exit_open_args(ctx, OPEN_AT2);
}

SEC("tp/syscalls/sys_exit_open")
int exit_open_legacy(struct syscall_trace_exit *ctx)
{
	return exit_open_args(ctx, OPEN_LEGACY);
}

SEC("tp/syscalls/sys_exit_creat")
int exit_creat(struct syscall_trace_exit *ctx)
{
	return exit_open_args(ctx, OPEN_CREAT);
}

/* The other file syscalls: one or two paths, plus mode, owner or flags. */
static __always_inline struct sys_pending *enter_file(struct syscall_trace_enter *ctx, __u32 op, __s32 dfd, const char *path)
{
	struct sys_pending *p;

	if (!filter_enter(op))
		return 0;
	p = pending_start(op, ctx->nr);
	if (!p)
		return 0;
	p->args[A_DFD] = dfd;
	save_path(p, 0, path);
	return p;
}

SEC("tp/syscalls/sys_enter_unlinkat")
int enter_unlinkat(struct syscall_trace_enter *ctx)
{
	__u32 flag = ctx->args[2];
	struct sys_pending *p = enter_file(ctx, flag & AT_REMOVEDIR_ ? VIGIL_SYS_RMDIR : VIGIL_SYS_UNLINK, ctx->args[0], (const char *)ctx->args[1]);

	if (p)
		p->args[A_FLAGS] = flag;
	return 0;
}

SEC("tp/syscalls/sys_enter_unlink")
int enter_unlink(struct syscall_trace_enter *ctx)
{
	enter_file(ctx, VIGIL_SYS_UNLINK, AT_FDCWD_, (const char *)ctx->args[0]);
	return 0;
}

SEC("tp/syscalls/sys_enter_rmdir")
int enter_rmdir(struct syscall_trace_enter *ctx)
{
	enter_file(ctx, VIGIL_SYS_RMDIR, AT_FDCWD_, (const char *)ctx->args[0]);
	return 0;
}

/*
 * Calls of two paths: rename's old and new path; a hard link's existing file (path, against dfd) and new name
 * (path2, against dfd2), or a symlink's target as given (path) and the link made (path2). Either path under a
 * sensitive prefix flags the event: a hard link to /etc/shadow, a symlink pointing at it, a link made inside
 * /etc. A symlink's target is relative to the link's directory, not to any fd: its dfd is NO_DIR_FD, which no
 * fd is, and it is never resolved.
 */
static __always_inline int enter_two_paths(struct syscall_trace_enter *ctx, __u32 op, __s32 dfd, const char *oldp,
					   __s32 dfd2, const char *newp, __u32 flags)
{
	struct sys_pending *p = enter_file(ctx, op, dfd, oldp);

	if (!p)
		return 0;
	p->args[A_DFD2] = dfd2;
	p->args[A_FLAGS] = flags;
	save_path(p, 1, newp);
	return 0;
}

SEC("tp/syscalls/sys_enter_renameat2")
int enter_renameat2(struct syscall_trace_enter *ctx)
{
	return enter_two_paths(ctx, VIGIL_SYS_RENAME, ctx->args[0], (const char *)ctx->args[1], ctx->args[2], (const char *)ctx->args[3], ctx->args[4]);
}

SEC("tp/syscalls/sys_enter_renameat")
int enter_renameat(struct syscall_trace_enter *ctx)
{
	return enter_two_paths(ctx, VIGIL_SYS_RENAME, ctx->args[0], (const char *)ctx->args[1], ctx->args[2], (const char *)ctx->args[3], 0);
}

SEC("tp/syscalls/sys_enter_rename")
int enter_rename_legacy(struct syscall_trace_enter *ctx)
{
	return enter_two_paths(ctx, VIGIL_SYS_RENAME, AT_FDCWD_, (const char *)ctx->args[0], AT_FDCWD_, (const char *)ctx->args[1], 0);
}

SEC("tp/syscalls/sys_enter_linkat")
int enter_linkat(struct syscall_trace_enter *ctx)
{
	return enter_two_paths(ctx, VIGIL_SYS_LINK, ctx->args[0], (const char *)ctx->args[1], ctx->args[2], (const char *)ctx->args[3], ctx->args[4]);
}

SEC("tp/syscalls/sys_enter_link")
int enter_link_legacy(struct syscall_trace_enter *ctx)
{
	return enter_two_paths(ctx, VIGIL_SYS_LINK, AT_FDCWD_, (const char *)ctx->args[0], AT_FDCWD_, (const char *)ctx->args[1], 0);
}

SEC("tp/syscalls/sys_enter_symlinkat")
int enter_symlinkat(struct syscall_trace_enter *ctx)
{
	return enter_two_paths(ctx, VIGIL_SYS_SYMLINK, NO_DIR_FD, (const char *)ctx->args[0], ctx->args[1], (const char *)ctx->args[2], 0);
}

SEC("tp/syscalls/sys_enter_symlink")
int enter_symlink_legacy(struct syscall_trace_enter *ctx)
{
	return enter_two_paths(ctx, VIGIL_SYS_SYMLINK, NO_DIR_FD, (const char *)ctx->args[0], AT_FDCWD_, (const char *)ctx->args[1], 0);
}

static __always_inline int enter_chmod(struct syscall_trace_enter *ctx, __s32 dfd, const char *path, __u32 mode, __u32 flags,
				       int fdonly)
{
	struct sys_pending *p = enter_file(ctx, VIGIL_SYS_CHMOD, dfd, path);

	if (!p)
		return 0;
	p->args[A_MODE] = mode;
	p->args[A_FLAGS] = flags;
	p->args[A_FDONLY] = fdonly;
	return 0;
}

SEC("tp/syscalls/sys_enter_fchmodat")
int enter_fchmodat(struct syscall_trace_enter *ctx)
{
	return enter_chmod(ctx, ctx->args[0], (const char *)ctx->args[1], ctx->args[2], 0, 0);
}

SEC("tp/syscalls/sys_enter_fchmodat2")
int enter_fchmodat2(struct syscall_trace_enter *ctx)
{
	return enter_chmod(ctx, ctx->args[0], (const char *)ctx->args[1], ctx->args[2], ctx->args[3], 0);
}

SEC("tp/syscalls/sys_enter_chmod")
int enter_chmod_legacy(struct syscall_trace_enter *ctx)
{
	return enter_chmod(ctx, AT_FDCWD_, (const char *)ctx->args[0], ctx->args[1], 0, 0);
}

SEC("tp/syscalls/sys_enter_fchmod")
int enter_fchmod(struct syscall_trace_enter *ctx)
{
	return enter_chmod(ctx, ctx->args[0], 0, ctx->args[1], 0, 1);
}

static __always_inline int enter_chown(struct syscall_trace_enter *ctx, __s32 dfd, const char *path, __u32 uid, __u32 gid,
				       __u32 flags, int fdonly)
{
	struct sys_pending *p = enter_file(ctx, VIGIL_SYS_CHOWN, dfd, path);

	if (!p)
		return 0;
	p->args[A_UID] = uid;
	p->args[A_GID] = gid;
	p->args[A_FLAGS] = flags;
	p->args[A_FDONLY] = fdonly;
	return 0;
}

SEC("tp/syscalls/sys_enter_fchownat")
int enter_fchownat(struct syscall_trace_enter *ctx)
{
	return enter_chown(ctx, ctx->args[0], (const char *)ctx->args[1], ctx->args[2], ctx->args[3], ctx->args[4], 0);
}

SEC("tp/syscalls/sys_enter_chown")
int enter_chown_legacy(struct syscall_trace_enter *ctx)
{
	return enter_chown(ctx, AT_FDCWD_, (const char *)ctx->args[0], ctx->args[1], ctx->args[2], 0, 0);
}

SEC("tp/syscalls/sys_enter_lchown")
int enter_lchown(struct syscall_trace_enter *ctx)
{
	return enter_chown(ctx, AT_FDCWD_, (const char *)ctx->args[0], ctx->args[1], ctx->args[2], AT_SYMLINK_NOFOLLOW_, 0);
}

SEC("tp/syscalls/sys_enter_fchown")
int enter_fchown(struct syscall_trace_enter *ctx)
{
	return enter_chown(ctx, ctx->args[0], 0, ctx->args[1], ctx->args[2], 0, 1);
}

SEC("tp/syscalls/sys_enter_mkdirat")
int enter_mkdirat(struct syscall_trace_enter *ctx)
{
	struct sys_pending *p = enter_file(ctx, VIGIL_SYS_MKDIR, ctx->args[0], (const char *)ctx->args[1]);

	if (p)
		p->args[A_MODE] = ctx->args[2];
	return 0;
}

SEC("tp/syscalls/sys_enter_mkdir")
int enter_mkdir(struct syscall_trace_enter *ctx)
{
	struct sys_pending *p = enter_file(ctx, VIGIL_SYS_MKDIR, AT_FDCWD_, (const char *)ctx->args[0]);

	if (p)
		p->args[A_MODE] = ctx->args[1];
	return 0;
}

static __always_inline int enter_truncate(struct syscall_trace_enter *ctx, const char *path, __s32 fd, __u64 length)
{
	struct sys_pending *p = enter_file(ctx, VIGIL_SYS_TRUNCATE, path ? AT_FDCWD_ : fd, path);

	if (!p)
		return 0;
	p->args[A_RESOLVE] = length;
	p->args[A_FDONLY] = !path;
	return 0;
}

SEC("tp/syscalls/sys_enter_truncate")
int enter_truncate_path(struct syscall_trace_enter *ctx)
{
	return enter_truncate(ctx, (const char *)ctx->args[0], AT_FDCWD_, ctx->args[1]);
}

SEC("tp/syscalls/sys_enter_ftruncate")
int enter_ftruncate(struct syscall_trace_enter *ctx)
{
	return enter_truncate(ctx, 0, ctx->args[0], ctx->args[1]);
}

/* ---- network group ---------------------------------------------------------------------------------------- */

static __always_inline struct socket *file_socket(struct file *f)
{
	umode_t mode;

	if (!f)
		return 0;
	mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT_) != S_IFSOCK_)
		return 0;
	return BPF_CORE_READ(f, private_data);
}

static __always_inline struct socket *fd_socket(int fd)
{
	return file_socket(fd_file(fd));
}

/* Addresses and ports a socket holds: local always, remote once connected. */
static __always_inline void sock_addrs(struct sock *sk, struct net_event *e)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	struct unix_address *ua;
	__u32 v4;
	int len;

	e->family = family;
	e->protocol = BPF_CORE_READ(sk, sk_protocol);
	if (family == AF_INET_) {
		v4 = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__builtin_memcpy(e->laddr, &v4, 4);
		v4 = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(e->raddr, &v4, 4);
	} else if (family == AF_INET6_) {
		BPF_CORE_READ_INTO(&e->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&e->raddr, sk, __sk_common.skc_v6_daddr);
	} else if (family == AF_UNIX_) {
		/* The socket's own address; an accepted socket carries its listener's. */
		ua = BPF_CORE_READ((struct unix_sock *)sk, addr);
		if (ua) {
			len = BPF_CORE_READ(ua, len) - 2; /* minus sun_family */
			if (len > VIGIL_UNIX_PATH_MAX)
				len = VIGIL_UNIX_PATH_MAX;
			if (len > 0) {
				bpf_core_read(e->unix_path, len & 127, (char *)&ua->name[0] + 2);
				e->unix_path_len = len;
			}
		}
		return;
	}
	if (family == AF_INET_ || family == AF_INET6_) {
		e->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		e->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	}
}

/* A sockaddr saved at entry: the peer of connect, the address asked for by bind. */
static __always_inline void saved_addr(struct sys_pending *p, struct net_event *e, int remote)
{
	__u16 family = *(__u16 *)p->addr;
	__u32 len = p->addr_len;
	__u16 port;

	if (len < 2)
		return;
	if (!e->family)
		e->family = family;
	if (family == AF_INET_ && len >= 8) {
		port = bpf_ntohs(*(__u16 *)(p->addr + 2));
		__builtin_memcpy(remote ? e->raddr : e->laddr, p->addr + 4, 4);
		if (remote)
			e->rport = port;
		else
			e->lport = port;
	} else if (family == AF_INET6_ && len >= 24) {
		port = bpf_ntohs(*(__u16 *)(p->addr + 2));
		__builtin_memcpy(remote ? e->raddr : e->laddr, p->addr + 8, 16);
		if (remote)
			e->rport = port;
		else
			e->lport = port;
	} else if (family == AF_UNIX_) {
		len -= 2;
		if (len > VIGIL_UNIX_PATH_MAX)
			len = VIGIL_UNIX_PATH_MAX;
		bpf_probe_read_kernel(e->unix_path, len & 127, p->addr + 2);
		e->unix_path_len = len;
	}
}

/* A deny rule's note about this connect or bind (made since its entry, N_START), onto its event; the note is taken. */
static __always_inline void deny_taken(struct sys_pending *p, struct net_event *e)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct deny_note *n = bpf_map_lookup_elem(&sys_deny_notes, &tid);

	if (!n)
		return;
	if (n->ktime >= p->args[N_START] && n->result >= VIGIL_KILL_SENT && n->result <= VIGIL_KILL_FAILED) {
		e->kill_rule = n->rule;
		e->ev_flags |= VIGIL_SYSF_KILL_SENT << (n->result - VIGIL_KILL_SENT);
	}
	bpf_map_delete_elem(&sys_deny_notes, &tid);
}

static __always_inline int emit_net(void *ctx, struct sys_pending *p, long ret)
{
	struct net_event *e = vigil_reserve(sizeof(*e), VIGIL_OP_NET);
	__u32 op = p->op;
	__s32 fd = p->args[N_FD];
	struct socket *sock;
	struct sock *sk;

	if (!e)
		return 0;
	__builtin_memset((void *)e + sizeof(e->hdr), 0, sizeof(*e) - sizeof(e->hdr));
	vigil_fill_header(&e->hdr, VIGIL_OP_NET, sizeof(*e));
	iou_header(&e->hdr, p);
	e->ret = ret;
	e->op = op;
	e->nr = p->nr;
	e->ev_flags = p->ev_flags;
	e->fd = fd;
	e->flags = p->args[N_FLAGS];
	e->backlog = p->args[N_BACKLOG];
	/*
	 * The socket: the accepted one for accept (none when the result is not an fd: an io_uring request's into a
	 * fixed file slot, or without its result), an io_uring request's own file, else the one the call was made on.
	 */
	if (op == VIGIL_SYS_ACCEPT)
		sock = fd_socket(ret >= 0 && !p->iou_no_fd ? (int)ret : -1);
	else
		sock = p->iou_req ? file_socket(iou_req_file(p)) : fd_socket(fd);
	if (!sock && op == VIGIL_SYS_ACCEPT)
		sock = p->iou_req ? file_socket(iou_req_file(p)) : fd_socket(fd);
	if (sock) {
		e->type = BPF_CORE_READ(sock, type);
		sk = BPF_CORE_READ(sock, sk);
		if (sk && !(op == VIGIL_SYS_ACCEPT && ret < 0))
			sock_addrs(sk, e);
		else if (sk)
			e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	} else {
		e->ev_flags |= VIGIL_SYSF_NO_SOCKET;
	}
	/* What the caller asked for: the peer of connect (also when it failed), the address of a failed bind. */
	if (op == VIGIL_SYS_CONNECT) {
		deny_taken(p, e);
		if (e->family == AF_UNIX_)
			e->unix_path_len = 0;
		saved_addr(p, e, 1);
	} else if (op == VIGIL_SYS_BIND) {
		deny_taken(p, e);
		if (ret != 0 || e->family == AF_UNIX_ || !sock)
			saved_addr(p, e, 0);
	}
	vigil_submit(ctx, e, sizeof(*e), VIGIL_OP_NET);
	return 0;
}

SEC("tp/syscalls/sys_exit_connect")
int exit_net(struct syscall_trace_exit *ctx)
{
	struct sys_pending *p = pending_take(ctx->nr);

	if (!p)
		return 0;
	emit_net(ctx, p, ctx->ret);
	pending_done();
	return 0;
}

static __always_inline struct sys_pending *enter_net(struct syscall_trace_enter *ctx, __u32 op, __s32 fd)
{
	struct sys_pending *p;

	if (!filter_enter(op))
		return 0;
	p = pending_start(op, ctx->nr);
	if (p)
		p->args[N_FD] = fd;
	return p;
}

/* connect/bind: the sockaddr is read at entry, as the kernel reads it. */
static __always_inline int enter_sockaddr(struct syscall_trace_enter *ctx, __u32 op)
{
	struct sys_pending *p = enter_net(ctx, op, ctx->args[0]);
	__u32 len = ctx->args[2];

	if (!p)
		return 0;
	p->args[N_START] = bpf_ktime_get_ns();
	if (len > ADDR_MAX)
		len = ADDR_MAX;
	if (len && bpf_probe_read_user(p->addr, len, (const void *)ctx->args[1]) == 0)
		p->addr_len = len;
	else
		p->ev_flags |= VIGIL_SYSF_ADDR_UNREADABLE;
	return 0;
}

SEC("tp/syscalls/sys_enter_connect")
int enter_connect(struct syscall_trace_enter *ctx)
{
	return enter_sockaddr(ctx, VIGIL_SYS_CONNECT);
}

SEC("tp/syscalls/sys_enter_bind")
int enter_bind(struct syscall_trace_enter *ctx)
{
	return enter_sockaddr(ctx, VIGIL_SYS_BIND);
}

SEC("tp/syscalls/sys_enter_listen")
int enter_listen(struct syscall_trace_enter *ctx)
{
	struct sys_pending *p = enter_net(ctx, VIGIL_SYS_LISTEN, ctx->args[0]);

	if (p)
		p->args[N_BACKLOG] = ctx->args[1];
	return 0;
}

SEC("tp/syscalls/sys_enter_accept4")
int enter_accept4(struct syscall_trace_enter *ctx)
{
	struct sys_pending *p = enter_net(ctx, VIGIL_SYS_ACCEPT, ctx->args[0]);

	if (p)
		p->args[N_FLAGS] = ctx->args[3];
	return 0;
}

SEC("tp/syscalls/sys_enter_accept")
int enter_accept(struct syscall_trace_enter *ctx)
{
	enter_net(ctx, VIGIL_SYS_ACCEPT, ctx->args[0]);
	return 0;
}

/*
 * TCP state changes. Not a syscall: no entry/exit pairing and no syscall tax. Transitions driven by the
 * network (SYN_RECV -> ESTABLISHED, a peer's FIN) run in softirq context, where pid, comm and cgroup are
 * those of whatever task the interrupt hit, so the comm and scope filters see that task too.
 */
SEC("tp/sock/inet_sock_set_state")
int tcp_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct net_event *e;
	__u16 family;

	if (ctx->protocol != IPPROTO_TCP_)
		return 0;
	if (!filter_enter(VIGIL_SYS_TCP_STATE))
		return 0;
	e = vigil_reserve(sizeof(*e), VIGIL_OP_NET);
	if (!e)
		return 0;
	__builtin_memset((void *)e + sizeof(e->hdr), 0, sizeof(*e) - sizeof(e->hdr));
	vigil_fill_header(&e->hdr, VIGIL_OP_NET, sizeof(*e));
	family = ctx->family;
	e->op = VIGIL_SYS_TCP_STATE;
	e->nr = -1;
	e->fd = -1;
	e->family = family;
	e->type = 1; /* SOCK_STREAM */
	e->protocol = IPPROTO_TCP_;
	e->lport = ctx->sport;
	e->rport = ctx->dport;
	e->old_state = ctx->oldstate;
	e->new_state = ctx->newstate;
	/* Copied with probe reads: CO-RE turns these into ctx + offset, which direct loads may not use. */
	if (family == AF_INET6_) {
		bpf_probe_read_kernel(e->laddr, 16, ctx->saddr_v6);
		bpf_probe_read_kernel(e->raddr, 16, ctx->daddr_v6);
	} else {
		bpf_probe_read_kernel(e->laddr, 4, ctx->saddr);
		bpf_probe_read_kernel(e->raddr, 4, ctx->daddr);
	}
	vigil_submit(ctx, e, sizeof(*e), VIGIL_OP_NET);
	return 0;
}

/* ---- other group -------------------------------------------------------------------------------------------- */

static __always_inline int emit_sys(void *ctx, struct sys_pending *p, long ret)
{
	__u32 zero = 0, off, n, ev_flags = p->ev_flags;
	struct sys_out *out = bpf_map_lookup_elem(&sys_out_heap, &zero);
	struct sys_event *e;
	struct file *f;
	__u8 *buf;

	if (!out)
		return 0;
	buf = out->data;
	e = (struct sys_event *)buf;
	off = sizeof(*e);
	n = put_saved_path(buf, off, p, 0, &ev_flags);
	e->str1_len = n;
	off += n;
	n = 0;
	if (p->op == VIGIL_SYS_MOUNT) {
		n = put_saved_path(buf, off, p, 1, &ev_flags);
	} else if (p->op == VIGIL_SYS_MODULE_LOAD && p->args[3]) {
		/* finit_module: the module file. */
		f = fd_file(p->args[0]);
		if (f)
			n = put_file_path(buf, off, f, &ev_flags);
	}
	e->str2_len = n;
	off += n;
	n = 0;
	if (p->len2 && off <= STR_LIMIT)
		n = put_small(buf, off, p->s2);
	e->str3_len = n;
	off += n;
	if (p->op == VIGIL_SYS_SETNS && ret == 0) {
		/* The namespace entered: the inode of the nsfs file behind the fd. */
		f = fd_file(p->args[0]);
		if (f)
			p->args[2] = BPF_CORE_READ(f, f_inode, i_ino);
	}
	vigil_fill_header(&e->hdr, VIGIL_OP_SYS, off);
	e->ret = ret;
	e->op = p->op;
	e->nr = p->nr;
	e->ev_flags = ev_flags;
	e->_pad0 = 0;
	e->_pad1 = 0;
	e->args[0] = p->args[0];
	e->args[1] = p->args[1];
	e->args[2] = p->args[2];
	e->args[3] = p->op == VIGIL_SYS_MODULE_LOAD ? 0 : p->args[3];
	vigil_output(ctx, buf, off, OUT_SZ, VIGIL_OP_SYS);
	return 0;
}

SEC("tp/syscalls/sys_exit_ptrace")
int exit_sys(struct syscall_trace_exit *ctx)
{
	struct sys_pending *p = pending_take(ctx->nr);

	if (!p)
		return 0;
	emit_sys(ctx, p, ctx->ret);
	pending_done();
	return 0;
}

static __always_inline struct sys_pending *enter_sys(struct syscall_trace_enter *ctx, __u32 op)
{
	if (!filter_enter(op))
		return 0;
	return pending_start(op, ctx->nr);
}

static __always_inline int ptrace_attach_like(__u64 req)
{
	/* TRACEME, POKETEXT, POKEDATA, POKEUSER, SETREGS, SETFPREGS, ATTACH, SETREGSET, SEIZE */
	return req == 0 || req == 4 || req == 5 || req == 6 || req == 13 || req == 15 || req == 16 || req == 0x4205 ||
	       req == 0x4206;
}

SEC("tp/syscalls/sys_enter_ptrace")
int enter_ptrace(struct syscall_trace_enter *ctx)
{
	struct syscall_filter_config *cfg = filter_enter(VIGIL_SYS_PTRACE);
	struct sys_pending *p;

	if (!cfg)
		return 0;
	if ((cfg->flags & VIGIL_SYSCFG_PTRACE_ATTACH) && !ptrace_attach_like(ctx->args[0])) {
		stat_inc(VIGIL_SYS_STAT_DROP_ARGS);
		return 0;
	}
	p = pending_start(VIGIL_SYS_PTRACE, ctx->nr);
	if (!p)
		return 0;
	p->args[0] = ctx->args[0];
	p->args[1] = ctx->args[1];
	p->args[2] = ctx->args[2];
	p->args[3] = ctx->args[3];
	return 0;
}

SEC("tp/syscalls/sys_enter_mount")
int enter_mount(struct syscall_trace_enter *ctx)
{
	struct sys_pending *p = enter_sys(ctx, VIGIL_SYS_MOUNT);

	if (!p)
		return 0;
	p->args[0] = ctx->args[3];
	save_path(p, 0, (const char *)ctx->args[0]);
	save_path(p, 1, (const char *)ctx->args[1]);
	save_small(p, (const char *)ctx->args[2]);
	return 0;
}

/* umount2(2); the kernel names it umount. */
SEC("tp/syscalls/sys_enter_umount")
int enter_umount(struct syscall_trace_enter *ctx)
{
	struct sys_pending *p = enter_sys(ctx, VIGIL_SYS_UMOUNT);

	if (!p)
		return 0;
	p->args[0] = ctx->args[1];
	save_path(p, 0, (const char *)ctx->args[0]);
	return 0;
}

SEC("tp/syscalls/sys_enter_init_module")
int enter_init_module(struct syscall_trace_enter *ctx)
{
	struct sys_pending *p = enter_sys(ctx, VIGIL_SYS_MODULE_LOAD);

	if (!p)
		return 0;
	p->args[0] = ctx->args[1];
	save_path(p, 0, (const char *)ctx->args[2]);
	return 0;
}

SEC("tp/syscalls/sys_enter_finit_module")
int enter_finit_module(struct syscall_trace_enter *ctx)
{
	struct sys_pending *p = enter_sys(ctx, VIGIL_SYS_MODULE_LOAD);

	if (!p)
		return 0;
	p->args[0] = ctx->args[0];
	p->args[1] = ctx->args[2];
	p->args[3] = 1; /* marks finit_module for the exit: resolve the fd */
	save_path(p, 0, (const char *)ctx->args[1]);
	return 0;
}

/* module/module_load exists only on kernels with module support; this code is dead (pruned) elsewhere. */
struct trace_event_raw_module_load___vigil {
	struct trace_entry ent;
	unsigned int taints;
	__u32 __data_loc_name;
} __attribute__((preserve_access_index));

SEC("tp/module/module_load")
int module_load(void *ctx)
{
	struct trace_event_raw_module_load___vigil *m = ctx;
	__u32 zero = 0, loc, n;
	struct sys_out *out;
	struct sys_event *e;
	long r;

	if (!bpf_core_type_exists(struct trace_event_raw_module_load___vigil))
		return 0;
	if (!filter_enter(VIGIL_SYS_MODULE_LOAD))
		return 0;
	out = bpf_map_lookup_elem(&sys_out_heap, &zero);
	if (!out)
		return 0;
	e = (struct sys_event *)out->data;
	loc = BPF_CORE_READ(m, __data_loc_name);
	r = bpf_probe_read_kernel_str(out->data + sizeof(*e), SMALL_STR * 4, (char *)ctx + (loc & 0xffff));
	n = r > 0 ? r : 0;
	vigil_fill_header(&e->hdr, VIGIL_OP_SYS, sizeof(*e) + n);
	e->ret = 0;
	e->op = VIGIL_SYS_MODULE_LOAD;
	e->nr = -1;
	e->ev_flags = VIGIL_SYSF_TRACEPOINT;
	e->_pad0 = 0;
	e->_pad1 = 0;
	e->args[0] = BPF_CORE_READ(m, taints);
	e->args[1] = 0;
	e->args[2] = 0;
	e->args[3] = 0;
	e->str1_len = n;
	e->str2_len = 0;
	e->str3_len = 0;
	vigil_output(ctx, out->data, sizeof(*e) + n, OUT_SZ, VIGIL_OP_SYS);
	return 0;
}

static __always_inline int bpf_load_like(__u64 cmd)
{
	/* MAP_CREATE, PROG_LOAD, PROG_ATTACH, RAW_TRACEPOINT_OPEN, BTF_LOAD, LINK_CREATE */
	return cmd == 0 || cmd == 5 || cmd == 8 || cmd == 17 || cmd == 18 || cmd == 28;
}

SEC("tp/syscalls/sys_enter_bpf")
int enter_bpf(struct syscall_trace_enter *ctx)
{
	struct syscall_filter_config *cfg = filter_enter(VIGIL_SYS_BPF);
	const __u8 *attr = (const __u8 *)ctx->args[1];
	__u64 cmd = ctx->args[0];
	struct sys_pending *p;
	__u32 type = 0;

	if (!cfg)
		return 0;
	if ((cfg->flags & VIGIL_SYSCFG_BPF_LOAD) && !bpf_load_like(cmd)) {
		stat_inc(VIGIL_SYS_STAT_DROP_ARGS);
		return 0;
	}
	p = pending_start(VIGIL_SYS_BPF, ctx->nr);
	if (!p)
		return 0;
	p->args[0] = cmd;
	p->args[2] = ctx->args[2];
	/* union bpf_attr (UAPI, stable): map_type/prog_type at 0, map_name at 28, prog_name at 48. */
	if (cmd == 0 || cmd == 5) {
		bpf_probe_read_user(&type, sizeof(type), attr);
		p->args[1] = type;
		if (bpf_probe_read_user(p->s2, 16, attr + (cmd == 0 ? 28 : 48)) == 0) {
			p->s2[15] = 0;
			if (p->s2[0])
				p->len2 = 16;
		}
	}
	return 0;
}

SEC("tp/syscalls/sys_enter_memfd_create")
int enter_memfd_create(struct syscall_trace_enter *ctx)
{
	struct sys_pending *p = enter_sys(ctx, VIGIL_SYS_MEMFD_CREATE);

	if (!p)
		return 0;
	p->args[0] = ctx->args[1];
	save_path(p, 0, (const char *)ctx->args[0]);
	return 0;
}

SEC("tp/syscalls/sys_enter_setns")
int enter_setns(struct syscall_trace_enter *ctx)
{
	struct sys_pending *p = enter_sys(ctx, VIGIL_SYS_SETNS);

	if (!p)
		return 0;
	p->args[0] = ctx->args[0];
	p->args[1] = ctx->args[1];
	return 0;
}

SEC("tp/syscalls/sys_enter_unshare")
int enter_unshare(struct syscall_trace_enter *ctx)
{
	struct sys_pending *p = enter_sys(ctx, VIGIL_SYS_UNSHARE);

	if (p)
		p->args[0] = ctx->args[0];
	return 0;
}

/* ---- io_uring ---------------------------------------------------------------------------------------------- */

/*
 * Requests submitted through io_uring make no system call of their own: an openat or a connect in a submission
 * queue entry passes no syscall tracepoint, so without this every file and network event type, every rule and
 * every in-kernel kill rule about them could be bypassed by one io_uring_enter (or by none, with SQPOLL). The
 * same operations are reported here, as the same records, flagged VIGIL_SYSF_IO_URING:
 *
 * - at submission (raw_tp/io_uring_submit_req, after the request was prepared: the kernel has copied the path
 *   and the address by then, so a racing thread cannot change what is reported), the filters run in the
 *   submitter's context and what the record needs is saved, keyed by the ring and the request's user_data;
 * - at completion (raw_tp/io_uring_complete, or io_uring_cqe_overflow when the completion queue is full and
 *   the result goes to the overflow list, which names no request: hence the key), the saved request is
 *   reported with its result through the syscall exits' own code (emit_file, emit_net).
 *
 * Nothing is dropped silently: a request that will post no completion on success (IOSQE_CQE_SKIP_SUCCESS), or
 * that finds the table full, is reported at submission without its result; when a request takes the key of one
 * not completed yet (a reused user_data), both are reported without their results (the earlier at once).
 */
struct iou_key {
	__u64 ring;
	__u64 user_data;
};

/*
 * Saved requests, allocated on use: a slot holds two paths. In flight at once: at most 4096 per host, less one
 * slot per CPU (ring 0, user_data the CPU's number), made by the agent at load and never deleted:
 * where a submission builds its request, whether it is then saved (copied to its key) or reported at once.
 * Its writer so finds every request in this one map; in two maps, the verifier, which tells map values apart
 * by their map, checked the writing code once for each (~0.4 s more at every start, BPF_LOG_STATS).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct iou_key);
	__type(value, struct sys_pending);
} iou_pending SEC(".maps");

/* A kernel path (struct filename) into a slot's string `which`. */
static __always_inline void iou_save_path(struct sys_pending *p, int which, struct filename *fn)
{
	const char *name = fn ? BPF_CORE_READ(fn, name) : 0;
	long n = -1;

	if (name)
		n = bpf_probe_read_kernel_str(which ? p->s1 : p->s0, str_max(), name);
	if (n <= 0) {
		p->ev_flags |= VIGIL_SYSF_PATH_UNREADABLE;
		return;
	}
	if (which)
		p->len1 = n;
	else
		p->len0 = n;
	if (n >= str_max())
		p->ev_flags |= VIGIL_SYSF_PATH_TRUNCATED;
}

/* A request to be reported without its result (VIGIL_SYSF_NO_RESULT): ret 0, no fd, no request to read; counted. */
static __always_inline void iou_no_result(struct sys_pending *p)
{
	p->ev_flags |= VIGIL_SYSF_NO_RESULT;
	p->iou_no_fd = 1;
	p->iou_req = 0;
	stat_inc(VIGIL_SYS_STAT_IOURING_NO_RESULT);
}

/* A saved request's result: none (0) when it is reported without one. */
static __always_inline long iou_result(struct sys_pending *p, long ret)
{
	return p->ev_flags & VIGIL_SYSF_NO_RESULT ? 0 : ret;
}

/* Reports a saved request with `ret` (emit_file, emit_net: what a syscall's exit would have reported). */
static __always_inline void iou_emit(void *ctx, struct sys_pending *p, long ret)
{
	ret = iou_result(p, ret);
	if (p->iou_gate) {
		/* A restricted read whose path missed the secret heads: reported only when the gate says its file is in
		 * a secret directory, and then resolved through its fd, as open_turned_down does at a syscall's exit. */
		if (ret < 0 || p->iou_no_fd || !secret_dir_gate((int)ret)) {
			stat_inc(VIGIL_SYS_STAT_DROP_NOT_SENSITIVE);
			return;
		}
		p->resolve_fd = 1;
	}
	if (p->op >= VIGIL_SYS_CONNECT) /* connect, accept, bind, listen */
		emit_net(ctx, p, ret);
	else
		emit_file(ctx, p, ret);
}

/*
 * The records are written by two programs, entered by a tail call from the three hooks (iou_submit, when it
 * reports a request at once; iou_complete and iou_overflow, with its result): iou_write (emit_file and
 * emit_net) and iou_write_link (emit_link: emit_file_of with the op as a constant; with the others in one
 * program it would pass the verifier's 1 M instructions). With the emit code inlined into each hook, the
 * verifier checked it three times over and emit_link three more at every start: 2.5 s of the agent's 4.4 s to
 * ready (bench/startup, BPF_LOG_STATS). The hooks are raw tracepoints, not BTF ones, for this: a BTF
 * (tracing) program can tail-call only programs of its own hook; a raw tracepoint's, any raw tracepoint
 * program. The hook leaves what the writer needs in the CPU's hand-over slot: one program run, preemption off,
 * nothing in between. The agent fills the array at load.
 */
#define IOU_WRITE 0
#define IOU_WRITE_LINK 1
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} iou_writers SEC(".maps");

/* A request to write: iou_pending's at `key`, the CPU's slot (parked 0: at submission, without its result) or a saved one. */
struct iou_handoff {
	struct iou_key key;
	__s64 res;
	__u32 cflags;
	__u32 parked;
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct iou_handoff);
} iou_handoff SEC(".maps");

static __always_inline int iou_is_link(__u32 op)
{
	return op == VIGIL_SYS_LINK || op == VIGIL_SYS_SYMLINK;
}

/*
 * The start of a request of kind `op` at submission: the entry filters (in the submitter's context), then the
 * scratch slot, naming the submitter. NULL: not reported.
 */
static __always_inline struct sys_pending *iou_begin(struct io_kiocb *req, __u32 op, struct syscall_filter_config **cfg)
{
	struct sys_pending *p;

	*cfg = filter_pass_of(op, 1, 1);
	if (!*cfg)
		return 0;
	struct iou_key cpu = { .ring = 0, .user_data = bpf_get_smp_processor_id() };

	p = bpf_map_lookup_elem(&iou_pending, &cpu);
	if (!p) {
		stat_inc(VIGIL_SYS_STAT_NO_PENDING); /* the agent made no slot for this CPU: not reported, counted */
		return 0;
	}
	pending_init(p, op, VIGIL_SYS_NR_IO_URING);
	p->active = 0; /* the CPU's slot, copied to its key in iou_pending: no syscall exit pairs with it */
	p->ev_flags = VIGIL_SYSF_IO_URING;
	p->iou_id = bpf_get_current_pid_tgid();
	p->iou_cgroup = vigil_cgroup_id();
	p->iou_req = (__u64)req;
	return p;
}

/*
 * Saves a submitted request for its completion, keyed by its ring and user_data. 1 when it is to be reported
 * now instead, without its result (marked so): no completion will be posted if it succeeds
 * (IOSQE_CQE_SKIP_SUCCESS); or the table is full (requests left in flight, such as connects that hang, can fill
 * it); or the key is taken by a request not completed yet, and which of the two a completion is for cannot be
 * told, so this one is reported now and the earlier one at the key's next completion, both without a result.
 * The caller reports it: only the program of the request's family has the right copy of the emit code.
 */
static __always_inline int iou_park(struct io_kiocb *req, struct sys_pending *p)
{
	struct iou_key key = {};
	struct sys_pending *earlier;

	stat_inc(VIGIL_SYS_STAT_IOURING);
	key.ring = (__u64)BPF_CORE_READ(req, ctx);
	key.user_data = BPF_CORE_READ(req, cqe.user_data);
	if (BPF_CORE_READ(req, flags) & REQ_F_CQE_SKIP) {
		iou_no_result(p);
		return 1;
	}
	earlier = bpf_map_lookup_elem(&iou_pending, &key);
	if (earlier) {
		if (!(earlier->ev_flags & VIGIL_SYSF_NO_RESULT))
			iou_no_result(earlier);
		iou_no_result(p);
		return 1;
	}
	if (bpf_map_update_elem(&iou_pending, &key, p, BPF_NOEXIST)) {
		stat_inc(VIGIL_SYS_STAT_IOURING_TABLE_FULL);
		iou_no_result(p);
		return 1;
	}
	return 0;
}

/*
 * A field of a request newer than the tracepoints: 0 where the kernel has not its struct, so that the read,
 * which CO-RE cannot relocate there, is dead code the verifier never sees (the opcode is not known to it).
 */
#define IOU_NEWER_READ(type, cmd, field) (bpf_core_type_exists(type) ? BPF_CORE_READ((type *)(cmd), field) : 0)

/*
 * Hands the request at (ring, user_data) in iou_pending to its writer (iou_writers): the CPU's slot (`parked`
 * 0, at submission: no result, no completion flags) or a saved one. Returns only when the writer is not in the
 * array: the request is then not reported, counted (noPending), and no longer kept.
 */
static __always_inline void iou_hand_over(void *ctx, int parked, __u64 ring, __u64 user_data, long res, __u32 cflags, __u32 op)
{
	struct iou_handoff *h;
	__u32 zero = 0;

	h = bpf_map_lookup_elem(&iou_handoff, &zero);
	if (!h)
		return;
	h->key.ring = ring;
	h->key.user_data = user_data;
	h->res = res;
	h->cflags = cflags;
	h->parked = parked;
	bpf_tail_call(ctx, &iou_writers, iou_is_link(op) ? IOU_WRITE_LINK : IOU_WRITE);
	stat_inc(VIGIL_SYS_STAT_NO_PENDING);
	if (parked)
		bpf_map_delete_elem(&iou_pending, &h->key);
}

SEC("raw_tp/io_uring_submit_req")
int BPF_PROG(iou_submit, struct io_kiocb *req)
{
	struct syscall_filter_config *cfg;
	struct sys_pending *p;
	struct io_open *o;
	__u32 op, len;
	__u8 opcode = BPF_CORE_READ(req, opcode);
	void *cmd = &req->cmd;
	int write = 0, down = 0, fd;
	__u64 flags;

	switch (opcode) {
	case IORING_OP_OPENAT:
	case IORING_OP_OPENAT2:
		op = VIGIL_SYS_OPEN;
		break;
	case IORING_OP_UNLINKAT:
		op = BPF_CORE_READ((struct io_unlink *)cmd, flags) & AT_REMOVEDIR_ ? VIGIL_SYS_RMDIR : VIGIL_SYS_UNLINK;
		break;
	case IORING_OP_RENAMEAT:
		op = VIGIL_SYS_RENAME;
		break;
	case IORING_OP_MKDIRAT:
		op = VIGIL_SYS_MKDIR;
		break;
	case IORING_OP_CONNECT:
		op = VIGIL_SYS_CONNECT;
		break;
	case IORING_OP_ACCEPT:
		op = VIGIL_SYS_ACCEPT;
		break;
	/* Newer than the tracepoints (6.9, 6.11): their fields are read with IOU_NEWER_READ. */
	case IORING_OP_FTRUNCATE:
		op = VIGIL_SYS_TRUNCATE;
		break;
	case IORING_OP_BIND:
		op = VIGIL_SYS_BIND;
		break;
	case IORING_OP_LISTEN:
		op = VIGIL_SYS_LISTEN;
		break;
	case IORING_OP_LINKAT:
		op = VIGIL_SYS_LINK;
		break;
	case IORING_OP_SYMLINKAT:
		op = VIGIL_SYS_SYMLINK;
		break;
	default:
		return 0;
	}
	p = iou_begin(req, op, &cfg);
	if (!p)
		return 0;
	/* The fd the request names: none (-1) when it is an index into the ring's fixed files. */
	fd = BPF_CORE_READ(req, flags) & REQ_F_FIXED_FILE ? -1 : BPF_CORE_READ(req, cqe.fd);
	switch (opcode) {
	case IORING_OP_OPENAT:
	case IORING_OP_OPENAT2:
		o = cmd;
		flags = BPF_CORE_READ(o, how.flags);
		write = (flags & O_ACCMODE_) != 0 || (flags & (O_CREAT_ | O_TRUNC_)) != 0;
		down = open_turned_down(cfg, write, BPF_CORE_READ(o, filename, name), GATE_LATER, 1);
		if (down > 0)
			return 0;
		p->iou_gate = down < 0;
		p->args[A_DFD] = BPF_CORE_READ(o, dfd);
		p->args[A_FLAGS] = flags;
		p->args[A_MODE] = BPF_CORE_READ(o, how.mode);
		p->args[A_RESOLVE] = BPF_CORE_READ(o, how.resolve);
		/* Into a fixed file slot (a direct descriptor): its result is 0, no fd of the table. */
		p->iou_no_fd = BPF_CORE_READ(o, file_slot) != 0;
		if (write)
			p->ev_flags |= VIGIL_SYSF_WRITE;
		iou_save_path(p, 0, BPF_CORE_READ(o, filename));
		break;
	case IORING_OP_UNLINKAT:
		p->args[A_DFD] = BPF_CORE_READ((struct io_unlink *)cmd, dfd);
		p->args[A_FLAGS] = BPF_CORE_READ((struct io_unlink *)cmd, flags);
		iou_save_path(p, 0, BPF_CORE_READ((struct io_unlink *)cmd, filename));
		break;
	case IORING_OP_RENAMEAT:
		p->args[A_DFD] = BPF_CORE_READ((struct io_rename *)cmd, old_dfd);
		p->args[A_DFD2] = BPF_CORE_READ((struct io_rename *)cmd, new_dfd);
		p->args[A_FLAGS] = BPF_CORE_READ((struct io_rename *)cmd, flags);
		iou_save_path(p, 0, BPF_CORE_READ((struct io_rename *)cmd, oldpath));
		iou_save_path(p, 1, BPF_CORE_READ((struct io_rename *)cmd, newpath));
		break;
	case IORING_OP_LINKAT:
	case IORING_OP_SYMLINKAT:
		/* One struct, io_link: a symlink's target has no directory fd (NO_DIR_FD, as the syscall's); its flags are 0. */
		p->args[A_DFD] = opcode == IORING_OP_SYMLINKAT ? NO_DIR_FD : BPF_CORE_READ((struct io_link *)cmd, old_dfd);
		p->args[A_DFD2] = BPF_CORE_READ((struct io_link *)cmd, new_dfd);
		p->args[A_FLAGS] = opcode == IORING_OP_SYMLINKAT ? 0 : BPF_CORE_READ((struct io_link *)cmd, flags);
		iou_save_path(p, 0, BPF_CORE_READ((struct io_link *)cmd, oldpath));
		iou_save_path(p, 1, BPF_CORE_READ((struct io_link *)cmd, newpath));
		break;
	case IORING_OP_MKDIRAT:
		p->args[A_DFD] = BPF_CORE_READ((struct io_mkdir *)cmd, dfd);
		p->args[A_MODE] = BPF_CORE_READ((struct io_mkdir *)cmd, mode);
		iou_save_path(p, 0, BPF_CORE_READ((struct io_mkdir *)cmd, filename));
		break;
	case IORING_OP_FTRUNCATE:
		/* No path: the request's file, read at completion (its fd may be an index of the fixed files). */
		p->args[A_DFD] = fd;
		p->args[A_RESOLVE] = IOU_NEWER_READ(struct io_ftrunc, cmd, len);
		p->args[A_FDONLY] = FDONLY_IOU_FILE;
		break;
	case IORING_OP_LISTEN:
		p->args[N_FD] = fd;
		p->args[N_BACKLOG] = IOU_NEWER_READ(struct io_listen, cmd, backlog);
		break;
	case IORING_OP_ACCEPT:
		p->args[N_FD] = fd;
		p->args[N_FLAGS] = BPF_CORE_READ((struct io_accept *)cmd, flags);
		/* Into a fixed file slot: its result is 0, no fd of the table. */
		p->iou_no_fd = BPF_CORE_READ((struct io_accept *)cmd, file_slot) != 0;
		break;
	default: {
		/* connect, bind: the address the kernel copied at preparation, in the request's async data. */
		struct io_async_msghdr *io = BPF_CORE_READ(req, async_data);

		p->args[N_FD] = fd;
		p->args[N_START] = bpf_ktime_get_ns();
		len = opcode == IORING_OP_BIND ? IOU_NEWER_READ(struct io_bind, cmd, addr_len) : BPF_CORE_READ((struct io_connect *)cmd, addr_len);
		if (len > ADDR_MAX)
			len = ADDR_MAX;
		if (io && len && bpf_probe_read_kernel(p->addr, len, &io->addr) == 0)
			p->addr_len = len;
		else
			p->ev_flags |= VIGIL_SYSF_ADDR_UNREADABLE;
		break;
	}
	}
	if (iou_park(req, p))
		iou_hand_over(ctx, 0, 0, bpf_get_smp_processor_id(), 0, 0, op);
	return 0;
}

/*
 * A completion: the saved request of this ring and user_data, to its writer with its result. A multishot
 * request (an accept's) posts a completion flagged IORING_CQE_F_MORE per result until its last: each is
 * reported, and the request kept until then.
 */
#define IORING_CQE_F_MORE_ (1U << 1)
static __always_inline int iou_done(void *ctx, __u64 ring, __u64 user_data, long res, __u32 cflags)
{
	struct iou_key key = { .ring = ring, .user_data = user_data };
	struct sys_pending *p = bpf_map_lookup_elem(&iou_pending, &key);

	if (!p)
		return 0;
	iou_hand_over(ctx, 1, ring, user_data, res, cflags, p->op);
	return 0;
}

SEC("raw_tp/io_uring_complete")
int BPF_PROG(iou_complete, struct io_ring_ctx *ring, void *req, struct io_uring_cqe *cqe)
{
	return iou_done(ctx, (__u64)ring, BPF_CORE_READ(cqe, user_data), BPF_CORE_READ(cqe, res), BPF_CORE_READ(cqe, flags));
}

SEC("raw_tp/io_uring_cqe_overflow")
int BPF_PROG(iou_overflow, void *ring, unsigned long long user_data, __s32 res, __u32 cflags, void *ocqe)
{
	return iou_done(ctx, (__u64)ring, user_data, res, cflags);
}

/* The request iou_hand_over left: the CPU's slot, or a saved one (NULL when it is gone). */
static __always_inline struct sys_pending *iou_handed(struct iou_handoff **h)
{
	__u32 zero = 0;

	*h = bpf_map_lookup_elem(&iou_handoff, &zero);
	if (!*h)
		return 0;
	return bpf_map_lookup_elem(&iou_pending, &(*h)->key);
}

/* A saved request is done with at its last completion. */
static __always_inline void iou_written(struct iou_handoff *h, int multishot)
{
	if (h->parked && !(multishot && (h->cflags & IORING_CQE_F_MORE_)))
		bpf_map_delete_elem(&iou_pending, &h->key);
}

/* The records of every request but links and symlinks (see iou_writers). Loaded, never attached. */
SEC("raw_tp/io_uring_complete")
int iou_write(void *ctx)
{
	struct iou_handoff *h;
	struct sys_pending *p = iou_handed(&h);

	if (!p)
		return 0;
	iou_emit(ctx, p, h->res);
	iou_written(h, 1);
	return 0;
}

/* Links' and symlinks' records (emit_link; see iou_writers). Loaded, never attached. */
SEC("raw_tp/io_uring_complete")
int iou_write_link(void *ctx)
{
	struct iou_handoff *h;
	struct sys_pending *p = iou_handed(&h);

	if (!p)
		return 0;
	emit_link(ctx, p, iou_result(p, h->res));
	iou_written(h, 0);
	return 0;
}
