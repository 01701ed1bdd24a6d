/**
 * The messages the WAL stores, each with one writer and one reader: walpb.Record and its
 * payloads raftpb.Entry, raftpb.HardState and walpb.Snapshot.
 *
 * The writers produce gogoproto's bytes exactly (etcd marshals with nullable=false): every
 * scalar field is written, zero or not, in field-number order; bytes fields only when
 * present. The generated protobuf-es schemas in `gen/` are the reference they are tested
 * against. The readers accept any valid encoding and skip unknown fields (newer etcd adds
 * `conf_state` to walpb.Snapshot and leaves out a zero entry type).
 *
 * @module
 */

import {
  type ConfState,
  emptyConfState,
  emptyHardState,
  type Entry,
  type HardState,
  type Snapshot,
} from "../types.ts";
import { type ByteWriter, Reader, varint64Size, varintSize } from "./wire.ts";

const MAX32 = 0xffffffffn;
const EMPTY: Uint8Array = new Uint8Array(0);

// ---------------------------------------------------------------------------------------
// raftpb.Entry { EntryType Type = 1; uint64 Term = 2; uint64 Index = 3; bytes Data = 4; }

/** The most bytes an entry takes besides its data: four tags, three 10-byte varints, a length. */
export const MAX_ENTRY_BYTES_BESIDES_DATA = 4 + 30 + 5;

/**
 * Appends the raftpb.Entry encoding of `e`: Type, Term, Index,
 * then Data when non-empty. Terms and indexes below 2^32, as in every real log, are written
 * as plain numbers: no BigInt arithmetic per varint.
 */
export function writeEntry(w: ByteWriter, e: Entry): void {
  const { term, index, type, data } = e;
  const d = data.length;
  w.ensure(MAX_ENTRY_BYTES_BESIDES_DATA + d); // one comparison when room was made
  if (term <= MAX32 && index <= MAX32 && type >= 0 && type <= 0x7f) {
    w.byte(0x08);
    w.byte(type);
    w.byte(0x10);
    w.varint(Number(term));
    w.byte(0x18);
    w.varint(Number(index));
  } else {
    w.byte(0x08);
    if (type >= 0) w.varint(type);
    else w.varint64(BigInt.asUintN(64, BigInt(type))); // a negative enum takes 10 bytes, as in Go
    w.byte(0x10);
    w.varint64(term);
    w.byte(0x18);
    w.varint64(index);
  }
  if (d > 0) {
    w.byte(0x22);
    w.varint(d);
    w.buf.set(data, w.length);
    w.length += d;
  }
}

/**
 * The encoded size of `e` as a raftpb.Entry (gogoproto's `Size()`, what raft's `limitSize`
 * adds up): the bytes {@link writeEntry} writes for it.
 */
export function entrySize(e: Entry): number {
  const d = e.data.length;
  const type = e.type >= 0 ? varintSize(e.type) : 10; // a negative enum takes 10 bytes
  return 3 + type + varint64Size(e.term) + varint64Size(e.index) +
    (d > 0 ? 1 + varintSize(d) + d : 0);
}

/**
 * A raftpb.Entry as read, reused from entry to entry: its data stays a range of the bytes it
 * was read from (`dataStart === dataEnd` when empty or absent), so scans that need only the
 * index make no object per entry.
 */
export interface EntryFields {
  /** The entry type (int32). */
  type: number;
  /** The term. */
  term: bigint;
  /** The index. */
  index: bigint;
  /** Start of the data in the source bytes. */
  dataStart: number;
  /** End of the data in the source bytes. */
  dataEnd: number;
}

/** A fresh {@link EntryFields} to read into. */
export function newEntryFields(): EntryFields {
  return { type: 0, term: 0n, index: 0n, dataStart: 0, dataEnd: 0 };
}

/** Reads the raftpb.Entry in `buf[start:end]` into `out`. Throws ProtobufError. */
export function readEntry(
  r: Reader,
  buf: Uint8Array,
  start: number,
  end: number,
  out: EntryFields,
): void {
  r.reset(buf, start, end);
  out.type = 0;
  out.term = 0n;
  out.index = 0n;
  out.dataStart = out.dataEnd = 0;
  while (r.pos < r.end) {
    const field = r.tag();
    if (field === 1) {
      r.expect(0);
      r.varint();
      out.type = r.lo | 0; // int32 enum
    } else if (field === 2) {
      r.expect(0);
      out.term = r.uint64();
    } else if (field === 3) {
      r.expect(0);
      out.index = r.uint64();
    } else if (field === 4) {
      r.expect(2);
      const e = r.delimited();
      out.dataStart = r.pos;
      out.dataEnd = e;
      r.pos = e;
    } else {
      r.skip(r.wire);
    }
  }
}

