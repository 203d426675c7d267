/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The absolute path of a `struct path`, walked from its dentry up to the root of its mount namespace,
 * crossing mount points: what the process that opened or executed the file would call it. Shared by every
 * sensor that reports paths (process: the executed file; syscalls: files opened by fd).
 *
 * bpf_loop (5.17+) keeps verification cheap whatever the depth; older kernels get a bounded loop of fewer
 * components. The walk state lives in the per-CPU map value, not on the stack, on purpose: the verifier does
 * not track map memory, so the bpf_loop callback's states converge instead of being explored once per
 * possible position.
 */
#ifndef VIGIL_PATH_H
#define VIGIL_PATH_H

#include "vigil.h"

#define VIGIL_NAME_MAX_LEN 255
#define VIGIL_PATH_MAX_DEPTH 128
#define VIGIL_PATH_MAX_DEPTH_NOLOOP 16

struct vigil_walk_ctx {
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	struct mount *mnt_parent;
	__u32 pos;        /* the path is built backwards: it starts at data[pos] */
	__u32 truncated;
	__u32 done;
	__u32 _pad0;
};

struct vigil_path_buf {
	struct vigil_walk_ctx w;
	char data[VIGIL_PATH_MAX + 256];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_path_buf);
} vigil_path_heap SEC(".maps");

/*
 * Set by the loader (constant editor "vigil_direct_reads") where tracing programs can call the bpf_rdonly_cast
 * kfunc (6.2+): the walk then follows the dentry and mount chain with plain loads, which the verifier turns
 * into fault-handling loads, instead of one bpf_probe_read_kernel call per field. Measured here on an open of
 * "null" from /dev: the walk went from ~960 to ~460 ns. 0 leaves the kfunc in dead code: libbpf leaves a weak
 * kfunc the kernel lacks unresolved, and the verifier removes the dead call (not tried here: this kernel has it).
 */
const volatile __u32 vigil_direct_reads = 0;
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;
#define VIGIL_CAST(p, type) ((type *)bpf_rdonly_cast((p), bpf_core_type_id_kernel(type)))

/* One component: prepends "/<name>" or crosses a mount. Returns 1 to stop. */
static __always_inline long vigil_walk_step(struct vigil_walk_ctx *w, char *buf)
{
	/* Plain locals: CO-RE relocations must name kernel types, not vigil_walk_ctx. */
	struct dentry *dentry = w->dentry;
	struct vfsmount *vfsmnt = w->vfsmnt;
	struct mount *mnt = w->mnt, *mnt_parent = w->mnt_parent;
	struct dentry *mnt_root, *parent;
	struct qstr name;
	__u32 len, pos = w->pos;

	if (vigil_direct_reads) {
		mnt_root = VIGIL_CAST(vfsmnt, struct vfsmount)->mnt_root;
		parent = VIGIL_CAST(dentry, struct dentry)->d_parent;
	} else {
		mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
		parent = BPF_CORE_READ(dentry, d_parent);
	}
	if (dentry == mnt_root || dentry == parent) {
		if (mnt == mnt_parent) {
			w->done = 1;
			return 1; /* the root of the namespace */
		}
		/* Cross to the mount this one is mounted on. */
		if (vigil_direct_reads) {
			w->dentry = VIGIL_CAST(mnt, struct mount)->mnt_mountpoint;
			w->mnt_parent = VIGIL_CAST(mnt_parent, struct mount)->mnt_parent;
		} else {
			w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			w->mnt_parent = BPF_CORE_READ(mnt_parent, mnt_parent);
		}
		w->mnt = mnt_parent;
		w->vfsmnt = &mnt_parent->mnt;
		return 0;
	}
	if (vigil_direct_reads) {
		struct dentry *d = VIGIL_CAST(dentry, struct dentry);

		name.len = d->d_name.len;
		name.name = d->d_name.name;
	} else {
		name = BPF_CORE_READ(dentry, d_name);
	}
	len = name.len;
	if (len > VIGIL_NAME_MAX_LEN)
		len = VIGIL_NAME_MAX_LEN;
	if (len + 1 > pos || pos >= VIGIL_PATH_MAX) {
		w->truncated = 1;
		return 1;
	}
	pos -= len;
	/* pos < VIGIL_PATH_MAX and len <= 255: the write stays within the buffer. */
	bpf_probe_read_kernel(buf + (pos & (VIGIL_PATH_MAX - 1)), len & VIGIL_NAME_MAX_LEN, name.name);
	pos -= 1;
	buf[pos & (VIGIL_PATH_MAX - 1)] = '/';
	w->pos = pos;
	w->dentry = parent;
	return 0;
}

static long vigil_walk_loop_cb(__u32 i, void *data)
{
	__u32 zero = 0;
	struct vigil_path_buf *pb = bpf_map_lookup_elem(&vigil_path_heap, &zero);

	if (!pb)
		return 1;
	return vigil_walk_step(&pb->w, pb->data);
}

/*
 * Writes the path of `path` backwards into pb->data and returns the offset where the NUL-terminated path
 * starts (< VIGIL_PATH_MAX). Sets *truncated when the walk gave up (too deep or too long).
 */
static __always_inline __u32 vigil_walk_path(const struct path *path, struct vigil_path_buf *pb, __u32 *truncated)
{
	struct vigil_walk_ctx *w = &pb->w;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	__u32 pos;
	int i;

	if (vigil_direct_reads) {
		const struct path *p = VIGIL_CAST(path, struct path);

		vfsmnt = p->mnt;
		mnt = container_of(vfsmnt, struct mount, mnt);
		w->dentry = p->dentry;
		w->mnt_parent = VIGIL_CAST(mnt, struct mount)->mnt_parent;
	} else {
		vfsmnt = BPF_CORE_READ(path, mnt);
		mnt = container_of(vfsmnt, struct mount, mnt);
		w->dentry = BPF_CORE_READ(path, dentry);
		w->mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
	}
	w->vfsmnt = vfsmnt;
	w->mnt = mnt;
	w->pos = VIGIL_PATH_MAX - 1;
	w->truncated = 0;
	w->done = 0;
	pb->data[VIGIL_PATH_MAX - 1] = 0;
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_loop)) {
		bpf_loop(VIGIL_PATH_MAX_DEPTH, vigil_walk_loop_cb, 0, 0);
	} else {
		for (i = 0; i < VIGIL_PATH_MAX_DEPTH_NOLOOP; i++)
			if (vigil_walk_step(w, pb->data))
				break;
	}
	*truncated = w->truncated || !w->done;
	pos = w->pos;
	if (pos >= VIGIL_PATH_MAX - 1) {
		/* The root itself. */
		pos = VIGIL_PATH_MAX - 2;
		pb->data[VIGIL_PATH_MAX - 2] = '/';
	}
	return pos & (VIGIL_PATH_MAX - 1);
}

#endif /* VIGIL_PATH_H */
