/**
 * Corruption matrix. A small WAL (2 KiB segments, three segments) is written through the
 * API, then damaged every way a crash or a bad disk can damage it: truncated at every byte
 * offset, one bit flipped at every byte of every segment, 512-byte sectors zeroed, garbage
 * after the last record, length words far beyond the file, a broken crc chain, missing
 * segments and sequence gaps, stray files, an empty directory, a file in the way, an
 * unreadable directory. For every case, WAL.open + readAll (write mode),
 * WAL.openForRead + readAll (read mode), verify and repair (then a reopen) must each end in
 * the expected WalError code or a clean result: never another exception, a hang, or an
 * allocation sized by a corrupt length.
 *
 * The second part is a differential against etcd 3.4's own Go wal package (compat/etcd34,
 * subcommand `classify`): for a sample of the same corrupted bytes, etcd's read mode, write
 * mode, Verify and Repair must reach the same verdict as ours, or differ only as README
 * "Where this library differs from etcd" (or the 3.4-versus-current-etcd notes below) says.
 *
 * Size: the four big sweeps (truncation of the last segment, truncation of the earlier
 * ones, bit flips, the differential) check runtime-independent logic, so they run in full on
 * Deno only; Bun and Node run a random 5% of each sweep's cases (at least 20), chosen by
 * WAL_SWEEP_SEED and the runtime (the seed is random by default, and printed; the same seed
 * picks the same cases on the same runtime). WAL_FULL_SWEEPS=1 runs every case on every
 * runtime. The other tests run in full everywhere.
 */

import { execFileSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  type Entry,
  EntryType,
  type HardState,
  type ReadAllResult,
  repair,
  type RepairResult,
  verify,
  type VerifyResult,
  WAL,
  WalError,
  type WalErrorCode,
} from "../mod.ts";
import { toHex } from "../compat/script.ts";
import {
  FULL_SIZE_RUNTIME,
  FULL_SWEEPS,
  randInt,
  RUNTIME,
  SWEEP_SEED,
  sweepRng,
} from "./helpers.ts";

const FULL = FULL_SWEEPS;
/** The share of each big sweep's cases the other runtimes run, and the least number. */
const SAMPLE_FRACTION = 0.05;
const SAMPLE_MIN = 20;
/** Appended to the names of the sampled tests. */
const SAMPLED = FULL ? "" : ` (a ${SAMPLE_FRACTION * 100}% sample on ${RUNTIME})`;

/**
 * The cases of the big sweep `name` this run checks: all of them on the full-size runtime
 * (or with WAL_FULL_SWEEPS=1), else a random sample, in their order, that WAL_SWEEP_SEED
 * and `name` choose. Prints which.
 */
function sweep<T>(name: string, cases: T[]): T[] {
  if (FULL) {
    console.log(`${name}: all ${cases.length} cases on ${RUNTIME}`);
    return cases;
  }
  const k = Math.min(cases.length, Math.max(SAMPLE_MIN, Math.ceil(cases.length * SAMPLE_FRACTION)));
  const r = sweepRng(`${RUNTIME} ${name}`); // one stream per sweep and runtime
  const order = cases.map((_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = randInt(r, i, order.length - 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const picked = order.slice(0, k).sort((a, b) => a - b);
  console.log(
    `${name}: a random ${k} of ${cases.length} cases on ${RUNTIME}, chosen by ` +
      `WAL_SWEEP_SEED=${SWEEP_SEED} (the same seed picks the same cases on the same runtime; ` +
      `WAL_FULL_SWEEPS=1 runs all of them, as ${FULL_SIZE_RUNTIME} does)`,
  );
  return picked.map((i) => cases[i]);
}

/**
 * Runs `fn` with a scratch directory on a RAM-backed file system when there is one
 * (/dev/shm): the cases run thousands of fdatasyncs (closing a WAL opened for writing,
 * repair), which on a disk would cost most of the time budget and test nothing here.
 */
async function withScratch<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  let base = tmpdir();
  try {
    if (existsSync("/dev/shm")) {
      rmSync(mkdtempSync("/dev/shm/raftlog-probe-"), { recursive: true });
      base = "/dev/shm";
    }
  } catch {
    // not writable: use the usual temporary directory
  }
  const dir = mkdtempSync(join(base, "raftlog-corruption-"));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const SEG = 2048;
const opts = { segmentSizeBytes: SEG };
const enc = new TextEncoder();
const META = enc.encode("corruption-matrix");
/** etcd 3.4's maxWALEntrySizeLimit: a longer record is ErrMaxWALEntrySizeLimitExceeded. */
const ETCD34_MAX_RECORD = 10 * 1024 * 1024;
const SECTOR = 512;

// ---------------------------------------------------------------------------------------
// The pristine WAL and an independent map of its frames
// ---------------------------------------------------------------------------------------

/** One framed record of a pristine segment, parsed by this test's own small decoder. */
interface Frame {
  seg: number;
  /** Offset of the length word. */
  start: number;
  /** End of the record bytes (padding follows). */
  recEnd: number;
  /** End of the frame, padding included. */
  end: number;
  type: number;
  /** Named byte ranges: length word, record fields, padding. */
  parts: { role: string; from: number; to: number }[];
  entry?: Entry;
  state?: HardState;
  metadata?: Uint8Array;
}

interface Pristine {
  names: string[];
  files: Map<string, Uint8Array>;
  frames: Frame[][];
  /** End of the last record of each segment. */
  used: number[];
  entries: Entry[];
  state: HardState;
}

const KINDS = ["?", "metadata", "entry", "state", "crc", "snapshot"];

function uvarint(b: Uint8Array, pos: number, end: number): [bigint, number] {
  let v = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= end) throw new Error("truncated varint in a pristine record");
    const x = b[pos++];
    v |= BigInt(x & 0x7f) << shift;
    if (x < 0x80) return [v, pos];
    shift += 7n;
  }
}

interface Field {
  field: number;
  tagFrom: number;
  /** Start of the length prefix (wire type 2) or of the value (varint). */
  lenFrom: number;
  valFrom: number;
  valTo: number;
  v: bigint;
}

/** The fields of a protobuf message in b[from:to] (varint and length-delimited only). */
function fields(b: Uint8Array, from: number, to: number): Field[] {
  const out: Field[] = [];
  let p = from;
  while (p < to) {
    const tagFrom = p;
    const [tag, q] = uvarint(b, p, to);
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (wire === 0) {
      const [v, r] = uvarint(b, q, to);
      out.push({ field, tagFrom, lenFrom: q, valFrom: q, valTo: r, v });
      p = r;
    } else if (wire === 2) {
      const [n, r] = uvarint(b, q, to);
      out.push({ field, tagFrom, lenFrom: q, valFrom: r, valTo: r + Number(n), v: n });
      p = r + Number(n);
    } else {
      throw new Error(`wire type ${wire} in a pristine record`);
    }
  }
  return out;
}

function u64le(b: Uint8Array, off: number): bigint {
  let v = 0n;
  for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(b[off + i]);
  return v;
}

function parseSegment(bytes: Uint8Array, seg: number): { frames: Frame[]; used: number } {
  const frames: Frame[] = [];
  let off = 0;
  while (off + 8 <= bytes.length) {
    const word = u64le(bytes, off);
    if (word === 0n) break;
    const len = Number(word & ((1n << 56n) - 1n));
    const pad = word >> 63n ? Number((word >> 56n) & 7n) : 0;
    const recEnd = off + 8 + len;
    const fs = fields(bytes, off + 8, recEnd);
    const type = Number(fs.find((f) => f.field === 1)!.v);
    const kind = KINDS[type];
    const parts = [
      { role: "length word", from: off, to: off + 7 },
      { role: "length word top byte", from: off + 7, to: off + 8 },
    ];
    const fname = ["", "type", "crc", "data"];
    for (const f of fs) {
      parts.push({ role: `${kind}.${fname[f.field]} tag`, from: f.tagFrom, to: f.lenFrom });
      if (f.field === 3) {
        parts.push({ role: `${kind}.data length`, from: f.lenFrom, to: f.valFrom });
      }
      parts.push({ role: `${kind}.${fname[f.field]}`, from: f.valFrom, to: f.valTo });
    }
    parts.push({ role: "padding", from: recEnd, to: recEnd + pad });
    const frame: Frame = { seg, start: off, recEnd, end: recEnd + pad, type, parts };
    const data = fs.find((f) => f.field === 3);
    const payload = data ? bytes.subarray(data.valFrom, data.valTo) : new Uint8Array(0);
    if (kind === "entry") {
      const e: Entry = { term: 0n, index: 0n, type: 0, data: new Uint8Array(0) };
      for (const f of fields(payload, 0, payload.length)) {
        if (f.field === 1) e.type = Number(f.v);
        if (f.field === 2) e.term = f.v;
        if (f.field === 3) e.index = f.v;
        if (f.field === 4) e.data = payload.slice(f.valFrom, f.valTo);
      }
      frame.entry = e;
    } else if (kind === "state") {
      const s: HardState = { term: 0n, vote: 0n, commit: 0n };
      for (const f of fields(payload, 0, payload.length)) {
        if (f.field === 1) s.term = f.v;
        if (f.field === 2) s.vote = f.v;
        if (f.field === 3) s.commit = f.v;
      }
      frame.state = s;
    } else if (kind === "metadata") {
      frame.metadata = payload.slice();
    }
    frames.push(frame);
    off = frame.end;
  }
  return { frames, used: off };
}

function walNames(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith(".wal")).sort();
}

