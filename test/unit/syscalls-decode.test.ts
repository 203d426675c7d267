// Decoders of the syscall sensor's records, fed synthetic buffers laid out with the offsets generated from
// events.h: every field lands where the C struct puts it, names come out right, and hostile or truncated
// records come back as decode errors, never as exceptions.
import assert from 'node:assert/strict';
import os from 'node:os';
import { test } from 'node:test';
import { decodeFileEvent, decodeNetEvent, decodeSyscallEvent, decodeSysEvent, formatIPv6, formatUnixPath, isDecodeError } from '../../src/events/decode.ts';
import { EVENT_HEADER, FILE_EVENT, NET_EVENT, SIZEOF, SYS_EVENT, VIGIL_OPCODE, VIGIL_SYS_FLAGS, VIGIL_SYS_OP } from '../../src/events/layout.generated.ts';
import type { FileEvent, NetEvent, SysEvent } from '../../src/events/types.ts';
import { errnoName, formatRet, modeOctal, mountFlagNames, openFlagNames, syscallName } from '../../src/syscalls/names.ts';

type Field = { offset: number; size: number };

function put(b: Buffer, f: Field, v: number | bigint): void {
  if (f.size === 8) b.writeBigInt64LE(BigInt(v), f.offset);
  else if (f.size === 4) (Number(v) < 0 ? b.writeInt32LE(Number(v), f.offset) : b.writeUInt32LE(Number(v), f.offset));
  else if (f.size === 2) b.writeUInt16LE(Number(v), f.offset);
  else throw new Error(`size ${f.size}`);
}

function header(b: Buffer, opcode: number): void {
  put(b, EVENT_HEADER.opcode, opcode);
  put(b, EVENT_HEADER.size, b.length);
  put(b, EVENT_HEADER.ktime_ns, 123456789n);
  put(b, EVENT_HEADER.pid, 4242);
  put(b, EVENT_HEADER.tid, 4243);
  put(b, EVENT_HEADER.cgroup_id, 77n);
}

const z = (s: string | Buffer): Buffer => Buffer.concat([typeof s === 'string' ? Buffer.from(s) : s, Buffer.from([0])]);

/** A file_event with its strings; any length field can be overridden to lie. */
function fileRecord(o: {
  op: number; nr: number; ret: number; flags?: number; mode?: number; ev?: number; uid?: number; gid?: number; dfd?: number; dfd2?: number; resolve?: number;
  path?: string | Buffer; path2?: string; resolved?: string; resolved2?: string; lie?: Partial<Record<'path_len' | 'path2_len' | 'resolved_len' | 'resolved2_len', number>>;
}): Buffer {
  const strs = [o.path, o.path2, o.resolved, o.resolved2].map((s) => (s === undefined ? Buffer.alloc(0) : z(s)));
  const b = Buffer.alloc(SIZEOF.file_event + strs.reduce((n, s) => n + s.length, 0));
  header(b, VIGIL_OPCODE.FILE);
  put(b, FILE_EVENT.ret, o.ret);
  put(b, FILE_EVENT.op, o.op);
  put(b, FILE_EVENT.nr, o.nr);
  put(b, FILE_EVENT.ev_flags, o.ev ?? 0);
  put(b, FILE_EVENT.flags, o.flags ?? 0);
  put(b, FILE_EVENT.resolve, o.resolve ?? 0);
  put(b, FILE_EVENT.mode, o.mode ?? 0);
  put(b, FILE_EVENT.uid, o.uid ?? 0xffffffff);
  put(b, FILE_EVENT.gid, o.gid ?? 0xffffffff);
  put(b, FILE_EVENT.dfd, o.dfd ?? -100);
  put(b, FILE_EVENT.dfd2, o.dfd2 ?? 0);
  const lens = ['path_len', 'path2_len', 'resolved_len', 'resolved2_len'] as const;
  let p = SIZEOF.file_event;
  strs.forEach((s, i) => {
    put(b, FILE_EVENT[lens[i]!], o.lie?.[lens[i]!] ?? s.length);
    s.copy(b, p);
    p += s.length;
  });
  return b;
}

