/**
 * Behaviour of the WAL through its public API, on real files: round trips across cuts,
 * replay from snapshots, raft overwrites, uint64 values, etcd's exact bytes, and every
 * error code.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  type Entry,
  EntryType,
  exists,
  type HardState,
  type ReadAllResult,
  repair,
  validSnapshotEntries,
  verify,
  WAL,
  WalError,
  type WalErrorCode,
  type WalFile,
  type WalOptions,
} from "../mod.ts";
import { Decoder } from "../src/segment/decoder.ts";
import { crc32c } from "../src/segment/crc32c.ts";
import { Encoder } from "../src/segment/encoder.ts";
import { writeFrameHeader } from "../src/segment/frame.ts";
import { defaultFileSystem } from "../src/fs/default.ts";
import { NodeFileSystem } from "../src/fs/node.ts";
import { ByteWriter } from "../src/segment/wire.ts";
import { writeRecord } from "./codec.ts";
import { RecordType } from "../src/types.ts";
import {
  randBytes,
  randInt,
  rng,
  walFiles,
  withTempDir,
  withWalDir,
  wrapFiles,
} from "./helpers.ts";

const enc = new TextEncoder();
const SEG = 4096;
const opts = { segmentSizeBytes: SEG };

function entry(index: bigint, term = 1n, data: Uint8Array = enc.encode(`e${index}`)): Entry {
  return { term, index, type: EntryType.Normal, data };
}

function range(from: bigint, to: bigint, term = 1n, size = 0): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) {
    out.push(entry(i, term, size > 0 ? new Uint8Array(size).fill(Number(i % 251n)) : undefined));
  }
  return out;
}

async function rejects(p: Promise<unknown>, code: WalErrorCode): Promise<WalError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof WalError, `expected WalError ${code}, got ${e}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    return e;
  }
  assert.fail(`expected WalError ${code}, but the call succeeded`);
}

/** The paths of the segment files in `dir`, in sequence order. */
async function segmentPaths(dir: string): Promise<string[]> {
  return (await walFiles(dir)).map((n) => join(dir, n));
}

/**
 * Creates a WAL in `dir` (4 KiB segments unless `options` says otherwise), lets `write`
 * append to it, and closes it, also when `write` throws.
 */
async function writeWal<T>(
  dir: string,
  write: (wal: WAL) => Promise<T>,
  metadata?: Uint8Array,
  options: WalOptions = opts,
): Promise<T> {
  const wal = await WAL.create(dir, metadata, options);
  try {
    return await write(wal);
  } finally {
    await wal.close();
  }
}

/** Opens the WAL in `dir` for appending and replays it, as a restarted raft node does. */
async function reopen(
  dir: string,
  options: WalOptions = opts,
): Promise<{ wal: WAL; read: ReadAllResult }> {
  const wal = await WAL.open(dir, undefined, options);
  try {
    return { wal, read: await wal.readAll() };
  } catch (e) {
    await wal.close();
    throw e;
  }
}

/** A WAL whose saves of 100-byte entries cut a few segments. */
function writeHistory(dir: string, last: bigint, blocking?: boolean): Promise<HardState> {
  return writeWal(
    dir,
    async (wal) => {
      let state: HardState = { term: 1n, vote: 1n, commit: 0n };
      for (let i = 1n; i <= last; i += 5n) {
        const to = i + 4n > last ? last : i + 4n;
        state = { term: 1n, vote: 1n, commit: to };
        await wal.save(state, range(i, to, 1n, 100));
      }
      return state;
    },
    enc.encode("meta"),
    { ...opts, blocking },
  );
}

async function replay(dir: string, snap = { index: 0n, term: 0n }) {
  const wal = await WAL.openForRead(dir, snap, opts);
  try {
    return await wal.readAll();
  } finally {
    await wal.close();
  }
}

/** Offset after the last good record of a segment, and the running CRC there. */
function endOf(bytes: Uint8Array): { offset: number; crc: number } {
  const d = new Decoder();
  d.begin("segment", bytes, true);
  while (d.next()) if (d.record.type === RecordType.Crc) d.updateCRC(d.record.crc);
  return { offset: d.offset, crc: d.crc };
}

/** Appends records built with the internal encoder to a segment, continuing its chain. */
async function appendRaw(path: string, build: (e: Encoder) => void): Promise<void> {
  const bytes = new Uint8Array(await readFile(path));
  const { offset, crc } = endOf(bytes);
  const e = new Encoder(crc, offset);
  build(e);
  const extra = e.take();
  bytes.set(extra, offset);
  await writeFile(path, bytes);
}

