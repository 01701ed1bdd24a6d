/**
 * The phases of a WAL handle: opened, it replays (once); then it appends (write mode) or
 * is done (read mode); it ends closed, remembering the failure that closed it, if any.
 * Each phase holds exactly the state that exists in it, so append-mode state cannot be
 * reached before replay or after close.
 *
 * @module
 */

import { ioError, WalError } from "../errors.ts";
import type { ResolvedOptions } from "../options.ts";
import type { ScanResult } from "../replay/scan.ts";
import { SegmentWriter } from "../segment/segment_writer.ts";
import { emptyHardState, type HardState } from "../types.ts";
import type { SegmentSet } from "./segment_set.ts";

/** The state of a WAL in append mode, which saves advance. */
export interface AppendState {
  /** The tail's writer. */
  writer: SegmentWriter;
  /** The open, locked segments; cuts add to them. */
  segments: SegmentSet;
  /** The last hard state saved through this handle (etcd's w.state: empty after open). */
  state: HardState;
  /** Index of the last entry written or replayed (etcd's w.enti); names the next segment. */
  lastIndex: bigint;
  /**
   * Null: segments are named as etcd names them. Else the highest snapshot index recorded,
   * below which `lastIndex` is not let fall (see `WalInternals.replayRecords`).
   */
  indexFloor: bigint | null;
}

/** The append phase: the state saves advance. */
export type Appending = { kind: "append" } & AppendState;

/** A WAL handle's phase. */
export type Phase =
  /** Opened: waiting for `readAll` or `stream`; the segments are open (locked to write). */
  | { kind: "replay"; segments: SegmentSet }
  /** Replayed in write mode, or created: saves go to the tail. */
  | Appending
  /** Replayed in read mode: nothing is held. */
  | { kind: "done" }
  /** Closed, by `close` or by a failed write or sync (`failure`). */
  | { kind: "closed"; failure: WalError | null };

/** Throws `CLOSED` once the WAL is closed or has failed. */
function requireOpen(phase: Phase, dir: string, what: string): void {
  if (phase.kind !== "closed") return;
  if (phase.failure !== null) {
    throw new WalError("CLOSED", `cannot ${what}: the WAL failed earlier and was closed`, {
      file: dir,
      cause: phase.failure,
    });
  }
  throw new WalError("CLOSED", `cannot ${what}: the WAL is closed`, { file: dir });
}

/** Returns the append state, or throws unless the WAL is open to write and replayed. */
export function requireAppend(
  phase: Phase,
  dir: string,
  what: string,
  writable: boolean,
): Appending {
  requireOpen(phase, dir, what);
  if (!writable) {
    throw new WalError("INVALID_ARGUMENT", `cannot ${what}: the WAL was opened for reading`, {
      file: dir,
    });
  }
  if (phase.kind !== "append") {
    throw new WalError("INVALID_ARGUMENT", `cannot ${what} before readAll() has replayed the log`, {
      file: dir,
    });
  }
  return phase;
}

/** Returns the segments to replay, or throws unless the WAL waits for its replay. */
export function requireReplay(phase: Phase, dir: string, what: string): SegmentSet {
  requireOpen(phase, dir, what);
  if (phase.kind !== "replay") {
    throw new WalError("INVALID_ARGUMENT", `${what}: a WAL replays once, after open`, {
      file: dir,
    });
  }
  return phase.segments;
}

/**
 * The phase after a replay that ended at `end`: read mode releases the segments; write mode
 * makes the last one the tail (see {@link SegmentWriter.resume}) and appends from there.
 */
export async function endReplay(
  options: ResolvedOptions,
  segments: SegmentSet,
  writable: boolean,
  replayed: {
    end: ScanResult;
    metadata: Uint8Array | null;
    lastIndex: bigint;
    indexFloor?: bigint;
  },
): Promise<Phase> {
  if (!writable) {
    await segments.close();
    return { kind: "done" };
  }
  const tail = segments.last();
  if (tail === undefined) {
    throw new WalError("FILE_NOT_FOUND", "no segment to append to", { file: segments.dir });
  }
  const { end, metadata, lastIndex, indexFloor = null } = replayed;
  const writer = await SegmentWriter.resume(options, segments.dir, tail, end, metadata);
  return { kind: "append", segments, writer, state: emptyHardState(), lastIndex, indexFloor };
}

/** Closes what a phase holds: the pipeline's spare and the segments (of WAL `dir`). */
export async function releasePhase(phase: Phase, dir: string): Promise<void> {
  let first: unknown = null;
  if (phase.kind === "append") await phase.writer.close().catch((e) => (first ??= e));
  if (phase.kind === "append" || phase.kind === "replay") {
    await phase.segments.close().catch((e) => (first ??= e));
  }
  if (first !== null) throw ioError(first, "cannot close WAL", dir);
}
