package main

// The bench subcommand: etcd 3.4's wal package under the workloads of bench/compare.ts.
//
//	etcd34compat bench <dir> --workload write      --entry-size N --batch B --entries N [--warmup N] [--max-seconds S]
//	etcd34compat bench <dir> --workload concurrent --entry-size N --writers W --entries N [--warmup N] [--max-seconds S]
//	etcd34compat bench <dir> --workload fill       --entry-size N --entries N [--batch B]
//	etcd34compat bench <dir> --workload replay
//
// write creates a WAL in <dir> (wal.SegmentSizeBytes left at etcd's 64 MB) and saves
// --entries entries of --entry-size bytes, --batch per Save, each Save carrying the hard
// state {term 1, vote 1, commit <last index>} (so every Save syncs, as raft's MustSync
// says). concurrent runs --writers goroutines that each call Save with one entry until
// --entries have been saved in all (etcd's WAL serializes them with its mutex: one fdatasync
// per Save). Both first save --warmup entries the same way, untimed. fill writes a WAL to
// replay (batches of --batch, default 1000). replay times OpenForRead + ReadAll.
//
// The timing is done here; the result is one JSON line:
//
//	{"workload":"write","entries":N,"bytes":N,"seconds":S,"maxRssBytes":N,"capped":false,"cpuSeconds":S}
//
// bytes counts entry payload bytes; maxRssBytes is this process's peak RSS (VmHWM, else
// ru_maxrss; one process per measurement, so it is the peak of that workload). capped is
// true when --max-seconds ran out before --entries were saved; cpuSeconds is the user+system
// CPU time of the process (all threads, GC included) in the timed part. replay adds
// rssBeforeBytes, the resident set (VmRSS) just before OpenForRead.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/raft/raftpb"
	"go.etcd.io/etcd/wal"
	"go.etcd.io/etcd/wal/walpb"
)

