/**
 * `wal dump-logs`: the output etcd-dump-logs 3.4.23 printed for a real etcd data directory
 * (tests/fixtures/etcd-dump-logs-3.4.23), byte for byte, in-process and from the executable;
 * and the parts one by one on data directories written here: Go's quoting and flag syntax,
 * gogoproto's Unmarshal rules and text format, the stream decoder protocol, -format json,
 * -raw past a CRC error, and the errors where etcd's tool panics.
 * (tests/etcd_dump_logs_test.ts compares with etcd's own tool on many more directories.)
 */

import { execFileSync } from "node:child_process";
import { chmod, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { create, toBinary, toJson } from "@bufbuild/protobuf";
import { runCli } from "../cli.ts";
import { spawnLineProcess } from "../src/fs/line_process.ts";
import { decodeEntry, EntrySchema, InternalRaftRequestSchema, MetadataSchema } from "../pb.ts";
import { RequestSchema } from "../gen/etcdserverpb/etcdserver_pb.ts";
import { CompareSchema } from "../gen/etcdserverpb/rpc_pb.ts";
import { ConfChangeSchema, ConfChangeType } from "../gen/raftpb/raft_pb.ts";
import { type Entry, EntryType, WAL } from "../mod.ts";
import { Snapshotter } from "../snap.ts";
import { goQuote, protoTextQuote } from "../src/etcd/go_quote.ts";
import { parseGoFlags } from "../src/etcd/go_flags.ts";
import { goAccepts, readGo } from "../src/etcd/go_wire.ts";
import { goText } from "../src/etcd/go_text.ts";
import { RUNTIME, withTempDir } from "./helpers.ts";

const FIXTURE = "tests/fixtures/etcd-dump-logs-3.4.23";
const enc = new TextEncoder();
const dec = new TextDecoder();

interface Run {
  code: number;
  out: Uint8Array;
  err: string;
}

/** Runs `wal` in-process, collecting standard output as bytes. */
async function wal(...argv: string[]): Promise<Run> {
  const out: Uint8Array[] = [];
  const err: string[] = [];
  const code = await runCli(argv, {
    out: (l) => out.push(enc.encode(l + "\n")),
    err: (l) => err.push(l),
    write: (b) => out.push(b.slice()),
    spawn: spawnLineProcess,
  });
  return { code, out: Buffer.concat(out), err: err.join("\n") };
}

const text = (r: Run) => dec.decode(r.out);

/** The fixture's data directory, unpacked into `tmp`. */
function unpack(tmp: string): string {
  execFileSync("tar", ["xzf", join(process.cwd(), FIXTURE, "datadir.tar.gz"), "-C", tmp]);
  return join(tmp, "datadir");
}

/** The recorded commands: name and etcd-dump-logs flags. */
async function recorded(): Promise<{ name: string; flags: string[] }[]> {
  const lines = (await readFile(join(FIXTURE, "commands.txt"), "utf8")).trim().split("\n");
  return lines.map((l) => {
    const [name, cmd] = l.split(": ");
    const words = cmd.split(" ").slice(1, -1); // drop "etcd-dump-logs" and "<datadir>"
    // the stream decoder by absolute path: the output does not name it
    const flags = words.map((w) => w === "./decoder.sh" ? join(process.cwd(), FIXTURE, w) : w);
    return { name, flags };
  });
}

const metadata = (node: bigint, cluster: bigint) =>
  toBinary(MetadataSchema, create(MetadataSchema, { NodeID: node, ClusterID: cluster }));

/** A data directory whose WAL holds `entries` (after a snapshot record and .snap at `snap`). */
async function dataDir(
  tmp: string,
  entries: Entry[],
  snap?: { index: bigint; term: bigint; voters: bigint[] },
): Promise<string> {
  const dir = join(tmp, "data");
  await mkdir(join(dir, "member", "snap"), { recursive: true });
  const w = await WAL.create(join(dir, "member", "wal"), metadata(0x8425f172696c3d59n, 0xb9n));
  if (snap !== undefined) {
    await w.saveSnapshot({ index: snap.index, term: snap.term });
    await new Snapshotter(join(dir, "member", "snap")).save({
      data: enc.encode("{}"),
      metadata: {
        index: snap.index,
        term: snap.term,
        confState: {
          voters: snap.voters,
          learners: [],
          votersOutgoing: [],
          learnersNext: [],
          autoLeave: false,
        },
      },
    });
  }
  const last = entries.length === 0 ? 0n : entries[entries.length - 1].index;
  await w.save({ term: 2n, vote: 1n, commit: last }, entries);
  await w.close();
  return dir;
}

const irr = (init: Parameters<typeof create<typeof InternalRaftRequestSchema>>[1]) =>
  toBinary(InternalRaftRequestSchema, create(InternalRaftRequestSchema, init));
const normal = (index: bigint, data: Uint8Array): Entry => ({
  term: 2n,
  index,
  type: EntryType.Normal,
  data,
});

describe("wal dump-logs prints what etcd-dump-logs 3.4.23 printed", () => {
  test("byte for byte, for each of the eight recorded flag sets, on a real etcd data directory", async () => {
    await withTempDir(async (tmp) => {
      const dir = unpack(tmp);
      for (const { name, flags } of await recorded()) {
        const want = await readFile(join(FIXTURE, `${name}.out`));
        const r = await wal("dump-logs", ...flags, dir);
        assert.equal(r.code, 0, `${name}: ${r.err}`);
        assert.equal(r.err, "", name);
        assert.equal(Buffer.compare(r.out, want), 0, `${name} differs:\n${text(r).slice(0, 400)}`);
      }
    });
  });

  test(`the ${RUNTIME} executable writes the same bytes, with no newline after the count`, async () => {
    await withTempDir(async (tmp) => {
      const dir = unpack(tmp);
      const bin = join(process.cwd(), "node_modules/.bin");
      const [cmd, pre] = RUNTIME === "Deno"
        ? [join(bin, "deno"), ["run", "-A", "cli.ts"]]
        : RUNTIME === "Bun"
        ? [join(bin, "bun"), ["cli.ts"]]
        : [process.execPath, [fileURLToPath(new URL("../cli.js", import.meta.url))]];
      for (
        const { name, flags } of (await recorded()).filter((c) => /default|stream/.test(c.name))
      ) {
        const out = execFileSync(cmd, [...pre, "dump-logs", ...flags, dir], { stdio: "pipe" });
        const want = await readFile(join(FIXTURE, `${name}.out`));
        assert.equal(Buffer.compare(out, want), 0, `${name} differs`);
        assert.notEqual(out[out.length - 1], 0x0a);
      }
    });
  });
});

describe("Go's quoting", () => {
  const b = (hex: string) => Uint8Array.from(hex.match(/../g) ?? [], (x) => parseInt(x, 16));
  test("goQuote is strconv.Quote: runes Go prints stay, others escaped, invalid UTF-8 as \\x", () => {
    // each expected value printed by Go 1.19's strconv.Quote for the same bytes
    const cases: [string, string][] = [
      ["610aff", '"a\\n\\xff"'],
      ["007f", '"\\x00\\x7f"'],
      ["c3a9", '"é"'],
      ["c2a0", '"\\u00a0"'],
      ["f09f9880", '"😀"'],
      ["ee8080", '"\\ue000"'],
      ["f48fbfbf", '"\\U0010ffff"'],
      ["eda080", '"\\xed\\xa0\\x80"'],
      ["c080", '"\\xc0\\x80"'],
      ["07080c0b0d09225c", '"\\a\\b\\f\\v\\r\\t\\"\\\\"'],
      ["e282", '"\\xe2\\x82"'],
    ];
    for (const [hex, want] of cases) assert.equal(goQuote(b(hex)), want, hex);
  });

  test("the text format quotes byte by byte, octal for all but printable ASCII", () => {
    assert.equal(
      protoTextQuote(b("0102ff2074616209225c0a0dc3a9")),
      '"\\001\\002\\377 tab\\t\\"\\\\\\n\\r\\303\\251"',
    );
  });
});

describe("Go's flag syntax", () => {
  const flags = [
    { name: "start-index", kind: "uint64" },
    { name: "entry-type", kind: "string" },
    { name: "raw", kind: "bool" },
  ] as const;
  test("-x v, -x=v, --x v and bare booleans; parsing stops at the first argument", () => {
    for (
      const argv of [["-start-index", "5", "d"], ["--start-index=5", "d"], [
        "-start-index=0x5",
        "d",
      ]]
    ) {
      const r = parseGoFlags(argv, flags);
      assert.deepEqual([r.values.get("start-index"), r.positional], ["5", ["d"]], argv.join(" "));
    }
    assert.equal(parseGoFlags(["-raw", "d"], flags).values.get("raw"), "true");
    assert.equal(parseGoFlags(["-raw=false", "d"], flags).values.get("raw"), "false");
    assert.deepEqual(parseGoFlags(["d", "-raw"], flags).positional, ["d", "-raw"]);
    assert.deepEqual(parseGoFlags(["--", "-d"], flags).positional, ["-d"]);
    assert.equal(parseGoFlags(["-h"], flags).help, true);
    assert.throws(() => parseGoFlags(["-nope"], flags), /flag provided but not defined: -nope/);
    assert.throws(() => parseGoFlags(["-start-index", "x"], flags), /invalid value "x"/);
    assert.throws(() => parseGoFlags(["-entry-type"], flags), /flag needs an argument/);
  });

  test("a flag after the data directory is an error naming what was given", async () => {
    const r = await wal("dump-logs", "data", "-start-index", "3");
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      /^wal: INVALID_ARGUMENT: dump-logs takes one data directory, after the flags \(got \[data -start-index 3\]\)/,
    );
  });
});

