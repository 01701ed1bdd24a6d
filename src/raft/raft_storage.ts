/**
 * Raft storage over an etcd data directory: the WAL (`member/wal`) and `.snap` files
 * (`member/snap`), answering etcd raft's `Storage` calls as its `MemoryStorage` does, but
 * holding only an index in memory: entries are read back from the segments on demand.
 *
 * Writes take effect in call order. Appends go to the WAL as saves (so appends made while
 * one is written are group-committed) and are served once durable; snapshots and
 * compactions wait for the writes before them.
 *
 * @module
 */

import { WalError } from "../errors.ts";
import { type ResolvedOptions, resolveOptions } from "../options.ts";

export type { RaftStorageOptions } from "./storage_options.ts";
import { cleanPath } from "../path.ts";
import { entrySize } from "../segment/messages.ts";
import type { RaftSnapshot, SnapshotMetadata } from "../snap/snap_codec.ts";
import { snapFileName, Snapshotter } from "../snap/snapshotter.ts";
import {
  type ConfState,
  emptyConfState,
  emptyHardState,
  type Entry,
  type HardState,
  isEmptyHardState,
} from "../types.ts";
import { checkUint64, copySave } from "../validate.ts";
import { WAL, walInternals } from "../wal.ts";
import { snapDirOf, walDirOf } from "../etcd/data_dir.ts";
import type { EntryPlaces } from "../wal/call_queue.ts";
import { boot, type Booted, makeSnapDir } from "./boot.ts";
import {
  checkOptions,
  DEFAULT_CACHE_BYTES,
  DEFAULT_RETAIN,
  type RaftStorageOptions,
} from "./storage_options.ts";
import { WriteOrder } from "./write_order.ts";
import type { EntryIndex } from "./entry_index.ts";
import { RecordReader } from "./record_reader.ts";
import { purgeBeyond } from "./retention.ts";
import type { SegmentReads } from "./segment_reads.ts";

/** What raft reads at start (`Storage.InitialState`). */
export interface InitialState {
  /** The last hard state saved. */
  hardState: HardState;
  /** The membership in the snapshot held (empty without one). */
  confState: ConfState;
}

/**
 * The disk side of a raft node, in etcd's data directory layout.
 *
 * @example
 * ```ts
 * import { RaftStorage } from "@raftlog/wal/raft";
 * const dir = await Deno.makeTempDir();
 * const storage = await RaftStorage.create(dir);
 * await storage.append([{ index: 1n, term: 1n, type: 0, data: new Uint8Array([1]) }], {
 *   term: 1n,
 *   vote: 1n,
 *   commit: 1n,
 * });
 * await storage.close();
 * const again = await RaftStorage.open(dir); // after a restart: no entries replayed into memory
 * console.log(again.lastIndex(), again.term(1n), (await again.entries(1n, 2n))[0].data);
 * await again.close();
 * ```
 */
export class RaftStorage {
  /** The data directory. */
  readonly dir: string;
  /** The WAL's metadata (empty when it was created without). */
  readonly metadata: Uint8Array;
  private readonly wal: WAL;
  private readonly index: EntryIndex;
  private readonly reads: SegmentReads;
  private readonly reader: RecordReader;
  private state: HardState;
  private snap: SnapshotMetadata | null;
  /** Whether a save since boot carried the hard state (see {@link RaftStorage.append}). */
  private stateSaved = false;
  /** The last index once every write call made so far has taken effect. */
  private projectedLast: bigint;
  /** Bumped whenever entries already served may change: reads in flight start again. */
  private changes = 0;
  private readonly order = new WriteOrder();
  /** The term of each snapshot recorded in the WAL (that replay read, or saved since). */
  private readonly recorded = new Map<bigint, bigint>();
  /** Set by close, or when an index update failed after its save was durable. */
  private failure: WalError | null = null;

  private constructor(
    dir: string,
    booted: Booted,
    private readonly snapshotter: Snapshotter,
    private readonly options: RaftStorageOptions,
    private readonly resolved: ResolvedOptions,
  ) {
    this.dir = dir;
    this.wal = booted.wal;
    this.index = booted.index;
    this.reads = booted.reads;
    this.metadata = booted.metadata?.slice() ?? new Uint8Array(0);
    this.state = booted.state;
    this.snap = booted.snapshot;
    this.projectedLast = booted.index.lastIndex;
    this.reader = new RecordReader(booted.reads, options.cacheBytes ?? DEFAULT_CACHE_BYTES);
    for (const r of booted.recorded) this.recorded.set(r.index, r.term);
  }

