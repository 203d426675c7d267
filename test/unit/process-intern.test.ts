// What cached processes share (src/process/intern.ts and its use in the process cache): one frozen, scrubbed
// environment per distinct environment, one copy of each executable path and comm, one credentials object
// per distinct set, and no children set for a process without children. Sharing must never mix two
// processes' data up, and the tables must stay bounded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Creds, ExecEvent, ForkEvent } from '../../src/events/types.ts';
import { ProcessCache, processKey } from '../../src/process/cache.ts';
import { CredsTable, EnvTable, StringTable, detached, sameCreds } from '../../src/process/intern.ts';
import { Scrubber } from '../../src/process/scrub.ts';

const scrubber = new Scrubber();
const ENV = ['PATH=/usr/bin:/bin', 'HOME=/root', 'DB_PASSWORD=hunter2', 'JOB_ID=81723', 'AWS_SECRET_ACCESS_KEY=abcdefghijklmnop'];

function envTable(o?: { maxEntries?: number; maxBytes?: number }): EnvTable {
  return new EnvTable((raw) => scrubber.scrubEnv(raw), new StringTable(), { ...o, valueBlind: (n) => !scrubber.envAllowed(n) });
}

test('an environment is scrubbed once and shared, frozen, by every lookup with the same content', () => {
  const t = envTable();
  const a = t.get([...ENV]);
  const b = t.get(ENV.map((s) => s.slice(0))); // equal content, different strings
  assert.equal(a, b);
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a.env) && Object.isFrozen(a.raw) && Object.isFrozen(a.env[0]));
  assert.deepEqual(a.raw, ['PATH=/usr/bin:/bin', 'HOME=/root', 'DB_PASSWORD', 'JOB_ID', 'AWS_SECRET_ACCESS_KEY']);
  assert.deepEqual(a.env, [{ name: 'PATH', value: '/usr/bin:/bin' }, { name: 'HOME', value: '/root' }, { name: 'DB_PASSWORD' }, { name: 'JOB_ID' }, { name: 'AWS_SECRET_ACCESS_KEY' }]);
  assert.equal(a.scrubbed, 3);
  // A different environment (a reported value changed) is a different entry, and the withheld values show nowhere.
  const c = t.get(ENV.map((s) => (s.startsWith('HOME=') ? 'HOME=/other' : s)));
  assert.notEqual(c, a);
  assert.deepEqual(c.raw, ['PATH=/usr/bin:/bin', 'HOME=/other', 'DB_PASSWORD', 'JOB_ID', 'AWS_SECRET_ACCESS_KEY']);
  assert.ok(!JSON.stringify(c).includes('hunter2'));
  // Names reported by name only are one object across environments.
  assert.equal(c.env[3], a.env[3]);
  // Alternating between two environments still answers each correctly.
  assert.equal(t.get([...ENV]), a);
  assert.equal(t.get(['HOME=/home/x']).raw[0], 'HOME=/home/x');
  assert.equal(t.get([...ENV]), a);
  assert.deepEqual(t.get([]).env, []);
});

test('environments that differ only in values reported by name alone get one answer, anything else its own', () => {
  const t = envTable();
  const a = t.get([...ENV, '_=/usr/bin/cat']);
  // A shell sets `_` to each command's path; withheld values (and a secret's) change nothing reported.
  const b = t.get([...ENV.map((s) => (s.startsWith('DB_PASSWORD=') ? 'DB_PASSWORD=other' : s)), '_=/usr/bin/ls']);
  assert.equal(b, a);
  assert.deepEqual(b.raw, [...a.raw.slice(0, 5), '_']);
  assert.equal(b.scrubbed, 4);
  assert.ok(!JSON.stringify(b).includes('other') && !JSON.stringify(b).includes('/usr/bin/'));
  const st = t.stats();
  assert.deepEqual([st.hits, st.misses], [1, 1]);
  // Each of these changes what is reported: its own answer, equal to scrubbing it afresh.
  const others = [
    [...ENV, '_=/usr/bin/ls', 'X=1'], // one more variable
    [...ENV, '__=/usr/bin/cat'], // another name
    [...ENV, '_'], // no value at all: no value withheld
    [...ENV.map((s) => (s.startsWith('PATH=') ? 'PATH=/sbin' : s)), '_=/x'], // a reported value
    [...ENV.map((s) => (s.startsWith('JOB_ID=') ? 'JOB_IDX=1' : s)), '_=/x'], // a name, value-blind both
  ];
  for (const env of others) {
    t.get([...ENV, '_=/usr/bin/cat']); // the last environment is the one compared with
    const r = t.get(env);
    assert.notEqual(r, a, env.join(' '));
    const fresh = scrubber.scrubEnv(env);
    assert.deepEqual(r.env, fresh.env, env.join(' '));
    assert.equal(r.scrubbed, fresh.scrubbed, env.join(' '));
  }
  // A name without a value, then the same name with one: a value withheld where there was none.
  t.get([...ENV, '_']);
  const v = t.get([...ENV, '_=/usr/bin/cat']);
  assert.equal(v.scrubbed, 4);
  // Without valueBlind, only the same strings are the same environment.
  const plain = new EnvTable((raw) => scrubber.scrubEnv(raw), new StringTable());
  const p = plain.get([...ENV, '_=/usr/bin/cat']);
  assert.notEqual(plain.get([...ENV, '_=/usr/bin/ls']), p);
  assert.deepEqual(plain.get([...ENV, '_=/usr/bin/ls']).raw, p.raw);
});

