/**
 * The comparison runner (issue 5, item 1): the same workloads on this library (in the
 * running runtime), on etcd 3.4's Go WAL (through `compat/etcd34`'s `bench` subcommand), on
 * SQLite in WAL mode with synchronous=FULL (bun:sqlite / node:sqlite), and on the disk
 * itself (small appends, each followed by fdatasync), side by side on one machine.
 *
 *     deno run -A --no-lock bench/compare.ts [--quick] [--repeat N] [--only REGEX]
 *     bun bench/compare.ts [--quick] [--repeat N] [--only REGEX]
 *     deno run -A --no-lock bench/compare.ts --chart   # only redraw bench/results/chart.svg
 *
 * Every measurement runs in a fresh process (a child of this runtime running
 * `compare_child.ts`, or the Go harness), which times itself and reports its own peak RSS.
 * Prints a table, writes `bench/results/<runtime>-<date>.json` and redraws
 * `bench/results/chart.svg` from the latest Deno and Bun results. See bench/README.md.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { ChildResult, ChildSpec, Latency, RaftReadsResult } from "./compare_spec.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..");
const RESULTS = join(HERE, "results");

const bunGlobal = (globalThis as unknown as { Bun?: { version: string } }).Bun;
const denoGlobal = (globalThis as unknown as { Deno?: { version: { deno: string } } }).Deno;
const RUNTIME: "deno" | "bun" = bunGlobal !== undefined ? "bun" : "deno";
const RUNTIME_VERSION = bunGlobal?.version ?? denoGlobal?.version.deno ?? "?";

// ---------------------------------------------------------------------------------------
// Workloads

type System = "go" | "wal" | "wal-stream" | "sqlite" | "disk" | "raft";
type Group = "write" | "writers" | "replay" | "stream" | "raft";

interface Workload {
  /** Stable id, also used in JSON and the chart. */
  id: string;
  group: Group;
  label: string;
  entrySize: number;
  /** Entries per save (write). */
  batch?: number;
  /** Concurrent writers (writers). */
  writers?: number;
  /** Timed entries (write, writers) or entries in the log (replay, stream, raft). */
  entries: number;
  systems: System[];
  /** raft: also measure reads after `RaftStorage.open` (a `raft-reads` child per run). */
  reads?: { samples: number; termCalls: number; scanBatch: number };
}

interface Plan {
  workloads: Workload[];
  /** Runs per measurement, by group (the median is reported). */
  repeat: Record<Group, number>;
  /** Time cap of one timed write measurement, in seconds. */
  maxSeconds: number;
}

function plan(quick: boolean): Plan {
  const q = (n: number, min: number) => (quick ? Math.max(min, Math.round(n / 20)) : n);
  const w: Workload[] = [];
  // writes: entry count per shape sized for ~1-3 s on this kind of machine
  // (fdatasync ~0.2-0.4 ms); fewer for sync-each
  const writes: [number, number, number][] = [
    [100, 1, 2_000],
    [1000, 1, 1_500],
    [100, 10, 15_000],
    [1000, 10, 12_000],
    [100, 100, 100_000],
    [1000, 100, 60_000],
    [100, 1000, 400_000],
    [1000, 1000, 120_000],
  ];
  for (const [size, batch, n] of writes) {
    const systems: System[] = ["go", "wal", "sqlite"];
    if (batch === 1) systems.push("disk");
    w.push({
      id: `write-${size}B-x${batch}`,
      group: "write",
      label: `write ${size} B, ${batch === 1 ? "sync each" : `saves of ${batch}`}`,
      entrySize: size,
      batch,
      entries: q(n, batch * 20),
      systems,
    });
  }
  for (const [writers, n] of [[1, 2_000], [8, 8_000], [64, 30_000]]) {
    w.push({
      id: `writers-${writers}`,
      group: "writers",
      label: `${writers} writer${writers === 1 ? "" : "s"}, 100 B, own save each`,
      entrySize: 100,
      writers,
      entries: q(n, writers * 10),
      systems: ["go", "wal"],
    });
  }
  const replays: [string, number, number][] = quick
    ? [["50k", 100, 50_000], ["10k", 1000, 10_000]]
    : [["1M", 100, 1_000_000], ["100k", 1000, 100_000]];
  for (const [name, size, n] of replays) {
    w.push({
      id: `replay-${name}x${size}B`,
      group: "replay",
      label: `replay ${name} x ${size} B`,
      entrySize: size,
      entries: n,
      systems: ["go", "wal", "wal-stream", "sqlite"],
    });
  }
  // streaming replay of a big log (issue 5: 1 GB with RSS growth under 100 MB); big entries
  // keep it short, as only its memory is of interest
  const stream = quick ? ["20 MB", 2_000] as const : ["1 GB", 100_000] as const;
  w.push({
    id: `stream-${stream[0].replace(" ", "")}`,
    group: "stream",
    label: `streaming replay, ${stream[0]} (${stream[1].toLocaleString("en-US")} x 10,000 B)`,
    entrySize: 10_000,
    entries: stream[1],
    systems: ["wal-stream"],
  });
  // raft storage (issue 13, item 5): RaftStorage.open of an etcd data directory (boot and
  // index build) beside etcd's ReadAll, on ~1 GB of 1000 B entries (1M entries: the entry
  // count of the 1M x 100 B replay, the entry size of the 100k x 1000 B one), with reads
  // after the open; and on 10M entries of 10 B (the most entries for the bytes: the index,
  // not the entries, is the memory) beside readAll of 1M such entries.
  const raft: Workload[] = [
    {
      id: quick ? "raft-open-20MBx1000B" : "raft-open-1GBx1000B",
      group: "raft",
      label: quick ? "raft open 20 MB (20,000 x 1000 B)" : "raft open 1 GB (1,000,000 x 1000 B)",
      entrySize: 1000,
      entries: quick ? 20_000 : 1_000_000,
      systems: ["go", "wal", "raft"],
      reads: {
        samples: quick ? 2_000 : 20_000,
        termCalls: quick ? 100_000 : 1_000_000,
        scanBatch: 1000,
      },
    },
    {
      id: quick ? "raft-open-200kx10B" : "raft-open-10Mx10B",
      group: "raft",
      label: quick ? "raft open 200k x 10 B" : "raft open 10M x 10 B",
      entrySize: 10,
      entries: quick ? 200_000 : 10_000_000,
      systems: ["go", "raft"],
    },
    {
      id: quick ? "raft-readall-20kx10B" : "raft-readall-1Mx10B",
      group: "raft",
      label: quick ? "replay 20k x 10 B (raft reference)" : "replay 1M x 10 B (raft reference)",
      entrySize: 10,
      entries: quick ? 20_000 : 1_000_000,
      systems: ["go", "wal"],
    },
  ];
  w.push(...raft);
  const repeat = quick
    ? { write: 1, writers: 1, replay: 1, stream: 1, raft: 1 }
    : { write: 5, writers: 5, replay: 3, stream: 1, raft: 5 };
  return { workloads: w, repeat, maxSeconds: quick ? 1 : 4 };
}

