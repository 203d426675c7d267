// Privileged: the agent's status and Prometheus metrics report what the kernel counts. With probe stats on,
// every program's run count and time appear once per program (a syscall exit handler serves many probes,
// and sums over series must be true totals), and `vigil status` shows the in-kernel filter counters.
// Needs root + BPF.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { test } from 'node:test';
import { runCli, startTestAgent } from '../helpers/agent.ts';
import { privileged } from '../helpers/privileged.ts';

const NEEDS = 'root + BPF';

function getText(socketPath: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

test('probe stats on: status and /metrics give each program its run count once; status shows the in-kernel filter counters', async (t) => {
  if (!privileged(t, NEEDS)) return;
  const ta = await startTestAgent(t, { config: { agent: { probeStats: true }, events: { files: { open: true, mkdir: true } }, filters: { pathPrefixes: ['/nonexistent-vigil-prefix'] } } });
  await ta.api();
  for (let i = 0; i < 5; i++) spawnSync('/bin/true');
  await ta.sink.waitFor((e) => e.type === 'exec' && e.process?.exe === '/usr/bin/true', 'an exec of true');

  const st = ta.agent.status();
  const proc = st.sensors.find((s) => s.name === 'process')!;
  const exec = proc.probes.find((p) => p.id.fn === 'exec_btf' || p.id.fn.startsWith('exec'))!;
  assert.ok(exec.stats && exec.stats.runCount >= 5, JSON.stringify(exec));
  assert.ok(exec.stats.runTimeNs > 0);

  const metrics = await getText(ta.socket, '/metrics');
  const runs = metrics.split('\n').filter((l) => l.startsWith('vigil_program_run_count{'));
  const programs = runs.map((l) => /program="([^"]+)"/.exec(l)![1]);
  assert.equal(new Set(programs).size, programs.length, `one series per program: ${programs.join(', ')}`);
  assert.ok(programs.includes('exit_file'), 'the shared exit program appears once');
  const execLine = runs.find((l) => l.includes(`program="${exec.id.fn}"`))!;
  assert.ok(Number(execLine.split(' ').at(-1)) >= 5, execLine);

  const text = await runCli(['status', '--socket', ta.socket]);
  assert.equal(text.status, 0, text.stderr);
  // Opens read their arguments at exit here: one program each. mkdirat and mkdir share exit_file.
  assert.match(text.stdout, /exit_openat\s+tracepoint syscalls\/sys_exit_openat\s+runs \d/);
  assert.match(text.stdout, /exit_file\[mkdirat\]\s+tracepoint syscalls\/sys_exit_mkdirat\s+runs \d/);
  assert.match(text.stdout, /exit_file\[mkdir\]\s+tracepoint syscalls\/sys_exit_mkdir\s+\(runs counted above: same program\)|exit_file\[mkdir\]\s+tracepoint syscalls\/sys_exit_mkdir$/m);
  const m = /in-kernel filters: entered ([\d,]+); dropped: .* path ([\d,]+)/.exec(text.stdout);
  assert.ok(m, text.stdout);
  assert.ok(Number(m[2]!.replace(/,/g, '')) > 0, 'opens outside the path prefix are dropped in the kernel and counted');
});
