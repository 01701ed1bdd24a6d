/**
 * `readAll`'s replay: one checked pass that collects the entries after the snapshot, with
 * raft overwrites applied.
 *
 * @module
 */

import type { Entry, ReadAllResult, Snapshot } from "../types.ts";
import { EntrySequence } from "./checks.ts";
import { scanLog } from "./log_scan.ts";
import type { ScanResult, SegmentFile } from "./scan.ts";

/** What {@link replayAll} read, and where the log ends. */
export interface Replayed {
  /** The log after the snapshot. */
  result: ReadAllResult;
  /** Where the scan ended: appends go on from here. */
  end: ScanResult;
  /** The metadata as stored (null: a record without a data field). */
  metadata: Uint8Array | null;
  /** The index of the last entry record read (0 when none); names the next segment. */
  lastIndex: bigint;
}

/**
 * Replays `files` from `start`. Entries' data are views into the segments' window buffers,
 * which are never reused. With `requireCleanEnd`, a torn tail throws `UNEXPECTED_EOF`;
 * without `requireSnapshot`, no snapshot record need match `start`.
 */
export async function replayAll(
  dir: string,
  files: readonly SegmentFile[],
  start: Snapshot,
  requireCleanEnd: boolean,
  requireSnapshot = true,
): Promise<Replayed> {
  const entries: Entry[] = [];
  const seq = new EntrySequence(start.index);
  let lastIndex = 0n;
  const { metadata, state, end } = await scanLog({
    dir,
    files,
    start,
    requireCleanEnd,
    requireSnapshot,
    onEntry: (rec, at) => {
      const e = rec.entry();
      lastIndex = e.index;
      const pos = seq.place(e.index, at);
      if (pos < 0) return;
      if (pos !== entries.length) entries.length = pos; // raft overwrite
      entries.push(e);
    },
  });
  const result = { metadata: metadata?.slice() ?? new Uint8Array(0), state, entries };
  return { result, end, metadata, lastIndex };
}
