/**
 * Streaming replay (`wal.stream()` / `wal.entries()`) returns exactly what readAll returns,
 * on histories with raft overwrites across segments, from every snapshot, in both modes.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { genScript } from "../compat/gen_script.ts";
import { runScript } from "../compat/script.ts";
import { type Entry, WAL } from "../mod.ts";
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
