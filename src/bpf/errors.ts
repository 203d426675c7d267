// Error types for everything that touches the kernel. Each carries a stable `code` that callers and tests
// match on, the errno where there is one, and the underlying `cause`; messages name what failed and what to do.
import os from 'node:os';

const ERRNO_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(os.constants.errno).map(([name, value]) => [value, name]),
);

/** Symbolic name of an errno ("ENOENT"), or "errno N" when unknown. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES[Math.abs(errno)] ?? `errno ${Math.abs(errno)}`;
}

export interface VigilErrorOptions {
  cause?: unknown;
  errno?: number;
}

/** Base class: every error vigil throws on purpose is one of these. */
export class VigilError extends Error {
  readonly code: string;
  readonly errno: number | undefined;

  constructor(code: string, message: string, options: VigilErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.errno = options.errno === undefined ? undefined : Math.abs(options.errno);
  }
}

/** A kernel or libbpf call failed with an errno that has no more specific meaning. */
export class SyscallError extends VigilError {
  constructor(what: string, errno: number, options: VigilErrorOptions = {}) {
    super('ESYSCALL', `${what}: ${describeErrno(errno)} (${errnoName(errno)})`, {
      ...options,
      errno,
    });
  }
}

/** The running kernel (or libbpf) lacks a feature. `feature` is stable, e.g. "kprobe", "fentry", "ringbuf". */
export class NotSupportedError extends VigilError {
  readonly feature: string;
  readonly minKernel: string | undefined;

  constructor(feature: string, detail: string, options: VigilErrorOptions & { minKernel?: string } = {}) {
    const min = options.minKernel ? ` (needs Linux ${options.minKernel} or later with it enabled)` : '';
    super('ENOTSUP', `${feature} is not supported on this kernel${min}: ${detail}`, options);
    this.feature = feature;
    this.minKernel = options.minKernel;
  }
}

/** The verifier rejected a program. The message is one line; `.log` holds the whole verifier log. */
export class VerifierError extends VigilError {
  readonly program: string;
  readonly log: string;

  constructor(program: string, log: string, options: VigilErrorOptions = {}) {
    super('EVERIFIER', `program ${program} rejected by the verifier: ${summarizeVerifierLog(log)}`, options);
    this.program = program;
    this.log = log;
  }
}

/**
 * Loading was interrupted: the verifier gives up with EAGAIN whenever a signal is pending for the loading
 * thread (profilers' SIGPROF, timers, a flood of SIGCHLD), and libbpf's own retries ran out. Nothing is
 * wrong with the program; loading again usually succeeds. The manager retries on its own (ManagerOptions.loadRetries).
 */
export class InterruptedError extends VigilError {
  readonly program: string | undefined;
  constructor(what: string, program: string | undefined, options: VigilErrorOptions = {}) {
    super('EINTERRUPTED', `${what}: interrupted by signals while the verifier ran (EAGAIN); retry the load, and avoid profilers or timers that signal the process while it loads`, options);
    this.program = program;
  }
}

/** The process lacks a capability. `capability` names it, e.g. "CAP_BPF". */
export class PermissionError extends VigilError {
  readonly capability: string;

  constructor(what: string, capability: string, options: VigilErrorOptions = {}) {
    super('EPERM', `${what}: permission denied; run as root or grant ${capability}`, options);
    this.capability = capability;
  }
}

/** A program lives in an ELF section libbpf does not know how to load or attach. */
export class UnknownSectionError extends VigilError {
  readonly section: string;
  constructor(program: string, section: string) {
    super('EUNKNOWNSECTION', `program ${program}: unknown section "${section}"; use a libbpf section name such as tp/, raw_tp/, kprobe/, uprobe/`);
    this.section = section;
  }
}

/** A probe, program or map name that the object does not contain. */
export class NotFoundError extends VigilError {
  readonly kind: 'program' | 'map' | 'probe' | 'constant' | 'symbol';
  readonly what: string;
  constructor(kind: NotFoundError['kind'], what: string, where: string, hint = '') {
    super('ENOTFOUND', `${kind} ${what} not found in ${where}${hint ? `; ${hint}` : ''}`);
    this.kind = kind;
    this.what = what;
  }
}

/** A map name or pin path is already taken by another map. */
export class MapInUseError extends VigilError {
  readonly map: string;
  constructor(map: string, detail: string) {
    super('EMAPINUSE', `map ${map} is already in use: ${detail}`);
    this.map = map;
  }
}

/** Invalid input from a caller (a spec, an option, a key of the wrong size). Nothing was changed. */
export class InvalidArgumentError extends VigilError {
  constructor(message: string, options: VigilErrorOptions = {}) {
    super('EINVAL', message, options);
  }
}

/** The object or manager is not in the state the call needs (e.g. attach before load, use after close). */
export class StateError extends VigilError {
  constructor(message: string) {
    super('ESTATE', message);
  }
}

/** A short description of an errno ("operation not permitted"), or its name when there is none here. */
export function describeErrno(errno: number): string {
  const e = Math.abs(errno);
  switch (e) {
    case os.constants.errno.EPERM: return 'operation not permitted';
    case os.constants.errno.ENOENT: return 'no such file or directory';
    case os.constants.errno.ESRCH: return 'no such process';
    case os.constants.errno.EINVAL: return 'invalid argument';
    case os.constants.errno.EACCES: return 'permission denied';
    case os.constants.errno.EEXIST: return 'already exists';
    case os.constants.errno.EBUSY: return 'device or resource busy';
    case os.constants.errno.E2BIG: return 'argument list too long';
    case os.constants.errno.ENOSPC: return 'no space left';
    case os.constants.errno.EOPNOTSUPP: return 'operation not supported';
    case os.constants.errno.ENOTSUP: return 'operation not supported';
    case os.constants.errno.EBADF: return 'bad file descriptor';
    case os.constants.errno.ENOMEM: return 'out of memory';
    case os.constants.errno.EMFILE: return 'too many open files in the process';
    case os.constants.errno.ENFILE: return 'too many open files in the system';
    default: return errnoName(e);
  }
}

/**
 * One line out of a verifier log: the last line that looks like a reason (the verifier prints the reason just
 * before the "processed N insns" trailer), or the last non-empty line.
 */
export function summarizeVerifierLog(log: string): string {
  const lines = log.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (/^processed \d+ insns/.test(line) || /^verification time/.test(line) || /^stack depth/.test(line)) continue;
    if (/^-- END PROG LOAD LOG --/.test(line)) continue;
    return line.length > 200 ? `${line.slice(0, 200)}…` : line;
  }
  return lines.length ? lines[lines.length - 1]! : 'no verifier log (load failed before verification)';
}

/**
 * Turns a failed kernel call into the most specific error: EPERM/EACCES become PermissionError naming the
 * capability, EOPNOTSUPP/ENOTSUP/EINVAL on feature-gated calls become NotSupportedError when `feature` is set.
 */
export function errorFromErrno(
  what: string,
  errno: number,
  opts: { capability?: string; feature?: string; minKernel?: string; cause?: unknown } = {},
): VigilError {
  const e = Math.abs(errno);
  if (e === os.constants.errno.EPERM || e === os.constants.errno.EACCES) {
    if (opts.capability) return new PermissionError(what, opts.capability, { errno: e, cause: opts.cause });
  }
  if (opts.feature && (e === os.constants.errno.EOPNOTSUPP || e === os.constants.errno.ENOTSUP)) {
    return new NotSupportedError(opts.feature, `${what}: ${errnoName(e)}`, { errno: e, minKernel: opts.minKernel });
  }
  return new SyscallError(what, e, { cause: opts.cause });
}
