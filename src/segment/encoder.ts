/**
 * The write side of the record stream: encodes records with the rolling CRC-32C, frames
 * them, and collects the bytes of one batch in a reused buffer so a whole `save` becomes a
 * single write.
 *
 * @module
 */

import { crc32c } from "./crc32c.ts";
import { EtcdFlushModel } from "./etcd_flush_model.ts";
import { FRAME_HEADER_BYTES, padBytesFor, writeFrameHeader } from "./frame.ts";
import {
  ByteWriter,
  entrySize,
  recordSize,
  varintSize,
  writeEntry,
  writeHardState,
  writeRecord,
  writeSnapshot,
} from "./messages.ts";
import { type Entry, type HardState, RecordType, type Snapshot } from "../types.ts";

const MAX32 = 0xffffffffn;

/** Encodes records for one segment, continuing the CRC chain from `prevCrc`. */
export class Encoder {
  /** The running CRC: the CRC of every record's data so far, across segments. */
  crc: number;
  /** Framed bytes not yet handed to the file. */
  readonly pending: ByteWriter = new ByteWriter();
  /** Where etcd would have flushed to; decides automatic cuts. */
  readonly flushModel: EtcdFlushModel;
  private readonly scratch: ByteWriter = new ByteWriter();
  /** Where the entry record being written starts (its frame word). */
  private entryStart = 0;

  /** Starts encoding at byte `offset` of a segment, chaining from `prevCrc`. */
  constructor(prevCrc: number, offset: number) {
    this.crc = prevCrc;
    this.flushModel = new EtcdFlushModel(offset);
  }

  /**
   * Appends an entry record, encoding the entry in place (the hot path: no scratch copy).
   * The record's crc field comes before the data it covers, so the entry is written where a
   * 5-byte crc varint leaves it and moved back only when the CRC turns out shorter (1 in 16).
   */
  entry(e: Entry): void {
    const { term, index, type, data } = e;
    // Term and index below 2^32 and a small type, as in every real log: plain numbers from
    // here on (one BigInt comparison each), instead of BigInt arithmetic per varint.
    if (term > MAX32 || index > MAX32 || type < 0 || type > 0x7f) {
      const size = entrySize(e);
      this.reserveEntry(size);
      writeEntry(this.pending, e);
      this.finishEntry(size);
      return;
    }
    const t = Number(term);
    const x = Number(index);
    const d = data.length;
    const size = 1 + 1 + 1 + varintSize(t) + 1 + varintSize(x) +
      (d > 0 ? 1 + varintSize(d) + d : 0);
    const w = this.pending;
    this.reserveEntry(size);
    w.byte(0x08);
    w.byte(type);
    w.byte(0x10);
    w.varint(t);
    w.byte(0x18);
    w.varint(x);
    if (d > 0) {
      w.byte(0x22);
      w.varint(d);
      w.buf.set(data, w.length);
      w.length += d;
    }
    this.finishEntry(size);
  }

  /**
   * Makes room for an entry record whose payload is `size` bytes and leaves the writer
   * where the payload goes: behind the frame word and the record's header fields, with 5
   * bytes for the crc varint.
   */
  private reserveEntry(size: number): void {
    const w = this.pending;
    // frame word, type field, crc field (at most 5 bytes), data tag, data length, data
    w.ensure(FRAME_HEADER_BYTES + 1 + 1 + 1 + 5 + 1 + 5 + size + 7);
    this.entryStart = w.length;
    w.length += FRAME_HEADER_BYTES + 3 + 5 + 1 + varintSize(size);
  }

  /**
   * With the entry's `size` bytes written after {@link Encoder.reserveEntry}: computes the
   * CRC, moves the entry back when the crc varint is shorter than the 5 bytes left for it,
   * and writes the frame word and the record's header fields in front of it.
   */
  private finishEntry(size: number): void {
    const w = this.pending;
    const start = this.entryStart;
    const payloadAt = w.length - size;
    this.crc = crc32c(w.buf, this.crc, payloadAt, payloadAt + size);
    const crcLen = varintSize(this.crc);
    const shift = 5 - crcLen;
    if (shift > 0) w.buf.copyWithin(payloadAt - shift, payloadAt, payloadAt + size);
    // header fields, in order, behind the frame word
    w.length = start + FRAME_HEADER_BYTES;
    w.byte(0x08);
    w.byte(RecordType.Entry);
    w.byte(0x10);
    w.varint(this.crc);
    w.byte(0x1a);
    w.varint(size);
    w.length += size;
    const n = w.length - start - FRAME_HEADER_BYTES;
    const pad = writeFrameHeader(w.buf, start, n);
    w.buf.fill(0, w.length, w.length + pad);
    w.length += pad;
    this.flushModel.write(FRAME_HEADER_BYTES);
    this.flushModel.write(n + pad);
  }

  /** Appends a hard state record. */
  state(s: HardState): void {
    this.scratch.length = 0;
    writeHardState(this.scratch, s);
    this.payload(RecordType.State);
  }

  /** Appends a snapshot record. */
  snapshot(s: Snapshot): void {
    this.scratch.length = 0;
    writeSnapshot(this.scratch, s);
    this.payload(RecordType.Snapshot);
  }

  /** Appends the metadata record; `null` leaves its data field out, as Go does for nil. */
  metadata(metadata: Uint8Array | null): void {
    if (metadata === null) {
      this.frame(RecordType.Metadata, null, 0, 0);
      return;
    }
    this.crc = crc32c(metadata, this.crc);
    this.frame(RecordType.Metadata, metadata, 0, metadata.length);
  }

  /** Appends the crc record that opens every segment; it carries the running CRC. */
  crcRecord(): void {
    this.frame(RecordType.Crc, null, 0, 0);
  }

  /** Takes the pending bytes (a view valid until the next append) and empties the buffer. */
  take(): Uint8Array {
    const out = this.pending.buf.subarray(0, this.pending.length);
    this.pending.length = 0;
    return out;
  }

  private payload(type: number): void {
    const s = this.scratch;
    this.crc = crc32c(s.buf, this.crc, 0, s.length);
    this.frame(type, s.buf, 0, s.length);
  }

  private frame(type: number, data: Uint8Array | null, start: number, end: number): void {
    const n = recordSize(type, this.crc, data === null ? null : end - start);
    const pad = padBytesFor(n);
    const w = this.pending;
    w.ensure(FRAME_HEADER_BYTES + n + pad);
    writeFrameHeader(w.buf, w.length, n);
    w.length += FRAME_HEADER_BYTES;
    writeRecord(w, type, this.crc, data, start, end);
    w.buf.fill(0, w.length, w.length + pad);
    w.length += pad;
    // etcd issues two writes per record: the length word, then record plus padding.
    this.flushModel.write(FRAME_HEADER_BYTES);
    this.flushModel.write(n + pad);
  }
}
