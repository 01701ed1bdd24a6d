/**
 * Real crash tests: a writer process (Deno, and separately Bun) appends to a WAL with small
 * segments and is killed with SIGKILL at a random moment, many times over on the same
 * directory. It reopens the log each time (repairing a torn tail when it finds one) and goes
 * on appending. After every kill this process replays the log itself (read-only, then for
 * writing with the repair fallback) and checks that nothing acknowledged was lost and nothing
 * was invented: entries 1..N contiguous, N at least the last acknowledged index and at most
 * the end of the batch in flight, every entry's term and bytes exactly what the writer wrote,
 * and the hard state consistent with them.
 *
 * The writer is tests/fixtures/kill_writer.ts; its entries come from
 * tests/fixtures/kill_pattern.ts, a function of (seed, index, term).
 *
 * Environment:
 *   WAL_KILL_ROUNDS  kills per writer runtime (default 15)
 *   WAL_KILL_SEED    the seed (default: random; printed on failure and in the summary)
 *   WAL_KILL_DIR_MB  a directory is retired for a fresh one once its segments pass this
 *                    size (default 24), so replay times stay bounded in a long soak
 *
 * A soak: `WAL_KILL_ROUNDS=200 deno test -A tests/kill_test.ts`, or under Bun
 * `WAL_KILL_ROUNDS=200 bun test --timeout 3600000 ./tests/kill_test.ts`.
 */

