// File and network events' own members read straight from a held record's bytes, one at a time, as the
// rules' guards ask for them (EventMembers; src/rules/prefilter.ts). A guard reads two or three members of
// an event (ret, the path, a flag) and turns nearly every event down on them; decoding the whole record
// into an object first (every path a string, every flag set named) and shaping its fields cost more than
// the guard itself (bench/pipeline, rules stage). Each reader gives exactly what the type's shaper puts in
// the event's fields under its key (outputs.ts: the decoder's value, with undefined and false left out);
// test/unit/pipeline-held.test.ts checks every key against decode + shaper on generated records.
import { kernelDenyAt, kernelKillAt } from '../events/kill.ts';
import { cString } from '../events/strings.ts';
import { fileFlagNames, fileHasMode, fileHasPath2, netEndpoints, resolveFlagNames, s64, sockFlagNames, u64, type NetEndpoints } from '../events/decode.ts';
import { FILE_EVENT as FE, NET_EVENT as NE, SIZEOF, VIGIL_SYS_FLAGS as F } from '../events/layout.generated.ts';
import type { FileOp, NetOp } from '../events/types.ts';
import { familyName, modeOctal, protocolName, retError, sockTypeName, syscallName, tcpStateName } from '../syscalls/names.ts';
import type { HeldRecord } from './held.ts';
import { EventMembers } from './router.ts';

/** One member of a record: its value as the decoder gives it (false and undefined: not in the fields). */
type Reader = (r: HeldRecord) => unknown;

const i32 = (r: HeldRecord, at: number): number => r.v.getInt32(r.off + at, true);
const u32 = (r: HeldRecord, at: number): number => r.v.getUint32(r.off + at, true);
const u16 = (r: HeldRecord, at: number): number => r.v.getUint16(r.off + at, true);
/** The file and network structs share nr, ret and ev_flags (record-bytes.ts checks it at load). */
const nr = (r: HeldRecord): number => i32(r, FE.nr.offset);
const ret = (r: HeldRecord): number => s64(r.v, r.off + FE.ret.offset);
const evBit =
  (bit: number): Reader =>
  (r) =>
    (u32(r, FE.ev_flags.offset) & bit) !== 0;

/** The members every syscall event has, besides the common ones. */
const syscallReaders = (group: string): [string, Reader][] => [
  ['group', () => group],
  ['syscall', (r) => syscallName(nr(r))],
  ['nr', nr],
  ['ret', ret],
  ['errno', (r) => (nr(r) === -1 ? undefined : retError(ret(r)))],
];

/**
 * The `i`th string after a file record's struct (path, path2, resolvedPath, resolvedPath2), or undefined when
 * it is empty: but the first, which is always there ('' at worst).
 */
function filePath(r: HeldRecord, i: number): string | undefined {
  let p = r.off + SIZEOF.file_event;
  for (let k = 0; k < i; k++) p += u32(r, PATH_LENS[k]!);
  const len = u32(r, PATH_LENS[i]!);
  return i === 0 || len ? cString(r.b, p, len) : undefined;
}
/** Where the lengths of the strings after a file record's struct are, in their order. */
const PATH_LENS = [FE.path_len.offset, FE.path2_len.offset, FE.resolved_len.offset, FE.resolved2_len.offset];
const fileOp = (r: HeldRecord): FileOp => r.type as FileOp;
const fileFlags = (r: HeldRecord): number => u32(r, FE.flags.offset);
const fileReaders = new Map<string, Reader>([
  ...syscallReaders('file'),
  ['path', (r) => filePath(r, 0)],
  ['path2', (r) => filePath(r, 1)],
  ['resolvedPath', (r) => filePath(r, 2)],
  ['resolvedPath2', (r) => filePath(r, 3)],
  [
    'resolvedFrom',
    (r) => {
      const ev = u32(r, FE.ev_flags.offset);
      return ev & F.RESOLVED_FD ? 'fd' : ev & F.RESOLVED_CWD ? 'cwd' : ev & F.RESOLVED_DIRFD ? 'dirfd' : undefined;
    },
  ],
  ['dfd', (r) => i32(r, FE.dfd.offset)],
  ['dfd2', (r) => (fileHasPath2(fileOp(r)) ? i32(r, FE.dfd2.offset) : undefined)],
  ['flags', fileFlags],
  ['flagNames', (r) => fileFlagNames(fileOp(r), fileFlags(r))],
  ['mode', (r) => (fileHasMode(fileOp(r), fileFlags(r)) ? u32(r, FE.mode.offset) : undefined)],
  ['modeOctal', (r) => (fileHasMode(fileOp(r), fileFlags(r)) ? modeOctal(u32(r, FE.mode.offset)) : undefined)],
  ['uid', (r) => (fileOp(r) === 'chown' && u32(r, FE.uid.offset) !== 0xffffffff ? u32(r, FE.uid.offset) : undefined)],
  ['gid', (r) => (fileOp(r) === 'chown' && u32(r, FE.gid.offset) !== 0xffffffff ? u32(r, FE.gid.offset) : undefined)],
  [
    'resolve',
    (r) => {
      const resolve = u64(r.v, r.off + FE.resolve.offset);
      return fileOp(r) === 'open' && resolve ? resolveFlagNames(resolve) : undefined;
    },
  ],
  ['length', (r) => (fileOp(r) === 'truncate' ? u64(r.v, r.off + FE.resolve.offset) : undefined)],
  ['write', evBit(F.WRITE)],
  ['sensitive', evBit(F.SENSITIVE)],
  ['path2Sensitive', (r) => (fileHasPath2(fileOp(r)) ? (u32(r, FE.ev_flags.offset) & F.SENSITIVE_PATH2) !== 0 : undefined)],
  ['secret', evBit(F.SECRET)],
  ['logTruncated', evBit(F.LOG_TRUNCATED)],
  ['logRemoved', evBit(F.LOG_REMOVED)],
  ['logReplaced', evBit(F.LOG_REPLACED)],
  ['pathTruncated', evBit(F.PATH_TRUNCATED)],
  ['pathReadAtExit', evBit(F.PATH_AT_EXIT)],
  ['pathUnreadable', evBit(F.PATH_UNREADABLE)],
  ['resolvedTruncated', evBit(F.RESOLVED_TRUNCATED)],
  ['ioUring', evBit(F.IO_URING)],
  ['resultUnknown', evBit(F.NO_RESULT)],
  ['kill', (r) => kernelKillAt(r.v, r.off, u32(r, FE.ev_flags.offset))],
]);

