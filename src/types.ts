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

/**
 * Raft's membership at a snapshot (raftpb.ConfState): the voters and learners, and during a
 * joint configuration change the outgoing voters and the learners to come.
 */
export interface ConfState {
  /** The voters (of the incoming configuration, in a joint one). */
  voters: bigint[];
  /** The learners. */
  learners: bigint[];
  /** The voters of the outgoing configuration; empty unless in a joint configuration. */
  votersOutgoing: bigint[];
  /** Voters of the outgoing configuration that become learners when it is left. */
  learnersNext: bigint[];
  /** Whether raft leaves the joint configuration on its own. */
  autoLeave: boolean;
}

/**
 * A snapshot position recorded in the WAL (walpb.Snapshot): where replay may start, and
 * (etcd 3.5+) raft's membership there.
 */
export interface Snapshot {
  /** The last raft index the snapshot covers. */
  index: bigint;
  /** The term of the entry at `index`. */
  term: bigint;
  /**
   * The membership at `index`. etcd 3.5+ writes it in every snapshot record (and refuses to
   * write one at an index above 0 without it); etcd 3.7+ rebuilds membership from the last
   * valid one at boot. Absent in records etcd 3.4 wrote; read back only when present.
   */
  confState?: ConfState;
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

/** A new HardState of all zeros: what a log holds before any state is saved. */
export function emptyHardState(): HardState {
  return { term: 0n, vote: 0n, commit: 0n };
}

/** A new, empty ConfState: no members, no joint configuration. */
export function emptyConfState(): ConfState {
  return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
}

/** A HardState of all zeros, which raft treats as "nothing to save". */
export function isEmptyHardState(s: HardState): boolean {
  return s.term === 0n && s.vote === 0n && s.commit === 0n;
}
