// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A program the verifier must reject (it dereferences a scalar), for the VerifierError tests. */
#include "vigil.h"

SEC("raw_tp/sys_enter")
int bad_deref(struct bpf_raw_tracepoint_args *ctx)
{
	/* args[0] is a pointer to pt_regs but only a scalar to the verifier: reading through it is invalid. */
	__u64 *p = (__u64 *)ctx->args[0];

	return *p == 42;
}

SEC("raw_tp/sys_enter")
int fine(struct bpf_raw_tracepoint_args *ctx)
{
	return 0;
}
