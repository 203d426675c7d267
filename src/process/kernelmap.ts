// vigil_procs, the kernel-side mirror of the process cache (tgid -> struct proc_entry): read to resolve a
// pid user space has not seen, written from the /proc snapshot so that in-kernel filters and lookups know
// the processes that were running before vigil started.
import { UpdateFlags } from '../bpf/constants.ts';
import type { BpfMap } from '../bpf/map.ts';
import { decodeCreds, decodeNs } from '../events/decode.ts';
import { PROC_CREDS, PROC_ENTRY, PROC_NS, SIZEOF, VIGIL_PROC_FLAGS } from '../events/layout.generated.ts';
import { cString } from '../events/strings.ts';
import type { SnapshotProcess } from './types.ts';

function putU64(b: Buffer, off: number, v: number): void {
  b.writeBigUInt64LE(BigInt(Math.max(0, Math.floor(v))), off);
}

/** Encodes a snapshot record as a proc_entry value. */
export function encodeProcEntry(s: SnapshotProcess): Buffer {
  const b = Buffer.alloc(SIZEOF.proc_entry);
  putU64(b, PROC_ENTRY.start_ns.offset, s.startNs);
  b.writeUInt32LE(s.ppid, PROC_ENTRY.ppid.offset);
  b.writeUInt32LE(VIGIL_PROC_FLAGS.SNAPSHOT, PROC_ENTRY.flags.offset);
  if (s.creds) {
    const c = PROC_ENTRY.creds.offset;
    const cr = s.creds;
    for (const [k, v] of [['uid', cr.uid], ['gid', cr.gid], ['euid', cr.euid], ['egid', cr.egid], ['suid', cr.suid], ['sgid', cr.sgid], ['fsuid', cr.fsuid], ['fsgid', cr.fsgid]] as const) {
      b.writeUInt32LE(v >>> 0, c + PROC_CREDS[k].offset);
    }
    for (const [k, v] of [['cap_effective', cr.capEffective], ['cap_permitted', cr.capPermitted], ['cap_inheritable', cr.capInheritable]] as const) {
      b.writeBigUInt64LE(BigInt(`0x${v || '0'}`), c + PROC_CREDS[k].offset);
    }
    b.writeUInt32LE(cr.loginuid ?? 0xffffffff, c + PROC_CREDS.loginuid.offset);
  }
  if (s.ns) {
    const n = PROC_ENTRY.ns.offset;
    putU64(b, n + PROC_NS.cgroup_id.offset, s.ns.cgroupId);
    b.writeUInt32LE(s.ns.pidns >>> 0, n + PROC_NS.pidns.offset);
    b.writeUInt32LE(s.ns.mntns >>> 0, n + PROC_NS.mntns.offset);
    b.writeUInt32LE(s.ns.nspid >>> 0, n + PROC_NS.nspid.offset);
  }
  Buffer.from(s.comm, 'utf8').subarray(0, PROC_ENTRY.comm.size - 1).copy(b, PROC_ENTRY.comm.offset);
  return b;
}

/** Decodes a proc_entry into a snapshot-shaped record (argv, env and exe are unknown to the kernel map). */
export function decodeProcEntry(pid: number, b: Buffer): SnapshotProcess {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u64 = (off: number) => v.getUint32(off, true) + v.getUint32(off + 4, true) * 4294967296;
  return {
    type: 'snapshot',
    pid,
    startNs: u64(PROC_ENTRY.start_ns.offset),
    ppid: v.getUint32(PROC_ENTRY.ppid.offset, true),
    comm: cString(b, PROC_ENTRY.comm.offset, PROC_ENTRY.comm.size),
    exePath: undefined,
    exeIno: undefined,
    exeDev: undefined,
    exeMtimeNs: undefined,
    argv: undefined,
    envRaw: undefined,
    creds: decodeCreds(v, PROC_ENTRY.creds.offset),
    ns: decodeNs(v, PROC_ENTRY.ns.offset),
    tty: '',
    unknown: ['argv', 'env', 'exe', 'tty'],
    kernelThread: false,
  };
}

/** Typed access to the vigil_procs map. */
export class KernelProcessMap {
  readonly #map: BpfMap;
  readonly #key = Buffer.alloc(4);
  readonly #val: Buffer;

  constructor(map: BpfMap) {
    this.#map = map;
    this.#val = Buffer.alloc(map.lookupSize);
  }

  lookup(pid: number): SnapshotProcess | undefined {
    this.#key.writeUInt32LE(pid);
    const v = this.#map.lookup(this.#key, this.#val);
    return v ? decodeProcEntry(pid, v) : undefined;
  }

  /** Seeds entries from the snapshot, never overwriting what live events already wrote. Returns how many. */
  seed(procs: Iterable<SnapshotProcess>): number {
    let n = 0;
    for (const p of procs) if (this.seedOne(p)) n++;
    return n;
  }

  /** Seeds one snapshot record (not a kernel thread's, not over a live event's entry). Whether it was written. */
  seedOne(p: SnapshotProcess): boolean {
    if (p.kernelThread) return false;
    this.#key.writeUInt32LE(p.pid);
    try {
      this.#map.update(this.#key, encodeProcEntry(p), UpdateFlags.NOEXIST);
      return true;
    } catch {
      return false; // already there from a live fork/exec: the kernel's entry is newer
    }
  }
}
