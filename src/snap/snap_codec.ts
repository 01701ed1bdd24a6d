/**
 * The bytes of an etcd `.snap` file: `snappb.Snapshot { uint32 crc = 1; bytes data = 2; }`,
 * where `data` is a `raftpb.Snapshot { bytes data = 1; SnapshotMetadata metadata = 2; }`,
 * `SnapshotMetadata { ConfState conf_state = 1; uint64 index = 2; uint64 term = 3; }`, and `crc`
 * is the CRC-32C of `data`. Written as gogoproto writes them (etcd 3.4–3.7): metadata, its
 * conf_state, index and term always; `raftpb.Snapshot.data` and `snappb.Snapshot.data` when set.
 * Read as etcd's `snap.Read` reads them, with its checks in its order.
 *
 * @module
 */

import { WalError } from "../errors.ts";
import { crc32c } from "../segment/crc32c.ts";
import { confStateSize, readConfState, writeConfState } from "../segment/messages.ts";
import { ByteWriter, ProtobufError, Reader, varint64Size, varintSize } from "../segment/wire.ts";
import { type ConfState, emptyConfState } from "../types.ts";

/** raftpb.SnapshotMetadata: where in the log a snapshot stands, and the membership there. */
export interface SnapshotMetadata {
  /** The membership at `index`. */
  confState: ConfState;
  /** The index of the last entry the snapshot covers. */
  index: bigint;
  /** That entry's term. */
  term: bigint;
}

/** raftpb.Snapshot: the application's state machine at `metadata.index`, and where that is. */
export interface RaftSnapshot {
  /** The application's snapshot bytes (etcd: its v2 store as JSON). */
  data: Uint8Array;
  /** Index, term and membership. */
  metadata: SnapshotMetadata;
}

/** The raftpb.Snapshot bytes of `s` (etcd's pbutil.MustMarshal). */
function encodeRaftSnapshot(s: RaftSnapshot): Uint8Array {
  const m = s.metadata;
  const conf = confStateSize(m.confState);
  const meta = 1 + varintSize(conf) + conf + 1 + varint64Size(m.index) + 1 +
    varint64Size(m.term);
  const w = new ByteWriter(16 + s.data.length + meta);
  // Go writes Data when non-nil, even empty; a JS caller always has bytes, so always write it
  w.byte(0x0a);
  w.varint(s.data.length);
  w.copy(s.data, 0, s.data.length);
  w.byte(0x12);
  w.varint(meta);
  w.byte(0x0a);
  w.varint(conf);
  writeConfState(w, m.confState);
  w.byte(0x10);
  w.varint64(m.index);
  w.byte(0x18);
  w.varint64(m.term);
  return w.buf.slice(0, w.length);
}

/** The whole `.snap` file for `s`: `snappb.Snapshot { crc, data }`. */
export function encodeSnapFile(s: RaftSnapshot): Uint8Array {
  const data = encodeRaftSnapshot(s);
  const crc = crc32c(data, 0);
  const w = new ByteWriter(16 + data.length);
  w.byte(0x08);
  w.varint(crc);
  w.byte(0x12);
  w.varint(data.length);
  w.copy(data, 0, data.length);
  return w.buf.slice(0, w.length);
}

/**
 * Decodes a `.snap` file's bytes as etcd's `snap.Read` does: `EMPTY_SNAPSHOT` for an empty
 * file, for no data or a zero CRC; `CRC_MISMATCH`; `DECODE` for bytes that are not the
 * messages. Every error names `path`.
 */
export function decodeSnapFile(bytes: Uint8Array, path: string): RaftSnapshot {
  if (bytes.length === 0) {
    throw new WalError("EMPTY_SNAPSHOT", "empty snapshot file", { file: path });
  }
  const r = new Reader();
  let crc = 0;
  let start = 0;
  let end = 0;
  try {
    r.reset(bytes, 0, bytes.length);
    while (r.pos < r.end) {
      const field = r.tag();
      if (field === 1) {
        r.expect(0);
        r.varint();
        crc = r.lo >>> 0;
      } else if (field === 2) {
        r.expect(2);
        end = r.delimited();
        start = r.pos;
        r.pos = end;
      } else r.skip(r.wire);
    }
  } catch (e) {
    throw decodeError(e, "snappb.Snapshot", path);
  }
  if (end === start || crc === 0) {
    throw new WalError("EMPTY_SNAPSHOT", "snapshot file has no data or a zero crc", {
      file: path,
    });
  }
  const got = crc32c(bytes, 0, start, end);
  if (got !== crc) {
    throw new WalError(
      "CRC_MISMATCH",
      `snapshot crc mismatch: stored ${crc.toString(16)}, computed ${got.toString(16)}`,
      { file: path },
    );
  }
  try {
    return readRaftSnapshot(r, bytes, start, end);
  } catch (e) {
    throw decodeError(e, "raftpb.Snapshot", path);
  }
}

function decodeError(e: unknown, what: string, path: string): WalError {
  if (e instanceof WalError) return e;
  if (!(e instanceof ProtobufError) && !(e instanceof RangeError)) throw e;
  return new WalError("DECODE", `not a ${what}: ${e.message}`, { file: path, cause: e });
}

function readRaftSnapshot(r: Reader, buf: Uint8Array, start: number, end: number): RaftSnapshot {
  r.reset(buf, start, end);
  const s: RaftSnapshot = {
    data: new Uint8Array(0),
    metadata: { confState: emptyConfState(), index: 0n, term: 0n },
  };
  while (r.pos < r.end) {
    const field = r.tag();
    if (field === 1) {
      r.expect(2);
      const e = r.delimited();
      s.data = buf.slice(r.pos, e);
      r.pos = e;
    } else if (field === 2) {
      r.expect(2);
      const e = r.delimited();
      const outer = r.end;
      r.end = e;
      while (r.pos < e) {
        const f = r.tag();
        if (f === 1) {
          r.expect(2);
          const ce = r.delimited();
          readConfState(r, ce, s.metadata.confState);
        } else if (f === 2) {
          r.expect(0);
          s.metadata.index = r.uint64();
        } else if (f === 3) {
          r.expect(0);
          s.metadata.term = r.uint64();
        } else r.skip(r.wire);
      }
      r.end = outer;
    } else r.skip(r.wire);
  }
  return s;
}
