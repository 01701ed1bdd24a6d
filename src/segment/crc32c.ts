/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum etcd's WAL uses.
 *
 * `crc32c(data, prev)` continues a running checksum exactly like Go's
 * `crc32.Update(prev, castagnoliTable, data)`: the pre- and post-inversion happen inside,
 * so the value passed around is the finished CRC of everything so far. That is how the WAL
 * chains record CRCs: each record's `crc` is the CRC of its data continued from the
 * previous record's.
 *
 * Slicing-by-16: sixteen 256-entry tables, laid out in one flat array (one bounds-checked
 * object for the JIT instead of sixteen), let the loop consume 16 bytes per iteration: about
 * 1.5x the rate of slicing-by-8 on Deno (`deno task bench`, "crc32c": 879 -> 569 ns per KiB).
 *
 * @module
 */

const POLY = 0x82f63b78;

/** TABLE[k * 256 + b]: CRC contribution of byte b followed by k zero bytes, k in 0..15. */
const TABLE: Int32Array = (() => {
  const t = new Int32Array(16 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let i = 0; i < 8; i++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let k = 1; k < 16; k++) {
      c = t[c & 0xff] ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/**
 * Returns the CRC-32C of `data[start:end]`, continued from `prev` (0 starts a fresh CRC).
 *
 * @example
 * ```ts
 * import { crc32c } from "./crc32c.ts";
 * const check = crc32c(new TextEncoder().encode("123456789")); // 0xe3069283
 * ```
 */
export function crc32c(
  data: Uint8Array,
  prev = 0,
  start = 0,
  end: number = data.length,
): number {
  const t = TABLE;
  let c = ~prev;
  let i = start;
  const end16 = start + ((end - start) & ~15);
  while (i < end16) {
    const a = c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    c = t[3840 + (a & 0xff)] ^ t[3584 + ((a >>> 8) & 0xff)] ^ t[3328 + ((a >>> 16) & 0xff)] ^
      t[3072 + (a >>> 24)] ^ t[2816 + data[i + 4]] ^ t[2560 + data[i + 5]] ^
      t[2304 + data[i + 6]] ^ t[2048 + data[i + 7]] ^ t[1792 + data[i + 8]] ^
      t[1536 + data[i + 9]] ^ t[1280 + data[i + 10]] ^ t[1024 + data[i + 11]] ^
      t[768 + data[i + 12]] ^ t[512 + data[i + 13]] ^ t[256 + data[i + 14]] ^ t[data[i + 15]];
    i += 16;
  }
  // the tail in steps of 8 and 4 bytes: record payloads are rarely a multiple of 16
  if (end - i >= 8) {
    const a = c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    c = t[1792 + (a & 0xff)] ^ t[1536 + ((a >>> 8) & 0xff)] ^ t[1280 + ((a >>> 16) & 0xff)] ^
      t[1024 + (a >>> 24)] ^ t[768 + data[i + 4]] ^ t[512 + data[i + 5]] ^
      t[256 + data[i + 6]] ^ t[data[i + 7]];
    i += 8;
  }
  if (end - i >= 4) {
    const a = c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    c = t[768 + (a & 0xff)] ^ t[512 + ((a >>> 8) & 0xff)] ^ t[256 + ((a >>> 16) & 0xff)] ^
      t[a >>> 24];
    i += 4;
  }
  while (i < end) c = t[(c ^ data[i++]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
