// Reading processes from /proc: the start-up snapshot (tetragon proc_reader.go), lookups of a pid the cache
// has not seen, and a live process's current parent after a reparent. /proc describes the present: it is
// never used to name what an exec event executed (that comes from the event itself). Every file may vanish
// mid-read (the process exits): unreadable fields are listed in `unknown`, never guessed.
import fs from 'node:fs';
import { bytesToString, splitNul } from '../events/strings.ts';
import type { Creds, Namespaces } from '../events/types.ts';
import { readMounts } from '../bpf/mounts.ts';
import { TICK_NS, type SnapshotProcess } from './types.ts';
import { UpperLayerProbe } from './upper-layer.ts';
import { ttyNameFromDev } from './users.ts';

export const PF_KTHREAD = 0x00200000;
const PF_EXITING = 0x00000004; // set when a task starts exiting, before its memory is released

export interface ProcfsOptions {
  procRoot?: string;
  /** Read /proc/<pid>/environ (root only; names are scrubbed later). */
  env?: boolean;
  /** Most bytes of cmdline/environ read per process. */
  maxBytes?: number;
  /** Tells whether an executable is in its overlay's upper layer; one per snapshot shares the mount tables. */
  upperLayer?: UpperLayerProbe;
}

/** Parsed /proc/<pid>/stat fields vigil uses. */
export interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  ttyNr: number;
  flags: number;
  numThreads: number;
  startTicks: number;
  /**
   * Where the environment lies in the process's memory (fields 50 and 51): 0 when it has no memory (exiting),
   * when it is mid-exec (its new memory not laid out yet), or when the reader may not see them (not root).
   * NaN on kernels before 3.5, which lack the fields.
   */
  envStart: number;
  envEnd: number;
  /** Where the arguments lie (fields 48 and 49), like envStart and envEnd. */
  argStart: number;
  argEnd: number;
}

/** Parses /proc/<pid>/stat. comm may hold spaces and parentheses: it runs to the last ')'. */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const f = text.slice(close + 2).trim().split(' ');
  // f[0] is field 3 (state): field N is f[N - 3].
  const n = (i: number) => Number(f[i - 3]);
  const st = { pid: Number(text.slice(0, open).trim()), comm: text.slice(open + 1, close), ppid: n(4), ttyNr: n(7), flags: n(9), numThreads: n(20), startTicks: n(22), envStart: n(50), envEnd: n(51), argStart: n(48), argEnd: n(49) };
  return Number.isFinite(st.pid) && Number.isFinite(st.startTicks) ? st : undefined;
}

/** Parses the Uid, Gid, Cap(Eff,Prm,Inh) and NSpid lines of /proc/<pid>/status. */
export function parseStatus(text: string): { creds: Omit<Creds, 'loginuid'> | undefined; nspid: number | undefined } {
  const line = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const ids = (k: string) => line(k)?.split(/\s+/).map(Number);
  const uid = ids('Uid');
  const gid = ids('Gid');
  const cap = (k: string) => (line(k) ?? '').padStart(16, '0');
  const nspid = ids('NSpid');
  const creds =
    uid && gid && uid.length >= 4 && gid.length >= 4
      ? { uid: uid[0]!, euid: uid[1]!, suid: uid[2]!, fsuid: uid[3]!, gid: gid[0]!, egid: gid[1]!, sgid: gid[2]!, fsgid: gid[3]!, capEffective: cap('CapEff'), capPermitted: cap('CapPrm'), capInheritable: cap('CapInh') }
      : undefined;
  return { creds, nspid: nspid?.[nspid.length - 1] };
}

/** Userspace dev_t (as stat(2) returns it) to the kernel's internal encoding (major << 20 | minor). */
export function kernelDev(dev: number): number {
  const d = BigInt(dev);
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const minor = Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
  return ((major << 20) | minor) >>> 0;
}

let cgroup2Root: string | null | undefined;
/** Where cgroup v2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts). */
export function cgroup2Mount(): string | undefined {
  if (cgroup2Root === undefined) cgroup2Root = readMounts().find((m) => m.fstype === 'cgroup2')?.target ?? null;
  return cgroup2Root ?? undefined;
}

