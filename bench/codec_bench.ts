/**
 * Micro-benchmarks of the hot pieces: CRC-32C, record encoding and frame decoding, each next
 * to the same work done with protobuf-es (`toBinary`/`fromBinary` on the generated schemas,
 * `@raftlog/wal/pb`'s conversions), on the same records. docs/decisions.md explains why the
 * hot path keeps its own codec and records the ratios.
 *
 * Run with `deno task bench` (or `deno bench -A bench/codec_bench.ts`), or under Bun with
 * `bun bench/codec_bench.ts` (a small timing loop stands in for `Deno.bench`); numbers only,
 * no assertions except that both codecs produce the same bytes and values.
 */

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { EntrySchema, fromMessage, RecordSchema, toMessage } from "../pb.ts";
import { crc32c } from "../src/segment/crc32c.ts";
import { Decoder } from "../src/segment/decoder.ts";
import { Encoder } from "../src/segment/encoder.ts";
import { type FrameHeader, readFrameHeader, writeFrameHeader } from "../src/segment/frame.ts";
import { writeEntry } from "../src/segment/messages.ts";
import { ByteWriter } from "../src/segment/wire.ts";
import type { Entry } from "../src/types.ts";

// ---------------------------------------------------------------------------------------
// Runner: Deno.bench under Deno; elsewhere (Bun) a timing loop with the same groups.

interface Bench {
  name: string;
  group: string;
  baseline: boolean;
  fn: () => void;
}
const benches: Bench[] = [];
const deno = (globalThis as { Deno?: typeof Deno }).Deno;

function bench(name: string, group: string, fn: () => void, baseline = false): void {
  if (deno !== undefined) deno.bench(name, { group, baseline }, fn);
  else benches.push({ name, group, baseline, fn });
}

/** Mean time per call in ns: 0.3 s of warm-up, then the median of 10 samples of ~0.1 s. */
function measure(fn: () => void): number {
  const until = (ms: number) => {
    const end = performance.now() + ms;
    let n = 0;
    while (performance.now() < end) {
      fn();
      n++;
    }
    return n;
  };
  until(300);
  const samples: number[] = [];
  for (let s = 0; s < 10; s++) {
    const t0 = performance.now();
    const n = until(100);
    samples.push((performance.now() - t0) * 1e6 / n);
  }
  samples.sort((a, b) => a - b);
  return (samples[4] + samples[5]) / 2;
}

function runWithoutDeno(): void {
  const bun = (globalThis as { Bun?: { version: string } }).Bun;
  const runtime = bun === undefined ? "this runtime" : `Bun ${bun.version}`;
  console.log(`codec_bench on ${runtime} (median of 10 samples of 0.1 s after 0.3 s warm-up)`);
  const fmt = (ns: number) =>
    ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : `${(ns / 1e3).toFixed(1)} us`;
  const width = Math.max(...benches.map((b) => b.name.length));
  for (const group of [...new Set(benches.map((b) => b.group))]) {
    console.log(`\ngroup ${group}`);
    const rows = benches.filter((b) => b.group === group).map((b) => ({ ...b, ns: measure(b.fn) }));
    const base = rows.find((r) => r.baseline);
    for (const r of rows) {
      const ratio = base === undefined || r === base
        ? ""
        : `  ${(r.ns / base.ns).toFixed(1)}x the time of the baseline`;
      console.log(`  ${r.name.padEnd(width)} ${fmt(r.ns).padStart(10)}/iter${ratio}`);
    }
  }
}

// ---------------------------------------------------------------------------------------
// The records

const kib = new Uint8Array(1024).map((_, i) => i * 31);
const mib = new Uint8Array(1 << 20).map((_, i) => i * 7);

bench("crc32c 1 KiB", "crc", () => {
  crc32c(kib);
});
bench("crc32c 1 MiB", "crc", () => {
  crc32c(mib);
});

const entry: Entry = { term: 5n, index: 1000n, type: 0, data: new Uint8Array(100).fill(7) };
const entryMessage = toMessage(EntrySchema, entry);

// The entry payload alone: the codec's writer into a reused buffer, protobuf-es's toBinary
// of a ready message (a new array each).
const payloadWriter = new ByteWriter();
bench("codec: writeEntry x1000 (100 B)", "entry payload", () => {
  payloadWriter.length = 0;
  for (let i = 0; i < 1000; i++) writeEntry(payloadWriter, entry);
}, true);
bench("protobuf-es: toBinary(EntrySchema) x1000 (100 B)", "entry payload", () => {
  for (let i = 0; i < 1000; i++) toBinary(EntrySchema, entryMessage);
});

