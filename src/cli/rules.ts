// `vigil rules`: the rules a running agent has loaded, with their counters; `vigil rules check`: compiles rule
// files offline, as the agent would (with the default set first unless --no-defaults), and says what is wrong.
import { AgentUnavailableError, apiGet } from '../api/client.ts';
import { compileRules, DEFAULT_RULES_FILE, readRuleFile, RuleError, type RuleSource } from '../rules/rules.ts';
import { actionCountsText, actionText, type ActionCounts, type RuleAction } from '../rules/actions.ts';
import type { RulesStatus } from '../rules/engine.ts';
import { safe } from '../sinks/text-format.ts';

interface ApiRule {
  name: string;
  priority: string;
  enabled: boolean;
  types: string[] | 'all';
  matches: number;
  errors: number;
  lastError?: string;
  source: string;
  tags?: string[];
  actions?: RuleAction[];
  actionResults?: ActionCounts;
}

/** GET /v1/rules (src/api/server.ts): the engine's status without its per-rule list, which `rules` carries. */
interface ApiRules {
  active: boolean;
  summary?: Omit<RulesStatus, 'perRule'>;
  rules: ApiRule[];
}

/** Exit codes: 0 listed, 1 no agent. */
export async function rulesListCommand(opts: { socket: string; json?: boolean }): Promise<number> {
  let body: ApiRules;
  try {
    body = await apiGet<ApiRules>(opts.socket, '/v1/rules');
  } catch (err) {
    if (!(err instanceof AgentUnavailableError)) throw err;
    process.stderr.write(`vigil rules: ${err.message}\n`);
    return 1;
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    return 0;
  }
  if (!body.active || !body.summary) {
    process.stdout.write('no detection rules are active (rules.enabled is false, or every rule is disabled)\n');
    return 0;
  }
  const s = body.summary;
  // Tags last: what -t and -T select by (rules.enabledTags, rules.disabledTags).
  const rows = body.rules.map((r) => [r.enabled ? 'on' : 'off', r.priority, String(r.matches), String(r.errors), Array.isArray(r.types) ? r.types.join(',') : r.types, safe(r.name), safe(r.tags?.join(',') || '-')]);
  const head = ['STATE', 'PRIORITY', 'ALERTS', 'ERRORS', 'TYPES', 'RULE', 'TAGS'];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(width[i]!))).join('  ');
  let out = `${line(head)}\n${rows.map(line).join('\n')}\n`;
  out += `${s.enabled} of ${s.rules} rules on; ${s.received} events checked, ${s.alerts} alerts, ${s.errors} evaluation errors, ${s.dropped} events dropped (queue full), ${s.queued} queued\n`;
  for (const r of body.rules) if (r.lastError) out += `  ${safe(r.name)}: last error: ${safe(r.lastError)}\n`;
  for (const r of body.rules) {
    if (!r.actions?.length) continue;
    const did = actionCountsText(r.actionResults);
    out += `  ${safe(r.name)}: actions ${r.actions.map(actionText).join(', ')} (${s.enforce ? 'enforced' : 'dry run: rules.enforce is off'})${did ? `: ${did}` : ''}\n`;
  }
  process.stdout.write(out);
  return 0;
}

/** Exit codes: 0 every file compiles, 2 something does not (each problem on stderr, with where it is). */
export function rulesCheckCommand(files: string[], opts: { defaults: boolean; json?: boolean }): number {
  try {
    const sources: RuleSource[] = [];
    if (opts.defaults) sources.push(readRuleFile(DEFAULT_RULES_FILE, `defaults (${DEFAULT_RULES_FILE})`));
    for (const f of files) sources.push(readRuleFile(f));
    const set = compileRules({ sources });
    const types = set.types();
    const summary = { ok: true, rules: set.rules.length, enabled: set.enabledCount, lists: set.lists.size, macros: set.macros.length, types: types ? [...types].sort() : 'all', warnings: set.warnings };
    if (opts.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    else {
      // Warnings do not fail the check (exit 0): the set loads as it is, it just may not do what was meant.
      for (const w of set.warnings) process.stderr.write(`vigil rules check: warning: ${w.path}: ${w.message}\n`);
      const warned = set.warnings.length ? `; ${set.warnings.length} warning${set.warnings.length > 1 ? 's' : ''}` : '';
      process.stdout.write(`ok: ${summary.rules} rules (${summary.enabled} on), ${summary.lists} lists, ${summary.macros} macros; about ${Array.isArray(summary.types) ? summary.types.join(', ') : 'every event type'}${warned}\n`);
    }
    return 0;
  } catch (err) {
    if (!(err instanceof RuleError)) throw err;
    if (opts.json) process.stdout.write(`${JSON.stringify({ ok: false, issues: err.issues }, null, 2)}\n`);
    for (const i of err.issues) process.stderr.write(`vigil rules check: ${i.path}: ${i.message}\n`);
    return 2;
  }
}
