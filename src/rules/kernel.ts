// In-kernel kill rules: a rule whose kill action says `inKernel: true` is compiled, whole, into a selector
// the kernel checks itself: the syscall sensor on each file event it reports, before the syscall returns
// (bpf/syscalls.bpf.c, kill_check), the process sensor on each exec, at sched_process_exec, when the new
// image is loaded and has not run (bpf/process.bpf.c, exec_kill_check). The process is signalled there, with
// no trip through the ring buffer, the pipeline and the rule engine: it runs none of its own code after the
// matching open, and none at all of the image whose exec matched. That is what Tetragon's Sigkill action
// does from a kprobe; the user-space kill (actions.ts) acts milliseconds later.
//
// The kernel checks little, so only conditions made of what it can check compile, and a rule that asks for
// more is refused with the part it cannot check: a kill that fired on a part of a condition would kill what
// the rule does not describe. What compiles is a conjunction (&&, through macros) of
//   - a test of one string: event.path (as given), event.?resolvedPath.orValue(event.path) (the file, as the
//     path filters see it) or process.comm (process.?comm.orValue("")) with ==, != (a literal), `in` (a list
//     or a named list), .startsWith(literal), a disjunction (||) of such tests of the same string, or the
//     negation (!) of any of these;
//   - event.write, event.secret or event.sensitive (event.?write.orValue(false), …), or their negation in
//     the optional form (a read-only open has no `write` member: `!event.write` is an error there, never true);
//   - event.ret >= 0 or event.ret < 0;
//   - true.
// A rule about execs (types: [exec]) tests process.comm, process.exe (process.?exe.orValue("")) and
// parent.comm (parent.?comm.orValue("")) the same ways, and process.argv: `"-e" in process.argv`, or
// process.argv.exists(a, …) with a disjunction of ==, in and startsWith tests of `a` (some element matches),
// or their negation (no element does). The kernel compares argv as executed; the event's argv is scrubbed
// (a secret value masked), so a rule about a secret value kills a process whose alert shows it masked. The
// kernel sees the first VIGIL_KILL_ARGS_MAX elements within VIGIL_KILL_ARGV_SCAN bytes; past those it kills
// on what it saw (a negated test: never), and user space, which sees the whole argv, kills what it missed.
// An exec has no flags or ret.
// Either kind may add conjuncts about the container alone (`container`, `pod`, named lists, macros of
// those: in_container, `container.?name.orValue("") == "web"`, a pod's namespace or labels). The kernel
// cannot read a container's name or labels; user space can, so it evaluates that part, as the rule engine
// would, for each container it knows, and writes the cgroups where it holds into a map the kernel looks the
// task's cgroup up in (kill-scopes.ts). A container the agent has not learned yet (its first milliseconds,
// or its runtime not answered yet) is not in the map: the kernel does not kill there, and the rule engine
// kills from user space when the event matches. A container part that holds on the host is refused: the
// kernel kills in known containers only.
// Every string is compared as bytes, as the rule engine compares it on the same event, so the two agree:
// the alert of a rule killed in the kernel reports what the kernel did (the event's `kill` member).
//
// A deny rule (actions: [{deny: {}}], types: [connect] or [bind]) compiles the same way into a selector the
// syscall sensor's cgroup hooks check on every IPv4 and IPv6 connect (and UDP datagram sent with an address)
// or bind, before the connection is made or the address taken; a match fails the call with EPERM (no packet
// is sent, no port taken) instead of signalling the process. It tests process.comm, the address (a connect's
// peer, event.remoteAddress; a bind's own, event.localAddress: ==, !=, in, with literal addresses, or
// .inCidr(blocks)) and port (event.remotePort, event.localPort: ==, !=, in, with integer literals), and the
// container part; the call has no ret or flags yet. A connect rule whose event.remoteAddress tests name unix
// socket paths ("/run/x.sock", "@abstract") is about unix sockets: the unix connect hook checks it, and no
// other (its selector's `unix`).
import { serialize, type ASTNode } from '@marcbachmann/cel-js';
import { formatIPv6 } from '../events/decode.ts';
import type { FileOp } from '../events/types.ts';
import { parseBlocks, parseIp, type IpBlock } from './cidr.ts';
import { SYSCALL_KILL_VALUE, VIGIL_PROC_FLAGS, VIGIL_SYS_FLAGS } from '../events/layout.generated.ts';

