/**
 * The `wal` command-line tool: inspect, verify and repair a WAL directory. Runtime-free:
 * `runCli` takes the arguments and two output sinks and returns the exit code; `cli.ts`
 * at the top level connects it to the process.
 *
 * @module
 */

import { fromBinary } from "@bufbuild/protobuf";
import { ConfChangeSchema, ConfChangeV2Schema } from "../gen/raftpb/raft_pb.ts";
import { WalError } from "./errors.ts";
import { toHex as hex } from "./hex.ts";
import { repair } from "./check/repair.ts";
import { validSnapshotEntries } from "./check/snapshots.ts";
import { type CheckOptions, verify } from "./check/verify.ts";
import { statWal } from "./check/stat.ts";
import type { Entry, Snapshot } from "./types.ts";
import type { WalOptions } from "./options.ts";
import type { LineProcess } from "./fs/line_process.ts";
import { WAL } from "./wal.ts";
import { DUMP_LOGS_USAGE, dumpLogs } from "./etcd/dump_logs.ts";

/** Where the CLI writes: standard output and standard error, a line at a time. */
export interface CliIO {
  /** Writes a line to standard output. */
  out(line: string): void;
  /** Writes a line to standard error. */
  err(line: string): void;
  /**
   * Shows transient progress (a terminal overwrites it in place); null `text` clears it.
   * Left out when output is not a terminal, so piped output stays quiet.
   */
  progress?(text: string | null): void;
  /**
   * Writes bytes to standard output exactly as given (no newline added), for output that
   * must match another tool's byte for byte. Without it, the text goes to {@link out} a line
   * at a time (a last line without "\n" is still printed as a line).
   */
  write?(bytes: Uint8Array): void;
  /**
   * Starts a child process spoken to a line at a time (`dump-logs -stream-decoder`). Without
   * it, that flag fails with `INVALID_ARGUMENT`.
   */
  spawn?(command: string, args: readonly string[]): LineProcess;
}

const USAGE: Record<string, string> = {
  wal: `usage: wal <command> [options]

Inspect, verify and repair an etcd-format write-ahead log directory.

commands:
  dump-logs <data-dir>  etcd-dump-logs: an etcd data directory's WAL from its snapshot,
                    entries decoded as etcd's tool prints them (read-only)
  dump <dir>        print metadata, hard state and entries (read-only, takes no lock)
  verify <dir>      check every record and the snapshot, without locking
  repair <dir>      cut a torn tail off the last segment (keeps <segment>.broken)
  snapshots <dir>   list the snapshots that are safe to load
  stat <dir>        list segments with their index ranges and sizes, and the hard state

Run 'wal <command> --help' for a command's options.`,
  dump: `usage: wal dump <dir> [--snap-index N --snap-term T] [--start-index N] [--end-index N]
                [--entry-type normal|confchange|confchangev2] [--format text|json]

Replays the WAL read-only from the snapshot (default index 0, term 0) and prints what it
holds. A torn tail ends the listing, as etcd's read mode does. json prints
{"metadata":"<hex>","state":{"term","vote","commit"},"entries":[{"term","index","type","data"}]}
with uint64 values as decimal strings and bytes as hex. For an etcd data directory, whose
entries etcd's tools decode, use 'wal dump-logs'.`,
  verify: `usage: wal verify <dir> [--snap-index N --snap-term T]

Reads every record from the snapshot on and checks CRCs, the crc chain, metadata and that
the snapshot was recorded. Exit 0 when the WAL is sound (a torn tail is reported: it is
readable, and 'wal repair' fixes it before a writer opens the WAL).`,
  repair: `usage: wal repair <dir>

When the last segment ends in a torn write, keeps a copy as <segment>.broken and truncates
the segment to its last good record. Refuses anything that is not a torn tail. Fails with
LOCKED while a writer has the WAL open.`,
  snapshots: `usage: wal snapshots <dir> [--format text|json]

Lists the snapshot records whose index is at most the last committed index, one per line,
with the membership etcd 3.5+ records in them (voters, learners, and in a joint
configuration the outgoing voters, the learners to come and auto-leave). json prints
[{"index","term","confState":{"voters":[...],"learners","votersOutgoing","learnersNext",
"autoLeave"}}] with uint64 values as decimal strings; confState is absent when the record
has none (etcd 3.4).`,
  "dump-logs": DUMP_LOGS_USAGE,
  stat: `usage: wal stat <dir>

Lists each segment with its sequence number, index range, used and allocated bytes, and
prints the last hard state.`,
};