function netRecord(o: { op: number; nr: number; ret: number; family: number; type?: number; protocol?: number; fd?: number; laddr?: number[]; raddr?: number[]; lport?: number; rport?: number; unix?: Buffer; unixLen?: number; flags?: number; backlog?: number; old?: number; now?: number; ev?: number }): Buffer {
  const b = Buffer.alloc(SIZEOF.net_event);
  header(b, VIGIL_OPCODE.NET);
  put(b, NET_EVENT.ret, o.ret);
  put(b, NET_EVENT.op, o.op);
  put(b, NET_EVENT.nr, o.nr);
  put(b, NET_EVENT.ev_flags, o.ev ?? 0);
  put(b, NET_EVENT.fd, o.fd ?? 3);
  put(b, NET_EVENT.family, o.family);
  put(b, NET_EVENT.type, o.type ?? 1);
  put(b, NET_EVENT.protocol, o.protocol ?? 6);
  put(b, NET_EVENT.lport, o.lport ?? 0);
  put(b, NET_EVENT.rport, o.rport ?? 0);
  put(b, NET_EVENT.flags, o.flags ?? 0);
  put(b, NET_EVENT.backlog, o.backlog ?? 0);
  put(b, NET_EVENT.old_state, o.old ?? 0);
  put(b, NET_EVENT.new_state, o.now ?? 0);
  Buffer.from(o.laddr ?? []).copy(b, NET_EVENT.laddr.offset);
  Buffer.from(o.raddr ?? []).copy(b, NET_EVENT.raddr.offset);
  if (o.unix) o.unix.copy(b, NET_EVENT.unix_path.offset);
  put(b, NET_EVENT.unix_path_len, o.unixLen ?? o.unix?.length ?? 0);
  return b;
}

function sysRecord(o: { op: number; nr: number; ret: number; args?: (number | bigint)[]; strs?: (string | undefined)[]; ev?: number; lie?: number }): Buffer {
  const strs = (o.strs ?? []).concat([undefined, undefined, undefined]).slice(0, 3).map((s) => (s === undefined ? Buffer.alloc(0) : z(s)));
  const b = Buffer.alloc(SIZEOF.sys_event + strs.reduce((n, s) => n + s.length, 0));
  header(b, VIGIL_OPCODE.SYS);
  put(b, SYS_EVENT.ret, o.ret);
  put(b, SYS_EVENT.op, o.op);
  put(b, SYS_EVENT.nr, o.nr);
  put(b, SYS_EVENT.ev_flags, o.ev ?? 0);
  (o.args ?? []).forEach((a, i) => b.writeBigUInt64LE(BigInt(a), SYS_EVENT.args.offset + 8 * i));
  let p = SIZEOF.sys_event;
  const lens = [SYS_EVENT.str1_len, SYS_EVENT.str2_len, SYS_EVENT.str3_len];
  strs.forEach((s, i) => {
    put(b, lens[i]!, i === 0 && o.lie !== undefined ? o.lie : s.length);
    s.copy(b, p);
    p += s.length;
  });
  return b;
}

const dv = (b: Buffer, pad = 0): [DataView, number, number] => {
  // Decode at a non-zero offset inside a larger view, as the ring reader does.
  const big = Buffer.alloc(b.length + pad + 16);
  b.copy(big, pad);
  return [new DataView(big.buffer, big.byteOffset, big.length), pad, b.length];
};

function ok<T>(r: unknown): T {
  assert.ok(!isDecodeError(r as never), `decode error: ${JSON.stringify(r)}`);
  return r as T;
}

const X86 = os.arch() === 'x64';

