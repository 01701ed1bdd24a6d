/**
 * etcd's `.snap` files on real files: save and load back, the file name and bytes, the newest
 * that a WAL's snapshot records name, and every way a file can be bad (empty, zero CRC, CRC
 * mismatch, bad protobuf, each truncation): a stated WalError, and `.broken` as etcd renames.
 */

import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { WalError } from "../mod.ts";
import {
  decodeSnapFile,
  encodeSnapFile,
  type RaftSnapshot,
  snapFileName,
  Snapshotter,
} from "../snap.ts";
import { defaultFileSystem } from "../src/fs/default.ts";
import { crc32c } from "../src/segment/crc32c.ts";
import { withTempDir, wrapFiles } from "./helpers.ts";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { SnapshotSchema as RaftSnapshotSchema } from "../gen/raftpb/raft_pb.ts";
import { snapshotSchema as SnapFileSchema } from "../gen/snappb/snap_pb.ts";

const conf = (voters: bigint[]) => ({
  voters,
  learners: [5n],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
});
const snapAt = (index: bigint, term: bigint, data = `state at ${index}`): RaftSnapshot => ({
  data: new TextEncoder().encode(data),
  metadata: { confState: conf([1n, 2n, 3n]), index, term },
});

describe("Snapshotter", () => {
  test("save writes <term>-<index>.snap that load returns field for field", async () => {
    await withTempDir(async (dir) => {
      const s = new Snapshotter(dir);
      const snap = snapAt(0x1234n, 7n);
      await s.save(snap);
      assert.deepEqual(await readdir(dir), ["0000000000000007-0000000000001234.snap"]);
      assert.equal(snapFileName(7n, 0x1234n), "0000000000000007-0000000000001234.snap");
      assert.deepEqual(await s.load(), snap);
      // crc field, then data: a raftpb.Snapshot whose CRC-32C the crc field holds
      const bytes = new Uint8Array(await readFile(join(dir, snapFileName(7n, 0x1234n))));
      assert.deepEqual(bytes, encodeSnapFile(snap));
      assert.equal(bytes[0], 0x08);
      const back = decodeSnapFile(bytes, "x");
      assert.deepEqual(back, snap);
    });
  });

  test("the hand codec's bytes are the generated schemas' (proto/raftpb, proto/snappb), both ways", () => {
    const snap: RaftSnapshot = {
      data: new Uint8Array([1, 2, 3]),
      metadata: {
        confState: {
          voters: [1n, 2n],
          learners: [3n],
          votersOutgoing: [1n],
          learnersNext: [4n],
          autoLeave: true,
        },
        index: 2n ** 64n - 1n,
        term: 9n,
      },
    };
    const { confState: c, index, term } = snap.metadata;
    const raft = toBinary(
      RaftSnapshotSchema,
      create(RaftSnapshotSchema, {
        data: snap.data,
        metadata: {
          confState: {
            voters: c.voters,
            learners: c.learners,
            votersOutgoing: c.votersOutgoing,
            learnersNext: c.learnersNext,
            autoLeave: c.autoLeave,
          },
          index,
          term,
        },
      }),
    );
    const file = toBinary(
      SnapFileSchema,
      create(SnapFileSchema, { crc: crc32c(raft, 0), data: raft }),
    );
    assert.deepEqual(encodeSnapFile(snap), file);
    const back = fromBinary(SnapFileSchema, encodeSnapFile(snap));
    const inner = fromBinary(RaftSnapshotSchema, back.data!);
    assert.equal(inner.metadata?.index, index);
    assert.deepEqual(inner.metadata?.confState?.learnersNext, [4n]);
  });

  test("save fsyncs the file, then the directory", async () => {
    await withTempDir(async (dir) => {
      const calls: string[] = [];
      const inner = await defaultFileSystem();
      const fs = wrapFiles(inner, (f) => ({
        sync: () => (calls.push(`sync ${f.path}`), f.sync()),
        close: () => (calls.push(`close ${f.path}`), f.close()),
      }));
      fs.syncDir = (p) => (calls.push(`syncDir ${p}`), inner.syncDir(p));
      await new Snapshotter(dir, { fs }).save(snapAt(9n, 2n));
      const path = join(dir, snapFileName(2n, 9n));
      assert.deepEqual(calls, [`sync ${path}`, `close ${path}`, `syncDir ${dir}`]);
    });
  });

  test("load takes the newest; loadNewestAvailable the newest a WAL snapshot record names, by index and term", async () => {
    await withTempDir(async (dir) => {
      const s = new Snapshotter(dir);
      for (const [i, t] of [[10n, 1n], [20n, 2n], [30n, 2n]] as const) await s.save(snapAt(i, t));
      assert.deepEqual(await s.list(), [
        snapFileName(2n, 30n),
        snapFileName(2n, 20n),
        snapFileName(1n, 10n),
      ]);
      assert.equal((await s.load()).metadata.index, 30n);
      const wal = [{ index: 0n, term: 0n }, { index: 10n, term: 1n }, { index: 20n, term: 2n }];
      assert.equal((await s.loadNewestAvailable(wal)).metadata.index, 20n);
      // same index, other term: no match
      await assert.rejects(s.loadNewestAvailable([{ index: 20n, term: 3n }]), {
        code: "NO_SNAPSHOT",
      });
      assert.deepEqual((await readdir(dir)).filter((n) => n.endsWith(".broken")), []);
    });
  });

  test("no .snap file at all is NO_SNAPSHOT, and other files are ignored", async () => {
    await withTempDir(async (dir) => {
      await writeFile(join(dir, "db"), "bolt");
      await assert.rejects(new Snapshotter(dir).load(), { code: "NO_SNAPSHOT", file: dir });
    });
  });

  const good = encodeSnapFile(snapAt(40n, 3n));
  /** A snappb.Snapshot with the given crc and data, framed by hand. */
  const snappb = (crc: number, data: Uint8Array): Uint8Array => {
    const out: number[] = [0x08];
    for (let v = crc >>> 0;; v >>>= 7) {
      if (v < 0x80) {
        out.push(v);
        break;
      }
      out.push((v & 0x7f) | 0x80);
    }
    out.push(0x12, data.length, ...data); // data < 128 bytes here
    return new Uint8Array(out);
  };

  const bad: [string, Uint8Array, string][] = [
    ["an empty file", new Uint8Array(0), "EMPTY_SNAPSHOT"],
    ["a zero crc", snappb(0, new Uint8Array([1, 2, 3])), "EMPTY_SNAPSHOT"],
    ["no data", snappb(123, new Uint8Array(0)), "EMPTY_SNAPSHOT"],
    [
      "a crc mismatch",
      (() => {
        const b = good.slice();
        b[b.length - 3] ^= 0xff;
        return b;
      })(),
      "CRC_MISMATCH",
    ],
    [
      "data that is not a raftpb.Snapshot",
      (() => {
        const d = new Uint8Array([0x0a, 0x7f, 1]); // a length past the end
        return snappb(crc32c(d, 0), d);
      })(),
      "DECODE",
    ],
    ["bytes that are not a snappb.Snapshot", new Uint8Array([0x12, 0x50, 1, 2]), "DECODE"],
  ];
  for (const [what, bytes, code] of bad) {
    test(`a .snap file with ${what} is ${code}, renamed .broken, and load falls back to the older one`, async () => {
      await withTempDir(async (dir) => {
        const s = new Snapshotter(dir);
        await s.save(snapAt(10n, 1n));
        const name = snapFileName(3n, 40n);
        await writeFile(join(dir, name), bytes);
        await assert.rejects(s.read(name), (e) => {
          assert.ok(e instanceof WalError, String(e));
          assert.equal(e.code, code);
          assert.equal(e.file, join(dir, name));
          return true;
        });
        assert.deepEqual((await readdir(dir)).sort(), [snapFileName(1n, 10n), `${name}.broken`]);
        await writeFile(join(dir, name), bytes);
        assert.equal((await s.load()).metadata.index, 10n);
        assert.deepEqual((await readdir(dir)).sort(), [snapFileName(1n, 10n), `${name}.broken`]);
      });
    });
  }

  test("every truncation of a .snap file is a stated WalError, never another exception", () => {
    const codes = new Set<string>();
    for (let n = 0; n < good.length; n++) {
      try {
        decodeSnapFile(good.subarray(0, n), "t.snap");
        assert.fail(`a ${n}-byte prefix decoded`);
      } catch (e) {
        assert.ok(e instanceof WalError, `prefix ${n}: ${e}`);
        assert.ok(["EMPTY_SNAPSHOT", "DECODE", "CRC_MISMATCH"].includes(e.code), e.code);
        assert.equal(e.file, "t.snap");
        codes.add(e.code);
      }
    }
    assert.deepEqual([...codes].sort(), ["DECODE", "EMPTY_SNAPSHOT"]);
  });
});
