/**
 * {@link RaftStorageOptions}: the WAL's options and raft storage's own, with their defaults
 * and checks.
 *
 * @module
 */

import { WalError } from "../errors.ts";
import type { WalOptions } from "../wal.ts";

/** Options of `RaftStorage`: the WAL's, and these. */
export interface RaftStorageOptions extends WalOptions {
  /** Bytes of segment blocks cached for reads (default 4 MiB; at least one 64 KiB block). */
  cacheBytes?: number;
  /** Repair a torn tail at open, once, as etcd's server does (default true). */
  repair?: boolean;
  /** Segments and `.snap` files a compaction keeps (default 5: etcd's MaxWALs, MaxSnapFiles). */
  retain?: number;
}

/** The block cache's size when `cacheBytes` is not given. */
export const DEFAULT_CACHE_BYTES = 4 * 1024 * 1024;
/** What a compaction keeps when `retain` is not given (etcd's MaxWALs and MaxSnapFiles). */
export const DEFAULT_RETAIN = 5;

/** Throws `INVALID_ARGUMENT` for an option of raft storage's own out of its range. */
export function checkOptions(o: RaftStorageOptions): void {
  const { cacheBytes, retain, repair } = o;
  if (cacheBytes !== undefined && (!Number.isSafeInteger(cacheBytes) || cacheBytes < 0)) {
    throw new WalError("INVALID_ARGUMENT", `cacheBytes must be an integer >= 0: got ${cacheBytes}`);
  }
  if (retain !== undefined && (!Number.isSafeInteger(retain) || retain < 1)) {
    throw new WalError("INVALID_ARGUMENT", `retain must be an integer >= 1: got ${retain}`);
  }
  if (repair !== undefined && typeof repair !== "boolean") {
    throw new WalError("INVALID_ARGUMENT", `repair must be a boolean: got ${repair}`);
  }
}
