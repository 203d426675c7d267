// Names for the numbers syscall records carry: syscall numbers per ABI, errno values, and the flag and enum
// arguments of the syscalls the sensor reports. Pure data and formatting, no kernel access: decoders call
// these on the hot path, so every table is built once at import.

import { VIGIL_SYS_NR } from '../events/layout.generated.ts';

/** The ABIs whose numbering is known; others decode as "syscall_<nr>". */
export type SyscallAbi = 'x86_64' | 'arm64';

const HOST_ABI: SyscallAbi = process.arch === 'arm64' ? 'arm64' : 'x86_64';

/** This machine's ABI (a constant: the decoders call this as a default argument for every record). */
export function hostAbi(): SyscallAbi {
  return HOST_ABI;
}

/** Syscalls the sensors hook (and a few neighbours), by number. */
const SYSCALLS: Record<SyscallAbi, Record<number, string>> = {
  x86_64: {
    2: 'open', 42: 'connect', 43: 'accept', 49: 'bind', 50: 'listen', 76: 'truncate', 77: 'ftruncate', 82: 'rename', 83: 'mkdir', 84: 'rmdir', 85: 'creat',
    86: 'link', 87: 'unlink', 88: 'symlink', 90: 'chmod', 91: 'fchmod', 92: 'chown', 93: 'fchown', 94: 'lchown', 101: 'ptrace', 105: 'setuid',
    106: 'setgid', 113: 'setreuid', 114: 'setregid', 117: 'setresuid', 119: 'setresgid', 122: 'setfsuid', 123: 'setfsgid',
    126: 'capset', 165: 'mount', 166: 'umount2', 175: 'init_module', 257: 'openat', 258: 'mkdirat', 260: 'fchownat',
    263: 'unlinkat', 264: 'renameat', 265: 'linkat', 266: 'symlinkat', 268: 'fchmodat', 272: 'unshare', 288: 'accept4', 308: 'setns', 313: 'finit_module',
    316: 'renameat2', 319: 'memfd_create', 321: 'bpf', 437: 'openat2', 452: 'fchmodat2',
  },
  arm64: {
    34: 'mkdirat', 35: 'unlinkat', 36: 'symlinkat', 37: 'linkat', 38: 'renameat', 39: 'umount2', 40: 'mount', 45: 'truncate', 46: 'ftruncate', 52: 'fchmod', 53: 'fchmodat', 54: 'fchownat',
    55: 'fchown', 56: 'openat', 97: 'unshare', 105: 'init_module', 117: 'ptrace', 144: 'setgid', 146: 'setuid',
    143: 'setregid', 145: 'setreuid', 147: 'setresuid', 149: 'setresgid', 151: 'setfsuid', 152: 'setfsgid', 91: 'capset',
    200: 'bind', 201: 'listen', 202: 'accept', 203: 'connect', 242: 'accept4', 268: 'setns', 273: 'finit_module',
    276: 'renameat2', 279: 'memfd_create', 280: 'bpf', 437: 'openat2', 452: 'fchmodat2',
  },
};

/**
 * "openat" for 257 on x86_64; "syscall_<nr>" when unknown; "" for -1 (an event from a tracepoint); "sendmsg" for a
 * datagram a deny rule matched; "io_uring" for a request submitted through io_uring.
 */
export function syscallName(nr: number, abi: SyscallAbi = hostAbi()): string {
  if (nr === -1) return '';
  if (nr === VIGIL_SYS_NR.DATAGRAM) return 'sendmsg'; // a deny rule's datagram hook: sendto, sendmsg or sendmmsg
  if (nr === VIGIL_SYS_NR.IO_URING) return 'io_uring'; // a request submitted through io_uring: no syscall of its own
  return SYSCALLS[abi][nr] ?? `syscall_${nr}`;
}

/** The number of a syscall by name on an ABI, or undefined (e.g. "open" on arm64). */
export function syscallNumber(name: string, abi: SyscallAbi = hostAbi()): number | undefined {
  for (const [nr, n] of Object.entries(SYSCALLS[abi])) if (n === name) return Number(nr);
  return undefined;
}

