/**
 * Streaming replay: the entries of `readAll`, handed out one at a time, so memory is
 * bounded by a few read windows, not by the log.
 *
 * Pass 1 ({@link planStream}) checks the whole log before the first entry comes out,
 * reading only indexes, and notes where raft overwrites happen (rare, so the list stays
 * short however long the log is). Pass 2 ({@link EntryStream}) reads the segments again
 * through handles of its own, up to where pass 1 ended, and yields each entry that no later
 * record replaces. What the WAL appends after pass 1 lies beyond that end, so saves may go
 * on while the stream is iterated: it yields the log as it was when the stream was made.
 *
 * @module
 */

import { ioError, WalError } from "../errors.ts";
import type { FileSystem } from "../fs/types.ts";
import { Decoder } from "../segment/decoder.ts";
import { newEntryFields } from "../segment/messages.ts";
import { type Entry, type HardState, RecordType, type Snapshot } from "../types.ts";
import { EntrySequence } from "./checks.ts";
import { scanLog } from "./log_scan.ts";
import { closeSegmentFiles, openSegmentFiles, type ScanResult, type SegmentFile } from "./scan.ts";
import { recordWindows, type ScratchBuffer, STREAM_WINDOW_BYTES } from "./windows.ts";

/** Where pass 1 found a raft overwrite: an entry not above the one before it. */
interface OverwritePoint {
  /** Position of the segment in the replayed files. */
  segment: number;
  /** The record's offset in that segment. */
  offset: number;
  /** The entry's index. */
  index: bigint;
}

/** What pass 1 found: the log's state, and what pass 2 needs to yield the right entries. */
export interface StreamPlan {
  /** The metadata as stored (null: a record without a data field). */
  metadata: Uint8Array | null;
  /** The last hard state recorded. */
  state: HardState;
  /** Where the scan ended: pass 2 reads no further, and appends go on from here. */
  end: ScanResult;
  /** The index of the last entry record read (0 when none). */
  lastIndex: bigint;
  /** The paths of the replayed segments, in order. */
  paths: string[];
  /** The overwrite points, in log order. */
  drops: OverwritePoint[];
  /** `minLater[p]`: the lowest index among `drops[p..]`. */
  minLater: bigint[];
}

/** Pass 1: checks the whole log from `start` and plans pass 2. */
export async function planStream(
  dir: string,
  files: readonly SegmentFile[],
  start: Snapshot,
  requireCleanEnd: boolean,
): Promise<StreamPlan> {
  const drops: OverwritePoint[] = [];
  const seq = new EntrySequence(start.index);
  const fields = newEntryFields();
  let segment = 0;
  let lastIndex = 0n;
  const { metadata, state, end } = await scanLog({
    dir,
    files,
    start,
    requireCleanEnd,
    onSegment: (done) => (segment = done),
    onEntry: (rec, at) => {
      rec.entryFields(fields);
      const index = fields.index;
      lastIndex = index;
      const before = seq.length;
      const pos = seq.place(index, at);
      if (pos >= 0 && pos < before) drops.push({ segment, offset: at.offset, index });
    },
    // one window buffer for the whole pass: nothing keeps views into it
    scratch: { buf: new Uint8Array(0) } satisfies ScratchBuffer,
  });
  // an entry is replaced by a later record exactly when a later overwrite point goes down
  // to its index or below
  const minLater: bigint[] = new Array(drops.length);
  for (let p = drops.length - 1; p >= 0; p--) {
    const i = drops[p].index;
    minLater[p] = p + 1 < drops.length && minLater[p + 1] < i ? minLater[p + 1] : i;
  }
  const paths = files.map((f) => f.path);
  return { metadata, state, end, lastIndex, paths, drops, minLater };
}

/**
 * Pass 2: the surviving entries, read in windows through read handles of its own (each
 * closed once read). Entries are views into their window's buffer, which is never reused:
 * nothing is copied, and a kept entry keeps its window (about 1 MiB) alive. Iterable once.
 * After {@link EntryStream.close} (the WAL's `close()` calls it) the iteration throws
 * `CLOSED` at its next step.
 */
