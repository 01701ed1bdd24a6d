/**
 * The replay loop shared by `WAL.readAll`, `verify`, `validSnapshotEntries` and `repair`:
 * walks the records of a run of segments, enforces the crc chain, and checks metadata and
 * the requested snapshot the way etcd's ReadAll does.
 *
 * @module
 */

import { Decoder } from "./decoder.ts";
import { FRAME_HEADER_BYTES, type FrameHeader, readFrameHeader } from "./frame.ts";
import { ioError, WalError } from "./errors.ts";
import type { WalFile } from "./fs/types.ts";
import { ProtobufError, readSnapshot, type RecordView } from "./messages.ts";
import { RecordType, type Snapshot } from "./types.ts";

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

/** The part of a segment that holds records, and the segment's full size. */
export interface SegmentBytes {
  /** The file from offset 0 through the end-of-records word (or the whole file). */
  bytes: Uint8Array;
  /** The file's size, preallocated tail included. */
  size: number;
}

/** The first read of a segment; later reads double, so a small log costs one read. */
const FIRST_READ = 1 << 20;

/**
 * The largest single read. The runtimes' asynchronous reads go through a temporary buffer
 * of the read's size: one 64 MB read would cost 64 MB more memory than the segment itself.
 */
const MAX_READ = 4 << 20;

/**
 * Segments up to this size get one buffer of their full size at once. Pages that no read
 * touches are never backed by memory (large typed arrays are zero pages until written), so
 * a preallocated 64 MB tail costs only what its records fill, and nothing is copied as the
 * reads go on. Larger files (never written by a WAL) grow a buffer by doubling instead.
 */
const ONE_BUFFER_MAX = 1 << 30;

/**
 * A buffer reused from one segment to the next by scans that keep no views into segment
 * bytes (verify, streaming), so their memory stays at one segment.
 */
export interface ScratchBuffer {
  /** The buffer; replaced by a larger one when a segment needs it. */
  buf: Uint8Array;
}

/**
 * Reads a segment up to the end of its records, not through its preallocated zero tail:
 * it follows the frames' length words through what it has read and reads on (in doubling
 * chunks) only while a record continues past it. Memory and time stay proportional to the
 * records, not to the file's size.
 */
export async function readUsed(file: WalFile, scratch?: ScratchBuffer): Promise<SegmentBytes> {
  const size = await file.size();
  const capacity = Math.min(size, ONE_BUFFER_MAX);
  let buf: Uint8Array;
  if (scratch === undefined) buf = new Uint8Array(capacity);
  else {
    // Cut segments end a little past the segment size, each by a different amount: headroom
    // keeps one scratch buffer for all of them instead of a new one per slightly larger file.
    if (scratch.buf.length < capacity) {
      scratch.buf = new Uint8Array(Math.min(ONE_BUFFER_MAX, capacity + (capacity >>> 3)));
    }
    buf = scratch.buf;
  }
  let loaded = 0;
  let chunk = FIRST_READ;
  let off = 0;
  const header: FrameHeader = { recordBytes: 0, padBytes: 0, isEnd: false };
  for (;;) {
    const want = Math.min(buf.length, loaded + Math.min(chunk, MAX_READ));
    const n = await file.read(buf.subarray(loaded, want), loaded);
    loaded += n;
    // walk the frames that are fully loaded
    let need = 0;
    while (off + FRAME_HEADER_BYTES <= loaded) {
      readFrameHeader(buf, off, header);
      if (header.isEnd) return { bytes: buf.subarray(0, loaded), size };
      const next = off + FRAME_HEADER_BYTES + header.recordBytes + header.padBytes;
      if (next > loaded) {
        need = next;
        break;
      }
      off = next;
    }
    if (loaded >= size || loaded < want) return { bytes: buf.subarray(0, loaded), size };
    chunk = Math.max(chunk * 2, need + FRAME_HEADER_BYTES - loaded);
    if (loaded + chunk > buf.length && buf.length < size) {
      // only past ONE_BUFFER_MAX: grow, at least doubling
      const grown = new Uint8Array(Math.min(size, Math.max(buf.length * 2, loaded + chunk)));
      grown.set(buf.subarray(0, loaded));
      buf = grown;
      if (scratch !== undefined) scratch.buf = grown;
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
    const { bytes, size } = await readUsed(file, scratch).catch((e) => {
      throw ioError(e, "cannot read segment", path);
    });
    lastSize = size;
    dec.begin(path, bytes, k === files.length - 1);
    at.file = path;
    for (;;) {
      at.offset = dec.offset;
      try {
        if (!dec.next()) break;
      } catch (e) {
        if (e instanceof WalError && e.code === "UNEXPECTED_EOF") {
          return { records, torn: e, offset: dec.offset, crc: dec.crc, lastSize, lastSegment: k };
        }
        throw e;
      }
      records++;
      at.end = dec.offset;
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
  return {
    records,
    torn: null,
    offset: dec.offset,
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
      const s = readSnapshot(rec.data ?? EMPTY);
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
