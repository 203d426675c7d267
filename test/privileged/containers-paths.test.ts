// Privileged: the path resolver (src/containers/paths.ts) against a real podman container and real host
// processes. A file created inside the container resolves to a host path with the same content and inode;
// symlinks inside the container are followed inside it (an absolute link does not escape to the host's file of
// that name); paths of host processes and of a chrooted one; a process that exited (reaped, or a zombie); and
// the clear PermissionError, naming the capability, of a root that lacks CAP_SYS_PTRACE or
// CAP_DAC_READ_SEARCH. Also the container helpers against the same real container: getContainerIdFromTaskDir,
// findContainerCgroupIds, containers(). Needs root + podman (runc) + setpriv + chroot.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { VigilError } from '../../src/bpf/errors.ts';
import { getContainerIdFromTaskDir } from '../../src/containers/cgroup-path.ts';
import { hostMountNamespace, resolveContainerPath } from '../../src/containers/paths.ts';
import { ContainerResolver } from '../../src/containers/resolver.ts';
import { DockerClient } from '../../src/containers/runtimes/docker.ts';
import { buildBusyboxRootfs, cgroupId, needsRuntime, startPodman, until } from '../helpers/containers.ts';
import { privileged, ROOT, tempDir } from '../helpers/privileged.ts';

const NEEDS = 'root + podman (runc) + setpriv + chroot';
const execFileP = promisify(execFile);

const sameInode = (a: string, b: string) => {
  const x = fs.statSync(a);
  const y = fs.statSync(b);
  return x.dev === y.dev && x.ino === y.ino;
};

