/**
 * The `@raftlog/wal/pb` entry point: its schemas are the generated ones, `toMessage` and
 * `fromMessage` round-trip the public types (values above 2^53, empty data), and protobuf-es
 * encodes a converted message to exactly the bytes the WAL's own codec writes, down to every
 * record of a segment a WAL wrote for messages built with protobuf-es.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { create, equals, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  ConfChangeSchema,
  ConfChangeSingleSchema,
  ConfChangeTransition,
  ConfChangeTransitionSchema,
  ConfChangeType,
  ConfChangeTypeSchema,
  ConfChangeV2Schema,
  ConfStateSchema,
  type EntryMessage,
  EntrySchema,
  EntryType,
  EntryTypeSchema,
  fromMessage,
  type HardStateMessage,
  HardStateSchema,
  RecordSchema,
  SnapshotSchema,
  toMessage,
} from "../pb.ts";
import * as raftpb from "../gen/raftpb/raft_pb.ts";
import * as walpb from "../gen/walpb/record_pb.ts";
import {
  type Entry,
  EntryType as PublicEntryType,
  type HardState,
  type Snapshot,
  WAL,
} from "../mod.ts";
import { writeEntry, writeHardState, writeSnapshot } from "../src/segment/messages.ts";
import { ByteWriter } from "../src/segment/wire.ts";
import { crc32c } from "../src/segment/crc32c.ts";
import { randBytes, rng, walFiles, withWalDir } from "./helpers.ts";

const U64_MAX = (1n << 64n) - 1n;
/** uint64 values at every varint-length and precision boundary that matters. */
const U64S: bigint[] = [
  0n,
  1n,
  127n,
  128n,
  2n ** 32n - 1n,
  2n ** 32n,
  2n ** 53n - 1n,
  2n ** 53n,
  2n ** 53n + 1n,
  2n ** 63n,
  U64_MAX - 1n,
  U64_MAX,
];
const DATA_SIZES = [0, 1, 100, 16_384];

function randomU64(rand: () => number): bigint {
  if (rand() < 0.4) return U64S[Math.floor(rand() * U64S.length)];
  const hi = BigInt(Math.floor(rand() * 2 ** 32));
  const lo = BigInt(Math.floor(rand() * 2 ** 32));
  const bits = BigInt(1 + Math.floor(rand() * 64));
  return ((hi << 32n) | lo) & ((1n << bits) - 1n);
}

function randomEntry(rand: () => number, i: number): Entry {
  const size = rand() < 0.3 ? 0 : DATA_SIZES[Math.floor(rand() * DATA_SIZES.length)];
  return {
    term: randomU64(rand),
    index: randomU64(rand),
    type: i % 3,
    data: randBytes(rand, size),
  };
}

/** Every entry shape the tests use: the boundary values crossed with data sizes and types. */
function boundaryEntries(): Entry[] {
  const out: Entry[] = [];
  for (const [i, v] of U64S.entries()) {
    for (const size of DATA_SIZES) {
      out.push({
        term: v,
        index: U64S[(i + 5) % U64S.length],
        type: (i + size) % 3,
        data: new Uint8Array(size).map((_, j) => j * 7 + i),
      });
    }
  }
  return out;
}

/** The bytes the WAL's own codec writes for a message payload. */
function codec(fn: (w: ByteWriter) => void): Uint8Array {
  const w = new ByteWriter(16);
  fn(w);
  return w.buf.slice(0, w.length);
}

