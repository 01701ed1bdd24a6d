/**
 * RaftStorage on the runtime's real file system: reads across segments, across cuts made
 * while reading, on the tail being written and after compaction and purge; group-committed
 * appends with reads in flight; boot with repair; locks; errors; memory held per entry.
 * (The model-based test, raft_storage_model_test.ts, checks every answer over random
 * histories; these pin the situations it reaches only by chance.)
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, rm, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { type Entry, type HardState, WalError, type WalEvent } from "../mod.ts";
import { RaftStorage } from "../raft.ts";
import { randBytes, rng, withTempDir } from "./helpers.ts";

const enc = new TextEncoder();

function entry(index: bigint, term = 1n, data: Uint8Array = enc.encode(`entry ${index}`)): Entry {
  return { index, term, type: 0, data };
}

function state(commit: bigint, term = 1n): HardState {
  return { term, vote: 1n, commit };
}

async function segments(dir: string): Promise<string[]> {
  return (await readdir(join(dir, "member", "wal"))).filter((n) => n.endsWith(".wal")).sort();
}

async function code(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    if (e instanceof WalError) return e.code;
    throw e;
  }
  return "no error";
}

/** Appends entries 1..n in batches, each entry's data naming it. */
async function fill(s: RaftStorage, n: number, batch = 10, size = 100): Promise<void> {
  const r = rng(n);
  for (let i = 1; i <= n; i += batch) {
    const es: Entry[] = [];
    for (let k = i; k < i + batch && k <= n; k++) {
      const data = randBytes(r, size);
      data.set(enc.encode(`#${k}#`));
      es.push(entry(BigInt(k), 1n, data));
    }
    await s.append(es, state(BigInt(Math.min(n, i + batch - 1))));
  }
}

