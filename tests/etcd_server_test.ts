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

import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type Entry, EntryType, validSnapshotEntries, verify, WAL } from "../mod.ts";
import { withTempDir } from "./helpers.ts";
import {
  b64,
  etcdMissing as missing,
  etcdVersionFound as version,
  killEtcd,
  post,
  requireEtcdInCi,
  sleep,
  startReady,
  type Status,
  status,
  stopEtcd,
} from "./etcd_server.ts";

const KEYS = 420; // one put, so one entry, each
const BIG_EVERY = 15; // every 15th key carries a big value: 28 of them, the rest are small
const BIG_VALUE_BYTES = 3_000_000; // 28 x 3 MB = 84 MB > one 64,000,000-byte segment
const SNAPSHOT_COUNT = 50;

requireEtcdInCi("etcd server test");

const keyName = (i: number) => `key-${String(i).padStart(6, "0")}`;

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
      const { server, dataDir } = await startReady(tmp, { snapshotCount: SNAPSHOT_COUNT });
      try {
        const big = Buffer.alloc(BIG_VALUE_BYTES, "v").toString("base64");
        for (let i = 0; i < KEYS; i++) {
          const key = keyName(i);
          const value = i % BIG_EVERY === BIG_EVERY - 1 ? big : b64(`value-${i}`);
          // sequential: each put returns once applied, so the log order is the write order
          await post(`${server.url}/v3/kv/put`, { key: b64(key), value });
          written.push(key);
        }
        // etcd applies in its own goroutine: a put's reply can come a moment before the applied
        // index counts it (seen under load in CI), so wait (bounded) for the two to agree
        reported = await status(server);
        for (let i = 0; i < 50 && reported.raftAppliedIndex !== reported.raftIndex; i++) {
          await sleep(100);
          reported = await status(server);
        }
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
