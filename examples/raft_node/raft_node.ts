/**
 * The shared part of the example raft node (examples/raft_node/deno_server.ts and
 * bun_server.ts): a single raft-like node that keeps its half of a replicated log, the local
 * log, with `RaftStorage` in an etcd data directory, and the HTTP handler in front of it.
 * Runtime-agnostic: it uses the library's API and the web-standard `Request`/`Response`,
 * nothing from Deno or Bun.
 *
 * It is one node of a one-node cluster, so it is always the leader and its own quorum:
 *
 * - At start it opens the data directory (`RaftStorage.open`: the log is indexed, not
 *   replayed into memory; a torn tail is repaired) or creates it, then campaigns as raft
 *   does: term = the saved term + 1, a vote for itself, and the new leader's empty entry at
 *   the next index, saved and durable before it listens.
 * - A proposal is one entry at the next index in the current term, appended together with the
 *   hard state {term, vote 1, commit: its index}. It is answered once that append is durable
 *   (a quorum of one: durable means committed). Proposals made while an append is being
 *   written are group-committed by the WAL.
 * - Reads (`/entries`, `/term`) are answered by the storage from its index and the segment
 *   files, as raft reads its `Storage`.
 * - A snapshot is made at the commit index with the application's bytes, then the log is
 *   compacted, keeping some entries before it, and old segments and `.snap` files are purged.
 *
 * Numbers (indexes, terms) go out as JSON numbers: exact below 2^53, which this example's
 * logs never reach; the library itself keeps them as `bigint`.
 *
 * @module
 */

import { exists, WalError, type WalEvent } from "../../mod.ts";
import { type ConfState, type Entry, EntryType, type HardState, RaftStorage } from "../../raft.ts";

/** The WAL metadata of this example's data directories. */
export const METADATA = "raftlog-raft-node-example/1";
/** This node's id: it votes for itself. */
export const NODE_ID = 1n;
/** Largest proposal accepted, in bytes. */
export const MAX_PROPOSAL_BYTES = 1 << 20;
/** Largest `max` of `GET /entries` (and its default), in bytes. */
export const MAX_ENTRIES_BYTES = 4 << 20;

const utf8 = new TextEncoder();

/** The membership: this node alone. */
function conf(): ConfState {
  return {
    voters: [NODE_ID],
    learners: [],
    votersOutgoing: [],
    learnersNext: [],
    autoLeave: false,
  };
}

/** Options of {@link RaftNode.start}. */
export interface RaftNodeOptions {
  /** The WAL's segment size (default: the library's, 64,000,000 bytes). */
  segmentSizeBytes?: number;
  /** Segments and `.snap` files a compaction keeps (default: the library's, 5). */
  retain?: number;
  /** Bytes of segment blocks cached for reads (default: the library's, 4 MiB). */
  cacheBytes?: number;
}

/** What `GET /state` answers. */
export interface NodeState {
  /** The term this node leads in. */
  term: number;
  /** `storage.firstIndex()`. */
  firstIndex: number;
  /** `storage.lastIndex()`. */
  lastIndex: number;
  /** The hard state last made durable. */
  hardState: { term: number; vote: number; commit: number };
  /** The snapshot held (index 0: none). */
  snapshot: { index: number; term: number };
  /** `storage.heldBytes`: the index plus the block cache. */
  heldBytes: number;
  /** Whether this start created the data directory. */
  created: boolean;
  /** Whether this start repaired a torn tail. */
  repaired: boolean;
  /** Since the start: proposals appended, write(2) calls for them, fdatasyncs, cuts. */
  proposals: number;
  writes: number;
  fsyncs: number;
  cuts: number;
}

/** An entry as `GET /entries` sends it. */
export interface EntryJson {
  index: number;
  term: number;
  type: number;
  /** The data, base64. */
  data: string;
}

