/**
 * The segments a WAL holds open: those replay from its snapshot needs, locked while the
 * WAL may write (so a second writer, `repair` or `purge` keeps off them), and released
 * from the oldest on by `releaseLockTo`.
 *
 * @module
 */

import { ioError, WalError } from "../errors.ts";
import type { FileSystem } from "../fs/types.ts";
import { joinPath } from "../path.ts";
import { closeSegmentFiles, openSegmentFiles, type SegmentFile } from "../replay/scan.ts";
import type { OpenSegment } from "../segment/segment_writer.ts";
import type { Snapshot } from "../types.ts";
import { listSegments, selectSegments } from "./segment_dir.ts";

/** The open segments of one WAL, oldest first. */
export class SegmentSet {
  /** The directory. */
  readonly dir: string;
  private segments: OpenSegment[];

  /** Holds `segments` (already open) of `dir`. */
  constructor(dir: string, segments: OpenSegment[]) {
    this.dir = dir;
    this.segments = segments;
  }

  /**
   * Opens the segments replay from `snap` needs; with `lock`, opens them for writing and
   * locks each (`LOCKED` when another open file holds one). Nothing stays open on failure.
   */
  static async open(
    fs: FileSystem,
    dir: string,
    snap: Snapshot,
    lock: boolean,
  ): Promise<SegmentSet> {
    const selected = selectSegments(await listSegments(fs, dir), snap, dir);
    const paths = selected.map((s) => joinPath(dir, s.name));
    const files = await openSegmentFiles(fs, paths, lock).catch((e) => {
      throw ioError(e, "cannot open WAL", dir);
    });
    try {
      for (const { path, file } of files) {
        if (lock && !(await file.tryLock())) {
          throw new WalError("LOCKED", "segment is locked by another writer", { file: path });
        }
      }
    } catch (e) {
      await closeSegmentFiles(files).catch(() => {});
      throw ioError(e, "cannot open WAL", dir);
    }
    return new SegmentSet(dir, selected.map((name, i) => ({ name, file: files[i].file })));
  }

  /** The open segments as paths and files, for a scan. */
  files(): SegmentFile[] {
    return this.segments.map((s) => this.fileOf(s));
  }

  private fileOf(s: OpenSegment): SegmentFile {
    return { path: joinPath(this.dir, s.name.name), file: s.file };
  }

  /** Hands the open files over to the caller, which closes them; the set is left empty. */
  handOver(): SegmentFile[] {
    const files = this.files();
    this.segments = [];
    return files;
  }

  /** The newest segment: the tail, in append mode. Undefined once closed. */
  last(): OpenSegment | undefined {
    return this.segments[this.segments.length - 1];
  }

  /** Adds a segment a cut made (already open and locked). */
  add(segment: OpenSegment): void {
    this.segments.push(segment);
  }

  /**
   * Releases (closes) the segments that only hold entries below `index`, keeping the last
   * of them, which may hold entries at and after `index`, and always the tail.
   */
  async releaseTo(index: bigint): Promise<void> {
    let smaller = this.segments.length - 1;
    for (let i = 0; i < this.segments.length; i++) {
      if (this.segments[i].name.index >= index) {
        smaller = i - 1;
        break;
      }
    }
    if (smaller <= 0) return;
    const released = this.segments.slice(0, smaller);
    this.segments = this.segments.slice(smaller);
    await closeSegmentFiles(released.map((r) => this.fileOf(r)), "cannot release segment");
  }

  /** Closes every segment; the first error is thrown after all were closed. */
  close(): Promise<void> {
    const segments = this.segments;
    this.segments = [];
    return closeSegmentFiles(segments.map((r) => this.fileOf(r)), "cannot close WAL");
  }
}
