// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Maps for the manager's map tests: a map of maps whose inner map is not declared in BTF (the manager gives
 * it one through innerOuterMaps), and the template that inner maps follow.
 */
#include "vigil.h"

const volatile __u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} inner_template SEC(".maps");

/* No __array(values, ...): libbpf needs an inner map fd, which the manager supplies from inner_template. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} outer_noinner SEC(".maps");

SEC("raw_tp/sys_enter")
int count_into_inner(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 key = 7, zero = 0;
	__u64 *v;
	void *inner;

	if (ctx->args[1] != 110 || (bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	inner = bpf_map_lookup_elem(&outer_noinner, &key);
	if (!inner)
		return 0;
	v = bpf_map_lookup_elem(inner, &zero);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}
