/**
 * Byte-exact standard output for the commands that must print what an etcd tool prints,
 * buffered into large writes.
 *
 * @module
 */

import type { CliIO } from "../cli.ts";

const FLUSH_BYTES = 64 * 1024;
const encoder = new TextEncoder();

/** Collects output and hands it to `io.write` in chunks (to `io.out` by lines without it). */
export class Output {
  private chunks: Uint8Array[] = [];
  private size = 0;
  private partial = ""; // the line `io.out` has not had yet, when there is no io.write

  /** Writes to `io`. */
  constructor(private readonly io: CliIO) {}

  /** Appends text (UTF-8) or bytes as they are. */
  put(...pieces: (string | Uint8Array)[]): void {
    for (const p of pieces) {
      const b = typeof p === "string" ? encoder.encode(p) : p;
      this.chunks.push(b);
      this.size += b.length;
    }
    if (this.size >= FLUSH_BYTES) this.flush();
  }

  /** Hands what was collected to the sink. */
  flush(): void {
    if (this.size === 0) return;
    const all = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      all.set(c, at);
      at += c.length;
    }
    this.chunks = [];
    this.size = 0;
    if (this.io.write !== undefined) {
      this.io.write(all);
      return;
    }
    const lines = (this.partial + new TextDecoder().decode(all)).split("\n");
    this.partial = lines.pop()!;
    for (const l of lines) this.io.out(l);
  }

  /** Flushes, and prints a last line without "\n" when there is no `io.write`. */
  end(): void {
    this.flush();
    if (this.partial !== "") this.io.out(this.partial);
    this.partial = "";
  }
}
