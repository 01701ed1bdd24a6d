/**
 * Creating a WAL: the first segment is built in `<dir>.tmp` and the directory renamed into
 * place, under the parent directory's lock, so a crash never leaves a half-made WAL at
 * `dir` and two creates of one WAL never interleave.
 *
 * @module
 */

import { ioError, WalError } from "../errors.ts";
import type { WalFile } from "../fs/types.ts";
import { emptyHardState } from "../types.ts";
import type { ResolvedOptions } from "../options.ts";
import { joinPath, parentDir } from "../path.ts";
import { segmentName, segmentNames } from "../segment/segment_names.ts";
import { SegmentWriter, writeSegmentHead } from "../segment/segment_writer.ts";
import { lockDirectory, mkdirDurable, warnWeakLocks } from "./segment_dir.ts";
import type { Appending } from "./phase.ts";
import { SegmentSet } from "./segment_set.ts";

/**
 * Creates the WAL in `dir` (missing, or an empty directory): one segment holding a crc
 * record, the metadata and an empty snapshot, preallocated, synced, and published by the
 * rename of its directory, which is then synced too. Returns it in append mode.
 */
export async function createWal(
  options: ResolvedOptions,
  dir: string,
  metadata: Uint8Array | null,
): Promise<Appending> {
  const { fs } = options;
  // Creating builds <dir>.tmp and renames it: two creates of one WAL must not interleave,
  // or one would delete the other's half-built directory. The parent's lock serializes them.
  const parent = parentDir(dir);
  await mkdirDurable(fs, parent).catch((e) => {
    throw ioError(e, "cannot create parent directory", parent);
  });
  const guard = await lockDirectory(fs, parent);
  warnWeakLocks(options); // after a lock: Node learns only then whether Perl exists
  try {
    return await createLocked(options, dir, metadata);
  } finally {
    await guard.close().catch(() => {});
  }
}

/** Refuses a `dir` that holds anything; returns whether an (empty) directory is there. */
async function checkTarget(options: ResolvedOptions, dir: string): Promise<boolean> {
  const { fs } = options;
  const existing = await fs.stat(dir).catch((e) => {
    throw ioError(e, "cannot stat WAL directory", dir);
  });
  if (existing === null) return false;
  if (!existing.isDirectory) {
    throw new WalError("EXISTS", "a file is in the way of the WAL directory", { file: dir });
  }
  const names = await fs.readDir(dir).catch((e) => {
    throw ioError(e, "cannot list directory", dir);
  });
  if (segmentNames(names).length > 0) {
    throw new WalError("EXISTS", "a WAL already exists in this directory", { file: dir });
  }
  if (names.length > 0) {
    throw new WalError("EXISTS", "directory is not empty; refusing to replace it", {
      file: dir,
    });
  }
  return true;
}

/** The body of {@link createWal}, run while holding the parent directory's lock. */
async function createLocked(
  options: ResolvedOptions,
  dir: string,
  metadata: Uint8Array | null,
): Promise<Appending> {
  const { fs, observer, segmentSizeBytes } = options;
  const existing = await checkTarget(options, dir);
  const tmp = dir + ".tmp";
  const name = segmentName(0n, 0n);
  const tmpPath = joinPath(tmp, name);
  let file: WalFile | null = null;
  try {
    await fs.remove(tmp); // a leftover of a crashed create (creates are serialized)
    await fs.mkdir(tmp);
    file = await fs.open(tmpPath, { create: true });
    if (!(await file.tryLock())) {
      throw new WalError("LOCKED", "new segment is locked by another writer", { file: tmpPath });
    }
    await file.allocate(segmentSizeBytes);
    const head = await writeSegmentHead(file, tmpPath, 0, metadata, {
      snapshot: { index: 0n, term: 0n },
    }, options);
    // the segment's directory entry, before the rename publishes it
    await observer.fsync("directory", tmp, () => fs.syncDir(tmp));
    if (existing) await fs.remove(dir); // an empty directory, checked above
    await fs.rename(tmp, dir);
    await observer.fsync("directory", parentDir(dir), () => fs.syncDir(parentDir(dir)));

    const tail = { name: { name, seq: 0n, index: 0n }, file };
    const at = { ...head, size: segmentSizeBytes, zeroedTo: head.offset };
    const writer = new SegmentWriter(options, dir, tail, at, metadata);
    const segments = new SegmentSet(dir, [tail]);
    return {
      kind: "append",
      segments,
      writer,
      state: emptyHardState(),
      lastIndex: 0n,
      indexFloor: null,
    };
  } catch (e) {
    await file?.close().catch(() => {});
    await fs.remove(tmp).catch(() => {});
    throw ioError(e, "cannot create WAL", dir);
  }
}
