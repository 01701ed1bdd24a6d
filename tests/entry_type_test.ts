/**
 * etcd 3.7 writes normal entries without their `Type` field (its zero value is left out, where
 * etcd 3.4 and 3.5 write `Type: 0`). A segment of such entries, framed and CRC-chained on a real
 * file, replays here with every entry Normal, and verifies.
 */

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { EntrySchema } from "../gen/raftpb/raft_pb.ts";
import { EntryType, verify, WAL } from "../mod.ts";
import { RecordType } from "../src/types.ts";
import { crc32c } from "../src/segment/crc32c.ts";
import { Encoder } from "../src/segment/encoder.ts";
import { withTempDir } from "./helpers.ts";

/** The Encoder's framing of a record whose data is given as bytes (what etcd 3.7 wrote). */
type Framing = { frame(type: number, data: Uint8Array, n: number): void };

test("entries without a Type field (as etcd 3.7 writes normal ones) replay as Normal and verify", async () => {
  await withTempDir(async (dir) => {
    const enc = new Encoder(0, 0);
    enc.crcRecord();
    enc.metadata(new TextEncoder().encode("meta"));
    enc.snapshot({ index: 0n, term: 0n });
    const wanted = [
      { term: 1n, index: 1n, data: new Uint8Array(0) }, // a leader's empty entry: no Data either
      { term: 1n, index: 2n, data: new TextEncoder().encode("put k v") },
    ];
    for (const e of wanted) {
      const bytes = toBinary(
        EntrySchema,
        create(EntrySchema, {
          Term: e.term,
          Index: e.index,
          ...(e.data.length > 0 ? { Data: e.data } : {}),
        }),
      );
      assert.ok(!bytes.includes(0x08), "no Type field (tag 0x08) in the entry's bytes");
      enc.crc = crc32c(bytes, enc.crc);
      (enc as unknown as Framing).frame(RecordType.Entry, bytes, bytes.length);
    }
    enc.state({ term: 1n, vote: 1n, commit: 2n });
    await writeFile(join(dir, "0000000000000000-0000000000000000.wal"), enc.take());

    const wal = await WAL.openForRead(dir);
    const { entries, state, metadata } = await wal.readAll().finally(() => wal.close());
    assert.deepEqual(
      entries.map((e) => [e.index, e.term, e.type, [...e.data]]),
      wanted.map((e) => [e.index, e.term, EntryType.Normal, [...e.data]]),
    );
    assert.deepEqual(state, { term: 1n, vote: 1n, commit: 2n });
    assert.equal(new TextDecoder().decode(metadata), "meta");
    const v = await verify(dir);
    assert.equal(v.tornTail, null);
  });
});
