/**
 * Picks the file system adapter for the running runtime: Deno, Bun, or Node.
 *
 * @module
 */

import type { FileSystem } from "./types.ts";

let cached: Promise<FileSystem> | undefined;

/** The adapter for this runtime, created once and shared. */
export function defaultFileSystem(): Promise<FileSystem> {
  cached ??= pick();
  return cached;
}

async function pick(): Promise<FileSystem> {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  if (g.Bun !== undefined) return (await import("./bun.ts")).createBunFileSystem();
  if (g.Deno !== undefined) return new (await import("./deno.ts")).DenoFileSystem();
  return new (await import("./node.ts")).NodeFileSystem();
}