describe("WAL round trips", () => {
  test("entries and state saved across several cuts replay exactly", async () => {
    await withWalDir(async (dir) => {
      const state = await writeHistory(dir, 200n);
      const names = await walFiles(dir);
      assert.ok(names.length >= 4, `expected several segments, got ${names.length}`);
      const { metadata, state: got, entries } = await replay(dir);
      assert.deepEqual(metadata, enc.encode("meta"));
      assert.deepEqual(got, state);
      assert.deepEqual(entries, range(1n, 200n, 1n, 100));
    });
  });

  test("each segment is named for the raft index it starts at and cut ones are truncated", async () => {
    await withWalDir(async (dir) => {
      await writeHistory(dir, 120n);
      const names = await walFiles(dir);
      const { entries } = await replay(dir);
      for (let k = 1; k < names.length; k++) {
        assert.equal(BigInt("0x" + names[k].slice(0, 16)), BigInt(k));
        // a segment starts right after the last entry saved before the cut
        const startIndex = BigInt("0x" + names[k].slice(17, 33));
        assert.ok(entries.some((e) => e.index === startIndex - 1n), names[k]);
      }
      for (const n of names.slice(0, -1)) {
        const size = (await stat(join(dir, n))).size;
        assert.ok(size < SEG * 2 && size % 8 === 0, `${n} has size ${size}`);
      }
      assert.equal((await stat(join(dir, names[names.length - 1]))).size, SEG);
      assert.deepEqual((await readdir(dir)).filter((n) => n.endsWith(".tmp")), []);
    });
  });

  test("blocking and asynchronous appends write the same bytes on this runtime's adapter", async () => {
    await withTempDir(async (tmp) => {
      const fs = await defaultFileSystem();
      const file = await fs.open(join(tmp, "probe"), { create: true });
      // the runtime adapters offer the blocking calls, so the default really uses them
      assert.equal(typeof file.writeSync, "function");
      assert.equal(typeof file.syncDataSync, "function");
      await file.close();
      await writeHistory(join(tmp, "blocking"), 120n, true);
      await writeHistory(join(tmp, "async"), 120n, false);
      const names = await walFiles(join(tmp, "blocking"));
      assert.ok(names.length >= 3, `expected several segments, got ${names.length}`);
      assert.deepEqual(await walFiles(join(tmp, "async")), names);
      for (const n of names) {
        assert.deepEqual(
          await readFile(join(tmp, "blocking", n)),
          await readFile(join(tmp, "async", n)),
          n,
        );
      }
    });
  });

  test("a blocking call while an asynchronous one is in flight on the same file is refused", async () => {
    await withTempDir(async (tmp) => {
      const fs = await defaultFileSystem();
      const file = await fs.open(join(tmp, "f"), { create: true });
      const pending = file.write(new Uint8Array(8), 0);
      assert.throws(() => file.writeSync!(new Uint8Array(8), 8), /in flight/);
      assert.throws(() => file.syncDataSync!(), /in flight/);
      await pending;
      file.writeSync!(new Uint8Array([1, 2, 3]), 8);
      file.syncDataSync!();
      assert.equal(await file.size(), 11);
      await file.close();
    });
  });

  test("replay from every saved snapshot returns only the entries after it", async () => {
    await withWalDir(async (dir) => {
      const snaps = [{ index: 0n, term: 0n }];
      await writeWal(dir, async (wal) => {
        for (let i = 1n; i <= 90n; i += 10n) {
          await wal.save({ term: 2n, vote: 1n, commit: i + 9n }, range(i, i + 9n, 2n, 80));
          const snap = { index: i + 4n, term: 2n };
          await wal.saveSnapshot(snap);
          snaps.push(snap);
        }
      }, enc.encode("m"));
      assert.ok((await walFiles(dir)).length >= 2);
      for (const snap of snaps) {
        const { entries } = await replay(dir, snap);
        assert.deepEqual(entries, range(snap.index + 1n, 90n, 2n, 80), `from ${snap.index}`);
      }
      const valid = await validSnapshotEntries(dir, opts);
      assert.deepEqual(valid, snaps);
    });
  });

  test("a lower index overwrites the entries after it (raft log truncation)", async () => {
    await withWalDir(async (dir) => {
      await writeWal(dir, async (wal) => {
        await wal.save({ term: 1n, vote: 1n, commit: 3n }, range(1n, 10n, 1n));
        await wal.save({ term: 2n, vote: 2n, commit: 5n }, range(6n, 8n, 2n));
      });
      const { entries, state } = await replay(dir);
      assert.deepEqual(entries, [...range(1n, 5n, 1n), ...range(6n, 8n, 2n)]);
      assert.deepEqual(state, { term: 2n, vote: 2n, commit: 5n });
    });
  });

  test("uint64 values above 2^53 survive a round trip", async () => {
    await withWalDir(async (dir) => {
      const max = (1n << 64n) - 1n;
      const big = (1n << 53n) + 1n;
      const e: Entry = {
        term: max,
        index: big + 1n,
        type: EntryType.ConfChangeV2,
        data: enc.encode("x"),
      };
      const state = { term: max, vote: max - 7n, commit: big + 1n };
      await writeWal(dir, async (wal) => {
        await wal.saveSnapshot({ index: big, term: max - 1n });
        await wal.save(state, [e]);
      });
      const got = await replay(dir, { index: big, term: max - 1n });
      assert.deepEqual(got.entries, [e]);
      assert.deepEqual(got.state, state);
    });
  });

  test("a reopened WAL keeps appending after a cut, and a later reopen sees it all", async () => {
    await withWalDir(async (dir) => {
      await writeWal(dir, async (wal) => {
        await wal.save({ term: 1n, vote: 1n, commit: 1n }, range(1n, 5n));
        await wal.cut();
        await wal.save({ term: 1n, vote: 1n, commit: 6n }, range(6n, 8n));
      }, enc.encode("m"));
      assert.equal((await walFiles(dir)).length, 2);
      assert.equal((await walFiles(dir))[1], "0000000000000001-0000000000000006.wal");

      const { wal: again, read } = await reopen(dir);
      assert.deepEqual(read.entries, range(1n, 8n));
      await again.save({ term: 1n, vote: 1n, commit: 8n }, range(9n, 12n));
      await again.cut();
      await again.save({ term: 3n, vote: 1n, commit: 12n }, range(13n, 13n, 3n));
      await again.close();
      const { entries, state } = await replay(dir);
      assert.deepEqual(entries, [...range(1n, 12n), ...range(13n, 13n, 3n)]);
      assert.deepEqual(state, { term: 3n, vote: 1n, commit: 12n });
      assert.deepEqual(await walFiles(dir), [
        "0000000000000000-0000000000000000.wal",
        "0000000000000001-0000000000000006.wal",
        "0000000000000002-000000000000000d.wal",
      ]);
      // Every segment starts with a crc record and the metadata; create adds the snapshot
      // {0, 0}, a cut the hard state. Each save adds its entries, then its hard state.
      const records = (3 + 5 + 1) + // segment 0: head, entries 1..5 and a state
        (3 + 3 + 1 + 4 + 1) + // segment 1: head, 6..8 and a state, after the reopen 9..12 and a state
        (3 + 1 + 1); // segment 2: head, entry 13 and a state
      assert.deepEqual(await verify(dir, undefined, opts), {
        segments: 3,
        records,
        state: { term: 3n, vote: 1n, commit: 12n }, // the last save's
        tornTail: null,
      });
    });
  });

  test("random histories replay to what a simple model of raft's log predicts", async () => {
    for (const seed of [11, 12, 13]) {
      await withWalDir(async (dir) => {
        const r = rng(seed);
        let wal = await WAL.create(dir, enc.encode(`seed${seed}`), opts);
        const model: Entry[] = [];
        let state: HardState = { term: 0n, vote: 0n, commit: 0n };
        for (let step = 0; step < 120; step++) {
          if (r() < 0.05) {
            await wal.close();
            const reopened = await reopen(dir);
            wal = reopened.wal;
            assert.deepEqual(reopened.read.entries, model, `seed ${seed} step ${step}`);
          }
          let next = BigInt(model.length + 1);
          if (r() < 0.1 && model.length > 3) next -= BigInt(randInt(r, 1, 3));
          const batch: Entry[] = [];
          for (let k = randInt(r, 0, 4); k > 0; k--) {
            batch.push({
              term: state.term + 1n,
              index: next,
              type: randInt(r, 0, 2),
              data: randBytes(r, randInt(r, 0, 700)),
            });
            next++;
          }
          if (batch.length > 0) {
            model.length = Number(batch[0].index - 1n);
            model.push(...batch);
          }
          state = { term: state.term + 1n, vote: 1n, commit: BigInt(model.length) };
          await wal.save(state, batch);
        }
        await wal.close();
        const got = await replay(dir);
        assert.deepEqual(got.entries, model, `seed ${seed}`);
        assert.deepEqual(got.state, state);
      });
    }
  });
});

