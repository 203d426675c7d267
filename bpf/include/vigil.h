/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What every vigil sensor shares on the kernel side: the event output channel, chosen at load time between a
 * BPF ring buffer (Linux 5.8+) and a perf event array (older kernels), and per-CPU counters of every record
 * that could not be handed to user space, so that "lost" is always a number and never a guess.
 */
#ifndef VIGIL_H
#define VIGIL_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#ifndef VIGIL_RINGBUF_BYTES
#define VIGIL_RINGBUF_BYTES (16 << 20)
#endif
#ifndef VIGIL_SCRATCH_BYTES
#define VIGIL_SCRATCH_BYTES 1024
#endif

/* 1: records go to vigil_events (ring buffer). 0: to vigil_events_perf. Set by the loader before load. */
const volatile __u32 vigil_use_ringbuf = 1;

/*
 * Which cgroup id events carry. 0xffffffff: the cgroup v2 id (bpf_get_current_cgroup_id), right on v2 and
 * hybrid hosts. Otherwise a cgroup v1 subsystem id (enum cgroup_subsys_id): the id of the task's cgroup in
 * that v1 hierarchy, for hosts without cgroup v2. Set by the loader.
 */
const volatile __u32 vigil_cgroup_v1_subsys = 0xffffffff;

/* The ring buffer every sensor of an agent shares (the loader reuses one map across objects). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, VIGIL_RINGBUF_BYTES);
} vigil_events SEC(".maps");

/* The perf buffer used instead on kernels without ring buffers. */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} vigil_events_perf SEC(".maps");

/* The reader's wakeup wishes (struct vigil_ring_ctl); shared by every sensor of an agent like the ring. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct vigil_ring_ctl);
} vigil_ring_ctl SEC(".maps");

/* Per-CPU counters, enum vigil_stat. Per-CPU, so increments need no atomics. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} vigil_stats SEC(".maps");

/* Per-CPU count of records lost, by opcode: which kind of event was lost, not only how many. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_OP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} vigil_lost SEC(".maps");

/*
 * cgroup ids of known containers (cgroup id -> user-space container index), filled by the container
 * resolver: lets in-kernel filters keep "containers only", "host only" or "this container". One map shared
 * by every sensor of an agent (the loader reuses it across objects).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u32);
} vigil_containers SEC(".maps");

/* Per-CPU scratch record for perf mode, where nothing can be reserved in place. */
struct vigil_scratch {
	__u8 buf[VIGIL_SCRATCH_BYTES];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_scratch);
} vigil_scratch_map SEC(".maps");

/* Adds one to the u64 counter at `idx` of a per-CPU array (this CPU's: no atomics needed). */
static __always_inline void vigil_inc(void *map, __u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(map, &idx);

	if (v)
		*v += 1;
}

static __always_inline void vigil_count(__u32 stat)
{
	vigil_inc(&vigil_stats, stat);
}

static __always_inline void vigil_count_lost(__u32 opcode, __u32 stat)
{
	vigil_count(stat);
	if (opcode < VIGIL_OP_MAX)
		vigil_inc(&vigil_lost, opcode);
}

/* The current task's cgroup id as configured by vigil_cgroup_v1_subsys. */
static __always_inline __u64 vigil_cgroup_id(void)
{
	struct task_struct *task;
	struct cgroup_subsys_state *css;

	if (vigil_cgroup_v1_subsys == 0xffffffff)
		return bpf_get_current_cgroup_id();
	/* v1: the kernfs id of the task's cgroup in the hierarchy of that subsystem (CO-RE). */
	task = (struct task_struct *)bpf_get_current_task();
	css = BPF_CORE_READ(task, cgroups, subsys[vigil_cgroup_v1_subsys & 63]);
	return BPF_CORE_READ(css, cgroup, kn, id);
}

static __always_inline void vigil_fill_header(struct event_header *h, __u16 opcode, __u32 size)
{
	__u64 id = bpf_get_current_pid_tgid();

	h->opcode = opcode;
	h->flags = 0;
	h->size = size;
	h->ktime_ns = bpf_ktime_get_boot_ns();
	h->pid = id >> 32;
	h->tid = (__u32)id;
	h->cgroup_id = vigil_cgroup_id();
}