// ---------------------------------------------------------------------------------------
// Running one measurement

interface Env {
  tmp: string;
  goBin: string | null;
  goNote: string;
  sqlite: string | null;
  sqliteNote: string;
  streaming: boolean;
}

function lastJsonLine(stdout: string): ChildResult {
  const lines = stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as ChildResult;
}

function run(cmd: string, args: string[], timeoutMs = 600_000): string {
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    encoding: "utf8",
    timeout: timeoutMs,
    maxBuffer: 64 << 20,
  });
  if (r.error !== undefined || r.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (${r.error?.message ?? `exit ${r.status}`}):\n` +
        `${r.stderr ?? ""}${r.stdout ?? ""}`.trim().slice(-2000),
    );
  }
  return r.stdout;
}

/** Runs a measurement in a fresh process of this runtime. */
function child(spec: ChildSpec): ChildResult {
  return childJson(spec);
}

/** Runs `compare_child.ts` on `spec` in a fresh process; its last line, parsed. */
function childJson<T = ChildResult>(spec: ChildSpec): T {
  const script = join(HERE, "compare_child.ts");
  const arg = JSON.stringify(spec);
  const args = RUNTIME === "bun" ? [script, arg] : ["run", "-A", "--no-lock", script, arg];
  return lastJsonLine(run(process.execPath, args)) as unknown as T;
}

function goBench(env: Env, dir: string, flags: Record<string, string | number>): ChildResult {
  const args = ["bench", dir];
  for (const [k, v] of Object.entries(flags)) args.push(`--${k}`, String(v));
  return lastJsonLine(run(env.goBin!, args));
}

function freshDir(env: Env, name: string): string {
  const d = join(env.tmp, name);
  rmSync(d, { recursive: true, force: true });
  return d;
}

function measureWrite(env: Env, w: Workload, sys: System, maxSeconds: number): ChildResult {
  const dir = freshDir(env, `m-${sys}`);
  const warmup = Math.max(w.batch ?? 1, Math.round(w.entries / 10));
  try {
    if (sys === "go") {
      return goBench(env, join(dir, "wal"), {
        workload: w.group === "writers" ? "concurrent" : "write",
        "entry-size": w.entrySize,
        batch: w.batch ?? 1,
        writers: w.writers ?? 1,
        entries: w.entries,
        warmup,
        "max-seconds": maxSeconds,
      });
    }
    if (sys === "disk") {
      mkdirSync(dir, { recursive: true });
      return child({
        kind: "disk",
        system: "disk",
        dir,
        entrySize: w.entrySize,
        entries: w.entries,
      });
    }
    if (w.group === "writers") {
      return child({
        kind: "concurrent",
        system: "wal",
        dir: join(dir, "wal"),
        entrySize: w.entrySize,
        writers: w.writers!,
        entries: w.entries,
        warmup,
        maxSeconds,
      });
    }
    if (sys === "sqlite") mkdirSync(dir, { recursive: true });
    return child({
      kind: "write",
      system: sys === "sqlite" ? "sqlite" : "wal",
      dir: sys === "sqlite" ? dir : join(dir, "wal"),
      entrySize: w.entrySize,
      batch: w.batch!,
      entries: w.entries,
      warmup,
      maxSeconds,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Writes the log a replay workload reads (with etcd's WAL; the bytes are the same as ours). */
function prepareReplay(env: Env, w: Workload): { walDir: string; sqliteDir: string | null } {
  const walDir = freshDir(env, `data-${w.id}`);
  if (env.goBin !== null) {
    goBench(env, walDir, { workload: "fill", "entry-size": w.entrySize, entries: w.entries });
  } else {
    child({
      kind: "write",
      system: "wal",
      dir: walDir,
      entrySize: w.entrySize,
      batch: 1000,
      entries: w.entries,
      warmup: 0,
      maxSeconds: 0,
    });
  }
  let sqliteDir: string | null = null;
  if (env.sqlite !== null && w.systems.includes("sqlite")) {
    sqliteDir = freshDir(env, `sqlite-${w.id}`);
    mkdirSync(sqliteDir, { recursive: true });
    child({
      kind: "sqlite-fill",
      system: "sqlite",
      dir: sqliteDir,
      entrySize: w.entrySize,
      entries: w.entries,
    });
  }
  return { walDir, sqliteDir };
}

function measureReplay(
  env: Env,
  sys: System,
  data: { walDir: string; sqliteDir: string | null },
): ChildResult {
  if (sys === "go") return goBench(env, data.walDir, { workload: "replay" });
  if (sys === "sqlite") return child({ kind: "replay", system: "sqlite", dir: data.sqliteDir! });
  return child({
    kind: "replay",
    system: sys === "wal-stream" ? "wal-stream" : "wal",
    dir: data.walDir,
  });
}

/**
 * Writes the log of a raft workload as an etcd data directory: the segments in
 * `<data>/member/wal` (by etcd's Go WAL where there is Go), an empty `<data>/member/snap`.
 */
function prepareRaft(env: Env, w: Workload): string {
  const data = freshDir(env, `data-${w.id}`);
  mkdirSync(join(data, "member", "snap"), { recursive: true });
  const walDir = join(data, "member", "wal");
  if (env.goBin !== null) {
    goBench(env, walDir, { workload: "fill", "entry-size": w.entrySize, entries: w.entries });
  } else {
    child({
      kind: "write",
      system: "wal",
      dir: walDir,
      entrySize: w.entrySize,
      batch: 1000,
      entries: w.entries,
      warmup: 0,
      maxSeconds: 0,
    });
  }
  return data;
}

/** One open of a raft workload's log in a fresh process: ReadAll, readAll or RaftStorage.open. */
function measureRaftOpen(env: Env, w: Workload, sys: System, data: string): ChildResult {
  const walDir = join(data, "member", "wal");
  if (sys === "go") return goBench(env, walDir, { workload: "replay" });
  if (sys === "wal") return child({ kind: "replay", system: "wal", dir: walDir });
  return child({ kind: "raft-open", system: "raft", dir: data, entrySize: w.entrySize });
}

/** The reads of a raft workload, every run, and their medians. */
interface RaftReads {
  workload: string;
  label: string;
  /** Median over the runs of each figure. */
  summary: RaftReadsSummary;
  runs: RaftReadsResult[];
}

interface RaftReadsSummary {
  entries: number;
  cacheBytes: number;
  samples: number;
  hitWindow: number;
  scanBatch: number;
  termNs: number;
  random: { p50Us: number; p99Us: number; meanUs: number };
  randomHit: { p50Us: number; p99Us: number; meanUs: number };
  /** Entries per second of the sequential scan. */
  scanEntriesPerSec: number;
  /** CPU microseconds per entry of the sequential scan. */
  scanCpuUsPerEntry: number;
  heldBytesAfter: number;
}

function medianOf(xs: number[]): number {
  return median(xs, (x) => x);
}

function summarizeReads(runs: RaftReadsResult[]): RaftReadsSummary {
  const lat = (pick: (r: RaftReadsResult) => Latency) => ({
    p50Us: medianOf(runs.map((r) => pick(r).p50Us)),
    p99Us: medianOf(runs.map((r) => pick(r).p99Us)),
    meanUs: medianOf(runs.map((r) => pick(r).meanUs)),
  });
  return {
    entries: runs[0].entries,
    cacheBytes: runs[0].cacheBytes,
    samples: runs[0].random.samples,
    hitWindow: runs[0].randomHit.hitWindow,
    scanBatch: runs[0].scan.batch,
    termNs: medianOf(runs.map((r) => r.termNs)),
    random: lat((r) => r.random),
    randomHit: lat((r) => r.randomHit),
    scanEntriesPerSec: medianOf(runs.map((r) => r.scan.entries / r.scan.seconds)),
    scanCpuUsPerEntry: medianOf(runs.map((r) => (r.scan.cpuSeconds / r.scan.entries) * 1e6)),
    heldBytesAfter: Math.max(...runs.map((r) => r.heldBytesAfter)),
  };
}

/**
 * A raft workload: its log written once, then per run each system's open in a fresh
 * process and (with `reads`) one process of reads after `RaftStorage.open`, in an order
 * rotated from run to run.
 */
function runRaft(env: Env, w: Workload, systems: System[], repeat: number) {
  process.stderr.write(`${w.id}: writing the log (an etcd data directory) ...\n`);
  const data = prepareRaft(env, w);
  const runs = new Map<System, ChildResult[]>(systems.map((s) => [s, []]));
  const reads: RaftReadsResult[] = [];
  const steps: (System | "reads")[] = [...systems];
  if (w.reads !== undefined && systems.includes("raft")) steps.push("reads");
  try {
    for (let rep = 0; rep < repeat; rep++) {
      const order = steps.map((_, i) => steps[(i + rep) % steps.length]);
      for (const step of order) {
        if (step === "reads") {
          const r = childJson<RaftReadsResult>({
            kind: "raft-reads",
            system: "raft",
            dir: data,
            entrySize: w.entrySize,
            ...w.reads!,
          });
          reads.push(r);
          process.stderr.write(
            `${w.id} reads #${rep + 1}: random p50 ${r.random.p50Us.toFixed(1)} us, p99 ${
              r.random.p99Us.toFixed(1)
            } us; scan ${fmtInt(r.scan.entries / r.scan.seconds)} entries/s; term ${
              r.termNs.toFixed(0)
            } ns\n`,
          );
          continue;
        }
        const r = measureRaftOpen(env, w, step, data);
        runs.get(step)!.push(r);
        process.stderr.write(
          `${w.id} ${step} #${rep + 1}: ${fmtInt(r.entries / r.seconds)} entries/s ` +
            `(${r.entries} in ${r.seconds.toFixed(2)} s), peak RSS ${mib(r.maxRssBytes)}\n`,
        );
      }
    }
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
  const goRuns = runs.get("go");
  const goRate = goRuns === undefined ? null : toRow(w, "go", env, goRuns).entriesPerSec;
  const rows = systems.map((sys) => {
    const row = toRow(w, sys, env, runs.get(sys)!);
    row.ratioVsGo = goRate === null ? null : row.entriesPerSec / goRate;
    return row;
  });
  const raftReads: RaftReads | null = reads.length === 0
    ? null
    : { workload: w.id, label: w.label, summary: summarizeReads(reads), runs: reads };
  return { rows, reads: raftReads };
}

