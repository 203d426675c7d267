// Paths across mount namespaces. A path a containerized (or chrooted) process sees ("/etc/passwd") names a
// different file than the same path on the host. This resolves it, without entering the namespace, to the
// same file through /proc/<pid>/root (valid while the process lives) and, when the host can see the mount the
// file is on (the overlay or bind mount of every OCI runtime), to its path in the host's mount namespace,
// which is pid 1's (/proc/1/ns/mnt). Symlinks are followed inside the process's root, as the process would.
import fs from 'node:fs';
import { InvalidArgumentError, PermissionError, VigilError } from '../bpf/errors.ts';

export interface ResolvedPath {
  /** The path as the process sees it, normalised ("//a/./b" -> "/a/b"). */
  path: string;
  /** The same path with its symlinks followed inside the process's root (an absolute link stays in it). */
  resolved: string;
  /** The same file through the process's root: /proc/<pid>/root<resolved>. Valid while the process lives. */
  viaProc: string;
  /**
   * The same file in the host's mount namespace, when a mount of the host shows it (checked: the host path
   * and viaProc name the same inode, or, for a file that does not exist yet, the same nearest directory).
   * Undefined when the host cannot see it (a tmpfs private to the container, a mount the host does not have).
   */
  hostPath: string | undefined;
  /** The process is in the host's mount namespace with the host's root: `path` is already a host path. */
  hostNamespace: boolean;
  /** Mount namespace inodes: the process's, and the host's (pid 1's). */
  mountNs: number;
  hostMountNs: number;
}

export interface MountInfo {
  mountId: number;
  parentId: number;
  /** "major:minor" of the filesystem. */
  dev: string;
  /** The directory of the filesystem that is mounted here ("/" for a whole filesystem, a subdir for a bind mount). */
  root: string;
  mountPoint: string;
  fstype: string;
  source: string;
  /** The filesystem's options, as mountinfo shows them (still escaped: a comma inside a value is \054). */
  superOptions: string;
}

/** Symlinks followed while resolving one path (the kernel's MAXSYMLINKS). */
const MAX_LINKS = 40;

/** mountinfo's octal escapes (space, tab, newline, backslash; in options, the comma too). */
export const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Parses /proc/<pid>/mountinfo. Malformed lines are skipped. */
export function parseMountinfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const f = line.slice(0, sep).split(' ');
    const g = line.slice(sep + 3).split(' ');
    if (f.length < 5 || !g[0]) continue;
    out.push({ mountId: Number(f[0]), parentId: Number(f[1]), dev: f[2]!, root: unescape(f[3]!), mountPoint: unescape(f[4]!), fstype: g[0], source: unescape(g[1] ?? ''), superOptions: g[2] ?? '' });
  }
  return out;
}

const errCode = (err: unknown) => (err as NodeJS.ErrnoException).code;
const denied = (err: unknown) => errCode(err) === 'EACCES' || errCode(err) === 'EPERM';

function gone(pid: number, cause?: unknown): VigilError {
  return new VigilError('ESRCH', `process ${pid} has exited: its mount namespace and root are gone; resolve paths while a process of that container still runs`, { cause });
}

/** Whether /proc/<pid> is a zombie (exited, not reaped): its namespaces are already released. */
function isZombie(procRoot: string, pid: number): boolean {
  try {
    const stat = fs.readFileSync(`${procRoot}/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

/** The mount namespace inode of a process. Throws PermissionError (CAP_SYS_PTRACE), or ESRCH when it exited. */
function readNs(procRoot: string, pid: number | 'self'): number {
  try {
    const m = /\[(\d+)\]$/.exec(fs.readlinkSync(`${procRoot}/${pid}/ns/mnt`));
    if (!m) throw new VigilError('EINVAL', `${procRoot}/${pid}/ns/mnt is not a namespace link`);
    return Number(m[1]);
  } catch (err) {
    if (err instanceof VigilError) throw err;
    if (denied(err)) {
      throw new PermissionError(
        `read the mount namespace of pid ${pid} (${procRoot}/${pid}/ns/mnt; a process whose capabilities exceed ours, or another user's, needs ptrace access)`,
        'CAP_SYS_PTRACE',
        { cause: err },
      );
    }
    if (errCode(err) === 'ENOENT' && pid !== 'self') throw gone(pid, err);
    throw err;
  }
}

/** Mount ids of a process's namespace (they are unique machine-wide: a new namespace gets new ids). */
function mountIds(procRoot: string, pid: number | 'self'): string | undefined {
  try {
    return parseMountinfo(fs.readFileSync(`${procRoot}/${pid}/mountinfo`, 'utf8'))
      .map((m) => m.mountId)
      .sort((a, b) => a - b)
      .join(',');
  } catch {
    return undefined;
  }
}

