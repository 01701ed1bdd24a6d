/**
 * What one append costs in each style of file call: a 128-byte positional write followed by
 * fdatasync, with the asynchronous and the blocking calls of the running runtime (why the WAL
 * appends with blocking calls by default, see `WalOptions.blocking`).
 * Run with `deno run -A bench/file_calls.ts [appends]` or `bun bench/file_calls.ts`.
 * Numbers only, no assertions.
 *
 * @module
 */

import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, truncateSync } from "node:fs";
import { writeFileSync, writeSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const COUNT = Number(process.argv[2] ?? 3000);
const record = new Uint8Array(128).fill(7);

interface Style {
  name: string;
  /** Opens the file; returns the append (at a position) and the close. */
  open(path: string): Promise<{ append(pos: number): Promise<void> | void; close(): unknown }>;
}

const styles: Style[] = [
  {
    name: "node:fs/promises write + datasync",
    async open(path) {
      const h = await fsp.open(path, "r+");
      return {
        append: async (pos) => {
          await h.write(record, 0, record.length, pos);
          await h.datasync();
        },
        close: () => h.close(),
      };
    },
  },
  {
    name: "node:fs writeSync + fdatasyncSync",
    open(path) {
      const fd = openSync(path, "r+");
      return Promise.resolve({
        append: (pos: number) => {
          writeSync(fd, record, 0, record.length, pos);
          fdatasyncSync(fd);
        },
        close: () => closeSync(fd),
      });
    },
  },
];

const deno = (globalThis as { Deno?: typeof Deno }).Deno;
if (deno !== undefined) {
  styles.push(
    {
      name: "Deno.FsFile write + syncData",
      async open(path) {
        const f = await deno.open(path, { read: true, write: true });
        return {
          append: async (pos) => {
            await f.seek(pos, deno.SeekMode.Start);
            await f.write(record);
            await f.syncData();
          },
          close: () => f.close(),
        };
      },
    },
    {
      name: "Deno.FsFile writeSync + syncDataSync",
      async open(path) {
        const f = await deno.open(path, { read: true, write: true });
        return {
          append: (pos) => {
            f.seekSync(pos, deno.SeekMode.Start);
            f.writeSync(record);
            f.syncDataSync();
          },
          close: () => f.close(),
        };
      },
    },
  );
}

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

const dir = mkdtempSync(join(tmpdir(), "raftlog-calls-"));
try {
  // two rounds, alternating styles, so a burst of noise does not favour one of them
  for (let round = 0; round < 2; round++) {
    for (const style of styles) {
      const path = join(dir, "segment");
      writeFileSync(path, new Uint8Array(0));
      truncateSync(path, 64_000_000);
      const file = await style.open(path);
      for (let i = 0; i < COUNT / 10; i++) await file.append(i * record.length);
      const c0 = cpuMicros();
      const t0 = performance.now();
      for (let i = COUNT / 10; i < COUNT / 10 + COUNT; i++) await file.append(i * record.length);
      const ms = performance.now() - t0;
      const cpu = (cpuMicros() - c0) / COUNT;
      await file.close();
      const rate = Math.round((COUNT / ms) * 1000).toLocaleString("en-US");
      console.log(
        `${style.name.padEnd(38)} ${rate.padStart(7)} appends/s  ` +
          `${((ms * 1000) / COUNT).toFixed(0).padStart(4)} us each  ${
            cpu.toFixed(0).padStart(4)
          } us CPU`,
      );
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
