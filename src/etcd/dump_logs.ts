/**
 * `wal dump-logs <data-dir>`: etcd's `etcd-dump-logs` (tools/etcd-dump-logs at etcd 3.4.23)
 * for JavaScript runtimes, with its flags and, byte for byte, its output: the snapshot it
 * starts from, the WAL metadata and hard state, one line per entry with its data decoded,
 * and the count of entries printed. Adds `-format json` (one JSON object per entry) and
 * etcd 3.6's `-raw` (every record of every segment, see `raw_dump.ts`).
 *
 * @module
 */

import { toJson } from "@bufbuild/protobuf";
import { MetadataSchema } from "../../gen/etcdserverpb/etcdserver_pb.ts";
import { EntryTypeSchema } from "../../gen/raftpb/raft_pb.ts";
import { toHex } from "../hex.ts";
import type { CliIO } from "../cli.ts";
import { WalError } from "../errors.ts";
import type { LineProcess } from "../fs/line_process.ts";
import { resolveOptions, type WalOptions } from "../options.ts";
import { cleanPath } from "../path.ts";
import type { RaftSnapshot } from "../snap/snap_codec.ts";
import type { Entry, Snapshot } from "../types.ts";
import { loadStartSnapshot, readWalFrom, walDirOf } from "./data_dir.ts";
import {
  dumpEntry,
  ENTRY_TYPE_NAMES,
  entryFilters,
  entryLine,
  goID,
  passes,
} from "./dump_entries.ts";
import { decodeEntry, KIND_SCHEMAS } from "./entry_decode.ts";
import { type GoFlag, parseGoFlags } from "./go_flags.ts";
import { goUint, readGo } from "./go_wire.ts";
import { Output } from "./output.ts";
import { rawDump } from "./raw_dump.ts";

/** `wal dump-logs --help`. */
export const DUMP_LOGS_USAGE: string = `usage: wal dump-logs [flags] <data-dir>

etcd-dump-logs for this tool: prints the WAL of an etcd data directory (<data-dir>/member/wal)
from its newest readable snapshot (<data-dir>/member/snap), entries decoded as etcd's own
tool decodes them, byte for byte as etcd-dump-logs 3.4 prints them. Read-only: takes no
lock and renames nothing. Flags are Go's: -name value, -name=value or --name value, before
<data-dir>.

flags:
  -start-snap <name>     start from this .snap file of member/snap, not the newest
  -start-index <index>   start after this index instead of at a snapshot
  -entry-type <types>    print only these kinds (comma-separated):
                         ${ENTRY_TYPE_NAMES.slice(0, 4).join(", ")},
                         ${ENTRY_TYPE_NAMES.slice(4, 8).join(", ")},
                         ${ENTRY_TYPE_NAMES.slice(8).join(", ")}
  -stream-decoder <cmd>  pipe each entry's data, as a hex line, to <cmd> (split at spaces);
                         each line it answers, STATUS|data, is printed after the entry
  -wal-dir <dir>         read the WAL here instead of <data-dir>/member/wal
  -format text|json      json: one JSON object per entry ({"term","index","type","kind",
                         "data"}, data as protobuf-es's toJson gives it), nothing else
  -raw                   list every record of every segment with its file and offset,
                         going on past CRC errors (etcd 3.6's -raw); takes -start-index
                         and -wal-dir only

Where etcd-dump-logs panics (no entries after the start), this prints an error and exits 1.`;

const FLAGS: readonly GoFlag[] = [
  { name: "start-snap", kind: "string" },
  { name: "start-index", kind: "uint64" },
  { name: "entry-type", kind: "string" },
  { name: "stream-decoder", kind: "string" },
  { name: "wal-dir", kind: "string" },
  { name: "format", kind: "string" },
  { name: "raw", kind: "bool" },
];

function invalid(msg: string): WalError {
  return new WalError("INVALID_ARGUMENT", msg);
}

