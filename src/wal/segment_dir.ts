/**
 * The WAL directory itself: whether it holds a WAL, listing and selecting its segments,
 * creating it durably, and the directory lock that serializes creates.
 *
 * @module
 */

import { ioError, WalError } from "../errors.ts";
import { type ResolvedOptions, resolveOptions, type WalOptions } from "../options.ts";
import type { FileSystem, WalFile } from "../fs/types.ts";
import { cleanPath, joinPath, parentDir } from "../path.ts";
import { openSegmentFiles, type SegmentFile } from "../replay/scan.ts";
import {
  isConsecutive,
  searchIndex,
  type SegmentName,
  segmentNames,
} from "../segment/segment_names.ts";
import type { Snapshot } from "../types.ts";

/** Lists the segments of a WAL directory, sorted; FILE_NOT_FOUND when there are none. */
export async function listSegments(fs: FileSystem, dir: string): Promise<SegmentName[]> {
  const info = await fs.stat(dir).catch((e) => {
    throw ioError(e, "cannot stat WAL directory", dir);
  });
  if (info === null) {
    throw new WalError("FILE_NOT_FOUND", "WAL directory does not exist", { file: dir });
  }
  if (!info.isDirectory) {
    throw new WalError("FILE_NOT_FOUND", "WAL path is not a directory", { file: dir });
  }
  let names: string[];
  try {
    names = await fs.readDir(dir);
  } catch (e) {
    throw ioError(e, "cannot list WAL directory", dir);
  }
  const segments = segmentNames(names);
  if (segments.length === 0) {
    throw new WalError("FILE_NOT_FOUND", "no WAL segment (*.wal) in directory", { file: dir });
  }
  return segments;
}

/** The segments replay from `snap` must read: the last one starting at or before it, on. */
export function selectSegments(
  segments: SegmentName[],
  snap: Snapshot,
  dir: string,
): SegmentName[] {
  const i = searchIndex(segments, snap.index);
  if (i < 0) {
    throw new WalError(
      "FILE_NOT_FOUND",
      `no segment starts at or before snapshot index ${snap.index}`,
      { file: dir },
    );
  }
  const selected = segments.slice(i);
  if (!isConsecutive(selected)) {
    throw new WalError("FILE_NOT_FOUND", "segment sequence numbers are not consecutive", {
      file: dir,
    });
  }
  return selected;
}

/** Opens, for reading, the segments of `dir` that replay from `snap` reads. */
export async function openSegmentsFrom(
  fs: FileSystem,
  dir: string,
  snap: Snapshot,
): Promise<SegmentFile[]> {
  const selected = selectSegments(await listSegments(fs, dir), snap, dir);
  return await openSegmentFiles(fs, selected.map((s) => joinPath(dir, s.name)));
}

/**
 * Creates a directory and its missing parents, and fsyncs the directory above each one it
 * created: a new directory's own entry is not durable until its parent is synced.
 */
export async function mkdirDurable(fs: FileSystem, path: string): Promise<void> {
  const missing: string[] = [];
  for (let p = path; (await fs.stat(p)) === null;) {
    missing.push(p);
    const up = parentDir(p);
    if (up === p) break;
    p = up;
  }
  if (missing.length === 0) return;
  await fs.mkdir(path);
  for (const m of missing.reverse()) await fs.syncDir(parentDir(m));
}

/**
 * Warns once per adapter, through the logger, when its locks do not exclude etcd (see
 * `LockKind`): a WAL written beside a running etcd would be corrupted.
 */
export function warnWeakLocks(options: ResolvedOptions): void {
  const kind = options.fs.lockKind?.() ?? "ofd";
  if (kind === "ofd") return;
  options.observer.warnOnce(options.fs, "WAL locks do not exclude etcd", {
    adapter: options.fs.name,
    lockKind: kind,
    why: kind === "flock"
      ? "flock only (Deno without --allow-ffi, or not Linux): etcd's OFD locks ignore it"
      : "no cross-process lock at all: Node's lock helper needs perl, which is not installed",
  });
}

/** Takes the lock on a directory, waiting up to 10 s for another holder to finish. */
export async function lockDirectory(fs: FileSystem, path: string): Promise<WalFile> {
  const dir = await fs.open(path).catch((e) => {
    throw ioError(e, "cannot open directory", path);
  });
  try {
    for (let waited = 0; waited < 10_000; waited += 10) {
      if (await dir.tryLock()) return dir;
      await new Promise((r) => setTimeout(r, 10));
    }
  } catch (e) {
    await dir.close().catch(() => {});
    throw ioError(e, "cannot lock directory", path);
  }
  await dir.close();
  throw new WalError("LOCKED", "another process keeps this directory locked (a create?)", {
    file: path,
  });
}

/**
 * True when `dir` holds at least one WAL segment (`*.wal`); false when it is missing, not a
 * directory, or has none. Other failures (no permission, ...) throw, so a create-or-open
 * decision is never made on an error.
 *
 * @example
 * ```ts
 * import { exists, WAL } from "@raftlog/wal";
 * const dir = "/var/lib/app/wal";
 * const wal = (await exists(dir)) ? await WAL.open(dir) : await WAL.create(dir);
 * ```
 */
export async function exists(dir: string, options?: WalOptions): Promise<boolean> {
  const { fs } = await resolveOptions(options);
  dir = cleanPath(dir);
  const info = await fs.stat(dir).catch((e) => {
    throw ioError(e, "cannot stat WAL directory", dir);
  });
  if (info === null || !info.isDirectory) return false;
  const names = await fs.readDir(dir).catch((e) => {
    throw ioError(e, "cannot list WAL directory", dir);
  });
  return segmentNames(names).length > 0;
}