/** Limits of the kernel's maps: VIGIL_KILL_* of bpf/include/events.h (a unit test compares them). */
export const KILL_RULES_MAX = 16;
export const KILL_VALUES_MAX = 64;
export const KILL_TERMS_MAX = 8;
/** A value is a prefix of at most this many bytes; a whole string needs one more, for its NUL. */
const VALUE_BYTES = SYSCALL_KILL_VALUE.prefix.size;
/** A comm has at most 15 bytes and its NUL. */
const COMM_BYTES = 15;

export type KillField = 'path' | 'file' | 'path2' | 'file2' | 'comm' | 'exe' | 'parentComm' | 'argv' | 'raddr' | 'rport' | 'laddr' | 'lport' | 'upath';
export interface KillTerm {
  field: KillField;
  /**
   * Some value matches: the whole string (exact) or its start. For raddr and laddr, `block` is the address or
   * CIDR block `s` names (exact); for rport and lport, `s` is the port's decimal digits (exact).
   */
  values: { s: string; exact: boolean; block?: IpBlock }[];
  /** The term holds when no value matches. */
  negate: boolean;
}

/** What the kernel checks for one rule (encoded by src/syscalls/filters.ts). */
export interface KernelSelector {
  /** Event types (file ops) it applies to: the rule's `types` (connect, bind for a deny rule). */
  ops: string[];
  /** A deny rule's selector: a match denies the connect or bind (no signal). */
  denies?: true;
  /**
   * A deny rule about unix socket paths (its terms test `upath`): checked by the unix connect hook alone, the
   * IP hooks never see it (VIGIL_KILL_OP_UNIX_CONNECT), as rules about IP peers never reach unix sockets.
   */
  unix?: true;
  /** ev_flags bits the event must have, and must not have. */
  want: number;
  deny: number;
  ret: 'any' | 'ok' | 'err';
  terms: KillTerm[];
  /** The conjuncts about the container alone, when there are some: the rule kills only where they hold. */
  container?: ContainerScope;
}

/** A rule's conjuncts about the container (see the top of this file). */
export interface ContainerScope {
  /** As written, joined by &&, macros inlined. */
  text: string;
  /** Whether they hold for a container and its pod, as the rule context has them ({} for none): true, not an error. */
  holds: (container: object, pod: object) => boolean;
}

/** The variables a container part may read. */
const SCOPE_VARIABLES: ReadonlySet<string> = new Set(['container', 'pod']);
/**
 * What the rule context holds for a member the event lacks (`container` and `pod` on the host, `pod` of a
 * container outside one): the value a container part is evaluated against there (rules.ts, the agent).
 */
export const NO_MEMBERS: object = Object.freeze({});

/**
 * The event types an in-kernel kill may be about: the file events, whose records the kernel checks (each at
 * its exit, with the same code: kill_check in emit_file_of), and execs.
 */
export const KERNEL_KILL_TYPES: ReadonlySet<string> = new Set(['open', 'unlink', 'rmdir', 'rename', 'chmod', 'chown', 'mkdir', 'truncate', 'link', 'symlink', 'exec'] satisfies (FileOp | 'exec')[]);

/** The file event types with a second path (event.path2), which kill rules may test. */
const TWO_PATH_TYPES: ReadonlySet<string> = new Set(['rename', 'link', 'symlink'] satisfies FileOp[]);

/** The event types an in-kernel deny may be about: connects and binds, which the cgroup hooks see first. */
export const KERNEL_DENY_TYPES: ReadonlySet<string> = new Set(['connect', 'bind']);

/** Which sensor checks a selector: the process sensor an exec rule's, the syscall sensor a file or deny rule's. */
export const killSensor = (sel: KernelSelector): 'process' | 'syscalls' => (sel.ops.includes('exec') ? 'process' : 'syscalls');

