package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const testTag = "example.local/apim-arc-gateway:1.2.3"

var testPlatforms = []platform{{"linux", "amd64"}, {"linux", "arm64"}}

// fakeFiles stand in for the binaries: the archive logic does not care what
// the bytes are, and compiling is tested on its own below.
func fakeFiles(p platform) []file {
	return []file{
		{path: "/etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: []byte("-----BEGIN CERTIFICATE-----\n")},
		{path: "/usr/local/bin/apim-gateway", mode: 0o755, data: []byte("gateway-" + p.Arch)},
		{path: "/usr/local/bin/apim-agent", mode: 0o755, data: []byte("agent-" + p.Arch)},
		{path: "/usr/local/bin/apim-probe", mode: 0o755, data: []byte("probe-" + p.Arch)},
	}
}

func buildAll(t *testing.T) map[platform]v1.Image {
	t.Helper()
	imgs := map[platform]v1.Image{}
	for _, p := range testPlatforms {
		img, err := assemble(p, fakeFiles(p), meta{Tag: testTag, Version: "1.2.3", Revision: "abc123"})
		if err != nil {
			t.Fatal(err)
		}
		imgs[p] = img
	}
	return imgs
}

type tarEntry struct {
	hdr  *tar.Header
	data string
}

func readTar(t *testing.T, r io.Reader) map[string]tarEntry {
	t.Helper()
	out := map[string]tarEntry{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = tarEntry{hdr: h, data: string(b)}
	}
}

// checkImage asserts what a runtime relies on: the config (user, entrypoint,
// platform, labels) and the one layer's files, modes and owners.
func checkImage(t *testing.T, img v1.Image, p platform) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != p.OS || cf.Architecture != p.Arch {
		t.Errorf("platform %s/%s, want %s", cf.OS, cf.Architecture, p)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", cf.Config.User)
	}
	if strings.Join(cf.Config.Entrypoint, " ") != "/usr/local/bin/apim-gateway" {
		t.Errorf("entrypoint %q", cf.Config.Entrypoint)
	}
	if cf.Config.Labels["org.opencontainers.image.version"] != "1.2.3" || cf.Config.Labels["org.opencontainers.image.revision"] != "abc123" {
		t.Errorf("labels %v", cf.Config.Labels)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	entries := readTar(t, rc)
	want := map[string]struct {
		mode     int64
		uid      int
		data     string
		typeflag byte
	}{
		"usr/local/bin/apim-gateway":        {0o755, 0, "gateway-" + p.Arch, tar.TypeReg},
		"usr/local/bin/apim-agent":          {0o755, 0, "agent-" + p.Arch, tar.TypeReg},
		"usr/local/bin/apim-probe":          {0o755, 0, "probe-" + p.Arch, tar.TypeReg},
		"etc/ssl/certs/ca-certificates.crt": {0o644, 0, "-----BEGIN CERTIFICATE-----\n", tar.TypeReg},
		"tmp/":                              {0o1777, 0, "", tar.TypeDir},
		"home/nonroot/":                     {0o700, 65532, "", tar.TypeDir},
		"usr/local/bin/":                    {0o755, 0, "", tar.TypeDir},
	}
	for name, w := range want {
		e, ok := entries[name]
		if !ok {
			t.Errorf("%s missing from the layer", name)
			continue
		}
		if e.hdr.Mode != w.mode || e.hdr.Uid != w.uid || e.hdr.Gid != w.uid || e.hdr.Typeflag != w.typeflag {
			t.Errorf("%s: mode %o uid %d gid %d type %c; want mode %o uid %d type %c", name, e.hdr.Mode, e.hdr.Uid, e.hdr.Gid, e.hdr.Typeflag, w.mode, w.uid, w.typeflag)
		}
		if e.data != w.data {
			t.Errorf("%s: content %q, want %q", name, e.data, w.data)
		}
		if !e.hdr.ModTime.Equal(epoch) || e.hdr.Uname != "" {
			t.Errorf("%s: header not reproducible: mtime %v uname %q", name, e.hdr.ModTime, e.hdr.Uname)
		}
	}
	if !strings.Contains(entries["etc/passwd"].data, "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no user 65532: %q", entries["etc/passwd"].data)
	}
	for name := range entries {
		if _, ok := want[name]; !ok && name != "etc/passwd" && name != "etc/group" && !strings.HasSuffix(name, "/") {
			t.Errorf("unexpected file %s in the image (nothing else belongs there)", name)
		}
	}
}

