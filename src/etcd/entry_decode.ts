/**
 * What an etcd entry holds, told apart as etcd-dump-logs does: a conf change entry holds a
 * `raftpb.ConfChange` (or `ConfChangeV2`); a normal entry holds an
 * `etcdserverpb.InternalRaftRequest` when its bytes unmarshal as one, else a v2
 * `etcdserverpb.Request` when they unmarshal as that, else something etcd does not know.
 * "Unmarshal" means by the rules of etcd's Go code ({@link readGo}); the typed message is
 * then protobuf-es's `fromBinary` of the generated schema.
 *
 * @module
 */

import { type DescMessage, fromBinary } from "@bufbuild/protobuf";
import {
  type InternalRaftRequest,
  InternalRaftRequestSchema,
} from "../../gen/etcdserverpb/raft_internal_pb.ts";
import { type Request, RequestSchema } from "../../gen/etcdserverpb/etcdserver_pb.ts";
import {
  type ConfChange,
  ConfChangeSchema,
  type ConfChangeV2,
  ConfChangeV2Schema,
} from "../../gen/raftpb/raft_pb.ts";
import { WalError } from "../errors.ts";
import { type Entry, EntryType } from "../types.ts";
import { GoDecodeError, type GoMessage, readGo } from "./go_wire.ts";

/**
 * An etcd entry's data, decoded: `kind` says which message it holds. `unknown` is a normal
 * entry that is neither an InternalRaftRequest nor a v2 Request (etcd-dump-logs prints
 * `???`), or a conf change entry whose data does not decode.
 */
export type DecodedEntry =
  | { kind: "internalRaftRequest"; message: InternalRaftRequest }
  | { kind: "request"; message: Request }
  | { kind: "confChange"; message: ConfChange }
  | { kind: "confChangeV2"; message: ConfChangeV2 }
  | { kind: "unknown"; message: null };

/** The kind of an entry and its data as etcd's Go code holds it (null: it does not decode). */
export interface ClassifiedEntry {
  /** Which message the entry holds. */
  kind: DecodedEntry["kind"];
  /** The message as Go unmarshals it; null for `unknown`. */
  go: GoMessage | null;
}

/** The schema of each kind's message. */
export const KIND_SCHEMAS: Readonly<Record<Exclude<DecodedEntry["kind"], "unknown">, DescMessage>> =
  {
    internalRaftRequest: InternalRaftRequestSchema,
    request: RequestSchema,
    confChange: ConfChangeSchema,
    confChangeV2: ConfChangeV2Schema,
  };

function tryGo(desc: DescMessage, data: Uint8Array): GoMessage | null {
  try {
    return readGo(desc, data);
  } catch (e) {
    if (e instanceof GoDecodeError) return null;
    throw e;
  }
}

/** Tells which message `e` holds, by etcd-dump-logs's rules, and reads it as Go does. */
export function classifyEntry(e: Entry): ClassifiedEntry {
  if (e.type === EntryType.ConfChange) {
    const go = tryGo(ConfChangeSchema, e.data);
    return { kind: go === null ? "unknown" : "confChange", go };
  }
  if (e.type === EntryType.ConfChangeV2) {
    const go = tryGo(ConfChangeV2Schema, e.data);
    return { kind: go === null ? "unknown" : "confChangeV2", go };
  }
  if (e.type !== EntryType.Normal) return { kind: "unknown", go: null };
  const irr = tryGo(InternalRaftRequestSchema, e.data);
  if (irr !== null) return { kind: "internalRaftRequest", go: irr };
  const v2 = tryGo(RequestSchema, e.data);
  if (v2 !== null) return { kind: "request", go: v2 };
  return { kind: "unknown", go: null };
}

/**
 * Decodes an etcd entry's data into the typed message it holds ({@link DecodedEntry}).
 * Which message is decided as etcd-dump-logs decides it; the message is protobuf-es's
 * `fromBinary` of it. Throws `DECODE` when protobuf-es cannot read what etcd's Go code can: a
 * proto3 string field that is not UTF-8, or an unknown group whose end tag names another
 * field.
 */
export function decodeEntry(e: Entry): DecodedEntry {
  const { kind } = classifyEntry(e);
  if (kind === "unknown") return { kind, message: null };
  let message;
  try {
    message = fromBinary(KIND_SCHEMAS[kind], e.data);
  } catch (err) {
    throw new WalError(
      "DECODE",
      `entry ${e.index} holds a ${KIND_SCHEMAS[kind].typeName} that protobuf-es cannot read: ${
        err instanceof Error ? err.message : String(err)
      }`,
      { cause: err },
    );
  }
  return { kind, message } as DecodedEntry;
}
