/**
 * `wal dump-logs` beside etcd's own etcd-dump-logs 3.4.23 (compat/etcd-dump-logs), on one
 * data directory of N put entries, in one run: wall time and peak RSS of each tool's whole
 * process (GNU time), each run R times, medians printed, and that every output is the same
 * bytes.
 *
 *     deno run -A bench/dump_logs.ts [--entries N] [--repeat R]
 *
 * Needs Go and Debian's etcd sources for the Go tool (`sh compat/etcd-dump-logs/build.sh`)
 * and /usr/bin/time; runs the tool under Deno and Bun from node_modules/.bin.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { create, toBinary } from "@bufbuild/protobuf";
import { WAL } from "../mod.ts";
import { InternalRaftRequestSchema, MetadataSchema } from "../pb.ts";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
};
const N = arg("entries", 200_000);
const R = arg("repeat", 3);
const root = process.cwd();
const goTool = join(root, "compat/etcd-dump-logs/bin/etcd-dump-logs");
const build = spawnSync("sh", ["compat/etcd-dump-logs/build.sh"], {
  env: { ...process.env, PATH: `${process.env.PATH}:/usr/lib/go/bin` },
  stdio: "inherit",
});
if (build.status !== 0) throw new Error("cannot build etcd-dump-logs (Go, golang-etcd-server-dev)");

const tmp = mkdtempSync(join(tmpdir(), "raftlog-bench-dump-logs-"));
try {
  const dir = join(tmp, "data");
  mkdirSync(join(dir, "member", "snap"), { recursive: true });
  const md = toBinary(MetadataSchema, create(MetadataSchema, { NodeID: 1n, ClusterID: 2n }));
  const w = await WAL.create(join(dir, "member", "wal"), md);
  const enc = new TextEncoder();
  for (let i = 1; i <= N; i += 500) {
    const entries = [];
    for (let j = i; j < i + 500 && j <= N; j++) {
      const data = toBinary(
        InternalRaftRequestSchema,
        create(InternalRaftRequestSchema, {
          header: { ID: BigInt(j) },
          put: { key: enc.encode(`key${j}`), value: enc.encode(`value-${j}-xxxxxxxxxxxxxxxxxxx`) },
        }),
      );
      entries.push({ term: 2n, index: BigInt(j), type: 0, data });
    }
    await w.save(
      { term: 2n, vote: 1n, commit: BigInt(entries[entries.length - 1].index) },
      entries,
    );
  }
  await w.close();

  const bin = join(root, "node_modules/.bin");
  const tools: [string, string[]][] = [
    ["etcd-dump-logs (Go)", [goTool]],
    ["wal dump-logs (Deno)", [join(bin, "deno"), "run", "-A", join(root, "cli.ts"), "dump-logs"]],
    ["wal dump-logs (Bun)", [join(bin, "bun"), join(root, "cli.ts"), "dump-logs"]],
  ];
  const results: { name: string; secs: number[]; kb: number[] }[] = [];
  let reference: Buffer | null = null;
  for (let r = 0; r < R; r++) {
    for (const [k, [name, argv]] of tools.entries()) {
      const outFile = join(tmp, `out-${k}`);
      const timeFile = join(tmp, `time-${k}`);
      const run = spawnSync("sh", [
        "-c",
        `/usr/bin/time -f '%e %M' -o "$0" "$@" > "${outFile}"`,
        timeFile,
        ...argv,
        dir,
      ], { env: { ...process.env, TZ: "UTC" }, stdio: ["ignore", "ignore", "inherit"] });
      if (run.status !== 0) throw new Error(`${name} failed`);
      const [secs, kb] = readFileSync(timeFile, "utf8").trim().split(/\s+/).map(Number);
      const out = readFileSync(outFile);
      reference ??= out;
      if (Buffer.compare(out, reference) !== 0) {
        throw new Error(`${name}: output differs from Go's`);
      }
      (results[k] ??= { name, secs: [], kb: [] }).secs.push(secs);
      results[k].kb.push(kb);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const go = median(results[0].secs);
  console.log(`${N} put entries, ${R} runs each, interleaved; medians (same output bytes):`);
  for (const r of results) {
    const s = median(r.secs);
    console.log(
      `${r.name.padEnd(22)} ${s.toFixed(2).padStart(6)} s  ${
        (median(r.kb) / 1024).toFixed(0).padStart(5)
      } MiB peak RSS  ${(s / go).toFixed(2)}x Go's time`,
    );
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
