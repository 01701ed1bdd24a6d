/**
 * The WAL's `onEvent` observer as etcd's own disk metrics, with `prom-client`, served on
 * `/metrics` (see examples/README.md). Dashboards and alerts written for etcd's WAL work
 * unchanged:
 *
 * - `etcd_disk_wal_fsync_duration_seconds`: a histogram of every fsync the WAL makes (segment
 *   fdatasyncs and directory fsyncs, as etcd observes both), etcd's buckets;
 * - `etcd_disk_wal_write_bytes_total`: the bytes saves wrote to segments. etcd declares it a
 *   gauge that only goes up, and so does this, so that a scrape reads as etcd's does;
 * - `etcd_disk_wal_write_duration_seconds`: etcd 3.5.15+ and 3.6's histogram of write latency,
 *   etcd's buckets; observed from a `durationMs` on write events when the library reports one.
 *
 *   deno run -A examples/metrics.ts <wal-dir> [port]
 *   bun examples/metrics.ts <wal-dir> [port]
 *   node dist-test/examples/metrics.js <wal-dir> [port]   (compiled by scripts/node_test.sh)
 *
 * It opens (or creates) the WAL, prints `listening on <port>`, and serves `GET /metrics` and
 * `POST /save` (the body becomes the next entry, saved with its hard state; answers
 * `{"index":n}` once durable). SIGINT or SIGTERM closes the WAL, prints `stopped`, exits 0.
 *
 * @module
 */

import process from "node:process";
import { Buffer } from "node:buffer";
import { createServer } from "node:http";
import { Gauge, Histogram, Registry } from "prom-client";
import { EntryType, exists, WAL, type WalEvent } from "../mod.ts";

/**
 * etcd's buckets for both WAL histograms, `prometheus.ExponentialBuckets(0.001, 2, 14)`:
 * 1 ms to 8.192 s (server/storage/wal/metrics.go).
 */
export const ETCD_WAL_BUCKETS: readonly number[] = Array.from(
  { length: 14 },
  (_, i) => 2 ** i / 1000,
);

/** etcd's three WAL metrics, registered in one registry, and the observer that feeds them. */
export interface WalMetrics {
  /** The registry to serve (`await registry.metrics()`, `registry.contentType`). */
  registry: Registry;
  /** Pass as the WAL's `onEvent` option. */
  onEvent: (event: WalEvent) => void;
}

/** Creates etcd's WAL metrics in `registry` (a new one by default). */
export function walMetrics(registry: Registry = new Registry()): WalMetrics {
  const fsync = new Histogram({
    name: "etcd_disk_wal_fsync_duration_seconds",
    help: "The latency distributions of fsync called by WAL.",
    buckets: [...ETCD_WAL_BUCKETS],
    registers: [registry],
  });
  const writeSeconds = new Histogram({
    name: "etcd_disk_wal_write_duration_seconds",
    help: "The latency distributions of write called by WAL.",
    buckets: [...ETCD_WAL_BUCKETS],
    registers: [registry],
  });
  // A gauge, as in etcd (prometheus.NewGauge), despite the _total name.
  const writeBytes = new Gauge({
    name: "etcd_disk_wal_write_bytes_total",
    help: "Total number of bytes written in WAL.",
    registers: [registry],
  });
  const onEvent = (event: WalEvent): void => {
    switch (event.type) {
      case "fsync":
        fsync.observe(event.durationMs / 1000);
        break;
      case "write":
        writeBytes.inc(event.bytes);
        // Only if the library reports how long the write took (it may not).
        if ("durationMs" in event && typeof event.durationMs === "number") {
          writeSeconds.observe(event.durationMs / 1000);
        }
        break;
        // cuts, repairs and other events have no etcd disk metric
    }
  };
  return { registry, onEvent };
}

/** The part of Bun's API this file uses (typed here so that `deno check` needs no Bun types). */
interface BunServe {
  serve(options: {
    hostname: string;
    port: number;
    fetch: (req: Request) => Promise<Response>;
  }): { port: number; stop(closeActiveConnections?: boolean): Promise<void> };
}

/** Starts `handler` on Deno.serve, Bun.serve or node:http; resolves with the port and a stop. */
async function serve(
  hostname: string,
  port: number,
  handler: (req: Request) => Promise<Response>,
): Promise<{ port: number; stop: () => Promise<void> }> {
  const g = globalThis as unknown as { Bun?: BunServe };
  if ("Deno" in globalThis) {
    let listening: (port: number) => void = () => {};
    const bound = new Promise<number>((resolve) => (listening = resolve));
    const server = Deno.serve({ hostname, port, onListen: (a) => listening(a.port) }, handler);
    return { port: await bound, stop: () => server.shutdown() };
  }
  if (g.Bun !== undefined) {
    const server = g.Bun.serve({ hostname, port, fetch: handler });
    return { port: server.port, stop: () => server.stop() };
  }
  // Node: node:http, translated to and from fetch's Request and Response.
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = req.method === "GET" || req.method === "HEAD" ? undefined : Buffer.concat(chunks);
    const answer = await handler(
      new Request(`http://${hostname}${req.url ?? "/"}`, { method: req.method, body }),
    );
    res.writeHead(answer.status, Object.fromEntries(answer.headers));
    res.end(new Uint8Array(await answer.arrayBuffer()));
  });
  await new Promise<void>((resolve) => server.listen(port, hostname, resolve));
  const address = server.address();
  return {
    port: typeof address === "object" && address !== null ? address.port : port,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const [dir, portArg = "0"] = process.argv.slice(2);
if (dir === undefined || !/^\d+$/.test(portArg)) {
  console.error("usage: metrics <wal-dir> [port]");
  process.exit(2);
}

const metrics = walMetrics();
const options = { onEvent: metrics.onEvent };
let wal: WAL;
let index = 0n;
try {
  if (await exists(dir)) {
    wal = await WAL.open(dir, undefined, options);
    const { entries } = await wal.readAll();
    index = entries.at(-1)?.index ?? 0n;
  } else {
    wal = await WAL.create(dir, new TextEncoder().encode("raftlog-metrics-example/1"), options);
  }
} catch (e) {
  console.error(`metrics: cannot start: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}

const handler = async (req: Request): Promise<Response> => {
  const path = new URL(req.url).pathname;
  if (req.method === "GET" && path === "/metrics") {
    return new Response(await metrics.registry.metrics(), {
      headers: { "content-type": metrics.registry.contentType },
    });
  }
  if (req.method === "POST" && path === "/save") {
    const data = new Uint8Array(await req.arrayBuffer());
    const i = ++index;
    try {
      // Saves made while others are in flight are group-committed by the library.
      await wal.save({ term: 1n, vote: 1n, commit: i }, [
        { term: 1n, index: i, type: EntryType.Normal, data },
      ]);
    } catch (e) {
      return Response.json({ error: e instanceof Error ? e.message : String(e) }, { status: 500 });
    }
    return Response.json({ index: Number(i) });
  }
  return new Response("not found\n", { status: 404 });
};

const server = await serve("127.0.0.1", Number(portArg), handler);
console.log(`listening on ${server.port}`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.stop();
  await wal.close();
  console.log("stopped");
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
