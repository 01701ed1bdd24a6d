/**
 * Where each entry of a raft log lies on disk, and its term, in a few bytes per entry: the
 * index that lets raft storage (issue 13) answer `term(i)` and read `entries(lo, hi)` back
 * from the segment files without holding entries in memory.
 *
 * Per entry it keeps only the record's byte offset in its segment (a `Uint32Array`, grown
 * by doubling: 4 to 8 bytes an entry). Which segment, and which term, change rarely along
 * the log, so each is kept as runs: the first slot of a run and its value. Its answers
 * follow etcd raft's `MemoryStorage`: a dummy entry at the snapshot (or compaction) index
 * whose term `term()` still gives, `COMPACTED` below it, `UNAVAILABLE` past the last entry,
 * and an entry at or below the last one replaces the tail from there.
 *
 * @module
 */

import { WalError } from "../errors.ts";

/** Where an entry's record lies: the segment's ordinal (as the caller counts) and offset. */
export interface EntryLocation {
  /** The segment, as numbered by the caller. */
  segment: number;
  /** The record's byte offset in it. */
  offset: number;
}

const MAX_OFFSET = 0xffffffff;

/**
 * Runs of a value along the slots: `starts[k]` is the first slot of run `k`, `values[k]`
 * its value, until the next run starts. Slots only grow, so `at` is a binary search over
 * a few runs, and appending checks the last run only.
 */
class Runs<T> {
  private starts: number[] = [];
  private values: T[] = [];

  /** Drops everything. */
  clear(): void {
    this.starts = [];
    this.values = [];
  }

  /** Sets `slot` (the new last slot) to `v`. */
  push(slot: number, v: T): void {
    const n = this.values.length;
    if (n > 0 && this.values[n - 1] === v) return;
    this.starts.push(slot);
    this.values.push(v);
  }

  /** Forgets runs from `slot` on (slots at and past it are written again). */
  truncate(slot: number): void {
    let n = this.starts.length;
    while (n > 0 && this.starts[n - 1] >= slot) n--;
    this.starts.length = n;
    this.values.length = n;
  }

  /** Forgets runs wholly before `slot`. */
  dropBefore(slot: number): void {
    let k = 0;
    while (k + 1 < this.starts.length && this.starts[k + 1] <= slot) k++;
    if (k > 0) {
      this.starts.splice(0, k);
      this.values.splice(0, k);
    }
  }

  /** The value at `slot`. */
  at(slot: number): T {
    const s = this.starts;
    let lo = 0;
    let hi = s.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (s[mid] <= slot) lo = mid;
      else hi = mid - 1;
    }
    return this.values[lo];
  }

  /** How many runs there are. */
  get size(): number {
    return this.starts.length;
  }
}

/**
 * The entries of a log after a snapshot: for each, its term and where its record lies.
 *
 * @example
 * ```ts ignore
 * const idx = new EntryIndex(10n, 2n); // after a snapshot at index 10, term 2
 * idx.put(11n, 2n, 0, 4096);
 * idx.term(10n); // 2n (the snapshot's); idx.term(9n) throws COMPACTED
 * ```
 */
export class EntryIndex {
  /** The index of slot 0: slots are `index - base`, numbers (exact up to 2^53). */
  private base: bigint;
  /** The slot of the dummy entry (the snapshot or compaction point). */
  private dummy = 0;
  /** The slot of the last entry (`dummy` when there is none). */
  private last = 0;
  /** The dummy entry's term. */
  private dummyTerm: bigint;
  /** Offsets of slots `head`.. in `offsets[0]`..; `head` is `dummy + 1` or less. */
  private offsets = new Uint32Array(1024);
  private head = 1;
  private readonly terms = new Runs<bigint>();
  private readonly segments = new Runs<number>();

  /** An empty log after the snapshot at `index`/`term` (0/0: from the start). */
  constructor(index: bigint, term: bigint) {
    this.base = index;
    this.dummyTerm = term;
  }

  /** The first index entries are served from (`MemoryStorage.FirstIndex`). */
  get firstIndex(): bigint {
    return this.base + BigInt(this.dummy + 1);
  }

  /** The last index (the dummy's when there are no entries): `MemoryStorage.LastIndex`. */
  get lastIndex(): bigint {
    return this.base + BigInt(this.last);
  }

  /** How many entries are served. */
  get length(): number {
    return this.last - this.dummy;
  }

