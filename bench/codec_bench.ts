/**
 * Micro-benchmarks of the hot pieces: CRC-32C, record encoding and frame decoding.
 * Run with `deno task bench`; numbers only, no assertions.
 */

import { crc32c } from "../src/segment/crc32c.ts";
import { Decoder } from "../src/segment/decoder.ts";
import { Encoder } from "../src/segment/encoder.ts";
import type { Entry } from "../src/types.ts";

const kib = new Uint8Array(1024).map((_, i) => i * 31);
const mib = new Uint8Array(1 << 20).map((_, i) => i * 7);

Deno.bench("crc32c 1 KiB", { group: "crc" }, () => {
  crc32c(kib);
});
Deno.bench("crc32c 1 MiB", { group: "crc" }, () => {
  crc32c(mib);
});

const entry: Entry = { term: 5n, index: 1000n, type: 0, data: new Uint8Array(100).fill(7) };
const enc = new Encoder(0, 0);
Deno.bench("encode 1000 entries of 100 B", { group: "encode" }, () => {
  for (let i = 0; i < 1000; i++) enc.entry(entry);
  enc.take();
});

const stream = (() => {
  const e = new Encoder(0, 0);
  for (let i = 1; i <= 10_000; i++) e.entry({ ...entry, index: BigInt(i) });
  return e.take().slice();
})();
Deno.bench("decode 10,000 frames of 100 B entries", { group: "decode" }, () => {
  const d = new Decoder();
  d.begin("bench", stream, true);
  let n = 0;
  while (d.next()) n++;
  if (n !== 10_000) throw new Error(`decoded ${n}`);
});
