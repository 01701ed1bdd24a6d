/**
 * The one port between the WAL core and the outside world. The core reaches the disk only
 * through these two interfaces; `src/fs/deno.ts`, `bun.ts` and `node.ts` implement them.
 *
 * @module
 */

/** What {@link FileSystem.stat} reports of a path: all the WAL asks is its kind. */
export interface FileInfo {
  /** True for a directory. */
  isDirectory: boolean;
}

/** How {@link FileSystem.open} opens a file. */
export interface OpenOptions {
  /** Open for writing as well as reading. */
  write?: boolean;
  /** Create the file if missing (implies `write`). */
  create?: boolean;
}

/**
 * An open file. Reads and writes are positional; an adapter serializes them and loops
 * until every byte is transferred.
 */
export interface WalFile {
  /** The path the file was opened with. */
  readonly path: string;
  /** Reads up to `buf.length` bytes at `position`; returns how many were read (0 at EOF). */
  read(buf: Uint8Array, position: number): Promise<number>;
  /** Writes all of `data` at `position`. */
  write(data: Uint8Array, position: number): Promise<void>;
  /** Sets the file's size (zero-filling when it grows). */
  truncate(size: number): Promise<void>;
  /** Current size in bytes. */
  size(): Promise<number>;
  /**
   * Grows the file to `size` bytes of zeros, reserving the blocks where the platform can
   * (fallocate), so later writes do not have to allocate. Never shrinks.
   */
  allocate(size: number): Promise<void>;
  /** Makes the file's data durable (fdatasync). */
  syncData(): Promise<void>;
  /**
   * Optional: {@link WalFile.write} as a blocking system call (pwrite). The WAL's append path
   * uses it, when present and the WAL was not opened with `blocking: false`, because one
   * asynchronous file call costs more CPU than the write itself. Never called while an
   * asynchronous operation on this file is in flight.
   */
  writeSync?(data: Uint8Array, position: number): void;
  /** Optional: {@link WalFile.syncData} as a blocking system call (fdatasync). */
  syncDataSync?(): void;
  /** Makes data and metadata durable (fsync). */
  sync(): Promise<void>;
  /**
   * Takes an exclusive, non-blocking lock on the file (see {@link LockKind}). Returns false
   * when another open file holds it, in this process or another; throws when the lock could
   * not be attempted (never reports a lock it does not hold).
   */
  tryLock(): Promise<boolean>;
  /** Closes the file, releasing its lock. */
  close(): Promise<void>;
}

/**
 * How an adapter's {@link WalFile.tryLock} locks, which decides whom its locks exclude:
 * `"ofd"`, an open-file-description lock as etcd takes it plus a flock (excludes etcd and
 * every adapter of this library); `"flock"`, a flock only (excludes this library's processes,
 * not etcd: Linux keeps the two kinds apart); `"process"`, this process only.
 */
export type LockKind = "ofd" | "flock" | "process";

/** The file system operations the WAL needs. Paths use `/` separators. */
export interface FileSystem {
  /** A short name of the adapter (for diagnostics): "deno", "bun", "node", ... */
  readonly name: string;
  /** Opens a file. Fails when it does not exist unless `create` is set. */
  open(path: string, options?: OpenOptions): Promise<WalFile>;
  /** File names in a directory (not recursive, unsorted). */
  readDir(path: string): Promise<string[]>;
  /** Information about a path, or null when nothing exists there. */
  stat(path: string): Promise<FileInfo | null>;
  /** Creates a directory and its missing parents. */
  mkdir(path: string): Promise<void>;
  /** Removes a file, or a directory and everything in it. No error when missing. */
  remove(path: string): Promise<void>;
  /** Renames a file or directory, replacing a file at `to`. */
  rename(from: string, to: string): Promise<void>;
  /** Makes a directory's entries (creates, renames, removals) durable. */
  syncDir(path: string): Promise<void>;
  /** Copies a file's bytes to a new file (used to keep `.broken` copies). */
  copyFile(from: string, to: string): Promise<void>;
  /**
   * Optional: the {@link LockKind} of this adapter's locks (absent: treated as `"ofd"`). The
   * WAL warns once through its logger when it is weaker.
   */
  lockKind?(): LockKind;
}
