// Dumps of the process tree: JSON (nested, for machines) and Graphviz DOT (for people). Both follow the
// current parent links (the tree as the kernel has it now) and show where a process was reparented from;
// argv is optional in both (already scrubbed: the cache never stores a secret).
import type { ProcessCache } from './cache.ts';
import type { ProcessEntry, ProcessKey } from './types.ts';

export interface DumpOptions {
  /** Include argv (scrubbed). */
  argv?: boolean;
  /** Include env names (and allow-listed values). */
  env?: boolean;
  /** Only this process and its descendants. */
  root?: ProcessKey;
  /** Include exited processes still retained. */
  exited?: boolean;
  /** uid -> user name, for display. */
  userName?: (e: ProcessEntry) => string | undefined;
  /** Whether the process's executable is the host's own file (HostFiles.hostExeOf); undefined: not known. */
  hostExe?: (e: ProcessEntry) => boolean | undefined;
}

export interface ProcessNode {
  pid: number;
  key: ProcessKey;
  ppid: number;
  comm: string;
  exe?: string;
  /** true: the executable is the host's file at that path (same device and inode), as events say (process.hostExe). */
  hostExe?: true;
  /** true: the executable is in its overlay's upper layer, written or changed in the container (process.exeUpperLayer). */
  exeUpperLayer?: true;
  argv?: string[];
  argvTruncated?: boolean;
  env?: readonly { name: string; value?: string }[];
  user?: string;
  uid?: number;
  tty?: string;
  execs: number;
  source: string;
  exited?: { exitCode?: number; signal?: number };
  reparentedFrom?: ProcessKey;
  lineageBroken?: boolean;
  unknown?: string[];
  children: ProcessNode[];
}

function node(e: ProcessEntry, o: DumpOptions): Omit<ProcessNode, 'children'> {
  const n: Omit<ProcessNode, 'children'> = { pid: e.pid, key: e.key, ppid: e.ppid, comm: e.image.comm, execs: e.execCount, source: e.source };
  if (e.image.exePath) {
    n.exe = e.image.exePath;
    if (o.hostExe?.(e)) n.hostExe = true; // as events carry it: present only when true
    if (e.image.exeUpperLayer) n.exeUpperLayer = true;
  }
  if (o.argv && e.image.argv) {
    n.argv = e.image.argv;
    if (e.image.argvTruncated) n.argvTruncated = true;
  }
  if (o.env && e.image.env) n.env = e.image.env;
  if (e.creds) {
    n.uid = e.creds.uid;
    const u = o.userName?.(e);
    if (u) n.user = u;
  }
  if (e.tty) n.tty = e.tty;
  if (e.exit) n.exited = { exitCode: e.exit.exitCode, signal: e.exit.signal };
  if (e.originalParentKey) n.reparentedFrom = e.originalParentKey;
  if (e.lineageBroken) n.lineageBroken = true;
  if (e.unknown.length) n.unknown = e.unknown;
  return n;
}

/** The tree as nested nodes: roots are processes whose parent is not in the cache (init, kthreadd, ...). */
export function toJSON(cache: ProcessCache, o: DumpOptions = {}): ProcessNode[] {
  const kids = new Map<ProcessKey | undefined, ProcessEntry[]>();
  const included: ProcessEntry[] = [];
  cache.walk((e) => {
    if (e.exit && !o.exited) return;
    included.push(e);
  });
  const keys = new Set(included.map((e) => e.key));
  for (const e of included) {
    const p = e.parentKey && keys.has(e.parentKey) ? e.parentKey : undefined;
    const list = kids.get(p);
    if (list) list.push(e);
    else kids.set(p, [e]);
  }
  for (const list of kids.values()) list.sort((a, b) => a.startNs - b.startNs || a.pid - b.pid);
  const build = (e: ProcessEntry, depth: number): ProcessNode => ({
    ...node(e, o),
    children: depth > 4096 ? [] : (kids.get(e.key) ?? []).map((c) => build(c, depth + 1)),
  });
  if (o.root) {
    const r = cache.get(o.root);
    return r ? [build(r, 0)] : [];
  }
  return (kids.get(undefined) ?? []).map((e) => build(e, 0));
}

/** One process and its ancestors, root first (for `vigil ps --tree --pid N`). */
export function ancestryJSON(cache: ProcessCache, key: ProcessKey, o: DumpOptions = {}): Omit<ProcessNode, 'children'>[] {
  const e = cache.get(key);
  if (!e) return [];
  return [...cache.ancestors(key).reverse(), e].map((x) => node(x, o));
}

const dotEscape = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** Graphviz DOT: a node per process, an edge from parent to child; dashed edges show original parents. */
export function toDot(cache: ProcessCache, o: DumpOptions = {}): string {
  const lines = ['digraph processes {', '  rankdir=LR;', '  node [shape=box, fontname="monospace", fontsize=10];'];
  const visit = (n: ProcessNode) => {
    const label = [`${n.pid} ${n.comm}`, n.user ?? (n.uid !== undefined ? `uid ${n.uid}` : ''), n.argv ? n.argv.join(' ').slice(0, 120) : ''].filter(Boolean).join('\n');
    const style = n.exited ? ', style=dashed' : n.lineageBroken ? ', color=red' : '';
    lines.push(`  "${n.key}" [label="${dotEscape(label)}"${style}];`);
    if (n.reparentedFrom) lines.push(`  "${n.reparentedFrom}" -> "${n.key}" [style=dashed, label="reparented"];`);
    for (const c of n.children) {
      lines.push(`  "${n.key}" -> "${c.key}";`);
      visit(c);
    }
  };
  for (const r of toJSON(cache, o)) visit(r);
  lines.push('}');
  return lines.join('\n');
}
