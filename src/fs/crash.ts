/**
 * An in-memory file system that simulates crashes, for testing what a WAL (or anything
 * built on the {@link FileSystem} port) leaves behind when the machine dies.
 *
 * It tracks what was made durable: a file's bytes by `sync`/`syncData`, a directory's
 * entries (create, rename, unlink) by `syncDir`. {@link CrashFileSystem.crash} throws away
 * what was not, the way a power cut can: for each file, unsynced writes are dropped, kept,
 * or kept in part at 512-byte sector granularity (a torn write), with unsynced size changes
 * kept or not; for each directory, a prefix of the unsynced entry changes survives (a
 * journaling file system commits them in order). Bytes never written read as zeros, so a
 * preallocated tail stays zero.
 *
 * @example
 * ```ts
 * import { WAL } from "@raftlog/wal";
 * import { CrashFileSystem } from "@raftlog/wal/testing";
 * const fs = new CrashFileSystem(42);
 * const wal = await WAL.create("/wal", undefined, { fs });
 * fs.crashAfter(3); // the third file system call from now fails, and so does every later one
 * // ... drive the WAL until a call fails with a WalError caused by SimulatedCrash ...
 * fs.crash(); // what a reboot would find
 * ```
 *
 * @module
 */

import { DirNode, FileNode, type Node } from "./crash_nodes.ts";
import type { FileInfo, FileSystem, OpenOptions, WalFile } from "./types.ts";

/** The error every operation throws once the simulated machine has crashed. */
export class SimulatedCrash extends Error {
  /** Builds the error for the operation that hit the crash. */
  constructor(op: string) {
    super(`simulated crash during ${op}`);
    this.name = "SimulatedCrash";
  }
}

/** An error with a Node-style `code`, as the real adapters produce. */
function fsError(code: string, msg: string): Error {
  return Object.assign(new Error(`${code}: ${msg}`), { code });
}

/** Runs a synchronous operation as a promise, so a throw becomes a rejection. */
function attempt<T>(op: () => T): Promise<T> {
  try {
    return Promise.resolve(op());
  } catch (e) {
    return Promise.reject(e);
  }
}

function parts(path: string): string[] {
  return path.split("/").filter((p) => p !== "" && p !== ".");
}

class CrashFile implements WalFile {
  readonly path: string;
  private readonly fs: CrashFileSystem;
  private readonly node: Node;
  private readonly writable: boolean;
  private closed = false;
  private readonly epoch: number;

  constructor(fs: CrashFileSystem, path: string, node: Node, writable: boolean) {
    this.fs = fs;
    this.path = path;
    this.node = node;
    this.writable = writable;
    this.epoch = fs.epoch;
  }

  private file(op: string, write = false): FileNode {
    this.fs.step(op);
    if (this.closed || this.epoch !== this.fs.epoch) throw fsError("EBADF", `${op} ${this.path}`);
    if (this.node.kind !== "file") throw fsError("EISDIR", `${op} ${this.path}`);
    if (write && !this.writable) throw fsError("EBADF", `${op} on a read-only handle`);
    return this.node;
  }

  read(buf: Uint8Array, position: number): Promise<number> {
    return attempt(() => {
      const f = this.file("read");
      const n = Math.max(0, Math.min(buf.length, f.size - position));
      buf.set(f.data.subarray(position, position + n));
      return n;
    });
  }

  write(data: Uint8Array, position: number): Promise<void> {
    return attempt(() => {
      this.file("write", true).write(data, position);
    });
  }

  writeSync(data: Uint8Array, position: number): void {
    this.file("write", true).write(data, position);
  }

  syncDataSync(): void {
    this.file("syncData").sync();
  }

  truncate(size: number): Promise<void> {
    return attempt(() => {
      this.file("truncate", true).resize(size);
    });
  }

  size(): Promise<number> {
    return attempt(() => {
      return this.file("size").size;
    });
  }

  allocate(size: number): Promise<void> {
    return attempt(() => {
      const f = this.file("allocate", true);
      if (f.size < size) f.resize(size);
    });
  }

  syncData(): Promise<void> {
    return attempt(() => {
      this.file("syncData").sync();
    });
  }

  sync(): Promise<void> {
    return attempt(() => {
      this.file("sync").sync();
    });
  }

  tryLock(): Promise<boolean> {
    return attempt(() => {
      this.fs.step("tryLock");
      if (this.closed || this.epoch !== this.fs.epoch) throw fsError("EBADF", `lock ${this.path}`);
      if (this.node.lockedBy !== null && this.node.lockedBy !== this) return false;
      this.node.lockedBy = this;
      return true;
    });
  }

  close(): Promise<void> {
    // Closing never fails and never counts as a step: cleanup must work after a crash.
    if (!this.closed && this.node.lockedBy === this) this.node.lockedBy = null;
    this.closed = true;
    return Promise.resolve();
  }
}

/**
 * The simulated-crash file system. Paths are `/`-separated and rooted at `/`. Every call
 * counts as one step for {@link CrashFileSystem.crashAfter}.
 */
export class CrashFileSystem implements FileSystem {
  readonly name: string = "crash";
  /** Bumped by every crash: handles from before it are dead. */
  epoch = 0;
  private root = new DirNode();
  private rand: () => number;
  private stepsLeft = Infinity;
  private crashed = false;
  private crashedOp: string | null = null;