test('file_event: an O_CREAT|O_WRONLY open with its mode, fd and resolved path', () => {
  const b = fileRecord({ op: VIGIL_SYS_OP.OPEN, nr: X86 ? 257 : 56, ret: 5, flags: 0o101, mode: 0o640, ev: VIGIL_SYS_FLAGS.WRITE | VIGIL_SYS_FLAGS.SENSITIVE | VIGIL_SYS_FLAGS.RESOLVED_FD, path: 'x/shadow', resolved: '/etc/x/shadow' });
  const e = ok<FileEvent>(decodeSyscallEvent(...dv(b, 24)));
  assert.equal(e.type, 'open');
  assert.equal(e.group, 'file');
  assert.equal(e.syscall, 'openat');
  assert.equal(e.pid, 4242);
  assert.equal(e.tid, 4243);
  assert.equal(e.cgroupId, 77);
  assert.equal(e.ktimeNs, 123456789);
  assert.equal(e.ret, 5);
  assert.equal(e.errno, undefined);
  assert.equal(e.flagNames, 'O_WRONLY|O_CREAT');
  assert.equal(e.modeOctal, '0640');
  assert.equal(e.path, 'x/shadow');
  assert.equal(e.resolvedPath, '/etc/x/shadow');
  assert.equal(e.resolvedFrom, 'fd');
  assert.equal(e.write, true);
  assert.equal(e.sensitive, true);
  assert.equal(e.dfd, -100);
  assert.equal(e.path2, undefined);
  assert.equal(e.uid, undefined);
});

test('file_event: errors, renames, chown, unlinkat flags, openat2 resolve flags, non-UTF-8 names', () => {
  const enoent = ok<FileEvent>(decodeFileEvent(...dv(fileRecord({ op: VIGIL_SYS_OP.OPEN, nr: 257, ret: -2, path: '/nope' }))));
  assert.deepEqual([enoent.ret, enoent.errno, formatRet(enoent.ret)], [-2, 'ENOENT', '-2 ENOENT']);
  assert.equal(enoent.mode, undefined, 'no mode without O_CREAT');
  const ren = ok<FileEvent>(decodeFileEvent(...dv(fileRecord({ op: VIGIL_SYS_OP.RENAME, nr: 316, ret: 0, flags: 1, dfd: 4, dfd2: -100, path: 'a', path2: '/b', resolved: '/d/a', ev: VIGIL_SYS_FLAGS.RESOLVED_DIRFD }))));
  assert.deepEqual([ren.type, ren.path, ren.path2, ren.resolvedPath, ren.resolvedFrom, ren.dfd, ren.dfd2, ren.flagNames], ['rename', 'a', '/b', '/d/a', 'dirfd', 4, -100, 'RENAME_NOREPLACE']);
  const chown = ok<FileEvent>(decodeFileEvent(...dv(fileRecord({ op: VIGIL_SYS_OP.CHOWN, nr: 260, ret: -1, uid: 0, gid: 0xffffffff, flags: 0x100, path: '/etc/passwd' }))));
  assert.deepEqual([chown.uid, chown.gid, chown.flagNames, chown.errno], [0, undefined, 'AT_SYMLINK_NOFOLLOW', 'EPERM']);
  const rmdir = ok<FileEvent>(decodeFileEvent(...dv(fileRecord({ op: VIGIL_SYS_OP.RMDIR, nr: 263, ret: -39, flags: 0x200, path: '/d' }))));
  assert.deepEqual([rmdir.type, rmdir.flagNames, rmdir.errno], ['rmdir', 'AT_REMOVEDIR', 'ENOTEMPTY']);
  const o2 = ok<FileEvent>(decodeFileEvent(...dv(fileRecord({ op: VIGIL_SYS_OP.OPEN, nr: 437, ret: 3, flags: 0o2000000 | 0o20200000 | 2, mode: 0o600, resolve: 0x0c, path: '/tmp' }))));
  assert.equal(o2.syscall, 'openat2');
  assert.equal(o2.resolve, 'RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH');
  if (X86) assert.equal(o2.flagNames, 'O_RDWR|O_TMPFILE|O_CLOEXEC');
  assert.equal(o2.modeOctal, '0600', 'O_TMPFILE takes a mode');
  const weird = ok<FileEvent>(decodeFileEvent(...dv(fileRecord({ op: VIGIL_SYS_OP.UNLINK, nr: 87, ret: 0, path: Buffer.from([0x2f, 0x61, 0xff, 0x0a, 0x62]) }))));
  assert.equal(weird.path, '/a\\xff\nb');
  const trunc = ok<FileEvent>(decodeFileEvent(...dv(fileRecord({ op: VIGIL_SYS_OP.OPEN, nr: 257, ret: 3, ev: VIGIL_SYS_FLAGS.PATH_TRUNCATED | VIGIL_SYS_FLAGS.PATH_AT_EXIT, path: '/x' }))));
  assert.deepEqual([trunc.pathTruncated, trunc.pathReadAtExit, trunc.pathUnreadable], [true, true, false]);
  const restart = ok<FileEvent>(decodeFileEvent(...dv(fileRecord({ op: VIGIL_SYS_OP.OPEN, nr: 257, ret: -512, path: '/fifo' }))));
  assert.equal(restart.errno, 'ERESTARTSYS', 'kernel-internal restart codes reach exit tracepoints');
});

