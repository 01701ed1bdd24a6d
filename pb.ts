/**
 * The protobuf schemas of the WAL's records, for code that wants typed messages: the
 * protobuf-es (`@bufbuild/protobuf` v2) schemas of etcd's `raftpb` and `walpb` messages, and
 * {@link toMessage} / {@link fromMessage} between them and this library's plain
 * {@link Entry}, {@link HardState} and {@link Snapshot}.
 *
 * The schemas are the schema of record (generated from `proto/`, etcd's field numbers,
 * proto2). The WAL itself encodes with its own codec, which writes the same bytes:
 * `toBinary(EntrySchema, toMessage(EntrySchema, entry))` equals the payload of the record
 * the WAL writes for `entry`.
 *
 * For etcd's own entries, {@link decodeEntry} tells what an entry holds and decodes it as
 * etcd-dump-logs does: an `etcdserverpb.InternalRaftRequest` (puts, txns, leases, auth...),
 * a v2 `etcdserverpb.Request`, or a conf change.
 *
 * Message types are named `…Message` here (`EntryMessage`, not `Entry`) so that they never
 * clash with the public types of `@raftlog/wal`.
 *
 * @example Build an entry with protobuf-es and save it
 * ```ts
 * import { WAL } from "@raftlog/wal";
 * import { EntrySchema, EntryType, fromMessage } from "@raftlog/wal/pb";
 * import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
 *
 * const msg = create(EntrySchema, {
 *   Term: 1n,
 *   Index: 1n,
 *   Type: EntryType.EntryNormal,
 *   Data: new TextEncoder().encode("x=1"),
 * });
 * const bytes = toBinary(EntrySchema, msg); // e.g. received from a peer
 *
 * const wal = await WAL.create(await Deno.makeTempDir() + "/wal");
 * await wal.save({ term: 1n, vote: 1n, commit: 0n }, [
 *   fromMessage(EntrySchema, fromBinary(EntrySchema, bytes)),
 * ]);
 * await wal.close();
 * ```
 *
 * @module
 */

import { create, isFieldSet, type Message } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import type * as codegen from "@bufbuild/protobuf/codegenv2";
import * as raftpb from "./gen/raftpb/raft_pb.ts";
import * as walpb from "./gen/walpb/record_pb.ts";
import * as etcdserverpb from "./gen/etcdserverpb/raft_internal_pb.ts";
import * as etcdserverpbV2 from "./gen/etcdserverpb/etcdserver_pb.ts";
import { decodeEntry as decode } from "./src/etcd/entry_decode.ts";
import type { Entry, HardState, Snapshot } from "./src/types.ts";

// Every export is declared here rather than re-exported from gen/ (docs/decisions.md, "pb.ts
// declares its exports"): the generated declarations document themselves with an `@generated`
// tag only, which `deno doc --lint` counts as missing documentation. The @internal aliases
// below (the lint's documented opt-out) name protobuf-es's public GenMessage and GenEnum,
// which the lint reports as private because npm packages resolve to file: URLs
// (denoland/deno#27364; its fix, #34339, skips only non-file: URLs), and the types of the
// generated enum objects, whose values are exported here under the same names.

/**
 * protobuf-es's `GenMessage<T>` (`@bufbuild/protobuf/codegenv2`): the schema of message `T`.
 *
 * @internal
 */
type GenMessage<T extends Message> = codegen.GenMessage<T>;

/**
 * protobuf-es's `GenEnum<T>` (`@bufbuild/protobuf/codegenv2`): the schema of enum `T`.
 *
 * @internal
 */
type GenEnum<T extends number> = codegen.GenEnum<T>;

/**
 * The generated enum object `raftpb.EntryType` (members and reverse mapping).
 *
 * @internal
 */
type EntryTypeEnum = typeof raftpb.EntryType;

/**
 * The generated enum object `raftpb.ConfChangeType`.
 *
 * @internal
 */
type ConfChangeTypeEnum = typeof raftpb.ConfChangeType;

/**
 * The generated enum object `raftpb.ConfChangeTransition`.
 *
 * @internal
 */
type ConfChangeTransitionEnum = typeof raftpb.ConfChangeTransition;

