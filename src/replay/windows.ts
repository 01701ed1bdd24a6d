/**
 * Reading a segment in windows of whole records: scans hold a window, not a 64 MB segment,
 * and a preallocated zero tail is never read.
 *
 * @module
 */

import { ioError } from "../errors.ts";
import type { WalFile } from "../fs/types.ts";
import { FRAME_HEADER_BYTES, type FrameHeader, readFrameHeader } from "../segment/frame.ts";

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
