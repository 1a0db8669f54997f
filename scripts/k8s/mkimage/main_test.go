package main

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestImageRoundTrip builds an image and reads it back the way an importer
// does: tag, config and file contents must be what was asked for.
func TestImageRoundTrip(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "app")
	if err := os.WriteFile(bin, []byte("#!binary"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "img.tar")
	err := run([]string{"-tag", "example.local/app:v1", "-o", out, "-entrypoint", "/usr/local/bin/app",
		"-user", "65532:65532", "-env", "A=b", bin + "=/usr/local/bin/app"})
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("example.local/app:v1")
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" || len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/usr/local/bin/app" {
		t.Fatalf("config user %q entrypoint %q", cfg.Config.User, cfg.Config.Entrypoint)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" || !strings.Contains(strings.Join(cfg.Config.Env, " "), "A=b") {
		t.Fatalf("config os %s arch %s env %v", cfg.OS, cfg.Architecture, cfg.Config.Env)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d: %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	found := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		found[h.Name] = h
		if h.Name == "usr/local/bin/app" {
			data, _ := io.ReadAll(tr)
			if string(data) != "#!binary" {
				t.Fatalf("file content %q", data)
			}
		}
	}
	if h := found["usr/local/bin/app"]; h == nil || h.Mode != 0o755 || h.Uid != 0 {
		t.Fatalf("binary entry %+v", h)
	}
	for _, d := range []string{"usr/", "usr/local/", "usr/local/bin/", "tmp/"} {
		if found[d] == nil {
			t.Fatalf("folder %s missing from the layer (have %v)", d, found)
		}
	}
	if found["tmp/"].Mode != 0o1777 {
		t.Fatalf("/tmp mode %o, want 1777", found["tmp/"].Mode)
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-o", "x.tar", "a=/b"},
		{"-tag", "a:b", "a=/b"},
		{"-tag", "a:b", "-o", "x.tar"},
		{"-tag", "a:b", "-o", "x.tar", "a=relative"},
		{"-tag", "UPPER:case", "-o", "x.tar", "a=/b"},
	} {
		if err := run(args); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