// ---------------------------------------------------------------------------------------
// Message types

/**
 * A `raftpb.Entry` message: `Term`, `Index` (uint64, as `bigint`), `Type` ({@link EntryType})
 * and `Data` (bytes). Field names are etcd's, capitalized as in its proto.
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { EntrySchema, type EntryMessage } from "@raftlog/wal/pb";
 *
 * const m: EntryMessage = create(EntrySchema, { Term: 2n, Index: 7n });
 * ```
 */
export type EntryMessage = raftpb.Entry;

/**
 * A `raftpb.HardState` message: `term`, `vote` and `commit` (uint64, as `bigint`).
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { HardStateSchema, type HardStateMessage } from "@raftlog/wal/pb";
 *
 * const m: HardStateMessage = create(HardStateSchema, { term: 2n, vote: 1n, commit: 7n });
 * ```
 */
export type HardStateMessage = raftpb.HardState;

/**
 * A `raftpb.ConfState` message: the cluster membership (`voters`, `learners`,
 * `votersOutgoing`, `learnersNext`, lists of node ids as `bigint`, and `autoLeave`). etcd
 * 3.5+ stores one in every WAL snapshot record ({@link SnapshotMessage}'s `confState`).
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { ConfStateSchema, type ConfStateMessage } from "@raftlog/wal/pb";
 *
 * const m: ConfStateMessage = create(ConfStateSchema, { voters: [1n, 2n, 3n] });
 * ```
 */
export type ConfStateMessage = raftpb.ConfState;

/**
 * A `raftpb.ConfChange` message, the payload of an {@link EntryType}`.EntryConfChange` entry:
 * `type` ({@link ConfChangeType}), `nodeId`, `context` and `id`.
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { ConfChangeSchema, ConfChangeType, type ConfChangeMessage } from "@raftlog/wal/pb";
 *
 * const m: ConfChangeMessage = create(ConfChangeSchema, {
 *   type: ConfChangeType.ConfChangeAddNode,
 *   nodeId: 4n,
 * });
 * ```
 */
export type ConfChangeMessage = raftpb.ConfChange;

/**
 * A `raftpb.ConfChangeSingle` message, one change of a {@link ConfChangeV2Message}: `type`
 * ({@link ConfChangeType}) and `nodeId`.
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { ConfChangeSingleSchema, type ConfChangeSingleMessage } from "@raftlog/wal/pb";
 *
 * const m: ConfChangeSingleMessage = create(ConfChangeSingleSchema, { nodeId: 4n });
 * ```
 */
export type ConfChangeSingleMessage = raftpb.ConfChangeSingle;

/**
 * A `raftpb.ConfChangeV2` message, the payload of an {@link EntryType}`.EntryConfChangeV2`
 * entry: `transition` ({@link ConfChangeTransition}), `changes` and `context`.
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { ConfChangeV2Schema, type ConfChangeV2Message } from "@raftlog/wal/pb";
 *
 * const m: ConfChangeV2Message = create(ConfChangeV2Schema, { changes: [{ nodeId: 4n }] });
 * ```
 */
export type ConfChangeV2Message = raftpb.ConfChangeV2;

/**
 * A `walpb.Record` message, one framed record of a segment: `type` (int64, as `bigint`: 1
 * metadata, 2 entry, 3 state, 4 crc, 5 snapshot), `crc` (the rolling CRC-32C) and `data`
 * (the encoded payload).
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { RecordSchema, type RecordMessage } from "@raftlog/wal/pb";
 *
 * const m: RecordMessage = create(RecordSchema, { type: 4n, crc: 0 });
 * ```
 */
export type RecordMessage = walpb.Record;

/**
 * A `walpb.Snapshot` message: the snapshot position `index` and `term` (uint64, as `bigint`)
 * and, as etcd 3.5+ writes it, the membership `confState` ({@link ConfStateMessage}).
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { SnapshotSchema, type SnapshotMessage } from "@raftlog/wal/pb";
 *
 * const m: SnapshotMessage = create(SnapshotSchema, { index: 10n, term: 2n });
 * ```
 */
export type SnapshotMessage = walpb.Snapshot;

// ---------------------------------------------------------------------------------------
// Schemas