// ---------------------------------------------------------------------------------------
// Results

interface Row {
  workload: string;
  label: string;
  group: Group;
  system: System;
  systemLabel: string;
  /** Median run (by entries/s). */
  entriesPerSec: number;
  mbPerSec: number;
  /** CPU time (user + system, all threads) per entry of the median run, in microseconds. */
  cpuUsPerEntry: number | null;
  /** Largest peak RSS over the runs. */
  maxRssBytes: number;
  /** Largest (peak RSS - RSS before the timed part) over the runs (JS; Go replay). */
  rssGrowthBytes: number | null;
  /** raft: `RaftStorage.heldBytes` right after open (the index), largest over the runs. */
  heldBytes?: number;
  ratioVsGo: number | null;
  capped: boolean;
  runs: ChildResult[];
}

interface Target {
  target: string;
  value: string;
  required: string;
  met: boolean;
  /** value / required for ratio targets (below 1: missed by that factor). */
  factor: number | null;
}

interface Results {
  runtime: "deno" | "bun";
  runtimeVersion: string;
  date: string;
  quick: boolean;
  host: {
    cpus: number;
    cpuModel: string;
    kernel: string;
    tmp: string;
    /** 1-minute load average at the start and the end of the run: others' work skews it. */
    loadAvg: [number, number];
  };
  /** The commit measured, and whether src/ or mod.ts had uncommitted changes. */
  source: { commit: string; dirty: boolean | null };
  notes: string[];
  rows: Row[];
  /** Reads after `RaftStorage.open` (issue 13), per raft workload that measures them. */
  raftReads?: RaftReads[];
  targets: Target[];
}

