// User, group and terminal names for process events. A process's names come from the passwd and group files
// of its own mount namespace (a container has its own /etc), parsed once and cached per namespace; the files
// are re-stat'ed at most every recheckMs, so a lookup is normally two Map gets.
//
// I/O is synchronous on purpose: it happens only on a cache miss or a recheck (a stat per file every few
// seconds per namespace), and a synchronous read of a small local file costs less than scheduling an async one.
import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from '../bpf/errors.ts';
import { bytesToString } from '../events/strings.ts';
import type { ProcessEntry } from './types.ts';

/** A process in a (possibly) different mount namespace: its own /etc files are read through /proc/<pid>/root. */
export interface NameContext {
  pid: number;
  mntns: number;
}

export interface UserResolverOptions {
  /** Where proc is mounted. Default "/proc". */
  procRoot?: string;
  /** The root whose etc/passwd and etc/group name the host's users. Default "/". */
  hostRoot?: string;
  /** A cached file is re-stat'ed at most this often (ms). Default 5000; 0 re-stats on every lookup. */
  recheckMs?: number;
  /** At most this many container namespaces are cached (least recently used evicted). Default 256. */
  maxNamespaces?: number;
  /** Monotonic clock in ms, for tests. Default performance.now. */
  now?: () => number;
}

export interface UserResolverStats {
  /** userName/groupName calls. */
  lookups: number;
  /** Lookups that returned a name. */
  hits: number;
  /** Files (re)parsed. */
  reloads: number;
  /** Container namespaces cached now (the host is not counted). */
  namespaces: number;
  /** Files that exist but could not be used: unreadable, not a regular file, too large, a symlink in a
   *  container. A missing file is an ordinary state and not counted. */
  errors: number;
  /** Lines skipped because they are not valid passwd/group entries (comments and blank lines are not). */
  malformed: number;
}

type DbName = 'passwd' | 'group';

/** One passwd or group file as last seen. */
interface IdFile {
  /** undefined: absent, unusable or never read. */
  names: Map<number, string> | undefined;
  /** dev:ino:size:mtime:ctime of what `names` came from; '' when nothing was read. */
  sig: string;
  checkedAt: number;
}

interface Scope {
  host: boolean;
  mntns: number;
  /** The last process seen in this namespace: the way into its files. */
  pid: number;
  passwd: IdFile;
  group: IdFile;
}

// A passwd or group file larger than this is refused: a container could otherwise make the agent allocate
// whatever it likes. Real files are kilobytes; big LDAP exports stay well below.
const MAX_FILE_BYTES = 16 << 20;
const FIELDS: Record<DbName, number> = { passwd: 7, group: 4 };
const ID_RE = /^\d{1,10}$/;
// A name must be printable and free of spaces; anything else is more likely garbage than a user.
const NAME_RE = /^[^\s\x00-\x1f\x7f:]+$/;
const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'ESRCH']);

function newFile(): IdFile {
  return { names: undefined, sig: '', checkedAt: -Infinity };
}

/**
 * Resolves uids and gids to names the way the process itself would see them. Never throws on lookups and never
 * blocks on a hostile container's files (FIFOs, symlinks and huge files are refused).
 *
 * Fallback: when the relevant file is missing or unusable, uid 0 and gid 0 resolve to "root" (the superuser
 * is named root everywhere in practice, and distroless or scratch images often have no /etc/passwd); other ids
 * resolve to undefined. A container whose file exists but lacks an id gets undefined: its file is authoritative,
 * and the host's names would be wrong for it.
 */
export class UserResolver {
  private readonly procRoot: string;
  private readonly hostRoot: string;
  private readonly recheckMs: number;
  private readonly maxNamespaces: number;
  private readonly now: () => number;
  private readonly host: Scope;
  private readonly containers = new Map<number, Scope>();
  private hostMntns: number | undefined;
  private hostMntnsRead = false;
  private readonly st = { lookups: 0, hits: 0, reloads: 0, errors: 0, malformed: 0 };

  /** @throws InvalidArgumentError for a negative or non-finite recheckMs or a maxNamespaces below 1. */
  constructor(o: UserResolverOptions = {}) {
    this.procRoot = o.procRoot ?? '/proc';
    this.hostRoot = o.hostRoot ?? '/';
    this.recheckMs = o.recheckMs ?? 5000;
    this.maxNamespaces = o.maxNamespaces ?? 256;
    this.now = o.now ?? (() => performance.now());
    if (!Number.isFinite(this.recheckMs) || this.recheckMs < 0) {
      throw new InvalidArgumentError(`UserResolver: recheckMs must be a finite number >= 0, got ${o.recheckMs}`);
    }
    if (!Number.isInteger(this.maxNamespaces) || this.maxNamespaces < 1) {
      throw new InvalidArgumentError(`UserResolver: maxNamespaces must be an integer >= 1, got ${o.maxNamespaces}`);
    }
    this.host = { host: true, mntns: 0, pid: 1, passwd: newFile(), group: newFile() };
  }

