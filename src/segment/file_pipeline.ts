/**
 * Keeps the next segment file preallocated in the background (`0.tmp`, `1.tmp`, ...), so a
 * cut does not wait for the allocation of 64 MB, and then fills it with zeros while it waits.
 *
 * Zero-filling is for speed, not content (a preallocated file already reads as zeros):
 * blocks that hold written data are overwritten in place, so an fdatasync after an append
 * flushes the data alone. Appends into a hole or a fallocated (unwritten) extent also make
 * ext4 journal the block allocation or extent conversion on that fdatasync: appends of
 * 100 KB ran at 1.4-1.8x the rate into a zero-filled file (`bench/prealloc.ts`). The tail's
 * writer (`segment_writer.ts`) keeps zeroing ahead of its appends (see
 * {@link ZERO_CHUNK_BYTES}) where the pipeline did not get there first.
 *
 * @module
 */

import { WalError } from "../errors.ts";
import type { FileSystem, WalFile } from "../fs/types.ts";
import { joinPath } from "../path.ts";

/** Zeros are written this many bytes at a time, by the pipeline and ahead of appends. */
export const ZERO_CHUNK_BYTES = 1 << 20;

let zeroChunk: Uint8Array | null = null;

/** A shared, never written, buffer of {@link ZERO_CHUNK_BYTES} zeros. */
export function zeros(): Uint8Array {
  zeroChunk ??= new Uint8Array(ZERO_CHUNK_BYTES);
  return zeroChunk;
}

/** A preallocated, locked, zero-filled file ready to become the next segment. */
export interface PreparedFile {
  /** The open, locked file. */
  file: WalFile;
  /** Its temporary path (`<dir>/<n>.tmp`). */
  path: string;
  /** Bytes from offset 0 that zeros were written to (the rest is preallocated only). */
  zeroedTo: number;
}

/** Prepares segment files one ahead of use. */
export class FilePipeline {
  private readonly fs: FileSystem;
  private readonly dir: string;
  private readonly size: number;
  private count = 0;
  private next: Promise<PreparedFile>;
  /** The zero-filling of the prepared file, running in the background. */
  private zeroing: Promise<void> | null = null;
  /** Set to stop the zero-filling after its current write. */
  private stopZeroing = false;

  /** Starts preparing the first file immediately. */
  constructor(fs: FileSystem, dir: string, size: number) {
    this.fs = fs;
    this.dir = dir;
    this.size = size;
    this.next = this.alloc();
    // A failure surfaces from take(); keep an unobserved rejection from crashing the process.
    this.next.catch(() => {});
  }

  /**
   * Starts zero-filling the prepared file in the background (once per file; later calls do
   * nothing). The tail's writer asks when the tail is half full: a log that never fills a
   * segment never pays for writing a spare one.
   */
  fillWithZeros(): void {
    if (this.zeroing !== null) return;
    this.stopZeroing = false;
    this.zeroing = this.next.then((f) => this.fill(f), () => {});
  }

  /** Returns the prepared file and starts preparing the one after it. */
  async take(): Promise<PreparedFile> {
    const f = await this.next;
    // the cut should not wait for the rest: the WAL zeroes ahead of its appends
    this.stopZeroing = true;
    await this.zeroing;
    this.zeroing = null;
    this.next = this.alloc();
    this.next.catch(() => {});
    return f;
  }

  /**
   * Stops the pipeline: the prepared file is removed, then closed. Only a file this pipeline
   * created and holds locked is removed, and while it is still locked: once unlocked, the
   * name may be another writer's (etcd's pipeline uses the same `<n>.tmp` names).
   */
  async close(): Promise<void> {
    let f: PreparedFile;
    try {
      f = await this.next;
    } catch {
      return; // nothing was created, or its creation already failed (and nothing removed)
    }
    this.stopZeroing = true;
    await this.zeroing;
    try {
      await this.fs.remove(f.path);
    } finally {
      await f.file.close();
    }
  }

  private async alloc(): Promise<PreparedFile> {
    const path = joinPath(this.dir, `${this.count % 2}.tmp`);
    this.count++;
    const file = await this.fs.open(path, { create: true });
    try {
      if (!(await file.tryLock())) {
        throw new WalError("LOCKED", "temporary segment file is locked by another writer", {
          file: path,
        });
      }
      // A leftover from a crash may hold old bytes: start from empty so the tail is zeros.
      await file.truncate(0);
      await file.allocate(this.size);
      return { file, path, zeroedTo: 0 };
    } catch (e) {
      await file.close();
      throw e;
    }
  }

  /** Writes zeros over the prepared file, a chunk at a time, until it is full or taken. */
  private async fill(prepared: PreparedFile): Promise<void> {
    const chunk = zeros();
    while (!this.stopZeroing && prepared.zeroedTo < this.size) {
      const n = Math.min(chunk.length, this.size - prepared.zeroedTo);
      try {
        await prepared.file.write(chunk.subarray(0, n), prepared.zeroedTo);
      } catch {
        return; // only an optimization: the appends will meet (and report) a real problem
      }
      prepared.zeroedTo += n;
    }
  }
}
