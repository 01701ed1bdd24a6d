/**
 * The order raft storage's writes take effect in: call order. Appends go straight to the
 * WAL (so appends made while one is written are group-committed); a snapshot or compaction
 * waits for every write before it, and appends made while it runs wait for it.
 *
 * @module
 */

/** Orders appends and the writes that must wait for them. */
export class WriteOrder {
  /** The last write call (settled: it never rejects). */
  private writes: Promise<unknown> = Promise.resolve();
  /** The last snapshot or compaction while it runs. */
  private barrier: Promise<unknown> | null = null;

  /** Runs `run` (an append) now, or once the snapshot or compaction running ends. */
  append(run: () => Promise<void>): Promise<void> {
    const p = this.barrier === null ? run() : this.barrier.then(run, run);
    this.writes = p.catch(() => {});
    return p;
  }

  /** Runs `op` once every write call before it took effect; appends after it wait for it. */
  afterWrites<T>(op: () => Promise<T>): Promise<T> {
    const p = this.writes.then(op);
    const settled = p.catch(() => {});
    this.writes = settled;
    this.barrier = settled;
    settled.then(() => {
      if (this.barrier === settled) this.barrier = null;
    });
    return p;
  }

  /** Resolves once every write made so far has settled. */
  settled(): Promise<unknown> {
    return this.writes;
  }
}
