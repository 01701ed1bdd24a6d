/**
 * The checks replay makes, shared by `readAll`, streaming and `verify`: consistent
 * metadata, the snapshot replay starts from, and where each entry lands in the log raft
 * rebuilds (overwrites and gaps), the way etcd's ReadAll checks them.
 *
 * @module
 */

import { WalError } from "../errors.ts";
import type { RecordView } from "../segment/messages.ts";
import { RecordType, type Snapshot } from "../types.ts";
import type { RecordPosition } from "./scan.ts";

const EMPTY = new Uint8Array(0);

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Checks metadata consistency and finds the snapshot replay starts from. */
export class ReplayChecks {
  /** The metadata seen: undefined before any, null for a record without a data field. */
  metadata: Uint8Array | null | undefined = undefined;
  /** True once a snapshot record matched the requested one. */
  matched = false;
  private readonly start: Snapshot;

  /** Checks against the snapshot replay was asked to start from. */
  constructor(start: Snapshot) {
    this.start = start;
  }

  /** Handles a metadata or snapshot record; returns false for any other type. */
  handle(rec: RecordView, at: RecordPosition): boolean {
    if (rec.type === RecordType.Metadata) {
      const data = rec.data ?? EMPTY;
      if (this.metadata !== undefined && !bytesEqual(this.metadata ?? EMPTY, data)) {
        throw new WalError("METADATA_CONFLICT", "segments carry different metadata", at);
      }
      this.metadata = rec.data === null ? null : data.slice();
      return true;
    }
    if (rec.type === RecordType.Snapshot) {
      const s = rec.snapshot();
      if (s.index === this.start.index) {
        if (s.term !== this.start.term) {
          throw new WalError(
            "SNAPSHOT_MISMATCH",
            `snapshot at index ${s.index} has term ${s.term}, not ${this.start.term}`,
            at,
          );
        }
        this.matched = true;
      }
      return true;
    }
    return false;
  }

  /** Throws SNAPSHOT_NOT_FOUND unless the requested snapshot was seen. */
  requireMatch(dir: string, torn: WalError | null): void {
    if (this.matched) return;
    throw new WalError(
      "SNAPSHOT_NOT_FOUND",
      `no snapshot record matches index ${this.start.index} term ${this.start.term}` +
        (torn === null ? "" : ` (replay ended at a torn tail: ${torn.message})`),
      { file: dir },
    );
  }
}

/**
 * Where each replayed entry lands among the entries after the snapshot, by raft's rule: an
 * index at or below one already read replaces everything from there on (an overwrite); an
 * index past the next one leaves a gap, which no replay accepts (`SLICE_OUT_OF_RANGE`).
 *
 * @example
 * ```ts ignore
 * const seq = new EntrySequence(10n);
 * seq.place(11n, at); // 0: appended
 * seq.place(12n, at); // 1: appended
 * seq.place(12n, at); // 1: overwrites the entry at 12
 * seq.place(5n, at); // -1: covered by the snapshot
 * ```
 */
export class EntrySequence {
  /** How many entries after the snapshot the log holds so far. */
  length = 0;
  /** The index that appends: the common case is one comparison and one addition. */
  private next: bigint;
  private readonly snapIndex: bigint;

  /** Starts after the snapshot at `snapIndex`. */
  constructor(snapIndex: bigint) {
    this.snapIndex = snapIndex;
    this.next = snapIndex + 1n;
  }

  /**
   * Places the entry at `index` and returns its position among the entries after the
   * snapshot: the length before the call when it appends, less when it overwrites, -1 when
   * the snapshot covers it. Throws `SLICE_OUT_OF_RANGE` on a gap.
   */
  place(index: bigint, at: RecordPosition): number {
    if (index === this.next) {
      this.next = index + 1n;
      return this.length++;
    }
    if (index <= this.snapIndex) return -1;
    const pos = index - this.snapIndex - 1n;
    if (pos > BigInt(this.length)) {
      throw new WalError(
        "SLICE_OUT_OF_RANGE",
        `entry index ${index} leaves a gap after index ${this.snapIndex + BigInt(this.length)}`,
        at,
      );
    }
    this.next = index + 1n;
    this.length = Number(pos) + 1;
    return Number(pos);
  }
}

/** The error for a record type this format does not define. */
export function unexpectedType(rec: RecordView, at: RecordPosition): WalError {
  return new WalError("DECODE", `unexpected record type ${rec.type}`, at);
}
