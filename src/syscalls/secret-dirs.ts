// The secret prefixes' directories, for the kernel's second look at a read-only open (sys_config's
// secret_dir_ino and map sys_secret_dirs; secret_dir_gate in bpf/syscalls.bpf.c). A read-only open of an
// absolute path is matched against the secret prefixes as given, so `ln -s /etc/shadow /tmp/x; cat /tmp/x`
// (or /etc/../etc/shadow, //etc/shadow, /proc/self/root/etc/shadow) started no prefix and went unreported.
// Resolving every open costs a dentry walk each; instead the kernel compares the opened file's directory with
// these by inode number, and resolves only the files of these directories whose names the heads allow. The
// directories are the host's (hostRoot), found when the configuration is applied.
import { Buffer } from 'node:buffer';
import fs from 'node:fs';
import path from 'node:path';
import { SIZEOF, SYSCALL_FILTER_CONFIG, SYSCALL_SECRET_DIR } from '../events/layout.generated.ts';

/** File-name heads per directory (VIGIL_SECRET_DIR_HEADS); a directory with more takes every entry. */
export const SECRET_DIR_HEADS = SYSCALL_SECRET_DIR.head.count;
/** Bytes of a name head: the kernel compares the first 8 bytes of the opened file's name. */
const HEAD_BYTES = 8;
/**
 * Directories the kernel compares an open's directory with (VIGIL_SECRET_DIRS_MAX): every read-only open that
 * missed the secret heads pays a compare each. Subdirectories of a directory prefix ("/root/.ssh/") are taken
 * while there is room, after every directory a prefix names itself.
 */
export const MAX_SECRET_DIRS = SYSCALL_FILTER_CONFIG.secret_dir_ino.count;

export interface SecretDir {
  /** The directory, as found (for status and tests). */
  path: string;
  /** Every entry of the directory (a prefix names the directory itself). */
  any: boolean;
  /** File-name prefixes ("shadow" for "/etc/shadow"), when not `any`. */
  names: string[];
}

/**
 * The directories the secret prefixes name, keyed by inode number: for "/etc/shadow" the directory /etc with
 * names starting "shadow"; for "/root/.ssh/" that directory, every entry, and its subdirectories.
 * Directories that do not exist (yet) are left out: a secret there is matched by its path as given only, until
 * the configuration is applied again; so are those past MAX_SECRET_DIRS. `root` is how this process reaches
 * the host's paths (hostRoot).
 */
export function secretDirs(secretPaths: readonly string[], root = hostRoot()): Map<bigint, SecretDir> {
  const out = new Map<bigint, SecretDir>();
  const add = (dir: string, name: string | undefined): boolean => {
    let st: fs.BigIntStats;
    try {
      st = fs.statSync(`${root}${dir}`, { bigint: true });
    } catch {
      return false;
    }
    if (!st.isDirectory() || (!out.has(st.ino) && out.size >= MAX_SECRET_DIRS)) return false;
    const d = out.get(st.ino) ?? out.set(st.ino, { path: dir, any: false, names: [] }).get(st.ino)!;
    if (name === undefined) d.any = true;
    else if (!d.names.includes(name)) d.names.push(name);
    return true;
  };
  const roots: string[] = [];
  for (const p of secretPaths) {
    if (!p.endsWith('/')) {
      add(path.dirname(p), path.basename(p));
      continue;
    }
    const dir = p.replace(/\/+$/, '') || '/';
    if (add(dir, undefined)) roots.push(dir);
  }
  // Then the directory prefixes' subdirectories, breadth first, while there is room.
  const queue = roots.map((dir) => ({ dir, depth: 1 }));
  while (queue.length && out.size < MAX_SECRET_DIRS) {
    const { dir, depth } = queue.shift()!;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(`${root}${dir}`, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const sub = path.join(dir, e.name);
      if (add(sub, undefined) && depth < 4) queue.push({ dir: sub, depth: depth + 1 });
    }
  }
  for (const d of out.values()) if (d.names.length > SECRET_DIR_HEADS) d.any = true;
  return out;
}

/** The bytes of one sys_secret_dirs value (struct syscall_secret_dir). */
export function encodeSecretDir(d: SecretDir): Buffer {
  const F = SYSCALL_SECRET_DIR;
  const b = Buffer.alloc(SIZEOF.syscall_secret_dir);
  b.writeUInt32LE(d.any ? 1 : 0, F.any.offset);
  if (d.any) return b;
  b.writeUInt32LE(d.names.length, F.count.offset);
  d.names.forEach((name, i) => {
    const n = b.write(name, F.head.offset + i * HEAD_BYTES, HEAD_BYTES, 'utf8');
    b.fill(0xff, F.mask.offset + i * HEAD_BYTES, F.mask.offset + i * HEAD_BYTES + n);
  });
  return b;
}

/**
 * How this process reaches the host's paths: "" in the host's mount namespace, else "<proc>/1/root" (an agent
 * in a container with the host's PID namespace): the kernel compares the inodes of the host's directories, and
 * an overlay's upperdir is a host path (process/upper-layer.ts). "" too when the links cannot be read.
 */
export function hostRoot(procRoot = '/proc'): string {
  try {
    return fs.readlinkSync(`${procRoot}/self/ns/mnt`) === fs.readlinkSync(`${procRoot}/1/ns/mnt`) ? '' : `${procRoot}/1/root`;
  } catch {
    return '';
  }
}
