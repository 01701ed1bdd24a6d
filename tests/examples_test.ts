/**
 * End-to-end tests of the example key-value servers (examples/deno_kv and examples/bun_kv).
 * Each server runs as a child process (Deno's and Bun's, whichever runtime runs this file) on
 * a free port with a fresh data directory, and is driven over HTTP:
 *
 * - sequential, then concurrent writes (puts of new keys, overwrites, deletes), every one
 *   acknowledged, then read back; the concurrent ones must have been group-committed (fewer
 *   write(2) calls than saves, as the server's /stats counts them);
 * - a second server on the same directory must refuse to start (the WAL is locked);
 * - several times: a burst of concurrent writes, SIGKILL in the middle of it (with requests
 *   in flight), a restart on the same directory, and a read of every key ever written. A key
 *   must hold its last acknowledged value (or be gone when that was a delete), unless a write
 *   to it was in flight at the kill, in which case it may hold that write's value instead;
 *   never anything else. Twice per server the torn tail of an interrupted write is simulated
 *   before the restart, which the server must repair. The key listing must match too;
 * - writes after the last recovery, a clean SIGTERM shutdown (exit 0), then the WAL is read
 *   directly with the library: entries 1..N, hard state {term 1, vote 1, commit N}, and the
 *   map they rebuild is exactly what the server served; a last restart serves it too.
 *
 * Writes to one key are never concurrent (a client-side per-key lock), so "the last
 * acknowledged value" is well defined; writes to different keys are.
 *
 * The example raft node (examples/raft_node, on Deno and on Bun) is driven the same way: bursts
 * of concurrent proposals, SIGKILL mid-burst, a restart (once over a torn tail), and then the
 * whole log read back with paged GET /entries: contiguous, every acknowledged proposal at its
 * index with its data and term, nothing else but leaders' empty entries and proposals in
 * flight at a kill, GET /term agreeing. Then snapshots with compaction (and purge), a kill and
 * restart that must boot from the last snapshot, and after a clean stop the data directory
 * opened with RaftStorage must hold exactly what the node served.
 *
 * Environment: EXAMPLES_SEED (default: random; printed in the summary and on failure).
 */

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, writeSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { Buffer } from "node:buffer";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { repair, WAL } from "../mod.ts";
import { decodeOp, METADATA } from "../examples/kv_store.ts";
import { RaftStorage } from "../raft.ts";
import {
  type EntryJson,
  METADATA as RAFT_METADATA,
  type NodeState,
} from "../examples/raft_node/raft_node.ts";
import { randInt, rng, withTempDir } from "./helpers.ts";

const SEED = Number(process.env.EXAMPLES_SEED ?? ((Date.now() ^ (process.pid * 65537)) >>> 0));
const PARENT = "Bun" in globalThis ? "Bun" : "Deno" in globalThis ? "Deno" : "Node";
const SEGMENT_SIZE = 64 * 1024;
/** Kill/restart cycles per server. */
const CYCLES = 6;
/** The cycles after whose kill a torn tail is simulated. */
const TORN_CYCLES = [2, 5];

const bin = join(process.cwd(), "node_modules/.bin");

/** A server to start: its runtime, command line (before `<dir> <port>`) and environment. */
interface Server {
  name: string;
  cmd: string;
  args: string[];
  env: Record<string, string>;
}

const servers: Server[] = [
  {
    name: "Deno",
    cmd: join(bin, "deno"),
    args: ["run", "-A", join(process.cwd(), "examples/deno_kv/server.ts")],
    env: { KV_SEGMENT_SIZE: String(SEGMENT_SIZE) },
  },
  {
    name: "Bun",
    cmd: join(bin, "bun"),
    args: [join(process.cwd(), "examples/bun_kv/server.ts")],
    env: { KV_SEGMENT_SIZE: String(SEGMENT_SIZE) },
  },
];

/** Bounds a promise: rejects with `what` after `ms`. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A running server process. */
interface Running {
  child: ChildProcess;
  base: string;
  /** Resolves with the exit code and signal once the process is gone. */
  exited: Promise<{ code: number | null; signal: string | null }>;
  stdout: () => string;
  stderr: () => string;
}

/** Every child this file started and has not seen exit: killed in `finally`. */
const children = new Set<ChildProcess>();

