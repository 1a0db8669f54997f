package configsync

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPublish(t *testing.T) {
	tests := []struct {
		name        string
		steps       []string
		wantFile    string
		wantRejects int
	}{
		{name: "first good", steps: []string{goodV1}, wantFile: goodV1},
		{name: "good replaces good", steps: []string{goodV1, goodV2}, wantFile: goodV2},
		{name: "bad never replaces good", steps: []string{goodV1, badV3}, wantFile: goodV1, wantRejects: 1},
		{name: "bad then good", steps: []string{goodV1, badV3, "not json", goodV2}, wantFile: goodV2, wantRejects: 2},
		{name: "bad first leaves no file", steps: []string{badV3}, wantRejects: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "config")
			p := NewPublisher(dir)
			rejects := 0
			for _, s := range tt.steps {
				_, _, err := p.Publish([]byte(s))
				var re *RejectedError
				if errors.As(err, &re) {
					rejects++
					if len(re.Issues) == 0 || !strings.Contains(err.Error(), "$") {
						t.Fatalf("rejection without issues: %v", err)
					}
				} else if err != nil {
					t.Fatal(err)
				}
			}
			if rejects != tt.wantRejects {
				t.Fatalf("%d rejects, want %d", rejects, tt.wantRejects)
			}
			got, err := os.ReadFile(p.Path())
			if tt.wantFile == "" {
				if !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("file exists: %q %v", got, err)
				}
			} else if string(got) != tt.wantFile {
				t.Fatalf("file = %q, want %q", got, tt.wantFile)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.Name() != "snapshot.json" {
					t.Fatalf("leftover file %s", e.Name())
				}
			}
		})
	}
}

func TestPublishUnchangedSkipsWrite(t *testing.T) {
	dir := t.TempDir()
	p := NewPublisher(dir)
	if _, written, err := p.Publish([]byte(goodV1)); err != nil || !written {
		t.Fatalf("written=%v err=%v", written, err)
	}
	st1, _ := os.Stat(p.Path())
	if _, written, err := p.Publish([]byte(goodV1)); err != nil || written {
		t.Fatalf("same bytes: written=%v err=%v", written, err)
	}
	st2, _ := os.Stat(p.Path())
	if !os.SameFile(st1, st2) {
		t.Fatal("unchanged snapshot was rewritten")
	}
	// A fresh publisher over the same folder adopts the existing file.
	p2 := NewPublisher(dir)
	s, err := p2.LoadExisting()
	if err != nil || s == nil || s.Revision != "v1" {
		t.Fatalf("LoadExisting = %+v, %v", s, err)
	}
	if _, written, _ := p2.Publish([]byte(goodV1)); written {
		t.Fatal("adopted snapshot was rewritten")
	}
}

// TestPublishNeverPartial reads the file continuously while snapshots are
// published: every read sees one complete, valid snapshot.
func TestPublishNeverPartial(t *testing.T) {
	dir := t.TempDir()
	p := NewPublisher(dir)
	big1 := bigSnapshot("b1", 2000)
	big2 := bigSnapshot("b2", 3000)
	if _, _, err := p.Publish([]byte(big1)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		for {
			select {
			case <-done:
				return
			default:
			}
			b, err := os.ReadFile(p.Path())
			if err != nil {
				errc <- err
				return
			}
			if s := string(b); s != big1 && s != big2 {
				errc <- errors.New("partial snapshot read")
				return
			}
		}
	}()
	for i := range 40 {
		data := big1
		if i%2 == 0 {
			data = big2
		}
		if _, _, err := p.Publish([]byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func bigSnapshot(rev string, n int) string {
	var b strings.Builder
	b.WriteString(`{"schemaVersion":"1.0","revision":"` + rev + `","policy":"`)
	b.WriteString(strings.Repeat("x", n*50))
	b.WriteString(`"}`)
	return b.String()
}

func TestLoadExisting(t *testing.T) {
	tests := []struct {
		name    string
		content string // "" = no file
		wantRev string
		wantErr bool
	}{
		{name: "none"},
		{name: "valid", content: goodV2, wantRev: "v2"},
		{name: "invalid is reported and left alone", content: badV3, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := NewPublisher(dir)
			if tt.content != "" {
				if err := os.WriteFile(p.Path(), []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s, err := p.LoadExisting()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if tt.wantRev != "" && (s == nil || s.Revision != tt.wantRev) {
				t.Fatalf("snapshot = %+v", s)
			}
			if tt.content != "" {
				if b, _ := os.ReadFile(p.Path()); string(b) != tt.content {
					t.Fatal("LoadExisting modified the file")
				}
			}
		})
	}
}