  /**
   * Creates raft storage in data directory `dir` (`member/wal` must not exist yet):
   * `member/snap` and a new WAL with `metadata` at the head of every segment.
   */
  static async create(
    dir: string,
    metadata?: Uint8Array,
    options: RaftStorageOptions = {},
  ): Promise<RaftStorage> {
    const resolved = await resolveOptions(options);
    dir = cleanPath(dir);
    const walDir = walDirOf(dir);
    await (await WAL.create(walDir, metadata, options)).close(); // makes member/ durable
    await makeSnapDir(resolved, snapDirOf(dir));
    return await RaftStorage.open(dir, options);
  }

  /**
   * Opens the raft storage in data directory `dir` as etcd's server boots: the newest
   * `.snap` with a valid WAL snapshot record, the WAL opened there and indexed (a torn tail
   * is repaired once unless `repair: false`). The segments stay locked while it is open.
   */
  static async open(dir: string, options: RaftStorageOptions = {}): Promise<RaftStorage> {
    const resolved = await resolveOptions(options);
    checkOptions(options);
    dir = cleanPath(dir);
    const walDir = walDirOf(dir);
    const snapDir = snapDirOf(dir);
    if ((await resolved.fs.stat(walDir)) === null) {
      throw new WalError("FILE_NOT_FOUND", "no WAL in the data directory", { file: walDir });
    }
    // etcd's server makes member/snap at boot when missing; a WAL alone is a data directory
    if ((await resolved.fs.stat(snapDir)) === null) await makeSnapDir(resolved, snapDir);
    const snapshotter = new Snapshotter(snapDir, { fs: resolved.fs });
    const booted = await boot({
      walDir,
      snapshotter,
      walOptions: options,
      resolved,
      repair: options.repair ?? true,
    });
    return new RaftStorage(dir, booted, snapshotter, options, resolved);
  }

  /** The hard state and membership raft starts from (`Storage.InitialState`). */
  initialState(): InitialState {
    this.requireUsable();
    const confState = this.snap?.confState ?? emptyConfState();
    return { hardState: { ...this.state }, confState: structuredClone(confState) };
  }

  /** The first index entries are served from (`Storage.FirstIndex`). */
  firstIndex(): bigint {
    this.requireUsable();
    return this.index.firstIndex;
  }

  /** The last index: the last entry's, or the snapshot's when none (`Storage.LastIndex`). */
  lastIndex(): bigint {
    this.requireUsable();
    return this.index.lastIndex;
  }

  /**
   * The term of entry `i`, from the first index less one (the snapshot or compaction point)
   * to the last: `COMPACTED` below, `UNAVAILABLE` above (`Storage.Term`).
   */
  term(i: bigint): bigint {
    this.requireUsable();
    return this.index.term(i);
  }

  /**
   * Entries `lo` to `hi - 1`, stopping before the one that takes their encoded size past
   * `maxBytes`, but at least one (`Storage.Entries`, raft's `limitSize`). `COMPACTED` when
   * `lo` is below the first index; `UNAVAILABLE` when `hi` is past the last index plus one,
   * or no entries are held.
   */
  async entries(lo: bigint, hi: bigint, maxBytes = Number.POSITIVE_INFINITY): Promise<Entry[]> {
    checkUint64(lo, "lo");
    checkUint64(hi, "hi");
    for (;;) {
      this.requireUsable();
      const changes = this.changes;
      const first = this.index.firstIndex;
      if (lo < first) {
        throw new WalError("COMPACTED", `entries from ${lo}: the first index is ${first}`);
      }
      const last = this.index.lastIndex;
      if (hi > last + 1n) {
        throw new WalError("UNAVAILABLE", `entries to ${hi}: the last index is ${last}`);
      }
      if (this.index.length === 0) throw new WalError("UNAVAILABLE", "no entries are held");
      if (lo > hi) throw new WalError("INVALID_ARGUMENT", `entries from ${lo} to ${hi}`);
      try {
        const out = await this.readRange(lo, hi, maxBytes, changes);
        if (out !== null) return out;
      } catch (e) {
        if (changes === this.changes) throw e; // a purged segment's handle closed: ask again
      }
    }
  }

