/**
 * Unit tests of replay below the WAL: where each entry lands (EntrySequence), the metadata
 * and snapshot checks (ReplayChecks), the checked scan (scanLog), and the two passes of
 * streaming replay (planStream, EntryStream) against `replayAll`.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type Entry, type HardState, type Snapshot, WAL, WalError } from "../mod.ts";
import { CrashFileSystem } from "../src/fs/crash.ts";
import type { FileSystem } from "../src/fs/types.ts";
import { EntrySequence, ReplayChecks } from "../src/replay/checks.ts";
import { scanLog } from "../src/replay/log_scan.ts";
import { replayAll } from "../src/replay/read_all.ts";
import type { RecordPosition, SegmentFile } from "../src/replay/scan.ts";
import { EntryStream, planStream } from "../src/replay/stream.ts";
import { Decoder } from "../src/segment/decoder.ts";
import { writeFrameHeader } from "../src/segment/frame.ts";
import { writeSnapshot } from "../src/segment/messages.ts";
import { ByteWriter } from "../src/segment/wire.ts";
import { RecordType } from "../src/types.ts";
import { SegmentSet } from "../src/wal/segment_set.ts";
import { readRecord, RecordView, writeRecord } from "./codec.ts";
import { randInt, rng } from "./helpers.ts";

const DIR = "/wal";
const META = new TextEncoder().encode("replay-unit");
/** Small segments keep the in-memory file system small; the history cuts explicitly. */
const SEGMENT_BYTES = 1 << 16;
const AT: RecordPosition = {
  file: "/wal/0000000000000001-0000000000000007.wal",
  offset: 136,
  end: 200,
};

function isWalError(code: string, file?: string, offset?: number) {
  return (e: unknown) => {
    assert.ok(e instanceof WalError, `a WalError, not ${e}`);
    assert.equal(e.code, code);
    if (file !== undefined) assert.equal(e.file, file);
    if (offset !== undefined) assert.equal(e.offset, offset);
    return true;
  };
}

