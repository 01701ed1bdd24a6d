/**
 * The node:fs adapter. Bun's adapter (`bun.ts`) extends it with flock and fallocate through
 * bun:ffi.
 *
 * Node has no flock API. To hold a lock that other processes (Deno, Bun, etcd, another
 * Node) see, this adapter has util-linux's `flock(1)` take it: a small child process
 * `flock --nonblock <file> sh -c 'echo locked; exec cat'` holds the lock for as long as its
 * stdin is open. Closing the file closes that pipe; if this process dies, the kernel closes
 * it, `cat` exits and the lock is released as a flock held by the process itself would be.
 * A flock does not exclude etcd, whose locks are OFD locks (Linux keeps the two apart): the
 * Deno and Bun adapters take both. Where `flock(1)` is not installed the lock falls back to
 * this process only; when it cannot be started (a process limit, ...) `tryLock` throws.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { fdatasyncSync, writeSync } from "node:fs";
import * as fsp from "node:fs/promises";
import type { FileInfo, FileSystem, LockKind, OpenOptions, WalFile } from "./types.ts";

/** Files (device:inode) locked by this process: flock(1) would not refuse our own lock. */
const heldLocks = new Set<string>();

/** flock(1)'s exit status for "already locked" (we pass it with --conflict-exit-code). */
const CONFLICT = 75;

/** Set once flock(1) was found missing: locks are this process's only from then on. */
let flockMissing = false;

/**
 * Takes an exclusive flock on `path` in a child process. Resolves with the child holding it,
 * null when another holder has it, or "unavailable" when flock(1) is not installed; rejects
 * when it could not be run or failed otherwise.
 */
function flockHelper(path: string): Promise<ChildProcess | null | "unavailable"> {
  if (flockMissing) return Promise.resolve("unavailable");
  return new Promise((resolve, reject) => {
    const failed = (why: string) => reject(new Error(`cannot lock ${path} with flock(1): ${why}`));
    let child: ChildProcess;
    try {
      child = spawn(
        "flock",
        [
          "--nonblock",
          "--conflict-exit-code",
          String(CONFLICT),
          path,
          "sh",
          "-c",
          "echo locked; exec cat",
        ],
        { stdio: ["pipe", "pipe", "ignore"] },
      );
    } catch (e) {
      failed(String(e));
      return;
    }
    child.once("error", (e) => {
      if ((e as { code?: string }).code !== "ENOENT") return failed(String(e));
      flockMissing = true;
      resolve("unavailable");
    });
    child.once("exit", (code, signal) => {
      if (code === CONFLICT) resolve(null);
      else failed(`it exited with ${signal ?? code}`);
    });
    child.stdout!.once("data", () => {
      // The lock is held; let this process exit without waiting for the helper.
      child.stdout!.destroy();
      (child.stdin as unknown as { unref?: () => void }).unref?.();
      child.unref();
      resolve(child);
    });
  });
}

/** A node:fs file handle with serialized, complete, positional reads and writes. */
export class NodeFile implements WalFile {
  /** The path the file was opened with. */
  readonly path: string;
  /** The underlying handle. */
  protected readonly handle: fsp.FileHandle;
  private queue: Promise<unknown> = Promise.resolve();
  /** Asynchronous operations queued or running: the blocking calls must not overlap them. */
  private inFlight = 0;
  private lockKey: string | null = null;
  private lockHelper: ChildProcess | null = null;

  /** Wraps an open handle. */
  constructor(path: string, handle: fsp.FileHandle) {
    this.path = path;
    this.handle = handle;
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
    // Keyed by inode, not path: a locked segment keeps its lock when it is renamed.
    const st = await this.handle.stat();
    const key = `${st.dev}:${st.ino}`;
    if (heldLocks.has(key)) return false;
    heldLocks.add(key);
    let helper;
    try {
      helper = await flockHelper(this.path);
    } catch (e) {
      heldLocks.delete(key);
      throw e;
    }
    if (helper === null) {
      heldLocks.delete(key);
      return false;
    }
    this.lockKey = key;
    if (helper !== "unavailable") this.lockHelper = helper;
    return true;
  }

  close(): Promise<void> {
    return this.serial(async () => {
      if (this.lockKey !== null) heldLocks.delete(this.lockKey);
      this.lockKey = null;
      const helper = this.lockHelper;
      this.lockHelper = null;
      if (helper !== null && helper.exitCode === null) {
        // cat sees EOF and exits, then flock(1) releases the lock: wait, so the lock is
        // free when close() resolves (but never hang on a stuck helper)
        const exited = new Promise((r) => helper.once("exit", r));
        helper.stdin?.end();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const stuck = new Promise((r) => (timer = setTimeout(r, 2000)));
        await Promise.race([exited, stuck]);
        clearTimeout(timer);
      }
      await this.handle.close();
    });
  }
}

/** The FileSystem port over node:fs/promises. */
export class NodeFileSystem implements FileSystem {
  readonly name: string = "node";

  /** `"flock"` through flock(1) (not etcd's OFD locks); `"process"` where it is missing. */
  lockKind(): LockKind {
    return flockMissing ? "process" : "flock";
  }

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
