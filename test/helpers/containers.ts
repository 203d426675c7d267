// Real container runtimes for privileged tests: podman, dockerd and containerd (ctr and CRI pods), each in its
// own temp dir with its own config, images built locally from busybox and catatonit (no registry), and a
// cleanup() that stops by PID and removes every container, daemon, child process, cgroup, mount, bridge and
// state dir it made. The start* factories register that cleanup with t.after, so a failing test leaves nothing.
//
// Isolation from the host's own runtimes (see /work/shared/CONTAINERS.md for what runs here):
// - dockerd and containerd run in a private mount namespace with tmpfs over /run, /var/lib and /opt: paths
//   they hardcode (/run/containerd/s shim sockets, /run/docker, /var/lib/cni, /opt/containerd) stay invisible
//   to the host and vanish with the namespace. Their own sockets and state live in the temp dir, visible to tests.
//   ctr runs inside the same namespace (nsenter), because its stdio fifos must be where the shim looks.
// - podman needs no daemon; it gets its own root/runroot/tmp dir, file locks (not /dev/shm/libpod_lock), a runc
//   wrapper with its own --root (not /run/runc), and image imports run with a private /var/lib (podman 4.3 puts
//   its blob-info cache in /var/lib/containers/cache whatever --root says).
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TestContext } from 'node:test';
import { CriClient, type ContainerConfig, type PodSandboxConfig } from '../../src/containers/runtimes/cri.ts';
import { IN_CI, privileged } from './privileged.ts';

const execFileP = promisify(execFile);

export const BUSYBOX_IMAGE = 'localhost/test-busybox:latest';
export const PAUSE_IMAGE = 'localhost/vigil-pause:latest';
/** cgroup v2 hierarchy of this hybrid host; a container's cgroup id is the inode of its dir here. */
export const UNIFIED = '/sys/fs/cgroup/unified';

// ---- gates ---------------------------------------------------------------------------------------------------

const RUNTIME_BINARIES = {
  podman: ['podman', 'conmon', 'runc', 'busybox', 'catatonit', 'unshare'],
  docker: ['dockerd', 'docker', 'containerd', 'containerd-shim-runc-v2', 'runc', 'busybox', 'unshare'],
  containerd: ['containerd', 'ctr', 'containerd-shim-runc-v2', 'runc', 'busybox', 'catatonit', 'unshare', 'nsenter', 'ip'],
} as const;

export type RuntimeKind = keyof typeof RUNTIME_BINARIES;

function onPath(bin: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((d) => {
    try {
      fs.accessSync(path.join(d, bin), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Gate for a test that runs real runtimes: root (privileged()) plus the runtime's binaries. Skips outside CI,
 * fails in CI, like privileged().
 */
export function needsRuntime(t: TestContext, needs: string, ...kinds: RuntimeKind[]): boolean {
  if (!privileged(t, needs)) return false;
  const missing = [...new Set(kinds.flatMap((k) => RUNTIME_BINARIES[k]))].filter((b) => !onPath(b));
  if (missing.length === 0) return true;
  const why = `needs ${needs}: missing ${missing.join(', ')} (make debs-test installs them)`;
  if (IN_CI) assert.fail(`${why}; in CI every privileged test must run`);
  t.skip(why);
  return false;
}

// ---- small process and file helpers -------------------------------------------------------------------------

interface RunOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Runs a command to completion; stdout. Throws with the command and its stderr. */
export async function run(cmd: string, args: string[], o: RunOptions = {}): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { env: o.env ?? process.env, timeout: o.timeoutMs ?? 120_000, maxBuffer: 64 << 20, encoding: 'utf8' });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`, { cause: err });
  }
}

/** Polls cond until true; fails with `what` (and `detail()`, e.g. a daemon's log) after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 60_000, detail?: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${detail ? `\n${detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function hex(bytes: number): string {
  return crypto.randomBytes(bytes).toString('hex');
}

/** GET over a unix socket; the status and body, or undefined when nothing answers. */
function unixGet(socketPath: string, urlPath: string): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: urlPath, timeout: 2_000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

// ---- /proc: processes by what they reference, never by name -------------------------------------------------

function allPids(): number[] {
  return fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);
}

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** A live process (not a zombie waiting to be reaped, which holds nothing). */
function alive(pid: number): boolean {
  const stat = read(`/proc/${pid}/stat`);
  if (stat === undefined) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/** Live processes whose command line mentions `text` (a unique temp dir: only what a fixture started). */
export function pidsReferencing(text: string): number[] {
  return allPids().filter((p) => p !== process.pid && (read(`/proc/${p}/cmdline`) ?? '').replaceAll('\0', ' ').includes(text) && alive(p));
}

function mountNsOf(pid: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return undefined;
  }
}

function pidsInMountNs(ns: string): number[] {
  return allPids().filter((p) => p !== process.pid && mountNsOf(p) === ns && alive(p));
}

async function killAndWait(pids: number[], what: string, graceMs = 10_000): Promise<void> {
  const signal = (sig: NodeJS.Signals, p: number) => {
    try {
      process.kill(p, sig);
    } catch {
      // already gone
    }
  };
  pids.forEach((p) => signal('SIGTERM', p));
  try {
    await until(() => pids.every((p) => !alive(p)), `${what} to exit`, graceMs);
  } catch {
    pids.filter(alive).forEach((p) => signal('SIGKILL', p));
    await until(() => pids.every((p) => !alive(p)), `${what} to die after SIGKILL`, 10_000);
  }
}

/** Stops a daemon we spawned: SIGTERM, then SIGKILL; resolves once it has exited (and been reaped). */
async function stopChild(child: ChildProcess | undefined, graceMs = 20_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

// ---- mounts ---------------------------------------------------------------------------------------------------

/** Mount points under dir in this (the host's) mount namespace, deepest first. */
export function mountsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const line of (read('/proc/self/mountinfo') ?? '').split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const target = mp.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (target === dir || target.startsWith(dir + '/')) out.push(target);
  }
  return out.sort((a, b) => b.length - a.length);
}

// ---- cgroups --------------------------------------------------------------------------------------------------

/** Mount points of every cgroup hierarchy (v1 controllers, name=systemd, and the v2 unified one). */
function cgroupRoots(): string[] {
  const roots = new Set<string>();
  for (const line of (read('/proc/self/mountinfo') ?? '').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const fstype = post.split(' ')[0];
    if (fstype === 'cgroup' || fstype === 'cgroup2') roots.add(pre.split(' ')[4]!);
  }
  return [...roots];
}

/** Every directory at and below dir, deepest first. */
function subtree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    out.push(d);
    for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name));
  };
  walk(dir);
  return out.sort((a, b) => b.split('/').length - a.split('/').length);
}

