/**
 * The `wal` CLI: each command on real directories, in-process through runCli, and the
 * executable itself under Deno and Bun for exit codes and stderr.
 */

import { execFileSync } from "node:child_process";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { ConfChangeSchema, ConfChangeV2Schema } from "../gen/raftpb/raft_pb.ts";
import { readJson } from "../compat/script.ts";
import { EntryType, WAL } from "../mod.ts";
import { runCli } from "../src/cli.ts";
import { withTempDir } from "./helpers.ts";

const enc = new TextEncoder();
const opts = { segmentSizeBytes: 4096 };

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l) }, opts);
  return { code, out: out.join("\n"), err: err.join("\n") };
}

/** A WAL with 30 entries over several segments, a conf change at 7 and a snapshot at 10. */
async function sample(dir: string): Promise<void> {
  const wal = await WAL.create(dir, enc.encode("cluster-7"), opts);
  for (let i = 1n; i <= 30n; i += 3n) {
    const entries = [];
    for (let j = i; j < i + 3n; j++) {
      entries.push({
        term: 2n,
        index: j,
        type: j === 7n ? EntryType.ConfChange : EntryType.Normal,
        data: j === 8n
          ? new Uint8Array([0, 1, 2, 255])
          : enc.encode(`put k${j}=${"v".repeat(300)}`),
      });
    }
    await wal.save({ term: 2n, vote: 1n, commit: i + 2n }, entries);
    if (i === 10n) await wal.saveSnapshot({ index: 10n, term: 2n });
  }
  await wal.close();
}

async function segments(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith(".wal")).sort();
}

