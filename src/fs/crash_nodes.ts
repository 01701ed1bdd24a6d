/**
 * The nodes of the simulated-crash file system (`crash.ts`): files and directories that
 * remember what was made durable and what is pending, and what a power cut leaves of them.
 *
 * @module
 */

const SECTOR = 512;

type PendingFileOp = { kind: "write"; offset: number; bytes: Uint8Array } | {
  kind: "resize";
  size: number;
};

/** A file: its bytes now, its durable bytes, and the writes and resizes since. */
export class FileNode {
  readonly kind = "file";
  data: Uint8Array = new Uint8Array(0);
  size = 0;
  durable: Uint8Array = new Uint8Array(0);
  pending: PendingFileOp[] = [];
  /** The open file holding the lock on this node, if any. */
  lockedBy: object | null = null;

  ensure(n: number): void {
    if (n <= this.data.length) return;
    const next = new Uint8Array(Math.max(n, this.data.length * 2));
    next.set(this.data.subarray(0, this.size));
    this.data = next;
  }

  write(bytes: Uint8Array, offset: number): void {
    this.ensure(offset + bytes.length);
    if (offset > this.size) this.data.fill(0, this.size, offset);
    this.data.set(bytes, offset);
    this.size = Math.max(this.size, offset + bytes.length);
    this.pending.push({ kind: "write", offset, bytes: bytes.slice() });
  }

  resize(size: number): void {
    this.ensure(size);
    if (size > this.size) this.data.fill(0, this.size, size);
    this.size = size;
    this.pending.push({ kind: "resize", size });
  }

  sync(): void {
    this.durable = this.data.slice(0, this.size);
    this.pending = [];
  }

  /** The content a reboot finds: durable bytes plus whatever of the pending ops landed. */
  crash(rand: () => number): void {
    let bytes = this.durable.slice();
    const apply = (op: PendingFileOp, keepSector: () => boolean) => {
      if (op.kind === "resize") {
        const next = new Uint8Array(op.size);
        next.set(bytes.subarray(0, Math.min(op.size, bytes.length)));
        bytes = next;
        return;
      }
      const end = op.offset + op.bytes.length;
      if (end > bytes.length) {
        // a write past the end extends the file only if its size change landed
        if (!keepSector()) return;
        const next = new Uint8Array(end);
        next.set(bytes);
        bytes = next;
      }
      for (let s = op.offset; s < end;) {
        const e = Math.min(end, (Math.floor(s / SECTOR) + 1) * SECTOR);
        if (keepSector()) bytes.set(op.bytes.subarray(s - op.offset, e - op.offset), s);
        s = e;
      }
    };
    const mode = rand();
    if (mode < 0.3) {
      // nothing unsynced landed
    } else if (mode < 0.6) {
      const k = Math.floor(rand() * (this.pending.length + 1));
      for (const op of this.pending.slice(0, k)) apply(op, () => true);
    } else {
      for (const op of this.pending) apply(op, () => rand() < 0.5);
    }
    this.data = bytes;
    this.size = bytes.length;
    this.durable = bytes.slice();
    this.pending = [];
    this.lockedBy = null;
  }
}

/** Entry changes that land together (a rename within one directory is atomic). */
type PendingDirOp = [name: string, node: Node | null][];

/** A directory: its entries now, its durable entries, and the changes since. */
export class DirNode {
  readonly kind = "dir";
  entries = new Map<string, Node>();
  durable = new Map<string, Node>();
  pending: PendingDirOp[] = [];
  /** The open file holding the lock on this node, if any. */
  lockedBy: object | null = null;

  set(...changes: [name: string, node: Node | null][]): void {
    for (const [name, node] of changes) {
      if (node === null) this.entries.delete(name);
      else this.entries.set(name, node);
    }
    this.pending.push(changes);
  }

  sync(): void {
    this.durable = new Map(this.entries);
    this.pending = [];
  }

  crash(rand: () => number): void {
    const entries = new Map(this.durable);
    const k = Math.floor(rand() * (this.pending.length + 1));
    for (const op of this.pending.slice(0, k)) {
      for (const [name, node] of op) {
        if (node === null) entries.delete(name);
        else entries.set(name, node);
      }
    }
    this.entries = entries;
    this.durable = new Map(entries);
    this.pending = [];
    this.lockedBy = null;
  }
}

/** A file or a directory. */
export type Node = FileNode | DirNode;