// Linux errno values are the same on x86_64 and arm64 (asm-generic). The 512+ values are kernel-internal but
// do reach syscall exit tracepoints (a restarted syscall exits with ERESTARTSYS first).
const ERRNO = [
  '', 'EPERM', 'ENOENT', 'ESRCH', 'EINTR', 'EIO', 'ENXIO', 'E2BIG', 'ENOEXEC', 'EBADF', 'ECHILD', 'EAGAIN', 'ENOMEM', 'EACCES',
  'EFAULT', 'ENOTBLK', 'EBUSY', 'EEXIST', 'EXDEV', 'ENODEV', 'ENOTDIR', 'EISDIR', 'EINVAL', 'ENFILE', 'EMFILE', 'ENOTTY',
  'ETXTBSY', 'EFBIG', 'ENOSPC', 'ESPIPE', 'EROFS', 'EMLINK', 'EPIPE', 'EDOM', 'ERANGE', 'EDEADLK', 'ENAMETOOLONG', 'ENOLCK',
  'ENOSYS', 'ENOTEMPTY', 'ELOOP', '', 'ENOMSG', 'EIDRM', 'ECHRNG', 'EL2NSYNC', 'EL3HLT', 'EL3RST', 'ELNRNG', 'EUNATCH',
  'ENOCSI', 'EL2HLT', 'EBADE', 'EBADR', 'EXFULL', 'ENOANO', 'EBADRQC', 'EBADSLT', '', 'EBFONT', 'ENOSTR', 'ENODATA', 'ETIME',
  'ENOSR', 'ENONET', 'ENOPKG', 'EREMOTE', 'ENOLINK', 'EADV', 'ESRMNT', 'ECOMM', 'EPROTO', 'EMULTIHOP', 'EDOTDOT', 'EBADMSG',
  'EOVERFLOW', 'ENOTUNIQ', 'EBADFD', 'EREMCHG', 'ELIBACC', 'ELIBBAD', 'ELIBSCN', 'ELIBMAX', 'ELIBEXEC', 'EILSEQ', 'ERESTART',
  'ESTRPIPE', 'EUSERS', 'ENOTSOCK', 'EDESTADDRREQ', 'EMSGSIZE', 'EPROTOTYPE', 'ENOPROTOOPT', 'EPROTONOSUPPORT',
  'ESOCKTNOSUPPORT', 'EOPNOTSUPP', 'EPFNOSUPPORT', 'EAFNOSUPPORT', 'EADDRINUSE', 'EADDRNOTAVAIL', 'ENETDOWN', 'ENETUNREACH',
  'ENETRESET', 'ECONNABORTED', 'ECONNRESET', 'ENOBUFS', 'EISCONN', 'ENOTCONN', 'ESHUTDOWN', 'ETOOMANYREFS', 'ETIMEDOUT',
  'ECONNREFUSED', 'EHOSTDOWN', 'EHOSTUNREACH', 'EALREADY', 'EINPROGRESS', 'ESTALE', 'EUCLEAN', 'ENOTNAM', 'ENAVAIL', 'EISNAM',
  'EREMOTEIO', 'EDQUOT', 'ENOMEDIUM', 'EMEDIUMTYPE', 'ECANCELED', 'ENOKEY', 'EKEYEXPIRED', 'EKEYREVOKED', 'EKEYREJECTED',
  'EOWNERDEAD', 'ENOTRECOVERABLE', 'ERFKILL', 'EHWPOISON',
];
const KERNEL_ERRNO: Record<number, string> = {
  512: 'ERESTARTSYS', 513: 'ERESTARTNOINTR', 514: 'ERESTARTNOHAND', 515: 'ENOIOCTLCMD', 516: 'ERESTART_RESTARTBLOCK',
  517: 'EPROBE_DEFER', 518: 'EOPENSTALE', 519: 'ENOPARAM', 521: 'EBADHANDLE', 522: 'ENOTSYNC', 523: 'EBADCOOKIE',
  524: 'ENOTSUPP', 525: 'ETOOSMALL', 526: 'ESERVERFAULT', 527: 'EBADTYPE', 528: 'EJUKEBOX', 529: 'EIOCBQUEUED',
  530: 'ERECALLCONFLICT',
};

/** "ENOENT" for 2 (or -2); "errno_<n>" when unknown. */
export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  return ERRNO[n] || KERNEL_ERRNO[n] || `errno_${n}`;
}