  /** The user name of `uid` as seen by the process in `ctx` (the host's when ctx is absent). */
  userName(uid: number, ctx?: NameContext): string | undefined {
    return this.lookup('passwd', uid, ctx);
  }

  /**
   * The user name of a cached process: its real uid, resolved in the process's own mount namespace when that
   * is known (a container's /etc/passwd), else on the host. Undefined when its credentials are not known.
   */
  processUserName(e: Pick<ProcessEntry, 'pid' | 'creds' | 'ns'>): string | undefined {
    return e.creds ? this.userName(e.creds.uid, e.ns && e.ns.mntns ? { pid: e.pid, mntns: e.ns.mntns } : undefined) : undefined;
  }

  /** The group name of `gid` as seen by the process in `ctx` (the host's when ctx is absent). */
  groupName(gid: number, ctx?: NameContext): string | undefined {
    return this.lookup('group', gid, ctx);
  }

  stats(): UserResolverStats {
    return { ...this.st, namespaces: this.containers.size };
  }

  private lookup(db: DbName, id: number, ctx: NameContext | undefined): string | undefined {
    this.st.lookups++;
    const scope = this.scopeOf(ctx);
    const file = scope[db];
    if (this.now() - file.checkedAt >= this.recheckMs) this.refresh(scope, db, file);
    let name = file.names?.get(id);
    if (name === undefined && id === 0 && file.names === undefined) name = 'root';
    if (name !== undefined) this.st.hits++;
    return name;
  }

  /** The host scope, or the cached scope of ctx's mount namespace (LRU). mntns 0 means unknown: the host. */
  private scopeOf(ctx: NameContext | undefined): Scope {
    if (ctx === undefined || !ctx.mntns) return this.host;
    if (ctx.mntns === this.hostNs()) return this.host;
    let s = this.containers.get(ctx.mntns);
    if (s !== undefined) {
      this.containers.delete(ctx.mntns); // re-insert: Map order is the LRU order
    } else {
      s = { host: false, mntns: ctx.mntns, pid: ctx.pid, passwd: newFile(), group: newFile() };
      if (this.containers.size >= this.maxNamespaces) {
        this.containers.delete(this.containers.keys().next().value!);
      }
    }
    s.pid = ctx.pid; // the most recent process is the one most likely still alive
    this.containers.set(ctx.mntns, s);
    return s;
  }

  /** The host's mount namespace: init's, or ours when init's cannot be read (not root). Read once. */
  private hostNs(): number | undefined {
    if (!this.hostMntnsRead) {
      this.hostMntnsRead = true;
      this.hostMntns = readMntns(path.join(this.procRoot, '1')) ?? readMntns(path.join(this.procRoot, 'self'));
    }
    return this.hostMntns;
  }

  /** Re-stats the file and reparses it when it changed. Keeps the old names when the way in is gone. */
  private refresh(scope: Scope, db: DbName, file: IdFile): void {
    file.checkedAt = this.now();
    const p = this.pathOf(scope, db);
    // The pid left the namespace (exited, or was reused): keep what we had; the next lookup brings a new pid.
    if (p === undefined) return;
    let st: fs.BigIntStats | undefined;
    try {
      // In a container, the file itself must not be a symlink: absolute targets would resolve on the host.
      st = scope.host ? fs.statSync(p, { bigint: true, throwIfNoEntry: false }) : fs.lstatSync(p, { bigint: true, throwIfNoEntry: false });
    } catch (e) {
      if (!ABSENT.has((e as NodeJS.ErrnoException).code ?? '')) this.st.errors++;
      st = undefined;
    }
    if (st === undefined) {
      file.names = undefined;
      file.sig = '';
      return;
    }
    if (sigOf(st) === file.sig) return;
    const r = readSmallFile(p, !scope.host);
    if (typeof r === 'string') {
      // 'absent' races with a delete between stat and open.
      if (r !== 'absent') this.st.errors++;
      file.names = undefined;
      file.sig = '';
      return;
    }
    file.names = parseIds(bytesToString(r.data, 0, r.data.length), FIELDS[db], () => this.st.malformed++);
    file.sig = r.sig;
    this.st.reloads++;
  }

  /** Path of a scope's file, or undefined when no process is known to be in the namespace any more. */
  private pathOf(scope: Scope, db: DbName): string | undefined {
    if (scope.host) return path.join(this.hostRoot, 'etc', db);
    const base = path.join(this.procRoot, String(scope.pid));
    // pids are reused: make sure this pid still lives in the namespace before reading through its root.
    if (!Number.isInteger(scope.pid) || scope.pid <= 0 || readMntns(base) !== scope.mntns) return undefined;
    const etc = path.join(base, 'root', 'etc');
    try {
      const st = fs.lstatSync(etc, { throwIfNoEntry: false });
      if (st?.isSymbolicLink()) {
        this.st.errors++;
        return undefined;
      }
    } catch (e) {
      if (!ABSENT.has((e as NodeJS.ErrnoException).code ?? '')) this.st.errors++;
      return undefined;
    }
    return path.join(etc, db);
  }
}

