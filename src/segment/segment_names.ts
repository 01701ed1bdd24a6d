/**
 * Segment file names: `%016x-%016x.wal`, the sequence number then the raft index the segment
 * starts at. Other names in a WAL directory are ignored.
 *
 * @module
 */

/** A parsed segment name. */
export interface SegmentName {
  /** The file name, e.g. `0000000000000001-0000000000000010.wal`. */
  name: string;
  /** The segment's sequence number. */
  seq: bigint;
  /** The raft index the segment starts at (last saved index + 1 at the cut). */
  index: bigint;
}

const NAME = /^([0-9a-fA-F]{16})-([0-9a-fA-F]{16})\.wal$/;

/** `v` as 16 lowercase hex digits, as etcd names segments and `.snap` files. */
export function hex16(v: bigint): string {
  return v.toString(16).padStart(16, "0");
}

/** Formats a segment name. */
export function segmentName(seq: bigint, index: bigint): string {
  return `${hex16(seq)}-${hex16(index)}.wal`;
}

/** Parses a segment name, or returns null when `name` is not one. */
export function parseSegmentName(name: string): SegmentName | null {
  const m = NAME.exec(name);
  if (m === null) return null;
  return { name, seq: BigInt("0x" + m[1]), index: BigInt("0x" + m[2]) };
}

/** The segment names among `names`, sorted by name (and so by sequence number). */
export function segmentNames(names: readonly string[]): SegmentName[] {
  const out: SegmentName[] = [];
  for (const n of names) {
    const p = parseSegmentName(n);
    if (p !== null) out.push(p);
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The position of the last segment that starts at or before `index`: replay from a snapshot
 * at `index` begins there. -1 when every segment starts after it.
 */
export function searchIndex(segments: readonly SegmentName[], index: bigint): number {
  for (let i = segments.length - 1; i >= 0; i--) {
    if (index >= segments[i].index) return i;
  }
  return -1;
}

/** True when the sequence numbers are consecutive. */
export function isConsecutive(segments: readonly SegmentName[]): boolean {
  for (let i = 1; i < segments.length; i++) {
    if (segments[i].seq !== segments[i - 1].seq + 1n) return false;
  }
  return true;
}
