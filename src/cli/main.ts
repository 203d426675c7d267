// vigil's command line (commander). Each command has --help; exit codes: 0 success, 1 failure, 2 bad usage.
import { Command, InvalidArgumentError as CliArgError } from 'commander';
import { renderPs, snapshotSource } from './ps.ts';

function int(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new CliArgError(`${name} must be a positive integer, got "${v}"`);
    return Number(v);
  };
}

export function buildCli(): Command {
  const program = new Command('vigil')
    .description('eBPF runtime observability and security for Linux hosts and Kubernetes')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('ps')
    .description('list processes with their user; --tree for the tree, --pid for one process and its ancestors')
    .option('--tree', 'show the process tree')
    .option('--pid <pid>', 'one process: its ancestry (and subtree with --tree)', int('--pid'))
    .option('--json', 'JSON output')
    .option('--dot', 'Graphviz DOT output')
    .option('--no-argv', 'show the command name instead of the (scrubbed) argv')
    .action((opts: { tree?: boolean; pid?: number; json?: boolean; dot?: boolean; argv: boolean }) => {
      if (opts.json && opts.dot) throw new CliArgError('--json and --dot are exclusive');
      const src = snapshotSource();
      const out = renderPs(src, opts);
      process.stdout.write(out.text);
      if (!opts.json && !opts.dot) process.stderr.write(`vigil ps: ${src.mode}\n`);
      process.exitCode = out.code;
    });

  return program;
}

export async function main(argv = process.argv): Promise<void> {
  const program = buildCli();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return;
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      process.exitCode = 2; // usage error: commander already printed it
      return;
    }
    process.stderr.write(`vigil: ${e.message ?? String(err)}\n`);
    process.exitCode = 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
