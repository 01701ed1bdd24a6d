/**
 * Types shared by the comparison runner (`compare.ts`) and the child process that takes
 * each measurement (`compare_child.ts`).
 *
 * @module
 */

/** One measurement, as the parent hands it to a child process (JSON on the command line). */
export type ChildSpec =
  /** saves of `batch` entries of `entrySize` bytes, each awaited before the next */
  | {
    kind: "write";
    system: "wal" | "sqlite";
    dir: string;
    entrySize: number;
    batch: number;
    entries: number;
    warmup: number;
    maxSeconds: number;
  }
  /** `writers` concurrent loops, each awaiting its own save of one entry */
  | {
    kind: "concurrent";
    system: "wal";
    dir: string;
    entrySize: number;
    writers: number;
    entries: number;
    warmup: number;
    maxSeconds: number;
  }
  /** replay a WAL (readAll / streaming) or read back a SQLite table */
  | { kind: "replay"; system: "wal" | "wal-stream" | "sqlite"; dir: string }
  /** fill a SQLite table to read back (untimed setup) */
  | { kind: "sqlite-fill"; system: "sqlite"; dir: string; entrySize: number; entries: number }
  /** the disk's limit: `entries` appends of `entrySize` bytes, each followed by fdatasync */
  | { kind: "disk"; system: "disk"; dir: string; entrySize: number; entries: number };

/** What a child (or the Go harness) prints as its last line. */
export interface ChildResult {
  /** Entries saved or replayed in the timed part. */
  entries: number;
  /** Entry payload bytes in the timed part. */
  bytes: number;
  /** Duration of the timed part. */
  seconds: number;
  /** User + system CPU time of the measuring process (all its threads) in the timed part. */
  cpuSeconds?: number;
  /** Peak resident set of the measuring process (VmHWM / ru_maxrss), in bytes. */
  maxRssBytes: number;
  /** Resident set just before the timed part (JS children only), in bytes. */
  rssBeforeBytes?: number;
  /** True when `maxSeconds` ran out before all entries were saved. */
  capped?: boolean;
}