function procsOf(cgroupDir: string): number[] {
  return (read(path.join(cgroupDir, 'cgroup.procs')) ?? '').split('\n').filter(Boolean).map(Number);
}

/**
 * The cgroups a fixture is responsible for, in every hierarchy: subtrees it owns outright (a container's, a
 * pod's, a private containerd namespace's), and shared parents (/docker, /libpod_parent, /kubepods) that it
 * removes only if it created them and they are empty, since another runtime may be using them.
 */
export class CgroupTracker {
  readonly #owned = new Set<string>();
  readonly #createdParents = new Set<string>();

  /** A cgroup path ("/docker/<id>") whose whole subtree belongs to the fixture. Call before creating it. */
  own(cgroupPath: string): void {
    this.expectParents(cgroupPath);
    this.#owned.add(cgroupPath);
  }

  /** Notes which ancestors of cgroupPath do not exist yet (per hierarchy): those the runtime will create. */
  expectParents(cgroupPath: string): void {
    const parts = cgroupPath.split('/').filter(Boolean);
    for (const root of cgroupRoots()) {
      for (let i = 1; i < parts.length; i++) {
        const dir = path.join(root, ...parts.slice(0, i));
        if (!fs.existsSync(dir)) this.#createdParents.add(dir);
      }
    }
  }

  /** Processes still inside owned cgroups. */
  pids(): number[] {
    const out = new Set<number>();
    for (const root of cgroupRoots()) for (const p of this.#owned) for (const d of subtree(path.join(root, p))) procsOf(d).forEach((pid) => out.add(pid));
    return [...out].filter((p) => p !== process.pid);
  }

  /** Removes owned subtrees (killing what is still inside), then the parents the fixture created, if empty. */
  async sweep(): Promise<void> {
    for (const root of cgroupRoots()) {
      for (const p of this.#owned) {
        for (const dir of subtree(path.join(root, p))) {
          await until(() => {
            try {
              fs.rmdirSync(dir);
              return true;
            } catch (err) {
              const code = (err as NodeJS.ErrnoException).code;
              if (code === 'ENOENT') return true;
              // EBUSY: processes are still inside (they are ours: the cgroup is owned); they are being killed.
              procsOf(dir).forEach((pid) => {
                try {
                  process.kill(pid, 'SIGKILL');
                } catch {
                  // gone
                }
              });
              return false;
            }
          }, `removal of cgroup ${dir}`, 15_000);
        }
      }
    }
    const parents = [...this.#createdParents].sort((a, b) => b.split('/').length - a.split('/').length);
    for (const dir of parents) {
      try {
        fs.rmdirSync(dir);
      } catch {
        // ENOTEMPTY/EBUSY: someone else's containers live there now; ENOENT: already gone.
      }
    }
  }

  /** What is still there that should not be: owned cgroup dirs, and created parents left empty. */
  leftovers(): string[] {
    const out: string[] = [];
    for (const root of cgroupRoots()) for (const p of this.#owned) if (fs.existsSync(path.join(root, p))) out.push(`cgroup ${path.join(root, p)}`);
    for (const dir of this.#createdParents) {
      if (!fs.existsSync(dir)) continue;
      const hasChildren = fs.readdirSync(dir, { withFileTypes: true }).some((e) => e.isDirectory());
      if (!hasChildren && procsOf(dir).length === 0) out.push(`empty cgroup ${dir}`);
    }
    return out;
  }
}

/** The cgroup v2 path of a process ("0::<path>" in /proc/<pid>/cgroup), or undefined. */
export function cgroup2PathOf(pid: number): string | undefined {
  return parseProcCgroup(read(`/proc/${pid}/cgroup`) ?? '').get('');
}

/** /proc/<pid>/cgroup text → controller list ("" for v2, "pids", "name=systemd", ...) → path. */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

/** The cgroup2 id of a cgroup path: the inode of its directory in the unified hierarchy. */
export function cgroupId(cgroupPath: string): number {
  return fs.statSync(path.join(UNIFIED, cgroupPath)).ino;
}

// ---- images ---------------------------------------------------------------------------------------------------

const TAR_FLAGS = ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0'];

/** A minimal root filesystem: static busybox with every applet linked. Returns dir. */
export function buildBusyboxRootfs(dir: string): string {
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p));
  if (!busybox) throw new Error('busybox not found (apt-get install busybox-static)');
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.copyFileSync(busybox, path.join(dir, 'bin/busybox'));
  fs.chmodSync(path.join(dir, 'bin/busybox'), 0o755);
  const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) {
    const link = path.join(dir, 'bin', a);
    if (!fs.existsSync(link)) fs.symlinkSync('busybox', link);
  }
  fs.writeFileSync(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.writeFileSync(path.join(dir, 'etc/group'), 'root:x:0:\n');
  return dir;
}

/** The pause image's root: catatonit alone (it reaps and pauses with -P, like Kubernetes' pause). */
export function buildPauseRootfs(dir: string): string {
  const catatonit = ['/usr/bin/catatonit', '/usr/libexec/podman/catatonit'].find((p) => fs.existsSync(p));
  if (!catatonit) throw new Error('catatonit not found (apt-get install catatonit)');
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(catatonit, path.join(dir, 'catatonit'));
  fs.chmodSync(path.join(dir, 'catatonit'), 0o755);
  return dir;
}

/** A deterministic tar of dir's contents (paths relative to dir). Returns out. */
export function tarDirectory(dir: string, out: string): string {
  execFileSync('tar', [...TAR_FLAGS, '-C', dir, '-cf', out, '.']);
  return out;
}

export interface OciImageConfig {
  env?: string[];
  cmd?: string[];
  entrypoint?: string[];
}

/**
 * An OCI image archive (oci-layout, index.json, and manifest, config and layer blobs named by sha256) with one
 * uncompressed layer, as `ctr images import` and `podman load` take it. `ref` goes in the index annotations
 * that name the image. Returns out.
 */
export function buildOciArchive(o: { layerTar: string; ref: string; config: OciImageConfig; out: string }): string {
  const layout = `${o.out}.d`;
  fs.rmSync(layout, { recursive: true, force: true });
  fs.mkdirSync(path.join(layout, 'blobs/sha256'), { recursive: true });
  const blob = (data: Buffer) => {
    const digest = crypto.createHash('sha256').update(data).digest('hex');
    fs.writeFileSync(path.join(layout, 'blobs/sha256', digest), data);
    return { digest: `sha256:${digest}`, size: data.length };
  };
  const layer = blob(fs.readFileSync(o.layerTar));
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const config = blob(
    Buffer.from(
      JSON.stringify({
        architecture: arch,
        os: 'linux',
        config: { ...(o.config.env ? { Env: o.config.env } : {}), ...(o.config.cmd ? { Cmd: o.config.cmd } : {}), ...(o.config.entrypoint ? { Entrypoint: o.config.entrypoint } : {}) },
        rootfs: { type: 'layers', diff_ids: [layer.digest] },
        history: [{ created_by: 'vigil test helper' }],
      }),
    ),
  );
  const manifest = blob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
      }),
    ),
  );
  const tag = o.ref.slice(o.ref.lastIndexOf(':') + 1);
  fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          platform: { architecture: arch, os: 'linux' },
          // containerd names the image from the first, podman from the second.
          annotations: { 'io.containerd.image.name': o.ref, 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  tarDirectory(layout, o.out);
  fs.rmSync(layout, { recursive: true, force: true });
  return o.out;
}

