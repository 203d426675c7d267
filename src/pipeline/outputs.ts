// Event-specific output fields per event type (the common process/container parts are added by enrich).
// The process's exe and scrubbed argv live in `process`; these add only what the event itself says.
import type { CommEvent, Creds, CredsEvent, ExecEvent, ExitEvent, ForkEvent, SyscallEvent } from '../events/types.ts';
import { FILE_EVENT_KEYS, NET_EVENT_KEYS, SYS_EVENT_KEYS } from '../events/decode.ts';
import { OPS_BY_GROUP } from '../syscalls/config.ts';
import { fixedMembers, memberValue } from './json.ts';
import { ascii, fixedMembersBytes, type ByteLine } from './json-bytes.ts';
import type { Decoded, OutputShaper } from './pipeline.ts';

const SYSCALLS: Record<number, string> = { 105: 'setuid', 106: 'setgid', 113: 'setreuid', 114: 'setregid', 117: 'setresuid', 119: 'setresgid', 122: 'setfsuid', 123: 'setfsgid', 126: 'capset' };

function credsOut(c: Creds) {
  return { uid: c.uid, gid: c.gid, euid: c.euid, egid: c.egid, suid: c.suid, sgid: c.sgid, fsuid: c.fsuid, fsgid: c.fsgid, capEffective: c.capEffective, capPermitted: c.capPermitted };
}

/** A member whose value may be anything a decoded event holds, as JSON.stringify writes it (none for undefined). */
function member(w: ByteLine, key: Uint8Array, k: string, v: unknown): void {
  if (typeof v === 'string') {
    w.raw(key);
    w.string(v);
  } else if (typeof v === 'number') {
    w.raw(key);
    w.number(v);
  } else if (typeof v === 'boolean') {
    w.raw(key);
    w.text(v ? 'true' : 'false');
  } else if (v !== undefined) {
    const j = memberValue(v, k, JSON.stringify(k));
    if (j === undefined) return;
    w.raw(key);
    w.text(j);
  }
}

/**
 * One output field of a process event: its value (undefined: left out), and optionally a writer of the whole
 * member (its key given, or nothing when the value is undefined) straight from the event, where building the
 * value would cost an object or a serialisation per event.
 */
interface Field<E> {
  key: string;
  get: (ev: E) => unknown;
  write?: (w: ByteLine, key: Uint8Array, ev: E) => void;
}

/**
 * The shaper of a process event type from its fields, in output order: the object has the fields whose
 * value is defined, and `bytes` writes the members of JSON.stringify of that object (one list for both, so
 * that they cannot disagree).
 */
function processShaper<E>(fields: Field<E>[]): OutputShaper {
  const fs = fields.map((f) => ({ ...f, prefix: ascii(`,${JSON.stringify(f.key)}:`) }));
  return Object.assign(
    (d: Decoded, into?: Record<string, unknown>) => {
      const ev = d as unknown as E;
      const out: Record<string, unknown> = into ?? {};
      for (const f of fs) {
        const v = f.get(ev);
        if (v !== undefined) out[f.key] = v;
      }
      return out;
    },
    {
      keys: fields.map((f) => f.key),
      bytes: (d: Decoded, w: ByteLine) => {
        const ev = d as unknown as E;
        for (const f of fs) {
          if (f.write) f.write(w, f.prefix, ev);
          else member(w, f.prefix, f.key, f.get(ev));
        }
      },
    },
  );
}

/** A flag: present (true) when set, absent otherwise. */
const flag = (set: boolean | undefined): true | undefined => (set ? true : undefined);

/**
 * The JSON of scrubbed environments, per list: the process cache hands out one frozen list per distinct
 * environment (intern.ts), so an exec's environment is serialised once, not once per exec. Only frozen lists
 * are kept: a list that can change must be serialised as it is now.
 */
