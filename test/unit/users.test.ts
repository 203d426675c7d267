// User/group names per mount namespace against fake proc and host roots built in temp dirs: parsing of
// malformed files, cache invalidation (with a fake clock), LRU bounds, hostile container files (symlinks,
// FIFOs, huge files), pid reuse; and tty device numbers. No privileges needed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { ProcessEntry } from '../../src/process/types.ts';
import { parseIds, ttyNameFromDev, UserResolver } from '../../src/process/users.ts';
import { normalizeKernelTtyName } from '../../src/events/decode.ts';
import { InvalidArgumentError } from '../../src/bpf/errors.ts';

const HOST_NS = 4026531840;

const HOST_PASSWD = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash
`;
const HOST_GROUP = `root:x:0:
adm:x:4:alice
alice:x:1000:
`;

/** A temp dir with host/ (hostRoot) and proc/ (procRoot, with init's mount namespace), removed after the test. */
function world(t: TestContext) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-users-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const host = path.join(dir, 'host');
  const proc = path.join(dir, 'proc');
  fs.mkdirSync(path.join(host, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(host, 'etc/passwd'), HOST_PASSWD);
  fs.writeFileSync(path.join(host, 'etc/group'), HOST_GROUP);
  const w = {
    dir,
    host,
    proc,
    /** /proc/<pid>: ns/mnt -> mnt:[ns], root -> `root` (a symlink, like the kernel's magic link). */
    process(pid: number, ns: number, root?: string) {
      const p = path.join(proc, String(pid));
      fs.mkdirSync(path.join(p, 'ns'), { recursive: true });
      fs.rmSync(path.join(p, 'ns/mnt'), { force: true });
      fs.symlinkSync(`mnt:[${ns}]`, path.join(p, 'ns/mnt'));
      fs.rmSync(path.join(p, 'root'), { force: true });
      if (root) fs.symlinkSync(root, path.join(p, 'root'));
    },
    /** A container root with the given etc files (undefined: the file is absent). */
    container(name: string, files: { passwd?: string; group?: string }) {
      const r = path.join(dir, name);
      fs.mkdirSync(path.join(r, 'etc'), { recursive: true });
      if (files.passwd !== undefined) fs.writeFileSync(path.join(r, 'etc/passwd'), files.passwd);
      if (files.group !== undefined) fs.writeFileSync(path.join(r, 'etc/group'), files.group);
      return r;
    },
  };
  w.process(1, HOST_NS);
  return w;
}

/** A manual clock: lookups never depend on real time passing. */
function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

test('host names from hostRoot, with no context, a host-namespace context, or an unknown (0) namespace', (t) => {
  const w = world(t);
  const r = new UserResolver({ procRoot: w.proc, hostRoot: w.host });
  assert.equal(r.userName(0), 'root');
  assert.equal(r.userName(1000), 'alice');
  assert.equal(r.userName(1000, { pid: 4242, mntns: HOST_NS }), 'alice');
  assert.equal(r.userName(1000, { pid: 4242, mntns: 0 }), 'alice');
  assert.equal(r.userName(1001), undefined);
  assert.equal(r.groupName(4), 'adm');
  assert.equal(r.groupName(1000), 'alice');
  assert.equal(r.groupName(5), undefined);
  const st = r.stats();
  assert.deepEqual(st, { lookups: 8, hits: 6, reloads: 2, namespaces: 0, errors: 0, malformed: 0 });
});

test('a container gets its own names, cached per mount namespace and shared by its processes', (t) => {
  const w = world(t);
  const c = w.container('c1', { passwd: 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n', group: 'root:x:0:\nwww:x:33:\n' });
  w.process(100, 4026532100, c);
  w.process(101, 4026532100, c);
  const r = new UserResolver({ procRoot: w.proc, hostRoot: w.host, recheckMs: 60_000, now: clock().now });
  const ctx = { pid: 100, mntns: 4026532100 };
  assert.equal(r.userName(1000, ctx), 'app');
  assert.equal(r.userName(1000), 'alice', 'the host still sees its own name');
  assert.equal(r.groupName(33, ctx), 'www');
  assert.equal(r.groupName(4, ctx), undefined, "the host's groups do not leak into the container");
  assert.equal(r.userName(1000, { pid: 101, mntns: 4026532100 }), 'app');
  // A cached process: its real uid in its own namespace; the host's when its namespace is not known (0, or no
  // ns at all); nothing without credentials.
  const creds = { uid: 1000 } as ProcessEntry['creds'];
  assert.equal(r.processUserName({ pid: 101, creds, ns: { cgroupId: 1, pidns: 1, mntns: 4026532100, nspid: 1 } }), 'app');
  assert.equal(r.processUserName({ pid: 101, creds, ns: { cgroupId: 1, pidns: 0, mntns: 0, nspid: 0 } }), 'alice');
  assert.equal(r.processUserName({ pid: 101, creds, ns: undefined }), 'alice');
  assert.equal(r.processUserName({ pid: 101, creds: undefined, ns: undefined }), undefined);
  // The host's passwd, the container's passwd and group: three parses; pid 101 was answered from the cache.
  assert.equal(r.stats().reloads, 3);
  assert.equal(r.stats().namespaces, 1);
});

test('missing files: undefined, except uid/gid 0 -> "root"; a container file without uid 0 is authoritative', (t) => {
  const w = world(t);
  fs.rmSync(path.join(w.host, 'etc/passwd'));
  const distroless = w.container('scratch', {});
  const noRoot = w.container('noroot', { passwd: 'app:x:1000:1000::/app:/bin/sh\n', group: 'app:x:1000:\n' });
  w.process(200, 4026532200, distroless);
  w.process(300, 4026532300, noRoot);
  const r = new UserResolver({ procRoot: w.proc, hostRoot: w.host });
  assert.equal(r.userName(0), 'root');
  assert.equal(r.userName(1000), undefined);
  assert.equal(r.groupName(1000), 'alice', 'group still read');
  assert.equal(r.userName(0, { pid: 200, mntns: 4026532200 }), 'root');
  assert.equal(r.groupName(0, { pid: 200, mntns: 4026532200 }), 'root');
  assert.equal(r.userName(1000, { pid: 200, mntns: 4026532200 }), undefined, 'no fallback to the host for a container');
  assert.equal(r.userName(0, { pid: 300, mntns: 4026532300 }), undefined);
  assert.equal(r.userName(1000, { pid: 300, mntns: 4026532300 }), 'app');
  // A process whose root cannot be reached at all (no such pid).
  assert.equal(r.userName(1000, { pid: 999, mntns: 4026532999 }), undefined);
  assert.equal(r.userName(0, { pid: 999, mntns: 4026532999 }), 'root');
  assert.equal(r.stats().errors, 0, 'missing files are ordinary, not errors');
});

test('a pid that is no longer in the namespace is not read through (pid reuse)', (t) => {
  const w = world(t);
  const wrong = w.container('other', { passwd: 'intruder:x:1000:1000::/:/bin/sh\n' });
  w.process(400, 4026532401, wrong); // pid 400 now lives in another namespace
  const r = new UserResolver({ procRoot: w.proc, hostRoot: w.host });
  assert.equal(r.userName(1000, { pid: 400, mntns: 4026532400 }), undefined);
  assert.equal(r.stats().reloads, 0);
});

test('names stay cached when the process exits; a later process of the namespace takes over', (t) => {
  const w = world(t);
  const c = w.container('c1', { passwd: 'app:x:1000:1000::/app:/bin/sh\n' });
  w.process(100, 4026532100, c);
  const ck = clock();
  const r = new UserResolver({ procRoot: w.proc, hostRoot: w.host, recheckMs: 1000, now: ck.now });
  assert.equal(r.userName(1000, { pid: 100, mntns: 4026532100 }), 'app');
  fs.rmSync(path.join(w.proc, '100'), { recursive: true });
  ck.advance(1000);
  assert.equal(r.userName(1000, { pid: 100, mntns: 4026532100 }), 'app', 'kept while no process leads in');
  fs.writeFileSync(path.join(c, 'etc/passwd'), 'app2:x:1000:1000::/app:/bin/sh\n');
  w.process(101, 4026532100, c);
  ck.advance(1000);
  assert.equal(r.userName(1000, { pid: 101, mntns: 4026532100 }), 'app2');
});

test('cache invalidation: re-stat at most every recheckMs; size, inode and mtime changes all reparse', (t) => {
  const w = world(t);
  const file = path.join(w.host, 'etc/passwd');
  const ck = clock();
  const r = new UserResolver({ procRoot: w.proc, hostRoot: w.host, recheckMs: 1000, now: ck.now });
  assert.equal(r.userName(1000), 'alice');
  assert.equal(r.stats().reloads, 1);

  // Grows: seen only once recheckMs has passed.
  fs.appendFileSync(file, 'bob:x:1001:1001::/home/bob:/bin/sh\n');
  ck.advance(999);
  assert.equal(r.userName(1001), undefined, 'not re-stat before recheckMs');
  ck.advance(1);
  assert.equal(r.userName(1001), 'bob');
  assert.equal(r.stats().reloads, 2);

  // Unchanged: a re-stat, no reparse.
  ck.advance(1000);
  assert.equal(r.userName(1001), 'bob');
  assert.equal(r.stats().reloads, 2);

  // Replaced by rename with the same size (what vipw/useradd do): a new inode.
  const same = fs.readFileSync(file, 'utf8').replace('bob:', 'bib:');
  fs.writeFileSync(`${file}+`, same);
  fs.renameSync(`${file}+`, file);
  ck.advance(1000);
  assert.equal(r.userName(1001), 'bib');
  assert.equal(r.stats().reloads, 3);

  // Rewritten in place with the same size and inode: mtime (and ctime) give it away.
  const ino = fs.statSync(file).ino;
  fs.writeFileSync(file, same.replace('bib:', 'bub:'));
  fs.utimesSync(file, new Date(2001, 1, 1), new Date(2001, 1, 1));
  assert.equal(fs.statSync(file).ino, ino);
  ck.advance(1000);
  assert.equal(r.userName(1001), 'bub');

  // Removed: the names go (uid 0 falls back to "root").
  fs.rmSync(file);
  ck.advance(1000);
  assert.equal(r.userName(1001), undefined);
  assert.equal(r.userName(0), 'root');
  // And back.
  fs.writeFileSync(file, HOST_PASSWD);
  ck.advance(1000);
  assert.equal(r.userName(1000), 'alice');
});

test('recheckMs 0 re-stats on every lookup', (t) => {
  const w = world(t);
  const r = new UserResolver({ procRoot: w.proc, hostRoot: w.host, recheckMs: 0 });
  assert.equal(r.userName(1002), undefined);
  fs.appendFileSync(path.join(w.host, 'etc/passwd'), 'carol:x:1002:1002::/:/bin/sh\n');
  assert.equal(r.userName(1002), 'carol');
});

test('the number of cached namespaces is bounded, least recently used first out', (t) => {
  const w = world(t);
  const roots = ['a', 'b', 'c'].map((n, i) => {
    const root = w.container(n, { passwd: `${n}:x:1000:1000::/:/bin/sh\n` });
    w.process(500 + i, 4026532500 + i, root);
    return { pid: 500 + i, mntns: 4026532500 + i };
  });
  const [a, b, c] = roots as [(typeof roots)[0], (typeof roots)[0], (typeof roots)[0]];
  const r = new UserResolver({ procRoot: w.proc, hostRoot: w.host, maxNamespaces: 2, recheckMs: 60_000, now: clock().now });
  assert.equal(r.userName(1000, a), 'a');
  assert.equal(r.userName(1000, b), 'b');
  assert.equal(r.userName(1000, a), 'a'); // a is now the most recent
  assert.equal(r.stats().reloads, 2);
  assert.equal(r.userName(1000, c), 'c'); // evicts b
  assert.equal(r.stats().namespaces, 2);
  assert.equal(r.userName(1000, a), 'a');
  assert.equal(r.stats().reloads, 3, 'a was still cached');
  assert.equal(r.userName(1000, b), 'b');
  assert.equal(r.stats().reloads, 4, 'b had been evicted and is read again');
  assert.equal(r.stats().namespaces, 2);
});

test('hostile container files: symlinks out of the container, FIFOs, directories, huge files', { timeout: 10_000 }, (t) => {
  const w = world(t);
  // /etc/passwd -> the host's passwd (an absolute link would resolve on the host through /proc/<pid>/root).
  const link = w.container('link', {});
  fs.symlinkSync(path.join(w.host, 'etc/passwd'), path.join(link, 'etc/passwd'));
  w.process(600, 4026532600, link);
  // /etc itself -> the host's /etc.
  const etcLink = path.join(w.dir, 'etclink');
  fs.mkdirSync(etcLink);
  fs.symlinkSync(path.join(w.host, 'etc'), path.join(etcLink, 'etc'));
  w.process(601, 4026532601, etcLink);
  // A FIFO: a plain open would block the agent forever.
  const fifo = w.container('fifo', {});
  execFileSync('mkfifo', [path.join(fifo, 'etc/passwd')]);
  w.process(602, 4026532602, fifo);
  // A directory.
  const dir = w.container('dir', {});
  fs.mkdirSync(path.join(dir, 'etc/passwd'));
  w.process(603, 4026532603, dir);
  // 17 MiB (sparse).
  const huge = w.container('huge', { passwd: '' });
  fs.truncateSync(path.join(huge, 'etc/passwd'), 17 << 20);
  w.process(604, 4026532604, huge);

  const r = new UserResolver({ procRoot: w.proc, hostRoot: w.host });
  for (let pid = 600; pid <= 604; pid++) {
    assert.equal(r.userName(1000, { pid, mntns: 4026532000 + pid }), undefined, `pid ${pid}`);
  }
  assert.equal(r.stats().errors, 5);
  assert.equal(r.stats().reloads, 0);
  // The host itself may use a symlinked /etc/passwd (trusted).
  const hostLinked = path.join(w.dir, 'hostlinked');
  fs.mkdirSync(path.join(hostLinked, 'etc'), { recursive: true });
  fs.symlinkSync(path.join(w.host, 'etc/passwd'), path.join(hostLinked, 'etc/passwd'));
  assert.equal(new UserResolver({ procRoot: w.proc, hostRoot: hostLinked }).userName(1000), 'alice');
});

test('parsing: comments, blank lines, CRLF, NIS entries and duplicates skipped; malformed lines counted', (t) => {
  const w = world(t);
  const text = [
    '# comment',
    '   # indented comment',
    '',
    '   ',
    'root:x:0:0:root:/root:/bin/bash\r',
    '+::::::', // NIS compat: not malformed, not a user
    '-baduser::::::',
    'short:x:5', // too few fields
    'nonnum:x:abc:0::/:/bin/sh',
    'negative:x:-1:0::/:/bin/sh',
    'neverid:x:4294967295:0::/:/bin/sh', // (uid_t)-1
    'toobig:x:99999999999:0::/:/bin/sh',
    ':x:7:7::/:/bin/sh', // empty name
    'with space:x:8:8::/:/bin/sh',
    'ctl\u0001:x:9:9::/:/bin/sh',
    'first:x:1000:1000::/:/bin/sh',
    'second:x:1000:1000::/:/bin/sh', // duplicate uid: the first wins, as with getpwuid
    'extra:x:1001:1001::/:/bin/sh:more:fields',
    'bytes\\xff:x:1002:1002::/:/bin/sh',
    'max:x:4294967294:0::/:/bin/sh',
    'nonl:x:1003:1003::/:/bin/sh', // no trailing newline
  ].join('\n');
  fs.writeFileSync(path.join(w.host, 'etc/passwd'), text);
  const r = new UserResolver({ procRoot: w.proc, hostRoot: w.host });
  assert.equal(r.userName(0), 'root');
  assert.equal(r.userName(1000), 'first');
  assert.equal(r.userName(1001), 'extra');
  assert.equal(r.userName(1002), 'bytes\\xff');
  assert.equal(r.userName(4294967294), 'max');
  assert.equal(r.userName(1003), 'nonl');
  for (const id of [5, 7, 8, 9, 4294967295]) assert.equal(r.userName(id), undefined, `uid ${id}`);
  assert.equal(r.stats().malformed, 8);

  const groups = parseIds('wheel:x:10:alice,bob\nbad:x\nstaff:x:50\n#c\nusers:*:100:\n', 4);
  assert.deepEqual([...groups], [[10, 'wheel'], [100, 'users']]);
  assert.equal(parseIds('', 7).size, 0);
  assert.equal(parseIds('\n\n\n', 7).size, 0);
});

test('invalid bytes in a file arrive as \\xNN escapes, like every other kernel string', (t) => {
  const w = world(t);
  fs.writeFileSync(path.join(w.host, 'etc/passwd'), Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from(':x:1000:1000::/:/bin/sh\n')]));
  assert.equal(new UserResolver({ procRoot: w.proc, hostRoot: w.host }).userName(1000), 'caf\\xe9');
});

test("the host namespace falls back to our own when init's cannot be read", (t) => {
  const w = world(t);
  fs.rmSync(path.join(w.proc, '1'), { recursive: true });
  w.process(77, 4026531999);
  fs.symlinkSync('77', path.join(w.proc, 'self'));
  const r = new UserResolver({ procRoot: w.proc, hostRoot: w.host });
  assert.equal(r.userName(1000, { pid: 5, mntns: 4026531999 }), 'alice');
  assert.equal(r.stats().namespaces, 0);
});

test('options are validated', () => {
  for (const o of [{ recheckMs: -1 }, { recheckMs: Number.NaN }, { maxNamespaces: 0 }, { maxNamespaces: 1.5 }]) {
    assert.throws(() => new UserResolver(o), InvalidArgumentError, JSON.stringify(o));
  }
});

test('this machine: uid 0 is root and our own uid has our name', () => {
  const r = new UserResolver();
  assert.equal(r.userName(0), 'root');
  assert.equal(r.groupName(0), 'root');
  const me = os.userInfo();
  assert.equal(r.userName(me.uid), me.username);
});

/** The userspace dev_t encoding of /proc/<pid>/stat tty_nr (the kernel's new_encode_dev). */
function dev(major: number, minor: number): number {
  return ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

test('ttyNameFromDev: pts, virtual consoles, serial ports, /dev/tty and console, unknown majors', () => {
  const cases: [number, string | undefined][] = [
    [0, undefined],
    [dev(136, 0), 'pts/0'],
    [dev(136, 3), 'pts/3'],
    [dev(136, 255), 'pts/255'],
    [dev(136, 256), 'pts/256'], // 20-bit minors: modern kernels keep every pts on major 136
    [dev(136, 70000), 'pts/70000'],
    [dev(137, 0), 'pts/256'], // 8-bit era: the next major continues the numbering
    [dev(143, 255), 'pts/2047'],
    [dev(4, 0), 'tty0'],
    [dev(4, 1), 'tty1'],
    [dev(4, 63), 'tty63'],
    [dev(4, 64), 'ttyS0'],
    [dev(4, 65), 'ttyS1'],
    [dev(4, 255), 'ttyS191'],
    [dev(5, 0), 'tty'],
    [dev(5, 1), 'console'],
    [dev(5, 2), 'ptmx'],
    [dev(5, 3), 'ttyprintk'],
    [dev(5, 9), undefined],
    [dev(3, 0), 'ttyp0'],
    [dev(3, 0x1f), 'ttyqf'],
    [dev(2, 0xf0), 'ptye0'],
    [dev(188, 0), 'ttyUSB0'],
    [dev(166, 2), 'ttyACM2'],
    [dev(204, 64), 'ttyAMA0'],
    [dev(204, 5), undefined],
    [dev(229, 0), 'hvc0'],
    [dev(1, 3), undefined], // /dev/null is no terminal
    [dev(250, 0), undefined], // dynamic major
    [Number.NaN, undefined],
  ];
  for (const [nr, want] of cases) assert.equal(ttyNameFromDev(nr), want, `tty_nr ${nr} (${nr >>> 8 & 0xfff}:${nr & 0xff})`);
  // The kernel prints tty_nr as a signed int: a minor with bit 19 set comes out negative.
  const neg = dev(136, 0x80000) | 0;
  assert.ok(neg < 0);
  assert.equal(ttyNameFromDev(neg), 'pts/524288');
});

test("ttyNameFromDev agrees with this machine's /dev for every terminal device present", () => {
  // stat's rdev uses glibc's encoding, which equals the kernel's for majors < 4096.
  const names = ['tty', 'console', 'ptmx', ...fs.readdirSync('/dev').filter((n) => /^(tty\d+|ttyS\d+|ttyUSB\d+|ttyACM\d+|ttyAMA\d+|hvc\d+)$/.test(n))];
  try {
    for (const n of fs.readdirSync('/dev/pts')) if (/^\d+$/.test(n)) names.push(`pts/${n}`);
  } catch {
    // no devpts mounted: the static devices still count
  }
  let checked = 0;
  for (const n of names) {
    let st: fs.Stats;
    try {
      st = fs.statSync(`/dev/${n}`);
    } catch {
      continue;
    }
    if (!st.isCharacterDevice()) continue;
    assert.equal(ttyNameFromDev(st.rdev), n, `/dev/${n} is ${st.rdev >>> 8 & 0xfff}:${st.rdev & 0xff}`);
    checked++;
  }
  assert.ok(checked >= 3, `checked ${checked} devices`); // /dev/tty, /dev/console and /dev/ptmx exist everywhere
});

test('ttyNameFromDev on a real pty: tty_nr of a process run under script(1) names its terminal', (t) => {
  let out: string;
  try {
    out = execFileSync('script', ['-qec', 'tty; cat /proc/self/stat', '/dev/null'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
  } catch {
    t.skip('needs script(1) from util-linux and a devpts mount');
    return;
  }
  const lines = out.split(/\r?\n/);
  const tty = lines[0]!.replace(/^\/dev\//, '');
  const stat = lines[1]!;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ttyNr = Number(fields[4]); // field 7 of stat(5); fields[0] is field 3 (state)
  assert.match(tty, /^pts\/\d+$/);
  assert.equal(ttyNameFromDev(ttyNr), tty);
});

test('normalizeKernelTtyName: the kernel names pty slaves "ptsN"', () => {
  const cases: [string, string][] = [
    ['pts3', 'pts/3'],
    ['pts0', 'pts/0'],
    ['pts123456', 'pts/123456'],
    ['tty1', 'tty1'],
    ['ttyS0', 'ttyS0'],
    ['console', 'console'],
    ['/dev/pts7', 'pts/7'],
    ['/dev/tty2', 'tty2'],
    ['pts', 'pts'],
    ['ptsx', 'ptsx'],
    ['', ''],
  ];
  for (const [k, want] of cases) assert.equal(normalizeKernelTtyName(k), want, k);
});
