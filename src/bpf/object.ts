// BpfObject wraps a libbpf `struct bpf_object`: one compiled ELF file with its programs, maps and globals.
// It moves through fixed phases, opened -> loaded -> closed. Opening touches no kernel state and gives the
// same result on every machine; every kernel-dependent step (feature checks, constants, map sizes) happens
// between open and load, and load is where the verifier runs. close() is idempotent and releases everything.
import fs from 'node:fs';
import os from 'node:os';
import koffi from 'koffi';
import { listGlobals, type GlobalVar } from './btf.ts';
import { AttachType, MapFlags, ProgType } from './constants.ts';
import {
  InterruptedError,
  InvalidArgumentError,
  MapInUseError,
  NotFoundError,
  PermissionError,
  StateError,
  UnknownSectionError,
  VerifierError,
  VigilError,
  errorFromErrno,
  errnoName,
} from './errors.ts';
import { cstr, drainLibbpfLog, errno, initLibbpf, lib, OPTS, type Ptr } from './ffi.ts';
import { BpfMap } from './map.ts';
import { BpfProgram } from './program.ts';

const { EPERM, EACCES, ENOENT, EINVAL, EAGAIN } = os.constants.errno;

/**
 * Sections newer libbpf versions know and older ones leave untyped, by the program type and attach type the
 * kernel takes them as. Where the kernel is older too, loading such a program fails: exclude it before load.
 */
const NEWER_SECTIONS: Readonly<Record<string, { type: number; attach: number }>> = {
  'cgroup/connect_unix': { type: ProgType.CGROUP_SOCK_ADDR, attach: AttachType.CGROUP_UNIX_CONNECT }, // libbpf 1.3, kernel 6.7
  'cgroup/sendmsg_unix': { type: ProgType.CGROUP_SOCK_ADDR, attach: AttachType.CGROUP_UNIX_SENDMSG },
};

export interface OpenOptions {
  /** Object name (defaults to the file's base name); prefixes the names of its data-section maps. */
  name?: string;
  /** Where maps declared with LIBBPF_PIN_BY_NAME are pinned (default /sys/fs/bpf). */
  pinRoot?: string;
  /** BTF to use for CO-RE relocations instead of the kernel's. */
  btfCustomPath?: string;
}

export interface LoadOptions {
  /**
   * Verifier log level for every program: 0 collects a log only for a program that fails (the default),
   * 1 or 2 collect it for every program, kept in `verifierLogs`; 4 (BPF_LOG_STATS) collects only the
   * verifier's summary of each (time, instructions processed, states: parseVerifierStats), which costs
   * nothing more to make; a failing program's error then carries that summary, not its trace.
   */
  logLevel?: 0 | 1 | 2 | 4;
  /** Bytes of verifier log kept per program. */
  logSize?: number;
  /**
   * 'block' (the default): signals wait until the load returns (withSignalsBlocked), so that they can neither
   * interrupt the verifier nor spoil libbpf's feature probes. 'deliver': a pending signal interrupts the load
   * (InterruptedError), for a caller that would rather abort a long verification than wait for it.
   */
  signals?: 'block' | 'deliver';
}

export type GlobalValue = number | bigint | boolean | string | Uint8Array;

interface MappedSection {
  ptr: Ptr;
  len: number;
  buf: Buffer;
}

export class BpfObject {
  readonly path: string;
  #ptr: Ptr | null;
  #loaded = false;
  #closed = false;
  #programs: Map<string, BpfProgram> = new Map();
  #maps: Map<string, BpfMap> = new Map();
  #globals: GlobalVar[] | undefined;
  #mapped: Map<string, MappedSection> = new Map();
  /** Verifier logs by program name (when LoadOptions.logLevel > 0, or the log of a failed program). */
  readonly verifierLogs: Map<string, string> = new Map();

