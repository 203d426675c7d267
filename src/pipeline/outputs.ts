// Event-specific output fields per event type (the common process/container parts are added by enrich).
// The process's exe and scrubbed argv live in `process`; these add only what the event itself says.
import type { CommEvent, Creds, CredsEvent, ExecEvent, ExitEvent, ForkEvent, SyscallEvent } from '../events/types.ts';
import { FILE_EVENT_KEYS, NET_EVENT_KEYS, SYS_EVENT_KEYS } from '../events/decode.ts';
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
  } else if (v !== undefined) {
    const j = memberValue(v, k, JSON.stringify(k));
    if (j === undefined) return;
    w.raw(key);
    w.text(j);
  }
}

const K = {
  filename: ascii(',"filename":'),
  argc: ascii(',"argc":'),
  execThread: ascii(',"execThread":'),
  env: ascii(',"env":'),
  argvTruncated: ascii(',"argvTruncated":true'),
  envTruncated: ascii(',"envTruncated":true'),
  exePathTruncated: ascii(',"exePathTruncated":true'),
  status: ascii(',"status":'),
  exitCode: ascii(',"exitCode":'),
  signal: ascii(',"signal":'),
  coreDumped: ascii(',"coreDumped":true'),
  child: ascii(',"child":'),
  childPid: ascii(',"child":{"pid":'),
  childTid: ascii(',"tid":'),
  childPpid: ascii(',"ppid":'),
  thread: ascii(',"thread":true'),
};

/**
 * The JSON of scrubbed environments, per list: the process cache hands out one frozen list per distinct
 * environment (intern.ts), so an exec's environment is serialised once, not once per exec. Only frozen lists
 * are kept: a list that can change must be serialised as it is now.
 */
const envJson = new WeakMap<readonly string[], string>();
function envMember(w: ByteLine, env: readonly string[]): void {
  let j = envJson.get(env);
  if (j === undefined) {
    j = JSON.stringify(env);
    if (Object.isFrozen(env)) envJson.set(env, j);
  }
  w.raw(K.env);
  w.text(j);
}

// Each shaper's `bytes` writes the members of JSON.stringify(shaper(ev)), without the object (checked member
// for member by test/unit/pipeline-json.test.ts).
export const processOutputs: [string, OutputShaper][] = [
  [
    'exec',
    Object.assign(
      (d: Decoded) => {
        const ev = d as ExecEvent;
        const out: Record<string, unknown> = { filename: ev.filename, argc: ev.argc };
        if (ev.oldPid !== ev.pid) out.execThread = ev.oldPid;
        if (ev.envRaw.length) out.env = ev.envRaw; // scrubbed by the process cache before this runs
        if (ev.argvTruncated) out.argvTruncated = true;
        if (ev.envTruncated) out.envTruncated = true;
        if (ev.pathTruncated) out.exePathTruncated = true;
        return out;
      },
      {
        bytes: (d: Decoded, w: ByteLine) => {
          const ev = d as ExecEvent;
          member(w, K.filename, 'filename', ev.filename);
          member(w, K.argc, 'argc', ev.argc);
          if (ev.oldPid !== ev.pid) member(w, K.execThread, 'execThread', ev.oldPid);
          if (ev.envRaw.length) envMember(w, ev.envRaw);
          if (ev.argvTruncated) w.raw(K.argvTruncated);
          if (ev.envTruncated) w.raw(K.envTruncated);
          if (ev.pathTruncated) w.raw(K.exePathTruncated);
        },
      },
    ),
  ],
  [
    'exit',
    Object.assign(
      (d: Decoded) => {
        const ev = d as ExitEvent;
        const out: Record<string, unknown> = { status: ev.status };
        if (ev.exitCode !== undefined) out.exitCode = ev.exitCode;
        if (ev.signal !== undefined) out.signal = ev.signal;
        if (ev.coreDumped) out.coreDumped = true;
        return out;
      },
      {
        bytes: (d: Decoded, w: ByteLine) => {
          const ev = d as ExitEvent;
          member(w, K.status, 'status', ev.status);
          member(w, K.exitCode, 'exitCode', ev.exitCode);
          member(w, K.signal, 'signal', ev.signal);
          if (ev.coreDumped) w.raw(K.coreDumped);
        },
      },
    ),
  ],
  [
    'fork',
    Object.assign(
      (d: Decoded) => {
        const ev = d as ForkEvent;
        const out: Record<string, unknown> = { child: { pid: ev.childTgid, tid: ev.childPid, ppid: ev.childPpid } };
        if (ev.thread) out.thread = true;
        return out;
      },
      {
        bytes: (d: Decoded, w: ByteLine) => {
          const ev = d as ForkEvent;
          if (typeof ev.childTgid !== 'number' || typeof ev.childPid !== 'number' || typeof ev.childPpid !== 'number') {
            member(w, K.child, 'child', { pid: ev.childTgid, tid: ev.childPid, ppid: ev.childPpid });
            if (ev.thread) w.raw(K.thread);
            return;
          }
          w.raw(K.childPid);
          w.number(ev.childTgid);
          w.raw(K.childTid);
          w.number(ev.childPid);
          w.raw(K.childPpid);
          w.number(ev.childPpid);
          w.text('}');
          if (ev.thread) w.raw(K.thread);
        },
      },
    ),
  ],
  [
    'creds',
    (d: Decoded) => {
      const ev = d as CredsEvent;
      const out: Record<string, unknown> = { syscall: SYSCALLS[ev.syscallNr] ?? (ev.syscallNr ? ev.syscallNr : 'commit_creds') };
      if (ev.oldCreds) out.old = credsOut(ev.oldCreds);
      out.new = credsOut(ev.creds);
      return out;
    },
  ],
  [
    'comm',
    (d: Decoded) => {
      const ev = d as CommEvent;
      return { oldComm: ev.oldComm, comm: ev.comm };
    },
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
const fileBytes = fixedMembersBytes(FILE_EVENT_KEYS, members);
const netBytes = fixedMembersBytes(NET_EVENT_KEYS, members);
const sysBytes = fixedMembersBytes(SYS_EVENT_KEYS, members);

/**
 * Syscall events (files, network, other) are already decoded into their output form (names for flags,
 * addresses, errnos): their fields are passed on as they are, minus the base fields, the undefined ones
 * (absent from the JSON either way; leaving them out keeps serialisation on V8's fast path) and the false
 * ones: a flag appears only when it is set, as the process events' flags do.
 */
export const syscallOutput: OutputShaper = Object.assign(
  (d: Decoded) => {
    const out: Record<string, unknown> = {};
    const r = d as unknown as Record<string, unknown>;
    for (const k in r) {
      const v = r[k];
      if (v !== undefined && v !== false && !BASE.has(k)) out[k] = v;
    }
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
