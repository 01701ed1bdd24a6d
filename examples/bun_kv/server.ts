/**
 * The example key-value server on `Bun.serve`; the store and the HTTP API are in
 * ../kv_store.ts (see examples/README.md).
 *
 *   bun examples/bun_kv/server.ts <data-dir> [port]
 *
 * Prints `listening on <port>` once the log is replayed and the port is open. SIGINT or
 * SIGTERM stops it cleanly: requests in flight are answered, the WAL is closed, and it prints
 * `stopped` and exits 0.
 *
 * @module
 */

import process from "node:process";
import { createHandler, errorMessage, KvStore, parseConfig } from "../kv_store.ts";

/** The part of Bun's API this file uses (typed here so that `deno check` needs no Bun types). */
interface BunServe {
  serve(options: {
    hostname: string;
    port: number;
    fetch: (req: Request) => Promise<Response>;
  }): { port: number; stop(closeActiveConnections?: boolean): Promise<void> };
}

const { Bun } = globalThis as unknown as { Bun?: BunServe };
if (Bun === undefined) {
  console.error("kv: this server runs on Bun: bun examples/bun_kv/server.ts <data-dir> [port]");
  process.exit(1);
}

let store: KvStore;
let config;
try {
  config = parseConfig(process.argv.slice(2), (name) => process.env[name]);
  store = await KvStore.open(config.dir, { segmentSizeBytes: config.segmentSizeBytes });
} catch (e) {
  console.error(`kv: cannot start: ${errorMessage(e)}`);
  process.exit(1);
}

const server = Bun.serve({
  hostname: config.hostname,
  port: config.port,
  fetch: createHandler(store),
});
console.log(`listening on ${server.port}`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.stop(); // answers the requests in flight, then stops
  await store.close(); // syncs the log and releases its locks
  console.log("stopped");
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
