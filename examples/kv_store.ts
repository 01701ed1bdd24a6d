/**
 * The shared part of the example key-value servers (examples/deno_kv, examples/bun_kv): a map
 * kept in memory whose every change is first made durable in the write-ahead log, and the HTTP
 * handler in front of it. Runtime-agnostic: it uses the library's API and the web-standard
 * `Request`/`Response`, nothing from Deno or Bun.
 *
 * The log is used the way a single Raft node would use it: each write is one entry at the
 * next index (term 1), saved together with the hard state {term 1, vote 1, commit = index}.
 * A write is applied to the map, and answered, only once its save has resolved (the entry is
 * on disk). Writes that arrive while a save is in flight are group-committed by the library:
 * one write(2) and one fdatasync for all of them.
 *
 * Entry data is a tiny binary format: one op byte (1 = put, 2 = delete), the key's length in
 * UTF-8 bytes as an unsigned LEB128 varint, the key, then (put only) the value's bytes.
 *
 * @module
 */

import { EntryType, exists, repair, WAL, WalError, type WalEvent } from "../mod.ts";

/** The metadata stored at the head of every segment: refuses a WAL written by something else. */
export const METADATA = "raftlog-kv-example/1";
/** The only term this single-node store ever uses. */
const TERM = 1n;
/** This node's id, as raft would vote for itself. */
const NODE_ID = 1n;
/** Largest key accepted, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 4096;
/** Largest value accepted, in bytes. */
export const MAX_VALUE_BYTES = 1 << 20;

const OP_PUT = 1;
const OP_DELETE = 2;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** One change to the map, as stored in a log entry. */
export type KvOp =
  | { op: "put"; key: string; value: Uint8Array<ArrayBuffer> }
  | { op: "delete"; key: string };

/** Encodes an op as entry data. */
export function encodeOp(op: KvOp): Uint8Array {
  const key = utf8.encode(op.key);
  const value = op.op === "put" ? op.value : new Uint8Array(0);
  const len: number[] = [];
  let n = key.length;
  do {
    len.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  const out = new Uint8Array(1 + len.length + key.length + value.length);
  out[0] = op.op === "put" ? OP_PUT : OP_DELETE;
  out.set(len, 1);
  out.set(key, 1 + len.length);
  out.set(value, 1 + len.length + key.length);
  return out;
}

/** Decodes entry data written by {@link encodeOp}; throws on anything else. */
export function decodeOp(data: Uint8Array): KvOp {
  const kind = data[0];
  if (kind !== OP_PUT && kind !== OP_DELETE) throw new Error(`unknown op byte ${kind}`);
  let keyLen = 0;
  let pos = 1;
  for (let shift = 0;; shift += 7) {
    if (pos >= data.length || shift > 28) throw new Error("bad key length");
    const b = data[pos++];
    keyLen += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) break;
  }
  if (pos + keyLen > data.length) throw new Error("key runs past the end of the entry");
  const key = utf8Strict.decode(data.subarray(pos, pos + keyLen));
  const rest = data.subarray(pos + keyLen);
  if (kind === OP_DELETE) {
    if (rest.length !== 0) throw new Error("a delete carries a value");
    return { op: "delete", key };
  }
  return { op: "put", key, value: rest.slice() };
}

/** Options of {@link KvStore.open}. */
export interface KvStoreOptions {
  /** Segment size of the WAL (default: the library's, 64,000,000 bytes). */
  segmentSizeBytes?: number;
}

/** Counters, served as JSON by `GET /stats`. */
export interface KvStats {
  /** Index of the last write made durable (and applied). */
  index: number;
  /** Keys in the map. */
  keys: number;
  /** Whether this start created the WAL. */
  created: boolean;
  /** Entries replayed at start. */
  replayed: number;
  /** Whether this start found a torn tail and repaired it. */
  repaired: boolean;
  /** Writes saved since start (one `wal.save` each). */
  saves: number;
  /** write(2) calls for them: fewer than `saves` when group commit coalesced saves. */
  writes: number;
  /** fdatasyncs of segments since start. */
  fsyncs: number;
  /** Segments cut since start. */
  cuts: number;
}

/** What an applied write did. */
export interface WriteResult {
  /** The write's raft index. */
  index: number;
  /** Whether the key was present just before the write was applied. */
  existed: boolean;
}

/**
 * A durable key-value map on top of the WAL. Open with {@link KvStore.open}; writes resolve
 * once they are on disk and applied; reads see what is applied.
 */
export class KvStore {
  private readonly map = new Map<string, Uint8Array<ArrayBuffer>>();
  /** Last index handed out to a write. */
  private lastIndex = 0n;
  /** Last index applied to the map. */
  private applied = 0n;
  /** Durable writes waiting for the ones before them to be applied. */
  private readonly durable = new Map<bigint, { op: KvOp; done: (existed: boolean) => void }>();
  private failure: unknown = null;
  private readonly counters: KvStats;

