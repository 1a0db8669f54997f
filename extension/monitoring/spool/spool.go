// Package spool is a bounded, durable queue of upload batches on disk.
//
// Each batch is one file written atomically (temp file, fsync, rename), so a
// crash leaves either the whole batch or nothing. Batches are uploaded oldest
// first and removed after the destination accepted them. When a new batch
// would push the spool over its size, the oldest batches are deleted and
// their rows reported as lost: an outage longer than the spool can hold
// loses the oldest data, never the newest.
package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ErrTooLarge is returned by Append for a batch larger than the spool.
var ErrTooLarge = errors.New("batch larger than the spool")

// Batch describes one stored batch.
type Batch struct {
	Seq  uint64 // order of arrival, unique within the spool
	Kind string // what the rows are (e.g. "logs", "metrics"); [a-z]+
	Rows int    // rows in the batch, reported when the batch is lost
	Size int64  // bytes on disk

	name string
}

// Evicted reports batches deleted to make room.
type Evicted struct {
	Batches int
	Rows    int
	Bytes   int64
}

// Spool is safe for concurrent use: typically one goroutine appends and one
// uploads.
type Spool struct {
	dir string
	max int64

	mu       sync.Mutex
	batches  []Batch // oldest first
	bytes    int64
	next     uint64
	inflight uint64 // Seq of the batch being uploaded (0: none); not evicted
}

// Open opens (creating it if needed) the spool in dir, bounded to maxBytes,
// and picks up the batches a previous process left behind.
func Open(dir string, maxBytes int64) (*Spool, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("spool %s: size must be positive, got %d", dir, maxBytes)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{dir: dir, max: maxBytes, next: 1}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			// A write interrupted by a crash: the batch was never appended.
			_ = os.Remove(filepath.Join(dir, name))
			continue
		}
		b, ok := parseName(name)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		b.Size = info.Size()
		s.batches = append(s.batches, b)
		s.bytes += b.Size
		s.next = max(s.next, b.Seq+1)
	}
	slices.SortFunc(s.batches, func(a, b Batch) int { return cmpSeq(a.Seq, b.Seq) })
	return s, nil
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// name: <seq, 20 digits>.<kind>.<rows>.json
func parseName(name string) (Batch, bool) {
	parts := strings.Split(name, ".")
	if len(parts) != 4 || parts[3] != "json" || !validKind(parts[1]) {
		return Batch{}, false
	}
	seq, err1 := strconv.ParseUint(parts[0], 10, 64)
	rows, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || seq == 0 || rows < 0 {
		return Batch{}, false
	}
	return Batch{Seq: seq, Kind: parts[1], Rows: rows, name: name}, true
}

func validKind(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// Append stores a batch durably, first deleting the oldest batches if the
// spool would otherwise exceed its size.
func (s *Spool) Append(kind string, rows int, body []byte) (Evicted, error) {
	var ev Evicted
	if !validKind(kind) {
		return ev, fmt.Errorf("spool: invalid kind %q", kind)
	}
	size := int64(len(body))
	if size > s.max {
		return ev, fmt.Errorf("spool: %d bytes: %w", size, ErrTooLarge)
	}
	s.mu.Lock()
	seq := s.next
	s.next++
	s.mu.Unlock()

	name := fmt.Sprintf("%020d.%s.%d.json", seq, kind, rows)
	tmp := filepath.Join(s.dir, name+".tmp")
	if err := writeSync(tmp, body); err != nil {
		_ = os.Remove(tmp)
		return ev, fmt.Errorf("spool: %w", err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for s.bytes+size > s.max {
		i := 0
		if len(s.batches) > 0 && s.batches[0].Seq == s.inflight {
			i = 1
		}
		if i >= len(s.batches) {
			break // only the batch being uploaded is left; it goes soon
		}
		old := s.batches[i]
		if err := os.Remove(filepath.Join(s.dir, old.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			_ = os.Remove(tmp)
			return ev, fmt.Errorf("spool: evict: %w", err)
		}
		s.batches = slices.Delete(s.batches, i, i+1)
		s.bytes -= old.Size
		ev.Batches++
		ev.Rows += old.Rows
		ev.Bytes += old.Size
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		_ = os.Remove(tmp)
		return ev, fmt.Errorf("spool: %w", err)
	}
	s.batches = append(s.batches, Batch{Seq: seq, Kind: kind, Rows: rows, Size: size, name: name})
	s.bytes += size
	return ev, nil
}

func writeSync(path string, body []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Oldest returns the oldest batch and marks it in flight: Append does not
// evict it until Remove or Release.
func (s *Spool) Oldest() (Batch, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.batches) == 0 {
		return Batch{}, false
	}
	s.inflight = s.batches[0].Seq
	return s.batches[0], true
}

// Read returns the body of b.
func (s *Spool) Read(b Batch) ([]byte, error) {
	body, err := os.ReadFile(filepath.Join(s.dir, b.name))
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return body, nil
}

// Remove deletes b (after the destination accepted it, or rejected it for
// good).
func (s *Spool) Remove(b Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight == b.Seq {
		s.inflight = 0
	}
	i := slices.IndexFunc(s.batches, func(x Batch) bool { return x.Seq == b.Seq })
	if i < 0 {
		return nil
	}
	if err := os.Remove(filepath.Join(s.dir, b.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	s.batches = slices.Delete(s.batches, i, i+1)
	s.bytes -= b.Size
	return nil
}

// Release clears the in-flight mark of b without removing it (the upload
// failed and will be tried again).
func (s *Spool) Release(b Batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight == b.Seq {
		s.inflight = 0
	}
}

// Bytes is the size of the stored batches.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Len is the number of stored batches.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.batches)
}

// Max is the size bound.
func (s *Spool) Max() int64 { return s.max }
