/**
 * The npm package, as a Node user gets it: `npm pack` builds it (the prepack script compiles
 * dist/ with tsc) and packs it; the tarball installs into a fresh Node ESM project without a
 * registry (next to a tarball of the @bufbuild/protobuf this checkout installed, with an empty
 * npm cache and --offline); there a plain .mjs creates a WAL, saves, closes, reopens and
 * replays it under Node (and the same under Bun and Deno), saves an entry it built with
 * protobuf-es and `@raftlog/wal/pb` and reads it back, the `wal` bin reads it, and
 * TypeScript code type-checks against the shipped declarations. Skipped, saying why, when
 * node or npm is missing (never in CI).
 */

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

const root = process.cwd();

function version(cmd: string): string | null {
  try {
    return execFileSync(cmd, ["--version"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return null;
  }
}

/** The version of the real Node on PATH (Deno runs itself for "node" when there is none). */
function nodeVersion(): string | null {
  try {
    const v = execFileSync("node", [
      "-p",
      "process.versions.deno || process.versions.bun ? 'not Node' : process.version",
    ], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    return v.startsWith("v") ? v : null;
  } catch {
    return null;
  }
}

const node = nodeVersion();
const npmVersion = node === null ? null : version("npm");
const missing = node === null
  ? "node is not on PATH"
  : npmVersion === null
  ? "npm is not on PATH"
  : !existsSync(join(root, "node_modules/typescript/bin/tsc"))
  ? "node_modules/typescript is missing (npm ci)"
  : null;
if (missing !== null) {
  if (process.env.CI === "true") throw new Error(`npm package test cannot run in CI: ${missing}`);
  console.warn(`SKIPPED npm package test: ${missing}`);
}

/** Runs a command; on failure the error carries its exit status, stdout and stderr. */
function run(cmd: string, args: string[], cwd: string): string {
  try {
    return execFileSync(cmd, args, {
      cwd,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: 1 << 26,
    });
  } catch (e) {
    const r = e as { status?: number; stdout?: string; stderr?: string };
    throw new Error(
      `${cmd} ${args.join(" ")} (in ${cwd}) exited with ${r.status}\n` +
        `stdout:\n${r.stdout ?? ""}\nstderr:\n${r.stderr ?? ""}`,
    );
  }
}

/** `npm pack --json` of `what` into `dest`: the tarball's file name and packed paths. */
function npmPack(what: string, dest: string, cache: string, extra: string[] = []) {
  const out = run("npm", [
    "pack",
    what,
    "--json",
    "--pack-destination",
    dest,
    "--cache",
    cache,
    "--no-update-notifier",
    ...extra,
  ], root);
  const [info] = JSON.parse(out.slice(out.indexOf("["))) as {
    filename: string;
    files: { path: string }[];
  }[];
  return { tarball: join(dest, info.filename), files: info.files.map((f) => f.path) };
}

/** Creates a WAL over several segments, reopens it at a snapshot, replays; prints JSON. */
const ROUNDTRIP_MJS = `
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { EntryType, exists, verify, WAL, WalError } from "@raftlog/wal";
import { runCli } from "@raftlog/wal/cli";
import { CrashFileSystem } from "@raftlog/wal/testing";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { EntrySchema, EntryType as PbEntryType, fromMessage, HardStateSchema, toMessage } from "@raftlog/wal/pb";

const dir = join(process.argv[2], "wal");
const enc = new TextEncoder();
const dec = new TextDecoder();
const opts = { segmentSizeBytes: 4096 };

const wal = await WAL.create(dir, enc.encode("node-1"), opts);
for (let i = 1n; i <= 40n; i++) {
  await wal.save({ term: 2n, vote: 1n, commit: i }, [
    { term: 2n, index: i, type: EntryType.Normal, data: enc.encode("put k" + i + "=" + "v".repeat(200)) },
  ]);
  if (i === 10n) await wal.saveSnapshot({ index: 10n, term: 2n });
}
await wal.close();

const again = await WAL.open(dir, { index: 10n, term: 2n }, opts);
const { metadata, state, entries } = await again.readAll();
await again.save(state, [{ term: 2n, index: 41n, type: EntryType.Normal, data: enc.encode("last") }]);
await again.close();

const reader = await WAL.openForRead(dir, undefined, opts);
const all = await reader.readAll();
await reader.close();

let missingCode = null;
try {
  await WAL.open(join(dir, "missing"));
} catch (e) {
  missingCode = e instanceof WalError ? e.code : String(e);
}
const cli = [];
const cliCode = await runCli(["stat", dir], { out: (l) => cli.push(l), err: (l) => cli.push(l) }, opts);
const mem = new CrashFileSystem(1);
const memWal = await WAL.create("/mem/wal", undefined, { fs: mem });
await memWal.close();
const report = await verify(dir, undefined, opts);

// An entry built and encoded with protobuf-es (as a peer would send it), converted and saved.
const pbDir = join(process.argv[2], "pb-wal");
const wire = toBinary(EntrySchema, create(EntrySchema, {
  Term: 2n ** 53n + 1n,
  Index: 1n,
  Type: PbEntryType.EntryNormal,
  Data: enc.encode("from protobuf-es"),
}));
const pbWal = await WAL.create(pbDir, undefined, opts);
await pbWal.save(
  fromMessage(HardStateSchema, create(HardStateSchema, { term: 2n ** 53n + 1n, vote: 1n, commit: 1n })),
  [fromMessage(EntrySchema, fromBinary(EntrySchema, wire))],
);
await pbWal.close();
const pbReader = await WAL.openForRead(pbDir, undefined, opts);
const pbAll = await pbReader.readAll();
await pbReader.close();
const back = toBinary(EntrySchema, toMessage(EntrySchema, pbAll.entries[0]));

console.log(JSON.stringify({
  runtime: process.versions.deno ? "deno" : process.versions.bun ? "bun" : "node",
  metadata: dec.decode(metadata),
  state: { term: String(state.term), vote: String(state.vote), commit: String(state.commit) },
  afterSnapshot: entries.map((e) => Number(e.index)),
  lastData: dec.decode(all.entries.at(-1).data),
  allCount: all.entries.length,
  segments: (await readdir(dir)).filter((n) => n.endsWith(".wal")).length > 2,
  verify: { tornTail: report.tornTail, records: report.records > 40 },
  missingCode,
  cliCode,
  cliState: cli.find((l) => l.startsWith("state:")),
  memory: await exists("/mem/wal", { fs: mem }),
  pb: {
    entries: pbAll.entries.length,
    term: String(pbAll.entries[0].term),
    data: dec.decode(pbAll.entries[0].data),
    commit: String(pbAll.state.commit),
    sameBytes: back.length === wire.length && back.every((b, i) => b === wire[i]),
  },
}));
`;

/** Uses the shipped declarations: wrong types must fail, so `tsc` checks real types. */
const CONSUMER_TS = `
import { type Entry, EntryType, type HardState, WAL, WalError, type WalOptions } from "@raftlog/wal";
import { type CliIO, runCli } from "@raftlog/wal/cli";
import { CrashFileSystem } from "@raftlog/wal/testing";
import { create, toBinary } from "@bufbuild/protobuf";
import { EntrySchema, type EntryMessage, fromMessage, toMessage } from "@raftlog/wal/pb";

const opts: WalOptions = { fs: new CrashFileSystem(1), segmentSizeBytes: 4096 };
const wal: WAL = await WAL.create("/wal", new Uint8Array([1]), opts);
const state: HardState = { term: 1n, vote: 1n, commit: 1n };
const entries: Entry[] = [{ term: 1n, index: 1n, type: EntryType.Normal, data: new Uint8Array([2]) }];
await wal.save(state, entries);
const msg: EntryMessage = create(EntrySchema, { Term: 1n, Index: 2n, Data: new Uint8Array([3]) });
const fromPb: Entry = fromMessage(EntrySchema, msg);
await wal.save(state, [fromPb]);
export const pbBytes: Uint8Array = toBinary(EntrySchema, toMessage(EntrySchema, fromPb));
await wal.close();
const io: CliIO = { out: () => {}, err: () => {} };
export const code: number = await runCli(["--help"], io);
export function codeOf(e: unknown): string | null {
  return e instanceof WalError ? e.code : null;
}
`;

const CONSUMER_BAD_TS = `
import { EntryType, WAL } from "@raftlog/wal";
const wal = await WAL.create("/wal");
await wal.save({ term: 1n, vote: 1n, commit: 1n }, [
  { term: 1, index: 1n, type: EntryType.Normal, data: new Uint8Array() },
]);
`;

/** The conversions are typed: a HardState message is not an Entry message. */
const CONSUMER_BAD_PB_TS = `
import { create } from "@bufbuild/protobuf";
import { EntrySchema, fromMessage, HardStateSchema } from "@raftlog/wal/pb";
export const e = fromMessage(EntrySchema, create(HardStateSchema));
`;

/** What the .mjs prints (under Node; "runtime" names the runtime). */
const expected = {
  runtime: "node",
  metadata: "node-1",
  state: { term: "2", vote: "1", commit: "40" },
  afterSnapshot: Array.from({ length: 30 }, (_, i) => i + 11),
  lastData: "last",
  allCount: 41,
  segments: true,
  verify: { tornTail: null, records: true },
  missingCode: "FILE_NOT_FOUND",
  cliCode: 0,
  cliState: "state: term 2 vote 1 commit 40",
  memory: true,
  pb: {
    entries: 1,
    term: "9007199254740993",
    data: "from protobuf-es",
    commit: "1",
    sameBytes: true,
  },
};

describe("the npm package in a fresh Node project", { skip: missing ?? false }, () => {
  let tmp = "";
  let project = "";
  let pack: { tarball: string; files: string[] } | null = null;
  let installed = false;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), "raftlog-npm-"));
    project = join(tmp, "project");
  });
  after(async () => {
    if (tmp !== "") await rm(tmp, { recursive: true, force: true });
  });

  test("npm pack builds dist/ and packs only JavaScript, declarations and the README", {
    timeout: 600_000,
  }, () => {
    pack = npmPack(".", tmp, join(tmp, "npm-cache"));
    for (const f of ["dist/mod.js", "dist/mod.d.ts", "dist/cli.js", "dist/cli.d.ts"]) {
      assert.ok(pack.files.includes(f), `${f} is not in the tarball: ${pack.files.join(" ")}`);
    }
    for (
      const f of [
        "dist/testing.js",
        "dist/testing.d.ts",
        "dist/src/fs/node.js",
        "dist/pb.js",
        "dist/pb.d.ts",
        "dist/gen/raftpb/raft_pb.js",
        "dist/gen/walpb/record_pb.js",
      ]
    ) {
      assert.ok(pack.files.includes(f), `${f} is not in the tarball: ${pack.files.join(" ")}`);
    }
    const stray = pack.files.filter((f) =>
      f !== "package.json" && f !== "README.md" &&
      !(f.startsWith("dist/") && (f.endsWith(".js") || f.endsWith(".d.ts")))
    );
    assert.deepEqual(stray, []);
    assert.deepEqual(pack.files.filter((f) => f.startsWith("dist/tests/")), []);
  });

  test("installs with --offline, an empty npm cache and no registry", {
    timeout: 300_000,
  }, async () => {
    assert.ok(pack !== null, "npm pack failed");
    // The one dependency comes from this checkout's node_modules, packed next to ours.
    const protobuf = npmPack(
      join(root, "node_modules/@bufbuild/protobuf"),
      tmp,
      join(tmp, "npm-cache"),
      ["--ignore-scripts"],
    );
    await mkdir(project);
    await writeFile(
      join(project, "package.json"),
      JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }),
    );
    run("npm", [
      "install",
      "--offline",
      "--cache",
      join(tmp, "npm-cache-install"),
      "--no-audit",
      "--no-fund",
      "--no-update-notifier",
      pack.tarball,
      protobuf.tarball,
    ], project);
    const meta = JSON.parse(
      await readFile(join(project, "node_modules/@raftlog/wal/package.json"), "utf8"),
    );
    assert.equal(meta.type, "module");
    assert.ok(meta.dependencies?.["@bufbuild/protobuf"], "the package must depend on protobuf");
    installed = true;
  });

  test("a .mjs creates a WAL, saves, closes, reopens and replays it", {
    timeout: 120_000,
  }, async () => {
    assert.ok(installed, "the install failed");
    await writeFile(join(project, "roundtrip.mjs"), ROUNDTRIP_MJS);
    const out = run("node", ["roundtrip.mjs", tmp], project);
    assert.deepEqual(JSON.parse(out), expected);
  });

  test("the installed package works the same under Bun and Deno", {
    timeout: 120_000,
  }, async () => {
    assert.ok(installed, "the install failed");
    const bin = join(root, "node_modules/.bin");
    for (
      const [name, cmd, pre] of [
        ["bun", join(bin, "bun"), []],
        ["deno", join(bin, "deno"), ["run", "-A"]],
      ] as const
    ) {
      const dir = join(tmp, name);
      await mkdir(dir);
      const out = JSON.parse(run(cmd, [...pre, "roundtrip.mjs", dir], project));
      assert.equal(out.runtime, name);
      assert.deepEqual({ ...out, runtime: "node" }, expected);
    }
  });

  test("the wal bin runs under node: exit 0 on success, 1 and a coded message on failure", {
    timeout: 120_000,
  }, () => {
    assert.ok(installed, "the install failed");
    const bin = join(project, "node_modules/.bin/wal");
    const out = run(bin, ["stat", join(tmp, "wal")], project);
    assert.match(out, /state: term 2 vote 1 commit 40/);
    try {
      execFileSync(bin, ["dump", join(tmp, "missing")], { encoding: "utf8", stdio: "pipe" });
      assert.fail("expected a non-zero exit");
    } catch (e) {
      const err = e as { status: number; stderr: string };
      assert.equal(err.status, 1, err.stderr);
      assert.match(err.stderr, /^wal: FILE_NOT_FOUND: /);
    }
  });

  test("TypeScript code type-checks against the shipped declarations", {
    timeout: 300_000,
  }, async () => {
    assert.ok(installed, "the install failed");
    const tsc = join(root, "node_modules/typescript/bin/tsc");
    const flags = [
      "--noEmit",
      "--strict",
      "--skipLibCheck",
      "false",
      "--target",
      "ES2022",
      "--lib",
      "ES2022",
      "--module",
      "NodeNext",
      "--moduleResolution",
      "NodeNext",
    ];
    await writeFile(join(project, "consumer.ts"), CONSUMER_TS);
    await writeFile(join(project, "bad.ts"), CONSUMER_BAD_TS);
    await writeFile(join(project, "bad_pb.ts"), CONSUMER_BAD_PB_TS);
    run("node", [tsc, ...flags, "consumer.ts"], project);
    // ...and the types are real, not `any`: a number where a bigint belongs is an error.
    assert.throws(
      () => run("node", [tsc, ...flags, "bad.ts"], project),
      /bad\.ts\(5,5\): error TS2322: Type 'number' is not assignable to type 'bigint'/,
    );
    assert.throws(
      () => run("node", [tsc, ...flags, "bad_pb.ts"], project),
      /bad_pb\.ts\(4,\d+\): error TS2769: No overload matches this call/,
    );
  });
});
