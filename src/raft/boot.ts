/**
 * Booting raft storage from an etcd data directory as etcd's server does: the newest `.snap`
 * the WAL has a valid snapshot record for, the WAL opened at it and replayed (here into an
 * index, not into memory), and on a torn tail one `repair` and a second try.
 *
 * etcd first reads the whole WAL for its snapshot records (`validSnapshotEntries`), then
 * replays it again from the snapshot. Here the newest readable `.snap` is tried first, in one
 * pass: replay from it checks that its record is there, and its hard state says whether it is
 * committed. Only when it is not taken does boot fall back to etcd's two passes.
 *
 * @module
 */

import { ioError, WalError } from "../errors.ts";
import type { FileSystem } from "../fs/types.ts";
import type { ResolvedOptions } from "../options.ts";
import { parentDir } from "../path.ts";
import { repair } from "../check/repair.ts";
import { validSnapshotEntries } from "../check/snapshots.ts";
import type { SnapshotMetadata } from "../snap/snap_codec.ts";
import type { Snapshotter } from "../snap/snapshotter.ts";
import type { HardState, Snapshot } from "../types.ts";
import { WAL, walInternals, type WalOptions } from "../wal.ts";
import { EntryIndex } from "./entry_index.ts";
import { SegmentReads } from "./segment_reads.ts";

/** What boot hands raft storage: the WAL ready to append and the log's index. */
export interface Booted {
  /** The WAL, replayed and open to append. */
  wal: WAL;
  /** The entries after the snapshot: terms and places. */
  index: EntryIndex;
  /** The segments the index numbers. */
  reads: SegmentReads;
  /** The metadata as stored (null: a record without a data field). */
  metadata: Uint8Array | null;
  /** The last hard state saved. */
  state: HardState;
  /** The snapshot booted from (null: none, the log starts at index 1). */
  snapshot: SnapshotMetadata | null;
  /** The snapshot records replay read. */
  recorded: Snapshot[];
}

/** What boot reads and how. */
export interface BootOptions {
  /** The WAL directory (`member/wal`). */
  walDir: string;
  /** The snapshots (`member/snap`). */
  snapshotter: Snapshotter;
  /** The options the WAL is opened with. */
  walOptions: WalOptions;
  /** Those options, resolved. */
  resolved: ResolvedOptions;
  /** Repair a torn tail (once) instead of failing with `UNEXPECTED_EOF`. */
  repair: boolean;
}

/** Boots as etcd does; see the module comment. */
export async function boot(o: BootOptions): Promise<Booted> {
  try {
    return await bootOnce(o);
  } catch (e) {
    if (!(e instanceof WalError) || e.code !== "UNEXPECTED_EOF" || !o.repair) throw e;
    await repair(o.walDir, o.walOptions); // reported through the observer as a "repair" event
    return await bootOnce(o);
  }
}

async function bootOnce(o: BootOptions): Promise<Booted> {
  const newest = await newestReadable(o.snapshotter);
  if (newest !== null) {
    const booted = await replayFrom(o, newest).catch((e) => {
      if (e instanceof WalError && NOT_THIS_SNAPSHOT.has(e.code)) return null;
      throw e;
    });
    if (booted !== null && newest.index <= booted.state.commit) return booted;
    await booted?.wal.close();
    await booted?.reads.close();
  }
  // etcd's way: the snapshot records the WAL holds below its commit, the newest .snap of them
  const valid = await validSnapshotEntries(o.walDir, o.walOptions);
  const snap = await o.snapshotter.loadNewestAvailable(valid).catch((e) => {
    if (e instanceof WalError && e.code === "NO_SNAPSHOT") return null;
    throw e;
  });
  return await replayFrom(o, snap?.metadata ?? null);
}

/** Replay errors that mean the WAL holds no (matching) record of a snapshot. */
const NOT_THIS_SNAPSHOT = new Set(["SNAPSHOT_NOT_FOUND", "SNAPSHOT_MISMATCH"]);

/** The metadata of the newest readable `.snap` (broken ones are renamed, as etcd does). */
async function newestReadable(snapshotter: Snapshotter): Promise<SnapshotMetadata | null> {
  return await snapshotter.load().then((s) => s.metadata, (e) => {
    if (e instanceof WalError && e.code === "NO_SNAPSHOT") return null;
    throw e;
  });
}

/** Opens the WAL at `snap` and indexes its replay. Nothing stays open on failure. */
async function replayFrom(o: BootOptions, snap: SnapshotMetadata | null): Promise<Booted> {
  const start: Snapshot = snap === null ? { index: 0n, term: 0n } : snap;
  const wal = await WAL.open(o.walDir, { index: start.index, term: start.term }, o.walOptions);
  const index = new EntryIndex(start.index, start.term);
  const reads = new SegmentReads(o.resolved.fs as FileSystem);
  try {
    const { metadata, state, snapshots } = await walInternals.replayRecords(wal, (fields, at) => {
      try {
        if (fields.index <= start.index) {
          // raft's overwrite at or below the snapshot: what followed it is gone (etcd's
          // ReadAll skips the entry, and may serve again what it truncated)
          if (index.length > 0) index.reset(start.index, start.term);
          return;
        }
        index.put(fields.index, fields.term, reads.number(at.file), at.offset);
      } catch (e) {
        if (!(e instanceof WalError)) throw e;
        throw new WalError(e.code, e.message, { file: at.file, offset: at.offset });
      }
    });
    return { wal, index, reads, metadata, state, snapshot: snap, recorded: snapshots };
  } catch (e) {
    await wal.close().catch(() => {});
    await reads.close().catch(() => {});
    throw e;
  }
}

/** Makes `member/snap` and its entry in `member/` durable. */
export async function makeSnapDir(resolved: ResolvedOptions, snapDir: string): Promise<void> {
  const member = parentDir(snapDir);
  try {
    await resolved.fs.mkdir(snapDir);
    await resolved.observer.fsync("directory", member, () => resolved.fs.syncDir(member));
  } catch (e) {
    throw ioError(e, "cannot make the snapshot directory", snapDir);
  }
}
