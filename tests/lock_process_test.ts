/**
 * Locks hold across processes: while one process has a WAL open for writing, a writer in
 * another process (Deno or Bun, both using flock) gets LOCKED and a reader is not blocked.
 */

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { EntryType, WAL } from "../mod.ts";
import { withTempDir } from "./helpers.ts";

const script = join(process.cwd(), "tests/fixtures/try_open.ts");
const bin = join(process.cwd(), "node_modules/.bin");
const runtimes: { name: string; cmd: string; args: string[] }[] = [
  { name: "Deno", cmd: join(bin, "deno"), args: ["run", "-A", script] },
  { name: "Bun", cmd: join(bin, "bun"), args: [script] },
];

function run(rt: { cmd: string; args: string[] }, ...extra: string[]): string {
  return execFileSync(rt.cmd, [...rt.args, ...extra], { encoding: "utf8", timeout: 60_000 })
    .trim();
}

describe("locks across processes", () => {
  for (const rt of runtimes) {
    test(`a ${rt.name} process cannot open a WAL this process is writing, but can read it`, {
      skip: existsSync(rt.cmd) ? false : `${rt.cmd} not installed (npm ci)`,
    }, async () => {
      await withTempDir(async (tmp) => {
        const dir = join(tmp, "wal");
        const wal = await WAL.create(dir, undefined, { segmentSizeBytes: 4096 });
        await wal.save({ term: 1n, vote: 1n, commit: 1n }, [
          { term: 1n, index: 1n, type: EntryType.Normal, data: new Uint8Array([1]) },
        ]);
        await wal.cut();
        assert.equal(run(rt, dir, "write"), "LOCKED");
        assert.equal(run(rt, dir, "read"), "ok 1");
        await wal.close();
        assert.equal(run(rt, dir, "write"), "ok 1");
      });
    });
  }
});