/*
 * Reserves a record of constant `size` in the ring buffer, or returns the per-CPU scratch record in perf
 * mode. NULL means the ring is full: the loss is already counted under `opcode`.
 */
static __always_inline void *vigil_reserve(__u32 size, __u32 opcode)
{
	__u32 zero = 0;
	void *rec;

	if (vigil_use_ringbuf) {
		rec = bpf_ringbuf_reserve(&vigil_events, size, 0);
		if (!rec)
			vigil_count_lost(opcode, VIGIL_STAT_RESERVE_FAILED);
		return rec;
	}
	rec = bpf_map_lookup_elem(&vigil_scratch_map, &zero);
	return rec;
}

/*
 * The wakeup flags for a record about to be submitted (struct vigil_ring_ctl). A reader draining on its
 * timer is not woken per batch; it is woken once when the ring fills past its watermark, and the producer
 * that wakes it marks it BUSY so that the records after it do not raise more interrupts. The plain read of
 * `mode` can race with the reader changing it; the reader covers that window with one late check.
 */
static __always_inline __u64 vigil_wakeup_flags(void)
{
	__u32 zero = 0;
	struct vigil_ring_ctl *c = bpf_map_lookup_elem(&vigil_ring_ctl, &zero);

	if (!c || c->mode == VIGIL_RING_POLL)
		return 0;
	if (c->mode == VIGIL_RING_TIMER && c->wakeup_bytes &&
	    bpf_ringbuf_query(&vigil_events, BPF_RB_AVAIL_DATA) >= c->wakeup_bytes) {
		c->mode = VIGIL_RING_BUSY;
		return BPF_RB_FORCE_WAKEUP;
	}
	return BPF_RB_NO_WAKEUP;
}

/*
 * Hands a reserved record to user space, woken as vigil_wakeup_flags says: one wakeup per batch at most,
 * so that a consumer draining in batches is not woken per record.
 */
static __always_inline void vigil_submit(void *ctx, void *rec, __u32 size, __u32 opcode)
{
	if (vigil_use_ringbuf) {
		bpf_ringbuf_submit(rec, vigil_wakeup_flags());
		vigil_count(VIGIL_STAT_EMITTED);
		return;
	}
	if (size > VIGIL_SCRATCH_BYTES)
		size = VIGIL_SCRATCH_BYTES;
	if (bpf_perf_event_output(ctx, &vigil_events_perf, BPF_F_CURRENT_CPU, rec, size) < 0)
		vigil_count_lost(opcode, VIGIL_STAT_OUTPUT_FAILED);
	else
		vigil_count(VIGIL_STAT_EMITTED);
}

/* Largest record a perf buffer can carry: its sample header has a 16-bit size. */
#define VIGIL_PERF_MAX_RECORD 65000

/*
 * Copies a record of variable `size` built elsewhere (a map value of `cap` bytes) to the channel. In perf
 * mode records over VIGIL_PERF_MAX_RECORD cannot be sent: the loader keeps limits below that there, and
 * anything bigger is counted as lost rather than sent cut.
 */
static __always_inline int vigil_output(void *ctx, void *data, __u32 size, __u32 cap, __u32 opcode)
{
	long r;

	if (size > cap || (!vigil_use_ringbuf && size > VIGIL_PERF_MAX_RECORD)) {
		vigil_count_lost(opcode, VIGIL_STAT_OUTPUT_FAILED);
		return -1;
	}
	if (vigil_use_ringbuf)
		r = bpf_ringbuf_output(&vigil_events, data, size, vigil_wakeup_flags());
	else
		r = bpf_perf_event_output(ctx, &vigil_events_perf, BPF_F_CURRENT_CPU, data, size);
	if (r < 0) {
		vigil_count_lost(opcode, vigil_use_ringbuf ? VIGIL_STAT_RESERVE_FAILED : VIGIL_STAT_OUTPUT_FAILED);
		return -1;
	}
	vigil_count(VIGIL_STAT_EMITTED);
	return 0;
}

#endif /* VIGIL_H */
