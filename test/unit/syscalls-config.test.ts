// The syscall sensor's configuration without the kernel: validation names the bad field, event types become
// the right op bits and probes, and the filter maps get the bytes the BPF side reads (offsets from events.h).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError } from '../../src/bpf/errors.ts';
import { SIZEOF, SYSCALL_FILTER_CONFIG, SYSCALL_PATH_PREFIX, VIGIL_SYS_CFG_FLAGS, VIGIL_SYS_COMM_MODE, VIGIL_SYS_NR, VIGIL_SYS_OP, VIGIL_SYS_SCOPE } from '../../src/events/layout.generated.ts';
import { probeKey } from '../../src/manager/probe.ts';
import { DEFAULT_LOG_PATHS, DEFAULT_SECRET_PATHS, DEFAULT_SENSITIVE_PATHS, normalizeSyscallConfig, type SyscallSensorConfig } from '../../src/syscalls/config.ts';
import { commKey, encodeFilterConfig, encodePrefix, SyscallFilters, type SyscallFilterMaps } from '../../src/syscalls/filters.ts';
import { syscallName, syscallNumber } from '../../src/syscalls/names.ts';
import { HOOKED_SYSCALLS, IO_URING_OPS, IO_URING_PROBES, syscallProbes, syscallSelectors } from '../../src/syscalls/sensor.ts';

const bit = (op: number) => 1n << BigInt(op);

test('defaults: nothing reported until asked, paths resolved, the agent excluded, sensitive prefixes set', () => {
  const c = normalizeSyscallConfig();
  assert.equal(c.ops.size, 0);
  assert.equal(c.enabledOps, 0n);
  // The default secret prefixes are all 8 bytes or longer: their heads settle most reads in one lookup.
  assert.equal(c.flags, VIGIL_SYS_CFG_FLAGS.RESOLVE | VIGIL_SYS_CFG_FLAGS.SECRET_HEADS);
  assert.equal(normalizeSyscallConfig({ filters: { secretPaths: ['/etc/', '/root/.ssh/'] } }).flags, VIGIL_SYS_CFG_FLAGS.RESOLVE, 'a prefix under 8 bytes: no heads');
  assert.equal(c.scope, 'all');
  assert.equal(c.excludeSelf, true);
  assert.equal(c.maxPathBytes, 4096);
  assert.deepEqual(c.sensitivePaths, DEFAULT_SENSITIVE_PATHS);
  assert.ok(c.sensitivePaths.includes('/etc/') && c.sensitivePaths.includes('/root/.ssh/'));
  assert.deepEqual(c.logPaths, ['/var/log/']);
  assert.deepEqual(normalizeSyscallConfig({ filters: { logPaths: [] } }).logPaths, [], 'no log prefixes: no truncation is sensitive by itself');
});