/** The mount namespace inode of <procDir>/ns/mnt ("mnt:[4026531841]"), or undefined. */
function readMntns(procDir: string): number | undefined {
  try {
    const m = /^mnt:\[(\d+)\]$/.exec(fs.readlinkSync(path.join(procDir, 'ns', 'mnt')));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function sigOf(st: fs.BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/**
 * Reads a regular file of at most MAX_FILE_BYTES. O_NONBLOCK makes opening a FIFO return at once (fstat then
 * refuses it) and O_NOFOLLOW refuses a symlink. Returns the bytes and the signature of what was read, or
 * 'absent' / a reason.
 */
function readSmallFile(p: string, noFollow: boolean): { data: Uint8Array; sig: string } | string {
  let fd: number | undefined;
  try {
    fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | (noFollow ? fs.constants.O_NOFOLLOW : 0));
    const st = fs.fstatSync(fd, { bigint: true });
    if (!st.isFile()) return 'not a regular file';
    if (st.size > BigInt(MAX_FILE_BYTES)) return 'too large';
    const size = Number(st.size);
    const buf = new Uint8Array(size);
    let off = 0;
    while (off < size) {
      const n = fs.readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return { data: buf.subarray(0, off), sig: sigOf(st) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    return ABSENT.has(code) ? 'absent' : code || String(e);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Parses passwd (7 fields) or group (4 fields) text into id -> name. Comments, blank lines and NIS compat
 * entries ("+", "-") are skipped; lines with too few fields, a bad name or a bad id are skipped and reported
 * to `malformed`. The first entry for an id wins, as with getpwuid(3).
 */
export function parseIds(text: string, fields: number, malformed: () => void = () => {}): Map<number, string> {
  const names = new Map<number, string>();
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    let line = text.slice(start, end);
    start = end + 1;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    const t = line.trimStart();
    if (t === '' || t[0] === '#') continue;
    if (line[0] === '+' || line[0] === '-') continue;
    const parts = line.split(':');
    if (parts.length < fields) {
      malformed();
      continue;
    }
    const name = parts[0]!;
    const idText = parts[2]!;
    const id = Number(idText);
    // 4294967295 is (uid_t)-1, "no id"; it never names an account.
    if (!NAME_RE.test(name) || !ID_RE.test(idText) || id > 0xfffffffe) {
      malformed();
      continue;
    }
    if (!names.has(id)) names.set(id, name);
  }
  return names;
}

// Character device majors of terminals (Documentation/admin-guide/devices.txt).
const PTS_FIRST = 136;
const PTS_LAST = 143;
const BSD_PTY_SUFFIX1 = 'pqrstuvwxyzabcde';

/**
 * The terminal name of a tty_nr from /proc/<pid>/stat (the userspace dev_t encoding: minor bits 0-7 and
 * 20-31, major bits 8-19): "pts/3", "tty1", "ttyS0", "console", ... undefined for 0 (no terminal) and for
 * majors it does not know (dynamically allocated ones differ between machines).
 */
export function ttyNameFromDev(ttyNr: number): string | undefined {
  if (!Number.isFinite(ttyNr)) return undefined;
  const dev = ttyNr >>> 0; // the kernel prints it as a signed int
  if (dev === 0) return undefined;
  const major = (dev >>> 8) & 0xfff;
  const minor = (dev & 0xff) | ((dev >>> 12) & 0xfff00);
  // Modern kernels number every pts under major 136 with 20-bit minors; the 8-bit era spread them over
  // 136-143. (major - 136) * 256 + minor gives the same index for both.
  if (major >= PTS_FIRST && major <= PTS_LAST) return `pts/${(major - PTS_FIRST) * 256 + minor}`;
  switch (major) {
    case 4: // virtual consoles below 64, 8250 serial ports above
      return minor < 64 ? `tty${minor}` : minor < 256 ? `ttyS${minor - 64}` : undefined;
    case 5:
      return ['tty', 'console', 'ptmx', 'ttyprintk'][minor];
    case 3: // BSD pty slaves and masters
    case 2:
      return minor < 256 ? `${major === 3 ? 'tty' : 'pty'}${BSD_PTY_SUFFIX1[minor >> 4]}${(minor & 15).toString(16)}` : undefined;
    case 166:
      return `ttyACM${minor}`;
    case 188:
      return `ttyUSB${minor}`;
    case 204: // ARM AMBA PL011 serial ports start at minor 64
      return minor >= 64 && minor < 64 + 14 ? `ttyAMA${minor - 64}` : undefined;
    case 229:
      return `hvc${minor}`;
    default:
      return undefined;
  }
}
