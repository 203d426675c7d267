/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The wire format between vigil's BPF sensors and user space: plain C, fixed-width fields, explicit padding,
 * nothing else. This file is the single source of truth: the TypeScript layout constants in
 * src/events/layout.generated.ts are generated from the BTF of the compiled objects (scripts/gen-layout.ts),
 * and a test fails CI when they disagree.
 */
#ifndef VIGIL_EVENTS_H
#define VIGIL_EVENTS_H

/* Every record starts with an opcode; decoders dispatch on it. */
enum vigil_opcode {
	VIGIL_OP_UNSPEC = 0,
	VIGIL_OP_BENCH = 1,      /* bench/ringbuf generator record */
	VIGIL_OP_TEST = 2,       /* manager tests */
	VIGIL_OP_FORK = 10,      /* struct fork_event: a process or thread was created */
	VIGIL_OP_EXEC = 11,      /* struct exec_event: a process replaced its image */
	VIGIL_OP_EXIT = 12,      /* struct exit_event: a process (or thread) ended */
	VIGIL_OP_CREDS = 13,     /* struct creds_event: a process changed its credentials */
	VIGIL_OP_COMM = 14,      /* struct comm_event: a task renamed itself (prctl PR_SET_NAME) */
	VIGIL_OP_CGROUP = 20,    /* struct cgroup_event: a cgroup was created or removed, or a task moved */
	VIGIL_OP_FILE = 30,      /* struct file_event: a file syscall (open, unlink, rename, chmod, ...) and its result */
	VIGIL_OP_NET = 31,       /* struct net_event: connect/accept/bind/listen and its result, or a TCP state change */
	VIGIL_OP_SYS = 32,       /* struct sys_event: ptrace, mount, module load, bpf(), memfd, namespaces */
	VIGIL_OP_MAX = 64,       /* size of the per-opcode loss counter array */
};

/* Indices of the per-CPU counters every sensor keeps in its vigil_stats map. */
enum vigil_stat {
	VIGIL_STAT_RESERVE_FAILED = 0,  /* ring buffer full: a record was lost */
	VIGIL_STAT_OUTPUT_FAILED = 1,   /* perf buffer or bpf_ringbuf_output failed: a record was lost */
	VIGIL_STAT_EMITTED = 2,         /* records handed to user space */
	VIGIL_STAT_MAX = 8,
};

/* How the ring's reader waits (struct vigil_ring_ctl.mode). */
enum vigil_ring_mode {
	VIGIL_RING_POLL = 0,   /* asleep in poll: the kernel's default wakeup (when the reader has caught up) */
	VIGIL_RING_TIMER = 1,  /* draining on its own timer: no wakeups, unless the ring fills past wakeup_bytes */
	VIGIL_RING_BUSY = 2,   /* draining now, or paused, or already woken: no wakeups at all */
};

/*
 * The ring reader's wishes (the vigil_ring_ctl map, one element, mmapped by the reader, which writes `mode`;
 * sensors read it, and the first to force a wakeup sets it to BUSY so that the others do not: each forced
 * wakeup costs the producer an interrupt). All zero means the kernel's default always.
 */
struct vigil_ring_ctl {
	__u32 mode;
	__u32 _pad;
	__u64 wakeup_bytes;
};

/* Common header of every record (32 bytes). */
struct event_header {
	__u16 opcode;     /* enum vigil_opcode */
	__u16 flags;      /* per-opcode flags */
	__u32 size;       /* whole record size in bytes, header included */
	__u64 ktime_ns;   /* bpf_ktime_get_boot_ns() at the event */
	__u32 pid;        /* thread group id as seen from the root pid namespace */
	__u32 tid;        /* thread id as seen from the root pid namespace */
	__u64 cgroup_id;  /* the task's cgroup: v2 id, or its id in the chosen v1 hierarchy (vigil.h) */
};

/* bench/ringbuf: one 64-byte record per generator syscall. */
struct bench_event {
	struct event_header hdr;
	__u64 seq;        /* per-CPU sequence number: gaps are losses */
	__u32 cpu;
	__u32 _pad0;
	__u8 payload[16];
};

/* Manager tests: a record per trigger, with the value of a load-time constant to prove constant editing. */
struct test_event {
	struct event_header hdr;
	__u64 seq;
	__u64 cookie;     /* value of the program's `test_cookie` constant */
	__u32 probe;      /* which test program emitted it */
	__u32 _pad0;
};

/* Sizes the process sensor works with. Arrays below use them; the loader may lower the max_* constants. */
#define VIGIL_COMM_LEN 16
#define VIGIL_TTY_LEN 32
#define VIGIL_PATH_MAX 4096
#define VIGIL_ARGS_CAP (128 * 1024)   /* most bytes of argv the exec buffer can hold (MAX_ARG_STRLEN) */
#define VIGIL_ENV_CAP (32 * 1024)     /* most bytes of envp the exec buffer can hold */

/* Credentials of a task (values in the initial user namespace) and its capability sets. 64 bytes. */
struct proc_creds {
	__u32 uid;
	__u32 gid;
	__u32 euid;
	__u32 egid;
	__u32 suid;
	__u32 sgid;
	__u32 fsuid;
	__u32 fsgid;
	__u64 cap_effective;
	__u64 cap_permitted;
	__u64 cap_inheritable;
	__u32 loginuid;   /* audit login uid; 4294967295 when unset */
	__u32 _pad0;
};