test('event types become op bits; groups can be turned on whole; subsets set their config flags', () => {
  const all = normalizeSyscallConfig({ files: true, network: true, other: true });
  assert.equal(all.ops.size, 23);
  const f = normalizeSyscallConfig({ files: { open: true, rename: true }, network: { tcpState: true }, other: { ptrace: 'attach', bpf: 'load' } });
  assert.deepEqual([...f.ops].sort(), ['bpf', 'open', 'ptrace', 'rename', 'tcp_state']);
  assert.equal(f.enabledOps, bit(VIGIL_SYS_OP.OPEN) | bit(VIGIL_SYS_OP.RENAME) | bit(VIGIL_SYS_OP.TCP_STATE) | bit(VIGIL_SYS_OP.PTRACE) | bit(VIGIL_SYS_OP.BPF));
  assert.equal(f.flags, VIGIL_SYS_CFG_FLAGS.RESOLVE | VIGIL_SYS_CFG_FLAGS.PTRACE_ATTACH | VIGIL_SYS_CFG_FLAGS.BPF_LOAD | VIGIL_SYS_CFG_FLAGS.SECRET_HEADS);
  // The quiet defaults: sensitive writes put every file type not on in full in restricted mode (their
  // probes attached, only sensitive modifications reported), secret reads put opens in it.
  const s = normalizeSyscallConfig({ files: { sensitiveWrites: true }, filters: { resolvePaths: false } });
  assert.deepEqual([...s.ops].sort(), ['chmod', 'chown', 'link', 'mkdir', 'open', 'rename', 'rmdir', 'symlink', 'truncate', 'unlink']);
  assert.equal(s.flags, VIGIL_SYS_CFG_FLAGS.SENSITIVE_WRITES | VIGIL_SYS_CFG_FLAGS.SECRET_HEADS);
  assert.equal(s.restrictedOps, s.enabledOps, 'every type restricted');
  const r = normalizeSyscallConfig({ files: { secretReads: true } });
  assert.deepEqual([...r.ops], ['open']);
  assert.equal(r.restrictedOps, bit(VIGIL_SYS_OP.OPEN));
  assert.equal(r.flags & (VIGIL_SYS_CFG_FLAGS.SECRET_READS | VIGIL_SYS_CFG_FLAGS.SENSITIVE_WRITES), VIGIL_SYS_CFG_FLAGS.SECRET_READS);
  assert.deepEqual(r.secretPaths, DEFAULT_SECRET_PATHS);
  const both = normalizeSyscallConfig({ files: { open: true, unlink: true, sensitiveWrites: true, secretReads: true } });
  assert.equal(both.restrictedOps, bit(VIGIL_SYS_OP.RMDIR) | bit(VIGIL_SYS_OP.RENAME) | bit(VIGIL_SYS_OP.CHMOD) | bit(VIGIL_SYS_OP.CHOWN) | bit(VIGIL_SYS_OP.MKDIR) | bit(VIGIL_SYS_OP.TRUNCATE) | bit(VIGIL_SYS_OP.LINK) | bit(VIGIL_SYS_OP.SYMLINK), 'a type on in full is reported whole (sensitive and secret ones flagged)');
  assert.equal(normalizeSyscallConfig({ files: true }).restrictedOps, 0n);
});

test('bad configuration is refused with the field named', () => {
  const bad: [unknown, RegExp][] = [
    [{ file: true }, /syscalls\.file is not a known option/],
    [{ files: { opn: true } }, /syscalls\.files\.opn is not a known option/],
    [{ files: 'yes' }, /syscalls\.files must be a boolean or an object/],
    [{ network: { connect: 1 } }, /syscalls\.network\.connect must be true or false/],
    [{ other: { ptrace: 'all' } }, /syscalls\.other\.ptrace must be true or false or "attach"/],
    [{ filters: { comm: { include: ['ok', 'this-name-is-too-long'] } } }, /syscalls\.filters\.comm\.include\[1\] .* 21 bytes/],
    [{ filters: { comm: { include: ['sh'], exclude: ['sh'] } } }, /syscalls\.filters\.comm names "sh" in both/],
    [{ filters: { comm: { exclude: [''] } } }, /filters\.comm\.exclude\[0\] is empty/],
    [{ filters: { comm: ['sh'] } }, /syscalls\.filters\.comm must be an object/],
    [{ filters: { comm: { include: 'sh' } } }, /filters\.comm\.include must be an array/],
    [{ filters: { pathPrefixes: ['etc/'] } }, /filters\.pathPrefixes\[0\] \("etc\/"\) must be an absolute path/],
    [{ filters: { pathPrefixes: Array.from({ length: 17 }, (_, i) => `/p${i}/`) } }, /filters\.pathPrefixes has 17 entries; at most 16/],
    [{ filters: { sensitivePaths: [`/${'x'.repeat(300)}`] } }, /filters\.sensitivePaths\[0\] is longer than 256 bytes/],
    [{ filters: { scope: 'pods' } }, /filters\.scope must be "all", "containers" or "host"/],
    [{ filters: { excludeSelf: 'no' } }, /filters\.excludeSelf must be a boolean/],
    [{ filters: { nope: 1 } }, /syscalls\.filters\.nope is not a known option/],
    [{ files: { sensitiveWrites: true }, filters: { sensitivePaths: [] } }, /files\.sensitiveWrites needs at least one entry/],
    [{ files: { secretReads: true }, filters: { secretPaths: [] } }, /files\.secretReads needs at least one entry in filters\.secretPaths/],
    [{ filters: { secretPaths: ['shadow'] } }, /filters\.secretPaths\[0\] \("shadow"\) must be an absolute path/],
    [{ filters: { logPaths: ['var/log/'] } }, /filters\.logPaths\[0\] \("var\/log\/"\) must be an absolute path/],
    [{ maxPathBytes: 8192 }, /syscalls\.maxPathBytes must be an integer between 2 and 4096/],
    [{ maxPathBytes: 1.5 }, /syscalls\.maxPathBytes/],
    [{ openArgs: 'later' }, /syscalls\.openArgs must be "auto", "exit" or "entry", got "later"/],
  ];
  for (const [cfg, re] of bad) {
    assert.throws(() => normalizeSyscallConfig(cfg as SyscallSensorConfig), (e: unknown) => e instanceof InvalidArgumentError && re.test((e as Error).message), JSON.stringify(cfg));
  }
});

