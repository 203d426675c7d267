// BpfMap wraps one BPF map: either a map of an opened object (editable until load, then live) or a map known
// only by its fd (created standalone, opened from a pin, or from an id). Keys and values are raw bytes here;
// typed() gives a codec-based view. Per-CPU maps return one value per possible CPU.
import fs from 'node:fs';
import os from 'node:os';
import koffi from 'koffi';
import { type Codec } from './codec.ts';
import { MapType, NON_ITERABLE_MAP_TYPES, PERCPU_MAP_TYPES, UpdateFlags, mapTypeName } from './constants.ts';
import {
  InvalidArgumentError,
  MapInUseError,
  NotFoundError,
  StateError,
  errorFromErrno,
  type VigilError,
} from './errors.ts';
import { cstr, drainLibbpfLog, errno, initLibbpf, lib, MapInfo, OPTS, type Ptr } from './ffi.ts';
import { ensureBpffs } from './mounts.ts';

const ENOENT = os.constants.errno.ENOENT;
const EEXIST = os.constants.errno.EEXIST;
const EINVAL = os.constants.errno.EINVAL;
const ENOTSUPP = 524; // kernel-internal "not supported" that batch ops leak to user space
const EOPNOTSUPP = os.constants.errno.EOPNOTSUPP;

let possibleCpus = 0;
/** Number of possible CPUs: the stride count of per-CPU map values. */
export function numPossibleCpus(): number {
  if (!possibleCpus) {
    const n = initLibbpf().libbpf_num_possible_cpus() as number;
    if (n <= 0) throw errorFromErrno('libbpf_num_possible_cpus', -n);
    possibleCpus = n;
  }
  return possibleCpus;
}

export interface MapSpec {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  pinPath?: string;
}

export interface MapCreateOptions {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
  /** Template inner map for ARRAY_OF_MAPS / HASH_OF_MAPS. */
  innerMap?: BpfMap;
}

/** What the map is backed by: a libbpf map inside an object, or a bare fd we own (or borrow). */
type Backing = { kind: 'object'; ptr: Ptr; owner: { readonly loaded: boolean; readonly closed: boolean; readonly name: string } } | { kind: 'fd'; fd: number; owned: boolean; spec: MapSpec };

export class BpfMap {
  readonly #b: Backing;
  #closed = false;
  #pinnedBy: string | undefined;

  private constructor(b: Backing) {
    this.#b = b;
  }

  /** @internal Used by BpfObject for each of its maps. */
  static fromObject(ptr: Ptr, owner: { readonly loaded: boolean; readonly closed: boolean; readonly name: string }): BpfMap {
    return new BpfMap({ kind: 'object', ptr, owner });
  }

  /**
   * Creates a map outside any object, e.g. an inner map for a map of maps or a map shared between managers.
   * Throws PermissionError (CAP_BPF), NotSupportedError for an unknown type, SyscallError otherwise.
   */
  static create(o: MapCreateOptions): BpfMap {
    const l = initLibbpf();
    const createOpts = Buffer.alloc(48); // struct bpf_map_create_opts { size_t sz; u32 btf_fd, btf_key_type_id, btf_value_type_id, btf_vmlinux_value_type_id, inner_map_fd, map_flags; u64 map_extra; u32 numa_node, map_ifindex; }
    createOpts.writeBigUInt64LE(48n, 0);
    createOpts.writeUInt32LE(o.innerMap ? o.innerMap.fd : 0, 24);
    createOpts.writeUInt32LE(o.flags ?? 0, 28);
    const fd = l.bpf_map_create(o.type, o.name.slice(0, 15), o.keySize, o.valueSize, o.maxEntries, createOpts) as number;
    if (fd < 0) {
      throw errorFromErrno(`create map ${o.name} (${mapTypeName(o.type)})`, -fd, {
        capability: 'CAP_BPF',
        feature: mapTypeName(o.type),
      });
    }
    return new BpfMap({
      kind: 'fd',
      fd,
      owned: true,
      spec: { name: o.name, type: o.type, keySize: o.keySize, valueSize: o.valueSize, maxEntries: o.maxEntries, flags: o.flags ?? 0 },
    });
  }

  /** Opens a pinned map. Throws NotFoundError when nothing is pinned there. */
  static fromPin(path: string): BpfMap {
    const l = initLibbpf();
    const fd = l.bpf_obj_get(path) as number;
    if (fd < 0) {
      if (-fd === ENOENT) throw new NotFoundError('map', path, 'bpffs', 'nothing is pinned at that path');
      throw errorFromErrno(`open pinned map ${path}`, -fd, { capability: 'CAP_BPF' });
    }
    const m = BpfMap.fromFd(fd, true);
    m.#pinnedBy = path;
    return m;
  }

