package spool

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSpoolOrderPersistenceAndRemoval(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i, body := range []string{`[1]`, `[2,3]`, `[4]`} {
		if _, err := s.Append([]string{"logs", "metrics", "logs"}[i], len(body)/2, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	// A new process sees the same batches in the same order.
	s2, err := Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Len() != 3 || s2.Bytes() != 3+5+3 {
		t.Fatalf("reopened: len %d bytes %d", s2.Len(), s2.Bytes())
	}
	var got []string
	for {
		b, ok := s2.Oldest()
		if !ok {
			break
		}
		body, err := s2.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b.Kind+string(body))
		if err := s2.Remove(b); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"logs[1]", "metrics[2,3]", "logs[4]"}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("order: got %q, want %q", got, want)
	}
	if s2.Bytes() != 0 {
		t.Fatalf("bytes after removal: %d", s2.Bytes())
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 0 {
		t.Fatalf("files left: %v", left)
	}
	// Sequence numbers keep growing after a restart, so order survives.
	if _, err := s2.Append("logs", 1, []byte(`[5]`)); err != nil {
		t.Fatal(err)
	}
	b, _ := s2.Oldest()
	if b.Seq <= 3 {
		t.Fatalf("sequence restarted: %d", b.Seq)
	}
}

func TestSpoolEvictsOldestAndCountsLoss(t *testing.T) {
	t.Parallel()
	s, err := Open(t.TempDir(), 100)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), 40)
	var lost Evicted
	for i := range 5 {
		ev, err := s.Append("logs", 10+i, body)
		if err != nil {
			t.Fatal(err)
		}
		lost.Batches += ev.Batches
		lost.Rows += ev.Rows
	}
	if s.Bytes() > 100 {
		t.Fatalf("spool over its bound: %d", s.Bytes())
	}
	// 5 batches of 40 bytes in 100: the first three went, oldest first.
	if lost.Batches != 3 || lost.Rows != 10+11+12 {
		t.Fatalf("lost %+v, want 3 batches, 33 rows", lost)
	}
	b, _ := s.Oldest()
	if b.Rows != 13 {
		t.Fatalf("oldest kept batch has %d rows, want 13", b.Rows)
	}
	if _, err := s.Append("logs", 1, bytes.Repeat([]byte("y"), 101)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized batch: %v", err)
	}
}

func TestSpoolKeepsInflightBatch(t *testing.T) {
	t.Parallel()
	s, _ := Open(t.TempDir(), 100)
	body := bytes.Repeat([]byte("x"), 40)
	s.Append("logs", 1, body)
	s.Append("logs", 2, body)
	up, _ := s.Oldest() // being uploaded
	ev, err := s.Append("logs", 3, body)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Rows != 2 {
		t.Fatalf("evicted %+v, want the batch after the in-flight one", ev)
	}
	if _, err := s.Read(up); err != nil {
		t.Fatalf("in-flight batch was evicted: %v", err)
	}
}

func TestSpoolDropsInterruptedWrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "00000000000000000001.logs.1.json.tmp"), []byte("[1"), 0o600)
	os.WriteFile(filepath.Join(dir, "README"), []byte("not a batch"), 0o600)
	s, err := Open(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 0 {
		t.Fatalf("picked up %d batches", s.Len())
	}
	if _, err := os.Stat(filepath.Join(dir, "00000000000000000001.logs.1.json.tmp")); !os.IsNotExist(err) {
		t.Fatalf("temp file left: %v", err)
	}
}
