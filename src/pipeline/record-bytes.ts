// File and network events written to their JSON line straight from the record's bytes (see held.ts): the
// members their decoder's object gets through its group's serialiser (outputs.ts), byte for byte, without the
// object or a string per path. Paths of printable ASCII (nearly all) are copied as they are; anything else
// goes through the decoder's own string conversion and the line's JSON string writer, so the exotic cases
// cannot differ; names (syscalls, errnos, flags, families) come from the decoder's own naming functions.
// test/unit/pipeline-held.test.ts compares both ways on generated records.
import { Buffer } from 'node:buffer';
import { kernelDenyAt, kernelKillAt } from '../events/kill.ts';
import { cString } from '../events/strings.ts';
import {
  decodeFileEvent,
  decodeNetEvent,
  fileFlagNames,
  fileHasMode,
  fileHasPath2,
  FILE_OPS,
  fileRecordOp,
  formatIPv6,
  formatUnixPath,
  isZero,
  netRecordOp,
  resolveFlagNames,
  s64,
  sockFlagNames,
  u64,
} from '../events/decode.ts';
import { FILE_EVENT as FE, NET_EVENT as NE, SIZEOF, VIGIL_SYS_FLAGS as F } from '../events/layout.generated.ts';
import type { FileOp, NetOp } from '../events/types.ts';
import { familyName, modeOctal, protocolName, retError, sockTypeName, syscallName, tcpStateName } from '../syscalls/names.ts';
import type { HeldKind, HeldRecord } from './held.ts';
import { fileMember, netMember } from './record-members.ts';
import { smallDigits, type ByteLine } from './json-bytes.ts';
import type { RecordDecoder } from './pipeline.ts';

const enc = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));

/** Entries per memo below: values seen are few (syscalls, flag sets, modes); an unbounded stream is not. */
const MEMO_MAX = 4096;

function memo<K>(cache: Map<K, Uint8Array>, key: K, make: (key: K) => string): Uint8Array {
  let b = cache.get(key);
  if (b === undefined) {
    b = enc(make(key));
    if (cache.size < MEMO_MAX) cache.set(key, b);
  }
  return b;
}

/**
 * memo() for small integer keys (syscall numbers, errnos): an array, not a Map. Every line looks up two or
 * three of these; a Map lookup is a call into V8's hash table code, an array element a load (bench/pipeline).
 */
class SmallMemo {
  readonly #slots: (Uint8Array | undefined)[];
  readonly #other = new Map<number, Uint8Array>();
  readonly #make: (key: number) => string;

  constructor(size: number, make: (key: number) => string) {
    this.#slots = new Array<Uint8Array | undefined>(size).fill(undefined); // packed: stays a plain array
    this.#make = make;
  }

