/**
 * The example raft node on `Bun.serve`; the node and the HTTP API are in ./raft_node.ts (see
 * examples/README.md).
 *
 *   bun examples/raft_node/bun_server.ts <data-dir> [port]
 *
 * Prints `listening on <port>` once the storage is open and the node leads its new term.
 * SIGINT or SIGTERM stops it cleanly: requests in flight are answered, the storage is
 * closed, and it prints `stopped` and exits 0.
 *
 * @module
 */

import process from "node:process";
import { createHandler, errorMessage, parseConfig, RaftNode } from "./raft_node.ts";

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
  console.error("raft node: this server runs on Bun: bun examples/raft_node/bun_server.ts <dir>");
  process.exit(1);
}

let node: RaftNode;
let config;
try {
  config = parseConfig(process.argv.slice(2), (name) => process.env[name]);
  node = await RaftNode.start(config.dir, config.options);
} catch (e) {
  console.error(`raft node: cannot start: ${errorMessage(e)}`);
  process.exit(1);
}

const server = Bun.serve({
  hostname: config.hostname,
  port: config.port,
  fetch: createHandler(node),
});
console.log(`listening on ${server.port}`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.stop(); // answers the requests in flight, then stops
  await node.close(); // waits for the appends, syncs the log and releases its locks
  console.log("stopped");
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
