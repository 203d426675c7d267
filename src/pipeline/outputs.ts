// Event-specific output fields per event type (the common process/container parts are added by enrich).
// The process's exe and scrubbed argv live in `process`; these add only what the event itself says.
import type { CommEvent, Creds, CredsEvent, ExecEvent, ExitEvent, ForkEvent, SyscallEvent } from '../events/types.ts';
import { FILE_EVENT_KEYS, NET_EVENT_KEYS, SYS_EVENT_KEYS } from '../events/decode.ts';
import { fixedMembers } from './json.ts';
import { fixedMembersBytes, type ByteLine } from './json-bytes.ts';
import type { Decoded, OutputShaper } from './pipeline.ts';

const SYSCALLS: Record<number, string> = { 105: 'setuid', 106: 'setgid', 113: 'setreuid', 114: 'setregid', 117: 'setresuid', 119: 'setresgid', 122: 'setfsuid', 123: 'setfsgid', 126: 'capset' };

function credsOut(c: Creds) {
  return { uid: c.uid, gid: c.gid, euid: c.euid, egid: c.egid, suid: c.suid, sgid: c.sgid, fsuid: c.fsuid, fsgid: c.fsgid, capEffective: c.capEffective, capPermitted: c.capPermitted };
}

export const processOutputs: [string, OutputShaper][] = [
  [
    'exec',
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
  ],
  [
    'exit',
    (d: Decoded) => {
      const ev = d as ExitEvent;
      const out: Record<string, unknown> = { status: ev.status };
      if (ev.exitCode !== undefined) out.exitCode = ev.exitCode;
      if (ev.signal !== undefined) out.signal = ev.signal;
      if (ev.coreDumped) out.coreDumped = true;
      return out;
    },
  ],
  [
    'fork',
    (d: Decoded) => {
      const ev = d as ForkEvent;
      const out: Record<string, unknown> = { child: { pid: ev.childTgid, tid: ev.childPid, ppid: ev.childPpid } };
      if (ev.thread) out.thread = true;
      return out;
    },
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
