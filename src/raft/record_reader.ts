/**
 * Random-access reads of entry records from segment files, through a small cache of file
 * blocks bounded in bytes: what raft storage serves `entries(lo, hi)` from, given where each
 * record lies ({@link EntryIndex}). A record was checked (CRC and chain) when the log was
 * indexed; here it is decoded again, not re-checked.
 *
 * @module
 */

import { ioError, WalError } from "../errors.ts";
import type { SegmentFile } from "../replay/scan.ts";
import { FRAME_HEADER_BYTES, type FrameHeader, readFrameHeader } from "../segment/frame.ts";
import { RecordView } from "../segment/messages.ts";
import { ProtobufError } from "../segment/wire.ts";
import { type Entry, RecordType } from "../types.ts";

/** The segment files a {@link RecordReader} reads, by the number the index gives them. */
export interface SegmentSource {
  /** Segment `k`'s path and an open handle to read it. */
  segment(k: number): Promise<SegmentFile>;
}

/** Bytes per cached block: reads are of whole blocks, aligned to their size. */
export const BLOCK_BYTES = 64 * 1024;

/** Reads entry records by segment and offset, caching up to `cacheBytes` of blocks. */
export class RecordReader {
  /** Cached blocks by `segment * 2^32 + block number`, oldest first (a Map keeps order). */
  private readonly blocks = new Map<number, Uint8Array>();
  private cached = 0;
  private readonly header: FrameHeader = { recordBytes: 0, padBytes: 0, isEnd: false };
  private readonly rec = new RecordView();
  /** Bumped by every invalidation: a block read that began before one is not cached. */
  private epoch = 0;

  /**
   * Reads from `segments` (numbered as the index numbers them), keeping at most
   * `cacheBytes` of blocks (at least one block).
   */
  constructor(
    private readonly segments: SegmentSource,
    private readonly cacheBytes: number,
  ) {}

  /** Bytes of blocks now cached. */
  get cachedBytes(): number {
    return this.cached;
  }

  /** The entry whose record starts at `offset` of segment `segment`. */
  async entryAt(segment: number, offset: number): Promise<Entry> {
    const seg = await this.segments.segment(segment);
    const head = await this.bytes(seg, segment, offset, FRAME_HEADER_BYTES);
    readFrameHeader(head, 0, this.header);
    const n = this.header.recordBytes;
    if (this.header.isEnd || n > 0xffffffff) {
      throw new WalError("DECODE", "no record where the index says one starts", {
        file: seg.path,
        offset,
      });
    }
    const body = await this.bytes(seg, segment, offset + FRAME_HEADER_BYTES, n);
    const rec = this.rec;
    try {
      rec.read(body, 0, body.length);
      if (rec.type !== RecordType.Entry) {
        throw new WalError("DECODE", `a type ${rec.type} record where an entry was indexed`, {
          file: seg.path,
          offset,
        });
      }
      return rec.entry();
    } catch (e) {
      if (!(e instanceof ProtobufError)) throw e;
      throw new WalError("DECODE", `malformed entry record: ${e.message}`, {
        file: seg.path,
        offset,
      });
    }
  }

  /**
   * Forgets the cached blocks of `segment` holding bytes `from` to `to - 1`: bytes written
   * there since they were read (the tail being appended to) are read again, and a read of
   * them in flight is not cached.
   */
  invalidate(segment: number, from: number, to: number): void {
    this.epoch++;
    for (let k = Math.floor(from / BLOCK_BYTES); k * BLOCK_BYTES < to; k++) {
      const key = segment * 2 ** 32 + k;
      const b = this.blocks.get(key);
      if (b === undefined) continue;
      this.blocks.delete(key);
      this.cached -= b.length;
    }
  }

  /**
   * `len` bytes of `segment` at `offset`: a view into a cached block when they lie in one,
   * else a copy gathered from blocks. Views are never overwritten (evicted blocks are only
   * dropped), so entries read stay valid.
   */
  private async bytes(
    seg: SegmentFile,
    segment: number,
    offset: number,
    len: number,
  ): Promise<Uint8Array> {
    const first = Math.floor(offset / BLOCK_BYTES);
    const last = Math.floor((offset + len - 1) / BLOCK_BYTES);
    if (first === last || len === 0) {
      const b = await this.block(seg, segment, first);
      const at = offset - first * BLOCK_BYTES;
      if (at + len > b.length) throw short(seg, offset, len);
      return b.subarray(at, at + len);
    }
    const out = new Uint8Array(len);
    let filled = 0;
    for (let k = first; k <= last; k++) {
      const b = await this.block(seg, segment, k);
      const from = k === first ? offset - first * BLOCK_BYTES : 0;
      const take = Math.min(b.length - from, len - filled);
      if (take <= 0) throw short(seg, offset, len);
      out.set(b.subarray(from, from + take), filled);
      filled += take;
    }
    if (filled < len) throw short(seg, offset, len);
    return out;
  }

  /** Block `k` of `segment`, from the cache or the file (shorter at the end of the file). */
  private async block(seg: SegmentFile, segment: number, k: number): Promise<Uint8Array> {
    const key = segment * 2 ** 32 + k;
    const hit = this.blocks.get(key);
    if (hit !== undefined) {
      this.blocks.delete(key); // move to the newest end
      this.blocks.set(key, hit);
      return hit;
    }
    const epoch = this.epoch;
    const buf = new Uint8Array(BLOCK_BYTES);
    // WalFile.read fills the buffer, short only at the end of the file
    const n = await seg.file.read(buf, k * BLOCK_BYTES).catch((e) => {
      throw ioError(e, "cannot read segment", seg.path);
    });
    const b = n === BLOCK_BYTES ? buf : buf.slice(0, n);
    if (epoch !== this.epoch) return b; // bytes may have been written meanwhile: do not keep
    this.blocks.set(key, b);
    this.cached += b.length;
    for (const [old, ob] of this.blocks) {
      if (this.cached <= this.cacheBytes || this.blocks.size === 1) break;
      this.blocks.delete(old);
      this.cached -= ob.length;
    }
    return b;
  }
}

function short(seg: SegmentFile, offset: number, len: number): WalError {
  return new WalError("UNEXPECTED_EOF", `a record of ${len} bytes runs past the end`, {
    file: seg.path,
    offset,
  });
}
