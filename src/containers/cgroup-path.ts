// Cgroup path -> container: which runtime made the cgroup, the container id, and the Kubernetes pod uid when
// the path carries one. Paths come from /proc/<pid>/cgroup, from walking /sys/fs/cgroup (any hierarchy,
// v1 or v2) and from cgroup_mkdir events. Both cgroupfs names (/docker/<id>) and systemd names
// (docker-<id>.scope) are understood, nested ones too (the innermost container wins). A path that names no
// container is a host cgroup: undefined.
import fs from 'node:fs';

export type ContainerRuntime = 'docker' | 'podman' | 'containerd' | 'cri-o' | 'garden' | 'lxc' | 'nspawn';

export interface ParsedCgroupPath {
  /** Undefined when only Kubernetes' layout is visible (/kubepods/.../pod<uid>/<id>): docker or containerd. */
  runtime: ContainerRuntime | undefined;
  containerId: string;
  /** Kubernetes pod uid (with dashes), from pod<uid> or kubepods-...-pod<uid>.slice. */
  podUid?: string;
  qos?: 'besteffort' | 'burstable' | 'guaranteed';
  /** podman pod id (/libpod_parent/<pod>/libpod-<id>, libpod-pod-<pod>.slice). */
  podmanPod?: string;
  /** containerd namespace (/<namespace>/<id>). */
  namespace?: string;
  /** The cgroup of the runtime's monitor (conmon), not of the container's own processes. */
  conmon?: boolean;
  /** The name was systemd-style (.scope/.slice). */
  systemd: boolean;
}

const HEX64 = /^[0-9a-f]{64}$/;
const UUID = /^[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}$/i;

/** containerd namespaces recognised in /<namespace>/<id> paths (ctr's default, Kubernetes', docker's, buildkit's). */
export const DEFAULT_CONTAINERD_NAMESPACES = ['default', 'k8s.io', 'moby', 'buildkit'];

/** Top-level cgroups that are never a containerd namespace. */
const NOT_A_NAMESPACE = new Set(['system.slice', 'user.slice', 'init.scope', 'machine.slice', 'kubepods', 'kubepods.slice', 'docker', 'libpod_parent', 'garden', 'lxc', 'podruntime', 'runtime']);

const SCOPES: [RegExp, ContainerRuntime, { conmon?: boolean }?][] = [
  [/^docker-([0-9a-f]{64})\.scope$/, 'docker'],
  [/^libpod-conmon-([0-9a-f]{64})(?:\.scope)?$/, 'podman', { conmon: true }],
  [/^libpod-([0-9a-f]{64})(?:\.scope)?$/, 'podman'],
  [/^crio-conmon-([0-9a-f]{64})(?:\.scope)?$/, 'cri-o', { conmon: true }],
  [/^crio-([0-9a-f]{64})(?:\.scope)?$/, 'cri-o'],
  [/^cri-containerd-([0-9a-f]{64})\.scope$/, 'containerd'],
  [/^cri-containerd[:-]([0-9a-f]{64})$/, 'containerd'],
];

function podFromSegment(seg: string): { podUid?: string; qos?: ParsedCgroupPath['qos'] } {
  // cgroupfs: "pod<uid>"; systemd: "kubepods-besteffort-pod<uid_with_underscores>.slice"
  let m = /^pod([0-9a-f-]{36})$/i.exec(seg);
  if (m) return { podUid: m[1]!.toLowerCase() };
  m = /^kubepods(?:-(besteffort|burstable))?-pod([0-9a-f_]{36})\.slice$/i.exec(seg);
  if (m) return { podUid: m[2]!.replace(/_/g, '-').toLowerCase(), qos: (m[1] as 'besteffort' | 'burstable' | undefined) ?? 'guaranteed' };
  return {};
}

/**
 * Parses a cgroup path ("/kubepods/besteffort/pod<uid>/<id>", "/sys/fs/cgroup/memory/docker/<id>",
 * "0::/docker/<id>" lines are accepted too). `containerdNamespaces` extends the /<ns>/<id> recognition.
 */
