/**
 * The write-ahead log: a directory of segment files, written and replayed the way etcd's
 * `wal` package does it.
 *
 * @module
 */

import { Decoder } from "./segment/decoder.ts";
import { Encoder } from "./segment/encoder.ts";
import { ioError, WalError } from "./errors.ts";
import { FilePipeline, type PreparedFile, ZERO_CHUNK_BYTES, zeros } from "./segment/file_pipeline.ts";
import type { FileSystem, WalFile } from "./fs/types.ts";
import {
  checkUint64,
  readEntryAt,
  readEntryIndex,
  readHardState,
  type RecordView,
} from "./segment/messages.ts";
import type { Observer } from "./observe.ts";
import { type ResolvedOptions, resolveOptions, type WalOptions } from "./options.ts";
import { cleanPath, joinPath, parentDir } from "./path.ts";
import {
  type RecordPosition,
  recordWindows,
  ReplayChecks,
  type ScanResult,
  scanSegments,
  type ScratchBuffer,
  type SegmentFile,
  STREAM_WINDOW_BYTES,
  unexpectedType,
} from "./replay/scan.ts";
import { listSegments, lockDirectory, mkdirDurable, selectSegments } from "./wal/segment_dir.ts";
import { type SegmentName, segmentName, segmentNames } from "./segment/segment_names.ts";
import {
  type Entry,
  type HardState,
  isEmptyHardState,
  type ReadAllResult,
  RecordType,
  type ReplayStream,
  type Snapshot,
} from "./types.ts";
import { checkSnapshot, checkState, copyEntries } from "./validate.ts";

export { DEFAULT_SEGMENT_SIZE_BYTES, type WalOptions } from "./options.ts";

/** Where streaming replay found a raft overwrite: an entry not above the one before it. */
interface OverwritePoint {
  /** Position of the segment in the replayed files. */
  segment: number;
  /** The record's offset in that segment. */
  offset: number;
  /** The entry's index. */
  index: bigint;
}

