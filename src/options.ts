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
}

/** Resolves options to concrete values. */
export async function resolveOptions(
  options: WalOptions = {},
): Promise<{ fs: FileSystem; segmentSizeBytes: number; observer: Observer }> {
  const size = options.segmentSizeBytes ?? DEFAULT_SEGMENT_SIZE_BYTES;
  if (!Number.isSafeInteger(size) || size < 64) {
    throw new WalError(
      "INVALID_ARGUMENT",
      `segmentSizeBytes must be an integer >= 64: got ${size}`,
    );
  }
  return {
    fs: options.fs ?? await defaultFileSystem(),
    segmentSizeBytes: size,
    observer: new Observer(options),
  };
}
