import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  type FrameHeader,
  padBytesFor,
  readFrameHeader,
  writeFrameHeader,
} from "../src/segment/frame.ts";
import { rng } from "./helpers.ts";

/** etcd's encodeFrameSize, with uint64 arithmetic. */
function goEncodeFrameSize(dataBytes: number): { lenField: bigint; padBytes: number } {
  let lenField = BigInt(dataBytes);
  const padBytes = (8 - (dataBytes % 8)) % 8;
  if (padBytes !== 0) lenField |= BigInt(0x80 | padBytes) << 56n;
  return { lenField, padBytes };
}

/** etcd's decodeFrameSize, reading the word as int64. */
function goDecodeFrameSize(word: bigint): { recBytes: bigint; padBytes: number } {
  const recBytes = word & ((1n << 56n) - 1n);
  const padBytes = BigInt.asIntN(64, word) < 0n ? Number((word >> 56n) & 7n) : 0;
  return { recBytes, padBytes };
}

function header(): FrameHeader {
  return { recordBytes: -1, padBytes: -1, isEnd: false };
}

function wordAt(buf: Uint8Array, off: number): bigint {
  return new DataView(buf.buffer, buf.byteOffset).getBigUint64(off, true);
}

const LARGE = [
  4096,
  65535,
  65536,
  2 ** 24 - 1,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 32 + 1,
  2 ** 40,
  2 ** 40 + 3,
  2 ** 48 + 5,
  2 ** 53 - 1,
];

describe("frame", () => {
  test("padBytesFor brings a record to a multiple of 8", () => {
    for (let n = 0; n <= 100; n++) {
      const pad = padBytesFor(n);
      assert.ok(pad >= 0 && pad < 8);
      assert.equal((n + pad) % 8, 0, `n ${n}`);
    }
  });

  test("write/read round trips lengths 0..100 and large ones up to 2^53-1", () => {
    const buf = new Uint8Array(32).fill(0xee);
    const h = header();
    for (const n of [...Array.from({ length: 101 }, (_, i) => i), ...LARGE]) {
      for (const off of [0, 3, 8, 24]) {
        const pad = writeFrameHeader(buf, off, n);
        assert.equal(pad, padBytesFor(n));
        readFrameHeader(buf, off, h);
        assert.equal(h.recordBytes, n, `n ${n} off ${off}`);
        assert.equal(h.padBytes, pad, `n ${n} off ${off}`);
        assert.equal(h.isEnd, n === 0, `n ${n} off ${off}`);
      }
    }
  });

  test("the written word is exactly etcd's encodeFrameSize, little-endian", () => {
    const buf = new Uint8Array(8);
    for (const n of [...Array.from({ length: 101 }, (_, i) => i), ...LARGE]) {
      const pad = writeFrameHeader(buf, 0, n);
      const want = goEncodeFrameSize(n);
      assert.equal(pad, want.padBytes);
      assert.equal(wordAt(buf, 0), want.lenField, `n ${n}`);
    }
  });

  test("writeFrameHeader touches only its 8 bytes", () => {
    const buf = new Uint8Array(24).fill(0xee);
    writeFrameHeader(buf, 8, 2 ** 40 + 1);
    assert.deepEqual(buf.subarray(0, 8), new Uint8Array(8).fill(0xee));
    assert.deepEqual(buf.subarray(16), new Uint8Array(8).fill(0xee));
  });

  test("the top byte is 0x80|pad only when pad != 0, otherwise the length's own byte", () => {
    const buf = new Uint8Array(8);
    for (let n = 0; n <= 100; n++) {
      const pad = writeFrameHeader(buf, 0, n);
      if (pad === 0) {
        assert.equal(buf[7], 0, `n ${n}`);
      } else {
        assert.equal(buf[7], 0x80 | pad, `n ${n}`);
      }
      // bytes 4..6 carry the length's high bits, here zero
      assert.deepEqual([...buf.subarray(4, 7)], [0, 0, 0]);
    }
    writeFrameHeader(buf, 0, 2 ** 40);
    assert.deepEqual([...buf], [0, 0, 0, 0, 0, 1, 0, 0]);
    writeFrameHeader(buf, 0, 2 ** 40 + 1);
    assert.deepEqual([...buf], [1, 0, 0, 0, 0, 1, 0, 0x87]);
    writeFrameHeader(buf, 0, 4);
    assert.deepEqual([...buf], [4, 0, 0, 0, 0, 0, 0, 0x84]);
  });

  test("an all-zero word isEnd with length 0 and no padding", () => {
    const h = header();
    readFrameHeader(new Uint8Array(16), 5, h);
    assert.deepEqual(h, { recordBytes: 0, padBytes: 0, isEnd: true });
  });

  test("a word with any bit set is not the end, even a lone sign bit", () => {
    const h = header();
    for (let bit = 0; bit < 64; bit++) {
      const buf = new Uint8Array(8);
      buf[bit >> 3] = 1 << (bit & 7);
      readFrameHeader(buf, 0, h);
      assert.equal(h.isEnd, false, `bit ${bit}`);
    }
    readFrameHeader(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0x80]), 0, h);
    assert.deepEqual(h, { recordBytes: 0, padBytes: 0, isEnd: false });
  });

  test("padding is read only when the sign bit is set, as Go's int64 decodeFrameSize", () => {
    const h = header();
    // pad bits present but sign bit clear: no padding
    readFrameHeader(new Uint8Array([5, 0, 0, 0, 0, 0, 0, 0x03]), 0, h);
    assert.deepEqual(h, { recordBytes: 5, padBytes: 0, isEnd: false });
    // sign bit and bits 3-6 of the top byte set: only the low 3 bits are padding
    readFrameHeader(new Uint8Array([5, 0, 0, 0, 0, 0, 0, 0xfb]), 0, h);
    assert.deepEqual(h, { recordBytes: 5, padBytes: 3, isEnd: false });
  });

  test("readFrameHeader matches etcd's decodeFrameSize on random words", () => {
    const rand = rng(5);
    const h = header();
    const buf = new Uint8Array(8);
    for (let i = 0; i < 5000; i++) {
      for (let j = 0; j < 8; j++) buf[j] = Math.floor(rand() * 256);
      // make short lengths and zero high bytes common too
      if (i % 4 === 0) buf.fill(0, 2, 7);
      if (i % 8 === 0) buf[7] = 0;
      const word = wordAt(buf, 0);
      const want = goDecodeFrameSize(word);
      readFrameHeader(buf, 0, h);
      // lengths above 2^53 round the same way Number(bigint) does
      assert.equal(h.recordBytes, Number(want.recBytes), `word ${word}`);
      assert.equal(h.padBytes, want.padBytes, `word ${word}`);
      assert.equal(h.isEnd, word === 0n);
    }
  });
});
