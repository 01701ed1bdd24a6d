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
  | { kind: "disk"; system: "disk"; dir: string; entrySize: number; entries: number }
  /** `RaftStorage.open` of the etcd data directory `dir` (boot and index build), timed */
  | { kind: "raft-open"; system: "raft"; dir: string; entrySize: number }
  /**
   * After an untimed `RaftStorage.open` of data directory `dir`: `term(i)` and
   * `entries(i, i + 1)` at random `i` (`samples` of each timed one by one), and
   * `entries(lo, lo + scanBatch)` over the whole log; prints a {@link RaftReadsResult}
   */
  | {
    kind: "raft-reads";
    system: "raft";
    dir: string;
    /** Entry payload size of the log (sizes the cache-hit window). */
    entrySize: number;
    samples: number;
    termCalls: number;
    scanBatch: number;
  };

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
  /** `RaftStorage.heldBytes` right after open (the index; the cache is still empty). */
  heldBytes?: number;
}

/** Latencies of one kind of call, in microseconds, over its timed samples. */
export interface Latency {
  samples: number;
  p50Us: number;
  p99Us: number;
  meanUs: number;
  maxUs: number;
}

/** What a `raft-reads` child prints as its last line. */
export interface RaftReadsResult {
  /** Entries in the log (first to last index). */
  entries: number;
  /** `cacheBytes` the storage was opened with (the default). */
  cacheBytes: number;
  /** `term(i)` at random `i`: nanoseconds per call (median of three passes). */
  termNs: number;
  /** `entries(i, i + 1)` at uniformly random `i` over the log (mostly cache misses). */
  random: Latency;
  /** The same within the first `hitWindow` entries, whose blocks all fit the cache. */
  randomHit: Latency & { hitWindow: number };
  /** `entries(lo, lo + scanBatch)` from the first index to the last. */
  scan: { batch: number; entries: number; seconds: number; cpuSeconds: number };
  /** `heldBytes` after the reads: the index and the (full) cache. */
  heldBytesAfter: number;
  /** Peak resident set of the process (VmHWM), in bytes. */
  maxRssBytes: number;
}
