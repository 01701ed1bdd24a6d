/**
 * RaftStorage against a model, over random histories on the simulated-crash file system.
 *
 * The model is two plain things: etcd raft's `MemoryStorage` (a dummy entry, the entries
 * after it, the hard state and the snapshot, as raft/storage.go keeps them), and what is on
 * disk (the WAL's records in order, and the `.snap` files), from which a reopen is predicted
 * as etcd's server boots: the newest `.snap` whose WAL record is at or below the last
 * commit, then the WAL's entries after it with raft overwrites. A history appends (with
 * overwrites, compacted entries and gaps), saves hard states, creates and applies snapshots,
 * compacts (with purges at a small `retain`), reopens, and crashes at a random file system
 * call; every read (`firstIndex`, `lastIndex`, `term` of every index and just outside,
 * `entries` of the whole log and of random ranges with random `maxBytes`, `initialState`,
 * `snapshot`) is checked after every step, and every error code against the model's.
 *
 * After a crash the storage is reopened (repairing a torn tail) and must equal the boot of
 * some prefix of the records written, no shorter than what was acknowledged as durable.
 *
 * Size: Deno runs 500 histories, Bun and Node 200 (WAL_FULL_SWEEPS=1: 500 everywhere); a soak
 * sets WAL_RAFT_HISTORIES (5000 run on Deno and Bun before this landed).
 * WAL_RAFT_HISTORIES sets the number; WAL_SWEEP_SEED the seed, printed in the test name.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ConfState, type Entry, type HardState, WalError } from "../mod.ts";
import { RaftStorage, type RaftStorageOptions } from "../raft.ts";
import { CrashFileSystem } from "../src/fs/crash.ts";
import { snapFileName } from "../src/snap/snapshotter.ts";
import { closeSegmentFiles, openSegmentFiles, scanSegments } from "../src/replay/scan.ts";
import { listSegments } from "../src/wal/segment_dir.ts";
import { RecordType } from "../src/types.ts";
import { FULL_SWEEPS, randBytes, randInt, rng, SWEEP_SEED } from "./helpers.ts";
import process from "node:process";

const HISTORIES = Number(process.env.WAL_RAFT_HISTORIES ?? (FULL_SWEEPS ? 500 : 200));
const STEPS = 40;

interface Snap {
  index: bigint;
  term: bigint;
  confState: ConfState;
  data: Uint8Array;
}

/** An outcome: a value, or the code of the WalError it throws. */
type Outcome<T> = { ok: T } | { code: string };

const EMPTY_STATE: HardState = { term: 0n, vote: 0n, commit: 0n };
const isEmpty = (s: HardState) => s.term === 0n && s.vote === 0n && s.commit === 0n;
const emptyConf = (): ConfState => ({
  voters: [],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
});

/** etcd raft's MemoryStorage, as raft/storage.go has it (panics as the codes this library gives). */
class MemoryStorage {
  offset = 0n; // ents[0].Index: the dummy
  dummyTerm = 0n;
  ents: Entry[] = []; // after the dummy
  hardState: HardState = EMPTY_STATE;
  snapshot: Snap | null = null;

