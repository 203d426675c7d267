// The exec decoder reuses the strings of the environment and the credentials object it decoded last when
// their bytes repeat (most execs inherit both from the same parent). Reuse must follow the bytes exactly:
// equal bytes give the same frozen values, any differing byte gives fresh ones, and a record written over the
// same ring memory later is decoded from its own bytes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeExec, joinedEnv } from '../../src/events/decode.ts';
import { splitNul } from '../../src/events/strings.ts';
import { EXEC_EVENT, PROC_CREDS, SIZEOF, VIGIL_OPCODE } from '../../src/events/layout.generated.ts';
import type { ExecEvent } from '../../src/events/types.ts';

/** An exec record with argv ["true"], the given environment block and uid, at `off` in `buf`. */
function writeExec(buf: Uint8Array, off: number, env: string, uid: number): number {
  const v = new DataView(buf.buffer, buf.byteOffset);
  const argv = Buffer.from('true\0');
  const envB = Buffer.from(env, 'latin1');
  const len = SIZEOF.exec_event + 1 + 1 + argv.length + envB.length;
  buf.fill(0, off, off + len);
  v.setUint16(off, VIGIL_OPCODE.EXEC, true);
  v.setUint32(off + EXEC_EVENT.exe_len.offset, 1, true);
  v.setUint32(off + EXEC_EVENT.filename_len.offset, 1, true);
  v.setUint32(off + EXEC_EVENT.argv_len.offset, argv.length, true);
  v.setUint32(off + EXEC_EVENT.env_len.offset, envB.length, true);
  v.setUint32(off + EXEC_EVENT.creds.offset + PROC_CREDS.uid.offset, uid, true);
  buf.set(argv, off + SIZEOF.exec_event + 2);
  buf.set(envB, off + SIZEOF.exec_event + 2 + argv.length);
  return len;
}

function decode(buf: Uint8Array, off: number, len: number): ExecEvent {
  const r = decodeExec(new DataView(buf.buffer, buf.byteOffset, buf.byteLength), off, len);
  assert.ok(!('decodeError' in r), JSON.stringify(r));
  return r as ExecEvent;
}

test('equal environment and credential bytes give the same frozen values; any other byte gives its own', () => {
  const ring = new Uint8Array(8192);
  const a = decode(ring, 0, writeExec(ring, 0, 'PATH=/bin\0HOME=/root\0', 1000));
  const b = decode(ring, 4096, writeExec(ring, 4096, 'PATH=/bin\0HOME=/root\0', 1000));
  assert.deepEqual(a.envRaw, ['PATH=/bin', 'HOME=/root']);
  assert.equal(b.envRaw, a.envRaw, 'same bytes: the same strings');
  assert.ok(Object.isFrozen(b.envRaw) && Object.isFrozen(b.creds), 'shared values are frozen');
  assert.equal(b.creds, a.creds);
  // One byte differs (same length): decoded afresh.
  const c = decode(ring, 0, writeExec(ring, 0, 'PATH=/bin\0HOME=/rooT\0', 1001));
  assert.deepEqual(c.envRaw, ['PATH=/bin', 'HOME=/rooT']);
  assert.notEqual(c.creds, a.creds);
  assert.equal(c.creds.uid, 1001);
  assert.equal(a.creds.uid, 1000, 'what was handed out before is unchanged');
  assert.deepEqual(a.envRaw, ['PATH=/bin', 'HOME=/root']);
  // An empty environment is its own, never the last one.
  assert.deepEqual(decode(ring, 4096, writeExec(ring, 4096, '', 1001)).envRaw, []);
});

test('an environment that differs from the last only in its last variable reuses the others; every block decodes as split afresh, and joins as the list', () => {
  const ring = new Uint8Array(1 << 16);
  const base = ['PATH=/bin', 'HOME=/root', 'LANG=C.UTF-8', 'OLDPWD=/work'];
  let x = 5;
  const rand = (n: number) => ((x = (x * 1103515245 + 12345) % 2147483648) % n);
  // Some of the same length, differing in their last byte only: a memo that kept a stale byte would match.
  const lasts = ['_=/usr/bin/cat', '_=/usr/bin/cau', '_=/usr/bin/ls', '_=/usr/bin/lt', '_=', '_=/usr/bin/\xe9t\xc3\xa9', 'é=ü', '_=\xff\xfe', ''];
  let prevBody: string | undefined;
  let lastOnly = 0;
  const pending: string[][] = [];
  for (let i = 0; i < 3000; i++) {
    const k = rand(10);
    let vars = [...base];
    if (k === 0) vars[rand(vars.length)] += 'x'; // a change in the middle
    if (k === 1) vars = vars.slice(0, rand(vars.length)); // fewer variables (down to none)
    if (k === 2) vars[0] = 'PATH=/sbin\xc3'; // an invalid byte early on
    const last = lasts[rand(lasts.length)]!;
    const body = vars.length || last ? [...vars, last].join('\0') : '';
    const block = (rand(3) ? `${body}\0` : body).replace(/\\x([0-9a-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
    // Written over the previous record's memory now and then, as a ring does.
    const off = rand(2) ? 0 : 8192;
    const ev = decode(ring, off, writeExec(ring, off, block, 0));
    const bytes = Buffer.from(block, 'latin1');
    assert.deepEqual(ev.envRaw, splitNul(bytes, 0, bytes.length), `block ${i}: ${JSON.stringify(block)}`);
    // The joined form the decoder keeps for the cache is the list's join, asked for or not, once or twice
    // (the first ask takes it out), now or after later blocks.
    const asks = rand(4);
    for (let a = 0; a < asks; a++) assert.equal(joinedEnv(ev.envRaw), ev.envRaw.join('\0'), `block ${i}, ask ${a}`);
    if (rand(5) === 0) pending.push(ev.envRaw);
    if (pending.length > 12) {
      const old = pending.splice(rand(pending.length), 1)[0]!;
      assert.equal(joinedEnv(old), old.join('\0'));
    }
    if (k >= 3 && prevBody === vars.join('\0') && vars.length) lastOnly++;
    prevBody = k >= 3 ? vars.join('\0') : undefined;
  }
  assert.ok(lastOnly > 1000, `${lastOnly} blocks differed from the one before only in their last variable`);
});
