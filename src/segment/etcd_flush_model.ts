/**
 * A model of where etcd's encoder would have flushed to, so automatic cuts happen at exactly
 * the save where etcd cuts.
 *
 * etcd buffers records in a `PageWriter` (128 KiB watermark, 4 KiB pages) and decides to cut
 * by the file offset, which counts only flushed bytes. This library writes every save to
 * the file at once, so it cannot ask the file; instead it replays etcd's buffer arithmetic
 * (no bytes are copied) and cuts when the modelled flushed offset reaches the segment size.
 * That keeps segment names, and so whole directories, byte-identical to etcd's.
 *
 * @module
 */

const PAGE_BYTES = 8 * 512; // etcd walPageBytes
const WATERMARK_BYTES = 128 * 1024; // etcd ioutil defaultBufferBytes

/** Tracks the flushed offset of etcd's `PageWriter` for one segment. */
export class EtcdFlushModel {
  /** Bytes that etcd would have written to the file so far (the file offset etcd sees). */
  flushedOffset: number;
  private pageOffset: number;
  private buffered = 0;

  /** Starts a model for a writer positioned at `offset` in the segment. */
  constructor(offset: number) {
    this.flushedOffset = offset;
    this.pageOffset = offset;
  }

  /** Accounts for one `Write` of `n` bytes (etcd writes a length word, then the padded record). */
  write(n: number): void {
    for (;;) {
      if (n + this.buffered <= WATERMARK_BYTES) {
        this.buffered += n;
        return;
      }
      const slack = PAGE_BYTES - ((this.pageOffset + this.buffered) % PAGE_BYTES);
      if (slack !== PAGE_BYTES) {
        if (slack > n) {
          this.buffered += n;
          return;
        }
        this.buffered += slack;
        n -= slack;
      }
      this.flush();
      if (n > PAGE_BYTES) {
        const direct = Math.floor(n / PAGE_BYTES) * PAGE_BYTES;
        this.flushedOffset += direct;
        n -= direct;
      }
      // the remaining tail goes through Write again, as in etcd
    }
  }

  /** Accounts for a flush (etcd flushes on every sync). */
  flush(): void {
    this.flushedOffset += this.buffered;
    this.pageOffset = (this.pageOffset + this.buffered) % PAGE_BYTES;
    this.buffered = 0;
  }
}
