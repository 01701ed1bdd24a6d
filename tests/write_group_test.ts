/**
 * Unit tests of group commit below the WAL: raft's MustSync rule, `writeGroup` (one write
 * and at most one fdatasync per group, cuts where one-save-at-a-time writing would cut), and
 * the CallQueue that forms the groups and keeps calls in order.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { FileSystem, WalFile } from "../src/fs/types.ts";
import { CrashFileSystem } from "../src/fs/crash.ts";
import { resolveOptions } from "../src/options.ts";
import type { Entry, HardState } from "../src/types.ts";
import { createWal } from "../src/wal/bootstrap.ts";
import { CallQueue, type PendingSave } from "../src/wal/call_queue.ts";
import { mustSync, writeGroup } from "../src/wal/group_commit.ts";
import type { AppendState } from "../src/wal/phase.ts";
import { randBytes, randInt, readFileBytes as readBytes, rng, wrapFiles } from "./helpers.ts";

const DIR = "/wal";
const EMPTY: HardState = { term: 0n, vote: 0n, commit: 0n };

const hs = (term: bigint, vote: bigint, commit: bigint): HardState => ({ term, vote, commit });

const entry = (
  index: bigint,
  data: Uint8Array = new Uint8Array([Number(index % 256n)]),
  term = 1n,
): Entry => ({
  term,
  index,
  type: 0,
  data,
});

function entries(from: bigint, to: bigint): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i));
  return out;
}

/** A save as writeGroup takes it; nobody waits on it. */
function pending(state: HardState, es: Entry[] = []): PendingSave {
  return { state, entries: es, resolve: () => {}, reject: () => {} };
}

/** Counts of the calls on segment files (`*.wal`): record writes, zero writes, syncs. */
interface Counts {
  writes: number;
  zeroWrites: number;
  syncs: number;
}

function counting(inner: FileSystem): { fs: FileSystem; counts: Counts } {
  const counts: Counts = { writes: 0, zeroWrites: 0, syncs: 0 };
  const onWrite = (f: WalFile, d: Uint8Array) => {
    if (!f.path.endsWith(".wal")) return;
    if (d.every((b) => b === 0)) counts.zeroWrites++;
    else counts.writes++;
  };
  const onSync = (f: WalFile) => {
    if (f.path.endsWith(".wal")) counts.syncs++;
  };
  const fs = wrapFiles(inner, (f) => {
    const hooks: Partial<WalFile> = {
      write: (d, p) => (onWrite(f, d), f.write(d, p)),
      syncData: () => (onSync(f), f.syncData()),
      sync: () => (onSync(f), f.sync()),
    };
    const writeSync = f.writeSync?.bind(f);
    const syncDataSync = f.syncDataSync?.bind(f);
    if (writeSync !== undefined && syncDataSync !== undefined) {
      hooks.writeSync = (d, p) => {
        onWrite(f, d);
        writeSync(d, p);
      };
      hooks.syncDataSync = () => {
        onSync(f);
        syncDataSync();
      };
    }
    return hooks;
  });
  return { fs, counts };
}

/** A created WAL's append state, on a fresh CrashFileSystem with counted file calls. */
async function newLog(segmentSizeBytes = 1 << 16, blocking = true) {
  const crash = new CrashFileSystem(9);
  const { fs, counts } = counting(crash);
  const options = await resolveOptions({ fs, segmentSizeBytes, blocking });
  const log: AppendState = await createWal(options, DIR, new TextEncoder().encode("m"));
  const reset = () => Object.assign(counts, { writes: 0, zeroWrites: 0, syncs: 0 });
  reset();
  return { crash, fs, counts, log, reset };
}

describe("mustSync", () => {
  const prev = hs(2n, 1n, 5n);
  const table: { what: string; state: HardState; n: number; want: boolean }[] = [
    { what: "entries, same state", state: prev, n: 1, want: true },
    { what: "many entries, commit moved", state: hs(2n, 1n, 9n), n: 3, want: true },
    { what: "term changed", state: hs(3n, 1n, 5n), n: 0, want: true },
    { what: "vote changed", state: hs(2n, 3n, 5n), n: 0, want: true },
    { what: "vote cleared (new term)", state: hs(3n, 0n, 5n), n: 0, want: true },
    { what: "commit only", state: hs(2n, 1n, 6n), n: 0, want: false },
    { what: "nothing changed", state: prev, n: 0, want: false },
  ];
  for (const row of table) {
    test(`${row.what} => ${row.want}`, () => {
      assert.equal(mustSync(prev, row.state, row.n), row.want);
    });
  }
});

