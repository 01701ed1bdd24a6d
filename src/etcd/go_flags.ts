/**
 * Go's `flag` package syntax, for commands that take an etcd tool's flags as it does:
 * `-name value`, `-name=value`, `--name value`, `--name=value`, a boolean as `-name` or
 * `-name=false`; parsing stops at the first argument that is not a flag (or after `--`), and
 * everything from there on is positional.
 *
 * @module
 */

import { WalError } from "../errors.ts";

/** A flag a command accepts. */
export interface GoFlag {
  /** Its name, without dashes. */
  name: string;
  /** A boolean flag takes no separate value. */
  kind: "string" | "uint64" | "bool";
}

/** Parsed flags: each given flag's last value, and the positional arguments. */
export interface GoFlags {
  /** The values given, by name (booleans as "true" or "false"). */
  values: Map<string, string>;
  /** Arguments after the flags. */
  positional: string[];
  /** `-h`, `-help` or their `--` forms was given. */
  help: boolean;
}

function invalid(msg: string): WalError {
  return new WalError("INVALID_ARGUMENT", msg);
}

/** Parses `argv` as Go's `flag.Parse` would with `flags` defined. */
export function parseGoFlags(argv: readonly string[], flags: readonly GoFlag[]): GoFlags {
  const byName = new Map(flags.map((f) => [f.name, f]));
  const values = new Map<string, string>();
  let help = false;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a.length < 2 || a[0] !== "-") break; // "-" alone is positional too
    let body = a.slice(1);
    if (body[0] === "-") {
      body = body.slice(1);
      if (body === "") {
        i++; // "--" ends the flags
        break;
      }
    }
    if (body[0] === "-" || body[0] === "=") throw invalid(`bad flag syntax: ${a}`);
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const flag = byName.get(name);
    if (flag === undefined) {
      if (name === "h" || name === "help") {
        help = true;
        continue;
      }
      throw invalid(`flag provided but not defined: -${name}`);
    }
    let value: string;
    if (flag.kind === "bool") {
      value = eq < 0 ? "true" : parseBool(body.slice(eq + 1), name);
    } else if (eq >= 0) {
      value = body.slice(eq + 1);
    } else {
      if (i + 1 >= argv.length) throw invalid(`flag needs an argument: -${name}`);
      value = argv[++i];
    }
    if (flag.kind === "uint64") value = String(parseGoUint64(value, name));
    values.set(name, value);
  }
  return { values, positional: argv.slice(i), help };
}

function parseBool(v: string, name: string): string {
  if (["1", "t", "T", "true", "TRUE", "True"].includes(v)) return "true";
  if (["0", "f", "F", "false", "FALSE", "False"].includes(v)) return "false";
  throw invalid(`invalid boolean value "${v}" for -${name}: parse error`);
}

/**
 * Go's `strconv.ParseUint(v, 0, 64)`, as `flag.Uint64` parses: decimal, `0x` hex, `0o` or
 * leading-0 octal, `0b` binary, `_` between digits.
 */
function parseGoUint64(v: string, name: string): bigint {
  const bad = () => invalid(`invalid value "${v}" for flag -${name}: parse error`);
  let s = v;
  let base = 10;
  let prefixed = true;
  if (/^0[xX]/.test(s)) [base, s] = [16, s.slice(2)];
  else if (/^0[oO]/.test(s)) [base, s] = [8, s.slice(2)];
  else if (/^0[bB]/.test(s)) [base, s] = [2, s.slice(2)];
  else if (s.length > 1 && s[0] === "0") [base, s] = [8, s.slice(1)];
  else prefixed = false;
  const d = { 2: "[01]", 8: "[0-7]", 10: "[0-9]", 16: "[0-9a-fA-F]" }[base];
  // Go's underscoreOK: "_" only between digits, or right after a base prefix.
  if (!new RegExp(`^${prefixed ? "_?" : ""}${d}(_?${d})*$`).test(s)) throw bad();
  s = s.replace(/_/g, "");
  let n = 0n;
  for (const ch of s) n = n * BigInt(base) + BigInt(parseInt(ch, base));
  if (n >= 1n << 64n) {
    throw invalid(`invalid value "${v}" for flag -${name}: value out of range`);
  }
  return n;
}