/* Namespaces and cgroup of a task. 24 bytes. */
struct proc_ns {
	__u64 cgroup_id;  /* cgroup v2 id: the inode of the task's cgroup directory */
	__u32 pidns;      /* pid namespace inode */
	__u32 mntns;      /* mount namespace inode */
	__u32 nspid;      /* tgid as seen inside its own pid namespace */
	__u32 _pad0;
};

/* exec_event.flags and proc_entry.flags */
enum vigil_proc_flags {
	VIGIL_PROC_ARGV_TRUNCATED = 1 << 0,  /* argv longer than max_args_bytes */
	VIGIL_PROC_ENV_TRUNCATED = 1 << 1,   /* envp longer than max_env_bytes */
	VIGIL_PROC_PATH_TRUNCATED = 1 << 2,  /* exe path deeper or longer than the walk allows */
	VIGIL_PROC_FILENAME_TRUNCATED = 1 << 3,
	VIGIL_PROC_ENV_OMITTED = 1 << 4,     /* env capture is off */
	VIGIL_PROC_THREAD = 1 << 5,          /* fork/exit of a thread, not of a process */
	VIGIL_PROC_SUBREAPER = 1 << 6,       /* the process is a child subreaper */
	VIGIL_PROC_GROUP_DEAD = 1 << 7,      /* exit: the last thread of the process ended */
	VIGIL_PROC_ARGV_UNREADABLE = 1 << 8, /* argv pages were not readable at exec */
	VIGIL_PROC_SNAPSHOT = 1 << 9,        /* proc_entry written from the /proc snapshot */
	/*
	 * exec: the executed file is on an overlay file system (a container's root) and has a copy in its upper
	 * layer: written, or created, after the container started, not a file of its image (Falco's
	 * proc.is_exe_upper_layer). A file only copied up for a metadata change (chmod) counts too.
	 */
	VIGIL_PROC_EXE_UPPER_LAYER = 1 << 10,
};

/*
 * exec: one per successful execve/execveat, from sched_process_exec. Variable size: after the fixed part
 * come exe_len bytes of the executed file's path, filename_len bytes of the path as passed to execve,
 * argv_len bytes of NUL-separated argv, env_len bytes of NUL-separated envp. hdr.size is the total.
 */
struct exec_event {
	struct event_header hdr;
	__u64 start_ns;          /* task start, boot ns: with hdr.pid, the process identity */
	__u64 parent_start_ns;
	__u32 ppid;              /* real_parent's tgid */
	__u32 old_pid;           /* tid that called execve (differs when a thread execs) */
	struct proc_creds creds;
	struct proc_ns ns;
	__u64 exe_ino;
	__u64 exe_mtime_sec;
	__u32 exe_mtime_nsec;
	__u32 exe_dev;           /* kernel dev_t: major << 20 | minor */
	__u32 flags;             /* enum vigil_proc_flags */
	__u32 argc;
	__u32 exe_len;
	__u32 filename_len;
	__u32 argv_len;
	__u32 env_len;
	char comm[VIGIL_COMM_LEN];
	char tty[VIGIL_TTY_LEN]; /* controlling terminal name ("pts0", "tty1"), empty when none */
	__u16 kill_rule;         /* the in-kernel kill rule that matched this exec (syscall_kill_rule.id), 0: none */
	__u8 kill_signal;        /* the signal it sends */
	__u8 kill_result;        /* enum vigil_kill_result */
	__u32 _pad1;
};

/* fork/clone, from sched_process_fork in the parent's context. 80 bytes; hdr.cgroup_id is the child's too. */
struct fork_event {
	struct event_header hdr; /* pid/tid: the parent */
	__u64 parent_start_ns;
	__u64 child_start_ns;
	__u32 child_pid;         /* tid of the new task */
	__u32 child_tgid;        /* its thread group: == parent tgid for a thread */
	__u32 child_ppid;        /* real_parent of the child (differs from hdr.pid with CLONE_PARENT) */
	__u32 flags;             /* VIGIL_PROC_THREAD */
	__u32 _pad0;
	char comm[VIGIL_COMM_LEN];
};

/* exit, from sched_process_exit. 72 bytes. */
struct exit_event {
	struct event_header hdr;
	__u64 start_ns;
	__u32 ppid;
	__u32 exit_code;         /* wait status: exit status << 8 | signal (| 0x80 core dumped) */
	__u32 flags;             /* VIGIL_PROC_GROUP_DEAD, VIGIL_PROC_THREAD */
	__u32 _pad0;
	char comm[VIGIL_COMM_LEN];
};

/* Credentials changed (setuid family, capset, ...), after a successful call. 176 bytes. */
struct creds_event {
	struct event_header hdr;
	__u64 start_ns;
	__u32 syscall_nr;        /* the syscall that changed them, or 0 when seen by commit_creds */
	__u32 _pad0;
	struct proc_creds old_creds;
	struct proc_creds creds;
};

