/**
 * Unit tests of the tail writer (src/segment/segment_writer.ts), below the WAL: a segment's
 * head, appends and the zeros written ahead of them, blocking and asynchronous calls,
 * rotation (cut), resuming a replayed tail, and when the tail counts as full. Everything runs
 * on the in-memory CrashFileSystem, with every file call recorded.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { FileSystem, WalFile } from "../src/fs/types.ts";
import { CrashFileSystem } from "../src/fs/crash.ts";
import { resolveOptions } from "../src/options.ts";
import { crc32c } from "../src/segment/crc32c.ts";
import { Decoder } from "../src/segment/decoder.ts";
import { ZERO_CHUNK_BYTES } from "../src/segment/file_pipeline.ts";
import { segmentName } from "../src/segment/segment_names.ts";
import {
  type HeadEnd,
  type OpenSegment,
  SegmentWriter,
  writeSegmentHead,
} from "../src/segment/segment_writer.ts";
import { type Entry, type HardState, RecordType } from "../src/types.ts";
import { decodeEntry, decodeHardState, decodeSnapshot } from "./codec.ts";
import { randBytes, readFileBytes as readBytes, rng, wrapFiles } from "./helpers.ts";

const DIR = "/wal";
const FIRST = segmentName(0n, 0n);
const FIRST_PATH = `${DIR}/${FIRST}`;
const META = new TextEncoder().encode("cluster-7");

/** One recorded file call. */
interface Call {
  path: string;
  op: "write" | "writeSync" | "syncData" | "syncDataSync" | "truncate" | "allocate";
  pos: number;
  len: number;
  /** For writes: every byte is zero. */
  zero: boolean;
}

/**
 * Wraps `inner` so every file call is appended to `calls`. With `blockingCalls`, files offer
 * writeSync/syncDataSync (as the runtime adapters do); without, they do not.
 */
function recording(inner: FileSystem, calls: Call[], blockingCalls = true): FileSystem {
  return wrapFiles(inner, (f) => {
    const rec = (op: Call["op"], pos = 0, len = 0, zero = false) =>
      calls.push({ path: f.path, op, pos, len, zero });
    const allZero = (d: Uint8Array) => d.every((b) => b === 0);
    const hooks: Partial<WalFile> = {
      write: (d, p) => (rec("write", p, d.length, allZero(d)), f.write(d, p)),
      syncData: () => (rec("syncData"), f.syncData()),
      truncate: (n) => (rec("truncate", n), f.truncate(n)),
      allocate: (n) => (rec("allocate", n), f.allocate(n)),
    };
    const writeSync = f.writeSync?.bind(f);
    const syncDataSync = f.syncDataSync?.bind(f);
    if (blockingCalls && writeSync !== undefined && syncDataSync !== undefined) {
      hooks.writeSync = (d, p) => {
        rec("writeSync", p, d.length, allZero(d));
        writeSync(d, p);
      };
      hooks.syncDataSync = () => {
        rec("syncDataSync");
        syncDataSync();
      };
    }
    return hooks;
  });
}

/** A decoded record and where it sits. */
interface Rec {
  type: number;
  crc: number;
  offset: number;
  end: number;
  data: Uint8Array | null;
}

/**
 * Decodes the records of one segment with the library's Decoder (which checks every CRC),
 * continuing the chain from `prevCrc`; a crc record must carry the running CRC.
 */
function decodeSegment(path: string, bytes: Uint8Array, prevCrc = 0) {
  const dec = new Decoder();
  dec.updateCRC(prevCrc);
  dec.begin(path, bytes, true);
  const records: Rec[] = [];
  for (;;) {
    const offset = dec.offset;
    if (!dec.next()) break;
    const r = dec.record;
    if (r.type === RecordType.Crc) {
      assert.equal(r.crc, dec.crc, `crc record at ${offset} continues the chain`);
      dec.updateCRC(r.crc);
    }
    records.push({
      type: r.type,
      crc: r.crc,
      offset,
      end: dec.offset,
      data: r.data?.slice() ?? null,
    });
  }
  return { records, end: dec.offset, crc: dec.crc };
}

