/**
 * Observability events and the slow-fsync warning; purge of old segments with etcd's
 * lock-respecting semantics.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile, truncate } from "node:fs/promises";
import { join } from "node:path";
import { type Entry, type FileSystem, purge, repair, WAL, type WalEvent } from "../mod.ts";
import { CrashFileSystem } from "../src/fs/crash.ts";
import { walFiles, withWalDir, wrapFiles } from "./helpers.ts";

const entry = (i: bigint, size = 300): Entry => ({
  term: 1n,
  index: i,
  type: 0,
  data: new Uint8Array(size).fill(Number(i % 256n)),
});

/** A file system whose fdatasync takes `ms` milliseconds. */
function slowSync(inner: FileSystem, ms: number): FileSystem {
  return wrapFiles(inner, (f) => ({
    syncData: async () => {
      await new Promise((r) => setTimeout(r, ms));
      await f.syncData();
    },
  }));
}

describe("observability", () => {
  test("events report every fsync, the bytes written, each cut and each repair", async () => {
    const events: WalEvent[] = [];
    const fs = new CrashFileSystem(3);
    const opts = { fs, segmentSizeBytes: 2048, onEvent: (e: WalEvent) => events.push(e) };
    const wal = await WAL.create("/wal", undefined, opts);
    for (let i = 1n; i <= 12n; i++) await wal.save({ term: 1n, vote: 1n, commit: i }, [entry(i)]);
    await wal.close();

    const fsyncs = events.filter((e) => e.type === "fsync");
    assert.ok(fsyncs.some((e) => e.type === "fsync" && e.target === "directory"));
    assert.ok(fsyncs.length >= 12, `only ${fsyncs.length} fsync events for 12 synced saves`);
    assert.ok(fsyncs.every((e) => e.type === "fsync" && e.durationMs >= 0));
    const cuts = events.filter((e) => e.type === "cut");
    const names = (await fs.readDir("/wal")).filter((n) => n.endsWith(".wal")).sort();
    assert.equal(cuts.length, names.length - 1);
    assert.deepEqual(
      cuts.map((e) => e.type === "cut" && e.path),
      names.slice(1).map((n) => `/wal/${n}`),
    );
    // bytes written add up to the records in the segments
    let used = 0;
    const r = await WAL.openForRead("/wal", undefined, { fs });
    await r.readAll();
    await r.close();
    for (const n of names) {
      const f = await fs.open(`/wal/${n}`);
      const bytes = new Uint8Array(await f.size());
      await f.read(bytes, 0);
      await f.close();
      let end = bytes.length;
      while (end > 0 && bytes[end - 1] === 0) end--;
      used += Math.ceil(end / 8) * 8;
    }
    const written = events.reduce((n, e) => n + (e.type === "write" ? e.bytes : 0), 0);
    // create's first records are written before the WAL exists to report them
    assert.ok(written <= used && written > used - 200, `written ${written}, in files ${used}`);

    // a torn tail, repaired, is reported
    const last = `/wal/${names[names.length - 1]}`;
    const f = await fs.open(last, { write: true });
    await f.truncate(100);
    await f.close();
    const repairs: WalEvent[] = [];
    await repair("/wal", { fs, onEvent: (e) => repairs.push(e) });
    assert.deepEqual(
      repairs.filter((e) => e.type === "repair").map((e) => e.type === "repair" && e.path),
      [last],
    );
  });

  test("a slow fsync is logged as a warning; fast ones are not", async () => {
    const warnings: [string, Record<string, unknown>][] = [];
    const logger = { warn: (m: string, d: Record<string, unknown>) => warnings.push([m, d]) };
    const fast = new CrashFileSystem(4);
    const w1 = await WAL.create("/wal", undefined, { fs: fast, logger, slowSyncWarningMs: 1000 });
    await w1.save({ term: 1n, vote: 1n, commit: 1n }, [entry(1n)]);
    await w1.close();
    assert.equal(warnings.length, 0);
    const slow = slowSync(new CrashFileSystem(5), 40);
    const w2 = await WAL.create("/wal", undefined, { fs: slow, logger, slowSyncWarningMs: 20 });
    await w2.save({ term: 1n, vote: 1n, commit: 1n }, [entry(1n)]);
    await w2.close();
    assert.ok(warnings.length >= 2);
    assert.equal(warnings[0][0], "slow fsync");
    assert.ok((warnings[0][1].tookMs as number) >= 20);
  });

  test("a listener that throws does not break the WAL, a repair, or what they write", async () => {
    await withWalDir(async (dir) => {
      const seen: WalEvent[] = [];
      const onEvent = (e: WalEvent) => {
        seen.push(e);
        throw new Error("listener bug");
      };
      const opts = { segmentSizeBytes: 4096, onEvent };
      const wal = await WAL.create(dir, undefined, opts);
      for (let i = 1n; i <= 20n; i++) await wal.save({ term: 1n, vote: 1n, commit: i }, [entry(i)]);
      await wal.close();
      // the listener was called, and threw, for every kind of event the saves cause
      const kinds = (events: WalEvent[]) => [...new Set(events.map((e) => e.type))].sort();
      assert.deepEqual(kinds(seen), ["cut", "fsync", "write"]);
      const names = await walFiles(dir);
      assert.equal(names.length, 2, `segments: ${names}`);
      const r = await WAL.openForRead(dir, undefined, opts);
      const read = await r.readAll();
      await r.close();
      assert.deepEqual(read.entries, Array.from({ length: 20 }, (_, k) => entry(BigInt(k + 1))));
      assert.deepEqual(read.state, { term: 1n, vote: 1n, commit: 20n });

      // a torn tail, repaired with the same listener, is cut off and reported anyway
      const last = join(dir, names[names.length - 1]);
      const bytes = await readFile(last);
      let end = bytes.length;
      while (end > 0 && bytes[end - 1] === 0) end--;
      await truncate(last, end - 4); // inside the last save's hard state record
      seen.length = 0;
      const fixed = await repair(dir, opts);
      assert.equal(fixed.repaired, true);
      assert.deepEqual(
        seen.filter((e) => e.type === "repair").map((e) => e.type === "repair" && e.path),
        [last],
      );
      // the repaired WAL reopens for writing, with the torn hard state gone, and appends
      const again = await WAL.open(dir, undefined, opts);
      const after = await again.readAll();
      await again.save({ term: 1n, vote: 1n, commit: 21n }, [entry(21n)]);
      await again.close();
      assert.deepEqual(after.entries, read.entries);
      assert.deepEqual(after.state, { term: 1n, vote: 1n, commit: 19n });
      const final = await WAL.openForRead(dir, undefined, opts);
      assert.deepEqual((await final.readAll()).entries, [...read.entries, entry(21n)]);
      await final.close();
    });
  });
});

