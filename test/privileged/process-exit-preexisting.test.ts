// Privileged: processes that started before the agent still get a complete exit event (Tetragon #902: no exit
// status for processes started before the agent). Two processes are started, under a parent of their own,
// before the real agent runs; while it runs one exits with a known code and the other is killed by a signal.
// Each exit event must carry the code or the signal, and the process's argv and lineage as the /proc snapshot
// found them at start-up. Checked in BPF mode and in the eBPF-less mode (proc connector + /proc).
// Needs root + BPF with BTF (the BPF case) or the proc connector (the eBPF-less case) + mkfifo.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseStat } from '../../src/process/procfs.ts';
import { startTestAgent } from '../helpers/agent.ts';
import { until } from '../helpers/family.ts';
import { privileged, tempDir } from '../helpers/privileged.ts';

const NEEDS = 'root + BPF with BTF (or the netlink proc connector) + mkfifo';

// The parent starts both children in the background and reports their pids; each child waits on its FIFO.
// `sh -c CMD NAME ARG` gives each child a recognisable argv: [sh, -c, CMD, NAME, ARG].
const EXIT_CMD = 'read x < "$1"; exit 42';
const KILL_CMD = 'read x < "$1"';
const PARENT_SH = `
sh -c '${EXIT_CMD}' vigil-902-exits "$1" &
echo "exits $!"
sh -c '${KILL_CMD}' vigil-902-killed "$2" &
echo "killed $!"
wait
`;

/** Start time (clock ticks) of a live process, from /proc. */
const startTicks = (pid: number) => parseStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))!.startTicks;

async function preexistingExit(t: TestContext, mode: 'bpf' | 'procfs'): Promise<void> {
  const dir = tempDir(t, 'vigil-902-');
  const fifoExit = path.join(dir, 'exit.fifo');
  const fifoKill = path.join(dir, 'kill.fifo');
  execFileSync('mkfifo', [fifoExit, fifoKill]);

  // ---- before the agent: a parent and its two children, exec'd and waiting ----------------------------
  const parent = spawn('sh', ['-c', PARENT_SH, 'vigil-902-parent', fifoExit, fifoKill], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pids: Record<string, number> = {};
  parent.stdout!.on('data', (d: Buffer) => {
    for (const line of d.toString().trim().split('\n')) {
      const [tag, pid] = line.split(' ');
      pids[tag!] = Number(pid);
    }
  });
  const parentExited = new Promise<void>((r) => parent.once('exit', () => r()));
  t.after(() => {
    for (const pid of [pids.exits, pids.killed, parent.pid]) {
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  const cmdline = (pid: number) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return '';
    }
  };
  await until(() => pids.exits !== undefined && pids.killed !== undefined, 'the parent to report its children');
  await until(() => cmdline(pids.exits!).includes('vigil-902-exits') && cmdline(pids.killed!).includes('vigil-902-killed'), 'both children to exec');
  const exitsPid = pids.exits!;
  const killedPid = pids.killed!;
  const ticks = { exits: startTicks(exitsPid), killed: startTicks(killedPid), parent: startTicks(parent.pid!) };

  // ---- the agent starts; only its snapshot knows these processes ---------------------------------------
  const ta = await startTestAgent(t, { config: { process: { mode }, events: { process: { exec: true, exit: true } }, containers: { enabled: false } } });
  assert.equal(ta.agent.status().mode.process, mode);
  const cached = ta.agent.processes!.cache.byPid(exitsPid);
  assert.equal(cached?.source, 'snapshot', 'known from the snapshot only');

  // ---- while it runs: one exits with 42, the other is killed by SIGTERM ------------------------------
  fs.writeFileSync(fifoExit, 'go\n');
  process.kill(killedPid, 'SIGTERM');
  const exitEv = await ta.sink.waitFor((e) => e.type === 'exit' && e.process?.pid === exitsPid, 'the exit of the process that exits 42');
  const killEv = await ta.sink.waitFor((e) => e.type === 'exit' && e.process?.pid === killedPid, 'the exit of the killed process');
  await parentExited;

  // The status: a code for one, a signal for the other, and the raw wait status.
  assert.equal(exitEv.exitCode, 42);
  assert.equal(exitEv.signal, undefined);
  assert.equal(exitEv.status, 42 << 8);
  assert.equal(killEv.signal, 15);
  assert.equal(killEv.exitCode, undefined);
  assert.equal(killEv.status, 15);

  // Who it was: the argv /proc showed at start-up, its identity, and its lineage up to this test.
  for (const [ev, name, cmd, fifo, pid, tk] of [
    [exitEv, 'vigil-902-exits', EXIT_CMD, fifoExit, exitsPid, ticks.exits],
    [killEv, 'vigil-902-killed', KILL_CMD, fifoKill, killedPid, ticks.killed],
  ] as const) {
    const p = ev.process!;
    assert.deepEqual(p.argv, ['sh', '-c', cmd, name, fifo], `${name}: argv from the snapshot`);
    assert.equal(p.comm, 'sh');
    assert.ok(p.exe?.endsWith('sh') || p.exe?.endsWith('dash'), `${name}: exe ${p.exe}`);
    assert.equal(p.key, `${pid}:${tk}`, `${name}: identified by pid and start time`);
    assert.equal(p.ppid, parent.pid);
    assert.equal(p.uid, 0);
    assert.deepEqual(p.unknown, undefined, `${name}: the snapshot knew everything about it`);
    assert.equal(ev.parent?.pid, parent.pid, `${name}: its parent`);
    assert.deepEqual(ev.parent?.argv, ['sh', '-c', PARENT_SH, 'vigil-902-parent', fifoExit, fifoKill], `${name}: the parent's argv`);
    assert.deepEqual(ev.ancestors?.slice(0, 2), [parent.pid, process.pid], `${name}: ancestry up to this test`);
  }
  // The cache agrees, and kept the parent's identity from the snapshot too.
  const entry = ta.agent.processes!.cache.get(`${exitsPid}:${ticks.exits}`)!;
  assert.equal(entry.exit?.exitCode, 42);
  assert.equal(entry.parentKey, `${parent.pid}:${ticks.parent}`);
}

test('BPF mode: processes started before the agent exit with their code or signal, argv and lineage', async (t) => {
  if (!privileged(t, NEEDS)) return;
  await preexistingExit(t, 'bpf');
});

test('eBPF-less mode: processes started before the agent exit with their code or signal, argv and lineage', async (t) => {
  if (!privileged(t, NEEDS)) return;
  await preexistingExit(t, 'procfs');
});
