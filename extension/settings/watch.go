package settings

import (
	"context"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

// WatchOptions configures Watch.
type WatchOptions struct {
	SettingsDir  string
	ProtectedDir string
	Schema       *Schema
	// Interval of the periodic re-read that backs up fsnotify (missed events,
	// folders created late). Default 30s.
	Interval time.Duration
	// Debounce groups the burst of events of one Kubernetes update. Default 100ms.
	Debounce time.Duration
}

// OnChange receives the new settings, their issues, and what changed since
// the previous call. The first call carries the initial load (every key in
// Change). It is called again when a value or the set of issues changes.
// Callers keep their previous settings when HasErrors(issues).
type OnChange func(s *Settings, issues []Issue, change Change)

// Watch loads the settings, calls onChange, then watches both folders
// (fsnotify on the folders, which sees the ..data symlink swap Kubernetes
// performs, plus a periodic re-read) until ctx is done. It returns ctx.Err()
// or an error setting up fsnotify.
func Watch(ctx context.Context, opts WatchOptions, onChange OnChange) error {
	if opts.Interval <= 0 {
		opts.Interval = 30 * time.Second
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	watched := map[string]bool{}
	addDirs := func() {
		for _, d := range []string{opts.SettingsDir, opts.ProtectedDir} {
			if d != "" && !watched[d] && w.Add(d) == nil {
				watched[d] = true
			}
		}
	}
	addDirs()

	cur, issues := Load(opts.SettingsDir, opts.ProtectedDir, opts.Schema)
	onChange(cur, issues, cur.Diff(nil))

	reload := func() {
		addDirs()
		next, nextIssues := Load(opts.SettingsDir, opts.ProtectedDir, opts.Schema)
		ch := next.Diff(cur)
		if ch.Empty() && slices.Equal(issues, nextIssues) {
			return
		}
		cur, issues = next, nextIssues
		onChange(cur, issues, ch)
	}

	ticker := time.NewTicker(opts.Interval)
	defer ticker.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
				// a watched folder itself may have gone; re-add on reload
				for d := range watched {
					if ev.Name == d {
						delete(watched, d)
					}
				}
			}
			debounce.Reset(opts.Debounce)
		case <-w.Errors:
			debounce.Reset(opts.Debounce)
		case <-debounce.C:
			reload()
		case <-ticker.C:
			reload()
		}
	}
}