describe("EntrySequence.place", () => {
  test("appends take the next position", () => {
    const seq = new EntrySequence(10n);
    assert.deepEqual([11n, 12n, 13n, 14n].map((i) => seq.place(i, AT)), [0, 1, 2, 3]);
    assert.equal(seq.length, 4);
  });

  test("a lower index overwrites: its position, and the log ends there", () => {
    const seq = new EntrySequence(10n);
    for (const i of [11n, 12n, 13n, 14n]) seq.place(i, AT);
    assert.equal(seq.place(14n, AT), 3, "the same index as the last replaces it");
    assert.equal(seq.length, 4);
    assert.equal(seq.place(12n, AT), 1);
    assert.equal(seq.length, 2, "what followed 12 is gone");
    assert.equal(seq.place(13n, AT), 2, "and the log appends from there");
    assert.equal(seq.place(11n, AT), 0, "down to the first entry after the snapshot");
    assert.equal(seq.length, 1);
  });

  test("-1 at or below the snapshot, leaving the log as it was", () => {
    const seq = new EntrySequence(10n);
    for (const i of [3n, 9n, 10n]) assert.equal(seq.place(i, AT), -1, `index ${i}`);
    assert.equal(seq.length, 0);
    assert.equal(seq.place(11n, AT), 0);
    assert.equal(seq.place(12n, AT), 1);
    assert.equal(seq.place(10n, AT), -1);
    assert.equal(seq.place(0n, AT), -1);
    assert.equal(seq.length, 2);
    assert.equal(seq.place(13n, AT), 2, "appends go on after an entry the snapshot covers");
  });

  test("a gap is SLICE_OUT_OF_RANGE at the given file and offset, and changes nothing", () => {
    const seq = new EntrySequence(10n);
    assert.throws(() => seq.place(12n, AT), isWalError("SLICE_OUT_OF_RANGE", AT.file, AT.offset));
    seq.place(11n, AT);
    seq.place(12n, AT);
    const at2 = { file: "/wal/other.wal", offset: 4096, end: 4200 };
    assert.throws(() => seq.place(14n, at2), isWalError("SLICE_OUT_OF_RANGE", at2.file, 4096));
    assert.equal(seq.length, 2);
    assert.equal(seq.place(13n, AT), 2);
  });

  test("a snapshot at 0 starts the log at index 1", () => {
    const seq = new EntrySequence(0n);
    assert.equal(seq.place(0n, AT), -1);
    assert.throws(() => seq.place(2n, AT), isWalError("SLICE_OUT_OF_RANGE"));
    assert.equal(seq.place(1n, AT), 0);
  });

  for (const seed of [1, 2, 3, 4, 5]) {
    test(`a random history with overwrites leaves the same entries as a naive model (seed ${seed})`, () => {
      const r = rng(seed);
      const snap = BigInt(randInt(r, 0, 20));
      const seq = new EntrySequence(snap);
      const out: number[] = []; // what replayAll keeps: tags by position
      let model: { index: bigint; tag: number }[] = []; // naive: search and cut by index
      let overwrites = 0;
      let gaps = 0;
      for (let tag = 0; tag < 3000; tag++) {
        const last = model.length === 0 ? snap : model[model.length - 1].index;
        const p = r();
        let index: bigint;
        if (p < 0.7) index = last + 1n;
        else if (p < 0.85 && model.length > 0) index = model[randInt(r, 0, model.length - 1)].index;
        else if (p < 0.93) index = BigInt(randInt(r, 0, Number(snap)));
        else if (p < 0.97) index = last + BigInt(randInt(r, 2, 5));
        else index = snap + 1n;

        if (index > last + 1n) {
          gaps++;
          assert.throws(() => seq.place(index, AT), isWalError("SLICE_OUT_OF_RANGE"));
        } else if (index <= snap) {
          assert.equal(seq.place(index, AT), -1);
        } else {
          if (index <= last) overwrites++;
          model = model.filter((x) => x.index < index);
          const want = model.length;
          model.push({ index, tag });
          const pos = seq.place(index, AT);
          assert.equal(pos, want, `step ${tag}: index ${index}`);
          out.length = pos;
          out.push(tag);
        }
        assert.equal(seq.length, model.length);
      }
      assert.ok(overwrites > 100 && gaps > 20, `${overwrites} overwrites, ${gaps} gaps`);
      assert.deepEqual(out, model.map((x) => x.tag));
    });
  }
});

/** A record of `type` with `data` (or none), decoded into a RecordView. */
function record(type: number, data: Uint8Array | null): RecordView {
  const w = new ByteWriter();
  writeRecord(w, type, 0, data);
  const view = new RecordView();
  readRecord(w.buf, 0, w.length, view);
  return view;
}

function snapshotRecord(s: Snapshot): RecordView {
  const w = new ByteWriter();
  writeSnapshot(w, s);
  return record(RecordType.Snapshot, w.buf.slice(0, w.length));
}