/** The strings each sensor has to compare. */
const FIELDS_OF: Record<'process' | 'syscalls' | 'connect' | 'bind', ReadonlySet<KillField>> = {
  syscalls: new Set(['path', 'file', 'path2', 'file2', 'comm']),
  process: new Set(['comm', 'exe', 'parentComm', 'argv']),
  connect: new Set(['comm', 'raddr', 'rport', 'upath']),
  bind: new Set(['comm', 'laddr', 'lport']),
};
const FIELD_TEXT: Record<KillField, string> = {
  path: 'event.path',
  file: 'event.?resolvedPath',
  path2: 'event.path2',
  file2: 'event.?resolvedPath2',
  comm: 'process.comm',
  exe: 'process.exe',
  parentComm: 'parent.comm',
  argv: 'process.argv',
  raddr: 'event.remoteAddress',
  rport: 'event.remotePort',
  laddr: 'event.localAddress',
  lport: 'event.localPort',
  upath: 'event.remoteAddress (a unix socket path)',
};
const isAddress = (f: KillField | undefined): boolean => f === 'raddr' || f === 'laddr';
const isPort = (f: KillField | undefined): boolean => f === 'rport' || f === 'lport';

const FLAG_MEMBERS: Record<string, number> = { write: VIGIL_SYS_FLAGS.WRITE, secret: VIGIL_SYS_FLAGS.SECRET, sensitive: VIGIL_SYS_FLAGS.SENSITIVE };
/** An exec's flags (exec_event.flags), as process members: the process sensor compares them. */
const PROCESS_FLAG_MEMBERS: Record<string, number> = { exeUpperLayer: VIGIL_PROC_FLAGS.EXE_UPPER_LAYER };

export const KERNEL_CHECKS =
  'on file events (open, unlink, rmdir, rename, chmod, chown, mkdir, truncate, link, symlink): event.path, event.?resolvedPath.orValue(event.path), event.path2 or event.?resolvedPath2.orValue(event.path2) (of renames, links and symlinks), or process.comm compared (==, !=, in, startsWith) with literals or named lists, ' +
  'event.?write/secret/sensitive.orValue(false), event.ret >= 0 or < 0; on execs: process.comm, process.exe or parent.comm compared so, "x" in process.argv or process.argv.exists(a, tests of a: ==, in, startsWith, joined by ||), process.?exeUpperLayer.orValue(false); ' +
  'joined by && (|| only between tests of one string), ! of a string test; and conjuncts about the container alone (container, pod), which must not hold on the host';
export const KERNEL_DENY_CHECKS =
  'on connects and binds: process.comm compared (==, !=, in, startsWith) with literals or named lists; a connect\'s event.remoteAddress (event.?remoteAddress.orValue("")) ' +
  'or a bind\'s event.localAddress ==, != or in literal IP addresses, or .inCidr(a list of CIDR blocks), event.remotePort or event.localPort (event.?localPort.orValue(0)) ==, != or in integer literals; ' +
  'a connect\'s event.remoteAddress ==, !=, in or startsWith unix socket paths ("/run/x.sock", "@abstract": such a rule is about unix sockets only); ' +
  'joined by && (|| only between tests of one field), ! of a test; and conjuncts about the container alone (container, pod), which must not hold on the host';

class Uncheckable extends Error {}
const no = (why: string): never => {
  throw new Uncheckable(why);
};

const isId = (n: unknown, name: string): boolean => (n as ASTNode)?.op === 'id' && (n as ASTNode).args === name;
const member = (n: ASTNode, op: '.' | '.?', recv: string, key?: string): string | undefined => {
  if (n.op !== op) return undefined;
  const [r, k] = n.args as [ASTNode, string];
  return isId(r, recv) && (key === undefined || k === key) ? k : undefined;
};
const literal = (n: ASTNode): unknown => (n.op === 'value' ? (n.args as unknown) : undefined);
const rcall = (n: ASTNode): [string, ASTNode, ASTNode[]] | undefined => (n.op === 'rcall' ? (n.args as [string, ASTNode, ASTNode[]]) : undefined);