/** Base64 of `bytes` (btoa is in Deno, Bun and Node). */
export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** The JSON form of an entry. */
function entryJson(e: Entry): EntryJson {
  return { index: Number(e.index), term: Number(e.term), type: e.type, data: toBase64(e.data) };
}

/**
 * The node: the leader of a one-node cluster over a {@link RaftStorage}. Start it with
 * {@link RaftNode.start}.
 */
export class RaftNode {
  /** The last index handed out to an append. */
  private last: bigint;
  /** Set once an append failed: an index handed out may never be written. */
  private failure: unknown = null;
  private snap: { index: bigint; term: bigint };

  private constructor(
    readonly storage: RaftStorage,
    readonly term: bigint,
    snap: { index: bigint; term: bigint },
    private readonly counters: {
      created: boolean;
      repaired: boolean;
      proposals: number;
      writes: number;
      fsyncs: number;
      cuts: number;
    },
  ) {
    this.last = storage.lastIndex();
    this.snap = snap;
  }

  /**
   * Opens the node's storage in data directory `dir` (creating it when `dir/member/wal`
   * holds no WAL), then campaigns: a new term, and the leader's empty entry, durable before
   * this resolves.
   */
  static async start(dir: string, options: RaftNodeOptions = {}): Promise<RaftNode> {
    const counters = {
      created: false,
      repaired: false,
      proposals: 0,
      writes: 0,
      fsyncs: 0,
      cuts: 0,
    };
    const onEvent = (e: WalEvent) => {
      if (e.type === "write") counters.writes++;
      else if (e.type === "fsync" && e.target === "file") counters.fsyncs++;
      else if (e.type === "cut") counters.cuts++;
      else if (e.type === "repair") counters.repaired = true;
    };
    const opts = { ...options, onEvent };
    let storage: RaftStorage;
    if (await exists(`${dir}/member/wal`)) {
      storage = await RaftStorage.open(dir, opts); // indexes the log, repairs a torn tail
    } else {
      storage = await RaftStorage.create(dir, utf8.encode(METADATA), opts);
      counters.created = true;
    }
    try {
      const metadata = new TextDecoder().decode(storage.metadata);
      if (metadata !== METADATA) {
        throw new Error(`${dir} is not a data directory of this node (metadata "${metadata}")`);
      }
      const { metadata: m } = await storage.snapshot();
      // Campaign: a term past every term saved, a vote for itself; as leader, an empty entry.
      const { hardState } = storage.initialState();
      const term = hardState.term + 1n;
      const index = storage.lastIndex() + 1n;
      await storage.append(
        [{ index, term, type: EntryType.Normal, data: new Uint8Array(0) }],
        { term, vote: NODE_ID, commit: index },
      );
      return new RaftNode(storage, term, { index: m.index, term: m.term }, counters);
    } catch (e) {
      await storage.close().catch(() => {});
      throw e;
    }
  }

  /** Set once an append failed: the node takes no more proposals. */
  get failed(): boolean {
    return this.failure !== null;
  }

  /** Appends `data` as the next entry; resolves with its index and term once durable. */
  async propose(data: Uint8Array): Promise<{ index: bigint; term: bigint }> {
    if (this.failure !== null) {
      throw new Error("an append failed earlier; restart the node", { cause: this.failure });
    }
    const index = ++this.last;
    const term = this.term;
    const state: HardState = { term, vote: NODE_ID, commit: index };
    this.counters.proposals++;
    try {
      // Appends take effect in call order; those made meanwhile are group-committed.
      await this.storage.append([{ index, term, type: EntryType.Normal, data }], state);
    } catch (e) {
      this.failure ??= e;
      throw e;
    }
    return { index, term };
  }

