// In-kernel kill rules: which conditions compile into the kernel's selector (src/rules/kernel.ts) and which are
// refused, naming the part the kernel cannot check; how the selectors are written into the sensor's maps
// (SyscallFilters.applyKill: the half not in force, then the config); how the kernel's answer reads in an
// event (src/events/kill.ts) and in the alert's action results (Enforcer).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { decodeNetEvent } from '../../src/events/decode.ts';
import { execKillAt, kernelDenyAt, kernelKillAt, killRuleNumber } from '../../src/events/kill.ts';
import { EXEC_EVENT as EE, FILE_EVENT as FE, NET_EVENT as NE, VIGIL_KILL_FIELD, SIZEOF, SYSCALL_FILTER_CONFIG as C, SYSCALL_KILL_RULE as R, SYSCALL_KILL_VALUE as V, VIGIL_KILL_RESULT as KR, VIGIL_KILL_SCOPE as SC, VIGIL_KILL_SET as S, VIGIL_SYS_FLAGS as F, VIGIL_PROC_FLAGS, VIGIL_SYS_NR, VIGIL_SYS_OP, VIGIL_OPCODE, EVENT_HEADER } from '../../src/events/layout.generated.ts';
import type { NetEvent } from '../../src/events/types.ts';
import type { OutputEvent } from '../../src/pipeline/types.ts';
import { Enforcer } from '../../src/rules/actions.ts';
import { KILL_RULES_MAX, KILL_TERMS_MAX, KILL_VALUES_MAX, killSensor, type KernelSelector } from '../../src/rules/kernel.ts';
import { encodeKillState, KillTable } from '../../src/rules/kernel-maps.ts';
import { KillScopes } from '../../src/rules/kill-scopes.ts';
import type { BpfMap } from '../../src/bpf/map.ts';
import { compileRules, RuleError } from '../../src/rules/rules.ts';
import { normalizeSyscallConfig } from '../../src/syscalls/config.ts';
import { SyscallFilters, type SyscallFilterMaps } from '../../src/syscalls/filters.ts';

const LISTS = [
  { list: 'shells', items: ['sh', 'bash'] },
  { list: 'keys', items: ['/etc/shadow', '/etc/gshadow'] },
  { macro: 'is_write', condition: 'event.?write.orValue(false)' },
  { macro: 'in_container', condition: 'has(container.id)' },
];

/** The kernel selector of a rule with this condition (and these types), or the problems that refused it. */
function compile(condition: string, extra: Record<string, unknown> = {}): KernelSelector | string[] {
  const rule = { rule: 'k', condition, output: 'x', priority: 'critical', types: ['open'], actions: [{ kill: { signal: 'SIGKILL', inKernel: true } }], ...extra };
  try {
    const set = compileRules({ sources: [{ name: 'f', items: [...LISTS, rule] }] });
    const k = set.kernelRules;
    assert.equal(k.length, 1);
    assert.equal(k[0]!.signal, extra.actions ? k[0]!.signal : 'SIGKILL');
    return k[0]!.selector;
  } catch (err) {
    if (err instanceof RuleError) return err.issues.map((i) => `${i.path}: ${i.message}`);
    throw err;
  }
}

test('conditions of strings, flags and the return value compile into the kernel selector', () => {
  assert.deepEqual(compile('event.path == "/etc/shadow" && !event.?write.orValue(false) && event.ret >= 0'), {
    ops: ['open'],
    want: 0,
    deny: F.WRITE,
    ret: 'ok',
    terms: [{ field: 'path', values: [{ s: '/etc/shadow', exact: true }], negate: false }],
  });
  // Named lists, an or of one string's tests, macros, a negated comm list, the resolved path.
  assert.deepEqual(compile('(event.?resolvedPath.orValue(event.path) in keys || event.?resolvedPath.orValue(event.path).startsWith("/root/.ssh/")) && is_write && !(process.comm in shells) && true'), {
    ops: ['open'],
    want: F.WRITE,
    deny: 0,
    ret: 'any',
    terms: [
      { field: 'file', values: [{ s: '/etc/shadow', exact: true }, { s: '/etc/gshadow', exact: true }, { s: '/root/.ssh/', exact: false }], negate: false },
      { field: 'comm', values: [{ s: 'sh', exact: true }, { s: 'bash', exact: true }], negate: true },
    ],
  });
  assert.deepEqual(compile('process.?comm.orValue("") != "passwd" && "/etc/passwd" == event.path && event.ret < 0 && event.?secret.orValue(false)'), {
    ops: ['open'],
    want: F.SECRET,
    deny: 0,
    ret: 'err',
    terms: [
      { field: 'comm', values: [{ s: 'passwd', exact: true }], negate: true },
      { field: 'path', values: [{ s: '/etc/passwd', exact: true }], negate: false },
    ],
  });
});

test('every file event type compiles for the kernel, which checks each at its exit with the same code', () => {
  // A symlink or hard link of a shadow file, made by anything but the package manager: the path is the target.
  const sel = compile('event.?resolvedPath.orValue(event.path) in ["/etc/shadow", "/etc/gshadow"] && !(process.comm in ["dpkg", "apt"]) && event.ret >= 0', { types: ['symlink', 'link'] });
  assert.deepEqual(sel, {
    ops: ['symlink', 'link'],
    want: 0,
    deny: 0,
    ret: 'ok',
    terms: [
      { field: 'file', values: [{ s: '/etc/shadow', exact: true }, { s: '/etc/gshadow', exact: true }], negate: false },
      { field: 'comm', values: [{ s: 'dpkg', exact: true }, { s: 'apt', exact: true }], negate: true },
    ],
  });
  assert.equal(killSensor(sel as KernelSelector), 'syscalls');
  // The second path: a link planted in a directory, or a file renamed over another.
  assert.deepEqual((compile('event.?resolvedPath2.orValue(event.path2).startsWith("/etc/cron.d/") && event.path2 != "x"', { types: ['symlink', 'link', 'rename'] }) as KernelSelector).terms, [
    { field: 'file2', values: [{ s: '/etc/cron.d/', exact: false }], negate: false },
    { field: 'path2', values: [{ s: 'x', exact: true }], negate: true },
  ]);
  for (const type of ['unlink', 'rmdir', 'rename', 'chmod', 'chown', 'mkdir', 'truncate']) {
    assert.deepEqual((compile('event.?sensitive.orValue(false) && event.path.startsWith("/etc/")', { types: [type] }) as KernelSelector).ops, [type], type);
  }
});

