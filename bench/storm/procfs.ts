// bench/storm: what /proc says about the consumers under test (CPU time, the syscall a process is blocked in)
// and where the peer tools live, for consumers that cannot report on themselves (opensnoop).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** On-CPU time of every thread of `pid` (ns, from schedstat), or NaN when it is gone. */
export function cpuNs(pid: number): number {
  try {
    let ns = 0;
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) ns += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    return ns;
  } catch {
    return NaN;
  }
}

/** The syscall number a process is blocked in, or -1 (running, or gone). */
export function blockedIn(pid: number): number {
  try {
    const s = fs.readFileSync(`/proc/${pid}/syscall`, 'utf8').trim();
    return s === 'running' ? -1 : Number(s.split(' ')[0]);
  } catch {
    return -1;
  }
}

// x86-64: poll 7, epoll_wait 232, epoll_pwait 281, epoll_pwait2 441. aarch64: ppoll 73, epoll_pwait 22.
export const WAIT_SYSCALLS = process.arch === 'arm64' ? new Set([22, 73, 441]) : new Set([7, 232, 281, 441]);

/** Where Debian's libbpf-tools put a tool (dpkg -L), else PATH, else undefined. */
export function findTool(name: string): string | undefined {
  try {
    const files = execFileSync('dpkg', ['-L', 'libbpf-tools'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n');
    const hit = files.find((f) => f.endsWith(`/${name}`) && /\/s?bin\//.test(f) && fs.existsSync(f));
    if (hit) return hit;
  } catch {
    // not a Debian system, or not installed: try PATH
  }
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const f = path.join(dir, name);
    if (dir && fs.existsSync(f)) return f;
  }
  return undefined;
}

/** libbpf-tools' package version, for the report. */
export function libbpfToolsVersion(): string {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', 'libbpf-tools'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || 'unknown version';
  } catch {
    return 'unknown version';
  }
}

/** Tracing links of other programs on the machine (anything on a syscall hook taxes every configuration). */
export function tracingLinks(): number {
  try {
    const links = JSON.parse(execFileSync('bpftool', ['-j', 'link', 'show'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }) || '[]') as { type?: string }[];
    return links.filter((l) => ['raw_tracepoint', 'tracing', 'perf_event', 'kprobe_multi', 'uprobe_multi'].includes(l.type ?? '')).length;
  } catch {
    return NaN;
  }
}

/**
 * IRQ-work interrupts so far on `cpu` (/proc/interrupts, IWI), or NaN. A BPF ring buffer or perf buffer
 * wakes its reader through IRQ work on the producer's CPU: the count per event is the wakeup policy, observed.
 */
export function irqWork(cpu: number): number {
  try {
    const line = fs.readFileSync('/proc/interrupts', 'utf8').split('\n').find((l) => l.trimStart().startsWith('IWI:'));
    const v = Number(line?.trim().split(/\s+/)[1 + cpu]);
    return Number.isFinite(v) ? v : NaN;
  } catch {
    return NaN;
  }
}
