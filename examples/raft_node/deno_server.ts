/**
 * The example raft node on `Deno.serve`; the node and the HTTP API are in ./raft_node.ts (see
 * examples/README.md).
 *
 *   deno run -A examples/raft_node/deno_server.ts <data-dir> [port]
 *
 * Prints `listening on <port>` once the storage is open and the node leads its new term.
 * SIGINT or SIGTERM stops it cleanly: requests in flight are answered, the storage is
 * closed, and it prints `stopped` and exits 0.
 *
 * @module
 */

import { createHandler, errorMessage, parseConfig, RaftNode } from "./raft_node.ts";

let node: RaftNode;
let config;
try {
  config = parseConfig(Deno.args, (name) => Deno.env.get(name));
  node = await RaftNode.start(config.dir, config.options);
} catch (e) {
  console.error(`raft node: cannot start: ${errorMessage(e)}`);
  Deno.exit(1);
}

const server = Deno.serve({
  hostname: config.hostname,
  port: config.port,
  onListen: ({ port }) => console.log(`listening on ${port}`),
}, createHandler(node));

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.shutdown(); // answers the requests in flight, then stops
  await node.close(); // waits for the appends, syncs the log and releases its locks
  console.log("stopped");
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