import { type ChildProcess, spawn } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  statSync,
} from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type Entry, type HardState, repair, WAL, WalError } from "../mod.ts";
import { randInt, rng, withTempDir } from "./helpers.ts";
import { isEntryData } from "./fixtures/kill_pattern.ts";

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be an integer: ${v}`);
  return n;
}

const ROUNDS = envInt("WAL_KILL_ROUNDS", 15);
const SEED = envInt("WAL_KILL_SEED", (Date.now() ^ (process.pid * 65537)) >>> 0);
const DIR_CAP_BYTES = envInt("WAL_KILL_DIR_MB", 24) * 1024 * 1024;
const SEGMENT_SIZE = 16384;
/** One kill in this many lands while the writer opens, replays or repairs. */
const EARLY_KILL_ONE_IN = 8;

const PARENT = "Bun" in globalThis ? "Bun" : "Deno" in globalThis ? "Deno" : "Node";
const script = join(process.cwd(), "tests/fixtures/kill_writer.ts");
const bin = join(process.cwd(), "node_modules/.bin");
const runtimes: { name: string; cmd: string; args: string[] }[] = [
  { name: "Deno", cmd: join(bin, "deno"), args: ["run", "-A", script] },
  { name: "Bun", cmd: join(bin, "bun"), args: [script] },
];
type Runtime = (typeof runtimes)[number];

/** Where the writer was when it died: what its last line says. */
type KillPhase = "open" | "idle" | "save" | "cut";

interface ChildRun {
  lines: string[];
  code: number | null;
  signal: string | null;
  stderr: string;
  hung: boolean;
}

/**
 * Runs the writer and kills it with SIGKILL `delay` ms after it reports being ready (or,
 * for an early kill, after it says it is opening). Resolves once it is dead and its output
 * is fully read.
 */
function runWriter(
  rt: Runtime,
  args: string[],
  plan: { early: boolean; delay: number },
): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(rt.cmd, [...rt.args, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines: string[] = [];
    let pending = "";
    let stderr = "";
    let hung = false;
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    };
    // A writer that never becomes ready is a failure, not a hang of the test.
    const guard = setTimeout(() => {
      hung = true;
      kill();
    }, 60_000);
    const onLine = (line: string) => {
      lines.push(line);
      if (killTimer !== undefined) return;
      if (plan.early ? line === "opening" : line.startsWith("open ")) {
        killTimer = setTimeout(kill, plan.delay);
      }
    };
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      pending += chunk;
      for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
        onLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      if (stderr.length < 20_000) stderr += chunk;
    });
    child.on("error", (e) => {
      clearTimeout(guard);
      clearTimeout(killTimer);
      reject(e);
    });
    child.on("close", (code: number | null, signal: string | null) => {
      clearTimeout(guard);
      clearTimeout(killTimer);
      if (pending !== "") lines.push(pending); // a torn line (never expected)
      resolve({ lines, code, signal, stderr, hung });
    });
  });
}

/** What this process knows about one WAL directory across kills. */
interface DirModel {
  path: string;
  /** Highest index whose save was acknowledged. */
  acked: bigint;
  /** Number of entries the last check found (0 before the first). */
  n: bigint;
  /** Whether a writer has ever reported the WAL open (created or replayed). */
  opened: boolean;
  /** terms[i]: the term of the last save begun for index i (what entry i must carry). */
  terms: number[];
  kills: number;
}

interface Stats {
  rounds: number;
  dirs: number;
  phase: Record<KillPhase, number>;
  cuts: number;
  saves: number;
  /** Kills after which the log ended in a torn write (UNEXPECTED_EOF on open). */
  torn: number;
  repairsByWriter: number;
  repairsByParent: number;
  maxEntries: bigint;
  maxSegments: number;
  ms: number;
}

function segmentFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith(".wal")).sort();
}

/** Copy of a WAL for a write-mode open: earlier segments hard-linked (never written), the rest copied. */
function cloneWal(src: string, dst: string): void {
  mkdirSync(dst);
  const segs = segmentFiles(src);
  const last = segs[segs.length - 1];
  for (const name of readdirSync(src)) {
    if (name.endsWith(".wal") && name !== last) linkSync(join(src, name), join(dst, name));
    else copyFileSync(join(src, name), join(dst, name));
  }
}

/** A full copy, kept for the post-mortem of a failure. */
function keepCopy(src: string): string | null {
  if (!existsSync(src)) return null;
  const dst = mkdtempSync(join(tmpdir(), `raftlog-kill-failure-${SEED}-`));
  for (const name of readdirSync(src)) copyFileSync(join(src, name), join(dst, name));
  return dst;
}

function rmDir(path: string): Promise<void> {
  return rm(path, { recursive: true, force: true });
}

function isCode(e: unknown, code: string): boolean {
  return e instanceof WalError && e.code === code;
}

/** Checks a replay against the model; returns N. */
function checkReplay(
  seed: number,
  model: DirModel,
  limit: bigint,
  entries: Entry[],
  state: HardState,
  how: string,
): bigint {
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const want = BigInt(i + 1);
    if (e.index !== want) {
      assert.fail(`${how}: entry #${i} has index ${e.index}, expected ${want} (a gap or reorder)`);
    }
    const term = model.terms[i + 1];
    if (term === undefined) {
      assert.fail(`${how}: entry ${e.index} exists but no save of it was ever begun`);
    }
    if (e.term !== BigInt(term)) {
      assert.fail(`${how}: entry ${e.index} has term ${e.term}, the last save of it had ${term}`);
    }
    if (e.type !== 0) assert.fail(`${how}: entry ${e.index} has type ${e.type}`);
    if (!isEntryData(seed, e.index, e.term, e.data)) {
      assert.fail(`${how}: entry ${e.index} (term ${e.term}) has wrong data (${e.data.length} B)`);
    }
  }
  const n = BigInt(entries.length);
  if (n < model.acked) {
    assert.fail(
      `${how}: ACKNOWLEDGED ENTRIES LOST: the log ends at ${n}, index ${model.acked} was acknowledged`,
    );
  }
  if (n > limit) assert.fail(`${how}: the log ends at ${n}, beyond anything written (${limit})`);
  if (state.commit > n) assert.fail(`${how}: hard state commit ${state.commit} > last index ${n}`);
  if (state.commit < model.acked) {
    assert.fail(
      `${how}: hard state commit ${state.commit} < acknowledged ${model.acked}: an acknowledged state was lost`,
    );
  }
  if (state.commit > 0n) {
    const term = BigInt(model.terms[Number(state.commit)]);
    if (state.term !== term || state.vote !== 1n) {
      assert.fail(
        `${how}: hard state {term ${state.term}, vote ${state.vote}, commit ${state.commit}}: expected term ${term}, vote 1`,
      );
    }
  }
  return n;
}

function sameReplay(
  a: { entries: Entry[]; state: HardState },
  b: { entries: Entry[]; state: HardState },
  how: string,
): void {
  assert.equal(b.entries.length, a.entries.length, `${how}: entry count differs from read-only`);
  assert.deepEqual(b.state, a.state, `${how}: hard state differs from read-only`);
  for (let i = 0; i < a.entries.length; i++) {
    const x = a.entries[i];
    const y = b.entries[i];
    if (x.index !== y.index || x.term !== y.term || x.data.length !== y.data.length) {
      assert.fail(`${how}: entry #${i} differs from read-only`);
    }
  }
}

