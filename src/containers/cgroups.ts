// The host's cgroup layout and its cgroups. Detects pure v2, hybrid (v1 controllers plus cgroup2 mounted at
// /sys/fs/cgroup/unified, as on this machine) and v1-only hosts, picks the hierarchy whose ids events carry
// (v2 where it exists, else one v1 controller's), and walks every hierarchy at start so that containers
// that already run are known with their path, id (the inode of the cgroup directory) and creation time.
import fs from 'node:fs';
import path from 'node:path';
import { readMounts, type MountEntry } from '../bpf/mounts.ts';

export type CgroupLayout = 'v2' | 'hybrid' | 'v1';

export interface CgroupHierarchy {
  /** Mount point. */
  mount: string;
  version: 1 | 2;
  /** v1: the controllers ("memory", "cpu,cpuacct", "name=systemd"). */
  controllers: string[];
}

export interface CgroupLayoutInfo {
  layout: CgroupLayout;
  hierarchies: CgroupHierarchy[];
  /** The hierarchy event cgroup ids refer to. */
  primary: CgroupHierarchy;
  /**
   * For the BPF side (vigil_cgroup_v1_subsys): 0xffffffff to use the v2 id, else the v1 subsystem id of
   * the primary hierarchy (its index in /proc/cgroups).
   */
  v1SubsysId: number;
  /** The kernel's id of the primary hierarchy, as cgroup events report it: 0 for v2. */
  hierarchyId: number;
}

/** Preferred v1 controllers to key containers by on v1-only hosts (every runtime creates a cgroup there). */
const V1_PREFERENCE = ['pids', 'memory', 'cpuacct', 'cpu', 'devices'];

/** Detects the layout from /proc/self/mounts and /proc/cgroups. */
export function detectCgroupLayout(mounts: MountEntry[] = readMounts(), procCgroups = readOr('/proc/cgroups')): CgroupLayoutInfo {
  const hierarchies: CgroupHierarchy[] = [];
  for (const m of mounts) {
    if (m.fstype === 'cgroup2') hierarchies.push({ mount: m.target, version: 2, controllers: [] });
    else if (m.fstype === 'cgroup') hierarchies.push({ mount: m.target, version: 1, controllers: path.basename(m.target).split(',') });
  }
  const v2 = hierarchies.find((h) => h.version === 2);
  const v1 = hierarchies.filter((h) => h.version === 1);
  if (v2) return { layout: v1.length ? 'hybrid' : 'v2', hierarchies, primary: v2, v1SubsysId: 0xffffffff, hierarchyId: 0 };
  if (!v1.length) throw new Error('no cgroup hierarchy is mounted');
  // /proc/cgroups lists subsystems in the order of their ids (enum cgroup_subsys_id), each with the id of
  // the hierarchy it is mounted in.
  const rows = procCgroups
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(/\s+/));
  for (const want of V1_PREFERENCE) {
    const h = v1.find((x) => x.controllers.includes(want));
    const id = rows.findIndex((r) => r[0] === want);
    if (h && id >= 0) return { layout: 'v1', hierarchies, primary: h, v1SubsysId: id, hierarchyId: Number(rows[id]![1]) };
  }
  throw new Error(`no usable cgroup v1 controller among ${V1_PREFERENCE.join(', ')}`);
}

function readOr(p: string): string {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

export interface CgroupDir {
  /** The cgroup id: the inode of its directory. */
  id: number;
  /** Path below the hierarchy root, "/" for the root. */
  path: string;
  /** Creation time (statx birth time where the filesystem has it, else ctime), ms since epoch. */
  createdMs: number;
}

/** Every cgroup of one hierarchy, depth-first. Unreadable subtrees are skipped. */
export function walkHierarchy(mount: string, maxDepth = 32): CgroupDir[] {
  const out: CgroupDir[] = [];
  const visit = (abs: string, rel: string, depth: number) => {
    let st: fs.Stats;
    try {
      st = fs.statSync(abs);
    } catch {
      return;
    }
    out.push({ id: st.ino, path: rel || '/', createdMs: st.birthtimeMs > 0 ? st.birthtimeMs : st.ctimeMs });
    if (depth >= maxDepth) return;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(abs, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) visit(path.join(abs, e.name), `${rel}/${e.name}`, depth + 1);
  };
  visit(mount, '', 0);
  return out;
}