const ENTRY_TYPES: Record<string, number> = { normal: 0, confchange: 1, confchangev2: 2 };
const TYPE_NAMES = ["normal", "confchange", "confchangev2"];

/** Parsed command line: positional arguments and `--name value` flags. */
interface Args {
  positional: string[];
  flags: Map<string, string>;
  help: boolean;
}

function usageError(msg: string): WalError {
  return new WalError("INVALID_ARGUMENT", msg);
}

function parseArgs(argv: readonly string[], allowed: readonly string[]): Args {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--help" || a === "-h") {
      help = true;
    } else if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      if (!allowed.includes(name)) throw usageError(`unknown option --${name}`);
      const value = eq < 0 ? argv[++i] : a.slice(eq + 1);
      if (value === undefined) throw usageError(`--${name} needs a value`);
      flags.set(name, value);
    } else {
      positional.push(a);
    }
  }
  return { positional, flags, help };
}

function uint64Flag(args: Args, name: string): bigint | undefined {
  const v = args.flags.get(name);
  if (v === undefined) return undefined;
  if (!/^[0-9]+$/.test(v) || BigInt(v) >= 1n << 64n) {
    throw usageError(`--${name} must be an unsigned 64-bit integer: got ${v}`);
  }
  return BigInt(v);
}

function snapFlags(args: Args): Snapshot {
  const index = uint64Flag(args, "snap-index");
  const term = uint64Flag(args, "snap-term");
  if ((index === undefined) !== (term === undefined)) {
    throw usageError("--snap-index and --snap-term go together");
  }
  return { index: index ?? 0n, term: term ?? 0n };
}

