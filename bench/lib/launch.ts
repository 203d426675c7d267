// The environment bin/vigil starts Node with (bin/launch.env), for benchmarks that run the agent's code in
// child processes: they measure the agent as users run it, not on Node's bare defaults (the young
// generation's cap alone changes the pipeline's CPU per event up to its lines by 12-16 %, bin/launch.env).
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './report.ts';

/** bin/launch.env's defaults, as `NAME=${NAME:-value}` lines give them (anything else there is an error). */
export function launchEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of fs.readFileSync(path.join(ROOT, 'bin/launch.env'), 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=\$\{\1:-([^}]*)\}$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
    else if (line.trim() && !line.trim().startsWith('#')) throw new Error(`bin/launch.env: cannot read "${line}" (expected NAME=\${NAME:-value})`);
  }
  return env;
}

/** `NAME=value …` of launchEnv(), for reports. */
export const describeLaunchEnv = (env: Record<string, string>): string =>
  Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