/** The errno name of a syscall return value, or undefined when it is not an error (-4095..-1). */
export function retError(ret: number): string | undefined {
  return ret < 0 && ret >= -4095 ? errnoName(ret) : undefined;
}

/** "-2 ENOENT" for errors, "3" otherwise. */
export function formatRet(ret: number): string {
  const e = retError(ret);
  return e ? `${ret} ${e}` : String(ret);
}

/** Names the set bits of `v` from `table` (bit value -> name) joined by "|"; leftover bits as hex. */
export function bitNames(v: number, table: readonly (readonly [number, string])[]): string {
  const out: string[] = [];
  let left = v >>> 0;
  for (const [bit, name] of table) {
    if (bit !== 0 && (left & bit) === bit) {
      out.push(name);
      left = (left & ~bit) >>> 0;
    }
  }
  if (left) out.push(`0x${left.toString(16)}`);
  return out.join('|');
}

// open(2) flags. Four differ on arm64; O_SYNC and O_TMPFILE are two-bit combinations named as one.
const O_COMMON: [number, string][] = [
  [0o100, 'O_CREAT'], [0o200, 'O_EXCL'], [0o400, 'O_NOCTTY'], [0o1000, 'O_TRUNC'], [0o2000, 'O_APPEND'], [0o4000, 'O_NONBLOCK'],
];
const O_TAIL: [number, string][] = [
  [0o1000000, 'O_NOATIME'], [0o2000000, 'O_CLOEXEC'], [0o10000000, 'O_PATH'],
];
const O_ARCH: Record<SyscallAbi, { directory: number; table: [number, string][] }> = {
  x86_64: { directory: 0o200000, table: [[0o20000, 'O_ASYNC'], [0o40000, 'O_DIRECT'], [0o100000, 'O_LARGEFILE'], [0o200000, 'O_DIRECTORY'], [0o400000, 'O_NOFOLLOW']] },
  arm64: { directory: 0o40000, table: [[0o20000, 'O_ASYNC'], [0o40000, 'O_DIRECTORY'], [0o100000, 'O_NOFOLLOW'], [0o200000, 'O_DIRECT'], [0o400000, 'O_LARGEFILE']] },
};
const O_SYNC_BITS = 0o4000000 | 0o10000;
const O_TMPFILE_BIT = 0o20000000;

/** "O_WRONLY|O_CREAT|O_TRUNC" */
export function openFlagNames(flags: number, abi: SyscallAbi = hostAbi()): string {
  const acc = flags & 3;
  const parts = [acc === 0 ? 'O_RDONLY' : acc === 1 ? 'O_WRONLY' : acc === 2 ? 'O_RDWR' : 'O_ACCMODE'];
  let rest = (flags & ~3) >>> 0;
  const arch = O_ARCH[abi];
  if ((rest & O_TMPFILE_BIT) && (rest & arch.directory)) {
    parts.push('O_TMPFILE');
    rest &= ~(O_TMPFILE_BIT | arch.directory);
  }
  if ((rest & O_SYNC_BITS) === O_SYNC_BITS) {
    parts.push('O_SYNC');
    rest &= ~O_SYNC_BITS;
  } else if (rest & 0o10000) {
    parts.push('O_DSYNC');
    rest &= ~0o10000;
  }
  const named = bitNames(rest, [...O_COMMON, ...arch.table, ...O_TAIL, [0o4000000, '__O_SYNC'], [O_TMPFILE_BIT, '__O_TMPFILE']]);
  if (named) parts.push(named);
  return parts.join('|');
}

/** An open that can modify the file: write access, create or truncate. */
export function isWriteOpen(flags: number): boolean {
  return (flags & 3) !== 0 || (flags & (0o100 | 0o1000)) !== 0;
}

