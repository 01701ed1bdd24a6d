/**
 * Reads protobuf bytes the way etcd's gogoproto-generated Go `Unmarshal` does, walking the
 * generated descriptors: what it rejects (a known field with the wrong wire type, a truncated
 * value, a varint longer than ten bytes, an end-group tag, field number 0) fails here too,
 * and what it accepts is kept as Go holds it (the last value of a singular field, merged
 * message fields, packed or unpacked repeated scalars, unknown fields in order, strings as
 * raw bytes). etcd-dump-logs tells an entry's kind by which message unmarshals without error,
 * so only this reading gives the same kinds; protobuf-es's `fromBinary` reads scalars
 * whatever their wire type and rejects proto3 strings that are not UTF-8, which Go accepts.
 *
 * @module
 */

import { type DescField, type DescMessage, type DescOneof, ScalarType } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { WalError } from "../errors.ts";

/** One value as Go holds it: varints and fixed64 as raw bigint, fixed32 as number. */
export type GoValue = bigint | number | Uint8Array | GoMessage;

/** A message as etcd's Go code holds it after `Unmarshal`. */
export interface GoMessage {
  /** Its schema. */
  readonly desc: DescMessage;
  /** Values by field number: one for a singular field (the last read), all for a repeated one. */
  readonly values: Map<number, GoValue[]>;
  /** For each oneof that is set, the field last read into it. */
  readonly oneofs: Map<DescOneof, DescField>;
  /** The unknown fields, tag and value, in the order read (Go's `XXX_unrecognized`). */
  readonly unknown: Uint8Array[];
}

/** Why Go's `Unmarshal` would fail, and where (a byte offset into the bytes given). */
export class GoDecodeError extends Error {
  /** Offset of the field or value at fault. */
  readonly offset: number;
  /** Builds the error. */
  constructor(message: string, offset: number) {
    super(message);
    this.name = "GoDecodeError";
    this.offset = offset;
  }
}

/** An empty message of `desc` (Go's zero struct). */
export function emptyGoMessage(desc: DescMessage): GoMessage {
  return { desc, values: new Map(), oneofs: new Map(), unknown: [] };
}

/**
 * Unmarshals `bytes` as a `desc` message by gogoproto's rules; throws {@link GoDecodeError}
 * where Go's `Unmarshal` returns an error.
 */
export function readGo(desc: DescMessage, bytes: Uint8Array): GoMessage {
  const m = emptyGoMessage(desc);
  readInto(m, bytes, 0, bytes.length, 0);
  return m;
}

/** Whether Go's `Unmarshal` accepts `bytes` as a `desc` message. */
export function goAccepts(desc: DescMessage, bytes: Uint8Array): boolean {
  try {
    readGo(desc, bytes);
    return true;
  } catch (e) {
    if (e instanceof GoDecodeError) return false;
    throw e;
  }
}

/** The field of `desc` named `name` (the .proto's name); throws when there is none. */
export function fieldNamed(desc: DescMessage, name: string): DescField {
  const f = desc.fields.find((x) => x.name === name);
  if (f === undefined) throw new Error(`${desc.typeName} has no field ${name}`);
  return f;
}

/** The varint or fixed64 Go holds in scalar field `name` of `m` (0 when unset). */
export function goUint(m: GoMessage, name: string): bigint {
  const v = m.values.get(fieldNamed(m.desc, name).number)?.[0];
  return typeof v === "bigint" ? v : 0n;
}

/** The bytes Go holds in string or bytes field `name` of `m` (empty when unset). */
export function goBytes(m: GoMessage, name: string): Uint8Array {
  const v = m.values.get(fieldNamed(m.desc, name).number)?.[0];
  return v instanceof Uint8Array ? v : new Uint8Array(0);
}

const WIRE_VARINT: number = WireType.Varint;
const WIRE_FIXED64: number = WireType.Bit64;
const WIRE_LEN: number = WireType.LengthDelimited;
const WIRE_START_GROUP: number = WireType.StartGroup;
const WIRE_END_GROUP: number = WireType.EndGroup;
const WIRE_FIXED32: number = WireType.Bit32;
/**
 * Go's Unmarshal has no nesting limit; this one bounds recursion on hostile input, far past
 * any real entry (a txn of txns). Past it the read fails outright (a `WalError`), rather
 * than as a {@link GoDecodeError} that would quietly make the entry another kind.
 */
