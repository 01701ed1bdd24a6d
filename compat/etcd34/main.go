// Command etcd34compat drives Debian's etcd 3.4 wal package so that WAL
// directories written/read by it can be compared with ours.
//
//	etcd34compat write  <dir> <script.json>
//	etcd34compat read   <dir> [--snap-index N --snap-term T]
//	etcd34compat verify <dir> [--snap-index N --snap-term T]
//	etcd34compat repair <dir>
//	etcd34compat readwrite <dir> [--snap-index N --snap-term T]
//	etcd34compat classify <list-file> [--segment-size N]
//	etcd34compat snapsave <dir> <snapshots.json>, snapload <dir> (see snap.go)
//	etcd34compat boot <datadir>   etcd's server boot on a data directory (see boot.go)
//	etcd34compat bench <dir> --workload write|concurrent|fill|replay [flags] (see bench.go)
//
// readwrite opens the WAL for writing (wal.Open) and replays it (ReadAll), then prints one
// JSON line: {"class":..., "error":..., "result":{...}} (see classOf for the classes).
// classify runs, for every directory named in <list-file> (one per line): read mode
// (OpenForRead+ReadAll), Verify, write mode (Open+ReadAll+Close), Repair, then write mode
// again; it prints one JSON line per directory. Panics (etcd's mustUnmarshal*) are caught
// and reported as the class "panic".
//
// All uint64 values in JSON are decimal strings; byte fields are hex.
package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.etcd.io/etcd/raft/raftpb"
	"go.etcd.io/etcd/wal"
	"go.etcd.io/etcd/wal/walpb"
	"go.uber.org/zap"
)

var lg = zap.NewNop()

// jsonState / jsonEntry are the JSON forms of raftpb.HardState / raftpb.Entry.
type jsonState struct {
	Term   uint64 `json:"term,string"`
	Vote   uint64 `json:"vote,string"`
	Commit uint64 `json:"commit,string"`
}

type jsonEntry struct {
	Term  uint64 `json:"term,string"`
	Index uint64 `json:"index,string"`
	Type  int32  `json:"type"`
	Data  string `json:"data"` // hex; "" means nil Data
}

type op struct {
	Op        string      `json:"op"`
	State     *jsonState  `json:"state,omitempty"`
	Entries   []jsonEntry `json:"entries,omitempty"`
	Index     uint64      `json:"index,string,omitempty"`
	Term      uint64      `json:"term,string,omitempty"`
	SnapIndex uint64      `json:"snapIndex,string,omitempty"`
	SnapTerm  uint64      `json:"snapTerm,string,omitempty"`
}

type script struct {
	SegmentSizeBytes int64  `json:"segmentSizeBytes"` // 0 = keep etcd default (64MB)
	Metadata         string `json:"metadata"`         // hex
	Ops              []op   `json:"ops"`
}

type readResult struct {
	Metadata string      `json:"metadata"`
	State    jsonState   `json:"state"`
	Entries  []jsonEntry `json:"entries"`
}

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	cmd, dir, rest := os.Args[1], os.Args[2], os.Args[3:]
	switch cmd {
	case "write":
		if len(rest) != 1 {
			usage()
		}
		check(write(dir, rest[0]))
	case "read":
		os.Exit(read(dir, parseSnap(rest)))
	case "verify":
		if err := wal.Verify(lg, dir, parseSnap(rest)); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("ok")
	case "repair":
		fmt.Println(wal.Repair(lg, dir))
	case "readwrite":
		out, _ := json.Marshal(openWrite(dir, parseSnap(rest)))
		fmt.Println(string(out))
	case "classify":
		check(classify(dir, rest))
	case "bench":
		check(benchMain(dir, rest)) // see bench.go
	case "snapsave":
		if len(rest) != 1 {
			usage()
		}
		check(snapSave(dir, rest[0])) // see snap.go
	case "snapload":
		check(snapLoad(dir))
	case "boot":
		check(boot(dir)) // see boot.go
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: etcd34compat write <dir> <script.json> | read|verify|readwrite <dir> [--snap-index N --snap-term T] | repair <dir> | classify <list-file> [--segment-size N] | boot <datadir>")
	os.Exit(2)
}

func check(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}

