/**
 * The replay loop shared by `WAL.readAll`, `verify`, `validSnapshotEntries` and `repair`:
 * walks the records of a run of segments, enforces the crc chain, and checks metadata and
 * the requested snapshot the way etcd's ReadAll does.
 *
 * @module
 */

import { Decoder } from "../segment/decoder.ts";
import { FRAME_HEADER_BYTES, type FrameHeader, readFrameHeader } from "../segment/frame.ts";
import { ioError, WalError } from "../errors.ts";
import type { WalFile } from "../fs/types.ts";
import { ProtobufError, readSnapshot, type RecordView } from "../segment/messages.ts";
import { RecordType, type Snapshot } from "../types.ts";

/** A segment file to replay. */
export interface SegmentFile {
  /** Its path (for errors). */
  path: string;
  /** The open file. */
  file: WalFile;
}

/** Where the record being handled sits. */
export interface RecordPosition {
  /** The segment's path. */
  file: string;
  /** The record's offset in it. */
  offset: number;
  /** Offset just past the record (and its padding). */
  end: number;
}

/** How a scan ended. */
export interface ScanResult {
  /** Records read and checked. */
  records: number;
  /** The torn record that ended the scan early (`UNEXPECTED_EOF`), or null at a clean end. */
  torn: WalError | null;
  /** Offset just past the last good record of the last segment read. */
  offset: number;
  /** The running CRC after the last good record. */
  crc: number;
  /** Size of the last segment read. */
  lastSize: number;
  /** Position in `files` of the last segment read (where a torn record stopped the scan). */
  lastSegment: number;
}

const EMPTY = new Uint8Array(0);

/**
 * The usual size of a window: segments are read and decoded this many bytes at a time, so
 * scans that keep nothing (verify, streaming) hold a window, not a 64 MB segment.
 */
export const WINDOW_BYTES = 4 << 20;

/** A segment's first window is at most this large: most segments of small logs fit in it. */
const FIRST_WINDOW_BYTES = 1 << 20;

/**
 * The window of streaming replay's second pass. Its windows become garbage as the caller
 * drops entries, and the runtimes collect garbage held in large buffers late: smaller
 * windows keep that garbage smaller (streaming 1 GB on Bun: 43-47 MiB of RSS growth
 * instead of 65-101 with 4 MiB windows, measured here), at a few percent of speed.
 */
export const STREAM_WINDOW_BYTES = 1 << 20;

/**
 * A buffer reused from one window to the next by scans that keep no views into segment
 * bytes (verify, the first pass of streaming), so their memory stays at one window.
 */
export interface ScratchBuffer {
  /** The buffer; replaced by a larger one when a record needs it. */
  buf: Uint8Array;
}

/**
 * Whole records of a segment, read into memory. The segment's last window holds the
 * end-of-records word, or runs to the end of the file, where a record may be cut short (a
 * torn tail, or corruption).
 */
export interface RecordWindow {
  /** The bytes: whole records only, except in the last window. */
  bytes: Uint8Array;
  /** The file offset of `bytes[0]`. */
  base: number;
}

/**
 * Reads a segment's records through `limit` (its size, or less) in windows of about
 * `windowBytes` ({@link WINDOW_BYTES}) that end on record boundaries; a record larger than that gets a
 * window of its own size, never past `limit`. Reading stops at the end-of-records word, so
 * a preallocated zero tail is not read. Without `scratch` every window is a new buffer that
 * callers may keep views into.
 */
export async function* recordWindows(
  file: WalFile,
  limit: number,
  scratch?: ScratchBuffer,
  windowBytes: number = WINDOW_BYTES,
): AsyncGenerator<RecordWindow, void, undefined> {
  const header: FrameHeader = { recordBytes: 0, padBytes: 0, isEnd: false };
  let base = 0;
  for (;;) {
    const usual = base === 0 ? Math.min(windowBytes, FIRST_WINDOW_BYTES) : windowBytes;
    let cap = Math.min(usual, limit - base);
    for (;;) {
      let buf: Uint8Array;
      if (scratch === undefined) buf = new Uint8Array(cap);
      else {
        if (scratch.buf.length < cap) scratch.buf = new Uint8Array(cap);
        buf = scratch.buf.subarray(0, cap);
      }
      const n = await file.read(buf, base).catch((e) => {
        throw ioError(e, "cannot read segment", file.path);
      });
      let off = 0;
      let need = 0;
      let final = base + n >= limit || n < cap; // the end of the file is in this window
      while (off + FRAME_HEADER_BYTES <= n) {
        readFrameHeader(buf, off, header);
        if (header.isEnd) {
          final = true;
          break;
        }
        const next = off + FRAME_HEADER_BYTES + header.recordBytes + header.padBytes;
        if (next > n) {
          need = next;
          break;
        }
        off = next;
      }
      if (final) {
        yield { bytes: buf.subarray(0, n), base };
        return;
      }
      if (off > 0) {
        yield { bytes: buf.subarray(0, off), base };
        base += off;
        break;
      }
      // not one whole record fits: a window the size of that record (never past the file)
      cap = Math.min(limit - base, Math.max(cap * 2, need + FRAME_HEADER_BYTES));
    }
  }
}