/** The VigilError a call throws (fails when it does not throw one). */
function thrown(fn: () => unknown): VigilError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof VigilError, `expected a VigilError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected an error');
}

/** Kills a pid we started when the test ends, if it still runs. */
function reapPid(t: TestContext, pid: number | undefined): void {
  t.after(() => {
    try {
      if (pid) process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  });
}

test('a path inside a podman container resolves to the host file, symlinks followed inside the container', async (t) => {
  if (!needsRuntime(t, NEEDS, 'podman')) return;
  const podman = await startPodman(t);
  const id = await podman.run({ name: 'vigil-paths' });
  const pid = await podman.pid(id);
  const tag = crypto.randomBytes(6).toString('hex');
  // A decoy on the host at the path an absolute symlink inside the container points to: following that link
  // from the host through /proc/<pid>/root lands here, in the host's file, not the container's.
  const decoy = `/tmp/vigil-decoy-${tag}`;
  fs.mkdirSync(decoy);
  t.after(() => fs.rmSync(decoy, { recursive: true, force: true }));
  fs.writeFileSync(`${decoy}/file.txt`, 'host decoy\n');
  const inside = `inside ${tag}\n`;
  await podman.exec(id, ['sh', '-c', [
    `mkdir -p /data/sub ${decoy}`,
    `printf 'inside ${tag}\\n' > /data/sub/file.txt`,
    `printf 'inside ${tag}\\n' > ${decoy}/file.txt`, // the container's own file at the decoy's path
    'ln -s /data/sub /data/abs-link', // absolute: must resolve inside the container
    'ln -s sub/file.txt /data/rel-link',
    `ln -s ${decoy} /data/to-decoy`,
    'ln -s loop-b /data/loop-a && ln -s loop-a /data/loop-b',
  ].join(' && ')]);

  const hostNs = hostMountNamespace();
  const r = resolveContainerPath(pid, '/data/sub/file.txt');
  assert.equal(r.hostNamespace, false);
  assert.notEqual(r.mountNs, hostNs);
  assert.equal(r.hostMountNs, hostNs);
  assert.equal(r.resolved, '/data/sub/file.txt');
  assert.equal(r.viaProc, `/proc/${pid}/root/data/sub/file.txt`);
  assert.equal(fs.readFileSync(r.viaProc, 'utf8'), inside);
  assert.ok(r.hostPath, 'the host sees the container\'s root (a bind mount of its storage)');
  assert.ok(r.hostPath.startsWith(`${podman.dir}/`), `the host path is in the fixture's storage: ${r.hostPath}`);
  assert.equal(fs.readFileSync(r.hostPath, 'utf8'), inside, 'same content on the host');
  assert.ok(sameInode(r.hostPath, r.viaProc), 'same inode');

  // Spelled differently, through symlinks inside the container: the same file.
  assert.equal(resolveContainerPath(pid, '//data/./sub/../sub/file.txt').hostPath, r.hostPath);
  assert.equal(resolveContainerPath(pid, '/data/abs-link/file.txt').hostPath, r.hostPath);
  assert.equal(resolveContainerPath(pid, '/data/rel-link').resolved, '/data/sub/file.txt');
  // The absolute link to the decoy's path: naively followed through /proc/<pid>/root it escapes to the host's
  // decoy (the kernel resolves an absolute link against the reader's root); resolved here it stays inside.
  assert.equal(fs.readFileSync(`/proc/${pid}/root/data/to-decoy/file.txt`, 'utf8'), 'host decoy\n', 'the escape this resolver prevents');
  const viaLink = resolveContainerPath(pid, '/data/to-decoy/file.txt');
  assert.equal(viaLink.resolved, `${decoy}/file.txt`);
  assert.equal(fs.readFileSync(viaLink.viaProc, 'utf8'), inside);
  assert.equal(fs.readFileSync(viaLink.hostPath!, 'utf8'), inside);
  assert.notEqual(viaLink.hostPath, `${decoy}/file.txt`);

  // A file that does not exist yet: its host path is where it will appear.
  const later = resolveContainerPath(pid, '/data/sub/later.txt');
  assert.equal(later.hostPath, path.join(path.dirname(r.hostPath), 'later.txt'));
  assert.ok(!fs.existsSync(later.hostPath!));
  await podman.exec(id, ['sh', '-c', 'echo written-later > /data/sub/later.txt']);
  assert.equal(fs.readFileSync(later.hostPath!, 'utf8'), 'written-later\n');

  // A file on a bind mount of its own: /etc/hostname comes from podman's per-container run dir.
  const hn = resolveContainerPath(pid, '/etc/hostname');
  assert.ok(hn.hostPath && hn.hostPath.startsWith(`${podman.dir}/`), `hostname on the host: ${hn.hostPath}`);
  assert.ok(hn.hostPath !== path.join(path.dirname(path.dirname(r.hostPath)), '..', 'etc/hostname'));
  assert.equal(fs.readFileSync(hn.hostPath, 'utf8'), await podman.exec(id, ['cat', '/etc/hostname']));
  // A filesystem the host does not see: the container's own procfs instance.
  const pr = resolveContainerPath(pid, '/proc/1/status');
  assert.equal(pr.hostPath, undefined);
  assert.match(fs.readFileSync(pr.viaProc, 'utf8'), /^Name:\s+sleep$/m, 'still readable through its root');

  // A symlink loop and bad input: clear errors.
  assert.equal(thrown(() => resolveContainerPath(pid, '/data/loop-a/x')).code, 'ELOOP');
  assert.equal(thrown(() => resolveContainerPath(pid, 'data/sub/file.txt')).code, 'EINVAL');
  assert.equal(thrown(() => resolveContainerPath(0, '/')).code, 'EINVAL');

  // Once the container is gone, so is its namespace: a clear error, not a host path.
  await podman.stop(id);
  const e = thrown(() => resolveContainerPath(pid, '/data/sub/file.txt'));
  assert.equal(e.code, 'ESRCH');
  assert.match(e.message, new RegExp(`process ${pid} has exited`));
});

