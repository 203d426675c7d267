// vigil's command line (commander). Each command has --help. Exit codes: 0 success, 1 failure (including
// "no agent running" for commands that need one), 2 bad usage or configuration.
import { Command, InvalidArgumentError as CliArgError, Option } from 'commander';
import { AgentUnavailableError, ApiClientError, apiGet, apiPost } from '../api/client.ts';
import { parseSince } from '../api/server.ts';
import type { AgentStatus, ReloadResult } from '../agent/agent.ts';
import { renderPs, snapshotSource } from './ps.ts';
import { run } from './run.ts';
import { formatReload, formatStatus } from './status.ts';
import { eventsCommand } from './events.ts';
import { containersCommand } from './containers.ts';
import { rulesCheckCommand, rulesListCommand } from './rules.ts';

const DEFAULT_SOCKET = '/run/vigil/vigil.sock';

/** Bad usage found after parsing (options that exclude each other): printed by main(), exit code 2. */
class UsageError extends Error {}

// Option parsers: a bad value is a usage error (exit 2); commander's message names the option and the value.

/** An integer option in [min, max]. */
function int(min = 1, max = 2 ** 31 - 1) {
  return (v: string): number => {
    if (!/^\d{1,10}$/.test(v) || Number(v) < min || Number(v) > max) throw new CliArgError(`Expected an integer from ${min} to ${max}.`);
    return Number(v);
  };
}

/** --since: checked here, so that a typo is a usage error before any agent or store is asked. */
function since(v: string): string {
  try {
    parseSince(v);
  } catch (err) {
    throw new CliArgError(`Expected ${(err as Error).message.replace(/^since: expected /, '').replace(/, got .*$/, '')}.`);
  }
  return v;
}

/** --type: comma-separated event types, as the API takes them. */
function types(v: string): string {
  const items = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (!items.length || items.some((i) => !/^[a-z_]{2,40}$/.test(i))) throw new CliArgError('Expected comma-separated event types like exec,open.');
  return v;
}

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

