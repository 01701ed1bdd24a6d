/**
 * A read-only inventory of a WAL directory: each segment's index range, size and record
 * counts, and the last hard state. What `wal stat` prints.
 *
 * @module
 */

import { ioError } from "../errors.ts";
import { readEntryIndex, readHardState } from "../segment/messages.ts";
import { cleanPath, joinPath } from "../path.ts";
import { scanSegments, type SegmentFile } from "../replay/scan.ts";
import type { TornTail } from "./repair.ts";
import { type HardState, RecordType } from "../types.ts";
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
  /** Lowest and highest entry index in the segment, or null when it has no entries. */
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
  const files: SegmentFile[] = [];
  const segments: SegmentStat[] = [];
  try {
    for (const n of names) {
      const path = joinPath(dir, n.name);
      const file = await fs.open(path).catch((e) => {
        throw ioError(e, "cannot open segment", path);
      });
      files.push({ path, file });
      segments.push({
        name: n.name,
        seq: n.seq,
        startIndex: n.index,
        size: await file.size().catch((e) => {
          throw ioError(e, "cannot stat segment", path);
        }),
        usedBytes: 0,
        records: 0,
        entries: 0,
        firstIndex: null,
        lastIndex: null,
      });
    }
    let state: HardState = { term: 0n, vote: 0n, commit: 0n };
    let k = -1;
    let current = "";
    const end = await scanSegments(files, (rec, at) => {
      if (at.file !== current) {
        current = at.file;
        k = files.findIndex((f) => f.path === at.file);
      }
      const s = segments[k];
      s.records++;
      s.usedBytes = at.end;
      if (rec.type === RecordType.Entry) {
        const index = readEntryIndex(rec.buf, rec.dataStart, rec.dataEnd);
        s.entries++;
        if (s.firstIndex === null || index < s.firstIndex) s.firstIndex = index;
        if (s.lastIndex === null || index > s.lastIndex) s.lastIndex = index;
      } else if (rec.type === RecordType.State) {
        state = readHardState(rec.buf, rec.dataStart, rec.dataEnd);
      }
    });
    const tornTail = end.torn === null
      ? null
      : { file: end.torn.file ?? dir, offset: end.offset, reason: end.torn.reason };
    return { segments, state, tornTail };
  } finally {
    for (const f of files) await f.file.close().catch(() => {});
  }
}
