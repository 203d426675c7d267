// Privileged: the syscall sensor's in-kernel filters, changed at runtime on one loaded sensor (the same
// programs throughout: nothing is reloaded). Each case runs the scripted workload under two names (two comms),
// checks which events arrive and that the kernel counted what it dropped. "Nothing arrived" is only asserted
// after a later event did arrive: the ring is ordered, so everything emitted before it was read.
// Needs root + BPF with BTF + syscall tracepoints + gcc.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { InvalidArgumentError } from '../../src/bpf/errors.ts';
import { SyscallSensor } from '../../src/syscalls/sensor.ts';
import type { SyscallFilterCounters } from '../../src/syscalls/filters.ts';
import type { FileEvent } from '../../src/events/types.ts';
import { buildWorkload, EventLog, runWorkload } from '../fixtures/syscalls-harness.ts';
import { assertGone, heldBpfObjects, privileged, tempDir } from '../helpers/privileged.ts';

const NEEDS = 'root + BPF with BTF + syscall tracepoints + gcc';

test('syscall sensor filters: comm, path prefix, scope, event types and sensitive writes, changed at runtime', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const dir = tempDir(t, 'vigil-scf-');
  const sens = path.join(dir, 'sens');
  fs.mkdirSync(sens);
  const a = buildWorkload(dir, 'vigil-sc-a');
  const b = buildWorkload(dir, 'vigil-sc-b');
  const log = new EventLog();
  /**
   * Runs cat on `paths` and waits for its open of the last one, reported as named: by then its earlier opens
   * are in too. Returns cat's pid.
   */
  const catAll = async (paths: string[]): Promise<number> => {
    const r = spawnSync('/bin/cat', paths, { stdio: 'ignore' });
    assert.equal(r.status, 0, `cat read ${paths.join(', ')}`);
    await log.until(() => log.files([r.pid!]).some((e) => e.type === 'open' && e.path === paths.at(-1)), `cat's read of ${paths.at(-1)}`);
    return r.pid!;
  };
  const base = { files: { open: true } } as const;
  // The secret directories are looked for again every 100 ms here (5 s by default): see the test of a
  // directory made after the configuration.
  const sensor = new SyscallSensor({ ...base, filters: { comm: { exclude: ['vigil-sc-a'] } } }, { onEvent: log.push, secretDirsRefreshMs: 100 });
  t.after(() => sensor.stop());
  const held = heldBpfObjects();
  sensor.start();
  const m = sensor.manager!;
  const programs = () => m.probes().map((p) => p.program?.id ?? 0).sort((x, y) => x - y);
  const loaded = programs();
  const counters = () => sensor.filters!.counters();
  const delta = (from: SyscallFilterCounters, k: keyof SyscallFilterCounters) => counters()[k] - from[k];
  /** Runs a workload and returns its pid. */
  const run = async (bin: string, ...args: string[]) => (await runWorkload(t, bin, [dir, ...args])).find((x) => x.s === 'done')!.pid;
  const opensUnder = (pid: number, sub: string) => log.files([pid]).filter((e) => e.type === 'open' && e.path.startsWith(path.join(dir, sub) + '/'));
  let cgroupId = 0;

  await t.test('comm exclude drops the named process, in the kernel, and counts it', async () => {
    const c0 = counters();
    const pa = await run(a, 'opens', '20', 'a1');
    const pb = await run(b, 'opens', '5', 'b1');
    await log.until(() => opensUnder(pb, 'b1').length === 5, 'the other process\'s opens');
    assert.equal(log.of([pa]).length, 0, 'nothing from the excluded comm');
    assert.ok(delta(c0, 'comm') >= 20, `comm drops counted (${delta(c0, 'comm')})`);
    cgroupId = log.of([pb])[0]!.cgroupId;
  });

  await t.test('comm include keeps only the named process; switched at runtime without reloading', async () => {
    sensor.update({ ...base, filters: { comm: { include: ['vigil-sc-a'] } } });
    const c0 = counters();
    const pb = await run(b, 'opens', '4', 'b2');
    const pa = await run(a, 'opens', '3', 'a2');
    await log.until(() => opensUnder(pa, 'a2').length === 3, 'the included process\'s opens');
    assert.equal(log.of([pb]).length, 0, 'nothing from a comm not on the include list');
    assert.ok(delta(c0, 'comm') >= 4, 'comm drops counted');
    assert.deepEqual(programs(), loaded, 'the same programs: nothing was reloaded');
  });

  await t.test('path prefixes keep only file events under them', async () => {
    sensor.update({ ...base, filters: { pathPrefixes: [path.join(dir, 'keep') + '/'] } });
    const c0 = counters();
    const pa = await run(a, 'opens', '6', 'drop', 'opens', '5', 'keep');
    await log.until(() => opensUnder(pa, 'keep').length === 5, 'the opens under the prefix');
    assert.deepEqual(log.files([pa]).filter((e) => !(e.resolvedPath ?? e.path).startsWith(path.join(dir, 'keep') + '/')), [], 'only paths under the prefix');
    assert.ok(delta(c0, 'path') >= 6, 'path drops counted');
  });

  await t.test('scope: containers only drops host processes; known container cgroups pass; host scope is the reverse', async () => {
    assert.ok(cgroupId > 0);
    sensor.update({ ...base, filters: { scope: 'containers' } });
    const c0 = counters();
    const p1 = await run(a, 'opens', '4', 's1');
    assert.ok(delta(c0, 'scope') >= 4, 'host events dropped by scope');
    // The workload's cgroup becomes a known container: no reload, only a map entry.
    const key = Buffer.alloc(8);
    key.writeBigUInt64LE(BigInt(cgroupId));
    const val = Buffer.alloc(4);
    val.writeUInt32LE(1);
    sensor.containersMap!.update(key, val);
    const p2 = await run(a, 'opens', '4', 's2');
    await log.until(() => opensUnder(p2, 's2').length === 4, 'events of a known container cgroup');
    assert.equal(log.of([p1]).length, 0, 'nothing from before the cgroup was known');

    sensor.update({ ...base, filters: { scope: 'host' } });
    const c1 = counters();
    const p3 = await run(a, 'opens', '4', 's3');
    assert.ok(delta(c1, 'scope') >= 4, 'container events dropped by host scope');
    sensor.containersMap!.delete(key);
    const p4 = await run(a, 'opens', '2', 's4');
    await log.until(() => opensUnder(p4, 's4').length === 2, 'host events once the cgroup is no container');
    assert.equal(log.of([p3]).length, 0);
    assert.deepEqual(programs(), loaded);
  });

  await t.test('event types attach and detach their probes at runtime', async () => {
    sensor.update({ files: { unlink: true, rmdir: true } });
    const running = (fn: string, uid = '') => m.getProbe({ fn, uid }).state === 'running';
    assert.equal(running('enter_openat'), false, 'openat detached');
    assert.equal(running('exit_file', 'openat'), false);
    assert.equal(running('enter_unlinkat'), true, 'unlinkat attached');
    assert.equal(running('exit_file', 'unlinkat'), true);
    const pid = await run(a, 'files', sens);
    await log.until(() => log.files([pid]).some((e) => e.type === 'rmdir'), 'the rmdir');
    await log.until(() => log.files([pid]).filter((e) => e.type === 'unlink').length === 2, 'both unlinks');
    assert.equal(log.files([pid]).filter((e) => e.type === 'open').length, 0, 'no opens while open is off');
    assert.deepEqual(programs(), loaded);
  });

  await t.test('sensitive write-opens alone: other opens are dropped in the kernel', async () => {
    sensor.update({ files: { sensitiveWrites: true, unlink: true }, filters: { sensitivePaths: [`${sens}/`] } });
    const c0 = counters();
    const pid = await run(a, 'files', sens);
    // The unlinks come before the sensitive opens; the workload's last call is the write-open through the
    // symlink, so once both write-opens are here every earlier event is too (the ring is ordered).
    await log.until(() => log.files([pid]).filter((e) => e.type === 'open').length >= 2, 'the two sensitive write-opens');
    assert.equal(log.files([pid]).filter((e) => e.type === 'unlink').length, 2, 'the unlinks before them');
    const opens = log.files([pid]).filter((e) => e.type === 'open');
    assert.deepEqual(
      opens.map((e) => [e.path, e.resolvedPath, e.sensitive]),
      [
        [path.join(sens, 'passwd'), path.join(fs.realpathSync(sens), 'passwd'), true],
        [path.join(dir, `link-${pid}`, 'shadow'), path.join(fs.realpathSync(sens), 'shadow'), true],
      ],
      'only the two sensitive write-opens (one through a symlink)',
    );
    assert.ok(delta(c0, 'notSensitive') >= 5, 'the other opens counted as not sensitive');
  });

  await t.test('the quiet default: every file type restricted to sensitive modifications, opens to those and secret reads', async () => {
    const secret = path.join(sens, 'passwd');
    const link = (pid: number) => path.join(dir, `link-${pid}`, 'shadow');
    // The workload's last call is the symlink it plants in the sensitive directory: once it is here, every
    // earlier event is. With opens alone, the last reported is the write-open through the symlink before it.
    const planted = (pid: number) => path.join(sens, `planted-${pid}`);
    const done = (pid: number, opensOnly = false) =>
      log.until(
        () => log.files([pid]).some((e) => (opensOnly ? e.type === 'open' && e.path === link(pid) : e.type === 'symlink' && e.path2 === planted(pid))),
        opensOnly ? 'the last write-open' : 'the planted symlink',
      );
    const kinds = (pid: number) => log.files([pid]).map((e) => `${e.type}${e.sensitive ? ' sensitive' : ''}${e.secret ? ' secret' : ''}${e.logTruncated ? ' log-truncated' : ''}${e.logRemoved ? ' log-removed' : ''}`);

    // Everything under the workload's directory is sensitive: every modification arrives, flagged, whatever its
    // type; of the read-only opens only the secret one.
    sensor.update({ files: { sensitiveWrites: true, secretReads: true }, filters: { sensitivePaths: [`${dir}/`], secretPaths: [secret] } });
    assert.equal(m.getProbe({ fn: 'enter_renameat2', uid: '' }).state, 'running', 'restricted types attach their probes');
    const c0 = counters();
    const p1 = await run(a, 'files', sens);
    await done(p1);
    const all = log.files([p1]);
    for (const type of ['chmod', 'chown', 'rename', 'mkdir', 'rmdir', 'unlink']) assert.ok(all.some((e) => e.type === type && e.sensitive), `a sensitive ${type}`);
    assert.ok(all.every((e) => e.sensitive || e.secret), `only sensitive modifications and secret reads: ${kinds(p1).join(', ')}`);
    assert.deepEqual(all.filter((e) => e.type === 'open' && !e.write).map((e) => [e.path, e.secret, e.sensitive]), [[secret, true, false]], 'the secret read alone among read-only opens');
    assert.ok(delta(c0, 'notSensitive') >= 3, 'the other read-only opens dropped in the kernel, counted');

    // Only a subdirectory is sensitive: the modifications outside it are dropped in the kernel, counted.
    sensor.update({ files: { sensitiveWrites: true, secretReads: true }, filters: { sensitivePaths: [`${sens}/`], secretPaths: [secret] } });
    const c1 = counters();
    const p2 = await run(a, 'files', sens);
    await done(p2);
    assert.deepEqual(
      kinds(p2),
      ['open sensitive', 'open secret', 'symlink sensitive', 'open sensitive', 'link sensitive', 'symlink sensitive'],
      'the write-open, the secret read, the symlink to the directory, the write-open through it, the hard link of the file in it, the symlink made in it',
    );
    assert.ok(delta(c1, 'notSensitive') >= 10, `chmod, chown, rename, mkdir, rmdir, unlink and the other opens dropped in the kernel (${delta(c1, 'notSensitive')})`);

    // The workload's directory as a log directory: its one truncating open (rel.txt, O_TRUNC) is reported,
    // flagged log-truncated (not sensitive: not under a sensitive prefix), its rename and unlinks there
    // log-removed; its other write-opens there (O_CREAT without O_TRUNC), chmod, chown, mkdir and rmdir are not.
    sensor.update({ files: { sensitiveWrites: true, secretReads: true }, filters: { sensitivePaths: [`${sens}/`], secretPaths: [secret], logPaths: [`${dir}/`] } });
    const p4 = await run(a, 'files', sens);
    await done(p4);
    assert.deepEqual(
      kinds(p4),
      ['open log-truncated', 'rename log-removed', 'unlink log-removed', 'unlink log-removed', 'open sensitive', 'open secret', 'symlink sensitive', 'open sensitive', 'link sensitive', 'symlink sensitive'],
      'the truncation, the removals, then as before',
    );
    const trunc = log.files([p4])[0]!;
    assert.equal(trunc.path, 'rel.txt');
    assert.equal(trunc.resolvedPath, path.join(fs.realpathSync(dir), 'rel.txt'));
    assert.ok(trunc.flagNames.includes('O_TRUNC'));

    // Opens on in full, secret reads off: every open is reported, and the secret read is still the only one
    // flagged secret (its head found, then its prefix matched; the others settled by the head lookup alone).
    sensor.update({ files: { open: true }, filters: { sensitivePaths: [`${sens}/`], secretPaths: [secret] } });
    const p3 = await run(a, 'files', sens);
    await done(p3, true);
    const reads = log.files([p3]).filter((e) => e.type === 'open' && !e.write);
    assert.ok(reads.length >= 4, `the read-only opens are reported (${reads.length})`);
    assert.deepEqual(reads.filter((e) => e.secret).map((e) => e.path), [secret], 'the secret read alone flagged');
    assert.deepEqual(programs(), loaded, 'the same programs: nothing was reloaded');
  });

  await t.test('the quiet default: a log truncated (truncate, ftruncate), removed (rename, unlink) or replaced (a rename onto it) is reported, flagged', async () => {
    const logs = path.join(dir, 'logs');
    sensor.update({ files: { sensitiveWrites: true, secretReads: true }, filters: { sensitivePaths: [`${sens}/`], logPaths: [`${logs}/`] } });
    assert.equal(m.getProbe({ fn: 'enter_ftruncate', uid: '' }).state, 'running', 'truncate is a restricted file type: its probes attach');
    const c0 = counters();
    const truth = (await runWorkload(t, a, [dir, 'logs', 'logs'])).find((x) => x.s === 'logs')! as unknown as Record<string, number>;
    assert.deepEqual([truth.truncate, truth.ftruncate, truth.missing, truth.rename, truth.replace, truth.unlink], [0, 0, -1, 0, 0, 0], 'the workload did what it says');
    const pid = truth.pid!;
    // The unlink is the workload's last file call: once it is here, every earlier event is.
    await log.until(() => log.files([pid]).some((e) => e.type === 'unlink'), 'the unlink of the rotated log');
    const real = path.join(fs.realpathSync(dir), 'logs');
    assert.deepEqual(
      log.files([pid]).map((e) => [e.type, e.syscall, e.ret, e.path, e.resolvedPath, e.length, e.logTruncated, e.logRemoved, e.logReplaced, e.sensitive]),
      [
        ['truncate', 'truncate', 0, path.join(logs, 'app.log'), undefined, 0, true, false, false, false],
        ['truncate', 'ftruncate', 0, '', path.join(real, 'app.log'), 3, true, false, false, false],
        ['truncate', 'truncate', -2, path.join(logs, 'missing.log'), undefined, 0, true, false, false, false],
        ['rename', 'renameat2', 0, path.join(logs, 'app.log'), undefined, undefined, false, true, true, false],
        ['rename', 'renameat2', 0, `${logs}-empty.tmp`, undefined, undefined, false, false, true, false],
        ['unlink', 'unlinkat', 0, path.join(logs, 'app.log.1'), undefined, undefined, false, true, false, false],
      ],
      'the truncations by path and by fd (its path from the fd), the rotation (away and onto), the empty file moved over the log, the unlink; not the appending open nor the empty file\'s creation',
    );
    const ft = log.files([pid])[1]!;
    assert.equal(ft.dfd, truth.fd, 'ftruncate: its fd');
    assert.equal(ft.resolvedFrom, 'fd');
    assert.ok(delta(c0, 'notSensitive') >= 1, 'the appending open, neither sensitive nor truncating, dropped in the kernel');
  });

  await t.test('a secret read through a symlink, "..", "//" or /proc/self/root is caught by the file it opened (the secret directories\' gate)', async () => {
    // Two secret prefixes: a directory (every entry) and a file name. Every path below starts with other
    // bytes than both (/tmp/vig…), so the heads turn it down as given; only the gate can bring it back.
    const secrets = path.join(dir, 'secrets');
    const vault = path.join(dir, 'vault');
    for (const d of [secrets, vault]) fs.mkdirSync(d);
    for (const f of [path.join(secrets, 'key'), path.join(vault, 'token.key'), path.join(vault, 'token.kex'), path.join(vault, 'other')]) fs.writeFileSync(f, 'x\n');
    const shm = fs.mkdtempSync('/dev/shm/vigil-gate-');
    t.after(() => fs.rmSync(shm, { recursive: true, force: true }));
    const links: Record<string, string> = { key: path.join(secrets, 'key'), token: path.join(vault, 'token.key'), kex: path.join(vault, 'token.kex'), other: path.join(vault, 'other') };
    for (const [name, target] of Object.entries(links)) fs.symlinkSync(target, path.join(shm, name));
    const real = (p: string) => fs.realpathSync(p);
    const secretPaths = [`${secrets}/`, path.join(vault, 'token.key')];
    const reads = [
      path.join(shm, 'key'), // a symlink into a secret directory
      `/${vault}/token.key`, // "//"
      `${path.dirname(dir)}/..${vault}/token.key`, // ".."
      `/proc/self/root${secrets}/key`, // the root's magic link
      path.join(shm, 'other'), // a file of the vault the heads do not name: not resolved
      path.join(shm, 'kex'), // a name the gate lets through (its first 8 bytes), that the prefix then turns down
      path.join(vault, 'token.key'), // the secret as named: last, so once it is here every earlier read is
    ];
    const row = (e: FileEvent) => [e.path, e.resolvedPath, e.resolvedFrom, !!e.secret];

    // Restricted (the defaults' shape): the four reads that reach a secret are reported, resolved through their
    // fd; the other two are dropped in the kernel, counted.
    sensor.update({ files: { sensitiveWrites: true, secretReads: true }, filters: { sensitivePaths: [`${sens}/`], secretPaths } });
    assert.deepEqual(sensor.filters!.secretDirs.map((d) => [d.path, d.any, d.names]).sort(), [[secrets, true, []], [vault, false, ['token.key']]], 'the directories the prefixes name');
    const c0 = counters();
    const p1 = await catAll(reads);
    assert.deepEqual(
      log.files([p1]).map(row),
      [
        [reads[0], real(links.key!), 'fd', true],
        [reads[1], real(links.token!), 'fd', true],
        [reads[2], real(links.token!), 'fd', true],
        [reads[3], real(links.key!), 'fd', true],
        [reads[6], undefined, undefined, true],
      ],
      'the secret reads, each with the path it reached',
    );
    assert.ok(delta(c0, 'notSensitive') >= 2, 'the other file of the vault and the name the prefix turned down, dropped and counted');

    // Opens in full: every read is reported; the same four (and the last) flagged secret, the others not, and
    // not resolved (a read-only open of an absolute path is reported as given).
    sensor.update({ files: { open: true }, filters: { sensitivePaths: [`${sens}/`], secretPaths } });
    const p2 = await catAll(reads);
    const mine = log.files([p2]).filter((e) => reads.includes(e.path));
    assert.deepEqual(mine.map(row), [
      [reads[0], real(links.key!), 'fd', true],
      [reads[1], real(links.token!), 'fd', true],
      [reads[2], real(links.token!), 'fd', true],
      [reads[3], real(links.key!), 'fd', true],
      [reads[4], undefined, undefined, false],
      [reads[5], real(links.kex!), 'fd', false],
      [reads[6], undefined, undefined, true],
    ]);

    // No secret prefixes named: the map is emptied and the gate off.
    sensor.update({ files: { open: true }, filters: { sensitivePaths: [`${sens}/`], secretPaths: ['/nonexistent/dir/'] } });
    assert.deepEqual(sensor.filters!.secretDirs, [], 'a prefix whose directory does not exist names none');
    const p3 = await catAll(reads);
    assert.deepEqual(log.files([p3]).filter((e) => reads.includes(e.path)).map((e) => !!e.secret || !!e.resolvedPath), reads.map(() => false));
  });

  await t.test('a secret directory made, made anew or removed after the configuration was applied: the gate follows it', async () => {
    // A directory prefix whose directory does not exist yet (/root/.ssh before a first ssh-keygen).
    const later = path.join(dir, 'later');
    const shm = fs.mkdtempSync('/dev/shm/vigil-later-');
    t.after(() => fs.rmSync(shm, { recursive: true, force: true }));
    const link = path.join(shm, 'k');
    fs.symlinkSync(path.join(later, 'key'), link);
    // Made beside it, then moved in: a new inode number while the old directory still holds its own.
    const make = () => {
      fs.mkdirSync(`${later}.new`);
      fs.writeFileSync(path.join(`${later}.new`, 'key'), 'x\n');
      fs.rmSync(later, { recursive: true, force: true });
      fs.renameSync(`${later}.new`, later);
      return fs.realpathSync(path.join(later, 'key'));
    };
    const dirs = () => sensor.filters!.secretDirs.map((d) => d.path);
    const changed = () => sensor.stats().secretDirsRefresh.changed;
    // The key through the symlink, then as named: the second is reported whatever the gate does.
    const read = async (): Promise<FileEvent | undefined> => {
      const pid = await catAll([link, path.join(later, 'key')]);
      return log.files([pid]).find((e) => e.path === link);
    };

    sensor.update({ files: { sensitiveWrites: true, secretReads: true }, filters: { sensitivePaths: [`${sens}/`], secretPaths: [`${later}/`] } });
    assert.deepEqual(dirs(), [], 'no directory yet');
    assert.equal(sensor.refreshSecretDirs(), false, 'nothing to write while nothing changed');
    const c0 = changed();

    // Made: found within the refresh period, then a read through the symlink is caught by the file it opened.
    const real = make();
    await log.until(() => dirs().includes(later), 'the sensor to find the new directory');
    assert.equal(changed(), c0 + 1);
    assert.deepEqual(await read().then((e) => e && [e.resolvedPath, e.resolvedFrom, !!e.secret]), [real, 'fd', true], 'the read through the symlink, flagged');

    // Made anew (another inode number): the old number would no longer match; the new one is found.
    const c1 = changed();
    make();
    await log.until(() => changed() > c1 && dirs().includes(later), 'the sensor to find the directory made anew');
    assert.deepEqual(await read().then((e) => e && [e.resolvedFrom, !!e.secret]), ['fd', true], 'caught in the directory made anew');

    // Removed: the gate compares with nothing again.
    fs.rmSync(later, { recursive: true });
    await log.until(() => dirs().length === 0, 'the sensor to drop the removed directory');
    assert.equal(sensor.stats().secretDirsRefresh.failed, 0, 'no look failed');
  });

  await t.test('a bad update is refused whole and the running configuration stays', async () => {
    const before = sensor.config;
    assert.throws(() => sensor.update({ files: { open: true }, filters: { comm: { include: ['a-name-longer-than-15'] } } }), (e: unknown) => e instanceof InvalidArgumentError && /filters\.comm\.include\[0\]/.test((e as Error).message));
    assert.equal(sensor.config, before);
    const pid = await run(a, 'files', sens);
    await log.until(() => log.files([pid]).some((e) => e.sensitive), 'events under the old configuration');
  });

  const progIds = m.probes().filter((p) => p.program).map((p) => p.program!.id);
  sensor.stop();
  sensor.stop();
  await assertGone({ progs: progIds });
  assert.deepEqual(heldBpfObjects(), held, 'no BPF object is still held by this process');
});
