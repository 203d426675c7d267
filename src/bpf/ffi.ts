// Raw koffi bindings to the system libbpf.so.1 and libc. libbpf's are used only in src/bpf and src/ringbuf:
// koffi 3 passes pointers as untyped bigints, so a map passed where a program is expected would crash the
// process. The wrapper classes (BpfObject, BpfProgram, BpfMap, BpfLink) are the only users of these handles.
// libc() (the proc connector's socket calls) and pidfd() (src/process/signal.ts) take only integers and
// Buffers the caller owns.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import koffi, { type LibraryHandle, type TypeObject } from 'koffi';
import { NotSupportedError } from './errors.ts';

export type Ptr = bigint;

// Structs whose layout libbpf and the kernel define. koffi computes offsets with the C ABI rules.
const ObjectOpenOpts = koffi.struct('bpf_object_open_opts', {
  sz: 'size_t',
  object_name: 'const char *',
  relaxed_maps: 'bool',
  pin_root_path: 'const char *',
  _pad0: 'uint32',
  kconfig: 'const char *',
  btf_custom_path: 'const char *',
  kernel_log_buf: 'void *',
  kernel_log_size: 'size_t',
  kernel_log_level: 'uint32',
});

const UprobeOpts = koffi.struct('bpf_uprobe_opts', {
  sz: 'size_t',
  ref_ctr_offset: 'size_t',
  bpf_cookie: 'uint64',
  retprobe: 'bool',
  func_name: 'const char *',
});

const KprobeOpts = koffi.struct('bpf_kprobe_opts', {
  sz: 'size_t',
  bpf_cookie: 'uint64',
  offset: 'size_t',
  retprobe: 'bool',
});

const TracepointOpts = koffi.struct('bpf_tracepoint_opts', { sz: 'size_t', bpf_cookie: 'uint64' });
const TraceOpts = koffi.struct('bpf_trace_opts', { sz: 'size_t', cookie: 'uint64' });

export const TestRunOpts = koffi.struct('bpf_test_run_opts', {
  sz: 'size_t',
  data_in: 'void *',
  data_out: 'void *',
  data_size_in: 'uint32',
  data_size_out: 'uint32',
  ctx_in: 'void *',
  ctx_out: 'void *',
  ctx_size_in: 'uint32',
  ctx_size_out: 'uint32',
  retval: 'uint32',
  repeat: 'int',
  duration: 'uint32',
  flags: 'uint32',
  cpu: 'uint32',
  batch_size: 'uint32',
});

export const TcHook = koffi.struct('bpf_tc_hook', {
  sz: 'size_t',
  ifindex: 'int',
  attach_point: 'int',
  parent: 'uint32',
});

export const TcOpts = koffi.struct('bpf_tc_opts', {
  sz: 'size_t',
  prog_fd: 'int',
  flags: 'uint32',
  prog_id: 'uint32',
  handle: 'uint32',
  priority: 'uint32',
});

const ProgLoadOpts = koffi.struct('bpf_prog_load_opts', {
  sz: 'size_t',
  attempts: 'int',
  expected_attach_type: 'int',
  prog_btf_fd: 'uint32',
  prog_flags: 'uint32',
  prog_ifindex: 'uint32',
  kern_version: 'uint32',
  attach_btf_id: 'uint32',
  attach_prog_fd: 'uint32',
  attach_btf_obj_fd: 'uint32',
  fd_array: 'void *',
  func_info: 'void *',
  func_info_cnt: 'uint32',
  func_info_rec_size: 'uint32',
  line_info: 'void *',
  line_info_cnt: 'uint32',
  line_info_rec_size: 'uint32',
  log_level: 'uint32',
  log_size: 'uint32',
  log_buf: 'void *',
});

const XdpAttachOpts = koffi.struct('bpf_xdp_attach_opts', { sz: 'size_t', old_prog_fd: 'int' });

const MapBatchOpts = koffi.struct('bpf_map_batch_opts', { sz: 'size_t', elem_flags: 'uint64', flags: 'uint64' });

