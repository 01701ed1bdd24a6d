/**
 * An etcd data directory as etcd-dump-logs reads it: `member/snap` for the snapshot to start
 * from, `member/wal` for the log, read without locks (etcd's `OpenForRead`).
 *
 * @module
 */

import type { WalError } from "../errors.ts";
import type { FileSystem } from "../fs/types.ts";
import { joinPath } from "../path.ts";
import { replayAll } from "../replay/read_all.ts";
import { closeSegmentFiles } from "../replay/scan.ts";
import type { RaftSnapshot } from "../snap/snap_codec.ts";
import { Snapshotter } from "../snap/snapshotter.ts";
import type { ReadAllResult, Snapshot } from "../types.ts";
import { openSegmentsFrom } from "../wal/segment_dir.ts";

/** etcd's `member/wal` under a data directory. */
export function walDirOf(dataDir: string): string {
  return joinPath(joinPath(dataDir, "member"), "wal");
}

/** etcd's `member/snap` under a data directory. */
export function snapDirOf(dataDir: string): string {
  return joinPath(joinPath(dataDir, "member"), "snap");
}

/**
 * The snapshot etcd-dump-logs starts from: the `.snap` file named `name`, or the newest
 * readable one (null when there is none: `NO_SNAPSHOT` is not an error here). Files that do
 * not read go to `onBroken` and are left in place (etcd's loader renames them `.broken`; a
 * dump only looks).
 */
export async function loadStartSnapshot(
  fs: FileSystem,
  dataDir: string,
  name: string | undefined,
  onBroken: (path: string, error: WalError) => void,
): Promise<RaftSnapshot | null> {
  const snapshotter = new Snapshotter(snapDirOf(dataDir), { fs, keepBroken: true, onBroken });
  if (name !== undefined) return await snapshotter.read(name);
  try {
    return await snapshotter.load();
  } catch (e) {
    if ((e as { code?: string }).code === "NO_SNAPSHOT") return null;
    throw e;
  }
}

/**
 * Replays the WAL in `walDir` read-only from `start`, as etcd's `OpenForRead` + `ReadAll`
 * do (a torn tail ends it quietly). With `requireSnapshot` false, a missing snapshot record
 * is not an error (etcd-dump-logs's `-start-index` goes on after `ErrSnapshotNotFound`).
 */
export async function readWalFrom(
  fs: FileSystem,
  walDir: string,
  start: Snapshot,
  requireSnapshot: boolean,
): Promise<ReadAllResult> {
  const files = await openSegmentsFrom(fs, walDir, start);
  try {
    const r = await replayAll(walDir, files, start, false, requireSnapshot);
    return r.result;
  } finally {
    await closeSegmentFiles(files).catch(() => {});
  }
}