test('net_event: IPv4, IPv6, unix path and abstract addresses; ports; accept flags; TCP states', () => {
  const c4 = ok<NetEvent>(decodeSyscallEvent(...dv(netRecord({ op: VIGIL_SYS_OP.CONNECT, nr: 42, ret: -115, family: 2, laddr: [10, 0, 0, 2], lport: 40000, raddr: [10, 0, 0, 1], rport: 443 }), 8)));
  assert.deepEqual([c4.type, c4.family, c4.sockType, c4.protocol, c4.localAddress, c4.localPort, c4.remoteAddress, c4.remotePort, c4.errno], ['connect', 'AF_INET', 'SOCK_STREAM', 'tcp', '10.0.0.2', 40000, '10.0.0.1', 443, 'EINPROGRESS']);
  const v6 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  const a6 = ok<NetEvent>(decodeNetEvent(...dv(netRecord({ op: VIGIL_SYS_OP.ACCEPT, nr: 288, ret: 7, family: 10, laddr: v6, lport: 8080, raddr: v6, rport: 5555, flags: 0o2004000 }))));
  assert.deepEqual([a6.localAddress, a6.remoteAddress, a6.remotePort, a6.flagNames, a6.ret], ['::1', '::1', 5555, 'SOCK_NONBLOCK|SOCK_CLOEXEC', 7]);
  const unbound = ok<NetEvent>(decodeNetEvent(...dv(netRecord({ op: VIGIL_SYS_OP.LISTEN, nr: 50, ret: 0, family: 2, backlog: 128, lport: 22 }))));
  assert.deepEqual([unbound.localAddress, unbound.localPort, unbound.remoteAddress, unbound.backlog], ['0.0.0.0', 22, undefined, 128]);
  const ux = ok<NetEvent>(decodeNetEvent(...dv(netRecord({ op: VIGIL_SYS_OP.CONNECT, nr: 42, ret: 0, family: 1, type: 1, protocol: 0, unix: z('/run/x.sock') }))));
  assert.deepEqual([ux.remoteAddress, ux.localAddress, ux.protocol, ux.family], ['/run/x.sock', undefined, '', 'AF_UNIX']);
  const abs = ok<NetEvent>(decodeNetEvent(...dv(netRecord({ op: VIGIL_SYS_OP.BIND, nr: 49, ret: 0, family: 1, protocol: 0, unix: Buffer.from('\0name') }))));
  assert.equal(abs.localAddress, '@name');
  const st = ok<NetEvent>(decodeNetEvent(...dv(netRecord({ op: VIGIL_SYS_OP.TCP_STATE, nr: -1, ret: 0, family: 2, fd: -1, old: 2, now: 1, laddr: [127, 0, 0, 1], raddr: [127, 0, 0, 1], lport: 1, rport: 2 }))));
  assert.deepEqual([st.type, st.syscall, st.errno, st.oldState, st.newState], ['tcp_state', '', undefined, 'SYN_SENT', 'ESTABLISHED']);
  const gone = ok<NetEvent>(decodeNetEvent(...dv(netRecord({ op: VIGIL_SYS_OP.CONNECT, nr: 42, ret: -9, family: 0, type: 0, protocol: 0, ev: VIGIL_SYS_FLAGS.NO_SOCKET | VIGIL_SYS_FLAGS.ADDR_UNREADABLE }))));
  assert.deepEqual([gone.noSocket, gone.addrUnreadable, gone.sockType, gone.errno], [true, true, '', 'EBADF']);
});