/** Which string `n` reads, if it is one the kernel has (`local`: the name of an argv element, in process.argv.exists). */
function stringField(n: ASTNode, local?: string): KillField | undefined {
  if (local !== undefined) return isId(n, local) ? 'argv' : undefined;
  if (member(n, '.', 'event', 'path')) return 'path';
  if (member(n, '.', 'event', 'path2')) return 'path2';
  if (member(n, '.', 'process', 'comm')) return 'comm';
  if (member(n, '.', 'process', 'exe')) return 'exe';
  if (member(n, '.', 'parent', 'comm')) return 'parentComm';
  if (member(n, '.', 'event', 'remoteAddress')) return 'raddr';
  if (member(n, '.', 'event', 'remotePort')) return 'rport';
  if (member(n, '.', 'event', 'localAddress')) return 'laddr';
  if (member(n, '.', 'event', 'localPort')) return 'lport';
  const c = rcall(n);
  if (!c || c[0] !== 'orValue' || c[2].length !== 1) return undefined;
  const [, recv, [dflt]] = c;
  if (member(recv, '.?', 'event', 'resolvedPath') && member(dflt!, '.', 'event', 'path')) return 'file';
  if (member(recv, '.?', 'event', 'resolvedPath2') && member(dflt!, '.', 'event', 'path2')) return 'file2';
  // event.?remotePort.orValue(0): port 0 is no peer a connect hook sees (and no port a rule may name for a bind).
  if (literal(dflt!) === 0n || literal(dflt!) === 0) {
    if (member(recv, '.?', 'event', 'remotePort')) return 'rport';
    if (member(recv, '.?', 'event', 'localPort')) return 'lport';
  }
  // process.?comm.orValue(""): the empty default matches no process the kernel sees (each has a comm and an exe).
  if (literal(dflt!) !== '') return undefined;
  if (member(recv, '.?', 'process', 'comm')) return 'comm';
  if (member(recv, '.?', 'process', 'exe')) return 'exe';
  if (member(recv, '.?', 'parent', 'comm')) return 'parentComm';
  // An empty address is in no block and equals no address the kernel compares with.
  if (member(recv, '.?', 'event', 'remoteAddress')) return 'raddr';
  if (member(recv, '.?', 'event', 'localAddress')) return 'laddr';
  return undefined;
}

/** The port a literal's value names (an integer 1 to 65535), else refused. */
function portValue(lit: unknown, at: ASTNode): { s: string; exact: boolean } {
  const p = typeof lit === 'bigint' ? Number(lit) : lit;
  if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) return no(`${serialize(at)}: a port is an integer literal from 1 to 65535`);
  return { s: String(p), exact: true };
}

/**
 * An address literal as a raddr (laddr) value: the rule engine compares event.remoteAddress as text, the
 * kernel the address's bytes, so the literal must be written as the event writes that address (IPv6 compressed, lower case).
 */
function addressValue(lit: unknown, at: ASTNode): { s: string; exact: boolean; block: IpBlock } {
  const ip = typeof lit === 'string' ? parseIp(lit) : undefined;
  if (!ip) return no(`${serialize(at)}: ${JSON.stringify(lit)} is not an IP address (use .inCidr([...]) for blocks)`);
  const block: IpBlock = { ...ip, bits: 8 * ip.bytes.length };
  const shown = block.family === 4 ? [...block.bytes].join('.') : formatIPv6(block.bytes, 0);
  if (shown !== lit) no(`${serialize(at)}: events write this address as ${JSON.stringify(shown)}, which is what == compares with`);
  return { s: shown, exact: true, block };
}

/** A connect's peer written as a unix socket's: a path, or "@" and an abstract name, as events write it. */
const isUnixPath = (lit: unknown): lit is string => typeof lit === 'string' && (lit.startsWith('/') || lit.startsWith('@'));

/** The terms' values for the field of a test, from its literal(s): strings as they are, ports and addresses checked. */
function fieldValue(f: KillField, lit: unknown, at: ASTNode): { s: string; exact: boolean; block?: IpBlock } {
  if (isPort(f)) return portValue(lit, at);
  if (f === 'upath') return isUnixPath(lit) ? { s: lit, exact: true } : no(`${serialize(at)}: ${JSON.stringify(lit)} is not a unix socket path`);
  if (isAddress(f)) return addressValue(lit, at);
  if (typeof lit !== 'string') return no(`${serialize(at)}: the kernel compares a string with a string literal`);
  return { s: lit, exact: true };
}

/**
 * Which flag member `n` reads (`event.write`, or `event.?write.orValue(false)`: optional says which; an exec's
 * `process.exeUpperLayer` the same ways).
 */