export const AT_FLAGS: [number, string][] = [
  [0x100, 'AT_SYMLINK_NOFOLLOW'], [0x200, 'AT_REMOVEDIR'], [0x400, 'AT_SYMLINK_FOLLOW'], [0x800, 'AT_NO_AUTOMOUNT'], [0x1000, 'AT_EMPTY_PATH'],
];
export const RENAME_FLAGS: [number, string][] = [[1, 'RENAME_NOREPLACE'], [2, 'RENAME_EXCHANGE'], [4, 'RENAME_WHITEOUT']];
export const RESOLVE_FLAGS: [number, string][] = [
  [1, 'RESOLVE_NO_XDEV'], [2, 'RESOLVE_NO_MAGICLINKS'], [4, 'RESOLVE_NO_SYMLINKS'], [8, 'RESOLVE_BENEATH'], [0x10, 'RESOLVE_IN_ROOT'], [0x20, 'RESOLVE_CACHED'],
];
export const SOCK_FLAGS: [number, string][] = [[0o4000, 'SOCK_NONBLOCK'], [0o2000000, 'SOCK_CLOEXEC']];
export const MOUNT_FLAGS: [number, string][] = [
  [1, 'MS_RDONLY'], [2, 'MS_NOSUID'], [4, 'MS_NODEV'], [8, 'MS_NOEXEC'], [16, 'MS_SYNCHRONOUS'], [32, 'MS_REMOUNT'], [64, 'MS_MANDLOCK'],
  [128, 'MS_DIRSYNC'], [256, 'MS_NOSYMFOLLOW'], [1024, 'MS_NOATIME'], [2048, 'MS_NODIRATIME'], [4096, 'MS_BIND'], [8192, 'MS_MOVE'],
  [16384, 'MS_REC'], [32768, 'MS_SILENT'], [1 << 16, 'MS_POSIXACL'], [1 << 17, 'MS_UNBINDABLE'], [1 << 18, 'MS_PRIVATE'], [1 << 19, 'MS_SLAVE'],
  [1 << 20, 'MS_SHARED'], [1 << 21, 'MS_RELATIME'], [1 << 22, 'MS_KERNMOUNT'], [1 << 23, 'MS_I_VERSION'], [1 << 24, 'MS_STRICTATIME'],
  [1 << 25, 'MS_LAZYTIME'],
];
export const UMOUNT_FLAGS: [number, string][] = [[1, 'MNT_FORCE'], [2, 'MNT_DETACH'], [4, 'MNT_EXPIRE'], [8, 'UMOUNT_NOFOLLOW']];
export const CLONE_FLAGS: [number, string][] = [
  [0x80, 'CLONE_NEWTIME'], [0x100, 'CLONE_VM'], [0x200, 'CLONE_FS'], [0x400, 'CLONE_FILES'], [0x800, 'CLONE_SIGHAND'], [0x10000, 'CLONE_THREAD'],
  [0x20000, 'CLONE_NEWNS'], [0x40000, 'CLONE_SYSVSEM'], [0x02000000, 'CLONE_NEWCGROUP'], [0x04000000, 'CLONE_NEWUTS'], [0x08000000, 'CLONE_NEWIPC'],
  [0x10000000, 'CLONE_NEWUSER'], [0x20000000, 'CLONE_NEWPID'], [0x40000000, 'CLONE_NEWNET'],
];
export const MFD_FLAGS: [number, string][] = [[1, 'MFD_CLOEXEC'], [2, 'MFD_ALLOW_SEALING'], [4, 'MFD_HUGETLB'], [8, 'MFD_NOEXEC_SEAL'], [0x10, 'MFD_EXEC']];

/** mount(2) flags, with the historical magic MS_MGC_VAL in the top half named rather than shown as bits. */
export function mountFlagNames(flags: number): string {
  let f = flags >>> 0;
  const parts: string[] = [];
  if (((f & 0xffff0000) >>> 0) === 0xc0ed0000) {
    parts.push('MS_MGC_VAL');
    f &= 0xffff;
  }
  const named = bitNames(f, MOUNT_FLAGS);
  if (named) parts.push(named);
  return parts.join('|');
}

/** setns(2) nstype: 0 means any; else CLONE_NEW* bits. */
export function nsTypeNames(nstype: number): string {
  return nstype === 0 ? 'any' : bitNames(nstype, CLONE_FLAGS);
}

/** "0644" */
export function modeOctal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

const FAMILIES: Record<number, string> = {
  0: 'AF_UNSPEC', 1: 'AF_UNIX', 2: 'AF_INET', 10: 'AF_INET6', 16: 'AF_NETLINK', 17: 'AF_PACKET', 38: 'AF_ALG', 40: 'AF_VSOCK', 44: 'AF_XDP',
};
export const familyName = (f: number): string => FAMILIES[f] ?? `AF_${f}`;