/**
 * Three segments: the first two cut (truncated to their used length), the last
 * preallocated to SEG bytes with about 1400 bytes used. Every record kind occurs in the last
 * segment (crc, metadata, state, entries of all three types).
 */
async function buildPristine(): Promise<Pristine> {
  return await withScratch(async (tmp) => {
    const dir = join(tmp, "wal");
    const wal = await WAL.create(dir, META, opts);
    const entries: Entry[] = [];
    let state: HardState = { term: 0n, vote: 0n, commit: 0n };
    let index = 1n;
    let saves = 0;
    const save = async () => {
      const batch: Entry[] = [];
      for (let k = 0; k < 3; k++, index++) {
        batch.push({
          term: 1n + BigInt(saves >> 3),
          index,
          type: [EntryType.Normal, EntryType.ConfChange, EntryType.ConfChangeV2][k],
          data: enc.encode(`entry ${index} `.padEnd(20 + Number(index % 50n), "v")),
        });
      }
      state = { term: 1n + BigInt(saves >> 3), vote: 1n, commit: index - 1n };
      await wal.save(state, batch);
      entries.push(...batch);
      if (++saves === 4) await wal.saveSnapshot({ index: 6n, term: 1n });
    };
    while (walNames(dir).length < 3) await save();
    for (let i = 0; i < 6; i++) await save();
    await wal.close();
    const names = walNames(dir);
    assert.deepEqual(readdirSync(dir).sort(), names, "no stray files after close");
    const files = new Map(names.map((n) => [n, new Uint8Array(readFileSync(join(dir, n)))]));
    const parsed = names.map((n, i) => parseSegment(files.get(n)!, i));
    return {
      names,
      files,
      frames: parsed.map((p) => p.frames),
      used: parsed.map((p) => p.used),
      entries,
      state,
    };
  });
}

let pristineP: Promise<Pristine> | null = null;
function pristine(): Promise<Pristine> {
  return (pristineP ??= buildPristine());
}

/** Where replay stops: every frame of earlier segments, and those of `seg` ending by `off`. */
interface Cut {
  seg: number;
  off: number;
}

interface Model {
  metadata: Uint8Array;
  state: HardState;
  entries: Entry[];
}

/** What a replay from snapshot 0 returns when it reads the frames before `cut` (or all). */
function model(p: Pristine, cut?: Cut): Model {
  const m: Model = {
    metadata: new Uint8Array(0),
    state: { term: 0n, vote: 0n, commit: 0n },
    entries: [],
  };
  for (const frames of p.frames) {
    for (const f of frames) {
      if (cut !== undefined && (f.seg > cut.seg || (f.seg === cut.seg && f.end > cut.off))) {
        return m;
      }
      if (f.entry) {
        m.entries.length = Number(f.entry.index) - 1;
        m.entries.push(f.entry);
      }
      if (f.state) m.state = f.state;
      if (f.metadata) m.metadata = f.metadata;
    }
  }
  return m;
}

/** What byte `i` of segment `seg` is, in the pristine WAL. */
function roleAt(p: Pristine, seg: number, i: number): string {
  for (const f of p.frames[seg]) {
    if (i >= f.start && i < f.end) {
      for (const part of f.parts) if (i >= part.from && i < part.to) return part.role;
    }
  }
  const used = p.used[seg];
  if (seg === p.names.length - 1 && i < used + 8) {
    return i === used + 7 ? "end word top byte" : "end word";
  }
  return "zero tail";
}

// ---------------------------------------------------------------------------------------
// Running our four operations on a directory
// ---------------------------------------------------------------------------------------

type Attempt<T> =
  | { ok: true; value: T }
  | {
    ok: false;
    code: WalErrorCode;
    message: string;
    reason: string;
    file?: string;
    offset?: number;
  };

const HANG_MS = 10_000;

