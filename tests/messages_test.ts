import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  ConfStateSchema,
  EntrySchema,
  type EntryType as PbEntryType,
  HardStateSchema,
} from "../gen/raftpb/raft_pb.ts";
import { RecordSchema, SnapshotSchema } from "../gen/walpb/record_pb.ts";
import {
  recordSize,
  RecordView,
  writeEntry,
  writeHardState,
  writeSnapshot,
} from "../src/segment/messages.ts";
import { ByteWriter, ProtobufError, varintSize } from "../src/segment/wire.ts";
import { checkUint64 } from "../src/validate.ts";
import {
  decodeEntry as readEntry,
  decodeHardState as readHardState,
  decodeSnapshot as readSnapshot,
  readRecord,
  writeRecord,
} from "./codec.ts";
import { WalError } from "../src/errors.ts";
import { crc32c } from "../src/segment/crc32c.ts";
import { Encoder } from "../src/segment/encoder.ts";
import { writeFrameHeader } from "../src/segment/frame.ts";
import type { Entry, HardState, Snapshot } from "../src/types.ts";
import { randBytes, rng } from "./helpers.ts";

const U64_MAX = (1n << 64n) - 1n;
const SPECIAL: bigint[] = [
  0n,
  1n,
  127n,
  128n,
  16383n,
  16384n,
  2n ** 31n - 1n,
  2n ** 31n,
  2n ** 32n - 1n,
  2n ** 32n,
  2n ** 35n,
  2n ** 53n - 1n,
  2n ** 53n,
  2n ** 53n + 1n,
  2n ** 56n,
  2n ** 63n - 1n,
  2n ** 63n,
  U64_MAX - 1n,
  U64_MAX,
];
const DATA_SIZES = [0, 0, 1, 2, 127, 128, 1000, 16383, 16384, 300_000];

function randomU64(rand: () => number): bigint {
  if (rand() < 0.4) return SPECIAL[Math.floor(rand() * SPECIAL.length)];
  const hi = BigInt(Math.floor(rand() * 2 ** 32));
  const lo = BigInt(Math.floor(rand() * 2 ** 32));
  const bits = BigInt(1 + Math.floor(rand() * 64));
  return ((hi << 32n) | lo) & ((1n << bits) - 1n);
}

function randomData(rand: () => number): Uint8Array {
  const n = rand() < 0.5
    ? DATA_SIZES[Math.floor(rand() * DATA_SIZES.length)]
    : Math.floor(rand() * 300);
  return randBytes(rand, n);
}

function randomEntry(rand: () => number, i: number): Entry {
  return {
    term: randomU64(rand),
    index: randomU64(rand),
    type: i % 3, // all three entry types
    data: randomData(rand),
  };
}

function written(fn: (w: ByteWriter) => void, capacity?: number): Uint8Array {
  const w = new ByteWriter(capacity);
  fn(w);
  return w.buf.slice(0, w.length);
}

/** protobuf-es encoding with every field explicitly set (proto2 explicit presence). */
function pbEntry(e: Entry): Uint8Array {
  return toBinary(
    EntrySchema,
    create(EntrySchema, {
      Term: e.term,
      Index: e.index,
      Type: e.type as PbEntryType,
      ...(e.data.length > 0 ? { Data: e.data } : {}),
    }),
  );
}

function pbHardState(s: HardState): Uint8Array {
  return toBinary(HardStateSchema, create(HardStateSchema, s));
}

function pbSnapshot(s: Snapshot): Uint8Array {
  return toBinary(SnapshotSchema, create(SnapshotSchema, s));
}

/** The field numbers of a message's top-level fields in wire order. */
function fieldOrder(buf: Uint8Array): number[] {
  const out: number[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[pos++];
      v |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if (b < 0x80) return v;
    }
  };
  while (pos < buf.length) {
    const tag = Number(varint());
    out.push(tag >>> 3);
    if ((tag & 7) === 0) varint();
    else if ((tag & 7) === 2) {
      const n = Number(varint()); // read before updating pos: `pos += f()` reads pos first
      pos += n;
    } else throw new Error(`unexpected wire type ${tag & 7}`);
  }
  return out;
}