export const ProgInfo = koffi.struct('bpf_prog_info', {
  type: 'uint32',
  id: 'uint32',
  tag: koffi.array('uint8', 8),
  jited_prog_len: 'uint32',
  xlated_prog_len: 'uint32',
  jited_prog_insns: 'uint64',
  xlated_prog_insns: 'uint64',
  load_time: 'uint64',
  created_by_uid: 'uint32',
  nr_map_ids: 'uint32',
  map_ids: 'uint64',
  name: koffi.array('char', 16, 'String'),
  ifindex: 'uint32',
  gpl_compatible: 'uint32',
  netns_dev: 'uint64',
  netns_ino: 'uint64',
  nr_jited_ksyms: 'uint32',
  nr_jited_func_lens: 'uint32',
  jited_ksyms: 'uint64',
  jited_func_lens: 'uint64',
  btf_id: 'uint32',
  func_info_rec_size: 'uint32',
  func_info: 'uint64',
  nr_func_info: 'uint32',
  nr_line_info: 'uint32',
  line_info: 'uint64',
  jited_line_info: 'uint64',
  nr_jited_line_info: 'uint32',
  line_info_rec_size: 'uint32',
  jited_line_info_rec_size: 'uint32',
  nr_prog_tags: 'uint32',
  prog_tags: 'uint64',
  run_time_ns: 'uint64',
  run_cnt: 'uint64',
  recursion_misses: 'uint64',
  verified_insns: 'uint32',
  attach_btf_obj_id: 'uint32',
  attach_btf_id: 'uint32',
  _pad: 'uint32',
});

export const MapInfo = koffi.struct('bpf_map_info', {
  type: 'uint32',
  id: 'uint32',
  key_size: 'uint32',
  value_size: 'uint32',
  max_entries: 'uint32',
  map_flags: 'uint32',
  name: koffi.array('char', 16, 'String'),
  ifindex: 'uint32',
  btf_vmlinux_value_type_id: 'uint32',
  netns_dev: 'uint64',
  netns_ino: 'uint64',
  btf_id: 'uint32',
  btf_key_type_id: 'uint32',
  btf_value_type_id: 'uint32',
  _pad: 'uint32',
  map_extra: 'uint64',
});

export const PerfEventAttr = koffi.struct('perf_event_attr', {
  type: 'uint32',
  size: 'uint32',
  config: 'uint64',
  sample_period_or_freq: 'uint64',
  sample_type: 'uint64',
  read_format: 'uint64',
  flags: 'uint64',
  wakeup_events_or_watermark: 'uint32',
  bp_type: 'uint32',
  config1: 'uint64',
  config2: 'uint64',
  branch_sample_type: 'uint64',
  sample_regs_user: 'uint64',
  sample_stack_user: 'uint32',
  clockid: 'int32',
  sample_regs_intr: 'uint64',
  aux_watermark: 'uint32',
  sample_max_stack: 'uint16',
  _reserved2: 'uint16',
  aux_sample_size: 'uint32',
  _reserved3: 'uint32',
  sig_data: 'uint64',
});

function loadLib(name: string) {
  try {
    return koffi.load(name);
  } catch (err) {
    throw new NotSupportedError('libbpf', `cannot load ${name}; install the Debian package libbpf1 (make deps does)`, {
      cause: err,
    });
  }
}