/**
 * The host's mount namespace: pid 1's (/proc/1/ns/mnt). Where pid 1's namespace link is out of reach (no
 * CAP_SYS_PTRACE, or a sandbox such as Landlock that hides processes outside it even from root) but its
 * mountinfo shows the very mounts ours does, we share its namespace and ours is the answer. Otherwise throws
 * the PermissionError naming CAP_SYS_PTRACE: without it no answer about "the host" could be trusted.
 */
export function hostMountNamespace(procRoot = '/proc'): number {
  try {
    return readNs(procRoot, 1);
  } catch (err) {
    if (!(err instanceof PermissionError)) throw err;
    const theirs = mountIds(procRoot, 1);
    if (theirs !== undefined && theirs === mountIds(procRoot, 'self')) return readNs(procRoot, 'self');
    throw err;
  }
}

function readMountinfo(procRoot: string, pid: number, what: string): MountInfo[] {
  try {
    return parseMountinfo(fs.readFileSync(`${procRoot}/${pid}/mountinfo`, 'utf8'));
  } catch (err) {
    if (denied(err)) throw new PermissionError(`read the mounts of ${what} (${procRoot}/${pid}/mountinfo)`, 'CAP_SYS_PTRACE', { cause: err });
    if (errCode(err) === 'ENOENT' || errCode(err) === 'EINVAL') throw gone(pid, err);
    throw err;
  }
}

/** "/a/./b/../c" -> ["a", "c"] (lexical: only for parts already known to hold no symlink). */
function lexical(parts: string[], into: string[] = []): string[] {
  for (const c of parts) {
    if (c === '' || c === '.') continue;
    if (c === '..') into.pop();
    else into.push(c);
  }
  return into;
}

/**
 * Follows `path`'s symlinks inside the root at `rootDir` (/proc/<pid>/root): an absolute link target starts
 * again at that root and ".." stops at it, as for the process itself. A missing component ends the walk:
 * the rest is kept lexically (the file may not exist yet).
 */
function resolveInRoot(rootDir: string, path: string, pid: number): string {
  const todo = path.split('/').reverse();
  const out: string[] = [];
  let links = 0;
  while (todo.length) {
    const c = todo.pop()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      out.pop();
      continue;
    }
    out.push(c);
    const at = `${rootDir}/${out.join('/')}`;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(at);
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return `/${lexical(todo.reverse(), out).join('/')}`;
      if (denied(err)) {
        // The root link itself needs ptrace access; a directory inside it, search permission.
        if (out.length === 1 && isRootDenied(rootDir)) throw new PermissionError(`follow the root of pid ${pid} (${rootDir})`, 'CAP_SYS_PTRACE', { cause: err });
        throw new PermissionError(`search ${path} inside the root of pid ${pid} (at /${out.join('/')})`, 'CAP_DAC_READ_SEARCH', { cause: err });
      }
      throw err;
    }
    if (!st.isSymbolicLink()) continue;
    if (++links > MAX_LINKS) throw new VigilError('ELOOP', `too many symbolic links resolving ${path} inside the root of pid ${pid}`);
    const target = fs.readlinkSync(at);
    out.pop();
    if (target.startsWith('/')) out.length = 0;
    todo.push(...target.split('/').reverse());
  }
  return `/${out.join('/')}`;
}

function isRootDenied(rootDir: string): boolean {
  try {
    fs.readlinkSync(rootDir);
    return false;
  } catch (err) {
    return denied(err);
  }
}

/** dev:ino of a path, or of its nearest existing ancestor (with how many levels up that is). */
function identity(p: string): { key: string; up: number } | undefined {
  let cur = p;
  for (let up = 0; ; up++) {
    try {
      const st = fs.statSync(cur, { bigint: true });
      return { key: `${st.dev}:${st.ino}`, up };
    } catch (err) {
      const code = errCode(err);
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || cur === '/' || !cur.includes('/')) return undefined;
      const i = cur.lastIndexOf('/');
      cur = i <= 0 ? '/' : cur.slice(0, i);
    }
  }
}

/** Whether `p` is `dir` or below it. */
const under = (p: string, dir: string) => dir === '/' || p === dir || p.startsWith(`${dir}/`);

/**
 * The mount `path` (absolute, symlinks followed) is on in a mount table: the longest mount point containing
 * it, among equals the later one (mounted over the earlier); and the path below that mount point ("/x" of
 * "/mnt/x" on "/mnt"). Undefined when no mount contains it.
 */