describe("ReplayChecks", () => {
  const start = { index: 5n, term: 2n };

  test("the same metadata in every segment is kept; a different one is METADATA_CONFLICT at its record", () => {
    const checks = new ReplayChecks(start);
    assert.equal(checks.metadata, undefined);
    assert.equal(checks.handle(record(RecordType.Metadata, META), AT), true);
    assert.equal(checks.handle(record(RecordType.Metadata, META.slice()), AT), true);
    assert.deepEqual(checks.metadata, META);
    const other = new TextEncoder().encode("replay-unix");
    const at2 = { file: "/wal/b.wal", offset: 24, end: 48 };
    assert.throws(
      () => checks.handle(record(RecordType.Metadata, other), at2),
      isWalError("METADATA_CONFLICT", at2.file, at2.offset),
    );
  });

  test("metadata without a data field is null, and equals empty metadata (as Go's nil)", () => {
    const checks = new ReplayChecks(start);
    checks.handle(record(RecordType.Metadata, null), AT);
    assert.equal(checks.metadata, null);
    checks.handle(record(RecordType.Metadata, new Uint8Array(0)), AT);
    assert.throws(
      () => checks.handle(record(RecordType.Metadata, META), AT),
      isWalError("METADATA_CONFLICT"),
    );
  });

  test("a snapshot record at the start index with another term is SNAPSHOT_MISMATCH at its record", () => {
    const checks = new ReplayChecks(start);
    assert.equal(checks.handle(snapshotRecord({ index: 4n, term: 9n }), AT), true);
    assert.equal(checks.matched, false, "other indexes neither match nor conflict");
    assert.throws(
      () => checks.handle(snapshotRecord({ index: 5n, term: 3n }), AT),
      isWalError("SNAPSHOT_MISMATCH", AT.file, AT.offset),
    );
    assert.equal(checks.matched, false);
  });

  test("requireMatch: SNAPSHOT_NOT_FOUND for the directory unless a record matched", () => {
    const checks = new ReplayChecks(start);
    checks.handle(snapshotRecord({ index: 0n, term: 0n }), AT);
    assert.throws(() => checks.requireMatch(DIR, null), isWalError("SNAPSHOT_NOT_FOUND", DIR));
    const torn = new WalError("UNEXPECTED_EOF", "torn record", { file: AT.file, offset: 8 });
    assert.throws(() => checks.requireMatch(DIR, torn), (e: unknown) => {
      isWalError("SNAPSHOT_NOT_FOUND", DIR)(e);
      assert.ok(e instanceof Error && e.message.includes(torn.message), "says where it ended");
      return true;
    });
    checks.handle(snapshotRecord({ index: 5n, term: 2n }), AT);
    assert.equal(checks.matched, true);
    checks.requireMatch(DIR, null);
  });

  test("handles metadata and snapshot records only", () => {
    const checks = new ReplayChecks(start);
    for (const type of [RecordType.Entry, RecordType.State, RecordType.Crc, 9]) {
      assert.equal(checks.handle(record(type, null), AT), false, `type ${type}`);
    }
  });
});

const hs = (term: bigint, vote: bigint, commit: bigint): HardState => ({ term, vote, commit });

function run(from: bigint, to: bigint, term: bigint): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) {
    out.push({ term, index: i, type: 0, data: new TextEncoder().encode(`${i}@${term}`) });
  }
  return out;
}

/**
 * A small log written through the WAL, across four segments, with raft overwrites inside a
 * segment, of the last entry, and across a segment boundary; snapshots at 3 and 9.
 */
async function writeHistory(): Promise<{ fs: CrashFileSystem; saved: Entry[][] }> {
  const fs = new CrashFileSystem(17);
  const wal = await WAL.create(DIR, META, { fs, segmentSizeBytes: SEGMENT_BYTES });
  const saved: Entry[][] = [];
  const save = async (state: HardState, es: Entry[]) => {
    saved.push(es);
    await wal.save(state, es);
  };
  await save(hs(1n, 1n, 0n), run(1n, 5n, 1n));
  await wal.cut();
  await save(hs(1n, 1n, 3n), run(6n, 8n, 1n));
  await save(hs(2n, 2n, 3n), run(4n, 6n, 2n)); // overwrite at 4
  await wal.saveSnapshot({ index: 3n, term: 1n });
  await wal.cut();
  await save(hs(2n, 2n, 5n), run(7n, 9n, 2n));
  await save(hs(3n, 3n, 5n), run(9n, 9n, 3n)); // the last entry again
  await save(hs(3n, 3n, 6n), run(10n, 11n, 3n));
  await save(hs(4n, 1n, 6n), run(7n, 8n, 4n)); // overwrite at 7
  await wal.cut();
  await save(hs(4n, 1n, 8n), run(9n, 10n, 4n));
  await wal.saveSnapshot({ index: 9n, term: 4n });
  await save(hs(5n, 1n, 9n), run(8n, 8n, 5n)); // overwrite at 8, written in the segment before
  await save(hs(5n, 1n, 9n), run(9n, 12n, 5n));
  await wal.close();
  return { fs, saved };
}

