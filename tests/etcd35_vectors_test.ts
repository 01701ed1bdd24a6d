/**
 * Vectors written by etcd 3.5.33's own `wal` package (tests/fixtures/etcd-3.5.33/, copied
 * from the team's shared vectors; its README says how they were made): snapshot records with
 * ConfState. The same operations through this library give byte-identical segments, and the
 * directory etcd wrote replays here exactly as etcd's digests say.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { type ConfState, type Entry, validSnapshotEntries, verify, WAL } from "../mod.ts";
import { withTempDir } from "./helpers.ts";

const FIXTURE = "tests/fixtures/etcd-3.5.33";
const SCENARIO = join(FIXTURE, "scenario");

/** The scenario of the fixture's README, through this library. */
async function writeScenario(dir: string): Promise<void> {
  const wal = await WAL.create(dir, new TextEncoder().encode("scenario-metadata"), {
    segmentSizeBytes: 16 * 1024,
  });
  let index = 0;
  for (let term = 1; term <= 5; term++) {
    for (let save = 0; save < 20; save++) {
      const entries: Entry[] = [];
      for (let k = 0; k < 7; k++) {
        const i = ++index;
        const n = (i * 37) % 300;
        const data = new Uint8Array(n);
        for (let b = 0; b < n; b++) data[b] = (i + b) & 0xff;
        entries.push({ term: BigInt(term), index: BigInt(i), type: i % 50 === 0 ? 1 : 0, data });
      }
      await wal.save(
        { term: BigInt(term), vote: BigInt(term % 3), commit: BigInt(index - 2) },
        entries,
      );
    }
    const even = term % 2 === 0;
    const confState: ConfState = {
      voters: [1n, 2n, BigInt(2 + term)],
      learners: [9n],
      votersOutgoing: even ? [1n, 2n] : [],
      learnersNext: even ? [BigInt(2 + term)] : [],
      autoLeave: even,
    };
    await wal.saveSnapshot({ index: BigInt(index - 9), term: BigInt(term), confState });
  }
  await wal.close();
}

/** A line of scenario.snapshots.jsonl, as etcd's ValidSnapshotEntries printed it. */
interface GoSnapshot {
  index: number;
  term: number;
  has_conf_state: boolean;
  voters: number[] | null;
  learners: number[] | null;
  voters_outgoing: number[] | null;
  learners_next: number[] | null;
  auto_leave: boolean;
}

const big = (xs: number[] | null): bigint[] => (xs ?? []).map((x) => BigInt(x));

describe("etcd 3.5.33 vectors (snapshot records with ConfState)", () => {
  test("the same operations give the same segment names and byte-identical segments", async () => {
    await withTempDir(async (tmp) => {
      const dir = join(tmp, "wal");
      await writeScenario(dir);
      const ours = (await readdir(dir)).sort();
      const theirs = (await readdir(SCENARIO)).sort();
      assert.deepEqual(ours, theirs);
      for (const name of theirs) {
        const a = await readFile(join(dir, name));
        const b = await readFile(join(SCENARIO, name));
        assert.ok(a.equals(b), `${name} differs (${a.length} vs ${b.length} bytes)`);
      }
    });
  });

  test("validSnapshotEntries returns what etcd's did, ConfState included", async () => {
    const lines = (await readFile(join(FIXTURE, "scenario.snapshots.jsonl"), "utf8"))
      .trim().split("\n").map((l) => JSON.parse(l) as GoSnapshot);
    const expected = lines.map((g) => ({
      index: BigInt(g.index),
      term: BigInt(g.term),
      ...(g.has_conf_state
        ? {
          confState: {
            voters: big(g.voters),
            learners: big(g.learners),
            votersOutgoing: big(g.voters_outgoing),
            learnersNext: big(g.learners_next),
            autoLeave: g.auto_leave,
          },
        }
        : {}),
    }));
    assert.deepEqual(await validSnapshotEntries(SCENARIO), expected);
    const checked = await verify(SCENARIO);
    assert.equal(checked.tornTail, null);
    // the last hard state, as etcd 3.5's Verify returns it: term 5's last save (index 700)
    assert.deepEqual(checked.state, { term: 5n, vote: 2n, commit: 698n });
  });

  test("replay from every snapshot matches etcd's entry count, bytes and digest", async () => {
    const lines = (await readFile(join(FIXTURE, "scenario.replays.txt"), "utf8")).trim()
      .split("\n");
    assert.ok(lines.length > 1);
    for (const line of lines) {
      const [index, term, json] = line.split(" ", 3);
      const want = JSON.parse(json) as { entries: number; bytes: number; digest: string };
      const wal = await WAL.openForRead(SCENARIO, { index: BigInt(index), term: BigInt(term) });
      const { metadata, state, entries } = await wal.readAll();
      await wal.close();
      const h = createHash("sha256");
      h.update(metadata);
      h.update(`|${state.term},${state.vote},${state.commit}|`);
      let bytes = 0;
      for (const e of entries) {
        h.update(`${e.term},${e.index},${e.type},${e.data.length}:`);
        h.update(e.data);
        bytes += e.data.length;
      }
      assert.deepEqual(
        { entries: entries.length, bytes, digest: h.digest("hex") },
        want,
        `replay from snapshot ${index} ${term}`,
      );
    }
  });
});
