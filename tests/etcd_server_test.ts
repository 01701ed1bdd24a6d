/**
 * Replays the WAL of a real etcd 3.4 server (Debian's etcd-server package).
 *
 * Starts a single-member etcd on loopback with a scratch data directory, writes ~80 MB through
 * the v3 HTTP/JSON gateway (many small keys, and some 3 MB values so etcd cuts a second 64 MB
 * segment) with a snapshot every ~50 entries, records etcd's raft index, stops it with SIGTERM,
 * then reads `member/wal` with this library: every key in write order, the hard state's commit,
 * `verify`, and replay from every snapshot etcd recorded (matched against `member/snap/*.snap`).
 * Skipped, saying why, when etcd 3.4 is not installed (never in CI).
 */

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";
import { Buffer } from "node:buffer";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type Entry, EntryType, validSnapshotEntries, verify, WAL } from "../mod.ts";
import { withTempDir } from "./helpers.ts";

const KEYS = 420; // one put, so one entry, each
const BIG_EVERY = 15; // every 15th key carries a big value: 28 of them, the rest are small
const BIG_VALUE_BYTES = 3_000_000; // 28 x 3 MB = 84 MB > one 64,000,000-byte segment
const SNAPSHOT_COUNT = 50;

function findEtcd(): string | null {
  const dirs = ["/usr/bin", "/usr/local/bin", ...(process.env.PATH ?? "").split(delimiter)];
  for (const d of dirs) {
    if (d !== "" && existsSync(join(d, "etcd"))) return join(d, "etcd");
  }
  return null;
}

function etcdVersion(bin: string): string {
  const r = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 10_000 });
  return /etcd Version: (\S+)/.exec(String(r.stdout ?? ""))?.[1] ?? "unknown";
}

const etcdBin = findEtcd();
const version = etcdBin === null ? null : etcdVersion(etcdBin);
const missing = etcdBin === null
  ? "etcd is not installed (apt-get install etcd-server)"
  : !version!.startsWith("3.4.")
  ? `${etcdBin} is etcd ${version}, not 3.4 (apt-get install etcd-server on Debian 12)`
  : null;
if (missing !== null) {
  if (process.env.CI === "true") throw new Error(`etcd server test cannot run in CI: ${missing}`);
  console.warn(`SKIPPED etcd server test: ${missing}`);
}

/** A port nobody listens on right now (the OS picks it; etcd binds it a moment later). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => port > 0 ? resolve(port) : reject(new Error("no port")));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const keyName = (i: number) => `key-${String(i).padStart(6, "0")}`;
const b64 = (s: string | Uint8Array) => Buffer.from(s).toString("base64");

/** A running etcd: its client URL, exit promise and the tail of its log. */
interface Server {
  proc: ChildProcess;
  url: string;
  exited: Promise<number | string>;
  log: () => string;
}

function startEtcd(dataDir: string, clientPort: number, peerPort: number): Server {
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const proc = spawn(etcdBin!, [
    "--name=raftlog-test",
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${url}`,
    `--advertise-client-urls=${url}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=raftlog-test=${peer}`,
    "--initial-cluster-state=new",
    `--snapshot-count=${SNAPSHOT_COUNT}`,
    // big values through one request; the gRPC limit follows this one
    "--max-request-bytes=10485760",
    // keep every .snap file and WAL segment, so they can be matched against the WAL
    "--max-snapshots=0",
    "--max-wals=0",
  ], {
    stdio: ["ignore", "pipe", "pipe"],
    // etcd also reads its flags from ETCD_* variables: none of the caller's may apply
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("ETCD_"))),
  });
  let tail = "";
  const keep = (chunk: unknown) => {
    tail = (tail + String(chunk)).slice(-16_000);
  };
  proc.stdout!.on("data", keep);
  proc.stderr!.on("data", keep);
  const exited = new Promise<number | string>((resolve) => {
    proc.once("exit", (code, signal) => resolve(signal ?? code ?? -1));
    proc.once("error", (e) => resolve(`spawn error: ${e.message}`));
  });
  return { proc, url, exited, log: () => tail };
}

/**
 * POSTs JSON to etcd. node:http rather than fetch: Deno's and Bun's fetch send even loopback
 * requests through HTTP_PROXY when it is set; node:http ignores it in both.
 */
function request(method: string, url: string, body?: unknown): Promise<Record<string, unknown>> {
  const payload = body === undefined ? "" : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      method,
      agent: false,
      headers: {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(payload),
      },
      timeout: 30_000,
    }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (text += c));
      res.on("end", () => {
        if (res.statusCode !== 200) {
          reject(new Error(`${url}: HTTP ${res.statusCode}: ${text.slice(0, 500)}`));
        } else {
          try {
            resolve(JSON.parse(text));
          } catch (e) {
            reject(e);
          }
        }
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${url}: no answer within 30 s`)));
    req.on("error", reject);
    req.end(payload);
  });
}

