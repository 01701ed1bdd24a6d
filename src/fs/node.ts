/**
 * The node:fs adapter. Node has no flock, so its lock is process-local: a second writer in
 * the same process gets `LOCKED`, one in another process does not. Bun's adapter
 * (`bun.ts`) extends this one with real flock and fallocate.
 *
 * @module
 */

import * as fsp from "node:fs/promises";
import type { FileInfo, FileSystem, OpenOptions, WalFile } from "./types.ts";

/** Files (device:inode) locked by this process (Node's stand-in for flock). */
const heldLocks = new Set<string>();

/** A node:fs file handle with serialized, complete, positional reads and writes. */
export class NodeFile implements WalFile {
  /** The path the file was opened with. */
  readonly path: string;
  /** The underlying handle. */
  protected readonly handle: fsp.FileHandle;
  private queue: Promise<unknown> = Promise.resolve();
  private lockKey: string | null = null;

  /** Wraps an open handle. */
  constructor(path: string, handle: fsp.FileHandle) {
    this.path = path;
    this.handle = handle;
  }

  /** Runs `op` after every earlier operation on this file: writes never interleave. */
  protected serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.then(op, op);
    this.queue = run.catch(() => {});
    return run;
  }

  read(buf: Uint8Array, position: number): Promise<number> {
    return this.serial(async () => {
      let done = 0;
      while (done < buf.length) {
        const { bytesRead } = await this.handle.read(buf, done, buf.length - done, position + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done;
    });
  }

  write(data: Uint8Array, position: number): Promise<void> {
    return this.serial(async () => {
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await this.handle.write(
          data,
          done,
          data.length - done,
          position + done,
        );
        done += bytesWritten;
      }
    });
  }

  truncate(size: number): Promise<void> {
    return this.serial(() => this.handle.truncate(size));
  }

  size(): Promise<number> {
    return this.serial(async () => (await this.handle.stat()).size);
  }

  allocate(size: number): Promise<void> {
    return this.serial(async () => {
      if ((await this.handle.stat()).size < size) await this.handle.truncate(size);
    });
  }

  syncData(): Promise<void> {
    return this.serial(() => this.handle.datasync());
  }

  sync(): Promise<void> {
    return this.serial(() => this.handle.sync());
  }

  async tryLock(): Promise<boolean> {
    // Keyed by inode, not path: a locked segment keeps its lock when it is renamed.
    const st = await this.handle.stat();
    const key = `${st.dev}:${st.ino}`;
    if (heldLocks.has(key)) return false;
    heldLocks.add(key);
    this.lockKey = key;
    return true;
  }

  close(): Promise<void> {
    return this.serial(async () => {
      if (this.lockKey !== null) heldLocks.delete(this.lockKey);
      this.lockKey = null;
      await this.handle.close();
    });
  }
}

/** The FileSystem port over node:fs/promises. */
export class NodeFileSystem implements FileSystem {
  readonly name: string = "node";

  /** Wraps a freshly opened handle; Bun's adapter overrides this to add flock. */
  protected wrap(path: string, handle: fsp.FileHandle): WalFile {
    return new NodeFile(path, handle);
  }

  async open(path: string, options: OpenOptions = {}): Promise<WalFile> {
    const flags = options.create ? "a+" : options.write ? "r+" : "r";
    // "a+" would force appends; open with O_CREAT then reopen read-write for positional writes
    if (options.create) await (await fsp.open(path, flags, 0o600)).close();
    const handle = await fsp.open(path, options.create || options.write ? "r+" : "r");
    return this.wrap(path, handle);
  }

  readDir(path: string): Promise<string[]> {
    return fsp.readdir(path);
  }

  async stat(path: string): Promise<FileInfo | null> {
    try {
      const s = await fsp.stat(path);
      return { isFile: s.isFile(), isDirectory: s.isDirectory(), size: s.size };
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return null;
      throw e;
    }
  }

  async mkdir(path: string): Promise<void> {
    await fsp.mkdir(path, { recursive: true, mode: 0o700 });
  }

  remove(path: string): Promise<void> {
    return fsp.rm(path, { recursive: true, force: true });
  }

  rename(from: string, to: string): Promise<void> {
    return fsp.rename(from, to);
  }

  async syncDir(path: string): Promise<void> {
    const h = await fsp.open(path, "r");
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  }

  copyFile(from: string, to: string): Promise<void> {
    return fsp.copyFile(from, to);
  }
}
