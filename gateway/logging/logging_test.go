package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

type recorder struct {
	mu     sync.Mutex
	writes [][]byte
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (r *recorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(bytes.Join(r.writes, nil))
}

func TestBatchWriterKeepsLinesWhole(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	w := NewBatchWriter(rec, time.Hour, 1024)
	log := zerolog.New(w)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				log.Info().Int("g", g).Int("i", i).Str("pad", strings.Repeat("p", i%50)).Msg("line")
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(rec.all(), "\n"), "\n")
	if len(lines) != 1600 {
		t.Fatalf("%d lines, want 1600", len(lines))
	}
	for _, l := range lines {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line split or interleaved: %q", l)
		}
	}
	rec.mu.Lock()
	n := len(rec.writes)
	rec.mu.Unlock()
	if n >= 1600 {
		t.Errorf("%d writes for 1600 lines: not batched", n)
	}
}

func TestBatchWriterFlushesOnInterval(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	w := NewBatchWriter(rec, 10*time.Millisecond, 1<<20)
	defer w.Close()
	_, _ = w.Write([]byte("one\n"))
	deadline := time.Now().Add(2 * time.Second)
	for rec.all() != "one\n" {
		if time.Now().After(deadline) {
			t.Fatal("buffered line never flushed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBatchWriterOversizedLine(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	w := NewBatchWriter(rec, time.Hour, 16)
	_, _ = w.Write([]byte("short\n"))
	big := strings.Repeat("x", 100) + "\n"
	_, _ = w.Write([]byte(big))
	if got := rec.all(); got != "short\n"+big {
		t.Errorf("order or content lost: %q", got)
	}
	_ = w.Close()
	_, _ = w.Write([]byte("after close\n"))
	if !strings.HasSuffix(rec.all(), "after close\n") {
		t.Error("write after Close lost")
	}
}

func TestParseLevel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]zerolog.Level{
		"": zerolog.InfoLevel, "info": zerolog.InfoLevel, "all": zerolog.TraceLevel, "debug": zerolog.DebugLevel,
		"WARN": zerolog.WarnLevel, "warning": zerolog.WarnLevel, "error": zerolog.ErrorLevel, "fatal": zerolog.FatalLevel, "none": zerolog.Disabled,
	} {
		got, err := ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseLevel("loud"); err == nil || !strings.Contains(err.Error(), `"loud"`) {
		t.Errorf("bad level error: %v", err)
	}
}