function spawnServer(
  srv: Server,
  dir: string,
): { child: ChildProcess; exited: Running["exited"]; stderr: () => string; stdout: () => string } {
  const child = spawn(srv.cmd, [...srv.args, dir, "0"], {
    env: { ...process.env, ...srv.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (s: string) => {
    if (out.length < 20_000) out += s;
  });
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (s: string) => {
    if (err.length < 20_000) err += s;
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.once("error", (e) => {
      err += String(e);
      children.delete(child);
      resolve({ code: null, signal: null });
    });
    child.once("close", (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return { child, exited, stderr: () => err, stdout: () => out };
}

/** Starts a server on a free port and waits (bounded) for its `listening on <port>`. */
async function startServer(srv: Server, dir: string): Promise<Running> {
  const p = spawnServer(srv, dir);
  let dead = false;
  p.exited.then(() => (dead = true));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const m = /^listening on (\d+)$/m.exec(p.stdout());
    if (m !== null) {
      return {
        child: p.child,
        base: `http://127.0.0.1:${m[1]}`,
        exited: p.exited,
        stdout: p.stdout,
        stderr: p.stderr,
      };
    }
    if (dead) {
      throw new Error(`the ${srv.name} server exited before listening: ${p.stderr()}`);
    }
    if (Date.now() > deadline) {
      p.child.kill("SIGKILL");
      throw new Error(`the ${srv.name} server did not listen within 30 s: ${p.stderr()}`);
    }
    await sleep(10);
  }
}

async function killServer(s: Running): Promise<void> {
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGKILL");
  const { signal } = await within(10_000, "a killed server to exit", s.exited);
  assert.equal(signal, "SIGKILL", `server ended by ${signal}, not SIGKILL: ${s.stderr()}`);
}

/** A value as the model keeps it: base64 of its bytes; null for "absent". */
type Val = string | null;
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");

interface KeyModel {
  /** What the server must show: the last acknowledged write's value (or what was seen). */
  required: Val;
  /** Values of writes sent after `required` and never acknowledged: may show instead. */
  maybe: Val[];
  /** Every value ever sent for the key (for the failure message). */
  sent: Set<string>;
}

interface Counts {
  acked: number;
  inFlightAtKill: number;
  inFlightSurvived: number;
  inFlightLost: number;
  restarts: number;
  repaired: number;
  seqMs: number;
  seqWrites: number;
  concMs: number;
  concWrites: number;
  concSaves: number;
  concGroups: number;
}

async function request(
  base: string,
  method: string,
  key: string,
  body?: Uint8Array<ArrayBuffer>,
): Promise<{ status: number; bytes: Uint8Array }> {
  const res = await fetch(`${base}/kv/${encodeURIComponent(key)}`, {
    method,
    body,
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()) };
}

async function getJson<T>(base: string, path: string): Promise<T> {
  const res = await fetch(base + path, { signal: AbortSignal.timeout(15_000) });
  assert.equal(res.status, 200, `GET ${path}`);
  return await res.json() as T;
}

interface Stats {
  index: number;
  keys: number;
  created: boolean;
  replayed: number;
  repaired: boolean;
  saves: number;
  writes: number;
  fsyncs: number;
  cuts: number;
}

/** The client side: the model, the key universe, and writers that keep it up to date. */
class Workload {
  readonly model = new Map<string, KeyModel>();
  private readonly busy = new Set<string>();
  private nextKey = 0;
  private writeNo = 0;
  readonly random: () => number;
  /** Requests sent and not yet answered (or failed). */
  inFlight = 0;
  acked = 0;

  constructor(seed: number, private readonly tag: string) {
    this.random = rng(seed);
  }

  private newKey(): string {
    const n = this.nextKey++;
    // a few keys that need escaping in a URL, or hold a slash, or are not ASCII
    switch (n % 50) {
      case 7:
        return `user/${n}/profile`;
      case 19:
        return `key with spaces & symbols ?#% ${n}`;
      case 33:
        return `ключ-ü-${n}-😀`;
      default:
        return `key-${n}`;
    }
  }

  private newValue(key: string): Uint8Array<ArrayBuffer> {
    const no = this.writeNo++;
    const r = this.random();
    if (r < 0.1) {
      // binary, not valid UTF-8: a unique 8-byte prefix, then random bytes
      const out = new Uint8Array(8 + randInt(this.random, 0, 300));
      new DataView(out.buffer).setUint32(0, no);
      out[4] = 0xff;
      out[5] = 0xfe;
      for (let i = 6; i < out.length; i++) out[i] = randInt(this.random, 0, 255);
      return out;
    }
    const len = r < 0.2 ? randInt(this.random, 1000, 4000) : randInt(this.random, 0, 500);
    return new TextEncoder().encode(`${this.tag}#${no} ${key} ` + "v".repeat(len));
  }

  /** Picks a key that no write is in flight for, and what to do to it. */
  private pick(): { key: string; op: "put" | "delete" } {
    const r = this.random();
    if (r >= 0.4 && this.model.size > 0) {
      const keys = [...this.model.keys()];
      for (let tries = 0; tries < 8; tries++) {
        const key = keys[randInt(this.random, 0, keys.length - 1)];
        if (this.busy.has(key)) continue;
        const present = this.model.get(key)!.required !== null;
        if (r < 0.8) return { key, op: "put" }; // an overwrite (or a put after a delete)
        if (present) return { key, op: "delete" };
      }
    }
    return { key: this.newKey(), op: "put" };
  }

  /**
   * Sends one write and records the outcome. Returns false when it was not acknowledged
   * (the server is gone). Any HTTP answer other than 200 fails the test.
   */
  async writeOne(base: string): Promise<boolean> {
    const { key, op } = this.pick();
    let m = this.model.get(key);
    if (m === undefined) {
      m = { required: null, maybe: [], sent: new Set() };
      this.model.set(key, m);
    }
    const value = op === "put" ? this.newValue(key) : null;
    const val: Val = value === null ? null : b64(value);
    if (val !== null) m.sent.add(val);
    m.maybe.push(val);
    this.busy.add(key);
    this.inFlight++;
    let res;
    try {
      res = await request(base, op === "put" ? "PUT" : "DELETE", key, value ?? undefined);
    } catch {
      return false; // no answer: stays in `maybe`
    } finally {
      this.inFlight--;
      this.busy.delete(key);
    }
    assert.equal(res.status, 200, `${op} ${key}: ${new TextDecoder().decode(res.bytes)}`);
    m.required = val;
    m.maybe = [];
    this.acked++;
    return true;
  }

  /**
   * Reads every key back and checks it against the model: each must hold its last
   * acknowledged value, or the value of a write that was in flight at a kill. Afterwards the
   * model is what was seen (the log is fixed now). Returns how many in-flight writes turned
   * out durable, and how many not.
   */
  async verify(base: string, how: string): Promise<{ survived: number; lost: number }> {
    let survived = 0;
    let lost = 0;
    const keys = [...this.model.keys()];
    let next = 0;
    const reader = async () => {
      while (next < keys.length) {
        const key = keys[next++];
        const m = this.model.get(key)!;
        const res = await request(base, "GET", key);
        assert.ok(res.status === 200 || res.status === 404, `GET ${key}: ${res.status}`);
        const seen: Val = res.status === 404 ? null : b64(res.bytes);
        if (seen !== m.required && !m.maybe.includes(seen)) {
          const what = seen === null
            ? "is missing"
            : m.sent.has(seen)
            ? "holds an older value"
            : "holds a value never sent for it";
          assert.fail(
            `${how}: key ${JSON.stringify(key)} ${what}: expected ${
              m.required === null ? "absent" : "its last acknowledged value"
            }${m.maybe.length > 0 ? " or the one in flight at the kill" : ""}`,
          );
        }
        if (m.maybe.length > 0) {
          if (seen !== m.required) survived++;
          else lost++;
        }
        m.required = seen;
        m.maybe = [];
      }
    };
    await Promise.all(Array.from({ length: 16 }, reader));
    const listed = await getJson<string[]>(base, "/kv");
    const present = [...this.model].filter(([, m]) => m.required !== null).map(([k]) => k);
    assert.deepEqual(listed, present.sort(), `${how}: GET /kv lists other keys than were read`);
    return { survived, lost };
  }

  /** The model's map, base64 values, for comparing with the WAL's contents. */
  present(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [k, m] of this.model) if (m.required !== null) out.set(k, m.required);
    return out;
  }
}

/** Runs `n` writes, `width` at a time; all must be acknowledged. */
async function writeAll(w: Workload, base: string, n: number, width: number): Promise<void> {
  let left = n;
  const writer = async () => {
    while (left > 0) {
      left--;
      assert.ok(await w.writeOne(base), "a write failed while the server was up");
    }
  };
  await within(30_000, `${n} writes`, Promise.all(Array.from({ length: width }, writer)));
}

/**
 * Writes with `width` concurrent clients until the server is SIGKILLed, which happens once
 * `killAfter` writes of the burst were acknowledged. Returns the requests in flight then.
 */
async function burstAndKill(
  w: Workload,
  s: Running,
  width: number,
  killAfter: number,
): Promise<number> {
  let stop = false;
  const start = w.acked;
  let inFlightAtKill = -1;
  const killed = (async () => {
    const deadline = Date.now() + 20_000;
    while (w.acked - start < killAfter) {
      if (Date.now() > deadline) throw new Error("the burst made no progress in 20 s");
      await sleep(1);
    }
    inFlightAtKill = w.inFlight;
    s.child.kill("SIGKILL");
    stop = true;
  })();
  const writer = async () => {
    while (!stop) if (!(await w.writeOne(s.base))) break;
  };
  // The writers end when the server is gone (their requests fail) or on `stop`.
  await within(
    30_000,
    "a burst of writes and the kill",
    Promise.all([killed, ...Array.from({ length: width }, writer)]),
  );
  await killServer(s);
  return inFlightAtKill;
}

/**
 * Simulates the torn tail of a write interrupted half-way: at the end of the last segment's
 * good records, a frame whose length word promises 2,048 bytes, of which only the first 24
 * (garbage) made it to disk, the rest of the sectors being zeros. It was never acknowledged.
 */
async function tearTail(dir: string): Promise<void> {
  // On a clean log, repair changes nothing and says where the good records end.
  const end = await repair(dir, { segmentSizeBytes: SEGMENT_SIZE });
  const frame = new Uint8Array(8 + 24);
  new DataView(frame.buffer).setBigUint64(0, 2048n, true);
  frame.fill(0xa5, 8);
  const fd = openSync(end.file, "r+");
  try {
    writeSync(fd, frame, 0, frame.length, end.offset);
  } finally {
    closeSync(fd);
  }
}

/** Replays the WAL with the library and rebuilds the map from the entries. */
async function mapFromWal(dir: string): Promise<{ map: Map<string, string>; n: bigint }> {
  const wal = await WAL.openForRead(dir, undefined, { segmentSizeBytes: SEGMENT_SIZE });
  const { metadata, state, entries } = await wal.readAll();
  await wal.close();
  assert.equal(new TextDecoder().decode(metadata), METADATA);
  const map = new Map<string, string>();
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    assert.equal(e.index, BigInt(i + 1), "the log's entries are not 1..N");
    assert.equal(e.term, 1n);
    const op = decodeOp(e.data);
    if (op.op === "put") map.set(op.key, b64(op.value));
    else map.delete(op.key);
  }
  const n = BigInt(entries.length);
  assert.deepEqual(state, { term: 1n, vote: 1n, commit: n }, "hard state after a clean stop");
  return { map, n };
}

async function scenario(srv: Server, seed: number): Promise<Counts> {
  const c: Counts = {
    acked: 0,
    inFlightAtKill: 0,
    inFlightSurvived: 0,
    inFlightLost: 0,
    restarts: 0,
    repaired: 0,
    seqMs: 0,
    seqWrites: 40,
    concMs: 0,
    concWrites: 0,
    concSaves: 0,
    concGroups: 0,
  };
  const w = new Workload(seed, srv.name);
  await withTempDir(async (tmp) => {
    const dir = join(tmp, "data", "kv"); // neither exists yet: the server creates them
    let s = await startServer(srv, dir);
    const stats0 = await getJson<Stats>(s.base, "/stats");
    assert.equal(stats0.created, true);

    // Sequential writes, then concurrent ones; every one acknowledged.
    let t = performance.now();
    await writeAll(w, s.base, c.seqWrites, 1);
    c.seqMs = performance.now() - t;
    // Concurrent writes are grouped when saves meet at the WAL. Whether they meet is up to
    // the scheduler: on a loaded machine a round can arrive one save at a time, so up to
    // five rounds are made, and one of them must have been grouped.
    for (let round = 1; round <= 5; round++) {
      const before = await getJson<Stats>(s.base, "/stats");
      t = performance.now();
      await writeAll(w, s.base, 200, 16);
      c.concMs += performance.now() - t;
      const after = await getJson<Stats>(s.base, "/stats");
      c.concWrites = 200 * round;
      const saves = after.saves - before.saves;
      assert.equal(saves, 200, "saves counted by the server != writes sent");
      c.concSaves += saves;
      c.concGroups += after.writes - before.writes;
      if (after.writes - before.writes < saves) break;
    }
    assert.ok(
      c.concGroups < c.concSaves,
      `no group commit: in 5 rounds, ${c.concSaves} concurrent saves took ${c.concGroups} writes`,
    );
    await w.verify(s.base, "before any kill");

    // A second server on the same directory must not start: the WAL is locked.
    const second = spawnServer(srv, dir);
    const { code } = await within(30_000, "a second server to give up", second.exited);
    assert.notEqual(code, 0, "a second server started on a locked WAL");
    assert.match(second.stderr(), /cannot start: LOCKED/, `second server: ${second.stderr()}`);
    assert.doesNotMatch(second.stdout(), /listening/);

    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      const how = `cycle ${cycle}`;
      const inFlight = await burstAndKill(w, s, 24, randInt(w.random, 20, 150));
      assert.ok(inFlight > 0, `${how}: no request was in flight at the kill`);
      c.inFlightAtKill += inFlight;
      const torn = TORN_CYCLES.includes(cycle);
      if (torn) await tearTail(dir);
      s = await startServer(srv, dir);
      c.restarts++;
      const st = await getJson<Stats>(s.base, "/stats");
      assert.equal(st.created, false, `${how}: the server created a new WAL`);
      if (torn) {
        assert.equal(st.repaired, true, `${how}: the torn tail was not repaired`);
        assert.ok(readdirSync(dir).some((n) => n.endsWith(".wal.broken")));
      }
      if (st.repaired) c.repaired++;
      const r = await w.verify(s.base, `after the kill of ${how}`);
      c.inFlightSurvived += r.survived;
      c.inFlightLost += r.lost;
      assert.equal(
        st.index,
        st.replayed,
        `${how}: the replayed entries are not exactly 1..${st.index}`,
      );
    }

    // Writes after the last recovery, then a clean stop.
    await writeAll(w, s.base, 60, 8);
    await w.verify(s.base, "after the last recovery");
    s.child.kill("SIGTERM");
    const stopped = await within(10_000, "the server to stop on SIGTERM", s.exited);
    assert.match(s.stdout(), /^stopped$/m, `SIGTERM did not stop it cleanly: ${s.stderr()}`);
    // Deno's node:child_process reports a child it sent a signal to as killed by that signal,
    // even when the child handled it and exited 0; Bun's reports the real exit status.
    if (PARENT !== "Deno") {
      assert.equal(
        stopped.code,
        0,
        `SIGTERM: exit ${stopped.code}/${stopped.signal}: ${s.stderr()}`,
      );
    }

    // The WAL itself holds exactly what the server served.
    const segments = readdirSync(dir).filter((n) => n.endsWith(".wal"));
    assert.ok(segments.length >= 3, `only ${segments.length} segment(s): no cuts`);
    const { map } = await mapFromWal(dir);
    assert.deepEqual(map, w.present(), "the map replayed from the WAL differs from the model");

    // And a server started on it serves it.
    s = await startServer(srv, dir);
    c.restarts++;
    await w.verify(s.base, "after the clean stop");
    await killServer(s);
  });
  c.acked = w.acked;
  return c;
}

describe(`example KV servers (${PARENT} test runner)`, () => {
  for (const [k, srv] of servers.entries()) {
    test(`${srv.name} server: acknowledged writes survive SIGKILL and restart`, {
      skip: existsSync(srv.cmd) ? false : `${srv.cmd} not installed (npm ci)`,
    }, async () => {
      const seed = (SEED + k * 0x9e3779b9) >>> 0;
      const started = Date.now();
      try {
        const c = await scenario(srv, seed);
        const rate = (n: number, ms: number) => Math.round(n / (ms / 1000));
        console.log(
          `examples test: ${PARENT} runner, ${srv.name} server, seed ${seed} ` +
            `(EXAMPLES_SEED=${SEED}): ${c.acked} writes acknowledged; ` +
            `sequential ${rate(c.seqWrites, c.seqMs)}/s, 16 concurrent ` +
            `${rate(c.concWrites, c.concMs)}/s (${c.concSaves} saves in ${c.concGroups} writes); ` +
            `${CYCLES} SIGKILLs with ${c.inFlightAtKill} requests in flight ` +
            `(${c.inFlightSurvived} found durable, ${c.inFlightLost} not); ` +
            `${c.restarts} restarts, ${c.repaired} repaired a torn tail; ` +
            `${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
      } catch (e) {
        throw new Error(
          `${srv.name} server, seed ${seed} (EXAMPLES_SEED=${SEED}): ${
            e instanceof Error ? e.message : e
          }`,
          { cause: e },
        );
      } finally {
        for (const child of children) child.kill("SIGKILL");
        const left = [...children].map((ch) => new Promise((r) => ch.once("close", r)));
        await within(10_000, "children to exit", Promise.all(left)).catch(() => {});
      }
    });
  }
});

// ---- The example raft node (examples/raft_node) ----

const RAFT_RETAIN = 2;
const RAFT_CACHE_BYTES = 256 * 1024;
/** Kill/restart cycles of the raft node before its snapshots, and the one with a torn tail. */
const RAFT_CYCLES = 4;
const RAFT_TORN_CYCLE = 3;

const raftEnv = {
  RAFT_SEGMENT_SIZE: String(SEGMENT_SIZE),
  RAFT_RETAIN: String(RAFT_RETAIN),
  RAFT_CACHE_BYTES: String(RAFT_CACHE_BYTES),
};
const raftServers: Server[] = [
  {
    name: "Deno",
    cmd: join(bin, "deno"),
    args: ["run", "-A", join(process.cwd(), "examples/raft_node/deno_server.ts")],
    env: raftEnv,
  },
  {
    name: "Bun",
    cmd: join(bin, "bun"),
    args: [join(process.cwd(), "examples/raft_node/bun_server.ts")],
    env: raftEnv,
  },
];

/** A request to the raft node: its status and JSON answer. */
async function raftCall<T>(
  base: string,
  method: string,
  path: string,
  body?: Uint8Array<ArrayBuffer>,
): Promise<{ status: number; json: T }> {
  const res = await fetch(base + path, { method, body, signal: AbortSignal.timeout(15_000) });
  return { status: res.status, json: await res.json() as T };
}

/** A GET that must answer 200. */
async function raftGet<T>(base: string, path: string): Promise<T> {
  const { status, json } = await raftCall<T>(base, "GET", path);
  assert.equal(status, 200, `GET ${path}: ${status} ${JSON.stringify(json)}`);
  return json;
}

/** A GET that must fail with `status` and storage error `code`. */
async function raftGetFails(base: string, path: string, status: number, code: string) {
  const r = await raftCall<{ error: string }>(base, "GET", path);
  assert.equal(r.status, status, `GET ${path}: ${r.status} ${JSON.stringify(r.json)}`);
  assert.equal(r.json.error, code, `GET ${path}`);
}

/** Walks the node's whole log with paged `GET /entries`; checks the indexes are contiguous. */
async function raftLog(base: string, st: NodeState, how: string): Promise<EntryJson[]> {
  const out: EntryJson[] = [];
  let lo = st.firstIndex;
  while (lo <= st.lastIndex) {
    const page = await raftGet<EntryJson[]>(
      base,
      `/entries?lo=${lo}&hi=${st.lastIndex + 1}&max=${32 * 1024}`,
    );
    assert.ok(page.length > 0, `${how}: GET /entries from ${lo} answered no entries`);
    for (const e of page) {
      assert.equal(e.index, lo, `${how}: the entries are not contiguous at ${lo}`);
      lo++;
      out.push(e);
    }
  }
  return out;
}

/** The client side of the raft node test: every entry the node must keep serving. */
class RaftWorkload {
  /** By index: acknowledged proposals, and every entry seen after a restart (fixed since). */
  readonly known = new Map<number, { term: number; data: string }>();
  /** Proposals sent and never answered (base64 data): may show up after a restart. */
  readonly pending = new Set<string>();
  readonly random: () => number;
  inFlight = 0;
  acked = 0;
  /** Bytes of data acknowledged. */
  ackedBytes = 0;
  /** Unanswered proposals found in the log. */
  survived = 0;
  private no = 0;

  constructor(seed: number, private readonly tag: string) {
    this.random = rng(seed);
  }

  private newData(): Uint8Array<ArrayBuffer> {
    const no = this.no++;
    const r = this.random();
    if (r < 0.1) {
      const out = new Uint8Array(8 + randInt(this.random, 0, 300));
      new DataView(out.buffer).setUint32(0, no);
      out[4] = 0xff;
      for (let i = 5; i < out.length; i++) out[i] = randInt(this.random, 0, 255);
      return out;
    }
    const len = r < 0.2 ? randInt(this.random, 2000, 6000) : randInt(this.random, 0, 1200);
    return new TextEncoder().encode(`${this.tag}#${no} ` + "p".repeat(len));
  }

  /** Proposes one entry; false when it was not answered (the node is gone). */
  async proposeOne(base: string, term: number): Promise<boolean> {
    const data = this.newData();
    const d = b64(data);
    this.pending.add(d);
    this.inFlight++;
    let r;
    try {
      r = await raftCall<{ index: number; term: number }>(base, "POST", "/propose", data);
    } catch {
      return false; // no answer: stays pending
    } finally {
      this.inFlight--;
    }
    assert.equal(r.status, 200, `propose: ${r.status} ${JSON.stringify(r.json)}`);
    assert.equal(r.json.term, term, "a proposal was answered with another term than the node's");
    assert.ok(!this.known.has(r.json.index), `index ${r.json.index} was handed out twice`);
    this.known.set(r.json.index, { term: r.json.term, data: d });
    this.pending.delete(d);
    this.acked++;
    this.ackedBytes += data.length;
    return true;
  }

  /**
   * Reads the node's whole log and checks it: contiguous from its first index to its last;
   * every known entry at or past the first index served with its term and data (one below
   * it only when the snapshot or compaction covers it); every other entry an empty leader
   * entry or a proposal in flight at a kill; terms never decreasing; `/term` agreeing; the
   * errors just outside the log. Afterwards what was seen is known.
   */
  async verify(base: string, how: string): Promise<{ st: NodeState; log: EntryJson[] }> {
    const st = await raftGet<NodeState>(base, "/state");
    const log = await raftLog(base, st, how);
    // Entries before the first index are gone only where the snapshot covers them (this node
    // compacts at or below its snapshot).
    assert.ok(
      st.firstIndex - 1 <= st.snapshot.index,
      `${how}: the log starts at ${st.firstIndex}, past the snapshot at ${st.snapshot.index}`,
    );
    for (const i of this.known.keys()) {
      assert.ok(i <= st.lastIndex, `${how}: acknowledged entry ${i} is past the last index`);
    }
    let prevTerm = 0;
    for (const e of log) {
      assert.equal(e.type, 0, `${how}: entry ${e.index} is not a normal entry`);
      assert.ok(e.term >= prevTerm, `${how}: the term goes down at entry ${e.index}`);
      assert.ok(e.term <= st.term, `${how}: entry ${e.index} has a term past the node's`);
      prevTerm = e.term;
      const k = this.known.get(e.index);
      if (k !== undefined) {
        assert.equal(e.term, k.term, `${how}: entry ${e.index} has another term`);
        assert.equal(e.data, k.data, `${how}: entry ${e.index} has other data`);
        continue;
      }
      assert.ok(
        e.data === "" || this.pending.has(e.data),
        `${how}: entry ${e.index} holds data never proposed (or already at another index)`,
      );
      if (e.data !== "") this.survived++;
      this.pending.delete(e.data);
      this.known.set(e.index, { term: e.term, data: e.data });
    }
    // Terms one at a time: the first, the last, some between, and the compaction point.
    const probes = new Set([st.firstIndex - 1, st.lastIndex]);
    for (let n = 0; n < 8 && log.length > 0; n++) {
      probes.add(log[randInt(this.random, 0, log.length - 1)].index);
    }
    for (const i of probes) {
      const t = await raftGet<{ term: number }>(base, `/term/${i}`);
      const want = i === st.firstIndex - 1 && i === st.snapshot.index
        ? st.snapshot.term
        : this.known.get(i)?.term;
      assert.notEqual(want, undefined, `${how}: no term known for index ${i}`);
      assert.equal(t.term, want, `${how}: GET /term/${i}`);
    }
    await raftGetFails(base, `/term/${st.lastIndex + 1}`, 404, "UNAVAILABLE");
    if (st.firstIndex >= 2) {
      await raftGetFails(base, `/term/${st.firstIndex - 2}`, 410, "COMPACTED");
    }
    await raftGetFails(base, `/entries?lo=${st.firstIndex - 1}`, 410, "COMPACTED");
    await raftGetFails(base, `/entries?hi=${st.lastIndex + 2}`, 404, "UNAVAILABLE");
    if (log.length > 1) {
      const one = await raftGet<EntryJson[]>(base, `/entries?max=1`);
      assert.equal(one.length, 1, `${how}: GET /entries?max=1 answered ${one.length} entries`);
    }
    return { st, log };
  }
}

/** Proposes `n` entries, `width` at a time; all must be acknowledged. */
async function proposeAll(
  w: RaftWorkload,
  base: string,
  term: number,
  n: number,
  width: number,
): Promise<void> {
  let left = n;
  const writer = async () => {
    while (left > 0) {
      left--;
      assert.ok(await w.proposeOne(base, term), "a proposal failed while the node was up");
    }
  };
  await within(30_000, `${n} proposals`, Promise.all(Array.from({ length: width }, writer)));
}

/** Proposes with `width` clients until `killAfter` were acknowledged, then SIGKILLs. */
async function proposeAndKill(
  w: RaftWorkload,
  s: Running,
  term: number,
  width: number,
  killAfter: number,
): Promise<number> {
  let stop = false;
  const start = w.acked;
  let inFlightAtKill = -1;
  const killed = (async () => {
    const deadline = Date.now() + 20_000;
    while (w.acked - start < killAfter) {
      if (Date.now() > deadline) throw new Error("the burst made no progress in 20 s");
      await sleep(1);
    }
    inFlightAtKill = w.inFlight;
    s.child.kill("SIGKILL");
    stop = true;
  })();
  const writer = async () => {
    while (!stop) if (!(await w.proposeOne(s.base, term))) break;
  };
  await within(
    30_000,
    "a burst of proposals and the kill",
    Promise.all([killed, ...Array.from({ length: width }, writer)]),
  );
  await killServer(s);
  return inFlightAtKill;
}

/**
 * Starts the node (after a kill or a stop) and checks what a start must do: it opened the
 * data directory, and campaigned: a term one past the last, its empty entry last, committed.
 */
async function restartRaft(
  srv: Server,
  dir: string,
  w: RaftWorkload,
  prevTerm: number,
  how: string,
): Promise<{ s: Running; st: NodeState; log: EntryJson[] }> {
  const s = await startServer(srv, dir);
  const first = await raftGet<NodeState>(s.base, "/state");
  assert.equal(first.created, false, `${how}: the node created a new data directory`);
  assert.equal(first.term, prevTerm + 1, `${how}: the node did not campaign in a new term`);
  assert.deepEqual(
    first.hardState,
    { term: first.term, vote: 1, commit: first.lastIndex },
    `${how}: the hard state after the campaign`,
  );
  // Nothing read yet: what the storage holds is its index alone, far less than the log.
  if (w.ackedBytes > 256 * 1024) {
    assert.ok(
      first.heldBytes < w.ackedBytes / 8,
      `${how}: ${first.heldBytes} bytes held after open, for ${w.ackedBytes} bytes of entries`,
    );
  }
  const { st, log } = await w.verify(s.base, how);
  const lastEntry = log[log.length - 1];
  assert.deepEqual(
    { index: lastEntry.index, term: lastEntry.term, data: lastEntry.data },
    { index: first.lastIndex, term: first.term, data: "" },
    `${how}: the new leader's empty entry is not last`,
  );
  // Reads go through a cache of at most RAFT_CACHE_BYTES.
  assert.ok(
    st.heldBytes - first.heldBytes <= RAFT_CACHE_BYTES,
    `${how}: ${st.heldBytes - first.heldBytes} bytes cached, more than ${RAFT_CACHE_BYTES}`,
  );
  return { s, st, log };
}

interface RaftCounts {
  acked: number;
  inFlightAtKill: number;
  /** Proposals in flight at a kill found in the log after the restart. */
  survived: number;
  restarts: number;
  entries: number;
  /** WAL writes for the 200 concurrent proposals. */
  concWrites: number;
  snapshots: number;
}

/** The index in a segment's name (`<seq>-<index>.wal`, hex): its first entry's. */
const segmentStart = (name: string) => parseInt(name.slice(17, 33), 16);
const walNames = (dir: string) => readdirSync(dir).filter((n) => n.endsWith(".wal")).sort();
const snapNames = (dir: string) => readdirSync(dir).filter((n) => n.endsWith(".snap")).sort();

async function raftScenario(srv: Server, seed: number): Promise<RaftCounts> {
  const c: RaftCounts = {
    acked: 0,
    inFlightAtKill: 0,
    survived: 0,
    restarts: 0,
    entries: 0,
    concWrites: 0,
    snapshots: 0,
  };
  const w = new RaftWorkload(seed, srv.name);
  await withTempDir(async (tmp) => {
    const dir = join(tmp, "data", "node1"); // neither exists yet: the node creates them
    const walDir = join(dir, "member", "wal");
    const snapDir = join(dir, "member", "snap");
    let s = await startServer(srv, dir);
    let st = await raftGet<NodeState>(s.base, "/state");
    assert.equal(st.created, true);
    assert.deepEqual(
      [st.term, st.firstIndex, st.lastIndex, st.hardState.commit],
      [1, 1, 1, 1],
      "a new node: term 1, its empty entry at index 1, committed",
    );
    w.known.set(1, { term: 1, data: "" });

    await proposeAll(w, s.base, st.term, 20, 1);
    const writes = st.writes;
    await proposeAll(w, s.base, st.term, 200, 16);
    ({ st } = await w.verify(s.base, "before any kill"));
    assert.equal(st.proposals, 220);
    c.concWrites = st.writes - writes;

    // A second node on the same directory must not start: the WAL is locked.
    const second = spawnServer(srv, dir);
    const { code } = await within(30_000, "a second node to give up", second.exited);
    assert.notEqual(code, 0, "a second node started on a locked data directory");
    assert.match(second.stderr(), /cannot start: LOCKED/, `second node: ${second.stderr()}`);

    for (let cycle = 1; cycle <= RAFT_CYCLES; cycle++) {
      const how = `cycle ${cycle}`;
      const inFlight = await proposeAndKill(w, s, st.term, 16, randInt(w.random, 20, 150));
      assert.ok(inFlight > 0, `${how}: no proposal was in flight at the kill`);
      c.inFlightAtKill += inFlight;
      if (cycle === RAFT_TORN_CYCLE) await tearTail(walDir);
      const prevTerm = st.term;
      ({ s, st } = await restartRaft(srv, dir, w, prevTerm, `after the kill of ${how}`));
      c.restarts++;
      if (cycle === RAFT_TORN_CYCLE) {
        assert.equal(st.repaired, true, `${how}: the torn tail was not repaired`);
        assert.ok(readdirSync(walDir).some((n) => n.endsWith(".wal.broken")));
      }
    }

    // Snapshots: enough segments first, then three snapshots, each compacting.
    while (walNames(walDir).length < 6) await proposeAll(w, s.base, st.term, 50, 8);
    const bodies: string[] = [];
    let snap = { index: 0, term: 0, firstIndex: 0 };
    for (const keep of [20, 5, 1]) {
      await proposeAll(w, s.base, st.term, 30, 8);
      const body = new TextEncoder().encode(`application state #${bodies.length} ${srv.name}`);
      const before = await raftGet<NodeState>(s.base, "/state");
      const segsBefore = walNames(walDir);
      const r = await raftCall<typeof snap>(s.base, "POST", `/snapshot?keep=${keep}`, body);
      assert.equal(r.status, 200, `POST /snapshot: ${JSON.stringify(r.json)}`);
      snap = r.json;
      bodies.push(b64(body));
      c.snapshots++;
      assert.equal(snap.index, before.hardState.commit, "the snapshot is not at the commit index");
      assert.equal(snap.term, st.term);
      assert.equal(snap.firstIndex, snap.index - keep + 1, `compaction keeping ${keep} entries`);
      ({ st } = await w.verify(s.base, `after the snapshot keeping ${keep}`));
      assert.deepEqual(st.snapshot, { index: snap.index, term: snap.term });
      assert.equal(st.firstIndex, snap.firstIndex);
      // Purged, as etcd purges: the newest RAFT_RETAIN segments stay, and every segment from
      // the one before the first that starts at or past the compaction point (still locked).
      const compacted = snap.firstIndex - 1;
      const locked = segsBefore.filter((n) => segmentStart(n) >= compacted).length + 1;
      const segs = walNames(walDir);
      assert.ok(
        segs.length <= Math.max(RAFT_RETAIN, locked),
        `${segs.length} segments (of ${segsBefore.length}) after a compaction to ${compacted}`,
      );
      if (bodies.length === 1) assert.ok(segs.length < segsBefore.length, "nothing was purged");
      assert.ok(snapNames(snapDir).length <= RAFT_RETAIN, "snap files were not purged");
    }
    const again = await raftCall<{ error: string }>(s.base, "POST", "/snapshot", new Uint8Array(1));
    assert.deepEqual([again.status, again.json.error], [409, "SNAP_OUT_OF_DATE"]);

    // A kill after the snapshots: the restart boots from the last one, as etcd does.
    await proposeAll(w, s.base, st.term, 40, 8);
    c.inFlightAtKill += await proposeAndKill(w, s, st.term, 16, randInt(w.random, 20, 100));
    const prevTerm = st.term;
    ({ s, st } = await restartRaft(srv, dir, w, prevTerm, "after the snapshots and a kill"));
    c.restarts++;
    assert.deepEqual(st.snapshot, { index: snap.index, term: snap.term });
    assert.equal(
      st.firstIndex,
      snap.index + 1,
      "after a restart, the log starts after the snapshot",
    );
    const held = await raftGet<{ index: number; term: number; voters: number[]; data: string }>(
      s.base,
      "/snapshot",
    );
    assert.deepEqual(held, { index: snap.index, term: snap.term, voters: [1], data: bodies[2] });

    // A clean stop; then the data directory read with the library holds what was served.
    await proposeAll(w, s.base, st.term, 30, 8);
    const { st: last, log } = await w.verify(s.base, "before the clean stop");
    s.child.kill("SIGTERM");
    await within(10_000, "the node to stop on SIGTERM", s.exited);
    assert.match(s.stdout(), /^stopped$/m, `SIGTERM did not stop it cleanly: ${s.stderr()}`);
    const storage = await RaftStorage.open(dir, { segmentSizeBytes: SEGMENT_SIZE });
    try {
      assert.equal(storage.firstIndex(), BigInt(last.firstIndex));
      assert.equal(storage.lastIndex(), BigInt(last.lastIndex));
      const { hardState } = storage.initialState();
      assert.deepEqual(hardState, {
        term: BigInt(last.term),
        vote: 1n,
        commit: BigInt(last.lastIndex),
      });
      const entries = await storage.entries(storage.firstIndex(), storage.lastIndex() + 1n);
      assert.deepEqual(
        entries.map((e) => ({ index: Number(e.index), term: Number(e.term), data: b64(e.data) })),
        log.map((e) => ({ index: e.index, term: e.term, data: e.data })),
        "the entries read with RaftStorage differ from what the node served",
      );
      assert.equal(new TextDecoder().decode(storage.metadata), RAFT_METADATA);
    } finally {
      await storage.close();
    }
    c.entries = log.length;

    // And a node started on it serves it.
    ({ s } = await restartRaft(srv, dir, w, last.term, "after the clean stop"));
    c.restarts++;
    await killServer(s);
  });
  c.acked = w.acked;
  c.survived = w.survived;
  return c;
}

// The servers are the Deno and Bun processes this spawns: one test runner (Deno's) is enough.
describe(`example raft node (${PARENT} test runner)`, () => {
  for (const [k, srv] of raftServers.entries()) {
    test(`${srv.name} raft node: acknowledged proposals survive SIGKILL, snapshots and restarts`, {
      skip: PARENT !== "Deno"
        ? "the raft node servers run under Deno's test runner only"
        : existsSync(srv.cmd)
        ? false
        : `${srv.cmd} not installed (npm ci)`,
    }, async () => {
      const seed = (SEED + 0x5bd1e995 + k * 0x9e3779b9) >>> 0;
      const started = Date.now();
      try {
        const c = await raftScenario(srv, seed);
        console.log(
          `examples test: ${PARENT} runner, ${srv.name} raft node, seed ${seed} ` +
            `(EXAMPLES_SEED=${SEED}): ${c.acked} proposals acknowledged ` +
            `(200 concurrent ones in ${c.concWrites} WAL writes); ` +
            `${RAFT_CYCLES + 1} SIGKILLs with ${c.inFlightAtKill} proposals in flight ` +
            `(${c.survived} found in the log after the restart); ` +
            `${c.snapshots} snapshots; ${c.restarts} restarts; ${c.entries} entries at the end; ` +
            `${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
      } catch (e) {
        throw new Error(
          `${srv.name} raft node, seed ${seed} (EXAMPLES_SEED=${SEED}): ${
            e instanceof Error ? e.message : e
          }`,
          { cause: e },
        );
      } finally {
        for (const child of children) child.kill("SIGKILL");
        const left = [...children].map((ch) => new Promise((r) => ch.once("close", r)));
        await within(10_000, "children to exit", Promise.all(left)).catch(() => {});
      }
    });
  }
});
