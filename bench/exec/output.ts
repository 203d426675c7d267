// bench/exec: what the agent under test does with each exec event, shared by the live agent (agent.ts) and
// the synthetic churn (churn.ts) so that both measure the same work: enrich the event from the process cache
// (lineage, user and group names, creds, container ids; argv and env already scrubbed by the cache) into one JSON
// line, and append it to a file through a writer that batches lines and never blocks the loop per event.
import fs from 'node:fs';
import type { ExecEvent } from '../../src/events/types.ts';
import { processKey, type ProcessCache } from '../../src/process/cache.ts';
import type { UserResolver } from '../../src/process/users.ts';

/** The argv marker of bench/c/exec_storm.c: argv = ["true", MARKER, run, index]. */
export const MARKER = 'vigil-storm';

/**
 * The environment of the storm's and the herd's processes, and of the synthetic churn's exec records: a
 * shell-like one of 24 variables (~0.5 KiB), two of them secrets for the scrubber to mask. Fixed, so that the
 * numbers do not depend on who runs the benchmark (npm alone adds dozens of variables).
 */
export const BENCH_ENV: readonly string[] = [
  'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', 'LANG=C.UTF-8', 'TERM=xterm-256color',
  'USER=root', 'LOGNAME=root', 'SHELL=/bin/bash', 'PWD=/srv/app', 'OLDPWD=/root', 'SHLVL=2', 'HOSTNAME=build-7f9c2',
  'LC_ALL=C.UTF-8', 'EDITOR=vi', 'PAGER=less', 'LESS=-R', 'TZ=UTC', 'XDG_RUNTIME_DIR=/run/user/0', 'DEBIAN_FRONTEND=noninteractive',
  'CI=true', 'JOB_ID=81723', 'API_TOKEN=tok_3f9a8b7c6d5e4f3a2b1c', 'DB_PASSWORD=hunter2-but-longer', 'GIT_BRANCH=main', '_=/usr/bin/true',
];

/** BENCH_ENV as an environment object for spawn(). */
export function benchEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const kv of BENCH_ENV) {
    const i = kv.indexOf('=');
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return env;
}

/** Most ancestors listed per event (the chain to init is far shorter on a host). */
const MAX_ANCESTORS = 32;

/**
 * One exec event, enriched from the cache, as a JSON line. Call after the cache applied the event (the
 * resolver's onEvent does): the event's argv and env are scrubbed by then. Never throws on missing state: an
 * entry or a name that is not known is left out.
 */
export function execLine(cache: ProcessCache, users: UserResolver, ev: ExecEvent): string {
  const key = processKey(ev.pid, ev.startNs);
  const e = cache.get(key);
  const ancestors = e ? cache.ancestors(key, { max: MAX_ANCESTORS }) : [];
  const parent = ancestors[0];
  const ctx = { pid: ev.pid, mntns: ev.ns.mntns };
  const c = ev.creds;
  return `${JSON.stringify({
    type: 'exec',
    time_ns: ev.ktimeNs,
    exec_id: e?.image.execId,
    pid: ev.pid,
    tid: ev.tid,
    ppid: ev.ppid,
    parent_exec_id: parent?.image.execId,
    parent_exe: parent?.image.exePath,
    ancestors: ancestors.map((a) => a.pid),
    lineage_broken: e?.lineageBroken || undefined,
    user: users.userName(c.uid, ctx),
    uid: c.uid,
    euid: c.euid,
    group: users.groupName(c.gid, ctx),
    gid: c.gid,
    loginuid: c.loginuid,
    cap_effective: c.capEffective,
    exe: ev.exe.path,
    exe_ino: ev.exe.ino,
    filename: ev.filename,
    argv: ev.argv,
    argc: ev.argc,
    argv_truncated: ev.argvTruncated || undefined,
    env: ev.envRaw, // scrubbed by the cache: names, and allow-listed values (as the agent's output has it)
    comm: ev.comm,
    tty: ev.tty || undefined,
    container: { cgroup_id: ev.ns.cgroupId, pidns: ev.ns.pidns, mntns: ev.ns.mntns, nspid: ev.ns.nspid },
  })}\n`;
}

/**
 * Appends lines to a file in batches: lines are joined in memory and handed to a WriteStream once the oldest
 * pending line is `flushMs` old (50 ms by default), or as soon as 256 KiB are pending. The stream writes
 * asynchronously, so the loop never waits on the disk. Flushing once per drain pass instead cost a thread-pool
 * write and two extra loop wakeups per pass (~1 per exec at 1.4 k execs/s): measured at about a third of the
 * agent's CPU. The flush is done by the write that finds the batch due, inside the drain pass that is running
 * anyway; a timer (which costs a wakeup of its own, ~0.1 ms of CPU on these VMs) only flushes the tail when
 * lines stop coming.
 */
export class BatchWriter {
  readonly #stream: fs.WriteStream;
  #parts: string[] = [];
  #pending = 0;
  #timer: NodeJS.Timeout | undefined;
  /** When the oldest pending line was written (performance.now()). */
  #pendingSince = 0;
  readonly #flushMs: number;
  #flushes = 0;
  #bytes = 0;
  #lines = 0;
  readonly #flushCb = () => {
    this.#timer = undefined;
    this.flush();
  };

  constructor(file: string, o: { flushMs?: number } = {}) {
    this.#flushMs = o.flushMs ?? 50;
    this.#stream = fs.createWriteStream(file, { flags: 'w' });
    this.#stream.on('error', (err) => {
      process.stderr.write(`bench/exec writer: ${err.message}\n`);
    });
  }

  write(line: string): void {
    if (this.#parts.length === 0) this.#pendingSince = performance.now();
    this.#parts.push(line);
    this.#pending += line.length;
    this.#lines++;
    if (this.#pending >= 256 * 1024 || performance.now() - this.#pendingSince >= this.#flushMs) this.flush();
    else this.#timer ??= setTimeout(this.#flushCb, 2 * this.#flushMs);
  }

  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#parts.length === 0) return;
    const chunk = this.#parts.join('');
    this.#parts = [];
    this.#pending = 0;
    this.#flushes++;
    this.#bytes += chunk.length;
    this.#stream.write(chunk);
  }

  /** Flushes and closes the file; resolves once everything is on disk (in the page cache). */
  async close(): Promise<void> {
    this.flush();
    await new Promise<void>((resolve, reject) => {
      this.#stream.once('error', reject);
      this.#stream.end(() => resolve());
    });
  }

  stats(): { lines: number; bytes: number; flushes: number } {
    return { lines: this.#lines, bytes: this.#bytes, flushes: this.#flushes };
  }
}
