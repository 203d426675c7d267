import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { SIZEOF, SYSCALL_FILTER_CONFIG, SYSCALL_SECRET_DIR, VIGIL_SYS_CFG_FLAGS } from '../../src/events/layout.generated.ts';
import { DEFAULT_SECRET_PATHS, normalizeSyscallConfig } from '../../src/syscalls/config.ts';
import { encodeFilterConfig, secretHead, SyscallFilters, type SyscallFilterMaps } from '../../src/syscalls/filters.ts';
import { encodeSecretDir, hostRoot, MAX_SECRET_DIRS, SECRET_DIR_HEADS, secretDirs } from '../../src/syscalls/secret-dirs.ts';

function tree(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-secret-dirs-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const d of ['etc', 'ssh/sub/deeper', 'many']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  return dir;
}

test('secretDirs: a file prefix names its directory and a name head, a directory prefix every entry and its subdirectories', (t) => {
  const dir = tree(t);
  const ino = (p: string) => fs.statSync(p, { bigint: true }).ino;
  const dirs = secretDirs([
    path.join(dir, 'etc/shadow'),
    path.join(dir, 'etc/gshadow'),
    path.join(dir, 'etc/shadow'), // twice: one name
    `${dir}/ssh/`,
    ...['a', 'b', 'c', 'd', 'e'].map((n) => path.join(dir, 'many', n)), // more names than heads: every entry
    path.join(dir, 'missing/key'), // no such directory (yet): left out
    path.join(dir, 'etc/shadow/inner'), // its "directory" is no directory: left out
  ]);
  const byPath = Object.fromEntries([...dirs.values()].map((d) => [path.relative(dir, d.path), [d.any, d.names]]));
  assert.deepEqual(byPath, {
    etc: [false, ['shadow', 'gshadow']],
    ssh: [true, []],
    'ssh/sub': [true, []],
    'ssh/sub/deeper': [true, []],
    many: [true, ['a', 'b', 'c', 'd', 'e']],
  });
  assert.equal(dirs.get(ino(path.join(dir, 'etc')))!.path, path.join(dir, 'etc'), 'keyed by inode number');
  assert.equal(SECRET_DIR_HEADS, 4);

  // At most MAX_SECRET_DIRS: the directories the prefixes name first, then subdirectories while there is room.
  for (let i = 0; i < MAX_SECRET_DIRS + 4; i++) fs.mkdirSync(path.join(dir, 'ssh', `k${String(i).padStart(2, '0')}`));
  const capped = secretDirs([`${dir}/ssh/`, path.join(dir, 'etc/shadow')]);
  assert.equal(capped.size, MAX_SECRET_DIRS);
  const paths = [...capped.values()].map((d) => path.relative(dir, d.path));
  assert.deepEqual(paths.slice(0, 2), ['ssh', 'etc'], 'the named directories, whatever the subdirectories');

  // From another mount namespace the host's paths are reached under a root (/proc/1/root): the directories
  // keep their host paths, their inodes are the root's.
  const rooted = secretDirs(['/etc/shadow', '/ssh/'], dir);
  assert.deepEqual([...rooted.values()].slice(0, 2).map((d) => d.path), ['/etc', '/ssh']);
  assert.equal([...rooted.keys()][0], ino(path.join(dir, 'etc')));
  assert.equal(hostRoot(), '', 'the tests run in the host\'s mount namespace');
});

test('encodeSecretDir: heads are the names\' first 8 bytes with a byte mask; every entry needs none', () => {
  const F = SYSCALL_SECRET_DIR;
  const b = encodeSecretDir({ path: '/etc', any: false, names: ['shadow', 'pwquality.conf'] });
  assert.equal(b.length, SIZEOF.syscall_secret_dir);
  assert.equal(b.readUInt32LE(F.any.offset), 0);
  assert.equal(b.readUInt32LE(F.count.offset), 2);
  assert.equal(b.subarray(F.head.offset, F.head.offset + 8).toString('latin1'), 'shadow\0\0');
  assert.equal(b.subarray(F.head.offset + 8, F.head.offset + 16).toString('latin1'), 'pwqualit');
  assert.deepEqual([...b.subarray(F.mask.offset, F.mask.offset + 16)], [...Array(6).fill(0xff), 0, 0, ...Array(8).fill(0xff)]);
  const any = encodeSecretDir({ path: '/root/.ssh', any: true, names: [] });
  assert.equal(any.readUInt32LE(F.any.offset), 1);
});

