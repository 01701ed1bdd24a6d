/**
 * The entry index raft storage will answer from (src/raft/entry_index.ts): thousands of
 * random histories of appends with overwrites, compactions and snapshot resets, checked after
 * every step against a plain model of etcd raft's MemoryStorage (a dummy entry at the
 * offset, then the entries), for every index from below the first to past the last; and the
 * bytes it holds per entry.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { EntryIndex } from "../src/raft/entry_index.ts";
import { FULL_SWEEPS, rng, SWEEP_SEED } from "./helpers.ts";

/** etcd raft's MemoryStorage, entries reduced to index, term and where they lie. */
class Model {
  ents: { index: bigint; term: bigint; segment: number; offset: number }[];
  constructor(index: bigint, term: bigint) {
    this.ents = [{ index, term, segment: -1, offset: -1 }];
  }
  get offset() {
    return this.ents[0].index;
  }
  get last() {
    return this.offset + BigInt(this.ents.length - 1);
  }
  /** MemoryStorage.Append of one entry (callers append in index order). */
  append(e: { index: bigint; term: bigint; segment: number; offset: number }): "ok" | "gap" {
    if (e.index <= this.offset) return "ok";
    const at = Number(e.index - this.offset);
    if (at > this.ents.length) return "gap";
    this.ents.length = at;
    this.ents.push(e);
    return "ok";
  }
  term(i: bigint): bigint | "COMPACTED" | "UNAVAILABLE" {
    if (i < this.offset) return "COMPACTED";
    if (i > this.last) return "UNAVAILABLE";
    return this.ents[Number(i - this.offset)].term;
  }
  compact(i: bigint): "ok" | "COMPACTED" | "UNAVAILABLE" {
    if (i <= this.offset) return "COMPACTED";
    if (i > this.last) return "UNAVAILABLE";
    const k = Number(i - this.offset);
    this.ents = [{ ...this.ents[k], segment: -1, offset: -1 }, ...this.ents.slice(k + 1)];
    return "ok";
  }
}

const code = (f: () => unknown): unknown => {
  try {
    return f();
  } catch (e) {
    return (e as { code?: string }).code ?? e;
  }
};

function check(idx: EntryIndex, m: Model, where: string): void {
  assert.equal(idx.firstIndex, m.offset + 1n, `${where}: firstIndex`);
  assert.equal(idx.lastIndex, m.last, `${where}: lastIndex`);
  assert.equal(idx.length, m.ents.length - 1, `${where}: length`);
  for (let i = m.offset - 2n; i <= m.last + 2n; i++) {
    if (i < 0n) continue;
    assert.equal(code(() => idx.term(i)), m.term(i), `${where}: term(${i})`);
    const want = i <= m.offset ? "COMPACTED" : i > m.last ? "UNAVAILABLE" : (() => {
      const e = m.ents[Number(i - m.offset)];
      return { segment: e.segment, offset: e.offset };
    })();
    assert.deepEqual(code(() => idx.location(i)), want, `${where}: location(${i})`);
  }
}

/** One random history: appends (some overwriting), compactions, resets; checked each step. */
function history(seed: number, steps: number): void {
  const r = rng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const start = r() < 0.3 ? BigInt(int(1, 1000)) : 0n;
  const idx = new EntryIndex(start, start === 0n ? 0n : 3n);
  const m = new Model(start, start === 0n ? 0n : 3n);
  let term = 3n;
  let segment = 0;
  let offset = 0;
  for (let step = 0; step < steps; step++) {
    const where = `seed ${seed}, step ${step}`;
    const x = r();
    if (x < 0.7) {
      // a batch: from the next index, or back over the tail (a new leader's entries)
      if (r() < 0.2) term += BigInt(int(1, 3));
      if (r() < 0.1) [segment, offset] = [segment + 1, 0];
      let from = m.last + 1n;
      if (r() < 0.15) from -= BigInt(int(0, Math.min(8, Number(m.last - m.offset) + 2)));
      if (r() < 0.03) from += 2n; // a gap: refused
      for (let k = 0, n = int(1, 40); k < n; k++) {
        const e = { index: from + BigInt(k), term, segment, offset };
        offset += int(16, 4000);
        const want = m.append(e);
        const got = code(() => idx.put(e.index, e.term, e.segment, e.offset));
        assert.equal(
          got === undefined ? "ok" : got,
          want === "gap" ? "SLICE_OUT_OF_RANGE" : "ok",
          where,
        );
        if (want === "gap") break;
      }
    } else if (x < 0.9) {
      const span = Number(m.last - m.offset);
      const at = m.offset + BigInt(int(-1, span + 2));
      if (at >= 0n) {
        assert.equal(
          code(() => idx.compact(at)) ?? "ok",
          m.compact(at),
          `${where}: compact(${at})`,
        );
      }
    } else if (x < 0.93) {
      const at = m.last + BigInt(int(0, 50));
      term += 1n;
      idx.reset(at, term);
      m.ents = [{ index: at, term, segment: -1, offset: -1 }];
    }
    check(idx, m, where);
  }
}

describe("EntryIndex", () => {
  const histories = FULL_SWEEPS ? 1000 : 200;
  test(`answers as etcd raft's MemoryStorage over ${histories} random histories (seed ${SWEEP_SEED})`, () => {
    for (let h = 0; h < histories; h++) history((SWEEP_SEED + h * 0x9e3779b9) >>> 0, 60);
  });

  test("holds at most 8 bytes per entry for a long log (one segment run, a few term runs)", () => {
    const n = 1_000_000;
    const idx = new EntryIndex(0n, 0n);
    let off = 0;
    for (let i = 1; i <= n; i++) {
      idx.put(BigInt(i), BigInt(1 + Math.floor(i / 250_000)), Math.floor(i / 100_000), off);
      off = (off + 300) % 64_000_000;
    }
    const perEntry = idx.heldBytes / n;
    assert.ok(perEntry <= 8, `${perEntry} bytes per entry`);
    idx.compact(BigInt(n / 2));
    assert.equal(idx.term(BigInt(n / 2)), 3n);
    assert.deepEqual(idx.location(BigInt(n)), {
      segment: 10,
      offset: ((n - 1) * 300) % 64_000_000,
    });
  });

  test("an offset past 32 bits is refused, not wrapped", () => {
    const idx = new EntryIndex(0n, 0n);
    assert.throws(
      () => idx.put(1n, 1n, 0, 2 ** 32),
      (e: { code?: string }) => e.code === "INVALID_ARGUMENT",
    );
  });
});
