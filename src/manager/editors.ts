// Declarative edits a manager applies between open and load (constants, map specs, shared maps) and routes
// it installs between load and attach (maps of maps, tail calls). Plain data: validated up front so that a
// bad edit is rejected before anything touches the kernel.
import { InvalidArgumentError } from '../bpf/errors.ts';
import { u32Key, type BpfMap } from '../bpf/map.ts';
import type { GlobalValue } from '../bpf/object.ts';
import type { BpfProgram } from '../bpf/program.ts';
import type { ProbeId } from './probe.ts';

/** Rewrites a `const volatile` global before load. */
export interface ConstantEditor {
  name: string;
  value: GlobalValue;
  /**
   * Limit the edit to these programs (eBPF function names or probe ids). Their programs are then loaded from
   * their own instance of the object, which shares every map but .rodata with the main one.
   */
  programs?: (string | ProbeId)[];
  /** Throw when the object has no such global (default: ignore, like ebpf-manager). */
  failOnMissing?: boolean;
}

/** Changes a map's definition before load. Only the fields given are changed. */
export interface MapSpecEditor {
  type?: number;
  maxEntries?: number;
  flags?: number;
  keySize?: number;
  valueSize?: number;
}

/** A map the manager declares: optional pin, initial contents, freezing, cleanup override. */
export interface ManagedMap {
  name: string;
  /** Pin here: an existing compatible map pinned there is reused, otherwise ours is pinned there. */
  pinPath?: string;
  /** Entries written after load, before any probe attaches. */
  contents?: [Uint8Array, Uint8Array][];
  /** Freeze after writing contents: read-only for user space from then on. */
  freeze?: boolean;
  /** Close and unpin on stop whatever the cleanup kind says. */
  alwaysCleanup?: boolean;
}

/** Puts `map` into slot `key` of the map-of-maps `routingMap`. */
export interface MapRoute {
  routingMap: string;
  key: Uint8Array | number;
  map: BpfMap;
}

/** Gives the outer map `outer` the definition of map `inner` (same object) as its inner-map template. */
export interface InnerOuterMap {
  outer: string;
  inner: string;
}

/** Puts a program into slot `key` of the program array `programArray`. */
export interface TailCallRoute {
  programArray: string;
  key: number;
  /** The program: by function name (loaded by this manager), or a program from elsewhere. */
  fn?: string;
  program?: BpfProgram;
}

export function keyBytes(key: Uint8Array | number, size: number, what: string): Uint8Array {
  if (typeof key !== 'number') {
    if (key.length !== size) throw new InvalidArgumentError(`${what}: key is ${key.length} bytes, the map's keys are ${size}`);
    return key;
  }
  if (size !== 4) throw new InvalidArgumentError(`${what}: numeric key needs a 4-byte key map, this one has ${size}`);
  return u32Key(key);
}

export function validateMapSpecEditor(name: string, e: MapSpecEditor): void {
  for (const [k, v] of Object.entries(e)) {
    if (v === undefined) continue;
    if (!Number.isInteger(v) || (v as number) < 0) throw new InvalidArgumentError(`map spec editor for ${name}: ${k} must be a non-negative integer, got ${String(v)}`);
  }
  if (e.maxEntries === 0) throw new InvalidArgumentError(`map spec editor for ${name}: maxEntries must be positive`);
}

export function applyMapSpecEditor(map: BpfMap, e: MapSpecEditor): void {
  if (e.type !== undefined) map.setType(e.type);
  if (e.keySize !== undefined) map.setKeySize(e.keySize);
  if (e.valueSize !== undefined) map.setValueSize(e.valueSize);
  if (e.maxEntries !== undefined) map.setMaxEntries(e.maxEntries);
  if (e.flags !== undefined) map.setFlags(e.flags);
}
