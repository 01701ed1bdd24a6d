/**
 * Locks exclude a real etcd 3.4 server, both ways (issue 11): while etcd runs, this library
 * cannot open its WAL for writing, repair it or purge a segment etcd holds; while this library
 * writes a WAL, etcd cannot start on that data directory, and starts once the writer closes.
 * Runs where the adapter's locks are OFD locks: Deno with FFI permission, Bun, and Node (its
 * Perl lock helper); elsewhere the test says why and skips.
 */

import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { purge, repair, WAL } from "../mod.ts";
import { defaultFileSystem } from "../src/fs/default.ts";
import { withTempDir } from "./helpers.ts";
import {
  etcdMissing,
  freePort,
  killEtcd,
  post,
  requireEtcdInCi,
  sleep,
  startEtcd,
  startReady,
  stopEtcd,
  waitReady,
} from "./etcd_server.ts";

requireEtcdInCi("etcd lock test");

const fs = await defaultFileSystem();
const kind = fs.lockKind?.() ?? "ofd";
const skip = etcdMissing ??
  (kind === "ofd" ? false : `the ${fs.name} adapter's locks are ${kind}, not etcd's OFD locks`);

const b64 = (s: string | Uint8Array) => Buffer.from(s).toString("base64");
const walNames = async (dir: string) =>
  (await readdir(dir)).filter((n) => n.endsWith(".wal")).sort();

describe("locks against a real etcd 3.4 server", { skip }, () => {
  test("etcd's live WAL cannot be opened, repaired or purged; a WAL held here keeps etcd from starting", async () => {
    await withTempDir(async (tmp) => {
      const { server, dataDir } = await startReady(tmp);
      const walDir = join(dataDir, "member", "wal");
      try {
        // 23 values of 3 MB: etcd cuts a second 64 MB segment and, with no snapshot yet,
        // keeps both locked
        const big = Buffer.alloc(3_000_000, "v").toString("base64");
        for (let i = 0; i < 23; i++) {
          await post(`${server.url}/v3/kv/put`, { key: b64(`big-${i}`), value: big });
        }
        const segs = await walNames(walDir);
        assert.equal(segs.length, 2, `etcd's segments: ${segs}`);

        await assert.rejects(WAL.open(walDir), { code: "LOCKED" }, "open beside etcd");
        await assert.rejects(repair(walDir), { code: "LOCKED" }, "repair beside etcd");
        assert.deepEqual(await purge(walDir, { keep: 1 }), [], "purge beside etcd");
        assert.deepEqual(await walNames(walDir), segs, "every segment is still there");
        // etcd still serves writes after all of that
        await post(`${server.url}/v3/kv/put`, { key: b64("after"), value: b64("x") });
        const exit = await stopEtcd(server);
        assert.ok(exit === "SIGTERM" || exit === 0, `etcd exit: ${exit}\n${server.log()}`);
      } finally {
        await killEtcd(server);
      }

      // --- the other way: this library holds the WAL for writing; etcd must not start
      const wal = await WAL.open(walDir);
      const { entries } = await wal.readAll();
      assert.ok(entries.length >= 24, `entries: ${entries.length}`);
      let closed = false;
      try {
        const blocked = startEtcd(dataDir, await freePort(), await freePort());
        const exit = await Promise.race([blocked.exited, sleep(30_000).then(() => null)]);
        if (exit === null) await killEtcd(blocked);
        assert.notEqual(exit, null, `etcd started beside a writer:\n${blocked.log()}`);
        assert.notEqual(exit, 0, "etcd's exit status");
        assert.match(blocked.log(), /open wal error: fileutil: file already locked/);
        await wal.close();
        closed = true;

        const again = startEtcd(dataDir, await freePort(), await freePort());
        try {
          await waitReady(again);
          await post(`${again.url}/v3/kv/put`, { key: b64("restarted"), value: b64("y") });
          const r = await post(`${again.url}/v3/kv/range`, { key: b64("after") });
          assert.equal((r.kvs as unknown[] | undefined)?.length, 1, "etcd kept every write");
          await stopEtcd(again);
        } finally {
          await killEtcd(again);
        }
      } finally {
        if (!closed) await wal.close();
      }
      // nothing of this library's is left in etcd's WAL directory
      const left = (await readdir(walDir)).filter((n) =>
        !n.endsWith(".wal") && !/^\d\.tmp$/.test(n)
      );
      assert.deepEqual(left, []);
    });
  });
});