  get first(): bigint {
    return this.offset + 1n;
  }
  get last(): bigint {
    return this.offset + BigInt(this.ents.length);
  }
  term(i: bigint): Outcome<bigint> {
    if (i < this.offset) return { code: "COMPACTED" };
    if (i > this.last) return { code: "UNAVAILABLE" };
    return { ok: i === this.offset ? this.dummyTerm : this.ents[Number(i - this.first)].term };
  }
  entries(lo: bigint, hi: bigint, maxBytes: number): Outcome<Entry[]> {
    if (lo <= this.offset) return { code: "COMPACTED" };
    if (hi > this.last + 1n) return { code: "UNAVAILABLE" };
    if (this.ents.length === 0) return { code: "UNAVAILABLE" };
    const ents = this.ents.slice(Number(lo - this.first), Number(hi - this.first));
    let size = 0;
    let n = 0;
    for (; n < ents.length; n++) {
      size += entrySize(ents[n]);
      if (n > 0 && size > maxBytes) break;
    }
    return { ok: ents.slice(0, n) };
  }
  /** The entries Append keeps (compacted ones dropped), or a gap's code. */
  appendable(es: Entry[]): Outcome<Entry[]> {
    if (es.length === 0) return { ok: [] };
    const lastNew = es[0].index + BigInt(es.length) - 1n;
    if (lastNew < this.first) return { ok: [] };
    const kept = es[0].index < this.first ? es.slice(Number(this.first - es[0].index)) : es;
    // beyond MemoryStorage: raft never overwrites what a snapshot covers; RaftStorage refuses
    if (kept[0].index <= (this.snapshot?.index ?? 0n)) return { code: "INVALID_ARGUMENT" };
    if (kept[0].index > this.last + 1n) return { code: "SLICE_OUT_OF_RANGE" };
    return { ok: kept };
  }
  append(es: Entry[]): void {
    if (es.length === 0) return;
    this.ents.length = Number(es[0].index - this.first);
    this.ents.push(...es);
  }
  compact(i: bigint): Outcome<void> {
    if (i <= this.offset) return { code: "COMPACTED" };
    if (i > this.last) return { code: "UNAVAILABLE" };
    const t = this.term(i) as { ok: bigint };
    this.ents = this.ents.slice(Number(i - this.offset));
    this.offset = i;
    this.dummyTerm = t.ok;
    return { ok: undefined };
  }
  applySnapshot(s: Snap): void {
    this.snapshot = s;
    this.offset = s.index;
    this.dummyTerm = s.term;
    this.ents = [];
  }
}

/** The encoded size of a raftpb.Entry (what limitSize adds up). */
function entrySize(e: Entry): number {
  const v = (x: bigint) => {
    let n = 1;
    while (x >= 0x80n) {
      x >>= 7n;
      n++;
    }
    return n;
  };
  let n = 1 + v(e.term) + 1 + v(e.index) + 1 + v(BigInt(e.type));
  if (e.data.length > 0) n += 1 + v(BigInt(e.data.length)) + e.data.length;
  return n;
}

type Rec =
  | { kind: "entry"; e: Entry }
  | { kind: "state"; s: HardState }
  | { kind: "snap"; index: bigint; term: bigint };

/** What is on disk, and the WAL's own state that decides syncs. */
class Disk {
  records: Rec[] = [];
  /** Records known durable: a prefix at least this long survives a crash. */
  synced = 0;
  /** `.snap` files by name. */
  snaps = new Map<string, Snap>();
  /** The WAL's last saved hard state since open (etcd's w.state), for raft's MustSync. */
  walState: HardState = EMPTY_STATE;
  /** Whether a save since open carried the hard state. */
  stateSaved = false;

  opened(): void {
    this.walState = EMPTY_STATE;
    this.stateSaved = false;
    this.synced = this.records.length;
  }
}

/** What etcd's boot makes of the first `n` records and the `.snap` files: a MemoryStorage. */
function boot(disk: Disk, n: number): Outcome<MemoryStorage> {
  const recs = disk.records.slice(0, n);
  let state = EMPTY_STATE;
  for (const r of recs) if (r.kind === "state") state = r.s;
  const valid = recs.filter((r) => r.kind === "snap" && r.index <= state.commit);
  let snap: Snap | null = null;
  for (const name of [...disk.snaps.keys()].sort().reverse()) {
    const s = disk.snaps.get(name)!;
    if (valid.some((r) => r.kind === "snap" && r.index === s.index && r.term === s.term)) {
      snap = s;
      break;
    }
  }
  const m = new MemoryStorage();
  if (snap !== null) m.applySnapshot(snap);
  const start = snap?.index ?? 0n;
  for (const r of recs) {
    if (r.kind !== "entry") continue;
    if (r.e.index <= start) {
      m.ents.length = 0; // an overwrite at or below the snapshot truncates what follows it
      continue;
    }
    const pos = r.e.index - start - 1n;
    if (pos > BigInt(m.ents.length)) return { code: "SLICE_OUT_OF_RANGE" };
    m.ents.length = Number(pos);
    m.ents.push(r.e);
  }
  m.hardState = state;
  return { ok: m };
}