export function mountOf(mounts: readonly MountInfo[], path: string): { mount: MountInfo; rest: string } | undefined {
  let best: MountInfo | undefined;
  for (const m of mounts) if (under(path, m.mountPoint) && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  return best && { mount: best, rest: best.mountPoint === '/' ? path : path.slice(best.mountPoint.length) };
}

/**
 * The host path of container path `resolved` (symlinks already followed): the mount it is on in the process's
 * namespace, the host mounts of the same filesystem whose root contains that mount's root, and the first of
 * them under which the host really sees the same file (a host path could be overmounted). `hostRoot` is how
 * this process reaches host paths ("" in the host namespace, "/proc/1/root" from another).
 */
function hostPathOf(mine: MountInfo[], host: MountInfo[], resolved: string, viaProc: string, hostRoot: string): string | undefined {
  const on = mountOf(mine, resolved);
  if (!on) return undefined;
  const { mount: best, rest } = on;
  const want = identity(viaProc);
  const candidates = host.filter((m) => m.dev === best.dev && under(best.root, m.root)).sort((a, b) => b.root.length - a.root.length);
  for (const m of candidates) {
    const inFs = best.root.slice(m.root === '/' ? 0 : m.root.length); // the container mount's root, below m's root
    const p = `${m.mountPoint === '/' ? '' : m.mountPoint}${inFs === '/' ? '' : inFs}${rest}` || '/';
    const got = identity(`${hostRoot}${p}`);
    if (want && got && got.key === want.key && got.up === want.up) return p.replace(/\/+$/, '') || '/';
  }
  return undefined;
}

/**
 * Resolves `path` as process `pid` sees it, to the same file through /proc/<pid>/root and in the host's
 * mount namespace. Throws InvalidArgumentError for a relative path or a bad pid; PermissionError naming the
 * capability (CAP_SYS_PTRACE to read another process's namespace, root and mounts; CAP_DAC_READ_SEARCH to
 * search its directories); VigilError ESRCH when the process has exited (or is a zombie); ELOOP for a
 * symlink loop.
 */
export function resolveContainerPath(pid: number, path: string, procRoot = '/proc'): ResolvedPath {
  if (!Number.isInteger(pid) || pid <= 0) throw new InvalidArgumentError(`pid must be a positive integer, got ${pid}`);
  if (typeof path !== 'string' || !path.startsWith('/')) throw new InvalidArgumentError(`path "${path}" is relative; give the absolute path the process sees`);
  if (path.includes('\0')) throw new InvalidArgumentError('path contains a NUL byte');
  const norm = `/${lexical(path.split('/')).join('/')}`;
  const ns = readNs(procRoot, pid);
  if (isZombie(procRoot, pid)) throw gone(pid);
  const hostNs = hostMountNamespace(procRoot);
  const rootDir = `${procRoot}/${pid}/root`;
  // Where the process's root is, seen from here: "/" unless it is chrooted within our namespace.
  let rootLink: string;
  try {
    rootLink = fs.readlinkSync(rootDir);
  } catch (err) {
    if (denied(err)) throw new PermissionError(`follow the root of pid ${pid} (${rootDir})`, 'CAP_SYS_PTRACE', { cause: err });
    throw gone(pid, err);
  }
  const resolved = resolveInRoot(rootDir, norm, pid);
  const viaProc = `${rootDir}${resolved === '/' ? '' : resolved}`;
  const selfNs = readNs(procRoot, 'self');
  const hostRoot = selfNs === hostNs ? '' : `${procRoot}/1/root`;
  const base = { path: norm, resolved, viaProc, mountNs: ns, hostMountNs: hostNs };
  if (ns === hostNs && rootLink === '/') return { ...base, hostPath: resolved, hostNamespace: true };
  if (ns === hostNs && hostRoot === '') {
    // Chrooted in the host's namespace: its root link is a host path, and mounts outside its root are not
    // in its mountinfo at all.
    const p = `${rootLink}${resolved === '/' ? '' : resolved}`;
    const want = identity(viaProc);
    const got = identity(p);
    return { ...base, hostPath: want && got && want.key === got.key && want.up === got.up ? p : undefined, hostNamespace: false };
  }
  const mine = readMountinfo(procRoot, pid, `pid ${pid}`);
  const host = readMountinfo(procRoot, 1, 'the host (pid 1)');
  return { ...base, hostPath: hostPathOf(mine, host, resolved, viaProc, hostRoot), hostNamespace: false };
}
