/**
 * The checker of the power-cut tests: given a WAL directory that survived a cut and the
 * output of tests/faults/writer.ts up to the cut, recovers the WAL the way a user would and
 * says whether anything acknowledged was lost or anything unacknowledged was invented.
 *
 * Recovery: open at the newest valid snapshot record (`validSnapshotEntries`), and when the
 * open or the replay fails with `UNEXPECTED_EOF` (a torn tail), `repair` once and try again.
 * Then, with `base` the log that the acknowledged saves build in issue order (a save from
 * index i replaces everything from i on, as raft's overwrites do):
 *
 * - what replay returns after the snapshot must be `base` followed by the unacknowledged saves
 *   in issue order, all of the first k of them and a prefix of the entries of the next (the
 *   WAL writes a group's records in order; a cut may keep any prefix of what was not synced);
 * - every entry's bytes are `entryData(seed, index, term)`;
 * - the snapshot replay starts at is at least the newest acknowledged one;
 * - the hard state is at least the last acknowledged save's (term and commit).
 *
 * A log without the writer's `ready` line (it died while creating the WAL) is fine with no
 * WAL at all, or with an empty one: `create` publishes the directory atomically.
 *
 * As a command: `check.ts <dir> <logfile>` prints the result as JSON and exits 0 when it is
 * ok, 1 when not.
 *
 * @module
 */

import process from "node:process";
import { readFileSync } from "node:fs";
import { repair, type Snapshot, validSnapshotEntries, WAL, WalError } from "../../mod.ts";
import type { Entry, FileSystem, HardState } from "../../mod.ts";
import { isEntryData } from "../fixtures/kill_pattern.ts";

/** What {@link checkRecovery} found. */
export interface CheckResult {
  /** True when nothing acknowledged was lost and nothing else was invented. */
  ok: boolean;
  /** What was wrong, one line each. */
  problems: string[];
  /** Saves acknowledged before the cut. */
  acked: number;
  /** Entries replay returned after the snapshot. */
  entries: number;
  /** Whether recovery needed `repair`. */
  repaired: boolean;
  /** The index of the snapshot replay started at. */
  snapshot: bigint;
}

/** Options for {@link checkRecovery}. */
export interface CheckOptions {
  /** The file system to recover through (default: the runtime's). */
  fs?: FileSystem;
  /** Whether recovery may `repair` a torn tail (default true). */
  repair?: boolean;
}

interface Save {
  first: bigint;
  last: bigint;
  term: bigint;
  commit: bigint;
}

interface Parsed {
  /** The writer's seed, from its `ready` line; null when it never got that far. */
  seed: number | null;
  /** Acknowledged saves, then unacknowledged ones, each in issue order. */
  acked: Save[];
  pending: Save[];
  /** The newest acknowledged snapshot index. */
  snapshot: bigint;
}

/** Reads the writer's lines; a line cut short by the cut is ignored. */
export function parseLog(log: string): Parsed {
  const begun = new Map<number, string[]>();
  const acked = new Set<number>();
  const lines = log.split("\n");
  if (!log.endsWith("\n")) lines.pop(); // the last line did not finish
  const result: Parsed = { seed: null, acked: [], pending: [], snapshot: 0n };
  for (const line of lines) {
    const w = line.trim().split(/\s+/);
    if (w[0] === "ready" && w.length === 2) result.seed = Number(w[1]);
    else if (w[0] === "begin") begun.set(Number(w[1]), w.slice(2));
    else if (w[0] === "ack") acked.add(Number(w[1]));
  }
  for (const [id, what] of [...begun].sort((a, b) => a[0] - b[0])) {
    if (what[0] === "save") {
      const [first, last, term, commit] = what.slice(1, 5).map(BigInt);
      (acked.has(id) ? result.acked : result.pending).push({ first, last, term, commit });
    } else if (what[0] === "snap" && acked.has(id)) {
      const index = BigInt(what[1]);
      if (index > result.snapshot) result.snapshot = index;
    }
  }
  return result;
}

/** Applies a save's first `n` entries to a log of terms (index i at position i). */
function apply(log: bigint[], s: Save, n: number): bigint[] {
  const out = log.slice(0, Number(s.first));
  for (let i = 0; i < n; i++) out.push(s.term);
  return out;
}

function matches(log: bigint[], from: bigint, entries: readonly Entry[]): boolean {
  if (log.length - 1 - Number(from) !== entries.length) return false;
  for (let i = 0; i < entries.length; i++) {
    if (log[Number(from) + 1 + i] !== entries[i].term) return false;
  }
  return true;
}

