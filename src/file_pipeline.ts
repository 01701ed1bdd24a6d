/**
 * Keeps the next segment file preallocated in the background (`0.tmp`, `1.tmp`, ...), so a
 * cut does not wait for the allocation of 64 MB.
 *
 * @module
 */

import { WalError } from "./errors.ts";
import type { FileSystem, WalFile } from "./fs/types.ts";
import { joinPath } from "./path.ts";

/** A preallocated, locked, zero-filled file ready to become the next segment. */
export interface PreparedFile {
  /** The open, locked file. */
  file: WalFile;
  /** Its temporary path (`<dir>/<n>.tmp`). */
  path: string;
}

/** Prepares segment files one ahead of use. */
export class FilePipeline {
  private readonly fs: FileSystem;
  private readonly dir: string;
  private readonly size: number;
  private count = 0;
  private next: Promise<PreparedFile>;

  /** Starts preparing the first file immediately. */
  constructor(fs: FileSystem, dir: string, size: number) {
    this.fs = fs;
    this.dir = dir;
    this.size = size;
    this.next = this.alloc();
    // A failure surfaces from take(); keep an unobserved rejection from crashing the process.
    this.next.catch(() => {});
  }

  /** Returns the prepared file and starts preparing the one after it. */
  async take(): Promise<PreparedFile> {
    const f = await this.next;
    this.next = this.alloc();
    this.next.catch(() => {});
    return f;
  }

  /** Stops the pipeline: the prepared file is closed and removed. */
  async close(): Promise<void> {
    let f: PreparedFile;
    try {
      f = await this.next;
    } catch {
      return; // nothing was created, or its creation already failed
    }
    await f.file.close();
    await this.fs.remove(f.path);
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
      return { file, path };
    } catch (e) {
      await file.close();
      throw e;
    }
  }
}