describe("gogoproto's rules", () => {
  const v2put = toBinary(
    RequestSchema,
    create(RequestSchema, { ID: 9n, Method: "PUT", Path: "/a", Val: "b" }),
  );

  test("a v2 Request does not unmarshal as an InternalRaftRequest (field 2 holds a string that is no Request)", () => {
    assert.equal(goAccepts(InternalRaftRequestSchema, v2put), false);
    assert.equal(goAccepts(RequestSchema, v2put), true);
    assert.equal(decodeEntry(normal(1n, v2put)).kind, "request");
  });

  test("a known field with the wrong wire type, a runaway varint, a cut length and an end-group tag are errors", () => {
    for (
      const bad of [
        [0x08, 0x01, 0x1a, 0x01],
        [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        [0x22, 0x05, 0x0a],
        [0x0c],
      ]
    ) {
      assert.equal(
        goAccepts(InternalRaftRequestSchema, Uint8Array.from(bad)),
        false,
        bad.join(","),
      );
    }
    // wire type 0 where RangeRequest is a message: not accepted, so not an IRR
    assert.equal(goAccepts(InternalRaftRequestSchema, Uint8Array.from([0x18, 0x01])), false);
    // an unknown field is skipped
    assert.equal(goAccepts(InternalRaftRequestSchema, Uint8Array.from([0xf8, 0x07, 0x01])), true);
  });

  test("a message field given twice merges; the last scalar wins", () => {
    const a = irr({ put: { key: enc.encode("k") } });
    const b = irr({ put: { value: enc.encode("v") }, ID: 3n });
    const c = irr({ ID: 4n });
    const m = readGo(InternalRaftRequestSchema, Uint8Array.from([...a, ...b, ...c]));
    assert.equal(goText(m), 'ID:4 put:<key:"k" value:"v" > ');
  });

  test("text: proto3 zeros and gogoproto's plain proto2 zeros are skipped; proto2 pointers and oneofs print when set", () => {
    const entry = toBinary(EntrySchema, create(EntrySchema, { Term: 2n, Index: 3n, Type: 0 }));
    assert.equal(goText(readGo(EntrySchema, entry)), "Term:2 Index:3 ");
    const req = toBinary(
      RequestSchema,
      create(RequestSchema, { Method: "PUT", PrevExist: false, Dir: false }),
    );
    assert.equal(goText(readGo(RequestSchema, req)), 'Method:"PUT" PrevExist:false ');
    const cmp = toBinary(
      CompareSchema,
      create(CompareSchema, { key: enc.encode("k"), targetUnion: { case: "version", value: 0n } }),
    );
    assert.equal(goText(readGo(CompareSchema, cmp)), 'key:"k" version:0 ');
  });

  test("text: unknown fields print in proto2 messages (etcd 3.4's Go structs keep them there) and not in proto3 ones", () => {
    const req = Uint8Array.from([
      ...toBinary(RequestSchema, create(RequestSchema, { Method: "GET" })),
      0xf8,
      0x07,
      0x05,
      0xfa,
      0x07,
      0x02,
      0x41,
      0xff,
    ]);
    assert.equal(goText(readGo(RequestSchema, req)), 'Method:"GET" 127:5 127:"A\\xff" ');
    const r = Uint8Array.from([...irr({ ID: 1n }), 0xf8, 0x07, 0x05]);
    assert.equal(goText(readGo(InternalRaftRequestSchema, r)), "ID:1 ");
  });
});

describe("decodeEntry", () => {
  test("returns the typed message of each kind", () => {
    const put = decodeEntry(
      normal(1n, irr({ header: { ID: 7n }, put: { key: enc.encode("k"), lease: 5n } })),
    );
    assert.equal(put.kind, "internalRaftRequest");
    if (put.kind === "internalRaftRequest") {
      assert.equal(put.message.header?.ID, 7n);
      assert.equal(dec.decode(put.message.put?.key), "k");
      assert.equal(put.message.put?.lease, 5n);
    }
    const cc = toBinary(
      ConfChangeSchema,
      create(ConfChangeSchema, { type: ConfChangeType.ConfChangeRemoveNode, nodeId: 3n }),
    );
    const c = decodeEntry({ term: 1n, index: 2n, type: EntryType.ConfChange, data: cc });
    assert.equal(c.kind, "confChange");
    if (c.kind === "confChange") assert.equal(c.message.nodeId, 3n);
    assert.equal(decodeEntry(normal(3n, Uint8Array.from([0x0c]))).kind, "unknown");
    assert.equal(
      decodeEntry({ term: 1n, index: 4n, type: 1, data: Uint8Array.from([0x0c]) }).kind,
      "unknown",
    );
  });

  test("throws DECODE for a proto3 string that is not UTF-8, which Go accepts and protobuf-es does not", () => {
    // header.username = "\xff"
    const data = Uint8Array.from([0xa2, 0x06, 0x03, 0x12, 0x01, 0xff]);
    assert.equal(goAccepts(InternalRaftRequestSchema, data), true);
    assert.throws(
      () => decodeEntry(normal(1n, data)),
      (e: Error & { code?: string }) => e.code === "DECODE",
    );
  });
});

describe("wal dump-logs on data directories written here", () => {
  const entries = (): Entry[] => [
    normal(
      1n,
      irr({
        header: { ID: 1n },
        put: { key: enc.encode("a"), value: Uint8Array.from([0, 0x22, 0xff]) },
      }),
    ),
    {
      term: 2n,
      index: 2n,
      type: EntryType.ConfChange,
      data: toBinary(ConfChangeSchema, create(ConfChangeSchema, { nodeId: 0xabcn })),
    },
    normal(
      3n,
      toBinary(RequestSchema, create(RequestSchema, { Method: "DELETE", Path: "/k".repeat(70) })),
    ),
    normal(4n, Uint8Array.from([0x0c])),
    normal(5n, new Uint8Array(0)),
  ];

  test("prints each kind as etcd-dump-logs does: IRR text, conf method and id, v2 excerpt, ??? and empty", async () => {
    await withTempDir(async (tmp) => {
      const dir = await dataDir(tmp, entries());
      const r = await wal("dump-logs", dir);
      assert.equal(r.code, 0, r.err);
      const long = "/k".repeat(32);
      assert.equal(
        text(r),
        "Snapshot:\nempty\nStart dupmping log entries from snapshot.\nWAL metadata:\n" +
          "nodeID=8425f172696c3d59 clusterID=b9 term=2 commitIndex=5 vote=1\nWAL entries:\nlastIndex=5\n" +
          "term\t     index\ttype\tdata\n" +
          '   2\t         1\tnorm\theader:<ID:1 > put:<key:"a" value:"\\000\\"\\377" > \n' +
          "   2\t         2\tconf\tmethod=ConfChangeAddNode id=abc\n" +
          `   2\t         3\tnorm\tmethod=DELETE path="${long}"..."${long}"\n` +
          "   2\t         4\tnorm\t???\n" +
          "   2\t         5\tnorm\t\n" +
          "\nEntry types () count is : 5",
      );
    });
  });

  test("-format json prints one object per entry, the message as protobuf-es's toJson gives it", async () => {
    await withTempDir(async (tmp) => {
      const es = entries();
      const dir = await dataDir(tmp, es);
      const r = await wal("dump-logs", "-format", "json", dir);
      assert.equal(r.code, 0, r.err);
      const lines = text(r).trim().split("\n").map((l) => JSON.parse(l));
      assert.deepEqual(lines.map((l) => l.kind), [
        "internalRaftRequest",
        "confChange",
        "request",
        "unknown",
        "internalRaftRequest",
      ]);
      const d = decodeEntry(es[0]);
      assert.equal(d.kind, "internalRaftRequest");
      assert.deepEqual(lines[0].data, toJson(InternalRaftRequestSchema, d.message as never));
      assert.deepEqual([lines[3].data, lines[3].hex], [null, "0c"]);
    });
  });

  test("starts from the newest readable .snap, leaving a broken one in place, and prints its voters", async () => {
    await withTempDir(async (tmp) => {
      const es = entries();
      const dir = await dataDir(tmp, es, { index: 2n, term: 2n, voters: [0x11n, 0x2an] });
      const snapDir = join(dir, "member", "snap");
      await writeFile(join(snapDir, "0000000000000009-0000000000000009.snap"), "junk");
      const r = await wal("dump-logs", "-entry-type", "Normal", dir);
      assert.equal(r.code, 0, r.err);
      assert.match(text(r), /^Snapshot:\nterm=2 index=2 nodes=\[11 2a\]\n/);
      assert.match(text(r), /lastIndex=5\n/);
      assert.match(text(r), /count is : 3$/);
      assert.match(r.err, /^wal: skipping snapshot .*0000000000000009-0000000000000009\.snap: /);
      // an empty -start-snap is no -start-snap, as in Go
      const again = await wal("dump-logs", "-start-snap", "", "-entry-type", "Normal", dir);
      assert.equal(Buffer.compare(again.out, r.out), 0, again.err);
      assert.deepEqual((await readdir(snapDir)).sort(), [
        "0000000000000002-0000000000000002.snap",
        "0000000000000009-0000000000000009.snap",
      ]);
    });
  });

  test("-start-index at a snapshot record's index is etcd's snapshot mismatch (term 0); elsewhere a missing snapshot is fine", async () => {
    await withTempDir(async (tmp) => {
      const dir = await dataDir(tmp, entries(), { index: 2n, term: 2n, voters: [1n] });
      const bad = await wal("dump-logs", "-start-index", "2", dir);
      assert.equal(bad.code, 1);
      assert.match(bad.err, /^wal: SNAPSHOT_MISMATCH: /);
      const ok = await wal("dump-logs", "-start-index", "3", dir);
      assert.equal(ok.code, 0, ok.err);
      assert.match(text(ok), /^Start dumping log entries from index 3\.\n/);
      assert.match(text(ok), /count is : 2$/);
    });
  });

  test("a WAL with no entries after the start is an error where etcd-dump-logs panics", async () => {
    await withTempDir(async (tmp) => {
      const dir = await dataDir(tmp, []);
      const r = await wal("dump-logs", dir);
      assert.equal(r.code, 1);
      assert.match(text(r), /WAL entries:\n$/);
      assert.match(
        r.err,
        /^wal: NO_ENTRIES: no entries after index 0 in .* \(etcd-dump-logs panics here\)/,
      );
    });
  });

  test("the stream decoder protocol: a line without | and one with several are printed as etcd does", async () => {
    await withTempDir(async (tmp) => {
      const dir = await dataDir(tmp, entries().slice(0, 2));
      const decoder = join(tmp, "dec.sh");
      await writeFile(
        decoder,
        '#!/bin/sh\nread a; echo "plain $a"; read b; echo "S|x|y"; echo oops >&2\n',
      );
      await chmod(decoder, 0o755);
      const r = await wal("dump-logs", "-stream-decoder", decoder, dir);
      assert.equal(r.code, 0, r.err);
      const lines = text(r).split("\n");
      assert.match(
        lines[8],
        /\tdecoder output format is not right, print output anyway\tplain 22080a/,
      );
      assert.match(
        lines[9],
        /\tS\(\*WARNING: data might contain deliminator used by etcd-dump-logs\)\txy$/,
      );
      assert.equal(r.err, "decoder stderr: oops");
    });
  });

  test("a stream decoder that cannot start, stops answering or fails is an error naming it", async () => {
    await withTempDir(async (tmp) => {
      const dir = await dataDir(tmp, entries().slice(0, 2));
      const missing = await wal("dump-logs", "-stream-decoder", join(tmp, "nope"), dir);
      assert.equal(missing.code, 1);
      assert.match(missing.err, /^wal: IO: stream decoder '.*nope': .*ENOENT/);
      const quits = join(tmp, "quits.sh");
      await writeFile(quits, "#!/bin/sh\nread a; echo 'OK|1'; exit 0\n");
      await chmod(quits, 0o755);
      const early = await wal("dump-logs", "-stream-decoder", quits, dir);
      assert.equal(early.code, 1);
      assert.match(early.err, /ended its output before answering entry 2/);
      const fails = join(tmp, "fails.sh");
      await writeFile(fails, "#!/bin/sh\nwhile read a; do echo 'OK|1'; done; exit 3\n");
      await chmod(fails, 0o755);
      const failed = await wal("dump-logs", "-stream-decoder", fails, dir);
      assert.equal(failed.code, 1);
      assert.match(failed.err, /failed: exit status 3/);
      // closes its output but lives on: given up on at once, and killed
      const hangs = join(tmp, "hangs.sh");
      await writeFile(hangs, "#!/bin/sh\nexec >&-\nexec sleep 30\n");
      await chmod(hangs, 0o755);
      const t0 = Date.now();
      const gone = await wal("dump-logs", "-stream-decoder", hangs, dir);
      assert.equal(gone.code, 1);
      assert.match(gone.err, /ended its output before answering entry 1/);
      assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
    });
  });

  test("-raw lists every record with its file and offset and goes on past a CRC mismatch", async () => {
    await withTempDir(async (tmp) => {
      const dir = await dataDir(tmp, entries());
      const walDir = join(dir, "member", "wal");
      const [seg] = (await readdir(walDir)).filter((n) => n.endsWith(".wal"));
      const bytes = await readFile(join(walDir, seg));
      const at = bytes.indexOf(Buffer.from("DELETE"));
      bytes[at] ^= 0x20; // "dELETE": the record's CRC no longer matches
      await writeFile(join(walDir, seg), bytes);
      const r = await wal("dump-logs", "-raw", dir);
      assert.equal(r.code, 0, r.err);
      const lines = text(r).trim().split("\n");
      assert.match(lines[0], new RegExp(`^${seg}:0\tCRC: 0$`));
      assert.match(lines[1], /:16\tMetadata: NodeID:9522282460842048857 ClusterID:185 $/);
      assert.equal(lines.filter((l) => l.includes("Entry: ")).length, 5);
      assert.match(lines.find((l) => l.includes("dELETE"))!, /\t\(CRC mismatch\)$/);
      assert.equal(lines[lines.length - 1], "EOF: All entries were processed.");
      assert.equal(r.err.split("\n").filter((l) => l.includes("CRC_MISMATCH")).length, 1);
    });
  });
});