  /** Wraps an fd (taking ownership when `owned`), reading its spec from the kernel. */
  static fromFd(fd: number, owned: boolean): BpfMap {
    const info = mapInfoByFd(fd);
    return new BpfMap({
      kind: 'fd',
      fd,
      owned,
      spec: { name: info.name, type: info.type, keySize: info.key_size, valueSize: info.value_size, maxEntries: info.max_entries, flags: info.map_flags },
    });
  }

  // ---- spec (readable any time, editable before load) --------------------------------------------------

  get name(): string {
    return this.#b.kind === 'object' ? cstr(lib().bpf_map__name(this.#b.ptr)) : this.#b.spec.name;
  }
  get type(): number {
    return this.#b.kind === 'object' ? (lib().bpf_map__type(this.#b.ptr) as number) : this.#b.spec.type;
  }
  get keySize(): number {
    return this.#b.kind === 'object' ? (lib().bpf_map__key_size(this.#b.ptr) as number) : this.#b.spec.keySize;
  }
  get valueSize(): number {
    return this.#b.kind === 'object' ? (lib().bpf_map__value_size(this.#b.ptr) as number) : this.#b.spec.valueSize;
  }
  get maxEntries(): number {
    return this.#b.kind === 'object' ? (lib().bpf_map__max_entries(this.#b.ptr) as number) : this.#b.spec.maxEntries;
  }
  get flags(): number {
    return this.#b.kind === 'object' ? (lib().bpf_map__map_flags(this.#b.ptr) as number) : this.#b.spec.flags;
  }
  /** Whether libbpf made this map for a data section (.rodata, .bss, .data, .kconfig). */
  get isInternal(): boolean {
    return this.#b.kind === 'object' && (lib().bpf_map__is_internal(this.#b.ptr) as boolean);
  }
  get isPerCpu(): boolean {
    return PERCPU_MAP_TYPES.has(this.type);
  }
  /** Bytes of one lookup result: value_size, or round_up(value_size, 8) × possible CPUs for per-CPU maps. */
  get lookupSize(): number {
    return this.isPerCpu ? roundUp8(this.valueSize) * numPossibleCpus() : this.valueSize;
  }
  spec(): MapSpec {
    return {
      name: this.name,
      type: this.type,
      keySize: this.keySize,
      valueSize: this.valueSize,
      maxEntries: this.maxEntries,
      flags: this.flags,
      pinPath: this.pinPath,
    };
  }