function systemLabel(sys: System, env: Env): string {
  switch (sys) {
    case "go":
      return "etcd 3.4 wal (Go)";
    case "wal":
      return `@raftlog/wal (${RUNTIME})`;
    case "wal-stream":
      return `@raftlog/wal entries() (${RUNTIME})`;
    case "sqlite":
      return `SQLite ${env.sqlite ?? ""} WAL+FULL`.replace("  ", " ");
    case "disk":
      return `disk: append+fdatasync (${RUNTIME})`;
    case "raft":
      return `RaftStorage.open (${RUNTIME})`;
  }
}

function median<T>(xs: T[], key: (x: T) => number): T {
  const s = [...xs].sort((a, b) => key(a) - key(b));
  return s[(s.length - 1) >> 1];
}

function toRow(w: Workload, sys: System, env: Env, runs: ChildResult[]): Row {
  const rate = (r: ChildResult) => r.entries / r.seconds;
  const m = median(runs, rate);
  let growth: number | null = null;
  for (const r of runs) {
    if (r.rssBeforeBytes !== undefined) {
      growth = Math.max(growth ?? 0, r.maxRssBytes - r.rssBeforeBytes);
    }
  }
  const held = runs.map((r) => r.heldBytes).filter((b) => b !== undefined);
  return {
    workload: w.id,
    label: w.label,
    group: w.group,
    system: sys,
    systemLabel: systemLabel(sys, env),
    ...(held.length > 0 ? { heldBytes: Math.max(...held) } : {}),
    entriesPerSec: rate(m),
    mbPerSec: m.bytes / m.seconds / 1e6,
    cpuUsPerEntry: m.cpuSeconds === undefined ? null : (m.cpuSeconds / m.entries) * 1e6,
    maxRssBytes: Math.max(...runs.map((r) => r.maxRssBytes)),
    rssGrowthBytes: growth,
    ratioVsGo: null,
    capped: runs.some((r) => r.capped === true),
    runs,
  };
}

function evaluateTargets(rows: Row[], raftReads: RaftReads[] = []): Target[] {
  const t: Target[] = [];
  const find = (id: string, sys: System) => rows.find((r) => r.workload === id && r.system === sys);
  const ratioTarget = (name: string, value: number | null, need: number) => {
    if (value === null || !Number.isFinite(value)) return;
    t.push({
      target: name,
      value: `${value.toFixed(2)}x`,
      required: `>= ${need}x`,
      met: value >= need,
      factor: value / need,
    });
  };
  for (const r of rows) {
    if (r.group !== "write" || r.system !== "wal") continue;
    const batch = Number(r.workload.split("-x")[1]);
    ratioTarget(`${r.label}: vs etcd Go WAL`, r.ratioVsGo, batch === 1 ? 0.95 : 1.2);
  }
  const replay = rows.find((r) =>
    r.group === "replay" && r.entriesPerSec > 0 && /x100B$/.test(r.workload) && r.system === "wal"
  );
  if (replay !== undefined) {
    ratioTarget(`${replay.label}: readAll vs etcd Go WAL`, replay.ratioVsGo, 3);
    const go = find(replay.workload, "go");
    if (go !== undefined) {
      t.push({
        target: `${replay.label}: peak RSS vs etcd Go WAL`,
        value: mib(replay.maxRssBytes),
        required: `<= ${mib(go.maxRssBytes)}`,
        met: replay.maxRssBytes <= go.maxRssBytes,
        factor: go.maxRssBytes / replay.maxRssBytes,
      });
    }
  }
  // one writer that syncs every save: "1 writer" and "write 100 B, sync each" are the same
  // workload; the faster of the two is the (stricter) reference
  const singles = [find("writers-1", "wal"), find("write-100B-x1", "wal")]
    .filter((r) => r !== undefined).map((r) => r!.entriesPerSec);
  const many = find("writers-64", "wal");
  if (singles.length > 0 && many !== undefined) {
    ratioTarget(
      "64 writers vs the faster single sync-each writer row (this library)",
      many.entriesPerSec / Math.max(...singles),
      20,
    );
  }
  for (const r of rows) {
    if (r.group !== "write" || r.system !== "wal") continue;
    const sq = find(r.workload, "sqlite");
    if (sq === undefined) continue;
    ratioTarget(`${r.label}: vs SQLite`, r.entriesPerSec / sq.entriesPerSec, 1);
  }
  const stream = rows.find((r) => r.group === "stream" && r.system === "wal-stream");
  if (stream !== undefined && stream.rssGrowthBytes !== null) {
    t.push({
      target: `${stream.label}: RSS growth`,
      value: mib(stream.rssGrowthBytes),
      required: "< 100 MB",
      met: stream.rssGrowthBytes < 100e6,
      factor: 100e6 / stream.rssGrowthBytes,
    });
  }
  t.push(...raftTargets(rows, raftReads));
  return t;
}

/**
 * Issue 13's targets for raft storage: open at least 2x the rate of Go's ReadAll with under
 * a tenth of its peak RSS; entries(i, i+1) at random under 10 us at p50 and 100 us at p99;
 * sequential scans within 20% of readAll per entry; at most 8 B of index per entry (plus
 * the cache); 10M entries open in less memory than readAll of 1M.
 */
