// Turns a decoded event into the OutputEvent users see: the process (from the process cache), its parent and
// ancestry, its container and pod (from the container resolver). Per-process parts are built once per exec
// image and reused for every event of that image: the hot path does lookups, not rebuilding.
import { bootToEpochMs } from './clock.ts';
import type { ContainerInfo } from '../containers/resolver.ts';
import type { ProcessCache } from '../process/cache.ts';
import type { ProcessEntry } from '../process/types.ts';
import type { ContainerRef, OutputEvent, PodRef, ProcessRef } from './types.ts';

export interface EnrichContext {
  cache: ProcessCache;
  container: (cgroupId: number) => ContainerInfo | undefined;
  userName: (e: ProcessEntry) => string | undefined;
  /** Ancestors reported per event. */
  maxAncestors?: number;
}

interface Memo {
  execId: string;
  parentKey: string | undefined;
  credsSeq: number;
  ref: ProcessRef;
  parent: ProcessRef | undefined;
  ancestors: number[];
}

const memo = new WeakMap<ProcessEntry, Memo>();

function processRef(e: ProcessEntry, user: string | undefined): ProcessRef {
  const r: ProcessRef = { pid: e.pid, ppid: e.ppid, key: e.key, execId: e.image.execId, startNs: e.startNs, comm: e.image.comm };
  if (e.image.exePath !== undefined) r.exe = e.image.exePath;
  if (e.image.argv) r.argv = e.image.argv;
  if (e.image.argvTruncated) r.argvTruncated = true;
  if (e.creds) {
    r.uid = e.creds.uid;
    r.gid = e.creds.gid;
    if (e.creds.euid !== e.creds.uid) r.euid = e.creds.euid;
    if (e.creds.loginuid !== undefined) r.loginuid = e.creds.loginuid;
  }
  if (user) r.user = user;
  if (e.tty) r.tty = e.tty;
  if (e.unknown.length) r.unknown = e.unknown;
  return r;
}

/** The process, parent and ancestry parts of an event, memoized per (exec image, parent, creds). */
export function processParts(ctx: EnrichContext, e: ProcessEntry): Memo {
  const m = memo.get(e);
  const credsSeq = e.credHistory.length;
  if (m && m.execId === e.image.execId && m.parentKey === e.parentKey && m.credsSeq === credsSeq && m.ref.comm === e.image.comm) return m;
  const anc = ctx.cache.ancestors(e.key, { max: ctx.maxAncestors ?? 16 });
  const p = anc[0];
  const fresh: Memo = {
    execId: e.image.execId,
    parentKey: e.parentKey,
    credsSeq,
    ref: processRef(e, ctx.userName(e)),
    parent: p ? { pid: p.pid, comm: p.image.comm, exe: p.image.exePath, argv: p.image.argv, execId: p.image.execId } : undefined,
    ancestors: anc.map((a) => a.pid),
  };
  memo.set(e, fresh);
  return fresh;
}

const containerMemo = new WeakMap<ContainerInfo, { state: string; ref: ContainerRef; pod: PodRef | undefined }>();

export function containerParts(c: ContainerInfo): { ref: ContainerRef; pod: PodRef | undefined } {
  const m = containerMemo.get(c);
  if (m && m.state === c.enrichment) return m;
  const ref: ContainerRef = { id: c.id, enrichment: c.enrichment };
  if (c.name) ref.name = c.name;
  if (c.image) ref.image = c.image;
  if (c.imageDigest) ref.imageDigest = c.imageDigest;
  if (c.runtime) ref.runtime = c.runtime;
  if (Object.keys(c.labels).length) ref.labels = c.labels;
  let pod: PodRef | undefined;
  if (c.pod?.uid) {
    pod = { uid: c.pod.uid };
    if (c.pod.name) pod.name = c.pod.name;
    if (c.pod.namespace) pod.namespace = c.pod.namespace;
    if (c.pod.labels) pod.labels = c.pod.labels;
  }
  const fresh = { state: c.enrichment, ref, pod };
  containerMemo.set(c, fresh);
  return fresh;
}

/**
 * Builds the output event: `fields` are the event-specific fields (already shaped for output), `pid`,
 * `cgroupId` and `ktimeNs` locate the process and container.
 */
export function enrich(ctx: EnrichContext, type: string, ktimeNs: number, pid: number, tid: number, cgroupId: number, fields: Record<string, unknown>): OutputEvent {
  const out: OutputEvent = { type, time: new Date(bootToEpochMs(ktimeNs)).toISOString(), ktimeNs };
  const e = ctx.cache.at(pid, ktimeNs) ?? ctx.cache.byPid(pid);
  if (e) {
    const parts = processParts(ctx, e);
    out.process = tid && tid !== pid ? { ...parts.ref, tid } : parts.ref;
    if (parts.parent) out.parent = parts.parent;
    if (parts.ancestors.length) out.ancestors = parts.ancestors;
  } else {
    out.process = { pid, unknown: ['process'] };
  }
  const c = ctx.container(cgroupId);
  if (c) {
    const cp = containerParts(c);
    out.container = cp.ref;
    if (cp.pod) out.pod = cp.pod;
  }
  for (const k in fields) out[k] = fields[k];
  return out;
}