function dataOf(r: Rec): Uint8Array {
  assert.ok(r.data !== null, `record of type ${r.type} at ${r.offset} has data`);
  return r.data;
}

const entry = (index: bigint, data: Uint8Array, term = 1n): Entry => ({
  term,
  index,
  type: 0,
  data,
});

/** The entries a segment holds, decoded. */
function entriesOf(records: Rec[]): Entry[] {
  return records.filter((r) => r.type === RecordType.Entry).map((r) => decodeEntry(dataOf(r)));
}

function plain(e: Entry) {
  return { term: e.term, index: e.index, type: e.type, data: [...e.data] };
}

interface Tail {
  crash: CrashFileSystem;
  fs: FileSystem;
  calls: Call[];
  writer: SegmentWriter;
  tail: OpenSegment;
  head: { offset: number; crc: number };
}

/**
 * The first segment written the way `create` writes it (head at offset 0, preallocated to
 * `size`, directory entries synced), with a SegmentWriter appending to it.
 */
async function newTail(
  o: { size: number; blocking?: boolean; blockingCalls?: boolean; seed?: number },
): Promise<Tail> {
  const crash = new CrashFileSystem(o.seed ?? 1);
  const calls: Call[] = [];
  const fs = recording(crash, calls, o.blockingCalls ?? true);
  const options = await resolveOptions({ fs, segmentSizeBytes: o.size, blocking: o.blocking });
  await fs.mkdir(DIR);
  const file = await fs.open(FIRST_PATH, { create: true });
  await file.allocate(o.size);
  await fs.syncDir("/");
  await fs.syncDir(DIR);
  const head = await writeSegmentHead(file, FIRST_PATH, 0, META, {
    snapshot: { index: 0n, term: 0n },
  }, options);
  const tail = { name: { name: FIRST, seq: 0n, index: 0n }, file };
  const at = { ...head, size: o.size, zeroedTo: head.offset };
  const writer = new SegmentWriter(options, DIR, tail, at, META);
  return { crash, fs, calls, writer, tail, head };
}

