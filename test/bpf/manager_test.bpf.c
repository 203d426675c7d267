// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Programs for the manager's privileged tests: one per hook type the manager supports. Each tracing program
 * reacts only to the test process (target_tgid) and to getppid(), so tests can trigger it precisely, and
 * emits a test_event carrying the load-time constant test_cookie.
 */
#define VIGIL_RINGBUF_BYTES (1 << 20)
#include "vigil.h"

#define NR_getppid 110

enum test_probe {
	P_TP = 1,
	P_RAW_TP = 2,
	P_TP_BTF = 3,
	P_UPROBE = 4,
	P_URETPROBE = 5,
	P_KPROBE = 6,
	P_FENTRY = 7,
	P_TAIL = 8,
	P_LSM = 9,
	P_KRETPROBE = 10,
	P_FEXIT = 11,
};

/* Constants: rewritten by constant editors before load. */
const volatile __u64 test_cookie = 0;
const volatile __u32 target_tgid = 0;

/* .bss and .data globals: read and written live after load. */
__u64 seq_counter = 0;
__u64 uprobe_last_arg = 0;
__u64 uretprobe_last_ret = 0;
__u64 perf_event_hits = 0;
__u64 sock_packets = 0;
__u64 xdp_packets = 0;
__u64 tc_packets = 0;
__u64 cgroup_packets = 0;
__u64 lsm_hits = 0;
__u64 data_value = 42;
__u32 gate = 1; /* user space sets 0 to silence the tracing programs */

/* Triggers per probe id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} percpu_counts SEC(".maps");

/* Tail-call targets, filled by the manager's tail-call routes. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} tail_calls SEC(".maps");

/* Map of maps: slot 0 is filled by a map route with a user-created inner array. */
struct inner_array {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner_array);
} outer_map SEC(".maps");

static __always_inline int is_target(void)
{
	return gate && (bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

static __always_inline void bump(__u32 probe)
{
	__u64 one = 1, *v;
	__u32 slot = probe & 15;

	v = bpf_map_lookup_elem(&counts, &probe);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&counts, &probe, &one, BPF_NOEXIST);
	v = bpf_map_lookup_elem(&percpu_counts, &slot);
	if (v)
		*v += 1;
}

/* Records the trigger, then emits a test_event through the shared output channel. */
static __always_inline int on_trigger(void *ctx, __u32 probe)
{
	struct test_event *e;

	bump(probe);
	e = vigil_reserve(sizeof(*e), VIGIL_OP_TEST);
	if (!e)
		return 0;
	vigil_fill_header(&e->hdr, VIGIL_OP_TEST, sizeof(*e));
	e->seq = __sync_fetch_and_add(&seq_counter, 1);
	e->cookie = test_cookie;
	e->probe = probe;
	e->_pad0 = 0;
	vigil_submit(ctx, e, sizeof(*e), VIGIL_OP_TEST);
	return 0;
}

SEC("tp/syscalls/sys_enter_getppid")
int tp_getppid(struct syscall_trace_enter *ctx)
{
	if (!is_target())
		return 0;
	return on_trigger(ctx, P_TP);
}

SEC("raw_tp/sys_enter")
int raw_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	if (ctx->args[1] != NR_getppid || !is_target())
		return 0;
	return on_trigger(ctx, P_RAW_TP);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(btf_sys_enter, struct pt_regs *regs, long id)
{
	if (id != NR_getppid || !is_target())
		return 0;
	return on_trigger(ctx, P_TP_BTF);
}

/* Attached by the manager to the test's own binary, function `vigil_test_add(int a, int b)`. */
SEC("uprobe")
int BPF_KPROBE(uprobe_add, int a, int b)
{
	if (!is_target())
		return 0;
	uprobe_last_arg = (__u64)a * 1000 + b;
	return on_trigger(ctx, P_UPROBE);
}

SEC("uretprobe")
int BPF_KRETPROBE(uretprobe_add, int ret)
{
	if (!is_target())
		return 0;
	uretprobe_last_ret = ret;
	return on_trigger(ctx, P_URETPROBE);
}

/* The hook point is given by the probe (syscall name resolved per kernel by the manager). */
SEC("kprobe")
int kprobe_getppid(struct pt_regs *ctx)
{
	if (!is_target())
		return 0;
	return on_trigger(ctx, P_KPROBE);
}

SEC("kretprobe")
int kretprobe_getppid(struct pt_regs *ctx)
{
	if (!is_target())
		return 0;
	return on_trigger(ctx, P_KRETPROBE);
}

SEC("fentry/do_nanosleep")
int BPF_PROG(fentry_nanosleep)
{
	if (!is_target())
		return 0;
	return on_trigger(ctx, P_FENTRY);
}

SEC("fexit/do_nanosleep")
int BPF_PROG(fexit_nanosleep)
{
	if (!is_target())
		return 0;
	return on_trigger(ctx, P_FEXIT);
}

SEC("lsm/file_open")
int BPF_PROG(lsm_file_open, struct file *file)
{
	if (is_target())
		__sync_fetch_and_add(&lsm_hits, 1);
	return 0;
}

/* Tail calls: the entry point jumps to slot 0 of tail_calls. */
SEC("raw_tp/sys_enter")
int tail_entry(struct bpf_raw_tracepoint_args *ctx)
{
	if (ctx->args[1] != NR_getppid || !is_target())
		return 0;
	bpf_tail_call(ctx, &tail_calls, 0);
	return 0; /* slot empty: nothing routed yet */
}

SEC("raw_tp")
int tail_target(struct bpf_raw_tracepoint_args *ctx)
{
	return on_trigger(ctx, P_TAIL);
}

/* Map of maps: increments inner[0] of whatever map is routed into outer_map[0]. */
SEC("raw_tp/sys_enter")
int outer_user(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 zero = 0;
	__u64 *v;
	void *inner;

	if (ctx->args[1] != NR_getppid || !is_target())
		return 0;
	inner = bpf_map_lookup_elem(&outer_map, &zero);
	if (!inner)
		return 0;
	v = bpf_map_lookup_elem(inner, &zero);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("perf_event")
int perf_event_prog(struct bpf_perf_event_data *ctx)
{
	__sync_fetch_and_add(&perf_event_hits, 1);
	return 0;
}

SEC("socket")
int sock_filter(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&sock_packets, 1);
	return skb->len; /* keep the whole packet */
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	__sync_fetch_and_add(&xdp_packets, 1);
	return 2; /* XDP_PASS */
}

SEC("tc")
int tc_count(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&tc_packets, 1);
	return 0; /* TC_ACT_OK */
}

SEC("cgroup_skb/egress")
int cgroup_egress(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&cgroup_packets, 1);
	return 1; /* allow */
}

/* Lists "pid comm" for every task: proves iterator programs load, attach and read. */
SEC("iter/task")
int iter_tasks(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;

	if (!task || task->pid != task->tgid)
		return 0;
	BPF_SEQ_PRINTF(seq, "%d %s\n", task->tgid, task->comm);
	return 0;
}