  private constructor(ptr: Ptr, path: string) {
    this.#ptr = ptr;
    this.path = path;
    const l = lib();
    const owner = this;
    let p = l.bpf_object__next_program(ptr, null) as Ptr | null;
    while (p !== null) {
      const prog = new BpfProgram(p, owner);
      this.#programs.set(prog.name, prog);
      // A section newer than this libbpf (Debian 12 ships 1.1): given the type the kernel knows it by.
      const newer = prog.type === ProgType.UNSPEC ? NEWER_SECTIONS[prog.section] : undefined;
      if (newer) {
        prog.setType(newer.type);
        prog.setExpectedAttachType(newer.attach);
      }
      p = l.bpf_object__next_program(ptr, p) as Ptr | null;
    }
    let m = l.bpf_object__next_map(ptr, null) as Ptr | null;
    while (m !== null) {
      const map = BpfMap.fromObject(m, owner);
      this.#maps.set(map.name, map);
      m = l.bpf_object__next_map(ptr, m) as Ptr | null;
    }
  }

  /**
   * Opens (parses) an ELF object file. No kernel state is touched.
   * Throws NotFoundError when the file is missing, InvalidArgumentError when it is not a valid BPF object.
   */
  static open(path: string, o: OpenOptions = {}): BpfObject {
    if (!fs.existsSync(path)) {
      throw new NotFoundError('program', path, 'the filesystem', 'build the BPF objects with `make build`');
    }
    const l = initLibbpf();
    const ptr = l.bpf_object__open_file(path, openOpts(o)) as Ptr | null;
    if (ptr === null) throw openError(path, errno());
    drainLibbpfLog();
    return new BpfObject(ptr, path);
  }

  /** Opens an object from memory (e.g. an ELF embedded in the program). */
  static openMem(elf: Uint8Array, o: OpenOptions & { name: string }): BpfObject {
    const l = initLibbpf();
    // libbpf copies the ELF during open, so a transient buffer is fine.
    const ptr = l.bpf_object__open_mem(elf, elf.length, openOpts(o)) as Ptr | null;
    if (ptr === null) throw openError(o.name, errno());
    drainLibbpfLog();
    return new BpfObject(ptr, `<mem:${o.name}>`);
  }

  get name(): string {
    return this.#ptr === null ? '<closed>' : cstr(lib().bpf_object__name(this.#ptr));
  }
  get loaded(): boolean {
    return this.#loaded;
  }
  get closed(): boolean {
    return this.#closed;
  }

  #live(): Ptr {
    if (this.#ptr === null) throw new StateError(`object ${this.path} is closed`);
    return this.#ptr;
  }