function flagRead(n: ASTNode): { bit: number; optional: boolean; of: 'event' | 'process' } | undefined {
  const c = rcall(n);
  const orFalse = c && c[0] === 'orValue' && c[2].length === 1 && literal(c[2][0]!) === false ? c[1] : undefined;
  for (const [of, members] of [['event', FLAG_MEMBERS], ['process', PROCESS_FLAG_MEMBERS]] as const) {
    const k = member(n, '.', of);
    if (k && k in members) return { bit: members[k]!, optional: false, of };
    const ko = orFalse && member(orFalse, '.?', of);
    if (ko && ko in members) return { bit: members[ko]!, optional: true, of };
  }
  return undefined;
}

interface Ctx {
  lists: ReadonlyMap<string, readonly unknown[]>;
  /** Macros by name, as their conditions' trees (undefined: one that did not compile). */
  macros: ReadonlyMap<string, ASTNode | undefined>;
  /**
   * Compiles a container part (its conjuncts, macros inlined) as the rule engine evaluates conditions.
   * Without it, conjuncts about the container are refused.
   */
  containerTest?: (parts: ASTNode[]) => ContainerScope['holds'];
}

/**
 * `n` with the macros it names put in their place, when all it reads besides those is container, pod and
 * named lists; undefined otherwise (any other variable, a comprehension's local, a macro that did not
 * compile). `seen` guards against a macro cycle (refused elsewhere).
 */
function containerPart(n: unknown, ctx: Ctx, seen: ReadonlySet<string> = new Set()): unknown {
  if (Array.isArray(n)) {
    const out: unknown[] = [];
    for (const x of n) {
      const y = containerPart(x, ctx, seen);
      if (y === undefined) return undefined;
      out.push(y);
    }
    return out;
  }
  if (!n || typeof n !== 'object') return n;
  const node = n as ASTNode;
  if (node.op === 'id') {
    const name = node.args as string;
    if (SCOPE_VARIABLES.has(name) || ctx.lists.has(name)) return node;
    const macro = ctx.macros.get(name);
    if (!macro || seen.has(name)) return undefined;
    return containerPart(macro, ctx, new Set([...seen, name]));
  }
  if (node.op === 'value') return node;
  const args = containerPart(node.args, ctx, seen);
  return args === undefined ? undefined : { ...node, args };
}

/** Whether `n` reads container or pod (a conjunct that reads neither is no container part: a constant). */
const readsScope = (n: unknown): boolean =>
  Array.isArray(n) ? n.some(readsScope) : !!n && typeof n === 'object' && ((n as ASTNode).op === 'id' ? SCOPE_VARIABLES.has((n as ASTNode).args as string) : readsScope((n as ASTNode).args));

/** The items of a list literal or a named list. */
function listItems(n: ASTNode, ctx: Ctx): readonly unknown[] {
  const items = n.op === 'list' ? (n.args as ASTNode[]).map(literal) : n.op === 'id' ? ctx.lists.get(n.args as string) : undefined;
  return items ?? no(`${serialize(n)} is not a list of literals`);
}

/** The strings of a list literal or a named list. */
function listStrings(n: ASTNode, ctx: Ctx): string[] {
  const items = listItems(n, ctx);
  for (const x of items) if (typeof x !== 'string') no(`${serialize(n)} holds ${typeof x === 'bigint' ? String(x) : JSON.stringify(x)}, not a string`);
  return items as string[];
}

/** A block as text: "a.b.c.d/n" or "x::/n". */
const blockText = (b: IpBlock): string => `${b.family === 4 ? [...b.bytes].join('.') : formatIPv6(b.bytes, 0)}/${b.bits}`;

/** A macro by name, as its condition's tree. */
function expand(n: ASTNode, ctx: Ctx): ASTNode {
  if (n.op === 'id' && ctx.macros.has(n.args as string)) {
    const ast = ctx.macros.get(n.args as string);
    return ast ? expand(ast, ctx) : no(`macro ${n.args as string} did not compile`);
  }
  return n;
}

/**
 * The field a test of event.remoteAddress compares: a unix socket's path when its literal(s) name one (all of
 * them: a connect is to an IP peer or to a unix socket, never both), else the IP peer's address.
 */
function peerField(f: KillField, lits: unknown[], at: ASTNode): KillField {
  if (f !== 'raddr') return f;
  const unix = lits.filter(isUnixPath).length;
  if (unix && unix < lits.length) no(`${serialize(at)} mixes unix socket paths and IP addresses (test each in a rule of its own)`);
  return unix ? 'upath' : f;
}

