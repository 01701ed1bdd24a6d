/**
 * A checked scan of a WAL from a snapshot: every record through {@link scanSegments}, with
 * every check replay makes (metadata, the start snapshot, record types, hard states). What
 * `readAll`, streaming and `verify` are built on; each adds what it does with entries.
 *
 * @module
 */

import type { RecordView } from "../segment/messages.ts";
import { emptyHardState, type HardState, RecordType, type Snapshot } from "../types.ts";
import { ReplayChecks, unexpectedType } from "./checks.ts";
import { type RecordPosition, type ScanResult, scanSegments, type SegmentFile } from "./scan.ts";
import type { ScratchBuffer } from "./windows.ts";

/** What {@link scanLog} reads, and how. */
export interface LogScanOptions {
  /** The directory (for errors). */
  dir: string;
  /** The segments, from the one holding `start` on. */
  files: readonly SegmentFile[];
  /** The snapshot replay starts from: a snapshot record must match it. */
  start: Snapshot;
  /** Throw the torn tail instead of ending quietly (write mode: appends need a clean end). */
  requireCleanEnd: boolean;
  /**
   * False: no snapshot record need match `start` (etcd-dump-logs's `-start-index`, which
   * goes on after `ErrSnapshotNotFound`); one that has its index must still have its term.
   */
  requireSnapshot?: boolean;
  /** Called for each entry record; may throw (a WalError, or a ProtobufError to say DECODE). */
  onEntry: (rec: RecordView, at: RecordPosition) => void;
  /** Called for each snapshot record (after its checks). */
  onSnapshot?: (snap: Snapshot) => void;
  /** Called as each segment starts: `done` of `total`. */
  onSegment?: (done: number, total: number, path: string) => void;
  /** Called once every record was read, before the end checks (the start snapshot). */
  onScanned?: () => void;
  /** One reused window buffer, for scans that keep no views into segment bytes. */
  scratch?: ScratchBuffer;
}

/** What {@link scanLog} found besides the entries. */
export interface LogScan {
  /** The metadata; null when its record has no data field (Go's nil). */
  metadata: Uint8Array | null;
  /** The last hard state recorded (all zeros when none). */
  state: HardState;
  /** How the scan ended: its torn tail, if any, and where appends would go on. */
  end: ScanResult;
}

/** Scans the log with every replay check; entry records go to `onEntry`. */
export async function scanLog(o: LogScanOptions): Promise<LogScan> {
  const checks = new ReplayChecks(o.start);
  const onEntry = o.onEntry;
  const onSnapshot = o.onSnapshot;
  let state = emptyHardState();
  const end = await scanSegments(
    o.files,
    (rec, at) => {
      switch (rec.type) {
        case RecordType.Entry:
          onEntry(rec, at);
          return;
        case RecordType.State:
          state = rec.hardState();
          return;
        case RecordType.Crc:
          return;
        default:
          if (!checks.handle(rec, at)) throw unexpectedType(rec, at);
          if (rec.type === RecordType.Snapshot && onSnapshot !== undefined) {
            onSnapshot(rec.snapshot());
          }
      }
    },
    o.onSegment,
    o.scratch,
  );
  o.onScanned?.();
  if (end.torn !== null && o.requireCleanEnd) throw end.torn;
  if (o.requireSnapshot !== false) checks.requireMatch(o.dir, end.torn);
  return { metadata: checks.metadata ?? null, state, end };
}
