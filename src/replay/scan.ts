/**
 * The record loop under every reader of a WAL (replay, streaming, verify, stat, repair,
 * valid snapshots): walks the records of a run of segments in windows, and enforces the crc
 * chain between segments.
 *
 * @module
 */

import { ioError, WalError } from "../errors.ts";
import type { FileSystem, WalFile } from "../fs/types.ts";
import { Decoder } from "../segment/decoder.ts";
import type { RecordView } from "../segment/messages.ts";
import { ProtobufError } from "../segment/wire.ts";
import { RecordType } from "../types.ts";
import { recordWindows, type ScratchBuffer } from "./windows.ts";

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

/** Opens segment files, for reading unless `write`; nothing stays open on failure. */
export async function openSegmentFiles(
  fs: FileSystem,
  paths: readonly string[],
  write = false,
): Promise<SegmentFile[]> {
  const out: SegmentFile[] = [];
  try {
    for (const path of paths) {
      const file = await fs.open(path, { write }).catch((e) => {
        throw ioError(e, "cannot open segment", path);
      });
      out.push({ path, file });
    }
  } catch (e) {
    await closeSegmentFiles(out).catch(() => {});
    throw e;
  }
  return out;
}

/** Closes segment files; the first error is thrown (as `what`) after all were closed. */
export async function closeSegmentFiles(
  files: readonly SegmentFile[],
  what = "cannot close segment",
): Promise<void> {
  let first: { e: unknown; path: string } | null = null;
  for (const f of files) {
    try {
      await f.file.close();
    } catch (e) {
      first ??= { e, path: f.path };
    }
  }
  if (first !== null) throw ioError(first.e, what, first.path);
}
