/**
 * Lowercase hex of bytes, as the `wal` tool prints data (and etcd-dump-logs feeds its stream
 * decoder).
 *
 * @module
 */

/** `bytes` as lowercase hex, two digits a byte. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const x of bytes) s += (x < 16 ? "0" : "") + x.toString(16);
  return s;
}