function oneDir(args: Args, command: string): string {
  if (args.positional.length !== 1) {
    throw usageError(`${command} takes one directory (see 'wal ${command} --help')`);
  }
  return args.positional[0];
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

const CHANGE_TYPES = ["AddNode", "RemoveNode", "UpdateNode", "AddLearnerNode"];
const TRANSITIONS = ["Auto", "JointImplicit", "JointExplicit"];

/** A readable form of an entry's data: conf changes decoded, otherwise text or hex. */
function showEntryData(e: Entry): string {
  try {
    if (e.type === 1) {
      const c = fromBinary(ConfChangeSchema, e.data);
      const ctx = c.context.length > 0 ? ` context ${showBytes(c.context)}` : "";
      return `ConfChange ${CHANGE_TYPES[c.type] ?? c.type} node ${c.nodeId} id ${c.id}${ctx}`;
    }
    if (e.type === 2) {
      const c = fromBinary(ConfChangeV2Schema, e.data);
      const changes = c.changes.map((x) => `${CHANGE_TYPES[x.type] ?? x.type} ${x.nodeId}`);
      const ctx = c.context.length > 0 ? ` context ${showBytes(c.context)}` : "";
      return `ConfChangeV2 ${TRANSITIONS[c.transition] ?? c.transition} [${
        changes.join(", ")
      }]${ctx}`;
    }
  } catch {
    // not a valid conf change: show the bytes
  }
  return showBytes(e.data);
}

/** Text when the bytes are printable UTF-8, else `0x`-prefixed hex. */
function showBytes(b: Uint8Array): string {
  if (b.length === 0) return "";
  try {
    const s = utf8.decode(b);
    // deno-lint-ignore no-control-regex
    if (!/[\u0000-\u0008\u000b-\u001f\u007f]/.test(s)) return JSON.stringify(s);
  } catch {
    // not UTF-8: fall through to hex
  }
  return "0x" + hex(b);
}

async function dump(argv: readonly string[], io: CliIO, options: WalOptions): Promise<number> {
  const args = parseArgs(argv, [
    "snap-index",
    "snap-term",
    "start-index",
    "end-index",
    "entry-type",
    "format",
  ]);
  if (args.help) return help("dump", io);
  const dir = oneDir(args, "dump");
  const snap = snapFlags(args);
  const start = uint64Flag(args, "start-index");
  const end = uint64Flag(args, "end-index");
  const typeName = args.flags.get("entry-type");
  if (typeName !== undefined && !(typeName in ENTRY_TYPES)) {
    throw usageError(`--entry-type must be normal, confchange or confchangev2: got ${typeName}`);
  }
  const format = args.flags.get("format") ?? "text";
  if (format !== "text" && format !== "json") {
    throw usageError(`--format must be text or json: got ${format}`);
  }

  const wal = await WAL.openForRead(dir, snap, options);
  let result;
  try {
    result = await wal.readAll();
  } finally {
    await wal.close();
  }
  const keep = (e: Entry) =>
    (start === undefined || e.index >= start) && (end === undefined || e.index <= end) &&
    (typeName === undefined || e.type === ENTRY_TYPES[typeName]);
  const entries = result.entries.filter(keep);
  const { state } = result;

  if (format === "json") {
    io.out(JSON.stringify({
      metadata: hex(result.metadata),
      state: { term: String(state.term), vote: String(state.vote), commit: String(state.commit) },
      entries: entries.map((e) => ({
        term: String(e.term),
        index: String(e.index),
        type: e.type,
        data: hex(e.data),
      })),
    }));
    return 0;
  }
  io.out(`snapshot: index ${snap.index} term ${snap.term}`);
  io.out(`metadata: ${showBytes(result.metadata) || "(empty)"}`);
  io.out(`state:    term ${state.term} vote ${state.vote} commit ${state.commit}`);
  io.out(
    `entries:  ${entries.length}${
      entries.length === result.entries.length ? "" : ` of ${result.entries.length}`
    }`,
  );
  if (entries.length > 0) {
    io.out(`${"term".padStart(10)} ${"index".padStart(10)}  ${"type".padEnd(12)}  data`);
    for (const e of entries) {
      const type = TYPE_NAMES[e.type] ?? `type${e.type}`;
      io.out(
        `${String(e.term).padStart(10)} ${String(e.index).padStart(10)}  ${type.padEnd(12)}  ${
          showEntryData(e)
        }`,
      );
    }
  }
  return 0;
}

async function verifyCmd(argv: readonly string[], io: CliIO, options: WalOptions): Promise<number> {
  const args = parseArgs(argv, ["snap-index", "snap-term"]);
  if (args.help) return help("verify", io);
  const dir = oneDir(args, "verify");
  const r = await verify(dir, snapFlags(args), withProgress(options, io, "verifying"));
  io.progress?.(null);
  io.out(`ok: ${r.segments} segment(s), ${r.records} record(s) verified`);
  if (r.tornTail !== null) {
    io.out(
      `torn tail: ${r.tornTail.file} at offset ${r.tornTail.offset} (${r.tornTail.reason}); ` +
        `run 'wal repair' before opening for writing`,
    );
  }
  return 0;
}

async function repairCmd(argv: readonly string[], io: CliIO, options: WalOptions): Promise<number> {
  const args = parseArgs(argv, []);
  if (args.help) return help("repair", io);
  const r = await repair(oneDir(args, "repair"), withProgress(options, io, "repairing"));
  io.progress?.(null);
  io.out(
    r.repaired
      ? `repaired: truncated ${r.file} to ${r.offset} bytes; the original is kept as ${r.brokenCopy}`
      : `nothing to repair: ${r.file} ends cleanly at offset ${r.offset}`,
  );
  return 0;
}

async function snapshotsCmd(
  argv: readonly string[],
  io: CliIO,
  options: WalOptions,
): Promise<number> {
  const args = parseArgs(argv, ["format"]);
  if (args.help) return help("snapshots", io);
  const format = args.flags.get("format") ?? "text";
  if (format !== "text" && format !== "json") {
    throw usageError(`--format must be text or json: got ${format}`);
  }
  const snaps = await validSnapshotEntries(oneDir(args, "snapshots"), options);
  const ids = (xs: bigint[]) => xs.map(String);
  if (format === "json") {
    io.out(JSON.stringify(snaps.map((s) => ({
      index: String(s.index),
      term: String(s.term),
      ...(s.confState === undefined ? {} : {
        confState: {
          voters: ids(s.confState.voters),
          learners: ids(s.confState.learners),
          votersOutgoing: ids(s.confState.votersOutgoing),
          learnersNext: ids(s.confState.learnersNext),
          autoLeave: s.confState.autoLeave,
        },
      }),
    }))));
    return 0;
  }
  io.out(`${"index".padStart(10)} ${"term".padStart(10)}  conf state`);
  for (const s of snaps) {
    const c = s.confState;
    const conf = c === undefined ? "-" : [
      `voters=${ids(c.voters).join(",")}`,
      `learners=${ids(c.learners).join(",")}`,
      ...(c.votersOutgoing.length > 0 ? [`outgoing=${ids(c.votersOutgoing).join(",")}`] : []),
      ...(c.learnersNext.length > 0 ? [`learnersNext=${ids(c.learnersNext).join(",")}`] : []),
      ...(c.autoLeave ? ["autoLeave"] : []),
    ].join(" ");
    io.out(`${String(s.index).padStart(10)} ${String(s.term).padStart(10)}  ${conf}`);
  }
  return 0;
}

async function statCmd(argv: readonly string[], io: CliIO, options: WalOptions): Promise<number> {
  const args = parseArgs(argv, []);
  if (args.help) return help("stat", io);
  const s = await statWal(oneDir(args, "stat"), options);
  io.out(
    `${"segment".padEnd(37)} ${"seq".padStart(6)} ${"first".padStart(10)} ${"last".padStart(10)} ` +
      `${"entries".padStart(8)} ${"used".padStart(10)} ${"size".padStart(10)}`,
  );
  for (const g of s.segments) {
    io.out(
      `${g.name.padEnd(37)} ${String(g.seq).padStart(6)} ${
        String(g.firstIndex ?? "-").padStart(10)
      } ${String(g.lastIndex ?? "-").padStart(10)} ${String(g.entries).padStart(8)} ${
        String(g.usedBytes).padStart(10)
      } ${String(g.size).padStart(10)}`,
    );
  }
  io.out(`state: term ${s.state.term} vote ${s.state.vote} commit ${s.state.commit}`);
  if (s.tornTail !== null) {
    io.out(`torn tail: ${s.tornTail.file} at offset ${s.tornTail.offset} (${s.tornTail.reason})`);
  }
  return 0;
}

/** Adds a progress reporter to the options when the output is a terminal. */
function withProgress(options: WalOptions, io: CliIO, verb: string): CheckOptions {
  if (io.progress === undefined) return options;
  const show = io.progress.bind(io);
  return {
    ...options,
    onProgress: (done, total, path) => {
      const pct = total === 0 ? 100 : Math.floor((done / total) * 100);
      show(`${verb}: ${done}/${total} segments (${pct}%) ${done < total ? path : ""}`);
    },
  };
}

function help(command: string, io: CliIO): number {
  io.out(USAGE[command]);
  return 0;
}

const COMMANDS: Record<
  string,
  (argv: readonly string[], io: CliIO, options: WalOptions) => Promise<number>
> = {
  dump,
  "dump-logs": dumpLogs,
  verify: verifyCmd,
  repair: repairCmd,
  snapshots: snapshotsCmd,
  stat: statCmd,
};

/**
 * Runs the `wal` command with `argv` (without the program name). Returns the exit code:
 * 0 on success; 1 on any failure (a bad command line included), after printing
 * `wal: <CODE>: <message>` to `io.err`.
 *
 * @example
 * ```ts
 * import { runCli } from "@raftlog/wal/cli";
 * const code = await runCli(["stat", "/var/lib/app/wal"], {
 *   out: (l) => console.log(l),
 *   err: (l) => console.error(l),
 * });
 * ```
 */
export async function runCli(
  argv: readonly string[],
  io: CliIO,
  options: WalOptions = {},
): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    if (command === undefined) {
      io.err(USAGE.wal);
      return 1;
    }
    io.out(USAGE.wal);
    return 0;
  }
  const run = COMMANDS[command];
  if (run === undefined) {
    io.err(`wal: INVALID_ARGUMENT: unknown command '${command}' (see 'wal --help')`);
    return 1;
  }
  try {
    return await run(rest, io, options);
  } catch (e) {
    if (e instanceof WalError) {
      io.err(`wal: ${e.code}: ${e.message}`);
      return 1;
    }
    io.err(`wal: IO: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}
