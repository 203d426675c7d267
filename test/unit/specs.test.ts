// Spec parsing and editing without the kernel: hooks from section names, codecs, global encoding, map spec
// editors, syscall symbol resolution, verifier log summaries. Hostile input gets clear errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { array, bytes, cstring, struct, u16, u32, u64, encodeToBuffer } from '../../src/bpf/codec.ts';
import { summarizeVerifierLog, VerifierError } from '../../src/bpf/errors.ts';
import { resolveSyscallFunction } from '../../src/bpf/kallsyms.ts';
import { encodeGlobal } from '../../src/bpf/object.ts';
import { onlineCpus } from '../../src/bpf/program.ts';
import { readMounts } from '../../src/bpf/mounts.ts';
import { keyBytes, validateMapSpecEditor } from '../../src/manager/editors.ts';
import { Probe, resolveHook } from '../../src/manager/probe.ts';

test('hooks are parsed from libbpf section names', () => {
  const h = (section: string, spec: object = {}) => resolveHook({ fn: 'f', ...spec }, section);
  assert.deepEqual(h('tp/syscalls/sys_enter_openat'), { kind: 'tracepoint', target: 'syscalls/sys_enter_openat' });
  assert.deepEqual(h('tracepoint/sched/sched_process_exec'), { kind: 'tracepoint', target: 'sched/sched_process_exec' });
  assert.deepEqual(h('raw_tp/sys_enter'), { kind: 'raw_tp', target: 'sys_enter' });
  assert.deepEqual(h('tp_btf/sched_process_fork'), { kind: 'tp_btf', target: 'sched_process_fork' });
  assert.deepEqual(h('kprobe/do_unlinkat'), { kind: 'kprobe', target: 'do_unlinkat' });
  assert.deepEqual(h('kprobe', { syscall: 'openat' }), { kind: 'kprobe', target: 'syscall:openat' });
  assert.deepEqual(h('ksyscall/execve'), { kind: 'kprobe', target: 'syscall:execve' });
  assert.deepEqual(h('kretprobe/vfs_read'), { kind: 'kretprobe', target: 'vfs_read' });
  assert.deepEqual(h('uprobe//usr/lib/libssl.so.3:SSL_write'), { kind: 'uprobe', target: '/usr/lib/libssl.so.3:SSL_write' });
  assert.deepEqual(h('uretprobe', { binaryPath: '/bin/bash', symbol: 'readline' }), { kind: 'uretprobe', target: '/bin/bash:readline' });
  assert.deepEqual(h('uprobe', { binaryPath: '/bin/x', offset: 0x40 }), { kind: 'uprobe', target: '/bin/x:+0x40' });
  assert.deepEqual(h('uprobe//bin/x:main+0x10'), { kind: 'uprobe', target: '/bin/x:main+0x10' });
  assert.deepEqual(h('uprobe//bin/x:main+16'), { kind: 'uprobe', target: '/bin/x:main+0x10' });
  assert.deepEqual(h('uprobe//bin/x:main+16', { offset: 4 }), { kind: 'uprobe', target: '/bin/x:main+0x4' });
  assert.deepEqual(h('fentry/do_nanosleep'), { kind: 'fentry', target: 'do_nanosleep' });
  assert.deepEqual(h('fexit/do_nanosleep'), { kind: 'fexit', target: 'do_nanosleep' });
  assert.deepEqual(h('lsm/file_open'), { kind: 'lsm', target: 'file_open' });
  assert.deepEqual(h('cgroup_skb/egress', { cgroupPath: '/sys/fs/cgroup/x' }), { kind: 'cgroup', target: 'cgroup_skb/egress /sys/fs/cgroup/x' });
  assert.deepEqual(h('xdp', { ifname: 'lo' }), { kind: 'xdp', target: 'lo' });
  assert.deepEqual(h('tc', { ifname: 'lo', tcDirection: 'egress' }), { kind: 'tc', target: 'egress lo' });
  assert.deepEqual(h('iter/task'), { kind: 'iter', target: 'task' });
});

test('a hook that lacks what it needs is rejected with the missing field named', () => {
  assert.throws(() => resolveHook({ fn: 'f' }, 'uprobe'), /uprobe needs binaryPath/);
  assert.throws(() => resolveHook({ fn: 'f', binaryPath: '/bin/x' }, 'uprobe'), /needs a symbol or an offset/);
  assert.throws(() => resolveHook({ fn: 'f' }, 'kprobe'), /needs kernelFunction or syscall/);
  assert.throws(() => resolveHook({ fn: 'f' }, 'cgroup_skb/egress'), /cgroupPath/);
  assert.throws(() => resolveHook({ fn: 'f' }, 'socket'), /socketFd/);
  assert.throws(() => resolveHook({ fn: 'f' }, 'xdp'), /ifname or ifindex/);
  assert.throws(() => resolveHook({ fn: 'f' }, 'perf_event'), /perfEvent/);
  assert.throws(() => resolveHook({ fn: 'f', tracepoint: 'no-slash' }, 'tp'), /category\/name/);
  assert.throws(() => resolveHook({ fn: 'f' }, 'weird_section'), /cannot tell the hook type/);
  assert.throws(() => new Probe({ fn: '' }), /without fn/);
});

