// Shared by every benchmark: writes its results into docs/benchmarks.md as its own section between
// `<!-- bench:<name>:start -->` and `<!-- bench:<name>:end -->`, replacing only that section, plus the small
// helpers each report needs (machine description, medians, markdown tables, number formatting).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BENCHMARKS_MD = path.join(ROOT, 'docs', 'benchmarks.md');

const HEADER = `# Benchmarks

Measured results, written by the benchmarks themselves (\`npm run bench\`, or \`npm run bench:<name>\` for one).
Do not edit by hand: each benchmark replaces its own section on every run. Absolute numbers drift between
machines and runs; every benchmark therefore reports ratios against a baseline measured in the same run.
`;

/** What the numbers were measured on. */
export interface MachineInfo {
  kernel: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    kernel: `${os.type()} ${os.release()} ${os.machine()}`,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  };
}

export function formatMachine(m: MachineInfo = machineInfo()): string {
  return `${m.kernel}, ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}`;
}

/** Median of the finite values (NaN when there are none). */
export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** 2_345_678 → "2.35 M", 12_345 → "12.3 k". */
export function si(n: number, digits = 3): string {
  if (!Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toPrecision(digits)} G`;
  if (a >= 1e6) return `${(n / 1e6).toPrecision(digits)} M`;
  if (a >= 1e3) return `${(n / 1e3).toPrecision(digits)} k`;
  return n.toPrecision(digits);
}

/** A number with a fixed count of decimals, or "–" when it is not a number. */
export function fixed(n: number, decimals = 2): string {
  return Number.isFinite(n) ? n.toFixed(decimals) : '–';
}

export function percent(fraction: number, decimals = 2): string {
  return Number.isFinite(fraction) ? `${(fraction * 100).toFixed(decimals)} %` : '–';
}

/** A markdown table. Cells are escaped for pipes; numeric-looking columns are right-aligned. */
export function markdownTable(columns: string[], rows: (string | number)[][]): string {
  const esc = (c: string | number) => String(c).replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const numeric = columns.map((_, i) => rows.length > 0 && rows.every((r) => /^[-–+×≈~]?\s*[\d.,]/.test(String(r[i] ?? '')) || r[i] === '–'));
  const lines = [
    `| ${columns.map(esc).join(' | ')} |`,
    `|${numeric.map((n) => (n ? '---:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${columns.map((_, i) => esc(r[i] ?? '')).join(' | ')} |`),
  ];
  return lines.join('\n');
}

export interface SectionOptions {
  /** The file to write (default docs/benchmarks.md at the repository root). */
  file?: string;
  /** Section heading, written as "## <title>" (default: the name). */
  title?: string;
  /** The command that reproduces it, shown under the heading. */
  command?: string;
  /** When the numbers were measured (default: now). */
  date?: Date;
  machine?: MachineInfo;
}

const markers = (name: string) => ({ start: `<!-- bench:${name}:start -->`, end: `<!-- bench:${name}:end -->` });

/** The full text of a section: markers, heading, date and machine, then `body`. */
export function renderSection(name: string, body: string, o: SectionOptions = {}): string {
  const { start, end } = markers(name);
  const date = (o.date ?? new Date()).toISOString().replace(/\.\d+Z$/, 'Z');
  const lines = [
    start,
    `## ${o.title ?? name}`,
    '',
    `Measured ${date} on ${formatMachine(o.machine)}.${o.command ? ` Reproduce with \`${o.command}\`.` : ''}`,
    '',
    body.trim(),
    end,
  ];
  return lines.join('\n');
}

/**
 * Replaces `text`'s section `name` with `section`, or appends it when the file has none. Pure: no I/O.
 * Throws when the markers are present but unbalanced, rather than clobbering someone else's section.
 */
export function replaceSection(text: string, name: string, section: string): string {
  const { start, end } = markers(name);
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i === -1 && j === -1) return `${text.replace(/\s*$/, '')}\n\n${section}\n`;
  if (i === -1 || j === -1 || j < i || text.indexOf(start, i + 1) !== -1) {
    throw new Error(`benchmarks file: the markers of section ${name} are damaged; fix them by hand`);
  }
  return text.slice(0, i) + section + text.slice(j + end.length);
}

/**
 * Writes section `name` of docs/benchmarks.md (creating the file with a short header if missing), leaving
 * every other section untouched. The file is replaced atomically, so a concurrent reader never sees half of
 * it. Returns the path written. Throws on I/O errors or damaged markers.
 */
export function writeSection(name: string, body: string, o: SectionOptions = {}): string {
  if (!/^[a-z0-9][a-z0-9._-]*$/i.test(name)) throw new Error(`bad benchmark section name ${JSON.stringify(name)}`);
  const file = o.file ?? BENCHMARKS_MD;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const before = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : HEADER;
  const after = replaceSection(before, name, renderSection(name, body, o));
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, after);
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return file;
}

/**
 * Removes what a previous run left at a helper's OUT_FILE. Only a regular file: `/dev/null` given as the
 * output must not be deleted (rmSync would unlink the device node, and the sink would then create a file).
 * Exits with a usage error for anything else.
 */
export function removeOldOutput(out: string): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(out);
  } catch {
    return;
  }
  if (!st.isFile()) {
    process.stderr.write(`${out}: exists and is not a regular file; give a file path for the output\n`);
    process.exit(2);
  }
  fs.rmSync(out);
}