/** Runs `wal dump-logs` with `argv` (after the command name); returns the exit code. */
export async function dumpLogs(
  argv: readonly string[],
  io: CliIO,
  options: WalOptions,
): Promise<number> {
  const flags = parseGoFlags(argv, FLAGS);
  if (flags.help) {
    io.out(DUMP_LOGS_USAGE);
    return 0;
  }
  if (flags.positional.length !== 1) {
    throw invalid(
      `dump-logs takes one data directory, after the flags (got [${flags.positional.join(" ")}])`,
    );
  }
  const dataDir = cleanPath(flags.positional[0]);
  const v = flags.values;
  // As in Go, an empty string flag is one not given.
  const startSnap = v.get("start-snap") || undefined;
  // As in etcd-dump-logs, -start-index 0 is no start index.
  const startIndex = v.has("start-index") && v.get("start-index") !== "0"
    ? BigInt(v.get("start-index")!)
    : undefined;
  const format = v.get("format") ?? "text";
  if (format !== "text" && format !== "json") {
    throw invalid(`-format must be text or json: got ${format}`);
  }
  const walDirFlag = v.get("wal-dir") || undefined;
  const walDir = walDirFlag !== undefined ? cleanPath(walDirFlag) : walDirOf(dataDir);
  const { fs } = await resolveOptions(options);
  const out = new Output(io);

  if (v.get("raw") === "true") {
    if (startSnap !== undefined || v.get("entry-type") || v.get("stream-decoder")) {
      throw invalid("-raw takes no -start-snap, -entry-type or -stream-decoder");
    }
    if (format !== "text") throw invalid("-raw prints text only");
    try {
      return await rawDump(fs, walDir, startIndex ?? 0n, out, io);
    } finally {
      out.end();
    }
  }
  if (startSnap !== undefined && startIndex !== undefined) {
    throw invalid("start-snap and start-index flags cannot be used together.");
  }
  const decoderCmd = v.get("stream-decoder") ?? "";
  if (decoderCmd !== "" && format === "json") {
    throw invalid("-stream-decoder goes with the text format only");
  }
  const entryType = v.get("entry-type") ?? "";
  const { filters, invalid: badTypes } = entryFilters(entryType);
  // etcd-dump-logs warns as it starts listing entries, after the lines above them
  const warnTypes = () => {
    out.flush();
    for (const t of badTypes) {
      io.err(
        `wal: [${t}] is not a valid entry-type, ignored. The entry types are: ${
          ENTRY_TYPE_NAMES.join(", ")
        }`,
      );
    }
  };
  const text = format === "text";

  try {
    let start: Snapshot = { index: 0n, term: 0n };
    if (startIndex !== undefined) {
      if (text) out.put(`Start dumping log entries from index ${startIndex}.\n`);
      start = { index: startIndex, term: 0n };
    } else {
      const snap = await loadStartSnapshot(fs, dataDir, startSnap, (path, e) => {
        out.flush();
        io.err(`wal: skipping snapshot ${path}: ${e.code}: ${e.message}`);
      });
      if (snap !== null) start = { index: snap.metadata.index, term: snap.metadata.term };
      if (text) {
        out.put(snapshotText(snap));
        out.put("Start dupmping log entries from snapshot.\n"); // etcd's typo, kept
      }
    }
    const wal = await readWalFrom(fs, walDir, start, startIndex === undefined);
    const ents = wal.entries;
    if (text) {
      const md = readMetadata(wal.metadata, walDir);
      out.put(
        "WAL metadata:\n",
        `nodeID=${goID(md.nodeID)} clusterID=${goID(md.clusterID)} ` +
          `term=${wal.state.term} commitIndex=${wal.state.commit} vote=${goID(wal.state.vote)}\n`,
        "WAL entries:\n",
      );
    }
    if (ents.length === 0) {
      throw new WalError(
        "NO_ENTRIES",
        `no entries after index ${start.index} in ${walDir} (etcd-dump-logs panics here)`,
        { file: walDir },
      );
    }
    warnTypes();
    if (!text) {
      listJson(ents, filters, out);
      return 0;
    }
    out.put(`lastIndex=${ents[ents.length - 1].index}\n`);
    out.put(`${"term".padStart(4)}\t${"index".padStart(10)}\ttype\tdata`);
    if (decoderCmd !== "") out.put("\tdecoder_status\tdecoded_data");
    out.put("\n");
    return await listEntries(ents, filters, entryType, decoderCmd, out, io);
  } finally {
    out.end();
  }
}

/** The WAL's metadata as the `etcdserverpb.Metadata` etcd stores there. */
function readMetadata(b: Uint8Array, walDir: string): { nodeID: bigint; clusterID: bigint } {
  let m;
  try {
    m = readGo(MetadataSchema, b);
  } catch (e) {
    throw new WalError("DECODE", `the WAL's metadata is not an etcd Metadata: ${e}`, {
      file: walDir,
      cause: e,
    });
  }
  return { nodeID: goUint(m, "NodeID"), clusterID: goUint(m, "ClusterID") };
}

/** `Snapshot:` and the snapshot's term, index and voters (or `empty`). */
function snapshotText(s: RaftSnapshot | null): string {
  if (s === null) return "Snapshot:\nempty\n";
  const m = s.metadata;
  return `Snapshot:\nterm=${m.term} index=${m.index} nodes=[${
    m.confState.voters.map(goID).join(" ")
  }]\n`;
}

type Filters = ReturnType<typeof entryFilters>["filters"];