/** A save waiting for its group to be written. */
interface PendingSave {
  state: HardState;
  entries: Entry[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** An open segment: its parsed name and its file. */
interface OpenSegment {
  name: SegmentName;
  file: WalFile;
}

type Phase = "replay" | "append" | "done" | "closed";

const ZERO_STATE: HardState = { term: 0n, vote: 0n, commit: 0n };
const ZERO_SNAPSHOT: Snapshot = { index: 0n, term: 0n };

/**
 * A write-ahead log in etcd's format.
 *
 * Open one with {@link WAL.create} (a new log), {@link WAL.open} (to append after replay) or
 * {@link WAL.openForRead}. Calls on one WAL run one at a time, in the order they were made.
 *
 * @example
 * ```ts
 * import { WAL } from "@raftlog/wal";
 * const dir = await Deno.makeTempDir() + "/wal";
 * const wal = await WAL.create(dir, new TextEncoder().encode("node-1"));
 * await wal.save({ term: 1n, vote: 1n, commit: 1n }, [
 *   { term: 1n, index: 1n, type: 0, data: new TextEncoder().encode("hello") },
 * ]);
 * await wal.close();
 *
 * const again = await WAL.open(dir);
 * const { state, entries } = await again.readAll();
 * console.log(state.commit, entries.length); // 1n 1
 * await again.close();
 * ```
 */
export class WAL {
  /** The directory holding the segments. */
  readonly dir: string;
  private readonly fs: FileSystem;
  private readonly segmentSizeBytes: number;
  /** Append with the adapter's blocking write and fdatasync (see WalOptions.blocking). */
  private readonly blocking: boolean;
  private readonly writable: boolean;
  private phase: Phase;
  /** Open segments; in append mode the last is the tail being written, all are locked. */
  private segments: OpenSegment[];
  /** Snapshot replay starts from; checked by readAll. */
  private readonly start: Snapshot;
  /** The metadata; null when its record has no data field (Go's nil), kept as found. */
  private metadata: Uint8Array | null = null;
  /** The last hard state saved through this handle (etcd's w.state: empty after open). */
  private state: HardState = ZERO_STATE;
  /** Index of the last entry written or replayed (etcd's w.enti); names the next segment. */
  private lastIndex = 0n;
  private encoder: Encoder | null = null;
  /** Bytes written to the tail segment. */
  private tailOffset = 0;
  /**
   * Bytes of the tail segment from offset 0 that hold written blocks (records, or zeros
   * written ahead of them): appends below it overwrite blocks in place, so their fdatasync
   * does not also journal a block allocation (see file_pipeline.ts).
   */
  private tailZeroedTo = 0;
  /** The tail segment's preallocated size: zeros are never written past it. */
  private tailSize = 0;
  private pipeline: FilePipeline | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * Saves waiting in the queue as one group (group commit): saves made while it waits join
   * it, and it is written with one write and synced with one fdatasync.
   */
  private openGroup: PendingSave[] | null = null;
  private failure: WalError | null = null;

  private readonly observer: Observer;

  private constructor(
    dir: string,
    options: ResolvedOptions,
    writable: boolean,
    phase: Phase,
    segments: OpenSegment[],
    start: Snapshot,
  ) {
    this.dir = dir;
    this.fs = options.fs;
    this.segmentSizeBytes = options.segmentSizeBytes;
    this.observer = options.observer;
    this.blocking = options.blocking;
    this.writable = writable;
    this.phase = phase;
    this.segments = segments;
    this.start = start;
  }

  /**
   * Creates a new WAL in `dir` (which must not exist, or be an empty directory) and returns
   * it ready to append. The first segment holds a crc record, the metadata and an empty
   * snapshot. The directory is built as `<dir>.tmp` and renamed into place, so a crash never
   * leaves a half-made WAL at `dir`. `metadata` is stored at the head of every segment;
   * omitted, the record carries no data field at all (what etcd writes for a nil slice).
   */
  static async create(
    dir: string,
    metadata?: Uint8Array,
    options?: WalOptions,
  ): Promise<WAL> {
    if (metadata !== undefined && !(metadata instanceof Uint8Array)) {
      throw new WalError("INVALID_ARGUMENT", "metadata must be a Uint8Array");
    }
    const resolved = await resolveOptions(options);
    const { fs } = resolved;
    dir = cleanPath(dir);
    // Creating builds <dir>.tmp and renames it: two creates of one WAL must not interleave,
    // or one would delete the other's half-built directory. The parent's lock serializes them.
    const parent = parentDir(dir);
    await mkdirDurable(fs, parent).catch((e) => {
      throw ioError(e, "cannot create parent directory", parent);
    });
    const guard = await lockDirectory(fs, parent);
    try {
      return await WAL.createLocked(resolved, dir, metadata ?? null);
    } finally {
      await guard.close().catch(() => {});
    }
  }

  /** The body of create, run while holding the parent directory's lock. */
  private static async createLocked(
    options: ResolvedOptions,
    dir: string,
    metadata: Uint8Array | null,
  ): Promise<WAL> {
    const { fs, segmentSizeBytes, observer } = options;
    const existing = await fs.stat(dir).catch((e) => {
      throw ioError(e, "cannot stat WAL directory", dir);
    });
    if (existing !== null) {
      if (!existing.isDirectory) {
        throw new WalError("EXISTS", "a file is in the way of the WAL directory", { file: dir });
      }
      const names = await fs.readDir(dir).catch((e) => {
        throw ioError(e, "cannot list directory", dir);
      });
      if (segmentNames(names).length > 0) {
        throw new WalError("EXISTS", "a WAL already exists in this directory", { file: dir });
      }
      if (names.length > 0) {
        throw new WalError("EXISTS", "directory is not empty; refusing to replace it", {
          file: dir,
        });
      }
    }

    const tmp = dir + ".tmp";
    const name = segmentName(0n, 0n);
    let file: WalFile | null = null;
    try {
      await fs.remove(tmp); // a leftover of a crashed create (creates are serialized)
      await fs.mkdir(tmp);
      file = await fs.open(joinPath(tmp, name), { create: true });
      if (!(await file.tryLock())) {
        throw new WalError("LOCKED", "new segment is locked by another writer", {
          file: joinPath(tmp, name),
        });
      }
      await file.allocate(segmentSizeBytes);
      const enc = new Encoder(0, 0);
      enc.crcRecord();
      enc.metadata(metadata);
      enc.snapshot(ZERO_SNAPSHOT);
      const bytes = enc.take();
      await file.write(bytes, 0);
      enc.flushModel.flush();
      const f = file;
      await observer.fsync("file", joinPath(tmp, name), () => f.syncData());
      // the segment's directory entry, before the rename publishes it
      await observer.fsync("directory", tmp, () => fs.syncDir(tmp));
      if (existing !== null) await fs.remove(dir); // an empty directory, checked above
      await fs.rename(tmp, dir);
      await observer.fsync("directory", parentDir(dir), () => fs.syncDir(parentDir(dir)));

      const wal = new WAL(
        dir,
        options,
        true,
        "append",
        [{ name: { name, seq: 0n, index: 0n }, file }],
        ZERO_SNAPSHOT,
      );
      wal.metadata = metadata?.slice() ?? null;
      wal.startTail(bytes.length, enc.crc, segmentSizeBytes, 0);
      wal.pipeline = new FilePipeline(fs, dir, segmentSizeBytes);
      return wal;
    } catch (e) {
      await file?.close().catch(() => {});
      await fs.remove(tmp).catch(() => {});
      throw ioError(e, "cannot create WAL", dir);
    }
  }

  /**
   * Opens the WAL in `dir` for appending, positioned at snapshot `snap` (default: the
   * start). Every segment from the one holding `snap` on is locked; a second writer gets
   * `LOCKED`. Call {@link WAL.readAll} before the first save.
   */
  static open(dir: string, snap: Snapshot = ZERO_SNAPSHOT, options?: WalOptions): Promise<WAL> {
    return WAL.openAt(dir, snap, options, true);
  }

  /**
   * Opens the WAL in `dir` for reading only, from snapshot `snap`. Takes no locks, so it
   * works beside a writer; a torn tail ends replay quietly.
   */
  static openForRead(
    dir: string,
    snap: Snapshot = ZERO_SNAPSHOT,
    options?: WalOptions,
  ): Promise<WAL> {
    return WAL.openAt(dir, snap, options, false);
  }

  /** Opens the segments replay from `snap` needs; locks them when opening to write. */
  private static async openAt(
    dir: string,
    snap: Snapshot,
    options: WalOptions | undefined,
    write: boolean,
  ): Promise<WAL> {
    checkSnapshot(snap);
    const resolved = await resolveOptions(options);
    const { fs } = resolved;
    dir = cleanPath(dir);
    const selected = selectSegments(await listSegments(fs, dir), snap, dir);
    const opened: OpenSegment[] = [];
    try {
      for (const name of selected) {
        const path = joinPath(dir, name.name);
        const file = await fs.open(path, { write }).catch((e) => {
          throw ioError(e, "cannot open segment", path);
        });
        opened.push({ name, file });
        if (write && !(await file.tryLock())) {
          throw new WalError("LOCKED", "segment is locked by another writer", { file: path });
        }
      }
    } catch (e) {
      for (const s of opened) await s.file.close().catch(() => {});
      throw ioError(e, "cannot open WAL", dir);
    }
    return new WAL(dir, resolved, write, "replay", opened, {
      index: snap.index,
      term: snap.term,
    });
  }

  /** Runs `op` after every earlier call on this WAL. */
  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.then(op, op);
    this.queue = run.catch(() => {});
    return run;
  }

  /** Queues a call other than save: later saves must not join a group queued before it. */
  private serial<T>(op: () => Promise<T>): Promise<T> {
    this.openGroup = null;
    return this.enqueue(op);
  }

  /** Throws CLOSED once the WAL is closed or has failed. */
  private checkOpen(what: string): void {
    if (this.failure !== null) {
      throw new WalError("CLOSED", `cannot ${what}: the WAL failed earlier and was closed`, {
        file: this.dir,
        cause: this.failure,
      });
    }
    if (this.phase === "closed") {
      throw new WalError("CLOSED", `cannot ${what}: the WAL is closed`, { file: this.dir });
    }
  }

  /** Throws unless the WAL is open for writing and replay has finished. */
  private checkAppend(what: string): void {
    this.checkOpen(what);
    if (!this.writable) {
      throw new WalError("INVALID_ARGUMENT", `cannot ${what}: the WAL was opened for reading`, {
        file: this.dir,
      });
    }
    if (this.phase === "replay") {
      throw new WalError(
        "INVALID_ARGUMENT",
        `cannot ${what} before readAll() has replayed the log`,
        {
          file: this.dir,
        },
      );
    }
  }

  /** After a failed write or sync nothing more may be written: close and remember why. */
  private async fail(e: unknown, what: string): Promise<never> {
    const err = ioError(e, what, this.tailPath());
    this.failure = err;
    await this.release().catch(() => {});
    throw err;
  }

  /** The segment being appended to. */
  private tail(): OpenSegment {
    return this.segments[this.segments.length - 1];
  }

  /** Path of the tail segment, for errors. */
  private tailPath(): string {
    return this.segments.length === 0 ? this.dir : joinPath(this.dir, this.tail().name.name);
  }

  /**
   * Replays the log from the snapshot it was opened at: the metadata, the last hard state,
   * and the entries after the snapshot (a lower index truncates what follows, as raft
   * overwrites). In write mode the log must end cleanly (a torn tail is `UNEXPECTED_EOF`:
   * run {@link repair}); anything after the last good record is then zeroed and the WAL is
   * ready to append. In read mode a torn tail ends replay quietly. Callable once.
   */
  readAll(): Promise<ReadAllResult> {
    return this.serial(async () => {
      this.checkOpen("readAll");
      if (this.phase !== "replay") {
        throw new WalError("INVALID_ARGUMENT", "readAll() can only be called once, after open", {
          file: this.dir,
        });
      }
      try {
        return await this.replay();
      } catch (e) {
        // Leave nothing locked behind a failed replay, so repair can run.
        await this.release().catch(() => {});
        this.phase = "closed";
        throw ioError(e, "cannot replay WAL", this.dir);
      }
    });
  }

  /** The body of readAll: scan, check, then prepare the tail for appending. */
  /**
   * Scans the log from the start snapshot with every check replay makes; entry records go
   * to `onEntry`. Leaves the metadata and last index set.
   */
  private async scanLog(
    onEntry: (rec: RecordView, at: RecordPosition) => void,
    scratch?: ScratchBuffer,
  ): Promise<{ state: HardState; end: ScanResult }> {
    const checks = new ReplayChecks(this.start);
    let state = ZERO_STATE;
    const end = await scanSegments(
      this.segmentFiles(),
      (rec, at) => {
        switch (rec.type) {
          case RecordType.Entry:
            onEntry(rec, at);
            return;
          case RecordType.State:
            state = readHardState(rec.buf, rec.dataStart, rec.dataEnd);
            return;
          case RecordType.Crc:
            return;
          default:
            if (!checks.handle(rec, at)) throw unexpectedType(rec, at);
        }
      },
      undefined,
      scratch,
    );
    // Opened for writing, the log must end cleanly: a torn tail needs repair first.
    if (end.torn !== null && this.writable) throw end.torn;
    checks.requireMatch(this.dir, end.torn);
    this.metadata = checks.metadata ?? null;
    return { state, end };
  }

  /** The open segments as paths and files. */
  private segmentFiles(): SegmentFile[] {
    return this.segments.map((s) => ({ path: joinPath(this.dir, s.name.name), file: s.file }));
  }

  /** The error for an entry whose index leaves a gap after `length` entries. */
  private gap(index: bigint, length: bigint, at: RecordPosition): WalError {
    return new WalError(
      "SLICE_OUT_OF_RANGE",
      `entry index ${index} leaves a gap after index ${this.start.index + length}`,
      at,
    );
  }

  /** The body of readAll: one pass that checks and collects, then prepares the tail. */
  private async replay(): Promise<ReadAllResult> {
    const start = this.start;
    const entries: Entry[] = [];
    // the index the next entry appends at (the common case: one comparison, one addition)
    let next = start.index + 1n;
    let last = this.lastIndex;
    const { state, end } = await this.scanLog((rec, at) => {
      const e = readEntryAt(rec.buf, rec.dataStart, rec.dataEnd);
      const index = e.index;
      last = index;
      if (index === next) {
        entries.push(e);
        next = index + 1n;
      } else if (index > start.index) {
        const offset = index - start.index - 1n;
        if (offset > BigInt(entries.length)) throw this.gap(index, BigInt(entries.length), at);
        // raft overwrite: a lower index replaces everything from there on
        entries.length = Number(offset);
        entries.push(e);
        next = index + 1n;
      }
    });
    this.lastIndex = last;
    const result = { metadata: this.metadata?.slice() ?? new Uint8Array(0), state, entries };
    await this.finishReplay(end);
    return result;
  }

  /** Ends replay: read mode releases the files, write mode makes the tail ready to append. */
  private async finishReplay(end: ScanResult): Promise<void> {
    if (!this.writable) {
      await this.release();
      this.phase = "done";
      return;
    }
    // Bytes after the last good record were never acknowledged; a partial overwrite of them
    // would read back as corruption, so zero them before appending (keeping the size).
    const tail = this.tail().file;
    await tail.truncate(end.offset);
    await tail.allocate(Math.max(end.lastSize, end.offset));
    // Make the zeroing durable before anything new is written: otherwise a crash could bring
    // back the old bytes under a half-written new record, which would read as corruption
    // (no zeroed sector) instead of a repairable torn tail.
    await this.observer.fsync("file", this.tailPath(), () => tail.syncData());
    this.startTail(end.offset, end.crc, Math.max(end.lastSize, end.offset), 0);
    this.pipeline = new FilePipeline(this.fs, this.dir, this.segmentSizeBytes);
    this.phase = "append";
  }

  /**
   * Replays the log like {@link WAL.readAll}, but hands the entries out one at a time, so
   * memory stays bounded by the segment bytes read in windows of about 1 MiB, not by the
   * log. The whole log is checked before the first entry comes out (a first pass reads only
   * indexes); raft overwrites are applied (an entry is yielded only if no later record
   * replaces it). An entry's data is a view into its window's buffer, which is never
   * reused: keeping an entry keeps that window alive. Callable once, instead of readAll; in
   * write mode, saves wait until the iteration has ended (or was broken off).
   *
   * @example
   * ```ts
   * import { WAL } from "@raftlog/wal";
   * const wal = await WAL.openForRead("/var/lib/app/wal");
   * const { state, entries } = await wal.stream();
   * for await (const e of entries) console.log(e.index);
   * await wal.close();
   * ```
   */
  stream(): Promise<ReplayStream> {
    return this.serial(async () => {
      this.checkOpen("stream");
      if (this.phase !== "replay") {
        throw new WalError("INVALID_ARGUMENT", "a WAL replays once, after open", {
          file: this.dir,
        });
      }
      try {
        return await this.streamPass1();
      } catch (e) {
        await this.release().catch(() => {});
        this.phase = "closed";
        throw ioError(e, "cannot replay WAL", this.dir);
      }
    });
  }

  /** Shorthand for the entries of {@link WAL.stream}. */
  async *entries(): AsyncGenerator<Entry, void, undefined> {
    yield* (await this.stream()).entries;
  }

  /**
   * Checks the whole log, noting where raft overwrites happen: the entries whose index is
   * not above the one before (rare, so this stays small however long the log is).
   */
  private async streamPass1(): Promise<ReplayStream> {
    const start = this.start;
    const files = this.segmentFiles();
    const position = new Map(files.map((f, k) => [f.path, k]));
    const drops: OverwritePoint[] = [];
    let length = 0n;
    let prev = -1n;
    // one window buffer for the whole pass: nothing keeps views into it
    const scratch: ScratchBuffer = { buf: new Uint8Array(0) };
    const { state, end } = await this.scanLog((rec, at) => {
      const index = readEntryIndex(rec.buf, rec.dataStart, rec.dataEnd);
      if (index > start.index) {
        const offset = index - start.index - 1n;
        if (offset > length) throw this.gap(index, length, at);
        length = offset + 1n;
        if (index <= prev) {
          drops.push({ segment: position.get(at.file)!, offset: at.offset, index });
        }
        prev = index;
      }
      this.lastIndex = index;
    }, scratch);
    // minLater[p]: the lowest index among drops[p..]; an entry is replaced by a later record
    // exactly when a later overwrite point goes down to its index or below
    const minLater: bigint[] = new Array(drops.length);
    for (let p = drops.length - 1; p >= 0; p--) {
      const i = drops[p].index;
      minLater[p] = p + 1 < drops.length && minLater[p + 1] < i ? minLater[p + 1] : i;
    }
    const metadata = this.metadata?.slice() ?? new Uint8Array(0);
    return { metadata, state, entries: this.streamPass2(files, end, drops, minLater) };
  }

  /**
   * Yields the surviving entries, reading each segment in windows. Entries are views into
   * their window's buffer, which is never reused: nothing is copied, and memory is bounded
   * by the windows still referenced (a kept entry keeps its window, about 1 MiB, alive).
   */
  private async *streamPass2(
    files: SegmentFile[],
    end: ScanResult,
    drops: OverwritePoint[],
    minLater: bigint[],
  ): AsyncGenerator<Entry, void, undefined> {
    const start = this.start;
    const dec = new Decoder();
    let p = 0; // drops[p..] lie after the current record
    try {
      for (let k = 0; k <= end.lastSegment; k++) {
        if (this.phase === "closed") {
          throw new WalError("CLOSED", "the WAL was closed during replay", { file: this.dir });
        }
        const { path, file } = files[k];
        // what the first pass checked, not what a writer may have appended since
        const limit = k === end.lastSegment ? end.offset : await file.size().catch((e) => {
          throw ioError(e, "cannot read segment", path);
        });
        for await (const w of recordWindows(file, limit, undefined, STREAM_WINDOW_BYTES)) {
          dec.begin(path, w.bytes, false, w.base);
          for (;;) {
            const offset = dec.fileOffset;
            if (!dec.next()) break;
            const rec = dec.record;
            if (rec.type === RecordType.Crc) dec.updateCRC(rec.crc);
            if (rec.type !== RecordType.Entry || !rec.hasData) continue;
            const e = readEntryAt(rec.buf, rec.dataStart, rec.dataEnd);
            if (e.index <= start.index) continue;
            while (
              p < drops.length &&
              (drops[p].segment < k || (drops[p].segment === k && drops[p].offset <= offset))
            ) p++;
            if (p < drops.length && minLater[p] <= e.index) continue; // overwritten later
            yield e;
          }
        }
      }
      if (this.phase === "replay") await this.finishReplay(end);
    } finally {
      // broken off early: still end replay, so the WAL can be used (or closed)
      if (this.phase === "replay") await this.finishReplay(end).catch(() => {});
    }
  }

  /**
   * Appends `entries`, then `state` unless it is empty, as one write. It is made durable
   * (fdatasync) before the promise resolves when raft requires it: when there are entries
   * or the term or vote changed. A save that fills the segment cuts a new one.
   * Nothing happens for an empty state and no entries.
   */
  save(state: HardState, entries: readonly Entry[] = []): Promise<void> {
    // Validated and copied now, not when the queued call runs: a caller may reuse its
    // objects as soon as save() returns. Entry data is read when the save runs.
    let st: HardState;
    let batch: Entry[];
    try {
      checkState(state);
      st = { term: state.term, vote: state.vote, commit: state.commit };
      batch = copyEntries(entries);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<void>((resolve, reject) => {
      const pending: PendingSave = { state: st, entries: batch, resolve, reject };
      if (this.openGroup !== null) {
        this.openGroup.push(pending);
        return;
      }
      const group = [pending];
      this.openGroup = group;
      this.enqueue(() => this.saveGroup(group));
    });
  }

  /** Writes a group of saves, in call order, then resolves (or rejects) each of them. */
  private async saveGroup(group: PendingSave[]): Promise<void> {
    if (this.openGroup === group) this.openGroup = null; // later saves form the next group
    try {
      this.checkAppend("save");
      await this.writeGroup(group);
    } catch (e) {
      for (const p of group) p.reject(e);
      return;
    }
    for (const p of group) p.resolve();
  }

  /**
   * The saves of a group go out as one write and one fdatasync. Segment cuts fall exactly
   * where they would for the same saves made one after another (as etcd would make them).
   */
  private async writeGroup(group: PendingSave[]): Promise<void> {
    let mustSync = false;
    for (const { state, entries } of group) {
      const hasState = !isEmptyHardState(state);
      if (!hasState && entries.length === 0) continue;
      // raft's MustSync: new entries, or a new term or vote
      const syncs = entries.length > 0 || state.vote !== this.state.vote ||
        state.term !== this.state.term;
      const enc = this.encoder!;
      try {
        for (const e of entries) enc.entry(e);
        if (hasState) enc.state(state);
      } catch (e) {
        // the running CRC has moved past records that will never be written
        await this.fail(e, "cannot encode records");
      }
      if (entries.length > 0) this.lastIndex = entries[entries.length - 1].index;
      if (hasState) this.state = state;
      if (enc.flushModel.flushedOffset >= this.segmentSizeBytes) {
        await this.writeTail(enc.take());
        await this.cutTail(); // syncs everything written so far
        mustSync = false;
        continue;
      }
      if (syncs) {
        enc.flushModel.flush(); // where etcd, saving one at a time, would have synced
        mustSync = true;
      }
    }
    const bytes = this.encoder!.take();
    if (bytes.length > 0) await this.writeTail(bytes);
    if (mustSync) await this.syncTail();
  }

  /**
   * Records a snapshot position (so replay can start there) and syncs. Save the snapshot
   * record before the entries that follow it.
   */
  saveSnapshot(snap: Snapshot): Promise<void> {
    return this.serial(async () => {
      this.checkAppend("saveSnapshot");
      checkSnapshot(snap);
      const enc = this.encoder!;
      enc.snapshot(snap);
      await this.writeTail(enc.take());
      if (this.lastIndex < snap.index) this.lastIndex = snap.index;
      await this.syncTail();
    });
  }

  /**
   * Closes the current segment (truncated to its used length and synced) and starts the
   * next, named for the next raft index. Saves call this on their own when a segment fills.
   */
  cut(): Promise<void> {
    return this.serial(async () => {
      this.checkAppend("cut");
      await this.cutTail();
    });
  }

  /** Makes everything written so far durable (fdatasync of the tail segment). */
  sync(): Promise<void> {
    return this.serial(async () => {
      this.checkAppend("sync");
      await this.syncTail();
    });
  }

  /**
   * Releases the locks on segments that only hold entries below `index`, keeping the last
   * of them (it may hold entries at and after `index`). For example, holding segments that
   * start at 1, 2, 3, 4, 5, 6, `releaseLockTo(4)` releases 1 and 2 and keeps 3. Released
   * segments may then be purged by another process.
   */
  releaseLockTo(index: bigint): Promise<void> {
    return this.serial(async () => {
      this.checkAppend("releaseLockTo");
      checkUint64(index, "index");
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
      for (const s of released) {
        await s.file.close().catch((e) => {
          throw ioError(e, "cannot release segment", joinPath(this.dir, s.name.name));
        });
      }
    });
  }

  /**
   * Syncs the tail, removes the preallocated spare segment and releases every lock. Safe
   * to call more than once.
   */
  close(): Promise<void> {
    return this.serial(async () => {
      if (this.phase === "closed" || this.failure !== null) return;
      try {
        if (this.phase === "append") await this.syncTail();
      } finally {
        this.phase = "closed";
        await this.release();
      }
    });
  }

  /** Closes every file and the pipeline; errors are reported after all are closed. */
  private async release(): Promise<void> {
    let first: unknown = null;
    const pipeline = this.pipeline;
    this.pipeline = null;
    if (pipeline !== null) await pipeline.close().catch((e) => (first ??= e));
    for (const s of this.segments) await s.file.close().catch((e) => (first ??= e));
    this.segments = [];
    this.encoder = null;
    if (first !== null) throw ioError(first, "cannot close WAL", this.dir);
  }

  /**
   * Makes the last segment the tail: appends go at `offset`, chaining the CRC from `crc`;
   * the file is `size` bytes long and holds written blocks through `zeroedTo` (or `offset`).
   */
  private startTail(offset: number, crc: number, size: number, zeroedTo: number): void {
    this.tailOffset = offset;
    this.tailZeroedTo = Math.max(offset, zeroedTo);
    this.tailSize = size;
    this.encoder = new Encoder(crc, offset);
  }

  /**
   * Writes encoded records at the end of the tail, and zeros over the next megabyte when
   * they reach past what was zeroed; a failure fails the WAL.
   */
  private async writeTail(bytes: Uint8Array): Promise<void> {
    const file = this.tail().file;
    const end = this.tailOffset + bytes.length;
    // where zeros end: a chunk past the records once they pass what was zeroed before
    const zeroTo = end > this.tailZeroedTo ? Math.min(this.tailSize, end + ZERO_CHUNK_BYTES) : end;
    try {
      if (this.blocking && file.writeSync !== undefined) {
        file.writeSync(bytes, this.tailOffset);
        if (zeroTo > end) file.writeSync(zeros().subarray(0, zeroTo - end), end);
      } else {
        await file.write(bytes, this.tailOffset);
        if (zeroTo > end) await file.write(zeros().subarray(0, zeroTo - end), end);
      }
    } catch (e) {
      await this.fail(e, "write failed");
    }
    this.tailZeroedTo = Math.max(this.tailZeroedTo, zeroTo);
    if (end >= this.segmentSizeBytes / 2) this.pipeline?.fillWithZeros();
    this.tailOffset += bytes.length;
    this.observer.emit({ type: "write", path: this.tailPath(), bytes: bytes.length });
  }

  /** fdatasync of the tail; a failure fails the WAL. */
  private async syncTail(): Promise<void> {
    this.encoder!.flushModel.flush();
    const tail = this.tail().file;
    try {
      if (this.blocking && tail.syncDataSync !== undefined) {
        this.observer.fsyncSync("file", this.tailPath(), () => tail.syncDataSync!());
      } else {
        await this.observer.fsync("file", this.tailPath(), () => tail.syncData());
      }
    } catch (e) {
      // After a failed fsync the kernel may have dropped the dirty pages: never retry.
      await this.fail(e, "fdatasync failed");
    }
  }

  /** Finishes the tail and starts the next segment (etcd's cut). */
  private async cutTail(): Promise<void> {
    const enc = this.encoder!;
    const old = this.tail();
    const name = segmentName(old.name.seq + 1n, this.lastIndex + 1n);
    const path = joinPath(this.dir, name);
    let next: PreparedFile | null = null;
    try {
      await old.file.truncate(this.tailOffset);
      enc.flushModel.flush();
      await this.observer.fsync("file", this.tailPath(), () => old.file.syncData());

      next = await this.pipeline!.take();
      const head = new Encoder(enc.crc, 0);
      head.crcRecord();
      head.metadata(this.metadata);
      if (!isEmptyHardState(this.state)) head.state(this.state);
      const bytes = head.take();
      await next.file.write(bytes, 0);
      const file = next.file;
      await this.observer.fsync("file", next.path, () => file.syncData());
      await this.fs.rename(next.path, path);
      await this.observer.fsync("directory", this.dir, () => this.fs.syncDir(this.dir));

      const seg = { name, seq: old.name.seq + 1n, index: this.lastIndex + 1n };
      this.segments.push({ name: seg, file: next.file });
      // the pipeline allocated the segment size, and may have zero-filled some of it
      this.startTail(bytes.length, head.crc, this.segmentSizeBytes, next.zeroedTo);
      this.observer.emit({ type: "cut", path, index: seg.index });
    } catch (e) {
      await next?.file.close().catch(() => {});
      await this.fail(e, `cut to ${name} failed`);
    }
  }
}
