/**
 * Go's two ways of quoting bytes, as etcd's tools print them: `strconv.Quote` (`%q`, what
 * etcd-dump-logs uses for v2 paths and values) and the protobuf text format's string
 * escaping (what gogoproto's `String()` uses for string and bytes fields).
 *
 * @module
 */

const HEX = "0123456789abcdef";

/** Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and U+0020. */
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/**
 * Go's `strconv.Quote` of a byte string: UTF-8 runes that Go counts printable stay as they
 * are, `\a \b \f \n \r \t \v \\ \"` are escaped, other control runes become `\xNN`, other
 * non-printable runes `\uNNNN` or `\UNNNNNNNN`, and each byte that is not valid UTF-8 `\xNN`.
 *
 * @example
 * ```ts ignore
 * goQuote(new Uint8Array([0x61, 0x0a, 0xff])); // "\"a\\n\\xff\""
 * ```
 */
export function goQuote(b: Uint8Array): string {
  let out = '"';
  let i = 0;
  while (i < b.length) {
    const [rune, size] = decodeRune(b, i);
    if (size === 0) {
      out += "\\x" + HEX[b[i] >> 4] + HEX[b[i] & 15];
      i++;
      continue;
    }
    i += size;
    out += quoteRune(rune);
  }
  return out + '"';
}

function quoteRune(r: number): string {
  switch (r) {
    case 0x22:
      return '\\"';
    case 0x5c:
      return "\\\\";
    case 0x07:
      return "\\a";
    case 0x08:
      return "\\b";
    case 0x0c:
      return "\\f";
    case 0x0a:
      return "\\n";
    case 0x0d:
      return "\\r";
    case 0x09:
      return "\\t";
    case 0x0b:
      return "\\v";
  }
  const s = String.fromCodePoint(r);
  if (r >= 0x20 && PRINTABLE.test(s)) return s;
  if (r < 0x20 || r === 0x7f) return "\\x" + HEX[r >> 4] + HEX[r & 15];
  if (r < 0x10000) return "\\u" + r.toString(16).padStart(4, "0");
  return "\\U" + r.toString(16).padStart(8, "0");
}

/**
 * The rune at `b[i]` and its length in bytes; length 0 when the bytes there are not valid
 * UTF-8 (Go then takes one byte as the error rune).
 */
function decodeRune(b: Uint8Array, i: number): [number, number] {
  const c = b[i];
  if (c < 0x80) return [c, 1];
  const cont = (k: number) => i + k < b.length && (b[i + k] & 0xc0) === 0x80;
  if (c >= 0xc2 && c < 0xe0 && cont(1)) return [((c & 0x1f) << 6) | (b[i + 1] & 0x3f), 2];
  if (c >= 0xe0 && c < 0xf0 && cont(1) && cont(2)) {
    const r = ((c & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f);
    if (r >= 0x800 && (r < 0xd800 || r > 0xdfff)) return [r, 3];
    return [0, 0];
  }
  if (c >= 0xf0 && c < 0xf5 && cont(1) && cont(2) && cont(3)) {
    const r = ((c & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) |
      (b[i + 3] & 0x3f);
    if (r >= 0x10000 && r <= 0x10ffff) return [r, 4];
  }
  return [0, 0];
}

/**
 * The protobuf text format's quoting of a string or bytes field, as Go's (and gogoproto's)
 * text marshaler writes it: byte by byte, `\n \r \t \" \\` escaped, printable ASCII as is,
 * every other byte as a three-digit octal escape (`\001`, `\377`; UTF-8 too).
 *
 * @example
 * ```ts ignore
 * protoTextQuote(new Uint8Array([1, 0x22, 0xff])); // "\"\\001\\\"\\377\""
 * ```
 */
export function protoTextQuote(b: Uint8Array): string {
  let out = '"';
  for (const c of b) {
    switch (c) {
      case 0x0a:
        out += "\\n";
        break;
      case 0x0d:
        out += "\\r";
        break;
      case 0x09:
        out += "\\t";
        break;
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += "\\\\";
        break;
      default:
        out += c >= 0x20 && c < 0x7f
          ? String.fromCharCode(c)
          : "\\" + (c >> 6) + ((c >> 3) & 7) + (c & 7);
    }
  }
  return out + '"';
}