  programs(): BpfProgram[] {
    return [...this.#programs.values()];
  }
  /** Throws NotFoundError naming the programs that do exist. */
  program(name: string): BpfProgram {
    const p = this.#programs.get(name);
    if (!p) throw new NotFoundError('program', name, `object ${this.path}`, `it has: ${[...this.#programs.keys()].join(', ') || 'none'}`);
    return p;
  }
  hasProgram(name: string): boolean {
    return this.#programs.has(name);
  }

  maps(): BpfMap[] {
    return [...this.#maps.values()];
  }
  /** Throws NotFoundError naming the maps that do exist. */
  map(name: string): BpfMap {
    const m = this.#maps.get(name);
    if (!m) throw new NotFoundError('map', name, `object ${this.path}`, `it has: ${[...this.#maps.keys()].join(', ') || 'none'}`);
    return m;
  }
  hasMap(name: string): boolean {
    return this.#maps.has(name);
  }

  /** Global variables of every data section (.rodata, .data, .bss, ...), from the object's BTF. */
  globals(): GlobalVar[] {
    this.#globals ??= listGlobals(lib().bpf_object__btf(this.#live()) as Ptr | null);
    return this.#globals;
  }

  global(name: string): GlobalVar {
    const g = this.globals().find((v) => v.name === name);
    if (!g) {
      const names = this.globals().map((v) => v.name);
      throw new NotFoundError('constant', name, `object ${this.path}`, `its globals are: ${names.join(', ') || 'none'}`);
    }
    return g;
  }

  #sectionMap(section: string): BpfMap {
    const m = this.maps().find((x) => x.isInternal && x.name.endsWith(section));
    if (!m) throw new NotFoundError('map', section, `object ${this.path}`, 'no data section map');
    return m;
  }

  /**
   * Sets a global's value before load: `const volatile` constants in .rodata (the constant editor's tool),
   * and initial values of .data/.bss variables. Throws NotFoundError, InvalidArgumentError (size), StateError.
   */
  setGlobal(name: string, value: GlobalValue): void {
    if (this.#loaded) throw new StateError(`global ${name}: constants are set before load; after load use writeGlobal()`);
    this.#live();
    const g = this.global(name);
    const { ptr, size } = this.#sectionMap(g.section).initialValue();
    if (g.offset + g.size > size) throw new StateError(`global ${name} lies outside its section ${g.section}`);
    const view = Buffer.from(koffi.view(ptr, size));
    encodeGlobal(name, value, g.size).copy(view, g.offset);
  }

  /** The live bytes of a global after load, read through an mmap of its section. */
  readGlobal(name: string): Buffer {
    const g = this.global(name);
    const s = this.#mappedSection(g.section, false);
    return Buffer.from(s.buf.subarray(g.offset, g.offset + g.size));
  }

  /** Writes a .data/.bss global while programs run (a single store through the mmap; .rodata is frozen). */
  writeGlobal(name: string, value: GlobalValue): void {
    const g = this.global(name);
    if (g.section.startsWith('.rodata')) throw new StateError(`global ${name} is in ${g.section}, which is read-only after load`);
    const s = this.#mappedSection(g.section, true);
    encodeGlobal(name, value, g.size).copy(s.buf, g.offset);
  }

  /** Reads a numeric global as a JS number/bigint by its size (1, 2, 4 → number; 8 → bigint). */
  readGlobalNumber(name: string): number | bigint {
    const b = this.readGlobal(name);
    switch (b.length) {
      case 1: return b.readUInt8(0);
      case 2: return b.readUInt16LE(0);
      case 4: return b.readUInt32LE(0);
      case 8: return b.readBigUInt64LE(0);
      default: throw new InvalidArgumentError(`global ${name} is ${b.length} bytes, not a number`);
    }
  }

  #mappedSection(section: string, writable: boolean): MappedSection {
    if (!this.#loaded) throw new StateError(`globals are live only after load; before load use setGlobal()`);
    this.#live();
    const key = `${section}:${writable ? 'rw' : 'ro'}`;
    let s = this.#mapped.get(key) ?? (writable ? undefined : this.#mapped.get(`${section}:rw`));
    if (s) return s;
    const map = this.#sectionMap(section);
    if (!(map.flags & MapFlags.MMAPABLE)) {
      throw new StateError(`section ${section} of ${this.path} is not mmapable on this kernel (needs 5.5)`);
    }
    const page = lib().getpagesize() as number;
    const len = Math.ceil(map.valueSize / page) * page;
    // PROT_READ=1, PROT_WRITE=2, MAP_SHARED=1
    const ptr = lib().mmap(null, len, writable ? 3 : 1, 1, map.fd, 0) as Ptr;
    if (ptr === 0xffffffffffffffffn || ptr === null) throw errorFromErrno(`mmap section ${section}`, errno());
    s = { ptr, len, buf: Buffer.from(koffi.view(ptr, map.valueSize)) };
    this.#mapped.set(key, s);
    return s;
  }

  /**
   * Loads every program still set to autoload and creates every map: the verifier runs here.
   * Throws UnknownSectionError before touching the kernel, VerifierError (with the full log in `.log`),
   * PermissionError naming the capability, MapInUseError for a pinned map that does not match,
   * InterruptedError when signals kept interrupting the verifier (load a freshly opened object again).
   */
  load(o: LoadOptions = {}): void {
    const ptr = this.#live();
    if (this.#loaded) throw new StateError(`object ${this.path} is already loaded`);
    const toLoad = this.programs().filter((p) => p.autoload);
    for (const p of toLoad) {
      if (p.type === ProgType.UNSPEC) throw new UnknownSectionError(p.name, p.section);
    }
    const level = o.logLevel ?? 0;
    const size = o.logSize ?? (level === 4 ? 4 << 10 : level > 0 ? 16 << 20 : 4 << 20);
    const l = lib();
    // libbpf keeps these pointers until load returns, so they must be stable native memory.
    const bufs = new Map<string, Ptr>();
    try {
      for (const p of toLoad) {
        const b = l.malloc(size) as Ptr | null;
        if (b === null) throw new StateError(`cannot allocate ${size} bytes of verifier log`);
        l.memset(b, 0, 1);
        bufs.set(p.name, b);
        p.setLogBuffer(b, size, level);
      }
      const r = o.signals === 'deliver' ? (l.bpf_object__load(ptr) as number) : withSignalsBlocked(() => l.bpf_object__load(ptr) as number);
      const libbpfLog = drainLibbpfLog();
      for (const [name, b] of bufs) {
        const text = cstr(b);
        if (text) this.verifierLogs.set(name, text);
      }
      if (r < 0) throw this.#loadError(-r, libbpfLog, level);
      this.#loaded = true;
    } finally {
      for (const [name, b] of bufs) {
        try {
          this.#programs.get(name)?.setLogBuffer(null, 0, 0);
        } catch {
          // the object is loaded or closed: libbpf no longer uses the buffer
        }
        l.free(b);
      }
    }
  }

  #loadError(err: number, libbpfLog: string, level: number): VigilError {
    // With log level 0, libbpf retries only the failing program at level 1: its log is the one with text.
    // With level > 0 every program has a log; the failing one is named in libbpf's message.
    const failedName = /prog '([^']+)': (?:BPF program load failed|failed to load)/.exec(libbpfLog)?.[1];
    const failed = failedName ?? (level === 0 ? [...this.verifierLogs.keys()][0] : undefined);
    const vlog = failed ? this.verifierLogs.get(failed) : undefined;
    // A pending signal stops the verifier with EAGAIN and a partial log: not a rejection of the program.
    if (err === EAGAIN) return new InterruptedError(`load ${this.path}${failed ? ` (program ${failed})` : ''}`, failed, { errno: err });
    if (failed && vlog && err !== EPERM) {
      if (level === 0) {
        // keep only the failing log: others (none at level 0) are noise
        for (const k of [...this.verifierLogs.keys()]) if (k !== failed) this.verifierLogs.delete(k);
      }
      return new VerifierError(failed, vlog, { errno: err });
    }
    const pinMismatch = /couldn't reuse pinned map at '([^']+)'/.exec(libbpfLog);
    if (pinMismatch) {
      const mapName = /map '([^']+)'/.exec(libbpfLog)?.[1] ?? pinMismatch[1]!;
      return new MapInUseError(mapName, `a different map is pinned at ${pinMismatch[1]} (remove it or change the pin path)`);
    }
    const failedMap = /map '([^']+)': failed to create/.exec(libbpfLog)?.[1];
    const detail = libbpfLog ? `: ${tail(libbpfLog)}` : '';
    if (err === EPERM || err === EACCES) {
      return new PermissionError(`load ${this.path}${failedMap ? ` (map ${failedMap})` : failed ? ` (program ${failed})` : ''}${detail}`, 'CAP_BPF (and CAP_PERFMON for tracing programs)', { errno: err });
    }
    if (failedMap) return errorFromErrno(`load ${this.path}: create map ${failedMap}${detail}`, err);
    if (err === ENOENT && /failed to find|missing BTF|BTF is required/.test(libbpfLog)) {
      return new NotFoundError('symbol', failed ?? this.path, 'kernel BTF', tail(libbpfLog));
    }
    if (err === EINVAL && failed) return new VerifierError(failed, vlog ?? libbpfLog, { errno: err });
    return errorFromErrno(`load ${this.path}${detail}`, err);
  }

  /** Unmaps live globals, then closes every program, map and the object. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const l = lib();
    // munmap before the maps go away; views into this memory are dropped with the map entries.
    for (const s of this.#mapped.values()) l.munmap(s.ptr, s.len);
    this.#mapped.clear();
    if (this.#ptr !== null) l.bpf_object__close(this.#ptr);
    this.#ptr = null;
    this.#loaded = false;
  }
}

function openOpts(o: OpenOptions) {
  return {
    sz: koffi.sizeof(OPTS.open),
    object_name: o.name ?? null,
    relaxed_maps: false,
    pin_root_path: o.pinRoot ?? null,
    _pad0: 0,
    kconfig: null,
    btf_custom_path: o.btfCustomPath ?? null,
    kernel_log_buf: null,
    kernel_log_size: 0,
    kernel_log_level: 0,
  };
}

/** The file exists (checked before), so a failed open means libbpf could not use it; say why. */
function openError(what: string, e: number): VigilError {
  const log = drainLibbpfLog();
  const reason = tail(log);
  if (/failed to find BTF for extern|unresolved extern/.test(log)) {
    return new InvalidArgumentError(`open BPF object ${what}: ${reason} (the program calls something that is neither a helper nor a kernel symbol)`, { errno: e });
  }
  return new InvalidArgumentError(`open BPF object ${what}: not a valid BPF ELF object${reason ? ` (libbpf: ${reason})` : ` (${errnoName(e)})`}`, { errno: e });
}