describe("writeSegmentHead", () => {
  const cases: { name: string; metadata: Uint8Array | null; last: HeadEnd; prevCrc: number }[] = [
    {
      name: "first segment: crc(0), metadata, snapshot",
      metadata: META,
      last: { snapshot: { index: 0n, term: 0n } },
      prevCrc: 0,
    },
    {
      name: "after a cut: crc(prev), null metadata without a data field, state",
      metadata: null,
      last: { state: { term: 3n, vote: 2n, commit: 9n } },
      prevCrc: 0xdeadbeef,
    },
    {
      name: "an empty state is left out; empty metadata keeps an empty data field",
      metadata: new Uint8Array(0),
      last: { state: { term: 0n, vote: 0n, commit: 0n } },
      prevCrc: 0x1234567,
    },
  ];
  for (const c of cases) {
    test(`writes and decodes as ${c.name}`, async () => {
      const crash = new CrashFileSystem(3);
      const options = await resolveOptions({ fs: crash });
      await crash.mkdir(DIR);
      const file = await crash.open(FIRST_PATH, { create: true });
      const head = await writeSegmentHead(file, FIRST_PATH, c.prevCrc, c.metadata, c.last, options);
      const bytes = await readBytes(crash, FIRST_PATH);
      const { records, end, crc } = decodeSegment(FIRST_PATH, bytes, c.prevCrc);
      assert.equal(head.offset, bytes.length, "the head is the whole file, and its length");
      assert.equal(end, head.offset);
      assert.equal(head.crc, crc, "the returned CRC is the running CRC after the head");

      assert.equal(records[0].type, RecordType.Crc);
      assert.equal(records[0].crc, c.prevCrc, "the crc record carries the previous CRC");
      assert.equal(records[0].offset, 0);
      assert.equal(records[1].type, RecordType.Metadata);
      if (c.metadata === null) {
        assert.equal(records[1].data, null, "null metadata has no data field");
        assert.equal(records[1].crc, c.prevCrc, "no data: the CRC does not move");
      } else {
        assert.deepEqual(records[1].data, c.metadata);
        assert.equal(records[1].crc, crc32c(c.metadata, c.prevCrc));
      }
      if ("snapshot" in c.last) {
        assert.equal(records.length, 3);
        assert.equal(records[2].type, RecordType.Snapshot);
        assert.deepEqual(decodeSnapshot(dataOf(records[2])), c.last.snapshot);
      } else if (
        c.last.state.term === 0n && c.last.state.vote === 0n && c.last.state.commit === 0n
      ) {
        assert.equal(records.length, 2, "no state record for an empty state");
      } else {
        assert.equal(records.length, 3);
        assert.equal(records[2].type, RecordType.State);
        assert.deepEqual(decodeHardState(dataOf(records[2])), c.last.state);
      }
    });
  }

  test("is fdatasynced: its bytes survive a crash (every seed), and a syncData follows the write", async () => {
    for (let seed = 1; seed <= 8; seed++) {
      const crash = new CrashFileSystem(seed);
      const calls: Call[] = [];
      const fs = recording(crash, calls);
      const options = await resolveOptions({ fs });
      await fs.mkdir(DIR);
      const file = await fs.open(FIRST_PATH, { create: true });
      await fs.syncDir("/");
      await fs.syncDir(DIR);
      calls.length = 0;
      const state = { term: 5n, vote: 1n, commit: 4n };
      const head = await writeSegmentHead(file, FIRST_PATH, 77, META, { state }, options);
      const written = (await readBytes(fs, FIRST_PATH)).slice();
      assert.deepEqual(calls.map((c) => c.op), ["write", "syncData"], `seed ${seed}`);
      crash.crash();
      const after = await readBytes(crash, FIRST_PATH);
      assert.deepEqual(after, written, `seed ${seed}: the head survived the crash`);
      const { records } = decodeSegment(FIRST_PATH, after, 77);
      assert.equal(records.length, 3);
      assert.equal(records[2].end, head.offset);
    }
  });
});

