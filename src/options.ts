/**
 * The options every entry point takes, and their defaults.
 *
 * @module
 */

import { WalError } from "./errors.ts";
import { defaultFileSystem } from "./fs/default.ts";
import type { FileSystem } from "./fs/types.ts";
import { type ObserveOptions, Observer } from "./observe.ts";

/** etcd's segment size: 64,000,000 bytes (not MiB). */
export const DEFAULT_SEGMENT_SIZE_BYTES = 64_000_000;

/** Options for {@link WAL.create}, {@link WAL.open} and the module functions. */
export interface WalOptions extends ObserveOptions {
  /**
   * Size segments are preallocated to, and the size at which a save cuts a new segment.
   * Default 64,000,000 (etcd's `SegmentSizeBytes`).
   */
  segmentSizeBytes?: number;
  /** The file system adapter. Default: the one for the running runtime (Deno, Bun, Node). */
  fs?: FileSystem;
  /**
   * How saves write and fdatasync the tail segment. `true` (the default) uses blocking
   * system calls where the adapter has them: a save then costs about half the CPU
   * (`bench/file_calls.ts`), and group commit still gathers every save made while one is
   * being written. The event loop waits while the disk syncs. Set `false` on slow disks
   * (network or spinning), where an fdatasync can take milliseconds that other work should
   * not wait.
   */
  blocking?: boolean;
}

/** Options with every default applied. */
export interface ResolvedOptions {
  /** The adapter. */
  fs: FileSystem;
  /** The segment size. */
  segmentSizeBytes: number;
  /** Events and warnings. */
  observer: Observer;
  /** Whether the append path uses blocking calls. */
  blocking: boolean;
}

/** Resolves options to concrete values. */
export async function resolveOptions(options: WalOptions = {}): Promise<ResolvedOptions> {
  const size = options.segmentSizeBytes ?? DEFAULT_SEGMENT_SIZE_BYTES;
  if (!Number.isSafeInteger(size) || size < 64) {
    throw new WalError(
      "INVALID_ARGUMENT",
      `segmentSizeBytes must be an integer >= 64: got ${size}`,
    );
  }
  if (options.blocking !== undefined && typeof options.blocking !== "boolean") {
    throw new WalError("INVALID_ARGUMENT", `blocking must be a boolean: got ${options.blocking}`);
  }
  return {
    blocking: options.blocking ?? true,
    fs: options.fs ?? await defaultFileSystem(),
    segmentSizeBytes: size,
    observer: new Observer(options),
  };
}
