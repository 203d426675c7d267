// Whether a running process's executable has a copy in its overlay's upper layer, told from /proc: what the
// exec sensor reads from the overlay inode (exe_in_upper_layer in process.bpf.c), for processes the agent
// never saw exec (the start-up snapshot, the eBPF-less mode). An executable written, or copied up, inside a
// container after its image was unpacked is drift (Falco's proc.is_exe_upper_layer).
//
// The overlay's upper directory is in its mount options (mountinfo's super options, `upperdir=`), a path in
// the namespace of whoever mounted it (the container runtime: the host's). The executable is in the upper
// layer when that directory holds a file at its path below the mount.
import fs from 'node:fs';
import { mountOf, parseMountinfo, unescape, type MountInfo } from '../containers/paths.ts';
import { hostRoot } from '../syscalls/secret-dirs.ts';

/** statfs(2)'s f_type of overlayfs. */
const OVERLAYFS_SUPER_MAGIC = 0x794c7630;

/** The `upperdir=` of an overlay's options; undefined for a read-only overlay (lower layers only). */
export function upperDirOf(superOptions: string): string | undefined {
  for (const o of superOptions.split(',')) if (o.startsWith('upperdir=')) return unescape(o.slice(9));
  return undefined;
}

/**
 * Tells whether a process's executable is in its overlay's upper layer. For processes read one after
 * another in one go (a snapshot), `shareMounts` reads each mount namespace's table once; a probe kept longer
 * must not, as mounts change and namespace inodes are reused.
 */
export class UpperLayerProbe {
  readonly #procRoot: string;
  /** How the agent reaches the host's paths: "" in the host's mount namespace, else <proc>/1/root. */
  #hostRoot: string | undefined;
  readonly #mounts: Map<string, MountInfo[]> | undefined;

  constructor(procRoot = '/proc', o: { shareMounts?: boolean } = {}) {
    this.#procRoot = procRoot;
    this.#mounts = o.shareMounts ? new Map() : undefined;
  }

  /**
   * Whether the executable `exePath` of the process `pid` (as /proc/<pid>/exe names it) is in the upper layer
   * of the overlay it is on: false when it is on no overlay, or on one without an upper layer; undefined
   * when that cannot be read (the process exited, no permission, a deleted executable).
   */
  exeInUpperLayer(pid: number, exePath: string): boolean | undefined {
    const root = `${this.#procRoot}/${pid}`;
    if (!exePath.startsWith('/') || exePath.endsWith(' (deleted)')) return undefined;
    try {
      if (fs.statfsSync(`${root}/exe`).type !== OVERLAYFS_SUPER_MAGIC) return false;
      const ns = this.#mounts && fs.readlinkSync(`${root}/ns/mnt`);
      let mounts = ns ? this.#mounts!.get(ns) : undefined;
      if (!mounts) {
        mounts = parseMountinfo(fs.readFileSync(`${root}/mountinfo`, 'utf8'));
        if (ns) this.#mounts!.set(ns, mounts);
      }
      const on = mountOf(mounts, exePath);
      if (!on || on.mount.fstype !== 'overlay') return undefined; // the file is an overlay's, the path's mount is not: moved since
      const { mount: m, rest: below } = on;
      const upper = upperDirOf(m.superOptions);
      if (upper === undefined) return false;
      const rootOfMount = m.root === '/' ? '' : m.root; // a bind mount of a directory inside the overlay
      const upperDir = `${(this.#hostRoot ??= hostRoot(this.#procRoot))}${upper}`;
      const st = fs.lstatSync(`${upperDir}${rootOfMount}${below}`, { throwIfNoEntry: false });
      // No such file: not in the upper layer, if the agent can see the upper layer at all. An upper directory
      // it cannot reach (a rootless runtime's, in a mount namespace of its own; the agent in a container
      // without the host's root) says nothing: unknown, not "not drift".
      if (st === undefined) return fs.statSync(upperDir, { throwIfNoEntry: false })?.isDirectory() ? false : undefined;
      // A whiteout (a 0:0 character device) is a file removed in the upper layer, not a copy of it.
      return !(st.isCharacterDevice() && st.rdev === 0);
    } catch {
      return undefined;
    }
  }
}