/** The entry lines and the count line, piping through the stream decoder if there is one. */
async function listEntries(
  ents: readonly Entry[],
  filters: Filters,
  entryType: string,
  decoderCmd: string,
  out: Output,
  io: CliIO,
): Promise<number> {
  let decoder: LineProcess | null = null;
  if (decoderCmd !== "") {
    if (io.spawn === undefined) throw invalid("-stream-decoder: this host cannot start processes");
    const [cmd, ...args] = decoderCmd.split(" ");
    decoder = io.spawn(cmd, args);
  }
  try {
    return await listWith(ents, filters, entryType, decoderCmd, decoder, out, io);
  } finally {
    // a decoder given up on (an error here, or its own) is not waited for; kill() after it
    // exited does nothing
    decoder?.kill();
  }
}

/** The entry lines and the count line, with `decoder` if there is one. */
async function listWith(
  ents: readonly Entry[],
  filters: Filters,
  entryType: string,
  decoderCmd: string,
  decoder: LineProcess | null,
  out: Output,
  io: CliIO,
): Promise<number> {
  let count = 0;
  for (const e of ents) {
    const d = dumpEntry(e);
    const printer = passes(filters, d);
    if (printer === null) continue;
    count++;
    out.put(...entryLine(d, printer));
    if (decoder === null) {
      out.put("\n");
      continue;
    }
    let reply;
    try {
      reply = await decoder.exchange(toHex(e.data));
    } catch (err) {
      throw decoderError(decoderCmd, err);
    }
    if (reply.eof) {
      out.end();
      throw new WalError(
        "IO",
        `stream decoder '${decoderCmd}' ended its output before answering entry ${e.index}` +
          (reply.line.length > 0 ? ` (it left ${reply.line.length} bytes without a newline)` : ""),
      );
    }
    out.put("\t", ...decoderFields(reply.line));
  }
  if (decoder !== null) {
    out.flush();
    let exit;
    try {
      exit = await decoder.finish();
    } catch (err) {
      throw decoderError(decoderCmd, err);
    }
    if (exit.stderr.length > 0) {
      io.err("decoder stderr: " + new TextDecoder().decode(exit.stderr).replace(/\n$/, ""));
    }
    if (exit.code !== 0) {
      throw new WalError(
        "IO",
        `stream decoder '${decoderCmd}' failed: ${
          exit.code === null ? `killed by ${exit.signal}` : `exit status ${exit.code}`
        }`,
      );
    }
  }
  out.put(`\nEntry types (${entryType}) count is : ${count}`);
  return 0;
}

function decoderError(cmd: string, err: unknown): WalError {
  return new WalError(
    "IO",
    `stream decoder '${cmd}': ${err instanceof Error ? err.message : String(err)}`,
    { cause: err },
  );
}

const PIPE = 0x7c;

/**
 * etcd-dump-logs's `parseDecoderOutput`: `STATUS|data` gives the status and the data (with
 * its newline); a line without `|` is printed with a complaint; more than one `|` drops them
 * from the data and warns in the status.
 */
function decoderFields(line: Uint8Array): (string | Uint8Array)[] {
  const parts: Uint8Array[] = [];
  let from = 0;
  for (let i = 0; i < line.length; i++) {
    if (line[i] === PIPE) {
      parts.push(line.subarray(from, i));
      from = i + 1;
    }
  }
  parts.push(line.subarray(from));
  if (parts.length === 1) {
    return ["decoder output format is not right, print output anyway\t", line];
  }
  if (parts.length === 2) return [parts[0], "\t", parts[1]];
  return [
    parts[0],
    "(*WARNING: data might contain deliminator used by etcd-dump-logs)\t",
    ...parts.slice(1),
  ];
}

/** `-format json`: one object per entry that passes the filters. */
function listJson(ents: readonly Entry[], filters: Filters, out: Output): void {
  for (const e of ents) {
    const d = dumpEntry(e);
    if (passes(filters, d) === null) continue;
    const obj: Record<string, unknown> = {
      term: String(e.term),
      index: String(e.index),
      type: EntryTypeSchema.values.find((v) => v.number === e.type)?.name ?? e.type,
      kind: d.c.kind,
    };
    if (d.c.kind === "unknown") {
      obj.data = null;
      obj.hex = toHex(e.data);
    } else {
      try {
        const decoded = decodeEntry(e);
        obj.data = decoded.message === null
          ? null
          : toJson(KIND_SCHEMAS[d.c.kind], decoded.message);
      } catch (err) {
        obj.data = null;
        obj.hex = toHex(e.data);
        obj.error = err instanceof Error ? err.message : String(err);
      }
    }
    out.put(JSON.stringify(obj) + "\n");
  }
}