describe("etcd's exact bytes", () => {
  test("a new WAL is byte-identical to etcd's TestNew.wal (metadata somedata, 72 bytes)", async () => {
    await withWalDir(async (dir) => {
      await writeWal(dir, async () => {}, enc.encode("somedata"));
      assert.deepEqual(await walFiles(dir), ["0000000000000000-0000000000000000.wal"]);
      const bytes = new Uint8Array(
        await readFile(join(dir, "0000000000000000-0000000000000000.wal")),
      );
      // xxd of etcd 3.4's first segment for Create(dir, "somedata")
      const golden = [
        "04000000000000840804100000000000",
        "120000000000008608011085d4fda007",
        "1a08736f6d6564617461000000000000",
        "0e0000000000008208051080db81c101",
        "1a04080010000000",
      ].join("");
      const hex = Array.from(bytes.subarray(0, 72), (b) => b.toString(16).padStart(2, "0")).join(
        "",
      );
      assert.equal(hex, golden);
      assert.equal(bytes.length, SEG);
      assert.ok(bytes.subarray(72).every((b) => b === 0));
      // the two record CRCs etcd's test names
      const d = new Decoder();
      d.begin("TestNew", bytes, true);
      const crcs: number[] = [];
      while (d.next()) crcs.push(d.record.crc);
      assert.deepEqual(crcs, [0, 0x741f6a05, 0x18206d80]);
    });
  });
});

