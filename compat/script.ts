/**
 * The scripted-operations format shared with the Go harness (`compat/etcd34/main.go`): the
 * same JSON drives etcd's `wal` package and this library, so their directories can be
 * compared byte for byte, and the same JSON shape reports what a replay found.
 *
 * @module
 */

import { type Entry, type HardState, type Snapshot, WAL, type WalOptions } from "../mod.ts";

/** uint64 values are decimal strings, bytes are hex, as in the Go harness. */
export interface JsonEntry {
  term: string;
  index: string;
  type: number;
  data: string;
}

/** A raftpb.HardState in JSON form. */
export interface JsonState {
  term: string;
  vote: string;
  commit: string;
}

/** One scripted operation. */
export type Op =
  | { op: "save"; state?: JsonState; entries?: JsonEntry[] }
  | { op: "snapshot"; index: string; term: string }
  | { op: "close" }
  | { op: "reopen"; snapIndex: string; snapTerm: string }
  | { op: "releaseLockTo"; index: string };

/** A script: create with `metadata`, then apply `ops`, then close. */
export interface Script {
  segmentSizeBytes: number;
  metadata: string;
  ops: Op[];
}

/** What a replay found, in the Go harness's JSON shape. */
export interface JsonReadResult {
  metadata: string;
  state: JsonState;
  entries: JsonEntry[];
}

/** Lower-case hex of bytes. */
export function toHex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/** Bytes of a hex string. */
export function fromHex(h: string): Uint8Array {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function entryOf(e: JsonEntry): Entry {
  return { term: BigInt(e.term), index: BigInt(e.index), type: e.type, data: fromHex(e.data) };
}

function stateOf(s: JsonState | undefined): HardState {
  return s === undefined
    ? { term: 0n, vote: 0n, commit: 0n }
    : { term: BigInt(s.term), vote: BigInt(s.vote), commit: BigInt(s.commit) };
}

/** Applies a script to a new WAL at `dir` through this library. */
export async function runScript(
  dir: string,
  script: Script,
  options: WalOptions = {},
): Promise<void> {
  const opts: WalOptions = { ...options };
  if (script.segmentSizeBytes > 0) opts.segmentSizeBytes = script.segmentSizeBytes;
  let wal: WAL | null = await WAL.create(dir, fromHex(script.metadata), opts);
  for (const op of script.ops) {
    switch (op.op) {
      case "save":
        await wal!.save(stateOf(op.state), (op.entries ?? []).map(entryOf));
        break;
      case "snapshot":
        await wal!.saveSnapshot({ index: BigInt(op.index), term: BigInt(op.term) });
        break;
      case "close":
        await wal!.close();
        wal = null;
        break;
      case "reopen":
        await wal?.close();
        wal = await WAL.open(dir, { index: BigInt(op.snapIndex), term: BigInt(op.snapTerm) }, opts);
        await wal.readAll();
        break;
      case "releaseLockTo":
        await wal!.releaseLockTo(BigInt(op.index));
        break;
    }
  }
  await wal?.close();
}

/** Replays `dir` read-only from `snap` and returns the result in the harness's JSON shape. */
export async function readJson(
  dir: string,
  snap: Snapshot = { index: 0n, term: 0n },
  options: WalOptions = {},
): Promise<JsonReadResult> {
  const wal = await WAL.openForRead(dir, snap, options);
  try {
    const { metadata, state, entries } = await wal.readAll();
    return {
      metadata: toHex(metadata),
      state: { term: String(state.term), vote: String(state.vote), commit: String(state.commit) },
      entries: entries.map((e) => ({
        term: String(e.term),
        index: String(e.index),
        type: e.type,
        data: toHex(e.data),
      })),
    };
  } finally {
    await wal.close();
  }
}
