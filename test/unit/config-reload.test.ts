// Configuration reloads without the kernel: which fields a reload may change in place, the pipeline taking
// new event types, and a real in-process agent (process mode procfs: no BPF, no privileges) reloading its
// YAML file through Agent.reload(), POST /v1/config/reload and `vigil reload`. A bad file, or one that
// changes a field only a start applies, changes nothing at all, and every attempt is counted.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { ConfigError, loadConfig, merge, validateConfig } from '../../src/config/config.ts';
import { changedPaths, planReload, ReloadRefusedError } from '../../src/config/reload.ts';
import { ProcessCache } from '../../src/process/cache.ts';
import { Pipeline, type Decoded, type OutputShaper } from '../../src/pipeline/pipeline.ts';
import { Router } from '../../src/pipeline/router.ts';
import { diffSinks, validateSinks } from '../../src/sinks/index.ts';
import { RETIRED_LISTED } from '../../src/agent/agent.ts';
import { MemorySink, runCli, startTestAgent } from '../helpers/agent.ts';
import { iterations, rngFor, type Rng } from '../helpers/fuzz.ts';
import { tempDir } from '../helpers/privileged.ts';

test('changedPaths names the deepest differing key; a list is one value', () => {
  assert.deepEqual(changedPaths({ a: { b: 1, c: [1, 2] } }, { a: { b: 1, c: [1, 2] } }), []);
  assert.deepEqual(changedPaths({ a: { b: 1, c: [1, 2] } }, { a: { b: 2, c: [1, 3] } }), ['a.b', 'a.c']);
  assert.deepEqual(changedPaths({ a: { b: 1 } }, { a: { b: 1, d: 'x' } }), ['a.d'], 'a key only one side has');
  assert.deepEqual(changedPaths({ a: true }, { a: { open: true } }), ['a'], 'a scalar that became a mapping');
  assert.deepEqual(changedPaths({ a: [{ x: 1 }] }, { a: [{ x: 2 }] }), ['a']);
  assert.deepEqual(changedPaths({ a: [1] }, { a: [1, 1] }), ['a']);
});

test('planReload: event types, filters and scrub rules reload in place; everything else needs a restart', () => {
  const base = validateConfig({});
  const with_ = (over: unknown) => planReload(base, validateConfig(over));
  assert.deepEqual(with_({}), { changed: [], restartNeeded: [] });
  assert.deepEqual(with_({ events: { files: { open: true } }, filters: { comm: { exclude: ['sshd'] }, pathPrefixes: ['/etc'] } }), {
    // The group's default ({ sensitiveWrites: true, secretReads: true }) is replaced, not merged: every key changed.
    changed: ['events.files.sensitiveWrites', 'events.files.secretReads', 'events.files.open', 'filters.comm.exclude', 'filters.pathPrefixes'],
    restartNeeded: [],
  });
  assert.deepEqual(with_({ events: { process: { fork: true }, containers: false, network: false } }).restartNeeded, []);
  assert.deepEqual(with_({ filters: { sensitivePaths: ['/srv'] } }), { changed: ['filters.sensitivePaths'], restartNeeded: [] }, 'an optional field set');
  // Fixed at load, or shaping what start created.
  assert.deepEqual(with_({ events: { openArgs: 'entry' } }).restartNeeded, ['events.openArgs']);
  assert.deepEqual(with_({ ring: { sizeMiB: 32 }, events: { files: { open: true } } }), { changed: ['ring.sizeMiB', 'events.files.sensitiveWrites', 'events.files.secretReads', 'events.files.open'], restartNeeded: ['ring.sizeMiB'] });
  assert.deepEqual(with_({ sinks: { file: { path: '/tmp/x.jsonl' } } }), { changed: ['sinks.file'], restartNeeded: [] }, 'a sink added');
  assert.deepEqual(with_({ sinks: { stdout: false } }).restartNeeded, [], 'a sink removed');
  assert.deepEqual(with_({ sinks: { store: { batchRows: 10 } } }).restartNeeded, ['sinks.store.batchRows'], 'the store stays as it started');
  assert.deepEqual(with_({ sinks: { store: { maxRows: 10, maxAgeMs: 60_000, maxProcesses: 5 } } }).restartNeeded, [], 'but for its retention limits');
  assert.deepEqual(with_({ agent: { socket: '/tmp/v.sock' }, process: { scrub: { secretNames: ['pw'] }, maxArgsBytes: 64 }, pipeline: { reorderWindowMs: 0 } }).restartNeeded, ['agent.socket', 'pipeline.reorderWindowMs', 'process.maxArgsBytes']);
  assert.deepEqual(with_({ process: { scrub: { secretNames: ['pw'], envAllow: [] } } }), { changed: ['process.scrub.secretNames', 'process.scrub.envAllow'], restartNeeded: [] }, 'scrub rules reload');
  const err = new ReloadRefusedError(['ring.sizeMiB', 'agent.socket']);
  assert.match(err.message, /^ring\.sizeMiB, agent\.socket: these take effect only when vigil starts; restart vigil to apply them/);
  assert.match(err.message, /nothing was changed/);
});

