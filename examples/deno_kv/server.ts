/**
 * The example key-value server on `Deno.serve`; the store and the HTTP API are in
 * ../kv_store.ts (see examples/README.md).
 *
 *   deno run -A examples/deno_kv/server.ts <data-dir> [port]
 *
 * Prints `listening on <port>` once the log is replayed and the port is open. SIGINT or
 * SIGTERM stops it cleanly: requests in flight are answered, the WAL is closed, and it prints
 * `stopped` and exits 0.
 *
 * @module
 */

import { createHandler, errorMessage, KvStore, parseConfig } from "../kv_store.ts";

let store: KvStore;
let config;
try {
  config = parseConfig(Deno.args, (name) => Deno.env.get(name));
  store = await KvStore.open(config.dir, { segmentSizeBytes: config.segmentSizeBytes });
} catch (e) {
  console.error(`kv: cannot start: ${errorMessage(e)}`);
  Deno.exit(1);
}

const server = Deno.serve({
  hostname: config.hostname,
  port: config.port,
  onListen: ({ port }) => console.log(`listening on ${port}`),
}, createHandler(store));

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.shutdown(); // answers the requests in flight, then stops
  await store.close(); // syncs the log and releases its locks
  console.log("stopped");
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