const post = (url: string, body: unknown) => request("POST", url, body);

interface Status {
  raftIndex: bigint;
  raftAppliedIndex: bigint;
  raftTerm: bigint;
}

async function status(s: Server): Promise<Status> {
  const j = await post(`${s.url}/v3/maintenance/status`, {});
  // the JSON gateway renders uint64 as strings
  return {
    raftIndex: BigInt(String(j.raftIndex ?? "0")),
    raftAppliedIndex: BigInt(String(j.raftAppliedIndex ?? "0")),
    raftTerm: BigInt(String(j.raftTerm ?? "0")),
  };
}

/**
 * Polls (at most ~30 s) until etcd has a leader and has set the cluster version: the last of
 * the entries it proposes itself at startup, so the first put follows them all.
 */
async function waitReady(s: Server): Promise<void> {
  let last = "";
  for (let i = 0; i < 150; i++) {
    const exit = await Promise.race([s.exited, sleep(200).then(() => null)]);
    if (exit !== null) throw new Error(`etcd exited (${exit}) before it was ready:\n${s.log()}`);
    try {
      const st = await post(`${s.url}/v3/maintenance/status`, {});
      const v = await request("GET", `${s.url}/version`);
      if (String(st.leader ?? "0") !== "0" && /^3\.4\./.test(String(v.etcdcluster))) return;
      last = `leader ${st.leader}, cluster version ${v.etcdcluster}`;
    } catch (e) {
      last = String(e);
    }
  }
  throw new Error(`etcd not ready after 30 s (${last}):\n${s.log()}`);
}

/** Kills etcd (if it still runs) and waits for it. */
async function killEtcd(s: Server): Promise<void> {
  if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill("SIGKILL");
  await s.exited;
}

/**
 * Starts etcd in a fresh `<tmp>/etcd-<n>` on two free ports and waits until it is ready. The
 * ports are free when chosen but something may take them before etcd binds: then it tries
 * again with new ones (three attempts in all).
 */
async function startReady(tmp: string): Promise<{ server: Server; dataDir: string }> {
  for (let attempt = 1;; attempt++) {
    const client = await freePort();
    let peer = await freePort();
    while (peer === client) peer = await freePort();
    const dataDir = join(tmp, `etcd-${attempt}`);
    const server = startEtcd(dataDir, client, peer);
    try {
      await waitReady(server);
      return { server, dataDir };
    } catch (e) {
      await killEtcd(server);
      if (attempt < 3 && /address already in use/.test(server.log())) continue;
      throw e;
    }
  }
}

/** SIGTERM, then wait (bounded) for the exit; SIGKILL if it hangs. */
async function stopEtcd(s: Server): Promise<number | string> {
  if (s.proc.exitCode !== null || s.proc.signalCode !== null) return await s.exited;
  s.proc.kill("SIGTERM");
  const exit = await Promise.race([s.exited, sleep(30_000).then(() => null)]);
  if (exit !== null) return exit;
  s.proc.kill("SIGKILL");
  await s.exited;
  throw new Error(`etcd did not exit within 30 s of SIGTERM:\n${s.log()}`);
}

/** latin1 view of an entry's data, to look for the ASCII keys in it. */
const latin1 = (d: Uint8Array) =>
  Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString("latin1");

function sameEntries(got: Entry[], want: Entry[], what: string): void {
  assert.equal(got.length, want.length, `${what}: entry count`);
  for (let i = 0; i < got.length; i++) {
    const a = got[i];
    const b = want[i];
    if (a.index !== b.index || a.term !== b.term || a.type !== b.type) {
      assert.fail(
        `${what}: entry ${i} is ${a.index}/${a.term}/${a.type}, want ${b.index}/${b.term}`,
      );
    }
    if (Buffer.compare(a.data, b.data) !== 0) assert.fail(`${what}: data of entry ${a.index}`);
  }
}

