/**
 * The order of calls on one WAL: each runs after every call made before it, and saves made
 * while a group of saves waits in the queue join that group (group commit), so they go out
 * as one write and one fdatasync.
 *
 * @module
 */

import type { Entry, HardState } from "../types.ts";

/** Where a save's entry records were written: per entry, its segment's path and offset. */
export interface EntryPlaces {
  /** The segment of each entry record (the same string for a segment's records). */
  paths: string[];
  /** The byte offset of each entry record in its segment. */
  offsets: number[];
}

/** A save waiting for its group to be written. */
export interface PendingSave {
  /** The hard state to save (may be empty). */
  state: HardState;
  /** The entries to save, validated and copied. */
  entries: Entry[];
  /** Filled with where each entry record went, for a caller that reads them back by place. */
  places?: EntryPlaces;
  /** Settles the save's promise once its group is durable. */
  resolve: () => void;
  /** Settles the save's promise with its group's failure. */
  reject: (e: unknown) => void;
}

/** Runs calls one at a time, in call order, gathering waiting saves into groups. */
export class CallQueue {
  private last: Promise<unknown> = Promise.resolve();
  /** The group of saves waiting in the queue: saves made now join it. */
  private openGroup: PendingSave[] | null = null;

  /** Runs `op` after every earlier call; a later save does not join an earlier group. */
  serial<T>(op: () => Promise<T>): Promise<T> {
    this.openGroup = null;
    return this.enqueue(op);
  }

  /**
   * Queues a save: it joins the group waiting in the queue, or starts a group that
   * `write` will write when its turn comes. Each save of the group is resolved after
   * `write` resolves, or rejected with its error.
   */
  save(pending: PendingSave, write: (group: readonly PendingSave[]) => Promise<void>): void {
    if (this.openGroup !== null) {
      this.openGroup.push(pending);
      return;
    }
    const group = [pending];
    this.openGroup = group;
    this.enqueue(async () => {
      if (this.openGroup === group) this.openGroup = null; // later saves form the next group
      try {
        await write(group);
      } catch (e) {
        for (const p of group) p.reject(e);
        return;
      }
      for (const p of group) p.resolve();
    });
  }

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = this.last.then(op, op);
    this.last = run.catch(() => {});
    return run;
  }
}
