/**
 * End-to-end test of examples/metrics.ts: etcd's WAL disk metrics from the `onEvent` observer,
 * scraped over HTTP. The example runs as a child process on Deno and on Bun (and, under Node's
 * runner, compiled, on Node) with a fresh WAL directory, on a free port. Each run:
 *
 * - the scrape right after the WAL was created holds etcd's three metric names with etcd's
 *   types, both histograms with etcd's buckets (`ExponentialBuckets(0.001, 2, 14)`, written
 *   out here, not taken from the example), the fsyncs of the create (the first segment and two
 *   directories) and no bytes written yet;
 * - sequential saves move the fsync count by exactly one each and the fsync sum up;
 * - concurrent saves move it by at least one and at most one per save (group commit);
 * - after a clean stop, `etcd_disk_wal_write_bytes_total` equals the bytes of records the
 *   segment holds beyond the head a create writes (measured on disk by `statWal`, and the head
 *   by creating a WAL with the same metadata), and the log holds every save.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { WAL } from "../mod.ts";
import { statWal } from "../src/check/stat.ts";
import { withTempDir } from "./helpers.ts";
// Type-only, so that tsc compiles the example to dist-test/ for the Node run.
import type { WalMetrics } from "../examples/metrics.ts";

const PARENT = "Bun" in globalThis ? "Bun" : "Deno" in globalThis ? "Deno" : "Node";
const bin = join(process.cwd(), "node_modules/.bin");
/** The example's metadata (examples/metrics.ts). */
const METADATA = "raftlog-metrics-example/1";
/** etcd's `prometheus.ExponentialBuckets(0.001, 2, 14)`, as Prometheus prints `le`. */
const ETCD_LE = [
  "0.001",
  "0.002",
  "0.004",
  "0.008",
  "0.016",
  "0.032",
  "0.064",
  "0.128",
  "0.256",
  "0.512",
  "1.024",
  "2.048",
  "4.096",
  "8.192",
  "+Inf",
];
const FSYNC = "etcd_disk_wal_fsync_duration_seconds";
const WRITE_SECONDS = "etcd_disk_wal_write_duration_seconds";
const WRITE_BYTES = "etcd_disk_wal_write_bytes_total";

interface Runtime {
  name: string;
  cmd: string;
  args: string[];
  skip: string | false;
}