function raftTargets(rows: Row[], raftReads: RaftReads[]): Target[] {
  const t: Target[] = [];
  const at = (re: RegExp, sys: System) => rows.find((r) => re.test(r.workload) && r.system === sys);
  const big = /^raft-open-.*x1000B$/;
  const many = /^raft-open-.*x10B$/;
  const ref = /^raft-readall-/;
  const bigRaft = at(big, "raft");
  const bigGo = at(big, "go");
  const bigWal = at(big, "wal");
  if (bigRaft !== undefined && bigGo !== undefined) {
    const ratio = bigRaft.entriesPerSec / bigGo.entriesPerSec;
    t.push({
      target: `${bigRaft.label}: RaftStorage.open vs etcd Go ReadAll, entries/s`,
      value: `${ratio.toFixed(2)}x`,
      required: ">= 2x",
      met: ratio >= 2,
      factor: ratio / 2,
    });
    const tenth = bigGo.maxRssBytes / 10;
    t.push({
      target: `${bigRaft.label}: RaftStorage.open peak RSS vs a tenth of Go ReadAll's`,
      value: mib(bigRaft.maxRssBytes),
      required: `< ${mib(tenth)}`,
      met: bigRaft.maxRssBytes < tenth,
      factor: tenth / bigRaft.maxRssBytes,
    });
  }
  const reads = raftReads.find((r) => big.test(r.workload));
  if (reads !== undefined) {
    const { p50Us, p99Us } = reads.summary.random;
    for (const [name, v, need] of [["p50", p50Us, 10], ["p99", p99Us, 100]] as const) {
      t.push({
        target: `${reads.label}: entries(i, i+1) at random i, ${name}`,
        value: `${v.toFixed(1)} us`,
        required: `< ${need} us`,
        met: v < need,
        factor: need / v,
      });
    }
    if (bigWal !== undefined) {
      const ratio = reads.summary.scanEntriesPerSec / bigWal.entriesPerSec;
      t.push({
        target: `${reads.label}: entries(lo, lo+${reads.summary.scanBatch}) scan vs readAll, ` +
          "entries/s",
        value: `${ratio.toFixed(2)}x`,
        required: ">= 0.8x",
        met: ratio >= 0.8,
        factor: ratio / 0.8,
      });
    }
  }
  for (const r of [bigRaft, at(many, "raft")]) {
    if (r?.heldBytes === undefined) continue;
    const per = r.heldBytes / r.runs[0].entries;
    t.push({
      target: `${r.label}: index bytes per entry (heldBytes after open; the cache is apart)`,
      value: `${per.toFixed(1)} B`,
      required: "<= 8 B",
      met: per <= 8,
      factor: 8 / per,
    });
  }
  const manyRaft = at(many, "raft");
  for (const sys of ["wal", "go"] as const) {
    const base = at(ref, sys);
    if (manyRaft === undefined || base === undefined) continue;
    const log = /\S+ x \d+ B/.exec(base.label)?.[0] ?? base.label;
    t.push({
      target: `${manyRaft.label}: RaftStorage.open peak RSS vs ` +
        `${sys === "go" ? "Go ReadAll" : "readAll"} of ${log}`,
      value: mib(manyRaft.maxRssBytes),
      required: `< ${mib(base.maxRssBytes)}`,
      met: manyRaft.maxRssBytes < base.maxRssBytes,
      factor: base.maxRssBytes / manyRaft.maxRssBytes,
    });
  }
  return t;
}

// ---------------------------------------------------------------------------------------
// Printing

