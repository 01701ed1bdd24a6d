/**
 * A WAL indexed instead of replayed into memory: one checked pass over the segments from a
 * snapshot (every check `readAll` makes), keeping for each entry only its term and where
 * its record lies ({@link EntryIndex}), then entries read back on demand
 * ({@link RecordReader}). The read side of raft storage (issue 13).
 *
 * @module
 */

import type { FileSystem } from "../fs/types.ts";
import { scanLog } from "../replay/log_scan.ts";
import { closeSegmentFiles, type SegmentFile } from "../replay/scan.ts";
import { entrySize, newEntryFields } from "../segment/messages.ts";
import type { Entry, HardState, Snapshot } from "../types.ts";
import { openSegmentsFrom } from "../wal/segment_dir.ts";
import { EntryIndex } from "./entry_index.ts";
import { RecordReader } from "./record_reader.ts";

/** A WAL's log from a snapshot on, indexed: answers `term(i)` and reads entries by index. */
export class IndexedLog {
  private constructor(
    /** The entries' terms and locations. */
    readonly index: EntryIndex,
    /** The metadata, as stored (null: a record without a data field). */
    readonly metadata: Uint8Array | null,
    /** The last hard state recorded. */
    readonly state: HardState,
    private readonly files: SegmentFile[],
    private readonly reader: RecordReader,
  ) {}

  /**
   * Indexes the WAL in `dir` from `start` (read-only, no locks), with the checks of
   * `readAll` in read mode: a torn tail ends the log quietly; corruption, a missing
   * snapshot record or an index gap throw. Keeps the segments open until {@link close}.
   */
  static async open(
    fs: FileSystem,
    dir: string,
    start: Snapshot,
    cacheBytes: number,
  ): Promise<IndexedLog> {
    const files = await openSegmentsFrom(fs, dir, start);
    try {
      const index = new EntryIndex(start.index, start.term);
      const fields = newEntryFields();
      let segment = 0;
      const { metadata, state } = await scanLog({
        dir,
        files,
        start,
        requireCleanEnd: false,
        onSegment: (k) => (segment = k),
        onEntry: (rec, at) => {
          rec.entryFields(fields);
          index.put(fields.index, fields.term, segment, at.offset);
        },
        scratch: { buf: new Uint8Array(0) },
      });
      return new IndexedLog(
        index,
        metadata,
        state,
        files,
        new RecordReader({ segment: (k) => Promise.resolve(files[k]) }, cacheBytes),
      );
    } catch (e) {
      await closeSegmentFiles(files).catch(() => {});
      throw e;
    }
  }

  /** The entry at `index` (`COMPACTED` or `UNAVAILABLE` outside the log). */
  async entry(index: bigint): Promise<Entry> {
    const at = this.index.location(index);
    return await this.reader.entryAt(at.segment, at.offset);
  }

  /**
   * Entries `lo` to `hi - 1`, stopping once their encoded sizes pass `maxBytes` (at least
   * one, as raft's `limitSize`).
   */
  async entries(lo: bigint, hi: bigint, maxBytes = Number.POSITIVE_INFINITY): Promise<Entry[]> {
    const out: Entry[] = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const e = await this.entry(i);
      size += entrySize(e);
      if (out.length > 0 && size > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** Bytes held in memory: the index and the block cache. */
  get heldBytes(): number {
    return this.index.heldBytes + this.reader.cachedBytes;
  }

  /** Closes the segment files. */
  async close(): Promise<void> {
    await closeSegmentFiles(this.files);
  }
}
