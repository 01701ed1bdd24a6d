/**
 * The Bun adapter: node:fs handles (Bun implements them natively) plus libc through
 * `bun:ffi`: segment locks as etcd takes them on Linux (an OFD lock, and a flock: `ofd.ts`),
 * so they exclude etcd and every adapter of this library, and `fallocate`, so segments are
 * really preallocated.
 *
 * @module
 */

import type * as fsp from "node:fs/promises";
import { NodeFile, NodeFileSystem } from "./node.ts";
import { type LockCalls, lockFd } from "./ofd.ts";
import type { LockKind, WalFile } from "./types.ts";

/** The libc functions this adapter calls. */
interface Libc extends LockCalls {
  fallocate(fd: number, mode: number, offset: number | bigint, len: number | bigint): number;
}

/** bun:ffi's part this adapter uses. */
interface BunFfi {
  dlopen(
    path: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): {
    symbols: {
      fcntl(fd: number, cmd: number, arg: Uint8Array): number;
      flock(fd: number, op: number): number;
      fallocate(fd: number, mode: number, offset: number | bigint, len: number | bigint): number;
      __errno_location(): unknown;
    };
  };
  read: { i32(ptr: unknown, offset?: number): number };
}

/** Loads glibc through bun:ffi (Linux only); the specifier is computed so other runtimes never resolve it. */
async function loadLibc(): Promise<Libc> {
  const specifier = "bun:" + "ffi";
  const ffi = await import(specifier) as BunFfi;
  const lib = ffi.dlopen("libc.so.6", {
    fcntl: { args: ["i32", "i32", "ptr"], returns: "i32" },
    flock: { args: ["i32", "i32"], returns: "i32" },
    fallocate: { args: ["i32", "i32", "i64", "i64"], returns: "i32" },
    __errno_location: { args: [], returns: "ptr" },
  });
  const c = lib.symbols;
  return {
    fcntl: (fd, cmd, arg) => c.fcntl(fd, cmd, arg),
    flock: (fd, op) => c.flock(fd, op),
    errno: () => ffi.read.i32(c.__errno_location(), 0),
    fallocate: (fd, mode, offset, len) => c.fallocate(fd, mode, offset, len),
  };
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
    return this.serial(() => Promise.resolve(lockFd(this.libc, this.handle.fd)));
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

  /** OFD locks and flocks through libc: they exclude etcd (glibc Linux, as `libc.so.6` is). */
  override lockKind(): LockKind {
    return "ofd";
  }

  protected override wrap(path: string, handle: fsp.FileHandle, _writable: boolean): WalFile {
    return new BunFile(path, handle, this.libc);
  }
}

/** Creates the Bun adapter (only under Bun: it loads `bun:ffi`). */
export async function createBunFileSystem(): Promise<BunFileSystem> {
  return new BunFileSystem(await loadLibc());
}