describe("writeGroup", () => {
  for (const blocking of [true, false]) {
    const mode = blocking ? "blocking" : "asynchronous";
    test(`a group of saves with entries is one tail write and one sync (${mode})`, async () => {
      const { counts, log, reset } = await newLog(1 << 16, blocking);
      await writeGroup(log, [pending(hs(1n, 1n, 0n), entries(1n, 2n))]); // the first zeroes ahead
      reset();
      await writeGroup(log, [
        pending(hs(1n, 1n, 2n), entries(3n, 4n)),
        pending(hs(1n, 1n, 3n), entries(5n, 5n)),
        pending(hs(2n, 2n, 3n)),
        pending(hs(2n, 2n, 5n), entries(6n, 9n)),
      ]);
      assert.deepEqual(counts, { writes: 1, zeroWrites: 0, syncs: 1 });
      await log.writer.close();
    });
  }

  test("a commit-only group writes but does not sync", async () => {
    const { counts, log, reset } = await newLog();
    await writeGroup(log, [pending(hs(1n, 1n, 0n), entries(1n, 3n))]);
    reset();
    await writeGroup(log, [pending(hs(1n, 1n, 2n)), pending(hs(1n, 1n, 3n))]);
    assert.deepEqual(counts, { writes: 1, zeroWrites: 0, syncs: 0 });
    assert.deepEqual(log.state, hs(1n, 1n, 3n));
    await log.writer.close();
  });

  test("empty saves write nothing and sync nothing", async () => {
    const { counts, log } = await newLog();
    await writeGroup(log, [pending(EMPTY), pending(EMPTY, [])]);
    assert.deepEqual(counts, { writes: 0, zeroWrites: 0, syncs: 0 });
    assert.equal(log.lastIndex, 0n);
    assert.deepEqual(log.state, EMPTY);
    await log.writer.close();
  });

  test("lastIndex and state advance to the group's last entry and last non-empty state", async () => {
    const { log } = await newLog();
    await writeGroup(log, [
      pending(hs(1n, 1n, 0n), entries(1n, 4n)),
      pending(hs(1n, 1n, 2n), entries(5n, 6n)),
      pending(EMPTY, entries(7n, 7n)),
      pending(EMPTY),
    ]);
    assert.equal(log.lastIndex, 7n);
    assert.deepEqual(log.state, hs(1n, 1n, 2n), "an empty state does not replace the last one");
    await writeGroup(log, [pending(hs(2n, 1n, 7n), [entry(5n, undefined, 2n)])]);
    assert.equal(log.lastIndex, 5n, "an overwrite moves lastIndex back");
    assert.deepEqual(log.state, hs(2n, 1n, 7n));
    await log.writer.close();
  });

  const cutCases = [
    { size: 2048, saves: 90, data: [10, 120], seed: 31 },
    // records past etcd's 128 KiB buffer: its flush model writes through before a sync
    { size: 600_000, saves: 40, data: [20_000, 90_000], seed: 32 },
  ];
  for (const c of cutCases) {
    test(`a group whose saves cross the segment size cuts exactly where the same saves one per group would (segments of ${c.size} bytes)`, async () => {
      const r = rng(c.seed);
      const saves: { state: HardState; entries: Entry[] }[] = [];
      let index = 0n;
      let term = 1n;
      for (let i = 0; i < c.saves; i++) {
        if (i % 7 === 6) {
          saves.push({ state: hs(term, 1n, index), entries: [] }); // commit only: no sync
          continue;
        }
        if (i % 17 === 16) term++;
        const n = randInt(r, 1, 3);
        const es: Entry[] = [];
        for (let k = 0; k < n; k++) {
          es.push(entry(++index, randBytes(r, randInt(r, c.data[0], c.data[1])), term));
        }
        saves.push({ state: hs(term, 1n, index - 1n), entries: es });
      }

      async function run(groups: readonly (typeof saves)[]) {
        const { fs, log } = await newLog(c.size);
        for (const g of groups) await writeGroup(log, g.map((s) => pending(s.state, s.entries)));
        await log.writer.close();
        const names = (await fs.readDir(DIR)).filter((n) => n.endsWith(".wal")).sort();
        const bytes = await Promise.all(names.map((n) => readBytes(fs, `${DIR}/${n}`)));
        return { names, bytes, lastIndex: log.lastIndex, state: log.state, held: log.segments };
      }
      const single = await run(saves.map((s) => [s]));
      assert.ok(single.names.length >= 4, `the saves span ${single.names.length} segments`);
      const chunks: (typeof saves)[] = [];
      for (let i = 0; i < saves.length;) {
        const n = randInt(r, 2, 9);
        chunks.push(saves.slice(i, i + n));
        i += n;
      }
      for (const [how, groups] of [["one group", [saves]], ["random groups", chunks]] as const) {
        const grouped = await run(groups);
        assert.deepEqual(grouped.names, single.names, how);
        for (let i = 0; i < single.names.length; i++) {
          assert.deepEqual(
            grouped.bytes[i],
            single.bytes[i],
            `${how}: bytes of ${single.names[i]}`,
          );
        }
        assert.equal(grouped.lastIndex, index);
        assert.deepEqual(grouped.state, single.state);
        assert.equal(grouped.held.files().length, grouped.names.length, "cuts add to the segments");
      }
      assert.equal(single.lastIndex, index);
    });
  }
});