function named(e: Entry): number {
  return Number(/^#(\d+)#/.exec(new TextDecoder().decode(e.data.subarray(0, 16)))![1]);
}

describe("RaftStorage reads", () => {
  test("serves entries across many segments, before and after reopening", () =>
    withTempDir(async (dir) => {
      const s = await RaftStorage.create(dir, enc.encode("m"), { segmentSizeBytes: 4096 });
      await fill(s, 500);
      const all = await s.entries(1n, 501n);
      assert.deepEqual(all.map(named), Array.from({ length: 500 }, (_, i) => i + 1));
      await s.close();
      assert.ok((await segments(dir)).length > 10, "the log spans many segments");
      const again = await RaftStorage.open(dir);
      assert.deepEqual(
        (await again.entries(1n, 501n)).map((e) => [e.index, e.term, named(e)]),
        all.map((e) => [e.index, e.term, named(e)]),
      );
      assert.deepEqual(again.initialState().hardState, state(500n));
      assert.deepEqual(new TextDecoder().decode(again.metadata), "m");
      await again.close();
    }));

  test("reads entries just appended to the tail whose block it had cached", () =>
    withTempDir(async (dir) => {
      const s = await RaftStorage.create(dir, undefined, { cacheBytes: 1 << 20 });
      for (let i = 1n; i <= 300n; i++) {
        await s.append([entry(i)], state(i));
        // the block holding the tail is read (and cached) before the next append lands in it
        const [e] = await s.entries(i, i + 1n);
        assert.equal(new TextDecoder().decode(e.data), `entry ${i}`);
      }
      assert.equal((await s.entries(1n, 301n)).length, 300);
      await s.close();
    }));

  test("reads an entry larger than a cache block, and one spanning two blocks", () =>
    withTempDir(async (dir) => {
      const s = await RaftStorage.create(dir, undefined, { cacheBytes: 0 });
      const r = rng(5);
      const big = randBytes(r, 200_000);
      const odd = randBytes(r, 65_000);
      await s.append([entry(1n, 1n, odd), entry(2n, 1n, big), entry(3n, 1n, odd)], state(3n));
      const got = await s.entries(1n, 4n);
      assert.deepEqual(got.map((e) => e.data), [odd, big, odd]);
      await s.close();
    }));

  test("gives at least one entry under maxBytes, and stops before the one that passes it", () =>
    withTempDir(async (dir) => {
      const s = await RaftStorage.create(dir);
      await s.append([1n, 2n, 3n, 4n].map((i) => entry(i, 1n, new Uint8Array(100))), state(4n));
      // each entry encodes to 108 bytes: 2 + 2 + 2 + 2 + 100
      assert.equal((await s.entries(1n, 5n, 0)).length, 1);
      assert.equal((await s.entries(1n, 5n, 215)).length, 1);
      assert.equal((await s.entries(1n, 5n, 216)).length, 2);
      assert.equal((await s.entries(1n, 5n)).length, 4);
      await s.close();
    }));

  test("answers COMPACTED below the first index and UNAVAILABLE past the last", () =>
    withTempDir(async (dir) => {
      const s = await RaftStorage.create(dir);
      assert.equal(await code(s.entries(1n, 1n)), "UNAVAILABLE"); // only the dummy entry
      assert.equal(s.term(0n), 0n);
      assert.equal(await code(() => s.term(1n)), "UNAVAILABLE");
      await fill(s, 20);
      await s.compact(10n);
      assert.equal(s.firstIndex(), 11n);
      assert.equal(s.term(10n), 1n);
      assert.equal(await code(() => s.term(9n)), "COMPACTED");
      assert.equal(await code(s.entries(10n, 12n)), "COMPACTED");
      assert.equal(await code(s.entries(11n, 22n)), "UNAVAILABLE");
      assert.equal(await code(s.compact(10n)), "COMPACTED");
      assert.equal(await code(s.compact(21n)), "UNAVAILABLE");
      assert.deepEqual((await s.entries(11n, 21n)).map(named), [
        11,
        12,
        13,
        14,
        15,
        16,
        17,
        18,
        19,
        20,
      ]);
      await s.close();
      assert.equal(await code(s.entries(11n, 12n)), "CLOSED");
    }));
});

describe("RaftStorage writes", () => {
  test("appends made without waiting are group-committed, and reads in flight stay right", () =>
    withTempDir(async (dir) => {
      const events: WalEvent[] = [];
      const s = await RaftStorage.create(dir, undefined, {
        segmentSizeBytes: 16 * 1024,
        onEvent: (e) => events.push(e),
      });
      const appends: Promise<void>[] = [];
      const reads: Promise<void>[] = [];
      for (let i = 1; i <= 2000; i++) {
        const es = [entry(BigInt(i), 1n, new Uint8Array(50).fill(i % 251))];
        appends.push(s.append(es, state(BigInt(i))));
        if (i % 7 === 0) {
          // whatever is served while appends (and the cuts they make) are written is right
          reads.push((async () => {
            const last = s.lastIndex();
            if (last === 0n) return;
            const got = await s.entries(1n, last + 1n);
            got.forEach((e, k) => {
              assert.equal(e.index, BigInt(k + 1));
              assert.equal(e.data[0], (k + 1) % 251);
            });
          })());
        }
      }
      await Promise.all([...appends, ...reads]);
      const writes = events.filter((e) => e.type === "write").length;
      assert.ok(writes < 2000, `2000 appends took ${writes} writes: some were grouped`);
      assert.ok(events.some((e) => e.type === "cut"), "cuts were made while reading");
      assert.equal((await s.entries(1n, 2001n)).length, 2000);
      await s.close();
    }));

  test("an overwrite replaces the tail, and is served after reopening", () =>
    withTempDir(async (dir) => {
      const s = await RaftStorage.create(dir, undefined, { segmentSizeBytes: 2048 });
      await fill(s, 100);
      await s.append([entry(50n, 2n, enc.encode("new 50")), entry(51n, 2n)], state(49n, 2n));
      assert.equal(s.lastIndex(), 51n);
      assert.equal(s.term(50n), 2n);
      assert.equal(await code(s.append([entry(53n, 2n)])), "SLICE_OUT_OF_RANGE");
      await s.close();
      const again = await RaftStorage.open(dir);
      assert.equal(again.lastIndex(), 51n);
      assert.equal(new TextDecoder().decode((await again.entries(50n, 51n))[0].data), "new 50");
      assert.equal(again.term(49n), 1n);
      await again.close();
    }));

  test("compaction releases and purges old segments and snapshots beyond retain", () =>
    withTempDir(async (dir) => {
      const s = await RaftStorage.create(dir, undefined, { segmentSizeBytes: 4096, retain: 2 });
      await fill(s, 400);
      const before = await segments(dir);
      for (const at of [100n, 200n, 300n]) await s.createSnapshot(at, enc.encode(`state ${at}`));
      await s.compact(290n);
      const after = await segments(dir);
      assert.ok(after.length < before.length, `${before.length} segments, then ${after.length}`);
      assert.deepEqual(
        (await readdir(join(dir, "member", "snap"))).sort(),
        ["0000000000000001-00000000000000c8.snap", "0000000000000001-000000000000012c.snap"],
      );
      assert.deepEqual((await s.entries(291n, 401n)).map(named)[0], 291);
      const snap = await s.snapshot();
      assert.equal(snap.metadata.index, 300n);
      assert.equal(new TextDecoder().decode(snap.data), "state 300");
      await s.close();
      const again = await RaftStorage.open(dir);
      assert.equal(again.firstIndex(), 301n); // boot starts after the snapshot, as etcd's
      assert.deepEqual((await again.entries(301n, 401n)).map(named).length, 100);
      await again.close();
    }));

  test("applySnapshot drops every entry; an older snapshot is SNAP_OUT_OF_DATE", () =>
    withTempDir(async (dir) => {
      const s = await RaftStorage.create(dir);
      await fill(s, 10);
      const confState = {
        voters: [1n, 2n],
        learners: [3n],
        votersOutgoing: [],
        learnersNext: [],
        autoLeave: false,
      };
      const snapshot = {
        data: enc.encode("leader"),
        metadata: { index: 20n, term: 3n, confState },
      };
      await s.applySnapshot(snapshot);
      await s.append([], state(20n, 3n));
      assert.equal(s.firstIndex(), 21n);
      assert.equal(s.lastIndex(), 20n);
      assert.equal(s.term(20n), 3n);
      assert.equal(await code(s.applySnapshot(snapshot)), "SNAP_OUT_OF_DATE");
      assert.equal(await code(s.createSnapshot(20n, new Uint8Array())), "SNAP_OUT_OF_DATE");
      await s.append([entry(21n, 3n)], state(21n, 3n));
      await s.close();
      const again = await RaftStorage.open(dir);
      assert.deepEqual(again.initialState(), { hardState: state(21n, 3n), confState });
      assert.equal(again.firstIndex(), 21n);
      assert.equal((await again.entries(21n, 22n))[0].term, 3n);
      await again.close();
    }));

  test("refuses an append at or below the snapshot held", () =>
    withTempDir(async (dir) => {
      const s = await RaftStorage.create(dir);
      await fill(s, 10);
      await s.createSnapshot(5n, new Uint8Array());
      assert.equal(await code(s.append([entry(5n, 2n)])), "INVALID_ARGUMENT");
      await s.append([entry(6n, 2n)]); // above it: an overwrite
      assert.equal(s.lastIndex(), 6n);
      await s.close();
    }));
});

describe("RaftStorage snapshots a crash left uncommitted", () => {
  const confState = {
    voters: [1n],
    learners: [],
    votersOutgoing: [],
    learnersNext: [],
    autoLeave: false,
  };

  test("a snapshot sent to a lagging follower stays reachable after entries below it are appended", () =>
    withTempDir(async (dir) => {
      const s = await RaftStorage.create(dir, undefined, { segmentSizeBytes: 512 });
      await fill(s, 10);
      // the leader's snapshot at 30; the restart comes before the hard state committing it
      await s.applySnapshot({
        data: enc.encode("s30"),
        metadata: { index: 30n, term: 2n, confState },
      });
      await s.close();
      const follower = await RaftStorage.open(dir, { segmentSizeBytes: 512 });
      assert.equal((await follower.snapshot()).metadata.index, 0n); // not committed: not taken
      for (let i = 11n; i <= 35n; i++) {
        await follower.append([entry(i, 2n, new Uint8Array(200))], state(i, 2n));
      }
      await follower.close();
      assert.ok((await segments(dir)).length > 5, "segments were cut after the snapshot record");
      const again = await RaftStorage.open(dir);
      assert.equal((await again.snapshot()).metadata.index, 30n);
      assert.equal(again.firstIndex(), 31n);
      assert.deepEqual((await again.entries(31n, 36n)).map((e) => e.index), [
        31n,
        32n,
        33n,
        34n,
        35n,
      ]);
      await again.close();
    }));

  test("a snapshot at a recorded index with another term is SNAPSHOT_MISMATCH, and writes nothing", () =>
    withTempDir(async (dir) => {
      const s = await RaftStorage.create(dir);
      await fill(s, 10);
      await s.applySnapshot({
        data: enc.encode("t2"),
        metadata: { index: 20n, term: 2n, confState },
      });
      await s.close();
      const again = await RaftStorage.open(dir);
      const snaps = await readdir(join(dir, "member", "snap"));
      const other = { data: enc.encode("t3"), metadata: { index: 20n, term: 3n, confState } };
      assert.equal(await code(again.applySnapshot(other)), "SNAPSHOT_MISMATCH");
      assert.deepEqual(await readdir(join(dir, "member", "snap")), snaps);
      await again.close();
    }));
});

describe("RaftStorage boot", () => {
  test("repairs a torn tail once (reported as an event), or refuses with repair: false", () =>
    withTempDir(async (dir) => {
      const s = await RaftStorage.create(dir);
      await fill(s, 30);
      await s.close();
      const [tail] = (await segments(dir)).slice(-1);
      const path = join(dir, "member", "wal", tail);
      // tear the last record (the last save's hard state): cut the file inside it
      const used = await usedBytes(path);
      await truncate(path, used - 3);
      assert.equal(await code(RaftStorage.open(dir, { repair: false })), "UNEXPECTED_EOF");
      const events: WalEvent[] = [];
      const again = await RaftStorage.open(dir, { onEvent: (e) => events.push(e) });
      assert.ok(events.some((e) => e.type === "repair"), "the repair is reported");
      assert.equal(again.lastIndex(), 30n);
      assert.deepEqual(again.initialState().hardState, state(20n)); // the one before the torn one
      await again.close();
    }));

  test("a second open of the same directory is LOCKED", () =>
    withTempDir(async (dir) => {
      const s = await RaftStorage.create(dir);
      await fill(s, 5);
      assert.equal(await code(RaftStorage.open(dir)), "LOCKED");
      await s.close();
    }));

  test("opens a data directory without member/snap, as etcd makes it at boot", () =>
    withTempDir(async (dir) => {
      const s = await RaftStorage.create(dir);
      await fill(s, 5);
      await s.close();
      await rm(join(dir, "member", "snap"), { recursive: true });
      const again = await RaftStorage.open(dir);
      assert.equal(again.lastIndex(), 5n);
      assert.ok((await stat(join(dir, "member", "snap"))).isDirectory());
      await again.close();
      assert.equal(await code(RaftStorage.open(join(dir, "nothing"))), "FILE_NOT_FOUND");
    }));

  test("holds a few bytes per entry, not the entries", () =>
    withTempDir(async (dir) => {
      const s = await RaftStorage.create(dir, undefined, { cacheBytes: 256 * 1024 });
      await fill(s, 50_000, 1000, 200);
      await s.close();
      const again = await RaftStorage.open(dir, { cacheBytes: 256 * 1024 });
      await again.entries(1n, 50_001n, 1 << 20);
      const perEntry = (again.heldBytes - 256 * 1024) / 50_000;
      assert.ok(perEntry <= 8, `${perEntry} bytes held per entry beyond the cache`);
      await again.close();
    }));
});

/** The end of the last record in a segment: past it the file holds zeros. */
async function usedBytes(path: string): Promise<number> {
  const bytes = await readFile(path);
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return end;
}
