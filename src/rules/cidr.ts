// IP addresses and CIDR blocks for rules about connects: `event.?remoteAddress.orValue("").inCidr([...])` in
// conditions (the rule engine's function), and the bytes an in-kernel deny rule compares the peer with
// (kernel.ts, kernel-maps.ts). An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack socket connects
// to for an IPv4 peer) is the IPv4 address in both: a block of IPv4 addresses holds it, so that a rule about
// 169.254.169.254 cannot be gone around by connecting to ::ffff:169.254.169.254.
import net from 'node:net';

export interface IpBlock {
  family: 4 | 6;
  /** The address, network order: 4 or 16 bytes; bits past `bits` are zero. */
  bytes: Uint8Array;
  /** The prefix length. */
  bits: number;
}

/** The bytes of an IPv4 or IPv6 address in text, undefined when it is not one (zones and ports are not). */
export function parseIp(s: string): { family: 4 | 6; bytes: Uint8Array } | undefined {
  const kind = net.isIP(s);
  if (kind === 4) return { family: 4, bytes: Uint8Array.from(s.split('.').map(Number)) };
  if (kind !== 6 || s.includes('%')) return undefined;
  // Groups before and after "::", an embedded IPv4 address as the last two groups.
  let text = s;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  const tail: number[] = [];
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    tail.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
    text = text.slice(0, -v4[1]!.length);
    if (text.endsWith(':') && !text.endsWith('::')) text = text.slice(0, -1);
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const groups = (x: string | undefined) => (x ? x.split(':').filter((g) => g !== '').map((g) => parseInt(g, 16)) : []);
  const a = groups(head);
  const b = [...groups(rest), ...tail];
  const all = rest === undefined ? [...a, ...tail] : [...a, ...new Array<number>(8 - a.length - b.length).fill(0), ...b];
  if (all.length !== 8) return undefined;
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return { family: 6, bytes };
}

/** "a.b.c.d/n", "x::/n", or an address alone (all its bits); undefined when malformed. */
export function parseCidr(s: string): IpBlock | undefined {
  const slash = s.indexOf('/');
  const ip = parseIp(slash < 0 ? s : s.slice(0, slash));
  if (!ip) return undefined;
  const max = ip.family === 4 ? 32 : 128;
  const bitsText = slash < 0 ? String(max) : s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > max) return undefined;
  const bits = Number(bitsText);
  const bytes = ip.bytes.map((x, i) => x & maskByte(bits, i));
  return { family: ip.family, bytes, bits };
}

/** The mask's byte i for a prefix of `bits` bits. */
export const maskByte = (bits: number, i: number): number => (bits >= 8 * (i + 1) ? 0xff : bits <= 8 * i ? 0 : (0xff << (8 - (bits - 8 * i))) & 0xff);

/** An IPv4-mapped IPv6 address as its IPv4 address; any other as it is. */
export function unmapped(ip: { family: 4 | 6; bytes: Uint8Array }): { family: 4 | 6; bytes: Uint8Array } {
  const b = ip.bytes;
  if (ip.family === 6 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return { family: 4, bytes: b.slice(12) };
  return ip;
}

/** Whether block `c` holds address `ip` (an IPv4-mapped address counts as its IPv4 address). */
export function blockHolds(c: IpBlock, ip: { family: 4 | 6; bytes: Uint8Array }): boolean {
  const a = unmapped(ip);
  if (a.family !== c.family) return false;
  for (let i = 0; i < c.bytes.length; i++) if ((a.bytes[i]! & maskByte(c.bits, i)) !== c.bytes[i]) return false;
  return true;
}

/** The blocks of a list of CIDR strings; throws naming the first that is not one. */
export function parseBlocks(list: readonly unknown[]): IpBlock[] {
  return list.map((x) => {
    const c = typeof x === 'string' ? parseCidr(x) : undefined;
    if (!c) throw new RangeError(`${JSON.stringify(x)} is not an IP address or CIDR block (such as "10.0.0.0/8" or "fd00::/8")`);
    return c;
  });
}

/** Blocks parsed once per list (conditions pass the same list object on every event). */
const parsed = new WeakMap<readonly unknown[], IpBlock[]>();

/**
 * inCidr(address, list): whether `address` (an event's address text; "" or a unix path is no IP address and
 * in no block) is in one of the blocks. Throws on a list holding what is not a block.
 */
export function inCidr(address: string, list: readonly unknown[]): boolean {
  let blocks = parsed.get(list);
  if (!blocks) parsed.set(list, (blocks = parseBlocks(list)));
  const ip = parseIp(address);
  return !!ip && blocks.some((c) => blockHolds(c, ip));
}