test('address formatting follows RFC 5952 and shows abstract unix names with @', () => {
  const v6 = (groups: number[]) => {
    const b = Buffer.alloc(16);
    groups.forEach((g, i) => b.writeUInt16BE(g, 2 * i));
    return formatIPv6(b, 0);
  };
  assert.equal(v6([0, 0, 0, 0, 0, 0, 0, 0]), '::');
  assert.equal(v6([0, 0, 0, 0, 0, 0, 0, 1]), '::1');
  assert.equal(v6([0xfe80, 0, 0, 0, 0, 0, 0, 1]), 'fe80::1');
  assert.equal(v6([0x2001, 0xdb8, 0, 0, 0, 0xff00, 0x42, 0x8329]), '2001:db8::ff00:42:8329');
  assert.equal(v6([1, 0, 0, 1, 0, 0, 0, 1]), '1:0:0:1::1', 'the longest zero run is compressed');
  assert.equal(v6([1, 0, 0, 2, 0, 0, 3, 4]), '1::2:0:0:3:4', 'the first of equal runs');
  assert.equal(v6([1, 0, 2, 3, 4, 5, 6, 7]), '1:0:2:3:4:5:6:7', 'a single zero group stays');
  assert.equal(v6([0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001]), '::ffff:10.0.0.1');
  assert.equal(formatUnixPath(Buffer.from('/run/x.sock\0junk'), 0, 16), '/run/x.sock');
  assert.equal(formatUnixPath(Buffer.from('\0abs'), 0, 4), '@abs');
  assert.equal(formatUnixPath(Buffer.from('\0'), 0, 1), undefined, 'autobind/unnamed');
  assert.equal(formatUnixPath(Buffer.alloc(4), 0, 0), undefined);
});

test('sys_event: ptrace, mount, umount, module load, bpf, memfd_create, setns, unshare', () => {
  const pt = ok<SysEvent>(decodeSyscallEvent(...dv(sysRecord({ op: VIGIL_SYS_OP.PTRACE, nr: 101, ret: 0, args: [0x4206, 1234, 0, 0] }))));
  assert.deepEqual([pt.type, pt.group, pt.request, pt.targetPid], ['ptrace', 'other', 'PTRACE_SEIZE', 1234]);
  const mo = ok<SysEvent>(decodeSysEvent(...dv(sysRecord({ op: VIGIL_SYS_OP.MOUNT, nr: 165, ret: -16, args: [(0xc0ed0000 | 0x1000 | 0x4000) >>> 0], strs: ['/src', '/mnt', 'none'] }))));
  assert.deepEqual([mo.source, mo.target, mo.fstype, mo.flagNames, mo.errno], ['/src', '/mnt', 'none', 'MS_MGC_VAL|MS_BIND|MS_REC', 'EBUSY']);
  const um = ok<SysEvent>(decodeSysEvent(...dv(sysRecord({ op: VIGIL_SYS_OP.UMOUNT, nr: 166, ret: 0, args: [2], strs: ['/mnt'] }))));
  assert.deepEqual([um.syscall, um.target, um.flagNames], X86 ? ['umount2', '/mnt', 'MNT_DETACH'] : [um.syscall, '/mnt', 'MNT_DETACH']);
  const fm = ok<SysEvent>(decodeSysEvent(...dv(sysRecord({ op: VIGIL_SYS_OP.MODULE_LOAD, nr: 313, ret: 0, args: [3, 0], strs: ['debug=1', '/lib/modules/x.ko'] }))));
  assert.deepEqual([fm.moduleParams, fm.modulePath, fm.moduleName], ['debug=1', '/lib/modules/x.ko', undefined]);
  const tp = ok<SysEvent>(decodeSysEvent(...dv(sysRecord({ op: VIGIL_SYS_OP.MODULE_LOAD, nr: -1, ret: 0, ev: VIGIL_SYS_FLAGS.TRACEPOINT, strs: ['nf_tables'] }))));
  assert.deepEqual([tp.moduleName, tp.syscall, tp.errno], ['nf_tables', '', undefined]);
  const bp = ok<SysEvent>(decodeSysEvent(...dv(sysRecord({ op: VIGIL_SYS_OP.BPF, nr: 321, ret: 9, args: [5, 2, 144], strs: [undefined, undefined, 'my_kprobe'] }))));
  assert.deepEqual([bp.bpfCmd, bp.bpfType, bp.bpfName], ['BPF_PROG_LOAD', 'kprobe', 'my_kprobe']);
  const look = ok<SysEvent>(decodeSysEvent(...dv(sysRecord({ op: VIGIL_SYS_OP.BPF, nr: 321, ret: 0, args: [1] }))));
  assert.deepEqual([look.bpfCmd, look.bpfType, look.bpfName], ['BPF_MAP_LOOKUP_ELEM', undefined, undefined]);
  const mf = ok<SysEvent>(decodeSysEvent(...dv(sysRecord({ op: VIGIL_SYS_OP.MEMFD_CREATE, nr: 319, ret: 4, args: [3], strs: ['payload'] }))));
  assert.deepEqual([mf.name, mf.flagNames], ['payload', 'MFD_CLOEXEC|MFD_ALLOW_SEALING']);
  const sn = ok<SysEvent>(decodeSysEvent(...dv(sysRecord({ op: VIGIL_SYS_OP.SETNS, nr: 308, ret: 0, args: [5, 0x40000000, 4026531840] }))));
  assert.deepEqual([sn.fd, sn.nsType, sn.nsInode], [5, 'CLONE_NEWNET', 4026531840]);
  const un = ok<SysEvent>(decodeSysEvent(...dv(sysRecord({ op: VIGIL_SYS_OP.UNSHARE, nr: 272, ret: -1, args: [0x10000000 | 0x20000] }))));
  assert.deepEqual([un.flagNames, un.errno], ['CLONE_NEWNS|CLONE_NEWUSER', 'EPERM']);
  const big = ok<SysEvent>(decodeSysEvent(...dv(sysRecord({ op: VIGIL_SYS_OP.PTRACE, nr: 101, ret: 0, args: [2, 1, 0x7ffd12345678n, 0] }))));
  assert.equal(big.args[2], 0x7ffd12345678);
});

