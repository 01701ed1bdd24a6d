/**
 * Checking and mending a WAL directory without opening it for writing: `verify`,
 * `validSnapshotEntries`, `repair` (of a torn tail) and `exists`.
 *
 * @module
 */

import { ioError, WalError } from "../errors.ts";
import type { FileSystem } from "../fs/types.ts";
import { readEntryIndex, readHardState, readSnapshot } from "../segment/messages.ts";
import { cleanPath, joinPath } from "../path.ts";
import { ReplayChecks, scanSegments, type SegmentFile, unexpectedType } from "../replay/scan.ts";
import { segmentNames } from "../segment/segment_names.ts";
import { RecordType, type Snapshot } from "../types.ts";
import { resolveOptions, type WalOptions } from "../options.ts";
import { listSegments, selectSegments } from "../wal/segment_dir.ts";

/** Where a replay stopped early at a torn write. */
export interface TornTail {
  /** The segment holding the torn record. */
  file: string;
  /** Offset of the torn record: everything before it is intact. */
  offset: number;
  /** What was wrong with it. */
  reason: string;
}

/** Options for {@link verify} and {@link repair}. */
export interface CheckOptions extends WalOptions {
  /** Called as the work proceeds: `done` of `total` segments, and the one being read. */
  onProgress?: (done: number, total: number, path: string) => void;
}

/** What {@link verify} found. */
export interface VerifyResult {
  /** Number of segments read. */
  segments: number;
  /** Number of records that decoded and passed their CRC. */
  records: number;
  /** Set when the log ends in a torn write (readable, and repairable before writing). */
  tornTail: TornTail | null;
}

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

async function openAll(fs: FileSystem, dir: string, names: string[]): Promise<SegmentFile[]> {
  const out: SegmentFile[] = [];
  try {
    for (const n of names) {
      const path = joinPath(dir, n);
      const file = await fs.open(path).catch((e) => {
        throw ioError(e, "cannot open segment", path);
      });
      out.push({ path, file });
    }
  } catch (e) {
    await closeAll(out);
    throw e;
  }
  return out;
}

async function closeAll(files: SegmentFile[]): Promise<void> {
  for (const f of files) await f.file.close().catch(() => {});
}

/**
 * Reads the WAL from snapshot `snap` without locking it and checks every record's CRC, the
 * crc chain, consistent metadata, and that `snap` was recorded. Throws the WalError a
 * replay would (`CRC_MISMATCH`, `SNAPSHOT_NOT_FOUND`, ...). A torn tail is reported, not
 * thrown, as etcd's read mode tolerates it.
 *
 * @example
 * ```ts
 * import { verify } from "@raftlog/wal";
 * const { tornTail } = await verify("/var/lib/app/wal", { index: 0n, term: 0n });
 * ```
 */
export async function verify(
  dir: string,
  snap: Snapshot = { index: 0n, term: 0n },
  options?: CheckOptions,
): Promise<VerifyResult> {
  const { fs } = await resolveOptions(options);
  dir = cleanPath(dir);
  const selected = selectSegments(await listSegments(fs, dir), snap, dir);
  const files = await openAll(fs, dir, selected.map((s) => s.name));
  try {
    const checks = new ReplayChecks(snap);
    let length = 0n; // entries replay would hold so far: gaps fail replay, so they fail here
    const end = await scanSegments(
      files,
      (rec, at) => {
        // Payloads are decoded too (etcd's Verify skips them): a record that passes its CRC
        // but would fail replay is not sound.
        if (rec.type === RecordType.Entry) {
          const index = readEntryIndex(rec.buf, rec.dataStart, rec.dataEnd);
          if (index > snap.index) {
            const offset = index - snap.index - 1n;
            if (offset > length) {
              throw new WalError(
                "SLICE_OUT_OF_RANGE",
                `entry index ${index} leaves a gap after index ${snap.index + length}`,
                at,
              );
            }
            length = offset + 1n;
          }
        } else if (rec.type === RecordType.State) {
          readHardState(rec.buf, rec.dataStart, rec.dataEnd);
        } else if (rec.type !== RecordType.Crc && !checks.handle(rec, at)) {
          throw unexpectedType(rec, at);
        }
      },
      options?.onProgress,
      { buf: new Uint8Array(0) },
    );
    options?.onProgress?.(files.length, files.length, dir);
    checks.requireMatch(dir, end.torn);
    const tornTail = end.torn === null
      ? null
      : { file: end.torn.file ?? dir, offset: end.offset, reason: end.torn.reason };
    return { segments: files.length, records: end.records, tornTail };
  } finally {
    await closeAll(files);
  }
}

/**
 * The snapshots recorded in the WAL that are safe to load: those whose index is at most
 * the last saved hard state's commit. Reads every segment, without locking.
 */
export async function validSnapshotEntries(dir: string, options?: WalOptions): Promise<Snapshot[]> {
  const { fs } = await resolveOptions(options);
  dir = cleanPath(dir);
  const segments = await listSegments(fs, dir);
  const files = await openAll(fs, dir, segments.map((s) => s.name));
  try {
    const snaps: Snapshot[] = [];
    let commit = 0n;
    await scanSegments(files, (rec) => {
      if (rec.type === RecordType.Snapshot) {
        snaps.push(readSnapshot(rec.buf, rec.dataStart, rec.dataEnd));
      } else if (rec.type === RecordType.State) {
        commit = readHardState(rec.buf, rec.dataStart, rec.dataEnd).commit;
      }
    });
    return snaps.filter((s) => s.index <= commit);
  } finally {
    await closeAll(files);
  }
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

/**
 * True when `dir` holds at least one WAL segment (`*.wal`); false when it is missing, not a
 * directory, or has none. Other failures (no permission, ...) throw, so a create-or-open
 * decision is never made on an error.
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
