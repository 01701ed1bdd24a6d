/**
 * Writing a group of saves: one write and, when raft requires it, one fdatasync, with
 * segment cuts exactly where etcd, making the same saves one at a time, would cut.
 *
 * @module
 */

import { type HardState, isEmptyHardState } from "../types.ts";
import type { PendingSave } from "./call_queue.ts";
import type { AppendState } from "./phase.ts";

/**
 * raft's MustSync: a save must be durable before it is acknowledged when it has entries, or
 * changes the term or the vote. A commit index alone may be lost and learned again.
 */
export function mustSync(prev: HardState, state: HardState, entryCount: number): boolean {
  return entryCount > 0 || state.vote !== prev.vote || state.term !== prev.term;
}

/**
 * Writes the saves of `group` in order. Anything it throws leaves the tail in an unknown
 * state: the caller must fail the WAL.
 */
export async function writeGroup(log: AppendState, group: readonly PendingSave[]): Promise<void> {
  let syncs = false;
  for (const { state, entries, places } of group) {
    const hasState = !isEmptyHardState(state);
    if (!hasState && entries.length === 0) continue;
    const enc = log.writer.encoder;
    const needsSync = mustSync(log.state, state, entries.length);
    if (places === undefined) {
      for (const e of entries) enc.entry(e);
    } else {
      for (const e of entries) {
        places.paths.push(log.writer.path);
        places.offsets.push(log.writer.appendOffset);
        enc.entry(e);
      }
    }
    if (hasState) enc.state(state);
    if (entries.length > 0) log.lastIndex = entries[entries.length - 1].index;
    if (log.indexFloor !== null && log.lastIndex < log.indexFloor) log.lastIndex = log.indexFloor;
    if (hasState) log.state = state;
    if (log.writer.full) {
      await log.writer.writePending();
      log.segments.add(await log.writer.cut(log.lastIndex + 1n, log.state)); // syncs all so far
      syncs = false;
      continue;
    }
    if (needsSync) {
      log.writer.markSync(); // where etcd, saving one at a time, would have synced
      syncs = true;
    }
  }
  await log.writer.writePending();
  if (syncs) await log.writer.sync();
}
