/**
 * Memory and time of opening a log for raft storage (issue 13): `readAll` (every entry in
 * memory, as etcd's MemoryStorage is fed) beside `IndexedLog.open` (an index of a few bytes
 * per entry, entries read back on demand), each in a fresh child process of this runtime,
 * side by side on one WAL of N entries. Prints wall time, RSS growth and RSS growth per entry,
 * and the index's own bytes per entry.
 *
 *     deno run -A bench/raft_index.ts [--entries N] [--data BYTES]
 *     bun bench/raft_index.ts [--entries N] [--data BYTES]
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { WAL } from "../mod.ts";
import { defaultFileSystem } from "../src/fs/default.ts";
import { IndexedLog } from "../src/raft/log_index.ts";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
};

/** Runs in the child: opens `dir` one way and prints {ms, rssGrowth, indexBytes} as JSON. */
async function child(mode: string, dir: string): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage().rss;
  const t = performance.now();
  let keep: unknown;
  let indexBytes = 0;
  let count = 0;
  if (mode === "readAll") {
    const wal = await WAL.openForRead(dir);
    const r = await wal.readAll();
    await wal.close();
    keep = r;
    count = r.entries.length;
  } else {
    const log = await IndexedLog.open(await defaultFileSystem(), dir, { index: 0n, term: 0n }, 0);
    keep = log;
    indexBytes = log.index.heldBytes;
    count = log.index.length;
  }
  const ms = performance.now() - t;
  gc?.();
  const rss = process.memoryUsage().rss - before;
  console.log(JSON.stringify({ ms, rss, indexBytes, count, kept: keep !== undefined }));
}

async function main(): Promise<void> {
  const n = arg("entries", 1_000_000);
  const dataBytes = arg("data", 100);
  const tmp = mkdtempSync(join(tmpdir(), "raftlog-bench-index-"));
  try {
    const dir = join(tmp, "wal");
    const wal = await WAL.create(dir);
    const data = new Uint8Array(dataBytes).fill(0x61);
    for (let i = 1; i <= n; i += 1000) {
      const es = [];
      for (let j = i; j < i + 1000 && j <= n; j++) {
        es.push({ term: 1n, index: BigInt(j), type: 0, data });
      }
      await wal.save({ term: 1n, vote: 1n, commit: es[es.length - 1].index }, es);
    }
    await wal.close();
    const self = fileURLToPath(import.meta.url);
    const deno = (globalThis as { Deno?: unknown }).Deno !== undefined;
    const cmd = process.execPath;
    console.log(
      `${n} entries of ${dataBytes} B, one child process each (${deno ? "Deno" : "Bun"}):`,
    );
    for (const mode of ["readAll", "IndexedLog.open"]) {
      const args = deno
        ? ["run", "-A", "--v8-flags=--expose-gc", self, "--child", mode, dir]
        : [self, "--child", mode, dir];
      const r = spawnSync(cmd, args, { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`${mode}: ${r.stderr}`);
      const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
      const per = (x: number) => (x / out.count).toFixed(1);
      console.log(
        `${mode.padEnd(16)} ${(out.ms / 1000).toFixed(2).padStart(6)} s  RSS +${
          (out.rss / 2 ** 20).toFixed(0).padStart(5)
        } MiB (${per(out.rss).padStart(6)} B/entry)` +
          (out.indexBytes > 0 ? `  index ${per(out.indexBytes)} B/entry` : ""),
      );
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const at = process.argv.indexOf("--child");
if (at >= 0) await child(process.argv[at + 1], process.argv[at + 2]);
else await main();