/**
 * Calls `onRecord` for every good record of `files` in order (crc records included, after
 * their chain check). Corruption throws; a torn record ends the scan and is returned. With
 * `scratch`, segment bytes live in one reused buffer: `onRecord` must not keep views.
 */
export async function scanSegments(
  files: readonly SegmentFile[],
  onRecord: (rec: RecordView, at: RecordPosition) => void,
  onSegment?: (done: number, total: number, path: string) => void,
  scratch?: ScratchBuffer,
): Promise<ScanResult> {
  const dec = new Decoder();
  const rec = dec.record;
  const at: RecordPosition = { file: "", offset: 0, end: 0 };
  let records = 0;
  let lastSize = 0;
  for (let k = 0; k < files.length; k++) {
    const { path, file } = files[k];
    onSegment?.(k, files.length, path);
    const isLast = k === files.length - 1;
    at.file = path;
    lastSize = await file.size().catch((e) => {
      throw ioError(e, "cannot read segment", path);
    });
    for await (const w of recordWindows(file, lastSize, scratch)) {
      dec.begin(path, w.bytes, isLast, w.base);
      for (;;) {
        at.offset = dec.fileOffset;
        try {
          if (!dec.next()) break;
        } catch (e) {
          if (e instanceof WalError && e.code === "UNEXPECTED_EOF") {
            return {
              records,
              torn: e,
              offset: at.offset,
              crc: dec.crc,
              lastSize,
              lastSegment: k,
            };
          }
          throw e;
        }
        records++;
        at.end = dec.fileOffset;
        if (rec.type === RecordType.Crc) {
          // A decoder that starts mid-log has no CRC to compare the first crc record with.
          if (dec.crc !== 0 && rec.crc !== dec.crc) {
            throw new WalError(
              "CRC_MISMATCH",
              "crc record does not continue the previous segment's chain",
              at,
            );
          }
          dec.updateCRC(rec.crc);
        }
        try {
          onRecord(rec, at);
        } catch (e) {
          // The record passed its CRC but its payload is not a valid message (etcd panics).
          if (e instanceof ProtobufError) {
            throw new WalError(
              "DECODE",
              `malformed payload of a type ${rec.type} record: ${e.message}`,
              at,
            );
          }
          throw e;
        }
      }
    }
  }
  return {
    records,
    torn: null,
    offset: dec.fileOffset,
    crc: dec.crc,
    lastSize,
    lastSegment: files.length - 1,
  };
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Checks metadata consistency and finds the snapshot replay starts from. */
export class ReplayChecks {
  /** The metadata seen: undefined before any, null for a record without a data field. */
  metadata: Uint8Array | null | undefined = undefined;
  /** True once a snapshot record matched the requested one. */
  matched = false;
  private readonly start: Snapshot;

  /** Checks against the snapshot replay was asked to start from. */
  constructor(start: Snapshot) {
    this.start = start;
  }

  /** Handles a metadata or snapshot record; returns false for any other type. */
  handle(rec: RecordView, at: RecordPosition): boolean {
    if (rec.type === RecordType.Metadata) {
      const data = rec.data ?? EMPTY;
      if (this.metadata !== undefined && !bytesEqual(this.metadata ?? EMPTY, data)) {
        throw new WalError("METADATA_CONFLICT", "segments carry different metadata", at);
      }
      this.metadata = rec.data === null ? null : data.slice();
      return true;
    }
    if (rec.type === RecordType.Snapshot) {
      const s = readSnapshot(rec.buf, rec.dataStart, rec.dataEnd);
      if (s.index === this.start.index) {
        if (s.term !== this.start.term) {
          throw new WalError(
            "SNAPSHOT_MISMATCH",
            `snapshot at index ${s.index} has term ${s.term}, not ${this.start.term}`,
            at,
          );
        }
        this.matched = true;
      }
      return true;
    }
    return false;
  }

  /** Throws SNAPSHOT_NOT_FOUND unless the requested snapshot was seen. */
  requireMatch(dir: string, torn: WalError | null): void {
    if (this.matched) return;
    throw new WalError(
      "SNAPSHOT_NOT_FOUND",
      `no snapshot record matches index ${this.start.index} term ${this.start.term}` +
        (torn === null ? "" : ` (replay ended at a torn tail: ${torn.message})`),
      { file: dir },
    );
  }
}

/** The error for a record type this format does not define. */
export function unexpectedType(rec: RecordView, at: RecordPosition): WalError {
  return new WalError("DECODE", `unexpected record type ${rec.type}`, at);
}