describe("SegmentWriter appends", () => {
  test("records from the encoder land right after the head, CRC-chained", async () => {
    const t = await newTail({ size: 8192 });
    const r = rng(11);
    const written = [
      entry(1n, randBytes(r, 50)),
      entry(2n, new Uint8Array(0)),
      entry(3n, randBytes(r, 300)),
    ];
    const state = { term: 1n, vote: 1n, commit: 2n };
    for (const e of written.slice(0, 2)) t.writer.encoder.entry(e);
    await t.writer.writePending();
    t.writer.encoder.entry(written[2]);
    t.writer.encoder.state(state);
    await t.writer.writePending();
    await t.writer.sync();
    await t.writer.close();

    const bytes = await readBytes(t.fs, FIRST_PATH);
    const { records } = decodeSegment(FIRST_PATH, bytes); // the Decoder checks every CRC
    assert.deepEqual(records.map((x) => x.type), [
      RecordType.Crc,
      RecordType.Metadata,
      RecordType.Snapshot,
      RecordType.Entry,
      RecordType.Entry,
      RecordType.Entry,
      RecordType.State,
    ]);
    assert.equal(records[3].offset, t.head.offset, "the first append starts where the head ends");
    for (let i = 4; i < records.length; i++) assert.equal(records[i].offset, records[i - 1].end);
    assert.deepEqual(entriesOf(records).map(plain), written.map(plain));
    assert.deepEqual(decodeHardState(dataOf(records[6])), state);
    // the chain: each record's CRC continues from the one before
    let crc = t.head.crc;
    for (const x of records.slice(3)) {
      crc = crc32c(dataOf(x), crc);
      assert.equal(x.crc, crc);
    }
  });

  test("zeros are written ahead of the records: from exactly where they end, never past the file's size", async () => {
    const size = 3 * ZERO_CHUNK_BYTES + 1234;
    const t = await newTail({ size });
    const r = rng(12);
    t.calls.length = 0;
    const tailWrites = () =>
      t.calls.filter((c) => c.path === FIRST_PATH && (c.op === "write" || c.op === "writeSync"));
    let zeroedTo = 0;
    let zeroWrites = 0;
    let reachedSize = false;
    for (let i = 1n; i <= 14n; i++) {
      t.writer.encoder.entry(entry(i, randBytes(r, 200_000 + Math.floor(r() * 20_000))));
      await t.writer.writePending();
      const ws = tailWrites();
      t.calls.length = 0;
      assert.ok(ws.length === 1 || ws.length === 2, `append ${i}: records, then maybe zeros`);
      const [rec, zero] = ws;
      assert.equal(rec.zero, false);
      const end = rec.pos + rec.len;
      if (zero !== undefined) {
        zeroWrites++;
        assert.equal(zero.zero, true, `append ${i}: the second write is zeros`);
        assert.equal(zero.pos, end, `append ${i}: zeros start exactly at the end of the records`);
        assert.ok(zero.pos + zero.len <= size, `append ${i}: zeros stay within the file's size`);
        assert.ok(zero.len <= ZERO_CHUNK_BYTES);
        if (zero.pos + zero.len === size) reachedSize = true;
        zeroedTo = zero.pos + zero.len;
      } else {
        assert.ok(
          end <= zeroedTo,
          `append ${i}: no zeros only while the records stay in zeroed blocks`,
        );
      }
      assert.equal(await t.tail.file.size(), size, `append ${i}: the file never grows`);
    }
    assert.ok(zeroWrites >= 3, `zeros were written ${zeroWrites} times`);
    assert.ok(reachedSize, "the last zeros stop at the file's size");
    await t.writer.close();
  });

  const modes = [
    { blocking: true, blockingCalls: true, uses: ["writeSync", "syncDataSync"] },
    { blocking: false, blockingCalls: true, uses: ["write", "syncData"] },
    { blocking: true, blockingCalls: false, uses: ["write", "syncData"] },
  ];
  for (const m of modes) {
    test(
      `blocking ${m.blocking}${
        m.blockingCalls ? "" : " on a file without blocking calls"
      }: the tail is written and synced with ${m.uses.join(" and ")} only`,
      async () => {
        const t = await newTail({
          size: 1 << 16,
          blocking: m.blocking,
          blockingCalls: m.blockingCalls,
        });
        t.calls.length = 0;
        for (let i = 1n; i <= 3n; i++) {
          t.writer.encoder.entry(entry(i, new Uint8Array([1, 2, 3])));
          await t.writer.writePending();
          await t.writer.sync();
        }
        const ops = new Set(
          t.calls.filter((c) => c.path === FIRST_PATH && c.op !== "truncate" && c.op !== "allocate")
            .map((c) => c.op),
        );
        assert.deepEqual([...ops].sort(), [...m.uses].sort());
        await t.writer.close();
      },
    );
  }
});

