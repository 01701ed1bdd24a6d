/**
 * Purging old segments, with etcd's semantics (`fileutil.PurgeFile`): the oldest segments
 * beyond a count to keep are deleted, oldest first, but only while each can be locked, so a
 * segment a writer still holds (it has not called `releaseLockTo` past it) stops the purge.
 *
 * @module
 */

import { ioError, WalError } from "../errors.ts";
import { cleanPath, joinPath } from "../path.ts";
import { resolveOptions, type WalOptions } from "../options.ts";
import { listSegments } from "../wal/segment_dir.ts";

/** Options for {@link purge}. */
export interface PurgeOptions extends WalOptions {
  /** How many of the newest segments to keep (at least 1). */
  keep: number;
}

/**
 * Deletes the oldest segments of the WAL in `dir` beyond the newest `keep`, stopping at the
 * first one that another open file holds locked. Returns the names deleted, oldest first.
 * Run it beside the writer, after `releaseLockTo(snapshotIndex)`: the writer keeps locked
 * every segment replay from its latest snapshot still needs, and those are never deleted.
 *
 * @example
 * ```ts
 * import { purge } from "@raftlog/wal";
 * const removed = await purge("/var/lib/app/wal", { keep: 5 });
 * ```
 */
export async function purge(dir: string, options: PurgeOptions): Promise<string[]> {
  const { fs, observer } = await resolveOptions(options);
  if (!Number.isSafeInteger(options.keep) || options.keep < 1) {
    throw new WalError("INVALID_ARGUMENT", `keep must be an integer >= 1: got ${options.keep}`);
  }
  dir = cleanPath(dir);
  const segments = await listSegments(fs, dir);
  const removed: string[] = [];
  for (const s of segments.slice(0, Math.max(0, segments.length - options.keep))) {
    const path = joinPath(dir, s.name);
    const file = await fs.open(path, { write: true }).catch((e) => {
      throw ioError(e, "cannot open segment", path);
    });
    try {
      if (!(await file.tryLock())) break; // a writer still needs it, and all after it
      await fs.remove(path);
      removed.push(s.name);
    } catch (e) {
      throw ioError(e, "cannot purge segment", path);
    } finally {
      await file.close();
    }
  }
  if (removed.length > 0) await observer.fsync("directory", dir, () => fs.syncDir(dir));
  return removed;
}