function varintBytes(v: bigint): number[] {
  const out: number[] = [];
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

function tag(field: number, wire: number): number[] {
  return varintBytes(BigInt(field) * 8n + BigInt(wire));
}

function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Unknown fields of every skippable wire type (field numbers no message here uses). */
const UNKNOWN_VARINT = [...tag(15, 0), ...varintBytes(U64_MAX)];
const UNKNOWN_FIXED64 = [...tag(16, 1), 1, 2, 3, 4, 5, 6, 7, 8];
const UNKNOWN_BYTES = [...tag(17, 2), 3, 0xaa, 0xbb, 0xcc];
const UNKNOWN_FIXED32 = [...tag(18, 5), 9, 9, 9, 9];
const UNKNOWN_HIGH_FIELD = [...tag(2 ** 29 - 1, 0), 0x01]; // the largest field number

describe("messages: write side matches protobuf-es", () => {
  test("writeEntry equals toBinary(raftpb.Entry) for random entries of all three types", () => {
    const rand = rng(11);
    for (let i = 0; i < 600; i++) {
      const e = randomEntry(rand, i);
      const ours = written((w) => writeEntry(w, e));
      assert.deepEqual(ours, pbEntry(e), `entry #${i} ${e.term} ${e.index} ${e.type}`);
    }
  });

  test("Encoder.entry frames exactly walpb.Record{Entry, crc, toBinary(raftpb.Entry)} on both paths, within the room it ensures", () => {
    const rand = rng(12);
    let crc = 0;
    for (let i = 0; i < 800; i++) {
      // a buffer that grows to exactly what is ensured: a write past that bound is lost
      // (typed arrays drop it silently), so a short bound shows as wrong bytes
      const enc = new Encoder(crc, 0);
      const w = enc.pending;
      w.buf = new Uint8Array(0);
      w.ensure = (n: number) => {
        if (w.length + n <= w.buf.length) return;
        const next = new Uint8Array(w.length + n);
        next.set(w.buf.subarray(0, w.length));
        w.buf = next;
      };
      // half the entries take the 32-bit fast path: small terms and indexes
      const e = i % 2 === 0 ? randomEntry(rand, i) : {
        ...randomEntry(rand, i),
        term: BigInt(Math.floor(rand() * 2 ** (1 + Math.floor(rand() * 32)))),
        index: BigInt(Math.floor(rand() * 2 ** (1 + Math.floor(rand() * 32)))),
      };
      if (i % 97 === 5) e.type = -1 - (i % 3); // negative enums take 10 bytes
      if (i % 89 === 7) e.type = 300; // a type that needs a 2-byte varint
      enc.entry(e);
      const ours = enc.take().slice();
      const payload = pbEntry(e);
      crc = crc32c(payload, crc);
      const record = toBinary(
        RecordSchema,
        create(RecordSchema, { type: 2n, crc, data: payload }),
      );
      const pad = (8 - (record.length % 8)) % 8;
      const framed = new Uint8Array(8 + record.length + pad);
      writeFrameHeader(framed, 0, record.length);
      framed.set(record, 8);
      assert.deepEqual(ours, framed, `entry #${i} ${e.term} ${e.index} ${e.type}`);
    }
  });

  test("writeEntry writes Type, Term, Index, then Data only when non-empty", () => {
    const e: Entry = { term: 0n, index: 0n, type: 0, data: new Uint8Array(0) };
    assert.deepEqual(written((w) => writeEntry(w, e)), new Uint8Array([8, 0, 16, 0, 24, 0]));
    assert.deepEqual(fieldOrder(written((w) => writeEntry(w, e))), [1, 2, 3]);
    const full: Entry = { term: 5n, index: U64_MAX, type: 2, data: new Uint8Array([1, 2]) };
    const bytes = written((w) => writeEntry(w, full));
    assert.deepEqual(fieldOrder(bytes), [1, 2, 3, 4]);
    assert.deepEqual(fieldOrder(pbEntry(full)), [1, 2, 3, 4]);
    assert.deepEqual(
      bytes,
      new Uint8Array([8, 2, 16, 5, 24, ...varintBytes(U64_MAX), 0x22, 2, 1, 2]),
    );
  });

  test("writeHardState equals toBinary(raftpb.HardState) with term, vote, commit in order", () => {
    const rand = rng(12);
    for (let i = 0; i < 600; i++) {
      const s: HardState = {
        term: randomU64(rand),
        vote: randomU64(rand),
        commit: randomU64(rand),
      };
      const ours = written((w) => writeHardState(w, s));
      assert.deepEqual(ours, pbHardState(s), `state #${i}`);
      assert.deepEqual(fieldOrder(ours), [1, 2, 3]);
    }
    const zero = written((w) => writeHardState(w, { term: 0n, vote: 0n, commit: 0n }));
    assert.deepEqual(zero, new Uint8Array([8, 0, 16, 0, 24, 0]));
  });

  test("writeSnapshot equals toBinary(walpb.Snapshot) with index then term and no conf_state", () => {
    const rand = rng(13);
    for (let i = 0; i < 600; i++) {
      const s: Snapshot = { index: randomU64(rand), term: randomU64(rand) };
      const ours = written((w) => writeSnapshot(w, s));
      assert.deepEqual(ours, pbSnapshot(s), `snapshot #${i}`);
      assert.deepEqual(fieldOrder(ours), [1, 2]);
    }
    const zero = written((w) => writeSnapshot(w, { index: 0n, term: 0n }));
    assert.deepEqual(zero, new Uint8Array([8, 0, 16, 0]));
  });

  test("2^53+1 and 2^64-1 are encoded exactly, not rounded through a double", () => {
    const e: Entry = { term: 2n ** 53n + 1n, index: U64_MAX, type: 1, data: new Uint8Array(0) };
    const bytes = written((w) => writeEntry(w, e));
    assert.deepEqual(bytes, pbEntry(e));
    assert.deepEqual(readEntry(bytes), e);
    const s: HardState = { term: 2n ** 53n + 1n, vote: U64_MAX, commit: 2n ** 53n + 3n };
    assert.deepEqual(readHardState(written((w) => writeHardState(w, s))), s);
  });

  test("varint and varintSize agree with protobuf's encoding at every 7-bit boundary up to 2^53", () => {
    const values: number[] = [0, 1];
    for (let k = 7; k <= 53; k += 7) values.push(2 ** k - 1, 2 ** k, 2 ** k + 1);
    values.push(2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1);
    for (const v of values) {
      const w = new ByteWriter(16);
      w.varint(v);
      // a uint64 field of protobuf-es holds the reference encoding of v behind a 1-byte tag
      const ref = toBinary(HardStateSchema, create(HardStateSchema, { term: BigInt(v) }));
      const expected = v === 0 ? new Uint8Array(0) : ref.subarray(1);
      if (v !== 0) assert.deepEqual(w.buf.subarray(0, w.length), expected, `varint(${v})`);
      else assert.deepEqual(w.buf.subarray(0, w.length), new Uint8Array([0]));
      assert.equal(varintSize(v), w.length, `varintSize(${v})`);
    }
  });

  test("appending many messages to a 1-byte ByteWriter grows it and keeps earlier bytes", () => {
    const rand = rng(14);
    const w = new ByteWriter(1);
    const expected: Uint8Array[] = [];
    for (let i = 0; i < 200; i++) {
      const e = randomEntry(rand, i);
      writeEntry(w, e);
      expected.push(pbEntry(e));
      const s: HardState = {
        term: randomU64(rand),
        vote: randomU64(rand),
        commit: randomU64(rand),
      };
      writeHardState(w, s);
      expected.push(pbHardState(s));
      const snap: Snapshot = { index: randomU64(rand), term: randomU64(rand) };
      writeSnapshot(w, snap);
      expected.push(pbSnapshot(snap));
    }
    assert.deepEqual(w.buf.slice(0, w.length), concat(...expected));
  });

  test("a ByteWriter created with zero capacity grows on the first append", () => {
    const e: Entry = { term: 1n, index: 2n, type: 0, data: new Uint8Array(100).fill(7) };
    const w = new ByteWriter(0);
    writeEntry(w, e);
    writeHardState(w, { term: 1n, vote: 2n, commit: 3n });
    assert.deepEqual(
      w.buf.slice(0, w.length),
      concat(pbEntry(e), pbHardState({ term: 1n, vote: 2n, commit: 3n })),
    );
  });
});

describe("messages: read side", () => {
  test("readEntry of protobuf-es output equals the input", () => {
    const rand = rng(21);
    for (let i = 0; i < 600; i++) {
      const e = randomEntry(rand, i);
      assert.deepEqual(readEntry(pbEntry(e)), e, `entry #${i}`);
    }
  });

  test("readHardState of protobuf-es output equals the input", () => {
    const rand = rng(22);
    for (let i = 0; i < 600; i++) {
      const s: HardState = {
        term: randomU64(rand),
        vote: randomU64(rand),
        commit: randomU64(rand),
      };
      assert.deepEqual(readHardState(pbHardState(s)), s, `state #${i}`);
    }
  });

  test("readSnapshot of protobuf-es output equals the input", () => {
    const rand = rng(23);
    for (let i = 0; i < 600; i++) {
      const s: Snapshot = { index: randomU64(rand), term: randomU64(rand) };
      assert.deepEqual(readSnapshot(pbSnapshot(s)), s, `snapshot #${i}`);
    }
  });

  test("absent fields read as zero and an absent Data as an empty array", () => {
    assert.deepEqual(readEntry(new Uint8Array(0)), {
      term: 0n,
      index: 0n,
      type: 0,
      data: new Uint8Array(0),
    });
    assert.deepEqual(readHardState(new Uint8Array(0)), { term: 0n, vote: 0n, commit: 0n });
    assert.deepEqual(readSnapshot(new Uint8Array(0)), { index: 0n, term: 0n });
  });

  test("readEntry gives Data as a view into the input, not a copy", () => {
    const e: Entry = { term: 1n, index: 2n, type: 0, data: new Uint8Array([7, 8, 9]) };
    const bytes = pbEntry(e);
    const view = readEntry(bytes);
    assert.equal(view.data.buffer, bytes.buffer);
    assert.deepEqual(view.data, new Uint8Array([7, 8, 9]));
    bytes.fill(0);
    assert.deepEqual(view.data, new Uint8Array([0, 0, 0]));
  });

  test("readers accept fields in any order, last value wins, and non-minimal varints", () => {
    // Data, Index, Term, Type reversed; Term repeated (last wins)
    const bytes = concat([0x22, 1, 0x55], [0x18, 9], [0x10, 1], [0x08, 1], [0x10, 0x83, 0x00]);
    assert.deepEqual(readEntry(bytes), {
      term: 3n,
      index: 9n,
      type: 1,
      data: new Uint8Array([0x55]),
    });
    assert.deepEqual(readHardState(new Uint8Array([0x18, 3, 0x10, 2, 0x08, 0x81, 0x80, 0x00])), {
      term: 1n,
      vote: 2n,
      commit: 3n,
    });
  });

  test("readSnapshot reads conf_state written by newer etcd, and skips unknown fields", () => {
    const rand = rng(24);
    for (let i = 0; i < 100; i++) {
      const voter = randomU64(rand);
      const s: Snapshot = {
        index: randomU64(rand),
        term: randomU64(rand),
        confState: {
          voters: [1n, 2n, voter],
          learners: [4n],
          votersOutgoing: [5n],
          learnersNext: [6n],
          autoLeave: i % 2 === 0,
        },
      };
      const withConf = toBinary(
        SnapshotSchema,
        create(SnapshotSchema, {
          index: s.index,
          term: s.term,
          confState: create(ConfStateSchema, {
            voters: [1n, 2n, voter],
            learners: [4n],
            votersOutgoing: [5n],
            learnersNext: [6n],
            autoLeave: i % 2 === 0,
          }),
        }),
      );
      assert.deepEqual(written((w) => writeSnapshot(w, s)), withConf, `snapshot #${i} bytes`);
      assert.deepEqual(readSnapshot(withConf), s);
      assert.deepEqual(readSnapshot(concat(UNKNOWN_VARINT, withConf, UNKNOWN_FIXED32)), s);
    }
  });

  test("readers skip unknown varint, fixed64, bytes and fixed32 fields anywhere", () => {
    const unknown = [UNKNOWN_VARINT, UNKNOWN_FIXED64, UNKNOWN_BYTES, UNKNOWN_FIXED32];
    const e: Entry = { term: 2n ** 53n + 1n, index: U64_MAX, type: 2, data: new Uint8Array([1]) };
    const s: HardState = { term: 1n, vote: 2n, commit: U64_MAX };
    const snap: Snapshot = { index: U64_MAX, term: 2n ** 53n + 1n };
    for (const u of [...unknown, UNKNOWN_HIGH_FIELD]) {
      assert.deepEqual(readEntry(concat(u, pbEntry(e))), e);
      assert.deepEqual(readEntry(concat(pbEntry(e), u)), e);
      assert.deepEqual(readHardState(concat(u, pbHardState(s), u)), s);
      assert.deepEqual(readSnapshot(concat(pbSnapshot(snap), u)), snap);
    }
    // a known field number with an unexpected wire type is an error, as in gogoproto
    assert.throws(() => readSnapshot(concat([0x0a, 1, 0xff], pbSnapshot(snap))), ProtobufError);
    assert.throws(() => readEntry(concat([0x20, 1], pbEntry(e))), ProtobufError); // Data as a varint
    const badType = new Uint8Array([0x0a, 1, 2]); // Record.type as bytes
    assert.throws(
      () => readRecord(badType, 0, badType.length, new RecordView()),
      ProtobufError,
    );
    const rec = new RecordView();
    const withUnknown = concat(unknown.flat(), [8, 2], UNKNOWN_HIGH_FIELD, [16, 7]);
    readRecord(withUnknown, 0, withUnknown.length, rec);
    assert.deepEqual({ type: rec.type, crc: rec.crc, data: rec.data }, {
      type: 2,
      crc: 7,
      data: null,
    });
  });

  test("malformed input throws ProtobufError from every reader", () => {
    const cases: [string, number[]][] = [
      ["truncated varint value", [0x08, 0x80]],
      ["truncated varint at the end of a value", [0x10, 0xff, 0xff, 0xff]],
      ["truncated tag", [0x80]],
      ["varint longer than 10 bytes", [0x10, ...new Array(10).fill(0xff), 0x01]],
      ["length overrun", [0x22, 0x05, 1, 2, 3]],
      ["length overrun by one", [0x1a, 0x03, 1, 2]],
      ["unknown length-delimited overrun", [...tag(17, 2), 0x7f]],
      ["huge length", [0x22, ...varintBytes(U64_MAX)]],
      ["wire type 3 (start group)", [0x0b]],
      ["wire type 3 on an unknown field", [...tag(20, 3), 0x00]],
      ["wire type 4 (end group)", [0x0c]],
      ["wire type 6", [0x0e]],
      ["wire type 7", [0x0f]],
      ["truncated fixed64", [...tag(16, 1), 1, 2, 3]],
      ["truncated fixed32", [...tag(18, 5), 1, 2]],
      ["field number above 2^32 / 8", [...tag(2 ** 32, 0), 0x00]],
      ["field number 0", [0x00, 0x00]],
    ];
    const rec = new RecordView();
    for (const [what, bytes] of cases) {
      const buf = new Uint8Array(bytes);
      assert.throws(() => readEntry(buf), ProtobufError, `readEntry: ${what}`);
      assert.throws(() => readHardState(buf), ProtobufError, `readHardState: ${what}`);
      assert.throws(() => readSnapshot(buf), ProtobufError, `readSnapshot: ${what}`);
      assert.throws(
        () => readRecord(buf, 0, buf.length, rec),
        ProtobufError,
        `readRecord: ${what}`,
      );
    }
  });

  test("readRecord respects its end bound: a field crossing it is an overrun", () => {
    const bytes = written((w) => writeRecord(w, 2, 5, new Uint8Array([1, 2, 3, 4])));
    const rec = new RecordView();
    assert.throws(() => readRecord(bytes, 0, bytes.length - 1, rec), ProtobufError);
    // the same record embedded in a larger buffer decodes from its slice
    const padded = concat([9, 9, 9], bytes, [0xff, 0xff]);
    readRecord(padded, 3, 3 + bytes.length, rec);
    assert.deepEqual({ type: rec.type, crc: rec.crc, data: rec.data }, {
      type: 2,
      crc: 5,
      data: new Uint8Array([1, 2, 3, 4]),
    });
  });
});

describe("messages: walpb.Record", () => {
  test("writeRecord/readRecord round trip, equal to protobuf-es, with recordSize exact", () => {
    const rand = rng(31);
    const rec = new RecordView();
    const crcs = [0, 1, 127, 128, 0x7fffffff, 0x80000000, 0xffffffff];
    for (let i = 0; i < 600; i++) {
      const type = 1 + (i % 5);
      const crc = rand() < 0.3
        ? crcs[Math.floor(rand() * crcs.length)]
        : Math.floor(rand() * 2 ** 32);
      const kind = i % 3;
      const data = kind === 0 ? null : kind === 1 ? new Uint8Array(0) : randomData(rand);
      const bytes = written((w) => writeRecord(w, type, crc, data));
      assert.equal(bytes.length, recordSize(type, crc, data === null ? null : data.length));
      const pb = toBinary(
        RecordSchema,
        create(RecordSchema, { type: BigInt(type), crc, ...(data === null ? {} : { data }) }),
      );
      assert.deepEqual(bytes, pb, `record #${i}`);
      assert.deepEqual(fieldOrder(bytes), data === null ? [1, 2] : [1, 2, 3]);
      readRecord(bytes, 0, bytes.length, rec);
      assert.equal(rec.type, type);
      assert.equal(rec.crc, crc);
      assert.deepEqual(rec.data, data);
      const back = fromBinary(RecordSchema, bytes);
      assert.equal(back.type, BigInt(type));
      assert.equal(back.crc, crc);
    }
  });

  test("writeRecord takes data from src[start:end] without the rest of src", () => {
    const src = new Uint8Array([1, 2, 3, 4, 5, 6, 7]);
    const bytes = written((w) => writeRecord(w, 2, 9, src, 2, 5));
    assert.deepEqual(bytes, new Uint8Array([8, 2, 16, 9, 0x1a, 3, 3, 4, 5]));
    assert.equal(recordSize(2, 9, 3), bytes.length);
  });

  test("readRecord returns data as a view into the buffer", () => {
    const bytes = written((w) => writeRecord(w, 1, 0, new Uint8Array([5, 6])));
    const rec = new RecordView();
    readRecord(bytes, 0, bytes.length, rec);
    bytes[bytes.length - 1] = 0x77;
    assert.deepEqual(rec.data, new Uint8Array([5, 0x77]));
  });

  test("readRecord resets fields absent in the next record and maps huge types to -1", () => {
    const rec = new RecordView();
    const a = written((w) => writeRecord(w, 2, 77, new Uint8Array([1])));
    readRecord(a, 0, a.length, rec);
    readRecord(new Uint8Array(0), 0, 0, rec);
    assert.deepEqual({ type: rec.type, crc: rec.crc, data: rec.data }, {
      type: 0,
      crc: 0,
      data: null,
    });
    const huge = new Uint8Array([
      0x08,
      ...varintBytes(2n ** 40n),
      0x10,
      ...varintBytes(2n ** 33n + 5n),
    ]);
    readRecord(huge, 0, huge.length, rec);
    assert.equal(rec.type, -1);
    assert.equal(rec.crc, 5, "a uint32 keeps the low 32 bits like Go");
    const neg = toBinary(RecordSchema, create(RecordSchema, { type: -1n, crc: 1 }));
    readRecord(neg, 0, neg.length, rec);
    assert.equal(rec.type, -1);
  });

  test("checkUint64 rejects values outside [0, 2^64) with INVALID_ARGUMENT", () => {
    checkUint64(0n, "x");
    checkUint64(U64_MAX, "x");
    for (const bad of [-1n, U64_MAX + 1n, 5 as unknown as bigint]) {
      assert.throws(
        () => checkUint64(bad, "entries[0].term"),
        (e: unknown) =>
          e instanceof WalError && e.code === "INVALID_ARGUMENT" &&
          e.message.includes("entries[0].term"),
      );
    }
  });
});
