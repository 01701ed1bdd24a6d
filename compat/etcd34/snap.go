package main

// etcd 3.4's snapshotter (etcdserver/api/snap), for the .snap byte comparisons:
//
//	etcd34compat snapsave <dir> <snapshots.json>   saves each snapshot with SaveSnap
//	etcd34compat snapload <dir>                     prints Load()'s snapshot as JSON
//
// A snapshot in JSON: {"data": hex, "index": "N", "term": "N", "voters": ["N"...],
// "learners": [...], "votersOutgoing": [...], "learnersNext": [...], "autoLeave": bool}.

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"go.etcd.io/etcd/etcdserver/api/snap"
	"go.etcd.io/etcd/raft/raftpb"
)

type snapJSON struct {
	Data           string   `json:"data"`
	Index          string   `json:"index"`
	Term           string   `json:"term"`
	Voters         []string `json:"voters"`
	Learners       []string `json:"learners"`
	VotersOutgoing []string `json:"votersOutgoing"`
	LearnersNext   []string `json:"learnersNext"`
	AutoLeave      bool     `json:"autoLeave"`
}

func u64s(in []string) []uint64 {
	var out []uint64
	for _, s := range in {
		v, err := strconv.ParseUint(s, 10, 64)
		check(err)
		out = append(out, v)
	}
	return out
}

func strs(in []uint64) []string {
	out := []string{}
	for _, v := range in {
		out = append(out, strconv.FormatUint(v, 10))
	}
	return out
}

func snapSave(dir, file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var in []snapJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	s := snap.New(lg, dir)
	for _, j := range in {
		data, err := hex.DecodeString(j.Data)
		if err != nil {
			return err
		}
		index, _ := strconv.ParseUint(j.Index, 10, 64)
		term, _ := strconv.ParseUint(j.Term, 10, 64)
		// a JS caller always passes bytes: non-nil, even when empty
		if data == nil {
			data = []byte{}
		}
		sn := raftpb.Snapshot{Data: data, Metadata: raftpb.SnapshotMetadata{
			Index: index, Term: term,
			ConfState: raftpb.ConfState{
				Voters: u64s(j.Voters), Learners: u64s(j.Learners),
				VotersOutgoing: u64s(j.VotersOutgoing), LearnersNext: u64s(j.LearnersNext),
				AutoLeave: j.AutoLeave,
			},
		}}
		if err := s.SaveSnap(sn); err != nil {
			return err
		}
	}
	return nil
}

func snapLoad(dir string) error {
	sn, err := snap.New(lg, dir).Load()
	if err != nil {
		return err
	}
	m := sn.Metadata
	c := m.ConfState
	out, _ := json.Marshal(snapJSON{
		Data: hex.EncodeToString(sn.Data), Index: strconv.FormatUint(m.Index, 10),
		Term: strconv.FormatUint(m.Term, 10), Voters: strs(c.Voters), Learners: strs(c.Learners),
		VotersOutgoing: strs(c.VotersOutgoing), LearnersNext: strs(c.LearnersNext),
		AutoLeave: c.AutoLeave,
	})
	fmt.Println(string(out))
	return nil
}
