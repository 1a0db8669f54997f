package configsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
)

// LocalPath returns the path a file:// configuration URI names, and
// whether uri is one. file:///apim/source and file:/apim/source both name
// /apim/source; a host other than localhost is refused.
func LocalPath(uri string) (path string, ok bool, err error) {
	u, err := url.Parse(strings.TrimSpace(uri))
	if err != nil || !strings.EqualFold(u.Scheme, "file") {
		return "", false, nil
	}
	if u.Host != "" && u.Host != "localhost" {
		return "", true, fmt.Errorf("gateway.configuration.uri: a file URI names a local path (file:///path), not host %q", u.Host)
	}
	p := u.Path
	if p == "" {
		p = u.Opaque
	}
	if p == "" || !filepath.IsAbs(p) {
		return "", true, errors.New("gateway.configuration.uri: a file URI needs an absolute path (file:///path)")
	}
	return filepath.Clean(p), true, nil
}

// RunLocal watches LocalPath, a snapshot file or a folder holding
// snapshot.json, and publishes every new content through the same
// validation and atomic write as a remote snapshot: a bad file is rejected
// with its problems logged and the previous snapshot stays. It watches the
// folder (file events, which see the ..data symlink swap Kubernetes does on
// a ConfigMap update) and re-reads every LocalInterval (events are lost on
// some volume types). There is no heartbeat: a local source has no
// endpoint to report to. It returns nil when ctx is done.
func (a *Agent) RunLocal(ctx context.Context) error {
	log := a.Logger.With().Str("component", "configsync").Str("source", "file").Logger()
	if a.LocalPath == "" {
		return errors.New("configsync: neither a configuration endpoint nor a local path")
	}
	a.Start()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("configsync: watch %s: %w", a.LocalPath, err)
	}
	defer w.Close()
	// Watch the folder the file lives in (or the folder itself): a watch
	// on a file is lost when the file is replaced.
	watchDir := a.LocalPath
	if st, err := os.Stat(a.LocalPath); err == nil && !st.IsDir() {
		watchDir = filepath.Dir(a.LocalPath)
	} else if err != nil {
		watchDir = filepath.Dir(a.LocalPath)
	}
	watching := w.Add(watchDir) == nil

	var last []byte
	var lastErr string
	read := func() {
		if !watching {
			watching = w.Add(watchDir) == nil
		}
		data, file, err := readLocal(a.LocalPath)
		now := time.Now().UTC()
		if err != nil {
			a.failures.Add(1)
			a.setState(func() {
				a.lastError = err.Error()
				if a.haveConfig {
					a.status = StatusStale
				}
			})
			if err.Error() != lastErr {
				log.Warn().Err(err).Bool("failStatic", a.hasConfig()).Msg("local configuration not readable; keeping the last good snapshot")
			}
			lastErr, last = err.Error(), nil
			return
		}
		lastErr = ""
		a.successes.Add(1)
		if last != nil && bytes.Equal(last, data) {
			a.setState(func() { a.lastSyncAt = &now })
			return
		}
		last = data
		a.publish(log.With().Str("file", file).Logger(), data, "", now)
	}
	read()

	ticker := time.NewTicker(a.LocalInterval)
	defer ticker.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-w.Events:
			if !ok {
				return nil
			}
			// One ConfigMap update is a burst of events; read once after it.
			debounce.Reset(100 * time.Millisecond)
		case <-w.Errors:
			debounce.Reset(100 * time.Millisecond)
		case <-debounce.C:
			read()
		case <-ticker.C:
			read()
		case <-a.wake:
			read()
		}
	}
}

// readLocal reads the snapshot at path (a file or a folder holding
// snapshot.json), at most config.MaxSnapshotBytes.
func readLocal(path string) ([]byte, string, error) {
	file, err := config.ResolvePath(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, path, fmt.Errorf("local configuration %s: no such file or folder", path)
		}
		return nil, path, err
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, file, fmt.Errorf("local configuration: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, config.MaxSnapshotBytes+1))
	if err != nil {
		return nil, file, fmt.Errorf("local configuration %s: %w", file, err)
	}
	if len(data) > config.MaxSnapshotBytes {
		return nil, file, fmt.Errorf("local configuration %s: %w: more than %d bytes", file, ErrBodyTooLarge, config.MaxSnapshotBytes)
	}
	return data, file, nil
}