/* A task's comm changed outside exec (prctl PR_SET_NAME, /proc/self/comm). 72 bytes. */
struct comm_event {
	struct event_header hdr;
	__u64 start_ns;
	char old_comm[VIGIL_COMM_LEN];
	char comm[VIGIL_COMM_LEN];
};

/*
 * The kernel-side mirror of the process cache (map vigil_procs, tgid -> proc_entry): lets user space
 * resolve a pid it has not seen, and in-kernel filters ask about a process and its ancestry.
 */
struct proc_entry {
	__u64 start_ns;
	__u64 parent_start_ns;
	__u64 exec_ns;           /* ktime of the last exec (0: none seen) */
	__u32 ppid;
	__u32 flags;
	struct proc_creds creds;
	struct proc_ns ns;
	char comm[VIGIL_COMM_LEN];
};

#define VIGIL_CGROUP_PATH_MAX 512

enum vigil_cgroup_op {
	VIGIL_CGROUP_MKDIR = 1,
	VIGIL_CGROUP_RMDIR = 2,
	VIGIL_CGROUP_ATTACH = 3,  /* a task (pid) moved into the cgroup */
};

/*
 * cgroup lifecycle, from the cgroup_mkdir / cgroup_rmdir / cgroup_attach_task tracepoints of every
 * hierarchy: a container's cgroup is known before its first exec. 560 bytes, path NUL-terminated.
 */
struct cgroup_event {
	struct event_header hdr;
	__u64 id;                /* the cgroup's id (its kernfs node id: the inode of its directory) */
	__u32 op;                /* enum vigil_cgroup_op */
	__u32 hierarchy_id;      /* 0: the cgroup v2 hierarchy; else a v1 hierarchy */
	__u32 level;             /* depth below the root */
	__u32 task_pid;          /* attach: the thread group moved */
	__u32 path_len;          /* bytes of path, NUL included; VIGIL_CGROUP_PATH_MAX when truncated */
	__u32 _pad0;
	char path[VIGIL_CGROUP_PATH_MAX]; /* path below the hierarchy's root, e.g. "/docker/<id>" */
};

/* ---- syscall sensor (bpf/syscalls.bpf.c) ------------------------------------------------------------------ */

/*
 * Event types of the syscall sensor. Each is one bit of syscall_filter_config.enabled_ops, and each record
 * says which one it is (file_event.op, net_event.op, sys_event.op).
 */
enum vigil_sys_op {
	VIGIL_SYS_OPEN = 1,         /* open, openat, openat2, creat */
	VIGIL_SYS_UNLINK = 2,       /* unlink, unlinkat */
	VIGIL_SYS_RMDIR = 3,        /* rmdir, unlinkat(AT_REMOVEDIR) */
	VIGIL_SYS_RENAME = 4,       /* rename, renameat, renameat2 */
	VIGIL_SYS_CHMOD = 5,        /* chmod, fchmod, fchmodat, fchmodat2 */
	VIGIL_SYS_CHOWN = 6,        /* chown, lchown, fchown, fchownat */
	VIGIL_SYS_MKDIR = 7,        /* mkdir, mkdirat */
	VIGIL_SYS_TRUNCATE = 8,     /* truncate, ftruncate */
	VIGIL_SYS_LINK = 9,         /* link, linkat: a hard link (path: the existing file, path2: the new name) */
	VIGIL_SYS_SYMLINK = 10,     /* symlink, symlinkat (path: the target as given, path2: the link made) */
	VIGIL_SYS_CONNECT = 16,
	VIGIL_SYS_ACCEPT = 17,      /* accept, accept4 */
	VIGIL_SYS_BIND = 18,
	VIGIL_SYS_LISTEN = 19,
	VIGIL_SYS_TCP_STATE = 20,   /* sock/inet_sock_set_state for TCP */
	VIGIL_SYS_PTRACE = 32,
	VIGIL_SYS_MOUNT = 33,
	VIGIL_SYS_UMOUNT = 34,      /* umount2 (its tracepoint is sys_enter_umount) */
	VIGIL_SYS_MODULE_LOAD = 35, /* init_module, finit_module, module/module_load */
	VIGIL_SYS_BPF = 36,
	VIGIL_SYS_MEMFD_CREATE = 37,
	VIGIL_SYS_SETNS = 38,
	VIGIL_SYS_UNSHARE = 39,
	VIGIL_SYS_OP_MAX = 64,      /* ops are bits of a u64 */
};