// parseSnap parses the optional --snap-index/--snap-term flags.
func parseSnap(args []string) walpb.Snapshot {
	fs := flag.NewFlagSet("snap", flag.ExitOnError)
	idx := fs.Uint64("snap-index", 0, "snapshot index")
	term := fs.Uint64("snap-term", 0, "snapshot term")
	fs.Parse(args)
	if fs.NArg() != 0 {
		usage()
	}
	return walpb.Snapshot{Index: *idx, Term: *term}
}

func write(dir, scriptPath string) error {
	f, err := os.Open(scriptPath)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var s script
	if err := dec.Decode(&s); err != nil {
		return fmt.Errorf("parse script: %v", err)
	}
	md, err := hex.DecodeString(s.Metadata)
	if err != nil {
		return fmt.Errorf("metadata: %v", err)
	}
	if s.SegmentSizeBytes > 0 {
		// Must be set before Create: the file pipeline captures it.
		wal.SegmentSizeBytes = s.SegmentSizeBytes
	}

	w, err := wal.Create(lg, dir, md)
	if err != nil {
		return fmt.Errorf("create: %v", err)
	}
	for i, o := range s.Ops {
		if w == nil && o.Op != "reopen" {
			return fmt.Errorf("op %d (%s): wal is closed", i, o.Op)
		}
		switch o.Op {
		case "save":
			var st raftpb.HardState
			if o.State != nil {
				st = raftpb.HardState{Term: o.State.Term, Vote: o.State.Vote, Commit: o.State.Commit}
			}
			ents := make([]raftpb.Entry, len(o.Entries))
			for j, e := range o.Entries {
				if ents[j], err = toEntry(e); err != nil {
					return fmt.Errorf("op %d entry %d: %v", i, j, err)
				}
			}
			err = w.Save(st, ents)
		case "snapshot":
			err = w.SaveSnapshot(walpb.Snapshot{Index: o.Index, Term: o.Term})
		case "releaseLockTo":
			err = w.ReleaseLockTo(o.Index)
		case "close":
			err, w = w.Close(), nil
		case "reopen":
			// The WAL holds flocks on its segments, so close it first if open.
			if w != nil {
				if err = w.Close(); err != nil {
					break
				}
			}
			if w, err = wal.Open(lg, dir, walpb.Snapshot{Index: o.SnapIndex, Term: o.SnapTerm}); err == nil {
				_, _, _, err = w.ReadAll()
			}
		default:
			err = errors.New("unknown op")
		}
		if err != nil {
			return fmt.Errorf("op %d (%s): %v", i, o.Op, err)
		}
	}
	if w != nil {
		return w.Close()
	}
	return nil
}

func toEntry(e jsonEntry) (raftpb.Entry, error) {
	ent := raftpb.Entry{Term: e.Term, Index: e.Index, Type: raftpb.EntryType(e.Type)}
	if e.Data != "" {
		d, err := hex.DecodeString(e.Data)
		if err != nil {
			return ent, err
		}
		ent.Data = d
	}
	return ent, nil
}

