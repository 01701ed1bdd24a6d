import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { crc32c } from "../src/segment/crc32c.ts";
import { randBytes, rng } from "./helpers.ts";

/** Bit-at-a-time CRC-32C, continued like Go's crc32.Update. */
function referenceCrc32c(data: Uint8Array, prev = 0): number {
  let c = ~prev >>> 0;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

const ascii = (s: string) => new TextEncoder().encode(s);

describe("crc32c", () => {
  test("standard check value of '123456789' is 0xe3069283", () => {
    assert.equal(crc32c(ascii("123456789")), 0xe3069283);
    assert.equal(referenceCrc32c(ascii("123456789")), 0xe3069283);
  });

  test("empty input returns prev unchanged and 0 from scratch", () => {
    assert.equal(crc32c(new Uint8Array(0)), 0);
    assert.equal(crc32c(new Uint8Array(0), 0xe3069283), 0xe3069283);
    assert.equal(crc32c(ascii("abc"), 0x12345678, 2, 2), 0x12345678);
  });

  test("result is always an unsigned 32-bit integer", () => {
    const rand = rng(7);
    for (let i = 0; i < 200; i++) {
      const c = crc32c(randBytes(rand, Math.floor(rand() * 40)), Math.floor(rand() * 2 ** 32));
      assert.ok(Number.isInteger(c) && c >= 0 && c <= 0xffffffff, `crc ${c}`);
    }
  });

  test("matches a bitwise reference on random data of lengths 0..300", () => {
    const rand = rng(1);
    for (let n = 0; n <= 300; n++) {
      const data = randBytes(rand, n);
      const prev = n % 3 === 0 ? 0 : Math.floor(rand() * 2 ** 32);
      assert.equal(crc32c(data, prev), referenceCrc32c(data, prev), `length ${n}`);
    }
  });

  test("matches a bitwise reference on large random buffers", () => {
    const rand = rng(2);
    for (const n of [1000, 4096, 4099, 65536 + 5]) {
      const data = randBytes(rand, n);
      assert.equal(crc32c(data), referenceCrc32c(data), `length ${n}`);
    }
  });

  test("continuing across any split equals the CRC of the whole buffer", () => {
    const rand = rng(3);
    for (let n = 0; n <= 64; n++) {
      const data = randBytes(rand, n);
      const whole = crc32c(data);
      for (let cut = 0; cut <= n; cut++) {
        const a = crc32c(data.subarray(0, cut));
        assert.equal(crc32c(data.subarray(cut), a), whole, `length ${n} cut ${cut}`);
        // the same split through the start/end parameters instead of subarrays
        assert.equal(crc32c(data, crc32c(data, 0, 0, cut), cut, n), whole);
      }
    }
    for (let i = 0; i < 300; i++) {
      const n = Math.floor(rand() * 5000);
      const data = randBytes(rand, n);
      const whole = crc32c(data);
      // several random cuts, chained
      const cuts = [0, n];
      const k = Math.floor(rand() * 6);
      for (let j = 0; j < k; j++) cuts.push(Math.floor(rand() * (n + 1)));
      cuts.sort((x, y) => x - y);
      let c = 0;
      for (let j = 1; j < cuts.length; j++) c = crc32c(data, c, cuts[j - 1], cuts[j]);
      assert.equal(c, whole, `length ${n} cuts ${cuts.join(",")}`);
    }
  });

  test("start/end offsets at unaligned positions equal the CRC of the subarray", () => {
    const rand = rng(4);
    const data = randBytes(rand, 1024);
    for (let start = 0; start < 17; start++) {
      for (let len = 0; len <= 64; len++) {
        const end = start + len;
        const expected = referenceCrc32c(data.subarray(start, end));
        assert.equal(crc32c(data, 0, start, end), expected, `start ${start} len ${len}`);
        assert.equal(crc32c(data.subarray(start, end)), expected);
      }
    }
    // subarrays whose byteOffset is unaligned in the underlying buffer
    for (let i = 0; i < 200; i++) {
      const off = Math.floor(rand() * 100);
      const len = Math.floor(rand() * 900);
      const view = new Uint8Array(data.buffer, off, len);
      const prev = Math.floor(rand() * 2 ** 32);
      assert.equal(crc32c(view, prev), referenceCrc32c(data.slice(off, off + len), prev));
    }
  });

  test("etcd record CRCs: 'somedata' is 0x741f6a05, then walpb.Snapshot{0,0} gives 0x18206d80", () => {
    const meta = crc32c(ascii("somedata"));
    assert.equal(meta, 0x741f6a05);
    const snap = crc32c(new Uint8Array([0x08, 0x00, 0x10, 0x00]), meta);
    assert.equal(snap, 0x18206d80);
    assert.equal(referenceCrc32c(new Uint8Array([0x08, 0x00, 0x10, 0x00]), meta), 0x18206d80);
  });
});
