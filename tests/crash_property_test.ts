/**
 * Crash property tests on the simulated-crash file system: random operation sequences
 * (create, saves of random batches including raft overwrites, snapshots, cuts, syncs,
 * reopens, lock releases) with a crash injected at a random file system call, on segments
 * small enough to cut often. After each crash, recovery (open; on UNEXPECTED_EOF repair and
 * open again) must find every save that was acknowledged as durable, nothing that was never
 * saved, and a WAL that takes new appends. Over the whole sweep, crashes must have landed in
 * every kind of file system call the WAL makes (see {@link CALLS}), in explicit cuts and in
 * the cuts saves start.
 *
 * Size: what this checks is runtime-independent logic (the simulated file system is in
 * memory), so the full sweep, 4000 sequences (seeds 1 to 4000), runs on Deno only; Bun and
 * Node run a random 400 of them (10%; more only if those missed a kind of call), chosen by
 * WAL_SWEEP_SEED and the runtime (the seed is random by default, and printed; the same seed
 * picks the same sequences on the same runtime). WAL_FULL_SWEEPS=1 runs the full sweep on
 * every runtime.
 *
 * WAL_CRASH_SEQUENCES sets the number of sequences (then all of them run on every runtime);
 * WAL_CRASH_SEED the first seed. A failure prints its seed, and that seed alone replays it
 * exactly (WAL_CRASH_SEED=<seed> WAL_CRASH_SEQUENCES=1).
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type Entry, exists, type HardState, repair, WAL, WalError } from "../mod.ts";
import { CrashFileSystem } from "../src/fs/crash.ts";
import {
  FULL_SIZE_RUNTIME,
  FULL_SWEEPS,
  randBytes,
  randInt,
  rng,
  RUNTIME,
  SWEEP_SEED,
  sweepRng,
} from "./helpers.ts";

const DEFAULT_SEQUENCES = 4000;
const SAMPLE_SEQUENCES = 400;
const SEQUENCES = Number(process.env.WAL_CRASH_SEQUENCES ?? DEFAULT_SEQUENCES);
const FIRST_SEED = Number(process.env.WAL_CRASH_SEED ?? 1);
/** The full sweep runs on {@link FULL_SIZE_RUNTIME}; the others run {@link SAMPLE_SEQUENCES}. */
const FULL = FULL_SWEEPS || process.env.WAL_CRASH_SEQUENCES !== undefined;
const DIR = "/data/wal";

/**
 * Every kind of call the WAL makes to the file system (CrashFileSystem's step names). Not
 * here: `sync` and `copyFile`, which only repair makes, and repair runs after the reboot.
 */
const CALLS = [
  "mkdir",
  "stat",
  "readDir",
  "open",
  "tryLock",
  "read",
  "size",
  "write",
  "truncate",
  "allocate",
  "syncData",
  "rename",
  "syncDir",
  "remove",
];
/**
 * Whether to assert that crashes landed in every kind of call: on the default sweep or a
 * bigger one (full or sampled), not on a replay of a few seeds.
 */
const CHECK_COVERAGE = SEQUENCES >= DEFAULT_SEQUENCES;

/**
 * The seeds to replay, in order: all of them, or (sampling) all of them in a random order
 * chosen by {@link SWEEP_SEED}, of which the test runs the first {@link SAMPLE_SEQUENCES}
 * and then more only until the coverage assertion holds (mkdir and readDir each take about
 * 1% of the crashes, so 400 sequences now and then miss one).
 */
