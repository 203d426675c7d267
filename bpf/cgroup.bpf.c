// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The cgroup sensor: creation and removal of cgroups and task migrations between them, in every hierarchy,
 * so that a container's cgroup is known (and its runtime queried) before its first exec, and its removal
 * starts the expiry of its metadata. BTF tracepoints where the kernel has them, raw tracepoints otherwise.
 */
#include "vigil.h"

/* 1: report task migrations (cgroup_attach_task) too. */
const volatile __u32 emit_attach = 1;

static __always_inline int emit(void *ctx, struct cgroup *cgrp, const char *path, __u32 op, struct task_struct *task)
{
	struct cgroup_event *e;
	long n;

	if (op == VIGIL_CGROUP_ATTACH && !emit_attach)
		return 0;
	e = vigil_reserve(sizeof(*e), VIGIL_OP_CGROUP);
	if (!e)
		return 0;
	vigil_fill_header(&e->hdr, VIGIL_OP_CGROUP, sizeof(*e));
	e->id = BPF_CORE_READ(cgrp, kn, id);
	e->op = op;
	e->hierarchy_id = BPF_CORE_READ(cgrp, root, hierarchy_id);
	e->level = BPF_CORE_READ(cgrp, level);
	e->task_pid = task ? BPF_CORE_READ(task, tgid) : 0;
	e->_pad0 = 0;
	n = bpf_probe_read_kernel_str(e->path, sizeof(e->path), path);
	e->path_len = n > 0 ? n : 0;
	vigil_submit(ctx, e, sizeof(*e), VIGIL_OP_CGROUP);
	return 0;
}

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(cgroup_mkdir_btf, struct cgroup *cgrp, const char *path)
{
	return emit(ctx, cgrp, path, VIGIL_CGROUP_MKDIR, 0);
}

SEC("raw_tp/cgroup_mkdir")
int cgroup_mkdir_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return emit(ctx, (struct cgroup *)ctx->args[0], (const char *)ctx->args[1], VIGIL_CGROUP_MKDIR, 0);
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(cgroup_rmdir_btf, struct cgroup *cgrp, const char *path)
{
	return emit(ctx, cgrp, path, VIGIL_CGROUP_RMDIR, 0);
}

SEC("raw_tp/cgroup_rmdir")
int cgroup_rmdir_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return emit(ctx, (struct cgroup *)ctx->args[0], (const char *)ctx->args[1], VIGIL_CGROUP_RMDIR, 0);
}

SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(cgroup_attach_btf, struct cgroup *dst, const char *path, struct task_struct *task)
{
	return emit(ctx, dst, path, VIGIL_CGROUP_ATTACH, task);
}

SEC("raw_tp/cgroup_attach_task")
int cgroup_attach_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return emit(ctx, (struct cgroup *)ctx->args[0], (const char *)ctx->args[1], VIGIL_CGROUP_ATTACH,
		    (struct task_struct *)ctx->args[2]);
}