  /**
   * Makes a snapshot at the commit index with the application's `data`, then compacts the
   * log to `keep` entries before it (where there are that many) and purges old files.
   */
  async snapshot(data: Uint8Array, keep: bigint): Promise<{ index: bigint; term: bigint }> {
    const commit = this.storage.initialState().hardState.commit;
    const snap = await this.storage.createSnapshot(commit, data, conf());
    this.snap = { index: snap.metadata.index, term: snap.metadata.term };
    const to = commit - keep;
    if (to >= this.storage.firstIndex()) {
      await this.storage.compact(to).catch((e) => {
        // a snapshot made meanwhile compacted further: as etcd, take that as done
        if (!(e instanceof WalError) || e.code !== "COMPACTED") throw e;
      });
    }
    return this.snap;
  }

  /** {@link NodeState}. */
  state(): NodeState {
    const s = this.storage;
    const { hardState: h } = s.initialState();
    const c = this.counters;
    return {
      term: Number(this.term),
      firstIndex: Number(s.firstIndex()),
      lastIndex: Number(s.lastIndex()),
      hardState: { term: Number(h.term), vote: Number(h.vote), commit: Number(h.commit) },
      snapshot: { index: Number(this.snap.index), term: Number(this.snap.term) },
      heldBytes: s.heldBytes,
      created: c.created,
      repaired: c.repaired,
      proposals: c.proposals,
      writes: c.writes,
      fsyncs: c.fsyncs,
      cuts: c.cuts,
    };
  }

  /** Waits for the appends in flight, then closes the storage. */
  async close(): Promise<void> {
    await this.storage.close();
  }
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}

function failure(status: number, error: string, message: string): Response {
  return json({ error, message }, status);
}

/** The HTTP status of a storage error. */
const STATUS: Record<string, number> = {
  COMPACTED: 410,
  UNAVAILABLE: 404,
  SNAP_OUT_OF_DATE: 409,
  INVALID_ARGUMENT: 400,
  CLOSED: 503,
};

function fromError(e: unknown): Response {
  if (e instanceof WalError) return failure(STATUS[e.code] ?? 500, e.code, e.message);
  return failure(500, "INTERNAL", e instanceof Error ? e.message : String(e));
}

/** A uint64 query parameter, or `fallback` when absent; null when malformed. */
function uint(v: string | null, fallback: bigint): bigint | null {
  if (v === null) return fallback;
  return /^[0-9]{1,20}$/.test(v) && BigInt(v) < 2n ** 64n ? BigInt(v) : null;
}

/**
 * The HTTP API:
 *
 *   POST /propose               the body is the entry's data; {"index":i,"term":t} once durable
 *   GET  /entries?lo=&hi=&max=  entries lo..hi-1 (default: first..last), at most max bytes
 *                               (but at least one entry), as a JSON array of {@link EntryJson}
 *   GET  /term/<i>              {"index":i,"term":t}
 *   GET  /state                 {@link NodeState}
 *   POST /snapshot?keep=n       a snapshot at the commit index with the body as its data, then
 *                               compaction to n entries before it (default 100):
 *                               {"index":i,"term":t,"firstIndex":f}
 *   GET  /snapshot              the snapshot held: {"index","term","voters","data"} (base64)
 *
 * Storage errors are JSON {"error": code, "message"}: COMPACTED 410, UNAVAILABLE 404,
 * SNAP_OUT_OF_DATE 409, INVALID_ARGUMENT 400, CLOSED 503.
 */
