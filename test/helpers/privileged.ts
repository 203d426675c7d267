// Test gates for privileged tests. Each privileged test states what it needs. Outside CI a test whose
// needs are missing skips with that reason; with CI=true it fails instead, because CI's machine has
// everything. A kernel feature this kernel lacks (kprobes, fentry, LSM here) is different: the test must
// first prove that vigil reports it as a NotSupportedError, and only then skips, in CI too.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { NotSupportedError } from '../../src/bpf/errors.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const IN_CI = process.env.CI === 'true';

let cachedReason: string | null | undefined;

/** Why privileged tests cannot run here, or null when they can. */
export function missingPrivilege(): string | null {
  if (cachedReason !== undefined) return cachedReason;
  if (process.getuid?.() !== 0) cachedReason = 'not running as root';
  else if (!fs.existsSync('/sys/kernel/btf/vmlinux')) cachedReason = 'the kernel has no BTF (/sys/kernel/btf/vmlinux)';
  else if (!fs.existsSync(objectPath('test/bpf/manager_test'))) cachedReason = 'BPF objects are not built (run make build)';
  else cachedReason = null;
  return cachedReason;
}

/**
 * Gate for a privileged test: true when it may run. Skips (outside CI) or fails (CI=true) otherwise.
 * `needs` says what the test needs, e.g. "root + ring buffer (5.8)".
 */
export function privileged(t: TestContext, needs: string): boolean {
  const missing = missingPrivilege();
  if (!missing) return true;
  if (IN_CI) assert.fail(`privileged test needs ${needs}, but ${missing}; in CI every privileged test must run`);
  t.skip(`needs ${needs}: ${missing}`);
  return false;
}

/** A missing kernel feature: asserts that vigil said so with a NotSupportedError, then skips (also in CI). */
export function skipForKernel(t: TestContext, err: unknown, feature: string): void {
  assert.ok(err instanceof NotSupportedError, `expected NotSupportedError for ${feature}, got ${String(err)}`);
  assert.equal(err.feature, feature);
  t.skip(`this kernel lacks ${feature}: ${err.message}`);
}

/** Path of a compiled BPF object, e.g. objectPath('test/bpf/manager_test'). */
export function objectPath(rel: string): string {
  return path.join(ROOT, 'build', `${rel}.bpf.o`);
}

/** A temp directory removed when the test ends, even on failure. */
export function tempDir(t: TestContext, prefix = 'vigil-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function bpftoolJson(args: string[]): unknown {
  return JSON.parse(execFileSync('bpftool', ['-j', ...args], { encoding: 'utf8' }).trim() || '[]'); // nothing to show: no output at all (cgroup show)
}

/** The names of the BPF programs attached to a cgroup directory (bpftool cgroup show). */
export function cgroupProgramNames(cgroup: string): string[] {
  return (bpftoolJson(['cgroup', 'show', cgroup]) as { name?: string }[]).map((p) => p.name ?? '');
}

/**
 * Names of the programs cgroup links attach, on any cgroup. Unlike `bpftool cgroup show`, this sees attach
 * types newer than the bpftool (Debian 12's does not query cgroup/connect_unix).
 */
export function cgroupLinkProgramNames(): string[] {
  const names = new Map((bpftoolJson(['prog', 'show']) as { id: number; name?: string }[]).map((p) => [p.id, p.name ?? '']));
  return (bpftoolJson(['link', 'show']) as { type?: string; prog_id: number }[]).filter((l) => l.type === 'cgroup').map((l) => names.get(l.prog_id) ?? '');
}

/** Ids of every loaded BPF program, map and link on the machine. */
export function kernelObjectIds(): { progs: Set<number>; maps: Set<number>; links: Set<number> } {
  const ids = (v: unknown) => new Set((v as { id: number }[]).map((x) => x.id));
  return { progs: ids(bpftoolJson(['prog', 'show'])), maps: ids(bpftoolJson(['map', 'show'])), links: ids(bpftoolJson(['link', 'show'])) };
}

/**
 * Waits (bounded) until none of the given program/map/link ids exists any more, as bpftool sees it.
 * The kernel frees programs asynchronously after the last fd closes, so this polls; it is not a timing test.
 */
export async function assertGone(ids: { progs?: Iterable<number>; maps?: Iterable<number>; links?: Iterable<number> }, within = 10_000): Promise<void> {
  const deadline = Date.now() + within;
  let left: string[] = [];
  for (;;) {
    const now = kernelObjectIds();
    left = [
      ...[...(ids.progs ?? [])].filter((i) => now.progs.has(i)).map((i) => `prog ${i}`),
      ...[...(ids.maps ?? [])].filter((i) => now.maps.has(i)).map((i) => `map ${i}`),
      ...[...(ids.links ?? [])].filter((i) => now.links.has(i)).map((i) => `link ${i}`),
    ];
    if (left.length === 0) return;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`still loaded after stop: ${left.join(', ')}`);
}

/** Link ids that point at one of the given program ids. */
export function linksOfPrograms(progIds: Iterable<number>): number[] {
  const want = new Set(progIds);
  return (bpftoolJson(['link', 'show']) as { id: number; prog_id: number }[]).filter((l) => want.has(l.prog_id)).map((l) => l.id);
}

/**
 * The BPF objects a process (default: this one) holds an fd to, read from /proc/<pid>/fdinfo: exact even while
 * other processes load BPF concurrently. Compare before and after an operation to prove nothing leaked, or
 * record a child agent's objects while it runs to check with assertGone() that they went away with it.
 * Throws (ENOENT) when the process does not exist.
 */
export function heldBpfObjects(pid: number | 'self' = 'self'): { progs: number[]; maps: number[]; links: number[] } {
  const out = { progs: [] as number[], maps: [] as number[], links: [] as number[] };
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let target = '';
    let info = '';
    try {
      target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (!target.startsWith('anon_inode:bpf')) continue;
      info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile
    }
    const id = (key: string) => Number(new RegExp(`^${key}:\\s*(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
    if (target.includes('bpf-prog')) out.progs.push(id('prog_id'));
    else if (target.includes('bpf-map')) out.maps.push(id('map_id'));
    else if (target.includes('bpf_link')) out.links.push(id('link_id'));
  }
  for (const k of ['progs', 'maps', 'links'] as const) out[k].sort((a, b) => a - b);
  return out;
}
