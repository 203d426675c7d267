// `vigil ps`: live processes with their user (and container, once known), as a table, a tree, the ancestry
// of one process, JSON or Graphviz DOT. Standalone it reads a /proc snapshot; with an agent running it asks
// the agent, whose view includes lineage of processes that already exited and which mode it runs in.
import { ProcessCache } from '../process/cache.ts';
import { ancestryJSON, toDot, toJSON, type DumpOptions, type ProcessNode } from '../process/dump.ts';
import { HostFiles } from '../process/host-files.ts';
import { takeSnapshot } from '../process/procfs.ts';
import { Scrubber } from '../process/scrub.ts';
import type { ProcessEntry } from '../process/types.ts';
import { UserResolver } from '../process/users.ts';

export interface PsOptions {
  tree?: boolean;
  pid?: number;
  json?: boolean;
  dot?: boolean;
  argv?: boolean;
  procRoot?: string;
}

export interface PsSource {
  /** Where the data comes from, for the user: "snapshot of /proc", or the agent's resolver mode. */
  mode: string;
  cache: ProcessCache;
  userName: (e: ProcessEntry) => string | undefined;
  hostExe?: (e: ProcessEntry) => boolean | undefined;
}

/** Builds a cache from a /proc snapshot (no BPF, no agent). */
export function snapshotSource(procRoot?: string): PsSource {
  const cache = new ProcessCache({ scrubber: new Scrubber(), timers: false });
  for (const p of takeSnapshot({ procRoot })) cache.apply(p);
  const users = new UserResolver({ procRoot });
  const hostFiles = new HostFiles();
  return { mode: 'snapshot of /proc (no agent)', cache, userName: (e) => users.processUserName(e), hostExe: (e) => hostFiles.hostExeOf(e) };
}

function command(n: Pick<ProcessNode, 'argv' | 'comm' | 'exe'>, argv: boolean): string {
  if (argv && n.argv?.length) return n.argv.join(' ').replace(/\n/g, '\\n');
  return n.comm;
}

/** Renders `vigil ps` output. Throws VigilError-free: returns the text and an exit code. */
export function renderPs(src: PsSource, o: PsOptions, width = process.stdout.columns || 160): { text: string; code: number } {
  const dumpOpts = { argv: o.argv !== false, userName: src.userName, hostExe: src.hostExe };
  if (o.pid !== undefined) {
    const e = src.cache.byPid(o.pid);
    if (!e) return { text: `vigil ps: no process ${o.pid} (${src.mode})\n`, code: 1 };
    if (o.dot) return { text: `${toDot(src.cache, { ...dumpOpts, root: e.key })}\n`, code: 0 };
    const chain = ancestryJSON(src.cache, e.key, dumpOpts);
    if (o.json) return { text: `${JSON.stringify({ mode: src.mode, ancestry: chain, tree: o.tree ? toJSON(src.cache, { ...dumpOpts, root: e.key }) : undefined }, null, 2)}\n`, code: 0 };
    const lines = chain.map((n, i) => `${'  '.repeat(i)}${i ? '└─ ' : ''}${n.pid} ${n.user ?? n.uid ?? '?'} ${command(n, dumpOpts.argv)}`);
    if (o.tree) {
      const sub = toJSON(src.cache, { ...dumpOpts, root: e.key })[0];
      for (const c of sub?.children ?? []) lines.push(...treeLines(c, chain.length, dumpOpts.argv));
    }
    return { text: `${lines.join('\n')}\n`, code: 0 };
  }
  if (o.dot) return { text: `${toDot(src.cache, dumpOpts)}\n`, code: 0 };
  if (o.json) {
    const body = o.tree ? toJSON(src.cache, dumpOpts) : flat(src.cache, dumpOpts);
    return { text: `${JSON.stringify({ mode: src.mode, processes: body }, null, 2)}\n`, code: 0 };
  }
  if (o.tree) {
    const lines: string[] = [];
    for (const r of toJSON(src.cache, dumpOpts)) lines.push(...treeLines(r, 0, dumpOpts.argv));
    return { text: `${lines.map((l) => l.slice(0, width)).join('\n')}\n`, code: 0 };
  }
  const rows = flat(src.cache, dumpOpts).map((n) => [String(n.pid), String(n.ppid), n.user ?? String(n.uid ?? '?'), n.tty ?? '', command(n, dumpOpts.argv)]);
  return { text: `${table(['PID', 'PPID', 'USER', 'TTY', 'COMMAND'], rows, width)}\n`, code: 0 };
}

function flat(cache: ProcessCache, o: DumpOptions): Omit<ProcessNode, 'children'>[] {
  const out: Omit<ProcessNode, 'children'>[] = [];
  const visit = (n: ProcessNode) => {
    const { children, ...rest } = n;
    out.push(rest);
    children.forEach(visit);
  };
  toJSON(cache, o).forEach(visit);
  return out.sort((a, b) => a.pid - b.pid);
}

function treeLines(n: ProcessNode, depth: number, argv: boolean): string[] {
  const mark = n.reparentedFrom ? ' (reparented)' : '';
  const out = [`${'  '.repeat(depth)}${depth ? '└─ ' : ''}${n.pid} ${n.user ?? n.uid ?? '?'} ${command(n, argv)}${mark}`];
  for (const c of n.children) out.push(...treeLines(c, depth + 1, argv));
  return out;
}

function table(header: string[], rows: string[][], width: number): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (i < header.length - 1 ? r[i]!.length : 0))));
  const fmt = (r: string[]) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(w[i]!) : c)).join('  ').slice(0, width);
  return [fmt(header), ...rows.map(fmt)].join('\n');
}
