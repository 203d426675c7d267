// Hostile configuration: a wrong type at every leaf of the schema, out-of-range numbers, unknown fields at
// every level, huge values, random mutations of a valid config (as objects, as YAML files and as --set
// flags), YAML syntax errors and bytes that are not UTF-8. Each is accepted, or rejected with a ConfigError
// naming the path of the bad field and what was expected; nothing else is ever thrown, and nothing is
// half-applied: the defaults and the caller's input are never changed. Seeded: see test/helpers/fuzz.ts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { parse, stringify } from 'yaml';
import { ConfigError, loadConfig, parseSet, validateConfig } from '../../src/config/config.ts';
import { fuzzSync, type Rng } from '../helpers/fuzz.ts';

const PRISTINE = structuredClone(loadConfig());

type Path = (string | number)[];
const dotted = (p: Path) => p.join('.');

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every leaf of the default config (scalars, empty containers, list elements) with its path. */
function leaves(v: unknown, p: Path = []): { path: Path; value: unknown }[] {
  if (isPlain(v) && Object.keys(v).length) return Object.entries(v).flatMap(([k, x]) => leaves(x, [...p, k]));
  if (Array.isArray(v) && v.length) return v.flatMap((x, i) => leaves(x, [...p, i]));
  return [{ path: p, value: v }];
}

/** Every mapping of the default config (where an unknown field can be added), the root included. */
function mappings(v: unknown, p: Path = []): Path[] {
  if (!isPlain(v)) return [];
  return [p, ...Object.entries(v).flatMap(([k, x]) => mappings(x, [...p, k]))];
}

function setAt(root: Record<string, unknown>, p: Path, value: unknown): Record<string, unknown> {
  const out = structuredClone(root);
  let cur: Record<string | number, unknown> = out;
  p.forEach((k, i) => {
    if (i === p.length - 1) Object.defineProperty(cur, k, { value, enumerable: true, writable: true, configurable: true });
    else {
      if (!isPlain(cur[k]) && !Array.isArray(cur[k])) cur[k] = {};
      cur = cur[k] as Record<string | number, unknown>;
    }
  });
  return out;
}