test('codecs round-trip and refuse values that do not fit', () => {
  const c = struct<{ pid: number; comm: string; ts: bigint; flags: number[] }>(32, {
    pid: [0, u32],
    comm: [4, cstring(16)],
    ts: [24, u64],
    flags: [20, array(u16, 2)],
  });
  const v = { pid: 42, comm: 'bash', ts: 123456789n, flags: [1, 2] };
  const b = encodeToBuffer(c, v);
  assert.equal(b.length, 32);
  assert.deepEqual(c.decode(b, 0), v);
  assert.throws(() => encodeToBuffer(cstring(4), 'toolong'), /does not fit char\[4\]/);
  assert.throws(() => encodeToBuffer(u32, 1.5), /integer/);
  assert.throws(() => encodeToBuffer(array(u32, 2), [1]), /expected 2 elements/);
  assert.throws(() => encodeToBuffer(bytes(2), new Uint8Array(3)), /does not fit 2/);
  assert.throws(() => struct(4, { a: [2, u32] }), /overflows/);
});

test('globals are encoded little-endian to their exact size', () => {
  assert.deepEqual([...encodeGlobal('x', 0x01020304, 4)], [4, 3, 2, 1]);
  assert.deepEqual([...encodeGlobal('x', 5, 8)], [5, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...encodeGlobal('x', -1, 2)], [0xff, 0xff]);
  assert.deepEqual([...encodeGlobal('x', true, 1)], [1]);
  assert.deepEqual([...encodeGlobal('x', 'ab', 4)], [0x61, 0x62, 0, 0]);
  assert.throws(() => encodeGlobal('x', 256, 1), /does not fit in 1 bytes/);
  assert.throws(() => encodeGlobal('x', 1n, 4), /bigint needs 8/);
  assert.throws(() => encodeGlobal('x', 'abcde', 4), /do not fit/);
  assert.throws(() => encodeGlobal('x', 1.5, 4), /not an integer/);
});

test('map spec editors and route keys are validated before anything loads', () => {
  assert.throws(() => validateMapSpecEditor('m', { maxEntries: 0 }), /maxEntries must be positive/);
  assert.throws(() => validateMapSpecEditor('m', { keySize: -1 }), /keySize must be a non-negative integer/);
  assert.throws(() => validateMapSpecEditor('m', { flags: 1.5 }), /flags/);
  validateMapSpecEditor('m', { type: 1, maxEntries: 10 });
  assert.deepEqual([...keyBytes(7, 4, 'r')], [7, 0, 0, 0]);
  assert.throws(() => keyBytes(7, 8, 'r'), /numeric key needs a 4-byte key map/);
  assert.throws(() => keyBytes(new Uint8Array(3), 4, 'r'), /key is 3 bytes/);
});

test('syscall names resolve to the symbol this kernel has', () => {
  const modern = 'ffffffff81379d40 T __x64_sys_getppid\nffffffff81379d50 T __ia32_sys_getppid\nffffffff81000000 t do_foo\n';
  assert.equal(resolveSyscallFunction('getppid', modern), '__x64_sys_getppid');
  assert.equal(resolveSyscallFunction('sys_getppid', modern), '__x64_sys_getppid');
  const old = 'ffffffff81379d40 T sys_getppid\n';
  assert.equal(resolveSyscallFunction('getppid', old), 'sys_getppid');
  assert.throws(() => resolveSyscallFunction('nosuch', modern), /syscall nosuch not found in \/proc\/kallsyms/);
});

test('a verifier log is summarised to the line that says why', () => {
  const log = [
    'func#0 @0',
    '0: R1=ctx(off=0,imm=0) R10=fp0',
    '0: (79) r2 = *(u64 *)(r1 +0)',
    '1: (71) r3 = *(u8 *)(r2 +0)',
    'R2 invalid mem access \'scalar\'',
    'processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0',
  ].join('\n');
  assert.equal(summarizeVerifierLog(log), "R2 invalid mem access 'scalar'");
  const e = new VerifierError('bad_prog', log);
  assert.equal(e.code, 'EVERIFIER');
  assert.equal(e.message, "program bad_prog rejected by the verifier: R2 invalid mem access 'scalar'");
  assert.equal(e.log, log);
  assert.ok(!e.message.includes('\n'));
  assert.match(summarizeVerifierLog(''), /no verifier log/);
});

test('cpu lists and mount tables parse', () => {
  assert.deepEqual(onlineCpus('0-3,6,8-9\n'), [0, 1, 2, 3, 6, 8, 9]);
  assert.deepEqual(onlineCpus('0\n'), [0]);
  const m = readMounts('bpf /sys/fs/bpf bpf rw 0 0\nnone /mnt/with\\040space tmpfs rw 0 0\n');
  assert.deepEqual(m, [
    { source: 'bpf', target: '/sys/fs/bpf', fstype: 'bpf' },
    { source: 'none', target: '/mnt/with space', fstype: 'tmpfs' },
  ]);
});