test('an exec rule may test process.exeUpperLayer (a file the container\'s image does not have): the process sensor\'s flag; a file rule may not', () => {
  const sel = compile('process.?exeUpperLayer.orValue(false) && !(process.comm in ["apt", "dpkg"])', { types: ['exec'] }) as KernelSelector;
  assert.deepEqual([sel.ops, sel.want, sel.deny, sel.terms.length], [['exec'], VIGIL_PROC_FLAGS.EXE_UPPER_LAYER, 0, 1]);
  assert.equal((compile('process.exe.startsWith("/tmp/") && !process.?exeUpperLayer.orValue(false)', { types: ['exec'] }) as KernelSelector).deny, VIGIL_PROC_FLAGS.EXE_UPPER_LAYER);
  const refused = (condition: string, types: string[]) => (compile(condition, { types }) as string[]).join('\n');
  assert.match(refused('process.?exeUpperLayer.orValue(false) && event.path == "/a"', ['open']), /process\.exeUpperLayer is the exec's/);
  assert.match(refused('process.exe == "/a" && event.?write.orValue(false)', ['exec']), /an exec has no write, secret or sensitive flag and no ret \(it has process\.exeUpperLayer\)/);
  assert.match(refused('!process.exeUpperLayer', ['exec']), /never true: write !process\.\?exeUpperLayer\.orValue\(false\)/);
});

test("conditions of an exec rule compile into the process sensor's selector", () => {
  const sel = compile('(process.?exe.orValue("") in ["/usr/bin/nc", "/usr/bin/ncat"] || process.exe.startsWith("/tmp/")) && parent.?comm.orValue("") != "sshd" && !(process.comm in shells)', { types: ['exec'] });
  assert.deepEqual(sel, {
    ops: ['exec'],
    want: 0,
    deny: 0,
    ret: 'any',
    terms: [
      { field: 'exe', values: [{ s: '/usr/bin/nc', exact: true }, { s: '/usr/bin/ncat', exact: true }, { s: '/tmp/', exact: false }], negate: false },
      { field: 'parentComm', values: [{ s: 'sshd', exact: true }], negate: true },
      { field: 'comm', values: [{ s: 'sh', exact: true }, { s: 'bash', exact: true }], negate: true },
    ],
  });
  assert.equal(killSensor(sel as KernelSelector), 'process');
  // argv: an element is x (in), some element passes one of the tests (exists), or none does (negated).
  assert.deepEqual(
    (compile('process.comm in ["nc", "ncat"] && "-e" in process.argv && !process.argv.exists(a, a in ["--safe", "-z"] || a.startsWith("--allow="))', { types: ['exec'] }) as KernelSelector).terms,
    [
      { field: 'comm', values: [{ s: 'nc', exact: true }, { s: 'ncat', exact: true }], negate: false },
      { field: 'argv', values: [{ s: '-e', exact: true }], negate: false },
      { field: 'argv', values: [{ s: '--safe', exact: true }, { s: '-z', exact: true }, { s: '--allow=', exact: false }], negate: true },
    ],
  );
  assert.deepEqual((compile('process.argv.exists(x, x == "-c")', { types: ['exec'] }) as KernelSelector).terms, [{ field: 'argv', values: [{ s: '-c', exact: true }], negate: false }]);
  assert.equal(killSensor(compile('event.path == "/a"') as KernelSelector), 'syscalls');
});

test('a condition with anything the kernel cannot check is refused, naming that part; nothing loads', () => {
  const refused = (condition: string, extra?: Record<string, unknown>) => {
    const r = compile(condition, extra);
    assert.ok(Array.isArray(r), `${condition}: expected a refusal, got ${JSON.stringify(r)}`);
    assert.equal(r.length, 1);
    assert.match(r[0]!, /^f item 5 \(rule "k"\)\.actions: /);
    return r[0]!;
  };
  assert.match(refused('event.path.endsWith("/shadow")'), /inKernel: the kernel cannot check event\.path\.endsWith\("\/shadow"\); it checks on file events \(open, unlink, .*\): event\.path/);
  assert.match(refused('event.path == "/etc/shadow" && process.exe == "/usr/bin/cat"'), /cannot check process\.exe on a file event \(the kernel has event\.path, event\.\?resolvedPath, event\.path2, event\.\?resolvedPath2, process\.comm there\)/);
  assert.match(refused('event.path == "/a" || process.comm == "sh"'), /ors tests of two strings/);
  assert.match(refused('event.path == "/a" || event.?resolvedPath.orValue(event.path) == "/b"'), /ors tests of two strings/);
  assert.match(refused('!event.write'), /never true: write !event\.\?write\.orValue\(false\)/);
  assert.match(refused('event.ret >= 0 && event.ret < 0'), /contradicts an earlier test of event\.ret/);
  assert.match(refused('process.comm == "a-very-long-command-name"'), /longer than 15 bytes: no process has it/);
  assert.match(refused(`event.path.startsWith("/${'x'.repeat(300)}")`), /longer than 256 bytes/);
  assert.match(refused('event.path in [1, 2]'), /holds 1, not a string/);
  assert.match(refused('true'), /cannot check true: it checks nothing, and would kill the process of every open reported/);
  assert.match(refused('event.path == "/a"', { types: ['connect'] }), /events of type connect \(the kernel checks open, unlink, rmdir, rename, chmod, chown, mkdir, truncate, link, symlink, exec; it denies connects and binds\)/);
  assert.match(refused('event.path2 == "/a"', { types: ['rename', 'open'] }), /event\.path2 is a rename's, link's or symlink's, and open has none/);
  assert.match(refused('true', { types: ['unlink', 'rename'] }), /would kill the process of every unlink or rename reported/);
  assert.match(refused('event.path == "/a"', { types: ['exec'] }), /cannot check event\.path on an exec \(the kernel has process\.comm, process\.exe, parent\.comm, process\.argv there\)/);
  assert.match(refused('process.exe == "/a"', { types: ['exec', 'open'] }), /both execs and open in one rule/);
  assert.match(refused('process.exe == "/a" && event.ret >= 0', { types: ['exec'] }), /an exec has no write, secret or sensitive flag and no ret/);
  assert.match(refused('process.argv.exists(a, !a.startsWith("-"))', { types: ['exec'] }), /within exists, the kernel checks ==, in and startsWith tests of a joined by \|\|/);
  assert.match(refused('process.argv.exists(a, a != "-e")', { types: ['exec'] }), /within exists, the kernel checks/);
  assert.match(refused('process.argv.exists(a, a.endsWith(".sh"))', { types: ['exec'] }), /within exists, the kernel checks/);
  assert.match(refused('process.argv.exists(a, a == "-e" || process.comm == "nc")', { types: ['exec'] }), /within exists, the kernel checks/);
  assert.match(refused('process.argv.exists(a, a == "-e")', { types: ['open'] }), /cannot check process\.argv on a file event/);
  assert.match(refused('1 in process.argv', { types: ['exec'] }), /compares argv's elements with a string literal/);
  assert.match(refused(`"${'x'.repeat(256)}" in process.argv`, { types: ['exec'] }), /the argument "x+" is longer than 255 bytes/);
  assert.match(refused('process.argv.size() > 2', { types: ['exec'] }), /cannot check process\.argv\.size\(\) > 2/);
  assert.match(refused('true', { types: ['exec'] }), /would kill the process of every exec;/);
  assert.match(refused('parent.comm == "a-very-long-command-name"', { types: ['exec'] }), /longer than 15 bytes/);
  assert.match(refused('event.path == "/a"', { types: undefined }), /a rule without types/);
  assert.match(refused('event.path == "/a"', { exceptions: [{ name: 'e', fields: ['process.comm'], values: [['sh']] }] }), /cannot check exceptions/);
  // A user-space kill of the same condition compiles: only inKernel asks the kernel.
  const set = compileRules({ sources: [{ name: 'f', items: [{ rule: 'u', condition: 'event.path.endsWith("/x")', output: 'x', priority: 'critical', types: ['open'], actions: [{ kill: {} }] }] }] });
  assert.deepEqual(set.kernelRules, []);
  assert.throws(() => compileRules({ sources: [{ name: 'f', items: [{ rule: 'u', condition: 'true', output: 'x', priority: 'critical', types: ['open'], actions: [{ kill: { inKernel: 'yes' } }] }] }] }), /kill\.inKernel: expected true or false/);
});

test('the kernel limits the compiler and the agent check are those of bpf/include/events.h', () => {
  const h = fs.readFileSync(path.join(import.meta.dirname, '../../bpf/include/events.h'), 'utf8');
  const define = (name: string) => Number(new RegExp(`^#define ${name} (\\d+)`, 'm').exec(h)?.[1]);
  assert.deepEqual([KILL_RULES_MAX, KILL_VALUES_MAX, KILL_TERMS_MAX], [define('VIGIL_KILL_RULES_MAX'), define('VIGIL_KILL_VALUES_MAX'), define('VIGIL_KILL_TERMS_MAX')]);
});

/** Maps that record their writes (by name and key) and say how large they are. */
function fakeMaps(log: string[]): { maps: SyscallFilterMaps; store: Map<string, Map<number, Buffer>> } {
  const store = new Map<string, Map<number, Buffer>>();
  const fake = (name: string, maxEntries = 1) => {
    const m = new Map<number, Buffer>();
    store.set(name, m);
    return {
      update: (k: Buffer, v: Buffer) => {
        log.push(`${name}[${k.readUInt32LE(0)}]`);
        m.set(k.readUInt32LE(0), v);
      },
      delete: () => true,
      keys: () => [],
      lookup: () => undefined,
      info: () => ({ maxEntries }),
    };
  };
  const names = ['config', 'comm', 'prefixes', 'sensitive', 'secret', 'secretDirs', 'log', 'stats'] as const;
  const maps = Object.fromEntries(names.map((n) => [n, fake(n)])) as Record<string, unknown>;
  maps.killRules = fake('killRules', 32);
  maps.killValues = fake('killValues', 128);
  return { maps: maps as unknown as SyscallFilterMaps, store };
}

test('kill rules are written into the half of the maps not in force, then put in force by the config', () => {
  const log: string[] = [];
  const { maps, store } = fakeMaps(log);
  const f = new SyscallFilters(maps, 1);
  assert.throws(() => f.applyKill({ rules: [], dryRun: false, protect: [] }), /not applied yet/);
  f.apply(normalizeSyscallConfig({ files: { open: true } }));
  const sel = compile('event.path in keys && !(process.comm in shells) && is_write && event.ret < 0') as KernelSelector;
  log.length = 0;
  f.applyKill({ rules: [{ id: 7, signal: 9, selector: sel }], dryRun: false, protect: [100, 50] });
  assert.deepEqual(log, ['killRules[16]', 'killValues[64]', 'killValues[65]', 'killValues[66]', 'killValues[67]', 'config[0]']);
  const rule = store.get('killRules')!.get(16)!;
  assert.equal(rule.readBigUInt64LE(R.ops.offset), 1n << 1n, 'open is op 1');
  assert.deepEqual([R.id, R.signal, R.want_flags, R.deny_flags, R.ret, R.terms, R.negate, R.dry_run].map((x) => rule.readUInt32LE(x.offset)), [7, 9, F.WRITE, 0, 2, 2, 0b10, 0]);
  const value = store.get('killValues')!.get(65)!; // "/etc/gshadow", exact: its NUL is in the mask
  assert.deepEqual([V.rule, V.term, V.field].map((x) => value.readUInt32LE(x.offset)), [0, 0, 0]);
  assert.equal(value.toString('utf8', V.prefix.offset, V.prefix.offset + 13), '/etc/gshadow\0');
  assert.equal(value.subarray(V.mask.offset, V.mask.offset + V.mask.size).filter((b) => b === 0xff).length, 13);
  const comm = store.get('killValues')!.get(66)!;
  assert.deepEqual([V.rule, V.term, V.field].map((x) => comm.readUInt32LE(x.offset)), [0, 1, 2]);
  let config = store.get('config')!.get(0)!;
  assert.deepEqual([S.base, S.rule_count, S.value_count, S.protect_count].map((x) => config.readUInt32LE(C.kill.offset + x.offset)), [1, 1, 4, 2]);
  assert.deepEqual([0, 1].map((i) => config.readUInt32LE(C.kill.offset + S.protect.offset + 4 * i)), [100, 50]);
  assert.deepEqual(f.killRules, { rules: 1, values: 4, scoped: 0, cgroups: 0, denies: 0 });

  // The next set goes to the other half; the filters' own updates keep the set in force.
  log.length = 0;
  f.applyKill({ rules: [{ id: 8, signal: 15, selector: sel }], dryRun: true, protect: [] });
  assert.deepEqual(log.slice(0, 2), ['killRules[0]', 'killValues[0]']);
  assert.equal(store.get('killRules')!.get(0)!.readUInt32LE(R.dry_run.offset), 1);
  f.apply(normalizeSyscallConfig({ files: { open: true, unlink: true } }));
  config = store.get('config')!.get(0)!;
  assert.deepEqual([S.base, S.rule_count, S.value_count].map((x) => config.readUInt32LE(C.kill.offset + x.offset)), [0, 1, 4]);

  // Too many for the maps: refused before anything is written.
  log.length = 0;
  const many = Array.from({ length: 17 }, (_, i) => ({ id: i + 1, signal: 9, selector: sel }));
  assert.throws(() => f.applyKill({ rules: many, dryRun: false, protect: [] }), /17 rules kill in the kernel; at most 16 can/);
  const wide = { ...sel, terms: [{ field: 'path' as const, values: Array.from({ length: 65 }, (_, i) => ({ s: `/${i}`, exact: true })), negate: false }] };
  assert.throws(() => f.applyKill({ rules: [{ id: 1, signal: 9, selector: wide }], dryRun: false, protect: [] }), /65 strings; at most 64/);
  assert.deepEqual(log, []);
  f.applyKill({ rules: [], dryRun: false, protect: [] });
  assert.deepEqual(f.killRules, { rules: 0, values: 0, scoped: 0, cgroups: 0, denies: 0 });
  // A rule about containers needs the sensor's scopes map.
  const web = compile('in_container && container.?name.orValue("") == "web" && event.path in keys') as KernelSelector;
  assert.throws(() => f.applyKill({ rules: [{ id: 1, signal: 9, selector: web }], dryRun: false, protect: [] }), /no scopes map for a rule about containers \(has\(container\.id\) && container\.\?name\.orValue\(""\) == "web"\)/);
});

test('kill rules about containers: their container part compiles apart, and its cgroups are written per half as containers come, change and go', () => {
  const exec = { types: ['exec'] };
  const web = compile('in_container && container.?name.orValue("") == "web" && process.comm in shells', exec) as KernelSelector;
  assert.equal(web.container?.text, 'has(container.id) && container.?name.orValue("") == "web"');
  assert.deepEqual(web.terms, [{ field: 'comm', values: [{ s: 'sh', exact: true }, { s: 'bash', exact: true }], negate: false }]);
  const prod = compile('process.exe.startsWith("/tmp/") && (pod.?namespace.orValue("") == "prod" || container.?labels.orValue({}).exists(k, k == "tier"))', exec);
  assert.ok(Array.isArray(prod) && /cannot check pod\.\?namespace.*\.exists\(k, k == "tier"\); /.test(prod[0]!), 'a comprehension is refused: its local is no variable the part may read');
  const ns = compile('process.exe.startsWith("/tmp/") && pod.?namespace.orValue("") in ["prod", "stage"]', exec) as KernelSelector;
  const plain = compile('process.comm == "sh"', exec) as KernelSelector;
  assert.equal(plain.container, undefined);
  // What holds on the host is refused (the kernel kills in containers it knows only), as is a part alone.
  assert.match(String(compile('!in_container && process.comm == "sh"', exec)), /cannot check !has\(container\.id\): it holds on the host/);
  assert.match(String(compile('in_container', exec)), /it checks nothing but the container, and would kill the process of every exec there/);
  assert.match(String(compile('container.?name.orValue("") == process.comm', exec)), /cannot check container\.\?name\.orValue\(""\) == process\.comm/);
  assert.match(String(compile('"sh" in shells && process.comm == "sh"', exec)), /cannot check "sh" in shells; /, 'a constant is no container part');

  const entries = new Map<number, [number, number]>();
  const map = {
    name: 'proc_kill_scopes',
    valueSize: SIZEOF.vigil_kill_scope,
    update: (k: Buffer, v: Buffer) => void entries.set(Number(k.readBigUInt64LE(0)), [v.readUInt16LE(SC.rules.offset), v.readUInt16LE(SC.rules.offset + 2)]),
    delete: (k: Buffer) => entries.delete(Number(k.readBigUInt64LE(0))),
  };
  const scopes = new KillScopes(map as unknown as BpfMap);
  const sorted = () => [...entries].sort((a, b) => a[0] - b[0]);
  // Containers known before any rule: nothing is written.
  scopes.update({ id: 'a', cgroupIds: [10, 11], container: { id: 'a', name: 'web', enrichment: 'done' }, pod: {} });
  scopes.update({ id: 'b', cgroupIds: [20], container: { id: 'b', enrichment: 'pending' }, pod: {} });
  assert.deepEqual(sorted(), []);
  // A set in half 1: rule 1 (web) holds in a's cgroups; b is not enriched yet.
  scopes.setHalf(1, [plain, web, ns]);
  assert.deepEqual(sorted(), [[10, [0, 2]], [11, [0, 2]]]);
  // b's runtime answered: a pod in prod, and a second cgroup.
  scopes.update({ id: 'b', cgroupIds: [20, 21], container: { id: 'b', name: 'api', enrichment: 'done' }, pod: { uid: 'u', namespace: 'prod' } });
  assert.deepEqual(sorted(), [[10, [0, 2]], [11, [0, 2]], [20, [0, 4]], [21, [0, 4]]]);
  // The next set goes to half 0, the other half as it was.
  scopes.setHalf(0, [ns]);
  assert.deepEqual(sorted(), [[10, [0, 2]], [11, [0, 2]], [20, [1, 4]], [21, [1, 4]]]);
  assert.deepEqual([scopes.cgroupsIn(0), scopes.cgroupsIn(1)], [2, 4]);
  // a loses a cgroup, then expires: its entries go.
  scopes.update({ id: 'a', cgroupIds: [10], container: { id: 'a', name: 'web', enrichment: 'done' }, pod: {} });
  assert.deepEqual(sorted().map(([id]) => id), [10, 20, 21]);
  scopes.update({ id: 'a', cgroupIds: [], container: { id: 'a', name: 'web', enrichment: 'done' }, pod: {} });
  assert.deepEqual(sorted().map(([id]) => id), [20, 21]);
  // No rule about containers left in either half: no entry left.
  scopes.setHalf(1, [plain]);
  scopes.setHalf(0, []);
  assert.deepEqual(sorted(), []);
  assert.equal(scopes.failed, 0);
});

test('an event says what the kernel did; the alert reports it, and a kill the kernel did not match is done from user space', () => {
  const id = killRuleNumber('Shadow read');
  // A file record says what was done by a flag, an exec record by a result code.
  const record = (size: number, at: { kill_rule: { offset: number }; kill_signal: { offset: number } }, rule: number, signal: number, result?: number) => {
    const b = Buffer.alloc(size);
    b.writeUInt16LE(rule, at.kill_rule.offset);
    b.writeUInt8(signal, at.kill_signal.offset);
    if (result !== undefined) b.writeUInt8(result, EE.kill_result.offset);
    return new DataView(b.buffer, b.byteOffset, b.length);
  };
  const file = (flags: number, rule: number, signal: number) => kernelKillAt(record(SIZEOF.file_event, FE, rule, signal), 0, flags);
  assert.deepEqual(file(F.KILL_SENT | F.WRITE, id, 9), { rule: 'Shadow read', signal: 'SIGKILL', result: 'sent' });
  assert.deepEqual(file(F.KILL_DRY_RUN, id, 15), { rule: 'Shadow read', signal: 'SIGTERM', result: 'dry-run' });
  assert.equal(file(F.KILL_REFUSED, 0, 9), undefined, 'no rule: no kill');
  assert.equal(file(F.WRITE, id, 9), undefined, 'no result flag: no kill');
  assert.equal(file(F.KILL_FAILED, 65000, 9)!.rule, '#65000', 'a number no longer known');
  const exec = (result: number, rule: number) => execKillAt(record(SIZEOF.exec_event, EE, rule, 9, result), 0);
  assert.deepEqual(exec(KR.SENT, id), { rule: 'Shadow read', signal: 'SIGKILL', result: 'sent' });
  assert.deepEqual([KR.DRY_RUN, KR.REFUSED, KR.FAILED].map((r) => exec(r, id)!.result), ['dry-run', 'refused', 'failed']);
  assert.equal(exec(KR.NONE, id), undefined);
  assert.equal(exec(KR.SENT, 0), undefined);

  const calls: number[] = [];
  const e = new Enforcer({ enforce: true, protect: new Set(), hostPids: true, signal: (pid) => (calls.push(pid), { result: 'sent' }) });
  const actions = [{ kill: { signal: 'SIGKILL' as const, inKernel: true } }];
  const ev = (kill?: unknown): OutputEvent => ({ type: 'open', time: 't', ktimeNs: 1, process: { pid: 4242, key: '4242:500', startNs: 5e9 }, ...(kill ? { kill } : {}) });
  assert.deepEqual(e.run('Shadow read', actions, ev({ rule: 'Shadow read', signal: 'SIGKILL', result: 'sent' })), [{ action: 'kill', signal: 'SIGKILL', inKernel: true, result: 'sent' }]);
  assert.deepEqual(e.run('Shadow read', actions, ev({ rule: 'Shadow read', signal: 'SIGKILL', result: 'refused' }))[0]!.reason, 'pid 1, the agent or one of its ancestors');
  assert.deepEqual(calls, [], 'what the kernel did is not done again');
  assert.deepEqual(e.run('Shadow read', actions, ev({ rule: 'Other rule', signal: 'SIGKILL', result: 'sent' })), [{ action: 'kill', signal: 'SIGKILL', result: 'sent' }]);
  assert.deepEqual(e.run('Shadow read', actions, ev())[0]!.result, 'repeat', 'not matched in the kernel: killed from user space (once)');
  assert.deepEqual(calls, [4242]);
});

test('deny rules about unix socket paths compile into a selector of their own (the unix connect hook\'s); mixing them with IP peers is refused', () => {
  const deny = (condition: string, extra: Record<string, unknown> = {}) => compile(condition, { types: ['connect'], actions: [{ deny: {} }], ...extra });
  const sel = deny('event.?remoteAddress.orValue("") in ["/run/docker.sock", "/var/run/docker.sock", "@vigil-abstract"] && !(process.comm in ["dockerd"])') as KernelSelector;
  assert.equal(sel.unix, true);
  assert.deepEqual(sel.ops, ['connect']);
  assert.deepEqual(
    sel.terms.map((t) => [t.field, t.values.map((v) => [v.s, v.exact]), t.negate]),
    [
      ['upath', [['/run/docker.sock', true], ['/var/run/docker.sock', true], ['@vigil-abstract', true]], false],
      ['comm', [['dockerd', true]], true],
    ],
  );
  assert.deepEqual((deny('event.remoteAddress.startsWith("/run/containerd/")') as KernelSelector).terms, [{ field: 'upath', values: [{ s: '/run/containerd/', exact: false }], negate: false }]);
  assert.equal((deny('event.remoteAddress == "10.0.0.1"') as KernelSelector).unix, undefined, 'an IP peer: the IP hooks');
  const refused = (condition: string, extra?: Record<string, unknown>) => (deny(condition, extra) as string[]).join('\n');
  assert.match(refused('event.remoteAddress in ["/run/docker.sock", "10.0.0.1"]'), /mixes unix socket paths and IP addresses/);
  assert.match(refused('event.remoteAddress == "/run/docker.sock" && event.?remotePort.orValue(0) == 80'), /a connect to a unix socket has no IP address or port/);
  assert.match(refused(`event.remoteAddress == "/${'x'.repeat(120)}"`), /longer than 108 bytes/);
  assert.match(refused('event.?localAddress.orValue("") == "/run/x.sock"', { types: ['bind'] }), /is not an IP address/);
});

test('a deny rule matches the calls of the families its hooks check: no alert about a call it never could deny', () => {
  const set = compileRules({
    sources: [
      {
        name: 'f',
        items: [
          { rule: 'Ports', condition: 'process.comm == "perl" && event.?remotePort.orValue(0) != 22', output: 'x', priority: 'critical', types: ['connect'], actions: [{ deny: {} }] },
          { rule: 'Socket', condition: '!event.?remoteAddress.orValue("").startsWith("/run/x")', output: 'x', priority: 'critical', types: ['connect'], actions: [{ deny: {} }] },
          { rule: 'Bind', condition: 'process.comm == "perl"', output: 'x', priority: 'critical', types: ['bind'], actions: [{ deny: {} }] },
          // The same condition without a deny: an ordinary rule, about every family.
          { rule: 'Alert', condition: 'process.comm == "perl"', output: 'x', priority: 'critical', types: ['connect', 'bind'] },
        ],
      },
    ],
  });
  const hits = (ev: Record<string, unknown>) => {
    const ctx = set.context({ time: 't', ktimeNs: 1, process: { pid: 7, key: '7:1', startNs: 1, comm: 'perl' }, ...ev } as unknown as OutputEvent);
    return set.rulesFor(ev.type as string).filter((r) => r.match(ctx)).map((r) => r.name);
  };
  // About IP peers (its `!=` holds on a unix connect, which has no port): the IP hooks, and IP connects alone.
  assert.deepEqual(hits({ type: 'connect', family: 'AF_INET', remoteAddress: '10.0.0.1', remotePort: 80 }), ['Ports', 'Alert']);
  assert.deepEqual(hits({ type: 'connect', family: 'AF_INET6', remoteAddress: '::1', remotePort: 80 }), ['Ports', 'Alert']);
  assert.deepEqual(hits({ type: 'connect', family: 'AF_UNIX', remoteAddress: '/run/y.sock' }), ['Socket', 'Alert']);
  // Binds: the IP bind hooks only; a unix bind passes none.
  assert.deepEqual(hits({ type: 'bind', family: 'AF_INET', localAddress: '0.0.0.0', localPort: 80 }), ['Bind', 'Alert']);
  assert.deepEqual(hits({ type: 'bind', family: 'AF_UNIX', localAddress: '/run/y.sock' }), ['Alert']);
});

test('deny rules: connects by comm, peer address (literal, list or CIDR blocks, IPv4-mapped included) and port compile into a deny selector; what the hooks cannot check is refused', () => {
  const deny = (condition: string, extra: Record<string, unknown> = {}) => compile(condition, { types: ['connect'], actions: [{ deny: {} }], ...extra });
  const sel = deny('process.comm in shells && event.?remoteAddress.orValue("").inCidr(["169.254.0.0/16", "fd00::/8"]) && event.?remotePort.orValue(0) in [80, 443]') as KernelSelector;
  assert.equal(sel.denies, true);
  assert.deepEqual(sel.ops, ['connect']);
  assert.deepEqual(
    sel.terms.map((t) => [t.field, t.values.map((v) => v.s), t.negate]),
    [
      ['comm', ['sh', 'bash'], false],
      ['raddr', ['169.254.0.0/16', '::ffff:169.254.0.0/112', 'fd00::/8'], false],
      ['rport', ['80', '443'], false],
    ],
  );
  assert.deepEqual((deny('event.remoteAddress != "10.0.0.1"') as KernelSelector).terms, [{ field: 'raddr', values: [{ s: '10.0.0.1', exact: true, block: { family: 4, bytes: new Uint8Array([10, 0, 0, 1]), bits: 32 } }], negate: true }]);
  const refused = (condition: string, extra?: Record<string, unknown>) => (deny(condition, extra) as string[]).join('\n');
  assert.match(refused('event.remoteAddress == "fd00:0::1"'), /events write this address as "fd00::1"/);
  assert.match(refused('event.remoteAddress == "10.0.0.0/8"'), /is not an IP address \(use \.inCidr/);
  assert.match(refused('event.?remotePort.orValue(0) == 70000'), /a port is an integer literal from 1 to 65535/);
  assert.match(refused('event.remotePort == 22 && event.ret < 0'), /deny: the kernel cannot check .*it has no ret yet/);
  assert.match(refused('event.path == "/a"'), /event\.path on a connect \(the kernel has process\.comm, event\.remoteAddress, event\.remotePort, event\.remoteAddress \(a unix socket path\) there\)/);
  assert.match(refused('in_container'), /checks nothing but the container, and would deny every connect there/);
  assert.match(refused('event.remotePort == 22', { types: ['open'] }), /events of type open \(the kernel denies connect, bind\)/);
  assert.match(refused('event.remotePort == 22', { actions: [{ deny: {} }, { kill: { signal: 'SIGKILL', inKernel: true } }] }), /deny and an inKernel kill in one rule/);
  assert.match(refused('event.?remoteAddress.orValue("").inCidr(["10.0.0.0/40"])'), /"10\.0\.0\.0\/40" is not an IP address or CIDR block/);
});

test('deny rules on binds: the address and port asked for (event.localAddress, localPort); a rule about connects and binds tests what both have', () => {
  const deny = (condition: string, types = ['bind']) => compile(condition, { types, actions: [{ deny: {} }] });
  const sel = deny('!(process.comm in ["sshd"]) && event.?localPort.orValue(0) == 22 && event.?localAddress.orValue("").inCidr(["0.0.0.0/0", "::/0"])') as KernelSelector;
  assert.deepEqual([sel.denies, sel.ops], [true, ['bind']]);
  assert.deepEqual(
    sel.terms.map((t) => [t.field, t.values.map((v) => v.s), t.negate]),
    [
      ['comm', ['sshd'], true],
      ['lport', ['22'], false],
      ['laddr', ['0.0.0.0/0', '::ffff:0.0.0.0/96', '::/0'], false],
    ],
  );
  assert.deepEqual((deny('event.localAddress == "127.0.0.1"') as KernelSelector).terms[0]!.field, 'laddr');
  const refused = (condition: string, types?: string[]) => (deny(condition, types) as string[]).join('\n');
  assert.match(refused('event.remotePort == 22'), /event\.remotePort on a bind \(the kernel has process\.comm, event\.localAddress, event\.localPort there\)/);
  assert.match(refused('event.localPort == 22', ['connect']), /event\.localPort on a connect \(the kernel has process\.comm, event\.remoteAddress, event\.remotePort, event\.remoteAddress \(a unix socket path\) there\)/);
  assert.match(refused('event.localPort == 22', ['connect', 'bind']), /event\.localPort on a connect or bind \(the kernel has process\.comm there\)/);
  assert.deepEqual((deny('process.comm == "nc"', ['connect', 'bind']) as KernelSelector).ops, ['connect', 'bind']);
  assert.match(refused('event.localPort == 22 && event.ret < 0'), /a bind is denied before it is made: it has no ret yet/);
  const { maps, store } = fakeMaps([]);
  const f = new SyscallFilters(maps, 100);
  f.apply(normalizeSyscallConfig({ network: { bind: true } }));
  f.applyKill({ rules: [{ id: 4, signal: 0, selector: deny('event.localPort == 4444 && event.localAddress == "::1"') as KernelSelector }], dryRun: false, protect: [] });
  const port = store.get('killValues')!.get(64)!;
  assert.deepEqual([port.readUInt32LE(V.field.offset), port.readUInt16LE(V.prefix.offset), port.readUInt16LE(V.mask.offset)], [VIGIL_KILL_FIELD.LPORT, 4444, 0xffff]);
  const addr = store.get('killValues')!.get(65)!;
  assert.deepEqual([addr.readUInt32LE(V.field.offset), addr.readUInt16LE(V.prefix.offset), addr[V.prefix.offset + 4 + 15]], [VIGIL_KILL_FIELD.LADDR, 10, 1]);
  assert.equal(store.get('killRules')!.get(16)!.readBigUInt64LE(R.ops.offset), 1n << BigInt(VIGIL_SYS_OP.BIND));
});

test('an exec set counts its argv values into argv_count: the exec hook indexes argv only when some value is about it', () => {
  const { maps, store } = fakeMaps([]);
  const table = new KillTable(maps.killRules!, maps.killValues!);
  const sel = compile('process.comm == "nc" && process.argv.exists(a, a == "-e" || a.startsWith("--exec="))', { types: ['exec'] }) as KernelSelector;
  const state = table.write({ rules: [{ id: 7, signal: 9, selector: sel }], dryRun: false, protect: [] }, () => 0n);
  assert.deepEqual([state.values, state.argvValues], [3, 2]);
  const set = encodeKillState(state);
  assert.deepEqual([S.rule_count, S.value_count, S.argv_count].map((x) => set.readUInt32LE(x.offset)), [1, 3, 2]);
  const argv = store.get('killValues')!.get(64 + 2)!;
  assert.deepEqual([argv.readUInt32LE(V.field.offset), argv.readUInt32LE(V.term.offset), argv.subarray(V.prefix.offset, V.prefix.offset + 8).toString('latin1')], [VIGIL_KILL_FIELD.ARGV, 1, '--exec=\0']);
  assert.equal(argv[V.mask.offset + 7], 0, 'a prefix: its NUL is not compared');
  const exact = store.get('killValues')!.get(64 + 1)!;
  assert.deepEqual([...exact.subarray(V.mask.offset, V.mask.offset + 4)], [0xff, 0xff, 0xff, 0], 'a whole element: "-e" and its NUL');
  assert.equal(encodeKillState({ base: 0, rules: 1, values: 1, protect: [] }).readUInt32LE(S.argv_count.offset), 0);
});

test('deny values are written as the connect hooks compare them: family and the block\'s bits, a port in host order; deny_count in the set', () => {
  const { maps, store } = fakeMaps([]);
  const f = new SyscallFilters(maps, 100);
  f.apply(normalizeSyscallConfig({ network: { connect: true } }));
  const sel = compile('event.?remoteAddress.orValue("").inCidr(["10.1.0.0/16"]) && event.remotePort == 8080', { types: ['connect'], actions: [{ deny: {} }] }) as KernelSelector;
  f.applyKill({ rules: [{ id: 3, signal: 0, selector: sel }], dryRun: false, protect: [] });
  const addr = store.get('killValues')!.get(64)!;
  assert.equal(addr.readUInt32LE(V.field.offset), VIGIL_KILL_FIELD.RADDR);
  assert.deepEqual([...addr.subarray(V.prefix.offset, V.prefix.offset + SIZEOF.vigil_deny_addr)], [2, 0, 0, 0, 10, 1, 0, 0, ...new Array(16).fill(0)]);
  assert.deepEqual([...addr.subarray(V.mask.offset, V.mask.offset + SIZEOF.vigil_deny_addr)], [0xff, 0xff, 0, 0, 0xff, 0xff, ...new Array(18).fill(0)]);
  const mapped = store.get('killValues')!.get(65)!;
  assert.equal(mapped.readUInt16LE(V.prefix.offset), 10);
  assert.deepEqual([...mapped.subarray(V.mask.offset + 4, V.mask.offset + 20)].map((b) => b.toString(16)), [...new Array(14).fill('ff'), '0', '0']);
  const port = store.get('killValues')!.get(66)!;
  assert.deepEqual([port.readUInt32LE(V.field.offset), port.readUInt16LE(V.prefix.offset), port.readUInt16LE(V.mask.offset), port.readUInt16LE(V.mask.offset + 2)], [VIGIL_KILL_FIELD.RPORT, 8080, 0xffff, 0]);
  assert.equal(store.get('killRules')!.get(16)!.readUInt32LE(R.signal.offset), 0, 'a deny rule has no signal');
  const config = store.get('config')!.get(0)!;
  assert.deepEqual([S.rule_count, S.value_count, S.deny_count].map((x) => config.readUInt32LE(C.kill.offset + x.offset)), [1, 3, 1]);
  assert.deepEqual(f.killRules, { rules: 1, values: 3, scoped: 0, cgroups: 0, denies: 1 });
});

test('a connect record\'s deny member, and the alert\'s deny result', () => {
  const id = killRuleNumber('Metadata');
  const rec = (flags: number, rule = id) => {
    const b = Buffer.alloc(SIZEOF.net_event);
    b.writeUInt16LE(rule, NE.kill_rule.offset);
    return kernelDenyAt(new DataView(b.buffer, b.byteOffset, b.byteLength), 0, flags);
  };
  assert.deepEqual(rec(F.KILL_SENT), { rule: 'Metadata', result: 'denied' });
  assert.deepEqual(rec(F.KILL_DRY_RUN), { rule: 'Metadata', result: 'dry-run' });
  assert.equal(rec(F.KILL_FAILED), undefined, 'no deny fails');
  assert.equal(rec(F.KILL_SENT, 0), undefined);
  const e = new Enforcer({ enforce: true, hostPids: true, signal: () => assert.fail('a deny signals nothing') });
  const ev = { type: 'connect', deny: { rule: 'Metadata', result: 'denied' } } as unknown as OutputEvent;
  assert.deepEqual(e.run('Metadata', [{ deny: {} }], ev), [{ action: 'deny', inKernel: true, result: 'denied' }]);
  assert.deepEqual(e.run('Other', [{ deny: {} }], ev)[0]!.result, 'missed');
});

test('a datagram a deny rule matched (the sendmsg hooks) decodes as a connect by sendmsg, on no fd', () => {
  const b = Buffer.alloc(SIZEOF.net_event);
  b.writeUInt16LE(VIGIL_OPCODE.NET, EVENT_HEADER.opcode.offset);
  b.writeUInt32LE(SIZEOF.net_event, EVENT_HEADER.size.offset);
  b.writeUInt32LE(VIGIL_SYS_OP.CONNECT, NE.op.offset);
  b.writeInt32LE(VIGIL_SYS_NR.DATAGRAM, NE.nr.offset);
  b.writeBigInt64LE(-1n, NE.ret.offset);
  b.writeInt32LE(-1, NE.fd.offset);
  b.writeUInt32LE(F.DATAGRAM | F.KILL_SENT, NE.ev_flags.offset);
  b.writeUInt16LE(2, NE.family.offset);
  b.writeUInt16LE(2, NE.type.offset);
  b.writeUInt16LE(17, NE.protocol.offset);
  b.writeUInt16LE(53, NE.rport.offset);
  b.set([10, 0, 0, 53], NE.raddr.offset);
  b.writeUInt16LE(killRuleNumber('Resolver'), NE.kill_rule.offset);
  const ev = decodeNetEvent(new DataView(b.buffer, b.byteOffset, b.byteLength), 0, b.length) as NetEvent;
  assert.deepEqual(
    [ev.type, ev.syscall, ev.errno, ev.fd, ev.sockType, ev.protocol, ev.remoteAddress, ev.remotePort, ev.deny],
    ['connect', 'sendmsg', 'EPERM', -1, 'SOCK_DGRAM', 'udp', '10.0.0.53', 53, { rule: 'Resolver', result: 'denied' }],
  );
});
