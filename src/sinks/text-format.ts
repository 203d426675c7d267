// The human-readable one-line form of an event, for terminals: time, type, pid/comm/user, container and the
// event's key fields. Every string that came from the watched host (argv, paths, comm, names) is escaped, so a
// process cannot send escape sequences to the operator's terminal (colour resets, title changes, bidi tricks).
import os from 'node:os';
import type { OutputEvent } from '../pipeline/types.ts';
import { PRIORITIES } from '../rules/priorities.ts';

const SIGNALS: Record<number, string> = Object.fromEntries(Object.entries(os.constants.signals).map(([k, v]) => [v, k]));

// C0 and C1 controls, DEL, and the Unicode bidi overrides/isolates and line/paragraph separators.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

/** A host-controlled string made safe for a terminal: control and bidi characters become \xNN / \u{NNNN}. */
export function safe(s: string): string {
  return s.replace(UNSAFE, (c) => {
    const n = c.codePointAt(0)!;
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
  });
}

/** argv as a shell would need it, each argument quoted when it has to be. */
export function shellJoin(argv: readonly unknown[], max = 512): string {
  let out = '';
  for (const a of argv) {
    const s = safe(String(a));
    const q = s === '' || /[^\w@%+=:,./-]/.test(s) ? `'${s.replace(/'/g, `'\\''`)}'` : s;
    out += out ? ` ${q}` : q;
    if (out.length > max) return `${out.slice(0, max)}…`;
  }
  return out;
}

interface Palette {
  dim: (s: string) => string;
  bold: (s: string) => string;
  type: (t: string, s: string) => string;
  bad: (s: string) => string;
  name: (s: string) => string;
}

const sgr = (code: string) => (s: string) => `\x1b[${code}m${s}\x1b[0m`;
const NO_COLOR: Palette = { dim: (s) => s, bold: (s) => s, type: (_t, s) => s, bad: (s) => s, name: (s) => s };

const TYPE_COLOR: Record<string, string> = {
  exec: '32', // green: something started
  fork: '2',
  exit: '90',
  comm: '36',
  creds: '35', // magenta: privilege changes deserve attention
  connect: '34',
  accept: '34',
  listen: '34',
  open: '33',
  unlink: '33',
  rename: '33',
  chmod: '33',
  chown: '33',
  link: '33',
  symlink: '33',
};
const COLOR: Palette = {
  dim: sgr('2'),
  bold: sgr('1'),
  type: (t, s) => sgr(TYPE_COLOR[t] ?? (t.startsWith('container') ? '36' : t.includes('alert') ? '31;1' : '37'))(s),
  bad: sgr('31'),
  name: sgr('36'),
};

// Fields every event has or that the common part of the line already shows.
const COMMON = new Set(['type', 'time', 'ktimeNs', 'process', 'parent', 'ancestors', 'container', 'pod', 'ret', 'errno']);
// Fields that are there for machines (raw numbers behind a name shown elsewhere, decoder flags).
const NOISE = new Set(['nr', 'evFlags', 'group', 'syscall', 'args', 'flags', 'dfd', 'dfd2', 'fd', 'pathTruncated', 'pathReadAtExit', 'pathUnreadable', 'resolvedTruncated', 'resolvedFrom', 'addrUnreadable', 'noSocket', 'unknown']);

function scalar(v: unknown): string | undefined {
  if (typeof v === 'string') return safe(v.length > 200 ? `${v.slice(0, 200)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function describe(ev: OutputEvent, c: Palette): string {
  const p = ev.process;
  switch (ev.type) {
    case 'exec': {
      const argv = p?.argv;
      const cmd = argv && argv.length ? shellJoin(argv) : safe(String(ev.filename ?? p?.exe ?? ''));
      const exe = p?.exe && argv?.[0] !== p.exe ? c.dim(` (${safe(p.exe)})`) : '';
      return `${c.bold(cmd)}${exe}${ev.argvTruncated || p?.argvTruncated ? c.dim(' [argv truncated]') : ''}`;
    }
    case 'exit': {
      const sig = typeof ev.signal === 'number' && ev.signal > 0 ? ev.signal : undefined;
      if (sig !== undefined) return c.bad(`killed by ${SIGNALS[sig] ?? `signal ${sig}`}${ev.coreDumped ? ' (core dumped)' : ''}`);
      const code = ev.exitCode;
      if (typeof code === 'number') return code === 0 ? 'exit 0' : c.bad(`exit ${code}`);
      return typeof ev.status === 'number' ? `status ${ev.status}` : '';
    }
    case 'fork': {
      const child = ev.child as { pid?: number; tid?: number } | undefined;
      return child ? `${ev.thread ? 'thread' : 'child'} ${child.tid !== undefined && ev.thread ? child.tid : child.pid}` : '';
    }
    case 'alert': {
      // A rule's alert: its priority, its name and its output (host strings in it are escaped like the rest).
      const pr = String(ev.priority ?? '');
      const level = (PRIORITIES as readonly string[]).indexOf(pr);
      const loud = level >= 0 && level <= PRIORITIES.indexOf('warning');
      return `${(loud ? c.bad : c.bold)(`[${safe(pr)}]`)} ${c.bold(safe(String(ev.rule ?? '')))}: ${safe(String(ev.output ?? ''))}`;
    }
    case 'comm':
      return `${safe(String(ev.oldComm ?? '?'))} → ${safe(String(ev.comm ?? '?'))}`;
    case 'creds': {
      const o = ev.old as Record<string, unknown> | undefined;
      const n = ev.new as Record<string, unknown> | undefined;
      const parts: string[] = [];
      if (n) {
        for (const k of ['uid', 'euid', 'gid', 'egid', 'fsuid', 'capEffective']) {
          if (o && o[k] === n[k]) continue;
          parts.push(`${k} ${o ? `${String(o[k])}→` : ''}${String(n[k])}`);
        }
      }
      return `${safe(String(ev.syscall ?? ''))} ${parts.join(' ')}`.trim();
    }
  }
  const bits: string[] = [];
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? safe(v) : undefined);
  const hostPort = (a: unknown, port: unknown): string | undefined => {
    const h = str(a);
    if (h === undefined) return undefined;
    if (typeof port !== 'number' || port === 0) return h;
    return h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`;
  };
  if (ev.group === 'file' || (typeof ev.path === 'string' && ev.group === undefined)) {
    // The resolved absolute path when known: a relative "../x" says little on its own.
    const p1 = str(ev.resolvedPath) ?? str(ev.path) ?? '';
    const p2 = str(ev.resolvedPath2) ?? str(ev.path2);
    bits.push(c.bold(p2 ? `${p1} → ${p2}` : p1));
    const flags = str(ev.flagNames);
    if (flags) bits.push(flags);
    const mode = str(ev.modeOctal);
    if (mode) bits.push(mode);
    if (typeof ev.length === 'number') bits.push(`length ${ev.length}`);
    if (ev.sensitive === true) bits.push(c.bad('sensitive'));
    if (ev.secret === true) bits.push(c.bad('secret'));
    if (ev.logTruncated === true) bits.push(c.bad('log truncated'));
    if (ev.logRemoved === true) bits.push(c.bad('log removed'));
    if (ev.logReplaced === true) bits.push(c.bad('log replaced'));
    if (ev.ioUring === true) bits.push(ev.resultUnknown === true ? 'io_uring, result unknown' : 'io_uring');
  } else if (ev.group === 'network') {
    const proto = str(ev.protocol);
    if (proto) bits.push(proto);
    const local = hostPort(ev.localAddress, ev.localPort);
    const remote = hostPort(ev.remoteAddress, ev.remotePort);
    if (ev.type === 'bind' || ev.type === 'listen') {
      if (local) bits.push(c.bold(local));
    } else {
      if (remote) bits.push(c.bold(remote));
      if (local && ev.type !== 'connect') bits.push(c.dim(`local ${local}`));
    }
    if (typeof ev.newState === 'string') bits.push(`${str(ev.oldState) ?? '?'} → ${safe(ev.newState)}`);
    // A deny rule's datagram hook: a UDP send to a peer without a connect.
    if (ev.type === 'connect' && ev.syscall === 'sendmsg') bits.push('datagram');
    if (ev.ioUring === true) bits.push(ev.resultUnknown === true ? 'io_uring, result unknown' : 'io_uring');
    // An in-kernel deny rule's verdict: "denied by <rule>", or its dry run or refusal.
    const deny = ev.deny as { rule?: unknown; result?: unknown } | undefined;
    if (deny && typeof deny === 'object') bits.push(c.bad(`${deny.result === 'denied' ? 'denied' : `deny ${str(deny.result) ?? '?'}`} by ${str(deny.rule) ?? '?'}`));
  } else {
    for (const k of Object.keys(ev)) {
      if (bits.length >= 8) break;
      if (COMMON.has(k) || NOISE.has(k)) continue;
      const v = scalar(ev[k]);
      if (v !== undefined) bits.push(`${safe(k)}=${v}`);
    }
  }
  if (typeof ev.ret === 'number' && ev.ret < 0) bits.push(c.bad(typeof ev.errno === 'string' ? safe(ev.errno) : `ret=${ev.ret}`));
  return bits.join(' ');
}

/** One line (no newline) for a terminal. `color` adds ANSI colours. Never throws for odd events. */
export function formatText(ev: OutputEvent, color: boolean): string {
  const c = color ? COLOR : NO_COLOR;
  const time = typeof ev.time === 'string' && ev.time.length >= 23 ? ev.time.slice(11, 23) : String(ev.time ?? '');
  const p = ev.process;
  const who = p
    ? `${String(p.pid).padStart(7)} ${c.name(safe(p.comm ?? '?'))}${p.user !== undefined ? c.dim(`(${safe(p.user)})`) : p.uid !== undefined ? c.dim(`(${p.uid})`) : ''}`
    : ''.padStart(7);
  const ct = ev.container ? ` ${c.dim('[')}${safe(ev.container.name ?? ev.container.id.slice(0, 12))}${ev.pod?.name ? c.dim(`/${safe(ev.pod.name)}`) : ''}${c.dim(']')}` : '';
  let detail: string;
  try {
    detail = describe(ev, c);
  } catch {
    detail = '';
  }
  return `${c.dim(time)} ${c.type(ev.type, safe(String(ev.type)).padEnd(8))} ${who}${ct}${detail ? ` ${detail}` : ''}`;
}