/* ev_flags of file_event, net_event and sys_event. */
enum vigil_sys_flags {
	VIGIL_SYSF_WRITE = 1 << 0,            /* open for writing, creating or truncating */
	VIGIL_SYSF_SENSITIVE = 1 << 1,        /* a modification (write-open, unlink, rename, chmod, truncate, ...) of a path under a sensitive prefix */
	VIGIL_SYSF_PATH_TRUNCATED = 1 << 2,   /* a string argument was longer than the configured limit */
	VIGIL_SYSF_PATH_AT_EXIT = 1 << 3,     /* a string was not readable at entry (page not resident) and was read at exit */
	VIGIL_SYSF_PATH_UNREADABLE = 1 << 4,  /* a string argument could not be read at all */
	VIGIL_SYSF_RESOLVED_FD = 1 << 5,      /* resolved: the path of the opened file (or of the fd argument) */
	VIGIL_SYSF_RESOLVED_CWD = 1 << 6,     /* resolved: the working directory + "/" + the relative path (lexical) */
	VIGIL_SYSF_RESOLVED_DIRFD = 1 << 7,   /* resolved: the directory fd's path + "/" + the relative path (lexical) */
	VIGIL_SYSF_RESOLVED_TRUNCATED = 1 << 8,
	VIGIL_SYSF_ADDR_UNREADABLE = 1 << 9,  /* the sockaddr argument could not be read */
	VIGIL_SYSF_NO_SOCKET = 1 << 10,       /* the fd was not a socket (or was closed at exit) */
	VIGIL_SYSF_TRACEPOINT = 1 << 11,      /* sys_event from a non-syscall tracepoint (module/module_load) */
	VIGIL_SYSF_SECRET = 1 << 12,          /* a read-only open of a path under a secret prefix (credentials, keys) */
	VIGIL_SYSF_LOG_TRUNCATED = 1 << 13,   /* a file under a log prefix truncated: by its open (O_TRUNC), truncate or ftruncate */
	VIGIL_SYSF_LOG_REMOVED = 1 << 14,     /* a file under a log prefix unlinked, or renamed away (the old path) */
	VIGIL_SYSF_LOG_REPLACED = 1 << 15,    /* a rename onto a path under a log prefix: whatever log was there is gone */
	/*
	 * An in-kernel kill rule matched (file_event.kill_rule, kill_signal) and ... For a connect or bind, an
	 * in-kernel deny rule matched (net_event.kill_rule) and SENT means the call was denied (EPERM, no packet
	 * sent, no address taken).
	 */
	VIGIL_SYSF_KILL_SENT = 1 << 16,       /* ... its signal was sent to the process, before the syscall returned */
	VIGIL_SYSF_KILL_DRY_RUN = 1 << 17,    /* ... enforcement is off: nothing was sent */
	VIGIL_SYSF_KILL_REFUSED = 1 << 18,    /* ... the process is protected (pid 1, the agent, its ancestors): nothing was sent */
	VIGIL_SYSF_KILL_FAILED = 1 << 19,     /* ... bpf_send_signal failed */
	/*
	 * A connect event made by the deny rules' datagram hooks (cgroup/sendmsg4, sendmsg6): a UDP datagram sent to
	 * an address without a connect (sendto, sendmsg, sendmmsg), which a deny rule matched. Its nr is
	 * VIGIL_SYS_NR_DATAGRAM and its fd -1: the hook cannot tell which call it runs in, or on which fd.
	 */
	VIGIL_SYSF_DATAGRAM = 1 << 20,
	/*
	 * An operation submitted through io_uring (openat, unlinkat, linkat, ftruncate, connect, accept, ...): no system
	 * call of its own, so no syscall tracepoint sees it. Its nr is VIGIL_SYS_NR_IO_URING; the record is made
	 * when the request completes (its ret is the completion's result), by a thread of the submitting process.
	 */
	VIGIL_SYSF_IO_URING = 1 << 21,
	/*
	 * An io_uring request reported without its result (ret 0): it asked for no completion on success
	 * (IOSQE_CQE_SKIP_SUCCESS), the table pairing submissions with completions was full, or a request of the
	 * same ring with the same user_data was submitted before its completion was seen, so the two could not be
	 * told apart.
	 */
	VIGIL_SYSF_NO_RESULT = 1 << 22,
	/*
	 * With SENSITIVE, of rename, link and symlink: the second path (the new name, the link made) is under a
	 * sensitive prefix, so the call changed what is there. Without it only the first path is (a rename out of a
	 * sensitive directory; a link to a sensitive file, made elsewhere).
	 */
	VIGIL_SYSF_SENSITIVE_PATH2 = 1 << 23,
};

/* file_event.nr and net_event.nr that are no syscall's number on any ABI. */
enum vigil_sys_nr {
	VIGIL_SYS_NR_IO_URING = 0xfffe,  /* an io_uring request (VIGIL_SYSF_IO_URING) */
	VIGIL_SYS_NR_DATAGRAM = 0xffff,  /* a datagram a deny rule matched (VIGIL_SYSF_DATAGRAM) */
};

