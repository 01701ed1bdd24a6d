import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { EtcdFlushModel } from "../src/segment/etcd_flush_model.ts";
import { rng } from "./helpers.ts";

const PAGE_BYTES = 8 * 512; // etcd wal.walPageBytes
const DEFAULT_BUFFER_BYTES = 128 * 1024; // etcd ioutil.defaultBufferBytes

/** The byte at position `p` of the stream written through the PageWriter. */
function streamByte(p: number): number {
  return (p * 31 + Math.floor(p / 251)) & 0xff;
}

/** An io.Writer that counts bytes and checks they arrive in stream order. */
class CountingSink {
  written = 0;
  writes = 0;
  write(p: Uint8Array): number {
    for (let i = 0; i < p.length; i++) {
      if (p[i] !== streamByte(this.written + i)) {
        throw new Error(`sink: byte ${this.written + i} out of order`);
      }
    }
    this.written += p.length;
    this.writes++;
    return p.length;
  }
}

/** A line-by-line port of etcd's pkg/ioutil/pagewriter.go, with a real buffer. */
class PageWriter {
  private readonly w: CountingSink;
  private pageOffset: number;
  private readonly pageBytes: number;
  private bufferedBytes = 0;
  private readonly buf: Uint8Array;
  private readonly bufWatermarkBytes: number;

  constructor(w: CountingSink, pageBytes: number, pageOffset: number) {
    this.w = w;
    this.pageOffset = pageOffset;
    this.pageBytes = pageBytes;
    this.buf = new Uint8Array(DEFAULT_BUFFER_BYTES + pageBytes);
    this.bufWatermarkBytes = DEFAULT_BUFFER_BYTES;
  }

  write(p: Uint8Array): number {
    if (p.length + this.bufferedBytes <= this.bufWatermarkBytes) {
      // no overflow
      this.buf.set(p, this.bufferedBytes);
      this.bufferedBytes += p.length;
      return p.length;
    }
    let n = 0;
    // complete the slack page in the buffer if unaligned
    let slack = this.pageBytes - ((this.pageOffset + this.bufferedBytes) % this.pageBytes);
    if (slack !== this.pageBytes) {
      const partial = slack > p.length;
      if (partial) {
        // not enough data to complete the slack page
        slack = p.length;
      }
      // special case: writing to slack page in buffer
      this.buf.set(p.subarray(0, slack), this.bufferedBytes);
      this.bufferedBytes += slack;
      n = slack;
      p = p.subarray(slack);
      if (partial) {
        // avoid forcing an unaligned flush
        return n;
      }
    }
    // buffer contents are now page-aligned; clear out
    this.flush();
    // directly write all complete pages without copying
    if (p.length > this.pageBytes) {
      const pages = Math.floor(p.length / this.pageBytes);
      n += this.w.write(p.subarray(0, pages * this.pageBytes));
      p = p.subarray(pages * this.pageBytes);
    }
    // write remaining tail to buffer
    return n + this.write(p);
  }

  flush(): number {
    if (this.bufferedBytes === 0) return 0;
    const n = this.w.write(this.buf.subarray(0, this.bufferedBytes));
    this.pageOffset = (this.pageOffset + this.bufferedBytes) % this.pageBytes;
    this.bufferedBytes = 0;
    return n;
  }
}

/** Stream source: `take(n)` returns the next n bytes of the stream (a reused buffer). */
class Stream {
  pos = 0;
  private readonly buf = new Uint8Array(300_000);
  take(n: number): Uint8Array {
    for (let i = 0; i < n; i++) this.buf[i] = streamByte(this.pos + i);
    this.pos += n;
    return this.buf.subarray(0, n);
  }
}

type SizePicker = (rand: () => number) => number;

const uniform: SizePicker = (rand) => 1 + Math.floor(rand() * 300_000);
/** Mostly record-sized writes (length word, then record plus padding) with some large ones. */
const mixed: SizePicker = (rand) => {
  const k = rand();
  if (k < 0.35) return 8;
  if (k < 0.7) return 1 + Math.floor(rand() * 200);
  if (k < 0.85) return 1 + Math.floor(rand() * 10_000);
  if (k < 0.9) return PAGE_BYTES * (1 + Math.floor(rand() * 4)) + Math.floor(rand() * 3) - 1;
  return 1 + Math.floor(rand() * 300_000);
};

/**
 * Replays one random sequence of writes and flushes through the model and the port,
 * checking after every step that the model's flushed offset is the port's sink count plus
 * the starting offset.
 */
function replay(seed: number, startOffset: number, ops: number, pick: SizePicker, flushP: number) {
  const rand = rng(seed);
  const sink = new CountingSink();
  const pw = new PageWriter(sink, PAGE_BYTES, startOffset);
  const model = new EtcdFlushModel(startOffset);
  const stream = new Stream();
  for (let i = 0; i < ops; i++) {
    if (rand() < flushP) {
      pw.flush();
      model.flush();
    } else {
      const n = pick(rand);
      assert.equal(pw.write(stream.take(n)), n, "PageWriter.Write reports every byte");
      model.write(n);
    }
    assert.equal(
      model.flushedOffset,
      startOffset + sink.written,
      `seed ${seed} start ${startOffset} step ${i}`,
    );
  }
  pw.flush();
  model.flush();
  assert.equal(sink.written, stream.pos, "after a final flush everything reached the sink");
  assert.equal(model.flushedOffset, startOffset + stream.pos);
  return sink;
}

