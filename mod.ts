/**
 * An etcd-compatible write-ahead log for Deno, Bun and Node.
 *
 * The on-disk format is etcd's `wal` package's: a directory of `%016x-%016x.wal` segments
 * of CRC-32C-chained, 8-byte-aligned protobuf records. A directory etcd wrote reads here,
 * and one written here reads in etcd.
 *
 * @example
 * ```ts
 * import { EntryType, WAL } from "@raftlog/wal";
 *
 * const dir = await Deno.makeTempDir() + "/wal";
 * const wal = await WAL.create(dir, new TextEncoder().encode("cluster-1"));
 * await wal.save({ term: 1n, vote: 1n, commit: 0n }, [
 *   { term: 1n, index: 1n, type: EntryType.Normal, data: new TextEncoder().encode("x=1") },
 * ]);
 * await wal.close();
 *
 * const replay = await WAL.openForRead(dir);
 * const { entries } = await replay.readAll();
 * await replay.close();
 * ```
 *
 * @module
 */

export { WalError } from "./src/errors.ts";
export type { WalErrorCode, WalErrorOptions } from "./src/errors.ts";
export { EntryType } from "./src/types.ts";
export type {
  ConfState,
  Entry,
  HardState,
  ReadAllResult,
  ReplayStream,
  Snapshot,
} from "./src/types.ts";
export { DEFAULT_SEGMENT_SIZE_BYTES, WAL } from "./src/wal.ts";
export type { WalOptions } from "./src/wal.ts";
export type { ObserveOptions, WalEvent, WalLogger } from "./src/observe.ts";
export { repair } from "./src/check/repair.ts";
export { verify } from "./src/check/verify.ts";
export { validSnapshotEntries } from "./src/check/snapshots.ts";
export { exists } from "./src/wal/segment_dir.ts";
export type { RepairResult } from "./src/check/repair.ts";
export type { CheckOptions, TornTail, VerifyResult } from "./src/check/verify.ts";
export { purge } from "./src/check/purge.ts";
export type { PurgeOptions } from "./src/check/purge.ts";
export type { FileInfo, FileSystem, LockKind, OpenOptions, WalFile } from "./src/fs/types.ts";
export { segmentName } from "./src/segment/segment_names.ts";