/* Per-CPU counters of the syscall sensor (map sys_filter_stats): what each filter dropped. */
enum vigil_sys_stat {
	VIGIL_SYS_STAT_ENTERED = 0,        /* syscall entries (and TCP state changes) the sensor's programs saw */
	VIGIL_SYS_STAT_DROP_DISABLED = 1,  /* the event type is off in enabled_ops */
	VIGIL_SYS_STAT_DROP_SELF = 2,      /* the agent's own process */
	VIGIL_SYS_STAT_DROP_SCOPE = 3,     /* container/host scope */
	VIGIL_SYS_STAT_DROP_COMM = 4,      /* comm include/exclude lists */
	VIGIL_SYS_STAT_DROP_PATH = 5,      /* no path prefix matched */
	VIGIL_SYS_STAT_DROP_NOT_SENSITIVE = 6, /* a restricted file event type: not a sensitive modification, truncated or removed log, or secret read */
	VIGIL_SYS_STAT_DROP_ARGS = 7,      /* ptrace/bpf requests outside the configured subset */
	VIGIL_SYS_STAT_NO_PENDING = 8,     /* no per-thread slot to pair entry and exit: event lost */
	VIGIL_SYS_STAT_KILL_MATCHED = 9,   /* an in-kernel kill rule matched (whatever was done: sent, dry-run, refused, failed) */
	VIGIL_SYS_STAT_KILL_SENT = 10,     /* ... and its signal was sent */
	VIGIL_SYS_STAT_DENY_MATCHED = 11,  /* an in-kernel deny rule matched a connect, an unconnected UDP datagram or a bind (whatever was done: denied, dry-run, refused) */
	VIGIL_SYS_STAT_DENIED = 12,        /* ... and the call was denied */
	VIGIL_SYS_STAT_IOURING = 13,       /* io_uring requests of a reported kind that passed the filters at submission */
	VIGIL_SYS_STAT_IOURING_NO_RESULT = 14, /* ... reported without their result (VIGIL_SYSF_NO_RESULT) */
	VIGIL_SYS_STAT_IOURING_TABLE_FULL = 15, /* ... reported at submission, without their result: the table pairing submissions with completions was full */
	VIGIL_SYS_STAT_MAX = 16,
};

enum vigil_sys_scope {
	VIGIL_SCOPE_ALL = 0,
	VIGIL_SCOPE_CONTAINERS = 1,   /* only tasks whose cgroup is in vigil_containers */
	VIGIL_SCOPE_HOST = 2,         /* only tasks whose cgroup is not */
};

/* syscall_filter_config.comm_mode bits; the comm map's values say which list a comm is on. */
enum vigil_sys_comm_mode {
	VIGIL_COMM_INCLUDE = 1,       /* keep only comms whose value is VIGIL_COMM_INCLUDE */
	VIGIL_COMM_EXCLUDE = 2,       /* drop comms whose value is VIGIL_COMM_EXCLUDE */
};

/* syscall_filter_config.flags */
enum vigil_sys_cfg_flags {
	VIGIL_SYSCFG_RESOLVE = 1 << 0,         /* resolve relative paths, and the file of write-opens and fchmod/fchown */
	VIGIL_SYSCFG_RESOLVE_ALL = 1 << 4,     /* also the file of every successful open (a dentry walk each) */
	VIGIL_SYSCFG_SENSITIVE_WRITES = 1 << 1, /* restricted_ops: report modifications under sensitive prefixes */
	VIGIL_SYSCFG_SECRET_READS = 1 << 5,    /* restricted_ops: report read-only opens under secret prefixes */
	VIGIL_SYSCFG_SECRET_HEADS = 1 << 6,    /* every secret prefix has 8 bytes or more, their first 8 in secret_head */
	VIGIL_SYSCFG_SECRET_DIRS = 1 << 7,     /* secret_dir_ino in use: set only with SECRET_HEADS and RESOLVE, not RESOLVE_ALL */
	VIGIL_SYSCFG_PTRACE_ATTACH = 1 << 2,   /* ptrace: report only TRACEME, ATTACH, SEIZE, POKE* and SETREGS* */
	VIGIL_SYSCFG_BPF_LOAD = 1 << 3,        /* bpf(): report only MAP_CREATE, PROG_LOAD, BTF_LOAD, attach/link */
};

#define VIGIL_SYS_PREFIX_MAX 16      /* path prefixes per list */
#define VIGIL_SYS_PREFIX_LEN 256     /* bytes per prefix */
#define VIGIL_UNIX_PATH_MAX 108      /* sizeof(sockaddr_un.sun_path) */
#define VIGIL_SECRET_DIRS_MAX 16     /* directories in syscall_filter_config.secret_dir_ino and sys_secret_dirs */
#define VIGIL_SECRET_DIR_HEADS 4     /* file-name heads per directory in sys_secret_dirs */
#define VIGIL_KILL_RULES_MAX 16      /* in-kernel kill rules in force (each rules map holds two sets: see vigil_kill_set) */
#define VIGIL_KILL_VALUES_MAX 64     /* strings those rules compare with, all rules together (each values map holds two sets too) */
#define VIGIL_KILL_TERMS_MAX 8       /* terms of one kill rule */
#define VIGIL_KILL_PROTECT_MAX 16    /* processes never signalled besides pid 1: the agent and its ancestors */
/*
 * Exec kill rules about argv (VIGIL_KILL_ARGV) compare its first VIGIL_KILL_ARGS_MAX elements, within its first
 * VIGIL_KILL_ARGV_SCAN bytes. Past those (or with argv truncated or unreadable) a miss proves nothing: the kernel
 * then holds no test of argv false, so that a negated one cannot kill (user space still checks the whole argv).
 */
#define VIGIL_KILL_ARGS_MAX 64
#define VIGIL_KILL_ARGV_SCAN 4096
#define VIGIL_KILL_SCOPES_MAX 16384  /* cgroups of containers where some kill rule about containers holds (struct vigil_kill_scope) */

/*
 * The in-kernel kill rules in force, for one sensor (the syscall sensor's in syscall_filter_config, the
 * process sensor's in map proc_kill_config): the first rule_count entries of one half of its rules map and
 * the first value_count of the same half of its values map. A new set is written into the other half of each map and put in
 * force by this struct's update, so that no event is checked against half of one set and half of another.
 */
