/**
 * Raft storage over an etcd data directory (`member/wal`, `member/snap`): etcd raft's
 * `Storage` calls (`initialState`, `entries`, `term`, `firstIndex`, `lastIndex`,
 * `snapshot`) answered as its `MemoryStorage` answers them, and its writes (`append`,
 * `applySnapshot`, `createSnapshot`, `compact`) made durable in etcd's format. Memory holds an
 * index of a few bytes per entry; entries are read back from the segments.
 *
 * @example
 * ```ts
 * import { RaftStorage } from "@raftlog/wal/raft";
 * const storage = await RaftStorage.open("/var/lib/app"); // boots as etcd does
 * const { hardState } = storage.initialState();
 * const tail = await storage.entries(storage.firstIndex(), storage.lastIndex() + 1n, 1 << 20);
 * console.log(hardState.commit, tail.length);
 * await storage.close();
 * ```
 *
 * @module
 */

export { RaftStorage } from "./src/raft/raft_storage.ts";
export { EntryType } from "./src/types.ts";
export type { InitialState, RaftStorageOptions } from "./src/raft/raft_storage.ts";
export type { RaftSnapshot, SnapshotMetadata } from "./src/snap/snap_codec.ts";
export type { ConfState, Entry, HardState } from "./src/types.ts";
export type { WalOptions } from "./src/wal.ts";
export type { ObserveOptions, WalEvent, WalLogger } from "./src/observe.ts";
export type { FileInfo, FileSystem, LockKind, OpenOptions, WalFile } from "./src/fs/types.ts";
