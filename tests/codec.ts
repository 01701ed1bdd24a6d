/**
 * Test-side wrappers of the library's message codec (src/segment/messages.ts): decode a
 * whole buffer, or write a record from a data slice, in one call.
 */

import {
  readHardState,
  readSnapshot,
  recordSize,
  RecordView,
  writeRecordHead,
} from "../src/segment/messages.ts";
import { type ByteWriter, Reader } from "../src/segment/wire.ts";
import type { Entry, HardState, Snapshot } from "../src/types.ts";

/** Decodes a whole buffer as a raftpb.Entry, as replay does (`RecordView.entry`). */
export function decodeEntry(bytes: Uint8Array): Entry {
  const rec = new RecordView();
  rec.buf = bytes;
  rec.hasData = true;
  rec.dataStart = 0;
  rec.dataEnd = bytes.length;
  return rec.entry();
}

/** Decodes a whole buffer as a raftpb.HardState. */
export function decodeHardState(bytes: Uint8Array): HardState {
  return readHardState(new Reader(), bytes, 0, bytes.length);
}

/** Decodes a whole buffer as a walpb.Snapshot. */
export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  return readSnapshot(new Reader(), bytes, 0, bytes.length);
}

/** Decodes `buf[start:end]` as a walpb.Record into `out`. */
export function readRecord(buf: Uint8Array, start: number, end: number, out: RecordView): void {
  out.read(buf, start, end);
}

/** Appends a walpb.Record whose data is `src[start:end]` (or absent when `src` is null). */
export function writeRecord(
  w: ByteWriter,
  type: number,
  crc: number,
  src: Uint8Array | null,
  start = 0,
  end: number = src === null ? 0 : src.length,
): void {
  const n = src === null ? null : end - start;
  w.ensure(recordSize(type, crc, n));
  writeRecordHead(w, type, crc, n);
  if (src !== null) w.copy(src, start, end);
}

export { RecordView };