test('probes: an entry and an exit per syscall; selectors attach only what enabled event types need', () => {
  const probes = syscallProbes();
  const keys = probes.map((p) => probeKey({ fn: p.fn, uid: p.uid ?? '' }));
  assert.equal(new Set(keys).size, keys.length, 'probe ids are unique');
  for (const s of HOOKED_SYSCALLS) {
    assert.ok(probes.some((p) => p.fn === s.enter), `${s.tp}: entry program`);
    const exit = probes.find((p) => p.fn === s.exit && p.uid === s.tp);
    assert.equal(exit?.tracepoint, `syscalls/sys_exit_${s.tp}`);
    // Tracepoints are named after the kernel's SYSCALL_DEFINE: umount2's is "umount".
    assert.ok(syscallNumber(s.tp === 'umount' ? 'umount2' : s.tp, 'x86_64') !== undefined, `${s.tp} is an x86_64 syscall`);
  }
  assert.deepEqual(syscallSelectors(new Set()), [], 'nothing enabled: nothing attached');
  const ids = (ops: string[]) => syscallSelectors(new Set(ops as never)).map((s) => ({ kind: s.constructor.name, ids: s.probeIds().map(probeKey).sort() }));
  assert.deepEqual(ids(['rmdir']), [
    { kind: 'AllOf', ids: ['enter_unlinkat#', 'exit_file#unlinkat'] },
    { kind: 'BestEffort', ids: ['enter_rmdir#', 'exit_file#rmdir'] },
  ]);
  const net = ids(['tcp_state', 'module_load']);
  assert.deepEqual(net[0], { kind: 'AllOf', ids: ['tcp_state#'] });
  assert.deepEqual(net[1]!.ids, ['enter_finit_module#', 'enter_init_module#', 'exit_sys#finit_module', 'exit_sys#init_module', 'module_load#'], 'module hooks are best effort: kernels without modules lack them');
  // unlinkat serves two event types but is attached once.
  const both = ids(['unlink', 'rmdir']);
  assert.equal(both[0]!.ids.filter((k) => k === 'enter_unlinkat#').length, 1);
  // Opens: an entry and an exit each, or with openArgs "exit" one program at the exit; other syscalls keep both.
  // Deny hooks: each kind only for the calls deny rules are about (a bind rule alone costs connects nothing).
  const hooks = (connect: boolean, bind: boolean) => syscallSelectors(new Set(['connect', 'bind'] as never), 'entry', { connect, bind, unix: false })[0]!.probeIds().map((id) => id.fn).filter((k) => k.startsWith('deny_')).sort();
  assert.deepEqual(hooks(false, false), []);
  assert.deepEqual(hooks(false, true), ['deny_bind4', 'deny_bind6']);
  assert.deepEqual(hooks(true, false), ['deny_connect4', 'deny_connect6', 'deny_sendmsg4', 'deny_sendmsg6']);
  assert.equal(hooks(true, true).length, 6);
  const opens = (mode: 'exit' | 'entry') => syscallSelectors(new Set(['open', 'mkdir'] as never), mode).map((s) => s.probeIds().map(probeKey).sort());
  assert.deepEqual(opens('entry'), [
    ['enter_mkdirat#', 'enter_openat#', 'exit_file#mkdirat', 'exit_file#openat'],
    ['enter_creat#', 'enter_mkdir#', 'enter_open_legacy#', 'enter_openat2#', 'exit_file#creat', 'exit_file#mkdir', 'exit_file#open', 'exit_file#openat2'],
  ]);
  assert.deepEqual(opens('exit'), [
    ['enter_mkdirat#', 'exit_file#mkdirat', 'exit_openat#'],
    ['enter_mkdir#', 'exit_creat#', 'exit_file#mkdir', 'exit_open_legacy#', 'exit_openat2#'],
  ]);
  for (const s of HOOKED_SYSCALLS.filter((x) => x.ops.includes('open'))) assert.ok(s.exitOnly && probes.some((p) => p.fn === s.exitOnly), `${s.tp}: exit-only program`);
  // io_uring: its three programs, together and required, where the kernel has their tracepoints and an event
  // type they report is on; never for event types no io_uring request makes.
  const iou = (ops: string[], on: boolean) => syscallSelectors(new Set(ops as never), 'exit', undefined, on).flatMap((s) => s.probeIds().map((id) => id.fn)).filter((fn) => fn.startsWith('iou_')).sort();
  for (const op of IO_URING_OPS) assert.deepEqual(iou([op], true), [...IO_URING_PROBES].sort(), op);
  assert.deepEqual(iou(['open'], false), [], 'not where the kernel lacks them');
  assert.deepEqual(iou(['ptrace', 'chmod', 'chown', 'tcp_state'], true), []);
  assert.equal(syscallSelectors(new Set(['open'] as never), 'exit', undefined, true)[0]!.constructor.name, 'AllOf');
  for (const fn of IO_URING_PROBES) assert.ok(probes.some((p) => p.fn === fn), `${fn} is a probe of the object`);
  assert.equal(syscallName(VIGIL_SYS_NR.IO_URING, 'x86_64'), 'io_uring');
});