  private constructor(private wal: WAL | null, counters: KvStats) {
    this.counters = counters;
  }

  /**
   * Opens the store in `dir`: creates the WAL when the directory holds none, otherwise
   * replays it (repairing a torn tail left by a crash) and rebuilds the map.
   */
  static async open(dir: string, options: KvStoreOptions = {}): Promise<KvStore> {
    const counters: KvStats = {
      index: 0,
      keys: 0,
      created: false,
      replayed: 0,
      repaired: false,
      saves: 0,
      writes: 0,
      fsyncs: 0,
      cuts: 0,
    };
    const onEvent = (e: WalEvent) => {
      if (e.type === "write") counters.writes++;
      else if (e.type === "fsync" && e.target === "file") counters.fsyncs++;
      else if (e.type === "cut") counters.cuts++;
    };
    const walOptions = { segmentSizeBytes: options.segmentSizeBytes, onEvent };
    const store = new KvStore(null, counters);
    if (!(await exists(dir))) {
      // A fresh WAL (create makes the missing parent directories and refuses a non-empty one).
      store.wal = await WAL.create(dir, utf8.encode(METADATA), walOptions);
      counters.created = true;
      return store;
    }
    let wal = await WAL.open(dir, undefined, walOptions);
    let replay;
    try {
      replay = await wal.readAll();
    } catch (e) {
      if (!(e instanceof WalError) || e.code !== "UNEXPECTED_EOF") throw e;
      // A crash tore the last write, which was never acknowledged: cut it off and go on.
      await repair(dir, walOptions);
      counters.repaired = true;
      wal = await WAL.open(dir, undefined, walOptions);
      replay = await wal.readAll();
    }
    store.wal = wal;
    try {
      const metadata = new TextDecoder().decode(replay.metadata);
      if (metadata !== METADATA) {
        throw new Error(`${dir} is not a WAL of this store (metadata "${metadata}")`);
      }
      for (const e of replay.entries) {
        if (e.index !== store.applied + 1n) {
          throw new Error(`replay: entry ${e.index} follows ${store.applied}`);
        }
        // Every entry in the log is applied, including one whose save was cut short after its
        // entry record but before its hard state record: it was never acknowledged, so keeping
        // it is as correct as dropping it, and the next save's commit covers it.
        if (e.type === EntryType.Normal && e.data.length > 0) store.apply(decodeOp(e.data));
        store.applied = e.index;
      }
    } catch (e) {
      await wal.close().catch(() => {});
      throw e;
    }
    store.lastIndex = store.applied;
    counters.replayed = replay.entries.length;
    counters.index = Number(store.applied);
    counters.keys = store.map.size;
    return store;
  }

  /** The value of `key`, or undefined. */
  get(key: string): Uint8Array<ArrayBuffer> | undefined {
    return this.map.get(key);
  }

  /** Every key, sorted. */
  keys(): string[] {
    return [...this.map.keys()].sort();
  }

  /** Sets `key` to `value`; resolves once the write is durable and applied. */
  put(key: string, value: Uint8Array<ArrayBuffer>): Promise<WriteResult> {
    return this.write({ op: "put", key, value });
  }

  /** Removes `key` (a no-op on the map when absent, but still logged). */
  delete(key: string): Promise<WriteResult> {
    return this.write({ op: "delete", key });
  }

  /** A copy of the counters. */
  stats(): KvStats {
    return { ...this.counters };
  }

  /** Set once a save has failed: the WAL closed itself and the store takes no more writes. */
  get failed(): boolean {
    return this.failure !== null;
  }

  /** Syncs and closes the WAL (waits for saves in flight). */
  async close(): Promise<void> {
    await this.wal?.close();
  }

  private async write(op: KvOp): Promise<WriteResult> {
    if (this.failure !== null) {
      throw new Error("the store failed earlier; restart it", { cause: this.failure });
    }
    this.lastIndex += 1n;
    const index = this.lastIndex;
    this.counters.saves++;
    try {
      // Saves made while others are in flight are group-committed by the library.
      await this.wal!.save({ term: TERM, vote: NODE_ID, commit: index }, [
        { term: TERM, index, type: EntryType.Normal, data: encodeOp(op) },
      ]);
    } catch (e) {
      // The WAL closes itself after a failed write or fsync, and an index that was handed out
      // but never written would leave a gap: no later write may succeed.
      this.failure ??= e;
      throw e;
    }
    // Saves resolve in call order, so this applies at once; the queue only makes the map
    // independent of that: writes are applied strictly in index order.
    const existed = await new Promise<boolean>((done) => {
      this.durable.set(index, { op, done });
      this.applyDurable();
    });
    return { index: Number(index), existed };
  }

