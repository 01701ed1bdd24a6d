/**
 * The `wal` executable of the runtime running this file (Deno and Bun run cli.ts, Node the
 * compiled dist-test/cli.js) with its standard output closed early, as in
 * `wal dump <dir> | head -1`: every command exits 0 and prints nothing to standard error, on
 * output large enough (at least 256 KiB) that its writes meet the closed pipe. Also: the whole
 * output read through a pipe is what runCli prints in-process, and a failure still exits 1.
 */

import { execFile, execFileSync } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { runCli } from "../cli.ts";
import { InternalRaftRequestSchema, MetadataSchema } from "../pb.ts";
import { EntryType, WAL } from "../mod.ts";
import { defaultFileSystem } from "../src/fs/default.ts";
import { RUNTIME, withTempDir, wrapFiles } from "./helpers.ts";

const run = promisify(execFile);
const enc = new TextEncoder();
/** More than a pipe holds (64 KiB on Linux), with room for what the reader takes first. */
const BIG = 256 * 1024;
const ENTRIES = 3000;
const SEGMENTS = 2800;

/** This runtime's `wal` executable: the command and the arguments before wal's own. */
function executable(): [string, string[]] {
  const bin = join(process.cwd(), "node_modules/.bin");
  if (RUNTIME === "Deno") return [join(bin, "deno"), ["run", "-A", "cli.ts"]];
  if (RUNTIME === "Bun") return [join(bin, "bun"), ["cli.ts"]];
  return [process.execPath, [fileURLToPath(new URL("../cli.js", import.meta.url))]];
}

/**
 * Options for writing test WALs fast: no fsync and no locks (this is about output, not
 * durability; and under Node every lock is a round trip to a helper process).
 */
async function noSync(segmentSizeBytes: number) {
  const fs = wrapFiles(await defaultFileSystem(), () => ({
    sync: () => Promise.resolve(),
    syncData: () => Promise.resolve(),
    tryLock: () => Promise.resolve(true),
  }));
  return { segmentSizeBytes, fs: { ...fs, syncDir: () => Promise.resolve() } };
}

/**
 * An etcd data directory, `<tmp>/data`, whose WAL (member/wal, 1 MiB segments) has ENTRIES
 * put requests, each followed by a snapshot record of 100 voters: dump, snapshots and
 * dump-logs print more than {@link BIG}.
 */
async function bigDataDir(tmp: string): Promise<string> {
  const data = join(tmp, "data");
  await mkdir(join(data, "member", "snap"), { recursive: true });
  const metadata = toBinary(MetadataSchema, create(MetadataSchema, { NodeID: 1n, ClusterID: 2n }));
  const wal = await WAL.create(join(data, "member", "wal"), metadata, await noSync(1 << 20));
  const voters = Array.from({ length: 100 }, (_, i) => BigInt(i + 1));
  const confState = {
    voters,
    learners: [],
    votersOutgoing: [],
    learnersNext: [],
    autoLeave: false,
  };
  for (let i = 1n; i <= BigInt(ENTRIES); i++) {
    const put = { key: enc.encode(`key-${i}`), value: enc.encode("v".repeat(60)) };
    const bytes = toBinary(InternalRaftRequestSchema, create(InternalRaftRequestSchema, { put }));
    await wal.save({ term: 2n, vote: 1n, commit: i }, [
      { term: 2n, index: i, type: EntryType.Normal, data: bytes },
    ]);
    await wal.saveSnapshot({ index: i, term: 2n, confState });
  }
  await wal.close();
  return data;
}

/**
 * A WAL, `<tmp>/segments`, of SEGMENTS segments of one entry each (64-byte segments), for
 * `stat` to list more than {@link BIG} (a line of about 100 bytes a segment).
 */
async function manySegments(tmp: string): Promise<string> {
  const dir = join(tmp, "segments");
  const wal = await WAL.create(dir, new Uint8Array(), await noSync(64));
  for (let i = 1n; i < BigInt(SEGMENTS); i++) { // the first segment holds no entry
    await wal.save({ term: 1n, vote: 1n, commit: i }, [
      { term: 1n, index: i, type: EntryType.Normal, data: new Uint8Array(8) },
    ]);
  }
  await wal.close();
  return dir;
}