export function buildCli(): Command {
  const program = new Command('vigil')
    .description('eBPF runtime observability and security for Linux hosts and Kubernetes')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('run')
    .description('run the agent: sensors, process and container resolvers, pipeline, sinks and API')
    .option('-c, --config <file>', 'YAML configuration file (validated; see docs/configuration.md)')
    .option('--set <key=value>', 'override one setting, e.g. --set ring.sizeMiB=32 (repeatable)', collect)
    .option('--socket <path>', `API unix socket (default ${DEFAULT_SOCKET})`)
    .option('--listen <host:port>', 'also serve the API over TCP (needs a token)')
    .option('--token-file <file>', 'token required on the TCP API')
    .option('--data-dir <dir>', 'where the embedded store lives (default /var/lib/vigil)')
    .option('--json', 'JSON Lines on stdout even on a terminal')
    .option('--no-stdout', 'no events on stdout')
    .option('--store <path>', 'SQLite store path')
    .option('-t, --enable-tag <tag>', 'run only the rules with this tag (repeatable; rules.enabledTags)', collect)
    .option('-T, --disable-tag <tag>', 'turn off the rules with this tag (repeatable; rules.disabledTags)', collect)
    .addOption(new Option('--process-mode <mode>', 'process events from BPF, or without it').choices(['auto', 'bpf', 'procfs']))
    .action(async (opts) => {
      process.exitCode = await run(opts);
    });

  program
    .command('status')
    .description('state of the running agent: sensors, probes, drops, resolvers, sinks')
    .option('--socket <path>', 'API socket', DEFAULT_SOCKET)
    .option('--json', 'JSON output')
    .action(async (opts: { socket: string; json?: boolean }) => {
      const st = await apiGet<AgentStatus>(opts.socket, '/v1/status');
      process.stdout.write(opts.json ? `${JSON.stringify(st, null, 2)}\n` : formatStatus(st));
    });

  program
    .command('reload')
    .description('make the running agent read its configuration file again and apply it, all or nothing (as SIGHUP does)')
    .option('--socket <path>', 'API socket', DEFAULT_SOCKET)
    .option('--json', 'JSON output')
    .action(async (opts: { socket: string; json?: boolean }) => {
      process.exitCode = await reloadCommand(opts);
    });

  program
    .command('reopen')
    .description('make the running agent close and reopen its file sinks\' files, after logrotate moved or truncated them (as SIGUSR1 does)')
    .option('--socket <path>', 'API socket', DEFAULT_SOCKET)
    .action(async (opts: { socket: string }) => {
      const r = await apiPost<{ reopened: string[] }>(opts.socket, '/v1/sinks/reopen');
      process.stdout.write(r.reopened.length ? `reopened the files of ${r.reopened.join(', ')}\n` : 'no file sink to reopen\n');
    });

  program
    .command('events')
    .description('query stored events (from the running agent, or from the store file when it is stopped)')
    .option('--since <duration>', 'e.g. 10m, 2h, 1d, or an ISO date', since)
    .option('--type <types>', 'comma-separated event types (exec,exit,open,...)', types)
    .option('--container <name|id>', 'only this container')
    .option('--pid <pid>', 'only this process', int(1, 4_194_304))
    .option('--limit <n>', 'most events (1 to 100000): the latest ones, shown oldest first', int(1, 100_000), 1000)
    .option('--first', 'keep the oldest events within --limit instead of the latest')
    .option('--json', 'JSON Lines output')
    .option('--socket <path>', 'API socket', DEFAULT_SOCKET)
    .option('--store <path>', 'store file to read when no agent runs (default /var/lib/vigil/events.db)')
    .action(async (opts) => {
      process.exitCode = await eventsCommand(opts);
    });

  const rules = program.command('rules').description('detection rules: those the running agent has loaded (list), or check rule files offline (check)');
  rules
    .command('list', { isDefault: true })
    .description('the rules the running agent has loaded, with their alerts and evaluation errors')
    .option('--json', 'JSON output')
    .option('--socket <path>', 'API socket', DEFAULT_SOCKET)
    .action(async (opts: { json?: boolean; socket: string }) => {
      process.exitCode = await rulesListCommand(opts);
    });
  rules
    .command('check')
    .description('compile rule files as the agent would (after the default rules), and report every problem; exit 2 if any')
    .argument('[files...]', 'rule files (YAML)')
    .option('--no-defaults', 'check the files alone, without the default rules before them')
    .option('--json', 'JSON output')
    .action((files: string[], opts: { defaults: boolean; json?: boolean }) => {
      process.exitCode = rulesCheckCommand(files, opts);
    });

  program
    .command('containers')
    .description('containers with their runtime, image and process counts')
    .option('--json', 'JSON output')
    .option('--socket <path>', 'API socket', DEFAULT_SOCKET)
    .action(async (opts: { json?: boolean; socket: string }) => {
      process.exitCode = await containersCommand(opts);
    });

  program
    .command('ps')
    .description('list processes with their user and container; --tree for the tree, --pid for one process and its ancestors')
    .option('--tree', 'show the process tree')
    .option('--pid <pid>', 'one process: its ancestry (and subtree with --tree)', int(1, 4_194_304))
    .option('--container <name|id>', 'only processes of this container')
    .option('--json', 'JSON output')
    .option('--dot', 'Graphviz DOT output')
    .option('--no-argv', 'show the command name instead of the (scrubbed) argv')
    .option('--socket <path>', 'API socket', DEFAULT_SOCKET)
    .action(async (opts: { tree?: boolean; pid?: number; container?: string; json?: boolean; dot?: boolean; argv: boolean; socket: string }) => {
      if (opts.json && opts.dot) throw new UsageError('--json and --dot are exclusive: choose one output format');
      process.exitCode = await psCommand(opts);
    });

  return program;
}

/**
 * Exit codes: 0 applied (or nothing to change), 2 the configuration is bad or changes start-only fields,
 * 1 no agent, or the kernel refused what the configuration asks (the previous one still runs either way).
 */