async function recover(
  dir: string,
  options: CheckOptions,
): Promise<{ snap: Snapshot; entries: Entry[]; state: HardState; repaired: boolean }> {
  const o = options.fs === undefined ? {} : { fs: options.fs };
  for (let attempt = 0;; attempt++) {
    let wal: WAL | undefined;
    try {
      const snaps = await validSnapshotEntries(dir, o);
      const snap = snaps.at(-1) ?? { index: 0n, term: 0n };
      wal = await WAL.open(dir, snap, o);
      const { entries, state } = await wal.readAll();
      await wal.close();
      return { snap, entries, state, repaired: attempt > 0 };
    } catch (e) {
      await wal?.close().catch(() => {});
      const torn = e instanceof WalError && e.code === "UNEXPECTED_EOF";
      if (!torn || attempt > 0 || options.repair === false) throw e;
      await repair(dir, o);
    }
  }
}

/** Recovers the WAL in `dir` and checks it against the writer's output `log`. */
export async function checkRecovery(
  dir: string,
  log: string,
  options: CheckOptions = {},
): Promise<CheckResult> {
  const want = parseLog(log);
  const seed = want.seed;
  const result: CheckResult = {
    ok: false,
    problems: [],
    acked: want.acked.length,
    entries: 0,
    repaired: false,
    snapshot: 0n,
  };
  let got;
  try {
    got = await recover(dir, options);
  } catch (e) {
    if (seed === null && e instanceof WalError && e.code === "FILE_NOT_FOUND") {
      result.ok = true; // the writer died in create, which had not published the WAL
      return result;
    }
    result.problems.push(`recovery failed: ${e instanceof WalError ? e.code + ": " : ""}${e}`);
    return result;
  }
  result.entries = got.entries.length;
  result.repaired = got.repaired;
  result.snapshot = got.snap.index;

  if (got.snap.index < want.snapshot) {
    result.problems.push(
      `snapshot ${want.snapshot} was acknowledged, replay starts at ${got.snap.index}`,
    );
  }
  if (seed === null && got.entries.length > 0) result.problems.push("entries before `ready`");
  for (const e of got.entries) {
    if (seed !== null && !isEntryData(seed, e.index, e.term, e.data)) {
      result.problems.push(`entry ${e.index} (term ${e.term}) has bytes the writer never wrote`);
      break;
    }
  }
  const lastAcked = want.acked.at(-1);
  if (lastAcked !== undefined) {
    if (got.state.term < lastAcked.term || got.state.commit < lastAcked.commit) {
      result.problems.push(
        `hard state term ${got.state.term} commit ${got.state.commit} is behind the acknowledged ` +
          `term ${lastAcked.term} commit ${lastAcked.commit}`,
      );
    }
  }

  let log0: bigint[] = [0n];
  for (const s of want.acked) log0 = apply(log0, s, Number(s.last - s.first + 1n));
  let found = false;
  let model = log0;
  for (let k = 0; k <= want.pending.length && !found; k++) {
    const next = want.pending[k];
    const n = next === undefined ? 0 : Number(next.last - next.first + 1n);
    for (let p = 0; p <= n && !found; p++) {
      const candidate = next === undefined ? model : apply(model, next, p);
      if (Number(next?.first ?? 0n) > model.length) break; // a gap: the writer never does this
      found = matches(candidate, got.snap.index, got.entries);
    }
    if (next !== undefined) model = apply(model, next, n);
  }
  if (!found) {
    const lastGot = got.entries.at(-1);
    result.problems.push(
      `replay (${got.entries.length} entries after snapshot ${got.snap.index}, last ` +
        `${lastGot === undefined ? "none" : `${lastGot.index}@${lastGot.term}`}) is not the ` +
        `${want.acked.length} acknowledged saves (log to ${
          log0.length - 1
        }) plus a prefix of the ` +
        `${want.pending.length} unacknowledged`,
    );
  }
  result.ok = result.problems.length === 0;
  return result;
}

const main = (import.meta as { main?: boolean }).main ??
  (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/.*\//, "/")));
if (main) {
  const argv = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? process.argv.slice(2);
  if (argv.length !== 2) {
    console.error("usage: check.ts <dir> <logfile>");
    process.exit(2);
  }
  const r = await checkRecovery(argv[0], readFileSync(argv[1], "utf8"));
  console.log(JSON.stringify(r, (_k, v) => typeof v === "bigint" ? v.toString() : v));
  process.exit(r.ok ? 0 : 1);
}
