// `vigil run`: loads the configuration (defaults <- file <- flags), starts the agent with progress on
// stderr, serves the API, and stops cleanly on SIGINT/SIGTERM (a second signal forces the exit). SIGHUP
// reads the file again (the flags still win) and applies it whole or not at all (Agent.reload), like
// `vigil reload`. SIGUSR1 reopens the file sinks' files, like `vigil reopen` (for logrotate; handling it also
// keeps Node's default for it, opening the inspector, out of a security agent). Exit codes: 0 after a clean
// stop, 1 when the agent failed, 2 for a bad configuration (nothing was loaded then).
import fs from 'node:fs';
import { formatAccounting } from '../agent/accounting.ts';
import { Agent } from '../agent/agent.ts';
import { ApiServer } from '../api/server.ts';
import { InvalidArgumentError } from '../bpf/errors.ts';
import { ConfigError, loadConfig, parseSet, type VigilConfig } from '../config/config.ts';
import { formatReload } from './status.ts';

export interface RunFlags {
  config?: string;
  set?: string[];
  socket?: string;
  listen?: string;
  tokenFile?: string;
  dataDir?: string;
  json?: boolean;
  stdout?: boolean;
  store?: string;
  processMode?: string;
  enableTag?: string[];
  disableTag?: string[];
}

/** Flags as config overrides (they win over the file). */
export function flagOverrides(f: RunFlags): unknown[] {
  const o: unknown[] = [];
  const agent: Record<string, unknown> = {};
  if (f.socket) agent.socket = f.socket;
  if (f.listen) agent.listen = f.listen;
  if (f.tokenFile) agent.tokenFile = f.tokenFile;
  if (f.dataDir) agent.dataDir = f.dataDir;
  if (Object.keys(agent).length) o.push({ agent });
  if (f.processMode) o.push({ process: { mode: f.processMode } });
  if (f.json) o.push({ sinks: { stdout: { format: 'json' } } });
  if (f.stdout === false) o.push({ sinks: { stdout: { enabled: false } } });
  if (f.store) o.push({ sinks: { store: { enabled: true, path: f.store } } });
  if (f.enableTag?.length) o.push({ rules: { enabledTags: f.enableTag } });
  if (f.disableTag?.length) o.push({ rules: { disabledTags: f.disableTag } });
  for (const s of f.set ?? []) o.push(parseSet(s));
  return o;
}

function token(cfg: VigilConfig): string {
  if (cfg.agent.token) return cfg.agent.token;
  if (!cfg.agent.tokenFile) return '';
  try {
    return fs.readFileSync(cfg.agent.tokenFile, 'utf8').trim();
  } catch (err) {
    throw new ConfigError('agent.tokenFile', [{ path: 'agent.tokenFile', message: (err as Error).message }]);
  }
}

export async function run(f: RunFlags): Promise<number> {
  // The file and flags, read now and again on each reload (SIGHUP, `vigil reload`).
  const load = () => loadConfig({ file: f.config, overrides: flagOverrides(f) });
  let cfg: VigilConfig;
  try {
    cfg = load();
  } catch (err) {
    process.stderr.write(`vigil: ${(err as Error).message}\n`);
    return 2;
  }
  const progress = (step: string) => process.stderr.write(`vigil: ${step}\n`);
  const agent = new Agent({ config: cfg, load, progress, warn: (m) => process.stderr.write(`vigil: warning: ${m}\n`) });
  let api: ApiServer | undefined;
  let stopping = false;
  let startup: Promise<void> | undefined;
  let done!: (code: number) => void;
  const finished = new Promise<number>((r) => (done = r));

  const stop = async (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    progress(`stopping (${why})`);
    // A signal while starting (Ctrl-C during the snapshot): let the start finish or fail first, so that
    // nothing is attached or listened on after the stop has run.
    await startup?.catch(() => undefined);
    await api?.close();
    await agent.stop();
    // Where every record of the run went, once nothing is in flight: the kernel's count against what each
    // sink delivered or dropped (key=value, for people and scripts alike).
    for (const line of formatAccounting(agent.accounting())) progress(`accounting: ${line}`);
    progress('stopped; nothing is left attached');
    done(code);
  };
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`vigil: ${sig} again: exiting now\n`);
      process.exit(1);
    }
    void stop(sig, 0);
  };
  // Handled from the start: SIGHUP's default would end the agent. Before the agent runs there is nothing to
  // apply a configuration to; the file is read when the signal comes.
  const onHangup = () => {
    if (agent.state !== 'running') {
      progress(`SIGHUP: the agent is ${agent.state}; not reloading`);
      return;
    }
    try {
      const r = agent.reload();
      progress(`configuration reloaded${formatReload(r)}`);
    } catch (err) {
      progress(`configuration NOT reloaded, the previous one still runs: ${(err as Error).message}`);
    }
  };
  const onUsr1 = () => {
    if (agent.state !== 'running') {
      progress(`SIGUSR1: the agent is ${agent.state}; no file to reopen`);
      return;
    }
    agent.reopenFiles().then(
      (names) => progress(names.length ? `SIGUSR1: reopened the files of ${names.join(', ')}` : 'SIGUSR1: no file sink to reopen'),
      (err: Error) => progress(`SIGUSR1: ${err.message}`),
    );
  };
  const listeners = () => {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGHUP', onHangup);
    process.removeListener('SIGUSR1', onUsr1);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onHangup);
  process.on('SIGUSR1', onUsr1);

  try {
    api = new ApiServer(agent, { socket: cfg.agent.socket, listen: cfg.agent.listen || undefined, token: token(cfg) || undefined });
    const server = api;
    startup = (async () => {
      // A socket another agent serves is found before the kernel is touched, not after every probe loaded.
      await server.preflight();
      if (stopping) return;
      await agent.start();
      if (stopping) return;
      await server.start();
    })();
    await startup;
  } catch (err) {
    if (stopping) {
      // Asked to stop while starting, and the start failed: the stop cleans up; the failure is the outcome.
      await finished;
      process.stderr.write(`vigil: ${(err as Error).message}\n`);
      listeners();
      return 1;
    }
    process.stderr.write(`vigil: ${(err as Error).message}\n`);
    await api?.close();
    await agent.stop();
    listeners();
    return err instanceof InvalidArgumentError ? 2 : 1;
  }
  if (stopping) {
    // Stopped during the start: never "running".
    const code = await finished;
    listeners();
    return code;
  }
  const st = agent.status();
  progress(`running: process ${st.mode.process}, channel ${st.mode.channel}, cgroups ${st.mode.cgroups}; ${st.process.live} processes, ${st.containers?.running ?? 0} containers; API at ${cfg.agent.socket}${cfg.agent.listen ? ` and ${cfg.agent.listen}` : ''}`);
  if (st.mode.fallbackReason) progress(`note: ${st.mode.fallbackReason}`);
  const code = await finished;
  listeners();
  return code;
}