/** The cgroup v2 id of a process: the inode of its cgroup directory ("0::/path" in /proc/<pid>/cgroup). */
export function cgroupIdOf(cgroupFile: string): number | undefined {
  const path = /^0::(.*)$/m.exec(cgroupFile)?.[1];
  const root = cgroup2Mount();
  if (path === undefined || !root) return undefined;
  try {
    return fs.statSync(`${root}${path === '/' ? '' : path}`).ino;
  } catch {
    return undefined;
  }
}

/** The inode number of a namespace link's target ("pid:[4026531836]"). */
export function nsInode(link: string): number | undefined {
  const m = /\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : undefined;
}

/** Where cmdline and environ are read: one buffer for every read, since each is decoded right away. */
let readScratch = Buffer.alloc(0);
/**
 * How many reads returned data in the last readBuf(). One read of cmdline or environ is consistent: the
 * kernel holds the process's memory through it. From a process that exits between two reads, the second
 * finds the memory gone and returns nothing, cutting the content short with no sign of it. So readBuf asks
 * for everything up to `max` in its first read; content that still came in pieces is suspect (readProcess).
 */
let readBufPieces = 0;

/**
 * Up to `max` bytes of a file. The result is a view of a shared scratch buffer, valid until the next call:
 * a snapshot reads two of these per process, and a fresh buffer each time made ~1 GiB of garbage for 10,000
 * processes.
 */