describe("error codes", () => {
  test("CRC_MISMATCH: a flipped byte in an earlier segment, with file and offset", async () => {
    await withWalDir(async (dir) => {
      await writeHistory(dir, 100n);
      const [first] = await segmentPaths(dir);
      const bytes = await readFile(first);
      bytes[300] ^= 0x01;
      await writeFile(first, bytes);
      const e = await rejects(replay(dir), "CRC_MISMATCH");
      assert.equal(e.file, first);
      assert.ok(e.offset !== undefined && e.offset <= 300 && e.offset > 0);
      await rejects(verify(dir, undefined, opts), "CRC_MISMATCH");
      await rejects((await WAL.open(dir, undefined, opts)).readAll(), "CRC_MISMATCH");
    });
  });

  test("UNEXPECTED_EOF: a torn last record stops a writer, is skipped by a reader, and repair fixes it", async () => {
    await withWalDir(async (dir) => {
      await writeWal(dir, async (wal) => {
        await wal.save({ term: 1n, vote: 1n, commit: 1n }, range(1n, 3n, 1n, 40));
        await wal.save({ term: 1n, vote: 1n, commit: 2n }, range(4n, 4n, 1n, 1500));
      }, enc.encode("m"));
      const [path] = await segmentPaths(dir);
      // tear the last entry: its second sector never reached the disk
      const bytes = await readFile(path);
      const { offset } = endOf(new Uint8Array(bytes));
      bytes.fill(0, offset - 1000, offset);
      await writeFile(path, bytes);

      const w = await WAL.open(dir, undefined, opts);
      const e = await rejects(w.readAll(), "UNEXPECTED_EOF");
      assert.equal(e.file, path);
      const read = await replay(dir);
      assert.deepEqual(read.entries, range(1n, 3n, 1n, 40));
      const v = await verify(dir, undefined, opts);
      assert.equal(v.tornTail?.file, path);

      const fixed = await repair(dir, opts);
      assert.equal(fixed.repaired, true);
      assert.equal(fixed.brokenCopy, path + ".broken");
      assert.deepEqual(await readFile(path + ".broken"), bytes);
      assert.equal((await stat(path)).size, fixed.offset);

      const { wal: reopened, read: afterRepair } = await reopen(dir);
      assert.deepEqual(afterRepair.entries, range(1n, 3n, 1n, 40));
      await reopened.save({ term: 1n, vote: 1n, commit: 4n }, range(4n, 5n));
      await reopened.close();
      assert.deepEqual((await replay(dir)).entries, [...range(1n, 3n, 1n, 40), ...range(4n, 5n)]);
      assert.equal((await repair(dir, opts)).repaired, false);
    });
  });

  test("UNEXPECTED_EOF: a file cut inside a record, or a length beyond the file, is a torn tail", async () => {
    await withWalDir(async (dir) => {
      await writeHistory(dir, 10n);
      const [path] = await segmentPaths(dir);
      const original = new Uint8Array(await readFile(path));
      const { offset } = endOf(original);
      await truncate(path, offset - 20);
      await rejects((await WAL.open(dir, undefined, opts)).readAll(), "UNEXPECTED_EOF");
      // a length word claiming 2^50 bytes: reported, never allocated
      const grown = new Uint8Array(offset + 64);
      grown.set(original.subarray(0, offset));
      grown[offset + 6] = 0x04; // 2^50
      await writeFile(path, grown);
      await rejects((await WAL.open(dir, undefined, opts)).readAll(), "UNEXPECTED_EOF");
    });
  });

  test("CRC_MISMATCH: an earlier segment cut short is corruption, not a torn tail, in every mode", async () => {
    await withWalDir(async (dir) => {
      await writeHistory(dir, 100n);
      const [first] = await segmentPaths(dir);
      await truncate(first, (await stat(first)).size - 50);
      // (current etcd's read mode would end replay here and drop the later segments quietly)
      const e = await rejects(replay(dir), "CRC_MISMATCH");
      assert.equal(e.file, first);
      assert.match(e.message, /not the last segment/);
      await rejects(verify(dir, undefined, opts), "CRC_MISMATCH");
      await rejects((await WAL.open(dir, undefined, opts)).readAll(), "CRC_MISMATCH");
      assert.equal((await repair(dir, opts)).repaired, false); // repair only touches the last
    });
  });

  test("DECODE: a payload that passes its CRC but is not a valid message names file and offset", async () => {
    await withWalDir(async (dir) => {
      await writeWal(dir, async () => {});
      const [path] = await segmentPaths(dir);
      const bytes = new Uint8Array(await readFile(path));
      const { offset, crc } = endOf(bytes);
      const data = new Uint8Array([0x10, 0x80]); // a payload whose field 2 varint is cut short
      for (const type of [RecordType.Entry, RecordType.Snapshot]) {
        const w = new ByteWriter();
        w.ensure(8);
        w.length = 8;
        writeRecord(w, type, crc32c(data, crc), data);
        writeFrameHeader(w.buf, 0, w.length - 8);
        bytes.set(w.buf.subarray(0, w.length), offset);
        await writeFile(path, bytes);
        const checks: (() => Promise<unknown>)[] = [
          () => replay(dir),
          () => verify(dir, undefined, opts),
        ];
        if (type === RecordType.Snapshot) checks.push(() => validSnapshotEntries(dir, opts));
        for (const check of checks) {
          const e = await rejects(check(), "DECODE");
          assert.equal(e.file, path);
          assert.equal(e.offset, offset);
        }
      }
    });
  });

  test("SNAPSHOT_NOT_FOUND and SNAPSHOT_MISMATCH", async () => {
    await withWalDir(async (dir) => {
      await writeWal(dir, async (wal) => {
        await wal.save({ term: 1n, vote: 1n, commit: 5n }, range(1n, 5n));
        await wal.saveSnapshot({ index: 5n, term: 1n });
      });
      await rejects(replay(dir, { index: 3n, term: 1n }), "SNAPSHOT_NOT_FOUND");
      await rejects(replay(dir, { index: 5n, term: 2n }), "SNAPSHOT_MISMATCH");
      await rejects(verify(dir, { index: 5n, term: 2n }, opts), "SNAPSHOT_MISMATCH");
      await rejects(verify(dir, { index: 4n, term: 1n }, opts), "SNAPSHOT_NOT_FOUND");
      // a failed replay released its locks: the WAL opens again
      const w = await WAL.open(dir, { index: 5n, term: 1n }, opts);
      assert.deepEqual((await w.readAll()).entries, []);
      await w.close();
    });
  });

  test("METADATA_CONFLICT: two segments with different metadata", async () => {
    await withWalDir(async (dir) => {
      await writeWal(dir, async (wal) => {
        await wal.save({ term: 1n, vote: 1n, commit: 1n }, range(1n, 2n));
        await wal.cut();
      }, enc.encode("a"));
      const [first, second] = await segmentPaths(dir);
      const { crc } = endOf(new Uint8Array(await readFile(first)));
      const head = new Encoder(crc, 0);
      head.crcRecord();
      head.metadata(enc.encode("b"));
      const bytes = new Uint8Array(SEG);
      bytes.set(head.take());
      await writeFile(second, bytes);
      const e = await rejects(replay(dir), "METADATA_CONFLICT");
      assert.equal(e.file, second);
    });
  });

  test("SLICE_OUT_OF_RANGE: an entry that leaves a gap", async () => {
    await withWalDir(async (dir) => {
      await writeWal(dir, (wal) => wal.save({ term: 1n, vote: 1n, commit: 1n }, range(1n, 2n)));
      await appendRaw((await segmentPaths(dir))[0], (e) => e.entry(entry(4n)));
      await rejects(replay(dir), "SLICE_OUT_OF_RANGE");
    });
  });

  test("FILE_NOT_FOUND: missing directory, no segments, sequence gap, no segment for the snapshot", async () => {
    await withWalDir(async (dir, tmp) => {
      await rejects(WAL.open(join(tmp, "missing")), "FILE_NOT_FOUND");
      await mkdir(join(tmp, "empty"));
      await rejects(WAL.open(join(tmp, "empty")), "FILE_NOT_FOUND");
      await writeFile(join(tmp, "file"), "not a WAL");
      await rejects(WAL.openForRead(join(tmp, "file")), "FILE_NOT_FOUND");
      assert.equal(await exists(join(tmp, "empty")), false);

      await writeHistory(dir, 100n);
      assert.equal(await exists(dir), true);
      const paths = await segmentPaths(dir);
      await rm(paths[1]);
      await rejects(WAL.open(dir, undefined, opts), "FILE_NOT_FOUND");
      await rm(paths[0]);
      await rejects(WAL.openForRead(dir, { index: 0n, term: 0n }, opts), "FILE_NOT_FOUND");
    });
  });

  test("EXISTS: create refuses an existing WAL, a non-empty directory and a file", async () => {
    await withWalDir(async (dir, tmp) => {
      await writeWal(dir, async () => {});
      await rejects(WAL.create(dir, undefined, opts), "EXISTS");
      await mkdir(join(tmp, "other"));
      await writeFile(join(tmp, "other", "keep.txt"), "precious");
      await rejects(WAL.create(join(tmp, "other"), undefined, opts), "EXISTS");
      assert.equal(await readFile(join(tmp, "other", "keep.txt"), "utf8"), "precious");
      await writeFile(join(tmp, "afile"), "x");
      await rejects(WAL.create(join(tmp, "afile"), undefined, opts), "EXISTS");
      // an empty directory is fine, and no .tmp directory is left behind
      await mkdir(join(tmp, "emptydir"));
      await writeWal(join(tmp, "emptydir"), async () => {});
      assert.deepEqual((await readdir(tmp)).filter((n) => n.endsWith(".tmp")), []);
    });
  });

  test("LOCKED: a second writer in the same process; readers are not blocked", async () => {
    await withWalDir(async (dir) => {
      await writeWal(dir, async (wal) => {
        await wal.save({ term: 1n, vote: 1n, commit: 1n }, range(1n, 3n));
        const e = await rejects(WAL.open(dir, undefined, opts), "LOCKED");
        assert.ok(e.file?.endsWith(".wal"));
        await rejects(repair(dir, opts), "LOCKED");
        assert.deepEqual((await replay(dir)).entries, range(1n, 3n));
      });
      const { wal: second } = await reopen(dir);
      await second.close();
    });
  });

  test("releaseLockTo releases older segments but keeps the one that may hold the index", async () => {
    await withWalDir(async (dir) => {
      await writeWal(dir, async (wal) => {
        for (let i = 1n; i <= 4n; i++) {
          await wal.save({ term: 1n, vote: 1n, commit: i }, range(i, i));
          await wal.cut();
        }
        const names = await walFiles(dir); // start indexes 0, 2, 3, 4, 5
        assert.equal(names.length, 5);
        await wal.releaseLockTo(4n); // releases 0 and 2, keeps 3
        // Probe each segment's lock through this runtime's adapter, from this process: Deno's
        // and Bun's flock is per open file, and Node's adapter refuses a file this process
        // holds (by inode) before asking flock(1), so a held segment refuses the probe on all
        // three and a released one grants it.
        const adapter = await defaultFileSystem();
        for (const [i, name] of names.entries()) {
          const f = await adapter.open(join(dir, name), { write: true });
          const free = await f.tryLock();
          await f.close();
          assert.equal(free, i < 2, `${name}: lock ${free ? "was free" : "was held"}`);
        }
      });
    });
  });

  test("CLOSED: every call after close fails, and close is idempotent", async () => {
    await withWalDir(async (dir) => {
      const wal = await WAL.create(dir, undefined, opts);
      await wal.close();
      await wal.close();
      await rejects(wal.save({ term: 1n, vote: 0n, commit: 0n }, range(1n, 1n)), "CLOSED");
      await rejects(wal.saveSnapshot({ index: 1n, term: 1n }), "CLOSED");
      await rejects(wal.cut(), "CLOSED");
      await rejects(wal.sync(), "CLOSED");
      await rejects(wal.releaseLockTo(1n), "CLOSED");
      await rejects(wal.readAll(), "CLOSED");
    });
  });

  test("INVALID_ARGUMENT: misuse is refused and leaves the directory intact", async () => {
    await withWalDir(async (dir, tmp) => {
      await writeHistory(dir, 20n);
      const before = await replay(dir);
      const w = await WAL.open(dir, undefined, opts);
      await rejects(
        w.save({ term: 1n, vote: 1n, commit: 1n }, range(21n, 21n)),
        "INVALID_ARGUMENT",
      );
      await w.readAll();
      await rejects(w.readAll(), "INVALID_ARGUMENT");
      await rejects(
        w.save({ term: 1n, vote: 1n, commit: 1n }, [entry(21n), entry(23n)]),
        "INVALID_ARGUMENT",
      );
      await rejects(w.save({ term: -1n, vote: 1n, commit: 1n }, []), "INVALID_ARGUMENT");
      await rejects(
        w.save({ term: 1n, vote: 1n, commit: 1n }, [{
          ...entry(21n),
          term: 1 as unknown as bigint,
        }]),
        "INVALID_ARGUMENT",
      );
      await rejects(w.saveSnapshot({ index: 1n << 64n, term: 0n }), "INVALID_ARGUMENT");
      await w.close();
      const r = await WAL.openForRead(dir, undefined, opts);
      await r.readAll();
      await rejects(r.save({ term: 1n, vote: 1n, commit: 1n }, []), "INVALID_ARGUMENT");
      await rejects(WAL.open(dir, { index: -1n, term: 0n }, opts), "INVALID_ARGUMENT");
      await rejects(
        WAL.create(join(tmp, "x"), undefined, { segmentSizeBytes: 10 }),
        "INVALID_ARGUMENT",
      );
      await rejects(
        WAL.create(join(tmp, "x"), undefined, { blocking: "yes" as unknown as boolean }),
        "INVALID_ARGUMENT",
      );
      assert.deepEqual(await replay(dir), before);
      assert.deepEqual((await verify(dir, undefined, opts)).tornTail, null);
    });
  });

  test("DECODE: a record of an unknown type", async () => {
    await withWalDir(async (dir) => {
      await writeWal(dir, async () => {});
      const [path] = await segmentPaths(dir);
      const bytes = new Uint8Array(await readFile(path));
      const { offset, crc } = endOf(bytes);
      // a well-framed, correctly checksummed record of type 9
      const data = enc.encode("zz");
      const w = new ByteWriter();
      w.ensure(8);
      w.length = 8;
      writeRecord(w, 9, crc32c(data, crc), data);
      const pad = writeFrameHeader(w.buf, 0, w.length - 8);
      bytes.set(w.buf.subarray(0, w.length), offset);
      bytes.fill(0, offset + w.length, offset + w.length + pad);
      await writeFile(path, bytes);
      await rejects(replay(dir), "DECODE");
    });
  });
});

