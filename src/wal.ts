/**
 * The write-ahead log, as etcd's `wal` package writes and replays it. This class is the
 * facade over `wal/` (call order, group commit, create, open segments), `replay/`, `segment/`.
 *
 * @module
 */

import { ioError, type WalError } from "./errors.ts";
import { type ResolvedOptions, resolveOptions, type WalOptions } from "./options.ts";
import { cleanPath } from "./path.ts";
import { scanLog } from "./replay/log_scan.ts";
import { replayAll } from "./replay/read_all.ts";
import type { RecordPosition } from "./replay/scan.ts";
import { type EntryFields, newEntryFields } from "./segment/messages.ts";
import { EntryStream, planStream } from "./replay/stream.ts";
import type { Entry, HardState, ReadAllResult, ReplayStream, Snapshot } from "./types.ts";
import { checkMetadata, checkSnapshot, checkUint64, copySave } from "./validate.ts";
import { createWal } from "./wal/bootstrap.ts";
import { CallQueue, type EntryPlaces } from "./wal/call_queue.ts";
import { writeGroup } from "./wal/group_commit.ts";
import {
  type Appending,
  endReplay,
  type Phase,
  releasePhase,
  requireAppend,
  requireReplay,
} from "./wal/phase.ts";
import { SegmentSet } from "./wal/segment_set.ts";
import { warnWeakLocks } from "./wal/segment_dir.ts";

export { DEFAULT_SEGMENT_SIZE_BYTES, type WalOptions } from "./options.ts";

const ZERO_SNAPSHOT: Snapshot = { index: 0n, term: 0n };

/**
 * What raft storage (`src/raft/`) needs of a WAL beyond its public API, kept off it (mod.ts
 * does not export this): the WAL's static block fills it in, reaching its private members.
 */
export interface WalInternals {
  /**
   * Replays as `readAll` does, but hands each entry record's fields (reused: copy what is
   * kept) and where it lies to `onEntry` instead of collecting entries. Returns the
   * metadata, the last hard state and the snapshot records seen.
   *
   * Unlike after `readAll` (and etcd's), no segment is then named at or below a snapshot
   * recorded: etcd names a segment for the last entry written, and after a restart, or an
   * append of entries below a snapshot a lagging follower was sent, that can be below a
   * snapshot recorded in an earlier segment. Replay from that snapshot then starts after
   * its record and fails (`SNAPSHOT_NOT_FOUND`).
   */
  replayRecords(
    wal: WAL,
    onEntry: (fields: EntryFields, at: RecordPosition) => void,
  ): Promise<{ metadata: Uint8Array | null; state: HardState; snapshots: Snapshot[] }>;
  /**
   * Saves as `save` does a save `copySave` checked and copied, filling `places` with where
   * each entry record went; `onDurable` runs once the group is durable, before any later
   * call on the WAL starts (it must not throw).
   */
  saveAt(
    wal: WAL,
    save: { state: HardState; entries: Entry[] },
    places: EntryPlaces,
    onDurable: () => void,
  ): Promise<void>;
}