function tail(log: string): string {
  const lines = log.split('\n').map((s) => s.replace(/^libbpf:\s*/, '').trim()).filter(Boolean);
  return lines.slice(-3).join('; ');
}

/** Encodes a global's value into exactly `size` bytes, little-endian. */
export function encodeGlobal(name: string, value: GlobalValue, size: number): Buffer {
  const b = Buffer.alloc(size);
  if (typeof value === 'boolean') value = value ? 1 : 0;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new InvalidArgumentError(`global ${name}: ${value} is not an integer`);
    if (size === 8) value = BigInt(value);
    else if (size === 1 || size === 2 || size === 4) {
      const max = 2 ** (size * 8);
      if (value < -(max / 2) || value >= max) throw new InvalidArgumentError(`global ${name}: ${value} does not fit in ${size} bytes`);
      b.writeUIntLE(value < 0 ? max + value : value, 0, size);
      return b;
    } else throw new InvalidArgumentError(`global ${name} is ${size} bytes; give a Uint8Array or string`);
  }
  if (typeof value === 'bigint') {
    if (size !== 8) throw new InvalidArgumentError(`global ${name} is ${size} bytes; a bigint needs 8`);
    b.writeBigUInt64LE(BigInt.asUintN(64, value));
    return b;
  }
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  if (bytes.length > size) throw new InvalidArgumentError(`global ${name}: ${bytes.length} bytes do not fit in ${size}`);
  b.set(bytes);
  return b;
}

