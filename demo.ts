/**
 * The demo: create a WAL in a scratch directory, append, cut, close, reopen, replay, and
 * print what was found. Runs under Deno (`deno task demo`) and Bun (`bun demo.ts`).
 *
 * @module
 */

import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EntryType, WAL } from "./mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const scratch = await mkdtemp(join(tmpdir(), "raftlog-demo-"));
const dir = join(scratch, "wal");
const segmentSizeBytes = 4096; // small, so the demo cuts segments on its own

try {
  const runtime = "Bun" in globalThis ? "Bun" : "Deno" in globalThis ? "Deno" : "Node";
  console.log(`runtime: ${runtime}; WAL directory: ${dir}`);

  const wal = await WAL.create(dir, enc.encode("demo-cluster"), { segmentSizeBytes });
  let index = 0n;
  for (let batch = 0; batch < 10; batch++) {
    const entries = [];
    for (let i = 0; i < 5; i++) {
      index++;
      entries.push({
        term: 1n,
        index,
        type: EntryType.Normal,
        data: enc.encode(`put key${index} = value-${"x".repeat(60)}`),
      });
    }
    await wal.save({ term: 1n, vote: 1n, commit: index - 1n }, entries);
  }
  await wal.saveSnapshot({ index: 20n, term: 1n });
  await wal.cut();
  index++;
  await wal.save({ term: 2n, vote: 1n, commit: index }, [
    { term: 2n, index, type: EntryType.Normal, data: enc.encode("after the explicit cut") },
  ]);
  await wal.close();

  console.log("segments:");
  for (const name of (await readdir(dir)).sort()) {
    console.log(`  ${name}  ${(await stat(join(dir, name))).size} bytes`);
  }

  for (const snap of [{ index: 0n, term: 0n }, { index: 20n, term: 1n }]) {
    const w = await WAL.open(dir, snap, { segmentSizeBytes });
    const { metadata, state, entries } = await w.readAll();
    console.log(
      `replay from snapshot ${snap.index}: metadata "${dec.decode(metadata)}", ` +
        `state {term ${state.term}, vote ${state.vote}, commit ${state.commit}}, ` +
        `${entries.length} entries (${entries[0]?.index}..${entries.at(-1)?.index}); ` +
        `last: "${dec.decode(entries.at(-1)?.data)}"`,
    );
    await w.close();
  }

  // Reopened, the WAL keeps appending after the cut.
  const w = await WAL.open(dir, { index: 20n, term: 1n }, { segmentSizeBytes });
  await w.readAll();
  index++;
  await w.save({ term: 2n, vote: 1n, commit: index }, [
    { term: 2n, index, type: EntryType.Normal, data: enc.encode("appended after reopen") },
  ]);
  await w.close();
  const r = await WAL.openForRead(dir);
  const { entries } = await r.readAll();
  await r.close();
  console.log(
    `after reopen and append: ${entries.length} entries, last index ${entries.at(-1)?.index}`,
  );
} finally {
  await rm(scratch, { recursive: true, force: true });
}