describe("pb: the schemas and enums are the generated ones", () => {
  test("each schema is the generated object, with etcd's type name", () => {
    const schemas = [
      [EntrySchema, raftpb.EntrySchema, "raftpb.Entry"],
      [HardStateSchema, raftpb.HardStateSchema, "raftpb.HardState"],
      [ConfStateSchema, raftpb.ConfStateSchema, "raftpb.ConfState"],
      [ConfChangeSchema, raftpb.ConfChangeSchema, "raftpb.ConfChange"],
      [ConfChangeSingleSchema, raftpb.ConfChangeSingleSchema, "raftpb.ConfChangeSingle"],
      [ConfChangeV2Schema, raftpb.ConfChangeV2Schema, "raftpb.ConfChangeV2"],
      [RecordSchema, walpb.RecordSchema, "walpb.Record"],
      [SnapshotSchema, walpb.SnapshotSchema, "walpb.Snapshot"],
      [EntryTypeSchema, raftpb.EntryTypeSchema, "raftpb.EntryType"],
      [ConfChangeTypeSchema, raftpb.ConfChangeTypeSchema, "raftpb.ConfChangeType"],
      [
        ConfChangeTransitionSchema,
        raftpb.ConfChangeTransitionSchema,
        "raftpb.ConfChangeTransition",
      ],
    ] as const;
    for (const [ours, generated, name] of schemas) {
      assert.equal(ours, generated, name);
      assert.equal(ours.typeName, name);
    }
    assert.equal(EntryType, raftpb.EntryType);
    assert.equal(ConfChangeType, raftpb.ConfChangeType);
    assert.equal(ConfChangeTransition, raftpb.ConfChangeTransition);
  });

  test("the EntryType enum has the numbers of @raftlog/wal's EntryType", () => {
    assert.equal(EntryType.EntryNormal, PublicEntryType.Normal);
    assert.equal(EntryType.EntryConfChange, PublicEntryType.ConfChange);
    assert.equal(EntryType.EntryConfChangeV2, PublicEntryType.ConfChangeV2);
    assert.equal(EntryType[1], "EntryConfChange");
  });
});

