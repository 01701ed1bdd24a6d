/**
 * The read side's own handles on segment files: raft storage numbers each segment it has
 * indexed entries in, and opens a read-only handle to it on the first read. They are apart
 * from the WAL's locked write handles, which `releaseLockTo` closes on its own schedule.
 *
 * @module
 */

import { ioError, WalError } from "../errors.ts";
import type { FileSystem } from "../fs/types.ts";
import type { SegmentFile } from "../replay/scan.ts";
import type { SegmentSource } from "./record_reader.ts";

/** RecordReader keys blocks by `segment * 2^32 + block`: numbers must stay below 2^21. */
const MAX_SEGMENTS = 2 ** 21;

/** Segment paths numbered in the order first seen, with lazily opened read handles. */
export class SegmentReads implements SegmentSource {
  private readonly paths: string[] = [];
  private readonly numbers = new Map<string, number>();
  private readonly open = new Map<number, Promise<SegmentFile>>();

  /** Reads through `fs`. */
  constructor(private readonly fs: FileSystem) {}

  /** The number of the segment at `path`, given on first sight. */
  number(path: string): number {
    const known = this.numbers.get(path);
    if (known !== undefined) return known;
    const k = this.paths.length;
    if (k >= MAX_SEGMENTS) {
      throw new WalError("INVALID_ARGUMENT", `more than ${MAX_SEGMENTS} segments indexed`, {
        file: path,
      });
    }
    this.paths.push(path);
    this.numbers.set(path, k);
    return k;
  }

  /** Segment `k`, opened read-only on first use. */
  segment(k: number): Promise<SegmentFile> {
    let file = this.open.get(k);
    if (file === undefined) {
      const path = this.paths[k];
      file = this.fs.open(path).then(
        (f) => ({ path, file: f }),
        (e) => {
          this.open.delete(k); // a later read tries again
          throw ioError(e, "cannot open segment to read", path);
        },
      );
      this.open.set(k, file);
    }
    return file;
  }

  /** Closes the handle on the segment at `path` (purged), if one is open. */
  async closePath(path: string): Promise<void> {
    const k = this.numbers.get(path);
    if (k === undefined) return;
    const file = this.open.get(k);
    this.open.delete(k);
    if (file !== undefined) await (await file.catch(() => null))?.file.close();
  }

  /** Closes every handle; the first error is thrown after all were closed. */
  async close(): Promise<void> {
    const files = [...this.open.values()];
    this.open.clear();
    let first: WalError | null = null;
    for (const f of files) {
      const s = await f.catch(() => null); // one that failed to open holds nothing
      await s?.file.close().catch((e) => (first ??= ioError(e, "cannot close segment", s.path)));
    }
    if (first !== null) throw first;
  }
}
