package configsync

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
)

// RejectedError reports a snapshot that failed validation; the previous
// snapshot file was left in place.
type RejectedError struct {
	Issues []config.Issue
}

func (e *RejectedError) Error() string {
	v := &config.ValidationError{Source: "rejected snapshot", Issues: e.Issues}
	return v.Error()
}

// Publisher validates snapshots with the gateway's loader and writes them
// atomically to <Dir>/snapshot.json, which the gateway watches.
type Publisher struct {
	dir string

	mu   sync.Mutex
	last []byte // bytes of the file as last written or loaded
}

// NewPublisher publishes into dir (created if missing).
func NewPublisher(dir string) *Publisher { return &Publisher{dir: dir} }

// Path is the snapshot file.
func (p *Publisher) Path() string { return filepath.Join(p.dir, config.SnapshotFile) }

// LoadExisting reads and validates a snapshot already in the folder (the
// backup of a previous run). It returns (nil, nil) when there is none; an
// invalid file is reported but left alone.
func (p *Publisher) LoadExisting() (*config.Snapshot, error) {
	data, err := os.ReadFile(p.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s, err := config.Parse(data)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.last = data
	p.mu.Unlock()
	return s, nil
}

// Publish validates data with config.Parse and, if valid, replaces the
// snapshot file atomically: a temp file in the same folder is written,
// fsynced, renamed over snapshot.json, and the folder is fsynced. An
// invalid snapshot returns a *RejectedError and the previous file stays.
// It reports written=false when data equals the file already in place.
func (p *Publisher) Publish(data []byte) (s *config.Snapshot, written bool, err error) {
	s, err = config.Parse(data)
	if err != nil {
		var ve *config.ValidationError
		if errors.As(err, &ve) {
			return nil, false, &RejectedError{Issues: ve.Issues}
		}
		return nil, false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last != nil && bytes.Equal(p.last, data) {
		return s, false, nil
	}
	if err := writeAtomic(p.dir, config.SnapshotFile, data); err != nil {
		return nil, false, err
	}
	p.last = bytes.Clone(data)
	return s, true, nil
}

func writeAtomic(dir, name string, data []byte) (err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("publish: write: %w", err)
	}
	// Readable by the gateway container (same pod, group 1001 on the volume).
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("publish: fsync: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("publish: close: %w", err)
	}
	if err = os.Rename(tmpName, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("publish: rename: %w", err)
	}
	if d, derr := os.Open(dir); derr == nil {
		// Best effort: some filesystems refuse fsync on a directory.
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
