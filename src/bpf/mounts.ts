// bpffs and tracefs: pinning needs the first, tracepoints and kprobe_events need the second. Either may be
// unmounted on a fresh machine; mount them where missing (root only) and never fail just because we could not.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

export interface MountEntry {
  source: string;
  target: string;
  fstype: string;
}

/** Parses /proc/self/mounts (octal escapes in paths decoded). */
export function readMounts(text = fs.readFileSync('/proc/self/mounts', 'utf8')): MountEntry[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [source = '', target = '', fstype = ''] = line.split(' ');
      return { source: unescape(source), target: unescape(target), fstype };
    });
}

function mountedAt(fstype: string): string | undefined {
  try {
    return readMounts().find((m) => m.fstype === fstype)?.target;
  } catch {
    return undefined;
  }
}

function tryMount(fstype: string, target: string): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    fs.mkdirSync(target, { recursive: true });
    execFileSync('mount', ['-t', fstype, fstype, target], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The bpffs mount point, mounting /sys/fs/bpf when none is mounted. Undefined when that is impossible. */
export function ensureBpffs(): string | undefined {
  return mountedAt('bpf') ?? (tryMount('bpf', '/sys/fs/bpf') ? '/sys/fs/bpf' : undefined);
}

let tracefsChecked = false;
/** Mounts tracefs at /sys/kernel/tracing when it is nowhere mounted (once per process). */
export function ensureTracefs(): void {
  if (tracefsChecked) return;
  tracefsChecked = true;
  if (!tracefsRoot()) tryMount('tracefs', '/sys/kernel/tracing');
}

/** The tracefs root: a tracefs mount, or debugfs's tracing directory. */
export function tracefsRoot(): string | undefined {
  const t = mountedAt('tracefs');
  if (t) return t;
  const d = mountedAt('debugfs');
  if (d && fs.existsSync(`${d}/tracing/events`)) return `${d}/tracing`;
  return undefined;
}