/** The log raft rebuilds from `snap`: naive, by index. */
function modelLog(saved: Entry[][], snap: bigint): Entry[] {
  let log: Entry[] = [];
  for (const es of saved) {
    for (const e of es) {
      if (e.index <= snap) continue;
      log = log.filter((x) => x.index < e.index);
      log.push(e);
    }
  }
  return log;
}

/** Where entries overwrite earlier ones after `snap`, read with the Decoder alone. */
async function overwritePoints(files: SegmentFile[], snap: bigint) {
  const points: { segment: number; offset: number; index: bigint }[] = [];
  const dec = new Decoder();
  let last = -1n;
  for (let k = 0; k < files.length; k++) {
    const f = files[k].file;
    const bytes = new Uint8Array(await f.size());
    await f.read(bytes, 0);
    dec.begin(files[k].path, bytes, k === files.length - 1);
    for (;;) {
      const offset = dec.offset;
      if (!dec.next()) break;
      const rec = dec.record;
      if (rec.type === RecordType.Crc) dec.updateCRC(rec.crc);
      if (rec.type !== RecordType.Entry) continue;
      const index = rec.entry().index;
      if (index <= snap) continue;
      if (index <= last) points.push({ segment: k, offset, index });
      last = index;
    }
  }
  return points;
}

const plain = (e: Entry) => ({ term: e.term, index: e.index, type: e.type, data: [...e.data] });

async function collect(it: AsyncIterable<Entry>): Promise<Entry[]> {
  const out: Entry[] = [];
  for await (const e of it) out.push(e);
  return out;
}

async function withSegments<T>(
  fs: FileSystem,
  snap: Snapshot,
  fn: (files: SegmentFile[]) => Promise<T>,
): Promise<T> {
  const set = await SegmentSet.open(fs, DIR, snap, false);
  try {
    return await fn(set.files());
  } finally {
    await set.close();
  }
}

describe("scanLog", () => {
  test("gives every entry record in log order, the metadata and the last state", async () => {
    const { fs, saved } = await writeHistory();
    await withSegments(fs, { index: 0n, term: 0n }, async (files) => {
      const indexes: bigint[] = [];
      const scan = await scanLog({
        dir: DIR,
        files,
        start: { index: 0n, term: 0n },
        requireCleanEnd: true,
        onEntry: (rec) => void indexes.push(rec.entry().index),
      });
      assert.deepEqual(indexes, saved.flat().map((e) => e.index));
      assert.deepEqual(scan.metadata, META);
      assert.deepEqual(scan.state, hs(5n, 1n, 9n));
      assert.equal(scan.end.torn, null);
      assert.equal(scan.end.lastSegment, files.length - 1);
    });
  });

  test("a torn tail ends the scan quietly, or throws UNEXPECTED_EOF when a clean end is required", async () => {
    const { fs, saved } = await writeHistory();
    const start = { index: 0n, term: 0n };
    const opts = (files: SegmentFile[], requireCleanEnd: boolean, seen: bigint[]) => ({
      dir: DIR,
      files,
      start,
      requireCleanEnd,
      onEntry: (rec: RecordView) => void seen.push(rec.entry().index),
    });
    const clean = await withSegments(fs, start, (files) => scanLog(opts(files, true, [])));
    // a record of 2000 bytes whose first 100 bytes were written: a torn write
    const names = (await fs.readDir(DIR)).filter((n) => n.endsWith(".wal")).sort();
    const lastPath = `${DIR}/${names[names.length - 1]}`;
    const f = await fs.open(lastPath, { write: true });
    const torn = new Uint8Array(108);
    writeFrameHeader(torn, 0, 2000);
    torn.fill(0xee, 8);
    await f.write(torn, clean.end.offset);
    await f.close();

    const seen: bigint[] = [];
    const quiet = await withSegments(fs, start, (files) => scanLog(opts(files, false, seen)));
    assert.ok(quiet.end.torn instanceof WalError);
    assert.equal(quiet.end.torn.code, "UNEXPECTED_EOF");
    assert.equal(quiet.end.torn.offset, clean.end.offset);
    assert.equal(quiet.end.offset, clean.end.offset);
    assert.equal(seen.length, saved.flat().length, "every good entry was still handed over");
    await withSegments(fs, start, async (files) => {
      await assert.rejects(scanLog(opts(files, true, [])), isWalError("UNEXPECTED_EOF", lastPath));
    });
  });

  test("a snapshot that no record matches is SNAPSHOT_NOT_FOUND, one with another term SNAPSHOT_MISMATCH", async () => {
    const { fs } = await writeHistory();
    for (
      const [snap, code] of [
        [{ index: 9n, term: 2n }, "SNAPSHOT_MISMATCH"],
        [{ index: 7n, term: 2n }, "SNAPSHOT_NOT_FOUND"],
      ] as const
    ) {
      await withSegments(fs, snap, async (files) => {
        await assert.rejects(
          scanLog({ dir: DIR, files, start: snap, requireCleanEnd: false, onEntry: () => {} }),
          isWalError(code),
        );
      });
    }
  });
});

