/**
 * The `.snap` files of a real etcd 3.4 server (run with `--snapshot-count=20`) load here with
 * the index, term, ConfState and data etcd wrote: names match metadata, the single member is
 * the one voter, data is etcd's v2 store as JSON, and `loadNewestAvailable` with the WAL's
 * snapshot records picks the newest file.
 */

import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { validSnapshotEntries } from "../mod.ts";
import { snapFileName, Snapshotter } from "../snap.ts";
import { withTempDir } from "./helpers.ts";
import {
  b64,
  etcdMissing,
  killEtcd,
  post,
  requireEtcdInCi,
  startReady,
  stopEtcd,
} from "./etcd_server.ts";

requireEtcdInCi("etcd .snap test");

test("a real etcd 3.4 server's .snap files load with its index, term, ConfState and data", {
  skip: etcdMissing ?? false,
}, async () => {
  await withTempDir(async (tmp) => {
    const { server, dataDir } = await startReady(tmp, { snapshotCount: 20 });
    let memberId = 0n;
    try {
      for (let i = 0; i < 70; i++) {
        await post(`${server.url}/v3/kv/put`, { key: b64(`k${i}`), value: b64(`v${i}`) });
      }
      const st = await post(`${server.url}/v3/maintenance/status`, {});
      memberId = BigInt(String((st.header as Record<string, unknown>).member_id));
      await stopEtcd(server);
    } finally {
      await killEtcd(server);
    }
    const snapDir = join(dataDir, "member", "snap");
    const s = new Snapshotter(snapDir);
    const names = await s.list();
    assert.ok(names.length >= 3, `etcd's .snap files: ${names}`);
    assert.deepEqual(
      names,
      (await readdir(snapDir)).filter((n) => n.endsWith(".snap")).sort().reverse(),
    );
    for (const name of names) {
      const snap = await s.read(name);
      const { index, term, confState } = snap.metadata;
      assert.equal(snapFileName(term, index), name, "the name is the metadata's term and index");
      assert.deepEqual(confState, {
        voters: [memberId],
        learners: [],
        votersOutgoing: [],
        learnersNext: [],
        autoLeave: false,
      });
      const store = JSON.parse(new TextDecoder().decode(snap.data));
      assert.ok(typeof store === "object" && store !== null && "Root" in store, name);
    }
    const wal = await validSnapshotEntries(join(dataDir, "member", "wal"));
    const newest = await s.loadNewestAvailable(wal);
    assert.equal(snapFileName(newest.metadata.term, newest.metadata.index), names[0]);
    assert.deepEqual(await s.load(), newest);
    // every .snap file etcd wrote has its snapshot record in the WAL
    for (const name of names) {
      const m = (await s.read(name)).metadata;
      assert.ok(wal.some((w) => w.index === m.index && w.term === m.term), name);
    }
  });
});
