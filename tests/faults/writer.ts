/**
 * The writer of the power-cut tests (the strace crash explorer, the file system shutdown cuts
 * and the qemu power cuts): a raft-shaped workload on a real WAL that says, line by line, what
 * it is about to do and what was acknowledged, so a checker can tell after a cut what must
 * have survived. Runs under Deno, Bun and Node.
 *
 * Usage: writer.ts <dir> <seed> [--ops N] [--segment-bytes N]
 *
 * Creates the WAL in <dir> (which must not exist) and runs N operations (default: until
 * killed), chosen by <seed>: saves of 1..20 entries (fdatasync'd), groups of 2..5 concurrent
 * saves (one group commit), raft overwrites (a new term, rewinding to above the commit index),
 * explicit cuts (and automatic ones: segments are small), snapshots, and `releaseLockTo` +
 * `purge` of the segments below the newest snapshot. Entry data is `entryData(seed, index,
 * term)` (tests/fixtures/kill_pattern.ts). Every line goes to stdout with a blocking write(2),
 * so a line the parent read was written before the process died:
 *
 *   ready <seed>                          created, about to start
 *   begin <id> save <first> <last> <term> <commit>   (first > last: a hard state alone)
 *   begin <id> snap <index> <term>
 *   begin <id> cut
 *   begin <id> release <index>
 *   begin <id> purge <keep>
 *   ack <id>                              the call resolved (a save: durable)
 *   fail <id> <code>                      the call rejected (then the writer exits 3)
 *   done                                  all operations finished (exit 0)
 *
 * The checker is tests/faults/check.ts.
 *
 * @module
 */

import process from "node:process";
import { writeSync } from "node:fs";
import { EntryType, purge, WAL, WalError } from "../../mod.ts";
import type { Entry } from "../../mod.ts";
import { randInt, rng } from "../helpers.ts";
import { entryData } from "../fixtures/kill_pattern.ts";

const encoder = new TextEncoder();

/** Writes one line to stdout with write(2): when this returns, the line is out of the process. */
function say(line: string): void {
  const bytes = encoder.encode(line + "\n");
  let done = 0;
  while (done < bytes.length) {
    try {
      done += writeSync(1, bytes, done, bytes.length - done);
    } catch (e) {
      if ((e as { code?: string }).code === "EAGAIN") continue;
      process.exit(4); // nobody is listening
    }
  }
}

function parseArgs(argv: string[]): { dir: string; seed: number; ops: number; segment: number } {
  const pos: string[] = [];
  let ops = Infinity;
  let segment = 64 * 1024;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--ops") ops = Number(argv[++i]);
    else if (argv[i] === "--segment-bytes") segment = Number(argv[++i]);
    else pos.push(argv[i]);
  }
  if (pos.length !== 2 || !Number.isFinite(Number(pos[1])) || !(ops >= 0) || !(segment > 0)) {
    throw new Error("usage: writer.ts <dir> <seed> [--ops N] [--segment-bytes N]");
  }
  return { dir: pos[0], seed: Number(pos[1]) >>> 0, ops, segment };
}

const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? process.argv.slice(2);
const { dir, seed, ops, segment } = parseArgs(args);
const random = rng(seed ^ 0x5bd1e995);

let nextId = 1;
let term = 1n;
/** The last index saved (acknowledged or in flight: the writer awaits every group). */
let last = 0n;
/** Raft's commit index: only acknowledged entries, and never above `last`. */
let commit = 0n;
/** The term of every index written, so a snapshot records the right term. */
const terms: bigint[] = [0n];
let snapIndex = 0n;

/** Runs one WAL call between its `begin` and `ack` lines. */
async function call(what: string, fn: () => Promise<void>): Promise<void> {
  const id = nextId++;
  say(`begin ${id} ${what}`);
  try {
    await fn();
  } catch (e) {
    say(`fail ${id} ${e instanceof WalError ? e.code : "ERROR"}`);
    throw e;
  }
  say(`ack ${id}`);
}

/** A save of `n` entries from `first` at the current term. */
function save(wal: WAL, first: bigint, n: number): Promise<void> {
  const entries: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const index = first + BigInt(i);
    entries.push({ term, index, type: EntryType.Normal, data: entryData(seed, index, term) });
    terms[Number(index)] = term;
  }
  const end = first + BigInt(n) - 1n;
  terms.length = Number(end) + 1;
  last = end;
  const state = { term, vote: 1n, commit };
  return call(
    `save ${first} ${end} ${term} ${commit}`,
    () => wal.save(state, entries),
  );
}

async function step(wal: WAL): Promise<void> {
  const roll = random();
  if (roll < 0.55) {
    await save(wal, last + 1n, randInt(random, 1, 20));
    commit = last - BigInt(randInt(random, 0, Math.min(10, Number(last - commit))));
  } else if (roll < 0.7) {
    const group: Promise<void>[] = [];
    for (let k = randInt(random, 2, 5); k > 0; k--) {
      group.push(save(wal, last + 1n, randInt(random, 1, 8)));
    }
    await Promise.all(group);
  } else if (roll < 0.78) {
    // A new leader overwrites the uncommitted tail (raft never rewinds below commit).
    term++;
    const from = commit + 1n + BigInt(randInt(random, 0, Number(last - commit)));
    await save(wal, from, randInt(random, 1, 10));
  } else if (roll < 0.86) {
    await call("cut", () => wal.cut());
  } else if (roll < 0.94) {
    if (commit > snapIndex) {
      const index = commit;
      const snap = {
        index,
        term: terms[Number(index)],
        confState: {
          voters: [1n],
          learners: [],
          votersOutgoing: [],
          learnersNext: [],
          autoLeave: false,
        },
      };
      await call(`snap ${index} ${snap.term}`, () => wal.saveSnapshot(snap));
      snapIndex = index;
    }
  } else if (snapIndex > 0n) {
    await call(`release ${snapIndex}`, () => wal.releaseLockTo(snapIndex));
    const keep = randInt(random, 1, 3);
    await call(`purge ${keep}`, async () => {
      await purge(dir, { keep });
    });
  }
}

try {
  const wal = await WAL.create(dir, encoder.encode("faults"), { segmentSizeBytes: segment });
  say(`ready ${seed}`);
  for (let i = 0; i < ops; i++) await step(wal);
  await wal.close();
  say("done");
} catch (e) {
  const msg = e instanceof WalError ? `${e.code}: ${e.message}` : String(e);
  say(`error ${msg.replaceAll("\n", " ")}`);
  process.exit(3);
}