export class EntryStream implements AsyncIterable<Entry> {
  private readonly dir: string;
  private readonly plan: StreamPlan;
  private readonly start: Snapshot;
  /** The segments' handles; those before `read` are closed already. */
  private readonly files: SegmentFile[];
  private read = 0;
  private closed = false;
  private cause: WalError | null = null;
  private iterated = false;

  /**
   * A stream of `plan` from `start` over `files`, the planned segments opened for reading;
   * it closes them. `dir` names the WAL in errors.
   */
  constructor(dir: string, plan: StreamPlan, start: Snapshot, files: SegmentFile[]) {
    this.dir = dir;
    this.plan = plan;
    this.start = start;
    this.files = files.slice(0, plan.end.lastSegment + 1);
    // what pass 1 did not read, pass 2 does not either
    for (const f of files.slice(plan.end.lastSegment + 1)) f.file.close().catch(() => {});
  }

  /**
   * A stream over `files` (read mode hands over the handles it replayed with), or over the
   * planned segments opened anew for reading (write mode: the WAL keeps its locked handles,
   * and releaseLockTo or purge during the iteration cannot pull a segment from under it).
   */
  static async open(
    fs: FileSystem,
    dir: string,
    plan: StreamPlan,
    start: Snapshot,
    files?: SegmentFile[],
  ): Promise<EntryStream> {
    const paths = plan.paths.slice(0, plan.end.lastSegment + 1);
    return new EntryStream(dir, plan, start, files ?? await openSegmentFiles(fs, paths));
  }

  /**
   * Closes the read handles; an iteration still going throws `CLOSED` at its next step,
   * with `cause` (the failure that closed the WAL) when given.
   */
  close(cause: WalError | null = null): Promise<void> {
    if (!this.closed) this.cause = cause;
    this.closed = true;
    const left = this.files.slice(this.read);
    this.read = this.files.length;
    return closeSegmentFiles(left);
  }

  /** Iterates the entries; a second iteration is refused. */
  [Symbol.asyncIterator](): AsyncIterator<Entry> {
    if (this.iterated) {
      throw new WalError("INVALID_ARGUMENT", "a replay stream can be iterated once", {
        file: this.dir,
      });
    }
    this.iterated = true;
    return this.run();
  }

  private checkOpen(): void {
    if (!this.closed) return;
    const options = { file: this.dir, ...(this.cause === null ? {} : { cause: this.cause }) };
    throw new WalError("CLOSED", "the WAL was closed during the replay stream", options);
  }

  private async *run(): AsyncGenerator<Entry, void, undefined> {
    const { end, drops, minLater } = this.plan;
    const snapIndex = this.start.index;
    const dec = new Decoder();
    const rec = dec.record;
    let p = 0; // drops[p..] lie after the current record
    try {
      for (let k = 0; k <= end.lastSegment; k++) {
        this.checkOpen();
        const { path, file } = this.files[k];
        // what pass 1 checked, not what a writer may have appended since
        const limit = k === end.lastSegment ? end.offset : await file.size().catch((e) => {
          throw ioError(e, "cannot read segment", path);
        });
        for await (const w of recordWindows(file, limit, undefined, STREAM_WINDOW_BYTES)) {
          dec.begin(path, w.bytes, false, w.base);
          for (;;) {
            const offset = dec.fileOffset;
            if (!dec.next()) break;
            if (rec.type === RecordType.Crc) dec.updateCRC(rec.crc);
            if (rec.type !== RecordType.Entry || !rec.hasData) continue;
            const e = rec.entry();
            if (e.index <= snapIndex) continue;
            while (
              p < drops.length &&
              (drops[p].segment < k || (drops[p].segment === k && drops[p].offset <= offset))
            ) p++;
            if (p < drops.length && minLater[p] <= e.index) continue; // overwritten later
            this.checkOpen();
            yield e;
          }
        }
        this.checkOpen();
        // done with this segment: a long log does not keep a second handle per segment
        this.read = k + 1;
        await closeSegmentFiles([this.files[k]]);
      }
    } catch (e) {
      // a read cut short by close() is the close, not an I/O failure
      if (this.closed && !(e instanceof WalError && e.code === "CLOSED")) this.checkOpen();
      throw e;
    } finally {
      if (!this.closed) await this.close().catch(() => {});
    }
  }
}
