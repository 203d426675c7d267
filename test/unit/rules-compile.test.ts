// Compiled conditions (src/rules/compile.ts) against cel-js, the definition: every default rule and macro, and
// expressions using every operator the compiler handles, evaluated both ways over fuzzed contexts (fields
// present or not, of every type, strings with surrogate pairs, NaN, ints past 2^53): the same value or the
// same error, every time. And the point of it: the default rules run compiled, with no fallback to cel-js,
// on the events vigil makes.
import assert from 'node:assert/strict';
import test from 'node:test';
import type { OutputEvent } from '../../src/pipeline/types.ts';
import { compileCondition, conditionTest, fallbacks } from '../../src/rules/compile.ts';
import { COMMON_EVENT_KEYS } from '../../src/rules/fields.ts';
import { conditionGuard, readsEventType, withEventType } from '../../src/rules/prefilter.ts';
import { conditionEnvironment, contextNames, DEFAULT_RULES_FILE, readRuleFile, ruleSetFor, type RuleSet } from '../../src/rules/rules.ts';

const set = ruleSetFor({ enabled: true, defaults: true, files: [], inline: [], disabled: [], minPriority: 'debug' }) as RuleSet;
const items = readRuleFile(DEFAULT_RULES_FILE).items as Record<string, unknown>[];
const macroConditions = items.filter((i) => typeof i.macro === 'string').map((i) => i.condition as string);
const env = conditionEnvironment(set.lists, set.macros);
const names = contextNames(set.macros);

/** Expressions for every operator and method the compiler handles, edge cases included. */
const EXTRA = [
  'event.ret >= 0', 'event.ret == 0', 'event.ret == 1.5', 'event.ret >= -1', 'event.ret == -1', 'event.ret != -2.5', 'event.ret > --1', 'event.i == 9007199254740993', 'event.i < -9007199254740993', 'event.ret != -1', 'event.ret < 2.5', 'event.ret <= 9007199254740993', 'event.ret > -9223372036854775807', 'event.ret + 1 > 0', 'event.ret + 1.0 > 0.5', 'event.ret - 1.0 == 0.0', 'event.i + 1 == 2', 'event.i - 2 < 0', '9223372036854775807 + event.i > 0', '-event.ret < 0', '-event.i == -1',
  'event.path.startsWith("/etc/")', 'event.path.endsWith(".lock")', 'event.path.contains("x")', 'event.path.substring(1) == "etc"', 'event.path.substring(1, 3) == "et"', 'event.path.substring(4, 2) == ""', 'event.path.lastIndexOf("/") > 0', 'event.path.indexOf("") == 0', 'event.path.lastIndexOf("") >= 0', 'size(event.path) > 3', 'event.path.size() == 4', 'size(process.argv) >= 1', 'process.argv.size() > 0',
  'event.?sensitive.orValue(false)', 'event.?old.euid.orValue(0) != 0', 'event.?old.?euid.hasValue()', '!event.?path.hasValue()', 'event.?path.orValue("") == ""', 'event.?old.orValue({}) == {}', 'has(event.path)', 'has(process.tty)', 'has(container.labels.app)', 'has(event.old.euid)',
  'process.?comm.orValue("") in shell_binaries', 'event.nr in [1, 2, 3]', 'event.ret in [0, -1]', 'event.ret in [0.5, 1]', 'event.path in ["/etc", "x"]', '"x" in process.argv', '1 in ancestors', 'event.path in process.argv',
  'process.?argv.orValue([]).exists(a, a.startsWith("-"))', 'process.?argv.orValue([]).all(a, a.size() < 10)', 'ancestors.exists(p, p == 1)', 'ancestors.all(p, p > 0)', 'event.list.exists(x, x == 1)', 'event.list.exists(x, x.startsWith("a"))',
  // Over a list known when compiling, alone and inside another comprehension.
  'process.argv.exists(a, shell_binaries.exists(t, a.contains(t)))', '["a", "x"].exists(t, event.path.contains(t))', '[1, 2].all(n, n > event.ret)', 'process.argv.exists(a, ["-e", "x"].all(t, a != t))', 'shell_binaries.all(b, b != process.comm)',
  'event.flag ? event.ret == 0 : event.ret != 0', '!(event.ret == 0) || event.path == ""', 'event.flag && event.path == "/etc"', 'event.flag || event.ret == 0', 'event.x == null', 'event.s + "x" == "ax"', 'event.s == event.path', 'event.ret == event.i', 'event.ret == event.flag', 'event.ret == event.s',
  'event.s < "b"', 'process.comm == "bash" && !interactive', 'in_container || package_manager',
  // Conditions whose value is a field's (a missing one is an error, a non-boolean no match).
  'event.sensitive', 'event.flag', 'event.list.exists(x, x)', 'event.list.all(x, x)', 'event.flag ? event.s : event.path',
];