struct vigil_kill_set {
	__u32 base;              /* which half of each map holds the set: 0 the first, else the second */
	__u32 rule_count;
	__u32 value_count;
	__u32 protect_count;
	__u32 deny_count;        /* of the rules, deny rules (the syscall sensor's connect hooks return at once without) */
	__u32 argv_count;        /* of the values, ones about argv (VIGIL_KILL_ARGV: the process sensor indexes an exec's argv only with some) */
	__u32 protect[VIGIL_KILL_PROTECT_MAX]; /* thread group ids never signalled (the agent, its ancestors) */
};

/* Indices of the process sensor's exec kill counters (map proc_kill_stats, per CPU). */
enum vigil_proc_kill_stat {
	VIGIL_PROC_KILL_MATCHED = 0, /* an exec matched an in-kernel kill rule (whatever was done) */
	VIGIL_PROC_KILL_SENT = 1,    /* ... and its signal was sent */
	VIGIL_PROC_KILL_STAT_MAX = 2,
};

/* What a kill rule that matched did (exec_event.kill_result; a file event has the VIGIL_SYSF_KILL_* flag). */
enum vigil_kill_result {
	VIGIL_KILL_NONE = 0,
	VIGIL_KILL_SENT = 1,     /* the signal was sent, before the syscall returned (exec: before the new image's first instruction) */
	VIGIL_KILL_DRY_RUN = 2,  /* enforcement is off: nothing was sent */
	VIGIL_KILL_REFUSED = 3,  /* the process is protected (pid 1, the agent, its ancestors): nothing was sent */
	VIGIL_KILL_FAILED = 4,   /* bpf_send_signal failed */
};

/* The syscall sensor's filters (map sys_config, one entry), written by user space at any time. */
struct syscall_filter_config {
	__u64 enabled_ops;       /* bit (1 << enum vigil_sys_op) */
	/*
	 * Enabled file event types reported only when they pass a restriction (VIGIL_SYSCFG_SENSITIVE_WRITES,
	 * VIGIL_SYSCFG_SECRET_READS): the quiet default, where a type is not asked for in full.
	 */
	__u64 restricted_ops;
	__u32 self_tgid;         /* the agent: never reported (0: none) */
	__u32 scope;             /* enum vigil_sys_scope */
	__u32 comm_mode;         /* enum vigil_sys_comm_mode bits */
	__u32 prefix_count;      /* entries used in sys_path_prefixes: file events must be under one (0: no filter) */
	__u32 sensitive_count;   /* entries used in sys_sensitive_prefixes */
	__u32 flags;             /* enum vigil_sys_cfg_flags */
	__u32 secret_count;      /* entries used in sys_secret_prefixes */
	__u32 log_count;         /* entries used in sys_log_prefixes: a log truncated or removed under one is flagged */
	__u32 secret_dir_count;  /* entries used in secret_dir_ino and sys_secret_dirs (VIGIL_SYSCFG_SECRET_DIRS) */
	__u32 secret_head_count; /* entries used in secret_head (VIGIL_SYSCFG_SECRET_HEADS) */
	/*
	 * The distinct first 8 bytes of the secret prefixes, as a path's first 8 bytes load (little-endian u64).
	 * Nearly every open on a host is compared with them: a few compares here cost less than a hash lookup.
	 */
	__u64 secret_head[VIGIL_SYS_PREFIX_MAX];
	/*
	 * The inode numbers of the directories the secret prefixes name; sys_secret_dirs[i] says which entries of
	 * secret_dir_ino[i]. Here, not a hash map's keys: every read-only open that missed the secret heads is
	 * compared with them, and a few compares cost less than a hash lookup (bench/gate.ts).
	 */
	__u64 secret_dir_ino[VIGIL_SECRET_DIRS_MAX];
	/* In-kernel kill rules on file events (sys_kill_rules, sys_kill_values): the set in force. */
	struct vigil_kill_set kill;
};

/* Which string a kill rule's term compares (syscall_kill_value.field). */
enum vigil_kill_field {
	VIGIL_KILL_PATH = 0,     /* the path as given (event.path) */
	VIGIL_KILL_FILE = 1,     /* the resolved path where there is one, else the path as given: what the path filters see */
	VIGIL_KILL_COMM = 2,     /* the process's comm: its thread group leader's, as process.comm (a thread may name itself otherwise) */
	VIGIL_KILL_EXE = 3,      /* exec: the executed file's path (process.exe) */
	VIGIL_KILL_PARENT_COMM = 4, /* exec: the parent's comm, its thread group leader's (parent.comm) */
	VIGIL_KILL_RADDR = 5,    /* connect: the peer asked for, as struct vigil_deny_addr; a CIDR is a mask over its bits */
	VIGIL_KILL_RPORT = 6,    /* connect: the peer's port, host order, in the first two bytes */
	VIGIL_KILL_LADDR = 7,    /* bind: the address asked for, as VIGIL_KILL_RADDR */
	VIGIL_KILL_LPORT = 8,    /* bind: the port asked for, as VIGIL_KILL_RPORT */
	VIGIL_KILL_UPATH = 9,    /* connect to a unix socket: its path, or "@" and an abstract name (event.remoteAddress) */
	VIGIL_KILL_PATH2 = 10,   /* rename, link, symlink: the second path as given (event.path2: the new name, the link made) */
	VIGIL_KILL_FILE2 = 11,   /* ... resolved where it was, else as given (event.?resolvedPath2.orValue(event.path2)) */
	VIGIL_KILL_ARGV = 12,    /* exec: some element of argv, as executed (process.argv): see VIGIL_KILL_ARGS_MAX */
};