test('the environment table is bounded and keeps answering correctly after it starts over', () => {
  const t = envTable({ maxEntries: 3 });
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 10; i++) {
      const r = t.get([`HOME=/home/u${i}`, `X${i}=secret${i}`]);
      assert.deepEqual(r.raw, [`HOME=/home/u${i}`, `X${i}`]);
    }
  }
  const st = t.stats();
  assert.ok(st.entries <= 3, `entries ${st.entries}`);
  assert.equal(st.hits + st.misses, 30);
});

test('strings and credentials: shared copies, equal to what was given, bounded tables', () => {
  const s = new StringTable(4);
  const a = s.intern('/usr/bin/' + 'true');
  assert.equal(a, '/usr/bin/true');
  assert.equal(s.intern(['/usr', 'bin', 'true'].join('/')), a);
  for (let i = 0; i < 20; i++) assert.equal(s.intern(`/bin/p${i}`), `/bin/p${i}`);
  assert.ok(s.size <= 4);
  assert.equal(s.intern(undefined as unknown as string), undefined, 'a malformed field passes through');
  const long = 'x'.repeat(40) + 'é\u{1F600}' + '\uD800';
  assert.equal(detached(long.slice(1)), long.slice(1));
  assert.equal(detached('short'), 'short');

  const creds = (uid: number): Creds => ({ uid, gid: 0, euid: uid, egid: 0, suid: uid, sgid: 0, fsuid: uid, fsgid: 0, capEffective: '0', capPermitted: '0', capInheritable: '0', loginuid: undefined });
  const c = new CredsTable(2);
  const root = c.intern(creds(0));
  assert.equal(c.intern(creds(0)), root);
  assert.notEqual(c.intern(creds(1000)), root);
  assert.ok(sameCreds(creds(5), creds(5)) && !sameCreds(creds(5), { ...creds(5), loginuid: 5 }));
  for (let i = 0; i < 10; i++) assert.equal(c.intern(creds(i)).uid, i);
});

// ---- in the cache -------------------------------------------------------------------------------------------

const S = (pid: number) => 1e9 + pid * 1e7;
const rootCreds = (): Creds => ({ uid: 0, gid: 0, euid: 0, egid: 0, suid: 0, sgid: 0, fsuid: 0, fsgid: 0, capEffective: '000001ffffffffff', capPermitted: '000001ffffffffff', capInheritable: '0000000000000000', loginuid: undefined });
function exec(pid: number, ppid: number, argv: string[], envRaw: string[], creds = rootCreds()): ExecEvent {
  return {
    type: 'exec', ktimeNs: S(pid) + 1, pid, tid: pid, cgroupId: 1, startNs: S(pid), ppid, parentStartNs: S(ppid), oldPid: pid, creds, ns: { cgroupId: 1, pidns: 1, mntns: 1, nspid: pid },
    exe: { path: `/usr/bin/${argv[0]}`, ino: 1, dev: 1, mtimeNs: 0 }, filename: `/usr/bin/${argv[0]}`, argv, argc: argv.length, envRaw, comm: argv[0]!, tty: '', flags: 0,
    argvTruncated: false, envTruncated: false, pathTruncated: false, subreaper: false,
  };
}
function fork(parent: number, child: number): ForkEvent {
  return { type: 'fork', ktimeNs: S(child), pid: parent, tid: parent, cgroupId: 1, parentStartNs: S(parent), childPid: child, childTgid: child, childStartNs: S(child), childPpid: parent, thread: false, comm: 'sh' };
}

test('cached processes with one environment share it; the applied event carries the scrubbed names', () => {
  const c = new ProcessCache({ scrubber, timers: false });
  c.apply(exec(10, 0, ['sh'], [...ENV]));
  const events: ExecEvent[] = [];
  for (const pid of [11, 12, 13]) {
    c.apply(fork(10, pid));
    const ev = exec(pid, 10, ['true', String(pid)], [...ENV]);
    c.apply(ev);
    events.push(ev);
  }
  c.apply(fork(10, 14));
  c.apply(exec(14, 10, ['true'], ['HOME=/srv', 'TOKEN=abc']));
  const e = (pid: number) => c.get(processKey(pid, S(pid)))!;
  assert.equal(e(11).image.env, e(12).image.env);
  assert.equal(e(12).image.env, e(13).image.env);
  assert.deepEqual(e(14).image.env, [{ name: 'HOME', value: '/srv' }, { name: 'TOKEN' }]);
  assert.deepEqual(events[0]!.envRaw, ['PATH=/usr/bin:/bin', 'HOME=/root', 'DB_PASSWORD', 'JOB_ID', 'AWS_SECRET_ACCESS_KEY']);
  assert.deepEqual(e(11).image.argv, ['true', '11']);
  assert.equal(e(11).image.exePath, e(12).image.exePath);
  assert.equal(e(11).creds, e(10).creds, 'an exec with unchanged credentials keeps sharing the parent\'s');
  assert.equal(c.stats().scrubbedEnv, 4 * 3 + 1, 'each exec counts its withheld values, shared or not');
});

test('a process without children shares the empty children set; its first child gets it its own', () => {
  const c = new ProcessCache({ scrubber, timers: false });
  c.apply(exec(20, 0, ['init'], []));
  c.apply(fork(20, 21));
  c.apply(fork(20, 22));
  c.apply(fork(21, 23));
  const e = (pid: number) => c.get(processKey(pid, S(pid)))!;
  assert.deepEqual([...e(20).children].sort(), [processKey(21, S(21)), processKey(22, S(22))]);
  assert.deepEqual([...e(21).children], [processKey(23, S(23))]);
  assert.equal(e(22).children.size, 0);
  assert.equal(e(23).children.size, 0);
  assert.equal(e(22).children, e(23).children, 'leaves share one empty set');
  assert.throws(() => e(22).children.add('x'), TypeError, 'which nobody can add to');
  assert.deepEqual(c.children(processKey(20, S(20))).map((x) => x.pid).sort(), [21, 22]);
});
