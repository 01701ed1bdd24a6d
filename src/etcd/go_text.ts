/**
 * Go's compact protobuf text format, as the `String()` of etcd's gogoproto messages prints
 * them (`header:<ID:7 > put:<key:"k" value:"v" > `), from a {@link GoMessage} and its
 * generated descriptor: fields in declaration order, each `name:value ` with the .proto's
 * field name, messages as `name:<...> `, enums by name, strings and bytes escaped as
 * {@link protoTextQuote} does, unknown fields last as `number:value ` (in proto2 messages). What Go skips is
 * skipped: proto3 fields at their zero value, unset message fields, and proto2 fields that
 * gogoproto makes plain values (`(gogoproto.nullable) = false`) when zero. A field added
 * to a .proto prints with no change here.
 *
 * @module
 */

import {
  type DescEnum,
  type DescField,
  getOption,
  hasOption,
  ScalarType,
} from "@bufbuild/protobuf";
import { Edition, FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import { nullable } from "../../gen/gogoproto/gogo_pb.ts";
import { Cursor, emptyGoMessage, type GoMessage, type GoValue } from "./go_wire.ts";
import { goQuote, protoTextQuote } from "./go_quote.ts";

/**
 * The compact text of `m`, as Go's `proto.CompactTextString` prints it (each field followed
 * by a space; an empty message is "").
 */
export function goText(m: GoMessage): string {
  let out = "";
  for (const member of m.desc.members) {
    if (member.kind === "oneof") {
      const f = m.oneofs.get(member);
      if (f !== undefined) out += f.name + ":" + value(f, m.values.get(f.number)![0]) + " ";
      continue;
    }
    const f = member;
    const vs = m.values.get(f.number);
    if (f.fieldKind === "list") {
      for (const v of vs ?? []) out += f.name + ":" + value(f, v) + " ";
      continue;
    }
    if (f.oneof !== undefined) continue; // printed with its oneof
    const v = vs?.[0];
    if (f.fieldKind === "message") {
      if (v !== undefined) out += f.name + ":" + value(f, v) + " ";
      else if (plainInGo(f)) out += f.name + ":<" + goText(emptyGoMessage(f.message)) + "> ";
      continue;
    }
    if (v === undefined) continue;
    const implicit = f.presence === FeatureSet_FieldPresence.IMPLICIT;
    const isByteSlice = f.fieldKind === "scalar" && f.scalar === ScalarType.BYTES;
    // proto3 (implicit presence) and gogoproto's plain proto2 fields skip zero values (as Go
    // holds them: an int32 keeps 32 bits); Go's proto2 pointers and []byte print when set.
    if ((implicit || (plainInGo(f) && !isByteSlice)) && isZero(f, v)) continue;
    out += f.name + ":" + value(f, v) + " ";
  }
  // etcd 3.4's Go structs keep unknown fields (XXX_unrecognized) in its proto2 messages
  // only (raftpb, walpb, the v2 Request); its proto3 ones drop them.
  if (m.desc.file.edition === Edition.EDITION_PROTO2) {
    for (const u of m.unknown) out += unknownText(u);
  }
  return out;
}

const plain = new WeakMap<DescField, boolean>();

/** Whether gogoproto makes `f` a plain Go value rather than a pointer (read once per field). */
function plainInGo(f: DescField): boolean {
  let p = plain.get(f);
  if (p === undefined) {
    p = hasOption(f, nullable) && !getOption(f, nullable);
    plain.set(f, p);
  }
  return p;
}

function isZero(f: DescField, v: GoValue): boolean {
  if (v instanceof Uint8Array) return v.length === 0;
  if (typeof v === "number") return v === 0;
  if (typeof v !== "bigint") return false;
  const t = f.fieldKind === "enum" ? ScalarType.INT32 : f.scalar;
  switch (t) {
    case ScalarType.INT32:
    case ScalarType.UINT32:
    case ScalarType.SINT32:
      return (v & 0xffffffffn) === 0n; // Go's int32 and uint32 keep the low 32 bits
    default:
      return v === 0n;
  }
}

/** Go's int32 of a raw varint: the low 32 bits, signed. */
function int32Of(v: bigint | number): number {
  return Number(BigInt(v) & 0xffffffffn) | 0;
}

/** Go's int64 of a raw 64-bit value. */
function int64Of(v: bigint | number): bigint {
  const u = BigInt(v);
  return u >= 1n << 63n ? u - (1n << 64n) : u;
}

function value(f: DescField, v: GoValue): string {
  if (typeof v === "object" && !(v instanceof Uint8Array)) return "<" + goText(v) + ">";
  const e = f.fieldKind === "enum" || (f.fieldKind === "list" && f.listKind === "enum")
    ? f.enum
    : undefined;
  if (e !== undefined) return enumName(e, int32Of(v as bigint));
  return scalarText(f.scalar ?? ScalarType.BYTES, v);
}

function enumName(e: DescEnum, n: number): string {
  return e.values.find((x) => x.number === n)?.name ?? String(n);
}

const floatView = new DataView(new ArrayBuffer(8));

/** A scalar as Go's `fmt` prints it. */
function scalarText(t: ScalarType, v: bigint | number | Uint8Array): string {
  if (v instanceof Uint8Array) return protoTextQuote(v);
  switch (t) {
    case ScalarType.BOOL:
      return v !== 0n ? "true" : "false";
    case ScalarType.INT32:
    case ScalarType.SFIXED32:
      return String(int32Of(v));
    case ScalarType.UINT32:
      return String(int32Of(v) >>> 0);
    case ScalarType.INT64:
    case ScalarType.SFIXED64:
      return String(int64Of(v));
    case ScalarType.SINT32: {
      const u = int32Of(v) >>> 0;
      return String((u >>> 1) ^ -(u & 1));
    }
    case ScalarType.SINT64: {
      const u = BigInt(v);
      return String((u >> 1n) ^ -(u & 1n));
    }
    case ScalarType.FLOAT:
      floatView.setUint32(0, Number(v), true);
      return goFloat(floatView.getFloat32(0, true));
    case ScalarType.DOUBLE:
      floatView.setBigUint64(0, BigInt(v), true);
      return goFloat(floatView.getFloat64(0, true));
    default:
      return String(v); // uint64, fixed64, fixed32
  }
}

/** Go's `%v` of a float for the common cases (no etcd entry message has a float field). */
function goFloat(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "+Inf" : "-Inf";
  return String(x).replace(/e([+-])(\d)$/, "e$10$2");
}

/**
 * Unknown fields as Go's text marshaler prints them (`writeUnknownStruct`): each
 * `number:value `, bytes quoted as `%q` does, a group as `number { ... } `.
 */
function unknownText(raw: Uint8Array): string {
  const c = new Cursor(raw, 0, raw.length);
  let out = "";
  while (c.pos < c.end) {
    const [wire] = c.tag();
    const no = (BigInt(c.hi) << 29n) | BigInt(c.lo >>> 3); // Go prints the uint64 tag >> 3
    switch (wire) {
      case 0:
        out += `${no}:${c.varint()} `;
        break;
      case 1:
        out += `${no}:${c.fixed(8)} `;
        break;
      case 5:
        out += `${no}:${c.fixed(4)} `;
        break;
      case 2: {
        const [s, e] = c.lengthDelimited();
        out += `${no}:${goQuote(raw.subarray(s, e))} `;
        break;
      }
      case 3:
        out += `${no} { `;
        break;
      case 4:
        out += "} ";
        break;
      default:
        return out; // go_wire.ts rejects other wire types before anything is printed
    }
  }
  return out;
}