/** What `wal argv` prints to standard output in-process, and its exit code. */
async function inProcess(argv: string[]): Promise<{ code: number; out: Buffer }> {
  const out: Uint8Array[] = [];
  const code = await runCli(argv, {
    out: (l) => out.push(enc.encode(l + "\n")),
    err: () => {},
    write: (b) => out.push(b.slice()),
  });
  return { code, out: Buffer.concat(out) };
}

/**
 * Runs the executable with `argv` into `head -c 1`: the byte head passed on, the exit
 * statuses of the executable and of head, and everything on standard error.
 */
async function intoHead(argv: string[]): Promise<{ first: string; status: string; err: string }> {
  const [cmd, pre] = executable();
  const script = '"$@" | head -c 1; echo " ${PIPESTATUS[*]}"';
  const r = await run("bash", ["-c", script, "bash", cmd, ...pre, ...argv], {
    encoding: "utf8",
    timeout: 60_000,
  });
  const m = /^([\s\S]?) (\d+ \d+)\n$/.exec(r.stdout);
  assert.ok(m !== null, `unexpected output of the pipeline: ${JSON.stringify(r.stdout)}`);
  return { first: m[1], status: m[2], err: r.stderr };
}

describe(`the ${RUNTIME} wal executable with standard output closed early`, () => {
  test("every command exits 0 without a word on stderr; read to the end, the output is runCli's", {
    timeout: 120_000,
  }, async () => {
    await withTempDir(async (tmp) => {
      const data = await bigDataDir(tmp);
      const wal = join(data, "member", "wal");
      const segments = await manySegments(tmp);
      execFileSync("tar", [
        "xzf",
        join(process.cwd(), "tests/fixtures/etcd-dump-logs-3.4.23/datadir.tar.gz"),
        "-C",
        tmp,
      ]);
      const etcd = join(tmp, "datadir");
      const cases: { argv: string[]; big: boolean; whole?: true }[] = [
        { argv: ["dump", wal], big: true, whole: true },
        { argv: ["dump", wal, "--format", "json"], big: true }, // one write of it all
        { argv: ["snapshots", wal], big: true },
        { argv: ["stat", segments], big: true },
        { argv: ["dump-logs", data], big: true },
        { argv: ["dump-logs", "-raw", data], big: true, whole: true },
        { argv: ["dump-logs", etcd], big: false },
        { argv: ["verify", wal], big: false },
        { argv: ["repair", wal], big: false },
        { argv: ["--help"], big: false },
      ];
      const [cmd, pre] = executable();
      for (const { argv, big, whole } of cases) {
        const name = `wal ${argv.join(" ")}`;
        const want = await inProcess(argv);
        assert.equal(want.code, 0, name);
        if (big) assert.ok(want.out.length >= BIG, `${name}: only ${want.out.length} bytes`);
        const r = await intoHead(argv);
        assert.equal(r.err, "", `${name}: stderr`);
        assert.equal(r.status, "0 0", `${name}: exit statuses of wal and head`);
        assert.equal(r.first, want.out.subarray(0, 1).toString(), `${name}: first byte`);
        if (whole) {
          const all = await run(cmd, [...pre, ...argv], {
            encoding: "buffer",
            maxBuffer: 256 * 1024 * 1024,
            timeout: 60_000,
          });
          assert.equal(all.stderr.length, 0, `${name}, read to the end: stderr`);
          assert.equal(Buffer.compare(all.stdout, want.out), 0, `${name}, read to the end`);
        }
      }
    });
  });

  test("a failure still exits 1 with its message", { timeout: 60_000 }, async () => {
    await withTempDir(async (tmp) => {
      const r = await intoHead(["dump", join(tmp, "missing")]);
      assert.equal(r.status, "1 0");
      assert.equal(r.first, "");
      assert.match(r.err, /^wal: FILE_NOT_FOUND: /);
    });
  });
});