/**
 * The schema of `raftpb.Entry` ({@link EntryMessage}): pass it to protobuf-es's `create`,
 * `toBinary`, `fromBinary`, `toJson`..., and to {@link toMessage} / {@link fromMessage}.
 *
 * @example
 * ```ts
 * import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
 * import { EntrySchema } from "@raftlog/wal/pb";
 *
 * const bytes = toBinary(EntrySchema, create(EntrySchema, { Term: 1n, Index: 1n }));
 * const again = fromBinary(EntrySchema, bytes); // again.Index === 1n
 * ```
 */
export const EntrySchema: GenMessage<EntryMessage> = raftpb.EntrySchema;

/**
 * The schema of `raftpb.HardState` ({@link HardStateMessage}).
 *
 * @example
 * ```ts
 * import { create, toBinary } from "@bufbuild/protobuf";
 * import { HardStateSchema } from "@raftlog/wal/pb";
 *
 * const bytes = toBinary(HardStateSchema, create(HardStateSchema, { term: 1n, vote: 1n }));
 * ```
 */
export const HardStateSchema: GenMessage<HardStateMessage> = raftpb.HardStateSchema;

/**
 * The schema of `raftpb.ConfState` ({@link ConfStateMessage}).
 *
 * @example
 * ```ts
 * import { create, toBinary } from "@bufbuild/protobuf";
 * import { ConfStateSchema } from "@raftlog/wal/pb";
 *
 * const bytes = toBinary(ConfStateSchema, create(ConfStateSchema, { voters: [1n] }));
 * ```
 */
export const ConfStateSchema: GenMessage<ConfStateMessage> = raftpb.ConfStateSchema;

/**
 * The schema of `raftpb.ConfChange` ({@link ConfChangeMessage}), the payload of an
 * `EntryConfChange` entry.
 *
 * @example
 * ```ts
 * import { fromBinary } from "@bufbuild/protobuf";
 * import type { Entry } from "@raftlog/wal";
 * import { ConfChangeSchema, EntryType } from "@raftlog/wal/pb";
 *
 * function nodeOf(e: Entry): bigint | null {
 *   if (e.type !== EntryType.EntryConfChange) return null;
 *   return fromBinary(ConfChangeSchema, e.data).nodeId;
 * }
 * ```
 */
export const ConfChangeSchema: GenMessage<ConfChangeMessage> = raftpb.ConfChangeSchema;

/**
 * The schema of `raftpb.ConfChangeSingle` ({@link ConfChangeSingleMessage}).
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { ConfChangeSingleSchema, ConfChangeType } from "@raftlog/wal/pb";
 *
 * const change = create(ConfChangeSingleSchema, {
 *   type: ConfChangeType.ConfChangeRemoveNode,
 *   nodeId: 3n,
 * });
 * ```
 */
export const ConfChangeSingleSchema: GenMessage<ConfChangeSingleMessage> =
  raftpb.ConfChangeSingleSchema;

/**
 * The schema of `raftpb.ConfChangeV2` ({@link ConfChangeV2Message}), the payload of an
 * `EntryConfChangeV2` entry.
 *
 * @example
 * ```ts
 * import { create, toBinary } from "@bufbuild/protobuf";
 * import { ConfChangeV2Schema, EntryType } from "@raftlog/wal/pb";
 *
 * const data = toBinary(ConfChangeV2Schema, create(ConfChangeV2Schema, {
 *   changes: [{ nodeId: 4n }],
 * }));
 * const entry = { term: 2n, index: 9n, type: EntryType.EntryConfChangeV2, data };
 * ```
 */
export const ConfChangeV2Schema: GenMessage<ConfChangeV2Message> = raftpb.ConfChangeV2Schema;

/**
 * The schema of `walpb.Record` ({@link RecordMessage}): what every framed record of a
 * segment decodes to.
 *
 * @example
 * ```ts
 * import { fromBinary } from "@bufbuild/protobuf";
 * import { RecordSchema } from "@raftlog/wal/pb";
 *
 * // A crc record as a segment starts with it: type 4, crc 0.
 * const rec = fromBinary(RecordSchema, new Uint8Array([0x08, 0x04, 0x10, 0x00]));
 * // rec.type === 4n
 * ```
 */
