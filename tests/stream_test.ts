/**
 * Streaming replay (`wal.stream()` / `wal.entries()`) returns exactly what readAll returns,
 * on histories with raft overwrites across segments, from every snapshot, in both modes.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { genScript } from "../compat/gen_script.ts";
import { runScript } from "../compat/script.ts";
import { type Entry, verify, WAL } from "../mod.ts";
import { Decoder } from "../src/segment/decoder.ts";
import { readdir, readFile, truncate } from "node:fs/promises";
import { CrashFileSystem } from "../src/fs/crash.ts";
import { withTempDir } from "./helpers.ts";
import { join } from "node:path";

async function collect(it: AsyncIterable<Entry>): Promise<Entry[]> {
  const out: Entry[] = [];
  for await (const e of it) out.push(e);
  return out;
}

describe("streaming replay", () => {
  for (const seed of [21, 22, 23, 24]) {
    test(`equals readAll from every snapshot (random history ${seed}, overwrites across segments)`, async () => {
      const script = genScript(seed, 3000, seed % 2 === 0, 120);
      const fs = new CrashFileSystem(seed);
      const opts = { fs, segmentSizeBytes: 3000 };
      await runScript("/wal", script, opts);
      const snaps = [{ index: 0n, term: 0n }];
      for (const op of script.ops) {
        if (op.op === "snapshot") snaps.push({ index: BigInt(op.index), term: BigInt(op.term) });
      }
      assert.ok((await fs.readDir("/wal")).filter((n) => n.endsWith(".wal")).length >= 3);
      for (const snap of snaps) {
        const a = await WAL.openForRead("/wal", snap, opts);
        const all = await a.readAll();
        await a.close();
        const b = await WAL.openForRead("/wal", snap, opts);
        const s = await b.stream();
        assert.deepEqual(s.state, all.state);
        assert.deepEqual(s.metadata, all.metadata);
        assert.deepEqual(await collect(s.entries), all.entries, `from snapshot ${snap.index}`);
        await b.close();
      }
    });
  }

  test("segments read in windows: records across window boundaries and larger than a window", async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      // 40 MB segments: a first window of 1 MiB, then 4 MiB ones; entries of 1 B to 9 MiB
      const wal = await WAL.create(dir, undefined, { segmentSizeBytes: 40_000_000 });
      const sizes = [1, 300_000, 9 << 20, 700_000, 5, 4 << 20, 123_457, 3 << 20, 1 << 20, 17];
      const saved: Entry[] = [];
      let index = 1n;
      for (let round = 0; round < 3; round++) {
        for (const size of sizes) {
          const data = new Uint8Array(size).map((_, i) => (i * 31 + Number(index)) & 0xff);
          const e: Entry = { term: 1n, index, type: 0, data };
          await wal.save({ term: 1n, vote: 1n, commit: index }, [e]);
          saved.push(e);
          index++;
        }
        // a raft overwrite reaching back across a window boundary
        const back = index - 4n;
        const e: Entry = { term: 2n, index: back, type: 0, data: new Uint8Array([round]) };
        await wal.save({ term: 2n, vote: 1n, commit: back }, [e]);
        saved.length = Number(back) - 1;
        saved.push(e);
        index = back + 1n;
      }
      await wal.close();
      const a = await WAL.openForRead(dir);
      const all = await a.readAll();
      await a.close();
      assert.deepEqual(all.entries, saved);
      const b = await WAL.openForRead(dir);
      assert.deepEqual(await collect(b.entries()), saved);
      await b.close();
      // a torn write deep in the last segment is found at its file offset, past the windows
      const names = (await readdir(dir)).filter((n) => n.endsWith(".wal")).sort();
      const last = join(dir, names[names.length - 1]);
      const bytes = new Uint8Array(await readFile(last));
      const d = new Decoder();
      d.begin(last, bytes, true);
      const records: { start: number; end: number }[] = [];
      for (let at = 0; d.next(); at = d.offset) {
        if (d.record.type === 4) d.updateCRC(d.record.crc);
        records.push({ start: at, end: d.offset });
      }
      // the last large record that starts beyond the second window
      let victim: number | undefined;
      for (const r of records) if (r.start > (6 << 20) && r.end - r.start > 8192) victim = r.start;
      assert.ok(victim !== undefined, "a large record starts beyond the second window");
      await truncate(last, victim + 4096 + 100);
      const err = await WAL.open(dir).then((w) => w.readAll()).then(
        () => assert.fail("a torn tail must stop a writer"),
        (e) => e,
      );
      assert.equal(err.code, "UNEXPECTED_EOF");
      assert.equal(err.offset, victim);
      assert.equal((await verify(dir)).tornTail?.offset, victim);
    });
  });

  test("in write mode, saves wait for the stream to end, then append after the log", async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      const wal = await WAL.create(dir, undefined, { segmentSizeBytes: 4096 });
      for (let i = 1n; i <= 40n; i++) {
        await wal.save({ term: 1n, vote: 1n, commit: i }, [
          { term: 1n, index: i, type: 0, data: new Uint8Array(200).fill(Number(i)) },
        ]);
      }
      await wal.close();
      const w = await WAL.open(dir, undefined, { segmentSizeBytes: 4096 });
      const seen: bigint[] = [];
      for await (const e of w.entries()) {
        seen.push(e.index);
        if (e.index === 5n) {
          await assert.rejects(w.save({ term: 1n, vote: 1n, commit: 5n }, []), {
            code: "INVALID_ARGUMENT",
          });
        }
        if (e.index === 10n) break; // breaking off still ends replay
      }
      assert.deepEqual(seen, Array.from({ length: 10 }, (_, k) => BigInt(k + 1)));
      await w.save({ term: 2n, vote: 1n, commit: 41n }, [
        { term: 2n, index: 41n, type: 0, data: new Uint8Array([41]) },
      ]);
      await w.close();
      const r = await WAL.openForRead(dir);
      const all = await collect(r.entries());
      await r.close();
      assert.equal(all.length, 41);
      assert.equal(all[40].term, 2n);
    });
  });

  test("stream checks the whole log before the first entry: corruption throws up front", async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      const wal = await WAL.create(dir, undefined, { segmentSizeBytes: 4096 });
      for (let i = 1n; i <= 40n; i++) {
        await wal.save({ term: 1n, vote: 1n, commit: i }, [
          { term: 1n, index: i, type: 0, data: new Uint8Array(200).fill(1) },
        ]);
      }
      await wal.close();
      const { readdir, readFile, writeFile } = await import("node:fs/promises");
      const names = (await readdir(dir)).filter((n) => n.endsWith(".wal")).sort();
      const last = join(dir, names[names.length - 2]);
      const bytes = await readFile(last);
      bytes[600] ^= 1;
      await writeFile(last, bytes);
      const r = await WAL.openForRead(dir);
      await assert.rejects(r.stream(), { code: "CRC_MISMATCH" });
      await r.close();
    });
  });
});
