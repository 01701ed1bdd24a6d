/**
 * The public data types: plain interfaces with `bigint` for every uint64, because term,
 * index and vote values above 2^53 occur in real etcd data.
 *
 * @module
 */

/** The kind of a raft log entry (raftpb.EntryType). */
export const EntryType = {
  /** An ordinary application entry. */
  Normal: 0,
  /** A raftpb.ConfChange. */
  ConfChange: 1,
  /** A raftpb.ConfChangeV2. */
  ConfChangeV2: 2,
} as const;

/** One of the values of {@link EntryType}; other numbers read from disk are kept as they are. */
export type EntryType = number;

/** A raft log entry (raftpb.Entry). */
export interface Entry {
  /** The term the entry was proposed in. */
  term: bigint;
  /** The entry's position in the raft log. */
  index: bigint;
  /** The entry kind, see {@link EntryType}. */
  type: EntryType;
  /** The payload. An empty array is stored as an absent field, as raft's own empty entries are. */
  data: Uint8Array;
}

/** The raft hard state (raftpb.HardState). All zeros means "empty": it is not stored. */
export interface HardState {
  /** The current term. */
  term: bigint;
  /** The node voted for in `term` (0 for none). */
  vote: bigint;
  /** The highest index known to be committed. */
  commit: bigint;
}

/** A snapshot position recorded in the WAL (walpb.Snapshot): where replay may start. */
export interface Snapshot {
  /** The last raft index the snapshot covers. */
  index: bigint;
  /** The term of the entry at `index`. */
  term: bigint;
}

/** What {@link WAL.readAll} returns: everything replayed after the snapshot it was opened at. */
export interface ReadAllResult {
  /** The metadata given to `create`, as stored at the head of every segment. */
  metadata: Uint8Array;
  /** The last hard state saved (all zeros if none). */
  state: HardState;
  /** The entries after the snapshot index, with raft overwrites applied. */
  entries: Entry[];
}

/** What {@link WAL.stream} returns: the log's metadata and state, and its entries to iterate. */
export interface ReplayStream {
  /** The metadata given to `create`. */
  metadata: Uint8Array;
  /** The last hard state saved (all zeros if none). */
  state: HardState;
  /** The entries after the snapshot, with raft overwrites applied, one at a time. */
  entries: AsyncIterable<Entry>;
}

/** Record types of walpb.Record.type. */
export const RecordType = {
  Metadata: 1,
  Entry: 2,
  State: 3,
  Crc: 4,
  Snapshot: 5,
} as const;

/** A HardState of all zeros, which raft treats as "nothing to save". */
export function isEmptyHardState(s: HardState): boolean {
  return s.term === 0n && s.vote === 0n && s.commit === 0n;
}
