/**
 * `repair` of a torn tail: the one mending this library does, and only of what a crash
 * leaves (etcd's Repair).
 *
 * @module
 */

import { ioError, WalError } from "../errors.ts";
import { resolveOptions } from "../options.ts";
import { cleanPath, joinPath } from "../path.ts";
import { scanSegments } from "../replay/scan.ts";
import { listSegments } from "../wal/segment_dir.ts";
import type { CheckOptions } from "./verify.ts";

/** What {@link repair} did. */
export interface RepairResult {
  /** True when a torn tail was cut off; false when the last segment was already clean. */
  repaired: boolean;
  /** The last segment, which repair examined. */
  file: string;
  /** The end of the segment's last good record (where it was truncated, if repaired). */
  offset: number;
  /** The copy of the segment as it was before repair, when one was made. */
  brokenCopy: string | null;
}

/**
 * Repairs a torn tail: when the last segment ends in a partially written record, keeps a
 * copy as `<segment>.broken`, truncates the segment to its last good record and fsyncs it.
 * Refuses (throws) anything that is not a torn tail, and `LOCKED` while a writer holds the
 * segment. A clean segment is left alone (`repaired: false`).
 *
 * @example
 * ```ts
 * import { repair, WAL, WalError } from "@raftlog/wal";
 * const dir = "/var/lib/app/wal";
 * let wal: WAL;
 * try {
 *   wal = await WAL.open(dir);
 *   await wal.readAll();
 * } catch (e) {
 *   if (!(e instanceof WalError) || e.code !== "UNEXPECTED_EOF") throw e;
 *   await repair(dir);
 *   wal = await WAL.open(dir);
 *   await wal.readAll();
 * }
 * ```
 */
export async function repair(dir: string, options?: CheckOptions): Promise<RepairResult> {
  const { fs, observer } = await resolveOptions(options);
  dir = cleanPath(dir);
  const segments = await listSegments(fs, dir);
  const path = joinPath(dir, segments[segments.length - 1].name);
  const file = await fs.open(path, { write: true }).catch((e) => {
    throw ioError(e, "cannot open segment", path);
  });
  try {
    if (!(await file.tryLock())) {
      throw new WalError("LOCKED", "segment is locked by a writer; close it before repair", {
        file: path,
      });
    }
    const end = await scanSegments([{ path, file }], () => {}, options?.onProgress);
    options?.onProgress?.(1, 1, path);
    if (end.torn === null) {
      return { repaired: false, file: path, offset: end.offset, brokenCopy: null };
    }
    const brokenCopy = path + ".broken";
    await fs.copyFile(path, brokenCopy);
    await file.truncate(end.offset);
    await observer.fsync("file", path, () => file.sync());
    observer.emit({ type: "repair", path, offset: end.offset, brokenCopy });
    return { repaired: true, file: path, offset: end.offset, brokenCopy };
  } catch (e) {
    throw ioError(e, "cannot repair WAL", path);
  } finally {
    await file.close();
  }
}
