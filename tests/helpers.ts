/**
 * Shared test helpers: scratch directories, segment listings, a seeded PRNG and a file system
 * wrapper.
 *
 * @module
 */

import { mkdtemp, readdir, rm } from "node:fs/promises";
import type { FileSystem, WalFile } from "../mod.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Runs `fn` with a fresh scratch directory that is removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "raftlog-test-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Runs `fn` with the path of a WAL directory that does not exist yet (`wal` in a fresh scratch
 * directory, which is passed too and removed afterwards).
 */
export function withWalDir<T>(fn: (dir: string, tmp: string) => Promise<T>): Promise<T> {
  return withTempDir((tmp) => fn(join(tmp, "wal"), tmp));
}

/** The names of the segment files (`*.wal`) in `dir`, in sequence order. */
export async function walFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith(".wal")).sort();
}

/** The runtime running this test file. */
export const RUNTIME: "Deno" | "Bun" | "Node" =
  (globalThis as { Deno?: unknown }).Deno !== undefined
    ? "Deno"
    : (globalThis as { Bun?: unknown }).Bun !== undefined
    ? "Bun"
    : "Node";

/** The runtime that runs the big runtime-independent sweeps in full; the others sample them. */
export const FULL_SIZE_RUNTIME = "Deno";

/** Whether this run checks every case of the big sweeps (the full-size runtime, or WAL_FULL_SWEEPS=1). */
export const FULL_SWEEPS: boolean = RUNTIME === FULL_SIZE_RUNTIME ||
  process.env.WAL_FULL_SWEEPS === "1";

/** The seed that picks the sampled cases: WAL_SWEEP_SEED, or a random one (printed by the sweeps). */
export const SWEEP_SEED: number = process.env.WAL_SWEEP_SEED !== undefined
  ? Number(process.env.WAL_SWEEP_SEED)
  : Math.floor(Math.random() * 2 ** 32);

/** A PRNG for sampling the sweep named `key`: FNV-1a of `key` from {@link SWEEP_SEED}. */
export function sweepRng(key: string): () => number {
  let h = SWEEP_SEED >>> 0;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619) >>> 0;
  return rng(h);
}

/** mulberry32: a small seeded PRNG, so a failing case replays exactly. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [lo, hi]. */
export function randInt(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

/** Random bytes of length n. */
export function randBytes(r: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

/**
 * A file system that passes everything to `inner`, with some methods of every opened file
 * replaced: `hooks(file)` returns the replacements (they may call the original).
 */
export function wrapFiles(
  inner: FileSystem,
  hooks: (file: WalFile) => Partial<WalFile>,
): FileSystem {
  const wrap = (f: WalFile): WalFile => ({
    path: f.path,
    read: (b, p) => f.read(b, p),
    write: (d, p) => f.write(d, p),
    truncate: (n) => f.truncate(n),
    size: () => f.size(),
    allocate: (n) => f.allocate(n),
    syncData: () => f.syncData(),
    sync: () => f.sync(),
    tryLock: () => f.tryLock(),
    close: () => f.close(),
    ...hooks(f),
  });
  return {
    name: `wrapped ${inner.name}`,
    open: async (p, o) => wrap(await inner.open(p, o)),
    readDir: (p) => inner.readDir(p),
    stat: (p) => inner.stat(p),
    mkdir: (p) => inner.mkdir(p),
    remove: (p) => inner.remove(p),
    rename: (a, b) => inner.rename(a, b),
    syncDir: (p) => inner.syncDir(p),
    copyFile: (a, b) => inner.copyFile(a, b),
  };
}

/** The whole content of the file at `path`, read through `fs`. */
export async function readFileBytes(fs: FileSystem, path: string): Promise<Uint8Array> {
  const f = await fs.open(path);
  try {
    const buf = new Uint8Array(await f.size());
    let n = 0;
    while (n < buf.length) {
      const k = await f.read(buf.subarray(n), n);
      if (k === 0) break;
      n += k;
    }
    return buf.subarray(0, n);
  } finally {
    await f.close();
  }
}