test('SyscallFilters.apply: the directories\' entries go in before the config that holds their inode numbers and turns the gate on; no gate without heads, with resolvePaths all or off; refreshSecretDirs writes them again only when they changed', (t) => {
  const dir = tree(t);
  const log: string[] = [];
  const fake = (name: string) => {
    const m = new Map<string, Buffer>();
    return {
      name,
      m,
      update: (k: Buffer, v: Buffer) => {
        log.push(`${name}+`);
        m.set(k.toString('hex'), v);
      },
      delete: (k: Buffer) => m.delete(k.toString('hex')),
      keys: () => [...m.keys()].map((h) => Buffer.from(h, 'hex')),
      lookup: () => undefined,
    };
  };
  const names = ['config', 'comm', 'prefixes', 'sensitive', 'secret', 'secretDirs', 'log', 'stats'] as const;
  const maps = Object.fromEntries(names.map((n) => [n, fake(n)]));
  const f = new SyscallFilters(maps as unknown as SyscallFilterMaps, 1);
  const configFlags = (): number => maps.config!.m.get('00000000')!.readUInt32LE(SYSCALL_FILTER_CONFIG.flags.offset);
  const inos = (): bigint[] => {
    const b = maps.config!.m.get('00000000')!;
    const F = SYSCALL_FILTER_CONFIG;
    return Array.from({ length: b.readUInt32LE(F.secret_dir_count.offset) }, (_, i) => b.readBigUInt64LE(F.secret_dir_ino.offset + 8 * i));
  };
  const ino = (p: string) => fs.statSync(p, { bigint: true }).ino;
  f.apply(normalizeSyscallConfig({ files: { secretReads: true }, filters: { secretPaths: [path.join(dir, 'etc/shadow'), `${dir}/ssh/`] } }));
  assert.deepEqual(inos(), ['etc', 'ssh', 'ssh/sub', 'ssh/sub/deeper'].map((p) => ino(path.join(dir, p))), 'the inode numbers in the config, in the order of the entries');
  assert.equal(maps.secretDirs!.m.size, 4, 'an entry each, by index');
  assert.equal(maps.secretDirs!.m.get('01000000')!.readUInt32LE(SYSCALL_SECRET_DIR.any.offset), 1, 'ssh: every entry');
  assert.ok(log.lastIndexOf('secretDirs+') < log.indexOf('config+'), `entries before the config: ${log.join(' ')}`);
  assert.ok(configFlags() & VIGIL_SYS_CFG_FLAGS.SECRET_DIRS, 'the gate on');
  assert.equal(f.secretDirs.length, 4);

  f.apply(normalizeSyscallConfig({ files: { secretReads: true }, filters: { secretPaths: [path.join(dir, 'etc/shadow')] } }));
  assert.deepEqual(inos(), [ino(path.join(dir, 'etc'))], 'fewer: the config counts the entries in use');

  // Looked for again (refreshSecretDirs): nothing written while nothing changed; a directory made since, made
  // anew or removed is written as apply() writes it, entries first.
  const later = path.join(dir, 'later');
  f.apply(normalizeSyscallConfig({ files: { secretReads: true }, filters: { secretPaths: [path.join(dir, 'etc/shadow'), `${later}/`] } }));
  assert.deepEqual(inos(), [ino(path.join(dir, 'etc'))], 'a directory that does not exist yet names none');
  log.length = 0;
  assert.equal(f.refreshSecretDirs(), false);
  assert.deepEqual(log, [], 'nothing written');
  fs.mkdirSync(later);
  assert.equal(f.refreshSecretDirs(), true);
  assert.deepEqual(log, ['secretDirs+', 'secretDirs+', 'config+'], 'the entries, then the config');
  assert.deepEqual(inos(), [ino(path.join(dir, 'etc')), ino(later)]);
  assert.equal(f.refreshSecretDirs(), false, 'found once');
  fs.mkdirSync(`${later}.new`);
  fs.rmdirSync(later);
  fs.renameSync(`${later}.new`, later);
  assert.equal(f.refreshSecretDirs(), true, 'made anew: another inode number');
  assert.deepEqual(inos(), [ino(path.join(dir, 'etc')), ino(later)]);
  fs.rmdirSync(later);
  assert.equal(f.refreshSecretDirs(), true, 'removed');
  assert.deepEqual(inos(), [ino(path.join(dir, 'etc'))]);
  assert.deepEqual(f.secretDirs.map((d) => d.path), [path.join(dir, 'etc')]);

  for (const filters of [{ secretPaths: ['/etc/x'] }, // shorter than a head: no heads, no gate
    { secretPaths: [path.join(dir, 'etc/shadow')], resolvePaths: 'all' as const }, { secretPaths: [path.join(dir, 'etc/shadow')], resolvePaths: false }]) {
    f.apply(normalizeSyscallConfig({ files: { secretReads: true }, filters }));
    assert.deepEqual(inos(), [], JSON.stringify(filters));
    assert.equal(configFlags() & VIGIL_SYS_CFG_FLAGS.SECRET_DIRS, 0, `no gate: ${JSON.stringify(filters)}`);
  }
});

test('the secret heads go into the config: the distinct first 8 bytes of the prefixes, as a path\'s load reads them; none when a prefix is shorter', () => {
  const F = SYSCALL_FILTER_CONFIG;
  const heads = (b: Buffer) => Array.from({ length: b.readUInt32LE(F.secret_head_count.offset) }, (_, i) => b.readBigUInt64LE(F.secret_head.offset + 8 * i));
  const defaults = encodeFilterConfig(normalizeSyscallConfig({ files: { secretReads: true } }), 1);
  const want = [...new Set(DEFAULT_SECRET_PATHS.map((p) => p.slice(0, 8)))];
  assert.deepEqual(heads(defaults), want.map((h) => Buffer.from(h.padEnd(8, '\0'), 'latin1').readBigUInt64LE(0)));
  assert.deepEqual(want, ['/etc/sha', '/etc/gsh', '/etc/sud', '/etc/pam', '/etc/sec', '/root/.s'], 'sudoers and sudoers.d share one, as do the two under /etc/security');
  assert.equal(secretHead('/etc/shadow'), Buffer.from('/etc/sha', 'latin1').readBigUInt64LE(0));
  assert.deepEqual(heads(encodeFilterConfig(normalizeSyscallConfig({ files: { secretReads: true }, filters: { secretPaths: ['/etc/x', '/etc/shadow'] } }), 1)), []);
});
