import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Decoder } from "../src/segment/decoder.ts";
import { Encoder } from "../src/segment/encoder.ts";
import { WalError, type WalErrorCode } from "../src/errors.ts";
import {
  decodeEntry as readEntry,
  decodeHardState as readHardState,
  decodeSnapshot as readSnapshot,
} from "./codec.ts";
import { type Entry, type HardState, RecordType } from "../src/types.ts";
import { rng } from "./helpers.ts";

function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/\s+/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const ascii = (s: string) => new TextEncoder().encode(s);

/**
 * The first 72 bytes of a new WAL created by etcd 3.4 with metadata "somedata": a crc
 * record, the metadata record and the walpb.Snapshot{0,0} record (etcd's TestNew). The file
 * continues with preallocated zeros. (Re-checked with compat/etcd34/bin/etcd34compat.)
 */
const ETCD_NEW_WAL_PREFIX = fromHex(
  "040000000000008408041000000000001200000000000086080110" +
    "85d4fda0071a08736f6d65646174610000000000000e00000000000082080510" +
    "80db81c1011a04080010000000",
);

/**
 * What etcd 3.4 writes after that prefix for one `Save` of three entries and a hard state
 * (generated with compat/etcd34/bin/etcd34compat): entries
 * {1, 1, Normal, "hello"}, {2^53+1, 2, ConfChange, nil}, {2^64-1, 3, ConfChangeV2, 00ff},
 * then HardState{term 2^53+1, vote 3, commit 1}.
 */
const ETCD_SAVE = fromHex(
  "160000000000008208021097dfa6371a0d080010011801220568656c6c6f0000" +
    "1700000000000081080210ccd880c6051a0d0801108180808080808010180200" +
    "1d00000000000083080210deaed2d20b1a13080210ffffffffffffffffff0118" +
    "03220200ff000000" +
    "1700000000000081080310dcb6e28f0d1a0d0881808080808080101003180100",
);
const SAVE_ENTRIES: Entry[] = [
  { term: 1n, index: 1n, type: 0, data: ascii("hello") },
  { term: 2n ** 53n + 1n, index: 2n, type: 1, data: new Uint8Array(0) },
  { term: 2n ** 64n - 1n, index: 3n, type: 2, data: new Uint8Array([0x00, 0xff]) },
];
const SAVE_STATE: HardState = { term: 2n ** 53n + 1n, vote: 3n, commit: 1n };

const SEGMENT = "0000000000000000-0000000000000000.wal";

/** An Encoder that has written the head of a new WAL, as etcd's Create does. */
function newWalEncoder(): Encoder {
  const enc = new Encoder(0, 0);
  enc.crcRecord();
  enc.metadata(ascii("somedata"));
  enc.snapshot({ index: 0n, term: 0n });
  return enc;
}

/** Decodes every record of one segment, following crc records like the WAL does. */
function decodeAll(dec: Decoder): { type: number; crc: number; data: Uint8Array | null }[] {
  const out = [];
  while (dec.next()) {
    const r = dec.record;
    out.push({ type: r.type, crc: r.crc, data: r.data === null ? null : r.data.slice() });
    if (r.type === RecordType.Crc) dec.updateCRC(r.crc);
  }
  return out;
}

