/**
 * Locks hold across processes and runtimes: while one process has a WAL open for writing, a
 * writer in another process (Deno, Bun, or Node) gets LOCKED and a reader is not blocked;
 * the lock goes with the holder when it closes the WAL or is killed.
 */

import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { EntryType, WAL } from "../mod.ts";
import { withTempDir } from "./helpers.ts";

const script = join(process.cwd(), "tests/fixtures/try_open.ts");
const bin = join(process.cwd(), "node_modules/.bin");
let buildDir = "";

interface Runtime {
  name: string;
  cmd: string;
  args: () => string[];
}

const runtimes: Runtime[] = [
  { name: "Deno", cmd: join(bin, "deno"), args: () => ["run", "-A", script] },
  { name: "Bun", cmd: join(bin, "bun"), args: () => [script] },
  // Node 20 cannot run TypeScript: the fixture is bundled to JavaScript first (before()).
  {
    name: "Node",
    cmd: process.execPath.endsWith("node") ? process.execPath : "node",
    args: () => [join(buildDir, "try_open.mjs")],
  },
];

function run(rt: Runtime, ...extra: string[]): string {
  return execFileSync(rt.cmd, [...rt.args(), ...extra], { encoding: "utf8", timeout: 60_000 })
    .trim();
}

/** Starts a child that holds the WAL open for writing until its stdin closes or it is killed. */
async function hold(rt: Runtime, dir: string) {
  const child = spawn(rt.cmd, [...rt.args(), dir, "hold"], { stdio: ["pipe", "pipe", "inherit"] });
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout!.once("data", (b) => resolve(String(b).trim()));
    child.once("exit", (code) => reject(new Error(`${rt.name} holder exited with ${code}`)));
  });
  assert.equal(line, "held");
  const exited = new Promise((r) => child.once("exit", r));
  return { child, exited };
}

async function sampleWal(dir: string): Promise<void> {
  const wal = await WAL.create(dir, undefined, { segmentSizeBytes: 4096 });
  await wal.save({ term: 1n, vote: 1n, commit: 1n }, [
    { term: 1n, index: 1n, type: EntryType.Normal, data: new Uint8Array([1]) },
  ]);
  await wal.cut();
  await wal.close();
}

describe("locks across processes", () => {
  before(async () => {
    buildDir = await mkdtemp(join(tmpdir(), "raftlog-node-"));
    execFileSync(join(bin, "bun"), [
      "build",
      "--target=node",
      script,
      "--outfile",
      join(buildDir, "try_open.mjs"),
    ], { stdio: "ignore" });
  });
  after(async () => {
    await rm(buildDir, { recursive: true, force: true });
  });

  for (const rt of runtimes) {
    test(`a ${rt.name} process cannot open a WAL this process is writing, but can read it`, {
      skip: existsSync(rt.cmd) || rt.name === "Node" ? false : `${rt.cmd} not installed (npm ci)`,
    }, async () => {
      await withTempDir(async (tmp) => {
        const dir = join(tmp, "wal");
        await sampleWal(dir);
        const wal = await WAL.open(dir, undefined, { segmentSizeBytes: 4096 });
        await wal.readAll();
        assert.equal(run(rt, dir, "write"), "LOCKED");
        assert.equal(run(rt, dir, "read"), "ok 1");
        await wal.close();
        assert.equal(run(rt, dir, "write"), "ok 1");
      });
    });

    test(`while a ${rt.name} process writes a WAL this process gets LOCKED, until it closes or is killed`, async () => {
      await withTempDir(async (tmp) => {
        const dir = join(tmp, "wal");
        await sampleWal(dir);
        for (const ending of ["close", "SIGKILL"] as const) {
          const { child, exited } = await hold(rt, dir);
          await assert.rejects(WAL.open(dir), { code: "LOCKED" });
          if (ending === "close") child.stdin!.end();
          else child.kill("SIGKILL");
          await exited;
          // a killed Node holder's flock(1) helper notices the closed pipe a moment later
          let wal: WAL | null = null;
          for (let i = 0; i < 50 && wal === null; i++) {
            wal = await WAL.open(dir).catch(async (e) => {
              if (e.code !== "LOCKED") throw e;
              await new Promise((r) => setTimeout(r, 20));
              return null;
            });
          }
          assert.ok(wal !== null, `the lock was not released after ${ending}`);
          assert.equal((await wal.readAll()).entries.length, 1);
          await wal.close();
        }
      });
    });
  }
});
