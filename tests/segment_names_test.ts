import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  isConsecutive,
  parseSegmentName,
  searchIndex,
  segmentName,
  segmentNames,
} from "../src/segment/segment_names.ts";
import { rng } from "./helpers.ts";

const U64_MAX = (1n << 64n) - 1n;

function randomU64(rand: () => number): bigint {
  const hi = BigInt(Math.floor(rand() * 2 ** 32));
  const lo = BigInt(Math.floor(rand() * 2 ** 32));
  const bits = BigInt(1 + Math.floor(rand() * 64));
  return ((hi << 32n) | lo) & ((1n << bits) - 1n);
}

/** Segments from (seq, index) pairs, built through the formatter and parser. */
function segs(...pairs: [number, number][]) {
  return pairs.map(([s, i]) => parseSegmentName(segmentName(BigInt(s), BigInt(i)))!);
}

describe("segment names", () => {
  test("segmentName formats %016x-%016x.wal in lowercase hex", () => {
    assert.equal(segmentName(0n, 0n), "0000000000000000-0000000000000000.wal");
    assert.equal(segmentName(1n, 0x10n), "0000000000000001-0000000000000010.wal");
    assert.equal(segmentName(0xabcn, 0xdef0n), "0000000000000abc-000000000000def0.wal");
    assert.equal(segmentName(U64_MAX, U64_MAX), "ffffffffffffffff-ffffffffffffffff.wal");
  });

  test("parseSegmentName inverts segmentName for random uint64 pairs", () => {
    const rand = rng(9);
    for (let i = 0; i < 500; i++) {
      const seq = randomU64(rand);
      const index = randomU64(rand);
      const name = segmentName(seq, index);
      assert.equal(name.length, 37);
      assert.deepEqual(parseSegmentName(name), { name, seq, index });
    }
  });

  test("parseSegmentName accepts uppercase hex and keeps the name as given", () => {
    const name = "000000000000ABCD-FFFFFFFFFFFFFFFF.wal";
    assert.deepEqual(parseSegmentName(name), { name, seq: 0xabcdn, index: U64_MAX });
    assert.deepEqual(parseSegmentName("000000000000aBcD-00000000000000Ff.wal"), {
      name: "000000000000aBcD-00000000000000Ff.wal",
      seq: 0xabcdn,
      index: 0xffn,
    });
  });

  test("parseSegmentName rejects other names: widths, suffixes, .tmp, separators", () => {
    const bad = [
      "",
      ".wal",
      "0000000000000000.wal", // from etcd's TestScanWalName
      "0000000000000000-0000000000000000.snap", // from etcd's TestScanWalName
      "0000000000000000-0000000000000000.wal.tmp",
      "0000000000000000-0000000000000000.tmp",
      "0.tmp",
      "0000000000000000-0000000000000000.WAL",
      "0000000000000000-0000000000000000.wal ",
      " 0000000000000000-0000000000000000.wal",
      "0000000000000000-0000000000000000wal",
      "0000000000000000-0000000000000000",
      "000000000000000-0000000000000000.wal", // 15 digits
      "0000000000000000-000000000000000.wal", // 15 digits
      "00000000000000000-0000000000000000.wal", // 17 digits
      "0000000000000000-00000000000000000.wal", // 17 digits
      "1-2.wal",
      "0000000000000000_0000000000000000.wal",
      "0000000000000000--000000000000000.wal",
      "000000000000000g-0000000000000000.wal",
      "0x00000000000000-0000000000000000.wal",
      "+000000000000000-0000000000000000.wal",
      "dir/0000000000000000-0000000000000000.wal",
      "0000000000000000-0000000000000000.wal\n",
    ];
    for (const name of bad) assert.equal(parseSegmentName(name), null, JSON.stringify(name));
  });

  test("segmentNames keeps only segment names, sorted by name and so by sequence", () => {
    const names = [
      "0000000000000002-0000000000000020.wal",
      "lock",
      "0000000000000000-0000000000000000.wal",
      "0000000000000010-0000000000000100.wal",
      "0000000000000001-0000000000000010.wal",
      "0000000000000003-0000000000000030.wal.tmp",
      "0.tmp",
      "000000000000000a-0000000000000090.wal",
    ];
    const got = segmentNames(names);
    assert.deepEqual(
      got.map((s) => s.seq),
      [0n, 1n, 2n, 0xan, 0x10n],
    );
    assert.deepEqual(
      got.map((s) => s.name),
      [
        "0000000000000000-0000000000000000.wal",
        "0000000000000001-0000000000000010.wal",
        "0000000000000002-0000000000000020.wal",
        "000000000000000a-0000000000000090.wal",
        "0000000000000010-0000000000000100.wal",
      ],
    );
    assert.deepEqual(names[1], "lock", "the input array is not reordered");
    assert.deepEqual(segmentNames([]), []);
    assert.deepEqual(segmentNames(["a", "b.wal"]), []);
  });

  test("segmentNames of shuffled formatted names returns them in sequence order", () => {
    const rand = rng(10);
    const ordered = Array.from({ length: 300 }, (_, i) => segmentName(BigInt(i), BigInt(i * 1000)));
    const shuffled = ordered.slice();
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
    }
    assert.deepEqual(segmentNames(shuffled).map((s) => s.name), ordered);
  });

  test("searchIndex: names at indexes 0, 10, 20 and snapshot 15 start replay at position 1", () => {
    const s = segs([0, 0], [1, 10], [2, 20]);
    assert.equal(searchIndex(s, 15n), 1);
    assert.equal(searchIndex(s, 0n), 0);
    assert.equal(searchIndex(s, 9n), 0);
    assert.equal(searchIndex(s, 10n), 1);
    assert.equal(searchIndex(s, 20n), 2);
    assert.equal(searchIndex(s, U64_MAX), 2);
  });

  test("searchIndex: snapshot below the first segment's index gives -1", () => {
    const s = segs([1, 0x2000], [2, 0x3000], [3, 0x5000]);
    assert.equal(searchIndex(s, 0x1000n), -1); // etcd TestSearchIndex case 3
    assert.equal(searchIndex(s, 0x1fffn), -1);
    assert.equal(searchIndex(s, 0n), -1);
    assert.equal(searchIndex([], 5n), -1);
  });

  test("searchIndex: etcd's TestSearchIndex cases", () => {
    assert.equal(searchIndex(segs([0, 0], [1, 0x1000], [2, 0x2000]), 0x1000n), 1);
    // indexes out of order: the last segment at or below the index wins, scanning backwards
    assert.equal(searchIndex(segs([1, 0x4000], [2, 0x3000], [3, 0x5000]), 0x4000n), 1);
  });

  test("searchIndex compares uint64 indexes exactly above 2^53", () => {
    const base = 2n ** 53n;
    const s = [
      parseSegmentName(segmentName(0n, base))!,
      parseSegmentName(segmentName(1n, base + 1n))!,
    ];
    assert.equal(searchIndex(s, base), 0);
    assert.equal(searchIndex(s, base + 1n), 1);
    assert.equal(searchIndex(s, base - 1n), -1);
  });

  test("isConsecutive is true for runs of sequence numbers and false on gaps or repeats", () => {
    assert.equal(isConsecutive([]), true);
    assert.equal(isConsecutive(segs([7, 0])), true);
    assert.equal(isConsecutive(segs([0, 0], [1, 10], [2, 20])), true);
    assert.equal(isConsecutive(segs([5, 0], [6, 0], [7, 0])), true);
    assert.equal(isConsecutive(segs([0, 0], [2, 10])), false);
    assert.equal(isConsecutive(segs([0, 0], [1, 10], [1, 20])), false);
    assert.equal(isConsecutive(segs([1, 0], [0, 10])), false);
    const top = [
      parseSegmentName(segmentName(U64_MAX - 1n, 0n))!,
      parseSegmentName(segmentName(U64_MAX, 0n))!,
    ];
    assert.equal(isConsecutive(top), true);
  });
});