describe("SegmentWriter.cut", () => {
  async function tailWithRecords(seed = 1) {
    const t = await newTail({ size: 4096, seed });
    for (let i = 1n; i <= 3n; i++) t.writer.encoder.entry(entry(i, new Uint8Array([Number(i)])));
    t.writer.encoder.state({ term: 1n, vote: 1n, commit: 3n });
    await t.writer.writePending();
    await t.writer.sync();
    const old = decodeSegment(FIRST_PATH, await readBytes(t.fs, FIRST_PATH));
    return { ...t, old };
  }

  test("truncates the old tail to its records and syncs it, then heads <seq+1>-<nextIndex>.wal with the CRC chain, metadata and state", async () => {
    const t = await tailWithRecords();
    const state: HardState = { term: 2n, vote: 1n, commit: 3n };
    t.calls.length = 0;
    const seg = await t.writer.cut(4n, state);
    const name = segmentName(1n, 4n);
    const path = `${DIR}/${name}`;

    // the old tail: truncated to its records, then synced
    const oldCalls = t.calls.filter((c) => c.path === FIRST_PATH);
    const tr = oldCalls.findIndex((c) => c.op === "truncate");
    assert.ok(tr >= 0, "the old tail is truncated");
    assert.equal(oldCalls[tr].pos, t.old.end, "to the end of its records");
    assert.ok(
      oldCalls.slice(tr + 1).some((c) => c.op === "syncData" || c.op === "syncDataSync"),
      "and synced after the truncation",
    );
    assert.equal((await readBytes(t.fs, FIRST_PATH)).length, t.old.end);

    // the new segment
    assert.deepEqual(seg.name, { name, seq: 1n, index: 4n });
    assert.equal(t.writer.path, path);
    const names = await t.fs.readDir(DIR);
    assert.ok(names.includes(name), `${name} in ${names}`);
    assert.ok(!names.includes("0.tmp"), `the spare taken is renamed, not left behind: ${names}`);
    const bytes = await readBytes(t.fs, path);
    assert.equal(bytes.length, 4096, "the new segment is preallocated to the segment size");
    assert.equal(await seg.file.size(), 4096, "the returned file is the new segment");
    const head = decodeSegment(path, bytes, t.old.crc);
    assert.deepEqual(head.records.map((x) => x.type), [
      RecordType.Crc,
      RecordType.Metadata,
      RecordType.State,
    ]);
    assert.equal(head.records[0].crc, t.old.crc, "crc record: the old segment's final CRC");
    assert.deepEqual(head.records[1].data, META);
    assert.deepEqual(decodeHardState(dataOf(head.records[2])), state);
    await t.writer.close();
  });

  test("later appends go to the new segment, continuing its chain; the old one is untouched", async () => {
    const t = await tailWithRecords();
    const seg = await t.writer.cut(4n, { term: 1n, vote: 1n, commit: 3n });
    const path = `${DIR}/${seg.name.name}`;
    const headOnly = decodeSegment(path, await readBytes(t.fs, path), t.old.crc);
    t.writer.encoder.entry(entry(4n, new Uint8Array([4, 4])));
    await t.writer.writePending();
    await t.writer.sync();
    await t.writer.close();
    assert.equal((await readBytes(t.fs, FIRST_PATH)).length, t.old.end);
    const after = decodeSegment(path, await readBytes(t.fs, path), t.old.crc);
    assert.equal(after.records.length, headOnly.records.length + 1);
    const last = after.records[after.records.length - 1];
    assert.equal(last.offset, headOnly.end, "the append starts where the new head ends");
    assert.deepEqual(plain(decodeEntry(dataOf(last))), plain(entry(4n, new Uint8Array([4, 4]))));
  });

  test("a cut and a synced append survive a crash: both segments decode as one CRC chain", async () => {
    for (let seed = 1; seed <= 5; seed++) {
      const t = await tailWithRecords(seed);
      const seg = await t.writer.cut(4n, { term: 1n, vote: 1n, commit: 3n });
      t.writer.encoder.entry(entry(4n, new Uint8Array([9])));
      await t.writer.writePending();
      await t.writer.sync();
      t.crash.crash();
      const first = decodeSegment(FIRST_PATH, await readBytes(t.crash, FIRST_PATH));
      assert.equal(first.end, t.old.end, `seed ${seed}`);
      const path = `${DIR}/${seg.name.name}`;
      const second = decodeSegment(path, await readBytes(t.crash, path), first.crc);
      assert.deepEqual(
        [...entriesOf(first.records), ...entriesOf(second.records)].map((e) => e.index),
        [1n, 2n, 3n, 4n],
        `seed ${seed}`,
      );
    }
  });
});

