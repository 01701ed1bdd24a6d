/**
 * What raft storage keeps on disk after a compaction, as etcd's purge does: the newest
 * `retain` segments and `.snap` files. Segments go only while they can be locked (the WAL
 * keeps every segment replay from its newest snapshot needs locked), `.snap` files oldest
 * first. Unlike etcd, which counts them by name (term, then index), `.snap` files are counted
 * by index, and one past the snapshot held is neither counted nor removed: a file the WAL has
 * no record of (a crash came between the two writes), with a higher term or index, would
 * otherwise push the held snapshot out.
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

/**
 * Removes the segments beyond the newest `retain`, and the `.snap` files beyond the newest
 * `retain` of those at or below `heldIndex`.
 */
export async function purgeBeyond(
  walDir: string,
  snapshotter: Snapshotter,
  heldIndex: bigint,
  retain: number,
  walOptions: WalOptions,
  resolved: ResolvedOptions,
): Promise<Purged> {
  const names = await purge(walDir, { ...walOptions, keep: retain });
  const segments = names.map((n) => joinPath(walDir, n));
  const snapshots: string[] = [];
  const held = (await snapshotter.list())
    .map((name) => ({ name, at: snapPosition(name) }))
    .filter((s) => s.at.index <= heldIndex)
    .sort((a, b) => compare(b.at.index, a.at.index) || compare(b.at.term, a.at.term));
  for (const { name } of held.slice(retain)) {
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

/** Term and index from a `.snap` name (`%016x-%016x.snap`); past any index if not one. */
function snapPosition(name: string): { term: bigint; index: bigint } {
  const m = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/.exec(name);
  if (m === null) return { term: 0n, index: 1n << 64n };
  return { term: BigInt("0x" + m[1]), index: BigInt("0x" + m[2]) };
}

function compare(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
