package settings

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

type event struct {
	s      *Settings
	issues []Issue
	ch     Change
}

func TestWatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		update func(t *testing.T, sd, pd string)
		key    string
		live   bool
		check  func(s *Settings) bool
	}{
		{name: "plain file rewritten", key: "service.type",
			update: func(t *testing.T, sd, pd string) {
				if err := os.WriteFile(filepath.Join(sd, "service.type"), []byte("NodePort"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			check: func(s *Settings) bool { return s.String("service.type") == "NodePort" }},
		{name: "data symlink swap", key: "gateway.auth.token", live: true,
			update: func(t *testing.T, sd, pd string) {
				writeDir(t, pd, map[string]string{"gateway.auth.token": token + "2"})
			},
			check: func(s *Settings) bool { return s.Secret("gateway.auth.token").Reveal() == token+"2" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			sd, pd := filepath.Join(root, "settings"), filepath.Join(root, "protected")
			writeDir(t, pd, map[string]string{"gateway.auth.token": token})
			if err := os.MkdirAll(sd, 0o755); err != nil {
				t.Fatal(err)
			}
			for k, v := range with(base(), "service.type", "ClusterIP") {
				if err := os.WriteFile(filepath.Join(sd, k), []byte(v), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			events := make(chan event, 10)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- Watch(ctx, WatchOptions{SettingsDir: sd, ProtectedDir: pd, Schema: testSchema(t), Interval: time.Hour, Debounce: 20 * time.Millisecond},
					func(s *Settings, issues []Issue, ch Change) { events <- event{s, issues, ch} })
			}()
			defer func() {
				cancel()
				<-done
			}()
			first := <-events
			if HasErrors(first.issues) || first.ch.Empty() {
				t.Fatalf("initial load: %v %+v", first.issues, first.ch)
			}
			tc.update(t, sd, pd)
			select {
			case ev := <-events:
				if !tc.check(ev.s) || !slices.Equal(ev.ch.Keys, []string{tc.key}) {
					t.Fatalf("change = %+v", ev.ch)
				}
				if slices.Contains(ev.ch.Live, tc.key) != tc.live || slices.Contains(ev.ch.Restart, tc.key) == tc.live {
					t.Errorf("live/restart = %+v", ev.ch)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no change reported")
			}
		})
	}
}

func TestWatchPeriodicReread(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	sd := filepath.Join(root, "settings") // created after Watch starts
	events := make(chan event, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, WatchOptions{SettingsDir: sd, Schema: testSchema(t), Interval: 50 * time.Millisecond},
			func(s *Settings, issues []Issue, ch Change) { events <- event{s, issues, ch} })
	}()
	first := <-events
	if find(first.issues, Error, "gateway.configuration.uri") == nil {
		t.Fatalf("want missing uri, got %v", first.issues)
	}
	writeDir(t, sd, map[string]string{"gateway.configuration.uri": "file:///snap.json"})
	select {
	case ev := <-events:
		if HasErrors(ev.issues) || ev.s.String("gateway.configuration.uri") != "file:///snap.json" {
			t.Errorf("got %v %v", ev.issues, ev.s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no change reported")
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Watch returned %v", err)
	}
}