/** Runs a validation; it must return a config or throw a ConfigError with well-formed issues. */
function outcome(run: () => unknown, what: string): ConfigError | undefined {
  try {
    run();
    return undefined;
  } catch (err) {
    assert.ok(err instanceof ConfigError, `${what}: threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    assert.equal(err.code, 'EINVAL');
    assert.ok(err.issues.length > 0, `${what}: no issues`);
    for (const i of err.issues) {
      assert.ok(i.path.length > 0 && i.message.length > 0, `${what}: empty issue ${JSON.stringify(i)}`);
      assert.ok(!/^Invalid input$/.test(i.message), `${what}: the message does not say what is expected: ${i.path}: ${i.message}`);
      assert.ok(i.message.length < 600, `${what}: message of ${i.message.length} chars`);
    }
    return err;
  }
}

/** The rejection names `p` (or a field above it) and says what it expects. */
function assertNames(err: ConfigError | undefined, p: Path, what: string): void {
  assert.ok(err, `${what}: accepted`);
  const want = dotted(p);
  // The field itself, a field above it (a union, a mapping), or one inside it (a list's element).
  const hit = err.issues.find((i) => i.path === want || want.startsWith(`${i.path}.`) || i.path.startsWith(`${want}.`) || (i.path === '(root)' && p.length === 1));
  assert.ok(hit, `${what}: no issue names ${want}: ${err.message}`);
  assert.match(hit.message, /expected|must|unknown|not |needs|names/, `${what}: ${hit.path}: ${hit.message}`);
  assert.ok(err.message.includes(hit.path), 'the message carries the path');
}

// Values that are valid although their type differs from the default's.
const ALSO_VALID: Record<string, unknown[]> = {
  'events.network': [{}],
  'events.other.ptrace': [true, false],
  'events.other.bpf': [true, false],
  'containers.runtimes': [[]],
};

function wrongTypes(v: unknown): unknown[] {
  if (typeof v === 'boolean') return ['yes', 1, 0, [], {}, null, 'true'];
  if (typeof v === 'number') return ['big', '32', true, [], {}, null];
  if (typeof v === 'string') return [5, true, [], {}, null];
  if (Array.isArray(v)) return ['x', 5, true, {}, null, [5], [null]];
  if (isPlain(v)) return ['x', 5, true, [], null];
  return [];
}

test('a wrong type at every leaf of the schema is rejected naming that leaf', (t) => {
  const ls = leaves(PRISTINE);
  assert.ok(ls.length > 40, `walked ${ls.length} leaves`);
  for (const { path: p, value } of ls) {
    for (const bad of wrongTypes(value)) {
      if ((ALSO_VALID[dotted(p)] ?? []).some((ok) => JSON.stringify(ok) === JSON.stringify(bad))) continue;
      const raw = setAt(PRISTINE as unknown as Record<string, unknown>, p, bad);
      const before = structuredClone(raw);
      const what = `${dotted(p)} = ${JSON.stringify(bad)}`;
      assertNames(outcome(() => validateConfig(raw, 'fuzz'), what), p, what);
      assert.deepEqual(raw, before, `${what}: validation changed its input`);
    }
  }
  // Through --set too: the same leaf named on the command line.
  for (const { path: p, value } of ls) {
    if (typeof p.at(-1) === 'number') continue; // list elements are set as whole lists on the command line
    const bad = wrongTypes(value)[0];
    if ((ALSO_VALID[dotted(p)] ?? []).includes(bad)) continue;
    const expr = `${dotted(p)}=${stringify(bad, { flow: true } as never).trim()}`;
    assertNames(outcome(() => loadConfig({ overrides: [parseSet(expr)] }), `--set ${expr}`), p, `--set ${expr}`);
  }
  t.diagnostic(`${ls.length} leaves`);
});

test('every number has a range: negative, fractional, huge and non-finite values are rejected', () => {
  const nums = leaves(PRISTINE).filter((l) => typeof l.value === 'number');
  assert.ok(nums.length >= 10);
  for (const { path: p } of nums) {
    for (const bad of [-1, 0.5, 2 ** 40, 2 ** 53 + 2, 1e308, Number.POSITIVE_INFINITY, Number.NaN]) {
      const what = `${dotted(p)} = ${bad}`;
      const err = outcome(() => validateConfig(setAt(PRISTINE as unknown as Record<string, unknown>, p, bad), 'fuzz'), what);
      assertNames(err, p, what);
      assert.equal(err!.issues.length, 1, `${what}: one issue per bad field: ${err!.message}`);
    }
  }
});

test('an unknown field at any level is rejected naming it and listing the known ones', () => {
  const objs = [...mappings(PRISTINE), ['process', 'scrub']];
  for (const p of objs) {
    for (const key of ['bogusKey', '__proto__', 'constructor', 'toString', 'x.y', '']) {
      const raw = setAt(PRISTINE as unknown as Record<string, unknown>, [...p, key], { sizeMiB: 1 });
      const what = `unknown field ${JSON.stringify(key)} in ${dotted(p) || '(root)'}`;
      const err = outcome(() => validateConfig(raw, 'fuzz'), what);
      assert.ok(err, `${what}: accepted`);
      const hit = err.issues.find((i) => (i.path === (dotted(p) || '(root)') || i.path === dotted([...p, key])) && `${i.path} ${i.message}`.includes(key));
      assert.ok(hit, `${what}: ${err.message}`);
      assert.match(hit.message, /unknown|not a known/);
    }
  }
});

test('huge values are rejected quickly with a short message', () => {
  const cases: [Path, unknown][] = [
    [['agent', 'socket'], `/${'s'.repeat(1 << 20)}`],
    [['agent', 'socket'], '/run/\0/vigil.sock'],
    [['agent', 'dataDir'], '/var/lib/vigil\0x'],
    [['agent', 'listen'], `127.0.0.1:${'9'.repeat(1000)}`],
    [['agent', 'listen'], '127.0.0.1:0'],
    [['agent', 'listen'], '127.0.0.1:65536'],
    [['agent', 'listen'], 'localhost'],
    [['filters', 'comm', 'include'], Array.from({ length: 100_000 }, (_, i) => `c${i}`)],
    [['filters', 'pathPrefixes'], [`/${'p'.repeat(100_000)}`]],
    [['containers', 'containerdNamespaces'], Array.from({ length: 10 }, () => '')],
    [['sinks', 'nested'], JSON.parse(`${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`)],
    [['process', 'scrub', 'deep'], JSON.parse(`${'['.repeat(5000)}${']'.repeat(5000)}`)],
    [['x'.repeat(100_000)], 1],
  ];
  for (const [p, bad] of cases) {
    const what = `${dotted(p).slice(0, 60)} = ${typeof bad === 'string' ? bad.slice(0, 60) : Array.isArray(bad) ? `a list of ${bad.length}` : typeof bad}`;
    const err = outcome(() => validateConfig(setAt(PRISTINE as unknown as Record<string, unknown>, p, bad), 'fuzz'), what);
    assert.ok(err, `${what}: accepted`);
    assert.ok(err.message.length < 2000, `${what}: message of ${err.message.length} chars`);
  }
  // And good values at the edges are accepted.
  for (const [p, ok] of [
    [['agent', 'listen'], '[::1]:9750'],
    [['agent', 'listen'], '127.0.0.1:65535'],
    [['agent', 'socket'], `/${'s'.repeat(106)}`],
    [['agent', 'token'], 'ünïcödé-日本-🔑'],
  ] as [Path, unknown][]) {
    assert.equal(outcome(() => validateConfig(setAt(PRISTINE as unknown as Record<string, unknown>, p, ok), 'fuzz'), dotted(p)), undefined, `${dotted(p)} = ${String(ok)}`);
  }
});

/** Values of every shape, some valid somewhere. */
function anyValue(rng: Rng, depth = 0): unknown {
  switch (rng.int(0, depth > 2 ? 6 : 9)) {
    case 0: return rng.nastyNumber();
    case 1: return rng.int(0, 64);
    case 2: return rng.chance(0.5);
    case 3: return null;
    case 4: return rng.ascii(0, 20);
    case 5: return rng.pick(['auto', 'all', 'host', 'containers', 'bpf', 'procfs', 'attach', 'load', '/etc', '/run/x.sock', '127.0.0.1:9750', '', 'json', 'text']);
    case 6: return String.fromCharCode(...Array.from({ length: rng.int(1, 8) }, () => rng.int(0, 0xd7ff)));
    case 7: return Array.from({ length: rng.int(0, 4) }, () => anyValue(rng, depth + 1));
    default: return Object.fromEntries(Array.from({ length: rng.int(0, 3) }, () => [rng.pick(['enabled', 'path', 'include', 'x', 'open', rng.ascii(1, 8)]), anyValue(rng, depth + 1)]));
  }
}

/** One random change to the defaults: at an existing leaf or mapping, or a new key. */
function mutate(rng: Rng): { raw: Record<string, unknown>; at: Path } {
  const ls = leaves(PRISTINE).map((l) => l.path);
  const objs = mappings(PRISTINE);
  const at: Path = rng.chance(0.7) ? rng.pick(ls) : [...rng.pick(objs), rng.pick(['bogus', 'enabled', 'path', rng.ascii(1, 10)])];
  return { raw: setAt(PRISTINE as unknown as Record<string, unknown>, at, anyValue(rng)), at };
}

/** Whether `text`, read as YAML, is `v`: false for text that is not YAML at all ("|x" throws). */
function readsBack(text: string, v: unknown): boolean {
  try {
    return parse(text) === v;
  } catch {
    return false;
  }
}

function tmp(t: TestContext): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-fuzzcfg-'));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

test('random mutations: accepted, or rejected naming the changed field; the same as an object, a file and a flag', (t) => {
  const dir = tmp(t);
  const file = path.join(dir, 'vigil.yaml');
  let rejected = 0;
  fuzzSync(t, 'config mutations', 250, (rng, i) => {
    const { raw, at } = mutate(rng);
    const before = structuredClone(raw);
    const what = `${dotted(at)} = ${JSON.stringify(raw && valueAt(raw, at))?.slice(0, 80)}`;
    const err = outcome(() => validateConfig(raw, 'fuzz'), what);
    assert.deepEqual(raw, before, `${what}: validation changed its input`);
    if (err) {
      rejected++;
      const top = String(at[0]);
      assert.ok(err.issues.every((x) => x.path.split('.')[0] === top || (x.path === '(root)' && x.message.includes(top))), `${what}: an issue outside the changed section: ${err.message}`);
    }
    // The same config as a YAML file: the same verdict.
    if (i % 3 === 0) {
      fs.writeFileSync(file, stringify(raw));
      const ferr = outcome(() => loadConfig({ file }), `${what} (file)`);
      assert.equal(ferr === undefined, err === undefined, `${what}: file verdict ${ferr?.message} vs object verdict ${err?.message}`);
    }
    // A scalar change as a --set flag: the same verdict.
    const v = valueAt(raw, at);
    // (Flag values are YAML: only scalars that read back as themselves are typed the same way.)
    if ((typeof v === 'number' && Number.isFinite(v) && readsBack(String(v), v)) || typeof v === 'boolean' || (typeof v === 'string' && v !== '' && !v.includes('\0') && readsBack(v, v))) {
      if (at.every((k) => typeof k === 'string' && /^[A-Za-z][\w-]*$/.test(k))) {
        const serr = outcome(() => loadConfig({ overrides: [parseSet(`${dotted(at)}=${String(v)}`)] }), `--set ${dotted(at)}=${String(v)}`);
        assert.equal(serr === undefined, err === undefined, `${what}: flag verdict ${serr?.message} vs object verdict ${err?.message}`);
      }
    }
  });
  assert.ok(rejected > 20, `mutations rejected: ${rejected}`);
  assert.deepEqual(loadConfig(), PRISTINE, 'the defaults are untouched');
});

function valueAt(raw: unknown, p: Path): unknown {
  let cur = raw;
  for (const k of p) cur = isPlain(cur) || Array.isArray(cur) ? (cur as Record<string | number, unknown>)[k] : undefined;
  return cur;
}

test('--set forms: malformed expressions are ConfigErrors naming the expression', (t) => {
  const fixed = ['nope', '=5', '=', 'a..b=1', '.a=1', 'a.=1', ' ring.sizeMiB=32', 'ring sizeMiB=32', 'ring.__proto__.x=1', '__proto__=1', 'ring.size MiB=1', 'ring.sizeMiB\0=1', '日本=1', 'ring.0=1'];
  for (const e of fixed) {
    const err = outcome(() => parseSet(e), `--set ${JSON.stringify(e)}`);
    assert.ok(err, `--set ${JSON.stringify(e)} accepted`);
    assert.match(err.message, /--set/);
    assert.match(err.issues[0]!.message, /expected key\.path=value|not a configuration path/);
  }
  const pieces = ['ring', 'sizeMiB', 'agent', 'socket', 'x', '', '.', '..', '=', '==', '[', ']', '{', '}', ':', ' ', '"', "'", '#', '&a', '*a', '!!str', '!x', '\0', '\n', '-', '1e400', '0x20', 'true', 'null', '~', '[1, 2]', '{a: 1}', '日本'];
  fuzzSync(t, '--set noise', 600, (rng) => {
    const expr = Array.from({ length: rng.int(1, 8) }, () => rng.pick(pieces)).join('');
    let ov: Record<string, unknown> | undefined;
    const perr = outcome(() => (ov = parseSet(expr)), `parseSet(${JSON.stringify(expr)})`);
    if (!perr) {
      assert.ok(isPlain(ov));
      outcome(() => loadConfig({ overrides: [ov] }), `--set ${JSON.stringify(expr)}`);
    }
  });
  assert.deepEqual(loadConfig(), PRISTINE);
});

test('YAML syntax errors and odd documents: ConfigError with the file and line, or a valid config', (t) => {
  const dir = tmp(t);
  const file = path.join(dir, 'vigil.yaml');
  const base = stringify({ agent: { socket: '/run/vigil/test.sock', token: 'abc' }, ring: { sizeMiB: 32 }, filters: { comm: { exclude: ['cron', 'sshd'] }, pathPrefixes: ['/etc'] }, process: { threads: true } });
  const junk = [':', '[', ']', '{', '}', '"', "'", '\t', '&a ', '*a', '!x ', '%YAML 1.2\n', '---\n', '...\n', '? ', '- ', '|', '>', '#', '@', '`', '\n', '  ', ',', '<<: *a\n', '!!binary ', '\ufeff'];
  fuzzSync(t, 'yaml corruption', 200, (rng) => {
    let text = base;
    for (let n = rng.int(1, 4); n > 0; n--) {
      const at = rng.int(0, text.length);
      text = rng.chance(0.3) ? text.slice(0, at) + text.slice(at + rng.int(1, 5)) : text.slice(0, at) + rng.pick(junk) + text.slice(at);
    }
    fs.writeFileSync(file, text);
    const err = outcome(() => loadConfig({ file }), `corrupted YAML ${JSON.stringify(text).slice(0, 200)}`);
    if (err) assert.ok(err.message.includes(file) || err.message.includes('defaults'), err.message);
  });
  // Specific documents.
  const docs: [string, RegExp | undefined][] = [
    ['', undefined],
    ['# only a comment\n', undefined],
    ['~\n', undefined],
    ['42\n', /expected a mapping of sections/],
    ['- a\n- b\n', /expected a mapping of sections/],
    ['ring: {sizeMiB: 32}\n---\nring: {sizeMiB: 64}\n', /line 2, column 1: .*more than one YAML document/],
    ['ring:\n  sizeMiB: 32\nring:\n  sizeMiB: 64\n', /line 3, column 1: Map keys must be unique/],
    ['agent:\n\tsocket: /x\n', /line 2/],
    ['agent: {socket: !custom /x}\n', /line 1.*Unresolved tag/],
    ['agent: {socket: !!binary aGVsbG8=}\n', /agent\.socket: expected a string, got binary data/],
    [`a: &a [${'1,'.repeat(50)}1]\nb: &b [${'*a,'.repeat(50)}*a]\nc: [${'*b,'.repeat(50)}*b]\n`, /alias count|unknown field/],
    [`process:\n  scrub: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`, /nested too deeply|process\.scrub/],
    ['__proto__:\n  agent:\n    token: sneaky\n', /\(root\): unknown field "__proto__"/],
    ['agent:\n  __proto__:\n    token: sneaky\n', /agent: unknown field "__proto__"/],
    ['\ufeffring:\n  sizeMiB: 32\n', undefined],
  ];
  for (const [text, want] of docs) {
    fs.writeFileSync(file, text);
    const err = outcome(() => loadConfig({ file }), JSON.stringify(text).slice(0, 80));
    if (want === undefined) assert.equal(err, undefined, `${JSON.stringify(text).slice(0, 80)}: ${err?.message}`);
    else {
      assert.ok(err, `${JSON.stringify(text).slice(0, 80)} accepted`);
      assert.match(err.message, want);
    }
  }
  // An unreadable path names the file and why.
  const missing = outcome(() => loadConfig({ file: path.join(dir, 'missing.yaml') }), 'missing file');
  assert.match(missing!.message, /missing\.yaml.*cannot read it.*ENOENT/);
  const isDir = outcome(() => loadConfig({ file: dir }), 'a directory');
  assert.match(isDir!.message, /cannot read it.*EISDIR/);
});

test('bytes that are not UTF-8 are rejected with their line; valid UTF-8 passes', (t) => {
  const dir = tmp(t);
  const file = path.join(dir, 'vigil.yaml');
  const lines = ['agent:', '  socket: /run/vigil/test.sock', '  token: secret', 'ring:', '  sizeMiB: 32', 'filters:', '  comm:', '    exclude: [cron]'];
  const bad = [[0xff], [0xfe], [0xc3, 0x28], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc0, 0xaf], [0x80], [0xf4, 0x90, 0x80, 0x80]];
  fuzzSync(t, 'non-utf8', 60, (rng) => {
    const line = rng.int(0, lines.length - 1);
    const l = lines[line]!;
    const col = rng.int(Math.min(l.indexOf(':') + 2, l.length), l.length);
    const bytes = Buffer.concat([Buffer.from(`${lines.slice(0, line).join('\n')}${line ? '\n' : ''}${l.slice(0, col)}`), Buffer.from(rng.pick(bad)), Buffer.from(`${l.slice(col)}\n${lines.slice(line + 1).join('\n')}\n`)]);
    fs.writeFileSync(file, bytes);
    const err = outcome(() => loadConfig({ file }), `invalid byte on line ${line + 1}`);
    assert.ok(err, 'accepted bytes that are not UTF-8');
    assert.equal(err.issues[0]!.path, `line ${line + 1}, column ${col + 1}`, err.message);
    assert.match(err.message, /not valid UTF-8/);
  });
  fs.writeFileSync(file, 'agent:\n  token: "ünïcödé-日本-🔑"\n');
  assert.equal(loadConfig({ file }).agent.token, 'ünïcödé-日本-🔑');
});

test('configs never share state: a failed load changes nothing, a loaded config is its own', () => {
  const a = loadConfig();
  (a.sinks as Record<string, Record<string, unknown>>).stdout!.enabled = false;
  a.containers.containerdNamespaces.push('mutated');
  (a.events.other as Record<string, unknown>).ptrace = false;
  a.filters.comm.exclude.push('mutated');
  assert.deepEqual(loadConfig(), PRISTINE, 'mutating one config does not change the next');
  const raw = { ring: { sizeMiB: 3 }, agent: { socket: '/x' } };
  const before = structuredClone(raw);
  assert.throws(() => validateConfig(raw, 'x'), ConfigError);
  assert.deepEqual(raw, before);
  assert.deepEqual(loadConfig(), PRISTINE);
});