  /**
   * Records the entry at `index`: the next one, or one at or below the last that replaces
   * the tail from there (raft's overwrite). An index at or below the dummy's is ignored (as
   * `MemoryStorage.Append` drops compacted entries); one past the next leaves a gap:
   * `SLICE_OUT_OF_RANGE`. An offset past 4 GiB - 1 is `INVALID_ARGUMENT`.
   */
  put(index: bigint, term: bigint, segment: number, offset: number): void {
    const slotBig = index - this.base;
    if (slotBig <= BigInt(this.dummy)) return;
    if (slotBig > BigInt(this.last + 1)) {
      throw new WalError(
        "SLICE_OUT_OF_RANGE",
        `entry index ${index} leaves a gap after index ${this.lastIndex}`,
      );
    }
    if (offset < 0 || offset > MAX_OFFSET || !Number.isInteger(offset)) {
      throw new WalError("INVALID_ARGUMENT", `record offset ${offset} does not fit 32 bits`);
    }
    const slot = Number(slotBig);
    if (slot <= this.last) {
      this.terms.truncate(slot);
      this.segments.truncate(slot);
    }
    this.last = slot;
    const at = slot - this.head;
    if (at >= this.offsets.length) this.grow(at + 1);
    this.offsets[at] = offset;
    this.terms.push(slot, term);
    this.segments.push(slot, segment);
  }

  /** The term of entry `index`: `MemoryStorage.Term`, the dummy's included. */
  term(index: bigint): bigint {
    const slot = this.slotOf(index, true);
    return slot === this.dummy ? this.dummyTerm : this.terms.at(slot);
  }

  /** Where entry `index` lies (`firstIndex` to `lastIndex`). */
  location(index: bigint): EntryLocation {
    const slot = this.slotOf(index, false);
    return { segment: this.segments.at(slot), offset: this.offsets[slot - this.head] };
  }

  /**
   * Drops the entries up to and including `index`, which becomes the dummy
   * (`MemoryStorage.Compact`): `COMPACTED` at or below the dummy, `UNAVAILABLE` past the last.
   */
  compact(index: bigint): void {
    const slotBig = index - this.base;
    if (slotBig <= BigInt(this.dummy)) {
      throw new WalError("COMPACTED", `index ${index} is already compacted`);
    }
    if (slotBig > BigInt(this.last)) {
      throw new WalError("UNAVAILABLE", `index ${index} is past the last index ${this.lastIndex}`);
    }
    const slot = Number(slotBig);
    this.dummyTerm = this.terms.at(slot);
    this.dummy = slot;
    this.terms.dropBefore(slot + 1);
    this.segments.dropBefore(slot + 1);
    // Move the live offsets down once the dropped ones are most of the array.
    const dead = slot + 1 - this.head;
    if (dead > this.offsets.length / 2) {
      this.offsets.copyWithin(0, dead, this.last - this.head + 1);
      this.head = slot + 1;
    }
  }

  /** Forgets every entry: the log starts after the snapshot at `index`/`term` (`ApplySnapshot`). */
  reset(index: bigint, term: bigint): void {
    this.base = index;
    this.dummy = 0;
    this.last = 0;
    this.dummyTerm = term;
    this.head = 1;
    this.terms.clear();
    this.segments.clear();
    if (this.offsets.length > 1024) this.offsets = new Uint32Array(1024);
  }

  /** Bytes this index holds: the offsets array and the runs (estimated at 16 bytes a run). */
  get heldBytes(): number {
    return this.offsets.byteLength + 16 * (this.terms.size + this.segments.size);
  }

  private slotOf(index: bigint, dummyToo: boolean): number {
    const slot = index - this.base;
    if (slot < BigInt(this.dummy) || (!dummyToo && slot === BigInt(this.dummy))) {
      throw new WalError(
        "COMPACTED",
        `index ${index} is compacted (the first index is ${this.firstIndex})`,
      );
    }
    if (slot > BigInt(this.last)) {
      throw new WalError(
        "UNAVAILABLE",
        `index ${index} is past the last index ${this.lastIndex}`,
      );
    }
    return Number(slot);
  }

  private grow(need: number): void {
    let n = this.offsets.length;
    while (n < need) n *= 2;
    const bigger = new Uint32Array(n);
    bigger.set(this.offsets.subarray(0, this.last - this.head));
    this.offsets = bigger;
  }
}
