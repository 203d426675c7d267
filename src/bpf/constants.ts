// BPF UAPI numbers (from linux/bpf.h and linux/perf_event.h). Stable kernel ABI: these never change value.

export const ProgType = {
  UNSPEC: 0,
  SOCKET_FILTER: 1,
  KPROBE: 2,
  SCHED_CLS: 3,
  SCHED_ACT: 4,
  TRACEPOINT: 5,
  XDP: 6,
  PERF_EVENT: 7,
  CGROUP_SKB: 8,
  CGROUP_SOCK: 9,
  SOCK_OPS: 13,
  CGROUP_DEVICE: 15,
  RAW_TRACEPOINT: 17,
  CGROUP_SOCK_ADDR: 18,
  CGROUP_SYSCTL: 23,
  RAW_TRACEPOINT_WRITABLE: 24,
  CGROUP_SOCKOPT: 25,
  TRACING: 26,
  STRUCT_OPS: 27,
  EXT: 28,
  LSM: 29,
  SK_LOOKUP: 30,
  SYSCALL: 31,
} as const;

export const MapType = {
  UNSPEC: 0,
  HASH: 1,
  ARRAY: 2,
  PROG_ARRAY: 3,
  PERF_EVENT_ARRAY: 4,
  PERCPU_HASH: 5,
  PERCPU_ARRAY: 6,
  STACK_TRACE: 7,
  CGROUP_ARRAY: 8,
  LRU_HASH: 9,
  LRU_PERCPU_HASH: 10,
  LPM_TRIE: 11,
  ARRAY_OF_MAPS: 12,
  HASH_OF_MAPS: 13,
  QUEUE: 22,
  STACK: 23,
  RINGBUF: 27,
  INODE_STORAGE: 28,
  TASK_STORAGE: 29,
  BLOOM_FILTER: 30,
  USER_RINGBUF: 31,
} as const;

export const AttachType = {
  CGROUP_INET_INGRESS: 0,
  CGROUP_INET_EGRESS: 1,
  CGROUP_INET_SOCK_CREATE: 2,
  CGROUP_INET4_CONNECT: 10,
  TRACE_RAW_TP: 23,
  TRACE_FENTRY: 24,
  TRACE_FEXIT: 25,
  LSM_MAC: 27,
  TRACE_ITER: 28,
  PERF_EVENT: 41,
  CGROUP_UNIX_CONNECT: 49,
  CGROUP_UNIX_SENDMSG: 50,
} as const;

/** Flags for map updates. */
export const UpdateFlags = { ANY: 0, NOEXIST: 1, EXIST: 2, LOCK: 4 } as const;

export const MapFlags = {
  NO_PREALLOC: 1,
  RDONLY_PROG: 128,
  WRONLY_PROG: 256,
  MMAPABLE: 1024,
  INNER_MAP: 4096,
} as const;

export const BPF_STATS_RUN_TIME = 0;
export const BPF_F_TEST_RUN_ON_CPU = 1;

export const Perf = {
  TYPE_HARDWARE: 0,
  TYPE_SOFTWARE: 1,
  COUNT_SW_CPU_CLOCK: 0,
  COUNT_SW_BPF_OUTPUT: 10,
  SAMPLE_RAW: 1024,
  RECORD_LOST: 2,
  RECORD_SAMPLE: 9,
  IOC_ENABLE: 0x2400,
  IOC_DISABLE: 0x2401,
  /** attr.flags bits */
  FLAG_DISABLED: 1n << 0n,
  FLAG_FREQ: 1n << 10n,
  FLAG_WATERMARK: 1n << 14n,
} as const;

/** Map types whose values are stored once per possible CPU. */
export const PERCPU_MAP_TYPES: ReadonlySet<number> = new Set([
  MapType.PERCPU_HASH,
  MapType.PERCPU_ARRAY,
  MapType.LRU_PERCPU_HASH,
]);

/** Map types with no keys that user space can iterate (ring/perf buffers, queues, ...). */
export const NON_ITERABLE_MAP_TYPES: ReadonlySet<number> = new Set([
  MapType.RINGBUF,
  MapType.USER_RINGBUF,
  MapType.PERF_EVENT_ARRAY,
  MapType.QUEUE,
  MapType.STACK,
  MapType.BLOOM_FILTER,
]);

export const SYS = {
  bpf: 321,
  perf_event_open: 298,
  getpid: 39,
  gettid: 186,
} as const;

const invert = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [v, k.toLowerCase()]));
const PROG_NAMES: Record<number, string> = invert(ProgType);
const MAP_NAMES: Record<number, string> = invert(MapType);
export const progTypeName = (t: number): string => PROG_NAMES[t] ?? `prog_type_${t}`;
export const mapTypeName = (t: number): string => MAP_NAMES[t] ?? `map_type_${t}`;