/** The hooks of {@link WalInternals}; set when the WAL class is defined. */
export const walInternals: WalInternals = {
  replayRecords: () => Promise.reject(new Error("unreachable: set by WAL")),
  saveAt: () => Promise.reject(new Error("unreachable: set by WAL")),
};

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
 * const again = await WAL.open(dir); // after a restart
 * const { state, entries } = await again.readAll();
 * console.log(state.commit, entries.length); // 1n 1
 * await again.close();
 * ```
 */
export class WAL {
  /** The directory holding the segments. */
  readonly dir: string;
  private readonly queue = new CallQueue();
  /** The replay stream, whose read handles close with the WAL. */
  private replayStream: EntryStream | null = null;

  static {
    walInternals.replayRecords = (wal, onEntry) => wal.replayRecords(onEntry);
    walInternals.saveAt = (wal, save, places, onDurable) => wal.enqueue(save, places, onDurable);
  }

  private constructor(
    dir: string,
    private readonly options: ResolvedOptions,
    private readonly writable: boolean,
    /** The snapshot replay starts from. */
    private readonly start: Snapshot,
    private phase: Phase,
  ) {
    this.dir = dir;
  }

  /**
   * Creates a new WAL in `dir` (which must not exist, or be an empty directory) and returns
   * it ready to append. The first segment holds a crc record, the metadata and an empty
   * snapshot. The directory is built as `<dir>.tmp` and renamed into place, so a crash never
   * leaves a half-made WAL at `dir`. `metadata` is stored at the head of every segment;
   * omitted, the record carries no data field at all (what etcd writes for a nil slice).
   */
  static async create(dir: string, metadata?: Uint8Array, options?: WalOptions): Promise<WAL> {
    checkMetadata(metadata);
    const resolved = await resolveOptions(options);
    dir = cleanPath(dir);
    const phase = await createWal(resolved, dir, metadata?.slice() ?? null);
    return new WAL(dir, resolved, true, ZERO_SNAPSHOT, phase);
  }

  /**
   * Opens the WAL in `dir` for appending, positioned at snapshot `snap` (default: the
   * start). Every segment from the one holding `snap` on is locked; a second writer gets
   * `LOCKED`. Call {@link WAL.readAll} (or {@link WAL.stream}) before the first save.
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

  /** Opens the segments replay from `snap` needs, locked when opened to `write`. */
  private static async openAt(
    dir: string,
    snap: Snapshot,
    options: WalOptions | undefined,
    write: boolean,
  ): Promise<WAL> {
    checkSnapshot(snap);
    const resolved = await resolveOptions(options);
    dir = cleanPath(dir);
    const segments = await SegmentSet.open(resolved.fs, dir, snap, write);
    if (write) warnWeakLocks(resolved);
    const start = { index: snap.index, term: snap.term };
    return new WAL(dir, resolved, write, start, { kind: "replay", segments });
  }

  /**
   * Replays the log from the snapshot it was opened at: the metadata, the last hard state,
   * and the entries after the snapshot (a lower index truncates what follows, as raft
   * overwrites). In write mode the log must end cleanly (a torn tail is `UNEXPECTED_EOF`:
   * run {@link repair}); anything after the last good record is then zeroed and the WAL is
   * ready to append. In read mode a torn tail ends replay quietly. Callable once.
   */
  readAll(): Promise<ReadAllResult> {
    return this.replay("readAll", async (segments) => {
      const r = await replayAll(this.dir, segments.files(), this.start, this.writable);
      this.phase = await endReplay(this.options, segments, this.writable, r);
      return r.result;
    });
  }

  /**
   * Replays like {@link WAL.readAll} (once, instead of it), handing entries out one at a
   * time: memory is bounded by 1 MiB read windows (entries are views into them), not by the
   * log, which is all checked before this resolves. In write mode saves may be made at once,
   * during the iteration too: it yields the log as it was. After {@link WAL.close}, an
   * unfinished iteration throws `CLOSED`.
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
    return this.replay("stream", async (segments) => {
      const plan = await planStream(this.dir, segments.files(), this.start, this.writable);
      const own = this.writable ? undefined : segments.handOver(); // write mode keeps its locks
      const entries = await EntryStream.open(this.options.fs, this.dir, plan, this.start, own);
      this.replayStream = entries;
      this.phase = await endReplay(this.options, segments, this.writable, plan);
      return { metadata: plan.metadata?.slice() ?? new Uint8Array(0), state: plan.state, entries };
    });
  }

  /** {@link WalInternals.replayRecords}. */
  private replayRecords(
    onEntry: (fields: EntryFields, at: RecordPosition) => void,
  ): Promise<{ metadata: Uint8Array | null; state: HardState; snapshots: Snapshot[] }> {
    return this.replay("replay", async (segments) => {
      let lastIndex = 0n;
      let indexFloor = this.start.index;
      const snapshots: Snapshot[] = [];
      const fields = newEntryFields();
      const { metadata, state, end } = await scanLog({
        dir: this.dir,
        files: segments.files(),
        start: this.start,
        requireCleanEnd: this.writable,
        onEntry: (rec, at) => {
          rec.entryFields(fields);
          lastIndex = fields.index;
          onEntry(fields, at);
        },
        onSnapshot: (snap) => {
          snapshots.push(snap);
          if (snap.index > indexFloor) indexFloor = snap.index;
        },
        scratch: { buf: new Uint8Array(0) },
      });
      this.phase = await endReplay(this.options, segments, this.writable, {
        end,
        metadata,
        lastIndex: lastIndex > indexFloor ? lastIndex : indexFloor,
        indexFloor,
      });
      return { metadata, state, snapshots };
    });
  }

  /** Shorthand for the entries of {@link WAL.stream}. */
  async *entries(): AsyncGenerator<Entry, void, undefined> {
    yield* (await this.stream()).entries;
  }

  /**
   * Appends `entries`, then `state` unless it is empty, as one write. It is made durable
   * (fdatasync) before the promise resolves when raft requires it: when there are entries
   * or the term or vote changed. A save that fills the segment cuts a new one. Saves made
   * while another is being written are written together (group commit).
   * Nothing happens for an empty state and no entries.
   */
  save(state: HardState, entries: readonly Entry[] = []): Promise<void> {
    let save: { state: HardState; entries: Entry[] };
    try {
      save = copySave(state, entries);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.enqueue(save);
  }

  /** Queues a checked save; see {@link WalInternals.saveAt} for `places` and `onDurable`. */
  private enqueue(
    save: { state: HardState; entries: Entry[] },
    places?: EntryPlaces,
    onDurable?: () => void,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const durable = onDurable === undefined ? resolve : () => {
        onDurable();
        resolve();
      };
      this.queue.save({ ...save, places, resolve: durable, reject }, (group) => {
        const log = requireAppend(this.phase, this.dir, "save", this.writable);
        return this.guard(log, () => writeGroup(log, group));
      });
    });
  }

  /**
   * Records a snapshot position (so replay can start there) and syncs. Save the snapshot
   * record before the entries that follow it.
   */
  saveSnapshot(snap: Snapshot): Promise<void> {
    return this.appending("saveSnapshot", (log) => {
      checkSnapshot(snap);
      return this.guard(log, async () => {
        log.writer.encoder.snapshot(snap);
        await log.writer.writePending();
        if (log.lastIndex < snap.index) log.lastIndex = snap.index;
        if (log.indexFloor !== null && log.indexFloor < snap.index) log.indexFloor = snap.index;
        await log.writer.sync();
      });
    });
  }

  /**
   * Closes the current segment (truncated to its used length and synced) and starts the
   * next, named for the next raft index. Saves call this on their own when a segment fills.
   */
  cut(): Promise<void> {
    return this.appending("cut", (log) =>
      this.guard(log, async () => {
        log.segments.add(await log.writer.cut(log.lastIndex + 1n, log.state));
      }));
  }

  /** Makes everything written so far durable (fdatasync of the tail segment). */
  sync(): Promise<void> {
    return this.appending("sync", (log) => this.guard(log, () => log.writer.sync()));
  }

  /**
   * Releases the locks on segments that only hold entries below `index`, keeping the last
   * of them (it may hold entries at and after `index`). For example, holding segments that
   * start at 1, 2, 3, 4, 5, 6, `releaseLockTo(4)` releases 1 and 2 and keeps 3. Released
   * segments may then be purged by another process.
   */
  releaseLockTo(index: bigint): Promise<void> {
    return this.appending("releaseLockTo", (log) => {
      checkUint64(index, "index");
      return log.segments.releaseTo(index);
    });
  }

  /**
   * Syncs the tail, removes the preallocated spare segment and releases every lock; an
   * unfinished replay stream is closed too. Safe to call more than once.
   */
  close(): Promise<void> {
    return this.queue.serial(async () => {
      const phase = this.phase;
      if (phase.kind === "closed") return;
      if (phase.kind === "append") await this.guard(phase, () => phase.writer.sync());
      this.phase = { kind: "closed", failure: null };
      await this.release(phase);
    });
  }

  /** Queues a replay: on failure nothing stays locked (so repair can run). */
  private replay<T>(what: string, op: (segments: SegmentSet) => Promise<T>): Promise<T> {
    return this.queue.serial(async () => {
      const segments = requireReplay(this.phase, this.dir, what);
      try {
        return await op(segments);
      } catch (e) {
        const phase = this.phase;
        this.phase = { kind: "closed", failure: null };
        await this.release(phase).catch(() => {});
        throw ioError(e, "cannot replay WAL", this.dir);
      }
    });
  }

  /** Queues a call that needs append mode (checked when its turn comes). */
  private appending<T>(what: string, op: (log: Appending) => Promise<T>): Promise<T> {
    return this.queue.serial(() => op(requireAppend(this.phase, this.dir, what, this.writable)));
  }

  /**
   * Runs a write or sync of the tail. After a failure nothing more may be written (after a
   * failed fsync the kernel may have dropped the dirty pages: never retry): the WAL closes
   * and remembers why.
   */
  private async guard<T>(log: Appending, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      // a WalError from the writer passes through; anything else came from encoding
      const err = ioError(e, "cannot encode records", log.writer.path);
      this.phase = { kind: "closed", failure: err };
      await this.release(log, err).catch(() => {});
      throw err;
    }
  }

  /** Closes what `phase` holds, and the stream; errors are reported after all are closed. */
  private async release(phase: Phase, failure: WalError | null = null): Promise<void> {
    const stream = this.replayStream;
    this.replayStream = null;
    const closing = await Promise.allSettled([
      stream?.close(failure),
      releasePhase(phase, this.dir),
    ]);
    for (const c of closing) {
      if (c.status === "rejected") throw ioError(c.reason, "cannot close WAL", this.dir);
    }
  }
}