function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(0)} MiB`;
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function table(headers: string[], rows: string[][], rightAlign: boolean[]): string {
  const width = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (rightAlign[i] ? c.padStart(width[i]) : c.padEnd(width[i]))).join("  ")
      .trimEnd();
  return [line(headers), line(width.map((n) => "-".repeat(n))), ...rows.map(line)].join("\n");
}

function printResults(res: Results): void {
  const cells = res.rows.map((r) => [
    r.label,
    r.systemLabel,
    fmtInt(r.entriesPerSec) + (r.capped ? "*" : ""),
    r.mbPerSec.toFixed(1),
    r.cpuUsPerEntry === null ? "-" : r.cpuUsPerEntry.toFixed(r.cpuUsPerEntry < 10 ? 2 : 0),
    mib(r.maxRssBytes),
    r.ratioVsGo === null ? "-" : `${r.ratioVsGo.toFixed(2)}x`,
  ]);
  console.log(
    `\n${res.runtime} ${res.runtimeVersion}, ${res.date}${res.quick ? " (--quick)" : ""}; ` +
      `${res.host.cpus} x ${res.host.cpuModel}; Linux ${res.host.kernel}; load ${
        res.host.loadAvg.map((x) => x.toFixed(1)).join(" -> ")
      }; data in ${res.host.tmp}; ` +
      `commit ${res.source.commit.slice(0, 12)}${
        res.source.dirty ? " + uncommitted src/ changes" : ""
      }\n`,
  );
  console.log(
    table(
      ["workload", "system", "entries/s", "MB/s", "CPU us/entry", "peak RSS", "vs Go"],
      cells,
      [false, false, true, true, true, true, true],
    ),
  );
  console.log(
    "\nentries/s, MB/s (entry payload, 10^6 B) and CPU us/entry (user+system CPU time of the " +
      "process, all threads, per entry) are from the median run; peak RSS is the largest peak " +
      "(VmHWM) of the measuring process over the runs; * = stopped by the time cap.",
  );
  for (const n of res.notes) console.log(`note: ${n}`);
  printRaft(res);
  if (res.targets.length > 0) {
    console.log("\ntargets (issue 5; issue 13 for raft storage):");
    console.log(
      table(
        ["target", "value", "required", "result"],
        res.targets.map((t) => [
          t.target,
          t.value,
          t.required,
          t.met
            ? `met${t.factor === null ? "" : ` (${t.factor.toFixed(2)}x the requirement)`}`
            : `MISSED${
              t.factor === null
                ? ""
                : ` (at ${(t.factor * 100).toFixed(t.factor > 0.99 ? 1 : 0)}% of it)`
            }`,
        ]),
        [false, true, true, false],
      ),
    );
  }
}

/** The raft storage rows again with their memory per entry, and the reads after open. */
function printRaft(res: Results): void {
  const rows = res.rows.filter((r) => r.group === "raft");
  if (rows.length === 0) return;
  const perEntry = (bytes: number | null | undefined, r: Row) =>
    bytes == null ? "-" : (bytes / r.runs[0].entries).toFixed(1);
  console.log(
    "\nraft storage (issue 13): opening an etcd data directory (member/wal; member/snap empty), " +
      "each open in a fresh process, warm page cache; RSS growth = peak RSS - RSS before the open" +
      " (largest over the runs); index = RaftStorage.heldBytes right after open",
  );
  console.log(
    table(
      [
        "log",
        "system",
        "open s",
        "entries/s",
        "peak RSS",
        "RSS growth",
        "B/entry",
        "index B/entry",
      ],
      rows.map((r) => [
        r.label,
        r.systemLabel,
        median(r.runs, (x) => x.seconds).seconds.toFixed(2),
        fmtInt(r.entriesPerSec),
        mib(r.maxRssBytes),
        r.rssGrowthBytes === null ? "-" : mib(r.rssGrowthBytes),
        perEntry(r.rssGrowthBytes, r),
        perEntry(r.heldBytes, r),
      ]),
      [false, false, true, true, true, true, true, true],
    ),
  );
  for (const rr of res.raftReads ?? []) {
    const m = rr.summary;
    const us = (x: number) => x.toFixed(1);
    const readAll = res.rows.find((r) => r.workload === rr.workload && r.system === "wal");
    const go = res.rows.find((r) => r.workload === rr.workload && r.system === "go");
    const vs = (r: Row | undefined) =>
      r === undefined ? "-" : `${(m.scanEntriesPerSec / r.entriesPerSec).toFixed(2)}x`;
    console.log(
      `\nreads after RaftStorage.open, ${rr.label}: one process per run, cache ${
        mib(m.cacheBytes)
      }, medians of ${rr.runs.length} run(s); held after the reads ${mib(m.heldBytesAfter)}`,
    );
    console.log(
      table(
        ["call", "p50 us", "p99 us", "mean us", "entries/s", "vs readAll", "vs Go ReadAll"],
        [
          [
            `entries(i, i+1), random i (${fmtInt(m.samples)} calls)`,
            us(m.random.p50Us),
            us(m.random.p99Us),
            us(m.random.meanUs),
            "-",
            "-",
            "-",
          ],
          [
            `entries(i, i+1), random i in the first ${fmtInt(m.hitWindow)} (cache hits)`,
            us(m.randomHit.p50Us),
            us(m.randomHit.p99Us),
            us(m.randomHit.meanUs),
            "-",
            "-",
            "-",
          ],
          [
            `entries(lo, lo+${m.scanBatch}), first to last index (CPU ${
              m.scanCpuUsPerEntry.toFixed(2)
            } us/entry)`,
            "-",
            "-",
            us(1e6 / m.scanEntriesPerSec),
            fmtInt(m.scanEntriesPerSec),
            vs(readAll),
            vs(go),
          ],
          [`term(i), random i: ${m.termNs.toFixed(0)} ns per call`, "-", "-", "-", "-", "-", "-"],
        ],
        [false, true, true, true, true, true, true],
      ),
    );
  }
}

// ---------------------------------------------------------------------------------------
// The chart: entries/s ratio to etcd's Go WAL per workload, latest Deno and Bun results

const COLORS: Record<string, string> = {
  "deno wal": "#1f6fb2",
  "bun wal": "#e07b39",
  "deno wal-stream": "#7fb3e0",
  "bun wal-stream": "#f2b98f",
  "deno sqlite": "#6a9a55",
  "bun sqlite": "#b5c94f",
  "deno disk": "#9a9a9a",
  "bun disk": "#c9c9c9",
  "deno raft": "#5b3f9e",
  "bun raft": "#b0417a",
};

/** The issue 5 target for this library's entries/s relative to Go, where it sets one. */
function targetRatio(id: string): number | undefined {
  if (id.startsWith("write-")) return id.endsWith("-x1") ? 0.95 : 1.2;
  if (id === "replay-1Mx100B") return 3;
  if (id === "raft-open-1GBx1000B") return 2;
  return undefined;
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Per runtime, the newest full result file (with `anyKind`: the newest of any kind). */
function latestResults(anyKind: boolean): Results[] {
  if (!existsSync(RESULTS)) return [];
  const out: Results[] = [];
  for (const rt of ["deno", "bun"]) {
    const files = readdirSync(RESULTS)
      .filter((f) => f.startsWith(`${rt}-`) && f.endsWith(".json"))
      .map((f) => join(RESULTS, f))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    const pick = anyKind
      ? files[0]
      : files.find((f) => !f.endsWith("-quick.json") && !f.endsWith("-partial.json"));
    if (pick !== undefined) out.push(JSON.parse(readFileSync(pick, "utf8")) as Results);
  }
  return out;
}

/** Draws the chart as plain SVG text. */
export function drawChart(results: Results[]): string {
  const workloads: { id: string; label: string }[] = [];
  for (const r of results) {
    for (const row of r.rows) {
      if (row.ratioVsGo !== null && !workloads.some((w) => w.id === row.workload)) {
        workloads.push({ id: row.workload, label: row.label });
      }
    }
  }
  interface Bar {
    key: string;
    name: string;
    ratio: number;
  }
  const groups = workloads.map((w) => {
    const bars: Bar[] = [];
    for (const sys of ["wal", "wal-stream", "sqlite", "disk", "raft"] as const) {
      for (const r of results) {
        const row = r.rows.find((x) => x.workload === w.id && x.system === sys);
        if (row?.ratioVsGo == null) continue;
        bars.push({ key: `${r.runtime} ${sys}`, name: row.systemLabel, ratio: row.ratioVsGo });
      }
    }
    return { ...w, bars };
  });
  const ratios = groups.flatMap((g) => g.bars.map((b) => b.ratio)).filter((x) => x > 0);
  const ticks = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500];
  const lo = Math.min(0.5, ...ratios.map((x) => x * 0.8));
  const hi = Math.max(2, ...ratios.map((x) => x * 1.25));
  const t0 = ticks.filter((t) => t <= lo).pop() ?? ticks[0];
  const t1 = ticks.find((t) => t >= hi) ?? ticks[ticks.length - 1];
  const left = 250;
  const plotW = 560;
  const right = 70;
  const barH = 11;
  const gap = 2;
  const groupGap = 12;
  const top = 56;
  const x = (v: number) => left + (Math.log(v / t0) / Math.log(t1 / t0)) * plotW;
  let y = top;
  const body: string[] = [];
  for (const g of groups) {
    const h = Math.max(1, g.bars.length) * (barH + gap);
    body.push(
      `<text x="${left - 8}" y="${y + h / 2 + 4}" text-anchor="end" class="wl">${
        esc(g.label)
      }</text>`,
    );
    const target = targetRatio(g.id);
    if (target !== undefined) {
      body.push(
        `<line x1="${x(target).toFixed(1)}" x2="${x(target).toFixed(1)}" y1="${y - 2}" ` +
          `y2="${y + h}" class="target"><title>target ${target}x</title></line>`,
      );
    }
    for (const b of g.bars) {
      const v = Math.max(b.ratio, t0);
      const w = Math.max(1, x(v) - left);
      body.push(
        `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" ` +
          `fill="${COLORS[b.key] ?? "#888"}"><title>${esc(b.name)}: ${
            b.ratio.toFixed(2)
          }x</title></rect>`,
      );
      body.push(
        `<text x="${(left + w + 4).toFixed(1)}" y="${y + barH - 2}" class="val">` +
          `${b.ratio >= 10 ? b.ratio.toFixed(0) : b.ratio.toFixed(2)}x</text>`,
      );
      y += barH + gap;
    }
    if (g.bars.length === 0) y += barH + gap;
    y += groupGap;
  }
  const bottom = y;
  const axis: string[] = [];
  for (const t of ticks.filter((t) => t >= t0 && t <= t1)) {
    axis.push(
      `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${top - 6}" y2="${bottom}" ` +
        `class="${t === 1 ? "one" : "grid"}"/>`,
      `<text x="${x(t).toFixed(1)}" y="${
        bottom + 14
      }" text-anchor="middle" class="tick">${t}x</text>`,
    );
  }
  const keys = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.key)))];
  const names = new Map(groups.flatMap((g) => g.bars.map((b) => [b.key, b.name] as const)));
  const legend: string[] = [];
  let lx = left;
  let ly = bottom + 34;
  for (const k of keys) {
    const label = names.get(k) ?? k;
    const w = 18 + label.length * 6.3 + 16;
    if (lx + w > left + plotW + right) {
      lx = left;
      ly += 16;
    }
    legend.push(
      `<rect x="${lx}" y="${ly - 9}" width="12" height="10" fill="${COLORS[k] ?? "#888"}"/>`,
      `<text x="${lx + 16}" y="${ly}" class="leg">${esc(label)}</text>`,
    );
    lx += w;
  }
  const height = ly + 30;
  const width = left + plotW + right;
  const sources = results.map((r) =>
    `${r.runtime} ${r.runtimeVersion} (${r.date}${r.quick ? ", quick" : ""})`
  )
    .join(", ");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<style>