describe("pb: round trips", () => {
  test("Entry -> message -> Entry keeps every value: above 2^53, up to 2^64-1, empty data", () => {
    const rand = rng(31);
    const entries = [
      ...boundaryEntries(),
      ...Array.from({ length: 300 }, (_, i) => randomEntry(rand, i)),
    ];
    entries.push({ term: 1n, index: 1n, type: 7, data: new Uint8Array([1]) }); // an unknown type
    for (const [i, e] of entries.entries()) {
      const m = toMessage(EntrySchema, e);
      assert.equal(m.$typeName, "raftpb.Entry");
      assert.deepEqual(fromMessage(EntrySchema, m), e, `entry #${i}`);
      // ...and through the wire
      const back = fromMessage(EntrySchema, fromBinary(EntrySchema, toBinary(EntrySchema, m)));
      assert.deepEqual(back, e, `entry #${i} through toBinary/fromBinary`);
    }
  });

  test("HardState and Snapshot -> message -> public keep every value", () => {
    const rand = rng(32);
    for (let i = 0; i < 300; i++) {
      const s: HardState = i < U64S.length
        ? { term: U64S[i], vote: U64S[(i + 3) % U64S.length], commit: U64S[(i + 7) % U64S.length] }
        : { term: randomU64(rand), vote: randomU64(rand), commit: randomU64(rand) };
      const m = toMessage(HardStateSchema, s);
      assert.equal(m.$typeName, "raftpb.HardState");
      assert.deepEqual(fromMessage(HardStateSchema, m), s, `state #${i}`);
      const wire = fromBinary(HardStateSchema, toBinary(HardStateSchema, m));
      assert.deepEqual(fromMessage(HardStateSchema, wire), s, `state #${i} through the wire`);

      const snap: Snapshot = i < U64S.length
        ? { index: U64S[i], term: U64S[(i + 4) % U64S.length] }
        : { index: randomU64(rand), term: randomU64(rand) };
      const sm = toMessage(SnapshotSchema, snap);
      assert.equal(sm.$typeName, "walpb.Snapshot");
      assert.equal(sm.confState, undefined);
      assert.deepEqual(fromMessage(SnapshotSchema, sm), snap, `snapshot #${i}`);
      const swire = fromBinary(SnapshotSchema, toBinary(SnapshotSchema, sm));
      assert.deepEqual(fromMessage(SnapshotSchema, swire), snap, `snapshot #${i} through the wire`);
    }
  });

  test("message -> public -> message gives an equal message, field presence included", () => {
    for (const [i, e] of boundaryEntries().entries()) {
      const msg = create(EntrySchema, {
        Term: e.term,
        Index: e.index,
        Type: e.type,
        ...(e.data.length > 0 ? { Data: e.data } : {}),
      });
      const again = toMessage(EntrySchema, fromMessage(EntrySchema, msg));
      assert.ok(equals(EntrySchema, again, msg), `entry #${i}`);
      const decoded = fromBinary(EntrySchema, toBinary(EntrySchema, msg));
      assert.ok(
        equals(EntrySchema, toMessage(EntrySchema, fromMessage(EntrySchema, decoded)), decoded),
      );
    }
    for (const v of U64S) {
      const hs = create(HardStateSchema, { term: v, vote: U64_MAX - v, commit: v / 2n });
      assert.ok(
        equals(HardStateSchema, toMessage(HardStateSchema, fromMessage(HardStateSchema, hs)), hs),
      );
      const snap = create(SnapshotSchema, { index: v, term: U64_MAX - v });
      assert.ok(
        equals(SnapshotSchema, toMessage(SnapshotSchema, fromMessage(SnapshotSchema, snap)), snap),
      );
    }
  });

  test("absent fields read as their defaults; the way back sets them, as the WAL writes them", () => {
    // etcd 3.7 leaves a normal entry's Type out; an empty Data may be absent or present.
    const sparse = fromBinary(EntrySchema, new Uint8Array([0x10, 2, 0x18, 9]));
    const e = fromMessage(EntrySchema, sparse);
    assert.deepEqual(e, { term: 2n, index: 9n, type: 0, data: new Uint8Array(0) });
    assert.deepEqual(
      toBinary(EntrySchema, toMessage(EntrySchema, e)),
      new Uint8Array([0x08, 0, 0x10, 2, 0x18, 9]),
    );
    const emptyData = create(EntrySchema, { Term: 2n, Index: 9n, Data: new Uint8Array(0) });
    assert.deepEqual(fromMessage(EntrySchema, emptyData), e);
    assert.deepEqual(fromMessage(EntrySchema, create(EntrySchema)), {
      term: 0n,
      index: 0n,
      type: 0,
      data: new Uint8Array(0),
    });
    assert.deepEqual(fromMessage(HardStateSchema, create(HardStateSchema)), {
      term: 0n,
      vote: 0n,
      commit: 0n,
    });
    assert.deepEqual(
      toBinary(HardStateSchema, toMessage(HardStateSchema, { term: 0n, vote: 0n, commit: 0n })),
      new Uint8Array([0x08, 0, 0x10, 0, 0x18, 0]),
    );
    assert.deepEqual(fromMessage(SnapshotSchema, create(SnapshotSchema)), { index: 0n, term: 0n });
  });

  test("a snapshot message's confState is kept both ways, and encodes as the WAL writes it", () => {
    const m = create(SnapshotSchema, {
      index: 2n ** 53n + 1n,
      term: 3n,
      confState: { voters: [1n, 2n, 3n], learnersNext: [2n ** 64n - 1n], autoLeave: true },
    });
    const s = fromMessage(SnapshotSchema, m);
    assert.deepEqual(s, {
      index: 2n ** 53n + 1n,
      term: 3n,
      confState: {
        voters: [1n, 2n, 3n],
        learners: [],
        votersOutgoing: [],
        learnersNext: [2n ** 64n - 1n],
        autoLeave: true,
      },
    });
    const back = toMessage(SnapshotSchema, s);
    assert.deepEqual(back.confState?.voters, [1n, 2n, 3n]);
    assert.deepEqual(toBinary(SnapshotSchema, back), codec((w) => writeSnapshot(w, s)));
    // autoLeave false is still written, as gogoproto writes it
    const off = { ...s, confState: { ...s.confState!, autoLeave: false } };
    assert.deepEqual(
      toBinary(SnapshotSchema, toMessage(SnapshotSchema, off)),
      codec((w) => writeSnapshot(w, off)),
    );
  });

  test("data is shared, not copied, both ways", () => {
    const data = new Uint8Array([1, 2, 3]);
    const m = toMessage(EntrySchema, { term: 1n, index: 1n, type: 0, data });
    assert.equal(m.Data, data);
    assert.equal(fromMessage(EntrySchema, m).data, data);
  });

  test("a message of another type than the schema's is a TypeError", () => {
    const hs = create(HardStateSchema, { term: 1n });
    assert.throws(
      () => fromMessage(EntrySchema, hs as unknown as EntryMessage),
      (e: unknown) =>
        e instanceof TypeError &&
        /raftpb\.HardState message .*raftpb\.Entry schema/.test(e.message),
    );
    assert.throws(
      () =>
        toMessage(RecordSchema as unknown as typeof EntrySchema, {
          term: 1n,
          index: 1n,
          type: 0,
          data: new Uint8Array(),
        }),
      TypeError,
    );
  });
});