function bind() {
  const bpf = loadLib('libbpf.so.1');
  const c = loadLib('libc.so.6');
  const f = (lib: LibraryHandle, sig: string) => lib.func(sig);
  return {
    // libbpf: library
    libbpf_major_version: f(bpf, 'uint32 libbpf_major_version(void)'),
    libbpf_minor_version: f(bpf, 'uint32 libbpf_minor_version(void)'),
    libbpf_num_possible_cpus: f(bpf, 'int libbpf_num_possible_cpus(void)'),
    libbpf_set_print: f(bpf, 'void *libbpf_set_print(void *fn)'),
    libbpf_probe_bpf_prog_type: f(bpf, 'int libbpf_probe_bpf_prog_type(int prog_type, void *opts)'),
    libbpf_probe_bpf_map_type: f(bpf, 'int libbpf_probe_bpf_map_type(int map_type, void *opts)'),
    libbpf_probe_bpf_helper: f(bpf, 'int libbpf_probe_bpf_helper(int prog_type, int helper_id, void *opts)'),
    libbpf_bpf_prog_type_str: f(bpf, 'const char *libbpf_bpf_prog_type_str(int t)'),
    libbpf_bpf_map_type_str: f(bpf, 'const char *libbpf_bpf_map_type_str(int t)'),
    libbpf_bpf_attach_type_str: f(bpf, 'const char *libbpf_bpf_attach_type_str(int t)'),

    // libbpf: objects
    bpf_object__open_file: f(bpf, 'void *bpf_object__open_file(const char *path, bpf_object_open_opts *opts)'),
    bpf_object__open_mem: f(bpf, 'void *bpf_object__open_mem(const void *buf, size_t sz, bpf_object_open_opts *opts)'),
    bpf_object__load: f(bpf, 'int bpf_object__load(void *obj)'),
    bpf_object__close: f(bpf, 'void bpf_object__close(void *obj)'),
    bpf_object__name: f(bpf, 'const char *bpf_object__name(void *obj)'),
    bpf_object__btf: f(bpf, 'void *bpf_object__btf(void *obj)'),
    bpf_object__next_program: f(bpf, 'void *bpf_object__next_program(void *obj, void *prev)'),
    bpf_object__next_map: f(bpf, 'void *bpf_object__next_map(void *obj, void *prev)'),

    // libbpf: programs
    bpf_program__name: f(bpf, 'const char *bpf_program__name(void *prog)'),
    bpf_program__section_name: f(bpf, 'const char *bpf_program__section_name(void *prog)'),
    bpf_program__type: f(bpf, 'int bpf_program__type(void *prog)'),
    bpf_program__set_type: f(bpf, 'int bpf_program__set_type(void *prog, int type)'),
    bpf_program__expected_attach_type: f(bpf, 'int bpf_program__expected_attach_type(void *prog)'),
    bpf_program__set_expected_attach_type: f(bpf, 'int bpf_program__set_expected_attach_type(void *prog, int t)'),
    bpf_program__autoload: f(bpf, 'bool bpf_program__autoload(void *prog)'),
    bpf_program__set_autoload: f(bpf, 'int bpf_program__set_autoload(void *prog, bool autoload)'),
    bpf_program__fd: f(bpf, 'int bpf_program__fd(void *prog)'),
    bpf_program__insn_cnt: f(bpf, 'size_t bpf_program__insn_cnt(void *prog)'),
    bpf_program__set_log_buf: f(bpf, 'int bpf_program__set_log_buf(void *prog, void *buf, size_t size)'),
    bpf_program__set_log_level: f(bpf, 'int bpf_program__set_log_level(void *prog, uint32 level)'),
    bpf_program__set_attach_target: f(bpf, 'int bpf_program__set_attach_target(void *prog, int fd, const char *name)'),
    bpf_program__pin: f(bpf, 'int bpf_program__pin(void *prog, const char *path)'),
    bpf_program__unpin: f(bpf, 'int bpf_program__unpin(void *prog, const char *path)'),
    bpf_program__attach: f(bpf, 'void *bpf_program__attach(void *prog)'),
    bpf_program__attach_tracepoint_opts: f(
      bpf,
      'void *bpf_program__attach_tracepoint_opts(void *prog, const char *cat, const char *name, bpf_tracepoint_opts *opts)',
    ),
    bpf_program__attach_raw_tracepoint: f(bpf, 'void *bpf_program__attach_raw_tracepoint(void *prog, const char *name)'),
    bpf_program__attach_trace_opts: f(bpf, 'void *bpf_program__attach_trace_opts(void *prog, bpf_trace_opts *opts)'),
    bpf_program__attach_lsm: f(bpf, 'void *bpf_program__attach_lsm(void *prog)'),
    bpf_program__attach_kprobe_opts: f(
      bpf,
      'void *bpf_program__attach_kprobe_opts(void *prog, const char *func, bpf_kprobe_opts *opts)',
    ),
    bpf_program__attach_uprobe_opts: f(
      bpf,
      'void *bpf_program__attach_uprobe_opts(void *prog, int pid, const char *path, size_t off, bpf_uprobe_opts *opts)',
    ),
    bpf_program__attach_cgroup: f(bpf, 'void *bpf_program__attach_cgroup(void *prog, int cgroup_fd)'),
    bpf_program__attach_xdp: f(bpf, 'void *bpf_program__attach_xdp(void *prog, int ifindex)'),
    bpf_program__attach_perf_event: f(bpf, 'void *bpf_program__attach_perf_event(void *prog, int pfd)'),
    bpf_program__attach_iter: f(bpf, 'void *bpf_program__attach_iter(void *prog, void *opts)'),

    // libbpf: links
    bpf_link__destroy: f(bpf, 'int bpf_link__destroy(void *link)'),
    bpf_link__fd: f(bpf, 'int bpf_link__fd(void *link)'),
    bpf_link__pin: f(bpf, 'int bpf_link__pin(void *link, const char *path)'),
    bpf_link__unpin: f(bpf, 'int bpf_link__unpin(void *link)'),
    bpf_iter_create: f(bpf, 'int bpf_iter_create(int link_fd)'),

    // libbpf: maps (object-level, before and after load)
    bpf_map__name: f(bpf, 'const char *bpf_map__name(void *map)'),
    bpf_map__type: f(bpf, 'int bpf_map__type(void *map)'),
    bpf_map__set_type: f(bpf, 'int bpf_map__set_type(void *map, int type)'),
    bpf_map__key_size: f(bpf, 'uint32 bpf_map__key_size(void *map)'),
    bpf_map__set_key_size: f(bpf, 'int bpf_map__set_key_size(void *map, uint32 size)'),
    bpf_map__value_size: f(bpf, 'uint32 bpf_map__value_size(void *map)'),
    bpf_map__set_value_size: f(bpf, 'int bpf_map__set_value_size(void *map, uint32 size)'),
    bpf_map__max_entries: f(bpf, 'uint32 bpf_map__max_entries(void *map)'),
    bpf_map__set_max_entries: f(bpf, 'int bpf_map__set_max_entries(void *map, uint32 n)'),
    bpf_map__map_flags: f(bpf, 'uint32 bpf_map__map_flags(void *map)'),
    bpf_map__set_map_flags: f(bpf, 'int bpf_map__set_map_flags(void *map, uint32 flags)'),
    bpf_map__fd: f(bpf, 'int bpf_map__fd(void *map)'),
    bpf_map__reuse_fd: f(bpf, 'int bpf_map__reuse_fd(void *map, int fd)'),
    bpf_map__set_autocreate: f(bpf, 'int bpf_map__set_autocreate(void *map, bool autocreate)'),
    bpf_map__autocreate: f(bpf, 'bool bpf_map__autocreate(void *map)'),
    bpf_map__set_pin_path: f(bpf, 'int bpf_map__set_pin_path(void *map, const char *path)'),
    bpf_map__pin_path: f(bpf, 'const char *bpf_map__pin_path(void *map)'),
    bpf_map__is_pinned: f(bpf, 'bool bpf_map__is_pinned(void *map)'),
    bpf_map__pin: f(bpf, 'int bpf_map__pin(void *map, const char *path)'),
    bpf_map__unpin: f(bpf, 'int bpf_map__unpin(void *map, const char *path)'),
    bpf_map__initial_value: f(bpf, 'void *bpf_map__initial_value(void *map, _Out_ size_t *psize)'),
    bpf_map__set_initial_value: f(bpf, 'int bpf_map__set_initial_value(void *map, const void *data, size_t size)'),
    bpf_map__set_inner_map_fd: f(bpf, 'int bpf_map__set_inner_map_fd(void *map, int fd)'),
    bpf_map__inner_map: f(bpf, 'void *bpf_map__inner_map(void *map)'),
    bpf_map__is_internal: f(bpf, 'bool bpf_map__is_internal(void *map)'),
    bpf_map__btf_value_type_id: f(bpf, 'uint32 bpf_map__btf_value_type_id(void *map)'),

    // libbpf: low-level syscall wrappers on fds
    bpf_map_create: f(
      bpf,
      'int bpf_map_create(int type, const char *name, uint32 key_size, uint32 value_size, uint32 max_entries, void *opts)',
    ),
    bpf_map_lookup_elem: f(bpf, 'int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
    bpf_map_lookup_elem_flags: f(bpf, 'int bpf_map_lookup_elem_flags(int fd, const void *key, void *value, uint64 flags)'),
    bpf_map_update_elem: f(bpf, 'int bpf_map_update_elem(int fd, const void *key, const void *value, uint64 flags)'),
    bpf_map_delete_elem: f(bpf, 'int bpf_map_delete_elem(int fd, const void *key)'),
    bpf_map_lookup_and_delete_elem: f(bpf, 'int bpf_map_lookup_and_delete_elem(int fd, const void *key, void *value)'),
    bpf_map_get_next_key: f(bpf, 'int bpf_map_get_next_key(int fd, const void *key, void *next_key)'),
    bpf_map_lookup_batch: f(
      bpf,
      'int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, _Inout_ uint32 *count, bpf_map_batch_opts *opts)',
    ),
    bpf_map_update_batch: f(
      bpf,
      'int bpf_map_update_batch(int fd, const void *keys, const void *values, _Inout_ uint32 *count, bpf_map_batch_opts *opts)',
    ),
    bpf_map_delete_batch: f(
      bpf,
      'int bpf_map_delete_batch(int fd, const void *keys, _Inout_ uint32 *count, bpf_map_batch_opts *opts)',
    ),
    bpf_map_freeze: f(bpf, 'int bpf_map_freeze(int fd)'),
    bpf_obj_pin: f(bpf, 'int bpf_obj_pin(int fd, const char *path)'),
    bpf_obj_get: f(bpf, 'int bpf_obj_get(const char *path)'),
    bpf_prog_get_info: f(bpf, 'int bpf_obj_get_info_by_fd(int fd, _Inout_ bpf_prog_info *info, _Inout_ uint32 *len)'),
    bpf_map_get_info: f(bpf, 'int bpf_obj_get_info_by_fd(int fd, _Inout_ bpf_map_info *info, _Inout_ uint32 *len)'),
    bpf_prog_test_run_opts: f(bpf, 'int bpf_prog_test_run_opts(int fd, _Inout_ bpf_test_run_opts *opts)'),
    bpf_enable_stats: f(bpf, 'int bpf_enable_stats(int type)'),
    bpf_prog_get_next_id: f(bpf, 'int bpf_prog_get_next_id(uint32 start, _Out_ uint32 *next)'),
    bpf_map_get_next_id: f(bpf, 'int bpf_map_get_next_id(uint32 start, _Out_ uint32 *next)'),
    bpf_link_get_next_id: f(bpf, 'int bpf_link_get_next_id(uint32 start, _Out_ uint32 *next)'),
    bpf_prog_get_fd_by_id: f(bpf, 'int bpf_prog_get_fd_by_id(uint32 id)'),
    bpf_map_get_fd_by_id: f(bpf, 'int bpf_map_get_fd_by_id(uint32 id)'),
    bpf_prog_load: f(
      bpf,
      'int bpf_prog_load(int type, const char *name, const char *license, const void *insns, size_t cnt, bpf_prog_load_opts *opts)',
    ),
    libbpf_find_vmlinux_btf_id: f(bpf, 'int libbpf_find_vmlinux_btf_id(const char *name, int attach_type)'),
    bpf_prog_detach2: f(bpf, 'int bpf_prog_detach2(int prog_fd, int target_fd, int type)'),

    // libbpf: TC (netlink-based; tcx links need libbpf 1.3)
    bpf_tc_hook_create: f(bpf, 'int bpf_tc_hook_create(bpf_tc_hook *hook)'),
    bpf_tc_hook_destroy: f(bpf, 'int bpf_tc_hook_destroy(bpf_tc_hook *hook)'),
    bpf_tc_attach: f(bpf, 'int bpf_tc_attach(bpf_tc_hook *hook, _Inout_ bpf_tc_opts *opts)'),
    bpf_tc_detach: f(bpf, 'int bpf_tc_detach(bpf_tc_hook *hook, bpf_tc_opts *opts)'),
    bpf_tc_query: f(bpf, 'int bpf_tc_query(bpf_tc_hook *hook, _Inout_ bpf_tc_opts *opts)'),

    bpf_xdp_attach: f(bpf, 'int bpf_xdp_attach(int ifindex, int prog_fd, uint32 flags, void *opts)'),
    bpf_xdp_detach: f(bpf, 'int bpf_xdp_detach(int ifindex, uint32 flags, bpf_xdp_attach_opts *opts)'),

    // libbpf: BTF
    btf__load_vmlinux_btf: f(bpf, 'void *btf__load_vmlinux_btf()'),
    btf__free: f(bpf, 'void btf__free(void *btf)'),
    btf__find_by_name_kind: f(bpf, 'int btf__find_by_name_kind(void *btf, const char *name, uint32 kind)'),
    btf__type_by_id: f(bpf, 'void *btf__type_by_id(void *btf, uint32 id)'),
    btf__name_by_offset: f(bpf, 'const char *btf__name_by_offset(void *btf, uint32 off)'),
    btf__type_cnt: f(bpf, 'uint32 btf__type_cnt(void *btf)'),
    btf__resolve_size: f(bpf, 'int64 btf__resolve_size(void *btf, uint32 id)'),

    // libc
    mmap: f(c, 'void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64 off)'),
    munmap: f(c, 'int munmap(void *addr, size_t len)'),
    close: f(c, 'int close(int fd)'),
    dup_cloexec: f(c, 'int fcntl(int fd, int cmd, ...)'),
    syscall: f(c, 'long syscall(long nr, ...)'),
    ioctl: f(c, 'int ioctl(int fd, unsigned long req, ...)'),
    setsockopt: f(c, 'int setsockopt(int fd, int level, int name, const void *val, uint32 len)'),
    getsockopt: f(c, 'int getsockopt(int fd, int level, int name, void *val, _Inout_ uint32 *len)'),
    if_nametoindex: f(c, 'uint32 if_nametoindex(const char *name)'),
    getpagesize: f(c, 'int getpagesize(void)'),
    epoll_create1: f(c, 'int epoll_create1(int flags)'),
    epoll_ctl: f(c, 'int epoll_ctl(int epfd, int op, int fd, void *event)'),
    epoll_wait: f(c, 'int epoll_wait(int epfd, void *events, int maxevents, int timeout)'),
    malloc: f(c, 'void *malloc(size_t size)'),
    free: f(c, 'void free(void *p)'),
    memset: f(c, 'void *memset(void *p, int c, size_t n)'),
    sigfillset: f(c, 'int sigfillset(void *set)'),
    sigdelset: f(c, 'int sigdelset(void *set, int sig)'),
    pthread_sigmask: f(c, 'int pthread_sigmask(int how, const void *set, void *oldset)'),
  };
}

type Bindings = ReturnType<typeof bind>;
let bindings: Bindings | undefined;

/** The bound functions, loaded on first use so that unprivileged code paths never need libbpf. */
export function lib(): Bindings {
  bindings ??= bind();
  return bindings;
}

/**
 * libc alone, for the eBPF-less paths (the netlink proc connector): bound without libbpf, which a machine
 * that cannot run BPF may not have. Addresses and data are Buffers laid out by the caller; nothing here
 * keeps a pointer after the call.
 */
function bindLibc() {
  const c = loadLib('libc.so.6');
  const f = (sig: string) => c.func(sig);
  return {
    socket: f('int socket(int domain, int type, int protocol)'),
    bind: f('int bind(int fd, const void *addr, uint32 len)'),
    send: f('long send(int fd, const void *buf, size_t len, int flags)'),
    recv: f('long recv(int fd, void *buf, size_t len, int flags)'),
    setsockopt: f('int setsockopt(int fd, int level, int name, const void *val, uint32 len)'),
    getsockopt: f('int getsockopt(int fd, int level, int name, void *val, _Inout_ uint32 *len)'),
    poll: f('int poll(void *fds, uint64 nfds, int timeout)'),
    clock_gettime: f('int clock_gettime(int clk, void *ts)'),
    close: f('int close(int fd)'),
  };
}

let libcBindings: ReturnType<typeof bindLibc> | undefined;

/** The libc functions of the eBPF-less paths, loaded on first use (never loads libbpf). */
export function libc(): ReturnType<typeof bindLibc> {
  libcBindings ??= bindLibc();
  return libcBindings;
}

/**
 * pidfd_open and pidfd_send_signal (glibc 2.36+, Linux 5.3+), for signalling one process instance and never
 * another that reuses its pid (src/process/signal.ts). Bound apart from libc(): a libc without them must not
 * take the proc connector down. Throws NotSupportedError naming what is missing.
 */
function bindPidfd() {
  const c = loadLib('libc.so.6');
  try {
    return {
      pidfd_open: c.func('int pidfd_open(int pid, uint32 flags)'),
      pidfd_send_signal: c.func('int pidfd_send_signal(int pidfd, int sig, void *info, uint32 flags)'),
      close: c.func('int close(int fd)'),
    };
  } catch (err) {
    throw new NotSupportedError('pidfd', 'this libc has no pidfd_open/pidfd_send_signal (glibc 2.36 or later has them)', { cause: err });
  }
}

let pidfdBindings: ReturnType<typeof bindPidfd> | undefined;

/** The pidfd functions, bound on first use. */
export function pidfd(): ReturnType<typeof bindPidfd> {
  pidfdBindings ??= bindPidfd();
  return pidfdBindings;
}

/** errno left by the last native call (koffi saves it right after each call). */
export function errno(): number {
  return koffi.errno();
}

/** A C string: koffi already converts `const char *` returns; raw pointers (e.g. malloc'd logs) are decoded. */
export function cstr(p: Ptr | string | null): string {
  if (typeof p === 'string') return p;
  return p === null || p === 0n ? '' : koffi.decode(p, 'char', -1);
}

export function opts<T extends object>(type: TypeObject, fields: T): T & { sz: number } {
  return { sz: koffi.sizeof(type), ...fields };
}

export const OPTS = {
  open: ObjectOpenOpts,
  uprobe: UprobeOpts,
  kprobe: KprobeOpts,
  tracepoint: TracepointOpts,
  trace: TraceOpts,
  batch: MapBatchOpts,
  testRun: TestRunOpts,
  tcHook: TcHook,
  tcOpts: TcOpts,
  progLoad: ProgLoadOpts,
  xdpAttach: XdpAttachOpts,
} as const;

// ---- libbpf log capture --------------------------------------------------------------------------------------
// libbpf reports the reason behind most failures through its print callback, which takes a va_list that koffi
// cannot implement. A 40-line C shim (native/libbpf_log.c, built by `make build`) formats messages into a
// buffer we drain after each failing call and attach to the error. Without the shim, libbpf is silenced.

let shim: { drain: (buf: Buffer, cap: number) => number; setLevel: (l: number) => void } | undefined | null;

function shimPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.resolve(here, '../../build/native/libvigil_shim.so');
}