// ---------------------------------------------------------------------------------------
// raftpb.HardState { uint64 term = 1; uint64 vote = 2; uint64 commit = 3; }

/** The most bytes {@link writeHardState} produces. */
const MAX_HARD_STATE_BYTES = 33;

/** Appends the raftpb.HardState encoding of `s` (term, vote, commit, all always written). */
export function writeHardState(w: ByteWriter, s: HardState): void {
  w.ensure(MAX_HARD_STATE_BYTES);
  w.byte(0x08);
  w.varint64(s.term);
  w.byte(0x10);
  w.varint64(s.vote);
  w.byte(0x18);
  w.varint64(s.commit);
}

/** Decodes the raftpb.HardState in `buf[start:end]`. Throws ProtobufError. */
export function readHardState(r: Reader, buf: Uint8Array, start: number, end: number): HardState {
  r.reset(buf, start, end);
  const s = emptyHardState();
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

// ---------------------------------------------------------------------------------------
// walpb.Snapshot { uint64 index = 1; uint64 term = 2; raftpb.ConfState conf_state = 3; }

/** The fields of raftpb.ConfState, in field-number order (all repeated uint64). */
const CONF_LISTS = ["voters", "learners", "votersOutgoing", "learnersNext"] as const;

/** Bytes of the raftpb.ConfState encoding of `c`. */
export function confStateSize(c: ConfState): number {
  let n = 2; // auto_leave, always written
  for (const list of CONF_LISTS) for (const v of c[list]) n += 1 + varint64Size(v);
  return n;
}

/**
 * Appends the walpb.Snapshot encoding of `s`: index, term, then conf_state when given, as
 * gogoproto writes it (etcd 3.5+): repeated fields unpacked, one tag per value, and
 * `auto_leave` always. Without it the record is what etcd 3.4 writes.
 */
export function writeSnapshot(w: ByteWriter, s: Snapshot): void {
  const c = s.confState;
  const confBytes = c === undefined ? 0 : confStateSize(c);
  w.ensure(22 + (c === undefined ? 0 : 1 + 5 + confBytes));
  w.byte(0x08);
  w.varint64(s.index);
  w.byte(0x10);
  w.varint64(s.term);
  if (c === undefined) return;
  w.byte(0x1a);
  w.varint(confBytes);
  writeConfState(w, c);
}

/**
 * Appends the raftpb.ConfState encoding of `c` ({@link confStateSize} bytes, room ensured by
 * the caller), as gogoproto writes it: repeated fields unpacked, `auto_leave` always. The one
 * writer of ConfState: walpb.Snapshot records and `.snap` files both use it.
 */
export function writeConfState(w: ByteWriter, c: ConfState): void {
  for (let f = 0; f < CONF_LISTS.length; f++) {
    const tag = (f + 1) << 3;
    for (const v of c[CONF_LISTS[f]]) {
      w.byte(tag);
      w.varint64(v);
    }
  }
  w.byte(0x28);
  w.byte(c.autoLeave ? 1 : 0);
}

/**
 * Decodes the raftpb.ConfState in `r`'s bytes up to `end` (repeated fields packed or not),
 * merged into `c` as protobuf merges a message field that occurs twice. The one reader of
 * ConfState, for WAL snapshot records and `.snap` files.
 */
export function readConfState(r: Reader, end: number, c: ConfState): ConfState {
  const outer = r.end;
  r.end = end;
  while (r.pos < end) {
    const field = r.tag();
    if (field >= 1 && field <= 4) {
      const list = c[CONF_LISTS[field - 1]];
      if (r.wire === 2) {
        const e = r.delimited(); // packed: what a proto3 writer may send
        const inner = r.end;
        r.end = e;
        while (r.pos < e) list.push(r.uint64());
        r.end = inner;
      } else {
        r.expect(0);
        list.push(r.uint64());
      }
    } else if (field === 5) {
      r.expect(0);
      r.varint();
      c.autoLeave = r.lo !== 0 || r.hi !== 0;
    } else {
      r.skip(r.wire);
    }
  }
  r.end = outer;
  return c;
}

/** Decodes the walpb.Snapshot in `buf[start:end]`, with its conf_state when present. */
export function readSnapshot(r: Reader, buf: Uint8Array, start: number, end: number): Snapshot {
  r.reset(buf, start, end);
  const s: Snapshot = { index: 0n, term: 0n };
  while (r.pos < r.end) {
    const field = r.tag();
    if (field === 1 || field === 2) r.expect(0);
    if (field === 1) s.index = r.uint64();
    else if (field === 2) s.term = r.uint64();
    else if (field === 3) {
      r.expect(2);
      const e = r.delimited();
      s.confState = readConfState(r, e, s.confState ?? emptyConfState());
    } else r.skip(r.wire);
  }
  return s;
}

// ---------------------------------------------------------------------------------------
// walpb.Record { int64 type = 1; uint32 crc = 2; bytes data = 3; }

/** Bytes of a walpb.Record with `n` data bytes (`null`: no data field). */
export function recordSize(type: number, crc: number, n: number | null): number {
  return 1 + varintSize(type) + 1 + varintSize(crc) + (n === null ? 0 : 1 + varintSize(n) + n);
}

/**
 * Appends the fields of a walpb.Record up to its data: type, crc, and, when `dataBytes` is
 * not null, the data field's tag and length. The caller appends the `dataBytes` bytes
 * themselves (copied, or encoded in place). Room must have been ensured.
 */
export function writeRecordHead(
  w: ByteWriter,
  type: number,
  crc: number,
  dataBytes: number | null,
): void {
  w.byte(0x08);
  w.varint(type);
  w.byte(0x10);
  w.varint(crc);
  if (dataBytes !== null) {
    w.byte(0x1a);
    w.varint(dataBytes);
  }
}

/**
 * A walpb.Record as decoded, reused from record to record. Its data field is kept as a
 * range of the segment bytes (`buf[dataStart:dataEnd]`), and its payload is decoded in
 * place by the methods below, with this view's own {@link Reader}: replay makes one
 * allocation per entry (the entry's own data view), not two.
 */
export class RecordView {
  /** The record type (see RecordType); -1 when the stored value does not fit a small integer. */
  type = 0;
  /** The stored CRC. */
  crc = 0;
  /** The bytes the record was decoded from. */
  buf: Uint8Array = EMPTY;
  /** Start of the data field in `buf`. */
  dataStart = 0;
  /** End of the data field in `buf`. */
  dataEnd = 0;
  /** Whether the record has a data field (an empty one counts). */
  hasData = false;
  /** The reader for this record and its payload. */
  private readonly reader = new Reader();
  /** The entry fields {@link RecordView.entry} reads into. */
  private readonly fields = newEntryFields();

  /** The data field as a view into `buf`, or null when absent. Copy what must outlive it. */
  get data(): Uint8Array | null {
    return this.hasData ? this.buf.subarray(this.dataStart, this.dataEnd) : null;
  }

  /** Decodes the walpb.Record in `buf[start:end]` into this view. Throws ProtobufError. */
  read(buf: Uint8Array, start: number, end: number): void {
    const r = this.reader;
    r.reset(buf, start, end);
    this.type = 0;
    this.crc = 0;
    this.buf = buf;
    this.hasData = false;
    this.dataStart = 0;
    this.dataEnd = 0;
    while (r.pos < r.end) {
      const field = r.tag();
      if (field === 1) {
        r.expect(0);
        r.varint();
        this.type = r.hi === 0 && r.lo < 0x80000000 ? r.lo : -1;
      } else if (field === 2) {
        r.expect(0);
        r.varint();
        this.crc = r.lo; // uint32: Go keeps the low 32 bits
      } else if (field === 3) {
        r.expect(2);
        const e = r.delimited();
        this.hasData = true;
        this.dataStart = r.pos;
        this.dataEnd = e;
        r.pos = e;
      } else {
        r.skip(r.wire);
      }
    }
  }

  /** Reads the payload as a raftpb.Entry into `out` (data as a range of `buf`). */
  entryFields(out: EntryFields): void {
    readEntry(this.reader, this.buf, this.dataStart, this.dataEnd, out);
  }

  /** The payload as an Entry; its data is a view into `buf`. */
  entry(): Entry {
    const f = this.fields;
    readEntry(this.reader, this.buf, this.dataStart, this.dataEnd, f);
    const data = f.dataEnd > f.dataStart ? this.buf.subarray(f.dataStart, f.dataEnd) : EMPTY;
    return { term: f.term, index: f.index, type: f.type, data };
  }

  /** The payload as a raftpb.HardState. */
  hardState(): HardState {
    return readHardState(this.reader, this.buf, this.dataStart, this.dataEnd);
  }

  /** The payload as a walpb.Snapshot. */
  snapshot(): Snapshot {
    return readSnapshot(this.reader, this.buf, this.dataStart, this.dataEnd);
  }
}
