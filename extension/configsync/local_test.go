package configsync

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/seed393f6fe3/apim-arc-gateway/internal/logcapture"
)

func TestLocalPath(t *testing.T) {
	tests := []struct {
		name, uri, want string
		local           bool
		wantErr         string
	}{
		{name: "https is remote", uri: "https://contoso.configuration.azure-api.net"},
		{name: "file with empty host", uri: "file:///apim/source", want: "/apim/source", local: true},
		{name: "file localhost", uri: "file://localhost/apim/source/snapshot.json", want: "/apim/source/snapshot.json", local: true},
		{name: "file opaque", uri: "file:/apim/source", want: "/apim/source", local: true},
		{name: "path is cleaned", uri: "file:///apim//source/../config/", want: "/apim/config", local: true},
		{name: "remote host refused", uri: "file://server/share", local: true, wantErr: `not host "server"`},
		{name: "no path", uri: "file://", local: true, wantErr: "absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, local, err := LocalPath(tt.uri)
			if local != tt.local {
				t.Fatalf("local = %v, want %v", local, tt.local)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "gateway.configuration.uri") {
					t.Fatalf("err = %v, want one naming the setting and %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("LocalPath(%q) = %q, %v; want %q", tt.uri, got, err, tt.want)
			}
		})
	}
}

// configMapDir lays out files as the kubelet mounts a ConfigMap: a
// timestamped folder, ..data pointing at it (swapped with one rename), and
// one symlink per key through ..data.
type configMapDir struct {
	dir string
	gen int
}

func (c *configMapDir) write(t *testing.T, files map[string]string) {
	t.Helper()
	c.gen++
	ts := fmt.Sprintf("..2026_11_30_%d", c.gen)
	must(t, os.Mkdir(filepath.Join(c.dir, ts), 0o755))
	for k, v := range files {
		must(t, os.WriteFile(filepath.Join(c.dir, ts, k), []byte(v), 0o644))
	}
	old, _ := os.Readlink(filepath.Join(c.dir, "..data"))
	must(t, os.Symlink(ts, filepath.Join(c.dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(c.dir, "..data_tmp"), filepath.Join(c.dir, "..data")))
	for k := range files {
		if _, err := os.Lstat(filepath.Join(c.dir, k)); err != nil {
			must(t, os.Symlink(filepath.Join("..data", k), filepath.Join(c.dir, k)))
		}
	}
	if old != "" {
		must(t, os.RemoveAll(filepath.Join(c.dir, old)))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestRunLocal(t *testing.T) {
	tests := []struct {
		name string
		// folder: a ConfigMap folder holding snapshot.json; else a plain
		// file replaced by rename, as an editor or rsync does.
		folder bool
	}{
		{name: "configmap folder", folder: true},
		{name: "plain file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			cm := &configMapDir{dir: src}
			path := filepath.Join(src, "gw.json")
			put := func(content string) {
				if tt.folder {
					cm.write(t, map[string]string{"snapshot.json": content})
					return
				}
				tmp := path + ".tmp"
				must(t, os.WriteFile(tmp, []byte(content), 0o644))
				must(t, os.Rename(tmp, path))
			}
			put(goodV1)
			watched := path
			if tt.folder {
				watched = src
			}
			pub := NewPublisher(t.TempDir())
			logs := &logcapture.Buffer{}
			a := &Agent{LocalPath: watched, Publisher: pub, Logger: zerolog.New(logs),
				// The periodic re-read is far off: changes must arrive as file events.
				LocalInterval: time.Hour}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 2)
			go func() { done <- a.Run(ctx) }()
			go func() { done <- a.RunHeartbeats(ctx) }()
			fileIs := func(want string) func() bool {
				return func() bool { b, _ := os.ReadFile(pub.Path()); return string(b) == want }
			}
			eventually(t, "v1 published", fileIs(goodV1))
			eventually(t, "synced", func() bool { return a.HeartbeatBody().Status == StatusSynced })

			put(goodV2)
			eventually(t, "v2 published after the swap", fileIs(goodV2))

			put(badV3)
			eventually(t, "the bad file rejected", func() bool { return a.Stats().Rejected == 1 })
			if !fileIs(goodV2)() {
				t.Fatal("a bad local file replaced the snapshot")
			}
			hb := a.HeartbeatBody()
			if hb.Status != StatusStale || hb.ConfigurationRevision != "v2" || !strings.Contains(hb.LastError, "rejected") {
				t.Fatalf("after the bad file: %+v", hb)
			}

			put(goodV1)
			eventually(t, "v1 published again", fileIs(goodV1))
			eventually(t, "synced again", func() bool { return a.HeartbeatBody().Status == StatusSynced })
			cancel()
			for range 2 {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			if st := a.Stats(); st.Published != 3 || st.Rejected != 1 {
				t.Fatalf("stats %+v, want 3 published and 1 rejected", st)
			}
			out := logs.String()
			for _, want := range []string{"configuration rejected", "$.bogus: unknown field", `"source":"file"`} {
				if !strings.Contains(out, want) {
					t.Errorf("logs lack %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestRunLocalMissingKeepsBackup(t *testing.T) {
	pub := NewPublisher(t.TempDir())
	must(t, os.WriteFile(pub.Path(), []byte(goodV1), 0o644))
	src := filepath.Join(t.TempDir(), "not-yet")
	logs := &logcapture.Buffer{}
	a := &Agent{LocalPath: src, Publisher: pub, Logger: zerolog.New(logs), LocalInterval: 20 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	eventually(t, "failures counted", func() bool { return a.Stats().Failures >= 3 })
	hb := a.HeartbeatBody()
	if hb.Status != StatusStale || hb.ConfigurationRevision != "v1" {
		t.Fatalf("with the source missing: %+v", hb)
	}
	// The source appears later: it is picked up (here by the periodic read).
	must(t, os.MkdirAll(src, 0o755))
	must(t, os.WriteFile(filepath.Join(src, "snapshot.json"), []byte(goodV2), 0o644))
	eventually(t, "v2 published", func() bool { b, _ := os.ReadFile(pub.Path()); return string(b) == goodV2 })
	cancel()
	must(t, <-done)
	// One warning for the missing source, not one per read.
	if n := strings.Count(logs.String(), "local configuration not readable"); n != 1 {
		t.Fatalf("%d warnings for the missing source:\n%s", n, logs.String())
	}
}