describe("purge", () => {
  test("deletes the oldest segments beyond keep, but never one a writer holds", async () => {
    await withWalDir(async (dir) => {
      const opts = { segmentSizeBytes: 4096 };
      const wal = await WAL.create(dir, undefined, opts);
      for (let i = 1n; i <= 6n; i++) {
        await wal.save({ term: 1n, vote: 1n, commit: i }, [entry(i)]);
        await wal.cut();
      }
      const list = () => walFiles(dir);
      const all = await list();
      assert.equal(all.length, 7); // start indexes 0, 2, 3, 4, 5, 6, 7
      assert.deepEqual(await purge(dir, { ...opts, keep: 2 }), []); // all still locked
      await wal.saveSnapshot({ index: 4n, term: 1n });
      await wal.releaseLockTo(4n); // frees the segments starting at 0 and 2; keeps 3
      assert.deepEqual(await purge(dir, { ...opts, keep: 2 }), all.slice(0, 2));
      assert.deepEqual(await list(), all.slice(2));
      // replay from the snapshot still works
      await wal.close();
      const r = await WAL.openForRead(dir, { index: 4n, term: 1n }, opts);
      assert.deepEqual((await r.readAll()).entries.map((e) => e.index), [5n, 6n]);
      await r.close();
      // with no writer, purge goes down to keep
      assert.deepEqual(await purge(dir, { ...opts, keep: 2 }), all.slice(2, 5));
      assert.deepEqual(await list(), all.slice(5));
      await assert.rejects(purge(dir, { ...opts, keep: 0 }), { code: "INVALID_ARGUMENT" });
    });
  });
});
