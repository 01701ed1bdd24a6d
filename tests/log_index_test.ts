/**
 * The indexed log (src/raft/log_index.ts): a WAL indexed from a snapshot answers every
 * entry and term as `readAll` of the same WAL gives them, across segments and raft
 * overwrites, with raft's `limitSize` on `entries`, a block cache that stays within its
 * bound, and a few bytes of index per entry.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Entry, WAL } from "../mod.ts";
import { defaultFileSystem } from "../src/fs/default.ts";
import { IndexedLog } from "../src/raft/log_index.ts";
import { entrySize } from "../src/segment/messages.ts";
import { BLOCK_BYTES } from "../src/raft/record_reader.ts";
import { rng, SWEEP_SEED, withTempDir } from "./helpers.ts";

const enc = new TextEncoder();

/** A WAL of `batches` saves over small segments, some overwriting the tail, a snapshot at 40. */
async function write(dir: string, seed: number, batches: number): Promise<void> {
  const r = rng(seed);
  const wal = await WAL.create(dir, enc.encode("meta"), { segmentSizeBytes: 8192 });
  let next = 1n;
  let term = 1n;
  for (let b = 0; b < batches; b++) {
    if (r() < 0.1) term++;
    if (next > 5n && r() < 0.1) next -= BigInt(1 + Math.floor(r() * 4)); // a new leader's tail
    const es: Entry[] = [];
    for (let k = 0, n = 1 + Math.floor(r() * 6); k < n; k++) {
      const size = r() < 0.05 ? 20_000 : Math.floor(r() * 300); // some records span blocks
      es.push({ term, index: next++, type: 0, data: enc.encode(`${next}:`.padEnd(size, "x")) });
    }
    await wal.save({ term, vote: 1n, commit: next - 1n }, es);
    if (next > 40n && next < 48n) await wal.saveSnapshot({ index: 40n, term: 1n });
  }
  await wal.close();
}

function same(a: Entry, b: Entry, what: string): void {
  assert.deepEqual(
    { term: a.term, index: a.index, type: a.type, data: Buffer.from(a.data).toString() },
    { term: b.term, index: b.index, type: b.type, data: Buffer.from(b.data).toString() },
    what,
  );
}

describe("IndexedLog", () => {
  test(`serves the entries and terms readAll gives, from 0 and from a snapshot (seed ${SWEEP_SEED})`, async () => {
    await withTempDir(async (tmp) => {
      const fs = await defaultFileSystem();
      for (let h = 0; h < 4; h++) {
        const dir = join(tmp, `wal-${h}`);
        const seed = (SWEEP_SEED + h) >>> 0;
        await write(dir, seed, 120);
        for (const snap of [{ index: 0n, term: 0n }, { index: 40n, term: 1n }]) {
          const wal = await WAL.openForRead(dir, snap);
          const { entries } = await wal.readAll();
          await wal.close();
          const log = await IndexedLog.open(fs, dir, snap, 4 * BLOCK_BYTES);
          try {
            const what = `seed ${seed}, from ${snap.index}`;
            assert.equal(log.index.firstIndex, snap.index + 1n, what);
            assert.equal(log.index.lastIndex, snap.index + BigInt(entries.length), what);
            assert.equal(log.index.term(snap.index), snap.term, what);
            for (const e of entries) {
              same(await log.entry(e.index), e, `${what}: entry ${e.index}`);
              assert.equal(log.index.term(e.index), e.term, `${what}: term ${e.index}`);
            }
            assert.ok(log.heldBytes - log.index.heldBytes <= 4 * BLOCK_BYTES, "cache bound");
            // limitSize: whole ranges, and a budget that stops early but always gives one
            const lo = snap.index + 1n;
            const hi = log.index.lastIndex + 1n;
            const all = await log.entries(lo, hi);
            assert.equal(all.length, entries.length);
            const budget = entrySize(entries[0]) + entrySize(entries[1]) - 1;
            assert.equal((await log.entries(lo, hi, budget)).length, 1);
            assert.equal((await log.entries(lo, hi, 0)).length, 1);
            assert.throws(() => log.index.location(snap.index), { code: "COMPACTED" } as never);
          } finally {
            await log.close();
          }
        }
      }
    });
  });

  test("indexes 100,000 entries in at most 8 bytes each", async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      const wal = await WAL.create(dir, undefined, { segmentSizeBytes: 1 << 20 });
      const data = enc.encode("x".repeat(20));
      for (let i = 1; i <= 100_000; i += 1000) {
        const es = Array.from({ length: 1000 }, (_, k) => ({
          term: 1n,
          index: BigInt(i + k),
          type: 0,
          data,
        }));
        await wal.save({ term: 1n, vote: 1n, commit: BigInt(i + 999) }, es);
      }
      await wal.close();
      const log = await IndexedLog.open(await defaultFileSystem(), dir, { index: 0n, term: 0n }, 0);
      try {
        assert.ok(log.index.heldBytes / 100_000 <= 8, `${log.index.heldBytes / 100_000} B/entry`);
        same(await log.entry(77_777n), {
          term: 1n,
          index: 77_777n,
          type: 0,
          data,
        }, "entry 77777");
      } finally {
        await log.close();
      }
    });
  });
});
