/**
 * The tail of the log: the one segment being appended to. A {@link SegmentWriter} exists
 * only while a WAL is in append mode; it owns the encoder, the writes and fdatasyncs of the
 * tail (blocking or asynchronous), the zeros written ahead of the records, and rotation to
 * the next segment. {@link writeSegmentHead} is the one place a segment's head is written,
 * by create and by every cut.
 *
 * @module
 */

import { ioError } from "../errors.ts";
import type { WalFile } from "../fs/types.ts";
import type { ResolvedOptions } from "../options.ts";
import { joinPath } from "../path.ts";
import { type HardState, isEmptyHardState, type Snapshot } from "../types.ts";
import { Encoder } from "./encoder.ts";
import { FilePipeline, type PreparedFile, ZERO_CHUNK_BYTES, zeros } from "./file_pipeline.ts";
import { type SegmentName, segmentName } from "./segment_names.ts";

/** An open segment: its parsed name and its file. */
export interface OpenSegment {
  /** The parsed name. */
  name: SegmentName;
  /** The open file; locked while the WAL may write. */
  file: WalFile;
}

/** The last record of a segment head: a snapshot (the first segment) or the hard state. */
export type HeadEnd = { snapshot: Snapshot } | { state: HardState };

/** Where a tail's appends go on. */
export interface TailPosition {
  /** Bytes of records in the tail: appends go here. */
  offset: number;
  /** The running CRC after the last record. */
  crc: number;
  /** The file's size: zeros are never written past it. */
  size: number;
  /** Bytes from offset 0 holding written blocks (records, or zeros written ahead of them). */
  zeroedTo: number;
}

/**
 * Writes a segment's head at offset 0 and fdatasyncs it: the crc record (the running CRC
 * of the segment before, 0 for the first), the metadata, then `last` (an empty hard state is
 * left out, as etcd does). Returns the head's length and the CRC after it.
 */
export async function writeSegmentHead(
  file: WalFile,
  path: string,
  prevCrc: number,
  metadata: Uint8Array | null,
  last: HeadEnd,
  options: Pick<ResolvedOptions, "observer">,
): Promise<{ offset: number; crc: number }> {
  const enc = new Encoder(prevCrc, 0);
  enc.crcRecord();
  enc.metadata(metadata);
  if ("snapshot" in last) enc.snapshot(last.snapshot);
  else if (!isEmptyHardState(last.state)) enc.state(last.state);
  const bytes = enc.take();
  await file.write(bytes, 0);
  await options.observer.fsync("file", path, () => file.syncData());
  return { offset: bytes.length, crc: enc.crc };
}

/** Appends to the tail segment of a WAL, and rotates it when asked. */
export class SegmentWriter {
  private readonly options: ResolvedOptions;
  private readonly dir: string;
  private readonly metadata: Uint8Array | null;
  private readonly pipeline: FilePipeline;
  private tail: OpenSegment;
  /** The tail's path, made once per segment, not per append. */
  private tailPath: string;
  private enc: Encoder;
  private offset: number;
  private zeroedTo: number;
  private size: number;

  /**
   * Starts appending to `tail` at `at`; `metadata` heads every later segment. Starts the
   * pipeline that prepares the next segment.
   */
  constructor(
    options: ResolvedOptions,
    dir: string,
    tail: OpenSegment,
    at: TailPosition,
    metadata: Uint8Array | null,
  ) {
    this.options = options;
    this.dir = dir;
    this.metadata = metadata;
    this.tail = tail;
    this.tailPath = joinPath(dir, tail.name.name);
    this.enc = new Encoder(at.crc, at.offset);
    this.offset = at.offset;
    this.zeroedTo = Math.max(at.offset, at.zeroedTo);
    this.size = at.size;
    this.pipeline = new FilePipeline(options.fs, dir, options.segmentSizeBytes);
  }

  /**
   * Makes the last segment of a replayed log the tail: the bytes after its last good record
   * (`end.offset`) were never acknowledged, and a partial overwrite of them would read back
   * as corruption, so they are zeroed (keeping the size) and that is made durable before
   * anything new is written.
   */
  static async resume(
    options: ResolvedOptions,
    dir: string,
    tail: OpenSegment,
    end: { offset: number; crc: number; lastSize: number },
    metadata: Uint8Array | null,
  ): Promise<SegmentWriter> {
    const path = joinPath(dir, tail.name.name);
    const size = Math.max(end.lastSize, end.offset);
    await tail.file.truncate(end.offset);
    await tail.file.allocate(size);
    await options.observer.fsync("file", path, () => tail.file.syncData());
    const at = { offset: end.offset, crc: end.crc, size, zeroedTo: 0 };
    return new SegmentWriter(options, dir, tail, at, metadata);
  }