test('paths of host processes: the host namespace as is, a chrooted process under its root; exited processes', async (t) => {
  if (!privileged(t, NEEDS)) return;
  // This test's own process: the host's namespace and root.
  const dir = tempDir(t, 'vigil-paths-');
  fs.writeFileSync(path.join(dir, 'target'), 'host file\n');
  fs.symlinkSync(path.join(dir, 'target'), path.join(dir, 'link'));
  const me = resolveContainerPath(process.pid, `${dir}//link`);
  assert.equal(me.hostNamespace, true);
  assert.equal(me.mountNs, me.hostMountNs);
  assert.equal(me.path, `${dir}/link`);
  assert.equal(me.hostPath, `${dir}/target`, 'symlinks followed');
  assert.equal(resolveContainerPath(process.pid, '/etc/passwd').hostPath, '/etc/passwd');

  // A chrooted process in the host's mount namespace: its "/" is the chroot dir.
  const rootfs = buildBusyboxRootfs(path.join(dir, 'rootfs'));
  fs.writeFileSync(path.join(rootfs, 'etc/marker'), 'in the chroot\n');
  fs.symlinkSync('/etc/marker', path.join(rootfs, 'etc/abs-marker'));
  const jailed = spawn('chroot', [rootfs, '/bin/sleep', '3600'], { stdio: 'ignore' });
  reapPid(t, jailed.pid);
  await until(() => {
    try {
      return fs.readlinkSync(`/proc/${jailed.pid}/root`) === rootfs;
    } catch {
      return false;
    }
  }, 'the chroot', 10_000);
  const c = resolveContainerPath(jailed.pid!, '/etc/abs-marker');
  assert.equal(c.hostNamespace, false, 'same mount namespace, another root');
  assert.equal(c.mountNs, c.hostMountNs);
  assert.equal(c.resolved, '/etc/marker', 'the absolute link stays in the chroot');
  assert.equal(c.hostPath, path.join(rootfs, 'etc/marker'));
  assert.equal(fs.readFileSync(c.hostPath!, 'utf8'), 'in the chroot\n');

  // Exited: reaped (no /proc entry) and a zombie (an entry whose namespaces are gone).
  // The background child outlives the shell's exec: had it ended first, the shell could have reaped it (seen
  // on a loaded machine), and no zombie would be left for sleep, which never reaps.
  const z = spawn('sh', ['-c', 'sleep 1 & echo $!; exec sleep 3600'], { stdio: ['ignore', 'pipe', 'ignore'] });
  reapPid(t, z.pid);
  const zpid = Number(await new Promise<string>((res) => z.stdout!.once('data', (d: Buffer) => res(d.toString().trim()))));
  await until(() => {
    try {
      return / Z /.test(fs.readFileSync(`/proc/${zpid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  }, 'the zombie', 10_000);
  const ez = thrown(() => resolveContainerPath(zpid, '/etc/passwd'));
  assert.equal(ez.code, 'ESRCH', ez.message);
  const done = spawn('true');
  await new Promise((res) => done.once('exit', res));
  assert.equal(thrown(() => resolveContainerPath(done.pid!, '/etc/passwd')).code, 'ESRCH');
});

/** Runs resolveContainerPath in a child with the given setpriv capability options; what it threw or returned. */
async function resolveWithCaps(t: TestContext, caps: string, pid: number, p: string): Promise<Record<string, unknown>> {
  const dir = tempDir(t, 'vigil-paths-caps-');
  const script = path.join(dir, 'child.ts');
  fs.writeFileSync(
    script,
    `import { resolveContainerPath } from ${JSON.stringify(path.join(ROOT, 'src/containers/paths.ts'))};
try { console.log(JSON.stringify({ ok: resolveContainerPath(${pid}, ${JSON.stringify(p)}) })); }
catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, capability: e.capability, message: e.message })); }\n`,
  );
  const { stdout } = await execFileP('setpriv', ['--bounding-set', caps, '--inh-caps', '-all', process.execPath, script], { encoding: 'utf8', timeout: 30_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}

test('a root without CAP_SYS_PTRACE or CAP_DAC_READ_SEARCH gets a PermissionError naming it', async (t) => {
  if (!needsRuntime(t, NEEDS, 'podman')) return;
  const podman = await startPodman(t);
  const id = await podman.run({ name: 'vigil-paths-caps' });
  const pid = await podman.pid(id);
  // A directory only its owner (uid 1000) may search, inside the container.
  await podman.exec(id, ['sh', '-c', 'mkdir -p /private && echo s3cret > /private/f && chown -R 1000:1000 /private && chmod 700 /private']);

  // No capabilities at all: the container's process has more than us, so its namespace is out of reach.
  const none = await resolveWithCaps(t, '-all', pid, '/etc/hostname');
  assert.equal(none.name, 'PermissionError', JSON.stringify(none));
  assert.equal(none.code, 'EPERM');
  assert.equal(none.capability, 'CAP_SYS_PTRACE');
  assert.match(String(none.message), new RegExp(`mount namespace of pid ${pid}.*permission denied; run as root or grant CAP_SYS_PTRACE`));

  // CAP_SYS_PTRACE alone: the namespace and root are readable, a directory we may not search is not.
  const ptraceOnly = await resolveWithCaps(t, '-all,+sys_ptrace', pid, '/private/f');
  assert.equal(ptraceOnly.name, 'PermissionError', JSON.stringify(ptraceOnly));
  assert.equal(ptraceOnly.capability, 'CAP_DAC_READ_SEARCH');
  assert.match(String(ptraceOnly.message), /search \/private\/f inside the root of pid \d+ \(at \/private\/f\)/);
  // ... while a path it may search resolves fully, host path included.
  const ok = await resolveWithCaps(t, '-all,+sys_ptrace', pid, '/etc/hostname');
  assert.equal((ok.ok as { hostPath?: string } | undefined)?.hostPath, resolveContainerPath(pid, '/etc/hostname').hostPath, JSON.stringify(ok));
});

test('container helpers against a real container: getContainerIdFromTaskDir, findContainerCgroupIds, containers()', async (t) => {
  if (!needsRuntime(t, NEEDS, 'podman')) return;
  const podman = await startPodman(t);
  const socket = await podman.startService();
  const a = await podman.run({ name: 'vigil-helpers-a', labels: { app: 'a' } });
  const b = await podman.run({ name: 'vigil-helpers-b' });
  const pidA = await podman.pid(a);

  assert.equal(getContainerIdFromTaskDir(`/proc/${pidA}`), a);
  assert.equal(getContainerIdFromTaskDir(`/proc/${await podman.pid(b)}`), b);
  assert.equal(getContainerIdFromTaskDir(`/proc/${process.pid}`), undefined, 'a host process');
  assert.equal(getContainerIdFromTaskDir('/proc/0'), undefined, 'no such task');
  // A process exec'd into the container later is in the same cgroup.
  const execd = spawn('podman', ['--root', path.join(podman.dir, 'root'), '--runroot', path.join(podman.dir, 'runroot'), '--storage-driver', 'vfs', 'exec', a, 'sleep', '30'], { env: podman.env, stdio: 'ignore' });
  reapPid(t, execd.pid);
  let inner: number | undefined;
  await until(() => {
    const kids = fs.readFileSync(`/sys/fs/cgroup/unified/libpod_parent/libpod-${a}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).map(Number);
    inner = kids.find((k) => k !== pidA && fs.readFileSync(`/proc/${k}/comm`, 'utf8').trim() === 'sleep');
    return inner !== undefined;
  }, 'the exec\'d process in the container');
  assert.equal(getContainerIdFromTaskDir(`/proc/${inner}`), a);

  const r = new ContainerResolver({ clients: [new DockerClient({ socketPath: socket, runtime: 'podman' })] });
  t.after(() => r.stop());
  r.start();
  const ids = r.containers().map((c) => c.id);
  assert.ok(ids.includes(a) && ids.includes(b), `containers() lists both: ${ids.join(', ')}`);
  await until(() => r.containers().every((c) => c.enrichment !== 'pending'), 'enrichment');
  assert.equal(r.find(a)?.name, 'vigil-helpers-a');
  assert.deepEqual(r.find(a)?.labels, { app: 'a' });
  const cg = cgroupId(`/libpod_parent/libpod-${a}`);
  assert.deepEqual(r.findContainerCgroupIds(a), [cg], 'the container\'s own cgroup id: the inode of its v2 directory');
  assert.deepEqual(r.findContainerCgroupIds('vigil-helpers-a'), [cg], 'by name');
  assert.deepEqual(r.findContainerCgroupIds(a.slice(0, 12)), [cg], 'by id prefix');
  assert.deepEqual(r.findContainerCgroupIds('no-such-container'), []);
  assert.equal(r.byCgroupId(cg)?.id, a, 'and back: the hot-path lookup');
  // conmon's cgroup is the runtime's, not a container.
  assert.ok(!r.containers().some((c) => c.cgroupPath.includes('conmon')));
});