describe("what etcd and raft do", () => {
  test("a follower may save entries after a snapshot before the snapshot record (etcd's order)", async () => {
    await withWalDir(async (dir) => {
      await writeWal(dir, async (wal) => {
        await wal.save({ term: 1n, vote: 1n, commit: 3n }, range(1n, 3n));
        await wal.save({ term: 2n, vote: 1n, commit: 101n }, range(101n, 101n, 2n));
        await wal.saveSnapshot({ index: 100n, term: 2n });
      });
      const { entries } = await replay(dir, { index: 100n, term: 2n });
      assert.deepEqual(entries, range(101n, 101n, 2n));
    });
  });

  test("save copies its arguments when called: changing them afterwards changes nothing", async () => {
    await withWalDir(async (dir) => {
      await writeWal(dir, async (wal) => {
        const state = { term: 1n, vote: 1n, commit: 1n };
        const batch = [entry(1n), entry(2n)];
        const saved = wal.save(state, batch); // not awaited yet
        state.commit = 99n;
        batch[0].index = 7n;
        batch.push(entry(3n));
        await saved;
      });
      const got = await replay(dir);
      assert.deepEqual(got.entries, [entry(1n), entry(2n)]);
      assert.equal(got.state.commit, 1n);
    });
  });

  test("the node:fs adapter keeps a segment locked after it is renamed, across many cuts", async () => {
    await withWalDir(async (dir) => {
      const nodeOpts = { ...opts, fs: new NodeFileSystem() };
      await writeWal(
        dir,
        async (wal) => {
          for (let i = 1n; i <= 5n; i++) {
            await wal.save({ term: 1n, vote: 1n, commit: i }, range(i, i));
            await wal.cut();
          }
          await rejects(WAL.open(dir, undefined, nodeOpts), "LOCKED");
        },
        undefined,
        nodeOpts,
      );
      const { wal: again, read } = await reopen(dir, nodeOpts);
      assert.deepEqual(read.entries, range(1n, 5n));
      await again.close();
    });
  });

  test("concurrent creates of one WAL: one wins, the other fails, nothing acknowledged is lost", async () => {
    await withTempDir(async (tmp) => {
      for (let round = 0; round < 10; round++) {
        const dir = join(tmp, `wal${round}`);
        const results = await Promise.allSettled([0, 1].map(async (k) => {
          const w = await WAL.create(dir, enc.encode(`creator${k}`), opts);
          await w.save({ term: 1n, vote: 1n, commit: 1n }, [entry(1n, 1n, enc.encode(`from${k}`))]);
          await w.close();
          return k;
        }));
        const won = results.filter((r) => r.status === "fulfilled");
        assert.equal(won.length, 1, JSON.stringify(results.map((r) => r.status)));
        const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
        assert.ok(lost.reason instanceof WalError && lost.reason.code === "EXISTS");
        const k = (won[0] as PromiseFulfilledResult<number>).value;
        const got = await replay(dir);
        assert.deepEqual(got.metadata, enc.encode(`creator${k}`));
        assert.deepEqual(got.entries, [entry(1n, 1n, enc.encode(`from${k}`))]);
      }
    });
  });
});