function loadShim(): void {
  if (shim !== undefined) return;
  shim = null;
  const p = process.env.VIGIL_SHIM ?? shimPath();
  if (fs.existsSync(p)) {
    try {
      const so = koffi.load(p);
      const install = so.func('void vigil_libbpf_log_install(int level)');
      const drain = so.func('size_t vigil_libbpf_log_drain(_Out_ uint8 *buf, size_t cap)');
      const setLevel = so.func('void vigil_libbpf_log_level(int level)');
      install(process.env.VIGIL_LIBBPF_DEBUG ? 2 : 1);
      shim = { drain: (buf, cap) => Number(drain(buf, cap)), setLevel: (l) => setLevel(l) };
      return;
    } catch {
      shim = null;
    }
  }
  lib().libbpf_set_print(null); // silence libbpf's stderr output rather than interleave it with ours
}

/** Initialises log capture; called by every entry point that talks to libbpf. */
export function initLibbpf(): Bindings {
  const l = lib();
  loadShim();
  return l;
}

const logBuf = Buffer.alloc(64 * 1024);
/** Returns (and clears) what libbpf logged since the last call: warnings by default, debug with VIGIL_LIBBPF_DEBUG. */
export function drainLibbpfLog(): string {
  if (!shim) return '';
  const n = shim.drain(logBuf, logBuf.length);
  return n > 0 ? logBuf.toString('utf8', 0, n) : '';
}

/** Whether libbpf's own messages are captured (the shim is built). */
export function libbpfLogCaptured(): boolean {
  loadShim();
  return !!shim;
}