export interface TestImages {
  /** busybox rootfs as a plain tar (for `podman import` / `docker import`). */
  busyboxTar: string;
  /** The same as an OCI archive named BUSYBOX_IMAGE (for `ctr images import`). */
  busyboxOci: string;
  /** The catatonit pause image as an OCI archive named PAUSE_IMAGE. */
  pauseOci: string;
}

/** Builds every test image under dir. Cheap (a 2 MB busybox), so each fixture builds its own. */
export function buildTestImages(dir: string): TestImages {
  fs.mkdirSync(dir, { recursive: true });
  const busyboxTar = tarDirectory(buildBusyboxRootfs(path.join(dir, 'busybox-rootfs')), path.join(dir, 'busybox-rootfs.tar'));
  // PATH in the image: without it `sleep` is not found by runtimes that do not add a default PATH.
  const busyboxOci = buildOciArchive({ layerTar: busyboxTar, ref: BUSYBOX_IMAGE, config: { env: ['PATH=/bin'], cmd: ['/bin/sh'] }, out: path.join(dir, 'busybox-oci.tar') });
  const pauseTar = tarDirectory(buildPauseRootfs(path.join(dir, 'pause-rootfs')), path.join(dir, 'pause-rootfs.tar'));
  const pauseOci = buildOciArchive({ layerTar: pauseTar, ref: PAUSE_IMAGE, config: { entrypoint: ['/catatonit', '-P'] }, out: path.join(dir, 'pause-oci.tar') });
  return { busyboxTar, busyboxOci, pauseOci };
}

// ---- the fixture base -----------------------------------------------------------------------------------------

/** Host paths a runtime writes by default. A fixture must create none of them. */
const HOST_DEFAULT_PATHS = [
  '/run/docker.sock',
  '/run/docker',
  '/run/docker.pid',
  '/var/lib/docker',
  '/etc/docker/key.json',
  '/run/containerd',
  '/var/lib/containerd',
  '/opt/containerd',
  '/var/lib/containers',
  '/run/containers',
  '/run/libpod',
  '/run/podman',
  '/run/runc',
  '/var/lib/cni',
  '/dev/shm/libpod_lock',
];

/** argv that runs the rest of argv in a private mount namespace with an empty tmpfs over each of dirs. */
function inPrivateMountNs(dirs: string[], argv: string[]): string[] {
  const mounts = dirs.map((d) => `mount -t tmpfs -o mode=0755,size=64m vigil-private ${d}`).join('; ');
  // unshare(1) without --fork execs in place, and so does the script: the pid of the process is argv[0]'s.
  return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', `set -e; ${mounts}; exec "$@"`, 'sh', ...argv];
}

/** What a daemon gets private. /opt: the containerd that dockerd manages creates /opt/containerd, unasked. */
const DAEMON_PRIVATE_DIRS = ['/run', '/var/lib', '/opt'];

export interface ContainerSpec {
  name?: string;
  labels?: Record<string, string>;
  /** Default: sleep 3600. */
  cmd?: string[];
  /** Bind mounts, "host:container[:options]" (podman only). */
  volumes?: string[];
}

const DEFAULT_CMD = ['sleep', '3600'];

abstract class RuntimeFixture {
  /** The fixture's temp dir: every socket, config and state file is under it. */
  readonly dir: string;
  readonly images: TestImages;
  protected readonly cgroups = new CgroupTracker();
  /** The private mount namespace of a daemon (dockerd/containerd), once started. */
  protected mountNs: string | undefined;
  // An fd on that namespace pins it: its inode number cannot be reused by another namespace while the fixture
  // still looks for (and kills) the processes in it.
  #mountNsFd: number | undefined;
  readonly #hostBefore = new Map<string, boolean>();
  #cleaning: Promise<void> | undefined;

