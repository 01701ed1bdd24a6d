/**
 * `.snap` files byte-identical to etcd 3.4's snapshotter (Debian's `etcdserver/api/snap`, driven
 * by compat/etcd34's `snapsave`/`snapload`): the same snapshots saved by both give the same
 * files, and each side loads the other's.
 */

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { type RaftSnapshot, Snapshotter } from "../snap.ts";
import { withTempDir } from "./helpers.ts";

const ETCD_SRC = "/usr/share/gocode/src/go.etcd.io/etcd/etcdserver/api/snap";
const missing = !existsSync("/usr/bin/go")
  ? "Go is not installed (apt-get install golang-go golang-etcd-server-dev)"
  : !existsSync(ETCD_SRC)
  ? `etcd 3.4 sources are missing at ${ETCD_SRC} (apt-get install golang-etcd-server-dev)`
  : null;
if (missing !== null) {
  if (process.env.CI === "true") throw new Error(`snap compat test cannot run in CI: ${missing}`);
  console.warn(`SKIPPED .snap compatibility test: ${missing}`);
}

const cases: RaftSnapshot[] = [
  {
    data: new Uint8Array(0),
    metadata: { confState: conf([1n], [], [], [], false), index: 3n, term: 1n },
  },
  {
    data: new Uint8Array(0),
    metadata: { confState: conf([], [], [], [], false), index: 0n, term: 0n },
  },
  {
    data: new TextEncoder().encode('{"Root":{}}'),
    metadata: { confState: conf([1n], [], [], [], false), index: 5n, term: 2n },
  },
  {
    data: new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff),
    metadata: {
      confState: conf([1n, 2n, 0xffff_ffff_ffff_ffffn], [4n], [1n, 2n, 3n], [3n], true),
      index: 0x1_0000_0000n,
      term: 2n ** 63n,
    },
  },
];

function conf(
  voters: bigint[],
  learners: bigint[],
  vo: bigint[],
  ln: bigint[],
  autoLeave: boolean,
) {
  return { voters, learners, votersOutgoing: vo, learnersNext: ln, autoLeave };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const dec = (v: bigint[]) => v.map(String);
const toJson = (s: RaftSnapshot) => ({
  data: hex(s.data),
  index: String(s.metadata.index),
  term: String(s.metadata.term),
  voters: dec(s.metadata.confState.voters),
  learners: dec(s.metadata.confState.learners),
  votersOutgoing: dec(s.metadata.confState.votersOutgoing),
  learnersNext: dec(s.metadata.confState.learnersNext),
  autoLeave: s.metadata.confState.autoLeave,
});

test(
  "the same snapshots saved here and by etcd 3.4's snapshotter are the same bytes, and each loads the other's",
  { skip: missing ?? false },
  async () => {
    const harness = join(process.cwd(), "compat/etcd34/bin/etcd34compat");
    execFileSync("sh", ["compat/etcd34/build.sh", harness], { stdio: "inherit" });
    await withTempDir(async (tmp) => {
      for (const [i, snap] of cases.entries()) {
        const ours = join(tmp, `ours-${i}`);
        const theirs = join(tmp, `go-${i}`);
        await mkdir(ours);
        await mkdir(theirs);
        await new Snapshotter(ours).save(snap);
        const script = join(tmp, `snap-${i}.json`);
        await writeFile(script, JSON.stringify([toJson(snap)]));
        execFileSync(harness, ["snapsave", theirs, script]);
        const names = await readdir(theirs);
        assert.deepEqual(await readdir(ours), names, "file name");
        if (snap.metadata.index === 0n) {
          assert.deepEqual(names, [], "an empty snapshot (index 0) is not saved");
          continue;
        }
        const a = await readFile(join(ours, names[0]));
        const b = await readFile(join(theirs, names[0]));
        assert.equal(hex(a), hex(b), `bytes of case ${i}`);
        // etcd loads ours; we load etcd's
        const loaded = JSON.parse(execFileSync(harness, ["snapload", ours], { encoding: "utf8" }));
        assert.deepEqual(loaded, toJson(snap), `etcd loads case ${i}`);
        assert.deepEqual(await new Snapshotter(theirs).load(), snap, `we load etcd's case ${i}`);
      }
    });
  },
);