/*
 * The sys_kill_rules.ops bit of a deny rule about unix socket paths (VIGIL_KILL_UPATH), in place of
 * VIGIL_SYS_CONNECT's: the unix connect hook checks these rules and no other, the IP hooks never these. A rule
 * about ports or IP addresses does not reach unix sockets (a `!=` would), and one about a path not IP peers.
 */
enum vigil_kill_op {
	VIGIL_KILL_OP_UNIX_CONNECT = 21,
};

/* syscall_kill_rule.ret */
enum vigil_kill_ret {
	VIGIL_KILL_RET_ANY = 0,
	VIGIL_KILL_RET_OK = 1,   /* ret >= 0 */
	VIGIL_KILL_RET_ERR = 2,  /* ret < 0 */
};

/*
 * An in-kernel kill rule (maps sys_kill_rules and proc_kill_rules): a detection rule whose whole condition
 * the kernel can check (src/rules/kernel.ts compiles it). The syscall sensor checks its rules on every file
 * event it reports, before the syscall returns to user space; the process sensor its own on every exec, at
 * sched_process_exec, before the new image runs. A rule matches when the event's op is one of `ops` (file
 * events), its ev_flags have every bit of want_flags and none of deny_flags, its ret is as `ret` asks, and
 * each term t < terms holds: some value of term t (syscall_kill_value) matched, or, with bit t of `negate`,
 * none did, and, for a rule about containers, its bit is set in the scope entry of the task's cgroup. An exec
 * rule has no ops, flags or ret: only terms and the container scope. A deny rule (signal 0, ops connect or
 * bind) is checked by the syscall sensor's cgroup hooks on every IPv4 and IPv6 connect (and datagram sent with
 * an address) or bind, before the connection is made or the address taken: terms on comm, the address and
 * port (the peer's; a bind's own), and the container scope; a match fails the call (EPERM).
 */
struct syscall_kill_rule {
	__u64 ops;               /* bits (1 << enum vigil_sys_op) */
	__u32 id;                /* the rule's number, reported in file_event.kill_rule (exec_event.kill_rule); never 0 */
	__u32 signal;            /* sent on a match; 0: a deny rule (ops: connect, bind), whose match denies the call */
	__u32 want_flags;        /* enum vigil_sys_flags */
	__u32 deny_flags;
	__u32 ret;               /* enum vigil_kill_ret */
	__u32 terms;
	__u32 negate;
	__u32 dry_run;           /* enforcement is off: a match is reported, nothing is sent */
	__u32 container;         /* the rule holds only in the cgroups whose scope entry has its bit (struct vigil_kill_scope) */
	__u32 _pad0;
};

/*
 * Where a container-scoped kill rule holds (maps sys_kill_scopes and proc_kill_scopes, keyed by cgroup id,
 * bpf_get_current_cgroup_id's): bit i of rules[h], rule i of the set in half h of the rules map. User space
 * writes an entry for each cgroup of a container it knows in which some rule's container part (its
 * conjuncts about container and pod) holds; a cgroup without one is one where no such rule holds, the host's
 * included (such a rule kills in known containers only).
 */
struct vigil_kill_scope {
	__u16 rules[2];
};

/*
 * A connect's peer (a bind's address) as deny rules compare it (VIGIL_KILL_RADDR, LADDR): the family, then the address, network order
 * (an IPv4 address in addr[0..3]). A value's prefix is one of these, its mask covers the family and the
 * CIDR's bits.
 */
struct vigil_deny_addr {
	__u16 family;            /* AF_INET, AF_INET6 */
	__u16 _pad0;
	__u8 addr[16];
	__u32 _pad1;
};

/* A string a kill rule's term compares with (maps sys_kill_values, proc_kill_values): a prefix, or a whole string when the mask covers its NUL. */
struct syscall_kill_value {
	__u32 rule;              /* its rule's index in the set (0 .. kill_rule_count - 1) */
	__u32 term;
	__u32 field;             /* enum vigil_kill_field */
	__u32 _pad0;
	char prefix[VIGIL_SYS_PREFIX_LEN];
	__u8 mask[VIGIL_SYS_PREFIX_LEN];
};

/*
 * One path prefix (maps sys_path_prefixes, sys_sensitive_prefixes, sys_secret_prefixes, sys_log_prefixes), compared 8 bytes at a time: prefix is
 * zero-padded and mask has 0xff for each byte of the prefix and 0 after, so the kernel needs no length math.
 */
struct syscall_path_prefix {
	__u32 len;
	__u32 _pad0;
	char prefix[VIGIL_SYS_PREFIX_LEN];
	__u8 mask[VIGIL_SYS_PREFIX_LEN];
};