  /** Reads `lo` to `hi - 1`, or null as soon as the entries changed under the read. */
  private async readRange(
    lo: bigint,
    hi: bigint,
    maxBytes: number,
    changes: number,
  ): Promise<Entry[] | null> {
    const out: Entry[] = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const at = this.index.location(i);
      const e = await this.reader.entryAt(at.segment, at.offset);
      if (changes !== this.changes) return null;
      size += entrySize(e);
      if (out.length > 0 && size > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /**
   * The snapshot held (`Storage.Snapshot`), read from its `.snap` file; an empty one (index
   * 0) when there is none.
   */
  async snapshot(): Promise<RaftSnapshot> {
    this.requireUsable();
    const m = this.snap;
    if (m === null) {
      return {
        data: new Uint8Array(0),
        metadata: { index: 0n, term: 0n, confState: emptyConfState() },
      };
    }
    return await this.snapshotter.read(snapFileName(m.term, m.index));
  }

  /**
   * Appends `entries` and saves `hardState` (unless empty) as one WAL save
   * (`MemoryStorage.Append` and `SetHardState`), durable when the promise resolves if raft
   * requires it: with entries, or a new term or vote (raft's MustSync; a save that only
   * moves the commit is written, not synced, as etcd's). An entry at or below the
   * last index replaces the tail from there (raft's overwrite); entries at or below the
   * compaction point are dropped; a first index past the last plus one is
   * `SLICE_OUT_OF_RANGE`, one at or below the snapshot held `INVALID_ARGUMENT` (raft never
   * overwrites what a snapshot covers, and replay from the snapshot would lose it). The first save after open also carries the hard state (so that
   * every segment cut after it holds one, as replay from a later snapshot needs).
   */
  append(entries: readonly Entry[], hardState: HardState = emptyHardState()): Promise<void> {
    return this.order.append(() => this.appendNow(entries, hardState));
  }

  /** {@link RaftStorage.append}, its turn come: checked now against the calls before it. */
  private appendNow(entries: readonly Entry[], hardState: HardState): Promise<void> {
    try {
      this.requireUsable();
      const save = copySave(hardState, entries);
      const first = this.index.firstIndex;
      const es = save.entries;
      if (es.length > 0 && es[es.length - 1].index < first) es.length = 0;
      if (es.length > 0 && es[0].index < first) es.splice(0, Number(first - es[0].index));
      const snapIndex = this.snap?.index ?? 0n;
      if (es.length > 0 && es[0].index <= snapIndex) {
        // MemoryStorage would take it; raft never sends it (a snapshot is of committed
        // entries), and a WAL replayed from the snapshot could not hold it
        throw new WalError(
          "INVALID_ARGUMENT",
          `entry index ${es[0].index} is at or below the snapshot at ${snapIndex}`,
          { file: this.dir },
        );
      }
      if (es.length > 0 && es[0].index > this.projectedLast + 1n) {
        throw new WalError(
          "SLICE_OUT_OF_RANGE",
          `entry index ${es[0].index} leaves a gap after index ${this.projectedLast}`,
          { file: this.dir },
        );
      }
      if (!this.stateSaved && isEmptyHardState(save.state)) save.state = { ...this.state };
      if (es.length === 0 && isEmptyHardState(save.state)) return Promise.resolve();
      if (es.length > 0) this.projectedLast = es[es.length - 1].index;
      this.stateSaved = true;
      const places: EntryPlaces = { paths: [], offsets: [] };
      return walInternals.saveAt(this.wal, save, places, () => this.applied(save, places));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Serves a durable save: its entries into the index, its hard state. Never throws. */
  private applied(save: { state: HardState; entries: Entry[] }, places: EntryPlaces): void {
    try {
      let path = "";
      for (let k = 0; k < save.entries.length; k++) {
        const e = save.entries[k];
        const segment = this.reads.number(places.paths[k]);
        if (e.index <= this.index.lastIndex) this.changes++; // an overwrite
        this.index.put(e.index, e.term, segment, places.offsets[k]);
        if (places.paths[k] !== path) {
          // only the block holding the old end can be cached with bytes since written
          path = places.paths[k];
          this.reader.invalidate(segment, places.offsets[k], places.offsets[k] + 1);
        }
      }
      if (!isEmptyHardState(save.state)) this.state = save.state;
    } catch (e) {
      this.failure = new WalError("CLOSED", "raft storage failed to index a save", {
        file: this.dir,
        cause: e,
      });
    }
  }

  /**
   * Installs `snapshot` (`MemoryStorage.ApplySnapshot`): its `.snap` file, then the WAL
   * snapshot record with its membership; then every entry is dropped and the log goes on
   * after it. `SNAP_OUT_OF_DATE` unless it is newer than the snapshot held.
   */
  applySnapshot(snapshot: RaftSnapshot): Promise<void> {
    return this.order.afterWrites(async () => {
      const m = snapshot.metadata;
      this.requireNewer(m.index);
      await this.persist(snapshot);
      this.index.reset(m.index, m.term);
      this.changes++;
      this.projectedLast = m.index;
    });
  }

  /**
   * Makes a snapshot at entry `index` with the application's `data` and saves it as
   * `applySnapshot` does, keeping the entries (`MemoryStorage.CreateSnapshot`; `confState`
   * omitted keeps the held one). Compact afterwards to drop entries.
   */
  createSnapshot(index: bigint, data: Uint8Array, confState?: ConfState): Promise<RaftSnapshot> {
    return this.order.afterWrites(async () => {
      this.requireNewer(index);
      const term = this.index.term(index);
      const conf = confState ?? this.snap?.confState ?? emptyConfState();
      const snapshot = { data: data.slice(), metadata: { index, term, confState: conf } };
      await this.persist(snapshot);
      return snapshot;
    });
  }

  /**
   * Drops the entries up to and including `index` (`MemoryStorage.Compact`): then
   * `firstIndex()` is `index + 1` and `term(index)` still answers. `COMPACTED` at or below
   * the compaction point, `UNAVAILABLE` past the last index. Then, as etcd's server does
   * once a snapshot is saved, it syncs the WAL (so the commit that makes the snapshot the
   * one boot takes is durable), releases the locks of segments replay from that snapshot no
   * longer needs, and removes segments and `.snap` files beyond the newest `retain` (etcd's
   * purge). While the snapshot held is above the commit saved, boot would not take it: then
   * nothing more is released or removed.
   */
  compact(index: bigint): Promise<void> {
    return this.order.afterWrites(async () => {
      this.requireUsable();
      this.index.compact(index);
      this.changes++;
      await this.wal.sync();
      const snap = this.snap;
      const bootIndex = snap !== null && snap.index <= this.state.commit ? snap.index : 0n;
      await this.wal.releaseLockTo(index < bootIndex ? index : bootIndex);
      const purged = await purgeBeyond(
        walDirOf(this.dir),
        this.snapshotter,
        bootIndex,
        this.options.retain ?? DEFAULT_RETAIN,
        this.options,
        this.resolved,
      );
      for (const path of purged.segments) await this.reads.closePath(path);
    });
  }

  /** Bytes held in memory for reads: the index and the block cache. */
  get heldBytes(): number {
    return this.index.heldBytes + this.reader.cachedBytes;
  }

  /** Waits for the writes made, then closes the WAL and the read handles. */
  async close(): Promise<void> {
    await this.order.settled();
    this.failure ??= new WalError("CLOSED", "raft storage is closed", { file: this.dir });
    await this.wal.close();
    await this.reads.close();
  }

  /**
   * Saves a snapshot as etcd 3.5+ does: the `.snap` file, then the WAL record. A record of
   * the same index with another term (one a crash kept uncommitted) is `SNAPSHOT_MISMATCH`,
   * before anything is written: replay from either would stop at the other.
   */
  private async persist(snapshot: RaftSnapshot): Promise<void> {
    const m = snapshot.metadata;
    const other = this.recorded.get(m.index);
    if (other !== undefined && other !== m.term) {
      throw new WalError(
        "SNAPSHOT_MISMATCH",
        `the WAL records snapshot ${m.index} at term ${other}, not ${m.term}`,
        { file: this.dir },
      );
    }
    await this.snapshotter.save(snapshot);
    await this.wal.saveSnapshot({ index: m.index, term: m.term, confState: m.confState });
    this.recorded.set(m.index, m.term);
    this.snap = structuredClone(m);
  }

  /** Throws `SNAP_OUT_OF_DATE` unless `index` is past the snapshot held. */
  private requireNewer(index: bigint): void {
    this.requireUsable();
    checkUint64(index, "snapshot index");
    const held = this.snap?.index ?? 0n;
    if (index <= held) {
      throw new WalError("SNAP_OUT_OF_DATE", `snapshot ${index} is not newer than ${held}`, {
        file: this.dir,
      });
    }
  }

  /** Throws `CLOSED` once closed, or once an index update failed. */
  private requireUsable(): void {
    if (this.failure !== null) throw this.failure;
  }
}