describe("CallQueue", () => {
  /** A save whose outcome is recorded in `log` under `name`. */
  function save(name: string, log: string[], state: HardState = hs(1n, 1n, 0n)) {
    let resolve: () => void = () => {};
    let reject: (e: unknown) => void = () => {};
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const p: PendingSave & { name: string } = {
      name,
      state,
      entries: [],
      resolve: () => (log.push(`${name} resolved`), resolve()),
      reject: (e) => (log.push(`${name} rejected`), reject(e)),
    };
    return { p, done };
  }

  /** A write that records each group it gets (by save name). */
  function writer(groups: string[][], log: string[], fail?: (g: string[]) => Error | null) {
    return (group: readonly PendingSave[]) => {
      const names = group.map((p) => (p as PendingSave & { name: string }).name);
      groups.push(names);
      log.push(`write ${names.join(",")}`);
      const err = fail?.(names) ?? null;
      return err === null ? Promise.resolve() : Promise.reject(err);
    };
  }

  test("saves made while a group waits join it: one write call for all of them", async () => {
    const q = new CallQueue();
    const log: string[] = [];
    const groups: string[][] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((res) => (release = res));
    const busy = q.serial(() => gate); // an earlier call still running
    const saves = ["a", "b", "c", "d"].map((n) => save(n, log));
    const write = writer(groups, log);
    for (const s of saves) q.save(s.p, write);
    await Promise.resolve();
    assert.deepEqual(groups, [], "nothing is written while the earlier call runs");
    release();
    await busy;
    await Promise.all(saves.map((s) => s.done));
    assert.deepEqual(groups, [["a", "b", "c", "d"]]);
    assert.deepEqual(log, [
      "write a,b,c,d",
      "a resolved",
      "b resolved",
      "c resolved",
      "d resolved",
    ]);
  });

  test("a serial call between saves splits the groups, and calls run in call order", async () => {
    const q = new CallQueue();
    const log: string[] = [];
    const groups: string[][] = [];
    const write = writer(groups, log);
    const a = save("a", log);
    const b = save("b", log);
    const c = save("c", log);
    const d = save("d", log);
    q.save(a.p, write);
    q.save(b.p, write);
    const s1 = q.serial(() => Promise.resolve(void log.push("serial 1")));
    q.save(c.p, write);
    const s2 = q.serial(() => Promise.resolve(void log.push("serial 2")));
    q.save(d.p, write);
    await Promise.all([a.done, b.done, c.done, d.done, s1, s2]);
    assert.deepEqual(groups, [["a", "b"], ["c"], ["d"]]);
    assert.deepEqual(log, [
      "write a,b",
      "a resolved",
      "b resolved",
      "serial 1",
      "write c",
      "c resolved",
      "serial 2",
      "write d",
      "d resolved",
    ]);
  });

  test("a save made while its group is being written starts the next group", async () => {
    const q = new CallQueue();
    const log: string[] = [];
    const groups: string[][] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((res) => (release = res));
    const a = save("a", log);
    const b = save("b", log);
    q.save(a.p, (g) => {
      groups.push(["a"]);
      assert.equal(g.length, 1);
      return gate;
    });
    await new Promise((res) => setTimeout(res, 0)); // the group is now being written
    q.save(b.p, writer(groups, log));
    release();
    await Promise.all([a.done, b.done]);
    assert.deepEqual(groups, [["a"], ["b"]]);
  });

  test("a failing group rejects every save in it with that error; later calls still run", async () => {
    const q = new CallQueue();
    const log: string[] = [];
    const groups: string[][] = [];
    const boom = new Error("disk on fire");
    const write = writer(groups, log, (g) => (g.includes("a") ? boom : null));
    const a = save("a", log);
    const b = save("b", log);
    const c = save("c", log);
    q.save(a.p, write);
    q.save(b.p, write);
    const after = q.serial(() => {
      log.push("serial");
      return Promise.resolve(42);
    });
    q.save(c.p, write);
    const settled = Promise.allSettled([a.done, b.done]); // handled from the start
    assert.equal(await after, 42);
    await c.done;
    assert.deepEqual(log, [
      "write a,b",
      "a rejected",
      "b rejected",
      "serial",
      "write c",
      "c resolved",
    ]);
    for (const r of await settled) {
      assert.equal(r.status, "rejected");
      if (r.status === "rejected") assert.equal(r.reason, boom, "the group's own error");
    }
  });

  test("a failing serial call rejects only itself; the next call runs", async () => {
    const q = new CallQueue();
    const boom = new Error("no");
    const first = q.serial(() => Promise.reject(boom));
    const second = q.serial(() => Promise.resolve("ran"));
    await assert.rejects(first, (e) => e === boom);
    assert.equal(await second, "ran");
  });
});