/** argv's elements: `process.argv`. */
const isArgv = (n: ASTNode): boolean => !!member(n, '.', 'process', 'argv');

/**
 * A test of one string: the term it makes (undefined: `n` is no such test). `local` names an argv element
 * (within process.argv.exists), the only string its tests may read.
 */
function stringTest(n0: ASTNode, ctx: Ctx, local?: string): KillTerm | undefined {
  const n = expand(n0, ctx);
  if (n.op === '!_') {
    // Within exists, !a.startsWith(x) is "some element does not start with x": no term the kernel has.
    if (local !== undefined) return undefined;
    const t = stringTest(n.args as ASTNode, ctx);
    return t && { ...t, negate: !t.negate };
  }
  // "x" in process.argv: some element is x.
  if (n.op === 'in' && local === undefined && isArgv((n.args as ASTNode[])[1]!)) {
    const lit = literal((n.args as ASTNode[])[0]!);
    if (typeof lit !== 'string') return no(`${serialize(n)}: the kernel compares argv's elements with a string literal`);
    return { field: 'argv', values: [{ s: lit, exact: true }], negate: false };
  }
  // process.argv.exists(a, tests of a): some element passes one of them.
  const ex = rcall(n);
  if (ex && ex[0] === 'exists' && local === undefined && isArgv(ex[1]) && ex[2].length === 2 && ex[2][0]!.op === 'id') {
    const name = ex[2][0]!.args as string;
    const t = stringTest(ex[2][1]!, ctx, name);
    if (!t || t.field !== 'argv') return no(`${serialize(n)}: within exists, the kernel checks ==, in and startsWith tests of ${name} joined by ||`);
    return t;
  }
  if (n.op === '||') {
    const [a, b] = (n.args as ASTNode[]).map((x) => stringTest(x, ctx, local));
    if (!a || !b) return undefined;
    if (a.field !== b.field) no(`${serialize(n)} ors tests of two strings (the kernel ors the tests of one)`);
    if (a.negate || b.negate) no(`${serialize(n)} ors a negated test`);
    return { field: a.field, values: [...a.values, ...b.values], negate: false };
  }
  if (n.op === '==' || n.op === '!=') {
    const [x, y] = n.args as [ASTNode, ASTNode];
    const [f0, lit] = stringField(x, local) ? [stringField(x, local)!, literal(y)] : [stringField(y, local), literal(x)];
    if (!f0) return undefined;
    if (local !== undefined && n.op === '!=') return undefined; // "some element is not x": no term the kernel has
    const f = peerField(f0, [lit], n);
    return { field: f, values: [fieldValue(f, lit, n)], negate: n.op === '!=' };
  }
  if (n.op === 'in') {
    const [x, list] = n.args as [ASTNode, ASTNode];
    const f0 = stringField(x, local);
    if (!f0) return undefined;
    const f = peerField(f0, [...listItems(list, ctx)], n);
    if (isPort(f)) return { field: f, values: listItems(list, ctx).map((v) => fieldValue(f, v, n)), negate: false };
    return { field: f, values: listStrings(list, ctx).map((s) => fieldValue(f, s, n)), negate: false };
  }
  const c = rcall(n);
  if (c && c[0] === 'inCidr' && c[2].length === 1) {
    const f = stringField(c[1], local);
    if (!f || !isAddress(f)) return undefined;
    let blocks: IpBlock[];
    try {
      blocks = parseBlocks(listStrings(c[2][0]!, ctx));
    } catch (err) {
      return no(`${serialize(n)}: ${(err as Error).message}`);
    }
    // An IPv4 block holds the IPv4-mapped IPv6 addresses of its addresses too (cidr.ts): the kernel gets both.
    const mapped = (b: IpBlock): IpBlock[] => {
      if (b.family !== 4) return [b];
      const bytes = new Uint8Array(16);
      bytes[10] = bytes[11] = 0xff;
      bytes.set(b.bytes, 12);
      return [b, { family: 6, bytes, bits: 96 + b.bits }];
    };
    return { field: f, values: blocks.flatMap(mapped).map((b) => ({ s: blockText(b), exact: true, block: b })), negate: false };
  }
  if (c && c[0] === 'startsWith' && c[2].length === 1) {
    const lit = literal(c[2][0]!);
    const f0 = stringField(c[1], local);
    const f = f0 && peerField(f0, [lit], n);
    if (!f || isAddress(f) || isPort(f)) return undefined;
    if (typeof lit !== 'string') no(`${serialize(n)}: startsWith needs a string literal here`);
    return { field: f, values: [{ s: lit as string, exact: false }], negate: false };
  }
  return undefined;
}

