// Whether a process's executable is the host's own file: the file the host has at the executable's path, the
// same device and inode. A container's file of that path (its own /usr/sbin/runc), or a program copied and
// named after a host binary, is not. The detection rules use it (process.hostExe) to tell a container
// runtime's own work in a container (runc mounting its file systems) from a look-alike inside it. A mount
// namespace would not do: runtimes often run in one of their own (systemd's PrivateTmp, the tests' unshare),
// and still run the host's binary.
import fs from 'node:fs';
import path from 'node:path';
import { kernelDev } from './procfs.ts';
import type { ProcessEntry } from './types.ts';

export interface HostFilesOptions {
  /**
   * The host's root directory. Default: /proc/1/root when it can be read (right even when the agent runs in a
   * container that sees the host's processes), else /.
   */
  root?: string;
  /** How long an answer for a path is kept. Default 5000 ms: a package upgrade replaces a binary's inode. */
  ttlMs?: number;
  /** Paths kept at most (the oldest go first). Default 1024. */
  max?: number;
  now?: () => number;
}

interface Entry {
  /** Kernel dev_t (major << 20 | minor, as exec events carry it) and inode; undefined: no such file. */
  dev: number | undefined;
  ino: number | undefined;
  at: number;
}

/** Looks up executables' paths on the host, a stat per path and TTL (the enricher asks once per exec image). */
export class HostFiles {
  readonly #root: string;
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #now: () => number;
  readonly #seen = new Map<string, Entry>();

  constructor(o: HostFilesOptions = {}) {
    this.#root = o.root ?? defaultRoot();
    this.#ttlMs = o.ttlMs ?? 5000;
    this.#max = o.max ?? 1024;
    this.#now = o.now ?? Date.now;
  }

  /**
   * True when the host has, at `exePath` (absolute), the file of device `dev` (kernel encoding) and inode
   * `ino`. False for anything else: another file there, none, a path that is not absolute, or one that
   * does not name a file (" (deleted)", memfd).
   */
  isHostFile(exePath: string, dev: number, ino: number): boolean {
    if (!path.isAbsolute(exePath) || exePath.includes('\0')) return false;
    const now = this.#now();
    let e = this.#seen.get(exePath);
    if (!e || now - e.at >= this.#ttlMs) {
      e = this.#stat(exePath, now);
      this.#seen.delete(exePath); // re-inserted last: the Map's order is the age order
      if (this.#seen.size >= this.#max) this.#seen.delete(this.#seen.keys().next().value!);
      this.#seen.set(exePath, e);
    }
    return e.dev === dev && e.ino === ino;
  }

  /**
   * isHostFile for a cached process's executable; undefined when its image does not say which file it is (a
   * path, device or inode unknown).
   */
  hostExeOf(e: ProcessEntry): boolean | undefined {
    const { exePath, exeDev, exeIno } = e.image;
    return exePath !== undefined && exeDev !== undefined && exeIno !== undefined ? this.isHostFile(exePath, exeDev, exeIno) : undefined;
  }

  #stat(exePath: string, at: number): Entry {
    try {
      const st = fs.statSync(path.join(this.#root, exePath), { bigint: true });
      if (st.isFile()) return { dev: kernelDev(Number(st.dev)), ino: Number(st.ino), at };
    } catch {
      // no such file on the host (or not reachable): not a host file
    }
    return { dev: undefined, ino: undefined, at };
  }
}

function defaultRoot(): string {
  try {
    fs.statSync('/proc/1/root/');
    return '/proc/1/root';
  } catch {
    return '/';
  }
}
