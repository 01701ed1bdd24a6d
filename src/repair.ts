/**
 * Checking and mending a WAL directory without opening it for writing: `verify`,
 * `validSnapshotEntries`, `repair` (of a torn tail) and `exists`.
 *
 * @module
 */

import { Decoder } from "./decoder.ts";
import { ioError, WalError } from "./errors.ts";
import type { WalFile } from "./fs/types.ts";
import { readHardState, readSnapshot } from "./messages.ts";
import { cleanPath, joinPath } from "./path.ts";
import { segmentNames } from "./segment_names.ts";
import { RecordType, type Snapshot } from "./types.ts";
import { listSegments, readWhole, resolveOptions, selectSegments, type WalOptions } from "./wal.ts";

/** Where a replay stopped early at a torn write. */
export interface TornTail {
  /** The segment holding the torn record. */
  file: string;
  /** Offset of the torn record: everything before it is intact. */
  offset: number;
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
  /** The length the segment was truncated to (the end of its last good record). */
  offset: number;
  /** The copy of the segment as it was before repair, when one was made. */
  brokenCopy: string | null;
}

/** Calls `onRecord` for every good record of the files, checking the crc chain. */
async function scan(
  files: { path: string; file: WalFile }[],
  onRecord: (dec: Decoder) => void,
): Promise<{ records: number; tornTail: TornTail | null; decoder: Decoder }> {
  const dec = new Decoder();
  let records = 0;
  for (let k = 0; k < files.length; k++) {
    const { path, file } = files[k];
    const bytes = await readWhole(file).catch((e) => {
      throw ioError(e, "cannot read segment", path);
    });
    dec.begin(path, bytes, k === files.length - 1);
    for (;;) {
      try {
        if (!dec.next()) break;
      } catch (e) {
        if (e instanceof WalError && e.code === "UNEXPECTED_EOF") {
          return { records, tornTail: { file: path, offset: dec.offset }, decoder: dec };
        }
        throw e;
      }
      records++;
      if (dec.record.type === RecordType.Crc) {
        if (dec.crc !== 0 && dec.record.crc !== dec.crc) {
          throw new WalError("CRC_MISMATCH", "crc chain broken between segments", {
            file: path,
            offset: dec.offset,
          });
        }
        dec.updateCRC(dec.record.crc);
      }
      onRecord(dec);
    }
  }
  return { records, tornTail: null, decoder: dec };
}

async function openAll(
  fs: import("./fs/types.ts").FileSystem,
  dir: string,
  names: string[],
): Promise<{ path: string; file: WalFile }[]> {
  const out: { path: string; file: WalFile }[] = [];
  try {
    for (const n of names) {
      const path = joinPath(dir, n);
      out.push({
        path,
        file: await fs.open(path).catch((e) => {
          throw ioError(e, "cannot open segment", path);
        }),
      });
    }
  } catch (e) {
    await closeAll(out);
    throw e;
  }
  return out;
}

async function closeAll(files: { file: WalFile }[]): Promise<void> {
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
 * import { verify } from "./mod.ts";
 * const { tornTail } = await verify("/var/lib/app/wal", { index: 0n, term: 0n });
 * ```
 */
export async function verify(
  dir: string,
  snap: Snapshot = { index: 0n, term: 0n },
  options?: WalOptions,
): Promise<VerifyResult> {
  const { fs } = await resolveOptions(options);
  dir = cleanPath(dir);
  const selected = selectSegments(await listSegments(fs, dir), snap, dir);
  const files = await openAll(fs, dir, selected.map((s) => s.name));
  try {
    let metadata: Uint8Array | null = null;
    let match = false;
    const { records, tornTail } = await scan(files, (dec) => {
      const rec = dec.record;
      const where = { file: dec.path, offset: dec.offset };
      switch (rec.type) {
        case RecordType.Metadata: {
          const data = rec.data ?? new Uint8Array(0);
          if (metadata !== null && !equal(metadata, data)) {
            throw new WalError("METADATA_CONFLICT", "segments carry different metadata", where);
          }
          metadata = data.slice();
          break;
        }
        case RecordType.Snapshot: {
          const s = readSnapshot(rec.data ?? new Uint8Array(0));
          if (s.index === snap.index) {
            if (s.term !== snap.term) {
              throw new WalError(
                "SNAPSHOT_MISMATCH",
                `snapshot at index ${s.index} has term ${s.term}, not ${snap.term}`,
                where,
              );
            }
            match = true;
          }
          break;
        }
        case RecordType.Entry:
        case RecordType.State:
        case RecordType.Crc:
          break;
        default:
          throw new WalError("DECODE", `unexpected record type ${rec.type}`, where);
      }
    });
    if (!match) {
      throw new WalError(
        "SNAPSHOT_NOT_FOUND",
        `no snapshot record matches index ${snap.index} term ${snap.term}`,
        { file: dir },
      );
    }
    return { segments: files.length, records, tornTail };
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
    await scan(files, (dec) => {
      const rec = dec.record;
      if (rec.type === RecordType.Snapshot) snaps.push(readSnapshot(rec.data ?? new Uint8Array(0)));
      else if (rec.type === RecordType.State) {
        commit = readHardState(rec.data ?? new Uint8Array(0)).commit;
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
 * import { repair, WAL, WalError } from "./mod.ts";
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
export async function repair(dir: string, options?: WalOptions): Promise<RepairResult> {
  const { fs } = await resolveOptions(options);
  dir = cleanPath(dir);
  const segments = await listSegments(fs, dir);
  const last = segments[segments.length - 1];
  const path = joinPath(dir, last.name);
  const file = await fs.open(path, { write: true }).catch((e) => {
    throw ioError(e, "cannot open segment", path);
  });
  try {
    if (!(await file.tryLock())) {
      throw new WalError("LOCKED", "segment is locked by a writer; close it before repair", {
        file: path,
      });
    }
    const { tornTail, decoder } = await scan([{ path, file }], () => {});
    if (tornTail === null) {
      return { repaired: false, file: path, offset: decoder.offset, brokenCopy: null };
    }
    const brokenCopy = path + ".broken";
    await fs.copyFile(path, brokenCopy);
    await file.truncate(tornTail.offset);
    await file.sync();
    return { repaired: true, file: path, offset: tornTail.offset, brokenCopy };
  } catch (e) {
    throw ioError(e, "cannot repair WAL", path);
  } finally {
    await file.close();
  }
}

/** True when `dir` holds at least one WAL segment (`*.wal`). */
export async function exists(dir: string, options?: WalOptions): Promise<boolean> {
  const { fs } = await resolveOptions(options);
  try {
    return segmentNames(await fs.readDir(cleanPath(dir))).length > 0;
  } catch {
    return false;
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