  protected constructor(kind: string) {
    // Short: unix socket paths (the daemon's, containerd's shims') must stay under 108 bytes.
    this.dir = fs.mkdtempSync(`/tmp/vgl-${kind}-`);
    for (const p of HOST_DEFAULT_PATHS) this.#hostBefore.set(p, fs.existsSync(p));
    try {
      this.images = buildTestImages(path.join(this.dir, 'images'));
    } catch (err) {
      // Nobody holds the fixture yet to clean it up.
      fs.rmSync(this.dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Runtime-specific: remove containers/pods through the runtime, stop the daemon. Best effort. */
  protected abstract teardown(): Promise<void>;

  /** Runtime-specific host state besides processes, mounts and cgroups (bridges). Best effort. */
  protected teardownHost(): Promise<void> {
    return Promise.resolve();
  }

  protected hostLeftovers(): string[] {
    return [];
  }

  /** Every live process this fixture started, directly or not. */
  ownPids(): number[] {
    const pids = new Set([...pidsReferencing(this.dir), ...this.cgroups.pids()]);
    if (this.mountNs) pidsInMountNs(this.mountNs).forEach((p) => pids.add(p));
    pids.delete(process.pid);
    return [...pids].filter(alive);
  }

  /**
   * Stops and removes everything. Safe to call twice (a second call while one runs waits for it; after one,
   * it finds nothing to do). Throws an AggregateError naming the steps that failed.
   */
  cleanup(): Promise<void> {
    this.#cleaning ??= this.#cleanup().finally(() => {
      this.#cleaning = undefined;
    });
    return this.#cleaning;
  }

  async #cleanup(): Promise<void> {
    const errors: Error[] = [];
    const step = async (what: string, fn: () => Promise<void> | void) => {
      try {
        await fn();
      } catch (err) {
        errors.push(new Error(`${this.constructor.name} cleanup, ${what}: ${(err as Error).message}`, { cause: err }));
      }
    };
    await step('runtime teardown', () => this.teardown());
    await step('leftover processes', () => killAndWait(this.ownPids(), 'leftover processes'));
    await step('mounts', async () => {
      for (const mp of mountsUnder(this.dir)) await run('umount', [mp]).catch(() => run('umount', ['-l', mp]));
    });
    await step('cgroups', () => this.cgroups.sweep());
    await step('mount namespace', () => {
      if (this.#mountNsFd === undefined) return;
      const left = this.mountNs ? pidsInMountNs(this.mountNs) : [];
      if (left.length) throw new Error(`processes ${left.join(', ')} are still in ${this.mountNs}`);
      fs.closeSync(this.#mountNsFd);
      this.#mountNsFd = undefined;
      this.mountNs = undefined;
    });
    await step('host state', () => this.teardownHost());
    await step('state dir', () => fs.rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 }));
    if (errors.length) throw new AggregateError(errors, errors.map((e) => e.message).join('; '));
  }

