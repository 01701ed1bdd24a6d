/**
 * Cross-implementation checks against etcd 3.4's own Go `wal` package (Debian's
 * golang-etcd-server-dev), driven through compat/etcd34. For every generated script:
 * etcd writes and we read, we write and etcd reads, and both directories are identical
 * byte for byte. Skipped, saying why, when Go or the etcd sources are missing (never in CI).
 */

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { genScript } from "../compat/gen_script.ts";
import { runCli } from "../src/cli.ts";
import { readJson, runScript, type Script, toHex } from "../compat/script.ts";
import { withTempDir } from "./helpers.ts";

const ETCD_SRC = "/usr/share/gocode/src/go.etcd.io/etcd/wal";

function findGo(): string | null {
  for (const p of ["/usr/bin/go", "/usr/lib/go/bin/go", "/usr/local/go/bin/go"]) {
    if (existsSync(p)) return p;
  }
  return null;
}

const go = findGo();
const missing = go === null
  ? "Go is not installed (apt-get install golang-go golang-etcd-server-dev)"
  : !existsSync(ETCD_SRC)
  ? `etcd 3.4 sources are missing at ${ETCD_SRC} (apt-get install golang-etcd-server-dev)`
  : null;
if (missing !== null) {
  if (process.env.CI === "true") throw new Error(`compat tests cannot run in CI: ${missing}`);
  console.warn(`SKIPPED etcd compatibility tests: ${missing}`);
}

let harness: string | null = null;
function etcd(args: string[]): { stdout: string; status: number } {
  if (harness === null) {
    harness = join(process.cwd(), "compat/etcd34/bin/etcd34compat");
    execFileSync("sh", ["compat/etcd34/build.sh", harness], { stdio: "inherit" });
  }
  try {
    return {
      stdout: execFileSync(harness, args, { encoding: "utf8", maxBuffer: 1 << 28 }),
      status: 0,
    };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; status?: number };
    const out = String(err.stdout ?? "") + String(err.stderr ?? "");
    return { stdout: out.slice(0, 2000), status: err.status ?? -1 };
  }
}

async function dirBytes(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of (await readdir(dir)).sort()) {
    out.set(name, toHex(await readFile(join(dir, name))));
  }
  return out;
}

function snapshotsOf(script: Script): { index: bigint; term: bigint }[] {
  const s = [{ index: 0n, term: 0n }];
  for (const op of script.ops) {
    if (op.op === "snapshot") s.push({ index: BigInt(op.index), term: BigInt(op.term) });
  }
  return s;
}

const cases: {
  name: string;
  seed: number;
  seg: number;
  big: boolean;
  steps?: number;
  sizes?: number[];
}[] = [
  { name: "4 KiB segments", seed: 1, seg: 4096, big: false },
  { name: "8 KiB segments with terms above 2^53", seed: 2, seg: 8192, big: true },
  { name: "3 KiB segments", seed: 3, seg: 3000, big: false },
  { name: "64 KiB segments", seed: 4, seg: 65536, big: false, steps: 400 },
  {
    name: "256 KiB segments, batches larger than etcd's 128 KiB write buffer",
    seed: 6,
    seg: 262144,
    big: false,
    steps: 80,
    sizes: [0, 5000, 20000, 40000],
  },
  { name: "4 KiB segments, another history", seed: 5, seg: 4096, big: true },
];

describe("compatibility with etcd 3.4's Go wal package", { skip: missing ?? false }, () => {
  for (const c of cases) {
    test(`${c.name} (seed ${c.seed}): same bytes, and each reads the other's`, async () => {
      const script = genScript(c.seed, c.seg, c.big, c.steps, c.sizes);
      await withTempDir(async (tmp) => {
        const scriptPath = join(tmp, "script.json");
        await import("node:fs/promises").then((f) =>
          f.writeFile(scriptPath, JSON.stringify(script))
        );
        const theirs = join(tmp, "etcd");
        const ours = join(tmp, "ours");
        const w = etcd(["write", theirs, scriptPath]);
        assert.equal(w.status, 0, `etcd write failed: ${w.stdout}`);
        await runScript(ours, script);

        // (c) identical segment names and bytes
        const a = await dirBytes(theirs);
        const b = await dirBytes(ours);
        assert.deepEqual([...b.keys()], [...a.keys()], "segment names differ");
        assert.ok(a.size >= 2, `expected the script to cut segments, got ${[...a.keys()]}`);
        for (const [name, hex] of a) assert.ok(b.get(name) === hex, `${name} differs from etcd's`);

        for (const snap of snapshotsOf(script)) {
          const args = ["--snap-index", String(snap.index), "--snap-term", String(snap.term)];
          // (a) etcd writes, we read
          const etcdRead = etcd(["read", theirs, ...args]);
          assert.equal(etcdRead.status, 0, etcdRead.stdout);
          assert.deepEqual(await readJson(theirs, snap), JSON.parse(etcdRead.stdout));
          // the CLI's JSON dump of etcd's directory is exactly what etcd reads
          const out: string[] = [];
          const code = await runCli(["dump", theirs, ...args, "--format", "json"], {
            out: (l) => out.push(l),
            err: (l) => out.push(l),
          });
          assert.equal(code, 0, out.join("\n"));
          assert.equal(out.join("\n"), etcdRead.stdout.trim());
          // (b) we write, etcd reads
          const back = etcd(["read", ours, ...args]);
          assert.equal(back.status, 0, back.stdout);
          assert.deepEqual(JSON.parse(back.stdout), await readJson(ours, snap));
        }
      });
    });
  }
});
