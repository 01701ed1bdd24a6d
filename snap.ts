/**
 * etcd's snapshot files (`member/snap/*.snap`): save, load the newest, or the newest a WAL's
 * snapshot records name, as etcd's `etcdserver/api/snap` does, byte for byte.
 *
 * @example
 * ```ts
 * import { Snapshotter } from "@raftlog/wal/snap";
 * import { validSnapshotEntries } from "@raftlog/wal";
 * const snap = new Snapshotter("data/member/snap");
 * const s = await snap.loadNewestAvailable(await validSnapshotEntries("data/member/wal"));
 * ```
 *
 * @module
 */

export { snapFileName, Snapshotter } from "./src/snap/snapshotter.ts";
export type { SnapshotterOptions } from "./src/snap/snapshotter.ts";
export { decodeSnapFile, encodeSnapFile } from "./src/snap/snap_codec.ts";
export type { RaftSnapshot, SnapshotMetadata } from "./src/snap/snap_codec.ts";
export type { FileInfo, FileSystem, LockKind, OpenOptions, WalFile } from "./src/fs/types.ts";
export type { ConfState, Snapshot } from "./src/types.ts";