export const RecordSchema: GenMessage<RecordMessage> = walpb.RecordSchema;

/**
 * The schema of `walpb.Snapshot` ({@link SnapshotMessage}), the payload of a snapshot record.
 *
 * @example
 * ```ts
 * import { create, toBinary } from "@bufbuild/protobuf";
 * import { SnapshotSchema } from "@raftlog/wal/pb";
 *
 * const bytes = toBinary(SnapshotSchema, create(SnapshotSchema, { index: 10n, term: 2n }));
 * ```
 */
export const SnapshotSchema: GenMessage<SnapshotMessage> = walpb.SnapshotSchema;

// ---------------------------------------------------------------------------------------
// Enums

/**
 * The protobuf enum `raftpb.EntryType`: `EntryNormal` (0), `EntryConfChange` (1),
 * `EntryConfChangeV2` (2). The same numbers as `@raftlog/wal`'s `EntryType.Normal`,
 * `.ConfChange` and `.ConfChangeV2`, so either fits an {@link EntryMessage}'s `Type` and an
 * {@link Entry}'s `type`.
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { EntrySchema, EntryType } from "@raftlog/wal/pb";
 *
 * const m = create(EntrySchema, { Type: EntryType.EntryConfChange, Term: 1n, Index: 2n });
 * ```
 */
export const EntryType: EntryTypeEnum = raftpb.EntryType;
/** One of the values of the {@link EntryType} enum. */
export type EntryType = raftpb.EntryType;

/**
 * The protobuf enum `raftpb.ConfChangeType`: `ConfChangeAddNode` (0), `ConfChangeRemoveNode`
 * (1), `ConfChangeUpdateNode` (2), `ConfChangeAddLearnerNode` (3).
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { ConfChangeSchema, ConfChangeType } from "@raftlog/wal/pb";
 *
 * const cc = create(ConfChangeSchema, { type: ConfChangeType.ConfChangeAddLearnerNode });
 * ```
 */
export const ConfChangeType: ConfChangeTypeEnum = raftpb.ConfChangeType;
/** One of the values of the {@link ConfChangeType} enum. */
export type ConfChangeType = raftpb.ConfChangeType;

/**
 * The protobuf enum `raftpb.ConfChangeTransition`: `ConfChangeTransitionAuto` (0),
 * `ConfChangeTransitionJointImplicit` (1), `ConfChangeTransitionJointExplicit` (2).
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { ConfChangeTransition, ConfChangeV2Schema } from "@raftlog/wal/pb";
 *
 * const cc = create(ConfChangeV2Schema, {
 *   transition: ConfChangeTransition.ConfChangeTransitionJointExplicit,
 * });
 * ```
 */
export const ConfChangeTransition: ConfChangeTransitionEnum = raftpb.ConfChangeTransition;
/** One of the values of the {@link ConfChangeTransition} enum. */
export type ConfChangeTransition = raftpb.ConfChangeTransition;

/**
 * The schema of the enum `raftpb.EntryType` ({@link EntryType}).
 *
 * @example
 * ```ts
 * import { EntryTypeSchema } from "@raftlog/wal/pb";
 *
 * const names = EntryTypeSchema.values.map((v) => v.name); // ["EntryNormal", ...]
 * ```
 */
export const EntryTypeSchema: GenEnum<EntryType> = raftpb.EntryTypeSchema;

/**
 * The schema of the enum `raftpb.ConfChangeType` ({@link ConfChangeType}).
 *
 * @example
 * ```ts
 * import { ConfChangeTypeSchema } from "@raftlog/wal/pb";
 *
 * const name = ConfChangeTypeSchema.values[1].name; // "ConfChangeRemoveNode"
 * ```
 */
export const ConfChangeTypeSchema: GenEnum<ConfChangeType> = raftpb.ConfChangeTypeSchema;

/**
 * The schema of the enum `raftpb.ConfChangeTransition` ({@link ConfChangeTransition}).
 *
 * @example
 * ```ts
 * import { ConfChangeTransitionSchema } from "@raftlog/wal/pb";
 *
 * const name = ConfChangeTransitionSchema.values[0].name; // "ConfChangeTransitionAuto"
 * ```
 */
