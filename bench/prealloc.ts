/**
 * What a segment's layout costs an fdatasync: appends of one size, each followed by
 * fdatasync, into a 64 MB file prepared four ways:
 *
 * - `sparse`: extended with ftruncate (what Deno can do; a hole until written);
 * - `fallocate`: `fallocate(1)`, mode 0 (what etcd's Go WAL and this library's Bun adapter
 *   do; unwritten extents until written);
 * - `zero-filled`: every byte written with zeros first (what the file pipeline does to the
 *   spare segment);
 * - `sparse + zero-ahead`: sparse, with zeros written 1 MiB ahead of the appends (what the WAL
 *   does on a tail the pipeline did not fill).
 *
 * Into a hole or an unwritten extent, the fdatasync after an append also has the file system
 * journal the block allocation or extent conversion; into written blocks it flushes data only.
 * Run with `deno run -A bench/prealloc.ts [appends] [bytes]` or `bun bench/prealloc.ts ...`
 * (defaults: 300 appends of 100,000 bytes, then 2,000 of 128). Numbers only, no assertions.
 *
 * @module
 */

import { execFileSync } from "node:child_process";
import {
  closeSync,
  fdatasyncSync,
  fsyncSync,
  mkdtempSync,
  openSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const SIZE = 64_000_000;
const CHUNK = 1 << 20;
const zeros = new Uint8Array(CHUNK);

type Layout = "sparse" | "fallocate" | "zero-filled" | "sparse + zero-ahead";
const LAYOUTS: Layout[] = ["sparse", "fallocate", "zero-filled", "sparse + zero-ahead"];

function prepare(layout: Layout, path: string): void {
  if (layout === "fallocate") {
    execFileSync("fallocate", ["-l", String(SIZE), path]);
    return;
  }
  writeFileSync(path, new Uint8Array(0));
  truncateSync(path, SIZE);
  if (layout === "zero-filled") {
    const fd = openSync(path, "r+");
    for (let off = 0; off < SIZE; off += CHUNK) {
      writeSync(fd, zeros, 0, Math.min(CHUNK, SIZE - off), off);
    }
    fsyncSync(fd);
    closeSync(fd);
  }
}

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Appends `count` records of `bytes` bytes, each followed by fdatasync; prints the rate. */
function measure(layout: Layout, path: string, count: number, bytes: number): void {
  prepare(layout, path);
  const record = new Uint8Array(bytes).fill(7);
  const ahead = layout === "sparse + zero-ahead";
  let zeroedTo = 0;
  const fd = openSync(path, "r+");
  const append = (i: number) => {
    const end = (i + 1) * bytes;
    writeSync(fd, record, 0, bytes, i * bytes);
    if (ahead && end > zeroedTo) {
      zeroedTo = Math.min(SIZE, end + CHUNK);
      writeSync(fd, zeros, 0, zeroedTo - end, end);
    }
    fdatasyncSync(fd);
  };
  const warmup = Math.max(1, count / 10);
  for (let i = 0; i < warmup; i++) append(i);
  const c0 = cpuMicros();
  const t0 = performance.now();
  for (let i = warmup; i < warmup + count; i++) append(i);
  const ms = performance.now() - t0;
  const cpu = (cpuMicros() - c0) / count;
  closeSync(fd);
  rmSync(path);
  const rate = Math.round((count / ms) * 1000).toLocaleString("en-US");
  console.log(
    `${layout.padEnd(20)} ${String(bytes).padStart(7)} B  ${rate.padStart(7)} appends/s  ` +
      `${((ms * 1000) / count).toFixed(0).padStart(5)} us each  ${
        cpu.toFixed(0).padStart(4)
      } us CPU`,
  );
}

const dir = mkdtempSync(join(tmpdir(), "raftlog-prealloc-"));
try {
  const shapes = process.argv.length > 2
    ? [[Number(process.argv[2]), Number(process.argv[3] ?? 100_000)]]
    : [[300, 100_000], [2000, 128]];
  for (const [count, bytes] of shapes) {
    if (bytes * (count * 1.1 + 1) > SIZE) throw new Error("appends do not fit in 64 MB");
    // two rounds, alternating layouts, so a burst of noise does not favour one of them
    for (let round = 0; round < 2; round++) {
      for (const layout of LAYOUTS) measure(layout, join(dir, "segment"), count, bytes);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
