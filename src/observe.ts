/**
 * Observability: events for fsyncs, writes, cuts and repairs, and a warning through an
 * optional logger when an fsync is slow (etcd warns at 1 s). Silent unless asked.
 *
 * @module
 */

/** Something the WAL did, for metrics. */
export type WalEvent =
  /** An fdatasync of a segment, or an fsync of a directory, and how long it took. */
  | { type: "fsync"; target: "file" | "directory"; path: string; durationMs: number }
  /** Bytes written to a segment by saves (a group of saves is one write per segment it touches). */
  | { type: "write"; path: string; bytes: number }
  /** A new segment was started; `index` is the raft index it starts at. */
  | { type: "cut"; path: string; index: bigint }
  /** `repair` cut a torn tail off a segment. */
  | { type: "repair"; path: string; offset: number; brokenCopy: string };

/** Where warnings go; `console` fits. */
export interface WalLogger {
  /** Logs a warning with structured details. */
  warn(message: string, details: Record<string, unknown>): void;
}

/** The observability options, part of `WalOptions`. */
export interface ObserveOptions {
  /** Called synchronously for every {@link WalEvent}; exceptions it throws are ignored. */
  onEvent?: (event: WalEvent) => void;
  /** Receives a warning when an fsync takes longer than `slowSyncWarningMs`. */
  logger?: WalLogger;
  /** The slow-fsync threshold in milliseconds. Default 1000, as in etcd. */
  slowSyncWarningMs?: number;
}

/** The keys {@link Observer.warnOnce} has warned for. */
const warned = new WeakSet<object>();

/** Emits events and warnings for one WAL (or one `repair`). */
export class Observer {
  private readonly onEvent?: (event: WalEvent) => void;
  private readonly logger?: WalLogger;
  private readonly slowMs: number;

  /** Takes the observability options (all optional). */
  constructor(options: ObserveOptions = {}) {
    this.onEvent = options.onEvent;
    this.logger = options.logger;
    this.slowMs = options.slowSyncWarningMs ?? 1000;
  }

  /** Runs an fsync, timing it, and reports it. */
  async fsync(target: "file" | "directory", path: string, op: () => Promise<void>): Promise<void> {
    if (this.onEvent === undefined && this.logger === undefined) return await op();
    const started = performance.now();
    await op();
    this.report(target, path, performance.now() - started);
  }

  /** Emits the fsync event, and the warning when it was slow. */
  private report(target: "file" | "directory", path: string, durationMs: number): void {
    this.emit({ type: "fsync", target, path, durationMs });
    if (durationMs > this.slowMs) {
      try {
        this.logger?.warn("slow fsync", {
          path,
          target,
          tookMs: Math.round(durationMs),
          expectedMs: this.slowMs,
        });
      } catch {
        // a broken logger must not break the log
      }
    }
  }

  /** {@link Observer.fsync} for a blocking fsync call. */
  fsyncSync(target: "file" | "directory", path: string, op: () => void): void {
    if (this.onEvent === undefined && this.logger === undefined) return op();
    const started = performance.now();
    op();
    this.report(target, path, performance.now() - started);
  }

  /** Logs a warning (once per `key` object, for the life of the process) if a logger is set. */
  warnOnce(key: object, message: string, details: Record<string, unknown>): void {
    if (this.logger === undefined || warned.has(key)) return;
    warned.add(key);
    try {
      this.logger.warn(message, details);
    } catch {
      // a broken logger must not break the log
    }
  }

  /** Reports an event. */
  emit(event: WalEvent): void {
    if (this.onEvent === undefined) return;
    try {
      this.onEvent(event);
    } catch {
      // a broken listener must not break the log
    }
  }
}
