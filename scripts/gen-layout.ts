// Generates src/events/layout.generated.ts from the BTF of bpf/include/events.h, the one source of truth for
// the wire format (cilium/ebpf bpf2go, tetragon alignchecker). Every struct and enum declared in events.h
// is compiled into a throwaway BPF object with clang, read back with `bpftool btf dump`, and written out as
// offsets and sizes. With --check, nothing is written: the committed file must equal what the BTF says, and
// every built object under build/ must agree with it, or the process exits 1 (this runs in `make test`).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HEADER = path.join(ROOT, 'bpf/include/events.h');
const OUT = path.join(ROOT, 'src/events/layout.generated.ts');
const BUILD = path.join(ROOT, 'build/layout');

interface BtfType {
  id: number;
  kind: string;
  name?: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: { name: string; type_id: number; bits_offset: number; bitfield_size?: number }[];
  values?: { name: string; val: number }[];
}

export interface FieldLayout {
  offset: number;
  size: number;
  count?: number; // arrays: element count
  struct?: string; // nested struct name
}
export interface StructLayout {
  name: string;
  size: number;
  fields: Record<string, FieldLayout>;
}

function declared(header: string): { structs: string[]; enums: string[] } {
  const src = fs.readFileSync(header, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  const structs = [...src.matchAll(/^struct\s+(\w+)\s*\{/gm)].map((m) => m[1]!);
  const enums = [...src.matchAll(/^enum\s+(\w+)\s*\{/gm)].map((m) => m[1]!);
  return { structs, enums };
}

function btfOf(obj: string): BtfType[] {
  const out = execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', obj], { encoding: 'utf8', maxBuffer: 256 << 20 });
  return (JSON.parse(out) as { types: BtfType[] }).types;
}

function compileLayoutObject(structs: string[], enums: string[]): string {
  fs.mkdirSync(BUILD, { recursive: true });
  const src = path.join(BUILD, 'events_layout.c');
  const obj = path.join(BUILD, 'events_layout.o');
  const body = [
    '#include "vmlinux.h"',
    '#include "events.h"',
    ...structs.map((s) => `struct ${s} __layout_${s} __attribute__((used));`),
    ...enums.map((e) => `enum ${e} __layout_enum_${e} __attribute__((used));`),
    '',
  ].join('\n');
  fs.writeFileSync(src, body);
  const arch = process.arch === 'arm64' ? 'arm64' : 'x86';
  execFileSync('clang', ['-g', '-O2', '-target', 'bpf', `-D__TARGET_ARCH_${arch}`, '-I', path.join(ROOT, 'bpf/include'), '-I', path.join(ROOT, 'build'), '-c', src, '-o', obj]);
  return obj;
}

function layoutsFrom(types: BtfType[], structs: string[]): Map<string, StructLayout> {
  const byId = new Map(types.map((t) => [t.id, t]));
  const sizeOf = (id: number): { size: number; count?: number; struct?: string } => {
    let t = byId.get(id);
    while (t && ['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT', 'TYPE_TAG'].includes(t.kind)) t = byId.get(t.type_id!);
    if (!t) throw new Error(`BTF type ${id} not found`);
    if (t.kind === 'ARRAY') {
      const el = sizeOf(t.type_id!);
      return { size: el.size * t.nr_elems!, count: t.nr_elems! };
    }
    if (t.kind === 'STRUCT' || t.kind === 'UNION') return { size: t.size!, struct: t.name };
    if (t.kind === 'PTR') return { size: 8 };
    return { size: t.size! };
  };
  const out = new Map<string, StructLayout>();
  for (const name of structs) {
    const t = types.find((x) => x.kind === 'STRUCT' && x.name === name);
    if (!t) continue;
    const fields: Record<string, FieldLayout> = {};
    for (const m of t.members ?? []) {
      if (m.bitfield_size) throw new Error(`${name}.${m.name}: bitfields are not allowed in the wire format`);
      if (m.bits_offset % 8) throw new Error(`${name}.${m.name}: not byte aligned`);
      fields[m.name] = { offset: m.bits_offset / 8, ...sizeOf(m.type_id) };
    }
    out.set(name, { name, size: t.size!, fields });
  }
  return out;
}

function enumsFrom(types: BtfType[], enums: string[]): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (const name of enums) {
    const t = types.find((x) => (x.kind === 'ENUM' || x.kind === 'ENUM64') && x.name === name);
    if (!t) continue;
    const vals = t.values ?? [];
    // Strip the common NAME_ prefix: VIGIL_OP_TEST -> TEST.
    const names = vals.map((v) => v.name);
    // One member: the enum's own name is its prefix (vigil_sys_nr: VIGIL_SYS_NR_DATAGRAM -> DATAGRAM).
    const own = `${name.toUpperCase()}_`;
    let prefix = names.length > 1 ? names.reduce((a, b) => { let i = 0; while (i < a.length && a[i] === b[i]) i++; return a.slice(0, i); }) : names[0]?.startsWith(own) ? own : '';
    prefix = prefix.slice(0, prefix.lastIndexOf('_') + 1);
    out.set(name, Object.fromEntries(vals.map((v) => [v.name.slice(prefix.length), v.val])));
  }
  return out;
}

const constName = (s: string) => s.toUpperCase();

export function render(structs: Map<string, StructLayout>, enums: Map<string, Record<string, number>>): string {
  const lines = [
    '// GENERATED by scripts/gen-layout.ts from the BTF of bpf/include/events.h. Do not edit: change events.h and',
    '// run `make layout`. `make test` fails when this file and the compiled BTF disagree.',
    '',
  ];
  for (const [name, vals] of enums) {
    lines.push(`export const ${constName(name)} = {`);
    for (const [k, v] of Object.entries(vals)) lines.push(`  ${k}: ${v},`);
    lines.push('} as const;', '');
  }
  for (const s of structs.values()) {
    lines.push(`/** struct ${s.name} (${s.size} bytes): byte offset and size of each field */`, `export const ${constName(s.name)} = {`);
    for (const [f, l] of Object.entries(s.fields)) {
      const extra = `${l.count !== undefined ? `, count: ${l.count}` : ''}${l.struct ? `, struct: '${l.struct}'` : ''}`;
      lines.push(`  ${f}: { offset: ${l.offset}, size: ${l.size}${extra} },`);
    }
    lines.push('} as const;', '');
  }
  lines.push('/** sizeof(struct ...) */', 'export const SIZEOF = {');
  for (const s of structs.values()) lines.push(`  ${s.name}: ${s.size},`);
  lines.push('} as const;', '');
  return lines.join('\n');
}

export function generate(): { text: string; structs: Map<string, StructLayout> } {
  const { structs, enums } = declared(HEADER);
  const types = btfOf(compileLayoutObject(structs, enums));
  const layouts = layoutsFrom(types, structs);
  for (const s of structs) if (!layouts.has(s)) throw new Error(`struct ${s} from events.h is missing from the BTF`);
  return { text: render(layouts, enumsFrom(types, enums)), structs: layouts };
}

function builtObjects(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory() && p !== BUILD) walk(p);
      else if (e.name.endsWith('.bpf.o')) out.push(p);
    }
  };
  walk(path.join(ROOT, 'build'));
  return out;
}

function main(): void {
  const check = process.argv.includes('--check');
  const { text, structs } = generate();
  if (!check) {
    fs.writeFileSync(OUT, text);
    console.log(`wrote ${path.relative(ROOT, OUT)} (${structs.size} structs)`);
    return;
  }
  const problems: string[] = [];
  const committed = fs.existsSync(OUT) ? fs.readFileSync(OUT, 'utf8') : '';
  if (committed !== text) problems.push(`${path.relative(ROOT, OUT)} does not match the BTF of bpf/include/events.h: run \`make layout\` and commit it`);
  // Every compiled sensor must have been built from this same header.
  const names = [...structs.keys()];
  for (const obj of builtObjects()) {
    const inObj = layoutsFrom(btfOf(obj), names);
    for (const [n, l] of inObj) {
      if (JSON.stringify(l) !== JSON.stringify(structs.get(n))) problems.push(`${path.relative(ROOT, obj)}: struct ${n} differs from events.h (stale build? run make build)`);
    }
  }
  if (problems.length) {
    for (const p of problems) console.error(`layout: ${p}`);
    process.exit(1);
  }
  console.log(`layout: ${structs.size} structs agree with the BTF of events.h and ${builtObjects().length} built objects`);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