function assertWalError(fn: () => unknown, code: WalErrorCode, file: string, offset: number) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof WalError, `expected a WalError, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.file, file);
    assert.equal(e.offset, offset);
    return true;
  });
}

/** Golden prefix followed by one entry record with `n` bytes of 0xab data. */
function prefixAndBigEntry(n: number): { bytes: Uint8Array; entryOffset: number } {
  const enc = newWalEncoder();
  enc.entry({ term: 1n, index: 1n, type: 0, data: new Uint8Array(n).fill(0xab) });
  return { bytes: enc.take().slice(), entryOffset: 72 };
}

describe("encoder: etcd golden bytes", () => {
  test("crc record, metadata 'somedata' and snapshot {0,0} encode to etcd's 72-byte prefix", () => {
    const enc = new Encoder(0, 0);
    enc.crcRecord();
    enc.metadata(ascii("somedata"));
    enc.snapshot({ index: 0n, term: 0n });
    assert.equal(enc.crc, 0x18206d80);
    const bytes = enc.take();
    assert.equal(bytes.length, 72);
    assert.equal(toHex(bytes), toHex(ETCD_NEW_WAL_PREFIX));
    assert.equal(enc.take().length, 0, "take empties the pending buffer");
  });

  test("entries then a hard state encode to the bytes etcd 3.4's Save writes", () => {
    const enc = newWalEncoder();
    for (const e of SAVE_ENTRIES) enc.entry(e);
    enc.state(SAVE_STATE);
    assert.equal(toHex(enc.take()), toHex(concat(ETCD_NEW_WAL_PREFIX, ETCD_SAVE)));
  });

  test("every framed record keeps the stream 8-byte aligned", () => {
    const rand = rng(41);
    const enc = new Encoder(0, 0);
    enc.crcRecord();
    for (let i = 0; i < 300; i++) {
      const data = new Uint8Array(Math.floor(rand() * 40));
      enc.entry({ term: 1n, index: BigInt(i), type: 0, data });
      assert.equal(enc.pending.length % 8, 0);
    }
  });

  test("null metadata leaves the data field out; empty metadata writes it empty, as Go", () => {
    const cases = [
      // Go: Record{Type: 1, Crc: 0x1234} (nil Data)
      { md: null, hex: "0500000000000083" + "080110b424000000", data: null },
      // Go: Record{Type: 1, Crc: 0x1234, Data: []byte{}} adds `1a 00`
      {
        md: new Uint8Array(0),
        hex: "0700000000000081" + "080110b4241a0000",
        data: new Uint8Array(0),
      },
    ];
    for (const c of cases) {
      const enc = new Encoder(0x1234, 0);
      enc.metadata(c.md);
      assert.equal(enc.crc, 0x1234, "no data bytes, so the CRC is unchanged");
      const bytes = enc.take().slice();
      assert.equal(toHex(bytes), c.hex);
      const dec = new Decoder();
      dec.updateCRC(0x1234);
      dec.begin(SEGMENT, bytes, true);
      assert.ok(dec.next());
      assert.equal(dec.record.type, RecordType.Metadata);
      assert.deepEqual(dec.record.data, c.data);
      assert.equal(dec.record.crc, 0x1234);
      assert.equal(dec.next(), false);
    }
  });
});

describe("decoder", () => {
  test("decodes etcd's prefix: crc, metadata (crc 0x741f6a05), snapshot (crc 0x18206d80)", () => {
    const dec = new Decoder();
    dec.begin(SEGMENT, ETCD_NEW_WAL_PREFIX, true);
    const recs = decodeAll(dec);
    assert.deepEqual(recs, [
      { type: RecordType.Crc, crc: 0, data: null },
      { type: RecordType.Metadata, crc: 0x741f6a05, data: ascii("somedata") },
      { type: RecordType.Snapshot, crc: 0x18206d80, data: new Uint8Array([8, 0, 16, 0]) },
    ]);
    assert.deepEqual(readSnapshot(recs[2].data!), { index: 0n, term: 0n });
    assert.equal(dec.offset, 72);
    assert.equal(dec.crc, 0x18206d80);
    assert.equal(dec.next(), false, "stays at the end");
  });

  test("decodes etcd's Save bytes back into the entries and hard state", () => {
    const dec = new Decoder();
    dec.begin(SEGMENT, concat(ETCD_NEW_WAL_PREFIX, ETCD_SAVE), true);
    const recs = decodeAll(dec);
    assert.deepEqual(recs.map((r) => r.type), [4, 1, 5, 2, 2, 2, 3]);
    assert.deepEqual(recs.slice(3, 6).map((r) => readEntry(r.data!)), SAVE_ENTRIES);
    assert.deepEqual(readHardState(recs[6].data!), SAVE_STATE);
    assert.equal(dec.offset, 72 + ETCD_SAVE.length);
  });

  test("zero padding after the records ends the segment cleanly", () => {
    for (const zeros of [8, 9, 512, 4096, 64 * 1024]) {
      const dec = new Decoder();
      dec.begin(SEGMENT, concat(ETCD_NEW_WAL_PREFIX, new Uint8Array(zeros)), true);
      assert.equal(decodeAll(dec).length, 3);
      assert.equal(dec.next(), false);
      assert.equal(dec.offset, 72, "offset stays after the last record");
      assert.equal(dec.crc, 0x18206d80);
    }
  });

  test("an empty segment has no records", () => {
    const dec = new Decoder();
    dec.begin(SEGMENT, new Uint8Array(0), true);
    assert.equal(dec.next(), false);
    assert.equal(dec.offset, 0);
  });

  test("random records round trip through Encoder and Decoder across chained segments", () => {
    const rand = rng(42);
    const segments: Uint8Array[] = [];
    const expected: { type: number; data: Uint8Array | null }[][] = [];
    let crc = 0;
    for (let s = 0; s < 4; s++) {
      const enc = new Encoder(crc, 0);
      enc.crcRecord();
      const exp: { type: number; data: Uint8Array | null }[] = [{
        type: RecordType.Crc,
        data: null,
      }];
      for (let i = 0; i < 200; i++) {
        const k = rand();
        if (k < 0.7) {
          const data = new Uint8Array(Math.floor(rand() * (rand() < 0.1 ? 3000 : 50)));
          for (let j = 0; j < data.length; j++) data[j] = Math.floor(rand() * 256);
          enc.entry({ term: BigInt(s + 1), index: BigInt(i), type: i % 3, data });
          exp.push({ type: RecordType.Entry, data: null });
        } else if (k < 0.9) {
          enc.state({ term: BigInt(i), vote: 1n, commit: BigInt(i) });
          exp.push({ type: RecordType.State, data: null });
        } else {
          enc.snapshot({ index: BigInt(i), term: 2n });
          exp.push({ type: RecordType.Snapshot, data: null });
        }
      }
      crc = enc.crc;
      segments.push(enc.take().slice());
      expected.push(exp);
    }
    const dec = new Decoder();
    for (let s = 0; s < segments.length; s++) {
      dec.begin(`seg${s}`, segments[s], s === segments.length - 1);
      const recs: number[] = [];
      while (dec.next()) {
        const r = dec.record;
        if (r.type === RecordType.Crc) {
          assert.equal(r.crc, dec.crc, "crc record carries the previous segment's running CRC");
          dec.updateCRC(r.crc);
        }
        recs.push(r.type);
      }
      assert.deepEqual(recs, expected[s].map((e) => e.type));
      assert.equal(dec.offset, segments[s].length);
    }
    assert.equal(dec.crc, crc);
  });

  test("a flipped byte in a record of a non-last segment is CRC_MISMATCH at that record", () => {
    const bytes = ETCD_NEW_WAL_PREFIX.slice();
    bytes[34] ^= 0x01; // the 's' of "somedata" in the metadata record at offset 16
    const dec = new Decoder();
    dec.begin("dir/seg-a.wal", bytes, false);
    assert.ok(dec.next());
    assertWalError(() => dec.next(), "CRC_MISMATCH", "dir/seg-a.wal", 16);
    assert.equal(dec.offset, 16, "offset stays at the last good record's end");
  });

  test("a flipped byte without an all-zero sector chunk is CRC_MISMATCH in the last segment too", () => {
    const bytes = ETCD_NEW_WAL_PREFIX.slice();
    bytes[34] ^= 0x01;
    const dec = new Decoder();
    dec.begin("last.wal", bytes, true);
    assert.ok(dec.next());
    assertWalError(() => dec.next(), "CRC_MISMATCH", "last.wal", 16);
  });

  test("a CRC failure with an all-zero 512-byte sector chunk is UNEXPECTED_EOF in the last segment", () => {
    const { bytes, entryOffset } = prefixAndBigEntry(2000);
    bytes[300] ^= 0x01; // the same kind of flip, in the entry's data
    bytes.fill(0, 512, 1024); // one whole sector of the record never reached the disk
    const dec = new Decoder();
    dec.begin("last.wal", bytes, true);
    for (let i = 0; i < 3; i++) assert.ok(dec.next());
    assertWalError(() => dec.next(), "UNEXPECTED_EOF", "last.wal", entryOffset);

    // the same bytes in a segment that is not the last are corruption
    const dec2 = new Decoder();
    dec2.begin("mid.wal", bytes, false);
    for (let i = 0; i < 3; i++) assert.ok(dec2.next());
    assertWalError(() => dec2.next(), "CRC_MISMATCH", "mid.wal", entryOffset);
  });

  test("the zeroed chunk that marks a torn record may be the record's last partial sector", () => {
    const { bytes, entryOffset } = prefixAndBigEntry(2000);
    bytes.fill(0, 2048); // everything from the last sector boundary on, padding included
    const dec = new Decoder();
    dec.begin("last.wal", bytes, true);
    for (let i = 0; i < 3; i++) assert.ok(dec.next());
    assertWalError(() => dec.next(), "UNEXPECTED_EOF", "last.wal", entryOffset);
  });

  test("512 zero bytes not aligned to a sector are corruption, not a torn write", () => {
    const { bytes, entryOffset } = prefixAndBigEntry(2000);
    bytes.fill(0, 600, 1112); // covers no whole sector chunk
    const dec = new Decoder();
    dec.begin("last.wal", bytes, true);
    for (let i = 0; i < 3; i++) assert.ok(dec.next());
    assertWalError(() => dec.next(), "CRC_MISMATCH", "last.wal", entryOffset);
  });

  test("a record that fails to decode is DECODE, or UNEXPECTED_EOF when torn in the last segment", () => {
    const { bytes, entryOffset } = prefixAndBigEntry(2000);
    bytes[entryOffset + 8] = 0x0f; // the record's first tag now has wire type 7
    for (const isLast of [false, true]) {
      const dec = new Decoder();
      dec.begin("s.wal", bytes, isLast);
      for (let i = 0; i < 3; i++) assert.ok(dec.next());
      assertWalError(() => dec.next(), "DECODE", "s.wal", entryOffset);
    }
    bytes.fill(0, 1024, 1536);
    const dec = new Decoder();
    dec.begin("s.wal", bytes, true);
    for (let i = 0; i < 3; i++) assert.ok(dec.next());
    assertWalError(() => dec.next(), "UNEXPECTED_EOF", "s.wal", entryOffset);
  });

  test("a length word larger than the rest of the file is UNEXPECTED_EOF in the last segment, CRC_MISMATCH before it, without allocating", () => {
    for (const word of [0x00ffffffffffffffn, 2n ** 55n, 2n ** 53n + 1n, 2n ** 40n, 1000n]) {
      for (const isLast of [true, false]) {
        const tail = new Uint8Array(8 + 500);
        new DataView(tail.buffer).setBigUint64(0, word, true);
        tail.fill(0xcc, 8);
        const dec = new Decoder();
        dec.begin("s.wal", concat(ETCD_NEW_WAL_PREFIX, tail), isLast);
        for (let i = 0; i < 3; i++) assert.ok(dec.next());
        // allocating 2^55 bytes would throw a RangeError instead
        assertWalError(() => dec.next(), isLast ? "UNEXPECTED_EOF" : "CRC_MISMATCH", "s.wal", 72);
      }
    }
  });

  test("a record whose padding runs past the end of the file is UNEXPECTED_EOF", () => {
    // the snapshot record is 14 bytes plus 2 padding: cut one padding byte
    const dec = new Decoder();
    dec.begin("s.wal", ETCD_NEW_WAL_PREFIX.subarray(0, 71), true);
    assert.ok(dec.next());
    assert.ok(dec.next());
    assertWalError(() => dec.next(), "UNEXPECTED_EOF", "s.wal", 48);
  });

  test("a buffer ending inside a non-zero length word is UNEXPECTED_EOF; zeros there end it", () => {
    for (let n = 1; n < 8; n++) {
      for (const fill of [0x00, 0x10]) {
        const dec = new Decoder();
        dec.begin("s.wal", concat(ETCD_NEW_WAL_PREFIX, new Uint8Array(n).fill(fill)), true);
        for (let i = 0; i < 3; i++) assert.ok(dec.next());
        if (fill === 0) assert.equal(dec.next(), false);
        else assertWalError(() => dec.next(), "UNEXPECTED_EOF", "s.wal", 72);
      }
    }
  });

  test("begin resets the offset but keeps the CRC chain for the next segment", () => {
    const dec = new Decoder();
    dec.begin("a.wal", ETCD_NEW_WAL_PREFIX, false);
    decodeAll(dec);
    const enc = new Encoder(dec.crc, 0);
    enc.crcRecord();
    enc.entry({ term: 1n, index: 1n, type: 0, data: ascii("x") });
    dec.begin("b.wal", enc.take().slice(), true);
    assert.equal(dec.offset, 0);
    assert.equal(dec.path, "b.wal");
    assert.ok(dec.next());
    assert.equal(dec.record.crc, 0x18206d80);
    assert.ok(dec.next());
    assert.equal(dec.crc, enc.crc);
  });
});
