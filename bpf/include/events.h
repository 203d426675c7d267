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
	VIGIL_OP_MAX = 64,       /* size of the per-opcode loss counter array */
};

/* Indices of the per-CPU counters every sensor keeps in its vigil_stats map. */
enum vigil_stat {
	VIGIL_STAT_RESERVE_FAILED = 0,  /* ring buffer full: a record was lost */
	VIGIL_STAT_OUTPUT_FAILED = 1,   /* perf buffer or bpf_ringbuf_output failed: a record was lost */
	VIGIL_STAT_EMITTED = 2,         /* records handed to user space */
	VIGIL_STAT_MAX = 8,
};

/* Common header of every record (24 bytes). */
struct event_header {
	__u16 opcode;     /* enum vigil_opcode */
	__u16 flags;      /* per-opcode flags */
	__u32 size;       /* whole record size in bytes, header included */
	__u64 ktime_ns;   /* bpf_ktime_get_boot_ns() at the event */
	__u32 pid;        /* thread group id as seen from the root pid namespace */
	__u32 tid;        /* thread id as seen from the root pid namespace */
};

/* bench/ringbuf: one 64-byte record per generator syscall. */
struct bench_event {
	struct event_header hdr;
	__u64 seq;        /* per-CPU sequence number: gaps are losses */
	__u32 cpu;
	__u32 _pad0;
	__u8 payload[24];
};

/* Manager tests: a record per trigger, with the value of a load-time constant to prove constant editing. */
struct test_event {
	struct event_header hdr;
	__u64 seq;
	__u64 cookie;     /* value of the program's `test_cookie` constant */
	__u32 probe;      /* which test program emitted it */
	__u32 _pad0;
};

#endif /* VIGIL_EVENTS_H */
