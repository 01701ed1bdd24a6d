/**
 * Streaming replay (`wal.stream()` / `wal.entries()`) returns exactly what readAll returns,
 * on histories with raft overwrites across segments, from every snapshot, in both modes.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { genScript } from "../compat/gen_script.ts";
import { runScript } from "../compat/script.ts";
import { type Entry, type FileSystem, purge, verify, WAL } from "../mod.ts";
import { defaultFileSystem } from "../src/fs/default.ts";
import { Decoder } from "../src/segment/decoder.ts";
import { readdir, readFile, rm, truncate } from "node:fs/promises";
import { CrashFileSystem } from "../src/fs/crash.ts";
import { withTempDir, wrapFiles } from "./helpers.ts";
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

  /** The indexes {@link fortyEntries} writes. */
  const ONE_TO_40 = Array.from({ length: 40 }, (_, k) => BigInt(k + 1));

  /** A WAL of 40 entries of 200 bytes in 4 KiB segments (several segments). */
  async function fortyEntries(dir: string): Promise<void> {
    const wal = await WAL.create(dir, undefined, { segmentSizeBytes: 4096 });
    for (let i = 1n; i <= 40n; i++) {
      await wal.save({ term: 1n, vote: 1n, commit: i }, [
        { term: 1n, index: i, type: 0, data: new Uint8Array(200).fill(Number(i)) },
      ]);
    }
    await wal.close();
  }

  /** The default file system, counting the files open through it. */
  async function countingFs(): Promise<{ fs: FileSystem; open: () => number }> {
    let open = 0;
    const inner = await defaultFileSystem();
    const fs = wrapFiles(inner, (f) => ({
      close: async () => {
        await f.close();
        open--;
      },
    }));
    const counted: FileSystem = {
      ...fs,
      open: async (p, o) => {
        const f = await fs.open(p, o);
        open++;
        return f;
      },
    };
    return { fs: counted, open: () => open };
  }

  test("in write mode, saves during the iteration append after the log, and the stream yields the log as it was", async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      await fortyEntries(dir);
      const w = await WAL.open(dir, undefined, { segmentSizeBytes: 4096 });
      const seen: bigint[] = [];
      for await (const e of w.entries()) {
        seen.push(e.index);
        assert.equal(e.data[0], Number(e.index)); // the replayed entry, not one saved since
        if (e.index === 5n) {
          // an append, then an overwrite of index 3 onwards: neither changes the stream
          await w.save({ term: 1n, vote: 1n, commit: 41n }, [
            { term: 1n, index: 41n, type: 0, data: new Uint8Array([41]) },
          ]);
          await w.save({ term: 2n, vote: 1n, commit: 3n }, [
            { term: 2n, index: 3n, type: 0, data: new Uint8Array([103]) },
            { term: 2n, index: 4n, type: 0, data: new Uint8Array([104]) },
          ]);
          await w.cut(); // a new segment, and the old tail truncated, mid-iteration
        }
      }
      assert.deepEqual(seen, ONE_TO_40);
      await w.close();
      const r = await WAL.openForRead(dir);
      const all = await collect(r.entries());
      await r.close();
      assert.deepEqual(all.map((e) => [e.term, e.index]), [[1n, 1n], [1n, 2n], [2n, 3n], [2n, 4n]]);
      assert.deepEqual(all[2].data, new Uint8Array([103]));
    });
  });

  test("a stream never iterated leaves the WAL ready to save, and close() releases every file", async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      await fortyEntries(dir);
      const { fs, open } = await countingFs();
      const w = await WAL.open(dir, undefined, { segmentSizeBytes: 4096, fs });
      const { state } = await w.stream(); // the entries are never iterated
      assert.equal(state.commit, 40n);
      await w.save({ term: 1n, vote: 1n, commit: 41n }, [
        { term: 1n, index: 41n, type: 0, data: new Uint8Array([41]) },
      ]);
      await w.close();
      assert.equal(open(), 0, "files left open after close()");
      // and the segments' locks are gone: another writer opens them
      const again = await WAL.open(dir, undefined, { segmentSizeBytes: 4096 });
      const { entries } = await again.readAll();
      assert.equal(entries.length, 41);
      await again.close();

      const r = await WAL.openForRead(dir, undefined, { fs });
      await r.stream();
      await r.close();
      assert.equal(open(), 0, "read mode: files left open after close()");
    });
  });

  test("a paused iteration throws CLOSED at its next step after close(), in both modes", async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      await fortyEntries(dir);
      for (const write of [true, false]) {
        const { fs, open } = await countingFs();
        const options = { segmentSizeBytes: 4096, fs };
        const wal = write ? await WAL.open(dir, undefined, options) : await WAL.openForRead(
          dir,
          undefined,
          options,
        );
        const it = (await wal.stream()).entries[Symbol.asyncIterator]();
        assert.equal((await it.next()).value?.index, 1n);
        assert.equal((await it.next()).value?.index, 2n);
        await wal.close();
        await assert.rejects(it.next(), { name: "WalError", code: "CLOSED" });
        assert.equal(open(), 0, `write=${write}: files left open`);
      }
    });
  });

  test("in read mode the stream reads through the files open since openForRead: a segment purged meanwhile still streams", async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      await fortyEntries(dir);
      const r = await WAL.openForRead(dir);
      const names = (await readdir(dir)).filter((n) => n.endsWith(".wal")).sort();
      assert.ok(names.length > 2);
      await rm(join(dir, names[0])); // another process purges the oldest segment
      const all = await collect(r.entries());
      assert.deepEqual(
        all.map((e) => e.index),
        ONE_TO_40,
      );
      await r.close();
    });
  });

  test("in write mode, releaseLockTo and purge during the iteration do not cut the stream short", async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      await fortyEntries(dir);
      const w = await WAL.open(dir, undefined, { segmentSizeBytes: 4096 });
      const seen: bigint[] = [];
      for await (const e of w.entries()) {
        seen.push(e.index);
        if (e.index === 2n) {
          await w.releaseLockTo(40n);
          const removed = await purge(dir, { keep: 1 });
          assert.ok(removed.length > 1, `purged ${removed.length}`);
        }
      }
      assert.deepEqual(seen, ONE_TO_40);
      await w.close();
    });
  });

  test("a replay stream is iterable once", async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      await fortyEntries(dir);
      const wal = await WAL.openForRead(dir);
      const { entries } = await wal.stream();
      assert.equal((await collect(entries)).length, 40);
      assert.throws(() => entries[Symbol.asyncIterator](), { code: "INVALID_ARGUMENT" });
      await wal.close();
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
