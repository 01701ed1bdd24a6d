/**
 * etcd's snapshot files (`member/snap/*.snap`), as etcd's `etcdserver/api/snap` package keeps
 * them: one file per snapshot named `%016x-%016x.snap` of term and index, bytes in
 * `snap_codec.ts`. Loading goes newest first; a file that is not a readable snapshot is renamed
 * to `<name>.broken` and skipped, as etcd does.
 *
 * @module
 */

import { ioError, WalError } from "../errors.ts";
import { defaultFileSystem } from "../fs/default.ts";
import type { FileSystem } from "../fs/types.ts";
import { cleanPath, joinPath } from "../path.ts";
import { hex16 } from "../segment/segment_names.ts";
import type { Snapshot } from "../types.ts";
import { checkUint64 } from "../validate.ts";
import { decodeSnapFile, encodeSnapFile, type RaftSnapshot } from "./snap_codec.ts";

/** Options of a {@link Snapshotter}. */
export interface SnapshotterOptions {
  /** The file system adapter; default: the running runtime's. */
  fs?: FileSystem;
  /**
   * Leave a file that is not a readable snapshot where it is, instead of renaming it
   * `<name>.broken` as etcd does: for tools that only look (`wal dump-logs`).
   */
  keepBroken?: boolean;
  /** Told of each file that is not a readable snapshot (as etcd logs them), with why. */
  onBroken?: (path: string, error: WalError) => void;
}

/** The file name etcd gives the snapshot at `term`/`index`. */
export function snapFileName(term: bigint, index: bigint): string {
  return `${hex16(term)}-${hex16(index)}.snap`;
}

/** The codes of a file that is not a readable snapshot: etcd renames it `.broken`. */
const BROKEN = new Set(["EMPTY_SNAPSHOT", "CRC_MISMATCH", "DECODE"]);

/**
 * Saves and loads etcd `.snap` files in one directory.
 *
 * @example
 * ```ts
 * import { Snapshotter } from "@raftlog/wal/snap";
 * const snap = new Snapshotter("/var/lib/etcd/member/snap");
 * const s = await snap.load(); // the newest readable snapshot
 * console.log(s.metadata.index, s.metadata.term, s.metadata.confState.voters);
 * ```
 */
export class Snapshotter {
  /** The directory of `.snap` files. */
  readonly dir: string;
  private readonly options: SnapshotterOptions;

  /** Keeps snapshots in `dir` (which must exist to save into). */
  constructor(dir: string, options: SnapshotterOptions = {}) {
    this.dir = cleanPath(dir);
    this.options = options;
  }

  /** The adapter: the one given, or the runtime's. */
  private async fs(): Promise<FileSystem> {
    return this.options.fs ?? await defaultFileSystem();
  }

  /**
   * Writes `snapshot` to `<term>-<index>.snap`, byte for byte as etcd does, then fsyncs the
   * file and the directory (etcd syncs the file only). Like etcd it writes the final name
   * directly: a file torn by a crash fails its CRC (or reads as empty) and is renamed
   * `.broken` by the next load, which then takes the older snapshot. On failure the file is
   * removed. A snapshot at index 0 is empty to raft: nothing is written, as in etcd.
   */
  async save(snapshot: RaftSnapshot): Promise<void> {
    const { index, term } = snapshot.metadata;
    checkUint64(index, "snapshot index");
    checkUint64(term, "snapshot term");
    // etcd's SaveSnap skips an empty snapshot (raft.IsEmptySnap: index 0): so does this
    if (index === 0n) return;
    const bytes = encodeSnapFile(snapshot);
    const fs = await this.fs();
    const path = joinPath(this.dir, snapFileName(term, index));
    try {
      const file = await fs.open(path, { create: true });
      try {
        await file.truncate(0);
        await file.write(bytes, 0);
        await file.sync();
      } finally {
        await file.close();
      }
      await fs.syncDir(this.dir);
    } catch (e) {
      await fs.remove(path).catch(() => {});
      throw ioError(e, "cannot save snapshot", path);
    }
  }

  /** The `.snap` file names in the directory, newest first (etcd's order: by name). */
  async list(): Promise<string[]> {
    const fs = await this.fs();
    const names = await fs.readDir(this.dir).catch((e) => {
      throw ioError(e, "cannot read snapshot directory", this.dir);
    });
    return names.filter((n) => n.endsWith(".snap")).sort().reverse();
  }

  /** The newest readable snapshot; `NO_SNAPSHOT` when there is none. */
  load(): Promise<RaftSnapshot> {
    return this.loadMatching(() => true);
  }

  /**
   * The newest readable snapshot that matches one of the WAL's snapshot records by index and
   * term (etcd's boot: pass `validSnapshotEntries(walDir)`); `NO_SNAPSHOT` when none does.
   */
  loadNewestAvailable(walSnapshots: readonly Snapshot[]): Promise<RaftSnapshot> {
    return this.loadMatching((s) =>
      walSnapshots.some((w) => w.index === s.metadata.index && w.term === s.metadata.term)
    );
  }

  /**
   * Reads one snapshot file by name. A file that is not a readable snapshot (empty, zero
   * CRC, CRC mismatch, bad protobuf) is renamed `<name>.broken`, as etcd does (unless
   * `keepBroken`), and its error thrown; an I/O failure is thrown as `IO` and the file left alone.
   */
  async read(name: string): Promise<RaftSnapshot> {
    const fs = await this.fs();
    const path = joinPath(this.dir, name);
    let bytes: Uint8Array;
    try {
      const file = await fs.open(path);
      try {
        bytes = new Uint8Array(await file.size());
        const n = await file.read(bytes, 0);
        bytes = bytes.subarray(0, n);
      } finally {
        await file.close();
      }
    } catch (e) {
      throw ioError(e, "cannot read snapshot", path);
    }
    try {
      return decodeSnapFile(bytes, path);
    } catch (e) {
      if (e instanceof WalError && BROKEN.has(e.code)) {
        this.options.onBroken?.(path, e);
        if (this.options.keepBroken !== true) {
          await fs.rename(path, path + ".broken").catch(() => {});
        }
      }
      throw e;
    }
  }

  /** The newest readable snapshot `match` accepts (etcd's loadMatching). */
  private async loadMatching(match: (s: RaftSnapshot) => boolean): Promise<RaftSnapshot> {
    for (const name of await this.list()) {
      let s: RaftSnapshot;
      try {
        s = await this.read(name);
      } catch (e) {
        if (e instanceof WalError && BROKEN.has(e.code)) continue; // renamed .broken, or kept
        throw e;
      }
      if (match(s)) return s;
    }
    throw new WalError("NO_SNAPSHOT", "no available snapshot", { file: this.dir });
  }
}
