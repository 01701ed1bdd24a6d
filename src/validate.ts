/**
 * Validation of caller-supplied values: everything a save or an open is given is checked
 * before it can reach the disk.
 *
 * @module
 */

import { WalError } from "./errors.ts";
import type { Entry, HardState, Snapshot } from "./types.ts";

const MAX64 = (1n << 64n) - 1n;

/** Checks that a caller-supplied value fits uint64, naming the field when it does not. */
export function checkUint64(v: bigint, what: string): void {
  if (typeof v !== "bigint" || v < 0n || v > MAX64) {
    throw new WalError(
      "INVALID_ARGUMENT",
      `${what} must be a bigint in [0, 2^64): got ${String(v)}`,
    );
  }
}

/** Checks the metadata given to `create` (absent, or bytes). */
export function checkMetadata(metadata: Uint8Array | undefined): void {
  if (metadata !== undefined && !(metadata instanceof Uint8Array)) {
    throw new WalError("INVALID_ARGUMENT", "metadata must be a Uint8Array");
  }
}

/** Checks a snapshot position. */
export function checkSnapshot(snap: Snapshot): void {
  if (snap === null || typeof snap !== "object") {
    throw new WalError("INVALID_ARGUMENT", "snapshot must be an object { index, term }");
  }
  checkUint64(snap.index, "snapshot.index");
  checkUint64(snap.term, "snapshot.term");
  const c = snap.confState;
  if (c === undefined) return;
  if (c === null || typeof c !== "object") {
    throw new WalError("INVALID_ARGUMENT", "snapshot.confState must be an object or absent");
  }
  for (const list of ["voters", "learners", "votersOutgoing", "learnersNext"] as const) {
    const values = c[list];
    if (!Array.isArray(values)) {
      throw new WalError("INVALID_ARGUMENT", `snapshot.confState.${list} must be an array`);
    }
    values.forEach((v, i) => checkUint64(v, `snapshot.confState.${list}[${i}]`));
  }
  if (typeof c.autoLeave !== "boolean") {
    throw new WalError("INVALID_ARGUMENT", "snapshot.confState.autoLeave must be a boolean");
  }
}

/** Checks a hard state. */
function checkState(s: HardState): void {
  if (s === null || typeof s !== "object") {
    throw new WalError("INVALID_ARGUMENT", "state must be an object { term, vote, commit }");
  }
  checkUint64(s.term, "state.term");
  checkUint64(s.vote, "state.vote");
  checkUint64(s.commit, "state.commit");
}

/**
 * Validates a save's arguments and copies them, when `save` is called, not when the queued
 * call runs: a caller may reuse its objects as soon as save() returns. Entry data is read
 * when the save runs.
 */
export function copySave(
  state: HardState,
  entries: readonly Entry[],
): { state: HardState; entries: Entry[] } {
  checkState(state);
  return {
    state: { term: state.term, vote: state.vote, commit: state.commit },
    entries: copyEntries(entries),
  };
}

/**
 * Validates entries and copies them (not their data). Indexes within one batch must be
 * consecutive: a gap there could never replay. Across saves any index is accepted, as in
 * etcd: a follower may save entries after a snapshot before the snapshot record itself.
 */
function copyEntries(entries: readonly Entry[]): Entry[] {
  if (!Array.isArray(entries)) {
    throw new WalError("INVALID_ARGUMENT", "entries must be an array");
  }
  const out: Entry[] = new Array(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    checkEntry(e, i);
    if (i > 0 && e.index !== out[i - 1].index + 1n) {
      throw new WalError(
        "INVALID_ARGUMENT",
        `entries[${i}].index is ${e.index}, expected ${
          out[i - 1].index + 1n
        }: a batch must not have gaps`,
      );
    }
    out[i] = { term: e.term, index: e.index, type: e.type, data: e.data };
  }
  return out;
}

/** Checks one entry of a batch. */
function checkEntry(e: Entry, i: number): void {
  if (e === null || typeof e !== "object") {
    throw new WalError("INVALID_ARGUMENT", `entries[${i}] must be an object`);
  }
  checkUint64(e.term, `entries[${i}].term`);
  checkUint64(e.index, `entries[${i}].index`);
  if (!Number.isInteger(e.type) || e.type < -0x80000000 || e.type > 0x7fffffff) {
    throw new WalError("INVALID_ARGUMENT", `entries[${i}].type must be an int32: got ${e.type}`);
  }
  if (!(e.data instanceof Uint8Array)) {
    throw new WalError("INVALID_ARGUMENT", `entries[${i}].data must be a Uint8Array`);
  }
}