const STRINGS = ['', '/etc', 'a', 'bash', '-e', 'x😀y', '\uD83D', '/etc/cni/net.d/cni.lock', '/var/log/syslog', 'O_WRONLY|O_TRUNC', '/usr/bin/runc', 'runc', 'podman', 'exec:sh', 'PTRACE_ATTACH', 'BPF_PROG_LOAD', '/memfd:x', '/dev/shm/a', 'a (deleted)', '/etc/shadow'];
const NUMBERS = [0, 1, -1, 2, 1.5, NaN, -0, Infinity, 2 ** 60, 9007199254740993, 4294967295];

/** A small seeded generator: the same contexts on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fuzzContexts(n: number, seed: number): OutputEvent[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const scalar = (): unknown => {
    const k = r();
    return k < 0.4 ? pick(STRINGS) : k < 0.7 ? pick(NUMBERS) : k < 0.8 ? r() < 0.5 : k < 0.85 ? null : k < 0.9 ? BigInt(pick([0, 1, -1, 7])) : k < 0.95 ? [pick(STRINGS), pick(NUMBERS)] : { euid: pick(NUMBERS) };
  };
  /** Usually the kind of value vigil puts there, sometimes anything, sometimes absent or set to undefined. */
  const field = (o: Record<string, unknown>, k: string, usual: () => unknown): void => {
    const k2 = r();
    if (k2 < 0.2) return;
    o[k] = k2 < 0.75 ? usual() : k2 < 0.97 ? scalar() : undefined;
  };
  const out: OutputEvent[] = [];
  for (let i = 0; i < n; i++) {
    const ev: Record<string, unknown> = { type: pick(['open', 'exec', 'mount', 'setns', 'creds', 'ptrace', 'bpf', 'module_load', 'rename']) };
    field(ev, 'ret', () => pick([0, 3, -1, -13]));
    field(ev, 'nr', () => pick([257, 2, -1]));
    field(ev, 'i', () => pick([1, 2, 0]));
    field(ev, 'path', () => pick(STRINGS));
    field(ev, 'resolvedPath', () => pick(STRINGS));
    field(ev, 's', () => pick(STRINGS));
    field(ev, 'flagNames', () => pick(['O_RDONLY', 'O_WRONLY|O_TRUNC', 'O_RDWR|O_CREAT']));
    field(ev, 'sensitive', () => true);
    field(ev, 'write', () => r() < 0.5);
    field(ev, 'flag', () => r() < 0.5);
    field(ev, 'x', () => null);
    field(ev, 'request', () => pick(['PTRACE_ATTACH', 'PTRACE_PEEKDATA']));
    field(ev, 'bpfCmd', () => pick(['BPF_PROG_LOAD', 'BPF_MAP_CREATE']));
    field(ev, 'list', () => [pick(NUMBERS), pick(STRINGS)]);
    field(ev, 'old', () => ({ euid: pick([0, 1000]) }));
    field(ev, 'new', () => (r() < 0.5 ? { euid: pick([0, 1000]) } : {}));
    if (r() < 0.9) {
      const p: Record<string, unknown> = { pid: 10 };
      field(p, 'comm', () => pick(['bash', 'runc', 'podman', 'apt', 'nc', 'vi', 'x😀y']));
      field(p, 'exe', () => pick(['/usr/bin/runc', '/usr/bin/bash', '/memfd:x', '/dev/shm/a', 'a (deleted)', '', 'runc']));
      field(p, 'argv', () => [pick(STRINGS), pick(STRINGS), pick(STRINGS)]);
      field(p, 'tty', () => 'pts/0');
      ev.process = p;
    }
    if (r() < 0.7) {
      const p: Record<string, unknown> = { pid: 1 };
      field(p, 'comm', () => pick(['bash', 'runc', 'dpkg']));
      field(p, 'exe', () => pick(['/usr/bin/runc', '/usr/bin/bash']));
      ev.parent = p;
    }
    if (r() < 0.5) {
      const c: Record<string, unknown> = {};
      field(c, 'id', () => 'abc');
      field(c, 'image', () => 'img');
      field(c, 'labels', () => (r() < 0.5 ? { app: 'x' } : {}));
      ev.container = c;
    }
    if (r() < 0.7) ev.ancestors = r() < 0.9 ? [1, 2, 10].slice(0, 1 + Math.floor(r() * 3)) : [1, 'x'];
    out.push(ev as OutputEvent);
  }
  return out;
}