async function reloadCommand(opts: { socket: string; json?: boolean }): Promise<number> {
  try {
    const r = await apiPost<ReloadResult>(opts.socket, '/v1/config/reload');
    if (opts.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    else process.stdout.write(`reloaded${formatReload(r)}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ApiClientError)) throw err;
    const body = err.body as { error?: string };
    if (opts.json) process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    process.stderr.write(`vigil reload: not reloaded, the previous configuration still runs: ${body?.error ?? err.message}\n`);
    return err.status === 400 ? 2 : 1;
  }
}

async function psCommand(opts: { tree?: boolean; pid?: number; container?: string; json?: boolean; dot?: boolean; argv: boolean; socket: string }): Promise<number> {
  const q = new URLSearchParams();
  if (opts.tree) q.set('tree', '1');
  if (opts.pid !== undefined) q.set('pid', String(opts.pid));
  if (opts.container) q.set('container', opts.container);
  if (opts.dot) q.set('format', 'dot');
  if (!opts.argv) q.set('argv', '0');
  try {
    const body = await apiGet<unknown>(opts.socket, `/v1/processes?${q}`);
    if (opts.dot) process.stdout.write(`${body as string}\n`);
    else if (opts.json) process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    else process.stdout.write(renderAgentPs(body as AgentPs, opts));
    if (!opts.json && !opts.dot) process.stderr.write(`vigil ps: from the agent (process mode: ${(body as AgentPs).mode})\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof AgentUnavailableError)) throw err;
  }
  if (opts.container) {
    process.stderr.write('vigil ps: --container needs a running agent (container attribution comes from its resolver)\n');
    return 1;
  }
  const src = snapshotSource();
  const out = renderPs(src, opts);
  process.stdout.write(out.text);
  if (!opts.json && !opts.dot) process.stderr.write(`vigil ps: ${src.mode}\n`);
  return out.code;
}

interface AgentPsRow {
  pid: number;
  ppid: number;
  comm: string;
  argv?: string[];
  user?: string;
  uid?: number;
  tty?: string;
  container?: { id: string; name?: string };
  children?: AgentPsRow[];
  reparentedFrom?: string;
}
interface AgentPs {
  mode: string;
  processes?: AgentPsRow[];
  tree?: AgentPsRow[];
  ancestry?: AgentPsRow[];
}

function renderAgentPs(b: AgentPs, o: { argv: boolean }): string {
  const cmd = (r: AgentPsRow) => (o.argv && r.argv?.length ? r.argv.join(' ').replace(/\n/g, '\\n') : r.comm);
  const who = (r: AgentPsRow) => r.user ?? String(r.uid ?? '?');
  const ctr = (r: AgentPsRow) => (r.container ? (r.container.name ?? r.container.id.slice(0, 12)) : '');
  const lines: string[] = [];
  if (b.ancestry) b.ancestry.forEach((r, i) => lines.push(`${'  '.repeat(i)}${i ? '└─ ' : ''}${r.pid} ${who(r)} ${cmd(r)}`));
  if (b.tree) {
    const walk = (r: AgentPsRow, d: number) => {
      lines.push(`${'  '.repeat(d)}${d ? '└─ ' : ''}${r.pid} ${who(r)}${r.container ? ` [${ctr(r)}]` : ''} ${cmd(r)}${r.reparentedFrom ? ' (reparented)' : ''}`);
      for (const c of r.children ?? []) walk(c, d + 1);
    };
    for (const r of b.tree) walk(r, 0);
  }
  if (b.processes) {
    const rows = b.processes.map((r) => [String(r.pid), String(r.ppid), who(r), ctr(r), r.tty ?? '', cmd(r)]);
    const head = ['PID', 'PPID', 'USER', 'CONTAINER', 'TTY', 'COMMAND'];
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (i < head.length - 1 ? r[i]!.length : 0))));
    const width = process.stdout.columns || 160;
    for (const r of [head, ...rows]) lines.push(r.map((c, i) => (i < r.length - 1 ? c.padEnd(w[i]!) : c)).join('  ').slice(0, width));
  }
  return `${lines.join('\n')}\n`;
}

export async function main(argv = process.argv): Promise<void> {
  const program = buildCli();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return;
    // Help asked for ("vigil help run") is a success; help shown because no command was given is a usage error.
    if (e.code === 'commander.help') {
      process.exitCode = e.exitCode ? 2 : 0;
      return;
    }
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      process.exitCode = 2; // usage error: commander already printed it
      return;
    }
    process.stderr.write(`vigil: ${e.message ?? String(err)}\n`);
    process.exitCode = err instanceof CliArgError || err instanceof UsageError ? 2 : 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
