// Typed keys and values for BPF maps: a Codec turns a JS value into the fixed-size bytes the kernel stores and
// back. Sizes are checked against the map's key/value size when a typed view is made, not on every call.
import { InvalidArgumentError } from './errors.ts';

export interface Codec<T> {
  readonly size: number;
  encode(value: T, buf: Buffer, offset: number): void;
  decode(buf: Buffer, offset: number): T;
}

function int(size: 1 | 2 | 4, signed: boolean): Codec<number> {
  return {
    size,
    encode(v, b, o) {
      if (!Number.isInteger(v)) throw new InvalidArgumentError(`expected an integer, got ${v}`);
      if (size === 1) signed ? b.writeInt8(v, o) : b.writeUInt8(v, o);
      else if (size === 2) signed ? b.writeInt16LE(v, o) : b.writeUInt16LE(v, o);
      else signed ? b.writeInt32LE(v, o) : b.writeUInt32LE(v, o);
    },
    decode(b, o) {
      if (size === 1) return signed ? b.readInt8(o) : b.readUInt8(o);
      if (size === 2) return signed ? b.readInt16LE(o) : b.readUInt16LE(o);
      return signed ? b.readInt32LE(o) : b.readUInt32LE(o);
    },
  };
}

export const u8 = int(1, false);
export const u16 = int(2, false);
export const u32 = int(4, false);
export const i32 = int(4, true);

export const u64: Codec<bigint> = {
  size: 8,
  encode: (v, b, o) => void b.writeBigUInt64LE(BigInt.asUintN(64, v), o),
  decode: (b, o) => b.readBigUInt64LE(o),
};

export const i64: Codec<bigint> = {
  size: 8,
  encode: (v, b, o) => void b.writeBigInt64LE(BigInt.asIntN(64, v), o),
  decode: (b, o) => b.readBigInt64LE(o),
};

/** u64 as a JS number, for counters that stay below 2^53. */
export const u64n: Codec<number> = {
  size: 8,
  encode: (v, b, o) => void b.writeBigUInt64LE(BigInt(v), o),
  decode: (b, o) => Number(b.readBigUInt64LE(o)),
};

/** Raw bytes of a fixed size. */
export function bytes(size: number): Codec<Uint8Array> {
  return {
    size,
    encode(v, b, o) {
      if (v.length > size) throw new InvalidArgumentError(`value of ${v.length} bytes does not fit ${size}`);
      b.fill(0, o, o + size);
      b.set(v, o);
    },
    decode: (b, o) => Uint8Array.prototype.slice.call(b, o, o + size),
  };
}

/** A NUL-padded C string in a fixed-size char array (e.g. char comm[16]). */
export function cstring(size: number): Codec<string> {
  return {
    size,
    encode(v, b, o) {
      const enc = Buffer.from(v, 'utf8');
      if (enc.length >= size) throw new InvalidArgumentError(`string "${v}" does not fit char[${size}] with its NUL`);
      b.fill(0, o, o + size);
      enc.copy(b, o);
    },
    decode(b, o) {
      const end = b.indexOf(0, o);
      return b.toString('utf8', o, end < 0 || end > o + size ? o + size : end);
    },
  };
}

type FieldSpec<T> = { [K in keyof T]: [offset: number, codec: Codec<T[K]>] };

/** A C struct: each field at an explicit offset (taken from the generated layout), total size explicit. */
export function struct<T extends object>(size: number, fields: FieldSpec<T>): Codec<T> {
  const entries = Object.entries(fields) as [keyof T & string, [number, Codec<unknown>]][];
  for (const [name, [off, c]] of entries) {
    if (off + c.size > size) throw new InvalidArgumentError(`field ${name} at ${off}+${c.size} overflows struct of ${size}`);
  }
  return {
    size,
    encode(v, b, o) {
      b.fill(0, o, o + size);
      for (const [name, [off, c]] of entries) c.encode(v[name], b, o + off);
    },
    decode(b, o) {
      const out = {} as T;
      for (const [name, [off, c]] of entries) (out as Record<string, unknown>)[name] = c.decode(b, o + off);
      return out;
    },
  };
}

/** A fixed-length C array of one codec. */
export function array<T>(codec: Codec<T>, length: number): Codec<T[]> {
  return {
    size: codec.size * length,
    encode(v, b, o) {
      if (v.length !== length) throw new InvalidArgumentError(`expected ${length} elements, got ${v.length}`);
      for (let i = 0; i < length; i++) codec.encode(v[i]!, b, o + i * codec.size);
    },
    decode(b, o) {
      const out: T[] = new Array(length);
      for (let i = 0; i < length; i++) out[i] = codec.decode(b, o + i * codec.size);
      return out;
    },
  };
}

/** Encodes a JS value into a fresh buffer of exactly `codec.size` bytes. */
export function encodeToBuffer<T>(codec: Codec<T>, value: T): Buffer {
  const b = Buffer.alloc(codec.size);
  codec.encode(value, b, 0);
  return b;
}
