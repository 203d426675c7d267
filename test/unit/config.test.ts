// Configuration: defaults, YAML files, flag overrides, and invalid input rejected with the path of every bad
// field, before anything is loaded (the CLI exits 2).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig, merge, parseSet, validateConfig } from '../../src/config/config.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

function tmp(t: import('node:test').TestContext): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-cfg-'));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

test('embedded defaults are complete and valid', () => {
  const c = loadConfig();
  assert.equal(c.agent.socket, '/run/vigil/vigil.sock');
  assert.equal(c.ring.sizeMiB, 16);
  assert.equal(c.process.mode, 'auto');
  assert.equal(c.filters.scope, 'all');
  assert.deepEqual(c.sinks, { stdout: { enabled: true }, store: { enabled: true } });
});

test('file then flags override the defaults, deeply', (t) => {
  const f = path.join(tmp(t), 'vigil.yaml');
  fs.writeFileSync(f, 'ring:\n  sizeMiB: 32\nprocess:\n  threads: true\nfilters:\n  comm:\n    exclude: [sshd]\n');
  const c = loadConfig({ file: f, overrides: [parseSet('ring.sizeMiB=64'), parseSet('filters.comm.exclude=[cron, atd]')] });
  assert.equal(c.ring.sizeMiB, 64);
  assert.equal(c.process.threads, true);
  assert.equal(c.process.maxArgsBytes, 131072, 'untouched defaults stay');
  assert.deepEqual(c.filters.comm.exclude, ['cron', 'atd'], 'lists are replaced, not merged');
  assert.deepEqual(merge({ a: { b: 1, c: 2 } }, { a: { b: 3 } }), { a: { b: 3, c: 2 } });
});

test('every bad field is reported with its path, nothing else is accepted', () => {
  const bad = (raw: unknown) => {
    try {
      validateConfig(raw, 'test');
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.issues.map((i) => i.path).sort();
    }
    assert.fail(`accepted ${JSON.stringify(raw)}`);
  };
  assert.deepEqual(bad({ ring: { sizeMiB: 3 } }), ['ring.sizeMiB']);
  assert.deepEqual(bad({ ring: { sizeMiB: 'big' }, agent: { socket: 5 } }), ['agent.socket', 'ring.sizeMiB']);
  assert.deepEqual(bad({ agent: { sockett: '/x' } }), ['agent']);
  assert.deepEqual(bad({ filters: { scope: 'everything', pathPrefixes: ['relative'] } }), ['filters.pathPrefixes.0', 'filters.scope']);
  assert.deepEqual(bad({ process: { maxArgsBytes: 10_000_000 } }), ['process.maxArgsBytes']);
  assert.deepEqual(bad({ filters: { comm: { exclude: ['a-name-longer-than-15'] } } }), ['filters.comm.exclude.0']);
  assert.deepEqual(bad({ unknownSection: {} }), ['(root)']);
  assert.deepEqual(bad({ events: { openArgs: 'later' } }), ['events.openArgs']);
  assert.throws(() => parseSet('no-equals'), /expected key.path=value/);
  assert.throws(() => parseSet('a..b=1'), /not a configuration path/);
});

test('YAML syntax errors name the file and line', (t) => {
  const f = path.join(tmp(t), 'broken.yaml');
  fs.writeFileSync(f, 'ring:\n  sizeMiB: [1\n');
  assert.throws(() => loadConfig({ file: f }), (e: unknown) => e instanceof ConfigError && e.message.includes(f) && /line \d+/.test(e.message));
  fs.writeFileSync(f, '- just\n- a list\n');
  assert.throws(() => loadConfig({ file: f }), /expected a mapping of sections/);
  assert.throws(() => loadConfig({ file: path.join(tmp(t), 'missing.yaml') }), /ENOENT|no such file/);
});

test('vigil run with an invalid configuration exits 2 naming the field, and loads nothing', () => {
  const r = spawnSync(path.join(ROOT, 'bin/vigil'), ['run', '--set', 'ring.sizeMiB=3', '--set', 'filters.scope=nowhere'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /ring\.sizeMiB: must be a power of two/);
  assert.match(r.stderr, /filters\.scope: /);
  assert.doesNotMatch(r.stderr, /loading/);
  const bad = spawnSync(path.join(ROOT, 'bin/vigil'), ['run', '--process-mode', 'sometimes'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--process-mode.*sometimes.*invalid/i);
  const unknown = spawnSync(path.join(ROOT, 'bin/vigil'), ['frobnicate'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(unknown.status, 2);
});

test('configuring one sink keeps the default sinks; a default sink goes away only when disabled', async () => {
  const { flagOverrides } = await import('../../src/cli/run.ts');
  const json = loadConfig({ overrides: flagOverrides({ json: true }) });
  assert.deepEqual(json.sinks, { stdout: { enabled: true, format: 'json' }, store: { enabled: true } }, '--json keeps the store');
  const file = validateConfig({ sinks: { file: { path: '/tmp/x.jsonl' } } }, 'test');
  assert.deepEqual(Object.keys(file.sinks).sort(), ['file', 'stdout', 'store']);
  const quiet = loadConfig({ overrides: flagOverrides({ stdout: false }) });
  assert.deepEqual(quiet.sinks, { stdout: { enabled: false }, store: { enabled: true } }, '--no-stdout keeps the store');
});

test('-t and -T select rules by tag; an unknown tag is a bad configuration naming the field', async () => {
  const { flagOverrides } = await import('../../src/cli/run.ts');
  const c = loadConfig({ overrides: flagOverrides({ enableTag: ['filesystem', 'process'], disableTag: ['mitre_persistence'] }) });
  assert.deepEqual([c.rules.enabledTags, c.rules.disabledTags], [['filesystem', 'process'], ['mitre_persistence']]);
  assert.throws(() => loadConfig({ overrides: flagOverrides({ disableTag: ['no-such-tag'] }) }), /rules\.disabledTags: no rule has the tag "no-such-tag"/);
});