export const ConfChangeTransitionSchema: GenEnum<ConfChangeTransition> =
  raftpb.ConfChangeTransitionSchema;

// ---------------------------------------------------------------------------------------
// Conversions

/**
 * Converts a public {@link Entry}, {@link HardState} or {@link Snapshot} to the protobuf-es
 * message of `schema`, with the fields set the way the WAL writes them: every scalar field
 * explicitly set (proto2 presence), an entry's `Data` only when it is not empty. So
 * `toBinary(schema, toMessage(schema, value))` is exactly the payload the WAL stores for
 * `value`. A snapshot message gets a `confState` when the snapshot has one.
 *
 * The entry's `data` is shared with the message, not copied. Values are not validated here
 * (`toBinary` and `WAL.save` check them).
 *
 * @example
 * ```ts
 * import { toBinary } from "@bufbuild/protobuf";
 * import { EntrySchema, HardStateSchema, SnapshotSchema, toMessage } from "@raftlog/wal/pb";
 *
 * const entry = toMessage(EntrySchema, { term: 1n, index: 5n, type: 0, data: new Uint8Array([1]) });
 * const state = toMessage(HardStateSchema, { term: 1n, vote: 2n, commit: 5n });
 * const snap = toMessage(SnapshotSchema, { index: 5n, term: 1n });
 * const bytes = toBinary(EntrySchema, entry); // the bytes the WAL writes for this entry
 * ```
 */
export function toMessage(schema: typeof EntrySchema, value: Entry): EntryMessage;
/** Converts a public {@link HardState} to a {@link HardStateMessage}. */
export function toMessage(schema: typeof HardStateSchema, value: HardState): HardStateMessage;
/** Converts a public {@link Snapshot} (with its `confState`, if any) to a {@link SnapshotMessage}. */
export function toMessage(schema: typeof SnapshotSchema, value: Snapshot): SnapshotMessage;
export function toMessage(
  schema: typeof EntrySchema | typeof HardStateSchema | typeof SnapshotSchema,
  value: Entry | HardState | Snapshot,
): EntryMessage | HardStateMessage | SnapshotMessage {
  switch (schema.typeName) {
    case "raftpb.Entry": {
      const e = value as Entry;
      return e.data.length > 0
        ? create(EntrySchema, { Type: e.type, Term: e.term, Index: e.index, Data: e.data })
        : create(EntrySchema, { Type: e.type, Term: e.term, Index: e.index });
    }
    case "raftpb.HardState": {
      const s = value as HardState;
      return create(HardStateSchema, { term: s.term, vote: s.vote, commit: s.commit });
    }
    case "walpb.Snapshot": {
      const s = value as Snapshot;
      const c = s.confState;
      if (c === undefined) return create(SnapshotSchema, { index: s.index, term: s.term });
      const confState = create(ConfStateSchema, {
        voters: c.voters,
        learners: c.learners,
        votersOutgoing: c.votersOutgoing,
        learnersNext: c.learnersNext,
        autoLeave: c.autoLeave,
      });
      return create(SnapshotSchema, { index: s.index, term: s.term, confState });
    }
    default:
      throw new TypeError(
        `toMessage: unsupported schema ${(schema as { typeName: string }).typeName}`,
      );
  }
}

/**
 * Converts a protobuf-es {@link EntryMessage}, {@link HardStateMessage} or
 * {@link SnapshotMessage} to the public {@link Entry}, {@link HardState} or
 * {@link Snapshot} that `WAL.save` and `WAL.saveSnapshot` take. Absent fields read as their
 * defaults (0, empty data), as etcd reads them. An entry type outside the enum, which
 * protobuf-es's `fromBinary` keeps among the unknown fields, is kept as its number, as the
 * WAL's own reader does. A snapshot's `confState` is kept when the message has one.
 *
 * The entry's `data` is the message's `Data`, not a copy: leave it unchanged until the save
 * that takes it has settled.
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { EntrySchema, EntryType, fromMessage } from "@raftlog/wal/pb";
 *
 * const msg = create(EntrySchema, { Term: 3n, Index: 9n, Type: EntryType.EntryNormal });
 * const entry = fromMessage(EntrySchema, msg); // { term: 3n, index: 9n, type: 0, data: (empty) }
 * ```
 */