const netOp = (r: HeldRecord): NetOp => r.type as NetOp;
const endpoint =
  (k: keyof NetEndpoints): Reader =>
  (r) =>
    netEndpoints(r.v, r.b, r.off, netOp(r))[k];
const netReaders = new Map<string, Reader>([
  ...syscallReaders('network'),
  ['fd', (r) => i32(r, NE.fd.offset)],
  ['family', (r) => familyName(u16(r, NE.family.offset))],
  ['sockType', (r) => sockTypeName(u16(r, NE.type.offset))],
  ['protocol', (r) => protocolName(u16(r, NE.protocol.offset))],
  ['addrUnreadable', evBit(F.ADDR_UNREADABLE)],
  ['noSocket', evBit(F.NO_SOCKET)],
  ['ioUring', evBit(F.IO_URING)],
  ['resultUnknown', evBit(F.NO_RESULT)],
  ['localAddress', endpoint('localAddress')],
  ['localPort', endpoint('localPort')],
  ['remoteAddress', endpoint('remoteAddress')],
  ['remotePort', endpoint('remotePort')],
  ['flags', (r) => (netOp(r) === 'accept' ? u32(r, NE.flags.offset) : undefined)],
  ['flagNames', (r) => (netOp(r) === 'accept' ? sockFlagNames(u32(r, NE.flags.offset)) : undefined)],
  ['backlog', (r) => (netOp(r) === 'listen' ? i32(r, NE.backlog.offset) : undefined)],
  ['oldState', (r) => (netOp(r) === 'tcp_state' ? tcpStateName(i32(r, NE.old_state.offset)) : undefined)],
  ['newState', (r) => (netOp(r) === 'tcp_state' ? tcpStateName(i32(r, NE.new_state.offset)) : undefined)],
  ['deny', (r) => (netOp(r) === 'connect' || netOp(r) === 'bind' ? kernelDenyAt(r.v, r.off, u32(r, NE.ev_flags.offset)) : undefined)],
]);

/** A HeldKind's `member` over a table of readers: undefined for a key the fields never hold. */
function membersOf(readers: ReadonlyMap<string, Reader>): (r: HeldRecord, key: string) => unknown {
  return (r, key) => {
    const read = readers.get(key);
    if (read === undefined) return undefined;
    const v = read(r);
    return v === false ? undefined : v;
  };
}
export const fileMember = membersOf(fileReaders);
export const netMember = membersOf(netReaders);
/** The keys each kind reads (its fields can hold no other): for the tests. */
export const FILE_MEMBER_KEYS: readonly string[] = [...fileReaders.keys()];
export const NET_MEMBER_KEYS: readonly string[] = [...netReaders.keys()];

/**
 * A held record's members for a guard (EventMembers), read from its bytes as asked for. One per pipeline,
 * pointed at each record in turn: valid only while that record is (the arena reuses it once released).
 */
export class RecordMembers extends EventMembers {
  #r: HeldRecord | undefined;

  /** `r`'s members. */
  of(r: HeldRecord): this {
    this.#r = r;
    return this;
  }

  member(key: string): unknown {
    const r = this.#r!;
    return r.kind.member(r, key);
  }
}