type benchResult struct {
	Workload    string  `json:"workload"`
	Entries     int64   `json:"entries"`
	Bytes       int64   `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	MaxRssBytes int64   `json:"maxRssBytes"`
	Capped      bool    `json:"capped"`
	// CPUSeconds is user+system CPU time of this process (all threads) in the timed part.
	CPUSeconds float64 `json:"cpuSeconds"`
	// RssBeforeBytes is the resident set (VmRSS) just before the timed part (replay only).
	RssBeforeBytes int64 `json:"rssBeforeBytes,omitempty"`
}

// cpuTime is this process's user+system CPU time so far, in seconds.
func cpuTime() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

type benchParams struct {
	workload   string
	entrySize  int
	batch      int
	entries    int64
	writers    int
	warmup     int64
	maxSeconds float64
}

func benchMain(dir string, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	var p benchParams
	fs.StringVar(&p.workload, "workload", "", "write | concurrent | fill | replay")
	fs.IntVar(&p.entrySize, "entry-size", 100, "entry data bytes")
	fs.IntVar(&p.batch, "batch", 1, "entries per Save")
	fs.Int64Var(&p.entries, "entries", 0, "entries to save (timed)")
	fs.IntVar(&p.writers, "writers", 1, "concurrent writers (concurrent)")
	fs.Int64Var(&p.warmup, "warmup", 0, "entries to save before timing")
	fs.Float64Var(&p.maxSeconds, "max-seconds", 0, "stop the timed part after this long (0: no limit)")
	fs.Parse(args)
	if fs.NArg() != 0 {
		usage()
	}
	var (
		res benchResult
		err error
	)
	switch p.workload {
	case "write":
		res, err = benchWrite(dir, p)
	case "concurrent":
		res, err = benchConcurrent(dir, p)
	case "fill":
		if p.batch <= 1 {
			p.batch = 1000
		}
		p.warmup, p.maxSeconds = 0, 0
		res, err = benchWrite(dir, p)
	case "replay":
		res, err = benchReplay(dir)
	default:
		return fmt.Errorf("bench: unknown --workload %q", p.workload)
	}
	if err != nil {
		return err
	}
	res.Workload = p.workload
	res.MaxRssBytes = maxRSS()
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	return nil
}

// procStatus is a "Vm...: N kB" field of /proc/self/status in bytes (0 without one).
func procStatus(field string) int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, field+":") {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimPrefix(line, field+":"), "%d", &kb); err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// maxRSS is this process's peak resident set in bytes: VmHWM of /proc/self/status, else
// getrusage's ru_maxrss. VmHWM comes first because Linux carries ru_maxrss over execve: a
// process started by a 50 MB Deno or Bun reports at least their 50 MB there.
func maxRSS() int64 {
	if hwm := procStatus("VmHWM"); hwm > 0 {
		return hwm
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024
}

func benchData(size int) []byte {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
	}
	return data
}

// saveBatch saves entries first..first+n-1 with the hard state that commits them.
func saveBatch(w *wal.WAL, data []byte, first uint64, n int) error {
	ents := make([]raftpb.Entry, n)
	for i := range ents {
		ents[i] = raftpb.Entry{Term: 1, Index: first + uint64(i), Type: raftpb.EntryNormal, Data: data}
	}
	st := raftpb.HardState{Term: 1, Vote: 1, Commit: first + uint64(n) - 1}
	return w.Save(st, ents)
}

func benchWrite(dir string, p benchParams) (benchResult, error) {
	if p.entries <= 0 || p.batch <= 0 {
		return benchResult{}, errors.New("bench write: --entries and --batch must be > 0")
	}
	w, err := wal.Create(lg, dir, []byte("bench"))
	if err != nil {
		return benchResult{}, err
	}
	data := benchData(p.entrySize)
	next := uint64(1)
	for done := int64(0); done < p.warmup; {
		n := p.batch
		if rest := p.warmup - done; rest < int64(n) {
			n = int(rest)
		}
		if err := saveBatch(w, data, next, n); err != nil {
			return benchResult{}, err
		}
		next += uint64(n)
		done += int64(n)
	}
	var deadline time.Time
	if p.maxSeconds > 0 {
		deadline = time.Now().Add(time.Duration(p.maxSeconds * float64(time.Second)))
	}
	cpu0, start := cpuTime(), time.Now()
	done := int64(0)
	capped := false
	for done < p.entries {
		n := p.batch
		if rest := p.entries - done; rest < int64(n) {
			n = int(rest)
		}
		if err := saveBatch(w, data, next, n); err != nil {
			return benchResult{}, err
		}
		next += uint64(n)
		done += int64(n)
		if !deadline.IsZero() && done < p.entries && time.Now().After(deadline) {
			capped = true
			break
		}
	}
	secs, cpu := time.Since(start).Seconds(), cpuTime()-cpu0
	if err := w.Close(); err != nil {
		return benchResult{}, err
	}
	return benchResult{Entries: done, Bytes: done * int64(p.entrySize), Seconds: secs, Capped: capped, CPUSeconds: cpu}, nil
}

func benchConcurrent(dir string, p benchParams) (benchResult, error) {
	if p.entries <= 0 || p.writers <= 0 {
		return benchResult{}, errors.New("bench concurrent: --entries and --writers must be > 0")
	}
	w, err := wal.Create(lg, dir, []byte("bench"))
	if err != nil {
		return benchResult{}, err
	}
	data := benchData(p.entrySize)
	var index uint64 // last index handed out
	// run lets the writers save until `limit` entries were handed out or the deadline passed.
	run := func(limit int64, deadline time.Time) (int64, bool, error) {
		var (
			wg       sync.WaitGroup
			saved    int64
			capped   int32
			firstErr error
			errOnce  sync.Once
		)
		base := atomic.LoadUint64(&index)
		for k := 0; k < p.writers; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := atomic.AddUint64(&index, 1)
					if int64(i-base) > limit {
						return
					}
					if err := saveBatch(w, data, i, 1); err != nil {
						errOnce.Do(func() { firstErr = err })
						return
					}
					atomic.AddInt64(&saved, 1)
					if !deadline.IsZero() && time.Now().After(deadline) {
						atomic.StoreInt32(&capped, 1)
						return
					}
				}
			}()
		}
		wg.Wait()
		// hand out indexes from just after the last one used (writers overshoot by one each)
		atomic.StoreUint64(&index, base+uint64(saved))
		return saved, capped == 1 && saved < limit, firstErr
	}
	if p.warmup > 0 {
		if _, _, err := run(p.warmup, time.Time{}); err != nil {
			return benchResult{}, err
		}
	}
	var deadline time.Time
	if p.maxSeconds > 0 {
		deadline = time.Now().Add(time.Duration(p.maxSeconds * float64(time.Second)))
	}
	cpu0, start := cpuTime(), time.Now()
	saved, capped, err := run(p.entries, deadline)
	secs, cpu := time.Since(start).Seconds(), cpuTime()-cpu0
	if err != nil {
		return benchResult{}, err
	}
	if err := w.Close(); err != nil {
		return benchResult{}, err
	}
	return benchResult{Entries: saved, Bytes: saved * int64(p.entrySize), Seconds: secs, Capped: capped, CPUSeconds: cpu}, nil
}

func benchReplay(dir string) (benchResult, error) {
	before := procStatus("VmRSS")
	cpu0, start := cpuTime(), time.Now()
	w, err := wal.OpenForRead(lg, dir, walpb.Snapshot{})
	if err != nil {
		return benchResult{}, err
	}
	_, _, ents, err := w.ReadAll()
	secs, cpu := time.Since(start).Seconds(), cpuTime()-cpu0
	if err != nil {
		return benchResult{}, err
	}
	var bytes int64
	for i := range ents {
		bytes += int64(len(ents[i].Data))
	}
	n := int64(len(ents))
	w.Close()
	return benchResult{Entries: n, Bytes: bytes, Seconds: secs, CPUSeconds: cpu, RssBeforeBytes: before}, nil
}
