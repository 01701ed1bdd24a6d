/**
 * Protobuf wire primitives: a growable writer for varints and bytes, and a cursor that reads
 * them back. The messages the WAL stores are written and read with these in `messages.ts`.
 *
 * @module
 */

const MASK64 = (1n << 64n) - 1n;

/** A growable byte buffer reused across appends, so the hot path does not allocate. */
export class ByteWriter {
  /** The backing store; valid bytes are `buf[0:length]`. */
  buf: Uint8Array;
  /** Number of bytes written. */
  length = 0;

  /** Creates a writer with `capacity` bytes preallocated. */
  constructor(capacity = 64 * 1024) {
    this.buf = new Uint8Array(capacity);
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.length + n;
    if (need <= this.buf.length) return;
    let cap = Math.max(this.buf.length * 2, 64); // doubling from 0 would never grow
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  /** Appends one byte (room must have been ensured). */
  byte(b: number): void {
    this.buf[this.length++] = b;
  }

  /** Appends a varint of a number below 2^53 (room must have been ensured). */
  varint(v: number): void {
    const buf = this.buf;
    let n = this.length;
    if (v <= 0xffffffff) {
      // the common case: 32-bit shifts, no float division
      while (v > 0x7f) {
        buf[n++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
    } else {
      while (v > 0x7f) {
        buf[n++] = (v % 128) | 0x80;
        v = Math.floor(v / 128);
      }
    }
    buf[n++] = v;
    this.length = n;
  }

  /** Appends a uint64 varint (room for 10 bytes must have been ensured). */
  varint64(v: bigint): void {
    if (v <= 0xffffffffn && v >= 0n) {
      this.varint(Number(v));
      return;
    }
    let x = v & MASK64;
    while (x > 0x7fn) {
      this.buf[this.length++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.length++] = Number(x);
  }

  /** Appends `src[start:end]` (room must have been ensured). */
  copy(src: Uint8Array, start: number, end: number): void {
    this.buf.set(start === 0 && end === src.length ? src : src.subarray(start, end), this.length);
    this.length += end - start;
  }
}

/** Bytes of the varint of a non-negative number below 2^53. */
export function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 5;
  for (v = Math.floor(v / 0x800000000); v > 0; v = Math.floor(v / 128)) n++;
  return n;
}

/** Bytes of the varint of a uint64. */
export function varint64Size(v: bigint): number {
  if (v <= 0xffffffffn) return varintSize(Number(v));
  let n = 5;
  for (let x = v >> 35n; x > 0n; x >>= 7n) n++;
  return n;
}

/** Thrown by {@link Reader} on malformed protobuf; callers turn it into a WalError. */
export class ProtobufError extends Error {}

/** Small values (terms, mostly) are decoded to shared BigInts instead of new ones. */
const SMALL: bigint[] = Array.from({ length: 4096 }, (_, i) => BigInt(i));

/**
 * A cursor over protobuf bytes, reused from message to message by its owner (each decoder
 * has its own). Varints are read as two 32-bit halves (`lo`, `hi`) so that the common small
 * values never touch BigInt.
 */
export class Reader {
  /** The bytes being read. */
  buf: Uint8Array = new Uint8Array(0);
  /** The read position in `buf`. */
  pos = 0;
  /** Where the current message ends in `buf`. */
  end = 0;
  /** Low 32 bits of the last varint read. */
  lo = 0;
  /** High 32 bits of the last varint read. */
  hi = 0;
  /** Wire type of the last tag read. */
  wire = 0;

  /** Starts reading the message in `buf[start:end]`. */
  reset(buf: Uint8Array, start: number, end: number): void {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  /** Reads a varint into `lo`/`hi`. */
  varint(): void {
    const b = this.buf;
    let lo = 0;
    let hi = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtobufError("truncated varint");
      const byte = b[this.pos++];
      if (shift < 28) {
        lo |= (byte & 0x7f) << shift;
      } else if (shift === 28) {
        lo |= (byte & 0x0f) << 28;
        hi |= (byte & 0x7f) >>> 4;
      } else {
        hi |= (byte & 0x7f) << (shift - 32);
      }
      shift += 7;
      if (byte < 0x80) {
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        return;
      }
    }
    throw new ProtobufError("varint longer than 10 bytes");
  }

  /** Reads a uint64 varint. */
  uint64(): bigint {
    this.varint();
    if (this.hi === 0) return this.lo < SMALL.length ? SMALL[this.lo] : BigInt(this.lo);
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  /** Reads a length prefix and returns the end offset of the delimited bytes. */
  delimited(): number {
    this.varint();
    const n = this.hi === 0 ? this.lo : Infinity;
    if (n > this.end - this.pos) throw new ProtobufError("length-delimited field overruns message");
    return this.pos + n;
  }

  /** Skips a field of the given wire type. */
  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.pos = this.delimited();
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new ProtobufError(`unsupported wire type ${wireType}`);
    }
    if (this.pos > this.end) throw new ProtobufError("truncated fixed-width field");
  }

  /** Throws unless the field just read has the wire type its schema gives it. */
  expect(wire: number): void {
    if (this.wire !== wire) {
      throw new ProtobufError(`wrong wire type ${this.wire} for a field of wire type ${wire}`);
    }
  }

  /** Reads a tag; returns the field number and sets {@link Reader.wire}. */
  tag(): number {
    this.varint();
    if (this.hi !== 0 || this.lo >>> 3 === 0) throw new ProtobufError("invalid field number");
    this.wire = this.lo & 7;
    return this.lo >>> 3;
  }
}