function sequenceSeeds(): number[] {
  const all = Array.from({ length: SEQUENCES }, (_, i) => FIRST_SEED + i);
  if (FULL) return all;
  const r = sweepRng(RUNTIME); // Bun and Node sample differently
  for (let i = all.length - 1; i > 0; i--) {
    const j = randInt(r, 0, i);
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all;
}

/** How big this run is, and how to reproduce it. */
const SWEEP_NOTE = FULL
  ? `crash sweep on ${RUNTIME}: all ${SEQUENCES} sequences (seeds ${FIRST_SEED}..${
    FIRST_SEED + SEQUENCES - 1
  }); ${FULL_SIZE_RUNTIME} always runs them all, the other runtimes a random ` +
    `${SAMPLE_SEQUENCES} unless WAL_FULL_SWEEPS=1`
  : `crash sweep on ${RUNTIME}: a random ${SAMPLE_SEQUENCES} of the ${SEQUENCES} sequences ` +
    `(seeds ${FIRST_SEED}..${FIRST_SEED + SEQUENCES - 1}; more if needed to crash in every ` +
    `kind of call), chosen by WAL_SWEEP_SEED=${SWEEP_SEED} (it picks the same ones again ` +
    `on ${RUNTIME}; WAL_FULL_SWEEPS=1 runs all ${SEQUENCES}, as ${FULL_SIZE_RUNTIME} does)`;

type Rec = { kind: "entry"; e: Entry } | { kind: "state"; s: HardState };

/** Replay of the first `n` records (from snapshot 0): what readAll must return. */
class Model {
  entries: Entry[] = [];
  state: HardState = { term: 0n, vote: 0n, commit: 0n };
  applied = 0;

  apply(r: Rec): void {
    if (r.kind === "entry") {
      this.entries.length = Number(r.e.index - 1n);
      this.entries.push(r.e);
    } else {
      this.state = r.s;
    }
    this.applied++;
  }
}

interface Outcome {
  sequences: number;
  /** Sequences whose crash point was reached, by the kind of call it interrupted. */
  byCall: Map<string, number>;
  /** Crashes that interrupted an explicit `cut()`, and a cut a save started. */
  inCut: number;
  inSaveCut: number;
  /** Sequences that ended before their crash point: the power was cut after the last step. */
  noCall: number;
  repairs: number;
  createLost: number;
  maybeRecords: number;
}

function isCrash(fs: CrashFileSystem, e: unknown): boolean {
  return fs.hasCrashed && e instanceof WalError;
}

async function runSequence(seed: number, out: Outcome): Promise<void> {
  const r = rng(seed);
  const fs = new CrashFileSystem(seed * 7919);
  const opts = { fs, segmentSizeBytes: randInt(r, 1, 4) * 1024 };
  const records: Rec[] = [];
  let durable = 0; // records[0..durable) were acknowledged as durable
  let created = false;
  let handleState: HardState = { term: 0n, vote: 0n, commit: 0n }; // etcd's w.state
  let term = 1n;
  let last = 0n; // index of the last entry issued
  let snapIndex = 0n;

  fs.crashAfter(randInt(r, 1, 250));
  let wal: WAL | null = null;
  let doing = "create"; // the WAL call in progress, to tell where a crash landed
  try {
    wal = await WAL.create(DIR, new TextEncoder().encode(`seed-${seed}`), opts);
    doing = "";
    created = true;
    for (let step = 0; step < 40; step++) {
      const roll = r();
      if (roll < 0.6) {
        // one save, or (group commit) several made at once and awaited together
        const saves: Promise<void>[] = [];
        let syncedUpTo = -1; // records through the last save that needs a sync
        for (let n = r() < 0.2 ? randInt(r, 2, 4) : 1; n > 0; n--) {
          // raft may rewrite the uncommitted tail, never below a snapshot
          let next = last + 1n;
          if (r() < 0.15 && last > snapIndex + 1n) {
            next -= BigInt(randInt(r, 1, Number(last - snapIndex - 1n)));
          }
          if (r() < 0.1) term++;
          const batch: Entry[] = [];
          for (let k = randInt(r, 0, 5); k > 0; k--) {
            batch.push({
              term,
              index: next,
              type: randInt(r, 0, 2),
              data: randBytes(r, randInt(r, 0, 600)),
            });
            next++;
          }
          const state = r() < 0.1 ? { term: 0n, vote: 0n, commit: 0n } : {
            term,
            vote: 1n,
            commit: batch.length > 0 ? batch[0].index - 1n : last,
          };
          const empty = state.term === 0n && state.vote === 0n && state.commit === 0n;
          const mustSync = batch.length > 0 || state.term !== handleState.term ||
            state.vote !== handleState.vote;
          for (const e of batch) records.push({ kind: "entry", e });
          if (!empty) records.push({ kind: "state", s: state });
          doing = "save";
          saves.push(wal.save(state, batch));
          if (batch.length > 0) last = batch[batch.length - 1].index;
          if (!empty) handleState = state;
          if (mustSync && (batch.length > 0 || !empty)) syncedUpTo = records.length;
        }
        const results = await Promise.allSettled(saves);
        const failed = results.find((x) => x.status === "rejected");
        if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
        // a save that needs a sync is durable once it resolves, and so is everything before
        // it; commit-only saves after it are not (a cut inside the group may have synced
        // only the part before it), as when saves are made one at a time
        if (syncedUpTo >= 0) durable = syncedUpTo;
      } else if (roll < 0.68) {
        if (last <= snapIndex) continue; // a snapshot needs a new index
        snapIndex = last;
        doing = "saveSnapshot";
        await wal.saveSnapshot({ index: snapIndex, term });
        durable = records.length;
      } else if (roll < 0.76) {
        doing = "cut";
        await wal.cut();
        durable = records.length;
      } else if (roll < 0.8) {
        doing = "sync";
        await wal.sync();
        durable = records.length;
      } else if (roll < 0.88) {
        doing = "close";
        await wal.close();
        durable = records.length;
        doing = "open";
        wal = await WAL.open(DIR, undefined, opts);
        await wal.readAll();
        handleState = { term: 0n, vote: 0n, commit: 0n };
      } else {
        doing = "releaseLockTo";
        await wal.releaseLockTo(BigInt(randInt(r, 0, Number(last) + 1)));
      }
    }
    if (!fs.hasCrashed) fs.crashAfter(Infinity);
  } catch (e) {
    if (!isCrash(fs, e)) throw e;
    // A save cuts when its segment is full; a failed cut fails the WAL as "cut to <name> failed".
    if (doing === "cut") out.inCut++;
    else if (doing === "save" && /^cut to /.test((e as WalError).reason)) out.inSaveCut++;
  }
  const call = fs.crashedDuring;
  if (call === null) out.noCall++;
  else out.byCall.set(call, (out.byCall.get(call) ?? 0) + 1);
  out.sequences++;
  // Power is cut here, whether or not a call was interrupted.
  fs.crash();
  wal = null;

  // Recovery, as an etcd server does it.
  if (!(await exists(DIR, opts))) {
    assert.ok(!created, "a created WAL disappeared");
    out.createLost++;
    return;
  }
  let reopened: WAL;
  let got;
  try {
    reopened = await WAL.open(DIR, undefined, opts);
    got = await reopened.readAll();
  } catch (e) {
    if (!(e instanceof WalError) || e.code !== "UNEXPECTED_EOF") throw e;
    out.repairs++;
    const fixed = await repair(DIR, opts);
    assert.ok(fixed.repaired);
    reopened = await WAL.open(DIR, undefined, opts);
    got = await reopened.readAll();
  }

  // The replay must be the acknowledged records plus a prefix of the ones in flight.
  const model = new Model();
  for (const rec of records.slice(0, durable)) model.apply(rec);
  const matches = () =>
    entriesEqual(got.entries, model.entries) && statesEqual(got.state, model.state);
  let ok = matches();
  while (!ok && model.applied < records.length) {
    model.apply(records[model.applied]);
    ok = matches();
  }
  assert.ok(
    ok,
    `replay (${got.entries.length} entries, commit ${got.state.commit}) is not the ` +
      `${durable} acknowledged records plus a prefix of the ${records.length - durable} in flight`,
  );
  out.maybeRecords += model.applied - durable;

  // The recovered WAL takes new appends, and they survive a clean reopen.
  const n = BigInt(got.entries.length) + 1n;
  const extra: Entry = { term: 99n, index: n, type: 0, data: new Uint8Array([1, 2, 3]) };
  await reopened.save({ term: 99n, vote: 1n, commit: n }, [extra]);
  await reopened.close();
  const check = await WAL.openForRead(DIR, undefined, opts);
  const after = await check.readAll();
  await check.close();
  assert.deepEqual(after.entries, [...got.entries.slice(0, Number(n - 1n)), extra]);
}

function entriesEqual(a: Entry[], b: Entry[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.term !== y.term || x.index !== y.index || x.type !== y.type) return false;
    if (x.data.length !== y.data.length || !x.data.every((v, j) => v === y.data[j])) return false;
  }
  return true;
}

function statesEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** The kinds of call in {@link CALLS} no crash has landed in yet, and the missing cuts. */
function uncovered(out: Outcome): string[] {
  const missed = CALLS.filter((c) => !out.byCall.has(c));
  if (out.inCut === 0) missed.push("an explicit cut()");
  if (out.inSaveCut === 0) missed.push("a cut started by a save");
  return missed;
}

describe("crash safety on a simulated file system", () => {
  const what = FULL ? `${SEQUENCES}` : `a sample of ${SAMPLE_SEQUENCES}+ of ${SEQUENCES}`;
  test(`${what} random sequences with a crash at a random call lose no acknowledged save`, async () => {
    console.log(SWEEP_NOTE);
    const out: Outcome = {
      sequences: 0,
      byCall: new Map(),
      inCut: 0,
      inSaveCut: 0,
      noCall: 0,
      repairs: 0,
      createLost: 0,
      maybeRecords: 0,
    };
    for (const seed of sequenceSeeds()) {
      if (!FULL && out.sequences >= SAMPLE_SEQUENCES) {
        if (!CHECK_COVERAGE || uncovered(out).length === 0) break;
      }
      try {
        await runSequence(seed, out);
      } catch (e) {
        throw new Error(
          `crash sequence failed; replay it with WAL_CRASH_SEED=${seed} WAL_CRASH_SEQUENCES=1: ${
            e instanceof Error ? e.message : e
          }`,
          { cause: e },
        );
      }
    }
    const calls = [...out.byCall].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`);
    console.log(
      `crash sequences: ${out.sequences}; crashed in ${calls.join(", ")}; ` +
        `in an explicit cut ${out.inCut}, in a cut a save started ${out.inSaveCut}; ` +
        `ended before the crash point ${out.noCall}; needed repair: ${out.repairs}, ` +
        `crashed before create finished: ${out.createLost}, ` +
        `unacknowledged records that survived: ${out.maybeRecords}`,
    );
    if (CHECK_COVERAGE) {
      // Crashes landed in every kind of call the WAL makes, and in both kinds of cut.
      const missed = uncovered(out);
      assert.deepEqual(missed, [], `no crash landed in ${missed.join(", ")}`);
    }
  });
});
