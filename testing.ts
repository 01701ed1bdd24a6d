/**
 * Test helpers for code built on this WAL: an in-memory file system that simulates
 * crashes. Pass it as `options.fs`, drive your code, crash it, and check what recovery
 * finds.
 *
 * @example
 * ```ts
 * import { WAL } from "@raftlog/wal";
 * import { CrashFileSystem } from "@raftlog/wal/testing";
 *
 * const fs = new CrashFileSystem(1);
 * const wal = await WAL.create("/wal", undefined, { fs });
 * await wal.save({ term: 1n, vote: 1n, commit: 0n }, [
 *   { term: 1n, index: 1n, type: 0, data: new Uint8Array([1]) },
 * ]);
 * fs.crash(); // the power goes out; the save above was acknowledged, so it survives
 * const again = await WAL.open("/wal", undefined, { fs });
 * const { entries } = await again.readAll(); // entries.length === 1
 * ```
 *
 * @module
 */

export { CrashFileSystem, SimulatedCrash } from "./src/fs/crash.ts";
