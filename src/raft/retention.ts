/**
 * What raft storage keeps on disk after a compaction, as etcd's purge does: the newest
 * `retain` segments and `.snap` files. Segments go only while they can be locked (the WAL
 * keeps every segment replay from its newest snapshot needs locked), `.snap` files oldest
 * first by name (term, then index).
 *
 * @module
 */

import { ioError } from "../errors.ts";
import { purge } from "../check/purge.ts";
import type { ResolvedOptions } from "../options.ts";
import { joinPath } from "../path.ts";
import type { Snapshotter } from "../snap/snapshotter.ts";
import type { WalOptions } from "../wal.ts";

/** The paths of what was removed. */
export interface Purged {
  /** Segment paths. */
  segments: string[];
  /** `.snap` paths. */
  snapshots: string[];
}

/** Removes the segments and `.snap` files beyond the newest `retain` of each. */
export async function purgeBeyond(
  walDir: string,
  snapshotter: Snapshotter,
  retain: number,
  walOptions: WalOptions,
  resolved: ResolvedOptions,
): Promise<Purged> {
  const names = await purge(walDir, { ...walOptions, keep: retain });
  const segments = names.map((n) => joinPath(walDir, n));
  const snapshots: string[] = [];
  for (const name of (await snapshotter.list()).slice(retain)) {
    const path = joinPath(snapshotter.dir, name);
    await resolved.fs.remove(path).catch((e) => {
      throw ioError(e, "cannot purge snapshot", path);
    });
    snapshots.push(path);
  }
  if (snapshots.length > 0) {
    await resolved.observer.fsync(
      "directory",
      snapshotter.dir,
      () => resolved.fs.syncDir(snapshotter.dir),
    );
  }
  return { segments, snapshots };
}