test('filter maps get the bytes the kernel reads', () => {
  const c = normalizeSyscallConfig({ files: { open: true }, filters: { scope: 'containers', comm: { include: ['nginx'], exclude: ['bash'] }, pathPrefixes: ['/etc/', '/var/'], sensitivePaths: ['/root/'] } });
  const b = encodeFilterConfig(c, 4321);
  assert.equal(b.length, SIZEOF.syscall_filter_config);
  assert.equal(b.readBigUInt64LE(SYSCALL_FILTER_CONFIG.enabled_ops.offset), bit(VIGIL_SYS_OP.OPEN));
  assert.equal(b.readUInt32LE(SYSCALL_FILTER_CONFIG.self_tgid.offset), 4321);
  assert.equal(b.readUInt32LE(SYSCALL_FILTER_CONFIG.scope.offset), VIGIL_SYS_SCOPE.CONTAINERS);
  assert.equal(b.readUInt32LE(SYSCALL_FILTER_CONFIG.comm_mode.offset), VIGIL_SYS_COMM_MODE.INCLUDE | VIGIL_SYS_COMM_MODE.EXCLUDE);
  assert.equal(b.readUInt32LE(SYSCALL_FILTER_CONFIG.prefix_count.offset), 2);
  assert.equal(b.readUInt32LE(SYSCALL_FILTER_CONFIG.sensitive_count.offset), 1);
  assert.equal(b.readUInt32LE(SYSCALL_FILTER_CONFIG.flags.offset), VIGIL_SYS_CFG_FLAGS.RESOLVE | VIGIL_SYS_CFG_FLAGS.SECRET_HEADS);
  assert.equal(b.readUInt32LE(SYSCALL_FILTER_CONFIG.secret_count.offset), DEFAULT_SECRET_PATHS.length);
  assert.equal(b.readUInt32LE(SYSCALL_FILTER_CONFIG.log_count.offset), DEFAULT_LOG_PATHS.length);
  assert.equal(b.readBigUInt64LE(SYSCALL_FILTER_CONFIG.restricted_ops.offset), 0n);
  const quiet = encodeFilterConfig(normalizeSyscallConfig({ files: { secretReads: true }, filters: { secretPaths: ['/srv/keys/'] } }), 1);
  assert.equal(quiet.readBigUInt64LE(SYSCALL_FILTER_CONFIG.restricted_ops.offset), bit(VIGIL_SYS_OP.OPEN));
  assert.equal(quiet.readUInt32LE(SYSCALL_FILTER_CONFIG.secret_count.offset), 1);
  const noSelf = encodeFilterConfig(normalizeSyscallConfig({ filters: { excludeSelf: false } }), 4321);
  assert.equal(noSelf.readUInt32LE(SYSCALL_FILTER_CONFIG.self_tgid.offset), 0);

  const p = encodePrefix('/etc/ssh/');
  assert.equal(p.length, SIZEOF.syscall_path_prefix);
  assert.equal(p.readUInt32LE(SYSCALL_PATH_PREFIX.len.offset), 9);
  assert.equal(p.toString('utf8', SYSCALL_PATH_PREFIX.prefix.offset, SYSCALL_PATH_PREFIX.prefix.offset + 9), '/etc/ssh/');
  assert.equal(p[SYSCALL_PATH_PREFIX.prefix.offset + 9], 0, 'zero-padded');
  const mask = p.subarray(SYSCALL_PATH_PREFIX.mask.offset, SYSCALL_PATH_PREFIX.mask.offset + SYSCALL_PATH_PREFIX.mask.size);
  assert.equal(mask.indexOf(0), 9, 'one 0xff per prefix byte');
  assert.ok(mask.subarray(0, 9).every((x) => x === 0xff) && mask.subarray(9).every((x) => x === 0));
  assert.equal(encodePrefix('/é/').readUInt32LE(0), 4, 'lengths are bytes, not characters');

  assert.deepEqual([...commKey('sh')], [0x73, 0x68, ...Array(14).fill(0)]);
  assert.equal(commKey('exactly15chars!').length, 16);
  assert.equal(commKey('exactly15chars!')[15], 0, 'a NUL always ends the key, as bpf_get_current_comm writes it');
});

