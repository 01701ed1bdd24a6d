/**
 * The Bun adapter: node:fs handles (Bun implements them natively) plus libc `flock` and
 * `fallocate` through `bun:ffi`, so locks hold across processes (and against etcd and the
 * Deno adapter, which also use flock) and segments are really preallocated.
 *
 * @module
 */

import type * as fsp from "node:fs/promises";
import { NodeFile, NodeFileSystem } from "./node.ts";
import type { WalFile } from "./types.ts";

const LOCK_EX = 2;
const LOCK_NB = 4;

/** The libc functions this adapter calls. */
interface Libc {
  flock(fd: number, op: number): number;
  fallocate(fd: number, mode: number, offset: number | bigint, len: number | bigint): number;
}

/** Loads libc through bun:ffi; the specifier is computed so other runtimes never resolve it. */
async function loadLibc(): Promise<Libc> {
  const specifier = "bun:" + "ffi";
  const ffi = await import(specifier) as {
    dlopen(
      path: string,
      symbols: Record<string, { args: string[]; returns: string }>,
    ): { symbols: Libc };
  };
  const lib = ffi.dlopen("libc.so.6", {
    flock: { args: ["i32", "i32"], returns: "i32" },
    fallocate: { args: ["i32", "i32", "i64", "i64"], returns: "i32" },
  });
  return lib.symbols;
}

class BunFile extends NodeFile {
  private readonly libc: Libc;

  constructor(path: string, handle: fsp.FileHandle, libc: Libc) {
    super(path, handle);
    this.libc = libc;
  }

  override allocate(size: number): Promise<void> {
    return this.serial(async () => {
      if ((await this.handle.stat()).size >= size) return;
      // mode 0 reserves blocks and extends the size; fall back to a sparse extension
      // where the file system does not support fallocate (tmpfs on old kernels, ...)
      if (this.libc.fallocate(this.handle.fd, 0, 0, size) !== 0) await this.handle.truncate(size);
    });
  }

  override tryLock(): Promise<boolean> {
    return Promise.resolve(this.libc.flock(this.handle.fd, LOCK_EX | LOCK_NB) === 0);
  }
}

/** The FileSystem port for Bun. Create it with {@link createBunFileSystem}. */
export class BunFileSystem extends NodeFileSystem {
  override readonly name: string = "bun";
  private readonly libc: Libc;

  /** Use {@link createBunFileSystem}, which loads libc first. */
  constructor(libc: Libc) {
    super();
    this.libc = libc;
  }

  protected override wrap(path: string, handle: fsp.FileHandle): WalFile {
    return new BunFile(path, handle, this.libc);
  }
}

/** Creates the Bun adapter (only under Bun: it loads `bun:ffi`). */
export async function createBunFileSystem(): Promise<BunFileSystem> {
  return new BunFileSystem(await loadLibc());
}