describe("planStream and EntryStream", () => {
  for (const snap of [{ index: 0n, term: 0n }, { index: 3n, term: 1n }, { index: 9n, term: 4n }]) {
    test(`from snapshot ${snap.index}: the overwrite points are recorded, and the stream yields replayAll's entries`, async () => {
      const { fs, saved } = await writeHistory();
      const expectedDrops = await withSegments(
        fs,
        snap,
        (files) => overwritePoints(files, snap.index),
      );
      assert.ok(
        expectedDrops.length >= (snap.index < 9n ? 4 : 1),
        `${expectedDrops.length} overwrites`,
      );

      const all = await withSegments(fs, snap, (files) => replayAll(DIR, files, snap, true));
      const plan = await withSegments(fs, snap, (files) => planStream(DIR, files, snap, true));
      assert.deepEqual(plan.drops, expectedDrops);
      for (let p = 0; p < plan.drops.length; p++) {
        const min = plan.drops.slice(p).reduce(
          (m, d) => (d.index < m ? d.index : m),
          plan.drops[p].index,
        );
        assert.equal(plan.minLater[p], min, `minLater[${p}]`);
      }
      assert.deepEqual(plan.metadata, all.metadata);
      assert.deepEqual(plan.state, all.result.state);
      assert.equal(plan.lastIndex, all.lastIndex);
      assert.deepEqual(plan.end, all.end);

      const stream = await EntryStream.open(fs, "/wal", plan, snap);
      const streamed = await collect(stream);
      assert.deepEqual(streamed.map(plain), all.result.entries.map(plain));
      assert.deepEqual(all.result.entries.map(plain), modelLog(saved, snap.index).map(plain));
      assert.ok(streamed.length < saved.flat().filter((e) => e.index > snap.index).length);
    });
  }

  test("the stream reads no further than pass 1 did: appends made after the plan are not yielded", async () => {
    const { fs } = await writeHistory();
    const snap = { index: 0n, term: 0n };
    const plan = await withSegments(fs, snap, (files) => planStream(DIR, files, snap, true));
    const wal = await WAL.open(DIR, snap, { fs, segmentSizeBytes: SEGMENT_BYTES });
    const before = await wal.readAll();
    await wal.save(hs(5n, 1n, 9n), run(13n, 14n, 5n));
    await wal.close();
    const streamed = await collect(await EntryStream.open(fs, "/wal", plan, snap));
    assert.deepEqual(streamed.map(plain), before.entries.map(plain));
  });
});