const MAX_DEPTH = 1000;

const fieldMaps = new WeakMap<DescMessage, Map<number, DescField>>();

function fieldsOf(desc: DescMessage): Map<number, DescField> {
  let m = fieldMaps.get(desc);
  if (m === undefined) {
    m = new Map(desc.fields.map((f) => [f.number, f]));
    fieldMaps.set(desc, m);
  }
  return m;
}

/** The wire type Go's code expects for a scalar (and for each element of a repeated one). */
function scalarWireType(t: ScalarType): number {
  switch (t) {
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return WIRE_FIXED64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return WIRE_FIXED32;
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return WIRE_LEN;
    default:
      return WIRE_VARINT;
  }
}

/**
 * A cursor over `buf` up to `end`. Varints are read into two uint32 halves with number
 * arithmetic and only then made a bigint: Node 20's optimizing compiler aborts the process
 * on a BigInt loop with `BigInt.asUintN(64, …)` here (a V8 TurboFan bug).
 */
export class Cursor {
  /** The low 32 bits of the last varint read. */
  lo = 0;
  /** The high 32 bits of the last varint read. */
  hi = 0;

  /** Reads `buf[pos:end]`. */
  constructor(readonly buf: Uint8Array, public pos: number, readonly end: number) {}

  /** Go's varint loop: at most ten bytes, the low 64 bits kept (in {@link lo}, {@link hi}). */
  readVarint(): void {
    let lo = 0;
    let hi = 0;
    for (let i = 0;; i++) {
      if (i === 10) throw new GoDecodeError("integer overflow", this.pos);
      if (this.pos >= this.end) throw new GoDecodeError("unexpected EOF", this.pos);
      const b = this.buf[this.pos++];
      const bits = b & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= bits << 28; // the low 4 bits; the shift drops the rest
        hi = bits >>> 4;
      } else hi |= bits << (7 * i - 32); // past bit 63 the shift drops them, as Go's does
      if (b < 0x80) break;
    }
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** A varint as an unsigned 64-bit value. */
  varint(): bigint {
    this.readVarint();
    return this.hi === 0 ? BigInt(this.lo) : (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  /** A field's tag: its wire type and Go's `int32(wire >> 3)` field number. */
  tag(): [wire: number, no: number] {
    this.readVarint();
    return [this.lo & 7, ((this.hi << 29) | (this.lo >>> 3)) | 0];
  }

  /** The bounds of a length-delimited value. */
  lengthDelimited(): [number, number] {
    const at = this.pos;
    this.readVarint();
    // Go reads the length as an int: past 2^63 it is negative
    if (this.hi >= 0x80000000) throw new GoDecodeError("invalid length", at);
    if (this.hi !== 0 || this.lo > this.end - this.pos) {
      throw new GoDecodeError("unexpected EOF", at);
    }
    const start = this.pos;
    this.pos += this.lo;
    return [start, this.pos];
  }

  /** A fixed32 (as a number) or fixed64 (as a bigint). */
  fixed(n: 4 | 8): number | bigint {
    if (this.end - this.pos < n) throw new GoDecodeError("unexpected EOF", this.pos);
    const view = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, n);
    this.pos += n;
    return n === 4 ? view.getUint32(0, true) : view.getBigUint64(0, true);
  }

  /** One value of `wire` type (not a group). */
  scalar(wire: number): GoValue {
    switch (wire) {
      case WIRE_VARINT:
        return this.varint();
      case WIRE_FIXED64:
        return this.fixed(8);
      case WIRE_FIXED32:
        return this.fixed(4);
      default: {
        const [s, e] = this.lengthDelimited();
        return this.buf.subarray(s, e);
      }
    }
  }
}

function readInto(m: GoMessage, buf: Uint8Array, start: number, end: number, depth: number) {
  if (depth > MAX_DEPTH) {
    throw new WalError(
      "DECODE",
      `a message nested more than ${MAX_DEPTH} deep at offset ${start}: not read`,
    );
  }
  const fields = fieldsOf(m.desc);
  const c = new Cursor(buf, start, end);
  while (c.pos < end) {
    const at = c.pos;
    const [wire, no] = c.tag();
    if (wire === WIRE_END_GROUP) {
      throw new GoDecodeError(`${m.desc.name}: wiretype end group for non-group`, at);
    }
    if (no <= 0) throw new GoDecodeError(`${m.desc.name}: illegal tag ${no}`, at);
    const f = fields.get(no);
    if (f === undefined) {
      skipField(c, wire, at);
      m.unknown.push(buf.subarray(at, c.pos));
      continue;
    }
    readField(m, f, c, wire, at, depth);
  }
}

function wrongWire(m: GoMessage, f: DescField, wire: number, at: number): GoDecodeError {
  return new GoDecodeError(`${m.desc.name}: wrong wireType = ${wire} for field ${f.name}`, at);
}

function readField(m: GoMessage, f: DescField, c: Cursor, wire: number, at: number, d: number) {
  switch (f.fieldKind) {
    case "scalar":
    case "enum": {
      const want = f.fieldKind === "enum" ? WIRE_VARINT : scalarWireType(f.scalar);
      if (wire !== want) throw wrongWire(m, f, wire, at);
      m.values.set(f.number, [c.scalar(wire)]);
      if (f.oneof !== undefined) m.oneofs.set(f.oneof, f);
      return;
    }
    case "message": {
      if (wire !== WIRE_LEN) throw wrongWire(m, f, wire, at);
      const [s, e] = c.lengthDelimited();
      // A repeated singular field merges into the message already read; a oneof gets a new
      // one each time, as Go's generated code does.
      const old = f.oneof === undefined ? m.values.get(f.number)?.[0] : undefined;
      const child = old !== undefined ? old as GoMessage : emptyGoMessage(f.message);
      readInto(child, c.buf, s, e, d + 1);
      m.values.set(f.number, [child]);
      if (f.oneof !== undefined) m.oneofs.set(f.oneof, f);
      return;
    }
    case "list": {
      const list = m.values.get(f.number) ?? [];
      m.values.set(f.number, list);
      if (f.listKind === "message") {
        if (wire !== WIRE_LEN) throw wrongWire(m, f, wire, at);
        const [s, e] = c.lengthDelimited();
        const child = emptyGoMessage(f.message);
        readInto(child, c.buf, s, e, d + 1);
        list.push(child);
        return;
      }
      const want = f.listKind === "enum" ? WIRE_VARINT : scalarWireType(f.scalar);
      if (wire === want) {
        list.push(c.scalar(wire));
      } else if (wire === WIRE_LEN && want !== WIRE_LEN) {
        const [s, e] = c.lengthDelimited();
        const packed = new Cursor(c.buf, s, e);
        while (packed.pos < e) list.push(packed.scalar(want));
      } else {
        throw wrongWire(m, f, wire, at);
      }
      return;
    }
    case "map":
      // No message that etcd puts in an entry has a map field; a map would need Go's
      // sorted-key printing. Kept as unknown bytes rather than misread.
      skipField(c, wire, at);
      m.unknown.push(c.buf.subarray(at, c.pos));
      return;
  }
}

/**
 * Go's generated `skip` function: one field's value, groups nested. (etcd 3.4.23's is
 * recursive and 3.5's counts depth; they accept the same bytes.)
 */
function skipField(c: Cursor, wire: number, at: number) {
  let depth = 0;
  for (;;) {
    switch (wire) {
      case WIRE_VARINT:
        c.varint();
        break;
      case WIRE_FIXED64:
        c.fixed(8);
        break;
      case WIRE_LEN:
        c.lengthDelimited();
        break;
      case WIRE_START_GROUP:
        depth++;
        break;
      case WIRE_END_GROUP:
        if (depth === 0) throw new GoDecodeError("unexpected end of group", at);
        depth--;
        break;
      case WIRE_FIXED32:
        c.fixed(4);
        break;
      default:
        throw new GoDecodeError(`illegal wireType ${wire}`, at);
    }
    if (depth === 0) return;
    if (c.pos >= c.end) throw new GoDecodeError("unexpected EOF", c.pos);
    wire = c.tag()[0];
  }
}