test('an update that grows one prefix list and shrinks another writes each in its safe order around the config', () => {
  // Maps that record their writes: a list's new slots must be written before the config that counts them, and
  // a list's count must drop (in the config) before its slots are rewritten.
  const log: string[] = [];
  const fake = (name: string) => {
    const m = new Map<string, Buffer>();
    return {
      update: (k: Buffer, v: Buffer) => {
        log.push(name);
        m.set(k.toString('hex'), v);
      },
      delete: (k: Buffer) => m.delete(k.toString('hex')),
      keys: () => [...m.keys()].map((h) => Buffer.from(h, 'hex')),
      lookup: () => undefined,
    };
  };
  const names = ['config', 'comm', 'prefixes', 'sensitive', 'secret', 'secretDirs', 'log', 'stats'] as const;
  const maps = Object.fromEntries(names.map((n) => [n, fake(n)])) as unknown as SyscallFilterMaps;
  const f = new SyscallFilters(maps, 1);
  f.apply(normalizeSyscallConfig({ files: { open: true }, filters: { pathPrefixes: ['/a/', '/b/'], sensitivePaths: ['/x/'] } }));
  log.length = 0;
  f.apply(normalizeSyscallConfig({ files: { open: true }, filters: { pathPrefixes: ['/a/'], sensitivePaths: ['/x/', '/y/'] } }));
  const config = log.indexOf('config');
  assert.ok(config > 0);
  assert.ok(log.lastIndexOf('sensitive') < config, `the growing list before the config: ${log.join(' ')}`);
  assert.ok(log.indexOf('prefixes') > config, `the shrinking list after it: ${log.join(' ')}`);
});
