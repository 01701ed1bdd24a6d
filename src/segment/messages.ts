/**
 * Hand-written protobuf encoding of the messages the WAL stores: walpb.Record and its
 * payloads raftpb.Entry, raftpb.HardState and walpb.Snapshot.
 *
 * The write side produces gogoproto's bytes exactly (etcd marshals with nullable=false):
 * every scalar field is written, zero or not, in field-number order; bytes fields only when
 * present. The generated protobuf-es schemas in `gen/` are the reference these functions are
 * tested against. The read side accepts any valid encoding and skips unknown fields (newer
 * etcd adds `conf_state` to walpb.Snapshot).
 *
 * @module
 */

import { WalError } from "../errors.ts";
import type { Entry, HardState, Snapshot } from "../types.ts";

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

  /** Appends raw bytes. */
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
}

/** Checks that a caller-supplied value fits uint64, naming the field when it does not. */
export function checkUint64(v: bigint, what: string): void {
  if (typeof v !== "bigint" || v < 0n || v > MASK64) {
    throw new WalError(
      "INVALID_ARGUMENT",
      `${what} must be a bigint in [0, 2^64): got ${String(v)}`,
    );
  }
}

/** Appends the raftpb.Entry encoding of `e` (Type, Term, Index, then Data when non-empty). */
export function writeEntry(w: ByteWriter, e: Entry): void {
  w.ensure(33 + e.data.length + 5);
  w.byte(0x08);
  if (e.type >= 0) w.varint(e.type);
  else w.varint64(BigInt.asUintN(64, BigInt(e.type))); // a negative enum takes 10 bytes, as in Go
  w.byte(0x10);
  w.varint64(e.term);
  w.byte(0x18);
  w.varint64(e.index);
  if (e.data.length > 0) {
    w.byte(0x22);
    w.varint(e.data.length);
    w.buf.set(e.data, w.length);
    w.length += e.data.length;
  }
}

/** Bytes of the varint of a uint64. */
function varint64Size(v: bigint): number {
  if (v <= 0xffffffffn) return varintSize(Number(v));
  let n = 5;
  for (let x = v >> 35n; x > 0n; x >>= 7n) n++;
  return n;
}

/** Bytes `writeEntry` produces for `e`. */
export function entrySize(e: Entry): number {
  const typeBytes = e.type >= 0 ? varintSize(e.type) : 10;
  const n = 3 + typeBytes + varint64Size(e.term) + varint64Size(e.index);
  const d = e.data.length;
  return d > 0 ? n + 1 + varintSize(d) + d : n;
}

/** Appends the raftpb.HardState encoding of `s` (term, vote, commit, all always written). */
export function writeHardState(w: ByteWriter, s: HardState): void {
  w.ensure(33);
  w.byte(0x08);
  w.varint64(s.term);
  w.byte(0x10);
  w.varint64(s.vote);
  w.byte(0x18);
  w.varint64(s.commit);
}

/** Appends the walpb.Snapshot encoding of `s` (index, term; no conf_state, like etcd 3.4). */
export function writeSnapshot(w: ByteWriter, s: Snapshot): void {
  w.ensure(22);
  w.byte(0x08);
  w.varint64(s.index);
  w.byte(0x10);
  w.varint64(s.term);
}

/**
 * Appends a walpb.Record: type, crc, then data when `data` is given. `data` is
 * `src[start:end]`, so a record can be built from a slice of a scratch buffer without copying.
 */
export function writeRecord(
  w: ByteWriter,
  type: number,
  crc: number,
  src: Uint8Array | null,
  start = 0,
  end: number = src === null ? 0 : src.length,
): void {
  const n = end - start;
  w.ensure(1 + 10 + 1 + 5 + 1 + 5 + n);
  w.byte(0x08);
  w.varint(type);
  w.byte(0x10);
  w.varint(crc);
  if (src !== null) {
    w.byte(0x1a);
    w.varint(n);
    w.buf.set(src.subarray(start, end), w.length);
    w.length += n;
  }
}

