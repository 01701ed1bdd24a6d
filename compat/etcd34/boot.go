package main

// etcd 3.4's server boot on a data directory, for the RaftStorage comparisons:
//
//	etcd34compat boot <datadir>
//
// It does what etcdserver.NewServer (the haveWAL case) and restartNode do, with etcd's own
// packages: wal.ValidSnapshotEntries(<datadir>/member/wal), then
// snap.New(<datadir>/member/snap).LoadNewestAvailable of those, then readWAL (storage.go):
// wal.Open at the snapshot's index and term, ReadAll, and on io.ErrUnexpectedEOF one
// wal.Repair and a second try; then a raft.MemoryStorage as restartNode fills it
// (ApplySnapshot, SetHardState, Append). It prints one JSON line (a bootResult): uint64s as
// decimal strings, bytes as hex, as `read` does; the snapshot in snap.go's snapJSON form,
// null when none was found. Where etcd's server would exit (lg.Fatal), it prints
// "error: ..." to stderr and exits 1.

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"go.etcd.io/etcd/etcdserver/api/snap"
	"go.etcd.io/etcd/raft"
	"go.etcd.io/etcd/raft/raftpb"
	"go.etcd.io/etcd/wal"
	"go.etcd.io/etcd/wal/walpb"
)

// walSnapJSON is a walpb.Snapshot (etcd 3.4's has only index and term).
type walSnapJSON struct {
	Index string `json:"index"`
	Term  string `json:"term"`
}

type bootResult struct {
	// WalSnapshots is what wal.ValidSnapshotEntries returned: the WAL's snapshot records at
	// or below the last hard state's commit.
	WalSnapshots []walSnapJSON `json:"walSnapshots"`
	// Snapshot is the .snap LoadNewestAvailable picked (null: snap.ErrNoSnapshot).
	Snapshot *snapJSON `json:"snapshot"`
	// Repaired says whether ReadAll failed with io.ErrUnexpectedEOF and wal.Repair ran.
	Repaired bool `json:"repaired"`
	// Metadata, State and Entries are what ReadAll returned.
	Metadata string      `json:"metadata"`
	State    jsonState   `json:"state"`
	Entries  []jsonEntry `json:"entries"`
	// What the MemoryStorage restartNode builds answers: FirstIndex, LastIndex, and
	// Term(i) for i from FirstIndex-1 to LastIndex.
	FirstIndex string   `json:"firstIndex"`
	LastIndex  string   `json:"lastIndex"`
	Terms      []string `json:"terms"`
}

func boot(dataDir string) error {
	walDir := filepath.Join(dataDir, "member", "wal")
	snapDir := filepath.Join(dataDir, "member", "snap")

	walSnaps, err := wal.ValidSnapshotEntries(lg, walDir)
	if err != nil {
		return fmt.Errorf("ValidSnapshotEntries: %v", err)
	}
	res := bootResult{WalSnapshots: []walSnapJSON{}}
	for _, s := range walSnaps {
		res.WalSnapshots = append(res.WalSnapshots, walSnapJSON{
			Index: strconv.FormatUint(s.Index, 10), Term: strconv.FormatUint(s.Term, 10),
		})
	}
	snapshot, err := snap.New(lg, snapDir).LoadNewestAvailable(walSnaps)
	if err != nil && err != snap.ErrNoSnapshot {
		return fmt.Errorf("LoadNewestAvailable: %v", err)
	}

	// restartNode and readWAL
	var walsnap walpb.Snapshot
	if snapshot != nil {
		walsnap.Index, walsnap.Term = snapshot.Metadata.Index, snapshot.Metadata.Term
		m := snapshot.Metadata
		c := m.ConfState
		res.Snapshot = &snapJSON{
			Data: hex.EncodeToString(snapshot.Data), Index: strconv.FormatUint(m.Index, 10),
			Term: strconv.FormatUint(m.Term, 10), Voters: strs(c.Voters),
			Learners: strs(c.Learners), VotersOutgoing: strs(c.VotersOutgoing),
			LearnersNext: strs(c.LearnersNext), AutoLeave: c.AutoLeave,
		}
	}
	var (
		w    *wal.WAL
		md   []byte
		st   raftpb.HardState
		ents []raftpb.Entry
	)
	for {
		if w, err = wal.Open(lg, walDir, walsnap); err != nil {
			return fmt.Errorf("failed to open WAL: %v", err)
		}
		if md, st, ents, err = w.ReadAll(); err != nil {
			w.Close()
			// readWAL: only ErrUnexpectedEOF is repaired, and never twice
			if res.Repaired || err != io.ErrUnexpectedEOF {
				return fmt.Errorf("failed to read WAL, cannot be repaired: %v", err)
			}
			if !wal.Repair(lg, walDir) {
				return fmt.Errorf("failed to repair WAL: %v", err)
			}
			res.Repaired = true
			continue
		}
		break
	}
	defer w.Close()
	r := toResult(md, st, ents)
	res.Metadata, res.State, res.Entries = r.Metadata, r.State, r.Entries

	s := raft.NewMemoryStorage()
	if snapshot != nil {
		if err := s.ApplySnapshot(*snapshot); err != nil {
			return fmt.Errorf("ApplySnapshot: %v", err)
		}
	}
	if err := s.SetHardState(st); err != nil {
		return fmt.Errorf("SetHardState: %v", err)
	}
	if err := s.Append(ents); err != nil {
		return fmt.Errorf("Append: %v", err)
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	res.FirstIndex = strconv.FormatUint(first, 10)
	res.LastIndex = strconv.FormatUint(last, 10)
	res.Terms = []string{}
	for i := first - 1; i <= last; i++ {
		t, err := s.Term(i)
		if err != nil {
			return fmt.Errorf("Term(%d): %v", i, err)
		}
		res.Terms = append(res.Terms, strconv.FormatUint(t, 10))
	}
	// what raft reads back is what ReadAll gave
	if last >= first {
		got, err := s.Entries(first, last+1, math.MaxUint64)
		if err != nil {
			return fmt.Errorf("Entries: %v", err)
		}
		if len(got) != len(ents) {
			return fmt.Errorf("MemoryStorage holds %d entries, ReadAll gave %d", len(got), len(ents))
		}
	}

	out, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(os.Stdout, string(out))
	return err
}