/** Opens for writing, repairing a torn tail; returns the replay and whether it repaired. */
async function openForWrite(
  dir: string,
): Promise<{ entries: Entry[]; state: HardState; repaired: boolean }> {
  const options = { segmentSizeBytes: SEGMENT_SIZE };
  let repaired = false;
  let wal: WAL;
  let got: { entries: Entry[]; state: HardState };
  try {
    wal = await WAL.open(dir, undefined, options);
    got = await wal.readAll();
  } catch (e) {
    if (!isCode(e, "UNEXPECTED_EOF")) throw e;
    const r = await repair(dir, options);
    assert.ok(r.repaired, "repair found nothing to repair after UNEXPECTED_EOF");
    repaired = true;
    wal = await WAL.open(dir, undefined, options);
    got = await wal.readAll();
  }
  await wal.close();
  return { ...got, repaired };
}

async function soak(rt: Runtime, seed: number): Promise<Stats> {
  const random = rng(seed);
  const stats: Stats = {
    rounds: 0,
    dirs: 0,
    phase: { open: 0, idle: 0, save: 0, cut: 0 },
    cuts: 0,
    saves: 0,
    torn: 0,
    repairsByWriter: 0,
    repairsByParent: 0,
    maxEntries: 0n,
    maxSegments: 0,
    ms: 0,
  };
  const started = Date.now();
  await withTempDir(async (tmp) => {
    const fresh = (): DirModel => {
      stats.dirs++;
      return {
        path: join(tmp, `wal${stats.dirs}`),
        acked: 0n,
        n: 0n,
        opened: false,
        terms: [],
        kills: 0,
      };
    };
    let model = fresh();
    let recent: string[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const term = round; // every writer run is a new term
      const early = randInt(random, 1, EARLY_KILL_ONE_IN) === 1;
      const delay = early ? randInt(random, 0, 40) : randInt(random, 20, 300);
      const batchSeed = randInt(random, 0, 0x7fffffff);
      const inPlace = random() < 0.5;
      const where = () =>
        `seed ${seed} (WAL_KILL_SEED=${SEED}), ${PARENT} parent, ${rt.name} writer, round ${round}` +
        ` (term ${term}, ${
          early ? "early " : ""
        }kill after ${delay} ms), directory #${stats.dirs}` +
        ` after ${model.kills} kills there`;
      try {
        const run = await runWriter(
          rt,
          [model.path, String(seed), String(term), String(SEGMENT_SIZE), String(batchSeed)],
          { early, delay },
        );
        recent = run.lines.slice(-12);
        if (run.hung) assert.fail(`the writer never became ready; stderr: ${run.stderr}`);
        const error = run.lines.find((l) => l.startsWith("error "));
        if (error !== undefined) assert.fail(`the writer failed: ${error}; stderr: ${run.stderr}`);
        if (run.signal !== "SIGKILL") {
          assert.fail(`the writer exited with ${run.code}/${run.signal}; stderr: ${run.stderr}`);
        }
        model.kills++;
        stats.rounds++;

        // Replay the writer's story.
        let phase: KillPhase = "open";
        let next: bigint | null = null;
        let lastBegin: bigint | null = null;
        let writerRepaired = false;
        for (const line of run.lines) {
          const [kind, a, b, c] = line.split(" ");
          switch (kind) {
            case "opening":
            case "torn":
              break;
            case "repaired":
              writerRepaired = true;
              break;
            case "open": {
              const last = BigInt(a);
              if (b === "1" && model.opened) assert.fail(`the writer created a WAL over one`);
              if (last !== model.n) {
                assert.fail(`the writer replayed ${last} entries; the last check found ${model.n}`);
              }
              if (c === "1") stats.repairsByWriter++;
              model.opened = true;
              next = last + 1n;
              phase = "idle";
              break;
            }
            case "begin": {
              const first = BigInt(a);
              const end = BigInt(b);
              assert.equal(first, next, `writer began ${line}`);
              for (let i = Number(first); i <= Number(end); i++) model.terms[i] = term;
              lastBegin = end;
              phase = "save";
              break;
            }
            case "cut":
              stats.cuts++;
              phase = "cut";
              break;
            case "ack":
              assert.equal(BigInt(a), lastBegin, `writer acknowledged ${line}`);
              model.acked = lastBegin!;
              next = lastBegin! + 1n;
              stats.saves++;
              phase = "idle";
              break;
            default:
              assert.fail(`unexpected writer output: ${JSON.stringify(line)}`);
          }
        }
        if (writerRepaired && phase === "open") stats.repairsByWriter++; // killed after repair
        stats.phase[phase]++;
        // Nothing past the batch in flight can exist; with no save begun, nothing past N.
        const limit = lastBegin ?? model.n;

        // Read-only replay: must hold everything acknowledged, and only what was written.
        if (!existsSync(model.path)) {
          if (model.opened) assert.fail(`the WAL directory is gone`);
          continue; // killed while creating it
        }
        let ro: { entries: Entry[]; state: HardState };
        try {
          const wal = await WAL.openForRead(model.path, undefined, {
            segmentSizeBytes: SEGMENT_SIZE,
          });
          ro = await wal.readAll();
        } catch (e) {
          assert.fail(`read-only replay failed: ${e instanceof WalError ? e.code : ""} ${e}`);
        }
        const n = checkReplay(seed, model, limit, ro.entries, ro.state, "read-only replay");

        // Then for writing, with the repair fallback: in place half the time, else on a
        // copy, so that the writer meets torn tails too.
        let target = model.path;
        if (!inPlace) {
          target = model.path + `.check${round}`;
          cloneWal(model.path, target);
        }
        let rw;
        try {
          rw = await openForWrite(target);
        } catch (e) {
          assert.fail(`write-mode open failed: ${e instanceof WalError ? e.code : ""} ${e}`);
        }
        if (rw.repaired) {
          stats.torn++;
          if (inPlace) stats.repairsByParent++;
        }
        checkReplay(seed, model, limit, rw.entries, rw.state, "write-mode replay");
        sameReplay(ro, rw, "write-mode replay");
        if (!inPlace) await rmDir(target);
        model.n = n;
        if (n > stats.maxEntries) stats.maxEntries = n;

        const segs = segmentFiles(model.path);
        if (segs.length > stats.maxSegments) stats.maxSegments = segs.length;
        let bytes = 0;
        for (const s of segs) bytes += statSync(join(model.path, s)).size;
        if (bytes > DIR_CAP_BYTES) {
          await rmDir(model.path);
          model = fresh();
        }
      } catch (e) {
        const kept = keepCopy(model.path);
        const msg = e instanceof Error ? e.message : String(e);
        throw new Error(
          `${where()}: ${msg}\nlast writer lines:\n  ${recent.join("\n  ")}` +
            (kept === null ? "" : `\nthe WAL directory is kept in ${kept}`),
          { cause: e },
        );
      }
    }
  });
  stats.ms = Date.now() - started;
  return stats;
}