export function createHandler(node: RaftNode): (req: Request) => Promise<Response> {
  return async (req) => {
    const url = new URL(req.url);
    const path = url.pathname;
    const q = url.searchParams;
    const get = req.method === "GET";
    const post = req.method === "POST";
    try {
      if (path === "/propose" && post) {
        if (node.failed) return failure(503, "FAILED", "an append failed; restart the node");
        const data = new Uint8Array(await req.arrayBuffer());
        if (data.length > MAX_PROPOSAL_BYTES) {
          return failure(413, "TOO_LARGE", "proposal too large");
        }
        const { index, term } = await node.propose(data);
        return json({ index: Number(index), term: Number(term) });
      }
      if (path === "/entries" && get) {
        const s = node.storage;
        const lo = uint(q.get("lo"), s.firstIndex());
        const hi = uint(q.get("hi"), s.lastIndex() + 1n);
        const max = uint(q.get("max"), BigInt(MAX_ENTRIES_BYTES));
        if (lo === null || hi === null || max === null) {
          return failure(400, "INVALID_ARGUMENT", "lo, hi and max are unsigned integers");
        }
        const limit = max < BigInt(MAX_ENTRIES_BYTES) ? Number(max) : MAX_ENTRIES_BYTES;
        return json((await s.entries(lo, hi, limit)).map(entryJson));
      }
      if (path.startsWith("/term/") && get) {
        const i = uint(path.slice("/term/".length), 0n);
        if (i === null) return failure(400, "INVALID_ARGUMENT", "the index is an unsigned integer");
        return json({ index: Number(i), term: Number(node.storage.term(i)) });
      }
      if (path === "/state" && get) return json(node.state());
      if (path === "/snapshot" && post) {
        const keep = uint(q.get("keep"), 100n);
        if (keep === null) return failure(400, "INVALID_ARGUMENT", "keep is an unsigned integer");
        const data = new Uint8Array(await req.arrayBuffer());
        if (data.length > MAX_PROPOSAL_BYTES) return failure(413, "TOO_LARGE", "data too large");
        const { index, term } = await node.snapshot(data, keep);
        const firstIndex = Number(node.storage.firstIndex());
        return json({ index: Number(index), term: Number(term), firstIndex });
      }
      if (path === "/snapshot" && get) {
        const { data, metadata: m } = await node.storage.snapshot();
        return json({
          index: Number(m.index),
          term: Number(m.term),
          voters: m.confState.voters.map(Number),
          data: toBase64(data),
        });
      }
    } catch (e) {
      if (!(e instanceof WalError)) console.error("raft node:", e);
      return fromError(e);
    }
    return failure(404, "NOT_FOUND", `no ${req.method} ${path}`);
  };
}

/** A one-line description of a startup error (with the WalError code when there is one). */
export function errorMessage(e: unknown): string {
  if (e instanceof WalError) return `${e.code}: ${e.message}${e.file ? ` (${e.file})` : ""}`;
  return e instanceof Error ? e.message : String(e);
}

/** Where a node keeps its data and listens. */
export interface NodeConfig {
  /** The data directory (holds `member/wal` and `member/snap`). */
  dir: string;
  /** The port; 0 picks a free one. */
  port: number;
  /** The address to bind. */
  hostname: string;
  /** The storage's options. */
  options: RaftNodeOptions;
}

/**
 * Reads the configuration from `[dir] [port]` arguments, falling back to the environment:
 * `RAFT_DIR`, `RAFT_PORT` (default 8080; 0 = any free port), `RAFT_HOST` (default
 * 127.0.0.1), `RAFT_SEGMENT_SIZE` (bytes, default 65536: small, so that segments are cut
 * often), `RAFT_RETAIN` and `RAFT_CACHE_BYTES` (default: the library's).
 */
export function parseConfig(
  args: readonly string[],
  env: (name: string) => string | undefined,
): NodeConfig {
  const dir = args[0] ?? env("RAFT_DIR");
  if (dir === undefined || dir === "") {
    throw new Error("usage: <server> <data-dir> [port]  (or RAFT_DIR, RAFT_PORT)");
  }
  const port = Number(args[1] ?? env("RAFT_PORT") ?? "8080");
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`bad port: ${args[1] ?? env("RAFT_PORT")}`);
  }
  const num = (name: string, fallback?: number): number | undefined => {
    const v = env(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`bad ${name}: ${v}`);
    return n;
  };
  return {
    dir,
    port,
    hostname: env("RAFT_HOST") ?? "127.0.0.1",
    options: {
      segmentSizeBytes: num("RAFT_SEGMENT_SIZE", 64 * 1024),
      retain: num("RAFT_RETAIN"),
      cacheBytes: num("RAFT_CACHE_BYTES"),
    },
  };
}