test('Pipeline.retarget: the new event types are emitted from the next event on, the old ones counted as filtered', () => {
  const sink = new MemorySink();
  const cache = new ProcessCache({ scrubber: { scrubArgv: (a) => ({ argv: a, scrubbed: 0 }), scrubEnv: () => ({ env: [], scrubbed: 0 }) }, timers: false });
  const shaper = (() => ({})) as OutputShaper;
  const p = new Pipeline({ decoders: new Map(), outputs: new Map([['a', shaper]]), cache, enrich: { userName: () => undefined }, router: new Router(), sinks: [sink], types: new Set(['a']), reorderWindowMs: 0, holdForEnrichmentMs: 0 });
  let k = 1e9;
  const feed = (type: string) => p.feed({ type, ktimeNs: k++, pid: 1, tid: 1, cgroupId: 0 } as Decoded);
  feed('a');
  feed('b');
  p.retarget(new Set(['b']), new Map([['b', shaper]]));
  feed('a');
  feed('b');
  feed('b');
  assert.deepEqual(sink.events.map((e) => e.type), ['a', 'b', 'b']);
  assert.deepEqual(p.counters().byType, { a: 1, b: 2 });
  assert.equal(p.counters().dropped.filtered, 2);
});

function post(socketPath: string, url: string, method = 'POST'): Promise<{ status: number; json: Record<string, unknown>; allow?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: url, method, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : {}, allow: res.headers.allow }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('an agent reloads its file in place, all or nothing, by call, API and CLI; every attempt is counted', async (t) => {
  const dir = tempDir(t, 'vigil-reload-');
  const file = path.join(dir, 'vigil.yaml');
  const write = (...lines: string[]) => fs.writeFileSync(file, `${lines.join('\n')}\n`);
  // No BPF: syscall events cannot run, but their configuration is still checked and taken.
  write('process: { mode: procfs }', 'containers: { enabled: false }', 'events:', '  process: { exec: true, exit: true, fork: false }', '  files: false', '  network: false', '  other: false');
  const ta = await startTestAgent(t, { configFile: file });
  const agent = ta.agent;
  assert.deepEqual(agent.status().config, { generation: 1, reloads: { applied: 0, rejected: 0 }, lastReload: undefined });

  // Nothing changed: applied, same generation.
  assert.deepEqual(agent.reload(), { changed: [], generation: 1, syscalls: 'unchanged' });

  // Event types and filters: applied.
  write('process: { mode: procfs }', 'containers: { enabled: false }', 'events:', '  process: { exec: true, exit: true, fork: true }', '  files: { open: true }', '  network: false', '  other: false', 'filters: { comm: { exclude: [sshd] } }');
  const r = agent.reload();
  assert.deepEqual(r, { changed: ['events.process.fork', 'events.files', 'filters.comm.exclude'], generation: 2, syscalls: 'not loaded (no BPF)' });
  assert.equal(agent.config.events.process.fork, true);
  assert.deepEqual(agent.config.filters.comm.exclude, ['sshd']);
  const st = agent.status().config;
  assert.equal(st.generation, 2);
  assert.deepEqual(st.reloads, { applied: 2, rejected: 0 });
  assert.deepEqual(st.lastReload?.changed, r.changed);

  // A bad file: ConfigError naming the field; nothing changes.
  const before = structuredClone(agent.config);
  write('process: { mode: procfs }', 'containers: { enabled: false }', 'events:', '  process: { fork: maybe }', '  files: false');
  assert.throws(() => agent.reload(), (e: unknown) => e instanceof ConfigError && /events\.process\.fork: expected true or false/.test(e.message));
  assert.deepEqual(agent.config, before);
  // Start-only fields next to reloadable ones: refused whole, naming them; the reloadable ones are not applied either.
  write('process: { mode: procfs }', 'containers: { enabled: false }', 'ring: { sizeMiB: 32 }', 'pipeline: { reorderWindowMs: 0 }', 'events:', '  process: { fork: false }', '  files: false', '  network: false', '  other: false');
  assert.throws(() => agent.reload(), (e: unknown) => e instanceof ReloadRefusedError && e.fields.join() === 'ring.sizeMiB,pipeline.reorderWindowMs');
  assert.deepEqual(agent.config, before);
  assert.equal(agent.status().config.generation, 2);
  assert.deepEqual(agent.status().config.reloads, { applied: 2, rejected: 2 });
  assert.equal(agent.status().config.lastReload?.ok, false);
  assert.match(agent.status().config.lastReload?.error ?? '', /ring\.sizeMiB, pipeline\.reorderWindowMs: these take effect only when vigil starts/);

  // Over the API: 400 with the field for both kinds of refusal, 200 with what changed, 405 for GET.
  await ta.api();
  const refused = await post(ta.socket, '/v1/config/reload');
  assert.equal(refused.status, 400);
  assert.equal(refused.json.field, 'ring.sizeMiB');
  assert.deepEqual(refused.json.fields, ['ring.sizeMiB', 'pipeline.reorderWindowMs']);
  write('process: { mode: procfs }', 'containers: { enabled: false }', 'events: { process: { fork: 3 } }');
  const invalid = await post(ta.socket, '/v1/config/reload');
  assert.equal(invalid.status, 400);
  assert.equal(invalid.json.field, 'events.process.fork');
  write('process: { mode: procfs }', 'containers: { enabled: false }', 'events:', '  process: { exec: true, exit: true, fork: false }', '  files: false', '  network: false', '  other: false');
  const ok = await post(ta.socket, '/v1/config/reload');
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  assert.deepEqual(ok.json, { reloaded: true, changed: ['events.process.fork', 'events.files', 'filters.comm.exclude'], generation: 3, syscalls: 'unchanged' });
  const wrong = await post(ta.socket, '/v1/config/reload', 'GET');
  assert.equal(wrong.status, 405);
  assert.equal(wrong.allow, 'POST');
  assert.equal((await post(ta.socket, '/v1/config/reload?now=1')).status, 400);

  // The CLI: 0 applied, 2 refused (bad or start-only), with the reason on stderr.
  const same = await runCli(['reload', '--socket', ta.socket]);
  assert.equal(same.status, 0, same.stderr);
  assert.equal(same.stdout, 'reloaded: nothing changed\n');
  write('process: { mode: procfs }', 'containers: { enabled: false }', 'agent: { metrics: false }', 'events: { files: false, network: false, other: false }');
  const cli = await runCli(['reload', '--socket', ta.socket]);
  assert.equal(cli.status, 2, cli.stderr);
  assert.match(cli.stderr, /^vigil reload: not reloaded, the previous configuration still runs: agent\.metrics: this takes effect only when vigil starts/);
  const status = await runCli(['status', '--socket', ta.socket]);
  assert.match(status.stdout, /config: generation 3, reloads applied 4, rejected 5; last reload \S+: REJECTED: agent\.metrics/);
  const metrics = await new Promise<string>((resolve, reject) => {
    http.get({ socketPath: ta.socket, path: '/metrics' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
  assert.match(metrics, /^vigil_config_reloads_total\{result="applied"\} 4$/m);
  assert.match(metrics, /^vigil_config_reloads_total\{result="rejected"\} 5$/m);
  assert.match(metrics, /^vigil_config_last_reload_successful 0$/m);
  assert.match(metrics, /^vigil_config_generation 3$/m);
});

test('diffSinks: same name and options keep a sink; anything else removes and adds; a new sink at a removed one\'s file or descriptor waits for it', () => {
  const plan = (sinks: unknown) => validateSinks(sinks, { dataDir: '/var/lib/vigil' });
  const d = diffSinks(plan({ stdout: true, file: { path: '/tmp/a.jsonl' }, webhook: [{ url: 'http://127.0.0.1:1/x' }] }), plan({ stdout: { format: 'json' }, file: [{ path: '/tmp/a.jsonl' }, { path: '/tmp/b.jsonl' }], webhook: [{ url: 'http://127.0.0.1:1/x' }] }));
  assert.deepEqual(d.keep, ['webhook[0]']);
  assert.deepEqual(d.remove, ['stdout', 'file']);
  assert.deepEqual(d.add.map((s) => s.name), ['stdout', 'file[0]', 'file[1]']);
  assert.deepEqual([...d.replaces], [['stdout', 'stdout'], ['file[0]', 'file']], 'the same descriptor, the same path');
  const none = diffSinks(plan({ file: { path: '/tmp/a.jsonl', maxFiles: 3 } }), plan({ file: { maxFiles: 3, path: '/tmp/a.jsonl' } }));
  assert.deepEqual(none, { keep: ['file'], remove: [], add: [], replaces: new Map() }, 'options compared by value, not key order');
});

test('a reload adds, removes and replaces sinks between two events: the old ones get everything before, the new ones everything after; the accounting balances', async (t) => {
  const dir = tempDir(t, 'vigil-reload-sinks-');
  const file = path.join(dir, 'vigil.yaml');
  const [a, b] = [path.join(dir, 'a.jsonl'), path.join(dir, 'b.jsonl')];
  const head = ['process: { mode: procfs }', 'containers: { enabled: false }', 'events:', '  process: { exec: true, exit: false, fork: false }', '  files: false', '  network: false', '  other: false'];
  const write = (...lines: string[]) => fs.writeFileSync(file, `${[...head, ...lines].join('\n')}\n`);
  write('sinks:', `  file: { path: ${a} }`);
  const ta = await startTestAgent(t, { configFile: file });
  const agent = ta.agent;
  // Each marker is an exec; once the test's own sink (kept by every reload) has it, so does every file sink
  // running then, in order, after a flush.
  let n = 0;
  const mark = async () => {
    const m = `vigil-sink-mark-${++n}`;
    // Alive long enough for its command line to be read from /proc (no BPF here).
    await new Promise<void>((resolve, reject) => spawn('/bin/sh', ['-c', 'sleep 0.1', m]).on('exit', () => resolve()).on('error', reject));
    await ta.sink.waitFor((e) => e.type === 'exec' && (e.process as { argv?: string[] } | undefined)?.argv?.includes(m) === true, m);
    agent.drain();
    return m;
  };
  const marks = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; process?: { argv?: string[] } }).flatMap((e) => (e.type === 'exec' ? (e.process?.argv ?? []).filter((x) => x.startsWith('vigil-sink-mark-')) : []));
  const until = async (ok: () => boolean, what: string) => {
    for (const end = Date.now() + 30_000; !ok(); await new Promise((r) => setTimeout(r, 20))) if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
  };
  const m1 = await mark();
  await until(() => marks(a).includes(m1), 'the first marker in a.jsonl');

  // The file sink becomes a list of two: "file" is removed, "file[0]" (the same path) and "file[1]" added.
  // file[0] writes a.jsonl only once "file" has closed there: every line stays whole and in order.
  write('sinks:', `  file: [{ path: ${a} }, { path: ${b} }]`);
  const r = agent.reload();
  assert.deepEqual(r.sinks, { added: ['file[0]', 'file[1]'], removed: ['file'] });
  assert.equal(r.generation, 2);
  const m2 = await mark();
  await until(() => marks(a).includes(m2) && marks(b).includes(m2), 'the second marker in both files');
  assert.deepEqual(marks(b), [m2], 'a new sink gets only what came after the reload');
  let acc = agent.accounting();
  assert.ok(acc.balanced, JSON.stringify(acc));
  assert.deepEqual(acc.retired.map((x) => [x.name, x.generations, x.queued]), [['file', [1, 1], 0]]);
  const before = acc.sinks['file[1]']!.before;
  assert.equal(acc.retired[0]!.through, before, 'the old sinks stop where the new ones start');
  assert.equal(acc.retired[0]!.received, before, 'the removed sink got every event up to the reload');
  assert.equal(acc.sinks['file[1]']!.received, acc.pipeline.events + acc.pipeline.synthetic - before);

  // The second file removed, the store changed: refused whole, naming the store; nothing changes.
  write('sinks:', `  file: [{ path: ${a} }]`, '  store: { batchRows: 10 }');
  assert.throws(() => agent.reload(), (e: unknown) => e instanceof ReloadRefusedError && e.fields.join() === 'sinks.store.batchRows');
  assert.deepEqual(Object.keys(agent.status().sinks).sort(), ['file[0]', 'file[1]', 'memory']);
  // Without the store: file[1] is removed, file[0] kept as it is.
  write('sinks:', `  file: [{ path: ${a} }]`);
  assert.deepEqual(agent.reload().sinks, { added: [], removed: ['file[1]'] });
  const m3 = await mark();
  await until(() => marks(a).includes(m3), 'the third marker in a.jsonl');
  assert.deepEqual(marks(a), [m1, m2, m3], 'a.jsonl: every marker once, in order, across the replacement');
  await agent.stop();
  assert.deepEqual(marks(b), [m2], 'the removed sink wrote nothing more');
  acc = agent.accounting();
  assert.ok(acc.final && acc.balanced, JSON.stringify(acc));
  assert.deepEqual(acc.retired.map((x) => [x.name, x.generations]), [['file', [1, 1]], ['file[1]', [2, 2]]]);
  assert.ok(acc.retired.every((x) => x.queued === 0 && x.droppedTotal === 0 && x.sent === x.through - x.before));
  assert.equal(acc.sinks['file[0]']!.received + acc.sinks['file[0]']!.before, acc.pipeline.events + acc.pipeline.synthetic);
});

test('a reload gives the store new retention limits in place: the store is not replaced, its writer trims to them', async (t) => {
  const dir = tempDir(t, 'vigil-reload-store-');
  const file = path.join(dir, 'vigil.yaml');
  const head = ['process: { mode: procfs }', 'containers: { enabled: false }', 'events:', '  process: { exec: true, exit: false, fork: false }', '  files: false', '  network: false', '  other: false'];
  const write = (...lines: string[]) => fs.writeFileSync(file, `${[...head, ...lines].join('\n')}\n`);
  write('sinks:', '  store: { batchRows: 1 }');
  const ta = await startTestAgent(t, { configFile: file, config: { sinks: { store: { enabled: true } } } });
  const agent = ta.agent;
  const rows = () => agent.store!.query({ limit: 100_000 }).length;
  const until = async (ok: () => boolean, what: string) => {
    for (const end = Date.now() + 30_000; !ok(); await new Promise((r) => setTimeout(r, 20))) if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
  };
  for (let i = 0; i < 5; i++) {
    const m = `vigil-store-mark-${i}`;
    await new Promise<void>((resolve, reject) => spawn('/bin/sh', ['-c', 'sleep 0.1', m]).on('exit', () => resolve()).on('error', reject));
    await ta.sink.waitFor((e) => e.type === 'exec' && (e.process as { argv?: string[] } | undefined)?.argv?.includes(m) === true, m);
  }
  agent.drain();
  await until(() => rows() >= 5, 'five execs in the store');
  const store = agent.store;
  write('sinks:', '  store: { batchRows: 1, maxRows: 2 }');
  const r = agent.reload();
  assert.deepEqual(r.changed, ['sinks.store.maxRows']);
  assert.equal(r.sinks, undefined, 'no sink added or removed');
  assert.equal(agent.store, store, 'the same store');
  await until(() => rows() <= 2, 'the store trimmed to 2 rows');
  assert.ok(agent.accounting().balanced);
});

test('an agent reloaded many times lists the latest removed sinks and sums the earlier ones, still balanced', async (t) => {
  const dir = tempDir(t, 'vigil-reload-many-');
  const file = path.join(dir, 'vigil.yaml');
  const head = ['process: { mode: procfs }', 'containers: { enabled: false }', 'events:', '  process: { exec: true, exit: false, fork: false }', '  files: false', '  network: false', '  other: false'];
  const write = (i: number) => fs.writeFileSync(file, `${[...head, 'sinks:', `  file: { path: ${path.join(dir, `${i % 2}.jsonl`)}, maxFiles: ${1 + (i % 3)} }`].join('\n')}\n`);
  write(0);
  const ta = await startTestAgent(t, { configFile: file });
  const agent = ta.agent;
  const RELOADS = RETIRED_LISTED + 3;
  for (let i = 1; i <= RELOADS; i++) {
    write(i);
    assert.deepEqual(agent.reload().sinks, { added: ['file'], removed: ['file'] }, `reload ${i}`);
    // An event between reloads, so that every removed sink is given something.
    await new Promise<void>((resolve, reject) => spawn('/bin/sh', ['-c', 'sleep 0.05', `vigil-many-${i}`]).on('exit', () => resolve()).on('error', reject));
    await ta.sink.waitFor((e) => e.type === 'exec' && (e.process as { argv?: string[] } | undefined)?.argv?.includes(`vigil-many-${i}`) === true, `mark ${i}`);
    agent.drain();
  }
  await agent.stop();
  const acc = agent.accounting();
  assert.ok(acc.final && acc.balanced, JSON.stringify(acc));
  // Every removed sink has closed by now: the earliest folded into one account, the latest listed.
  assert.equal(acc.retired.length, RETIRED_LISTED + 1);
  const [earlier, ...listed] = acc.retired;
  assert.deepEqual([earlier!.name, earlier!.sinks, earlier!.generations], ['earlier', RELOADS - RETIRED_LISTED, [1, RELOADS - RETIRED_LISTED]]);
  assert.deepEqual(listed.map((r) => [r.sinks, r.generations[0]]), listed.map((_, k) => [1, RELOADS - RETIRED_LISTED + 1 + k]));
  // Summed, the earlier ones were given every event up to the first listed one's start, and wrote it.
  assert.equal(earlier!.given, listed[0]!.before);
  assert.equal(earlier!.sent, earlier!.given);
  assert.ok(earlier!.given > 0);
  const total = acc.retired.reduce((n, r) => n + r.given, 0) + acc.sinks.file!.received;
  assert.equal(total, acc.pipeline.events + acc.pipeline.synthetic, 'the removed sinks and the last one together got every event once');
});

test('an agent without a configuration source, or not running, refuses a reload and counts it', async (t) => {
  const ta = await startTestAgent(t, { config: { process: { mode: 'procfs' }, containers: { enabled: false }, events: { files: false, network: false, other: false } } });
  assert.throws(() => ta.agent.reload(), /no configuration source/);
  // An explicit configuration is still applied (tests and embedders).
  const next = validateConfig({ ...structuredClone(ta.config), events: { ...ta.config.events, process: { ...ta.config.events.process, fork: true } } });
  assert.deepEqual(ta.agent.reload(next).changed, ['events.process.fork']);
  await ta.agent.stop();
  assert.throws(() => ta.agent.reload(next), /the agent is stopped, not running/);
  assert.deepEqual(ta.agent.status().config.reloads, { applied: 1, rejected: 2 });
});

test('fuzz: random reloads of a running agent are applied exactly, or rejected with nothing changed', async (t) => {
  // Each file mixes random changes of three kinds, and the oracle follows from the kinds alone: any invalid
  // value -> ConfigError; else any start-only field -> ReloadRefusedError; else applied, the running
  // configuration being exactly the file's. After a rejection the running configuration is the one before.
  const dir = tempDir(t, 'vigil-reload-fuzz-');
  const file = path.join(dir, 'vigil.yaml');
  const fixed = { process: { mode: 'procfs' }, containers: { enabled: false } };
  fs.writeFileSync(file, stringify({ ...fixed, events: { files: false, network: false, other: false } }));
  const ta = await startTestAgent(t, { configFile: file });
  const name = (rng: Rng) => rng.ascii(1, 15, 'abcdefghijklmnopqrstuvwxyz-');
  const reloadable: ((rng: Rng) => Record<string, unknown>)[] = [
    (rng) => ({ events: { process: { [rng.pick(['exec', 'exit', 'fork', 'creds', 'comm'])]: rng.chance(0.5) } } }),
    (rng) => ({ events: { containers: rng.chance(0.5) } }),
    (rng) => ({ events: { files: rng.chance(0.3) ? rng.chance(0.5) : { open: rng.chance(0.5), unlink: rng.chance(0.5), mkdir: rng.chance(0.5) } } }),
    (rng) => ({ events: { network: rng.chance(0.3) ? rng.chance(0.5) : { connect: rng.chance(0.5), bind: rng.chance(0.5) } } }),
    (rng) => ({ filters: { comm: { [rng.pick(['include', 'exclude'])]: Array.from({ length: rng.int(0, 3) }, () => name(rng)) } } }),
    (rng) => ({ filters: { pathPrefixes: Array.from({ length: rng.int(0, 3) }, () => `/${name(rng)}`) } }),
    (rng) => ({ filters: { scope: rng.pick(['all', 'containers', 'host']), resolvePaths: rng.pick([true, false, 'all']) } }),
    (rng) => ({ process: { scrub: { [rng.pick(['secretNames', 'safeNames'])]: Array.from({ length: rng.int(1, 3) }, () => name(rng)), mask: rng.pick(['****', '[x]']) } } }),
    (rng) => ({ sinks: { file: { path: path.join(dir, `${name(rng)}.jsonl`) } } }),
    (rng) => ({ sinks: { store: { [rng.pick(['maxRows', 'maxAgeMs', 'maxProcesses'])]: rng.int(0, 1000) } } }),
  ];
  const startOnly: ((rng: Rng) => Record<string, unknown>)[] = [
    (rng) => ({ ring: { sizeMiB: rng.pick([32, 64]) } }),
    (rng) => ({ pipeline: { reorderWindowMs: rng.int(6, 1000) } }),
    (rng) => ({ process: { maxArgsBytes: rng.int(1, 4096) } }),
    () => ({ agent: { probeStats: true } }),
    () => ({ events: { openArgs: 'entry' } }),
    (rng) => ({ sinks: { store: { batchRows: rng.int(1, 1000) } } }),
  ];
  const invalid: ((rng: Rng) => Record<string, unknown>)[] = [
    () => ({ events: { process: { fork: 'maybe' } } }),
    () => ({ ring: { sizeMiB: 3 } }),
    () => ({ filters: { comm: { exclude: ['averyveryverylongname'] } } }),
    () => ({ filters: { scope: 'pods' } }),
    () => ({ events: { files: { opne: true } } }),
    (rng) => ({ [`x${name(rng)}`]: 1 }),
    () => ({ filters: { pathPrefixes: ['relative/path'] } }),
    () => ({ process: { scrub: { secretNames: ['(unclosed'] } } }),
    () => ({ process: { scrub: { maks: '*' } } }),
  ];
  let applied = 0;
  let refused = 0;
  let bad = 0;
  const rng = rngFor('config-reload');
  for (let i = 0; i < iterations(60); i++) {
    const kinds: ('reloadable' | 'startOnly' | 'invalid')[] = [];
    let raw: unknown = { ...fixed, events: { files: false, network: false, other: false } };
    for (let n = rng.int(1, 4); n > 0; n--) kinds.push(rng.chance(0.7) ? 'reloadable' : rng.pick(['startOnly', 'invalid'] as const));
    // Merged in this order, so that no later valid change overwrites an invalid or start-only one.
    const order = { reloadable: 0, startOnly: 1, invalid: 2 };
    kinds.sort((a, b) => order[a] - order[b]);
    for (const kind of kinds) raw = merge(raw, rng.pick(kind === 'reloadable' ? reloadable : kind === 'startOnly' ? startOnly : invalid)(rng));
    fs.writeFileSync(file, stringify(raw));
    const before = structuredClone(ta.agent.config);
    const where = `iteration ${i}, ${kinds.join('+')}: ${JSON.stringify(raw)}`;
    try {
      const r = ta.agent.reload();
      assert.ok(!kinds.includes('invalid') && !kinds.includes('startOnly'), `applied, but should not be: ${where}`);
      assert.deepEqual(ta.agent.config, loadConfig({ file, overrides: [{ agent: ta.config.agent, sinks: { stdout: { enabled: false }, store: { enabled: false } } }] }), where);
      assert.equal(r.changed.length > 0, changedPaths(before, ta.agent.config).length > 0, where);
      applied++;
    } catch (err) {
      if (kinds.includes('invalid')) {
        assert.ok(err instanceof ConfigError, `${where}: ${String(err)}`);
        bad++;
      } else {
        assert.ok(kinds.includes('startOnly') && err instanceof ReloadRefusedError, `${where}: ${String(err)}`);
        refused++;
      }
      assert.deepEqual(ta.agent.config, before, `nothing changed: ${where}`);
    }
  }
  assert.deepEqual(ta.agent.status().config.reloads, { applied, rejected: refused + bad });
  assert.ok(applied > 0 && refused > 0 && bad > 0, `every outcome seen: ${applied} applied, ${refused} refused, ${bad} invalid`);
});

test('the file sinks reopen their files by call, API and CLI (logrotate); not once the agent stopped', async (t) => {
  const dir = tempDir(t, 'vigil-reopen-');
  const events = path.join(dir, 'events.jsonl');
  const other = path.join(dir, 'other.jsonl');
  const ta = await startTestAgent(t, {
    config: { process: { mode: 'procfs' }, containers: { enabled: false }, events: { files: false, network: false, other: false }, sinks: { file: [{ path: events }, { path: other }] } },
  });
  // The memory sink has no files: only the two file sinks reopen.
  assert.deepEqual(await ta.agent.reopenFiles(), ['file[0]', 'file[1]']);
  assert.ok(fs.existsSync(events) && fs.existsSync(other), 'each file is open at its path');
  fs.renameSync(events, `${events}.1`);
  await ta.api();
  const ok = await post(ta.socket, '/v1/sinks/reopen');
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  assert.deepEqual(ok.json, { reopened: ['file[0]', 'file[1]'] });
  assert.ok(fs.existsSync(events), 'moved away, created again');
  assert.equal((await post(ta.socket, '/v1/sinks/reopen', 'GET')).status, 405);
  assert.equal((await post(ta.socket, '/v1/sinks/reopen?all=1')).status, 400);
  fs.rmSync(events);
  const cli = await runCli(['reopen', '--socket', ta.socket]);
  assert.equal(cli.status, 0, cli.stderr);
  assert.equal(cli.stdout, 'reopened the files of file[0], file[1]\n');
  assert.ok(fs.existsSync(events));
  await ta.agent.stop();
  await assert.rejects(ta.agent.reopenFiles(), /the agent is stopped, not running: no file to reopen/);
});

test('a reload with new scrub rules scrubs the processes already cached, and later execs, by the new rules', async (t) => {
  const dir = tempDir(t, 'vigil-reload-scrub-');
  const file = path.join(dir, 'vigil.yaml');
  const write = (...lines: string[]) => fs.writeFileSync(file, `${lines.join('\n')}\n`);
  // A process with an argument only the new rules call a secret, there before the agent (its /proc snapshot).
  const child = spawn('sh', ['-c', 'sleep 60', 'vigil-scrub-test', '--colour', 'blue'], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  for (let i = 0; i < 500 && !fs.readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').includes('vigil-scrub-test'); i++) await new Promise((r) => setTimeout(r, 10));
  write('process: { mode: procfs }', 'containers: { enabled: false }', 'events: { files: false, network: false, other: false }');
  const ta = await startTestAgent(t, { configFile: file });
  const argv = () => ta.agent.processes!.cache.byPid(child.pid!)?.image.argv;
  assert.deepEqual(argv(), ['sh', '-c', 'sleep 60', 'vigil-scrub-test', '--colour', 'blue']);
  write('process: { mode: procfs, scrub: { secretNames: [colou?r] } }', 'containers: { enabled: false }', 'events: { files: false, network: false, other: false }');
  const r = ta.agent.reload();
  assert.deepEqual(r.changed, ['process.scrub.secretNames']);
  assert.ok(r.scrub && r.scrub.images > 0 && r.scrub.scrubbedArgs >= 1, JSON.stringify(r));
  assert.deepEqual(argv(), ['sh', '-c', 'sleep 60', 'vigil-scrub-test', '--colour', '****']);
  // Through the API as well: what `vigil ps` shows is the cache.
  await ta.api();
  const ps = await runCli(['ps', '--json', '--pid', String(child.pid), '--socket', ta.socket]);
  assert.equal(ps.status, 0, ps.stderr);
  assert.ok(ps.stdout.includes('"****"') && !ps.stdout.includes('"blue"'), ps.stdout);
  // `vigil reload` says what the new rules did; a new mask replaces the old one where the rules still mask.
  write('process: { mode: procfs, scrub: { secretNames: [colou?r], mask: "[x]" } }', 'containers: { enabled: false }', 'events: { files: false, network: false, other: false }');
  const cli = await runCli(['reload', '--socket', ta.socket]);
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /^reloaded \(generation 3\): process\.scrub\.mask; syscall sensor unchanged; scrub rules: \d+ cached images scrubbed again, [1-9]\d* arguments and 0 variables changed\n$/);
  assert.deepEqual(argv(), ['sh', '-c', 'sleep 60', 'vigil-scrub-test', '--colour', '[x]']);
});