  /** Creates an empty file system; `seed` drives what survives each crash. */
  constructor(seed: number) {
    let a = seed >>> 0;
    this.rand = () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  /** Makes the `n`-th call from now, and every call after it, throw {@link SimulatedCrash}. */
  crashAfter(n: number): void {
    this.stepsLeft = n;
  }

  /** True once a call has hit the crash point set by {@link CrashFileSystem.crashAfter}. */
  get hasCrashed(): boolean {
    return this.crashed;
  }

  /**
   * The kind of call that hit the crash point (the name of the method: `"write"`,
   * `"syncData"`, `"rename"`, `"syncDir"`, ...; the blocking `writeSync` and
   * `syncDataSync` count as `"write"` and `"syncData"`), or null while none has. Read-only
   * reporting, for tests that check where their crashes landed; {@link CrashFileSystem.crash}
   * clears it.
   */
  get crashedDuring(): string | null {
    return this.crashedOp;
  }

  /**
   * Reboots: keeps what was durable plus a random part of what was not, drops every lock
   * and open handle, and makes the file system usable again.
   */
  crash(): void {
    const seen = new Set<Node>();
    const visit = (n: Node) => {
      if (seen.has(n)) return;
      seen.add(n);
      n.crash(this.rand);
      if (n.kind === "dir") { for (const c of n.entries.values()) visit(c); }
    };
    visit(this.root);
    this.epoch++;
    this.crashed = false;
    this.crashedOp = null;
    this.stepsLeft = Infinity;
  }

  /** Counts a step, throwing once the crash point is reached. */
  step(op: string): void {
    if (this.crashed) throw new SimulatedCrash(op);
    if (--this.stepsLeft <= 0) {
      this.crashed = true;
      this.crashedOp = op;
      throw new SimulatedCrash(op);
    }
  }

  /** The node at `path`, or null. */
  private lookup(path: string): Node | null {
    let node: Node = this.root;
    for (const p of parts(path)) {
      if (node.kind !== "dir") return null;
      const next = node.entries.get(p);
      if (next === undefined) return null;
      node = next;
    }
    return node;
  }

  /** The directory holding `path`, and the last name in it. */
  private parentOf(path: string): { dir: DirNode; name: string } {
    const ps = parts(path);
    const name = ps.pop();
    if (name === undefined) throw fsError("EINVAL", `no name in ${path}`);
    const dir = this.lookup(ps.join("/"));
    if (dir === null) throw fsError("ENOENT", path);
    if (dir.kind !== "dir") throw fsError("ENOTDIR", path);
    return { dir, name };
  }

  open(path: string, options: OpenOptions = {}): Promise<WalFile> {
    return attempt(() => {
      this.step("open");
      let node = this.lookup(path);
      if (node === null) {
        if (!options.create) throw fsError("ENOENT", path);
        const { dir, name } = this.parentOf(path);
        node = new FileNode();
        dir.set([name, node]);
      }
      const writable = options.write === true || options.create === true;
      if (node.kind === "dir" && writable) throw fsError("EISDIR", path);
      return new CrashFile(this, path, node, writable);
    });
  }

  readDir(path: string): Promise<string[]> {
    return attempt(() => {
      this.step("readDir");
      const node = this.lookup(path);
      if (node === null) throw fsError("ENOENT", path);
      if (node.kind !== "dir") throw fsError("ENOTDIR", path);
      return [...node.entries.keys()];
    });
  }

  stat(path: string): Promise<FileInfo | null> {
    return attempt(() => {
      this.step("stat");
      const node = this.lookup(path);
      if (node === null) return null;
      return { isDirectory: node.kind === "dir" };
    });
  }

  mkdir(path: string): Promise<void> {
    return attempt(() => {
      this.step("mkdir");
      let node: Node = this.root;
      for (const p of parts(path)) {
        if (node.kind !== "dir") throw fsError("ENOTDIR", path);
        let next = node.entries.get(p);
        if (next === undefined) {
          next = new DirNode();
          node.set([p, next]);
        }
        node = next;
      }
      if (node.kind !== "dir") throw fsError("EEXIST", path);
    });
  }

  remove(path: string): Promise<void> {
    return attempt(() => {
      this.step("remove");
      if (this.lookup(path) === null) return;
      const { dir, name } = this.parentOf(path);
      dir.set([name, null]);
    });
  }

  rename(from: string, to: string): Promise<void> {
    return attempt(() => {
      this.step("rename");
      const node = this.lookup(from);
      if (node === null) throw fsError("ENOENT", from);
      const src = this.parentOf(from);
      const dst = this.parentOf(to);
      const existing = dst.dir.entries.get(dst.name);
      if (existing !== undefined && existing.kind === "dir" && existing.entries.size > 0) {
        throw fsError("ENOTEMPTY", to);
      }
      if (src.dir === dst.dir) {
        src.dir.set([src.name, null], [dst.name, node]);
      } else {
        // across directories a crash may keep either half (rename(2) is atomic only within one)
        dst.dir.set([dst.name, node]);
        src.dir.set([src.name, null]);
      }
    });
  }

  syncDir(path: string): Promise<void> {
    return attempt(() => {
      this.step("syncDir");
      const node = this.lookup(path);
      if (node === null || node.kind !== "dir") throw fsError("ENOTDIR", path);
      node.sync();
    });
  }

  copyFile(from: string, to: string): Promise<void> {
    return attempt(() => {
      this.step("copyFile");
      const node = this.lookup(from);
      if (node === null || node.kind !== "file") throw fsError("ENOENT", from);
      const { dir, name } = this.parentOf(to);
      const copy = new FileNode();
      copy.write(node.data.subarray(0, node.size), 0);
      dir.set([name, copy]);
    });
  }
}
