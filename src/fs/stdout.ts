/**
 * The `wal` tool's standard output: synchronous writes of file descriptor 1, collected into
 * 64 KiB chunks, that end the process quietly (exit 0) when the reader of a pipe has gone
 * (`wal dump <dir> | head`), on Deno, Bun and Node alike. Used by `cli.ts` only.
 *
 * @module
 */

import { writeSync } from "node:fs";
import process from "node:process";

/** Whether `e` is the error of a write to a pipe whose reader has gone (`wal dump | head`). */
function isBrokenPipe(e: unknown): boolean {
  return typeof e === "object" && e !== null && (e as { code?: unknown }).code === "EPIPE";
}

/**
 * Ends the process because writing to standard output failed: at once and quietly on a broken
 * pipe, which is not a failure (with the exit code so far: 0 while the command runs), else
 * with `wal: IO: ...` and exit code 1.
 */
function stdoutFailed(e: unknown): never {
  if (isBrokenPipe(e)) process.exit(Number(process.exitCode ?? 0));
  process.stderr.write(
    `wal: IO: writing to standard output: ${e instanceof Error ? e.message : String(e)}\n`,
  );
  process.exit(1);
}

const encoder = new TextEncoder();
let pause: Int32Array | undefined; // for Atomics.wait, made on the first EAGAIN

/** A synchronous write of standard output, and whether to wait out EAGAIN and try again. */
interface StdoutSink {
  /** Writes some of `b` (at least one byte), or throws; returns how many bytes it took. */
  writeSome(b: Uint8Array): number;
  /**
   * Whether an EAGAIN (a full pipe that some process made non-blocking) wrote nothing, so that
   * waiting and writing the same bytes again is right.
   */
  retryEagain: boolean;
}

/**
 * Standard output's synchronous write: under Deno `Deno.stdout.writeSync`, elsewhere
 * `fs.writeSync` on file descriptor 1. On a non-blocking pipe that is full, Deno's can write
 * part of the bytes and still fail with EAGAIN, not saying how many it wrote (Deno 2.9; its
 * `fs.writeSync` too), so there EAGAIN fails the command, as it does with Deno's
 * `process.stdout`.
 */
function stdoutSink(): StdoutSink {
  const deno = (globalThis as { Deno?: { stdout: { writeSync(b: Uint8Array): number } } }).Deno;
  if (deno !== undefined) return { writeSome: (b) => deno.stdout.writeSync(b), retryEagain: false };
  return { writeSome: (b) => writeSync(1, b), retryEagain: true };
}

/**
 * Writes all of `b` to `sink` before returning. EAGAIN, where the sink allows, is waited out
 * with short sleeps, from 50 µs up to 20 ms.
 */
function writeAll(sink: StdoutSink, b: Uint8Array): void {
  let at = 0;
  let wait = 0.05;
  while (at < b.length) {
    try {
      at += sink.writeSome(b.subarray(at));
      wait = 0.05;
    } catch (e) {
      if (!sink.retryEagain || (e as { code?: unknown }).code !== "EAGAIN") throw e;
      Atomics.wait(pause ??= new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait);
      wait = Math.min(wait * 2, 20);
    }
  }
}

/**
 * The CLI's standard output, written synchronously (see {@link stdoutSink}), so that a
 * broken pipe (`wal dump | head`) throws in the write that meets it and ends the process there
 * (see {@link stdoutFailed}), instead of after the rest of the output has been formatted for
 * nobody. `process.stdout` cannot promise that, as the commands format in synchronous loops
 * and its errors can come later: Bun's reports EPIPE only by an 'error' event after the loop,
 * every write in between failing again; Node's, on a pipe that is full, finishes the write in
 * the event loop, and buffers every later one until then (Deno's writes at once). Under Node,
 * `process.stdout` made the pipe non-blocking, so it is made blocking again, as Node makes
 * terminals and files (`_handle.setBlocking`, as the set-blocking package does); under Bun,
 * `process.stdout` is left alone, as creating it makes the pipe non-blocking.
 *
 * Output is collected into writes of up to 64 KiB, handed on when full, on the next turn of
 * the event loop, and by {@link flush} (before anything goes to standard error, so the two
 * keep their order, and at the end).
 */
export class Stdout {
  private readonly buf = new Uint8Array(64 * 1024);
  private used = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly sink = stdoutSink();

  /** Takes over standard output (under Node, makes its pipe blocking again). */
  constructor() {
    if (process.versions.bun === undefined && process.versions.deno === undefined) {
      const stdout = process.stdout as { _handle?: { setBlocking?: (on: boolean) => unknown } };
      const handle = stdout._handle;
      if (typeof handle?.setBlocking === "function") handle.setBlocking(true);
    }
  }

  /** Writes text (as UTF-8) or bytes. */
  write(data: string | Uint8Array): void {
    const b = typeof data === "string" ? encoder.encode(data) : data;
    if (this.used + b.length > this.buf.length) this.flush();
    if (b.length >= this.buf.length) {
      this.writeNow(b);
      return;
    }
    this.buf.set(b, this.used);
    this.used += b.length;
    this.timer ??= setTimeout(() => this.flush(), 0);
  }

  /** Writes out what was collected. */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.used === 0) return;
    const b = this.buf.subarray(0, this.used);
    this.used = 0;
    this.writeNow(b);
  }

  private writeNow(b: Uint8Array): void {
    try {
      writeAll(this.sink, b);
    } catch (e) {
      stdoutFailed(e);
    }
  }
}
