/**
 * A read-only inventory of a WAL directory: each segment's index range, size and record
 * counts, and the last hard state. What `wal stat` prints.
 *
 * @module
 */

import { ioError } from "../errors.ts";
import { newEntryFields } from "../segment/messages.ts";
import { cleanPath, joinPath } from "../path.ts";
import { closeSegmentFiles, openSegmentFiles, scanSegments } from "../replay/scan.ts";
import { type TornTail, tornTailOf } from "./verify.ts";
import { emptyHardState, type HardState, RecordType } from "../types.ts";
import { resolveOptions, type WalOptions } from "../options.ts";
import { listSegments } from "../wal/segment_dir.ts";

/** One segment as found on disk. */
export interface SegmentStat {
  /** File name. */
  name: string;
  /** Sequence number from the name. */
  seq: bigint;
  /** Raft index the segment starts at, from the name. */
  startIndex: bigint;
  /** File size in bytes (the last segment is preallocated). */
  size: number;
  /** Bytes holding records. */
  usedBytes: number;
  /** Number of records (all types). */
  records: number;
  /** Number of entry records. */
  entries: number;
  /** Lowest entry index in the segment, or null when it has no entries. */
  firstIndex: bigint | null;
  /** Highest entry index in the segment, or null when it has no entries. */
  lastIndex: bigint | null;
}

/** What {@link statWal} found. */
export interface WalStat {
  /** The segments, in order. */
  segments: SegmentStat[];
  /** The last hard state recorded (all zeros when none). */
  state: HardState;
  /** Set when the last segment ends in a torn write. */
  tornTail: TornTail | null;
}

/** Reads every segment of `dir` without locking and summarizes it. */
export async function statWal(dir: string, options?: WalOptions): Promise<WalStat> {
  const { fs } = await resolveOptions(options);
  dir = cleanPath(dir);
  const names = await listSegments(fs, dir);
  const files = await openSegmentFiles(fs, names.map((n) => joinPath(dir, n.name)));
  try {
    const segments: SegmentStat[] = [];
    for (let i = 0; i < names.length; i++) {
      const { path, file } = files[i];
      const size = await file.size().catch((e) => {
        throw ioError(e, "cannot stat segment", path);
      });
      const n = names[i];
      segments.push({
        name: n.name,
        seq: n.seq,
        startIndex: n.index,
        size,
        usedBytes: 0,
        records: 0,
        entries: 0,
        firstIndex: null,
        lastIndex: null,
      });
    }
    let state = emptyHardState();
    const fields = newEntryFields();
    let s = segments[0];
    const end = await scanSegments(files, (rec, at) => {
      s.records++;
      s.usedBytes = at.end;
      if (rec.type === RecordType.Entry) {
        rec.entryFields(fields);
        const index = fields.index;
        s.entries++;
        if (s.firstIndex === null || index < s.firstIndex) s.firstIndex = index;
        if (s.lastIndex === null || index > s.lastIndex) s.lastIndex = index;
      } else if (rec.type === RecordType.State) {
        state = rec.hardState();
      }
    }, (k) => (s = segments[k]));
    return { segments, state, tornTail: tornTailOf(end, dir) };
  } finally {
    await closeSegmentFiles(files).catch(() => {});
  }
}