.wl{font-size:12px;fill:#222}.val{font-size:10px;fill:#333;paint-order:stroke;stroke:#fff;stroke-width:3px}.tick{font-size:10px;fill:#555}
.leg{font-size:11px;fill:#222}.grid{stroke:#ddd;stroke-width:1}.one{stroke:#000;stroke-width:1.5}
.target{stroke:#d62828;stroke-width:2;stroke-dasharray:3 2}.title{font-size:14px;font-weight:bold}
.sub{font-size:11px;fill:#555}
</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="20" class="title">entries/s relative to etcd 3.4's Go WAL (1x = Go; log scale; longer is faster)</text>
<text x="10" y="38" class="sub">${
    esc(sources)
  }; red dashes: issue 5 and 13 targets for this library</text>
${axis.join("\n")}
${body.join("\n")}
${legend.join("\n")}
</svg>
`;
}

/**
 * Redraws `chart.svg` from the latest full runs, or (quick) `chart-quick.svg` from the
 * latest runs of any kind, so that a smoke test never replaces the real chart.
 */
function writeChart(quick: boolean): string | null {
  const results = latestResults(quick);
  if (results.length === 0) return null;
  const path = join(RESULTS, quick ? "chart-quick.svg" : "chart.svg");
  writeFileSync(path, drawChart(results));
  denoFmt(path);
  return path;
}

/**
 * Runs `deno fmt` on files this runner wrote, so that the repository's `deno fmt --check`
 * stays clean (it formats JSON and SVG too). Under Bun it uses the Deno from node_modules.
 */
function denoFmt(...paths: string[]): void {
  const deno = RUNTIME === "deno" ? process.execPath : join(ROOT, "node_modules/.bin/deno");
  if (!existsSync(deno)) return;
  spawnSync(deno, ["fmt", "--quiet", ...paths], { cwd: ROOT, stdio: "ignore" });
}

// ---------------------------------------------------------------------------------------
// Setup and main

function parseArgs(argv: string[]) {
  const opts = {
    quick: false,
    repeat: 0,
    only: null as RegExp | null,
    goBin: null as string | null,
    chart: false,
    keep: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--quick") opts.quick = true;
    else if (a === "--chart") opts.chart = true;
    else if (a === "--keep") opts.keep = true;
    else if (a === "--repeat") opts.repeat = Number(argv[++i]);
    else if (a === "--only") opts.only = new RegExp(argv[++i]);
    else if (a === "--go-bin") opts.goBin = argv[++i];
    else if (a === "--help" || a === "-h") {
      console.log(
        "usage: compare.ts [--quick] [--repeat N] [--only REGEX] [--go-bin PATH] [--keep] | --chart",
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${a} (see --help)`);
  }
  return opts;
}

async function sqliteAvailable(): Promise<{ name: string | null; note: string }> {
  const spec = RUNTIME === "bun" ? "bun:sqlite" : "node:sqlite";
  try {
    const m = await import(spec) as Record<string, unknown>;
    const ctor = RUNTIME === "bun" ? m.Database : m.DatabaseSync;
    if (typeof ctor !== "function") return { name: null, note: `${spec} has no database class` };
    return { name: spec, note: `SQLite through ${spec}` };
  } catch (e) {
    return {
      name: null,
      note: `${spec} is unavailable here (${(e as Error).message}): SQLite rows skipped`,
    };
  }
}

function buildGo(tmp: string, given: string | null): { bin: string | null; note: string } {
  if (given !== null) return { bin: given, note: `etcd harness: ${given}` };
  const bin = join(tmp, "etcd34compat");
  try {
    run("sh", [join(ROOT, "compat/etcd34/build.sh"), bin], 300_000);
    return {
      bin,
      note:
        "etcd 3.4 wal: compat/etcd34 harness (Debian golang-etcd-server-dev), built for this run",
    };
  } catch (e) {
    return {
      bin: null,
      note: `etcd harness could not be built, Go rows skipped: ${
        (e as Error).message.split("\n")[0]
      }`,
    };
  }
}

/** The commit (read-only git calls) and whether the library's sources differ from it. */
function sourceState(): { commit: string; dirty: boolean | null } {
  const git = (...args: string[]) =>
    spawnSync("git", args, { cwd: ROOT, encoding: "utf8" }).stdout?.trim() ?? "";
  // a copy of the tree (git archive) is not a repository: it may say what it was taken from
  const commit = git("rev-parse", "HEAD") || process.env.BENCH_SOURCE_COMMIT || "unknown";
  const status = spawnSync("git", ["status", "--porcelain", "--", "src", "mod.ts"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  return { commit, dirty: status.status === 0 ? status.stdout.trim() !== "" : null };
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.chart) {
    const path = writeChart(false);
    console.log(path === null ? "no results in bench/results/" : `wrote ${path}`);
    return;
  }
  const p = plan(opts.quick);
  if (opts.repeat > 0) {
    p.repeat = {
      write: opts.repeat,
      writers: opts.repeat,
      replay: opts.repeat,
      stream: opts.repeat,
      raft: opts.repeat,
    };
  }
  if (opts.only !== null) p.workloads = p.workloads.filter((w) => opts.only!.test(w.id));

  const tmp = mkdtempSync(join(tmpdir(), "raftlog-compare-"));
  const started = performance.now();
  const loadStart = loadavg()[0];
  const notes: string[] = [];
  try {
    const go = buildGo(tmp, opts.goBin);
    const sq = await sqliteAvailable();
    const streaming = typeof (await import("../mod.ts")).WAL.prototype.entries === "function";
    const env: Env = {
      tmp,
      goBin: go.bin,
      goNote: go.note,
      sqlite: sq.name,
      sqliteNote: sq.note,
      streaming,
    };
    notes.push(go.note, sq.note);
    if (!streaming) {
      notes.push(
        "TODO: wal.entries() (streaming replay) is not in this build: its rows are skipped",
      );
    }
    notes.push(
      "SQLite is not run with concurrent writers: its drivers are synchronous, so one " +
        "connection's transactions run one after another (see the sync-each rows)",
      "replay reads a warm page cache (the log was just written); replay = OpenForRead + ReadAll " +
        "(Go), WAL.openForRead + readAll() / entries() (this library), SELECT of every row (SQLite)",
    );
    if (p.workloads.some((w) => w.group === "raft")) {
      notes.push(
        "raft rows: open = Go OpenForRead + ReadAll, WAL.openForRead + readAll(), or " +
          "RaftStorage.open (boot as etcd does: newest .snap, WAL opened and indexed, ready to " +
          "append), of <data>/member/wal, with a warm page cache; entries/s is entries over the open",
      );
    }

    const rows: Row[] = [];
    const raftReads: RaftReads[] = [];
    for (const w of p.workloads) {
      const systems = w.systems.filter((s) =>
        (s !== "go" || env.goBin !== null) &&
        (s !== "sqlite" || env.sqlite !== null) &&
        (s !== "wal-stream" || env.streaming)
      );
      if (systems.length === 0) continue;
      if (w.group === "raft") {
        const r = runRaft(env, w, systems, p.repeat.raft);
        rows.push(...r.rows);
        if (r.reads !== null) raftReads.push(r.reads);
        continue;
      }
      const runs = new Map<System, ChildResult[]>(systems.map((s) => [s, []]));
      let data: { walDir: string; sqliteDir: string | null } | null = null;
      if (w.group === "replay" || w.group === "stream") {
        process.stderr.write(`${w.id}: writing the log to replay ...\n`);
        data = prepareReplay(env, w);
      }
      for (let rep = 0; rep < p.repeat[w.group]; rep++) {
        // rotate the order so that no system always runs right after another one
        const order = systems.map((_, i) => systems[(i + rep) % systems.length]);
        for (const sys of order) {
          const r = data === null
            ? measureWrite(env, w, sys, p.maxSeconds)
            : measureReplay(env, sys, data);
          runs.get(sys)!.push(r);
          process.stderr.write(
            `${w.id} ${sys} #${rep + 1}: ${fmtInt(r.entries / r.seconds)} entries/s ` +
              `(${r.entries} in ${r.seconds.toFixed(2)} s${r.capped ? ", capped" : ""}), ` +
              `peak RSS ${mib(r.maxRssBytes)}\n`,
          );
        }
      }
      if (data !== null) {
        rmSync(data.walDir, { recursive: true, force: true });
        if (data.sqliteDir !== null) rmSync(data.sqliteDir, { recursive: true, force: true });
      }
      const goRuns = runs.get("go");
      const goRate = goRuns === undefined ? null : toRow(w, "go", env, goRuns).entriesPerSec;
      for (const sys of systems) {
        const row = toRow(w, sys, env, runs.get(sys)!);
        row.ratioVsGo = goRate === null ? null : row.entriesPerSec / goRate;
        rows.push(row);
      }
    }
    const now = new Date();
    const res: Results = {
      runtime: RUNTIME,
      runtimeVersion: RUNTIME_VERSION,
      date: now.toISOString(),
      quick: opts.quick,
      host: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? "?",
        kernel: release(),
        // where the data went, without this machine's temp path (results are committed)
        tmp: "<os tmpdir>/raftlog-compare",
        loadAvg: [loadStart, loadavg()[0]],
      },
      source: sourceState(),
      notes,
      rows,
      ...(raftReads.length > 0 ? { raftReads } : {}),
      targets: evaluateTargets(rows, raftReads),
    };
    notes.push(`total run time ${((performance.now() - started) / 1000).toFixed(0)} s`);
    printResults(res);
    mkdirSync(RESULTS, { recursive: true });
    const file = join(
      RESULTS,
      `${RUNTIME}-${now.toISOString().slice(0, 10)}${opts.quick ? "-quick" : ""}${
        opts.only !== null ? "-partial" : ""
      }.json`,
    );
    writeFileSync(file, JSON.stringify(res, null, 2) + "\n");
    denoFmt(file);
    console.log(`\nwrote ${file}`);
    const chart = opts.only === null ? writeChart(opts.quick) : null;
    if (chart !== null) console.log(`wrote ${chart}`);
  } finally {
    if (!opts.keep) rmSync(tmp, { recursive: true, force: true });
    else console.log(`kept the scratch directory ${tmp}`);
  }
}

if (import.meta.main) await main();
