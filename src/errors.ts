/**
 * The one error type of this library: every failure carries a stable {@link WalErrorCode}
 * and, where it applies, the file and byte offset it concerns.
 *
 * @module
 */

/**
 * Stable, machine-readable error codes. They mirror etcd's named errors
 * (`ErrCRCMismatch`, `io.ErrUnexpectedEOF`, ...) so a caller can branch on the same
 * conditions an etcd server does.
 */
export type WalErrorCode =
  /** A record failed its CRC-32C check or the crc chain between segments is broken. */
  | "CRC_MISMATCH"
  /** The log ends inside a record: a torn write, repairable with `repair`. */
  | "UNEXPECTED_EOF"
  /** No snapshot record matches the requested snapshot index. */
  | "SNAPSHOT_NOT_FOUND"
  /** A snapshot record has the requested index but a different term. */
  | "SNAPSHOT_MISMATCH"
  /** Two segments carry different metadata. */
  | "METADATA_CONFLICT"
  /** An entry's index leaves a gap after the entries read so far. */
  | "SLICE_OUT_OF_RANGE"
  /** No WAL segment (or no segment covering the snapshot, or a sequence gap). */
  | "FILE_NOT_FOUND"
  /** `create` found a WAL already in place. */
  | "EXISTS"
  /** Another writer holds the lock on a segment. */
  | "LOCKED"
  /** The WAL was closed (or failed and was closed) before this call. */
  | "CLOSED"
  /** A caller-supplied value or a call order is not allowed. */
  | "INVALID_ARGUMENT"
  /** A record's bytes are not a valid protobuf message or carry an unknown type. */
  | "DECODE"
  /** A `.snap` file is empty or carries no data or a zero CRC (etcd's ErrEmptySnapshot). */
  | "EMPTY_SNAPSHOT"
  /** No readable `.snap` file (that matches, for `loadNewestAvailable`): etcd's ErrNoSnapshot. */
  | "NO_SNAPSHOT"
  /** `wal dump-logs` found no entries after where it starts (etcd-dump-logs panics there). */
  | "NO_ENTRIES"
  /** Raft storage: the index asked for is compacted away (etcd raft's ErrCompacted). */
  | "COMPACTED"
  /** Raft storage: the index asked for is past the last entry (etcd raft's ErrUnavailable). */
  | "UNAVAILABLE"
  /** Raft storage: a snapshot at or below the one held (etcd raft's ErrSnapOutOfDate). */
  | "SNAP_OUT_OF_DATE"
  /** The operating system refused a file operation. */
  | "IO";

/** Options for {@link WalError}: where the failure happened and what caused it. */
export interface WalErrorOptions {
  /** Path of the file concerned, when there is one. */
  file?: string;
  /** Byte offset in `file` where the bad record (or the failure) starts. */
  offset?: number;
  /** The underlying error, e.g. from the file system. */
  cause?: unknown;
}

/**
 * An error raised by the WAL. Branch on {@link WalError.code}, never on the message.
 *
 * @example
 * ```ts
 * import { WAL, WalError } from "@raftlog/wal";
 * try {
 *   await WAL.open("/nonexistent");
 * } catch (e) {
 *   if (e instanceof WalError && e.code === "FILE_NOT_FOUND") console.log("no WAL yet");
 * }
 * ```
 */
export class WalError extends Error {
  /** The stable code of this failure. */
  readonly code: WalErrorCode;
  /** Path of the file concerned, if known. */
  readonly file?: string;
  /** Byte offset in {@link WalError.file} of the failure, if known. */
  readonly offset?: number;
  /** The message without the file and offset appended. */
  readonly reason: string;

  /** Builds an error; the message gets the file and offset appended when given. */
  constructor(code: WalErrorCode, message: string, options: WalErrorOptions = {}) {
    const where = options.file === undefined
      ? ""
      : options.offset === undefined
      ? ` (file ${options.file})`
      : ` (file ${options.file}, offset ${options.offset})`;
    super(message + where, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "WalError";
    this.code = code;
    this.reason = message;
    if (options.file !== undefined) this.file = options.file;
    if (options.offset !== undefined) this.offset = options.offset;
  }
}

/** Wraps an unknown failure from a file system call as an `IO` WalError (a WalError passes through). */
export function ioError(err: unknown, what: string, file?: string): WalError {
  if (err instanceof WalError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new WalError("IO", `${what}: ${detail}`, { file, cause: err });
}