  /** What the fixture left behind; empty after cleanup() unless something leaked. */
  leftovers(): string[] {
    const out: string[] = [];
    for (const pid of this.ownPids()) out.push(`process ${pid}: ${(read(`/proc/${pid}/cmdline`) ?? '').replaceAll('\0', ' ').trim()}`);
    for (const mp of mountsUnder(this.dir)) out.push(`mount ${mp}`);
    out.push(...this.cgroups.leftovers());
    out.push(...this.hostLeftovers());
    if (fs.existsSync(this.dir)) out.push(`dir ${this.dir}`);
    for (const [p, existed] of this.#hostBefore) if (!existed && fs.existsSync(p)) out.push(`host default path ${p}`);
    return out;
  }

  /** Spawns a daemon in a private mount namespace, its output going to <dir>/<name>.log. */
  protected spawnDaemon(name: string, argv: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; log: string } {
    const log = path.join(this.dir, `${name}.log`);
    const fd = fs.openSync(log, 'a');
    try {
      // Not detached: a Ctrl-C in the terminal reaches the daemon too, which then shuts down.
      const [cmd, ...args] = inPrivateMountNs(DAEMON_PRIVATE_DIRS, argv);
      const child = spawn(cmd!, args, { env, stdio: ['ignore', fd, fd] });
      child.on('error', () => {});
      return { child, log };
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Waits until the daemon's mount namespace is the private one, and records it. */
  protected async recordMountNs(child: ChildProcess, log: string): Promise<void> {
    const hostNs = mountNsOf(process.pid);
    await until(() => {
      if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}:\n${tail(log)}`);
      const ns = child.pid ? mountNsOf(child.pid) : undefined;
      if (ns && ns !== hostNs) {
        this.#mountNsFd = fs.openSync(`/proc/${child.pid}/ns/mnt`, 'r');
        // Read back through the fd's own inode: the child might have moved on between readlink and open.
        this.mountNs = `mnt:[${fs.fstatSync(this.#mountNsFd).ino}]`;
      }
      return this.mountNs !== undefined;
    }, 'the daemon to enter its private mount namespace', 10_000, () => tail(log));
  }
}

function baseEnv(dir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'home'), { recursive: true });
  // Only what the tools need: no DOCKER_HOST, CONTAINER_HOST, CONTAINERD_ADDRESS from the caller's shell.
  return {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: path.join(dir, 'home'),
    TMPDIR: path.join(dir, 'tmp'),
    LANG: 'C.UTF-8',
    ...extra,
  };
}

/** Default ulimits the runtimes may set: root lacks CAP_SYS_RESOURCE here, so never above the hard limits. */
function ulimits(): { nofile: number; nproc: number } {
  const limits = read('/proc/self/limits') ?? '';
  const hard = (name: string, fallback: number) => {
    const m = new RegExp(`^${name}\\s+\\S+\\s+(\\S+)`, 'm').exec(limits);
    const v = m?.[1] === 'unlimited' ? Infinity : Number(m?.[1]);
    return Number.isFinite(v) ? v : fallback;
  };
  return { nofile: Math.min(20_000, hard('Max open files', 20_000)), nproc: Math.min(32_768, hard('Max processes', 32_768)) };
}

// ---- podman ---------------------------------------------------------------------------------------------------

/** podman 4.3 + runc, rootful, cgroupfs, isolated storage. Container cgroups: /libpod_parent/libpod-<id>. */
export class Podman extends RuntimeFixture {
  readonly env: NodeJS.ProcessEnv;
  readonly #global: string[];
  readonly #ids = new Set<string>();
  readonly #pods = new Set<string>();
  #service: ChildProcess | undefined;
  #socket: string | undefined;

  constructor() {
    super('podman');
    const d = this.dir;
    for (const sub of ['root', 'runroot', 'runc', 'net', 'volumes']) fs.mkdirSync(path.join(d, sub), { recursive: true });
    const runc = path.join(d, 'runc.sh');
    // podman's cleanup path (`podman container cleanup` run by conmon) drops --runtime-flag, so the runc root
    // is baked into a wrapper: every runc call, cleanup included, keeps its state here, not in /run/runc.
    fs.writeFileSync(runc, `#!/bin/sh\nexec runc --root ${path.join(d, 'runc')} "$@"\n`, { mode: 0o755 });
    const { nofile, nproc } = ulimits();
    fs.writeFileSync(
      path.join(d, 'containers.conf'),
      [
        '[containers]',
        `default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]`,
        '[engine]',
        'runtime = "runc"',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        `events_logfile_path = "${path.join(d, 'events.log')}"`,
        `tmp_dir = "${path.join(d, 'tmp')}"`,
        `image_copy_tmp_dir = "${path.join(d, 'tmp')}"`,
        `volume_path = "${path.join(d, 'volumes')}"`,
        // File locks under tmp_dir instead of the host-wide /dev/shm/libpod_lock.
        'lock_type = "file"',
        // The infra container of a pod runs the local pause image, so podman never builds its own.
        `infra_image = "${PAUSE_IMAGE}"`,
        '[engine.runtimes]',
        `runc = ["${runc}"]`,
        '[network]',
        `network_config_dir = "${path.join(d, 'net')}"`,
        '',
      ].join('\n'),
    );
    fs.writeFileSync(path.join(d, 'storage.conf'), `[storage]\ndriver = "vfs"\nrunroot = "${path.join(d, 'runroot')}"\ngraphroot = "${path.join(d, 'root')}"\n`);
    this.env = baseEnv(d, { CONTAINERS_CONF: path.join(d, 'containers.conf'), CONTAINERS_STORAGE_CONF: path.join(d, 'storage.conf') });
    // vfs: no overlay mounts to leak; the images are 2 MB.
    this.#global = ['--root', path.join(d, 'root'), '--runroot', path.join(d, 'runroot'), '--storage-driver', 'vfs'];
    // conmon sits in /libpod_parent/conmon, containers in /libpod_parent/...: note what exists before.
    this.cgroups.expectParents('/libpod_parent/conmon/x');
  }

  /** Runs `podman <global flags> args`; stdout. */
  podman(args: string[], timeoutMs?: number): Promise<string> {
    return run('podman', [...this.#global, ...args], { env: this.env, ...(timeoutMs ? { timeoutMs } : {}) });
  }

  // podman 4.3 writes its blob-info cache to /var/lib/containers/cache on every image copy, whatever --root
  // says: give those commands a private /var/lib.
  #withPrivateVarLib(args: string[]): Promise<string> {
    const [cmd, ...rest] = inPrivateMountNs(['/var/lib'], ['podman', ...this.#global, ...args]);
    return run(cmd!, rest, { env: this.env });
  }

  async importImages(): Promise<void> {
    await this.#withPrivateVarLib(['import', '--change', 'ENV PATH=/bin', '--change', 'CMD ["/bin/sh"]', this.images.busyboxTar, BUSYBOX_IMAGE]);
    await this.#withPrivateVarLib(['load', '-q', '-i', this.images.pauseOci]);
  }

  /** Creates a pod (with an infra container from PAUSE_IMAGE); returns its full id. */
  async createPod(name: string, labels: Record<string, string> = {}): Promise<string> {
    const id = (await this.podman(['pod', 'create', '--name', name, '--network', 'none', ...labelArgs(labels)])).trim();
    this.#pods.add(id);
    this.cgroups.own(`/libpod_parent/${id}`);
    return id;
  }

  /** Starts a container; returns its full id. */
  async run(spec: ContainerSpec & { pod?: string; image?: string } = {}): Promise<string> {
    const args = ['run', '-d', ...(spec.pod ? ['--pod', spec.pod] : ['--network', 'none']), ...(spec.name ? ['--name', spec.name] : []), ...labelArgs(spec.labels ?? {}), ...(spec.volumes ?? []).flatMap((v) => ['-v', v])];
    const id = (await this.podman([...args, spec.image ?? BUSYBOX_IMAGE, ...(spec.cmd ?? DEFAULT_CMD)])).trim();
    this.#ids.add(id);
    if (!spec.pod) this.cgroups.own(`/libpod_parent/libpod-${id}`);
    return id;
  }

  exec(id: string, cmd: string[]): Promise<string> {
    return this.podman(['exec', id, ...cmd]);
  }

  async pid(id: string): Promise<number> {
    return Number((await this.podman(['inspect', '--format', '{{.State.Pid}}', id])).trim());
  }

  async stop(id: string): Promise<void> {
    await this.podman(['stop', '-t', '0', id]);
  }

  async rm(id: string): Promise<void> {
    await this.podman(['rm', '-f', '-t', '0', id]);
    this.#ids.delete(id);
  }

  async rmPod(id: string): Promise<void> {
    await this.podman(['pod', 'rm', '-f', '-t', '0', id]);
    this.#pods.delete(id);
  }

  /** `podman system service` on <dir>/podman.sock: the Docker-compatible and libpod APIs. Returns the socket. */
  async startService(): Promise<string> {
    if (this.#socket) return this.#socket;
    const socket = path.join(this.dir, 'podman.sock');
    const log = path.join(this.dir, 'service.log');
    const fd = fs.openSync(log, 'a');
    try {
      this.#service = spawn('podman', [...this.#global, 'system', 'service', '--time=0', `unix://${socket}`], { env: this.env, stdio: ['ignore', fd, fd] });
      this.#service.on('error', () => {});
    } finally {
      fs.closeSync(fd);
    }
    const svc = this.#service;
    await until(async () => {
      if (svc.exitCode !== null) throw new Error(`podman system service exited with ${svc.exitCode}:\n${tail(log)}`);
      return (await unixGet(socket, '/_ping'))?.body === 'OK';
    }, 'podman system service', 30_000, () => tail(log));
    this.#socket = socket;
    return socket;
  }

  protected async teardown(): Promise<void> {
    // Everything in this storage is the fixture's, including what a test made with podman() directly: own the
    // cgroups of all of it, then remove it (containers first, then pods).
    const ids = async (args: string[]) => (await this.podman(args, 30_000).catch(() => '')).split('\n').filter(Boolean);
    for (const pod of await ids(['pod', 'ps', '-q', '--no-trunc'])) this.cgroups.own(`/libpod_parent/${pod}`);
    for (const id of await ids(['ps', '-a', '-q', '--no-trunc'])) this.cgroups.own(`/libpod_parent/libpod-${id}`);
    await this.podman(['rm', '-a', '-f', '-t', '0'], 60_000).catch(() => '');
    await this.podman(['pod', 'rm', '-a', '-f', '-t', '0'], 60_000).catch(() => '');
    this.#ids.clear();
    this.#pods.clear();
    await stopChild(this.#service);
    this.#service = undefined;
    this.#socket = undefined;
  }
}

function labelArgs(labels: Record<string, string>): string[] {
  return Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
}

// ---- dockerd --------------------------------------------------------------------------------------------------

/** dockerd 20.10 with its own data/exec roots and socket. Container cgroups: /docker/<id>. */
export class Docker extends RuntimeFixture {
  readonly socketPath: string;
  readonly env: NodeJS.ProcessEnv;
  #daemon: ChildProcess | undefined;
  readonly #ids = new Set<string>();
  /** The distribution's CLI, matching its daemon (a newer one may sit earlier on PATH). */
  readonly #cli = fs.existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

  constructor() {
    super('docker');
    this.socketPath = path.join(this.dir, 'docker.sock');
    this.env = baseEnv(this.dir, { DOCKER_CONFIG: path.join(this.dir, 'cli') });
    this.cgroups.expectParents('/docker/x');
  }

  async start(): Promise<void> {
    const d = this.dir;
    const { nofile, nproc } = ulimits();
    fs.writeFileSync(
      path.join(d, 'daemon.json'),
      JSON.stringify({
        'default-ulimits': { nofile: { Name: 'nofile', Soft: nofile, Hard: nofile }, nproc: { Name: 'nproc', Soft: nproc, Hard: nproc } },
        // Not /etc/docker/key.json. 20.10 has no flag for it, only this daemon.json key.
        'deprecated-key-path': path.join(d, 'key.json'),
      }),
    );
    const argv = [
      'dockerd',
      '--config-file', path.join(d, 'daemon.json'),
      '--data-root', path.join(d, 'data'),
      '--exec-root', path.join(d, 'exec'),
      '--pidfile', path.join(d, 'docker.pid'),
      '-H', `unix://${this.socketPath}`,
      // No network setup on the host: no docker0, no iptables rules, no sysctl changes.
      '--bridge=none', '--iptables=false', '--ip6tables=false', '--ip-forward=false', '--ip-masq=false', '--userland-proxy=false',
      '--storage-driver', 'vfs',
    ];
    const { child, log } = this.spawnDaemon('dockerd', argv, this.env);
    this.#daemon = child;
    await this.recordMountNs(child, log);
    await until(async () => {
      if (child.exitCode !== null) throw new Error(`dockerd exited with ${child.exitCode}:\n${tail(log)}`);
      return (await unixGet(this.socketPath, '/_ping'))?.body === 'OK';
    }, 'dockerd', 60_000, () => tail(log));
    await this.docker(['import', '-c', 'ENV PATH=/bin', '-c', 'CMD ["/bin/sh"]', this.images.busyboxTar, BUSYBOX_IMAGE]);
  }

  docker(args: string[], timeoutMs?: number): Promise<string> {
    return run(this.#cli, ['-H', `unix://${this.socketPath}`, ...args], { env: this.env, ...(timeoutMs ? { timeoutMs } : {}) });
  }

  async run(spec: ContainerSpec = {}): Promise<string> {
    const args = ['run', '-d', '--network', 'none', ...(spec.name ? ['--name', spec.name] : []), ...labelArgs(spec.labels ?? {})];
    const id = (await this.docker([...args, BUSYBOX_IMAGE, ...(spec.cmd ?? DEFAULT_CMD)])).trim();
    this.#ids.add(id);
    this.cgroups.own(`/docker/${id}`);
    return id;
  }

  exec(id: string, cmd: string[]): Promise<string> {
    return this.docker(['exec', id, ...cmd]);
  }

  async pid(id: string): Promise<number> {
    return Number((await this.docker(['inspect', '--format', '{{.State.Pid}}', id])).trim());
  }

  async stop(id: string): Promise<void> {
    await this.docker(['stop', '-t', '0', id]);
  }

  async rm(id: string): Promise<void> {
    await this.docker(['rm', '-f', id]);
    this.#ids.delete(id);
  }

  protected async teardown(): Promise<void> {
    if (this.#daemon && this.#daemon.exitCode === null) {
      // All of this daemon's containers are the fixture's, including any a test made with docker() directly.
      const all = (await this.docker(['ps', '-aq', '--no-trunc'], 30_000).catch(() => '')).split('\n').filter(Boolean);
      all.forEach((id) => this.cgroups.own(`/docker/${id}`));
      if (all.length) await this.docker(['rm', '-f', ...all], 60_000).catch(() => '');
    }
    this.#ids.clear();
    // dockerd stops its managed containerd and the shims; whatever survives is killed by pid after this.
    await stopChild(this.#daemon);
    this.#daemon = undefined;
  }
}

// ---- containerd -----------------------------------------------------------------------------------------------

export interface PodSpec {
  name: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  containers: { name: string; cmd?: string[]; labels?: Record<string, string> }[];
}

export interface RunningPod {
  id: string;
  uid: string;
  name: string;
  namespace: string;
  /** The pod's cgroup parent, as the kubelet (cgroupfs driver) passes it. */
  cgroupParent: string;
  config: PodSandboxConfig;
  containers: { name: string; id: string }[];
}

/**
 * containerd 1.6 with its own root, state and socket, the CRI plugin (local pause image, restricted oom score,
 * runc v2 with cgroupfs, a bridge + host-local CNI network of its own) and a private ctr namespace.
 * ctr containers' cgroups: /<namespace>/<id>, or the --cgroup given. CRI containers: <cgroup_parent>/<id>.
 */
export class Containerd extends RuntimeFixture {
  readonly socketPath: string;
  /** The ctr namespace of this fixture (unique, so that its cgroup /<namespace> is the fixture's). */
  readonly namespace = `vigil-${hex(4)}`;
  readonly bridge = `vgl${hex(4)}`;
  readonly env: NodeJS.ProcessEnv;
  #subnet = '';
  #daemon: ChildProcess | undefined;
  #cri: CriClient | undefined;
  readonly #ctrIds = new Set<string>();
  readonly #pods = new Map<string, RunningPod>();

  constructor() {
    super('ctrd');
    this.socketPath = path.join(this.dir, 'containerd.sock');
    this.env = baseEnv(this.dir);
    this.cgroups.own(`/${this.namespace}`);
  }

  async start(): Promise<void> {
    const d = this.dir;
    this.#subnet = await freeSubnet();
    fs.mkdirSync(path.join(d, 'cni/net.d'), { recursive: true });
    fs.writeFileSync(
      path.join(d, 'cni/net.d/10-vigil.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: `vigil-${this.bridge}`,
        plugins: [
          {
            type: 'bridge',
            bridge: this.bridge,
            // No gateway and no masquerade: no address on the bridge, no iptables rules, no ip_forward change.
            isGateway: false,
            ipMasq: false,
            ipam: { type: 'host-local', ranges: [[{ subnet: this.#subnet }]], dataDir: path.join(d, 'cni/ipam') },
          },
        ],
      }),
    );
    const cri = 'plugins."io.containerd.grpc.v1.cri"';
    fs.writeFileSync(
      path.join(d, 'config.toml'),
      [
        'version = 2',
        `root = "${path.join(d, 'root')}"`,
        `state = "${path.join(d, 'state')}"`,
        '[grpc]',
        `  address = "${this.socketPath}"`,
        '[ttrpc]',
        `  address = "${this.socketPath}.ttrpc"`,
        // Its default is /opt/containerd.
        '[plugins."io.containerd.internal.v1.opt"]',
        `  path = "${path.join(d, 'opt')}"`,
        `[${cri}]`,
        `  sandbox_image = "${PAUSE_IMAGE}"`,
        // Without it the sandbox fails: root lacks CAP_SYS_RESOURCE here, so the oom score cannot be lowered.
        '  restrict_oom_score_adj = true',
        '  netns_mounts_under_state_dir = true',
        `[${cri}.containerd]`,
        '  default_runtime_name = "runc"',
        `[${cri}.containerd.runtimes.runc]`,
        '  runtime_type = "io.containerd.runc.v2"',
        `[${cri}.containerd.runtimes.runc.options]`,
        '  SystemdCgroup = false',
        `[${cri}.cni]`,
        '  bin_dir = "/usr/lib/cni"',
        `  conf_dir = "${path.join(d, 'cni/net.d')}"`,
        '',
      ].join('\n'),
    );
    const { child, log } = this.spawnDaemon('containerd', ['containerd', '--config', path.join(d, 'config.toml')], this.env);
    this.#daemon = child;
    await this.recordMountNs(child, log);
    await until(async () => {
      if (child.exitCode !== null) throw new Error(`containerd exited with ${child.exitCode}:\n${tail(log)}`);
      if (!fs.existsSync(this.socketPath)) return false;
      return this.ctr(['version'], 5_000).then(() => true, () => false);
    }, 'containerd', 60_000, () => tail(log));
    await this.ctr(['-n', this.namespace, 'images', 'import', this.images.busyboxOci]);
    // The CRI works in the k8s.io namespace: the pause image and the pods' image go there.
    await this.ctr(['-n', 'k8s.io', 'images', 'import', this.images.busyboxOci]);
    await this.ctr(['-n', 'k8s.io', 'images', 'import', this.images.pauseOci]);
  }

  /** `ctr --address <socket> args`, run inside containerd's mount namespace (see the module comment). */
  ctr(args: string[], timeoutMs?: number): Promise<string> {
    const pid = this.#daemon?.pid;
    if (!pid) return Promise.reject(new Error('containerd is not running'));
    return run('nsenter', ['-t', String(pid), '-m', '--', 'ctr', '--address', this.socketPath, ...args], { env: this.env, ...(timeoutMs ? { timeoutMs } : {}) });
  }

  /** `ctr run -d` in the fixture's namespace; `cgroup` sets the cgroup path (e.g. a systemd-style name). */
  async run(spec: ContainerSpec & { id?: string; cgroup?: string } = {}): Promise<string> {
    const id = spec.id ?? spec.name ?? `c${hex(6)}`;
    this.cgroups.own(spec.cgroup ?? `/${this.namespace}/${id}`);
    this.#ctrIds.add(id);
    const labels = Object.entries(spec.labels ?? {}).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
    await this.ctr(['-n', this.namespace, 'run', '-d', ...(spec.cgroup ? ['--cgroup', spec.cgroup] : []), ...labels, BUSYBOX_IMAGE, id, ...(spec.cmd ?? DEFAULT_CMD)]);
    return id;
  }

  exec(id: string, cmd: string[]): Promise<string> {
    return this.ctr(['-n', this.namespace, 'task', 'exec', '--exec-id', `e${hex(6)}`, id, ...cmd]);
  }

  /** The init pid of a ctr container's task. */
  async pid(id: string): Promise<number> {
    const line = (await this.ctr(['-n', this.namespace, 'task', 'ls'])).split('\n').find((l) => l.split(/\s+/)[0] === id);
    const pid = Number(line?.split(/\s+/)[1]);
    if (!pid) throw new Error(`no running task ${id}`);
    return pid;
  }

  /** Kills and deletes a ctr container's task and the container. */
  async rm(id: string): Promise<void> {
    await this.ctr(['-n', this.namespace, 'task', 'delete', '-f', id]).catch(() => '');
    await this.ctr(['-n', this.namespace, 'containers', 'delete', id]);
    this.#ctrIds.delete(id);
  }

  /** A CRI client on this containerd (closed by cleanup). */
  cri(): CriClient {
    this.#cri ??= new CriClient({ socketPath: this.socketPath });
    return this.#cri;
  }

  /**
   * A pod the way the kubelet makes one: sandbox with the io.kubernetes.pod.* labels and a cgroup parent
   * /kubepods/besteffort/pod<uid>, then each container with io.kubernetes.* labels, created and started.
   */
  async runPod(spec: PodSpec): Promise<RunningPod> {
    const uid = spec.uid ?? crypto.randomUUID();
    const namespace = spec.namespace ?? 'default';
    const cgroupParent = `/kubepods/besteffort/pod${uid}`;
    this.cgroups.own(cgroupParent);
    const kube = { 'io.kubernetes.pod.name': spec.name, 'io.kubernetes.pod.namespace': namespace, 'io.kubernetes.pod.uid': uid };
    const config: PodSandboxConfig = {
      metadata: { name: spec.name, uid, namespace, attempt: 0 },
      hostname: spec.name,
      log_directory: path.join(this.dir, 'pods', `${namespace}_${spec.name}_${uid}`),
      labels: { ...(spec.labels ?? {}), ...kube },
      annotations: { 'kubernetes.io/config.source': 'vigil-test' },
      linux: { cgroup_parent: cgroupParent },
    };
    const cri = this.cri();
    const signal = () => AbortSignal.timeout(60_000);
    const id = await cri.runPodSandbox(config, signal());
    const pod: RunningPod = { id, uid, name: spec.name, namespace, cgroupParent, config, containers: [] };
    this.#pods.set(id, pod);
    for (const c of spec.containers) {
      const cfg: ContainerConfig = {
        metadata: { name: c.name, attempt: 0 },
        image: { image: BUSYBOX_IMAGE },
        command: c.cmd ?? DEFAULT_CMD,
        labels: { ...(c.labels ?? {}), ...kube, 'io.kubernetes.container.name': c.name },
        annotations: { 'io.kubernetes.container.restartCount': '0' },
        log_path: `${c.name}/0.log`,
      };
      const cid = await cri.createContainer(id, cfg, config, signal());
      pod.containers.push({ name: c.name, id: cid });
      await cri.startContainer(cid, signal());
    }
    return pod;
  }

  /** Stops and removes a CRI pod (and its containers). */
  async removePod(id: string): Promise<void> {
    const cri = this.cri();
    await cri.stopPodSandbox(id, AbortSignal.timeout(60_000));
    await cri.removePodSandbox(id, AbortSignal.timeout(60_000));
    this.#pods.delete(id);
  }

  protected async teardown(): Promise<void> {
    const running = this.#daemon && this.#daemon.exitCode === null;
    if (running) {
      for (const id of [...this.#pods.keys()]) await this.removePod(id).catch(() => {});
      // Every container of the fixture's namespace goes, tracked or not (their cgroups are under /<namespace>
      // unless run() was given another, which it tracked).
      const listed = (await this.ctr(['-n', this.namespace, 'containers', 'ls', '-q'], 30_000).catch(() => '')).split('\n').filter(Boolean);
      for (const id of new Set([...this.#ctrIds, ...listed])) await this.rm(id).catch(() => {});
    }
    this.#pods.clear();
    this.#ctrIds.clear();
    this.#cri?.close();
    this.#cri = undefined;
    await stopChild(this.#daemon);
    this.#daemon = undefined;
  }

  // The bridge lives in the host's network namespace: the CNI plugin makes it, nothing removes it.
  protected override async teardownHost(): Promise<void> {
    if (fs.existsSync(`/sys/class/net/${this.bridge}`)) await run('ip', ['link', 'delete', this.bridge]);
    // iptables-save quotes like a shell does: hand the rule back to a shell.
    for (const rule of await iptablesRulesMentioning([this.bridge, this.#subnet])) await run('sh', ['-c', `iptables -t ${rule.table} -D ${rule.rule}`]);
  }

  protected override hostLeftovers(): string[] {
    return fs.existsSync(`/sys/class/net/${this.bridge}`) ? [`network link ${this.bridge}`] : [];
  }

  /** Host iptables rules naming the bridge or subnet (none expected: ipMasq is off). For tests. */
  iptablesLeftovers(): Promise<string[]> {
    return iptablesRulesMentioning([this.bridge, this.#subnet]).then((rs) => rs.map((r) => `iptables -t ${r.table} -A ${r.rule}`));
  }
}

/** A 10.x.y.0/24 that no address or route on the host uses. */
async function freeSubnet(): Promise<string> {
  const used = (await run('ip', ['-4', '-o', 'addr'])) + (await run('ip', ['-4', 'route']));
  for (;;) {
    const b = crypto.randomInt(100, 250);
    const c = crypto.randomInt(0, 256);
    if (!used.includes(`10.${b}.${c}.`)) return `10.${b}.${c}.0/24`;
  }
}

async function iptablesRulesMentioning(texts: string[]): Promise<{ table: string; rule: string }[]> {
  const needles = texts.filter(Boolean);
  if (needles.length === 0 || !onPath('iptables-save')) return [];
  const dump = await run('iptables-save', []).catch(() => '');
  const out: { table: string; rule: string }[] = [];
  let table = 'filter';
  for (const line of dump.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    else if (line.startsWith('-A ') && needles.some((n) => line.includes(n))) out.push({ table, rule: line.slice(3) });
  }
  return out;
}

// ---- factories: start, and clean up after the test whatever happens -------------------------------------------

/** A Podman fixture with the test images imported; cleaned up after the test. */
export async function startPodman(t: TestContext): Promise<Podman> {
  const p = new Podman();
  t.after(() => p.cleanup());
  await p.importImages();
  return p;
}

/** A running dockerd with the busybox image; cleaned up after the test. */
export async function startDocker(t: TestContext): Promise<Docker> {
  const d = new Docker();
  t.after(() => d.cleanup());
  await d.start();
  return d;
}

/** A running containerd (ctr and CRI) with the busybox and pause images; cleaned up after the test. */
export async function startContainerd(t: TestContext): Promise<Containerd> {
  const c = new Containerd();
  t.after(() => c.cleanup());
  await c.start();
  return c;
}
