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
	VIGIL_OP_MAX = 64,       /* size of the per-opcode loss counter array */
};

/* Indices of the per-CPU counters every sensor keeps in its vigil_stats map. */
enum vigil_stat {
	VIGIL_STAT_RESERVE_FAILED = 0,  /* ring buffer full: a record was lost */
	VIGIL_STAT_OUTPUT_FAILED = 1,   /* perf buffer or bpf_ringbuf_output failed: a record was lost */
	VIGIL_STAT_EMITTED = 2,         /* records handed to user space */
	VIGIL_STAT_MAX = 8,
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

#endif /* VIGIL_EVENTS_H */
