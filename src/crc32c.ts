/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum etcd's WAL uses.
 *
 * `crc32c(data, prev)` continues a running checksum exactly like Go's
 * `crc32.Update(prev, castagnoliTable, data)`: the pre- and post-inversion happen inside,
 * so the value passed around is the finished CRC of everything so far. That is how the WAL
 * chains record CRCs: each record's `crc` is the CRC of its data continued from the
 * previous record's.
 *
 * Slicing-by-8: eight 256-entry tables let the loop consume 8 bytes per iteration.
 *
 * @module
 */

const POLY = 0x82f63b78;

/** TABLES[k][b]: CRC contribution of byte b followed by k zero bytes. */
const TABLES: Uint32Array[] = (() => {
  const t: Uint32Array[] = [];
  for (let k = 0; k < 8; k++) t.push(new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let i = 0; i < 8; i++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[0][n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[0][n];
    for (let k = 1; k < 8; k++) {
      c = t[0][c & 0xff] ^ (c >>> 8);
      t[k][n] = c >>> 0;
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
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES;
  let c = ~prev;
  let i = start;
  const end8 = start + ((end - start) & ~7);
  while (i < end8) {
    const lo = c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    c = t7[lo & 0xff] ^ t6[(lo >>> 8) & 0xff] ^ t5[(lo >>> 16) & 0xff] ^ t4[lo >>> 24] ^
      t3[data[i + 4]] ^ t2[data[i + 5]] ^ t1[data[i + 6]] ^ t0[data[i + 7]];
    i += 8;
  }
  while (i < end) c = t0[(c ^ data[i++]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