/** Adds conjunct `n` to `sel`, or, when it is about the container alone, to `parts` (compiled at the end). */
function conjunct(n0: ASTNode, sel: KernelSelector, parts: ASTNode[], flagsOf: Set<'event' | 'process'>, ctx: Ctx): void {
  const n = expand(n0, ctx);
  if (n.op === '&&') {
    for (const x of n.args as ASTNode[]) conjunct(x, sel, parts, flagsOf, ctx);
    return;
  }
  if (literal(n) === true) return;
  const term = stringTest(n, ctx);
  if (term) {
    sel.terms.push(term);
    return;
  }
  // Flags: a member read (required: true when set, an error otherwise), or its optional form and negation.
  const neg = n.op === '!_';
  const inner = neg ? expand(n.args as ASTNode, ctx) : n;
  const flag = flagRead(inner);
  if (flag && (!neg || flag.optional)) {
    if (neg) sel.deny |= flag.bit;
    else sel.want |= flag.bit;
    flagsOf.add(flag.of);
    return;
  }
  if (flag) no(`${serialize(n)} is an error on an event without that member, never true: write !${flag.of}.?${serialize(inner).replace(/^(event|process)\./, '')}.orValue(false)`);
  const part = ctx.containerTest ? containerPart(n, ctx) : undefined;
  if (part && typeof part === 'object' && readsScope(part)) {
    parts.push(part as ASTNode);
    return;
  }
  if (n.op === '>=' || n.op === '<') {
    const [x, y] = n.args as [ASTNode, ASTNode];
    const v = literal(y);
    if (member(x, '.', 'event', 'ret') && (v === 0n || v === 0)) {
      const want = n.op === '>=' ? 'ok' : 'err';
      if (sel.ret !== 'any' && sel.ret !== want) no(`${serialize(n)} contradicts an earlier test of event.ret`);
      sel.ret = want;
      return;
    }
  }
  no(serialize(n));
}

/** sun_path's bytes: a unix socket's path or abstract name is at most this long. */
const SUN_PATH_BYTES = 108;

function checkValue(field: KillField, v: { s: string; exact: boolean }): void {
  if (isAddress(field) || isPort(field)) return; // checked when made
  const n = Buffer.byteLength(v.s);
  if (field === 'upath' && n > SUN_PATH_BYTES) no(`the unix socket path ${JSON.stringify(v.s)} is longer than ${SUN_PATH_BYTES} bytes: no socket has it`);
  if (field === 'comm' || field === 'parentComm') {
    if (n > COMM_BYTES) no(`the comm ${JSON.stringify(v.s)} is longer than ${COMM_BYTES} bytes: no process has it`);
    return;
  }
  const what = field === 'argv' ? 'argument' : 'path';
  if (n + (v.exact ? 1 : 0) > VALUE_BYTES) no(`the ${what} ${JSON.stringify(v.s)} is longer than ${VALUE_BYTES - (v.exact ? 1 : 0)} bytes`);
  if (v.s.includes('\0')) no(`the ${what} ${JSON.stringify(v.s)} holds a NUL`);
}

/**
 * The kernel selector of a rule's condition. Throws an Error whose message says what the kernel cannot check
 * (the rule is refused then).
 */
