package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"github.com/fsnotify/fsnotify"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy"
)

// Reload reads the snapshot and, when it changed, compiles it and swaps it
// in. On any error the configuration being served stays; the error lists
// every problem with its JSON path.
func (g *Gateway) Reload() error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	file, err := config.ResolvePath(g.opts.ConfigPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no snapshot at %s yet", g.opts.ConfigPath)
		}
		return err
	}
	g.configFile = file
	st, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("config %q: %w", file, err)
	}
	if st.Size() > config.MaxSnapshotBytes {
		g.metrics.reloadFailures.Add(1)
		return fmt.Errorf("config %q: %d bytes is over the %d byte limit", file, st.Size(), config.MaxSnapshotBytes)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("config %q: %w", file, err)
	}
	hash := sha256.Sum256(data)
	if cur := g.rt.Load(); cur != nil && cur.hash == hash {
		return nil
	}
	snap, err := config.Parse(data)
	if err != nil {
		g.metrics.reloadFailures.Add(1)
		var ve *config.ValidationError
		if errors.As(err, &ve) {
			ve.Source = file
		}
		return err
	}
	rt, err := compile(snap, hash, g.pool, policy.Options{Strict: g.opts.StrictPolicies, Counters: g.counters, Cache: g.cache, Breakers: g.breakers, Metrics: g.emitted, Shared: g.shared})
	if err != nil {
		g.metrics.reloadFailures.Add(1)
		return fmt.Errorf("config %q: %w", file, err)
	}
	old := g.rt.Swap(rt)
	g.pool.Retain(rt.targets)
	g.breakers.Retain(func(name string) bool {
		for i := range snap.Backends {
			if strings.EqualFold(snap.Backends[i].Name, name) {
				return true
			}
		}
		return false
	})
	g.metrics.reloads.Add(1)
	ev := g.log.Info().Str("file", file).Str("revision", snap.Revision).Int("apis", len(rt.table.APIs)).
		Int("products", len(snap.Products)).Int("subscriptions", len(snap.Subscriptions))
	if old == nil {
		ev.Msg("configuration loaded")
	} else {
		ev.Msg("configuration reloaded")
	}
	for _, w := range rt.policyWarnings {
		g.log.Warn().Str("policy", w.Policy).Str("scope", w.Location.String()).Int("line", w.Pos.Line).Int("column", w.Pos.Col).
			Msg(w.Message)
	}
	return nil
}

// startWatch watches the snapshot's folder (a ConfigMap or the agent
// swaps files by rename, so the folder is watched, not the file). Run
// calls it before it reports ready, so a snapshot written right after
// Ready is not missed. It returns nil, after a warning, when the folder
// cannot be watched: reloads then rely on ReloadInterval.
func (g *Gateway) startWatch() *fsnotify.Watcher {
	dir := g.opts.ConfigPath
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		dir = filepath.Dir(dir)
	}
	w, err := fsnotify.NewWatcher()
	if err == nil {
		if err = w.Add(dir); err == nil {
			return w
		}
		_ = w.Close()
	}
	g.log.Warn().Err(err).Str("dir", dir).Dur("interval", g.opts.ReloadInterval).Msg("cannot watch the configuration folder; polling only")
	return nil
}

// watch reloads on w's events and, as a safety net, every
// ReloadInterval. It closes w when ctx ends.
func (g *Gateway) watch(ctx context.Context, w *fsnotify.Watcher) {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w != nil {
		events, errs = w.Events, w.Errors
		defer w.Close()
	}
	interval := g.opts.ReloadInterval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	// Events come in bursts (write, chmod, rename); settle before reading.
	var debounce <-chan time.Time
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
			debounce = time.After(50 * time.Millisecond)
		case err := <-errs:
			g.log.Warn().Err(err).Msg("configuration watch error")
		case <-debounce:
			debounce = nil
			last = g.reloadAndLog(last)
		case <-tick.C:
			last = g.reloadAndLog(last)
		}
	}
}

// reloadAndLog reloads and logs a failure unless it is the same failure
// as last time, so a missing or broken snapshot is reported once, not at
// every tick. It returns the failure text ("" on success).
func (g *Gateway) reloadAndLog(last string) string {
	err := g.Reload()
	if err == nil {
		return ""
	}
	if msg := err.Error(); msg != last {
		g.log.Error().Err(err).Msg("configuration rejected; still serving the previous one")
		return msg
	}
	return last
}

// b2s views b as a string without copying, for lookups that do not keep
// the string.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
