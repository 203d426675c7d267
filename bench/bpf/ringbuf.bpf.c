// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * bench/ringbuf producer: on every getppid() of the generator process, emits `records_per_call` 64-byte
 * bench_event records through vigil's event channel (vigil_reserve/vigil_submit, which count every failed
 * reservation in vigil_stats). The same object serves both consumers, vigil's TypeScript one and the C one.
 */
#include "vigil.h"

#define NR_getppid 110 /* x86-64 */
#define MAX_RECORDS_PER_CALL 64

/* Set by the loader before load. */
const volatile __u32 target_tgid = 0;
/* Records per generator syscall: >1 measures consumer capacity beyond what one generator core produces. */
const volatile __u32 records_per_call = 1;
/* 0: match the generator's syscalls but emit nothing, to measure the cost of the hook alone. */
const volatile __u32 emit = 1;

/* Per-CPU sequence number of emitted records: consumers check it for gaps. Per-CPU, so no atomics. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bench_seq SEC(".maps");

SEC("raw_tp/sys_enter")
int bench_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct bench_event *e;
	__u32 zero = 0, cpu, i;
	__u64 *seq;

	/* Cheapest test first: every syscall on the machine goes through here. */
	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid || ctx->args[1] != NR_getppid)
		return 0;
	/* A constant after load: the verifier prunes everything below when emit is 0. */
	if (!emit)
		return 0;
	seq = bpf_map_lookup_elem(&bench_seq, &zero);
	if (!seq)
		return 0;
	cpu = bpf_get_smp_processor_id();
	/* Bounded for the verifier; records_per_call is a frozen constant, so the bound is known at load. */
	for (i = 0; i < MAX_RECORDS_PER_CALL && i < records_per_call; i++) {
		/* The sequence number advances even when the ring is full, so a loss shows up as a gap. */
		__u64 s = (*seq)++;

		e = vigil_reserve(sizeof(*e), VIGIL_OP_BENCH);
		if (!e)
			continue;
		vigil_fill_header(&e->hdr, VIGIL_OP_BENCH, sizeof(*e));
		e->seq = s;
		e->cpu = cpu;
		e->_pad0 = 0;
		/* Written in full, as a real sensor would: the cost measured is that of a whole 64-byte record. */
		__builtin_memset(e->payload, 0, sizeof(e->payload));
		vigil_submit(ctx, e, sizeof(*e), VIGIL_OP_BENCH);
	}
	return 0;
}