describe("writer hygiene", () => {
  test("opening for write zeroes leftovers after the last good record", async () => {
    await withWalDir(async (dir) => {
      await writeHistory(dir, 5n);
      const [path] = await segmentPaths(dir);
      const bytes = new Uint8Array(await readFile(path));
      const { offset } = endOf(bytes);
      // a zero length word, then stale non-zero bytes from an unacknowledged write
      bytes.fill(0xab, offset + 64, offset + 200);
      await writeFile(path, bytes);
      const { wal: w } = await reopen(dir);
      const after = new Uint8Array(await readFile(path));
      assert.ok(after.subarray(offset).every((b) => b === 0));
      assert.equal(after.length, bytes.length);
      await w.save({ term: 1n, vote: 1n, commit: 6n }, range(6n, 6n, 1n, 500));
      await w.close();
      assert.deepEqual((await replay(dir)).entries, [
        ...range(1n, 5n, 1n, 100),
        ...range(6n, 6n, 1n, 500),
      ]);
    });
  });

  test("zeros are written ahead of the appends, and by the pipeline, never over a record", async () => {
    await withWalDir(async (dir) => {
      const inner = await defaultFileSystem();
      /** Per open file: where its records end so far. */
      const recordEnd = new Map<WalFile, number>();
      let aheadWrites = 0;
      let spareWrites = 0;
      const check = (f: WalFile, d: Uint8Array, p: number) => {
        if (d.some((b) => b !== 0)) {
          recordEnd.set(f, Math.max(recordEnd.get(f) ?? 0, p + d.length));
          return;
        }
        assert.ok(p >= (recordEnd.get(f) ?? 0), `zeros at ${p} over records of ${f.path}`);
        if (f.path.endsWith(".tmp")) spareWrites++;
        else aheadWrites++;
      };
      const fs = wrapFiles(inner, (f) => ({
        write: (d, p) => (check(f, d, p), f.write(d, p)),
        writeSync: (d: Uint8Array, p: number) => (check(f, d, p), f.writeSync!(d, p)),
        syncDataSync: () => f.syncDataSync!(),
      }));
      let saves = 0;
      await writeWal(
        dir,
        async (wal) => {
          for (let i = 1n; i <= 12000n; i += 10n) {
            await wal.save({ term: 1n, vote: 1n, commit: i + 9n }, range(i, i + 9n, 1n, 1000));
            saves++;
          }
        },
        enc.encode("meta"),
        { segmentSizeBytes: 3 << 20, fs },
      );
      assert.ok((await walFiles(dir)).length >= 3, "several cuts");
      assert.ok(aheadWrites > 0 && spareWrites > 0, `${aheadWrites} ahead, ${spareWrites} spare`);
      assert.ok(aheadWrites <= saves / 4, `${aheadWrites} zero writes for ${saves} saves`);
      const { entries } = await replay(dir);
      assert.deepEqual(entries, range(1n, 12000n, 1n, 1000));
    });
  });

  test("zeros ahead of appends never grow a segment past its preallocated size", async () => {
    await withWalDir(async (dir) => {
      await writeHistory(dir, 10n); // 4 KiB segments
      const last = (await segmentPaths(dir)).at(-1)!;
      const size = (await stat(last)).size;
      // reopened with etcd's 64 MB segment size, the 4 KiB tail keeps its size
      const { wal: w } = await reopen(dir, {});
      await w.save({ term: 1n, vote: 1n, commit: 11n }, [entry(11n)]);
      await w.close();
      assert.equal((await stat(last)).size, size);
      assert.equal((await replay(dir)).entries.length, 11);
    });
  });

  test("replay reads a segment's records, not its preallocated zero tail", async () => {
    await withWalDir(async (dir) => {
      await writeHistory(dir, 30n);
      const last = (await segmentPaths(dir)).at(-1)!;
      await truncate(last, 512 * 1024 * 1024); // a huge, sparse, zero tail
      const inner = await defaultFileSystem();
      let bytesRead = 0;
      const fs = wrapFiles(inner, (f) => ({
        read: async (b, pos) => {
          const n = await f.read(b, pos);
          bytesRead += n;
          return n;
        },
      }));
      const r = await WAL.openForRead(dir, undefined, { ...opts, fs });
      assert.equal((await r.readAll()).entries.length, 30);
      await r.close();
      assert.ok(bytesRead < 4 * 1024 * 1024, `read ${bytesRead} bytes`);
      assert.equal((await verify(dir, undefined, { ...opts, fs })).tornTail, null);
    });
  });

  test("a segment size that is not a multiple of 8 leaves a short zero tail that reads as the end", async () => {
    await withTempDir(async (tmp) => {
      for (const seg of [1001, 1003, 1007]) {
        const dir = join(tmp, `wal${seg}`);
        await writeWal(
          dir,
          async (wal) => {
            for (let i = 1n; i <= 16n; i++) {
              await wal.save({ term: 1n, vote: 1n, commit: i }, [
                entry(i, 1n, enc.encode("x".repeat(Number(i % 13n)))),
              ]);
            }
          },
          undefined,
          { segmentSizeBytes: seg },
        );
        const { wal: again, read } = await reopen(dir, { segmentSizeBytes: seg });
        assert.equal(read.entries.length, 16, `segment size ${seg}`);
        await again.close();
      }
    });
  });

  test("a save of nothing writes nothing; a commit-only save is stored without a sync", async () => {
    await withWalDir(async (dir) => {
      // record writes (not zeros) and fdatasyncs of segment files, whichever calls are used
      const calls = { writes: 0, syncs: 0 };
      const isSegment = (f: WalFile) => f.path.endsWith(".wal");
      const write = (f: WalFile, d: Uint8Array) => {
        if (isSegment(f) && d.some((b) => b !== 0)) calls.writes++;
      };
      const sync = (f: WalFile) => {
        if (isSegment(f)) calls.syncs++;
      };
      const fs = wrapFiles(await defaultFileSystem(), (f) => ({
        write: (d, p) => (write(f, d), f.write(d, p)),
        writeSync: (d: Uint8Array, p: number) => (write(f, d), f.writeSync!(d, p)),
        syncData: () => (sync(f), f.syncData()),
        syncDataSync: () => (sync(f), f.syncDataSync!()),
        sync: () => (sync(f), f.sync()),
      }));
      /** What `save` wrote and synced, and the segment's bytes after it. */
      const saving = async (save: Promise<void>) => {
        const before = { ...calls };
        await save;
        const bytes = new Uint8Array(await readFile((await segmentPaths(dir))[0]));
        return { writes: calls.writes - before.writes, syncs: calls.syncs - before.syncs, bytes };
      };
      await writeWal(
        dir,
        async (wal) => {
          const created = new Uint8Array(await readFile((await segmentPaths(dir))[0]));
          const nothing = await saving(wal.save({ term: 0n, vote: 0n, commit: 0n }, []));
          assert.equal(nothing.writes, 0, "an empty save writes");
          assert.equal(nothing.syncs, 0, "an empty save syncs");
          assert.deepEqual(nothing.bytes, created);
          // a save with an entry is written and synced, and the counters see it
          const first = await saving(wal.save({ term: 1n, vote: 1n, commit: 0n }, range(1n, 1n)));
          assert.ok(
            first.writes > 0 && first.syncs > 0,
            `${first.writes} writes, ${first.syncs} syncs`,
          );
          // only the commit index moved: raft's MustSync is false
          const commit = await saving(wal.save({ term: 1n, vote: 1n, commit: 1n }, []));
          assert.ok(commit.writes > 0, "the commit-only state record was not written");
          assert.notDeepEqual(commit.bytes, first.bytes);
          assert.equal(commit.syncs, 0, "a commit-only save synced");
        },
        undefined,
        { ...opts, fs },
      );
      assert.deepEqual((await replay(dir)).state, { term: 1n, vote: 1n, commit: 1n });
    });
  });
});
