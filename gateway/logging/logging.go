// Package logging builds the zerolog loggers of the gateway: JSON lines on
// stdout with time (RFC 3339, milliseconds), level, component and msg, as
// ARCHITECTURE.md specifies, written through a batching writer so a busy
// gateway does not pay one write system call per request log line.
package logging

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// ParseLevel reads a --log-level value. It accepts zerolog's names and the
// self-hosted gateway's telemetry.logs.std.level names ("all", "warn").
func ParseLevel(s string) (zerolog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "all", "trace":
		return zerolog.TraceLevel, nil
	case "debug":
		return zerolog.DebugLevel, nil
	case "", "info":
		return zerolog.InfoLevel, nil
	case "warn", "warning":
		return zerolog.WarnLevel, nil
	case "error":
		return zerolog.ErrorLevel, nil
	case "fatal":
		return zerolog.FatalLevel, nil
	case "none", "disabled", "off":
		return zerolog.Disabled, nil
	}
	return zerolog.NoLevel, fmt.Errorf("log level %q: use debug, info, warn, error, fatal or none", s)
}

// New returns a JSON logger writing to w at level, with a component field.
func New(w io.Writer, level zerolog.Level, component string) zerolog.Logger {
	return zerolog.New(w).Level(level).With().
		Timestamp().
		Str("component", component).
		Logger()
}

// TimeFormat is the time layout of every log line. zerolog reads it from a
// package variable; the binaries set it once at start-up with
// zerolog.TimeFieldFormat = logging.TimeFormat.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// BatchWriter buffers complete lines (zerolog writes one line per Write)
// and writes them in batches, at most Interval apart. Lines are never
// split or interleaved. Call Close to flush at exit.
type BatchWriter struct {
	mu       sync.Mutex
	w        io.Writer
	buf      []byte
	max      int
	stop     chan struct{}
	done     chan struct{}
	closed   bool
	writeErr error
}

// NewBatchWriter starts a writer that flushes to w every interval or when
// maxBytes are buffered.
func NewBatchWriter(w io.Writer, interval time.Duration, maxBytes int) *BatchWriter {
	b := &BatchWriter{w: w, buf: make([]byte, 0, maxBytes), max: maxBytes, stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop(interval)
	return b
}

// Write buffers p, flushing first when it would not fit.
func (b *BatchWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.w.Write(p)
	}
	if len(b.buf)+len(p) > b.max {
		b.flushLocked()
		if len(p) > b.max {
			return b.w.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// Flush writes what is buffered.
func (b *BatchWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	return b.writeErr
}

func (b *BatchWriter) flushLocked() {
	if len(b.buf) == 0 {
		return
	}
	if _, err := b.w.Write(b.buf); err != nil {
		b.writeErr = err
	}
	b.buf = b.buf[:0]
}

func (b *BatchWriter) loop(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = b.Flush()
		case <-b.stop:
			return
		}
	}
}

// Close flushes and stops the background flusher; later writes go straight
// to the underlying writer.
func (b *BatchWriter) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	<-b.done
	return b.Flush()
}