/*
 * A directory some secret prefix names (map sys_secret_dirs, at the index of its inode number in
 * syscall_filter_config.secret_dir_ino), and which of its entries: every one (a prefix naming the directory
 * itself, "/root/.ssh/", or more than VIGIL_SECRET_DIR_HEADS names), or those whose name starts with one of
 * the heads ("shadow" for "/etc/shadow": its first 8 bytes, zero-padded, and a mask of 0xff for each of them).
 */
struct syscall_secret_dir {
	__u32 any;
	__u32 count;
	__u64 head[VIGIL_SECRET_DIR_HEADS];
	__u64 mask[VIGIL_SECRET_DIR_HEADS];
};

/*
 * A file syscall with its arguments and return value, emitted at syscall exit. Variable size: after the
 * fixed part come path_len bytes of the path as passed, path2_len of the second path (rename: the new
 * name), resolved_len of the resolved path (see VIGIL_SYSF_RESOLVED_*) and resolved2_len of the resolved
 * second path; each NUL-terminated within its length (0: absent). hdr.size is the total.
 */
struct file_event {
	struct event_header hdr;
	__s64 ret;               /* the syscall's return value: fd, 0, or -errno */
	__u32 op;                /* enum vigil_sys_op */
	__s32 nr;                /* syscall number (the task's ABI) */
	__u32 ev_flags;          /* enum vigil_sys_flags */
	__u32 flags;             /* the flags argument: O_* (open), AT_* (unlinkat, fchownat, fchmodat2), RENAME_* */
	__u64 resolve;           /* openat2: how.resolve (RESOLVE_*); truncate, ftruncate: the length asked for */
	__u32 mode;              /* open (with O_CREAT/O_TMPFILE), mkdir, chmod */
	__u32 uid;               /* chown: new owner, 0xffffffff: unchanged */
	__u32 gid;
	__s32 dfd;               /* directory fd of the path (AT_FDCWD = -100); fchmod/fchown/ftruncate: the fd */
	__s32 dfd2;              /* rename: directory fd of the new path */
	__u32 path_len;
	__u32 path2_len;
	__u32 resolved_len;
	__u32 resolved2_len;
	__u16 kill_rule;         /* the in-kernel kill rule that matched (syscall_kill_rule.id; VIGIL_SYSF_KILL_*), 0: none */
	__u8 kill_signal;        /* the signal it sends */
	__u8 _pad0;
};

/*
 * A socket syscall with its arguments and result, emitted at exit, or a TCP state change. Fixed size.
 * Addresses: IPv4 in the first 4 bytes of laddr/raddr, IPv6 in all 16, ports in host order. Unix sockets:
 * unix_path holds unix_path_len bytes of sun_path (abstract names start with a NUL); it is the peer's for
 * connect and the socket's own for bind, listen and accept.
 */
struct net_event {
	struct event_header hdr;
	__s64 ret;               /* accept: the new fd */
	__u32 op;                /* enum vigil_sys_op */
	__s32 nr;                /* syscall number; -1 for tcp_state; VIGIL_SYS_NR_DATAGRAM for a datagram a deny rule matched */
	__u32 ev_flags;
	__s32 fd;                /* the socket (accept: the listening socket); -1 for tcp_state and a datagram */
	__u16 family;            /* AF_INET, AF_INET6, AF_UNIX, ... */
	__u16 type;              /* SOCK_STREAM, SOCK_DGRAM, ... (0: unknown) */
	__u16 protocol;          /* IPPROTO_* */
	__u16 lport;
	__u16 rport;
	__u16 kill_rule;         /* connect, bind: the in-kernel deny rule that matched (syscall_kill_rule.id; VIGIL_SYSF_KILL_*), 0: none */
	__u32 flags;             /* accept4 flags */
	__u32 backlog;           /* listen */
	__s32 old_state;         /* tcp_state: TCP_* before and after */
	__s32 new_state;
	__u32 unix_path_len;
	__u8 laddr[16];
	__u8 raddr[16];
	char unix_path[VIGIL_UNIX_PATH_MAX];
	__u32 _pad1;
};

/*
 * The "other" syscalls, emitted at exit. Variable size: str1_len, str2_len and str3_len bytes of strings
 * follow the fixed part, each NUL-terminated within its length. Per op:
 *   ptrace        args: request, pid, addr, data
 *   mount         args: flags;                    str1: source, str2: target, str3: fstype
 *   umount        args: flags;                    str1: target
 *   module_load   init_module args: len;          str1: param string
 *                 finit_module args: fd, flags;   str1: param string, str2: path of the module file
 *                 tracepoint (VIGIL_SYSF_TRACEPOINT): str1: module name
 *   bpf           args: cmd, prog/map type, attr size; str3: prog/map name (MAP_CREATE, PROG_LOAD)
 *   memfd_create  args: flags;                    str1: name
 *   setns         args: fd, nstype, inode of the fd (the namespace's inode for an nsfs fd)
 *   unshare       args: flags
 */
struct sys_event {
	struct event_header hdr;
	__s64 ret;
	__u32 op;                /* enum vigil_sys_op */
	__s32 nr;                /* syscall number; -1 for a tracepoint */
	__u32 ev_flags;
	__u32 _pad0;
	__u64 args[4];
	__u32 str1_len;
	__u32 str2_len;
	__u32 str3_len;
	__u32 _pad1;
};

#endif /* VIGIL_EVENTS_H */
