/**
 * Record framing: an 8-byte little-endian length word, the record bytes, then zero padding
 * to an 8-byte boundary. The word's low 56 bits are the record length; when padding is
 * needed its top byte is `0x80 | padBytes`. Aligning every frame to 8 bytes means a length
 * word never straddles a sector, so it is never itself torn. A word of 0 ends a segment.
 *
 * @module
 */

/** Size of the length word in front of every record. */
export const FRAME_HEADER_BYTES = 8;

/** Sector size used to tell a torn write from corruption (etcd's minSectorSize). */
export const SECTOR_BYTES = 512;

/** Padding that brings `recordBytes` to a multiple of 8. */
export function padBytesFor(recordBytes: number): number {
  return (8 - (recordBytes % 8)) % 8;
}

/**
 * Writes the length word for a record of `recordBytes` bytes into `buf` at `off`.
 * Returns the number of padding bytes the caller must append after the record.
 */
export function writeFrameHeader(buf: Uint8Array, off: number, recordBytes: number): number {
  const pad = padBytesFor(recordBytes);
  const lo = recordBytes >>> 0;
  let hi = Math.floor(recordBytes / 0x100000000) & 0xffffff;
  if (pad !== 0) hi |= (0x80 | pad) << 24;
  buf[off] = lo;
  buf[off + 1] = lo >>> 8;
  buf[off + 2] = lo >>> 16;
  buf[off + 3] = lo >>> 24;
  buf[off + 4] = hi;
  buf[off + 5] = hi >>> 8;
  buf[off + 6] = hi >>> 16;
  buf[off + 7] = hi >>> 24;
  return pad;
}

/** A decoded length word. `recordBytes` may be huge when the word is corrupt: check it. */
export interface FrameHeader {
  /** The record length (low 56 bits). */
  recordBytes: number;
  /** Padding after the record (0-7). */
  padBytes: number;
  /** True when the whole word is zero: the end of the segment's records. */
  isEnd: boolean;
}

/** Reads the length word at `buf[off:off+8]` into `out` (reused). */
export function readFrameHeader(buf: Uint8Array, off: number, out: FrameHeader): void {
  const lo = (buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16) | (buf[off + 3] << 24)) >>> 0;
  const hi = (buf[off + 4] | (buf[off + 5] << 8) | (buf[off + 6] << 16) | (buf[off + 7] << 24)) >>>
    0;
  out.isEnd = lo === 0 && hi === 0;
  out.recordBytes = (hi & 0xffffff) * 0x100000000 + lo;
  // Go reads the word as int64: padding is only meaningful when the sign bit is set.
  out.padBytes = hi & 0x80000000 ? (hi >>> 24) & 0x7 : 0;
}