/** What an evaluation gave: its value, or its error's message. */
function outcome(f: () => unknown): { value?: unknown; error?: string } {
  try {
    return { value: f() };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

const same = (a: { value?: unknown; error?: string }, b: { value?: unknown; error?: string }): boolean => {
  if (a.error !== undefined || b.error !== undefined) return a.error === b.error;
  if (typeof a.value === 'number' && typeof b.value === 'number') return Object.is(a.value, b.value) || a.value === b.value;
  try {
    assert.deepStrictEqual(a.value, b.value);
    return true;
  } catch {
    return false;
  }
};

test('compiled conditions give exactly what cel-js gives: every default rule and macro, every operator, on fuzzed contexts', () => {
  const conditions = [...set.rules.map((r) => r.condition), ...macroConditions, ...EXTRA];
  const events = fuzzContexts(3000, 42);
  let compiledCount = 0;
  let compared = 0;
  for (const src of conditions) {
    const p = env.parse(src);
    assert.ok(p.check().valid, `${src} type-checks`);
    const interpret = (ctx: Record<string, unknown>) => p(ctx);
    const compiled = compileCondition(p.ast, names, set.lists);
    if (compiled) compiledCount++;
    // As the rule set runs it: cel-js called from inside the compiled function where it gives up; and as a
    // rule's match: whether the value is true.
    const fast = compileCondition(p.ast, names, set.lists, { interpret }) ?? interpret;
    const isTrue = conditionTest(p.ast, names, set.lists, interpret);
    for (const ev of events) {
      // Two contexts: macros are memoized per context, and each side must evaluate them itself.
      const want = outcome(() => p(set.context(ev)));
      const got = outcome(() => fast(set.context(ev) as unknown as Record<string, unknown>));
      const truth = outcome(() => isTrue(set.context(ev) as unknown as Record<string, unknown>));
      compared++;
      if (!same(want.error !== undefined ? want : { value: want.value === true }, truth)) assert.fail(`${src}: isTrue differs on ${JSON.stringify(ev, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))}`);
      if (!same(want, got)) assert.fail(`${src}\n  on ${JSON.stringify(ev, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))}\n  cel-js: ${JSON.stringify(want, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))}\n  compiled: ${JSON.stringify(got, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))}`);
    }
  }
  assert.equal(compared, conditions.length * events.length);
  // All but the expressions on purpose outside the compiler compile.
  assert.equal(compiledCount, conditions.length - EXTRA.filter((e) => e.includes('orValue({})')).length, 'every condition but those comparing maps compiles');
});

test('the default rules run compiled on the events vigil makes: no fallback to cel-js', () => {
  const exe = (e: string, comm: string, extra: Record<string, unknown> = {}) => ({ pid: 5, ppid: 1, key: '5:1', execId: '5:1:x', startNs: 1, comm, exe: e, argv: [comm, '-x'], uid: 0, gid: 0, user: 'root', ...extra });
  const events: OutputEvent[] = [];
  for (const proc of [exe('/usr/bin/bash', 'bash', { tty: 'pts/0' }), exe('/usr/bin/cat', 'cat'), exe('/usr/sbin/runc', 'runc'), exe('/usr/bin/nc', 'nc')]) {
    for (const container of [undefined, { id: 'c1', enrichment: 'done', name: 'web', image: 'nginx' }]) {
      const base = { time: 't', ktimeNs: 1, process: proc, parent: { pid: 1, comm: 'systemd', exe: '/usr/lib/systemd/systemd', argv: ['systemd'], execId: '1:1:snap' }, ancestors: [1], ...(container ? { container } : {}) };
      events.push({ ...base, type: 'open', group: 'file', syscall: 'openat', nr: 257, ret: 3, path: '/etc/passwd', resolvedPath: '/etc/passwd', flags: 1, flagNames: 'O_WRONLY', write: true, sensitive: true } as OutputEvent);
      events.push({ ...base, type: 'open', group: 'file', syscall: 'openat', nr: 257, ret: 3, path: 'a.txt', flags: 0, flagNames: 'O_RDONLY' } as OutputEvent);
      events.push({ ...base, type: 'open', group: 'file', syscall: 'openat', nr: 257, ret: -2, errno: 'ENOENT', path: '/etc/shadow', flags: 0, flagNames: 'O_RDONLY' } as OutputEvent);
      events.push({ ...base, type: 'exec', filename: proc.exe, argc: 2 } as OutputEvent);
      events.push({ ...base, type: 'mount', group: 'other', syscall: 'mount', nr: 165, ret: 0, source: 'proc', target: '/proc', fstype: 'proc' } as OutputEvent);
      events.push({ ...base, type: 'setns', group: 'other', syscall: 'setns', nr: 308, ret: 0, nsType: 'mnt', nsInode: 4026531841 } as OutputEvent);
      events.push({ ...base, type: 'creds', syscall: 'setuid', old: { uid: 1000, euid: 1000 }, new: { uid: 0, euid: 0 } } as OutputEvent);
      events.push({ ...base, type: 'ptrace', group: 'other', syscall: 'ptrace', nr: 101, ret: 0, request: 'PTRACE_ATTACH', targetPid: 9 } as OutputEvent);
      events.push({ ...base, type: 'bpf', group: 'other', syscall: 'bpf', nr: 321, ret: 4, bpfCmd: 'BPF_PROG_LOAD', bpfName: 'x', bpfType: 'kprobe' } as OutputEvent);
      events.push({ ...base, type: 'module_load', group: 'other', syscall: 'finit_module', nr: 313, ret: 0, moduleName: 'x' } as OutputEvent);
    }
  }
  const before = fallbacks.n;
  let checked = 0;
  let matched = 0;
  for (const ev of events) {
    const ctx = set.context(ev);
    for (const r of set.rulesFor(ev.type)) {
      checked++;
      if (r.match(ctx)) matched++;
    }
  }
  assert.ok(checked > 100);
  assert.ok(matched > 10, `some rules match (${matched})`);
  assert.equal(fallbacks.n - before, 0, 'no condition fell back to cel-js');
});

test('a context made over for the next event (the engine reuses one per batch) evaluates as a new one', () => {
  let reused: ReturnType<RuleSet['context']> | undefined;
  let compared = 0;
  for (const ev of fuzzContexts(2000, 7)) {
    reused = set.context(ev, reused);
    const fresh = set.context(ev);
    // Macros first, in an order that differs per event: a value memoized for the last event must not show.
    for (const m of [...set.macros].sort(() => (ev.ancestors?.length ?? 0) - 1)) assert.deepEqual(outcome(() => (reused as unknown as Record<string, unknown>)[m]), outcome(() => (fresh as unknown as Record<string, unknown>)[m]), m);
    for (const r of set.rules) {
      compared++;
      assert.deepEqual(outcome(() => r.match(reused!)), outcome(() => r.match(fresh)), r.name);
    }
  }
  assert.ok(compared > 10_000);
});

test('a guard is false only where its condition is false without an error: every default rule, every operator, on fuzzed events', () => {
  const common = new Set(COMMON_EVENT_KEYS);
  // Each expression alone, and as a conjunct beside conditions on what a guard cannot see (which may fail:
  // a missing tty is an error, and CEL's && is still false when the other side is).
  const conditions = [...set.rules.map((r) => r.condition), ...EXTRA.flatMap((x) => [x, `${x} && process.tty == "pts/0"`, `has(container.id) && (${x}) && in_container`])];
  const events = fuzzContexts(3000, 11);
  let guarded = 0;
  let declined = 0;
  let passedAndTrue = 0;
  for (const src of conditions) {
    const p = env.parse(src);
    const guard = conditionGuard(p.ast, set.lists, common);
    if (!guard) continue;
    guarded++;
    for (const ev of events) {
      const fields = Object.fromEntries(Object.entries(ev).filter(([k]) => !common.has(k)));
      const want = outcome(() => p(set.context(ev)));
      if (guard(fields)) {
        if (want.value === true) passedAndTrue++;
        continue;
      }
      declined++;
      if (want.error !== undefined || want.value !== false) assert.fail(`${src}: the guard turned down an event whose condition gives ${JSON.stringify(want)}: ${JSON.stringify(ev, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))}`);
    }
  }
  // Not vacuous: most conditions have a guard, guards turn events down, and let through events that match.
  assert.ok(guarded > conditions.length / 2, `${guarded} of ${conditions.length} conditions have a guard`);
  assert.ok(declined > 10_000, `declined ${declined}`);
  assert.ok(passedAndTrue > 1000, `passed and true ${passedAndTrue}`);
});

test('guards are drawn from top-level conjuncts that read only the event\'s own members and named lists', () => {
  const common = new Set(COMMON_EVENT_KEYS);
  const has = (src: string) => conditionGuard(env.parse(src).ast, set.lists, common) !== undefined;
  for (const src of ['event.ret >= 0', 'event.ret >= 0 && process.comm == "x"', 'process.comm == "x" && (event.?path.orValue("") in shell_binaries && in_container)', 'has(event.path) && event.path.startsWith("/etc/")']) assert.ok(has(src), src);
  for (const src of ['true', 'true && process.comm == "x"', 'process.comm == "x"', 'event.ret >= 0 || process.comm == "x"', '!(event.ret >= 0 && in_container)', 'event.type == "open"', 'event.process.comm == "x"', 'size(event) > 0', 'in_container', 'event.?path.orValue("") == process.?exe.orValue("")']) assert.ok(!has(src), src);
  // The default rules about files have guards; a type whose rules all have one is guarded.
  for (const name of ['Sensitive file modified', 'Read sensitive file untrusted', 'Log file truncated', 'Process attached with ptrace', 'BPF program loaded']) assert.ok(set.rules.find((x) => x.name === name)?.guard, name);
  assert.ok(set.guardFor('open'), 'opens are guarded');
  assert.equal(set.guardFor('exec'), undefined, 'execs: rules about the process only');
});

test('a condition that reads event.type is guarded per type, the type put in its place: an ordinary open is turned down on its members', () => {
  const common = new Set(COMMON_EVENT_KEYS);
  const ast = env.parse('event.ret >= 0 && (event.type == "truncate" || event.?write.orValue(false))').ast;
  assert.ok(readsEventType(ast));
  assert.equal(readsEventType(env.parse('event.?type.orValue("") == "open"').ast), false, 'an optional read is not the type');
  const forOpen = conditionGuard(withEventType(ast, 'open'), set.lists, common)!;
  const forTruncate = conditionGuard(withEventType(ast, 'truncate'), set.lists, common)!;
  assert.equal(forOpen({ ret: 3, path: '/usr/lib/x' }), false, 'a read-only open: not a truncate, not a write');
  assert.equal(forOpen({ ret: 3, path: '/tmp/x', write: true }), true);
  assert.equal(forTruncate({ ret: 0, path: '/srv/x' }), true, 'a truncate');
  assert.equal(forTruncate({ ret: -2, path: '/srv/x' }), false);
  // The default set: Log file truncated reads event.type. An ordinary successful read-only open is turned down
  // by every rule about opens on its members alone (it was let through to the rules when that rule's guard
  // could only read ret: bench/pipeline's rules stage doubled).
  const open = set.guardFor('open')!;
  assert.equal(open({ group: 'file', syscall: 'openat', ret: 3, path: '/usr/lib/x86_64-linux-gnu/libc.so.6', flags: 524288, flagNames: 'O_RDONLY|O_CLOEXEC', dfd: -100 }), false);
  assert.equal(open({ group: 'file', syscall: 'openat', ret: 3, path: '/var/log/app.log', flags: 577, flagNames: 'O_WRONLY|O_CREAT|O_TRUNC', write: true, dfd: -100 }), true, 'a truncating open under /var/log');
  const truncate = set.guardFor('truncate')!;
  assert.equal(truncate({ group: 'file', syscall: 'truncate', ret: 0, path: '/var/log/syslog', length: 0, dfd: -100 }), true);
  assert.equal(truncate({ group: 'file', syscall: 'truncate', ret: 0, path: '/srv/db/data', length: 0, dfd: -100 }), false, 'not a log, not sensitive');
});