describe("a real etcd 3.4 server's WAL", { skip: missing ?? false }, () => {
  test("replays: every key in order, commit = raft index, verify, every snapshot", async () => {
    await withTempDir(async (tmp) => {
      const written: string[] = [];
      let reported: Status | null = null;

      // --- run etcd, write, record its raft index, stop it
      const t0 = Date.now();
      const { server, dataDir } = await startReady(tmp);
      try {
        const big = Buffer.alloc(BIG_VALUE_BYTES, "v").toString("base64");
        for (let i = 0; i < KEYS; i++) {
          const key = keyName(i);
          const value = i % BIG_EVERY === BIG_EVERY - 1 ? big : b64(`value-${i}`);
          // sequential: each put returns once applied, so the log order is the write order
          await post(`${server.url}/v3/kv/put`, { key: b64(key), value });
          written.push(key);
        }
        reported = await status(server);
        const exit = await stopEtcd(server);
        // etcd runs its shutdown handlers, then re-raises SIGTERM on itself
        assert.ok(exit === "SIGTERM" || exit === 0, `etcd exit: ${exit}\n${server.log()}`);
      } finally {
        await killEtcd(server);
      }
      const t1 = Date.now();

      // --- the WAL directory etcd left
      const walDir = join(dataDir, "member", "wal");
      const segs = (await readdir(walDir)).filter((n) => n.endsWith(".wal")).sort();
      assert.ok(segs.length >= 2, `expected etcd to cut a second segment, got ${segs}`);
      assert.equal(segs[0], "0000000000000000-0000000000000000.wal");

      // etcd cuts once a save leaves the segment's file offset at or past 64,000,000 bytes, and
      // truncates the old segment to that offset: segment 0 ends with the hard state saved
      // after the big entry that crossed the line, past 64 MB (records are never split). The
      // last segment keeps its preallocated 64,000,000 bytes (zeros after its last record).
      const sizes = await Promise.all(segs.map(async (n) => (await stat(join(walDir, n))).size));
      assert.ok(sizes[0] >= 64_000_000, `segment 0 is ${sizes[0]} bytes`);
      assert.equal(sizes[sizes.length - 1], 64_000_000, "the last segment is preallocated");
      segs.forEach((n, i) => assert.ok(n.startsWith(i.toString(16).padStart(16, "0")), n));

      const full = await WAL.openForRead(walDir, { index: 0n, term: 0n });
      const all = await full.readAll().finally(() => full.close());
      const { entries, state } = all;
      assert.ok(entries.length > written.length, "entries");
      for (let i = 0; i < entries.length; i++) {
        assert.equal(entries[i].index, BigInt(i + 1), "entries are contiguous from 1");
      }
      const lastIndex = entries[entries.length - 1].index;
      // segment names: sequence number, then the index of the first entry the segment holds
      const starts = segs.map((n) => BigInt("0x" + n.slice(17, 33)));
      for (let i = 1; i < starts.length; i++) {
        assert.ok(starts[i] > starts[i - 1] && starts[i] <= lastIndex, `segment ${segs[i]}`);
      }

      // Every key, in the order written. A key appears in exactly its own put's entry.
      const firstAt = new Map<string, bigint>();
      for (const e of entries) {
        for (const m of latin1(e.data).matchAll(/key-\d{6}/g)) {
          if (!firstAt.has(m[0])) firstAt.set(m[0], e.index);
        }
      }
      let prev = 0n;
      for (const k of written) {
        const at = firstAt.get(k);
        assert.ok(at !== undefined, `${k} is not in any entry`);
        assert.ok(at > prev, `${k} at index ${at}, not after the previous key's ${prev}`);
        prev = at;
      }
      assert.equal(firstAt.size, written.length, "no key that was not written");

      // A single-member etcd 3.4 commits an entry in the same raft Ready that appends it
      // (raft's appendEntry calls maybeCommit, and a quorum of one is the leader itself), so
      // the last HardState in the WAL already commits the last entry. Status reports raft's
      // committed index; nothing is proposed after the last put (no leases, no v2 TTL keys,
      // no auto-compaction, cluster version already set) and shutdown writes no entry. So
      // all three agree exactly, and etcd had applied everything.
      assert.ok(reported !== null);
      assert.equal(state.commit, reported.raftIndex, "hard state commit vs etcd's raft index");
      assert.equal(lastIndex, reported.raftIndex, "last entry index vs etcd's raft index");
      assert.equal(reported.raftAppliedIndex, reported.raftIndex, "applied index");
      assert.equal(state.term, reported.raftTerm, "hard state term");
      // The entries etcd writes itself, all before the first put (waitReady saw to that):
      // 1, term 1: the bootstrap ConfChange adding this member (its JSON in the context);
      // 2: the empty entry of the new leader, at term 2 (the single member's first election);
      // 3: a v2 PUT of /0/members/<id>/attributes (publishing name and client URLs);
      // 4: a v2 PUT of /0/version (the cluster version, 3.4.0).
      // Then one entry per put, all at the leader's term.
      const text = entries.slice(0, 4).map((e) => latin1(e.data));
      const t = state.term;
      const head = entries.slice(0, 4).map((e) => [e.index, e.term, e.type]);
      const { ConfChange, Normal } = EntryType;
      const want = [[1n, 1n, ConfChange], [2n, t, Normal], [3n, t, Normal], [4n, t, Normal]];
      assert.deepEqual(head, want, "etcd's own entries");
      assert.ok(text[0].includes(`"name":"raftlog-test"`), `entry 1: ${text[0]}`);
      assert.equal(entries[1].data.length, 0, "entry 2 is empty");
      assert.match(text[2], /PUT.*\/0\/members\/[0-9a-f]+\/attributes/s, "entry 3");
      assert.match(text[3], /PUT.*\/0\/version/s, "entry 4");
      assert.equal(firstAt.get(written[0]), 5n, "the first put is entry 5");
      assert.equal(prev, lastIndex, "the last put is the last entry");
      assert.equal(entries.length, 4 + written.length, "one entry per put");
      for (const e of entries.slice(4)) assert.equal(e.term, state.term, `term of ${e.index}`);

      const v = await verify(walDir);
      assert.equal(v.tornTail, null, "verify: torn tail");
      assert.equal(v.segments, segs.length, "verify: segments");

      // Snapshots: the WAL's initial {0, 0}, then one per .snap file (term-index.snap).
      const snaps = await validSnapshotEntries(walDir);
      assert.deepEqual(snaps[0], { index: 0n, term: 0n }, "first snapshot record");
      const snapFiles = (await readdir(join(dataDir, "member", "snap")))
        .filter((n) => n.endsWith(".snap")).sort();
      const fromFiles = snapFiles.map((n) => {
        const m = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/.exec(n);
        assert.ok(m, `snap file name ${n}`);
        return { index: BigInt("0x" + m[2]), term: BigInt("0x" + m[1]) };
      }).sort((a, b) => (a.index < b.index ? -1 : a.index > b.index ? 1 : 0));
      assert.deepEqual(snaps.slice(1), fromFiles, "WAL snapshot records vs .snap files");
      assert.ok(fromFiles.length >= 5, `expected several snapshots, got ${fromFiles.length}`);
      for (let i = 1; i < snaps.length; i++) {
        assert.ok(snaps[i].index > snaps[i - 1].index, "snapshot indexes increase");
        // etcd snapshots once more than --snapshot-count entries were applied since the last
        assert.ok(snaps[i].index - snaps[i - 1].index > BigInt(SNAPSHOT_COUNT), "snapshot gap");
      }

      for (const snap of snaps) {
        const w = await WAL.openForRead(walDir, snap);
        const r = await w.readAll().finally(() => w.close());
        const what = `replay from snapshot ${snap.index}/${snap.term}`;
        assert.equal(r.entries.length, Number(lastIndex - snap.index), `${what}: count`);
        if (r.entries.length > 0) {
          assert.equal(r.entries[0].index, snap.index + 1n, `${what}: first index`);
          assert.equal(r.entries[r.entries.length - 1].index, lastIndex, `${what}: last index`);
        }
        assert.deepEqual(r.state, state, `${what}: hard state`);
        assert.deepEqual(r.metadata, all.metadata, `${what}: metadata`);
        sameEntries(r.entries, entries.slice(Number(snap.index)), what);
      }

      console.log(
        `etcd ${version}: ${written.length} puts in ${t1 - t0} ms, ` +
          `${entries.length} entries, segments ${
            segs.map((n, i) => `${n}:${sizes[i]}`).join(" ")
          }, ` +
          `${fromFiles.length} snapshots, replay checks ${Date.now() - t1} ms`,
      );
    });
  });
});