/** Compile-time checks (never called): the overloads pick the types the schema names. */
export function typeChecks(entry: EntryMessage, state: HardStateMessage): void {
  const e: Entry = fromMessage(EntrySchema, entry);
  const s: HardState = fromMessage(HardStateSchema, state);
  const m: EntryMessage = toMessage(EntrySchema, e);
  const h: HardStateMessage = toMessage(HardStateSchema, s);
  // @ts-expect-error: a HardState message with the Entry schema
  fromMessage(EntrySchema, state);
  // @ts-expect-error: the Entry schema gives an Entry, not a HardState
  const wrong: HardState = fromMessage(EntrySchema, entry);
  // @ts-expect-error: a Snapshot is not an Entry (no type, no data)
  toMessage(EntrySchema, { index: 1n, term: 1n });
  // @ts-expect-error: a schema without a conversion
  toMessage(RecordSchema, e);
  void [m, h, wrong];
}

describe("pb: protobuf-es writes the bytes the WAL's codec writes", () => {
  test("toBinary(toMessage(x)) equals the codec's bytes for Entry, HardState and Snapshot", () => {
    const rand = rng(33);
    const entries = [
      ...boundaryEntries(),
      ...Array.from({ length: 500 }, (_, i) => randomEntry(rand, i)),
    ];
    for (const [i, e] of entries.entries()) {
      assert.deepEqual(
        toBinary(EntrySchema, toMessage(EntrySchema, e)),
        codec((w) => writeEntry(w, e)),
        `entry #${i} ${e.term} ${e.index} ${e.type} ${e.data.length} B`,
      );
    }
    for (let i = 0; i < 500; i++) {
      const s: HardState = {
        term: randomU64(rand),
        vote: randomU64(rand),
        commit: randomU64(rand),
      };
      assert.deepEqual(
        toBinary(HardStateSchema, toMessage(HardStateSchema, s)),
        codec((w) => writeHardState(w, s)),
        `state #${i}`,
      );
      const snap: Snapshot = { index: randomU64(rand), term: randomU64(rand) };
      assert.deepEqual(
        toBinary(SnapshotSchema, toMessage(SnapshotSchema, snap)),
        codec((w) => writeSnapshot(w, snap)),
        `snapshot #${i}`,
      );
    }
  });

  test("a WAL saving messages built with protobuf-es writes records protobuf-es re-encodes byte for byte", async () => {
    await withWalDir(async (dir) => {
      const opts = { segmentSizeBytes: 4096 };
      const metadata = new TextEncoder().encode("node-1");
      // What a caller holding protobuf-es messages has: the encoded messages.
      const wire: Uint8Array[] = [];
      for (let i = 1; i <= 60; i++) {
        const term = i < 30 ? 2n : 2n ** 53n + 1n;
        wire.push(toBinary(
          EntrySchema,
          create(EntrySchema, {
            Term: term,
            Index: BigInt(i),
            Type: i % 10 === 0 ? EntryType.EntryConfChange : EntryType.EntryNormal,
            ...(i % 7 === 0
              ? {}
              : { Data: new TextEncoder().encode(`put k${i}=${"v".repeat(i * 3)}`) }),
          }),
        ));
      }
      const states: Uint8Array[] = [];
      const wal = await WAL.create(dir, metadata, opts);
      for (const [i, bytes] of wire.entries()) {
        const entry = fromMessage(EntrySchema, fromBinary(EntrySchema, bytes));
        const state = toBinary(
          HardStateSchema,
          create(HardStateSchema, { term: entry.term, vote: 1n, commit: entry.index }),
        );
        states.push(state);
        await wal.save(fromMessage(HardStateSchema, fromBinary(HardStateSchema, state)), [entry]);
        if (i === 19) {
          const snap = create(SnapshotSchema, { index: 20n, term: 2n });
          await wal.saveSnapshot(fromMessage(SnapshotSchema, snap));
        }
      }
      await wal.close();

      // Walk every frame of every segment with protobuf-es.
      const files = await walFiles(dir);
      assert.ok(files.length > 2, `expected several segments: ${files.join(" ")}`);
      const payloads: Record<string, Uint8Array[]> = {
        "1": [],
        "2": [],
        "3": [],
        "4": [],
        "5": [],
      };
      let crc = 0;
      for (const name of files) {
        const buf = new Uint8Array(await readFile(join(dir, name)));
        let off = 0;
        while (off + 8 <= buf.length) {
          const lo = buf[off] | buf[off + 1] << 8 | buf[off + 2] << 16 | buf[off + 3] << 24;
          if (lo === 0 && buf.subarray(off, off + 8).every((b) => b === 0)) break;
          const n = (lo >>> 0) + (buf[off + 4] | buf[off + 5] << 8 | buf[off + 6] << 16) * 2 ** 32;
          const pad = buf[off + 7] & 0x80 ? buf[off + 7] & 7 : 0;
          const bytes = buf.subarray(off + 8, off + 8 + n);
          const record = fromBinary(RecordSchema, bytes);
          assert.deepEqual(toBinary(RecordSchema, record), new Uint8Array(bytes), `${name}@${off}`);
          if (record.type === 4n) {
            assert.equal(record.crc, crc, `${name}@${off}: crc record carries the running CRC`);
          } else {
            crc = crc32c(record.data, crc);
            assert.equal(record.crc, crc, `${name}@${off}: rolling CRC`);
          }
          payloads[String(record.type)].push(record.data);
          off += 8 + n + pad;
        }
      }
      // Entries and states are the bytes protobuf-es made; the snapshots are those of
      // toMessage; each segment's metadata is the metadata.
      assert.deepEqual(payloads["2"], wire);
      const snapshots = [{ index: 0n, term: 0n }, { index: 20n, term: 2n }];
      assert.deepEqual(
        payloads["5"],
        snapshots.map((s) => toBinary(SnapshotSchema, toMessage(SnapshotSchema, s))),
      );
      // a cut repeats the last state at the head of the new segment
      const distinct = payloads["3"].filter((s, i, all) =>
        i === 0 ||
        !equals(
          HardStateSchema,
          fromBinary(HardStateSchema, s),
          fromBinary(HardStateSchema, all[i - 1]),
        )
      );
      assert.deepEqual(distinct, states);
      assert.equal(payloads["1"].length, files.length);
      for (const m of payloads["1"]) assert.deepEqual(m, metadata);

      // Replay gives back the messages' values.
      const reader = await WAL.openForRead(dir, { index: 20n, term: 2n }, opts);
      const { entries, state } = await reader.readAll();
      await reader.close();
      assert.deepEqual(
        entries,
        wire.slice(20).map((b) => fromMessage(EntrySchema, fromBinary(EntrySchema, b))),
      );
      assert.deepEqual(
        state,
        fromMessage(HardStateSchema, fromBinary(HardStateSchema, states.at(-1)!)),
      );
    });
  });
});
