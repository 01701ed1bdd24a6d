/**
 * Group commit: saves made while others are in flight are written together and synced
 * with one fdatasync, in call order, and each resolves only once its bytes are durable.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type Entry, type FileSystem, WAL, type WalFile } from "../mod.ts";
import { CrashFileSystem } from "../src/fs/crash.ts";
import { wrapFiles } from "./helpers.ts";

/**
 * Wraps a file system to count writes and fdatasyncs. With `blocking`, its files also offer
 * the blocking calls (counted apart), as the runtime adapters do.
 */
function counting(inner: FileSystem, blocking = false) {
  const counts = { writes: 0, syncs: 0, blockingWrites: 0, blockingSyncs: 0 };
  // writes of records to segments: not the zeros written ahead of them, nor spare files
  const counted = (f: WalFile, d: Uint8Array) => f.path.endsWith(".wal") && d.some((b) => b !== 0);
  const fs = wrapFiles(inner, (f) => ({
    write: (d, p) => (counted(f, d) && counts.writes++, f.write(d, p)),
    syncData: () => (counts.syncs++, f.syncData()),
    sync: () => (counts.syncs++, f.sync()),
    ...(blocking
      ? {
        writeSync: (d: Uint8Array, p: number) => (
          counted(f, d) && counts.blockingWrites++, f.writeSync!(d, p)
        ),
        syncDataSync: () => (counts.blockingSyncs++, f.syncDataSync!()),
      }
      : {}),
  }));
  return { fs, counts };
}

const entry = (i: bigint): Entry => ({
  term: 1n,
  index: i,
  type: 0,
  data: new Uint8Array([Number(i % 256n)]),
});

describe("group commit", () => {
  for (const blocking of [false, true]) {
    test(
      `64 concurrent saves share a few writes and fdatasyncs, and replay in call order (${
        blocking ? "blocking" : "asynchronous"
      } calls)`,
      async () => {
        const crash = new CrashFileSystem(5);
        const { fs, counts } = counting(crash, blocking);
        const wal = await WAL.create("/wal", undefined, {
          fs,
          segmentSizeBytes: 1 << 20,
          blocking,
        });
        const before = { ...counts };
        const saves: Promise<void>[] = [];
        for (let i = 1n; i <= 64n; i++) {
          saves.push(wal.save({ term: 1n, vote: 1n, commit: i - 1n }, [entry(i)]));
        }
        await Promise.all(saves);
        const writes = counts.writes - before.writes + counts.blockingWrites -
          before.blockingWrites;
        const syncs = counts.syncs - before.syncs + counts.blockingSyncs - before.blockingSyncs;
        assert.ok(syncs <= 2 && writes <= 2, `64 saves took ${writes} writes and ${syncs} syncs`);
        // the appends took the kind of call asked for
        assert.equal(counts.blockingWrites > before.blockingWrites, blocking);
        assert.equal(counts.writes > before.writes, !blocking);
        // everything resolved was synced: it survives a crash right now
        crash.crash();
        const again = await WAL.open("/wal", undefined, { fs: crash });
        const { entries, state } = await again.readAll();
        assert.deepEqual(
          entries.map((e) => e.index),
          Array.from({ length: 64 }, (_, k) => BigInt(k + 1)),
        );
        assert.equal(state.commit, 63n);
        await again.close();
      },
    );
  }

  test("a call made between saves keeps its place: saves after a cut land after it", async () => {
    const fs = new CrashFileSystem(6);
    const wal = await WAL.create("/wal", undefined, { fs, segmentSizeBytes: 1 << 20 });
    const a = wal.save({ term: 1n, vote: 1n, commit: 0n }, [entry(1n)]);
    const c = wal.cut();
    const b = wal.save({ term: 1n, vote: 1n, commit: 1n }, [entry(2n)]);
    await Promise.all([a, b, c]);
    await wal.close();
    // the cut names its segment for the next index: entry 2 must be in it
    assert.deepEqual((await fs.readDir("/wal")).filter((n) => n.endsWith(".wal")).sort(), [
      "0000000000000000-0000000000000000.wal",
      "0000000000000001-0000000000000002.wal",
    ]);
    const r = await WAL.openForRead("/wal", undefined, { fs });
    assert.deepEqual((await r.readAll()).entries.map((e) => e.index), [1n, 2n]);
    await r.close();
  });

  test("grouped saves cut segments exactly where saves made one at a time do", async () => {
    const run = async (concurrent: boolean) => {
      const fs = new CrashFileSystem(7);
      const wal = await WAL.create("/wal", undefined, { fs, segmentSizeBytes: 2048 });
      const saves: Promise<void>[] = [];
      for (let i = 1n; i <= 60n; i++) {
        const p = wal.save({ term: 1n, vote: 1n, commit: i - 1n }, [
          { term: 1n, index: i, type: 0, data: new Uint8Array(100).fill(Number(i)) },
        ]);
        if (concurrent) saves.push(p);
        else await p;
      }
      await Promise.all(saves);
      await wal.close();
      const names = (await fs.readDir("/wal")).filter((n) => n.endsWith(".wal")).sort();
      const sizes = [];
      for (const n of names) {
        const f = await fs.open(`/wal/${n}`);
        sizes.push(await f.size());
        await f.close();
      }
      return { names, sizes };
    };
    const one = await run(false);
    assert.ok(one.names.length >= 3);
    assert.deepEqual(await run(true), one);
  });

  test("when the group's write fails, every save in it rejects and the WAL closes", async () => {
    const crash = new CrashFileSystem(8);
    const wal = await WAL.create("/wal", undefined, { fs: crash });
    crash.crashAfter(1);
    const results = await Promise.allSettled(
      [1n, 2n, 3n].map((i) => wal.save({ term: 1n, vote: 1n, commit: 0n }, [entry(i)])),
    );
    assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected", "rejected"]);
    await assert.rejects(wal.save({ term: 1n, vote: 1n, commit: 0n }, [entry(4n)]), {
      code: "CLOSED",
    });
  });
});
