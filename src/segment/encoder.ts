/**
 * The write side of the record stream: encodes records with the rolling CRC-32C, frames
 * them, and collects the bytes of one batch in a reused buffer so a whole `save` becomes a
 * single write. Records are read back by `decoder.ts`.
 *
 * @module
 */

import { crc32c } from "./crc32c.ts";
import { EtcdFlushModel } from "./etcd_flush_model.ts";
import { FRAME_HEADER_BYTES, writeFrameHeader } from "./frame.ts";
import {
  MAX_ENTRY_BYTES_BESIDES_DATA,
  recordSize,
  writeEntry,
  writeHardState,
  writeRecordHead,
  writeSnapshot,
} from "./messages.ts";
import { ByteWriter, varintSize } from "./wire.ts";
import { type Entry, type HardState, RecordType, type Snapshot } from "../types.ts";

/** Encodes records for one segment, continuing the CRC chain from `prevCrc`. */
export class Encoder {
  /** The running CRC: the CRC of every record's data so far, across segments. */
  crc: number;
  /** Framed bytes not yet handed to the file. */
  readonly pending: ByteWriter = new ByteWriter();
  /** Where etcd would have flushed to; decides automatic cuts. */
  readonly flushModel: EtcdFlushModel;
  private readonly scratch: ByteWriter = new ByteWriter(64);

  /** Starts encoding at byte `offset` of a segment, chaining from `prevCrc`. */
  constructor(prevCrc: number, offset: number) {
    this.crc = prevCrc;
    this.flushModel = new EtcdFlushModel(offset);
  }

  /**
   * Appends an entry record, encoding the entry in place (the hot path: no scratch copy).
   * The record's crc field and the entry's length come before the entry, and neither is
   * known until it is written: the entry goes where a 5-byte crc and the usual length
   * varint leave it, and moves only when they turn out otherwise (the crc, 1 in 16).
   */
  entry(e: Entry): void {
    const w = this.pending;
    const d = e.data.length;
    // the length varint when term and index take a few bytes: almost always right
    const lenGuess = varintSize(d + 7 + varintSize(d));
    // frame word, type field, crc field of up to 5 bytes, data tag, length, entry, padding
    w.ensure(FRAME_HEADER_BYTES + 9 + 5 + MAX_ENTRY_BYTES_BESIDES_DATA + d + 7);
    const start = w.length;
    const payloadAt = start + FRAME_HEADER_BYTES + 9 + lenGuess;
    w.length = payloadAt;
    writeEntry(w, e);
    const size = w.length - payloadAt;
    this.crc = crc32c(w.buf, this.crc, payloadAt, payloadAt + size);
    const shift = 5 - varintSize(this.crc) + lenGuess - varintSize(size);
    if (shift !== 0) w.buf.copyWithin(payloadAt - shift, payloadAt, payloadAt + size);
    w.length = start + FRAME_HEADER_BYTES;
    writeRecordHead(w, RecordType.Entry, this.crc, size);
    w.length += size;
    this.finishFrame(start);
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
      this.frame(RecordType.Metadata, null, 0);
      return;
    }
    this.crc = crc32c(metadata, this.crc);
    this.frame(RecordType.Metadata, metadata, metadata.length);
  }

  /** Appends the crc record that opens every segment; it carries the running CRC. */
  crcRecord(): void {
    this.frame(RecordType.Crc, null, 0);
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
    this.frame(type, s.buf, s.length);
  }

  /** Appends a record whose data is `data[0:n]` (or absent). */
  private frame(type: number, data: Uint8Array | null, n: number): void {
    const w = this.pending;
    const dataBytes = data === null ? null : n;
    w.ensure(FRAME_HEADER_BYTES + recordSize(type, this.crc, dataBytes) + 7);
    const start = w.length;
    w.length += FRAME_HEADER_BYTES;
    writeRecordHead(w, type, this.crc, dataBytes);
    if (data !== null) w.copy(data, 0, n);
    this.finishFrame(start);
  }

  /** Writes the length word of the record that starts at `start`, and its padding. */
  private finishFrame(start: number): void {
    const w = this.pending;
    const n = w.length - start - FRAME_HEADER_BYTES;
    const pad = writeFrameHeader(w.buf, start, n);
    w.buf.fill(0, w.length, w.length + pad);
    w.length += pad;
    // etcd issues two writes per record: the length word, then record plus padding.
    this.flushModel.write(FRAME_HEADER_BYTES);
    this.flushModel.write(n + pad);
  }
}