function readBuf(p: string, max: number): Buffer | undefined {
  let fd: number | undefined;
  readBufPieces = 0;
  // As big as `max` before the first read: a scratch that grew only once a read filled it took two reads to
  // get a long argv, and cut it short, unnoticed, when the process exited between them.
  if (readScratch.length < max) readScratch = Buffer.allocUnsafe(max);
  try {
    fd = fs.openSync(p, 'r');
    let total = 0;
    while (total < max) {
      const n = fs.readSync(fd, readScratch, total, max - total, null);
      if (n <= 0) break;
      readBufPieces++;
      total += n;
    }
    return readScratch.subarray(0, total);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * A /proc text file, or undefined. Its bytes are decoded like the kernel strings of the BPF side
 * (bytesToString): a comm may hold any byte, and a byte that is not UTF-8 must read "\xNN" in both modes,
 * never U+FFFD.
 */
export function readText(p: string): string | undefined {
  try {
    const b = fs.readFileSync(p);
    return bytesToString(b, 0, b.length);
  } catch {
    return undefined;
  }
}

/** A symlink's target (exe, cwd), decoded like readText. Throws like readlinkSync. */
function readLink(p: string): string {
  const b = fs.readlinkSync(p, { encoding: 'buffer' });
  return bytesToString(b, 0, b.length);
}

/** The state letter of a /proc stat line (the field after the comm). */
export function statState(text: string): string {
  const close = text.lastIndexOf(')');
  return close < 0 ? '?' : (text[close + 2] ?? '?');
}

/**
 * The process at `root` as /proc/<pid>/stat has it now, and whether it is exiting (PF_EXITING is set before
 * its memory goes), a zombie, or gone (no stat).
 */
function statNow(root: string): { exiting: boolean; st: ProcStat | undefined } {
  const text = readText(`${root}/stat`);
  const st = text ? parseStat(text) : undefined;
  if (!text || !st) return { exiting: true, st };
  const state = statState(text);
  return { exiting: (st.flags & PF_EXITING) !== 0 || state === 'Z' || state === 'X' || state === 'x', st };
}

/** What a process runs: its executable, argv and environment as far as they could be read, and what not. */
interface ImageRead {
  argv: string[] | undefined;
  envRaw: string[] | undefined;
  exePath: string | undefined;
  exeIno: number | undefined;
  exeDev: number | undefined;
  exeMtimeNs: number | undefined;
  exeUpperLayer: boolean | undefined;
  unknown: string[];
}

/**
 * Whether the process's memory was laid out anew between two stat lines: an exec in between. Each exec puts
 * the arguments and the environment at new addresses (fields 48 to 51). False when either line lacks them
 * (gone, a kernel before 3.5) or shows none (no memory, or a reader who may not see them).
 */
function relaidOut(a: ProcStat, b: ProcStat | undefined): boolean {
  if (!b) return false;
  const at = (s: ProcStat) => [s.argStart, s.argEnd, s.envStart, s.envEnd];
  const x = at(a);
  const y = at(b);
  if (!x.every(Number.isFinite) || !y.every(Number.isFinite)) return false;
  // No memory on one side (exiting, or mid-exec before the new memory is laid out): the reads found it
  // empty if they met it, and an empty read is marked unknown (readImage); what they did read is one image.
  if (x.every((v) => v === 0) || y.every((v) => v === 0)) return false;
  return x.some((v, i) => v !== y[i]);
}

/**
 * Reads what the process at `root` runs: cmdline, environ and exe, then its stat line again (`after`,
 * undefined when gone), which tells what the reads may have missed.
 */
function readImage(root: string, pid: number, o: ProcfsOptions): { image: ImageRead; after: ProcStat | undefined } {
  const unknown: string[] = [];
  let argv: string[] | undefined;
  let envRaw: string[] | undefined;
  let exePath: string | undefined;
  let exeIno: number | undefined;
  let exeDev: number | undefined;
  let exeMtimeNs: number | undefined;
  let exeUpperLayer: boolean | undefined;
  const max = o.maxBytes ?? 128 * 1024;
  const cmd = readBuf(`${root}/cmdline`, max);
  const cmdPieces = readBufPieces;
  // An empty cmdline of a user process means a zombie or one caught mid-exec: unknown, not "no argv".
  if (cmd && cmd.length) argv = splitNul(cmd, 0, cmd.length);
  else unknown.push('argv');
  // Read in pieces from a process exiting since: possibly cut short after its memory went, so unknown
  // rather than wrong.
  let envPieces = 1;
  if (o.env !== false) {
    const env = readBuf(`${root}/environ`, max);
    envPieces = readBufPieces;
    if (env) envRaw = splitNul(env, 0, env.length);
    else unknown.push('env');
  }
  try {
    exePath = readLink(`${root}/exe`);
    const st = fs.statSync(`${root}/exe`, { bigint: true });
    exeIno = Number(st.ino);
    exeDev = kernelDev(Number(st.dev));
    exeMtimeNs = Number(st.mtimeNs);
    exeUpperLayer = (o.upperLayer ?? new UpperLayerProbe(o.procRoot)).exeInUpperLayer(pid, exePath);
    // Not "false": a rule reading it must not take "could not tell" for "not drift" (process.unknown says so).
    if (exeUpperLayer === undefined) unknown.push('exeUpperLayer');
  } catch {
    unknown.push('exe');
  }
  const now = statNow(root);
  const argvSuspect = argv !== undefined && cmdPieces > 1;
  const envSuspect = envRaw !== undefined && envPieces > 1;
  // An empty environ is rarely an empty environment (env -i). The kernel also reads nothing from a process
  // whose memory is gone (exiting), from one mid-exec (its new memory has no environment laid out yet), and
  // through a file opened before an exec replaced the memory it was opened on. Only the stat line tells
  // them apart: a really empty environment starts where it ends, at a real address.
  const envEmpty = envRaw !== undefined && envPieces === 0;
  const reallyEmpty = !now.exiting && now.st !== undefined && now.st.envEnd !== 0 && now.st.envStart === now.st.envEnd;
  if (argvSuspect && now.exiting) {
    argv = undefined;
    unknown.push('argv');
  }
  if ((envSuspect && now.exiting) || (envEmpty && !reallyEmpty)) {
    envRaw = undefined;
    unknown.push('env');
  }
  return { image: { argv, envRaw, exePath, exeIno, exeDev, exeMtimeNs, exeUpperLayer, unknown }, after: now.st };
}

/** Reads one process. Undefined when it does not exist (or vanished before its stat could be read). */
export function readProcess(pid: number, o: ProcfsOptions = {}): SnapshotProcess | undefined {
  const root = `${o.procRoot ?? '/proc'}/${pid}`;
  const statText = readText(`${root}/stat`);
  let stat = statText ? parseStat(statText) : undefined;
  if (!stat) return undefined;
  const unknown: string[] = [];
  const kernelThread = (stat.flags & PF_KTHREAD) !== 0;
  const status = readText(`${root}/status`);
  const parsed = status ? parseStatus(status) : { creds: undefined, nspid: undefined };
  const loginText = readText(`${root}/loginuid`);
  const login = loginText === undefined ? undefined : Number(loginText.trim());
  const creds: Creds | undefined = parsed.creds ? { ...parsed.creds, loginuid: login === undefined || login === 4294967295 ? undefined : login } : undefined;
  if (!creds) unknown.push('creds');

  let image: ImageRead | undefined;
  if (!kernelThread) {
    // An exec between the reads of one image would mix two: one's argv with the next one's environment or
    // executable (the eBPF-less mode reads a process right after its exec, often as it execs again). The
    // stat lines before and after the reads tell; the image is read again once, with the comm of the newer
    // stat, and if it moved again, what it runs is unknown rather than a mixture.
    const first = readImage(root, pid, o);
    image = first.image;
    if (relaidOut(stat, first.after)) {
      stat = first.after!;
      const again = readImage(root, pid, o);
      image = again.image;
      if (relaidOut(stat, again.after)) {
        image = { ...image, argv: undefined, envRaw: undefined, exePath: undefined, exeIno: undefined, exeDev: undefined, exeMtimeNs: undefined, exeUpperLayer: undefined };
        image.unknown = [...new Set([...image.unknown.filter((f) => f !== 'exeUpperLayer'), 'argv', 'env', 'exe'])];
      }
    }
    unknown.push(...image.unknown);
  }

  let ns: Namespaces | undefined;
  try {
    const pidns = nsInode(fs.readlinkSync(`${root}/ns/pid`));
    const mntns = nsInode(fs.readlinkSync(`${root}/ns/mnt`));
    const cg = readText(`${root}/cgroup`);
    ns = { cgroupId: (cg && cgroupIdOf(cg)) || 0, pidns: pidns ?? 0, mntns: mntns ?? 0, nspid: parsed.nspid ?? pid };
  } catch {
    unknown.push('ns');
  }

  return {
    type: 'snapshot',
    pid,
    startNs: stat.startTicks * TICK_NS,
    ppid: stat.ppid,
    comm: stat.comm,
    exePath: image?.exePath,
    exeIno: image?.exeIno,
    exeDev: image?.exeDev,
    exeMtimeNs: image?.exeMtimeNs,
    exeUpperLayer: image?.exeUpperLayer,
    argv: image?.argv,
    envRaw: image?.envRaw,
    creds,
    ns,
    tty: ttyNameFromDev(stat.ttyNr) ?? '',
    unknown,
    kernelThread,
  };
}

/**
 * Every live process, parents before children (by start time: a parent starts before its child), read one
 * at a time as the caller asks for the next: only their start times are read up front, so a snapshot of
 * 10,000 processes never holds 10,000 records (with their argv and environment) at once. Processes that
 * exit while being read are skipped.
 */
export function* snapshotProcesses(o: ProcfsOptions = {}): Generator<SnapshotProcess> {
  const root = o.procRoot ?? '/proc';
  o = { ...o, upperLayer: o.upperLayer ?? new UpperLayerProbe(root, { shareMounts: true }) };
  const order: { pid: number; start: number }[] = [];
  for (const name of fs.readdirSync(root)) {
    if (!/^\d+$/.test(name)) continue;
    const text = readText(`${root}/${name}/stat`);
    const st = text ? parseStat(text) : undefined;
    if (st) order.push({ pid: Number(name), start: st.startTicks });
  }
  order.sort((a, b) => a.start - b.start || a.pid - b.pid);
  for (const { pid } of order) {
    const p = readProcess(pid, o);
    if (p) yield p;
  }
}

/** Every live process, parents before children: snapshotProcesses() collected. */
export function takeSnapshot(o: ProcfsOptions = {}): SnapshotProcess[] {
  return [...snapshotProcesses(o)];
}

/** The current ppid of a live process, if it is still the instance that started at `startNs`. */
export function readPpid(pid: number, startNs: number, procRoot = '/proc'): number | undefined {
  const text = readText(`${procRoot}/${pid}/stat`);
  const st = text ? parseStat(text) : undefined;
  if (!st) return undefined;
  if (Number.isFinite(startNs) && Math.floor(startNs / TICK_NS) !== st.startTicks) return undefined; // pid reused
  return st.ppid;
}