export function fromMessage(schema: typeof EntrySchema, message: EntryMessage): Entry;
/** Converts a {@link HardStateMessage} to a public {@link HardState}. */
export function fromMessage(schema: typeof HardStateSchema, message: HardStateMessage): HardState;
/** Converts a {@link SnapshotMessage} to a public {@link Snapshot}, with its `confState`. */
export function fromMessage(schema: typeof SnapshotSchema, message: SnapshotMessage): Snapshot;
export function fromMessage(
  schema: typeof EntrySchema | typeof HardStateSchema | typeof SnapshotSchema,
  message: EntryMessage | HardStateMessage | SnapshotMessage,
): Entry | HardState | Snapshot {
  if (message.$typeName !== schema.typeName) {
    throw new TypeError(
      `fromMessage: a ${message.$typeName} message given with the ${schema.typeName} schema`,
    );
  }
  switch (message.$typeName) {
    case "raftpb.Entry":
      return {
        term: message.Term,
        index: message.Index,
        type: entryType(message),
        data: message.Data,
      };
    case "raftpb.HardState":
      return { term: message.term, vote: message.vote, commit: message.commit };
    case "walpb.Snapshot": {
      const c = message.confState;
      if (c === undefined) return { index: message.index, term: message.term };
      const confState = {
        voters: c.voters,
        learners: c.learners,
        votersOutgoing: c.votersOutgoing,
        learnersNext: c.learnersNext,
        autoLeave: c.autoLeave,
      };
      return { index: message.index, term: message.term, confState };
    }
    default:
      throw new TypeError(`fromMessage: unsupported schema ${schema.typeName}`);
  }
}

/**
 * An entry's type. raftpb.EntryType is a closed (proto2) enum, so protobuf-es's `fromBinary`
 * keeps a number outside it among the unknown fields and leaves `Type` at 0; the WAL keeps
 * such a number, and so does this.
 */
function entryType(m: EntryMessage): number {
  if (m.$unknown === undefined || isFieldSet(m, EntrySchema.field.Type)) return m.Type;
  let type: number = m.Type;
  for (const u of m.$unknown) {
    if (u.no === 1 && u.wireType === WireType.Varint) type = new BinaryReader(u.data).int32();
  }
  return type;
}

// ---------------------------------------------------------------------------------------
// etcd's entries

/**
 * An `etcdserverpb.InternalRaftRequest`, what etcd 3.x puts in a normal entry: a `header`
 * (request `ID`, `username`, `auth_revision`) and one request, e.g. `put` (`key`, `value`,
 * `lease`...), `txn`, `deleteRange`, `compaction`, `leaseGrant`, `authUserAdd`... Generated
 * from etcd's raft_internal.proto (etcd 3.7.1, with 3.4 and 3.5's `v2`).
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { InternalRaftRequestSchema, type InternalRaftRequestMessage } from "@raftlog/wal/pb";
 *
 * const m: InternalRaftRequestMessage = create(InternalRaftRequestSchema, {
 *   header: { ID: 7n },
 *   put: { key: new TextEncoder().encode("k"), value: new TextEncoder().encode("v") },
 * });
 * ```
 */
export type InternalRaftRequestMessage = etcdserverpb.InternalRaftRequest;

/**
 * A v2 `etcdserverpb.Request` (proto2), what etcd 3.4 and 3.5 put in a normal entry for the
 * v2 store: `Method` (`PUT`, `DELETE`, `SYNC`...), `Path`, `Val` and the v2 options.
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { RequestSchema, type RequestMessage } from "@raftlog/wal/pb";
 *
 * const m: RequestMessage = create(RequestSchema, { Method: "PUT", Path: "/0/version", Val: "3.4.0" });
 * ```
 */
export type RequestMessage = etcdserverpbV2.Request;