  /** The encoder records are added to; {@link SegmentWriter.writePending} writes them. */
  get encoder(): Encoder {
    return this.enc;
  }

  /** The tail segment's path. */
  get path(): string {
    return this.tailPath;
  }

  /** The offset in the tail the next record encoded will be written at. */
  get appendOffset(): number {
    return this.offset + this.enc.pending.length;
  }

  /** Whether the tail is full: etcd would cut here (by the offset it has flushed to). */
  get full(): boolean {
    return this.enc.flushModel.flushedOffset >= this.options.segmentSizeBytes;
  }

  /**
   * Writes the encoded records at the end of the tail, and zeros over the next megabyte
   * when they reach past what was zeroed (so the next appends overwrite written blocks).
   */
  async writePending(): Promise<void> {
    const bytes = this.enc.take();
    if (bytes.length === 0) return;
    const file = this.tail.file;
    const end = this.offset + bytes.length;
    const zeroTo = end > this.zeroedTo ? Math.min(this.size, end + ZERO_CHUNK_BYTES) : end;
    try {
      if (this.options.blocking && file.writeSync !== undefined) {
        file.writeSync(bytes, this.offset);
        if (zeroTo > end) file.writeSync(zeros().subarray(0, zeroTo - end), end);
      } else {
        await file.write(bytes, this.offset);
        if (zeroTo > end) await file.write(zeros().subarray(0, zeroTo - end), end);
      }
    } catch (e) {
      throw ioError(e, "write failed", this.path);
    }
    this.zeroedTo = Math.max(this.zeroedTo, zeroTo);
    if (end >= this.options.segmentSizeBytes / 2) this.pipeline.fillWithZeros();
    this.offset = end;
    this.options.observer.emit({ type: "write", path: this.path, bytes: bytes.length });
  }

  /** Marks where etcd, saving one call at a time, would have synced (it flushes then). */
  markSync(): void {
    this.enc.flushModel.flush();
  }

  /** fdatasync of the tail: everything written is durable. */
  async sync(): Promise<void> {
    this.enc.flushModel.flush();
    const file = this.tail.file;
    const { observer, blocking } = this.options;
    try {
      const syncDataSync = file.syncDataSync?.bind(file);
      if (blocking && syncDataSync !== undefined) {
        observer.fsyncSync("file", this.path, syncDataSync);
      } else {
        await observer.fsync("file", this.path, () => file.syncData());
      }
    } catch (e) {
      throw ioError(e, "fdatasync failed", this.path);
    }
  }

  /**
   * Finishes the tail and starts the next segment (etcd's cut): the tail is truncated to
   * its records and synced; the prepared spare gets the head (ending in `state`), is synced,
   * renamed to its segment name for `nextIndex`, and the directory is synced. Returns the
   * new tail, which the caller holds locked with the others.
   */
  async cut(nextIndex: bigint, state: HardState): Promise<OpenSegment> {
    const old = this.tail;
    const { fs, observer } = this.options;
    const seq = old.name.seq + 1n;
    const name = segmentName(seq, nextIndex);
    const path = joinPath(this.dir, name);
    let next: PreparedFile | null = null;
    try {
      await old.file.truncate(this.offset);
      this.enc.flushModel.flush();
      await observer.fsync("file", this.path, () => old.file.syncData());

      next = await this.pipeline.take();
      const prepared = next;
      const head = await writeSegmentHead(
        prepared.file,
        prepared.path,
        this.enc.crc,
        this.metadata,
        { state },
        this.options,
      );
      await fs.rename(prepared.path, path);
      await observer.fsync("directory", this.dir, () => fs.syncDir(this.dir));

      this.tail = { name: { name, seq, index: nextIndex }, file: prepared.file };
      this.tailPath = path;
      this.enc = new Encoder(head.crc, head.offset);
      this.offset = head.offset;
      // the pipeline allocated the segment size, and may have zero-filled some of it
      this.size = this.options.segmentSizeBytes;
      this.zeroedTo = Math.max(head.offset, prepared.zeroedTo);
      observer.emit({ type: "cut", path, index: nextIndex });
      return this.tail;
    } catch (e) {
      await next?.file.close().catch(() => {});
      throw ioError(e, `cut to ${name} failed`, this.path);
    }
  }

  /** Stops the pipeline: the spare segment it prepared is closed and removed. */
  close(): Promise<void> {
    return this.pipeline.close();
  }
}