func TestArchives(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	imgs := buildAll(t)
	out, err := writeOutputs(dir, "apim-arc-gateway", imgs, meta{Tag: testTag, Version: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(testTag)

	t.Run("docker-archive per platform", func(t *testing.T) {
		for _, p := range testPlatforms {
			path := out.Docker[p]
			if filepath.Base(path) != "apim-arc-gateway-linux-"+p.Arch+".tar" {
				t.Errorf("archive name %s", path)
			}
			img, err := tarball.ImageFromPath(path, &tag)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			checkImage(t, img, p)
			// ctr images import and docker load name the image from RepoTags.
			f, _ := os.Open(path)
			entries := readTar(t, f)
			f.Close()
			var manifest []struct{ RepoTags []string }
			if err := json.Unmarshal([]byte(entries["manifest.json"].data), &manifest); err != nil || len(manifest) != 1 || len(manifest[0].RepoTags) != 1 || manifest[0].RepoTags[0] != testTag {
				t.Errorf("manifest.json %s: %v", entries["manifest.json"].data, err)
			}
		}
	})

	t.Run("OCI layout index", func(t *testing.T) {
		f, err := os.Open(out.OCI)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		root := t.TempDir()
		for name, e := range readTar(t, f) {
			p := filepath.Join(root, filepath.FromSlash(name))
			if e.hdr.Typeflag == tar.TypeDir {
				os.MkdirAll(p, 0o755)
				continue
			}
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(e.data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := os.Stat(filepath.Join(root, "oci-layout")); err != nil {
			t.Fatalf("no oci-layout file: %v", err)
		}
		lp, err := layout.FromPath(root)
		if err != nil {
			t.Fatal(err)
		}
		top, err := lp.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		im, _ := top.IndexManifest()
		if len(im.Manifests) != 1 {
			t.Fatalf("index.json has %d entries, want 1", len(im.Manifests))
		}
		if got := im.Manifests[0].Annotations["io.containerd.image.name"]; got != testTag {
			t.Errorf("io.containerd.image.name = %q, want %q", got, testTag)
		}
		multi, err := top.ImageIndex(im.Manifests[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		mm, _ := multi.IndexManifest()
		if len(mm.Manifests) != len(testPlatforms) {
			t.Fatalf("%d platforms, want %d", len(mm.Manifests), len(testPlatforms))
		}
		for _, d := range mm.Manifests {
			p := platform{OS: d.Platform.OS, Arch: d.Platform.Architecture}
			img, err := multi.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			checkImage(t, img, p)
			want, _ := imgs[p].Digest()
			if d.Digest != want {
				t.Errorf("%s: digest %s in the index, built %s", p, d.Digest, want)
			}
		}
	})
}

func TestReproducible(t *testing.T) {
	t.Parallel()
	a, b := buildAll(t), buildAll(t)
	for _, p := range testPlatforms {
		da, _ := a[p].Digest()
		db, _ := b[p].Digest()
		if da != db {
			t.Errorf("%s: digests differ between two builds of the same files: %s %s", p, da, db)
		}
	}
	changed, err := assemble(testPlatforms[0], append(fakeFiles(testPlatforms[0])[:1], file{path: "/usr/local/bin/apim-gateway", mode: 0o755, data: []byte("other")}), meta{Tag: testTag, Version: "1.2.3", Revision: "abc123"})
	if err != nil {
		t.Fatal(err)
	}
	dc, _ := changed.Digest()
	da, _ := a[testPlatforms[0]].Digest()
	if dc == da {
		t.Error("different contents gave the same digest")
	}
}

func TestLayerRejects(t *testing.T) {
	t.Parallel()
	for _, files := range [][]file{
		{{path: "relative/x", mode: 0o644}},
		{{path: "/a/../b", mode: 0o644}},
		{{path: "/x", mode: 0o644}, {path: "/x", mode: 0o644}},
	} {
		if _, err := layerTar(files); err == nil {
			t.Errorf("layerTar(%v) accepted", files)
		}
	}
}

func TestFlags(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-platforms", "windows/amd64"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "want linux/<arch>") {
		t.Errorf("bad platform: exit %d, %s", code, errOut.String())
	}
	if code := run(context.Background(), []string{"-ca-bundle", filepath.Join(t.TempDir(), "none.pem")}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "CA bundle") {
		t.Errorf("missing CA bundle: exit %d, %s", code, errOut.String())
	}
}

// TestCompileStatic cross-compiles the smallest of the image's commands for
// both platforms and checks it is a static executable for the right machine.
func TestCompileStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles; skipped with -short")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, p := range testPlatforms {
		dst := filepath.Join(t.TempDir(), "apim-probe")
		if err := compile(context.Background(), "go", root, "./scripts/image/apim-probe", dst, p, "test"); err != nil {
			t.Fatal(err)
		}
		f, err := elf.Open(dst)
		if err != nil {
			t.Fatal(err)
		}
		if f.Machine != machines[p.Arch] {
			t.Errorf("%s: machine %v", p, f.Machine)
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				t.Errorf("%s: dynamically linked (has an interpreter)", p)
			}
		}
		f.Close()
	}
}
