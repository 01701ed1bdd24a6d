#!/usr/bin/env node
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

import { realpathSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runCli } from "./src/cli.ts";
import { spawnLineProcess } from "./src/fs/line_process.ts";
import { Stdout } from "./src/fs/stdout.ts";

export { type CliIO, runCli } from "./src/cli.ts";
export type { LineProcess, LineProcessExit, LineReply } from "./src/fs/line_process.ts";

/**
 * Whether this module is the program being run. Deno, Bun and Node 24.2+ set
 * `import.meta.main`; Node 20 and 22 do not, so there compare the script Node was started with
 * (through symlinks such as node_modules/.bin/wal) with this module's own file.
 */
function isMain(): boolean {
  const main = (import.meta as ImportMeta & { main?: boolean }).main;
  if (typeof main === "boolean") return main;
  const script = process.argv[1];
  if (script === undefined || !import.meta.url.startsWith("file:")) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const tty = process.stderr.isTTY === true;
  const stdout = new Stdout();
  const stderr = (text: string) => {
    stdout.flush();
    process.stderr.write(text);
  };
  const code = await runCli(process.argv.slice(2), {
    out: (line) => stdout.write(line + "\n"),
    err: (line) => stderr(line + "\n"),
    write: (bytes) => stdout.write(bytes),
    spawn: spawnLineProcess,
    // progress only on a terminal: overwrite one line in place, clear it at the end
    progress: tty ? (text) => stderr(text === null ? "\r\x1b[K" : `\r\x1b[K${text}`) : undefined,
  });
  process.exitCode = code;
  stdout.flush();
}