const envJson = new WeakMap<readonly string[], string>();
function envMember(w: ByteLine, key: Uint8Array, env: readonly string[]): void {
  if (!env.length) return;
  let j = envJson.get(env);
  if (j === undefined) {
    j = JSON.stringify(env);
    if (Object.isFrozen(env)) envJson.set(env, j);
  }
  w.raw(key);
  w.text(j);
}

const isNumber = (v: unknown): v is number => typeof v === 'number';
const childOf = (ev: ForkEvent) => ({ pid: ev.childTgid, tid: ev.childPid, ppid: ev.childPpid });

export const processOutputs: [string, OutputShaper][] = [
  [
    'exec',
    processShaper<ExecEvent>([
      { key: 'filename', get: (ev) => ev.filename },
      { key: 'argc', get: (ev) => ev.argc },
      { key: 'execThread', get: (ev) => (ev.oldPid !== ev.pid ? ev.oldPid : undefined) },
      // Scrubbed by the process cache before this runs.
      { key: 'env', get: (ev) => (ev.envRaw.length ? ev.envRaw : undefined), write: (w, key, ev) => envMember(w, key, ev.envRaw) },
      { key: 'argvTruncated', get: (ev) => flag(ev.argvTruncated) },
      { key: 'envTruncated', get: (ev) => flag(ev.envTruncated) },
      { key: 'exePathTruncated', get: (ev) => flag(ev.pathTruncated) },
      { key: 'kill', get: (ev) => ev.kill },
    ]),
  ],
  [
    'exit',
    processShaper<ExitEvent>([
      { key: 'status', get: (ev) => ev.status },
      { key: 'exitCode', get: (ev) => ev.exitCode },
      { key: 'signal', get: (ev) => ev.signal },
      { key: 'coreDumped', get: (ev) => flag(ev.coreDumped) },
    ]),
  ],
  [
    'fork',
    processShaper<ForkEvent>([
      {
        key: 'child',
        get: childOf,
        // Written from the event without the object when all three are numbers, as decoded forks have.
        write: (w, key, ev) => {
          if (!isNumber(ev.childTgid) || !isNumber(ev.childPid) || !isNumber(ev.childPpid)) {
            member(w, key, 'child', childOf(ev));
            return;
          }
          w.raw(key);
          w.text('{"pid":');
          w.number(ev.childTgid);
          w.text(',"tid":');
          w.number(ev.childPid);
          w.text(',"ppid":');
          w.number(ev.childPpid);
          w.text('}');
        },
      },
      { key: 'thread', get: (ev) => flag(ev.thread) },
    ]),
  ],
  [
    'creds',
    Object.assign(
      (d: Decoded) => {
        const ev = d as CredsEvent;
        const out: Record<string, unknown> = { syscall: SYSCALLS[ev.syscallNr] ?? (ev.syscallNr ? ev.syscallNr : 'commit_creds') };
        if (ev.oldCreds) out.old = credsOut(ev.oldCreds);
        out.new = credsOut(ev.creds);
        return out;
      },
      { keys: ['syscall', 'old', 'new'] },
    ),
  ],
  [
    'comm',
    Object.assign(
      (d: Decoded) => {
        const ev = d as CommEvent;
        return { oldComm: ev.oldComm, comm: ev.comm };
      },
      { keys: ['oldComm', 'comm'] },
    ),
  ],
];

/**
 * Base fields every decoded event has; enrich() places them (process, container), so they are not repeated.
 * With them, the members enrich() writes itself, which a shaper must never return (OutputShaper).
 */
const BASE = new Set(['type', 'ktimeNs', 'pid', 'tid', 'cgroupId', 'unknown', 'evFlags', 'time', 'process', 'parent', 'ancestors', 'container', 'pod']);
const members = { skip: BASE, omitFalse: true };
const fileMembers = fixedMembers(FILE_EVENT_KEYS, members);
const netMembers = fixedMembers(NET_EVENT_KEYS, members);
const sysMembers = fixedMembers(SYS_EVENT_KEYS, members);
const fileFields = fixedFields(FILE_EVENT_KEYS, members.skip);
const netFields = fixedFields(NET_EVENT_KEYS, members.skip);
const sysFields = fixedFields(SYS_EVENT_KEYS, members.skip);
const fileBytes = fixedMembersBytes(FILE_EVENT_KEYS, members);
const netBytes = fixedMembersBytes(NET_EVENT_KEYS, members);
const sysBytes = fixedMembersBytes(SYS_EVENT_KEYS, members);