test('hostile records are decode errors, never exceptions', () => {
  const good = [
    fileRecord({ op: VIGIL_SYS_OP.OPEN, nr: 257, ret: 3, path: '/a', resolved: '/a' }),
    netRecord({ op: VIGIL_SYS_OP.CONNECT, nr: 42, ret: 0, family: 2 }),
    sysRecord({ op: VIGIL_SYS_OP.MOUNT, nr: 165, ret: 0, strs: ['a', 'b', 'c'] }),
  ];
  // Every truncation of every record.
  for (const b of good) {
    const op = b.readUInt16LE(0);
    for (let n = 0; n < b.length; n++) {
      const r = decodeSyscallEvent(...dv(b.subarray(0, n)));
      assert.ok(isDecodeError(r), `record of opcode ${op} cut at ${n} decoded`);
      assert.equal(r.decodeError, n < SIZEOF.event_header ? 'short' : n < (op === VIGIL_OPCODE.NET ? SIZEOF.net_event : SIZEOF.file_event) ? 'short' : 'bad-size');
    }
  }
  // Lengths that point past the record, including ones that would wrap a 32-bit sum.
  const lie = (o: Partial<Record<'path_len' | 'path2_len' | 'resolved_len' | 'resolved2_len', number>>) => decodeFileEvent(...dv(fileRecord({ op: 1, nr: 257, ret: 0, path: '/a', lie: o })));
  for (const l of [{ path_len: 100 }, { resolved_len: 1 }, { path2_len: 0xffffffff }, { path_len: 0x80000000, resolved2_len: 0x80000000 }]) {
    const r = lie(l);
    assert.ok(isDecodeError(r) && r.decodeError === 'bad-size', JSON.stringify(l));
  }
  const sysLie = decodeSysEvent(...dv(sysRecord({ op: VIGIL_SYS_OP.MEMFD_CREATE, nr: 319, ret: 0, strs: ['x'], lie: 1000 })));
  assert.ok(isDecodeError(sysLie) && sysLie.decodeError === 'bad-size');
  // Unknown ops for the record's group, and unknown opcodes.
  assert.equal((decodeFileEvent(...dv(fileRecord({ op: VIGIL_SYS_OP.CONNECT, nr: 1, ret: 0 }))) as { decodeError: string }).decodeError, 'bad-size');
  assert.equal((decodeNetEvent(...dv(netRecord({ op: 99, nr: 1, ret: 0, family: 2 }))) as { decodeError: string }).decodeError, 'bad-size');
  assert.equal((decodeNetEvent(...dv(netRecord({ op: VIGIL_SYS_OP.BIND, nr: 1, ret: 0, family: 1, unixLen: 109 }))) as { decodeError: string }).decodeError, 'bad-size');
  assert.equal((decodeSysEvent(...dv(sysRecord({ op: VIGIL_SYS_OP.OPEN, nr: 1, ret: 0 }))) as { decodeError: string }).decodeError, 'bad-size');
  const other = Buffer.from(good[0]!);
  other.writeUInt16LE(VIGIL_OPCODE.EXEC, 0);
  assert.deepEqual(decodeSyscallEvent(...dv(other)), { decodeError: 'unknown-opcode', opcode: VIGIL_OPCODE.EXEC });
  // Random bytes under each syscall opcode: whatever comes out, nothing throws.
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >>> 16) & 0xff;
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.alloc(rnd() * 2 + (i % 7) * 40);
    for (let j = 0; j < b.length; j++) b[j] = rnd();
    if (b.length >= 2) b.writeUInt16LE([VIGIL_OPCODE.FILE, VIGIL_OPCODE.NET, VIGIL_OPCODE.SYS][i % 3]!, 0);
    if (b.length > FILE_EVENT.op.offset + 4 && i % 2) b.writeUInt32LE([1, 16, 32][i % 3]!, FILE_EVENT.op.offset);
    const r = decodeSyscallEvent(...dv(b));
    assert.ok(isDecodeError(r) || typeof r.type === 'string');
  }
});

