/**
 * The read side of the record stream: walks framed records through the segments in order,
 * checks the rolling CRC-32C, and tells a torn tail from corruption.
 *
 * Rules (etcd's current decoder):
 * - a zero length word or the end of the file ends a segment;
 * - a record that runs past the end of the file is `UNEXPECTED_EOF` (a torn tail) in the
 *   last segment and `CRC_MISMATCH` in an earlier one (a cut synced it whole, so it cannot
 *   be torn); its length is never used to allocate;
 * - a record that fails to decode or fails its CRC is `UNEXPECTED_EOF` when it sits in the
 *   last segment and one of its 512-byte sector chunks is all zeros (the write was torn);
 *   otherwise it is `DECODE` or `CRC_MISMATCH`.
 *
 * @module
 */

import { crc32c } from "./crc32c.ts";
import { WalError } from "../errors.ts";
import { FRAME_HEADER_BYTES, type FrameHeader, readFrameHeader, SECTOR_BYTES } from "./frame.ts";
import { RecordView } from "./messages.ts";
import { ProtobufError } from "./wire.ts";
import { RecordType } from "../types.ts";

/** Decodes the records of one segment at a time, carrying the CRC chain across segments. */
export class Decoder {
  /** The running CRC after the last good record. */
  crc = 0;
  /** Offset just past the last good record, in the bytes given to {@link Decoder.begin}. */
  offset = 0;
  /** File offset of those bytes: a segment may be decoded in windows. */
  base = 0;

  /** The file offset just past the last good record: `base + offset`. */
  get fileOffset(): number {
    return this.base + this.offset;
  }
  /** The record produced by the last successful {@link Decoder.next}; reused. */
  readonly record: RecordView = new RecordView();
  /** Path of the current segment (for errors). */
  path = "";
  private buf: Uint8Array = new Uint8Array(0);
  private isLast = false;
  private readonly header: FrameHeader = { recordBytes: 0, padBytes: 0, isEnd: false };

  /**
   * Starts decoding `bytes`: the segment at `path` from file offset `base` on, through its
   * end (or whole records of it, when a later call goes on where these end).
   */
  begin(path: string, bytes: Uint8Array, isLast: boolean, base = 0): void {
    this.path = path;
    this.buf = bytes;
    this.isLast = isLast;
    this.offset = 0;
    this.base = base;
  }

  /** Restarts the CRC chain from `prevCrc` (what a crc record says). */
  updateCRC(prevCrc: number): void {
    this.crc = prevCrc;
  }

  /**
   * Decodes the next record into {@link Decoder.record}. Returns false at the end of the
   * segment; throws a WalError on a torn or corrupt record.
   */
  next(): boolean {
    const buf = this.buf;
    const off = this.offset;
    const left = buf.length - off;
    if (left === 0) return false;
    if (left < FRAME_HEADER_BYTES) {
      // Fewer than 8 bytes left: zeros there are the end of the records (a segment size
      // that is not a multiple of 8 leaves such a tail); anything else is a cut-off word.
      for (let i = off; i < buf.length; i++) {
        if (buf[i] !== 0) throw this.short("segment ends inside a length word");
      }
      return false;
    }
    const h = this.header;
    readFrameHeader(buf, off, h);
    if (h.isEnd) return false;
    const start = off + FRAME_HEADER_BYTES;
    if (h.recordBytes + h.padBytes > buf.length - start) {
      throw this.short(
        `record of ${h.recordBytes} bytes runs past the end of the segment (${buf.length} bytes)`,
      );
    }
    const end = start + h.recordBytes;
    const rec = this.record;
    try {
      rec.read(buf, start, end);
    } catch (e) {
      if (!(e instanceof ProtobufError)) throw e;
      if (this.isTorn(start, end + h.padBytes)) {
        throw this.error("UNEXPECTED_EOF", `torn record (${e.message})`);
      }
      throw this.error("DECODE", `malformed record: ${e.message}`);
    }
    if (rec.type !== RecordType.Crc) {
      const crc = rec.hasData ? crc32c(buf, this.crc, rec.dataStart, rec.dataEnd) : this.crc;
      if (crc !== rec.crc) {
        if (this.isTorn(start, end + h.padBytes)) {
          throw this.error("UNEXPECTED_EOF", "torn record (CRC mismatch in a zeroed sector)");
        }
        throw this.error(
          "CRC_MISMATCH",
          `record CRC 0x${hex(rec.crc)} does not match computed 0x${hex(crc)}`,
        );
      }
      this.crc = crc;
    }
    this.offset = end + h.padBytes;
    return true;
  }

  /**
   * A record in the last segment is torn when any 512-byte sector chunk of it (by file
   * offset) is all zeros: the sectors of an interrupted write land independently.
   */
  private isTorn(start: number, end: number): boolean {
    if (!this.isLast) return false;
    const buf = this.buf;
    const base = this.base; // sectors are counted from the start of the file
    let chunkStart = start;
    while (chunkStart < end) {
      const chunkEnd = Math.min(
        end,
        (Math.floor((base + chunkStart) / SECTOR_BYTES) + 1) * SECTOR_BYTES - base,
      );
      let zero = true;
      for (let i = chunkStart; i < chunkEnd; i++) {
        if (buf[i] !== 0) {
          zero = false;
          break;
        }
      }
      if (zero) return true;
      chunkStart = chunkEnd;
    }
    return false;
  }

  /**
   * A record cut short by the end of the file: a torn tail in the last segment. An earlier
   * segment was synced whole before the next was created, so there it is corruption (current
   * etcd says ErrUnexpectedEOF for both, and its read mode then silently drops the later
   * segments; this library refuses to).
   */
  private short(msg: string): WalError {
    return this.isLast
      ? this.error("UNEXPECTED_EOF", msg)
      : this.error("CRC_MISMATCH", `${msg}, and it is not the last segment`);
  }

  private error(code: "UNEXPECTED_EOF" | "CRC_MISMATCH" | "DECODE", msg: string): WalError {
    return new WalError(code, msg, { file: this.path, offset: this.fileOffset });
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(8, "0");
}