const SIG_BLOCK = 0;
const SIG_SETMASK = 2;
/** Signals that a fault raises on this very thread: blocking them would turn a crash into a hang. */
const SYNCHRONOUS_SIGNALS = ['SIGSEGV', 'SIGBUS', 'SIGFPE', 'SIGILL', 'SIGTRAP', 'SIGABRT'] as const;

/**
 * Runs `fn` with this thread's signals blocked. A signal pending on the loading thread stops the verifier
 * with EAGAIN, and, worse, makes one of libbpf's kernel feature probes fail: libbpf caches the probe's answer
 * for the whole process, so a single signal during the first load can leave, say, global data "unsupported"
 * ("map '….rodata' is referenced but wasn't created") for every later load, which no retry undoes. Blocked
 * here, a signal sent to the process is taken by another of Node's threads, or stays pending until the load
 * returns, and Node's handler still sees it. A signal aimed at this very thread waits too: nothing is lost.
 */
export function withSignalsBlocked<T>(fn: () => T): T {
  const l = lib();
  const set = Buffer.alloc(128); // sizeof(sigset_t) in glibc
  const old = Buffer.alloc(128);
  l.sigfillset(set);
  for (const name of SYNCHRONOUS_SIGNALS) l.sigdelset(set, os.constants.signals[name]);
  if (l.pthread_sigmask(SIG_BLOCK, set, old) !== 0) return fn(); // cannot fail with valid arguments
  try {
    return fn();
  } finally {
    l.pthread_sigmask(SIG_SETMASK, old, null);
  }
}

/** What the verifier says of a program it accepted at log level 4 (BPF_LOG_STATS), from its log. */
export interface VerifierStats {
  /** Time the verifier took, µs. */
  timeUs: number;
  /** Instructions it processed (each path's, counted again). */
  insnsProcessed: number;
  /** States it kept, at most (peak_states). */
  peakStates: number;
}

/** The summary in a verifier log (level 4, or the end of a level 1/2 log); undefined when there is none. */
export function parseVerifierStats(log: string): VerifierStats | undefined {
  const time = /verification time (\d+) usec/.exec(log);
  const insns = /processed (\d+) insns/.exec(log);
  if (!time || !insns) return undefined;
  return { timeUs: Number(time[1]), insnsProcessed: Number(insns[1]), peakStates: Number(/peak_states (\d+)/.exec(log)?.[1] ?? NaN) };
}