const compiled = join(process.cwd(), "dist-test/examples/metrics.js");
const runtimes: Runtime[] = [
  {
    name: "Deno",
    cmd: join(bin, "deno"),
    args: ["run", "-A", join(process.cwd(), "examples/metrics.ts")],
    skip: existsSync(join(bin, "deno")) ? false : "deno not installed (npm ci)",
  },
  {
    name: "Bun",
    cmd: join(bin, "bun"),
    args: [join(process.cwd(), "examples/metrics.ts")],
    skip: existsSync(join(bin, "bun")) ? false : "bun not installed (npm ci)",
  },
  {
    name: "Node",
    cmd: process.execPath,
    args: [compiled],
    // dist-test/ is only known to be fresh under Node's runner (scripts/node_test.sh builds it)
    skip: PARENT !== "Node"
      ? "the compiled example runs under Node's runner only"
      : existsSync(compiled)
      ? false
      : `${compiled} missing`,
  },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A running example: its base URL, output and exit. */
interface Running {
  child: ChildProcess;
  base: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<void>;
}

async function start(rt: Runtime, dir: string): Promise<Running> {
  const child = spawn(rt.cmd, [...rt.args, dir, "0"], {
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (out += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (err += s));
  let dead = false;
  const exited = new Promise<void>((resolve) => {
    child.once("error", (e) => {
      err += String(e);
      dead = true;
      resolve();
    });
    child.once("close", () => {
      dead = true;
      resolve();
    });
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const m = /^listening on (\d+)$/m.exec(out);
    if (m !== null) {
      return {
        child,
        base: `http://127.0.0.1:${m[1]}`,
        stdout: () => out,
        stderr: () => err,
        exited,
      };
    }
    if (dead) throw new Error(`the ${rt.name} example exited before listening: ${err}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`the ${rt.name} example did not listen within 30 s: ${err}`);
    }
    await sleep(10);
  }
}

/** One scrape: `# TYPE` per metric, and every sample line by its name and labels. */
interface Scrape {
  types: Map<string, string>;
  samples: Map<string, number>;
  /** The `le` labels of a histogram's buckets, in the order served. */
  le: (name: string) => string[];
  get: (key: string) => number;
}

async function scrape(base: string): Promise<Scrape> {
  const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(15_000) });
  assert.equal(res.status, 200, "GET /metrics");
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
  const text = await res.text();
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  const order: string[] = [];
  for (const line of text.split("\n")) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t !== null) types.set(t[1], t[2]);
    if (line === "" || line.startsWith("#")) continue;
    const m = /^(\S+?(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(m !== null, `unparsable sample line: ${line}`);
    samples.set(m[1], Number(m[2]));
    order.push(m[1]);
  }
  return {
    types,
    samples,
    le: (name) =>
      order.flatMap((k) => {
        const b = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\}$`).exec(k);
        return b === null ? [] : [b[1]];
      }),
    get: (key) => {
      const v = samples.get(key);
      assert.ok(v !== undefined, `no sample ${key} in the scrape`);
      return v;
    },
  };
}

/** Checks a histogram's shape: etcd's buckets, cumulative, `+Inf` equal to the count. */
function checkHistogram(s: Scrape, name: string): void {
  assert.equal(s.types.get(name), "histogram", `${name} is not a histogram`);
  assert.deepEqual(s.le(name), ETCD_LE, `${name}: not etcd's buckets`);
  let prev = 0;
  for (const le of ETCD_LE) {
    const v = s.get(`${name}_bucket{le="${le}"}`);
    assert.ok(v >= prev, `${name}: bucket le=${le} below the one before`);
    prev = v;
  }
  assert.equal(prev, s.get(`${name}_count`), `${name}: +Inf bucket is not the count`);
}

async function save(base: string, data: string): Promise<number> {
  const res = await fetch(`${base}/save`, {
    method: "POST",
    body: data,
    signal: AbortSignal.timeout(15_000),
  });
  const body = await res.json() as { index?: number; error?: string };
  assert.equal(res.status, 200, `POST /save: ${body.error}`);
  return body.index!;
}

/** The bytes a fresh WAL with the example's metadata holds before any save. */
async function headBytes(): Promise<number> {
  return await withTempDir(async (tmp) => {
    const wal = await WAL.create(join(tmp, "wal"), new TextEncoder().encode(METADATA));
    await wal.close();
    const s = await statWal(join(tmp, "wal"));
    return s.segments[0].usedBytes;
  });
}

describe(`example etcd metrics (${PARENT} test runner)`, () => {
  for (const rt of runtimes) {
    test(`${rt.name}: etcd's WAL metric names and buckets, moved by the saves done`, {
      skip: rt.skip,
    }, async () => {
      await withTempDir(async (tmp) => {
        const dir = join(tmp, "wal");
        const s = await start(rt, dir);
        try {
          const first = await scrape(s.base);
          checkHistogram(first, FSYNC);
          checkHistogram(first, WRITE_SECONDS);
          // etcd declares it a gauge (prometheus.NewGauge), whatever the name says
          assert.equal(first.types.get(WRITE_BYTES), "gauge");
          // the create: the first segment's fdatasync, its directory's and its parent's fsync
          assert.equal(first.get(`${FSYNC}_count`), 3, "fsyncs of the create");
          assert.equal(first.get(WRITE_BYTES), 0, "bytes written before any save");

          const sequential = 25;
          for (let i = 1; i <= sequential; i++) {
            assert.equal(await save(s.base, `entry ${i} `.padEnd(i * 37, "x")), i);
          }
          const second = await scrape(s.base);
          checkHistogram(second, FSYNC);
          assert.equal(
            second.get(`${FSYNC}_count`) - first.get(`${FSYNC}_count`),
            sequential,
            "one fdatasync per sequential save",
          );
          assert.ok(second.get(`${FSYNC}_sum`) > first.get(`${FSYNC}_sum`), "fsync sum moved");
          assert.ok(second.get(WRITE_BYTES) > sequential * 37, "bytes written moved");

          const concurrent = 40;
          const indexes = await Promise.all(
            Array.from({ length: concurrent }, (_, i) => save(s.base, `concurrent ${i}`)),
          );
          assert.deepEqual(
            indexes.sort((a, b) => a - b),
            Array.from({ length: concurrent }, (_, i) => sequential + 1 + i),
          );
          const third = await scrape(s.base);
          checkHistogram(third, FSYNC);
          checkHistogram(third, WRITE_SECONDS);
          const synced = third.get(`${FSYNC}_count`) - second.get(`${FSYNC}_count`);
          assert.ok(
            synced >= 1 && synced <= concurrent,
            `${synced} fsyncs for ${concurrent} saves`,
          );
          // A write duration is observed per write when the library reports one, else never.
          const timed = third.get(`${WRITE_SECONDS}_count`);
          assert.ok(
            timed === 0 || timed >= sequential + 1,
            `${timed} write durations for ${sequential} sequential saves and more`,
          );
          const bytes = third.get(WRITE_BYTES);

          s.child.kill("SIGTERM");
          await s.exited;
          assert.match(s.stdout(), /^stopped$/m, `SIGTERM did not stop it cleanly: ${s.stderr()}`);

          const stat = await statWal(dir);
          assert.equal(stat.segments.length, 1, "a cut: the byte count below assumes none");
          assert.equal(
            bytes,
            stat.segments[0].usedBytes - await headBytes(),
            `${WRITE_BYTES} is not the bytes the saves put in the segment`,
          );
          const wal = await WAL.open(dir);
          try {
            const { entries } = await wal.readAll();
            assert.equal(entries.length, sequential + concurrent);
          } finally {
            await wal.close();
          }
        } finally {
          if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGKILL");
          await s.exited;
        }
      });
    });
  }
});

/** Keeps the type import used (the Node run needs the example compiled). */
export type { WalMetrics };