/** The snapshot records in the WAL's segments, as `index/term`: what a crash left. */
async function walSnapshotRecords(fs: CrashFileSystem, walDir: string): Promise<Set<string>> {
  const names = await listSegments(fs, walDir);
  const files = await openSegmentFiles(fs, names.map((n) => `${walDir}/${n.name}`));
  const found = new Set<string>();
  try {
    await scanSegments(files, (rec) => {
      if (rec.type !== RecordType.Snapshot) return;
      const snap = rec.snapshot();
      found.add(`${snap.index}/${snap.term}`);
    });
  } finally {
    await closeSegmentFiles(files);
  }
  return found;
}

async function outcome<T>(f: () => T | Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: await f() };
  } catch (e) {
    if (e instanceof WalError) return { code: e.code };
    throw e;
  }
}

const plain = (es: Entry[]) => es.map((e) => ({ ...e, data: [...e.data] }));

/** Everything the storage answers, as comparable values. */
async function observe(s: RaftStorage, r: () => number): Promise<unknown> {
  const first = s.firstIndex();
  const last = s.lastIndex();
  const terms: unknown[] = [];
  for (let i = first - 2n; i <= last + 1n; i++) {
    if (i >= 0n) terms.push(await outcome(() => s.term(i)));
  }
  const all = await outcome(() => s.entries(first, last + 1n));
  const lo = first - 1n + BigInt(randInt(r, 0, Number(last - first) + 2));
  const hi = lo + BigInt(randInt(r, 0, Number(last - lo) + 2));
  const max = randInt(r, 0, 600);
  const some = await outcome(() => s.entries(lo, hi, max));
  const snap = await s.snapshot();
  return {
    first,
    last,
    terms,
    all: "ok" in all ? plain(all.ok) : all,
    range: [lo, hi, max, "ok" in some ? plain(some.ok) : some],
    initial: s.initialState(),
    snapshot: { ...snap.metadata, data: [...snap.data] },
  };
}

/** The same observation of the model, drawing the same random range. */
function predict(m: MemoryStorage, r: () => number): unknown {
  const first = m.first;
  const last = m.last;
  const terms: unknown[] = [];
  for (let i = first - 2n; i <= last + 1n; i++) if (i >= 0n) terms.push(m.term(i));
  const all = m.entries(first, last + 1n, Infinity);
  const lo = first - 1n + BigInt(randInt(r, 0, Number(last - first) + 2));
  const hi = lo + BigInt(randInt(r, 0, Number(last - lo) + 2));
  const max = randInt(r, 0, 600);
  const some = m.entries(lo, hi, max);
  const s = m.snapshot;
  return {
    first,
    last,
    terms,
    all: "ok" in all ? plain(all.ok) : all,
    range: [lo, hi, max, "ok" in some ? plain(some.ok) : some],
    initial: { hardState: m.hardState, confState: s?.confState ?? emptyConf() },
    snapshot: {
      confState: s?.confState ?? emptyConf(),
      index: s?.index ?? 0n,
      term: s?.term ?? 0n,
      data: [...(s?.data ?? [])],
    },
  };
}

/** Checks the storage against the model with one random range (the same for both). */
async function check(s: RaftStorage, m: MemoryStorage, seed: number, what: string) {
  const got = await observe(s, rng(seed)) as Record<string, unknown>;
  const want = predict(m, rng(seed)) as Record<string, unknown>;
  const brief = (o: Record<string, unknown>) =>
    `first ${o.first} last ${o.last} snapshot ${(o.snapshot as { index: bigint }).index}`;
  assert.deepEqual(got, want, `${what}\ngot ${brief(got)}, want ${brief(want)}`);
}

function randomConf(r: () => number): ConfState {
  const ids = (n: number) => Array.from({ length: n }, () => BigInt(randInt(r, 1, 9)));
  return {
    voters: ids(randInt(r, 1, 3)),
    learners: ids(randInt(r, 0, 2)),
    votersOutgoing: [],
    learnersNext: [],
    autoLeave: false,
  };
}