  private applyDurable(): void {
    for (;;) {
      const next = this.applied + 1n;
      const w = this.durable.get(next);
      if (w === undefined) return;
      this.durable.delete(next);
      const existed = this.apply(w.op);
      this.applied = next;
      this.counters.index = Number(next);
      this.counters.keys = this.map.size;
      w.done(existed);
    }
  }

  private apply(op: KvOp): boolean {
    const existed = this.map.has(op.key);
    if (op.op === "put") this.map.set(op.key, op.value);
    else this.map.delete(op.key);
    return existed;
  }
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}

function text(body: string, status: number): Response {
  return new Response(body + "\n", { status, headers: { "content-type": "text/plain" } });
}

/**
 * The HTTP API:
 *
 *   GET    /kv/<key>   the value (200, raw bytes) or 404
 *   PUT    /kv/<key>   sets the value to the request body; 200 {"index":n,"existed":b} once durable
 *   DELETE /kv/<key>   removes the key; 200 {"index":n,"existed":b} once durable
 *   GET    /kv         the keys, as a sorted JSON array
 *   GET    /stats      {@link KvStats} as JSON
 *
 * `<key>` is the rest of the path, percent-decoded (so it may contain `/`).
 */
export function createHandler(store: KvStore): (req: Request) => Promise<Response> {
  return async (req) => {
    const url = new URL(req.url);
    const path = url.pathname;
    if (path === "/stats") {
      return req.method === "GET" ? json(store.stats()) : text("method not allowed", 405);
    }
    if (path === "/kv" || path === "/kv/") {
      return req.method === "GET" ? json(store.keys()) : text("method not allowed", 405);
    }
    if (!path.startsWith("/kv/")) return text("not found", 404);
    let key: string;
    try {
      key = decodeURIComponent(path.slice("/kv/".length));
    } catch {
      return text("bad key encoding", 400);
    }
    if (utf8.encode(key).length > MAX_KEY_BYTES) return text("key too long", 400);

    if (req.method === "GET" || req.method === "HEAD") {
      const value = store.get(key);
      if (value === undefined) return text("not found", 404);
      return new Response(req.method === "HEAD" ? null : value, {
        headers: { "content-type": "application/octet-stream" },
      });
    }
    if (req.method !== "PUT" && req.method !== "DELETE") return text("method not allowed", 405);
    if (store.failed) return text("the store failed; restart the server", 503);
    let result: WriteResult;
    try {
      if (req.method === "PUT") {
        const value = new Uint8Array(await req.arrayBuffer());
        if (value.length > MAX_VALUE_BYTES) return text("value too large", 413);
        result = await store.put(key, value);
      } else {
        result = await store.delete(key);
      }
    } catch (e) {
      // Not acknowledged: the write may or may not be in the log.
      console.error("kv: write failed:", e);
      return text(`write failed: ${e instanceof WalError ? e.code : String(e)}`, 500);
    }
    return json(result);
  };
}

/** A one-line description of a startup error (with the WalError code when there is one). */
export function errorMessage(e: unknown): string {
  if (e instanceof WalError) return `${e.code}: ${e.message}${e.file ? ` (${e.file})` : ""}`;
  return e instanceof Error ? e.message : String(e);
}

/** Where a server keeps its data and listens. */
export interface ServerConfig {
  /** The WAL directory. */
  dir: string;
  /** The port; 0 picks a free one. */
  port: number;
  /** The address to bind. */
  hostname: string;
  /** The WAL's segment size. */
  segmentSizeBytes: number;
}

/** Default segment size of the examples: small, so that segments are cut often. */
export const EXAMPLE_SEGMENT_SIZE_BYTES = 64 * 1024;

/**
 * Reads the configuration from `[dir] [port]` arguments, falling back to the environment:
 * `KV_DIR`, `KV_PORT` (default 8080; 0 = any free port), `KV_HOST` (default 127.0.0.1) and
 * `KV_SEGMENT_SIZE` (bytes, default 65536).
 */
export function parseConfig(
  args: readonly string[],
  env: (name: string) => string | undefined,
): ServerConfig {
  const dir = args[0] ?? env("KV_DIR");
  if (dir === undefined || dir === "") {
    throw new Error("usage: server.ts <data-dir> [port]  (or KV_DIR, KV_PORT)");
  }
  const port = Number(args[1] ?? env("KV_PORT") ?? "8080");
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`bad port: ${args[1] ?? env("KV_PORT")}`);
  }
  const size = Number(env("KV_SEGMENT_SIZE") ?? EXAMPLE_SEGMENT_SIZE_BYTES);
  if (!Number.isSafeInteger(size) || size < 64) {
    throw new Error(`bad KV_SEGMENT_SIZE: ${env("KV_SEGMENT_SIZE")}`);
  }
  return { dir, port, hostname: env("KV_HOST") ?? "127.0.0.1", segmentSizeBytes: size };
}