describe(`SIGKILL crash tests (${PARENT} parent)`, () => {
  for (const [k, rt] of runtimes.entries()) {
    test(`a ${rt.name} writer killed ${ROUNDS} times loses no acknowledged entry`, {
      skip: existsSync(rt.cmd) ? false : `${rt.cmd} not installed (npm ci)`,
    }, async () => {
      const seed = (SEED + k * 0x9e3779b9) >>> 0;
      const s = await soak(rt, seed);
      console.log(
        `kill test: ${PARENT} parent, ${rt.name} writer, seed ${seed} (WAL_KILL_SEED=${SEED}): ` +
          `${s.rounds} kills in ${(s.ms / 1000).toFixed(1)} s over ${s.dirs} director${
            s.dirs === 1 ? "y" : "ies"
          }; killed while opening ${s.phase.open}, between saves ${s.phase.idle}, ` +
          `mid-save ${s.phase.save}, mid-cut ${s.phase.cut}; torn tails ${s.torn} ` +
          `(repaired by the writer ${s.repairsByWriter}, by this process ${s.repairsByParent}); ` +
          `${s.saves} saves acknowledged, ${s.cuts} cuts, up to ${s.maxEntries} entries ` +
          `and ${s.maxSegments} segments`,
      );
    });
  }
});
