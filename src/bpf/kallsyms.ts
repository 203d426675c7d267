// Kernel symbol lookups for kprobes. A syscall's entry function is named differently across kernel versions
// and architectures (__x64_sys_openat since 4.17 on x86-64, __arm64_sys_ on arm64, sys_openat before), so a
// probe names the syscall and we resolve the symbol that exists on this kernel.
import fs from 'node:fs';
import os from 'node:os';
import { NotFoundError } from './errors.ts';

let syscallSymbols: Set<string> | undefined;

function loadSyscallSymbols(text?: string): Set<string> {
  const set = new Set<string>();
  const src = text ?? fs.readFileSync('/proc/kallsyms', 'utf8');
  // Lines: "ffffffff81379d40 T __x64_sys_getppid". Keep only syscall-looking names: the file is ~100k lines.
  const re = /^\S+ [tTwW] ((?:__\w+?_)?(?:sys|se_sys|compat_sys)_\w+)$/gm;
  for (let m = re.exec(src); m; m = re.exec(src)) set.add(m[1]!);
  return set;
}

function archPrefix(): string[] {
  switch (os.arch()) {
    case 'x64': return ['__x64_sys_', '__ia32_sys_'];
    case 'arm64': return ['__arm64_sys_'];
    case 's390x': return ['__s390x_sys_'];
    case 'riscv64': return ['__riscv_sys_'];
    default: return [];
  }
}

/**
 * The kernel function implementing syscall `name` ("openat" -> "__x64_sys_openat").
 * Throws NotFoundError when no candidate exists. `kallsymsText` is for tests.
 */
export function resolveSyscallFunction(name: string, kallsymsText?: string): string {
  const syms = kallsymsText !== undefined ? loadSyscallSymbols(kallsymsText) : (syscallSymbols ??= loadSyscallSymbols());
  const bare = name.replace(/^(__\w+?_)?sys_/, '');
  const prefixes = kallsymsText !== undefined && /__x64_sys_/.test(kallsymsText) ? ['__x64_sys_'] : archPrefix();
  const candidates = [...prefixes.map((p) => `${p}${bare}`), `__se_sys_${bare}`, `sys_${bare}`];
  for (const c of candidates) if (syms.has(c)) return c;
  throw new NotFoundError('symbol', `syscall ${bare}`, '/proc/kallsyms', `tried ${candidates.join(', ')}`);
}
