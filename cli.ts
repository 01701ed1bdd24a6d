/**
 * The `wal` command-line tool, an etcd-dump-logs for this format:
 * `wal dump|verify|repair|snapshots|stat <dir>`. Run `wal --help`.
 *
 * ```sh
 * deno run -A jsr:@raftlog/wal/cli stat ./data/wal
 * bun cli.ts dump ./data/wal --format json
 * ```
 *
 * @module
 */

import process from "node:process";
import { runCli } from "./src/cli.ts";

export { type CliIO, runCli } from "./src/cli.ts";

if (import.meta.main) {
  const tty = process.stderr.isTTY === true;
  const code = await runCli(process.argv.slice(2), {
    out: (line) => process.stdout.write(line + "\n"),
    err: (line) => process.stderr.write(line + "\n"),
    // progress only on a terminal: overwrite one line in place, clear it at the end
    progress: tty
      ? (text) => process.stderr.write(text === null ? "\r\x1b[K" : `\r\x1b[K${text}`)
      : undefined,
  });
  process.exitCode = code;
}