test('names: syscall numbers, errno values, open flags, modes and mount flags', () => {
  assert.equal(syscallName(257, 'x86_64'), 'openat');
  assert.equal(syscallName(56, 'arm64'), 'openat');
  assert.equal(syscallName(166, 'x86_64'), 'umount2');
  assert.equal(syscallName(9999, 'x86_64'), 'syscall_9999');
  assert.equal(syscallName(-1), '');
  // Our table agrees with the platform's errno constants wherever both have a value.
  for (const [name, n] of Object.entries(os.constants.errno)) {
    const ours = errnoName(n);
    if (['EWOULDBLOCK', 'EDEADLOCK', 'ENOTSUP'].includes(name)) continue; // aliases
    assert.equal(ours, name, `errno ${n}`);
  }
  assert.equal(errnoName(-111), 'ECONNREFUSED');
  assert.equal(errnoName(600), 'errno_600');
  assert.equal(formatRet(3), '3');
  assert.equal(formatRet(-4096), '-4096', 'not in the errno range');
  assert.equal(openFlagNames(0), 'O_RDONLY');
  assert.equal(openFlagNames(0o1101, 'x86_64'), 'O_WRONLY|O_CREAT|O_TRUNC');
  assert.equal(openFlagNames(0o4010002, 'x86_64'), 'O_RDWR|O_SYNC');
  assert.equal(openFlagNames(0o10000, 'x86_64'), 'O_RDONLY|O_DSYNC');
  assert.equal(openFlagNames(0o200000 | 0o400000, 'x86_64'), 'O_RDONLY|O_DIRECTORY|O_NOFOLLOW');
  assert.equal(openFlagNames(0o40000 | 0o100000, 'arm64'), 'O_RDONLY|O_DIRECTORY|O_NOFOLLOW');
  assert.equal(openFlagNames(0o20040002, 'arm64'), 'O_RDWR|O_TMPFILE');
  assert.equal(openFlagNames(0x80000000 | 1, 'x86_64'), 'O_WRONLY|0x80000000');
  assert.equal(modeOctal(0o104755), '4755');
  assert.equal(mountFlagNames(0), '');
  assert.equal(mountFlagNames(1 << 18 | 1 << 14), 'MS_REC|MS_PRIVATE');
});
