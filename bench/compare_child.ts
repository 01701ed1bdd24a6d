/**
 * One measurement of the comparison runner, in a fresh process of the running runtime (Deno
 * or Bun), so that its peak RSS is its own. `compare.ts` starts it as
 * `compare_child.ts '<ChildSpec as JSON>'` and reads the {@link ChildResult} JSON it prints
 * as its last line.
 *
 * @module
 */

import { closeSync, fdatasyncSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { type Entry, WAL } from "../mod.ts";
import type { ChildResult, ChildSpec, Latency, RaftReadsResult } from "./compare_spec.ts";

const enc = new TextEncoder();

/** A payload of `size` bytes: 0, 1, 2, ... (etcd's benchmark pattern). */
function payload(size: number): Uint8Array {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = i & 0xff;
  return data;
}

/** Reads one "Vm...: N kB" line of /proc/self/status, in bytes (0 where there is none). */
function procStatus(field: "VmHWM" | "VmRSS"): number {
  try {
    const m = readFileSync("/proc/self/status", "utf8").match(
      new RegExp(`^${field}:\\s+(\\d+)`, "m"),
    );
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

/**
 * Peak RSS: the kernel's high-water mark (VmHWM) where /proc exists, else the largest
 * process.memoryUsage().rss sampled every 10 ms.
 */
class RssPeak {
  private sampled = 0;
  private readonly timer: ReturnType<typeof setInterval> | null = null;
  constructor() {
    if (procStatus("VmHWM") === 0) {
      this.sample();
      this.timer = setInterval(() => this.sample(), 10);
    }
  }
  private sample(): void {
    this.sampled = Math.max(this.sampled, process.memoryUsage().rss);
  }
  stop(): number {
    if (this.timer === null) return procStatus("VmHWM");
    clearInterval(this.timer);
    this.sample();
    return this.sampled;
  }
}

/** Starts timing: the returned function gives wall-clock seconds and CPU seconds so far. */
function startTimer(): () => { seconds: number; cpuSeconds: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    return { seconds, cpuSeconds: (c.user + c.system) / 1e6 };
  };
}

function rssNow(): number {
  return procStatus("VmRSS") || process.memoryUsage().rss;
}

// ---------------------------------------------------------------------------------------
// This library

/** Builds the entries first..first+n-1 and the hard state that commits them. */
function batchOf(first: bigint, n: number, data: Uint8Array) {
  const entries: Entry[] = new Array(n);
  for (let i = 0; i < n; i++) {
    entries[i] = { term: 1n, index: first + BigInt(i), type: 0, data };
  }
  return { state: { term: 1n, vote: 1n, commit: first + BigInt(n - 1) }, entries };
}

async function walWrite(s: Extract<ChildSpec, { kind: "write" }>): Promise<ChildResult> {
  const wal = await WAL.create(s.dir, enc.encode("bench"));
  const data = payload(s.entrySize);
  let next = 1n;
  const saveN = async (n: number) => {
    const { state, entries } = batchOf(next, n, data);
    await wal.save(state, entries);
    next += BigInt(n);
  };
  for (let done = 0; done < s.warmup;) {
    const n = Math.min(s.batch, s.warmup - done);
    await saveN(n);
    done += n;
  }
  const rssBefore = rssNow();
  const deadline = s.maxSeconds > 0 ? performance.now() + s.maxSeconds * 1000 : Infinity;
  const timer = startTimer();
  let done = 0;
  let capped = false;
  while (done < s.entries) {
    const n = Math.min(s.batch, s.entries - done);
    await saveN(n);
    done += n;
    if (done < s.entries && performance.now() > deadline) {
      capped = true;
      break;
    }
  }
  const { seconds, cpuSeconds } = timer();
  await wal.close();
  return {
    entries: done,
    bytes: done * s.entrySize,
    seconds,
    cpuSeconds,
    maxRssBytes: 0,
    rssBeforeBytes: rssBefore,
    capped,
  };
}

async function walConcurrent(s: Extract<ChildSpec, { kind: "concurrent" }>): Promise<ChildResult> {
  const wal = await WAL.create(s.dir, enc.encode("bench"));
  const data = payload(s.entrySize);
  let handedOut = 0; // last index handed to a writer
  const run = async (limit: number, deadline: number) => {
    const base = handedOut;
    let saved = 0;
    let capped = false;
    const writer = async () => {
      while (handedOut - base < limit) {
        const i = BigInt(++handedOut);
        await wal.save({ term: 1n, vote: 1n, commit: i }, [{ term: 1n, index: i, type: 0, data }]);
        saved++;
        if (performance.now() > deadline) {
          capped = saved < limit;
          return;
        }
      }
    };
    const writers: Promise<void>[] = [];
    for (let k = 0; k < s.writers; k++) writers.push(writer());
    await Promise.all(writers);
    return { saved, capped };
  };
  if (s.warmup > 0) await run(s.warmup, Infinity);
  const rssBefore = rssNow();
  const deadline = s.maxSeconds > 0 ? performance.now() + s.maxSeconds * 1000 : Infinity;
  const timer = startTimer();
  const { saved, capped } = await run(s.entries, deadline);
  const { seconds, cpuSeconds } = timer();
  await wal.close();
  return {
    entries: saved,
    bytes: saved * s.entrySize,
    seconds,
    cpuSeconds,
    maxRssBytes: 0,
    rssBeforeBytes: rssBefore,
    capped,
  };
}

async function walReplay(dir: string): Promise<ChildResult> {
  const rssBefore = rssNow();
  const timer = startTimer();
  const wal = await WAL.openForRead(dir);
  const { entries } = await wal.readAll();
  const { seconds, cpuSeconds } = timer();
  let bytes = 0;
  for (const e of entries) bytes += e.data.length;
  await wal.close();
  return {
    entries: entries.length,
    bytes,
    seconds,
    cpuSeconds,
    maxRssBytes: 0,
    rssBeforeBytes: rssBefore,
  };
}

/** Streaming replay: `wal.entries()`, one entry at a time, nothing kept. */
async function walStream(dir: string): Promise<ChildResult> {
  const rssBefore = rssNow();
  const timer = startTimer();
  const wal = await WAL.openForRead(dir);
  const it = (wal as unknown as { entries?: () => AsyncIterable<Entry> }).entries;
  if (typeof it !== "function") throw new Error("wal.entries() is not available in this build");
  let n = 0;
  let bytes = 0;
  for await (const e of it.call(wal)) {
    n++;
    bytes += e.data.length;
  }
  const { seconds, cpuSeconds } = timer();
  await wal.close();
  return { entries: n, bytes, seconds, cpuSeconds, maxRssBytes: 0, rssBeforeBytes: rssBefore };
}

// ---------------------------------------------------------------------------------------
// SQLite: bun:sqlite under Bun, node:sqlite under Deno

interface SqlStatement {
  run(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
interface SqlDatabase {
  exec(sql: string): void;
  prepare(sql: string): SqlStatement;
  close(): void;
}

const isBun = "Bun" in globalThis;

/** Opens a SQLite database with the runtime's built-in driver. */
export async function openSqlite(path: string): Promise<SqlDatabase> {
  if (isBun) {
    // computed specifiers: neither runtime resolves the other's module, nor does deno check
    const { Database } = await import("bun:" + "sqlite") as {
      Database: new (path: string) => SqlDatabase;
    };
    return new Database(path);
  }
  const { DatabaseSync } = await import("node:" + "sqlite") as {
    DatabaseSync: new (path: string) => SqlDatabase;
  };
  return new DatabaseSync(path);
}

async function sqliteOpen(dir: string, synchronous: "FULL" | "OFF"): Promise<SqlDatabase> {
  const db = await openSqlite(join(dir, "bench.db"));
  db.exec("PRAGMA journal_mode = WAL");
  db.exec(`PRAGMA synchronous = ${synchronous}`);
  db.exec(
    "CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, " +
      "type INTEGER NOT NULL, data BLOB NOT NULL)",
  );
  db.exec(
    "CREATE TABLE IF NOT EXISTS hardstate (id INTEGER PRIMARY KEY, term INTEGER NOT NULL, " +
      "vote INTEGER NOT NULL, commit_index INTEGER NOT NULL)",
  );
  return db;
}

/** One transaction per batch: a row per entry, and the hard state (as the WAL saves it). */
function sqliteSaver(db: SqlDatabase, data: Uint8Array) {
  const insert = db.prepare("INSERT INTO entries (idx, term, type, data) VALUES (?, ?, ?, ?)");
  const state = db.prepare(
    "INSERT OR REPLACE INTO hardstate (id, term, vote, commit_index) VALUES (1, ?, ?, ?)",
  );
  let next = 1;
  return (n: number) => {
    db.exec("BEGIN");
    try {
      for (let i = 0; i < n; i++) insert.run(next + i, 1, 0, data);
      state.run(1, 1, next + n - 1);
      db.exec("COMMIT");
    } catch (e) {
      db.exec("ROLLBACK");
      throw e;
    }
    next += n;
  };
}

async function sqliteWrite(s: Extract<ChildSpec, { kind: "write" }>): Promise<ChildResult> {
  const db = await sqliteOpen(s.dir, "FULL");
  const save = sqliteSaver(db, payload(s.entrySize));
  for (let done = 0; done < s.warmup;) {
    const n = Math.min(s.batch, s.warmup - done);
    save(n);
    done += n;
  }
  const rssBefore = rssNow();
  const deadline = s.maxSeconds > 0 ? performance.now() + s.maxSeconds * 1000 : Infinity;
  const timer = startTimer();
  let done = 0;
  let capped = false;
  while (done < s.entries) {
    const n = Math.min(s.batch, s.entries - done);
    save(n);
    done += n;
    if (done < s.entries && performance.now() > deadline) {
      capped = true;
      break;
    }
  }
  const { seconds, cpuSeconds } = timer();
  db.close();
  return {
    entries: done,
    bytes: done * s.entrySize,
    seconds,
    cpuSeconds,
    maxRssBytes: 0,
    rssBeforeBytes: rssBefore,
    capped,
  };
}

async function sqliteFill(s: Extract<ChildSpec, { kind: "sqlite-fill" }>): Promise<ChildResult> {
  const db = await sqliteOpen(s.dir, "OFF");
  const save = sqliteSaver(db, payload(s.entrySize));
  const timer = startTimer();
  for (let done = 0; done < s.entries;) {
    const n = Math.min(10_000, s.entries - done);
    save(n);
    done += n;
  }
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const { seconds, cpuSeconds } = timer();
  db.close();
  return {
    entries: s.entries,
    bytes: s.entries * s.entrySize,
    seconds,
    cpuSeconds,
    maxRssBytes: 0,
  };
}

/** Reads every row back (and the hard state): what replay would be with SQLite. */
async function sqliteReplay(dir: string): Promise<ChildResult> {
  const rssBefore = rssNow();
  const timer = startTimer();
  const db = await sqliteOpen(dir, "FULL");
  const rows = db.prepare("SELECT idx, term, type, data FROM entries ORDER BY idx").all() as {
    data: Uint8Array;
  }[];
  db.prepare("SELECT term, vote, commit_index FROM hardstate WHERE id = 1").all();
  const { seconds, cpuSeconds } = timer();
  let bytes = 0;
  for (const r of rows) bytes += r.data.length;
  db.close();
  return {
    entries: rows.length,
    bytes,
    seconds,
    cpuSeconds,
    maxRssBytes: 0,
    rssBeforeBytes: rssBefore,
  };
}

// ---------------------------------------------------------------------------------------
// The disk's limit

/** Appends of `entrySize` bytes to a new file, each followed by fdatasync, in sync calls. */
function disk(s: Extract<ChildSpec, { kind: "disk" }>): ChildResult {
  const path = join(s.dir, "disk.bin");
  const data = payload(s.entrySize);
  const warm = Math.max(1, Math.floor(s.entries / 10));
  const deno = (globalThis as unknown as { Deno?: typeof Deno }).Deno;
  let append: () => void;
  let close: () => void;
  if (!isBun && deno !== undefined) {
    const f = deno.openSync(path, { write: true, create: true, truncate: true });
    append = () => {
      for (let done = 0; done < data.length;) done += f.writeSync(data.subarray(done));
      f.syncDataSync();
    };
    close = () => f.close();
  } else {
    const fd = openSync(path, "w");
    append = () => {
      for (let done = 0; done < data.length;) done += writeSync(fd, data, done);
      fdatasyncSync(fd);
    };
    close = () => closeSync(fd);
  }
  for (let i = 0; i < warm; i++) append();
  const rssBefore = rssNow();
  const timer = startTimer();
  for (let i = 0; i < s.entries; i++) append();
  const { seconds, cpuSeconds } = timer();
  close();
  return {
    entries: s.entries,
    bytes: s.entries * s.entrySize,
    seconds,
    cpuSeconds,
    maxRssBytes: 0,
    rssBeforeBytes: rssBefore,
  };
}

// ---------------------------------------------------------------------------------------
// Raft storage (issue 13): RaftStorage over an etcd data directory

/** `RaftStorage.open`: boot and index build, timed; the storage is closed untimed. */
async function raftOpen(dir: string, entrySize: number): Promise<ChildResult> {
  // imported here, so that the other children's RSS never includes this module graph
  const { RaftStorage } = await import("../raft.ts");
  const rssBefore = rssNow();
  const timer = startTimer();
  const storage = await RaftStorage.open(dir);
  const { seconds, cpuSeconds } = timer();
  const entries = Number(storage.lastIndex() - storage.firstIndex() + 1n);
  const heldBytes = storage.heldBytes;
  await storage.close();
  return {
    entries,
    bytes: entries * entrySize,
    seconds,
    cpuSeconds,
    maxRssBytes: 0,
    rssBeforeBytes: rssBefore,
    heldBytes,
  };
}

/** A small deterministic generator (the same indexes in every run and runtime). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 2 ** 32;
  };
}

function latency(us: number[]): Latency {
  const s = [...us].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return {
    samples: s.length,
    p50Us: q(0.5),
    p99Us: q(0.99),
    meanUs: s.reduce((a, b) => a + b, 0) / s.length,
    maxUs: s[s.length - 1],
  };
}

/**
 * Reads after an untimed open, warm page cache: `term(i)` at random, `entries(i, i + 1)`
 * at random (each call timed alone; a tenth as many untimed first), the same within a
 * window that fits the cache, then sequential `entries(lo, lo + batch)` over the log.
 */
async function raftReads(s: Extract<ChildSpec, { kind: "raft-reads" }>): Promise<RaftReadsResult> {
  const { RaftStorage } = await import("../raft.ts");
  const cacheBytes = 4 * 1024 * 1024; // RaftStorage's default, given here explicitly
  const storage = await RaftStorage.open(s.dir, { cacheBytes });
  const first = storage.firstIndex();
  const last = storage.lastIndex();
  const n = Number(last - first + 1n);
  const rnd = lcg(13);
  const picks = (k: number, span: number) => {
    const out: bigint[] = new Array(k);
    for (let j = 0; j < k; j++) out[j] = first + BigInt(Math.floor(rnd() * span));
    return out;
  };

  // term(i): indexes drawn beforehand, so only the calls are timed
  const termPasses: number[] = [];
  for (let pass = 0; pass < 4; pass++) {
    const at = picks(s.termCalls, n);
    let zero = 0;
    const t0 = performance.now();
    for (let j = 0; j < at.length; j++) if (storage.term(at[j]) === 0n) zero++;
    const ns = ((performance.now() - t0) * 1e6) / at.length;
    if (zero > 0) throw new Error("term 0 in a log written at term 1");
    if (pass > 0) termPasses.push(ns); // the first pass warms the JIT
  }
  termPasses.sort((a, b) => a - b);

  const timedReads = async (span: number): Promise<Latency> => {
    const warm = Math.ceil(s.samples / 10);
    const at = picks(warm + s.samples, span);
    const us: number[] = [];
    for (let j = 0; j < at.length; j++) {
      const t0 = performance.now();
      const es = await storage.entries(at[j], at[j] + 1n);
      const t = performance.now() - t0;
      if (es.length !== 1 || es[0].index !== at[j]) throw new Error(`entries(${at[j]}) is wrong`);
      if (j >= warm) us.push(t * 1000);
    }
    return latency(us);
  };
  const random = await timedReads(n);
  // a window whose records (payload + ~30 B of headers) fill half the cache: every read a hit
  const hitWindow = Math.max(1, Math.min(n, Math.floor(cacheBytes / 2 / (s.entrySize + 32))));
  await timedReads(hitWindow); // load the window's blocks
  const randomHit = { ...(await timedReads(hitWindow)), hitWindow };

  const timer = startTimer();
  let scanned = 0;
  for (let lo = first; lo <= last; lo += BigInt(s.scanBatch)) {
    const hi = lo + BigInt(s.scanBatch) > last + 1n ? last + 1n : lo + BigInt(s.scanBatch);
    const es = await storage.entries(lo, hi);
    if (es.length !== Number(hi - lo) || es[0].index !== lo) throw new Error("short scan");
    scanned += es.length;
  }
  const { seconds, cpuSeconds } = timer();
  const heldBytesAfter = storage.heldBytes;
  await storage.close();
  return {
    entries: n,
    cacheBytes,
    termNs: termPasses[termPasses.length >> 1],
    random,
    randomHit,
    scan: { batch: s.scanBatch, entries: scanned, seconds, cpuSeconds },
    heldBytesAfter,
    maxRssBytes: 0,
  };
}

// ---------------------------------------------------------------------------------------

async function measure(s: ChildSpec): Promise<ChildResult | RaftReadsResult> {
  switch (s.kind) {
    case "write":
      return s.system === "wal" ? await walWrite(s) : await sqliteWrite(s);
    case "concurrent":
      return await walConcurrent(s);
    case "replay":
      if (s.system === "wal") return await walReplay(s.dir);
      if (s.system === "wal-stream") return await walStream(s.dir);
      return await sqliteReplay(s.dir);
    case "sqlite-fill":
      return await sqliteFill(s);
    case "disk":
      return disk(s);
    case "raft-open":
      return await raftOpen(s.dir, s.entrySize);
    case "raft-reads":
      return await raftReads(s);
  }
}

if (import.meta.main) {
  const arg = process.argv[process.argv.length - 1];
  const spec = JSON.parse(arg) as ChildSpec;
  const peak = new RssPeak();
  const result = await measure(spec);
  result.maxRssBytes = peak.stop();
  console.log(JSON.stringify(result));
}