describe("SegmentWriter.resume", () => {
  test("zeroes everything after the last good record durably and keeps the file's size", async () => {
    for (let seed = 1; seed <= 4; seed++) {
      const size = 8192;
      const t = await newTail({ size, seed });
      for (let i = 1n; i <= 3n; i++) t.writer.encoder.entry(entry(i, new Uint8Array(40).fill(7)));
      await t.writer.writePending();
      await t.writer.sync();
      await t.writer.close();
      const good = decodeSegment(FIRST_PATH, await readBytes(t.fs, FIRST_PATH));
      // garbage after the records: a torn record, and stray bytes further on
      const r = rng(seed);
      const garbage = randBytes(r, 700).map((b) => b | 1);
      await t.tail.file.write(garbage, good.end);
      await t.tail.file.write(randBytes(r, 100).map((b) => b | 1), 6000);
      await t.tail.file.syncData();
      const before = (await readBytes(t.fs, FIRST_PATH)).slice();

      const options = await resolveOptions({ fs: t.fs, segmentSizeBytes: size });
      const end = { offset: good.end, crc: good.crc, lastSize: size };
      const w = await SegmentWriter.resume(options, DIR, t.tail, end, META);
      t.crash.crash(); // resume made it durable before returning
      const after = await readBytes(t.crash, FIRST_PATH);
      assert.equal(after.length, size, `seed ${seed}: the size is kept`);
      assert.deepEqual(after.subarray(0, good.end), before.subarray(0, good.end));
      assert.ok(after.subarray(good.end).every((b) => b === 0), `seed ${seed}: all zeros after`);
      await w.close();
    }
  });

  test("appends after resume go on at the last good record, continuing the CRC chain", async () => {
    const size = 8192;
    const t = await newTail({ size });
    t.writer.encoder.entry(entry(1n, new Uint8Array([1])));
    await t.writer.writePending();
    await t.writer.close();
    const good = decodeSegment(FIRST_PATH, await readBytes(t.fs, FIRST_PATH));
    await t.tail.file.write(new Uint8Array(300).fill(0xab), good.end);
    const options = await resolveOptions({ fs: t.fs, segmentSizeBytes: size });
    const w = await SegmentWriter.resume(options, DIR, t.tail, {
      offset: good.end,
      crc: good.crc,
      lastSize: size,
    }, META);
    w.encoder.entry(entry(2n, new Uint8Array([2])));
    await w.writePending();
    await w.sync();
    await w.close();
    const after = decodeSegment(FIRST_PATH, await readBytes(t.fs, FIRST_PATH));
    assert.deepEqual(entriesOf(after.records).map((e) => e.index), [1n, 2n]);
    assert.equal(after.records[after.records.length - 1].offset, good.end);
  });
});

describe("SegmentWriter.full", () => {
  const payload = new Uint8Array(40).fill(5);

  /** Record ends after each of `n` appends (each followed by markSync) on a large segment. */
  async function recordEnds(n: number): Promise<number[]> {
    const t = await newTail({ size: 1 << 20 });
    for (let i = 1; i <= n; i++) {
      t.writer.encoder.entry(entry(BigInt(i), payload));
      await t.writer.writePending();
      t.writer.markSync();
    }
    await t.writer.close();
    const { records } = decodeSegment(FIRST_PATH, await readBytes(t.fs, FIRST_PATH));
    return records.filter((x) => x.type === RecordType.Entry).map((x) => x.end);
  }

  for (const extra of [0, 1]) {
    test(`turns true exactly when the flushed offset reaches the segment size (size = 3rd append's end + ${extra})`, async () => {
      const ends = await recordEnds(5);
      const size = ends[2] + extra;
      const t = await newTail({ size });
      assert.equal(t.writer.full, false);
      for (let i = 0; i < ends.length; i++) {
        t.writer.encoder.entry(entry(BigInt(i + 1), payload));
        await t.writer.writePending();
        if (i === 2) assert.equal(t.writer.full, false, "written but not flushed: not full yet");
        t.writer.markSync();
        assert.equal(t.writer.encoder.flushModel.flushedOffset, ends[i]);
        assert.equal(t.writer.full, ends[i] >= size, `after append ${i + 1} (end ${ends[i]})`);
      }
      await t.writer.close();
    });
  }
});