/**
 * Straight-line code copying the fields of an object with exactly the own keys `keys` (a decoder's, built by
 * one object literal) into `out`, in that order, but the `skip` names, the undefined values and the false
 * ones. It replaced a loop over the keys with a Set lookup and a keyed store per field, which was the
 * largest single cost of building a file event's object (bench/pipeline's rules stage, CPU profile: 146 ms
 * of the replay's main thread, 23 ms since); named stores in a fixed order also give every object of a
 * group the same shape.
 */
function fixedFields(keys: readonly string[], skip: ReadonlySet<string>): (o: Record<string, unknown>, out: Record<string, unknown>) => void {
  const lines = ['let v;'];
  for (const k of keys) {
    if (skip.has(k)) continue;
    const key = JSON.stringify(k); // a JSON string is a JS string literal: safe to splice into code
    lines.push(`v = o[${key}];`, `if (v !== undefined && v !== false) out[${key}] = v;`);
  }
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from key names, each escaped as a JSON string literal
  return new Function(`return (o, out) => {\n${lines.join('\n')}\n};`)() as (o: Record<string, unknown>, out: Record<string, unknown>) => void;
}

/**
 * Syscall events (files, network, other) are already decoded into their output form (names for flags,
 * addresses, errnos): their fields are passed on as they are, minus the base fields, the undefined ones
 * (absent from the JSON either way; leaving them out keeps serialisation on V8's fast path) and the false
 * ones: a flag appears only when it is set, as the process events' flags do.
 */
export const syscallOutput: OutputShaper = Object.assign(
  (d: Decoded, into?: Record<string, unknown>) => {
    const out: Record<string, unknown> = into ?? {};
    const r = d as unknown as Record<string, unknown>;
    const g = (d as SyscallEvent).group;
    if (g === 'file') fileFields(r, out);
    else if (g === 'network') netFields(r, out);
    else sysFields(r, out);
    return out;
  },
  {
    // The same fields as JSON members, without the object: one compiled serialiser per group, whose decoder
    // gives all its events the same keys (FILE_EVENT_KEYS and the others).
    json: (d: Decoded) => {
      const r = d as unknown as Record<string, unknown>;
      const g = (d as SyscallEvent).group;
      return g === 'file' ? fileMembers(r) : g === 'network' ? netMembers(r) : sysMembers(r);
    },
    // And as bytes, for sinks that take them.
    bytes: (d: Decoded, w: ByteLine) => {
      const r = d as unknown as Record<string, unknown>;
      const g = (d as SyscallEvent).group;
      if (g === 'file') fileBytes(r, w);
      else if (g === 'network') netBytes(r, w);
      else sysBytes(r, w);
    },
  },
);

/**
 * The members an event of each record type may carry besides the common ones (type, time, process…): what
 * its shaper can put out. For the rules' field checks (src/rules/fields.ts); test/unit/rules-lint.test.ts
 * checks them against shaped events.
 */
export function outputMemberKeys(): Map<string, readonly string[]> {
  const m = new Map<string, readonly string[]>();
  for (const [type, shaper] of processOutputs) m.set(type, shaper.keys ?? []);
  const own = (keys: readonly string[]) => keys.filter((k) => !BASE.has(k));
  for (const op of OPS_BY_GROUP.file) m.set(op, own(FILE_EVENT_KEYS));
  for (const op of OPS_BY_GROUP.net) m.set(op, own(NET_EVENT_KEYS));
  for (const op of OPS_BY_GROUP.sys) m.set(op, own(SYS_EVENT_KEYS));
  return m;
}