export function kernelSelector(types: readonly string[] | undefined, ast: ASTNode, ctx: Ctx, action: 'kill' | 'deny' = 'kill'): KernelSelector {
  const allowed = action === 'deny' ? KERNEL_DENY_TYPES : KERNEL_KILL_TYPES;
  try {
    if (!types?.length) no(`a rule without types (give types: ${action === 'deny' ? '[connect] or [bind]' : 'file event types such as [open], or [exec]'})`);
    const other = types!.filter((t) => !allowed.has(t));
    if (other.length) no(`events of type ${other.join(', ')} (the kernel ${action === 'deny' ? 'denies' : 'checks'} ${[...allowed].join(', ')}${action === 'deny' ? '' : '; it denies connects and binds'})`);
    if (types!.includes('exec') && types!.length > 1) no(`both execs and ${types!.filter((t) => t !== 'exec').join(', ')} in one rule (two sensors check them: write a rule for each)`);
    const sel: KernelSelector = { ops: [...types!], want: 0, deny: 0, ret: 'any', terms: [] };
    if (action === 'deny') sel.denies = true;
    const parts: ASTNode[] = [];
    /** Which kinds of flag sel.want and sel.deny hold (a file event's or an exec's: the bits differ). */
    const flagsOf = new Set<'event' | 'process'>();
    conjunct(ast, sel, parts, flagsOf, ctx);
    if (parts.length && ctx.containerTest) {
      const text = parts.map((p) => (parts.length > 1 && p.op === '||' ? `(${serialize(p)})` : serialize(p))).join(' && ');
      const holds = ctx.containerTest(parts);
      if (holds(NO_MEMBERS, NO_MEMBERS)) no(`${text}: it holds on the host, and the kernel ${action === 'deny' ? 'denies' : 'kills'} in the containers it knows only (${action === 'deny' ? 'leave the container part out' : 'kill from user space'}, or add in_container: has(container.id))`);
      sel.container = { text, holds };
    }
    const sensor = killSensor(sel);
    const what = action === 'deny' ? types!.join(' or ') : sensor === 'process' ? 'exec' : `${types!.join(' or ')} reported`;
    // A deny rule about connects and binds tests what both have (the comm, the container).
    const kinds = action === 'deny' ? (types as ('connect' | 'bind')[]) : [sensor];
    const fields = new Set([...FIELDS_OF[kinds[0]!]].filter((f) => kinds.every((k) => FIELDS_OF[k].has(f))));
    if (sel.want & sel.deny) no('a flag both required and excluded');
    if (sensor === 'process' && (flagsOf.has('event') || sel.ret !== 'any')) no(`${serialize(ast)}: an exec has no write, secret or sensitive flag and no ret (it has process.exeUpperLayer)`);
    if (sensor !== 'process' && flagsOf.has('process')) no(`${serialize(ast)}: process.exeUpperLayer is the exec's (a rule about execs, types: [exec], may test it)`);
    if (action === 'deny' && (sel.want || sel.deny || sel.ret !== 'any')) no(`${serialize(ast)}: a ${what} is denied before it is made: it has no ret yet`);
    if (!sel.terms.length && !sel.want && !sel.deny && sel.ret === 'any') no(`${serialize(ast)}: it checks nothing${sel.container ? ' but the container' : ''}, and would ${action === 'deny' ? 'deny' : 'kill the process of'} every ${what}${sel.container ? ' there' : ''}`);
    if (sel.terms.length > KILL_TERMS_MAX) no(`more than ${KILL_TERMS_MAX} string tests`);
    for (const t of sel.terms) {
      if (!fields.has(t.field)) no(`${FIELD_TEXT[t.field]} on ${sensor === 'process' ? 'an exec' : action === 'deny' ? `a ${what}` : 'a file event'} (the kernel has ${[...fields].map((f) => FIELD_TEXT[f]).join(', ')} there)`);
      if (!t.values.length) no('a test against an empty list');
      for (const v of t.values) checkValue(t.field, v);
    }
    // A test of the second path holds only where there is one: a rule about it is about calls that have it.
    const noPath2 = types!.filter((x) => !TWO_PATH_TYPES.has(x));
    if (sel.terms.some((t) => t.field === 'path2' || t.field === 'file2') && noPath2.length) no(`${serialize(ast)}: event.path2 is a rename's, link's or symlink's, and ${noPath2.join(', ')} has none (types: [rename, link, symlink])`);
    if (sel.terms.some((t) => t.field === 'upath')) {
      if (sel.terms.some((t) => t.field === 'raddr' || t.field === 'rport')) no(`${serialize(ast)}: a connect to a unix socket has no IP address or port`);
      sel.unix = true;
    }
    return sel;
  } catch (err) {
    if (err instanceof Uncheckable) throw new Error(action === 'deny' ? `deny: the kernel cannot check ${err.message}; it checks ${KERNEL_DENY_CHECKS}` : `inKernel: the kernel cannot check ${err.message}; it checks ${KERNEL_CHECKS}`);
    throw err;
  }
}