/** One history; returns how many crashes it recovered from. */
async function history(seed: number): Promise<number> {
  const r = rng(seed);
  const fs = new CrashFileSystem(seed);
  const options: RaftStorageOptions = {
    fs,
    segmentSizeBytes: [512, 1024, 4096][randInt(r, 0, 2)],
    retain: randInt(r, 1, 3),
    cacheBytes: [0, 65536, 1 << 20][randInt(r, 0, 2)],
  };
  const dir = "/data";
  let s = await RaftStorage.create(dir, new Uint8Array([7]), options);
  let m = new MemoryStorage();
  const disk = new Disk();
  disk.opened();
  let term = 1n;
  let crashes = 0;
  const crashStep = r() < 0.6 ? randInt(r, 0, STEPS - 1) : -1;
  const trace: string[] = [];

  /** Records a save as the WAL writes it: entries, then the hard state. */
  const saved = (es: Entry[], st: HardState) => {
    if (!disk.stateSaved && isEmpty(st)) st = m.hardState;
    if (es.length === 0 && isEmpty(st)) return;
    disk.stateSaved = true;
    for (const e of es) disk.records.push({ kind: "entry", e });
    const sync = es.length > 0 || st.term !== disk.walState.term || st.vote !== disk.walState.vote;
    if (!isEmpty(st)) {
      disk.records.push({ kind: "state", s: st });
      disk.walState = st;
      m.hardState = st;
    }
    if (sync) disk.synced = disk.records.length;
  };
  const persisted = (snap: Snap) => {
    disk.snaps.set(snapFileName(snap.term, snap.index), snap);
    disk.records.push({ kind: "snap", index: snap.index, term: snap.term });
    disk.synced = disk.records.length;
  };
  const purgeSnaps = () => {
    const snap = m.snapshot;
    const held = snap !== null && snap.index <= m.hardState.commit ? snap.index : 0n;
    // by index, then term, newest first; none past the held one (unlike etcd: by name)
    const names = [...disk.snaps.keys()].filter((n) => disk.snaps.get(n)!.index <= held)
      .sort((a, b) => {
        const x = disk.snaps.get(a)!;
        const y = disk.snaps.get(b)!;
        return x.index !== y.index ? (x.index < y.index ? 1 : -1) : x.term < y.term ? 1 : -1;
      });
    for (const n of names.slice(options.retain)) disk.snaps.delete(n);
  };

  for (let step = 0; step < STEPS; step++) {
    if (step === crashStep) fs.crashAfter(randInt(r, 1, 40));
    const kind = r();
    let expect: Outcome<unknown> = { ok: undefined };
    let act: () => Promise<unknown>;
    let apply = () => {};
    if (kind < 0.55) {
      // append: mostly next, sometimes an overwrite (below the first index too), rarely a gap
      if (r() < 0.1) term++;
      const roll = r();
      const at = roll < 0.7
        ? m.last + 1n
        : roll < 0.95
        ? m.first - 2n + BigInt(randInt(r, 0, Number(m.last - m.first) + 3))
        : m.last + 2n;
      const start = at < 1n ? 1n : at;
      const es: Entry[] = Array.from({ length: randInt(r, 0, 5) }, (_, k) => ({
        index: start + BigInt(k),
        term,
        type: r() < 0.1 ? 1 : 0,
        data: randBytes(r, r() < 0.2 ? 0 : randInt(r, 1, 300)),
      }));
      const kept = m.appendable(es);
      const newLast = "ok" in kept && kept.ok.length > 0
        ? kept.ok[kept.ok.length - 1].index
        : m.last;
      const commit = m.hardState.commit > newLast ? m.hardState.commit : newLast;
      const st: HardState = r() < 0.3 ? EMPTY_STATE : {
        term,
        vote: BigInt(randInt(r, 0, 3)),
        commit: BigInt(randInt(r, Number(m.hardState.commit), Number(commit))),
      };
      expect = "ok" in kept ? { ok: undefined } : kept;
      trace.push(`append ${start}+${es.length} t${term} st=${st.term}/${st.vote}/${st.commit}`);
      act = () => s.append(es, st);
      apply = () => {
        if (!("ok" in kept)) return;
        m.append(kept.ok);
        saved(kept.ok, st);
      };
    } else if (kind < 0.65) {
      // a snapshot of applied state, at or below the commit, then often a compaction
      const held = m.snapshot?.index ?? 0n;
      const lo = held > m.first - 1n ? held : m.first - 1n;
      const hiC = m.hardState.commit < m.last ? m.hardState.commit : m.last;
      // (raft snapshots applied state: at or below the commit, which boot requires)
      const i = r() < 0.15 || hiC < lo ? held : lo + BigInt(randInt(r, 0, Number(hiC - lo)));
      const data = randBytes(r, randInt(r, 0, 40));
      const conf = r() < 0.5 ? randomConf(r) : undefined;
      // (a record of i at another term, that a crash left uncommitted, cannot be: raft commits
      // one term at an index)
      const t = m.term(i);
      if (
        "ok" in t && disk.records.some((x) => x.kind === "snap" && x.index === i && x.term !== t.ok)
      ) {
        continue;
      }
      expect = i <= held ? { code: "SNAP_OUT_OF_DATE" } : "ok" in t ? { ok: undefined } : t;
      trace.push(`createSnapshot ${i}`);
      act = () => s.createSnapshot(i, data, conf);
      apply = () => {
        const snap = {
          index: i,
          term: (t as { ok: bigint }).ok,
          confState: conf ?? m.snapshot?.confState ?? emptyConf(),
          data,
        };
        m.snapshot = snap;
        persisted(snap);
      };
    } else if (kind < 0.72) {
      // a snapshot from a leader: everything after it is dropped; then commit to it
      // past the last index (a lagging follower): one below it leaves entries in the WAL that
      // a reopen serves again, as etcd's does, depending on where segments were cut
      const held = m.snapshot?.index ?? 0n;
      let i = r() < 0.1 ? held : m.last + BigInt(randInt(r, held < m.last ? 0 : 1, 4));
      // (raft's terms do not fall along the log: not below a snapshot a crash left recorded)
      for (const x of disk.records) {
        if (x.kind !== "snap") continue;
        if (i > held && x.index > i) i = x.index;
        if (x.term > term) term = x.term;
      }
      if (r() < 0.5) term++;
      // (one term at an index, as raft commits it: that of a record a crash left uncommitted)
      const same = disk.records.find((x) => x.kind === "snap" && x.index === i);
      const snapTerm = same?.kind === "snap" ? same.term : term;
      if (snapTerm > term) term = snapTerm;
      const snap = { index: i, term: snapTerm, confState: randomConf(r), data: randBytes(r, 20) };
      expect = i <= held ? { code: "SNAP_OUT_OF_DATE" } : { ok: undefined };
      // raft's Ready that carries a snapshot carries a hard state committing it
      const st: HardState = { term, vote: m.hardState.vote, commit: i };
      trace.push(`applySnapshot ${i} t${term}`);
      act = async () => {
        const { data, ...metadata } = snap;
        await s.applySnapshot({ data, metadata });
        await s.append([], st);
      };
      apply = () => {
        m.applySnapshot(snap);
        persisted(snap);
        saved([], st);
      };
    } else if (kind < 0.8) {
      const i = m.first - 2n + BigInt(randInt(r, 0, Number(m.last - m.first) + 3));
      const c = i < 0n ? 0n : i;
      const probe = new MemoryStorage();
      Object.assign(probe, { ...m, ents: m.ents.slice() });
      expect = probe.compact(c);
      trace.push(`compact ${c}`);
      act = () => s.compact(c);
      apply = () => {
        m.compact(c);
        disk.synced = disk.records.length; // compact syncs before it releases and purges
        purgeSnaps();
      };
    } else if (kind < 0.88) {
      trace.push("hardState");
      const st: HardState = {
        term,
        vote: BigInt(randInt(r, 0, 3)),
        commit: m.hardState.commit +
          BigInt(randInt(r, 0, Math.max(0, Number(m.last - m.hardState.commit)))),
      };
      act = () => s.append([], st);
      apply = () => saved([], st);
    } else {
      trace.push("reopen");
      act = async () => {
        await s.close();
        s = await RaftStorage.open(dir, options);
      };
      apply = () => {
        const b = boot(disk, disk.records.length);
        assert.ok(
          "ok" in b,
          `boot of the model: ${"code" in b ? b.code : ""}\n${trace.join("\n")}`,
        );
        m = b.ok;
        disk.opened();
      };
    }

    let applied = false;
    try {
      const got = await outcome(async () => {
        await act();
        return undefined;
      });
      if (!fs.hasCrashed) {
        assert.deepEqual(got, expect, `step ${step}: ${trace.at(-1)}`);
        if ("ok" in got) apply();
        applied = true;
        await check(s, m, seed * 1000 + step, `after step ${step}\n${trace.join("\n")}`);
      }
    } catch (e) {
      if (!fs.hasCrashed) throw new Error(`step ${step}:\n${trace.join("\n")}`, { cause: e });
    }
    if (!fs.hasCrashed) continue;

    // the crash: what the reboot finds is the boot of some prefix of the records written
    crashes++;
    await s.close().catch(() => {});
    fs.crash();
    if (!applied && "ok" in expect && trace.at(-1) !== "reopen") {
      const synced = disk.synced;
      apply(); // the step's records may or may not have reached the disk
      disk.synced = synced; // ... and none was acknowledged
    }
    s = await RaftStorage.open(dir, options);
    const seen = await observe(s, rng(seed));
    // a snapshot record not yet committed leaves no trace in the reads: look in the segments
    const onDisk = await walSnapshotRecords(fs, `${dir}/member/wal`);
    const leftSnapshots = (n: number) =>
      disk.records.slice(disk.synced).every((x, k) =>
        x.kind !== "snap" || onDisk.has(`${x.index}/${x.term}`) === disk.synced + k < n
      );
    let matched = -1;
    for (let n = disk.records.length; n >= disk.synced && matched < 0; n--) {
      if (!leftSnapshots(n)) continue;
      const b = boot(disk, n);
      if (!("ok" in b)) continue;
      try {
        assert.deepEqual(seen, predict(b.ok, rng(seed)));
        matched = n;
        m = b.ok;
      } catch { /* try a shorter prefix */ }
    }
    assert.ok(
      matched >= 0,
      `after the crash (step ${step}), no prefix of ${disk.synced}..${disk.records.length} records matches\n${
        trace.join("\n")
      }`,
    );
    disk.records.length = matched;
    for (const [name, snap] of disk.snaps) {
      const recorded = disk.records.some((x) =>
        x.kind === "snap" && x.index === snap.index && x.term === snap.term
      );
      if (!recorded && snap !== m.snapshot) disk.snaps.delete(name);
    }
    disk.opened();
    trace.push(`-- crash, reopened at ${matched} records`);
  }
  await s.close().catch((e) => {
    if (!fs.hasCrashed) throw e; // the crash point came in the last close: nothing to check
  });
  return crashes;
}

describe("RaftStorage against etcd raft's MemoryStorage", () => {
  test(`answers as the model over ${HISTORIES} random histories with crashes (seed ${SWEEP_SEED})`, async () => {
    let crashes = 0;
    for (let h = 0; h < HISTORIES; h++) {
      const seed = (SWEEP_SEED + h * 0x9e3779b9) >>> 0;
      try {
        crashes += await history(seed);
      } catch (e) {
        throw new Error(`history seed ${seed} (WAL_SWEEP_SEED=${seed} WAL_RAFT_HISTORIES=1)`, {
          cause: e,
        });
      }
    }
    if (HISTORIES >= 20) {
      assert.ok(crashes > HISTORIES / 4, `only ${crashes} crashes in ${HISTORIES} histories`);
    }
  });
});