describe("EtcdFlushModel", () => {
  test("a fresh model has flushed exactly its starting offset", () => {
    for (const off of [0, 72, 4096, 64 * 1024 * 1024]) {
      assert.equal(new EtcdFlushModel(off).flushedOffset, off);
    }
  });

  test("writes up to the 128 KiB watermark stay buffered until a flush", () => {
    const m = new EtcdFlushModel(0);
    m.write(8);
    m.write(DEFAULT_BUFFER_BYTES - 8);
    assert.equal(m.flushedOffset, 0);
    m.flush();
    assert.equal(m.flushedOffset, DEFAULT_BUFFER_BYTES);
    m.flush();
    assert.equal(m.flushedOffset, DEFAULT_BUFFER_BYTES, "a second flush writes nothing");
  });

  test("crossing the watermark flushes only up to a page boundary of the file", () => {
    const start = 72;
    const sink = new CountingSink();
    const pw = new PageWriter(sink, PAGE_BYTES, start);
    const m = new EtcdFlushModel(start);
    const stream = new Stream();
    for (const n of [DEFAULT_BUFFER_BYTES, 100]) {
      pw.write(stream.take(n));
      m.write(n);
    }
    // 100 bytes fit the slack of the unaligned last page: no unaligned flush is forced
    assert.equal(sink.written, 0);
    assert.equal(m.flushedOffset, start);
    pw.write(stream.take(5000));
    m.write(5000);
    assert.equal((start + sink.written) % PAGE_BYTES, 0);
    assert.equal(m.flushedOffset, start + sink.written);
    assert.ok(m.flushedOffset > start);
  });

  test("matches the PageWriter port for uniform writes of 1..300000 bytes and random flushes", () => {
    const rand = rng(100);
    for (let c = 0; c < 6; c++) {
      const start = c === 0 ? 0 : Math.floor(rand() * 64 * 1024 * 1024);
      const sink = replay(1000 + c, start, 150, uniform, 0.2);
      assert.ok(sink.writes > 0);
    }
  });

  test("matches the PageWriter port for record-sized writes and rare flushes", () => {
    const rand = rng(200);
    for (let c = 0; c < 6; c++) {
      const start = c === 0 ? 72 : Math.floor(rand() * 64 * 1024 * 1024);
      replay(2000 + c, start, 3000, mixed, 0.005);
    }
  });

  test("matches the PageWriter port at starting offsets around a page boundary", () => {
    let seed = 3000;
    for (const start of [0, 1, 8, PAGE_BYTES - 8, PAGE_BYTES - 1, PAGE_BYTES, PAGE_BYTES + 1]) {
      replay(seed++, start, 800, mixed, 0.02);
      replay(seed++, start, 40, uniform, 0.1);
    }
  });

  test("a write of exactly one page past the watermark is buffered, not written directly", () => {
    for (const start of [0, PAGE_BYTES, 72]) {
      const sink = new CountingSink();
      const pw = new PageWriter(sink, PAGE_BYTES, start);
      const m = new EtcdFlushModel(start);
      const stream = new Stream();
      const fill = DEFAULT_BUFFER_BYTES - (start % PAGE_BYTES);
      const slack = PAGE_BYTES - ((start + fill) % PAGE_BYTES);
      // aligned: no slack, flush, then exactly one page remains (Go: `len(p) > pageBytes`)
      for (const n of [fill, (slack === PAGE_BYTES ? 0 : slack) + PAGE_BYTES]) {
        pw.write(stream.take(n));
        m.write(n);
      }
      assert.equal(m.flushedOffset, start + sink.written);
      assert.equal(sink.written, fill + (slack === PAGE_BYTES ? 0 : slack));
    }
  });

  test("matches the PageWriter port for writes of exactly the slack and of whole pages", () => {
    const rand = rng(400);
    for (let c = 0; c < 20; c++) {
      const start = Math.floor(rand() * 3 * PAGE_BYTES);
      const sink = new CountingSink();
      const pw = new PageWriter(sink, PAGE_BYTES, start);
      const m = new EtcdFlushModel(start);
      const stream = new Stream();
      // fill to just below the watermark, then write exactly the slack, or whole pages
      const fill = DEFAULT_BUFFER_BYTES - Math.floor(rand() * 16);
      const slack = PAGE_BYTES - ((start + fill) % PAGE_BYTES);
      const sizes = c % 2 === 0
        ? [fill, slack, PAGE_BYTES, 2 * PAGE_BYTES, PAGE_BYTES + 1, slack - 1 || 1]
        : [fill, slack + PAGE_BYTES, PAGE_BYTES - 1, slack + 2 * PAGE_BYTES + 1];
      for (const n of sizes) {
        pw.write(stream.take(n));
        m.write(n);
        assert.equal(m.flushedOffset, start + sink.written, `case ${c} write ${n}`);
      }
    }
  });
});