// Whole records: entry payload, rolling CRC, walpb.Record, frame, into one batch buffer.
const enc = new Encoder(0, 0);
bench("encode 1000 entries of 100 B", "encode", () => {
  for (let i = 0; i < 1000; i++) enc.entry(entry);
  enc.take();
}, true);

/** What Encoder.entry does, with protobuf-es doing the protobuf: the same bytes. */
class PbEncoder {
  crc = 0;
  readonly out: ByteWriter = new ByteWriter();
  entry(e: Entry): void {
    const payload = toBinary(EntrySchema, toMessage(EntrySchema, e));
    this.crc = crc32c(payload, this.crc);
    const record = toBinary(
      RecordSchema,
      create(RecordSchema, { type: 2n, crc: this.crc, data: payload }),
    );
    const w = this.out;
    w.ensure(8 + record.length + 7);
    const pad = writeFrameHeader(w.buf, w.length, record.length);
    w.length += 8;
    w.buf.set(record, w.length);
    w.length += record.length;
    w.buf.fill(0, w.length, w.length + pad);
    w.length += pad;
  }
  take(): Uint8Array {
    const out = this.out.buf.subarray(0, this.out.length);
    this.out.length = 0;
    return out;
  }
}
const pbEnc = new PbEncoder();
bench("protobuf-es: encode 1000 entries of 100 B", "encode", () => {
  for (let i = 0; i < 1000; i++) pbEnc.entry(entry);
  pbEnc.take();
});

const entries = Array.from({ length: 10_000 }, (_, i) => ({ ...entry, index: BigInt(i + 1) }));
const stream = (() => {
  const e = new Encoder(0, 0);
  for (const x of entries) e.entry(x);
  return e.take().slice();
})();
{
  const p = new PbEncoder();
  for (const x of entries) p.entry(x);
  const ours = p.take();
  if (ours.length !== stream.length || ours.some((b, i) => b !== stream[i])) {
    throw new Error("protobuf-es and the codec encode different bytes");
  }
}

// Frames: length word, walpb.Record, CRC check (what replay does before looking at payloads).
bench("decode 10,000 frames of 100 B entries", "decode", () => {
  const d = new Decoder();
  d.begin("bench", stream, true);
  let n = 0;
  while (d.next()) n++;
  if (n !== 10_000) throw new Error(`decoded ${n}`);
}, true);

/** Reads every frame of `buf` with protobuf-es, checking the CRC chain; calls `each`. */
function pbFrames(buf: Uint8Array, each: (data: Uint8Array) => void): number {
  const h: FrameHeader = { recordBytes: 0, padBytes: 0, isEnd: false };
  let off = 0;
  let crc = 0;
  let n = 0;
  while (off + 8 <= buf.length) {
    readFrameHeader(buf, off, h);
    if (h.isEnd) break;
    const start = off + 8;
    const record = fromBinary(RecordSchema, buf.subarray(start, start + h.recordBytes));
    crc = crc32c(record.data, crc);
    if (crc !== record.crc) throw new Error(`CRC mismatch at ${off}`);
    each(record.data);
    off = start + h.recordBytes + h.padBytes;
    n++;
  }
  return n;
}
bench("protobuf-es: decode 10,000 frames of 100 B entries", "decode", () => {
  const n = pbFrames(stream, () => {});
  if (n !== 10_000) throw new Error(`decoded ${n}`);
});

// Replay: frames and the entries in them, to the public Entry.
bench("decode 10,000 entries of 100 B (frames + payloads)", "replay", () => {
  const d = new Decoder();
  d.begin("bench", stream, true);
  const out: Entry[] = [];
  while (d.next()) {
    out.push(d.record.entry());
  }
  if (out.length !== 10_000) throw new Error(`decoded ${out.length}`);
}, true);
bench("protobuf-es: decode 10,000 entries of 100 B (frames + payloads)", "replay", () => {
  const out: Entry[] = [];
  pbFrames(stream, (data) => out.push(fromMessage(EntrySchema, fromBinary(EntrySchema, data))));
  if (out.length !== 10_000) throw new Error(`decoded ${out.length}`);
});
{
  const ours: Entry[] = [];
  pbFrames(stream, (data) => ours.push(fromMessage(EntrySchema, fromBinary(EntrySchema, data))));
  const d = new Decoder();
  d.begin("bench", stream, true);
  for (let i = 0; d.next(); i++) {
    const e = d.record.entry();
    const p = ours[i];
    if (
      e.index !== p.index || e.term !== p.term || e.type !== p.type ||
      e.data.length !== p.data.length || e.data.some((b, j) => b !== p.data[j])
    ) {
      throw new Error(`entry ${i} decodes differently`);
    }
  }
}

if (deno === undefined) runWithoutDeno();
