// Stdout sink: JSON Lines when piped, readable text on a terminal (escaped: the watched host must not reach
// the operator's terminal), backpressure from a slow consumer as counted drops, EPIPE, fd output.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import type { OutputEvent, SinkStats } from '../../src/pipeline/types.ts';
import { StdoutSink } from '../../src/sinks/stdout.ts';
import { formatText, safe, shellJoin } from '../../src/sinks/text-format.ts';

function balanced(s: SinkStats): void {
  const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
  assert.equal(s.received, s.sent + dropped + s.queued, `received = sent + dropped + queued: ${JSON.stringify(s)}`);
}

function tempDir(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-stdout-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const exec: OutputEvent = {
  type: 'exec',
  time: '2025-03-01T12:34:56.789Z',
  ktimeNs: 1,
  process: { pid: 4242, comm: 'bash', user: 'alice', exe: '/usr/bin/bash', argv: ['bash', '-c', 'echo hi; ls'] },
  container: { id: 'abcdef0123456789', name: 'web', enrichment: 'done' },
  pod: { name: 'web-1', uid: 'u' },
};

function collect(stream: PassThrough): () => string {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return () => Buffer.concat(chunks).toString('utf8');
}

describe('text format', () => {
  it('shows time, type, pid, comm, user, container and the exec argv', () => {
    const s = formatText(exec, false);
    assert.equal(s, `12:34:56.789 exec        4242 bash(alice) [web/web-1] bash -c 'echo hi; ls' (/usr/bin/bash)`);
  });

  it('shows exit codes, signals, forks, comm changes, paths and addresses', () => {
    const base = { time: '2025-03-01T12:34:56.789Z', ktimeNs: 1, process: { pid: 7, comm: 'x' } };
    assert.match(formatText({ ...base, type: 'exit', exitCode: 2 }, false), /exit 2$/);
    assert.match(formatText({ ...base, type: 'exit', signal: 9, coreDumped: true }, false), /killed by SIGKILL \(core dumped\)$/);
    assert.match(formatText({ ...base, type: 'fork', child: { pid: 8, tid: 8 } }, false), /child 8$/);
    assert.match(formatText({ ...base, type: 'comm', oldComm: 'a', comm: 'b' }, false), /a → b$/);
    const file = { ...base, group: 'file', syscall: 'openat', nr: 257, flags: 0, dfd: -100 };
    assert.match(formatText({ ...file, type: 'open', path: 'shadow', resolvedPath: '/etc/shadow', flagNames: 'O_RDONLY', ret: 3 }, false), /open +7 x \/etc\/shadow O_RDONLY$/);
    assert.match(formatText({ ...file, type: 'open', path: '/nope', flagNames: 'O_RDONLY', ret: -2, errno: 'ENOENT' }, false), /\/nope O_RDONLY ENOENT$/);
    assert.match(formatText({ ...file, type: 'rename', path: '/a', path2: '/b', flagNames: '' }, false), /\/a → \/b$/);
    const net = { ...base, group: 'network', family: 'AF_INET', protocol: 'tcp', fd: 3 };
    assert.match(formatText({ ...net, type: 'connect', remoteAddress: '10.0.0.1', remotePort: 443, localAddress: '10.0.0.2', localPort: 5555 }, false), /tcp 10\.0\.0\.1:443$/);
    assert.match(formatText({ ...net, type: 'connect', remoteAddress: '::1', remotePort: 22 }, false), /\[::1\]:22$/);
    assert.match(formatText({ ...net, type: 'connect', remoteAddress: '169.254.169.254', remotePort: 80, ret: -1, errno: 'EPERM', deny: { rule: 'Cloud metadata', result: 'denied' } }, false), /169\.254\.169\.254:80 denied by Cloud metadata EPERM$/);
    assert.match(formatText({ ...net, type: 'connect', syscall: 'sendmsg', protocol: 'udp', remoteAddress: '10.0.0.53', remotePort: 53, ret: -1, errno: 'EPERM', deny: { rule: 'Resolver', result: 'denied' } }, false), /udp 10\.0\.0\.53:53 datagram denied by Resolver EPERM$/);
    assert.match(formatText({ ...net, type: 'connect', remoteAddress: '10.0.0.1', remotePort: 80, deny: { rule: 'r', result: 'dry-run' } }, false), /deny dry-run by r$/);
    assert.match(formatText({ ...net, type: 'listen', localAddress: '0.0.0.0', localPort: 80 }, false), /tcp 0\.0\.0\.0:80$/);
    assert.match(formatText({ ...base, type: 'ptrace', group: 'other', syscall: 'ptrace', nr: 101, request: 'PTRACE_ATTACH', targetPid: 9, args: [1] }, false), /request=PTRACE_ATTACH targetPid=9$/);
    assert.match(formatText({ ...base, type: 'creds', syscall: 'setuid', old: { uid: 1000, euid: 1000 }, new: { uid: 0, euid: 0 } }, false), /setuid uid 1000→0 euid 1000→0/);
  });

  it('escapes control and bidi characters from the watched host', () => {
    const evil: OutputEvent = { ...exec, process: { pid: 1, comm: 'a\x1b[2Jb', argv: ['x\x1b]0;pwned\x07', 'r\u202eevil'] } };
    const s = formatText(evil, false);
    assert.ok(!/[\x00-\x1f\x7f\u202e]/.test(s), JSON.stringify(s));
    assert.match(s, /a\\x1b\[2Jb/);
    assert.match(s, /\\u\{202e\}/);
    assert.equal(safe('ok'), 'ok');
    assert.equal(shellJoin(['a', "it's", '']), `a 'it'\\''s' ''`);
  });

  it('colours only when asked', () => {
    assert.ok(formatText(exec, true).includes('\x1b['));
    assert.ok(!formatText(exec, false).includes('\x1b'));
  });
});

describe('StdoutSink', () => {
  it('writes the given JSON lines when not on a terminal', async () => {
    const out = new PassThrough();
    const text = collect(out);
    const sink = new StdoutSink({ stream: out });
    assert.equal(sink.text, false);
    const lines = [0, 1, 2].map((i) => JSON.stringify({ ...exec, ktimeNs: i }));
    for (const l of lines) sink.write(exec, l);
    await sink.close();
    assert.equal(text(), `${lines.join('\n')}\n`);
    assert.deepEqual(sink.stats(), { received: 3, sent: 3, dropped: {}, queued: 0, retries: 0 });
  });

  it('takes JSON lines as strings and as bytes too, in order, in batches across both', async () => {
    const out = new PassThrough();
    const text = collect(out);
    const sink = new StdoutSink({ stream: out, maxBatchBytes: 700 });
    const lines = Array.from({ length: 40 }, (_, i) => JSON.stringify({ ...exec, ktimeNs: i, path: i % 4 ? '/tmp/x' : '/naïve/日本' }));
    const buf = Buffer.alloc(4096);
    lines.forEach((l, i) => {
      if (i % 3 === 0) sink.write(exec, l);
      else if (i % 3 === 1) sink.writeLine!(l);
      else {
        const end = 10 + buf.write(l, 10);
        sink.writeBytes!(buf, 10, end);
        buf.fill(0x21); // copied before writeBytes returned
      }
    });
    await sink.close();
    assert.equal(text(), `${lines.join('\n')}\n`);
    assert.deepEqual(sink.stats(), { received: 40, sent: 40, dropped: {}, queued: 0, retries: 0 });
  });

  it('prints text on a terminal (and when asked)', async () => {
    const out = Object.assign(new PassThrough(), { isTTY: true });
    const text = collect(out);
    const sink = new StdoutSink({ stream: out, color: false });
    assert.equal(sink.text, true);
    assert.equal(sink.writeLine, undefined, 'text is formatted from the event object: no line-only writes');
    assert.equal(sink.writeBytes, undefined);
    sink.write(exec, JSON.stringify(exec));
    await sink.close();
    assert.equal(text(), `${formatText(exec, false)}\n`);
  });

  it('never blocks on a slow consumer: bounded queue, counted drops, then delivery', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const received: string[] = [];
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _enc, cb) {
        received.push(chunk.toString());
        void gate.then(() => cb());
      },
    });
    const sink = new StdoutSink({ stream: slow, maxQueue: 100, maxBatchBytes: 4096 });
    const line = JSON.stringify(exec);
    for (let i = 0; i < 1000; i++) sink.write(exec, line);
    let s = sink.stats();
    assert.deepEqual(s.dropped, { 'queue-full': 900 });
    balanced(s);
    // The consumer is stuck: more writes keep being counted, never buffered without bound.
    await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 500; i++) sink.write(exec, line);
    s = sink.stats();
    assert.equal(s.queued, 100, 'queued counts the chunk being written');
    assert.equal(s.dropped['queue-full'], 1400, 'every write past the bound is a drop');
    balanced(s);
    release();
    await sink.flush();
    s = sink.stats();
    assert.equal(s.queued, 0);
    assert.equal(s.sent, 100);
    assert.equal(received.join('').split('\n').length - 1, s.sent);
    await sink.close();
    balanced(sink.stats());
  });

  it('writes to a file descriptor on the thread pool', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'out');
    const fd = fs.openSync(file, 'w');
    t.after(() => fs.closeSync(fd));
    const sink = new StdoutSink({ fd });
    for (let i = 0; i < 50; i++) sink.write(exec, `{"n":${i}}`);
    await sink.close();
    const got = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { n: number }).n);
    assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => i));
    balanced(sink.stats());
  });

  it('writes lines given as bytes from their own buffers, in order with string lines, past writev\'s 1024 buffers', async (t) => {
    const dir = tempDir(t);
    const file = path.join(dir, 'out');
    const fd = fs.openSync(file, 'w');
    t.after(() => fs.closeSync(fd));
    const sink = new StdoutSink({ fd });
    const want: string[] = [];
    const buf = Buffer.alloc(256);
    for (let i = 0; i < 5000; i++) {
      const line = `{"n":${i}${'x'.repeat(i % 37)}}`;
      want.push(line);
      if (i % 7 === 3) sink.writeLine!(line); // a run of bytes broken by a string now and then
      else {
        const at = 1 + (i % 50);
        const end = at + buf.write(line, at);
        sink.writeBytes!(buf, at, end);
      }
    }
    await sink.close();
    assert.equal(fs.readFileSync(file, 'utf8'), `${want.join('\n')}\n`);
    const st = sink.stats();
    assert.equal(st.sent, 5000);
    balanced(st);
  });

  it('counts io-error when the reader went away (EPIPE), and drops later events at once', async (t) => {
    const dir = tempDir(t);
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const rd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const wr = fs.openSync(fifo, fs.constants.O_WRONLY);
    t.after(() => fs.closeSync(wr));
    fs.closeSync(rd); // no reader any more: writes fail with EPIPE
    const sink = new StdoutSink({ fd: wr });
    for (let i = 0; i < 3; i++) sink.write(exec, '{}');
    await sink.flush();
    sink.write(exec, '{}');
    await sink.close();
    const s = sink.stats();
    assert.equal(s.sent, 0);
    assert.equal(s.dropped['io-error'], 4);
    assert.match(s.lastError ?? '', /EPIPE/);
    balanced(s);
  });
});