  #editable(what: string): Ptr {
    if (this.#b.kind !== 'object') throw new StateError(`map ${this.name}: ${what} only applies to a map of an object before load`);
    if (this.#b.owner.closed) throw new StateError(`map ${this.name}: object ${this.#b.owner.name} is closed`);
    if (this.#b.owner.loaded) throw new StateError(`map ${this.name}: ${what} must happen before load`);
    return this.#b.ptr;
  }

  #check(ret: number, what: string): void {
    if (ret < 0) throw errorFromErrno(`map ${this.name}: ${what}`, -ret);
  }

  setType(type: number): void {
    this.#check(lib().bpf_map__set_type(this.#editable('set type'), type), `set type ${mapTypeName(type)}`);
  }
  setMaxEntries(n: number): void {
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`map ${this.name}: max_entries must be a positive integer, got ${n}`);
    this.#check(lib().bpf_map__set_max_entries(this.#editable('set max_entries'), n), `set max_entries ${n}`);
  }
  setFlags(flags: number): void {
    this.#check(lib().bpf_map__set_map_flags(this.#editable('set flags'), flags), `set flags ${flags}`);
  }
  setKeySize(n: number): void {
    this.#check(lib().bpf_map__set_key_size(this.#editable('set key size'), n), `set key size ${n}`);
  }
  setValueSize(n: number): void {
    this.#check(lib().bpf_map__set_value_size(this.#editable('set value size'), n), `set value size ${n}`);
  }
  /** Excluded maps are not created; programs referring to them must be excluded too. */
  setAutocreate(create: boolean): void {
    this.#check(lib().bpf_map__set_autocreate(this.#editable('set autocreate'), create), 'set autocreate');
  }
  get autocreate(): boolean {
    return this.#b.kind === 'object' ? (lib().bpf_map__autocreate(this.#b.ptr) as boolean) : true;
  }
  /** Makes this object use `other`'s kernel map instead of creating its own (libbpf dups the fd). */
  reuse(other: BpfMap): void {
    const p = this.#editable('reuse');
    const mine = this.spec();
    const theirs = other.spec();
    if (mine.keySize !== theirs.keySize || mine.valueSize !== theirs.valueSize || mine.type !== theirs.type) {
      throw new InvalidArgumentError(
        `map ${mine.name} cannot reuse ${theirs.name}: ${mapTypeName(mine.type)} ${mine.keySize}/${mine.valueSize} vs ${mapTypeName(theirs.type)} ${theirs.keySize}/${theirs.valueSize} (type/key/value size must match)`,
      );
    }
    this.#check(lib().bpf_map__reuse_fd(p, other.fd), `reuse fd of ${theirs.name}`);
  }
  /** Inner map template of a map of maps, given as an existing map. */
  setInnerMap(inner: BpfMap): void {
    this.#check(lib().bpf_map__set_inner_map_fd(this.#editable('set inner map'), inner.fd), `set inner map ${inner.name}`);
  }
  /** Pin path used at load: an existing compatible pin is reused, otherwise the new map is pinned there. */
  setPinPath(path: string | null): void {
    this.#check(lib().bpf_map__set_pin_path(this.#editable('set pin path'), path), `set pin path ${path}`);
  }
  get pinPath(): string | undefined {
    if (this.#b.kind === 'object') return cstr(lib().bpf_map__pin_path(this.#b.ptr)) || undefined;
    return this.#pinnedBy;
  }
  get isPinned(): boolean {
    if (this.#b.kind === 'object') return lib().bpf_map__is_pinned(this.#b.ptr) as boolean;
    return this.#pinnedBy !== undefined && fs.existsSync(this.#pinnedBy);
  }

  /** Initial contents of a data-section map before load (libbpf's copy). */
  initialValue(): { ptr: Ptr; size: number } {
    const p = this.#editable('read initial value');
    const size = [0];
    const ptr = lib().bpf_map__initial_value(p, size) as Ptr | null;
    if (ptr === null) throw new StateError(`map ${this.name} has no initial value (not a data section)`);
    return { ptr, size: size[0]! };
  }

  // ---- live access (after load) ------------------------------------------------------------------------

  get loaded(): boolean {
    return this.#b.kind === 'fd' ? !this.#closed : this.#b.owner.loaded && !this.#b.owner.closed;
  }

  /** Kernel fd of the map. Throws StateError before load or after close. */
  get fd(): number {
    if (this.#closed) throw new StateError(`map ${this.name} is closed`);
    if (this.#b.kind === 'fd') return this.#b.fd;
    if (this.#b.owner.closed) throw new StateError(`map ${this.name}: object ${this.#b.owner.name} is closed`);
    const fd = lib().bpf_map__fd(this.#b.ptr) as number;
    if (fd < 0) throw new StateError(`map ${this.name} is not loaded (load the object first, or it was excluded)`);
    return fd;
  }

  #keyBuf(key: Uint8Array | null): Uint8Array | null {
    if (key === null) return null;
    if (key.length !== this.keySize) throw new InvalidArgumentError(`map ${this.name}: key is ${key.length} bytes, expected ${this.keySize}`);
    return key;
  }

  /** The value for `key`, or undefined when absent. `out` (lookupSize bytes) avoids an allocation. */
  lookup(key: Uint8Array, out?: Buffer): Buffer | undefined {
    const v = out ?? Buffer.alloc(this.lookupSize);
    if (v.length < this.lookupSize) throw new InvalidArgumentError(`map ${this.name}: value buffer of ${v.length} bytes, need ${this.lookupSize}`);
    const r = lib().bpf_map_lookup_elem(this.fd, this.#keyBuf(key), v) as number;
    if (r === 0) return v;
    if (-r === ENOENT) return undefined;
    throw errorFromErrno(`map ${this.name}: lookup`, -r, { capability: 'CAP_BPF' });
  }

  /** Creates or replaces (flags: UpdateFlags). For per-CPU maps `value` holds every CPU's value. */
  update(key: Uint8Array, value: Uint8Array, flags: number = UpdateFlags.ANY): void {
    if (value.length !== this.lookupSize) {
      throw new InvalidArgumentError(`map ${this.name}: value is ${value.length} bytes, expected ${this.lookupSize}`);
    }
    const r = lib().bpf_map_update_elem(this.fd, this.#keyBuf(key), value, flags) as number;
    if (r < 0) {
      if (-r === EEXIST) throw errorFromErrno(`map ${this.name}: update with NOEXIST: key exists`, -r);
      if (-r === ENOENT) throw errorFromErrno(`map ${this.name}: update with EXIST: key absent`, -r);
      throw errorFromErrno(`map ${this.name}: update`, -r, { capability: 'CAP_BPF' });
    }
  }

  /** Deletes `key`; false when it was absent. */
  delete(key: Uint8Array): boolean {
    const r = lib().bpf_map_delete_elem(this.fd, this.#keyBuf(key)) as number;
    if (r === 0) return true;
    if (-r === ENOENT) return false;
    throw errorFromErrno(`map ${this.name}: delete`, -r);
  }

  /** Pops a value (queues/stacks with a null key) or looks up and deletes `key`. */
  lookupAndDelete(key: Uint8Array | null): Buffer | undefined {
    const v = Buffer.alloc(this.lookupSize);
    const r = lib().bpf_map_lookup_and_delete_elem(this.fd, this.#keyBuf(key), v) as number;
    if (r === 0) return v;
    if (-r === ENOENT) return undefined;
    throw errorFromErrno(`map ${this.name}: lookup and delete`, -r);
  }

  /** The key after `key` (or the first key for null); undefined at the end. */
  nextKey(key: Uint8Array | null): Buffer | undefined {
    const next = Buffer.alloc(this.keySize);
    const r = lib().bpf_map_get_next_key(this.fd, this.#keyBuf(key), next) as number;
    if (r === 0) return next;
    if (-r === ENOENT) return undefined;
    throw errorFromErrno(`map ${this.name}: get next key`, -r);
  }

  *keys(): Generator<Buffer> {
    if (NON_ITERABLE_MAP_TYPES.has(this.type)) throw new InvalidArgumentError(`map ${this.name} (${mapTypeName(this.type)}) has no keys to iterate`);
    let k = this.nextKey(null);
    while (k) {
      yield k;
      k = this.nextKey(k);
    }
  }

  /** Entries by key iteration. Keys deleted concurrently are skipped. */
  *entries(): Generator<[Buffer, Buffer]> {
    for (const k of this.keys()) {
      const v = this.lookup(k);
      if (v) yield [k, v];
    }
  }

  #batchUnsupported = false;

  /**
   * All entries, read with BPF_MAP_LOOKUP_BATCH in chunks where the kernel supports it for this map type,
   * falling back to key iteration otherwise.
   */
  lookupAll(chunk = 256): [Buffer, Buffer][] {
    if (!this.#batchUnsupported) {
      const r = this.#lookupBatch(chunk);
      if (r) return r;
      this.#batchUnsupported = true;
    }
    return [...this.entries()];
  }

  #lookupBatch(chunk: number): [Buffer, Buffer][] | undefined {
    const l = lib();
    const ks = this.keySize;
    const vs = this.lookupSize;
    const keys = Buffer.alloc(ks * chunk);
    const values = Buffer.alloc(vs * chunk);
    const tokenSize = Math.max(ks, 8);
    let inBatch: Buffer | null = null;
    const outBatch = Buffer.alloc(tokenSize);
    const out: [Buffer, Buffer][] = [];
    const batchOpts = { sz: koffi.sizeof(OPTS.batch), elem_flags: 0, flags: 0 };
    for (;;) {
      const count = [chunk];
      const r = l.bpf_map_lookup_batch(this.fd, inBatch, outBatch, keys, values, count, batchOpts) as number;
      const n = count[0]!;
      if (r < 0 && -r !== ENOENT) {
        if ([EINVAL, ENOTSUPP, EOPNOTSUPP].includes(-r) && out.length === 0) return undefined;
        throw errorFromErrno(`map ${this.name}: lookup batch`, -r);
      }
      for (let i = 0; i < n; i++) {
        out.push([Buffer.from(keys.subarray(i * ks, (i + 1) * ks)), Buffer.from(values.subarray(i * vs, (i + 1) * vs))]);
      }
      if (r < 0) return out; // ENOENT: no more entries
      inBatch = Buffer.from(outBatch);
    }
  }

  /** Updates many entries in one syscall where supported, else one by one. */
  updateMany(entries: [Uint8Array, Uint8Array][], flags: number = UpdateFlags.ANY): void {
    if (entries.length === 0) return;
    const ks = this.keySize;
    const vs = this.lookupSize;
    if (!this.#batchUnsupported) {
      const keys = Buffer.alloc(ks * entries.length);
      const values = Buffer.alloc(vs * entries.length);
      entries.forEach(([k, v], i) => {
        if (k.length !== ks || v.length !== vs) throw new InvalidArgumentError(`map ${this.name}: entry ${i} has wrong key or value size`);
        keys.set(k, i * ks);
        values.set(v, i * vs);
      });
      const count = [entries.length];
      const r = lib().bpf_map_update_batch(this.fd, keys, values, count, { sz: koffi.sizeof(OPTS.batch), elem_flags: flags, flags: 0 }) as number;
      if (r === 0) return;
      if (![EINVAL, ENOTSUPP, EOPNOTSUPP].includes(-r) || count[0]! > 0) throw errorFromErrno(`map ${this.name}: update batch`, -r);
      this.#batchUnsupported = true;
    }
    for (const [k, v] of entries) this.update(k, v, flags);
  }

  /** Deletes many keys (missing ones are ignored). Returns how many were deleted. */
  deleteMany(keys: Uint8Array[]): number {
    let n = 0;
    for (const k of keys) if (this.delete(k)) n++;
    return n;
  }

  /** Deletes every entry. */
  clear(): number {
    return this.deleteMany([...this.keys()]);
  }

  /** Splits a per-CPU lookup result into one buffer per CPU (each value_size bytes). */
  perCpu(value: Buffer): Buffer[] {
    const stride = roundUp8(this.valueSize);
    const out: Buffer[] = [];
    for (let i = 0; i < numPossibleCpus(); i++) out.push(value.subarray(i * stride, i * stride + this.valueSize));
    return out;
  }

  /** A per-CPU lookup result of a u64 counter, summed over CPUs (the sensors' per-CPU counter arrays). */
  sumU64(value: Buffer): number {
    return this.perCpu(value).reduce((a, b) => a + Number(b.readBigUInt64LE(0)), 0);
  }

  /** The per-CPU u64 counter at index `i` of a per-CPU array, summed over CPUs; 0 when there is none. */
  counter(i: number): number {
    const v = this.lookup(u32Key(i));
    return v ? this.sumU64(v) : 0;
  }

  /** Makes the map read-only for user space (BPF programs can still write). */
  freeze(): void {
    const r = lib().bpf_map_freeze(this.fd) as number;
    if (r < 0) throw errorFromErrno(`map ${this.name}: freeze`, -r);
  }

  /** Pins the map at `path` on bpffs. Throws MapInUseError when the path is taken. */
  pin(path: string): void {
    if (!ensureBpffs()) throw new StateError('bpffs is not mounted and cannot be mounted (mount -t bpf bpf /sys/fs/bpf)');
    const r =
      this.#b.kind === 'object' ? (lib().bpf_map__pin(this.#b.ptr, path) as number) : (lib().bpf_obj_pin(this.fd, path) as number);
    if (r < 0) {
      drainLibbpfLog();
      if (-r === EEXIST) throw new MapInUseError(this.name, `pin path ${path} already exists`);
      throw errorFromErrno(`map ${this.name}: pin at ${path}`, -r, { capability: 'CAP_BPF' });
    }
    if (this.#b.kind === 'fd') this.#pinnedBy = path;
  }

  /** Removes the pin (the map lives on while fds or programs hold it). */
  unpin(): void {
    const path = this.pinPath;
    if (!path) return;
    if (this.#b.kind === 'object') {
      const r = lib().bpf_map__unpin(this.#b.ptr, null) as number;
      if (r < 0 && -r !== ENOENT) throw errorFromErrno(`map ${this.name}: unpin ${path}`, -r);
    } else {
      fs.rmSync(path, { force: true });
      this.#pinnedBy = undefined;
    }
  }

  /** Kernel view of the map: id, flags, sizes. */
  info(): { id: number; name: string; type: number; keySize: number; valueSize: number; maxEntries: number; flags: number } {
    const i = mapInfoByFd(this.fd);
    return { id: i.id, name: i.name, type: i.type, keySize: i.key_size, valueSize: i.value_size, maxEntries: i.max_entries, flags: i.map_flags };
  }

  /** A codec-typed view over this map. Sizes are checked once, here. */
  typed<K, V>(key: Codec<K>, value: Codec<V>): TypedMap<K, V> {
    return new TypedMap(this, key, value);
  }

  /** Closes an fd-backed map we own. Object maps close with their object. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#b.kind === 'fd' && this.#b.owned) lib().close(this.#b.fd);
  }
}

/** Codec-typed access to a map: keys and values as JS values. Per-CPU maps yield arrays (one per CPU). */
export class TypedMap<K, V> {
  readonly map: BpfMap;
  readonly #k: Codec<K>;
  readonly #v: Codec<V>;
  readonly #kb: Buffer;

  constructor(map: BpfMap, k: Codec<K>, v: Codec<V>) {
    if (k.size !== map.keySize) throw new InvalidArgumentError(`map ${map.name}: key codec is ${k.size} bytes, map key is ${map.keySize}`);
    if (v.size !== map.valueSize) {
      throw new InvalidArgumentError(`map ${map.name}: value codec is ${v.size} bytes, map value is ${map.valueSize}`);
    }
    this.map = map;
    this.#k = k;
    this.#v = v;
    this.#kb = Buffer.alloc(k.size);
  }

  #key(k: K): Buffer {
    this.#k.encode(k, this.#kb, 0);
    return this.#kb;
  }

  get(k: K): V | undefined {
    if (this.map.isPerCpu) throw new InvalidArgumentError(`map ${this.map.name} is per-CPU: use getPerCpu()`);
    const v = this.map.lookup(this.#key(k));
    return v && this.#v.decode(v, 0);
  }

  /** Every CPU's value of a per-CPU map. */
  getPerCpu(k: K): V[] | undefined {
    const v = this.map.lookup(this.#key(k));
    return v && this.map.perCpu(v).map((b) => this.#v.decode(b, 0));
  }

  set(k: K, v: V, flags: number = UpdateFlags.ANY): void {
    const buf = Buffer.alloc(this.map.lookupSize);
    if (this.map.isPerCpu) {
      const stride = roundUp8(this.#v.size);
      for (let i = 0; i < numPossibleCpus(); i++) this.#v.encode(v, buf, i * stride);
    } else {
      this.#v.encode(v, buf, 0);
    }
    this.map.update(this.#key(k), buf, flags);
  }

  /** Sets a per-CPU map's value for each CPU. */
  setPerCpu(k: K, values: V[], flags: number = UpdateFlags.ANY): void {
    if (values.length !== numPossibleCpus()) throw new InvalidArgumentError(`expected ${numPossibleCpus()} per-CPU values, got ${values.length}`);
    const buf = Buffer.alloc(this.map.lookupSize);
    const stride = roundUp8(this.#v.size);
    values.forEach((v, i) => this.#v.encode(v, buf, i * stride));
    this.map.update(this.#key(k), buf, flags);
  }

  delete(k: K): boolean {
    return this.map.delete(this.#key(k));
  }

  *entries(): Generator<[K, V]> {
    for (const [k, v] of this.map.entries()) yield [this.#k.decode(k, 0), this.#v.decode(v, 0)];
  }

  *keys(): Generator<K> {
    for (const k of this.map.keys()) yield this.#k.decode(k, 0);
  }

  /** Sum of every CPU's value of a per-CPU numeric map entry. */
  sumPerCpu(k: K): number | bigint | undefined {
    const vs = this.getPerCpu(k) as unknown as (number | bigint)[] | undefined;
    if (!vs) return undefined;
    if (typeof vs[0] === 'bigint') return (vs as bigint[]).reduce((a, b) => a + b, 0n);
    return (vs as number[]).reduce((a, b) => a + b, 0);
  }
}

/** A map key of one u32, little-endian: an array map's index. */
export function u32Key(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** A map key of one u64, little-endian: a cgroup id (vigil_containers, the kill scopes). */
export function u64Key(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

function roundUp8(n: number): number {
  return (n + 7) & ~7;
}

/** Kernel information about the map behind an fd. */
export function mapInfoByFd(fd: number): { id: number; name: string; type: number; key_size: number; value_size: number; max_entries: number; map_flags: number } {
  const info: Record<string, unknown> = {};
  const len = [koffi.sizeof(MapInfo)];
  const r = initLibbpf().bpf_map_get_info(fd, info, len) as number;
  if (r < 0) throw errorFromErrno(`map info for fd ${fd}`, -r || errno());
  return info as ReturnType<typeof mapInfoByFd>;
}

export function isMapInUse(err: unknown): err is VigilError {
  return err instanceof MapInUseError;
}

export { MapType };
