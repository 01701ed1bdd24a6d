/**
 * Locks hold across processes and runtimes: while one process has a WAL open for writing, a
 * writer in another process (Deno, Bun, or Node) gets LOCKED and a reader is not blocked;
 * the lock goes with the holder when it closes the WAL or is killed.
 */

import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { EntryType, WAL } from "../mod.ts";
import { RUNTIME, withTempDir } from "./helpers.ts";
import { NodeFileSystem } from "../src/fs/node.ts";

const script = join(process.cwd(), "tests/fixtures/try_open.ts");
const warningScript = join(process.cwd(), "tests/fixtures/lock_warning.ts");
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
    execFileSync(join(bin, "bun"), [
      "build",
      "--target=node",
      warningScript,
      "--outfile",
      join(buildDir, "lock_warning.mjs"),
    ], { stdio: "ignore" });
  });
  after(async () => {
    await rm(buildDir, { recursive: true, force: true });
  });

  /** Runs lock_warning in a child: its lock kind, the warnings it logged, its outcome. */
  const lockWarning = (cmd: string, args: string[], env?: Record<string, string>) =>
    JSON.parse(
      execFileSync(cmd, args, {
        encoding: "utf8",
        timeout: 60_000,
        env: env === undefined ? process.env : { ...process.env, ...env },
      }),
    );
  // absolute: these children run with a PATH of the test's own
  const nodeBin = process.execPath.endsWith("node")
    ? process.execPath
    : execFileSync("sh", ["-c", "command -v node"], { encoding: "utf8" }).trim();

  test("Deno, Bun and Node lock as etcd does (OFD) and warn of nothing; Deno without --allow-ffi warns once that its locks do not exclude etcd", async () => {
    await withTempDir(async (tmp) => {
      const deno = join(bin, "deno");
      assert.deepEqual(lockWarning(deno, ["run", "-A", warningScript, join(tmp, "a")]), {
        kind: "ofd",
        warnings: [],
        outcome: "ok",
      });
      assert.deepEqual(lockWarning(join(bin, "bun"), [warningScript, join(tmp, "b")]), {
        kind: "ofd",
        warnings: [],
        outcome: "ok",
      });
      const noFfi = ["run", "--allow-read", "--allow-write", "--allow-env", warningScript];
      assert.deepEqual(lockWarning(deno, [...noFfi, join(tmp, "c")]), {
        kind: "flock",
        warnings: ["WAL locks do not exclude etcd: flock"],
        outcome: "ok",
      });
      const nodeScript = join(buildDir, "lock_warning.mjs");
      assert.deepEqual(lockWarning(nodeBin, [nodeScript, join(tmp, "d")]), {
        kind: "ofd",
        warnings: [],
        outcome: "ok",
      });
      // each child really created its WAL, and released its locks on close
      for (const d of ["a", "b", "c", "d"]) await (await WAL.open(join(tmp, d))).close();
    });
  });

  test("on Node, a lock helper (perl) that cannot run is an IO error, never a lock; a missing one leaves locks to this process and says so", async () => {
    await withTempDir(async (tmp) => {
      const nodeScript = join(buildDir, "lock_warning.mjs");
      const fake = join(tmp, "bin");
      await mkdir(fake);
      await writeFile(join(fake, "perl"), "not a program"); // not executable: EACCES
      assert.deepEqual(lockWarning(nodeBin, [nodeScript, join(tmp, "a")], { PATH: fake }), {
        kind: "ofd",
        warnings: [],
        outcome: "IO",
      });
      await chmod(join(fake, "perl"), 0o755); // runs, exits without taking the lock
      assert.deepEqual(lockWarning(nodeBin, [nodeScript, join(tmp, "b")], { PATH: fake }), {
        kind: "ofd",
        warnings: [],
        outcome: "IO",
      });
      const empty = join(tmp, "empty");
      await mkdir(empty);
      assert.deepEqual(lockWarning(nodeBin, [nodeScript, join(tmp, "c")], { PATH: empty }), {
        kind: "process",
        warnings: ["WAL locks do not exclude etcd: process"],
        outcome: "ok",
      });
    });
  });

  test("on Node, one lock helper holds the locks of a WAL of many segments", {
    skip: RUNTIME === "Node" ? false : "the Node adapter's helper runs under Node",
  }, async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      const fs = new NodeFileSystem();
      const w = await WAL.create(dir, undefined, { fs, segmentSizeBytes: 4096 });
      for (let i = 1; i <= 60; i++) {
        await w.save({ term: 1n, vote: 1n, commit: BigInt(i) }, [
          { term: 1n, index: BigInt(i), type: EntryType.Normal, data: new Uint8Array(100) },
        ]);
        if (i % 3 === 0) await w.cut();
      }
      await w.close();
      const wal = await WAL.open(dir, undefined, { fs, segmentSizeBytes: 4096 });
      await wal.readAll();
      const segments = (await readdir(dir)).filter((n) => n.endsWith(".wal")).length;
      assert.ok(segments >= 20, `segments: ${segments}`);
      const children = (await readdir("/proc")).filter((p) => /^\d+$/.test(p)).filter((p) => {
        try {
          // field 4 of /proc/<pid>/stat is the parent's pid (after the parenthesized name)
          const stat = readFileSync(`/proc/${p}/stat`, "utf8");
          return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1] === String(process.pid);
        } catch {
          return false; // exited meanwhile
        }
      });
      assert.equal(children.length, 1, `child processes of this one: ${children}`);
      await assert.rejects(WAL.open(dir, undefined, { fs }), { code: "LOCKED" });
      await wal.close();
    });
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
