/**
 * `wal dump-logs -raw`: every record of every `.wal` file in the WAL directory, in name
 * order, as etcd 3.6's `etcd-dump-logs -raw` lists them (`CRC: 0`, `Metadata: NodeID:...`,
 * `Entry: Term:2 Index:3 Data:"..."`, `HardState: ...`, `Snapshot: ...`), each line headed
 * by its file and byte offset. Like etcd's, it goes on past a CRC mismatch (flagged on the
 * line and reported once per run of bad records on stderr), carrying the computed CRC
 * forward until the next crc record; it stops at a record it cannot decode or that runs
 * past the end of its file.
 *
 * @module
 */

import { MetadataSchema } from "../../gen/etcdserverpb/etcdserver_pb.ts";
import { EntrySchema, HardStateSchema } from "../../gen/raftpb/raft_pb.ts";
import { SnapshotSchema } from "../../gen/walpb/record_pb.ts";
import type { CliIO } from "../cli.ts";
import { ioError, WalError } from "../errors.ts";
import type { FileSystem } from "../fs/types.ts";
import { joinPath } from "../path.ts";
import { crc32c } from "../segment/crc32c.ts";
import { FRAME_HEADER_BYTES, type FrameHeader, readFrameHeader } from "../segment/frame.ts";
import { RecordView } from "../segment/messages.ts";
import { ProtobufError } from "../segment/wire.ts";
import { closeSegmentFiles, openSegmentFiles } from "../replay/scan.ts";
import { recordWindows, type ScratchBuffer } from "../replay/windows.ts";
import { RecordType } from "../types.ts";
import { goText } from "./go_text.ts";
import { type GoMessage, goUint, readGo } from "./go_wire.ts";
import type { Output } from "./output.ts";

/** Lists the records of `walDir`; entries, snapshots and states below `fromIndex` are left out. */
export async function rawDump(
  fs: FileSystem,
  walDir: string,
  fromIndex: bigint,
  out: Output,
  io: CliIO,
): Promise<number> {
  const names = await fs.readDir(walDir).catch((e) => {
    throw ioError(e, "cannot read WAL directory", walDir);
  });
  const wals: string[] = [];
  for (const n of names.sort()) {
    if (n.endsWith(".wal")) wals.push(n);
    else {
      out.flush();
      io.err(`wal: ignoring ${n} in ${walDir}: not a .wal file`);
    }
  }
  const rec = new RecordView();
  const h: FrameHeader = { recordBytes: 0, padBytes: 0, isEnd: false };
  let crc = 0;
  let desync = false;
  const scratch: ScratchBuffer = { buf: new Uint8Array(0) };
  for (const name of wals) {
    const path = joinPath(walDir, name);
    const [file] = await openSegmentFiles(fs, [path]);
    try {
      const size = await file.file.size().catch((e) => {
        throw ioError(e, "cannot read segment", path);
      });
      // whole records a window at a time; only the last window can end inside one
      for await (const { bytes: buf, base } of recordWindows(file.file, size, scratch)) {
        let off = 0;
        while (off + FRAME_HEADER_BYTES <= buf.length) {
          readFrameHeader(buf, off, h);
          if (h.isEnd) break;
          const at = base + off;
          const start = off + FRAME_HEADER_BYTES;
          if (h.recordBytes + h.padBytes > buf.length - start) {
            out.put(
              `ErrUnexpectedEOF: The last record might be corrupted, error: unexpected EOF ` +
                `(${name} at offset ${at}: a record of ${h.recordBytes} bytes runs past the end).\n`,
            );
            return 0;
          }
          try {
            rec.read(buf, start, start + h.recordBytes);
          } catch (e) {
            if (!(e instanceof ProtobufError)) throw e;
            throw new WalError("DECODE", `malformed record: ${e.message}`, {
              file: path,
              offset: at,
            });
          }
          let bad = "";
          if (rec.type === RecordType.Crc) {
            crc = rec.crc;
            desync = false;
          } else {
            const computed = rec.hasData ? crc32c(buf, crc, rec.dataStart, rec.dataEnd) : crc;
            if (computed !== rec.crc) {
              bad = "\t(CRC mismatch)";
              if (!desync) {
                out.flush(); // stderr after the lines before it
                io.err(
                  `wal: CRC_MISMATCH: ${path} at offset ${at}: record CRC ${rec.crc} does not ` +
                    `match computed ${computed}; going on`,
                );
                desync = true;
              }
            }
            crc = computed;
          }
          const line = recordLine(rec, fromIndex, path, at);
          if (line !== null) out.put(`${name}:${at}\t${line}${bad}\n`);
          off = start + h.recordBytes + h.padBytes;
        }
      }
    } finally {
      await closeSegmentFiles([file]).catch(() => {});
    }
  }
  out.put("EOF: All entries were processed.\n");
  return 0;
}

/** A record's line as etcd 3.6's `printRec` writes it, or null when below `fromIndex`. */
function recordLine(rec: RecordView, fromIndex: bigint, path: string, off: number): string | null {
  const data = rec.data ?? new Uint8Array(0);
  const go = (schema: Parameters<typeof readGo>[0]): GoMessage => {
    try {
      return readGo(schema, data);
    } catch (e) {
      throw new WalError("DECODE", `record of type ${rec.type}: ${e}`, { file: path, offset: off });
    }
  };
  switch (rec.type) {
    case RecordType.Metadata:
      return `Metadata: ${goText(go(MetadataSchema))}`;
    case RecordType.Crc:
      return `CRC: ${rec.crc}`;
    case RecordType.Entry: {
      const m = go(EntrySchema);
      return goUint(m, "Index") >= fromIndex ? `Entry: ${goText(m)}` : null;
    }
    case RecordType.Snapshot: {
      const m = go(SnapshotSchema);
      return goUint(m, "index") >= fromIndex ? `Snapshot: ${goText(m)}` : null;
    }
    case RecordType.State: {
      const m = go(HardStateSchema);
      return goUint(m, "commit") >= fromIndex ? `HardState: ${goText(m)}` : null;
    }
    default:
      return `Unexpected WAL log type: ${rec.type}`;
  }
}