/**
 * The `etcdserverpb.Metadata` etcd keeps in a WAL's metadata record: `NodeID` and
 * `ClusterID`.
 *
 * @example
 * ```ts
 * import { fromBinary } from "@bufbuild/protobuf";
 * import { WAL } from "@raftlog/wal";
 * import { MetadataSchema } from "@raftlog/wal/pb";
 *
 * const wal = await WAL.openForRead("/var/lib/etcd/member/wal");
 * const { metadata } = await wal.readAll();
 * await wal.close();
 * const { NodeID, ClusterID } = fromBinary(MetadataSchema, metadata);
 * ```
 */
export type MetadataMessage = etcdserverpbV2.Metadata;

/**
 * The schema of `etcdserverpb.InternalRaftRequest` ({@link InternalRaftRequestMessage}).
 *
 * @example
 * ```ts
 * import { toJson } from "@bufbuild/protobuf";
 * import { decodeEntry, InternalRaftRequestSchema } from "@raftlog/wal/pb";
 *
 * const d = decodeEntry({ term: 2n, index: 5n, type: 0, data: new Uint8Array([0xa2, 0x06, 0x02, 0x08, 0x07]) });
 * if (d.kind === "internalRaftRequest") console.log(toJson(InternalRaftRequestSchema, d.message));
 * ```
 */
export const InternalRaftRequestSchema: GenMessage<InternalRaftRequestMessage> =
  etcdserverpb.InternalRaftRequestSchema;

/**
 * The schema of the v2 `etcdserverpb.Request` ({@link RequestMessage}).
 *
 * @example
 * ```ts
 * import { create, toBinary } from "@bufbuild/protobuf";
 * import { RequestSchema } from "@raftlog/wal/pb";
 *
 * const bytes = toBinary(RequestSchema, create(RequestSchema, { Method: "DELETE", Path: "/a" }));
 * ```
 */
export const RequestSchema: GenMessage<RequestMessage> = etcdserverpbV2.RequestSchema;

/**
 * The schema of `etcdserverpb.Metadata` ({@link MetadataMessage}).
 *
 * @example
 * ```ts
 * import { create, toBinary } from "@bufbuild/protobuf";
 * import { MetadataSchema } from "@raftlog/wal/pb";
 *
 * const metadata = toBinary(MetadataSchema, create(MetadataSchema, { NodeID: 1n, ClusterID: 2n }));
 * ```
 */
export const MetadataSchema: GenMessage<MetadataMessage> = etcdserverpbV2.MetadataSchema;

/**
 * What an etcd entry holds ({@link decodeEntry}): `kind` names the message. `unknown` is a
 * normal entry that is neither an InternalRaftRequest nor a v2 Request (etcd-dump-logs
 * prints `???` for it), a conf change entry whose data does not decode, or an entry type
 * outside raft's three.
 */
export type DecodedEntry =
  | { kind: "internalRaftRequest"; message: InternalRaftRequestMessage }
  | { kind: "request"; message: RequestMessage }
  | { kind: "confChange"; message: ConfChangeMessage }
  | { kind: "confChangeV2"; message: ConfChangeV2Message }
  | { kind: "unknown"; message: null };

/**
 * Decodes an etcd entry: which message it holds is decided as etcd-dump-logs decides it (a
 * normal entry is an InternalRaftRequest when its bytes unmarshal as one by the rules of
 * etcd's Go code, else a v2 Request when they unmarshal as that), and the message is
 * protobuf-es's `fromBinary` of the generated schema. Throws a `WalError` `DECODE` where
 * protobuf-es cannot read what etcd's Go code can: a proto3 string field that is not UTF-8,
 * or an unknown group whose end tag names another field.
 *
 * @example Print the keys a Deno service's etcd WAL put
 * ```ts
 * import { WAL } from "@raftlog/wal";
 * import { decodeEntry } from "@raftlog/wal/pb";
 *
 * const wal = await WAL.openForRead("/var/lib/etcd/member/wal");
 * for await (const e of wal.entries()) {
 *   const d = decodeEntry(e);
 *   if (d.kind === "internalRaftRequest" && d.message.put !== undefined) {
 *     console.log(e.index, new TextDecoder().decode(d.message.put.key));
 *   }
 * }
 * await wal.close();
 * ```
 */
export function decodeEntry(entry: Entry): DecodedEntry {
  return decode(entry);
}