// read prints the ReadAll result as one JSON line and returns the exit code.
func read(dir string, snap walpb.Snapshot) int {
	w, err := wal.OpenForRead(lg, dir, snap)
	check(err)
	defer w.Close()
	md, st, ents, err := w.ReadAll()
	if err != nil && err != wal.ErrSnapshotNotFound {
		check(err)
	}
	res := readResult{
		Metadata: hex.EncodeToString(md),
		State:    jsonState{Term: st.Term, Vote: st.Vote, Commit: st.Commit},
		Entries:  make([]jsonEntry, len(ents)),
	}
	for i, e := range ents {
		res.Entries[i] = jsonEntry{Term: e.Term, Index: e.Index, Type: int32(e.Type), Data: hex.EncodeToString(e.Data)}
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if err == wal.ErrSnapshotNotFound {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 3
	}
	return 0
}

// outcome is what one replay ended in: a class, the error text, and the data when it succeeded.
type outcome struct {
	Class  string      `json:"class"`
	Error  string      `json:"error,omitempty"`
	Result *readResult `json:"result,omitempty"`
}

// classOf names an error: ok, torn (io.ErrUnexpectedEOF), crc (wal or walpb
// ErrCRCMismatch), maxsize (ErrMaxWALEntrySizeLimitExceeded), snapnotfound,
// snapmismatch, metadata, slice, filenotfound, type (unexpected record type),
// decode (a protobuf error) or other.
func classOf(err error) string {
	switch {
	case err == nil:
		return "ok"
	case err == io.ErrUnexpectedEOF:
		return "torn"
	case err == wal.ErrCRCMismatch || err == walpb.ErrCRCMismatch:
		return "crc"
	case err == wal.ErrMaxWALEntrySizeLimitExceeded:
		return "maxsize"
	case err == wal.ErrSnapshotNotFound:
		return "snapnotfound"
	case err == wal.ErrSnapshotMismatch:
		return "snapmismatch"
	case err == wal.ErrMetadataConflict:
		return "metadata"
	case err == wal.ErrSliceOutOfRange:
		return "slice"
	case err == wal.ErrFileNotFound:
		return "filenotfound"
	case strings.HasPrefix(err.Error(), "unexpected block type"):
		return "type"
	case strings.HasPrefix(err.Error(), "proto:") || err == walpb.ErrIntOverflowRecord ||
		err == walpb.ErrInvalidLengthRecord:
		return "decode"
	}
	return "other"
}

func toResult(md []byte, st raftpb.HardState, ents []raftpb.Entry) *readResult {
	res := &readResult{
		Metadata: hex.EncodeToString(md),
		State:    jsonState{Term: st.Term, Vote: st.Vote, Commit: st.Commit},
		Entries:  make([]jsonEntry, len(ents)),
	}
	for i, e := range ents {
		res.Entries[i] = jsonEntry{Term: e.Term, Index: e.Index, Type: int32(e.Type), Data: hex.EncodeToString(e.Data)}
	}
	return res
}

// guarded runs f, turning a panic into the outcome class "panic".
func guarded(f func() outcome) (o outcome) {
	defer func() {
		if r := recover(); r != nil {
			o = outcome{Class: "panic", Error: fmt.Sprint(r)}
		}
	}()
	return f()
}

// replayOnce opens the WAL (for writing or reading), replays it and closes it.
func replayOnce(dir string, snap walpb.Snapshot, write bool) outcome {
	return guarded(func() outcome {
		open := wal.OpenForRead
		if write {
			open = wal.Open
		}
		w, err := open(lg, dir, snap)
		if err != nil {
			return outcome{Class: classOf(err), Error: err.Error()}
		}
		// Close even after a panic: a leaked flock would block Repair.
		defer func() { _ = guarded(func() outcome { w.Close(); return outcome{} }) }()
		md, st, ents, err := w.ReadAll()
		o := outcome{Class: classOf(err)}
		if err != nil {
			o.Error = err.Error()
		}
		if err == nil || err == wal.ErrSnapshotNotFound {
			o.Result = toResult(md, st, ents)
		}
		return o
	})
}

func openWrite(dir string, snap walpb.Snapshot) outcome { return replayOnce(dir, snap, true) }

type classification struct {
	Dir    string  `json:"dir"`
	Read   outcome `json:"read"`
	Verify outcome `json:"verify"`
	Write  outcome `json:"write"`
	// Repair is "repaired" (a .broken copy was made), "clean" (true, nothing to cut),
	// "refused" (false) or "panic".
	Repair string  `json:"repair"`
	After  outcome `json:"after"`
}

func classify(listFile string, args []string) error {
	fs := flag.NewFlagSet("classify", flag.ExitOnError)
	seg := fs.Int64("segment-size", 0, "SegmentSizeBytes for write-mode opens (0: etcd's default)")
	fs.Parse(args)
	if fs.NArg() != 0 {
		usage()
	}
	if *seg > 0 {
		wal.SegmentSizeBytes = *seg
	}
	raw, err := os.ReadFile(listFile)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	snap := walpb.Snapshot{}
	for _, dir := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if dir == "" {
			continue
		}
		c := classification{Dir: dir}
		c.Read = replayOnce(dir, snap, false)
		c.Verify = guarded(func() outcome {
			err := wal.Verify(lg, dir, snap)
			o := outcome{Class: classOf(err)}
			if err != nil {
				o.Error = err.Error()
			}
			return o
		})
		c.Write = replayOnce(dir, snap, true)
		c.Repair = guarded(func() outcome {
			before := brokenCopies(dir)
			if !wal.Repair(lg, dir) {
				return outcome{Class: "refused"}
			}
			if brokenCopies(dir) > before {
				return outcome{Class: "repaired"}
			}
			return outcome{Class: "clean"}
		}).Class
		c.After = replayOnce(dir, snap, true)
		if err := enc.Encode(c); err != nil {
			return err
		}
	}
	return nil
}

func brokenCopies(dir string) int {
	m, _ := filepath.Glob(filepath.Join(dir, "*.broken"))
	return len(m)
}
