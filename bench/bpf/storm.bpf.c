// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * bench/storm probes, attached by bench/c/storm_consumer.c to the same syscall tracepoints as vigil's syscall
 * sensor, one entry and one exit program per syscall:
 *
 *   emit = 0  the floor: each program compares the caller's tgid with a constant and returns. What any probe
 *             on these hooks costs, whatever it does, so vigil's filters are measured against it.
 *   emit = 1  a reference file monitor in the style of opensnoop: the entry saves the path pointer and flags
 *             (a hash keyed by tid), the exit reads the path and emits one record into vigil_events. Wakeups
 *             are batched: BPF_RB_NO_WAKEUP, except one forced wakeup by the record that takes the pending
 *             data past `wakeup_bytes` (forcing one on every record past it costs an interrupt per record);
 *             the consumer drains on a short timer meanwhile (KERNEL-NOTES.md: wakeups, not copies, are the
 *             cost).
 *             wakeup_bytes = 0 keeps the kernel's default policy instead (a wakeup whenever the consumer has
 *             caught up).
 */
#include "vigil.h"

const volatile __u32 target_tgid = 0;   /* the storm; 0 matches no user process */
const volatile __u32 emit = 0;
const volatile __u32 wakeup_bytes = 0;

#define STORM_PATH_MAX 256

struct storm_start {
	__u64 path;
	__u64 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct storm_start);
} storm_starts SEC(".maps");

/* Not wire format of vigil: the reference consumer's own record. */
struct storm_event {
	struct event_header hdr;
	__s64 ret;
	__u64 flags;
	char path[STORM_PATH_MAX];
};

SEC("tp/syscalls/sys_enter_openat")
int storm_enter(struct syscall_trace_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct storm_start s;
	__u32 tid = (__u32)id;

	if ((id >> 32) != target_tgid)
		return 0;
	if (!emit)
		return 0; /* a constant: the verifier prunes the rest */
	s.path = ctx->args[1];
	s.flags = ctx->args[2];
	bpf_map_update_elem(&storm_starts, &tid, &s, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_exit_openat")
int storm_exit(struct syscall_trace_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), flags;
	struct storm_start *s;
	struct storm_event *e;
	__u32 tid = (__u32)id;

	if ((id >> 32) != target_tgid)
		return 0;
	if (!emit)
		return 0;
	s = bpf_map_lookup_elem(&storm_starts, &tid);
	if (!s)
		return 0;
	e = bpf_ringbuf_reserve(&vigil_events, sizeof(*e), 0);
	if (!e) {
		vigil_count_lost(VIGIL_OP_BENCH, VIGIL_STAT_RESERVE_FAILED);
		bpf_map_delete_elem(&storm_starts, &tid);
		return 0;
	}
	vigil_fill_header(&e->hdr, VIGIL_OP_BENCH, sizeof(*e));
	e->ret = ctx->ret;
	e->flags = s->flags;
	bpf_probe_read_user_str(e->path, sizeof(e->path), (const char *)s->path);
	bpf_map_delete_elem(&storm_starts, &tid);
	flags = 0;
	if (wakeup_bytes) {
		/* Pending bytes, this record (and its 8-byte ring header) included. */
		__u64 avail = bpf_ringbuf_query(&vigil_events, BPF_RB_AVAIL_DATA);

		flags = avail >= wakeup_bytes && avail < wakeup_bytes + sizeof(*e) + 8 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	}
	bpf_ringbuf_submit(e, flags);
	vigil_count(VIGIL_STAT_EMITTED);
	return 0;
}
