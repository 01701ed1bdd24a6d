/**
 * `validSnapshotEntries`: the snapshot records a WAL holds that are safe to load.
 *
 * @module
 */

import { resolveOptions, type WalOptions } from "../options.ts";
import { cleanPath, joinPath } from "../path.ts";
import { closeSegmentFiles, openSegmentFiles, scanSegments } from "../replay/scan.ts";
import { RecordType, type Snapshot } from "../types.ts";
import { listSegments } from "../wal/segment_dir.ts";

/**
 * The snapshots recorded in the WAL that are safe to load: those whose index is at most
 * the last saved hard state's commit. Reads every segment, without locking.
 *
 * @example
 * ```ts
 * import { validSnapshotEntries } from "@raftlog/wal";
 * const snaps = await validSnapshotEntries("/var/lib/app/wal");
 * const newest = snaps[snaps.length - 1]; // replay from here
 * ```
 */
export async function validSnapshotEntries(dir: string, options?: WalOptions): Promise<Snapshot[]> {
  const { fs } = await resolveOptions(options);
  dir = cleanPath(dir);
  const segments = await listSegments(fs, dir);
  const files = await openSegmentFiles(fs, segments.map((s) => joinPath(dir, s.name)));
  try {
    const snaps: Snapshot[] = [];
    let commit = 0n;
    await scanSegments(files, (rec) => {
      if (rec.type === RecordType.Snapshot) snaps.push(rec.snapshot());
      else if (rec.type === RecordType.State) commit = rec.hardState().commit;
    });
    return snaps.filter((s) => s.index <= commit);
  } finally {
    await closeSegmentFiles(files).catch(() => {});
  }
}
