/**
 * etcd-dump-logs's entry lines and `-entry-type` filters (tools/etcd-dump-logs at etcd
 * 3.4.23): which entries pass, under which name they are counted, and how each is printed.
 *
 * @module
 */

import { type Entry, EntryType } from "../types.ts";
import { type ClassifiedEntry, classifyEntry } from "./entry_decode.ts";
import { goText } from "./go_text.ts";
import { fieldNamed, goBytes, type GoMessage, goUint } from "./go_wire.ts";
import { InternalRaftRequestSchema } from "../../gen/etcdserverpb/raft_internal_pb.ts";
import { goQuote } from "./go_quote.ts";
import { ConfChangeTypeSchema } from "../../gen/raftpb/raft_pb.ts";

/** The printer an entry is printed with: the name etcd-dump-logs files it under. */
export type PrinterName = "InternalRaftRequest" | "Request" | "ConfigChange" | "UnknownNormal";

/** An entry with what it was found to hold. */
export interface DumpEntry {
  /** The entry. */
  entry: Entry;
  /** Its kind and Go message. */
  c: ClassifiedEntry;
}

/** One of etcd-dump-logs's pass functions: the printer when `d` passes, else null. */
type Filter = (d: DumpEntry) => PrinterName | null;

const normal = (d: DumpEntry) => d.entry.type === EntryType.Normal;
const irr: Filter = (d) =>
  normal(d) && d.c.kind === "internalRaftRequest" ? "InternalRaftRequest" : null;
const request: Filter = (d) => normal(d) && d.c.kind === "request" ? "Request" : null;
const unknownNormal: Filter = (d) => normal(d) && d.c.kind === "unknown" ? "UnknownNormal" : null;
// etcd-dump-logs passes EntryConfChange only; an EntryConfChangeV2 entry (which etcd itself
// does not write) would pass no filter and vanish from its output. Here it is a conf change.
const confChange: Filter = (d) =>
  d.entry.type === EntryType.ConfChange || d.entry.type === EntryType.ConfChangeV2
    ? "ConfigChange"
    : null;

/** An IRR filter: an InternalRaftRequest with field `name` set. */
function irrWith(name: string): Filter {
  const no = fieldNamed(InternalRaftRequestSchema, name).number;
  return (d) => irr(d) !== null && d.c.go!.values.has(no) ? "InternalRaftRequest" : null;
}

const FILTERS: Readonly<Record<string, readonly Filter[]>> = {
  ConfigChange: [confChange],
  Normal: [irr, request, unknownNormal],
  Request: [request],
  InternalRaftRequest: [irr],
  IRRRange: [irrWith("range")],
  IRRPut: [irrWith("put")],
  IRRDeleteRange: [irrWith("delete_range")],
  IRRTxn: [irrWith("txn")],
  IRRCompaction: [irrWith("compaction")],
  IRRLeaseGrant: [irrWith("lease_grant")],
  IRRLeaseRevoke: [irrWith("lease_revoke")],
  IRRLeaseCheckpoint: [irrWith("lease_checkpoint")],
};

/** The names `-entry-type` takes, in etcd-dump-logs's order. */
export const ENTRY_TYPE_NAMES: readonly string[] = Object.keys(FILTERS);

/**
 * The filters of an `-entry-type` value (comma-separated names; empty: every entry), and
 * the names it gave that are not entry types (etcd-dump-logs warns and ignores them).
 */
export function entryFilters(entryType: string): { filters: Filter[]; invalid: string[] } {
  if (entryType === "") return { filters: [irr, request, unknownNormal, confChange], invalid: [] };
  const filters: Filter[] = [];
  const invalid: string[] = [];
  for (const name of entryType.split(",")) {
    const f = Object.hasOwn(FILTERS, name) ? FILTERS[name] : undefined;
    if (f === undefined) invalid.push(name);
    else filters.push(...f);
  }
  return { filters, invalid };
}

/** The printer of the first filter `e` passes, or null when it passes none. */
export function passes(filters: readonly Filter[], d: DumpEntry): PrinterName | null {
  for (const f of filters) {
    const p = f(d);
    if (p !== null) return p;
  }
  return null;
}

/** Classifies `e` for the filters and printers. */
export function dumpEntry(e: Entry): DumpEntry {
  return { entry: e, c: classifyEntry(e) };
}

/** etcd's `types.ID` text: lowercase hex, no padding. */
export function goID(v: bigint): string {
  return v.toString(16);
}

/** A piece of output: text, or bytes written as they are (Go's `%s` of a string field). */
export type Piece = string | Uint8Array;

/** The entry's line as etcd-dump-logs prints it, without the newline. */
export function entryLine(d: DumpEntry, printer: PrinterName): Piece[] {
  const e = d.entry;
  const head = `${String(e.term).padStart(4)}\t${String(e.index).padStart(10)}\t`;
  const m = d.c.go;
  switch (printer) {
    case "InternalRaftRequest":
      return [head + "norm\t" + goText(m!)];
    case "UnknownNormal":
      return [head + "norm\t???"];
    case "ConfigChange":
      if (m === null) return [head + "conf\t???"];
      if (d.c.kind === "confChangeV2") return [head + "conf\t" + goText(m)];
      return [head + "conf\t" + confChangeText(m)];
    case "Request":
      return [head + "norm", ...requestText(m!)];
  }
}

/** `method=ConfChangeAddNode id=8425f172696c3d59`. */
function confChangeText(m: GoMessage): string {
  const t = Number(goUint(m, "type") & 0xffffffffn) | 0; // Go's int32 enum
  const name = ConfChangeTypeSchema.values.find((v) => v.number === t)?.name ?? String(t);
  return `method=${name} id=${goID(goUint(m, "node_id"))}`;
}

/** etcd-dump-logs's `printRequest` of a v2 Request, after `norm`. */
function requestText(m: GoMessage): Piece[] {
  const method = goBytes(m, "Method");
  const path = excerpt(goBytes(m, "Path"), 64, 64);
  const methodText = new TextDecoder().decode(method);
  if (method.length === 0) return ["\tnoop"];
  if (methodText === "SYNC") {
    const u = goUint(m, "Time");
    const t = u >= 1n << 63n ? u - (1n << 64n) : u; // Go's int64
    return [`\tmethod=SYNC time=${goQuote(new TextEncoder().encode(goTimeUTC(t)))}`];
  }
  if (methodText === "QGET" || methodText === "DELETE") {
    return ["\tmethod=", method, ` path=${path}`];
  }
  return ["\tmethod=", method, ` path=${path} val=${excerpt(goBytes(m, "Val"), 128, 0)}`];
}

/** etcd-dump-logs's `excerpt`: the whole string quoted, or its ends around `...`. */
function excerpt(s: Uint8Array, pre: number, suf: number): string {
  if (pre + suf > s.length) return goQuote(s);
  return goQuote(s.subarray(0, pre)) + "..." + goQuote(s.subarray(s.length - suf));
}

/**
 * Go's `time.Time.String()` of `time.Unix(0, ns)` in UTC: `2006-01-02 15:04:05.999999999
 * +0000 UTC`. (etcd-dump-logs prints it in the local time zone: run it with TZ=UTC to
 * compare.)
 */
function goTimeUTC(ns: bigint): string {
  let sec = ns / 1_000_000_000n;
  let frac = ns % 1_000_000_000n;
  if (frac < 0n) {
    frac += 1_000_000_000n;
    sec -= 1n;
  }
  const iso = new Date(Number(sec) * 1000).toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
  const f = frac === 0n ? "" : "." + String(frac).padStart(9, "0").replace(/0+$/, "");
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${f} +0000 UTC`;
}
