/**
 * The Deno adapter over `Deno.FsFile`: `syncData` for fdatasync and `tryLock` (flock) for
 * the exclusive segment locks, which therefore hold across processes and against etcd and
 * the Bun adapter.
 *
 * @module
 */

import type { FileInfo, FileSystem, OpenOptions, WalFile } from "./types.ts";

class DenoFile implements WalFile {
  readonly path: string;
  private readonly file: Deno.FsFile;
  /** The OS file position, tracked so that sequential writes skip the seek. */
  private position = 0;
  private queue: Promise<unknown> = Promise.resolve();
  /** Asynchronous operations queued or running: the blocking calls must not overlap them. */
  private inFlight = 0;

  constructor(path: string, file: Deno.FsFile) {
    this.path = path;
    this.file = file;
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
    return this.serial(() => this.file.tryLock(true));
  }

  close(): Promise<void> {
    return this.serial(() => {
      this.file.close();
      return Promise.resolve();
    });
  }
}

/** The FileSystem port over Deno's file APIs. */
export class DenoFileSystem implements FileSystem {
  readonly name: string = "deno";

  async open(path: string, options: OpenOptions = {}): Promise<WalFile> {
    const write = options.write === true || options.create === true;
    const file = await Deno.open(path, {
      read: true,
      write,
      create: options.create === true,
      mode: 0o600,
    });
    return new DenoFile(path, file);
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