const SOCK_TYPES: Record<number, string> = { 1: 'SOCK_STREAM', 2: 'SOCK_DGRAM', 3: 'SOCK_RAW', 4: 'SOCK_RDM', 5: 'SOCK_SEQPACKET', 6: 'SOCK_DCCP', 10: 'SOCK_PACKET' };
export const sockTypeName = (t: number): string => (t === 0 ? '' : SOCK_TYPES[t] ?? `SOCK_${t}`);

const PROTOCOLS: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6', 132: 'sctp', 136: 'udplite', 255: 'raw', 262: 'mptcp' };
/** "tcp", "udp"; "" for 0 (the family's default, e.g. unix sockets). */
export const protocolName = (p: number): string => (p === 0 ? '' : PROTOCOLS[p] ?? `proto_${p}`);

const TCP_STATES = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING', 'NEW_SYN_RECV', 'BOUND_INACTIVE'];
export const tcpStateName = (s: number): string => TCP_STATES[s] || `TCP_${s}`;

const PTRACE: Record<number, string> = {
  0: 'TRACEME', 1: 'PEEKTEXT', 2: 'PEEKDATA', 3: 'PEEKUSER', 4: 'POKETEXT', 5: 'POKEDATA', 6: 'POKEUSER', 7: 'CONT', 8: 'KILL', 9: 'SINGLESTEP',
  12: 'GETREGS', 13: 'SETREGS', 14: 'GETFPREGS', 15: 'SETFPREGS', 16: 'ATTACH', 17: 'DETACH', 18: 'GETFPXREGS', 19: 'SETFPXREGS', 24: 'SYSCALL',
  0x4200: 'SETOPTIONS', 0x4201: 'GETEVENTMSG', 0x4202: 'GETSIGINFO', 0x4203: 'SETSIGINFO', 0x4204: 'GETREGSET', 0x4205: 'SETREGSET', 0x4206: 'SEIZE',
  0x4207: 'INTERRUPT', 0x4208: 'LISTEN', 0x4209: 'PEEKSIGINFO', 0x420a: 'GETSIGMASK', 0x420b: 'SETSIGMASK', 0x420c: 'SECCOMP_GET_FILTER',
  0x420d: 'SECCOMP_GET_METADATA', 0x420e: 'GET_SYSCALL_INFO', 0x420f: 'GET_RSEQ_CONFIGURATION', 0x4210: 'SET_SYSCALL_USER_DISPATCH_CONFIG',
  0x4211: 'GET_SYSCALL_USER_DISPATCH_CONFIG',
};
/** "PTRACE_ATTACH" */
export const ptraceRequestName = (r: number): string => `PTRACE_${PTRACE[r] ?? r}`;

const BPF_CMDS = [
  'MAP_CREATE', 'MAP_LOOKUP_ELEM', 'MAP_UPDATE_ELEM', 'MAP_DELETE_ELEM', 'MAP_GET_NEXT_KEY', 'PROG_LOAD', 'OBJ_PIN', 'OBJ_GET', 'PROG_ATTACH',
  'PROG_DETACH', 'PROG_TEST_RUN', 'PROG_GET_NEXT_ID', 'MAP_GET_NEXT_ID', 'PROG_GET_FD_BY_ID', 'MAP_GET_FD_BY_ID', 'OBJ_GET_INFO_BY_FD',
  'PROG_QUERY', 'RAW_TRACEPOINT_OPEN', 'BTF_LOAD', 'BTF_GET_FD_BY_ID', 'TASK_FD_QUERY', 'MAP_LOOKUP_AND_DELETE_ELEM', 'MAP_FREEZE',
  'BTF_GET_NEXT_ID', 'MAP_LOOKUP_BATCH', 'MAP_LOOKUP_AND_DELETE_BATCH', 'MAP_UPDATE_BATCH', 'MAP_DELETE_BATCH', 'LINK_CREATE', 'LINK_UPDATE',
  'LINK_GET_FD_BY_ID', 'LINK_GET_NEXT_ID', 'ENABLE_STATS', 'ITER_CREATE', 'LINK_DETACH', 'PROG_BIND_MAP', 'TOKEN_CREATE',
];
/** "BPF_MAP_CREATE" */
export const bpfCmdName = (c: number): string => `BPF_${BPF_CMDS[c] ?? c}`;
