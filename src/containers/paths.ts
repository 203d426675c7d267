// Paths across mount namespaces. A path a containerized process sees ("/etc/passwd") names a different file
// than the same path on the host. Two host-side names exist for it: /proc/<pid>/root/<path> (valid while
// a process of the container lives) and, for a container whose root is a mount the host can also see (an
// overlay or bind mount, as with every OCI runtime), the path under that mount's host mount point.
import fs from 'node:fs';
import { PermissionError, VigilError } from '../bpf/errors.ts';

export interface ResolvedPath {
  /** The path as the process sees it. */
  path: string;
  /** Same file through the process's root: /proc/<pid>/root<path>. */
  viaProc: string;
  /** Same file in the host's mount namespace, when the container's root mount is visible there. */
  hostPath: string | undefined;
  /** The process is in the host's mount namespace: path is already a host path. */
  hostNamespace: boolean;
}

interface MountInfo {
  mountId: number;
  parentId: number;
  dev: string;
  root: string;
  mountPoint: string;
  fstype: string;
  source: string;
}

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Parses /proc/<pid>/mountinfo. */
export function parseMountinfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const f = pre.split(' ');
    const g = post.split(' ');
    out.push({ mountId: Number(f[0]), parentId: Number(f[1]), dev: f[2]!, root: unescape(f[3]!), mountPoint: unescape(f[4]!), fstype: g[0]!, source: unescape(g[1] ?? '') });
  }
  return out;
}

function nsInode(link: string): string | undefined {
  return /\[(\d+)\]$/.exec(link)?.[1];
}

function readNs(procRoot: string, pid: number | 'self' | 1): string {
  try {
    return nsInode(fs.readlinkSync(`${procRoot}/${pid}/ns/mnt`)) ?? '';
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EACCES' || e.code === 'EPERM') throw new PermissionError(`read the mount namespace of pid ${pid}`, 'CAP_SYS_PTRACE (or run as root)', { cause: err });
    if (e.code === 'ENOENT') throw new VigilError('ENOTFOUND', `no process ${pid}: it exited, so its mount namespace is gone`);
    throw err;
  }
}

/**
 * The host's mount namespace: /proc/1/ns/mnt, or our own when pid 1's is unreadable (some sandboxes hide it
 * even from root; the agent runs in the host namespace anyway).
 */
export function hostMountNamespace(procRoot = '/proc'): string {
  try {
    return readNs(procRoot, 1);
  } catch {
    return readNs(procRoot, 'self');
  }
}

/**
 * Resolves `path` as process `pid` sees it. Throws PermissionError naming the capability when /proc/<pid>
 * cannot be read, VigilError ENOTFOUND when the process is gone, InvalidArgument-like VigilError for a
 * relative path.
 */
export function resolveContainerPath(pid: number, path: string, procRoot = '/proc'): ResolvedPath {
  if (!path.startsWith('/')) throw new VigilError('EINVAL', `path "${path}" is relative; give the absolute path the process sees`);
  const norm = path.replace(/\/+/g, '/');
  const ns = readNs(procRoot, pid);
  const hostNs = hostMountNamespace(procRoot);
  const viaProc = `${procRoot}/${pid}/root${norm}`;
  if (ns === hostNs) return { path: norm, viaProc, hostPath: norm, hostNamespace: true };
  let hostPath: string | undefined;
  try {
    // The container's root mount, as the container sees it ...
    const mine = parseMountinfo(fs.readFileSync(`${procRoot}/${pid}/mountinfo`, 'utf8'));
    const candidates = mine.filter((m) => m.mountPoint === '/' || norm === m.mountPoint || norm.startsWith(`${m.mountPoint}/`));
    const best = candidates.sort((a, b) => b.mountPoint.length - a.mountPoint.length)[0];
    if (best) {
      // ... and the same mount (same device and root) in the host namespace.
      const host = parseMountinfo(fs.readFileSync(`${procRoot}/self/mountinfo`, 'utf8'));
      const twin = host.find((m) => m.dev === best.dev && m.root === best.root && m.fstype === best.fstype && (best.fstype !== 'overlay' || m.source === best.source));
      if (twin) {
        const rest = best.mountPoint === '/' ? norm : norm.slice(best.mountPoint.length);
        hostPath = `${twin.mountPoint === '/' ? '' : twin.mountPoint}${rest || '/'}`;
      }
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EACCES' || e.code === 'EPERM') throw new PermissionError(`read the mounts of pid ${pid}`, 'CAP_SYS_PTRACE (or run as root)', { cause: err });
  }
  return { path: norm, viaProc, hostPath, hostNamespace: false };
}