export function parseCgroupPath(input: string, containerdNamespaces: readonly string[] = DEFAULT_CONTAINERD_NAMESPACES): ParsedCgroupPath | undefined {
  let p = input.trim();
  const line = /^\d+:[^:]*:(\/.*)$/.exec(p); // a /proc/<pid>/cgroup line
  if (line) p = line[1]!;
  p = p.replace(/^\/sys\/fs\/cgroup(?:\/(?:unified|systemd|[a-z_,=]+))?(?=\/|$)/, ''); // a mounted hierarchy
  // containerd's systemd driver may write "<slice>:<prefix>:<name>" as one component: treat it as
  // "<slice>/<prefix>-<name>".
  const segs = p
    .split('/')
    .filter(Boolean)
    .flatMap((seg) => {
      const m = /^(.+\.slice):([^:]+):([^:]+)$/.exec(seg);
      return m ? [m[1]!, `${m[2]}-${m[3]}`] : [seg];
    });
  let found: ParsedCgroupPath | undefined;
  let pod: { podUid?: string; qos?: ParsedCgroupPath['qos'] } = {};
  let qos: ParsedCgroupPath['qos'];
  let kube = false;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    if (seg === 'kubepods' || seg === 'kubepods.slice') kube = true;
    if (kube && (seg === 'besteffort' || seg === 'burstable')) qos = seg;
    if (/^kubepods-(besteffort|burstable)\.slice$/.test(seg)) qos = seg.slice(9, -6) as 'besteffort' | 'burstable';
    const pd = podFromSegment(seg);
    if (pd.podUid) {
      pod = pd;
      kube = true;
      continue;
    }
    // systemd scopes and podman/crio names
    let matched = false;
    for (const [re, runtime, extra] of SCOPES) {
      const m = re.exec(seg);
      if (m) {
        found = { runtime, containerId: m[1]!, systemd: seg.endsWith('.scope'), ...extra };
        if (runtime === 'podman') {
          const prev = segs[i - 1];
          const podm = prev && (/^([0-9a-f]{64})$/.exec(prev) ?? /^libpod-pod-([0-9a-f]{64})\.slice$/.exec(prev));
          if (podm && segs[i - 2] !== 'kubepods') found.podmanPod = podm[1];
        }
        matched = true;
        break;
      }
    }
    if (matched) continue;
    // cgroupfs: /docker/<id>, /libpod_parent/[<pod>/]libpod-<id> handled above, /garden/<guid>, /lxc/<name>
    const next = segs[i + 1];
    if (seg === 'docker' && next && HEX64.test(next)) {
      found = { runtime: 'docker', containerId: next, systemd: false };
      i++;
      continue;
    }
    if (seg === 'garden' && next && (UUID.test(next) || /^[0-9a-z-]{8,}$/i.test(next))) {
      found = { runtime: 'garden', containerId: next, systemd: false };
      i++;
      continue;
    }
    if ((seg === 'lxc' || seg === 'lxc.payload') && next) {
      found = { runtime: 'lxc', containerId: next, systemd: false };
      i++;
      continue;
    }
    const lxcPayload = /^lxc\.payload\.(.+)$/.exec(seg);
    if (lxcPayload) {
      found = { runtime: 'lxc', containerId: lxcPayload[1]!, systemd: false };
      continue;
    }
    const nspawn = /^machine-(.+)\.scope$/.exec(seg);
    if (nspawn && segs[i - 1] === 'machine.slice') {
      found = { runtime: 'nspawn', containerId: nspawn[1]!.replace(/\\x2d/g, '-'), systemd: true };
      continue;
    }
    // Kubernetes cgroupfs: the container dir is the bare id under pod<uid>.
    if (pod.podUid && HEX64.test(seg)) {
      found = { runtime: undefined, containerId: seg, systemd: false };
      continue;
    }
    // containerd: /<namespace>/<id> at the top level.
    if (i === 0 && next && !NOT_A_NAMESPACE.has(seg) && !seg.endsWith('.slice') && !seg.endsWith('.scope')) {
      if (containerdNamespaces.includes(seg) && /^[A-Za-z0-9][A-Za-z0-9_.-]{0,75}$/.test(next)) {
        found = { runtime: 'containerd', containerId: next, namespace: seg, systemd: false };
        i++;
        continue;
      }
    }
  }
  if (!found) return undefined;
  if (pod.podUid) {
    found.podUid = pod.podUid;
    found.qos = pod.qos ?? qos ?? 'guaranteed';
  }
  return found;
}

/**
 * The container id of a task from its /proc/<pid> directory (reads <dir>/cgroup; the v2 line first, then any
 * v1 hierarchy). Undefined for host processes or when unreadable.
 */
export function getContainerIdFromTaskDir(taskDir: string, read: (p: string) => string = defaultRead): string | undefined {
  let text: string;
  try {
    text = read(`${taskDir}/cgroup`);
  } catch {
    return undefined;
  }
  const lines = text.split('\n').filter(Boolean);
  lines.sort((a, b) => Number(!a.startsWith('0::')) - Number(!b.startsWith('0::')));
  for (const l of lines) {
    const parsed = parseCgroupPath(l);
    if (parsed && !parsed.conmon) return parsed.containerId;
  }
  return undefined;
}

function defaultRead(p: string): string {
  return fs.readFileSync(p, 'utf8');
}
