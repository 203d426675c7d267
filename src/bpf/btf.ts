// Read-only walk over a libbpf `struct btf`: just enough to find global variables (their data section, offset
// and size) for constant editors and live globals. The layout of btf_type is kernel UAPI (linux/btf.h).
import koffi from 'koffi';
import { cstr, lib, type Ptr } from './ffi.ts';

export const BtfKind = {
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

export interface GlobalVar {
  name: string;
  /** Data section the variable lives in: ".rodata", ".bss", ".data", ".rodata.foo", ... */
  section: string;
  offset: number;
  size: number;
}

interface RawType {
  nameOff: number;
  kind: number;
  vlen: number;
  sizeOrType: number;
}

function readType(btf: Ptr, id: number): { raw: RawType; ptr: Ptr } | undefined {
  const p = lib().btf__type_by_id(btf, id) as Ptr | null;
  if (p === null) return undefined;
  const info = koffi.decode(p, 4, 'uint32') as number;
  return {
    ptr: p,
    raw: {
      nameOff: koffi.decode(p, 0, 'uint32') as number,
      kind: (info >>> 24) & 0x1f,
      vlen: info & 0xffff,
      sizeOrType: koffi.decode(p, 8, 'uint32') as number,
    },
  };
}

/** Every variable of every data section (DATASEC) in the object's BTF. */
export function listGlobals(btf: Ptr | null): GlobalVar[] {
  if (btf === null) return [];
  const l = lib();
  const out: GlobalVar[] = [];
  const n = l.btf__type_cnt(btf) as number;
  for (let id = 1; id < n; id++) {
    const t = readType(btf, id);
    if (!t || t.raw.kind !== BtfKind.DATASEC) continue;
    const section = cstr(l.btf__name_by_offset(btf, t.raw.nameOff));
    // Only data sections hold globals; .maps and license are libbpf's own bookkeeping.
    if (!/^\.(rodata|data|bss)/.test(section)) continue;
    for (let i = 0; i < t.raw.vlen; i++) {
      // struct btf_var_secinfo { __u32 type; __u32 offset; __u32 size; } follows the 12-byte btf_type.
      const base = 12 + i * 12;
      const varId = koffi.decode(t.ptr, base, 'uint32') as number;
      const offset = koffi.decode(t.ptr, base + 4, 'uint32') as number;
      const size = koffi.decode(t.ptr, base + 8, 'uint32') as number;
      const v = readType(btf, varId);
      if (!v || v.raw.kind !== BtfKind.VAR) continue;
      out.push({ name: cstr(l.btf__name_by_offset(btf, v.raw.nameOff)), section, offset, size });
    }
  }
  return out;
}

/**
 * How many arguments each of the kernel's BTF tracepoints `names` passes (its btf_trace_<name> prototype, the
 * leading void * included), undefined for one the kernel has not (all undefined without kernel BTF). A tp_btf
 * program reads its arguments by position: a prototype that changed between kernels must be recognised before
 * load. The kernel's BTF is parsed once for them all.
 */
export function tracepointArities(names: readonly string[]): (number | undefined)[] {
  const l = lib();
  const btf = l.btf__load_vmlinux_btf() as Ptr | null;
  if (!btf) return names.map(() => undefined);
  try {
    return names.map((name) => {
      let id = l.btf__find_by_name_kind(btf, `btf_trace_${name}`, BtfKind.TYPEDEF) as number;
      if (id < 0) return undefined;
      for (let hops = 0; hops < 4; hops++) {
        const t = readType(btf, id);
        if (!t) return undefined;
        if (t.raw.kind === BtfKind.FUNC_PROTO) return t.raw.vlen;
        if (t.raw.kind !== BtfKind.TYPEDEF && t.raw.kind !== BtfKind.PTR) return undefined;
        id = t.raw.sizeOrType;
      }
      return undefined;
    });
  } finally {
    l.btf__free(btf);
  }
}
