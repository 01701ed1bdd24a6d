/**
 * Generates random raft-like histories as scripts for compat/script.ts and the Go harness.
 *
 * @module
 */

import { randBytes, randInt, rng } from "../tests/helpers.ts";
import { type JsonEntry, type Op, type Script, toHex } from "./script.ts";

const U64_MAX = (1n << 64n) - 1n;

/** A random raft-like history: saves, overwrites, snapshots, reopens, lock releases. */
export function genScript(
  seed: number,
  segmentSizeBytes: number,
  big: boolean,
  steps = 60,
  sizes = [0, 1, 7, 8, 9, 100, 250, 1000, 3000],
): Script {
  const r = rng(seed);
  const base = big ? U64_MAX - 100_000n : 0n; // terms above 2^53
  let term = base + 1n;
  let index = 0n;
  let commit = 0n;
  let vote = big ? (1n << 60n) + 7n : 1n;
  const snaps: { index: bigint; term: bigint }[] = [{ index: 0n, term: 0n }];
  const termAt = new Map<bigint, bigint>();
  const ops: Op[] = [];
  for (let step = 0; step < steps; step++) {
    const roll = r();
    if (roll < 0.08 && commit > snaps[snaps.length - 1].index) {
      const snap = { index: commit, term: termAt.get(commit) ?? term };
      snaps.push(snap);
      ops.push({ op: "snapshot", index: String(snap.index), term: String(snap.term) });
      continue;
    }
    if (roll < 0.12) {
      const s = snaps[randInt(r, 0, snaps.length - 1)];
      ops.push({ op: "reopen", snapIndex: String(s.index), snapTerm: String(s.term) });
      continue;
    }
    if (roll < 0.15) {
      ops.push({ op: "releaseLockTo", index: String(commit) });
      continue;
    }
    if (roll < 0.2) {
      term++;
      vote = vote + 1n;
    }
    // raft may rewrite uncommitted entries: step back, never below commit or a snapshot
    const floor = commit > snaps[snaps.length - 1].index ? commit : snaps[snaps.length - 1].index;
    if (r() < 0.1 && index > floor) index -= BigInt(randInt(r, 1, Number(index - floor)));
    const entries: JsonEntry[] = [];
    const n = r() < 0.15 ? 0 : randInt(r, 1, 6);
    for (let i = 0; i < n; i++) {
      index++;
      termAt.set(index, term);
      const t = r();
      entries.push({
        term: String(term),
        index: String(index),
        type: t < 0.8 ? 0 : t < 0.9 ? 1 : 2,
        data: toHex(randBytes(r, sizes[randInt(r, 0, sizes.length - 1)])),
      });
    }
    if (index > 1n && r() < 0.7) commit = index - 1n;
    const state = r() < 0.1
      ? undefined
      : { term: String(term), vote: String(vote), commit: String(commit) };
    ops.push({ op: "save", state, entries });
  }
  return { segmentSizeBytes, metadata: toHex(randBytes(r, randInt(r, 0, 40))), ops };
}
