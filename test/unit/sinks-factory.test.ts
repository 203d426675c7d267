// The sink factory: every bad option fails with InvalidArgumentError naming its full path, before anything
// starts (no file, thread or connection); good configs build the sinks, the store first.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { InvalidArgumentError } from '../../src/bpf/errors.ts';
import { newLineMeta, type LineMeta, type Sink } from '../../src/pipeline/types.ts';
import { createSinks, diffSinks, validateSinks } from '../../src/sinks/index.ts';
import { selecting } from '../../src/sinks/select.ts';

function tempDir(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-sinks-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function rejects(config: unknown, message: RegExp): void {
  assert.throws(() => createSinks(config, { dataDir: '/nonexistent/vigil-never-created' }), (err: unknown) => {
    assert.ok(err instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(err)}`);
    assert.equal(err.code, 'EINVAL');
    assert.match(err.message, message);
    return true;
  });
}

describe('createSinks validation', () => {
  it('names the bad field', () => {
    rejects({ webhook: { url: 'ftp://x' } }, /^sinks\.webhook\.url: must be an http\(s\) URL/);
    rejects({ webhook: { url: 'not a url' } }, /^sinks\.webhook\.url: must be an http\(s\) URL$/);
    rejects({ webhook: {} }, /^sinks\.webhook\.url: is required/);
    rejects({ webhook: { url: 'http://x', maxBatch: 0 } }, /^sinks\.webhook\.maxBatch: must be an integer >= 1, got 0$/);
    rejects({ webhook: { url: 'http://x', headers: { 'bad header': 'v' } } }, /^sinks\.webhook\.headers\.bad header: is not a valid HTTP header name$/);
    rejects({ webhook: { url: 'http://x', headers: { a: 'v\r\nx: y' } } }, /^sinks\.webhook\.headers\.a: header value must not contain CR/);
    rejects({ webhook: { url: 'http://x', initialBackoffMs: 100, maxBackoffMs: 10 } }, /^sinks\.webhook\.maxBackoffMs: must be >= initialBackoffMs/);
    rejects({ webhook: [{ url: 'http://x' }, { url: 'gopher://y' }] }, /^sinks\.webhook\[1\]\.url: must be an http\(s\) URL/);
    rejects({ file: { maxSizeBytes: 10 } }, /^sinks\.file\.path: is required$/);
    rejects({ file: { path: 'x', maxFiles: 0 } }, /^sinks\.file\.maxFiles: must be an integer between 1 and 1000, got 0$/);
    rejects({ file: { path: 'x', maxSizeBytes: '10MB' } }, /^sinks\.file\.maxSizeBytes: must be an integer >= 1, got "10MB"$/);
    rejects({ stdout: { format: 'xml' } }, /^sinks\.stdout\.format: must be one of "auto", "text", "json", got "xml"$/);
    rejects({ stdout: { enabled: 'yes' } }, /^sinks\.stdout\.enabled: must be true or false$/);
    rejects({ stdout: { colour: true } }, /^sinks\.stdout\.colour: unknown option \(known: /);
    rejects({ store: { maxRows: -1 } }, /^sinks\.store\.maxRows: must be an integer >= 0/);
    rejects({ nats: { servers: ['nats://a:4222', 'http://b'] } }, /^sinks\.nats\.servers\[1\]: must be nats:\/\/host:port/);
    rejects({ nats: { subject: 'vigil.*.{type}' } }, /^sinks\.nats\.subject: "vigil\.\*\.\{type\}" is not a valid NATS subject/);
    rejects({ nats: { stream: { create: true } } }, /^sinks\.nats\.stream\.name: is required$/);
    rejects({ nats: { stream: { name: 'a.b' } } }, /^sinks\.nats\.stream\.name: must not contain/);
    rejects({ otlp: { endpoint: 'grpc://collector:4317' } }, /^sinks\.otlp\.endpoint: must be an http\(s\) URL$/);
    rejects({ otlp: { body: 'json' } }, /^sinks\.otlp\.body: must be one of "string", "kvlist"/);
    rejects({ kafka: {} }, /^sinks\.kafka: unknown option/);
    rejects({ stdout: [{}] }, /^sinks\.stdout: must be an object/);
    rejects('stdout', /^sinks: must be an object/);
  });

  it('takes a selection (types, minPriority) on any sink, checked like its own options', () => {
    rejects({ webhook: { url: 'http://x', types: [] } }, /^sinks\.webhook\.types: must be a non-empty list of event types$/);
    rejects({ file: [{ path: 'a' }, { path: 'b', types: ['exec', 'execve'] }] }, /^sinks\.file\[1\]\.types: unknown event type "execve" \(known: exec, .*alert\)$/);
    rejects({ stdout: { minPriority: 'loud' } }, /^sinks\.stdout\.minPriority: must be one of emergency, .*, got "loud"$/);
    rejects({ otlp: { types: ['exec'], minPriority: 'warning' } }, /^sinks\.otlp\.minPriority: selects alerts, but types leaves alerts out/);
    const plan = validateSinks({ stdout: false, store: false, webhook: [{ url: 'http://x', types: ['alert', 'exec', 'alert'], minPriority: 'INFO' }, { url: 'http://y' }] });
    assert.deepEqual(plan.map((s) => [s.name, s.opts, s.selection]), [['webhook[0]', { url: 'http://x' }, { types: ['alert', 'exec'], minPriority: 'informational' }], ['webhook[1]', { url: 'http://y' }, undefined]]);
    // A reload that changes only a sink's selection replaces that sink.
    const next = validateSinks({ stdout: false, store: false, webhook: [{ url: 'http://x', types: ['alert'] }, { url: 'http://y' }] });
    assert.deepEqual(diffSinks(plan, next).remove, ['webhook[0]']);
    assert.deepEqual(diffSinks(plan, plan).remove, []);
  });

  it('a selecting sink hands on what it takes and counts the rest as skipped, by type and alert priority', () => {
    const got: string[] = [];
    const inner: Sink = {
      name: 'inner',
      write: (ev) => void got.push(`w:${ev.type}`),
      writeLine: (line, m) => void got.push(`l:${m.type}:${line}`),
      writeBytes: (buf, start, end, m) => void got.push(`b:${m.type}:${Buffer.from(buf.subarray(start, end)).toString()}`),
      placeLine: () => undefined,
      commitPlaced: () => undefined,
      room: () => 7,
      flush: async () => undefined,
      close: async () => undefined,
      stats: () => ({ received: got.length, sent: got.length, dropped: {}, queued: 0, retries: 0 }),
    };
    const s = selecting(inner, { types: ['alert', 'open'], minPriority: 'warning' });
    assert.equal(selecting(inner, undefined), inner, 'no selection: the sink itself');
    assert.equal(s.name, 'inner');
    assert.equal(s.placeLine, undefined, 'never written in place: a placed line could not be taken back');
    assert.equal(s.room!(), 7);
    const meta = (type: string, priority?: string): LineMeta => ({ ...newLineMeta(), type, priority });
    s.writeLine!('{}', meta('exec'));
    s.writeLine!('{"o":1}', meta('open'));
    s.writeBytes!(Buffer.from('xx{"o":2}'), 2, 9, meta('open'));
    for (const p of ['critical', 'warning', 'notice', 'debug', 'unheard-of']) s.writeLine!(p, meta('alert', p));
    s.write({ type: 'alert', time: '', ktimeNs: 0, priority: 'error' }, '');
    s.write({ type: 'alert', time: '', ktimeNs: 0, priority: 'informational' }, '');
    s.write({ type: 'exit', time: '', ktimeNs: 0 }, '');
    assert.deepEqual(got, ['l:open:{"o":1}', 'b:open:{"o":2}', 'l:alert:critical', 'l:alert:warning', 'l:alert:unheard-of', 'w:alert']);
    assert.deepEqual(s.stats(), { received: 11, sent: 6, dropped: {}, queued: 0, retries: 0, skipped: 5 });
  });

  it('checks a disabled sink whose options are written; enabled: false alone turns a sink off', () => {
    rejects({ webhook: { enabled: false, url: 'ftp://x' } }, /^sinks\.webhook\.url: must be an http\(s\) URL/);
    rejects({ file: [{ path: 'a' }, { enabled: false, path: 'b', maxFiles: 0 }] }, /^sinks\.file\[1\]\.maxFiles: must be an integer between 1 and 1000, got 0$/);
    rejects({ stdout: { enabled: false, colour: true } }, /^sinks\.stdout\.colour: unknown option/);
    rejects({ otlp: { enabled: false }, webhook: { enabled: false, url: 'http://x', maxBatch: 0 } }, /^sinks\.webhook\.maxBatch: must be an integer >= 1, got 0$/);
    // Off, with or without valid options: nothing planned, and two disabled sinks may name one path.
    assert.deepEqual(validateSinks({ stdout: { enabled: false }, store: false, webhook: { enabled: false }, otlp: { enabled: false, endpoint: 'http://127.0.0.1:9' } }), []);
    assert.deepEqual(validateSinks({ stdout: false, store: false, file: [{ enabled: false, path: '/tmp/same' }, { enabled: false, path: '/tmp/same' }] }), []);
  });

  it('refuses two sinks on the same file', (t) => {
    const dir = tempDir(t);
    const p = path.join(dir, 'x');
    assert.throws(() => validateSinks({ file: [{ path: p }, { path: p }] }), /path .* is used by another file or store sink/);
    assert.throws(() => validateSinks({ file: { path: p }, store: { path: p } }), /is used by another/);
  });

  it('starts nothing when any sink is invalid', (t) => {
    const dir = tempDir(t);
    const storeDir = path.join(dir, 'data');
    assert.throws(() => createSinks({ store: {}, file: { path: path.join(dir, 'f.jsonl') }, webhook: { url: 'bad' } }, { dataDir: storeDir }), InvalidArgumentError);
    assert.equal(fs.existsSync(storeDir), false, 'the store was not created');
  });
});

describe('createSinks', () => {
  it('builds what is enabled, the store first, with the store path under dataDir', async (t) => {
    const dir = tempDir(t);
    const built = createSinks(
      {
        stdout: { enabled: false },
        file: [{ path: path.join(dir, 'a.jsonl') }, { path: path.join(dir, 'b.jsonl'), enabled: false }],
        store: { enabled: true },
        webhook: { url: 'http://127.0.0.1:9/' },
        otlp: { enabled: false, endpoint: 'http://127.0.0.1:9' },
      },
      { dataDir: dir },
    );
    try {
      assert.deepEqual(built.sinks.map((s) => s.name), ['store', 'file[0]', 'webhook']);
      assert.ok(built.store);
      assert.equal(built.store.path, path.join(dir, 'events.db'));
      assert.deepEqual(built.store.query(), []);
      assert.ok(fs.existsSync(path.join(dir, 'events.db')));
    } finally {
      // Before the temp dir goes (after-hooks run in order): the writer thread must be gone first.
      await Promise.all(built.sinks.map((s) => s.close()));
    }
  });

  it('accepts the agent default (stdout and store on) and an empty config', async (t) => {
    const dir = tempDir(t);
    const built = createSinks({ stdout: { enabled: true, format: 'json' }, store: { enabled: true } }, { dataDir: dir });
    assert.deepEqual(built.sinks.map((s) => s.name), ['store', 'stdout']);
    await Promise.all(built.sinks.map((s) => s.close()));
    assert.deepEqual(createSinks(undefined).sinks, []);
    assert.deepEqual(createSinks({}).sinks, []);
  });
});