describe("wal CLI", () => {
  test("dump --format json prints exactly the replayed metadata, state and entries", async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      await sample(dir);
      const r = await cli("dump", dir, "--format", "json");
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(JSON.parse(r.out), await readJson(dir));
      const fromSnap = await cli(
        "dump",
        dir,
        "--snap-index",
        "10",
        "--snap-term",
        "2",
        "--format=json",
      );
      assert.deepEqual(JSON.parse(fromSnap.out), await readJson(dir, { index: 10n, term: 2n }));
    });
  });

  test("dump filters by index range and entry type, and shows text or hex", async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      await sample(dir);
      const json = await cli(
        "dump",
        dir,
        "--start-index",
        "5",
        "--end-index",
        "9",
        "--format",
        "json",
      );
      assert.deepEqual(
        JSON.parse(json.out).entries.map((e: { index: string }) => e.index),
        ["5", "6", "7", "8", "9"],
      );
      const cc = await cli("dump", dir, "--entry-type", "confchange", "--format", "json");
      assert.deepEqual(JSON.parse(cc.out).entries.map((e: { index: string }) => e.index), ["7"]);
      const text = await cli("dump", dir, "--start-index", "7", "--end-index", "8");
      assert.equal(text.code, 0);
      assert.match(text.out, /metadata: "cluster-7"/);
      assert.match(text.out, /state: +term 2 vote 1 commit 30/);
      assert.match(text.out, /entries: +2 of 30/);
      assert.match(text.out, /\s7 +confchange +"put k7=v+"/);
      assert.match(text.out, /\s8 +normal +0x000102ff/);
    });
  });

  test("stat lists every segment with its index range, and the hard state", async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      await sample(dir);
      const r = await cli("stat", dir);
      assert.equal(r.code, 0, r.err);
      const names = await segments(dir);
      assert.ok(names.length >= 2);
      const rows = r.out.split("\n").filter((l) => l.includes(".wal"));
      assert.deepEqual(rows.map((l) => l.split(/\s+/)[0]), names);
      // the first segment starts with entry 1, the last ends with entry 30
      assert.equal(rows[0].split(/\s+/)[2], "1");
      assert.equal(rows[rows.length - 1].split(/\s+/)[3], "30");
      assert.match(r.out, /state: term 2 vote 1 commit 30/);
    });
  });

  test("snapshots lists the snapshots at or below the commit index", async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      await sample(dir);
      const r = await cli("snapshots", dir);
      assert.equal(r.code, 0);
      assert.deepEqual(r.out.split("\n").slice(1).map((l) => l.trim().split(/\s+/)), [
        ["0", "0", "-"],
        ["10", "2", "-"],
      ]);
    });
  });

  test("snapshots prints the ConfState etcd 3.5 recorded, as text and as JSON", async () => {
    const dir = "tests/fixtures/etcd-3.5.33/scenario";
    const text = await cli("snapshots", dir);
    assert.equal(text.code, 0);
    const rows = text.out.split("\n").slice(1).map((l) => l.trim());
    assert.equal(rows[0], "0          0  -");
    assert.equal(rows[1], "131          1  voters=1,2,3 learners=9");
    assert.equal(
      rows[2],
      "271          2  voters=1,2,4 learners=9 outgoing=1,2 learnersNext=4 autoLeave",
    );
    const json = await cli("snapshots", dir, "--format", "json");
    assert.equal(json.code, 0);
    const snaps = JSON.parse(json.out);
    assert.deepEqual(snaps[0], { index: "0", term: "0" });
    assert.deepEqual(snaps[2], {
      index: "271",
      term: "2",
      confState: {
        voters: ["1", "2", "4"],
        learners: ["9"],
        votersOutgoing: ["1", "2"],
        learnersNext: ["4"],
        autoLeave: true,
      },
    });
  });

  test("a torn tail: dump stops before it, verify reports it, repair fixes it", async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      await sample(dir);
      const names = await segments(dir);
      const last = join(dir, names[names.length - 1]);
      const before = await readJson(dir);
      const bytes = await readFile(last);
      let end = bytes.length;
      while (end > 0 && bytes[end - 1] === 0) end--;
      bytes.fill(0, end - 200, end); // the last record lost its final sector
      await writeFile(last, bytes);

      const dump = await cli("dump", dir, "--format", "json");
      assert.equal(dump.code, 0, dump.err);
      assert.ok(JSON.parse(dump.out).entries.length < before.entries.length);
      const v = await cli("verify", dir);
      assert.equal(v.code, 0);
      assert.match(v.out, new RegExp(`torn tail: ${last} at offset \\d+`));
      const fix = await cli("repair", dir);
      assert.equal(fix.code, 0, fix.err);
      assert.match(fix.out, /^repaired: truncated .* the original is kept as .*\.broken$/);
      assert.match(
        (await cli("verify", dir)).out,
        /^ok: \d+ segment\(s\), \d+ record\(s\) verified$/,
      );
      assert.match((await cli("repair", dir)).out, /^nothing to repair/);
    });
  });

  test("failures print 'wal: <CODE>: <message>' with the file and offset, and exit 1", async () => {
    await withTempDir(async (tmp) => {
      const missing = await cli("dump", join(tmp, "nope"));
      assert.equal(missing.code, 1);
      assert.match(missing.err, /^wal: FILE_NOT_FOUND: .*nope/);

      await mkdir(join(tmp, "empty"));
      const empty = await cli("stat", join(tmp, "empty"));
      assert.equal(empty.code, 1);
      assert.match(empty.err, /^wal: FILE_NOT_FOUND: no WAL segment/);

      await writeFile(join(tmp, "plain"), "hello");
      const plain = await cli("verify", join(tmp, "plain"));
      assert.equal(plain.code, 1);
      assert.match(plain.err, /^wal: FILE_NOT_FOUND: WAL path is not a directory/);

      const dir = join(tmp, "wal");
      await sample(dir);
      const first = join(dir, (await segments(dir))[0]);
      const bytes = await readFile(first);
      bytes[200] ^= 0x40;
      await writeFile(first, bytes);
      const bad = await cli("verify", dir);
      assert.equal(bad.code, 1);
      assert.match(bad.err, new RegExp(`^wal: CRC_MISMATCH: .*\\(file ${first}, offset \\d+\\)$`));
      const refused = await cli("repair", dir);
      assert.equal(refused.code, 0); // the last segment is clean: nothing to do there
      assert.equal((await cli("dump", dir)).code, 1);
    });
  });

  test("bad command lines fail with INVALID_ARGUMENT; --help works on every command", async () => {
    for (
      const argv of [["frobnicate"], ["dump"], ["dump", "a", "b"], ["dump", "d", "--nope", "1"]]
    ) {
      const r = await cli(...argv);
      assert.equal(r.code, 1, argv.join(" "));
      assert.match(r.err, /^wal: INVALID_ARGUMENT: /);
    }
    const r = await cli("dump", "d", "--snap-index", "3");
    assert.match(r.err, /--snap-index and --snap-term go together/);
    assert.match((await cli("dump", "d", "--format", "xml")).err, /--format must be text or json/);
    assert.equal((await cli()).code, 1);
    for (const c of ["dump", "verify", "repair", "snapshots", "stat"]) {
      const h = await cli(c, "--help");
      assert.equal(h.code, 0);
      assert.match(h.out, new RegExp(`^usage: wal ${c} <dir>`));
    }
    assert.match((await cli("--help")).out, /^usage: wal <command>/);
  });

  test("text dumps decode ConfChange and ConfChangeV2 entries", async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      const cc = toBinary(
        ConfChangeSchema,
        create(ConfChangeSchema, {
          type: 3,
          nodeId: 0x1234n,
          id: 7n,
          context: enc.encode("peer-url"),
        }),
      );
      const cc2 = toBinary(
        ConfChangeV2Schema,
        create(ConfChangeV2Schema, {
          transition: 2,
          changes: [{ type: 0, nodeId: 5n }, { type: 1, nodeId: 6n }],
        }),
      );
      const wal = await WAL.create(dir, undefined, opts);
      await wal.save({ term: 1n, vote: 1n, commit: 3n }, [
        { term: 1n, index: 1n, type: EntryType.ConfChange, data: cc },
        { term: 1n, index: 2n, type: EntryType.ConfChangeV2, data: cc2 },
        { term: 1n, index: 3n, type: EntryType.ConfChange, data: new Uint8Array([0xff]) },
      ]);
      await wal.close();
      const r = await cli("dump", dir);
      assert.equal(r.code, 0, r.err);
      assert.match(
        r.out,
        /1 +confchange +ConfChange AddLearnerNode node 4660 id 7 context "peer-url"/,
      );
      assert.match(
        r.out,
        /2 +confchangev2 +ConfChangeV2 JointExplicit \[AddNode 5, RemoveNode 6\]/,
      );
      assert.match(r.out, /3 +confchange +0xff/); // not a valid message: shown as bytes
    });
  });

  test("verify and repair report progress when the output is a terminal, and only then", async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      await sample(dir);
      const shown: (string | null)[] = [];
      const out: string[] = [];
      const io = {
        out: (l: string) => out.push(l),
        err: (l: string) => out.push(l),
        progress: (t: string | null) => shown.push(t),
      };
      assert.equal(await runCli(["verify", dir], io, opts), 0);
      const n = (await segments(dir)).length;
      assert.deepEqual(shown.filter((t) => t !== null).map((t) => t!.split(" ")[1]), [
        ...Array.from({ length: n }, (_, k) => `${k}/${n}`),
        `${n}/${n}`,
      ]);
      assert.equal(shown[shown.length - 1], null); // cleared at the end
      shown.length = 0;
      assert.equal(await runCli(["repair", dir], io, opts), 0);
      assert.ok(shown.some((t) => t !== null && t.startsWith("repairing: ")));
      // without a progress sink (piped), output is the same lines and nothing else
      const quiet = await cli("verify", dir);
      assert.equal(quiet.out.split("\n").length, 1);
    });
  });

  test("dump does not take the writer's lock", async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      await sample(dir);
      const writer = await WAL.open(dir, undefined, opts);
      await writer.readAll();
      const r = await cli("dump", dir, "--format", "json");
      assert.equal(r.code, 0, r.err);
      assert.equal(JSON.parse(r.out).entries.length, 30);
      await writer.close();
    });
  });
});

describe("wal executable", () => {
  const bin = join(process.cwd(), "node_modules/.bin");
  for (
    const [name, cmd, pre] of [
      ["Deno", join(bin, "deno"), ["run", "-A", "cli.ts"]],
      ["Bun", join(bin, "bun"), ["cli.ts"]],
    ] as const
  ) {
    test(`under ${name}: exit 0 with output on success, exit 1 and a coded message on failure`, async () => {
      await withTempDir(async (tmp) => {
        const dir = join(tmp, "wal");
        await sample(dir);
        const out = execFileSync(cmd, [...pre, "stat", dir], { encoding: "utf8" });
        assert.match(out, /state: term 2 vote 1 commit 30/);
        try {
          execFileSync(cmd, [...pre, "dump", join(tmp, "missing")], {
            encoding: "utf8",
            stdio: "pipe",
          });
          assert.fail("expected a non-zero exit");
        } catch (e) {
          const err = e as { status: number; stderr: string };
          assert.equal(err.status, 1);
          assert.match(err.stderr, /^wal: FILE_NOT_FOUND: /);
        }
      });
    });
  }
});