/** Number of bytes `writeRecord` produces for a record with `n` data bytes (or none). */
export function recordSize(type: number, crc: number, n: number | null): number {
  return 1 + varintSize(type) + 1 + varintSize(crc) + (n === null ? 0 : 1 + varintSize(n) + n);
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

// ---------------------------------------------------------------------------------------
// Reading

/**
 * A walpb.Record as decoded, reused from record to record. Its data field is kept as a
 * range of the segment bytes (`buf[dataStart:dataEnd]`): the hot paths read it in place,
 * and only {@link RecordView.data} makes a view object, so replay makes one allocation per
 * entry (the entry's own data view), not two.
 */
export class RecordView {
  /** The record type (see RecordType); -1 when the stored value does not fit a small integer. */
  type = 0;
  /** The stored CRC. */
  crc = 0;
  /** The bytes the record was decoded from. */
  buf: Uint8Array = new Uint8Array(0);
  /** Start of the data field in `buf`. */
  dataStart = 0;
  /** End of the data field in `buf`. */
  dataEnd = 0;
  /** Whether the record has a data field (an empty one counts). */
  hasData = false;

  /** The data field as a view into `buf`, or null when absent. Copy what must outlive it. */
  get data(): Uint8Array | null {
    return this.hasData ? this.buf.subarray(this.dataStart, this.dataEnd) : null;
  }
}

/** Small values (terms, mostly) are decoded to shared BigInts instead of new ones. */
const SMALL: bigint[] = Array.from({ length: 4096 }, (_, i) => BigInt(i));

/** Thrown by the readers below on malformed protobuf; callers turn it into a WalError. */
export class ProtobufError extends Error {}

/**
 * A cursor over protobuf bytes. Reused per record; varints are returned as two 32-bit
 * halves (`lo`, `hi`) so that the common small values never touch BigInt.
 */
class Reader {
  buf: Uint8Array = new Uint8Array(0);
  pos = 0;
  end = 0;
  lo = 0;
  hi = 0;

  reset(buf: Uint8Array, start: number, end: number): void {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  /** Reads a varint into lo/hi. */
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

  /** Reads a tag; returns field number and sets `wire`. */
  tag(): number {
    this.varint();
    if (this.hi !== 0 || this.lo >>> 3 === 0) throw new ProtobufError("invalid field number");
    this.wire = this.lo & 7;
    return this.lo >>> 3;
  }
  wire = 0;
}

const reader = new Reader();

/** Decodes a walpb.Record from `buf[start:end]` into `out` (reused). Throws ProtobufError. */
export function readRecord(buf: Uint8Array, start: number, end: number, out: RecordView): void {
  const r = reader;
  r.reset(buf, start, end);
  out.type = 0;
  out.crc = 0;
  out.buf = buf;
  out.hasData = false;
  out.dataStart = 0;
  out.dataEnd = 0;
  while (r.pos < r.end) {
    const field = r.tag();
    if (field === 1) {
      r.expect(0);
      r.varint();
      out.type = r.hi === 0 && r.lo < 0x80000000 ? r.lo : -1;
    } else if (field === 2) {
      r.expect(0);
      r.varint();
      out.crc = r.lo; // uint32: Go keeps the low 32 bits
    } else if (field === 3) {
      r.expect(2);
      const e = r.delimited();
      out.hasData = true;
      out.dataStart = r.pos;
      out.dataEnd = e;
      r.pos = e;
    } else {
      r.skip(r.wire);
    }
  }
}

const EMPTY: Uint8Array = new Uint8Array(0);

/**
 * Decodes a raftpb.Entry. Its data is a view into `buf` unless `copy` is set: replay hands
 * out views into the segment's own (never reused) buffer, which costs far less memory and
 * time than one allocation per entry.
 */
export function readEntry(buf: Uint8Array, copy = false): Entry {
  return decodeEntry(buf, 0, buf.length, copy);
}

/** Decodes the raftpb.Entry in `buf[start:end]`; its data is a view into `buf`. */
export function readEntryAt(buf: Uint8Array, start: number, end: number): Entry {
  return decodeEntry(buf, start, end, false);
}

function decodeEntry(buf: Uint8Array, start: number, end: number, copy: boolean): Entry {
  const r = reader;
  r.reset(buf, start, end);
  let type = 0;
  let term = 0n;
  let index = 0n;
  let data: Uint8Array = EMPTY;
  while (r.pos < r.end) {
    const field = r.tag();
    if (field === 1) {
      r.expect(0);
      r.varint();
      type = r.lo | 0; // int32 enum
    } else if (field === 2) {
      r.expect(0);
      term = r.uint64();
    } else if (field === 3) {
      r.expect(0);
      index = r.uint64();
    } else if (field === 4) {
      r.expect(2);
      const e = r.delimited();
      data = copy ? buf.slice(r.pos, e) : buf.subarray(r.pos, e);
      r.pos = e;
    } else {
      r.skip(r.wire);
    }
  }
  return { term, index, type, data };
}

/**
 * The Index of the raftpb.Entry in `buf[start:end]`, without copying its data (validates the
 * whole message).
 */
export function readEntryIndex(buf: Uint8Array, start = 0, end: number = buf.length): bigint {
  const r = reader;
  r.reset(buf, start, end);
  let index = 0n;
  while (r.pos < r.end) {
    const field = r.tag();
    if (field === 3) {
      r.expect(0);
      index = r.uint64();
    } else if (field === 1 || field === 2) {
      r.expect(0);
      r.varint();
    } else if (field === 4) {
      r.expect(2);
      r.pos = r.delimited();
    } else {
      r.skip(r.wire);
    }
  }
  return index;
}

/** Decodes the raftpb.HardState in `buf[start:end]`. */
export function readHardState(buf: Uint8Array, start = 0, end: number = buf.length): HardState {
  const r = reader;
  r.reset(buf, start, end);
  const s: HardState = { term: 0n, vote: 0n, commit: 0n };
  while (r.pos < r.end) {
    const field = r.tag();
    if (field >= 1 && field <= 3) r.expect(0);
    if (field === 1) s.term = r.uint64();
    else if (field === 2) s.vote = r.uint64();
    else if (field === 3) s.commit = r.uint64();
    else r.skip(r.wire);
  }
  return s;
}

/** Decodes the walpb.Snapshot in `buf[start:end]` (index and term; conf_state is skipped). */
export function readSnapshot(buf: Uint8Array, start = 0, end: number = buf.length): Snapshot {
  const r = reader;
  r.reset(buf, start, end);
  const s: Snapshot = { index: 0n, term: 0n };
  while (r.pos < r.end) {
    const field = r.tag();
    if (field === 1 || field === 2) r.expect(0);
    if (field === 1) s.index = r.uint64();
    else if (field === 2) s.term = r.uint64();
    else r.skip(r.wire);
  }
  return s;
}