  get(key: number): Uint8Array {
    if (key >= 0 && key < this.#slots.length) return (this.#slots[key] ??= enc(this.#make(key)));
    return memo(this.#other, key, this.#make);
  }
}

// Members whose bytes follow from one value, made once per value.
const head = (nr: number): string => `,"group":"file","syscall":${JSON.stringify(syscallName(nr))},"nr":${nr},"ret":`;
const heads = new SmallMemo(1024, head);
const netHead = (nr: number): string => `,"group":"network","syscall":${JSON.stringify(syscallName(nr))},"nr":${nr},"ret":`;
const netHeads = new SmallMemo(1024, netHead);
/** By -ret: the kernel's errnos are 1 to 4095. */
const errnos = new SmallMemo(4096, (negRet: number): string => {
  const e = retError(-negRet);
  return e === undefined ? '' : `,"errno":${JSON.stringify(e)}`;
});
/** Flags and their names, per file op, by the record's op number (a string-keyed table lookup was megamorphic). */
const flagTables: ({ memos: Map<number, Uint8Array>; make: (flags: number) => string } | undefined)[] = new Array(16).fill(undefined);
/** `opNumber` is the record's op, one of the few FILE_OP values fileRecordOp accepted (named `op`). */
function flagsOf(opNumber: number, op: FileOp, flags: number): Uint8Array {
  // Events come in runs of one op and flags (a tool opening file after file): the last answer, then the memo.
  if (opNumber === lastFlags.op && flags === lastFlags.flags) return lastFlags.bytes;
  const t = flagTables[opNumber] ?? (flagTables[opNumber] = flagTable(op));
  const bytes = memo(t.memos, flags, t.make);
  lastFlags.op = opNumber;
  lastFlags.flags = flags;
  lastFlags.bytes = bytes;
  return bytes;
}
const lastFlags: { op: number; flags: number; bytes: Uint8Array } = { op: -1, flags: -1, bytes: new Uint8Array(0) };
/**
 * A table of flagsOf. Made here, not inline: a closure over flagsOf's `op` made V8 allocate a context for
 * every call of flagsOf, table made or not (73 bytes of garbage per file event, bench/pipeline).
 */
const flagTable = (op: FileOp) => ({ memos: new Map<number, Uint8Array>(), make: (f: number) => `,"flags":${f},"flagNames":${JSON.stringify(fileFlagNames(op, f))}` });
const modes = new Map<number, Uint8Array>();
const mode = (m: number): string => `,"mode":${m},"modeOctal":${JSON.stringify(modeOctal(m))}`;

const K = {
  path: enc(',"path":'),
  path2: enc(',"path2":'),
  resolvedPath: enc(',"resolvedPath":'),
  resolvedPath2: enc(',"resolvedPath2":'),
  fromFd: enc(',"resolvedFrom":"fd"'),
  fromCwd: enc(',"resolvedFrom":"cwd"'),
  fromDirfd: enc(',"resolvedFrom":"dirfd"'),
  dfd: enc(',"dfd":'),
  dfd2: enc(',"dfd2":'),
  uid: enc(',"uid":'),
  gid: enc(',"gid":'),
  resolve: enc(',"resolve":'),
  length: enc(',"length":'),
  write: enc(',"write":true'),
  sensitive: enc(',"sensitive":true'),
  path2Sensitive: enc(',"path2Sensitive":true'),
  secret: enc(',"secret":true'),
  logTruncated: enc(',"logTruncated":true'),
  logRemoved: enc(',"logRemoved":true'),
  logReplaced: enc(',"logReplaced":true'),
  pathTruncated: enc(',"pathTruncated":true'),
  pathReadAtExit: enc(',"pathReadAtExit":true'),
  pathUnreadable: enc(',"pathUnreadable":true'),
  resolvedTruncated: enc(',"resolvedTruncated":true'),
  ioUring: enc(',"ioUring":true'),
  resultUnknown: enc(',"resultUnknown":true'),
};

/**
 * The NUL-terminated string in b[start, start+size) (`v` views the same bytes) as a JSON string: copied when
 * it is printable ASCII with nothing to escape, else exactly as the decoder's string (cString) would be
 * written. Paths are checked four bytes at a time (one load and a few word operations instead of four byte
 * compares each): they were the most expensive member of a file event's line (bench/pipeline).
 */
function pathJson(w: ByteLine, v: DataView, b: Uint8Array, start: number, size: number): void {
  w.ensure(size + 2);
  const buf = w.buf;
  const at = w.pos;
  let p = at + 1;
  buf[at] = 0x22;
  const end = start + size;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const x = v.getInt32(i, true);
    const q = x ^ 0x22222222; // a byte of q is 0 where x has '"'
    const s = x ^ 0x5c5c5c5c; // ... and of s where x has '\'
    // High bit set in a byte below 0x20 (NUL and controls), at or above 0x80, or equal to '"' or '\': the
    // "has a byte less than n" word trick, for n = 0x20 and, on q and s, for n = 1.
    if (((((x - 0x20202020) | 0) & ~x) | x | (((q - 0x01010101) | 0) & ~q) | (((s - 0x01010101) | 0) & ~s)) & 0x80808080) break;
    buf[p] = x;
    buf[p + 1] = x >>> 8;
    buf[p + 2] = x >>> 16;
    buf[p + 3] = x >>> 24;
    p += 4;
  }
  for (; i < end; i++) {
    const c = b[i]!;
    if (c === 0) break;
    if (c < 0x20 || c === 0x22 || c === 0x5c || c >= 0x80) {
      w.pos = at;
      w.string(cString(b, start, size));
      return;
    }
    buf[p++] = c;
  }
  buf[p++] = 0x22;
  w.pos = p;
}

/**
 * The members every syscall event starts with: group, syscall, nr, ret, errno (`heads` gives the group's).
 * The file and network structs share these fields' offsets (checked at load, below).
 */
function syscallHead(w: ByteLine, v: DataView, o: number, heads: SmallMemo): void {
  const nr = v.getInt32(o + FE.nr.offset, true);
  const ret = s64(v, o + FE.ret.offset);
  w.raw(heads.get(nr));
  w.number(ret);
  if (nr !== -1 && ret < 0) w.raw(errnos.get(-ret));
}
if (FE.nr.offset !== NE.nr.offset || FE.ret.offset !== NE.ret.offset || FE.ev_flags.offset !== NE.ev_flags.offset) {
  throw new Error('file_event and net_event no longer share the offsets of nr, ret and ev_flags: see syscallHead');
}

/** The members of a file record (the checks of fileRecordOp passed when it was held). */
export function fileMembersBytes(r: HeldRecord, w: ByteLine): void {
  const v = r.v;
  const b = r.b;
  const o = r.off;
  const op = r.type as FileOp;
  const ev = v.getUint32(o + FE.ev_flags.offset, true);
  const flags = v.getUint32(o + FE.flags.offset, true);
  syscallHead(w, v, o, heads);
  const l1 = v.getUint32(o + FE.path_len.offset, true);
  const l2 = v.getUint32(o + FE.path2_len.offset, true);
  const l3 = v.getUint32(o + FE.resolved_len.offset, true);
  const l4 = v.getUint32(o + FE.resolved2_len.offset, true);
  let p = o + SIZEOF.file_event;
  w.raw(K.path);
  pathJson(w, v, b, p, l1);
  p += l1;
  if (l2) {
    w.raw(K.path2);
    pathJson(w, v, b, p, l2);
  }
  p += l2;
  if (l3) {
    w.raw(K.resolvedPath);
    pathJson(w, v, b, p, l3);
  }
  p += l3;
  if (l4) {
    w.raw(K.resolvedPath2);
    pathJson(w, v, b, p, l4);
  }
  if (ev & F.RESOLVED_FD) w.raw(K.fromFd);
  else if (ev & F.RESOLVED_CWD) w.raw(K.fromCwd);
  else if (ev & F.RESOLVED_DIRFD) w.raw(K.fromDirfd);
  w.raw(K.dfd);
  w.number(v.getInt32(o + FE.dfd.offset, true));
  if (fileHasPath2(op)) {
    w.raw(K.dfd2);
    w.number(v.getInt32(o + FE.dfd2.offset, true));
  }
  w.raw(flagsOf(v.getUint32(o + FE.op.offset, true), op, flags));
  if (fileHasMode(op, flags)) w.raw(memo(modes, v.getUint32(o + FE.mode.offset, true), mode));
  if (op === 'chown') {
    const uid = v.getUint32(o + FE.uid.offset, true);
    const gid = v.getUint32(o + FE.gid.offset, true);
    if (uid !== 0xffffffff) {
      w.raw(K.uid);
      w.number(uid);
    }
    if (gid !== 0xffffffff) {
      w.raw(K.gid);
      w.number(gid);
    }
  } else if (op === 'open') {
    const resolve = u64(v, o + FE.resolve.offset);
    if (resolve) {
      w.raw(K.resolve);
      w.string(resolveFlagNames(resolve));
    }
  } else if (op === 'truncate') {
    w.raw(K.length);
    w.number(u64(v, o + FE.resolve.offset));
  }
  if (ev & F.WRITE) w.raw(K.write);
  if (ev & F.SENSITIVE) w.raw(K.sensitive);
  if (ev & F.SENSITIVE_PATH2 && fileHasPath2(op)) w.raw(K.path2Sensitive);
  if (ev & F.SECRET) w.raw(K.secret);
  if (ev & F.LOG_TRUNCATED) w.raw(K.logTruncated);
  if (ev & F.LOG_REMOVED) w.raw(K.logRemoved);
  if (ev & F.LOG_REPLACED) w.raw(K.logReplaced);
  if (ev & F.PATH_TRUNCATED) w.raw(K.pathTruncated);
  if (ev & F.PATH_AT_EXIT) w.raw(K.pathReadAtExit);
  if (ev & F.PATH_UNREADABLE) w.raw(K.pathUnreadable);
  if (ev & F.RESOLVED_TRUNCATED) w.raw(K.resolvedTruncated);
  if (ev & F.IO_URING) w.raw(K.ioUring);
  if (ev & F.NO_RESULT) w.raw(K.resultUnknown);
  if (ev & KILLED) killJson(w, v, o, ev);
}

/** Kinds of the names native/lines.c asks for (its NAME_* enum): the key's top byte. */
export const NAME_KIND = { FILE_HEAD: 1, ERRNO: 2, FILE_FLAGS: 3, MODE: 4, NET_HEAD: 5, SOCKET: 6, ACCEPT_FLAGS: 7, TCP_STATE: 8 } as const;

/** A TCP state's name as a JSON string (what netMembersBytes' w.string writes), per state. */
const tcpStates = new Map<number, Uint8Array>();
const tcpState = (state: number): string => JSON.stringify(tcpStateName(state));

/**
 * The bytes fileMembersBytes or netMembersBytes writes for one name (a syscall's head, an errno, flags
 * with their names, a mode, a socket's family, type and protocol, a TCP state), for native/lines.c, which
 * writes the rest of the members itself: the same memos, so the same bytes. `extra` and `value` are the
 * key's parts (a file op's number and its flags; a family and type << 16 | protocol; a syscall number,
 * -ret, a mode, flags or a state); undefined for a key of no kind.
 */
export function nameBytes(kind: number, extra: number, value: number): Uint8Array | undefined {
  switch (kind) {
    case NAME_KIND.FILE_HEAD:
      return heads.get(value | 0);
    case NAME_KIND.ERRNO:
      return errnos.get(value >>> 0);
    case NAME_KIND.FILE_FLAGS: {
      const op = FILE_OPS[extra];
      return op ? flagsOf(extra, op, value >>> 0) : undefined;
    }
    case NAME_KIND.MODE:
      return memo(modes, value >>> 0, mode);
    case NAME_KIND.NET_HEAD:
      return netHeads.get(value | 0);
    case NAME_KIND.SOCKET:
      return memo(sockets, extra * 2 ** 32 + (value >>> 16) * 65536 + (value & 0xffff), socket);
    case NAME_KIND.ACCEPT_FLAGS:
      return memo(acceptFlags, value >>> 0, acceptFlag);
    case NAME_KIND.TCP_STATE:
      return memo(tcpStates, value | 0, tcpState);
  }
  return undefined;
}

const KILLED = F.KILL_SENT | F.KILL_DRY_RUN | F.KILL_REFUSED | F.KILL_FAILED;
const killKey = enc(',"kill":');

/** The `kill` member (rare: an in-kernel kill rule matched), as the decoder's. */
function killJson(w: ByteLine, v: DataView, o: number, ev: number): void {
  const k = kernelKillAt(v, o, ev);
  if (!k) return;
  w.raw(killKey);
  w.text(JSON.stringify(k));
}

const N = {
  fd: enc(',"fd":'),
  addrUnreadable: enc(',"addrUnreadable":true'),
  noSocket: enc(',"noSocket":true'),
  localAddress: enc(',"localAddress":'),
  localPort: enc(',"localPort":'),
  remoteAddress: enc(',"remoteAddress":'),
  remotePort: enc(',"remotePort":'),
  backlog: enc(',"backlog":'),
  oldState: enc(',"oldState":'),
  newState: enc(',"newState":'),
  deny: enc(',"deny":'),
};
/** family, sockType and protocol, by the three u16 values. */
const sockets = new Map<number, Uint8Array>();
const socket = (k: number): string =>
  `,"family":${JSON.stringify(familyName(Math.floor(k / 2 ** 32)))},"sockType":${JSON.stringify(sockTypeName(Math.floor(k / 65536) % 65536))},"protocol":${JSON.stringify(protocolName(k % 65536))}`;
const acceptFlags = new Map<number, Uint8Array>();
const acceptFlag = (flags: number): string => `,"flags":${flags},"flagNames":${JSON.stringify(sockFlagNames(flags))}`;

/** An address member: IPv4 written digit by digit, IPv6 and unix paths by the decoder's formatters. */
function address(w: ByteLine, key: Uint8Array, b: Uint8Array, at: number, family: number): void {
  w.raw(key);
  if (family === 2) {
    w.ensure(17); // '"a.b.c.d"': at most four times three digits, three dots and two quotes
    const buf = w.buf;
    let p = w.pos;
    buf[p++] = 0x22;
    for (let i = 0; i < 4; i++) {
      if (i) buf[p++] = 0x2e;
      p = smallDigits(buf, p, b[at + i]!);
    }
    buf[p++] = 0x22;
    w.pos = p;
  } else w.string(formatIPv6(b, at));
}

/** The members of a network record (the checks of netRecordOp passed when it was held). */
export function netMembersBytes(r: HeldRecord, w: ByteLine): void {
  const v = r.v;
  const b = r.b;
  const o = r.off;
  const op = r.type as NetOp;
  const ev = v.getUint32(o + NE.ev_flags.offset, true);
  const family = v.getUint16(o + NE.family.offset, true);
  syscallHead(w, v, o, netHeads);
  w.raw(N.fd);
  w.number(v.getInt32(o + NE.fd.offset, true));
  w.raw(memo(sockets, family * 2 ** 32 + v.getUint16(o + NE.type.offset, true) * 65536 + v.getUint16(o + NE.protocol.offset, true), socket));
  if (ev & F.ADDR_UNREADABLE) w.raw(N.addrUnreadable);
  if (ev & F.NO_SOCKET) w.raw(N.noSocket);
  if (ev & F.IO_URING) w.raw(K.ioUring);
  if (ev & F.NO_RESULT) w.raw(K.resultUnknown);
  if (family === 2 || family === 10) {
    const n = family === 2 ? 4 : 16;
    const la = o + NE.laddr.offset;
    const ra = o + NE.raddr.offset;
    const lport = v.getUint16(o + NE.lport.offset, true);
    const rport = v.getUint16(o + NE.rport.offset, true);
    if (lport || !isZero(b, la, n)) {
      address(w, N.localAddress, b, la, family);
      w.raw(N.localPort);
      w.number(lport);
    }
    if (rport || !isZero(b, ra, n)) {
      address(w, N.remoteAddress, b, ra, family);
      w.raw(N.remotePort);
      w.number(rport);
    }
  } else if (family === 1) {
    const at = o + NE.unix_path.offset;
    const len = v.getUint32(o + NE.unix_path_len.offset, true);
    const key = op === 'connect' ? N.remoteAddress : N.localAddress;
    if (len > 0 && b[at] !== 0) {
      // A path name: the bytes up to its NUL, as formatUnixPath reads them, with no string in between.
      w.raw(key);
      pathJson(w, v, b, at, len);
    } else {
      const path = formatUnixPath(b, at, len); // abstract ("@name") or unnamed
      if (path !== undefined) {
        w.raw(key);
        w.string(path);
      }
    }
  }
  if (op === 'accept') w.raw(memo(acceptFlags, v.getUint32(o + NE.flags.offset, true), acceptFlag));
  else if (op === 'listen') {
    w.raw(N.backlog);
    w.number(v.getInt32(o + NE.backlog.offset, true));
  } else if (op === 'tcp_state') {
    w.raw(N.oldState);
    w.string(tcpStateName(v.getInt32(o + NE.old_state.offset, true)));
    w.raw(N.newState);
    w.string(tcpStateName(v.getInt32(o + NE.new_state.offset, true)));
  } else if ((op === 'connect' || op === 'bind') && ev & KILLED) {
    const d = kernelDenyAt(v, o, ev);
    if (d) {
      w.raw(N.deny);
      w.text(JSON.stringify(d));
    }
  }
}

/** Network records (opcode NET), held as bytes. */
export const netHeldKind: HeldKind = {
  typeOf: netRecordOp,
  decode: decodeNetEvent as RecordDecoder,
  bytes: netMembersBytes,
  member: netMember,
  lineEntry: 3, // lines.c's ENTRY_NET
};

/** File records (opcode FILE), held as bytes. */
export const fileHeldKind: HeldKind = {
  typeOf: fileRecordOp,
  decode: decodeFileEvent as RecordDecoder,
  bytes: fileMembersBytes,
  member: fileMember,
  lineEntry: 1, // lines.c's ENTRY_FILE
};
