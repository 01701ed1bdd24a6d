/**
 * The node:fs adapter. Bun's adapter (`bun.ts`) extends it with flock and fallocate through
 * bun:ffi.
 *
 * Node has no lock API: one helper process per process takes etcd's OFD lock and a flock on
 * each locked file (`node_lock_helper.ts`), so Node's locks exclude etcd and every adapter of
 * this library as Deno's and Bun's do. Without Perl they hold within this process only.
 *
 * @module
 */

import process from "node:process";
import { fdatasyncSync, writeSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { lockHelper } from "./node_lock_helper.ts";
import type { FileInfo, FileSystem, LockKind, OpenOptions, WalFile } from "./types.ts";

/** Files (device:inode) locked by this process, where Perl is missing (in-process locks). */
const heldLocks = new Set<string>();

/** A node:fs file handle with serialized, complete, positional reads and writes. */
export class NodeFile implements WalFile {
  /** The path the file was opened with. */
  readonly path: string;
  /** The underlying handle. */
  protected readonly handle: fsp.FileHandle;
  private queue: Promise<unknown> = Promise.resolve();
  /** Asynchronous operations queued or running: the blocking calls must not overlap them. */
  private inFlight = 0;
  /** The in-process lock's key, where the helper is unavailable. */
  private lockKey: string | null = null;
  /** The helper's id of this file's lock. */
  private lockId: number | null = null;
  private readonly writable: boolean;

  /** Wraps an open handle (`writable` when opened for writing). */
  constructor(path: string, handle: fsp.FileHandle, writable = true) {
    this.path = path;
    this.handle = handle;
    this.writable = writable;
  }

  /** Runs `op` after every earlier operation on this file: writes never interleave. */
  protected serial<T>(op: () => Promise<T>): Promise<T> {
    this.inFlight++;
    const run = this.queue.then(op, op).finally(() => this.inFlight--);
    this.queue = run.catch(() => {});
    return run;
  }

  /** The blocking calls must not overtake queued ones (writes would land out of order). */
  private checkIdle(op: string): void {
    if (this.inFlight > 0) {
      throw new Error(`${op} on ${this.path} while an asynchronous operation is in flight`);
    }
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

  writeSync(data: Uint8Array, position: number): void {
    this.checkIdle("writeSync");
    let done = 0;
    while (done < data.length) {
      done += writeSync(this.handle.fd, data, done, data.length - done, position + done);
    }
  }

  syncDataSync(): void {
    this.checkIdle("syncDataSync");
    fdatasyncSync(this.handle.fd);
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
    if (this.lockId !== null || this.lockKey !== null) return true;
    // the helper checks the device and inode, so a file renamed or replaced is not mistaken
    const st = await this.handle.stat({ bigint: true });
    const r = await lockHelper.lock(this.path, st.dev, st.ino, this.writable && !st.isDirectory());
    if (r === null) return false;
    if (r !== "unavailable") {
      this.lockId = r;
      return true;
    }
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
      const id = this.lockId;
      this.lockId = null;
      try {
        if (id !== null) await lockHelper.unlock(id);
      } finally {
        await this.handle.close();
      }
    });
  }
}

/** The FileSystem port over node:fs/promises. */
export class NodeFileSystem implements FileSystem {
  readonly name: string = "node";

  /** `"ofd"` through the Perl lock helper (`node_lock_helper.ts`); `"process"` without Perl. */
  lockKind(): LockKind {
    return lockHelper.missing ? "process" : process.platform === "linux" ? "ofd" : "flock";
  }

  /** Wraps a freshly opened handle; Bun's adapter overrides this to add flock. */
  protected wrap(path: string, handle: fsp.FileHandle, writable: boolean): WalFile {
    return new NodeFile(path, handle, writable);
  }

  async open(path: string, options: OpenOptions = {}): Promise<WalFile> {
    const flags = options.create ? "a+" : options.write ? "r+" : "r";
    // "a+" would force appends; open with O_CREAT then reopen read-write for positional writes
    if (options.create) await (await fsp.open(path, flags, 0o600)).close();
    const handle = await fsp.open(path, options.create || options.write ? "r+" : "r");
    return this.wrap(path, handle, options.create === true || options.write === true);
  }

  readDir(path: string): Promise<string[]> {
    return fsp.readdir(path);
  }

  async stat(path: string): Promise<FileInfo | null> {
    try {
      const s = await fsp.stat(path);
      return { isDirectory: s.isDirectory() };
    } catch (e) {
      // nothing there: also when a parent on the path is a file
      const code = (e as { code?: string }).code;
      if (code === "ENOENT" || code === "ENOTDIR") return null;
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
