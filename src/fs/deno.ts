/**
 * The Deno adapter over `Deno.FsFile`: `syncData` for fdatasync, and segment locks as etcd
 * takes them on Linux (an OFD lock plus a flock, `ofd.ts`) through `Deno.dlopen` on libc.
 * `Deno.FsFile` exposes no file descriptor, so a lock is held on a second descriptor of the
 * same file (checked by device and inode), closed with the file. Without FFI permission
 * (`--allow-ffi`), or off Linux, locks are `FsFile.tryLock`'s flock: they exclude this
 * library's processes but not etcd ({@link DenoFileSystem.lockKind} says which).
 *
 * @module
 */

import { type LockCalls, lockFd } from "./ofd.ts";
import type { FileInfo, FileSystem, LockKind, OpenOptions, WalFile } from "./types.ts";

const O_RDONLY = 0;
const O_RDWR = 2;
const O_CLOEXEC = 0o2000000;

/** The libc calls the Deno adapter makes: the lock calls, and a descriptor to take them on. */
interface DenoLibc extends LockCalls {
  /** Opens `path`, checks it is the file `dev`/`ino`, returns its descriptor. */
  openSame(path: string, write: boolean, dev: number, ino: number): number;
  close(fd: number): void;
}

/** glibc through Deno's FFI, or null where it is not permitted or not Linux. */
function loadLibc(): DenoLibc | null {
  if (Deno.build.os !== "linux") return null;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
  let lib;
  try {
    lib = Deno.dlopen(
      "libc.so.6",
      {
        fcntl: { parameters: ["i32", "i32", "buffer"], result: "i32" },
        flock: { parameters: ["i32", "i32"], result: "i32" },
        open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
        close: { parameters: ["i32"], result: "i32" },
        __errno_location: { parameters: [], result: "pointer" },
      } as const,
    );
  } catch {
    return null; // not glibc: keep FsFile's flock
  }
  const c = lib.symbols;
  const errno = () => {
    const p = c.__errno_location();
    return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
  };
  const enc = new TextEncoder();
  return {
    fcntl: (fd, cmd, arg) => c.fcntl(fd, cmd, arg as Uint8Array<ArrayBuffer>),
    flock: (fd, op) => c.flock(fd, op),
    errno,
    openSame(path, write, dev, ino) {
      const fd = c.open(enc.encode(path + "\0"), (write ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0);
      if (fd < 0) throw new Error(`cannot open ${path} to lock it: errno ${errno()}`);
      // /proc/self/fd/<fd> is the open file itself (fstat is no libc symbol before glibc 2.33)
      let same = false;
      try {
        const st = Deno.statSync(`/proc/self/fd/${fd}`);
        same = st.dev === dev && st.ino === ino;
      } catch (e) {
        // no read permission on /proc: the path was opened a moment ago, trust it
        const denied = e instanceof Deno.errors.NotCapable ||
          e instanceof Deno.errors.PermissionDenied;
        if (!denied) {
          c.close(fd);
          throw new Error(`cannot stat ${path} to lock it: ${e}`);
        }
        same = true;
      }
      if (!same) {
        c.close(fd);
        throw new Error(`${path} was replaced while it was being locked`);
      }
      return fd;
    },
    close: (fd) => void c.close(fd),
  };
}

class DenoFile implements WalFile {
  readonly path: string;
  private readonly file: Deno.FsFile;
  private readonly libc: DenoLibc | null;
  private readonly writable: boolean;
  /** The second descriptor holding this file's OFD lock and flock, once locked. */
  private lockFd: number | null = null;
  /** The OS file position, tracked so that sequential writes skip the seek. */
  private position = 0;
  private queue: Promise<unknown> = Promise.resolve();
  /** Asynchronous operations queued or running: the blocking calls must not overlap them. */
  private inFlight = 0;

  constructor(path: string, file: Deno.FsFile, libc: DenoLibc | null, writable: boolean) {
    this.path = path;
    this.file = file;
    this.libc = libc;
    this.writable = writable;
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    this.inFlight++;
    const run = this.queue.then(op, op).finally(() => this.inFlight--);
    this.queue = run.catch(() => {});
    return run;
  }

  /** The blocking calls share the file position with the queued ones: never both at once. */
  private checkIdle(op: string): void {
    if (this.inFlight > 0) {
      throw new Error(`${op} on ${this.path} while an asynchronous operation is in flight`);
    }
  }

  private async seek(position: number): Promise<void> {
    if (this.position !== position) {
      await this.file.seek(position, Deno.SeekMode.Start);
      this.position = position;
    }
  }

  read(buf: Uint8Array, position: number): Promise<number> {
    return this.serial(async () => {
      await this.seek(position);
      let done = 0;
      while (done < buf.length) {
        const n = await this.file.read(buf.subarray(done));
        if (n === null) break;
        done += n;
        this.position += n;
      }
      return done;
    });
  }

  write(data: Uint8Array, position: number): Promise<void> {
    return this.serial(async () => {
      await this.seek(position);
      let done = 0;
      try {
        while (done < data.length) {
          done += await this.file.write(data.subarray(done));
        }
      } finally {
        this.position = position + done;
      }
    });
  }

  writeSync(data: Uint8Array, position: number): void {
    this.checkIdle("writeSync");
    if (this.position !== position) {
      this.file.seekSync(position, Deno.SeekMode.Start);
      this.position = position;
    }
    let done = 0;
    try {
      while (done < data.length) done += this.file.writeSync(data.subarray(done));
    } finally {
      this.position = position + done;
    }
  }

  syncDataSync(): void {
    this.checkIdle("syncDataSync");
    this.file.syncDataSync();
  }

  truncate(size: number): Promise<void> {
    return this.serial(() => this.file.truncate(size));
  }

  size(): Promise<number> {
    return this.serial(async () => (await this.file.stat()).size);
  }

  allocate(size: number): Promise<void> {
    // Deno has no fallocate: extend with a sparse tail, which reads as zeros.
    return this.serial(async () => {
      if ((await this.file.stat()).size < size) await this.file.truncate(size);
    });
  }

  syncData(): Promise<void> {
    return this.serial(() => this.file.syncData());
  }

  sync(): Promise<void> {
    return this.serial(() => this.file.sync());
  }

  tryLock(): Promise<boolean> {
    return this.serial(async () => {
      const libc = this.libc;
      if (this.lockFd !== null) return true;
      const st = await this.file.stat();
      // a directory cannot take a write lock (and etcd takes none on one): flock it
      if (libc === null || st.isDirectory) return await this.file.tryLock(true);
      const fd = libc.openSame(this.path, this.writable, st.dev, st.ino ?? 0);
      try {
        if (!lockFd(libc, fd)) {
          libc.close(fd);
          return false;
        }
      } catch (e) {
        libc.close(fd);
        throw e;
      }
      this.lockFd = fd;
      return true;
    });
  }

  close(): Promise<void> {
    return this.serial(() => {
      try {
        this.file.close();
      } finally {
        // closing the lock's descriptor releases both its locks
        if (this.lockFd !== null) this.libc?.close(this.lockFd);
        this.lockFd = null;
      }
      return Promise.resolve();
    });
  }
}

/** The FileSystem port over Deno's file APIs. */
export class DenoFileSystem implements FileSystem {
  readonly name: string = "deno";
  private libc: DenoLibc | null | undefined;

  /** libc, bound on first use (permissions can be granted after the module loads). */
  private lib(): DenoLibc | null {
    if (this.libc === undefined) this.libc = loadLibc();
    return this.libc;
  }

  /** `"ofd"` with FFI permission on Linux; `"flock"` without, which does not exclude etcd. */
  lockKind(): LockKind {
    return this.lib() === null ? "flock" : "ofd";
  }

  async open(path: string, options: OpenOptions = {}): Promise<WalFile> {
    const write = options.write === true || options.create === true;
    const file = await Deno.open(path, {
      read: true,
      write,
      create: options.create === true,
      mode: 0o600,
    });
    return new DenoFile(path, file, this.lib(), write);
  }

  async readDir(path: string): Promise<string[]> {
    const names: string[] = [];
    for await (const e of Deno.readDir(path)) names.push(e.name);
    return names;
  }

  async stat(path: string): Promise<FileInfo | null> {
    try {
      const s = await Deno.stat(path);
      return { isDirectory: s.isDirectory };
    } catch (e) {
      // nothing there: also when a parent on the path is a file
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
        return null;
      }
      throw e;
    }
  }

  mkdir(path: string): Promise<void> {
    return Deno.mkdir(path, { recursive: true, mode: 0o700 });
  }

  async remove(path: string): Promise<void> {
    try {
      await Deno.remove(path, { recursive: true });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }

  rename(from: string, to: string): Promise<void> {
    return Deno.rename(from, to);
  }

  async syncDir(path: string): Promise<void> {
    const dir = await Deno.open(path, { read: true });
    try {
      await dir.sync();
    } finally {
      dir.close();
    }
  }

  copyFile(from: string, to: string): Promise<void> {
    return Deno.copyFile(from, to);
  }
}