/** Runs `f`: a WalError becomes a code; anything else, or a hang, fails the test. */
async function attempt<T>(what: string, f: () => Promise<T>): Promise<Attempt<T>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} hung (no result in ${HANG_MS} ms)`)),
      HANG_MS,
    );
  });
  try {
    return { ok: true, value: await Promise.race([f(), hang]) };
  } catch (e) {
    if (e instanceof WalError) {
      return {
        ok: false,
        code: e.code,
        message: e.message,
        reason: e.reason,
        file: e.file,
        offset: e.offset,
      };
    }
    throw new Error(`${what}: threw ${e instanceof Error ? e.stack : e}, not a WalError`);
  } finally {
    clearTimeout(timer);
  }
}

async function replayOnce(dir: string, write: boolean): Promise<ReadAllResult> {
  const wal = write
    ? await WAL.open(dir, undefined, opts)
    : await WAL.openForRead(dir, undefined, opts);
  try {
    return await wal.readAll();
  } finally {
    await wal.close();
  }
}

/** Our verdicts on one directory, in this order (write mode and repair change files). */
interface Ours {
  read: Attempt<ReadAllResult>;
  verify: Attempt<VerifyResult>;
  write: Attempt<ReadAllResult>;
  repair: Attempt<RepairResult>;
  /** Write mode again, after repair. */
  after: Attempt<ReadAllResult>;
}

async function runOurs(dir: string, label: string): Promise<Ours> {
  const read = await attempt(`${label}: openForRead+readAll`, () => replayOnce(dir, false));
  const ver = await attempt(`${label}: verify`, () => verify(dir, undefined, opts));
  const write = await attempt(`${label}: open+readAll`, () => replayOnce(dir, true));
  const rep = await attempt(`${label}: repair`, () => repair(dir, opts));
  const after = await attempt(`${label}: open+readAll after repair`, () => replayOnce(dir, true));
  return { read, verify: ver, write, repair: rep, after };
}

function errText(a: Attempt<unknown>): string {
  return a.ok ? "" : a.message;
}

function codeOf(a: Attempt<unknown>): string {
  return a.ok ? "ok" : a.code;
}

function bytesEq(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameResult(a: Model, b: Model): boolean {
  if (!bytesEq(a.metadata, b.metadata)) return false;
  if (a.state.term !== b.state.term || a.state.vote !== b.state.vote) return false;
  if (a.state.commit !== b.state.commit || a.entries.length !== b.entries.length) return false;
  for (let i = 0; i < a.entries.length; i++) {
    const x = a.entries[i];
    const y = b.entries[i];
    if (x.index !== y.index || x.term !== y.term || x.type !== y.type) return false;
    if (!bytesEq(x.data, y.data)) return false;
  }
  return true;
}

function assertResult(got: Attempt<ReadAllResult>, want: Model, what: string): void {
  assert.ok(got.ok, `${what}: expected success, got ${codeOf(got)}: ${!got.ok && got.message}`);
  if (!sameResult(got.value, want)) {
    assert.deepEqual(
      { ...got.value, entries: got.value.entries.map((e) => e.index) },
      { ...want, entries: want.entries.map((e) => e.index) },
      `${what}: wrong replay`,
    );
    assert.deepEqual(got.value, want, `${what}: wrong replay`);
  }
}

/** True when `a`'s entries are a prefix of `full`'s. */
function isPrefix(a: Entry[], full: Entry[]): boolean {
  if (a.length > full.length) return false;
  return sameResult(
    { metadata: META, state: { term: 0n, vote: 0n, commit: 0n }, entries: a },
    { metadata: META, state: { term: 0n, vote: 0n, commit: 0n }, entries: full.slice(0, a.length) },
  );
}

/**
 * How the four operations must relate whatever the damage:
 * - write mode succeeds: read mode returns the same, verify is clean, repair has nothing to
 *   do, the reopen returns the same again;
 * - write mode says UNEXPECTED_EOF: read mode succeeds, verify reports the torn tail where
 *   repair then cuts, and the reopen after repair returns exactly what read mode did;
 * - any other error: read mode fails with the same code, repair cuts nothing, the reopen
 *   fails the same way.
 */
function checkConsistent(o: Ours, label: string): void {
  const w = o.write;
  if (w.ok) {
    assertResult(o.read, w.value, `${label}: read mode`);
    assert.ok(
      o.verify.ok && o.verify.value.tornTail === null,
      `${label}: verify ${codeOf(o.verify)}`,
    );
    assert.ok(o.repair.ok && !o.repair.value.repaired, `${label}: repair of a clean WAL`);
    assertResult(o.after, w.value, `${label}: reopen`);
  } else if (w.code === "UNEXPECTED_EOF") {
    assert.ok(o.read.ok, `${label}: read mode must end quietly at a torn tail: ${codeOf(o.read)}`);
    assert.ok(
      o.verify.ok && o.verify.value.tornTail !== null,
      `${label}: verify must report the torn tail: ${codeOf(o.verify)}`,
    );
    assert.ok(
      o.repair.ok && o.repair.value.repaired,
      `${label}: repair must cut the torn tail: ${codeOf(o.repair)} ${
        !o.repair.ok && o.repair.message
      }`,
    );
    assert.equal(o.repair.value.offset, o.verify.value.tornTail.offset, `${label}: repair offset`);
    assert.equal(o.repair.value.file, o.verify.value.tornTail.file, `${label}: repaired file`);
    assertResult(o.after, o.read.value, `${label}: reopen after repair`);
  } else {
    assert.equal(codeOf(o.read), w.code, `${label}: read mode vs write mode`);
    assert.ok(
      !o.verify.ok,
      `${label}: verify passed a WAL replay rejects with ${w.code}`,
    );
    assert.ok(
      !o.repair.ok || !o.repair.value.repaired,
      `${label}: repair cut a WAL that is not torn (${w.code})`,
    );
    assert.equal(codeOf(o.after), w.code, `${label}: reopen after repair`);
  }
}

type Expect =
  /** Every mode succeeds with what the frames before `cut` (default: all) replay to. */
  | { kind: "clean"; cut?: Cut }
  /** A torn tail at `cut`: read mode stops there, write mode says UNEXPECTED_EOF, repair cuts there. */
  | { kind: "torn"; cut: Cut }
  /** Write and read mode fail with `code` (one of them); verify with `verify` when given. */
  | { kind: "error"; code: WalErrorCode | WalErrorCode[]; verify?: "ok" | WalErrorCode };

function checkExpect(p: Pristine, o: Ours, x: Expect, label: string): void {
  checkConsistent(o, label);
  if (x.kind === "clean") {
    assertResult(o.write, model(p, x.cut), `${label}: write mode`);
  } else if (x.kind === "torn") {
    assert.equal(codeOf(o.write), "UNEXPECTED_EOF", `${label}: write mode`);
    assertResult(o.read, model(p, x.cut), `${label}: read mode`);
    assert.ok(o.repair.ok);
    assert.equal(o.repair.value.offset, x.cut.off, `${label}: repair offset`);
    assert.ok(o.repair.value.file.endsWith(p.names[x.cut.seg]), `${label}: repaired file`);
  } else {
    const codes = Array.isArray(x.code) ? x.code : [x.code];
    assert.ok(
      codes.includes(codeOf(o.write) as WalErrorCode),
      `${label}: write mode gave ${codeOf(o.write)}, expected ${codes}: ${
        !o.write.ok && o.write.message
      }`,
    );
    if (x.verify !== undefined) assert.equal(codeOf(o.verify), x.verify, `${label}: verify`);
  }
}

/** A directory's wanted content: file bytes, "dir" for a subdirectory, or a symlink. */
type Files = Map<string, Uint8Array | "dir" | { link: string }>;

/** Makes `dir` hold exactly `files` (after our operations may have changed it). */
function materialize(dir: string, files: Files): void {
  mkdirSync(dir, { recursive: true });
  for (const n of readdirSync(dir)) {
    if (!files.has(n)) rmSync(join(dir, n), { recursive: true, force: true });
  }
  for (const [n, c] of files) {
    const path = join(dir, n);
    if (c === "dir") {
      rmSync(path, { recursive: true, force: true });
      mkdirSync(path);
    } else if ("link" in c) {
      rmSync(path, { recursive: true, force: true });
      symlinkSync(c.link, path);
    } else {
      writeFileSync(path, c);
    }
  }
}

function pristineFiles(p: Pristine): Files {
  return new Map(p.files);
}

function withSegment(p: Pristine, seg: number, bytes: Uint8Array): Files {
  const f = pristineFiles(p);
  f.set(p.names[seg], bytes);
  return f;
}

function last(p: Pristine): number {
  return p.names.length - 1;
}

/** Counts outcomes for the printed tallies. */
class Tally {
  readonly counts = new Map<string, number>();
  add(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
  print(title: string): void {
    const total = [...this.counts.values()].reduce((a, b) => a + b, 0);
    console.log(`${title}: ${total} cases`);
    for (const [k, v] of [...this.counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))) {
      console.log(`  ${String(v).padStart(6)}  ${k}`);
    }
  }
}

// ---------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------

interface Case {
  name: string;
  files: Files;
  expect?: Expect;
}

/** Truncation of segment `seg` to every length from 0 to its size. */
function truncationCases(p: Pristine, seg: number): Case[] {
  const bytes = p.files.get(p.names[seg])!;
  const out: Case[] = [];
  const isLast = seg === last(p);
  const frameEnds = new Set(p.frames[seg].map((f) => f.end));
  for (let t = 0; t <= bytes.length; t++) {
    let expect: Expect;
    if (isLast) {
      // Clean at a frame boundary, at 0, or anywhere in the zeros after the last record (a
      // partial zero word ends the records too); anything else cuts a record short: torn.
      const clean = t === 0 || frameEnds.has(t) || t >= p.used[seg];
      const keep = p.frames[seg].filter((f) => f.end <= t).reduce((a, f) => Math.max(a, f.end), 0);
      expect = clean
        ? { kind: "clean", cut: { seg, off: t } }
        : { kind: "torn", cut: { seg, off: keep } };
    } else if (t === bytes.length) {
      expect = { kind: "clean" };
    } else if (seg === 0 && (t === 0 || t === p.frames[0][0].end)) {
      // Only the crc record (whose value, 0, is not folded into the chain) or nothing is
      // left of the first segment: the chain check has nothing to compare, and replay finds
      // the entries of the next segment after a gap.
      // verify checks index gaps as replay does.
      expect = { kind: "error", code: "SLICE_OUT_OF_RANGE", verify: "SLICE_OUT_OF_RANGE" };
    } else {
      // A segment before the last cut short: at a record boundary the next segment's crc
      // record breaks the chain; inside a record it is a short record before the last
      // segment. Both are CRC_MISMATCH (README: where this library differs from etcd).
      expect = { kind: "error", code: "CRC_MISMATCH", verify: "CRC_MISMATCH" };
    }
    out.push({
      name: `truncate ${p.names[seg]} to ${t}`,
      files: withSegment(p, seg, bytes.slice(0, t)),
      expect,
    });
  }
  return out;
}

/** The bit flipped in byte `i`: one per byte, rotating so that each frame byte sees every bit. */
function flipBit(i: number): number {
  return (i + (i >> 3)) % 8;
}

function flipCase(p: Pristine, seg: number, i: number): Case & { role: string } {
  const bytes = p.files.get(p.names[seg])!.slice();
  const bit = flipBit(i);
  bytes[i] ^= 1 << bit;
  return {
    name: `flip bit ${bit} of byte ${i} of ${p.names[seg]}`,
    files: withSegment(p, seg, bytes),
    role: `${seg === last(p) ? "last" : "earlier"} segment, ${roleAt(p, seg, i)}`,
  };
}

/** Each 512-byte sector of each segment zeroed in turn. */
function sectorCases(p: Pristine): Case[] {
  const out: Case[] = [];
  for (let seg = 0; seg < p.names.length; seg++) {
    const orig = p.files.get(p.names[seg])!;
    const isLast = seg === last(p);
    for (let a = 0; a < orig.length; a += SECTOR) {
      const b = Math.min(orig.length, a + SECTOR);
      const bytes = orig.slice();
      bytes.fill(0, a, b);
      // The first frame the zeroing changes, and whether it zeroed that frame's length word.
      let hit: Frame | undefined;
      for (const f of p.frames[seg]) {
        if (
          f.end > a && f.start < b &&
          orig.subarray(Math.max(a, f.start), Math.min(b, f.end)).some((x) => x !== 0)
        ) {
          hit = f;
          break;
        }
      }
      let expect: Expect;
      if (hit === undefined) {
        expect = { kind: "clean" };
      } else if (isLast) {
        // A zeroed length word ends the segment's records: replay stops there without an
        // error and write mode zeroes what follows, as in etcd (a zero word is the end
        // marker; a sector of synced records lost this way is silent data loss in both). A
        // zeroed part of a record body is a torn write: repair cuts the record.
        expect = hit.start >= a
          ? { kind: "clean", cut: { seg, off: hit.start } }
          : { kind: "torn", cut: { seg, off: hit.start } };
      } else if (seg === 0 && a === 0) {
        expect = { kind: "error", code: "SLICE_OUT_OF_RANGE", verify: "SLICE_OUT_OF_RANGE" };
      } else {
        expect = { kind: "error", code: ["CRC_MISMATCH", "DECODE"] };
      }
      out.push({
        name: `zero bytes ${a}..${b} of ${p.names[seg]}`,
        files: withSegment(p, seg, bytes),
        expect,
      });
    }
  }
  return out;
}

function frameWord(len: bigint, top = -1): Uint8Array {
  const w = new Uint8Array(8);
  let v = len;
  for (let i = 0; i < 8; i++, v >>= 8n) w[i] = Number(v & 0xffn);
  if (top >= 0) w[7] = top;
  return w;
}

/** A walpb.Record {type, crc, data}, framed and padded as etcd does. */
function frameRecord(type: number, crc: number, data: Uint8Array | null): Uint8Array {
  const body: number[] = [0x08, type, 0x10];
  let c = crc >>> 0;
  while (c > 0x7f) {
    body.push((c & 0x7f) | 0x80);
    c >>>= 7;
  }
  body.push(c);
  if (data !== null) {
    body.push(0x1a, data.length); // data shorter than 128 bytes here
    body.push(...data);
  }
  const pad = (8 - (body.length % 8)) % 8;
  const out = new Uint8Array(8 + body.length + pad);
  out.set(frameWord(BigInt(body.length), pad ? 0x80 | pad : -1), 0);
  out.set(body, 8);
  return out;
}

/** Garbage after the last record, and length words far beyond the end of the file. */
function tailCases(p: Pristine): Case[] {
  const L = last(p);
  const orig = p.files.get(p.names[L])!;
  const used = p.used[L];
  const lastFrame = p.frames[L][p.frames[L].length - 1];
  const out: Case[] = [];
  const put = (at: number, b: Uint8Array, seg = L): Files => {
    const bytes = p.files.get(p.names[seg])!.slice();
    bytes.set(b, at);
    return withSegment(p, seg, bytes);
  };
  const garbage = new Uint8Array(200).map((_, i) => (i * 97 + 13) % 251 + 1);
  out.push({
    name: "garbage after the zero word that ends the records",
    files: put(used + 8, garbage),
    expect: { kind: "clean" },
  });
  out.push({
    name: "garbage directly after the last record (its length word is huge)",
    files: put(used, garbage),
    expect: { kind: "torn", cut: { seg: L, off: used } },
  });
  out.push({
    name: "garbage directly after the last record, framed with a small length",
    files: put(used, new Uint8Array([...frameWord(16n), ...new Uint8Array(16).fill(0xab)])),
    expect: { kind: "error", code: "DECODE" },
  });
  out.push({
    name: "a well-formed record with a wrong CRC after the last record",
    files: put(used, frameRecord(2, 0x12345678, enc.encode("not a raft entry but a CRC failure"))),
    expect: { kind: "error", code: "CRC_MISMATCH" },
  });
  out.push({
    name: "garbage appended past the preallocated end of the last segment",
    files: withSegment(p, L, new Uint8Array([...orig, ...garbage])),
    expect: { kind: "clean" },
  });
  for (const [what, len, top] of HUGE) {
    out.push({
      name: `length word ${what} after the last record`,
      files: put(used, frameWord(len, top)),
      expect: { kind: "torn", cut: { seg: L, off: used } },
    });
    out.push({
      name: `length word ${what} on the last record of the last segment`,
      files: put(lastFrame.start, frameWord(len, top)),
      expect: { kind: "torn", cut: { seg: L, off: lastFrame.start } },
    });
    const mid = p.frames[1][p.frames[1].length - 1];
    out.push({
      name: `length word ${what} on the last record of the middle segment`,
      files: put(mid.start, frameWord(len, top), 1),
      expect: { kind: "error", code: "CRC_MISMATCH" },
    });
  }
  return out;
}

const HUGE: [string, bigint, number][] = [
  ["10 MiB + 1 (above etcd 3.4's limit)", BigInt(ETCD34_MAX_RECORD + 1), -1],
  ["2^31", 1n << 31n, -1],
  ["2^32 + 8", (1n << 32n) + 8n, -1],
  ["2^50", 1n << 50n, -1],
  ["2^56 - 1", (1n << 56n) - 1n, -1],
  ["2^56 - 1 with 7 padding bytes (all ones)", (1n << 56n) - 1n, 0xff],
];

/** A crc record rewritten with a wrong value in a valid frame of the same size. */
function chainCases(p: Pristine): Case[] {
  const out: Case[] = [];
  for (const seg of [1, 2]) {
    const bytes = p.files.get(p.names[seg])!.slice();
    const f = p.frames[seg][0];
    assert.equal(KINDS[f.type], "crc");
    const part = f.parts.find((x) => x.role === "crc.crc")!;
    bytes[part.from] ^= 0x01; // the low bit of the varint: same length, wrong value
    out.push({
      name: `crc record of ${p.names[seg]} with a wrong value`,
      files: withSegment(p, seg, bytes),
      expect: { kind: "error", code: "CRC_MISMATCH", verify: "CRC_MISMATCH" },
    });
  }
  return out;
}

function segmentName(seq: number, index: bigint): string {
  return `${seq.toString(16).padStart(16, "0")}-${index.toString(16).padStart(16, "0")}.wal`;
}

/** Missing segments, sequence gaps, stray files and directories. */
function layoutCases(p: Pristine): Case[] {
  const [s0, s1, s2] = p.names;
  const out: Case[] = [];
  const files = (edit: (f: Files) => void): Files => {
    const f = pristineFiles(p);
    edit(f);
    return f;
  };
  const lastIndex = BigInt("0x" + s2.slice(17, 33));
  out.push({
    name: "the middle segment is missing (sequence 0, 2)",
    files: files((f) => f.delete(s1)),
    expect: { kind: "error", code: "FILE_NOT_FOUND", verify: "FILE_NOT_FOUND" },
  });
  out.push({
    name: "a sequence gap (0, 1, 3)",
    files: files((f) => {
      f.set(segmentName(3, lastIndex), f.get(s2)!);
      f.delete(s2);
    }),
    expect: { kind: "error", code: "FILE_NOT_FOUND", verify: "FILE_NOT_FOUND" },
  });
  out.push({
    name: "only the last segment is left",
    files: files((f) => {
      f.delete(s0);
      f.delete(s1);
    }),
    expect: { kind: "error", code: "FILE_NOT_FOUND", verify: "FILE_NOT_FOUND" },
  });
  const junk = new Uint8Array(300).map((_, i) => (i * 31 + 7) % 256);
  out.push({
    name: "stray *.tmp files (a spare segment, garbage)",
    files: files((f) => {
      f.set("0.tmp", new Uint8Array(SEG));
      f.set("1.tmp", junk);
      f.set(`${segmentName(3, lastIndex)}.tmp`, junk);
    }),
    expect: { kind: "clean" },
  });
  out.push({
    name: "a stray *.broken copy",
    files: files((f) => f.set(`${s2}.broken`, junk)),
    expect: { kind: "clean" },
  });
  out.push({
    name: "stray files with other names",
    files: files((f) => {
      f.set("README", junk);
      f.set("x.wal", junk);
      f.set("0000000000000003-00000000000000zz.wal", junk);
      f.set("0000000000000003-0000000000000064.wal~", junk);
      f.set(".0000000000000003-0000000000000064.wal", junk);
    }),
    expect: { kind: "clean" },
  });
  out.push({
    name: "a stray directory with a random name",
    files: files((f) => f.set("lost+found", "dir")),
    expect: { kind: "clean" },
  });
  out.push({
    // Go's Sscanf takes fewer than 16 hex digits (README): etcd reads this file as the last
    // segment (sequence 3); here it is not a segment name.
    name: "a stray file named like a segment with short hex fields",
    files: files((f) => f.set("3-64.wal", junk)),
    expect: { kind: "clean" },
  });
  out.push({
    name: "a directory named like the next segment",
    files: files((f) => f.set(segmentName(3, lastIndex + 5n), "dir")),
    expect: { kind: "error", code: "IO", verify: "IO" },
  });
  out.push({
    name: "a dangling symlink named like the next segment",
    files: files((f) => f.set(segmentName(3, lastIndex + 5n), { link: "no-such-file" })),
    expect: { kind: "error", code: "IO", verify: "IO" },
  });
  out.push({
    name: "a directory named like a segment before the first",
    files: files((f) => {
      f.delete(s0);
      f.delete(s1);
      f.set(s0, "dir");
    }),
    expect: { kind: "error", code: "FILE_NOT_FOUND", verify: "FILE_NOT_FOUND" },
  });
  return out;
}

/** Opens the (repaired) WAL in `dir`, appends an entry, and checks a replay ends with it. */
async function appendAndReplay(dir: string, label: string): Promise<void> {
  const wal = await WAL.open(dir, undefined, opts);
  const { entries } = await wal.readAll();
  const next: Entry = {
    term: 9n,
    index: BigInt(entries.length + 1),
    type: EntryType.Normal,
    data: enc.encode(`appended after: ${label}`),
  };
  await wal.save({ term: 9n, vote: 1n, commit: next.index }, [next]);
  await wal.close();
  const back = await replayOnce(dir, false);
  assert.ok(isPrefix(entries, back.entries) && back.entries.length === entries.length + 1, label);
  assert.deepEqual(back.entries[entries.length], next, `${label}: the appended entry`);
  const v = await verify(dir, undefined, opts);
  assert.equal(v.tornTail, null, `${label}: verify after the append`);
}

/** Runs one case in `work`, checks it, and returns our verdicts. */
async function runCase(p: Pristine, work: string, c: Case): Promise<Ours> {
  materialize(work, c.files);
  const o = await runOurs(work, c.name);
  if (c.expect) checkExpect(p, o, c.expect, c.name);
  else checkConsistent(o, c.name);
  return o;
}

/** Parallel lanes: the operations mostly wait on the file system, so cases overlap well. */
const LANES = 4;

/**
 * Runs every case through `fn` in LANES concurrent lanes, each with its own directory
 * under `tmp`. The first failure stops every lane and is rethrown.
 */
async function inLanes<T>(
  tmp: string,
  cases: Iterable<T>,
  fn: (c: T, work: string) => Promise<void>,
): Promise<void> {
  const it = cases[Symbol.iterator]();
  let failed = false;
  await Promise.all(
    Array.from({ length: LANES }, async (_, k) => {
      const work = join(tmp, `lane${k}`, "wal");
      for (let n = it.next(); !n.done && !failed; n = it.next()) {
        try {
          await fn(n.value, work);
        } catch (e) {
          failed = true;
          throw e;
        }
      }
    }),
  );
}

function outcomeKey(o: Ours): string {
  const rep = !o.repair.ok
    ? o.repair.code
    : o.repair.value.repaired
    ? "repaired"
    : "nothing to repair";
  return `write ${codeOf(o.write)}, read ${codeOf(o.read)}, verify ${
    o.verify.ok ? (o.verify.value.tornTail ? "torn tail" : "ok") : o.verify.code
  }, repair ${rep}`;
}

/** Error codes a single flipped bit may produce (beside success). */
const FLIP_CODES: WalErrorCode[] = [
  "CRC_MISMATCH",
  "UNEXPECTED_EOF",
  "DECODE",
  "METADATA_CONFLICT",
  "SNAPSHOT_NOT_FOUND",
  "SNAPSHOT_MISMATCH",
  "SLICE_OUT_OF_RANGE",
  "FILE_NOT_FOUND",
];

/**
 * Why write mode may accept a flipped bit and return different content, or null when
 * nothing explains it: the CRC covers a record's data but not its type (a state record read
 * as an entry, or the other way round, replays "fine" in etcd too), and a length word the
 * flip made zero is the end-of-records marker (in this WAL no length word has a single bit
 * set, so that one never happens here).
 */
function uncheckedPart(c: Case & { role: string }, seg: string, i: number): string | null {
  if (/\.type$/.test(c.role)) return "the record type is not covered by the CRC";
  const bytes = c.files.get(seg) as Uint8Array;
  const word = i - (i % 8);
  if (/length word/.test(c.role) && bytes.subarray(word, word + 8).every((b) => b === 0)) {
    return "a zero length word ends the segment's records";
  }
  return null;
}

describe("corruption matrix (2 KiB segments)", () => {
  test("the pristine WAL replays exactly in every mode", async () => {
    const p = await pristine();
    assert.equal(p.names.length, 3);
    assert.equal(p.files.get(p.names[2])!.length, SEG);
    assert.ok(
      p.used[2] > SECTOR && p.used[2] < SEG - SECTOR,
      `last segment uses ${p.used[2]} bytes`,
    );
    const kinds = new Set(p.frames[2].map((f) => KINDS[f.type]));
    assert.deepEqual([...kinds].sort(), ["crc", "entry", "metadata", "state"]);
    const m = model(p);
    assert.deepEqual(m.entries, p.entries);
    assert.deepEqual(m.state, p.state);
    await withScratch(async (tmp) => {
      const o = await runCase(p, join(tmp, "wal"), {
        name: "pristine",
        files: pristineFiles(p),
        expect: { kind: "clean" },
      });
      assertResult(o.write, { metadata: META, state: p.state, entries: p.entries }, "pristine");
    });
  });

  test(`truncation at every byte offset of the last segment${SAMPLED}`, async () => {
    const p = await pristine();
    const tally = new Tally();
    let appended = 0;
    await withScratch(async (tmp) => {
      const cases = sweep(
        "truncations of the last segment",
        truncationCases(p, last(p)).map((c, t) => ({ c, t })),
      );
      await inLanes(tmp, cases, async ({ c, t }, work) => {
        tally.add(outcomeKey(await runCase(p, work, c)));
        // After repair (or at a clean cut), the log takes appends that replay after it. Not
        // for a clean cut to a size that is not a multiple of 8: the segment keeps that size,
        // and an append that ends fewer than 8 bytes before it leaves a partial (zero) length
        // word that the next replay reads as a torn tail (as etcd 3.4 does).
        const unaligned = t > p.used[2] + 8 && t % 8 !== 0;
        if ((t % 61 === 0 || t % 256 === 0 || t === p.used[2] + 3) && !unaligned) {
          await appendAndReplay(work, c.name);
          appended++;
        }
      });
    });
    tally.print(
      `truncations of the last segment (${p.names[2]}, ${SEG} bytes, ${p.used[2]} used); ` +
        `appended to and replayed ${appended} of them after repair`,
    );
  });

  test(`truncation at every byte offset of the middle segment (and a sample of the first)${SAMPLED}`, async () => {
    const p = await pristine();
    const tally = new Tally();
    // The first segment: every offset of its first 96 bytes (crc, metadata and snapshot
    // records), every frame boundary and the bytes either side of it, every 16th offset.
    const ends = new Set(p.frames[0].flatMap((f) => [f.end - 1, f.end, f.end + 1]));
    const first = truncationCases(p, 0).filter((_, t) => t < 96 || t % 16 === 0 || ends.has(t));
    await withScratch(async (tmp) => {
      const cases = sweep("truncations of earlier segments", [
        ...truncationCases(p, 1),
        ...first,
      ]);
      await inLanes(tmp, cases, async (c, work) => {
        tally.add(`${c.name.split(" ")[1]}: ${outcomeKey(await runCase(p, work, c))}`);
      });
    });
    tally.print("truncations of earlier segments");
  });

  test(`a flipped bit at every byte of every segment${SAMPLED}`, async () => {
    const p = await pristine();
    const byOutcome = new Tally();
    const byRole = new Tally();
    const explained = new Tally();
    const cases = sweep(
      "bit flips",
      p.names.flatMap((n, seg) =>
        Array.from({ length: p.files.get(n)!.length }, (_, i) => ({ seg, i }))
      ),
    );
    await withScratch(async (tmp) => {
      await inLanes(tmp, cases, async ({ seg, i }, work) => {
        const c = flipCase(p, seg, i);
        const o = await runCase(p, work, c);
        byOutcome.add(outcomeKey(o));
        // (b) a failure is one of the codes corruption may produce
        for (
          const [op, a] of [["write", o.write], ["read", o.read], ["verify", o.verify], [
            "repair",
            o.repair,
          ]] as const
        ) {
          if (!a.ok) {
            assert.ok(
              FLIP_CODES.includes(a.code),
              `${c.name} (${c.role}): ${op} gave ${a.code}: ${a.message}`,
            );
          }
        }
        if (/padding|zero tail/.test(c.role)) {
          // nothing reads padding or the zeros after the end word
          assert.ok(
            o.write.ok && sameResult(o.write.value, model(p)),
            `${c.name} (${c.role}) is harmless`,
          );
        }
        if (o.write.ok) {
          // (a) success returns the original content, unless the flip hit a part nothing checks
          const same = sameResult(o.write.value, model(p));
          if (!same) {
            const why = uncheckedPart(c, p.names[seg], i);
            assert.ok(why !== null, `${c.name} (${c.role}): write mode returned different content`);
            explained.add(
              `${c.role} (${why}): ${
                isPrefix(o.write.value.entries, p.entries)
                  ? "a prefix of the entries"
                  : "different entries"
              }`,
            );
          }
          byRole.add(`${c.role}: ok${same ? "" : ", different content"}`);
        } else {
          byRole.add(`${c.role}: ${o.write.code}`);
          // a torn tail only ever exists in the last segment
          if (o.write.code === "UNEXPECTED_EOF") assert.match(c.role, /^last segment/, c.name);
        }
        // (c) after repair, a reopen never returns entries that differ from the originals
        if (o.repair.ok && o.repair.value.repaired) {
          assert.ok(
            o.after.ok && isPrefix(o.after.value.entries, p.entries),
            `${c.name}: after repair`,
          );
        }
      });
    });
    byOutcome.print(
      `bit flips: ${cases.length} cases (${
        FULL ? "every byte" : "a sample of the bytes"
      } of ${p.names.length} segments), by outcome`,
    );
    byRole.print("bit flips by the part of the frame they hit, and write mode's outcome");
    explained.print("bit flips that write mode accepts with different content");
  });

  test("zeroed 512-byte sectors", async () => {
    const p = await pristine();
    const tally = new Tally();
    await withScratch(async (tmp) => {
      for (const c of sectorCases(p)) {
        tally.add(`${c.name}: ${outcomeKey(await runCase(p, join(tmp, "wal"), c))}`);
      }
    });
    tally.print("zeroed sectors");
  });

  test("garbage after the last record, and length words far beyond the file", async () => {
    const p = await pristine();
    const tally = new Tally();
    await withScratch(async (tmp) => {
      const work = join(tmp, "wal");
      const before = process.memoryUsage().rss;
      for (const c of tailCases(p)) {
        const t0 = performance.now();
        const o = await runCase(p, work, c);
        const ms = performance.now() - t0;
        assert.ok(ms < 2000, `${c.name}: took ${ms} ms`);
        tally.add(`${c.name}: ${outcomeKey(o)}`);
      }
      // A length is never used to allocate: replay holds a segment, not what its words claim.
      const grown = process.memoryUsage().rss - before;
      assert.ok(grown < 256 * 1024 * 1024, `memory grew by ${grown} bytes`);
      // Write mode zeroes whatever follows the last good record before appending.
      const c = tailCases(p)[0];
      materialize(work, c.files);
      await replayOnce(work, true);
      const lastSeg = readFileSync(join(work, p.names[2]));
      assert.equal(lastSeg.length, SEG);
      assert.ok(
        lastSeg.subarray(p.used[2]).every((b) => b === 0),
        "garbage after the records was zeroed",
      );
    });
    tally.print("garbage and huge length words");
  });

  test("a broken crc chain, missing segments, sequence gaps, stray files", async () => {
    const p = await pristine();
    const tally = new Tally();
    await withScratch(async (tmp) => {
      for (const c of [...chainCases(p), ...layoutCases(p)]) {
        tally.add(`${c.name}: ${outcomeKey(await runCase(p, join(tmp, "wal"), c))}`);
      }
    });
    tally.print("crc chain and directory layout");
  });

  test("an empty directory, no directory, a file in the way, a path through a file", async () => {
    await withScratch(async (tmp) => {
      const empty = join(tmp, "empty");
      mkdirSync(empty);
      const file = join(tmp, "file");
      writeFileSync(file, "not a WAL");
      for (
        const [dir, code] of [
          [empty, "FILE_NOT_FOUND"],
          [join(tmp, "missing"), "FILE_NOT_FOUND"],
          [file, "FILE_NOT_FOUND"],
          [join(file, "wal"), "FILE_NOT_FOUND"], // ENOTDIR: nothing is there
        ] as const
      ) {
        const o = await runOurs(dir, dir);
        for (const [op, a] of Object.entries(o)) {
          assert.equal(codeOf(a), code, `${dir}: ${op}: ${!a.ok && a.message}`);
        }
      }
    });
  });

  test("a directory or segment the process may not read", async (t) => {
    await withScratch(async (tmp) => {
      chmodSync(tmp, 0o755);
      const p = await pristine();
      const noList = join(tmp, "unlistable");
      const noSearch = join(tmp, "unsearchable");
      const noFile = join(tmp, "unreadable-segment");
      for (const d of [noList, noSearch, noFile]) materialize(d, pristineFiles(p));
      for (const d of [noList, noSearch, noFile]) {
        for (const n of readdirSync(d)) chmodSync(join(d, n), 0o644);
      }
      chmodSync(noList, 0o000); // neither listable nor searchable
      chmodSync(noSearch, 0o444); // listable, but its files cannot be opened
      chmodSync(join(noFile, p.names[1]), 0o000);
      const privileged = (() => {
        try {
          readdirSync(noList);
          return true;
        } catch {
          return false;
        }
      })();
      const want = { read: "IO", verify: "IO", write: "IO", repair: "IO" };
      try {
        if (!privileged) {
          for (const d of [noList, noSearch, noFile]) {
            const o = await runOurs(d, d);
            const got = {
              read: codeOf(o.read),
              verify: codeOf(o.verify),
              write: codeOf(o.write),
              repair: codeOf(o.repair),
            };
            // repair reads only the last segment, which is readable in `noFile`
            assert.deepEqual(got, d === noFile ? { ...want, repair: "ok" } : want, d);
          }
          return;
        }
        // Root reads any directory: run the checks in a child process as user nobody, who
        // owns the directories and files (so that only their modes keep it out).
        for (const d of [noList, noSearch, noFile]) {
          for (const n of readdirSync(d)) chownSync(join(d, n), 65534, 65534);
          chownSync(d, 65534, 65534);
        }
        const child = unprivilegedChild(tmp);
        if (typeof child === "string") {
          t.skip(child);
          console.warn(`SKIPPED unreadable-directory case: ${child}`);
          return;
        }
        for (const d of [noList, noSearch, noFile]) {
          const got = JSON.parse(child(d));
          assert.deepEqual(got, d === noFile ? { ...want, repair: "ok" } : want, d);
        }
      } finally {
        for (const d of [noList, noSearch]) chmodSync(d, 0o755);
      }
    });
  });
});

/**
 * A runner of tests/fixtures/corruption_child.ts as user nobody (through setpriv), with the
 * runtime running this test; or the reason there is none.
 */
function unprivilegedChild(tmp: string): ((dir: string) => string) | string {
  const setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p));
  if (setpriv === undefined) return "running as root and setpriv is not installed";
  const isDeno = (globalThis as { Deno?: unknown }).Deno !== undefined;
  const isBun = (globalThis as { Bun?: unknown }).Bun !== undefined;
  // Node 20 cannot run TypeScript: there, the fixture compiled beside this test (dist-test/)
  const fixture = isDeno || isBun
    ? join(process.cwd(), "tests/fixtures/corruption_child.ts")
    : fileURLToPath(new URL("./fixtures/corruption_child.js", import.meta.url));
  const home = join(tmp, "home");
  mkdirSync(home, { mode: 0o777 });
  chmodSync(home, 0o777);
  const args = isDeno ? ["run", "-A", "--no-lock", fixture] : [fixture];
  const run = (dir: string) =>
    execFileSync(
      setpriv,
      ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, ...args, dir],
      {
        encoding: "utf8",
        timeout: 60_000,
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          HOME: home,
          DENO_DIR: join(home, "deno"),
          NO_COLOR: "1",
        },
      },
    ).trim();
  try {
    const probe = JSON.parse(run(join(tmp, "no-such-wal")));
    if (probe.read !== "FILE_NOT_FOUND") {
      return `the unprivileged child does not work: ${JSON.stringify(probe)}`;
    }
  } catch (e) {
    return `cannot run the runtime as user nobody: ${
      e instanceof Error ? e.message.split("\n")[0] : e
    }`;
  }
  return run;
}

// ---------------------------------------------------------------------------------------
// Differential against etcd 3.4's Go wal package
// ---------------------------------------------------------------------------------------

const ETCD_SRC = "/usr/share/gocode/src/go.etcd.io/etcd/wal";
const GO = ["/usr/bin/go", "/usr/lib/go/bin/go", "/usr/local/go/bin/go"].find((p) => existsSync(p));
const goMissing = GO === undefined
  ? "Go is not installed (apt-get install golang-go golang-etcd-server-dev)"
  : !existsSync(ETCD_SRC)
  ? `etcd 3.4 sources are missing at ${ETCD_SRC} (apt-get install golang-etcd-server-dev)`
  : null;

/** One replay as compat/etcd34 `classify` reports it. */
interface EtcdOutcome {
  /** ok, torn, crc, maxsize, snapnotfound, snapmismatch, metadata, slice, filenotfound, type, decode, panic, other */
  class: string;
  error?: string;
  result?: {
    metadata: string;
    state: { term: string; vote: string; commit: string };
    entries: unknown[];
  };
}

interface EtcdVerdicts {
  dir: string;
  read: EtcdOutcome;
  verify: EtcdOutcome;
  write: EtcdOutcome;
  /** repaired, clean (nothing to cut), refused, panic */
  repair: string;
  after: EtcdOutcome;
}

/** Our verdicts in the harness's vocabulary. */
const CLASS_OF: Record<WalErrorCode, string> = {
  UNEXPECTED_EOF: "torn",
  CRC_MISMATCH: "crc",
  DECODE: "decode",
  SNAPSHOT_NOT_FOUND: "snapnotfound",
  SNAPSHOT_MISMATCH: "snapmismatch",
  METADATA_CONFLICT: "metadata",
  SLICE_OUT_OF_RANGE: "slice",
  FILE_NOT_FOUND: "filenotfound",
  IO: "io",
  EXISTS: "exists",
  LOCKED: "locked",
  CLOSED: "closed",
  INVALID_ARGUMENT: "invalid",
  EMPTY_SNAPSHOT: "emptysnap", // .snap files only: never from a WAL
  NO_SNAPSHOT: "nosnap",
  NO_ENTRIES: "noentries", // wal dump-logs only
  COMPACTED: "compacted", // raft storage only
  UNAVAILABLE: "unavailable", // raft storage only
  SNAP_OUT_OF_DATE: "snapoutofdate", // raft storage only
};

/** The four verdicts the comparison is made on: clean, torn, crc, other. */
function coarse(cls: string): string {
  return cls === "ok" ? "clean" : cls === "torn" || cls === "crc" ? cls : "other";
}

function jsonResult(r: ReadAllResult): EtcdOutcome["result"] {
  return {
    metadata: toHex(r.metadata),
    state: {
      term: String(r.state.term),
      vote: String(r.state.vote),
      commit: String(r.state.commit),
    },
    entries: r.entries.map((e) => ({
      term: String(e.term),
      index: String(e.index),
      type: e.type,
      data: toHex(e.data),
    })),
  };
}

function oursAsEtcd(o: Ours): Omit<EtcdVerdicts, "dir"> {
  const replay = (a: Attempt<ReadAllResult>): EtcdOutcome =>
    a.ok
      ? { class: "ok", result: jsonResult(a.value) }
      : { class: CLASS_OF[a.code], error: a.message };
  return {
    read: replay(o.read),
    // etcd's Verify accepts a torn tail silently, as ours does (it reports it, not throws)
    verify: o.verify.ok
      ? { class: "ok" }
      : { class: CLASS_OF[o.verify.code], error: o.verify.message },
    write: replay(o.write),
    repair: !o.repair.ok ? "refused" : o.repair.value.repaired ? "repaired" : "clean",
    after: replay(o.after),
  };
}

/** Builds the harness once per run, into the scratch directory. */
function buildHarness(tmp: string): string {
  const out = join(tmp, "etcd34compat");
  execFileSync("sh", ["compat/etcd34/build.sh", out], { stdio: "inherit" });
  return out;
}

/** Runs `classify` on `dirs` in two processes at once (one per core here). */
async function etcdClassify(harness: string, tmp: string, dirs: string[]): Promise<EtcdVerdicts[]> {
  const { execFile } = await import("node:child_process");
  const half = Math.ceil(dirs.length / 2);
  const chunks = [dirs.slice(0, half), dirs.slice(half)].filter((c) => c.length > 0);
  const outs = await Promise.all(chunks.map((chunk, k) => {
    const list = join(tmp, `dirs${k}.txt`);
    writeFileSync(list, chunk.join("\n") + "\n");
    return new Promise<string>((resolve, reject) => {
      execFile(
        harness,
        ["classify", list, "--segment-size", String(SEG)],
        { encoding: "utf8", maxBuffer: 1 << 30, timeout: 120_000 },
        (
          err,
          stdout,
          stderr,
        ) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
      );
    });
  }));
  const res = outs.flatMap((o) => o.trim().split("\n").map((l) => JSON.parse(l) as EtcdVerdicts));
  assert.equal(res.length, dirs.length, "one verdict per directory");
  return res;
}

interface DiffCase extends Case {
  family: string;
}

/**
 * The sample both implementations judge: every truncation of the last segment, a sample of
 * the middle segment's, bit flips in every structural byte of the last segment (length
 * words, the end word, record types, tags and data lengths), in every record type and every
 * fourth other structural byte of the earlier segments, in every 41st other byte, and all the
 * special cases above. Each harness call is a process per batch, each case five replays.
 */
function differentialCases(p: Pristine): DiffCase[] {
  const out: DiffCase[] = [];
  for (const c of truncationCases(p, last(p))) out.push({ ...c, family: "truncated last segment" });
  const ends = new Set(p.frames[1].map((f) => f.end));
  for (const c of truncationCases(p, 1).filter((_, t) => t < 16 || t % 24 === 5 || ends.has(t))) {
    out.push({ ...c, family: "truncated middle segment" });
  }
  for (let seg = 0; seg < p.names.length; seg++) {
    const size = p.files.get(p.names[seg])!.length;
    for (let i = 0; i < size; i++) {
      const role = roleAt(p, seg, i);
      const structural = /length|word|type|tag/.test(role);
      if (
        (structural && (seg === last(p) || i % 4 === 0)) || /\.type$/.test(role) || i % 41 === 0
      ) {
        const c = flipCase(p, seg, i);
        out.push({ ...c, family: `bit flip: ${c.role}` });
      }
    }
  }
  for (const c of sectorCases(p)) out.push({ ...c, family: "zeroed sector" });
  for (const c of tailCases(p)) out.push({ ...c, family: "tail garbage or huge length" });
  for (const c of [...chainCases(p), ...layoutCases(p)]) out.push({ ...c, family: c.name });
  return out;
}

const OPS = ["read", "verify", "write", "repair", "after"] as const;

describe("differential against etcd 3.4's Go wal package (compat/etcd34 classify)", () => {
  const skip = goMissing !== null && process.env.CI !== "true" ? goMissing : false;
  if (skip) console.warn(`SKIPPED etcd differential corruption tests: ${skip}`);
  test(
    `the same corrupted bytes get the same verdicts, or documented different ones${SAMPLED}`,
    { skip },
    async () => {
      if (goMissing !== null) {
        throw new Error(
          `the etcd differential cannot run in CI: ${goMissing}`,
        );
      }
      const p = await pristine();
      await withScratch(async (tmp) => {
        const t0 = performance.now();
        const harness = buildHarness(tmp);
        const cases = sweep("differential", differentialCases(p));
        const dirs = cases.map((c, i) => {
          const d = join(tmp, "etcd", `c${i}`);
          materialize(d, c.files);
          return d;
        });
        const t1 = performance.now();
        const theirsP = etcdClassify(harness, tmp, dirs);
        const ours: Ours[] = new Array(cases.length);
        await inLanes(tmp, cases.map((c, i) => ({ c, i })), async ({ c, i }, work) => {
          ours[i] = await runCase(p, work, c);
        });
        const theirs = await theirsP;
        const t2 = performance.now();
        const same = new Tally();
        const differ = new Tally();
        const examples = new Map<string, string>();
        for (let i = 0; i < cases.length; i++) {
          const c = cases[i];
          const a = oursAsEtcd(ours[i]);
          const b = theirs[i];
          assert.equal(b.dir, dirs[i]);
          const diffs: string[] = [];
          for (const op of OPS) {
            const x = op === "repair" ? a.repair : coarse(a[op].class);
            const y = op === "repair" ? b.repair : coarse(b[op].class);
            if (x !== y) {
              diffs.push(
                `${op}: ours ${op === "repair" ? x : a[op].class}, etcd ${
                  op === "repair" ? y : b[op].class
                }`,
              );
            } else if (op !== "repair" && op !== "verify" && x === "clean") {
              // where both read the WAL, they read the same metadata, state and entries
              assert.deepEqual(
                a[op].result,
                b[op].result,
                `${c.name}: ${op}: etcd read other content`,
              );
            }
          }
          if (diffs.length === 0) {
            same.add(c.family);
            continue;
          }
          const reason = documentedDifference(p, c, ours[i], b);
          assert.ok(
            reason !== null,
            `${c.name}: an undocumented difference from etcd: ${diffs.join("; ")}\n  ours: ${
              errText(ours[i].write)
            }\n  etcd: ${b.write.error ?? "ok"}`,
          );
          const key = `${reason}: ${c.family} | ${diffs.join("; ")}`;
          differ.add(key);
          if (!examples.has(reason)) {
            examples.set(
              reason,
              `${c.name}\n    ours: ${codeOf(ours[i].write)} ${
                errText(ours[i].write)
              }\n    etcd: ${b.write.class} ${b.write.error ?? ""}`,
            );
          }
        }
        same.print(
          "differential: the same verdicts as etcd 3.4 (read, verify, write, repair, reopen)",
        );
        differ.print("differential: documented differences from etcd 3.4");
        for (const [k, v] of examples) console.log(`example of "${k}": ${v}`);
        console.log(
          `differential: ${cases.length} cases; setup ${(t1 - t0).toFixed(0)} ms, run ${
            (t2 - t1).toFixed(0)
          } ms`,
        );
      });
    },
  );
});

/** The length word at `off` of `bytes` as etcd 3.4 reads it: record bytes and padding. */
function lengthAt(bytes: Uint8Array, off: number): { rec: number; pad: number } | null {
  if (off + 8 > bytes.length) return null;
  const w = u64le(bytes, off);
  return { rec: Number(w & ((1n << 56n) - 1n)), pad: w >> 63n ? Number((w >> 56n) & 7n) : 0 };
}

/**
 * Why our verdicts may differ from etcd 3.4's on this case, or null when no documented
 * difference explains it. Each reason checks the shape of both verdicts, not just names it.
 */
function documentedDifference(p: Pristine, c: DiffCase, o: Ours, e: EtcdVerdicts): string | null {
  const w = o.write;
  const file = !w.ok && w.file ? w.file.slice(w.file.lastIndexOf("/") + 1) : "";
  const bytes = c.files.get(file);
  const isLastFile = file ===
    [...c.files.keys()].filter((n) => /^[0-9a-f]{16}-[0-9a-f]{16}\.wal$/.test(n)).sort().pop();
  const prefixOrNotFound = (x: EtcdOutcome) =>
    (x.class === "ok" && isPrefix(x.result!.entries.map(fromJsonEntry), p.entries)) ||
    x.class === "snapnotfound";

  // README: "Segment sequence numbers must be consecutive from the first one replay reads
  // (etcd skips the check after sequence 0)": etcd reads on and finds the chain broken.
  if (c.family.startsWith("the middle segment is missing")) {
    return codeOf(w) === "FILE_NOT_FOUND" && e.write.class === "crc" && e.read.class === "crc"
      ? "etcd skips the sequence check after sequence 0"
      : null;
  }
  // README: "segment names must have exactly 16 hex digits on each side (Go's Sscanf also
  // takes shorter ones)": etcd reads the stray file as a fourth segment; we ignore it.
  if (c.family.includes("short hex fields")) {
    return w.ok && e.write.class !== "ok"
      ? "Go's Sscanf takes segment names with short hex fields"
      : null;
  }
  // README: "verify ... checks entry indexes for gaps too": where replay (ours and etcd's)
  // fails with a gap, our verify does too; etcd's Verify does not look.
  if (
    codeOf(o.verify) === "SLICE_OUT_OF_RANGE" && e.verify.class === "ok" &&
    codeOf(w) === "SLICE_OUT_OF_RANGE"
  ) {
    return "verify checks entry indexes for gaps";
  }
  // README: "A last segment that ends in fewer than 8 zero bytes ends cleanly here; etcd
  // reports io.ErrUnexpectedEOF and needs a repair."
  if (w.ok && c.family === "truncated last segment" && e.write.class === "torn") {
    const lastName = [...c.files.keys()].filter((n) => n.endsWith(".wal")).sort().pop()!;
    const tail = c.files.get(lastName);
    const used = p.used[p.names.indexOf(lastName)];
    return tail instanceof Uint8Array && tail.length > used && tail.length < used + 8 &&
        tail.subarray(used).every((x) => x === 0)
      ? "a short zero tail ends the records"
      : null;
  }
  if (w.ok || !(bytes instanceof Uint8Array) || w.offset === undefined) return null;
  const len = lengthAt(bytes, w.offset);

  // etcd 3.4 refuses a length word of 10 MiB or more (ErrMaxWALEntrySizeLimitExceeded)
  // before looking at the file; current etcd, and we, compare it with what is left of the
  // file: a torn tail in the last segment (UNEXPECTED_EOF), corruption in an earlier one.
  if (e.write.class === "maxsize") {
    const overLimit = len !== null && len.rec >= ETCD34_MAX_RECORD - len.pad;
    const current = isLastFile
      ? w.code === "UNEXPECTED_EOF" && o.read.ok && o.repair.ok && o.repair.value.repaired &&
        o.after.ok
      : w.code === "CRC_MISMATCH";
    const refused = e.read.class === "maxsize" &&
      (isLastFile ? e.repair === "refused" : e.repair === "clean");
    return overLimit && current && refused
      ? "etcd 3.4's 10 MiB record limit (current etcd: a torn tail)"
      : null;
  }

  // README: "A segment before the last that ends inside a record is CRC_MISMATCH in every
  // mode. Current etcd reports io.ErrUnexpectedEOF, and its read mode then ends replay
  // quietly, dropping every later segment." (etcd 3.4 does the same as current etcd.)
  if (w.code === "CRC_MISMATCH" && !isLastFile) {
    const short = len === null || len.rec + len.pad > bytes.length - w.offset - 8;
    const etcdTorn = e.write.class === "torn" && prefixOrNotFound(e.read) &&
      e.after.class === "torn" &&
      e.repair === "clean" && o.repair.ok && !o.repair.value.repaired;
    return short && etcdTorn ? "a short record before the last segment" : null;
  }

  // etcd 3.4 unmarshals records with gogoproto, whose Unmarshal returns io.ErrUnexpectedEOF
  // for a field that runs past the record (or an unterminated group); its decoder passes
  // that on as a torn tail, in any segment, so read mode stops quietly there and Repair
  // truncates the last segment at it. Current etcd (google.golang.org/protobuf) gets a parse
  // error, as we do (DECODE), and both still call a record torn when a sector of it is zeros.
  if (w.code === "DECODE" && w.reason.startsWith("malformed record:")) {
    const etcdTorn = e.write.class === "torn" && prefixOrNotFound(e.read) &&
      (isLastFile
        ? e.repair === "repaired" && prefixOrNotFound(e.after) && !o.repair.ok &&
          o.repair.code === "DECODE"
        : e.repair === "clean" && e.after.class === "torn");
    return etcdTorn
      ? "etcd 3.4's gogoproto reports a truncated record as io.ErrUnexpectedEOF"
      : null;
  }
  return null;
}

function fromJsonEntry(j: unknown): Entry {
  const e = j as { term: string; index: string; type: number; data: string };
  const data = new Uint8Array(e.data.length / 2);
  for (let i = 0; i < data.length; i++) data[i] = parseInt(e.data.slice(2 * i, 2 * i + 2), 16);
  return { term: BigInt(e.term), index: BigInt(e.index), type: e.type, data };
}
