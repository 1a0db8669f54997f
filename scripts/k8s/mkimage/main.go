// Command mkimage builds a container image from static binaries as a
// docker-archive tar that `ctr images import` (and `docker load`) accept,
// without a Docker engine. The e2e cluster imports its pause, gateway and
// fake-endpoint images this way, since no registry can be reached.
//
//	mkimage -tag example.local/app:dev -o app.tar \
//	    -entrypoint /usr/local/bin/app -user 65532:65532 \
//	    bin/app=/usr/local/bin/app
//
// Every file argument is SRC=DEST (DEST an absolute path in the image). The
// layer is reproducible: fixed modification times, sorted entries, root
// ownership, mode 0755 for files.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func run(args []string) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	tag := fs.String("tag", "", "image reference, e.g. example.local/app:dev (required)")
	out := fs.String("o", "", "output docker-archive tar (required)")
	entrypoint := fs.String("entrypoint", "", "entrypoint path in the image")
	user := fs.String("user", "", "user[:group] the image runs as")
	arch := fs.String("arch", "amd64", "image architecture")
	var envs stringList
	fs.Var(&envs, "env", "KEY=VALUE in the image config (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tag == "" || *out == "" || fs.NArg() == 0 {
		return errors.New("usage: mkimage -tag REF -o OUT.tar [-entrypoint P] [-user U] SRC=DEST...")
	}
	ref, err := name.NewTag(*tag)
	if err != nil {
		return fmt.Errorf("-tag %q: %w", *tag, err)
	}
	files := map[string]string{}
	for _, a := range fs.Args() {
		src, dest, ok := strings.Cut(a, "=")
		if !ok || src == "" || !path.IsAbs(dest) {
			return fmt.Errorf("file argument %q: want SRC=/absolute/dest", a)
		}
		files[path.Clean(dest)] = src
	}
	layerTar, err := buildLayer(files)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return fmt.Errorf("append layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture = *arch
	cfg.OS = "linux"
	cfg.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cfg.Config.User = *user
	cfg.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, envs...)
	if *entrypoint != "" {
		cfg.Config.Entrypoint = []string{*entrypoint}
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return fmt.Errorf("set config: %w", err)
	}
	if err := tarball.WriteToFile(*out, ref, img); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	return nil
}

// buildLayer writes the files, with their parent folders, as one
// uncompressed tar. /tmp is added writable for programs that need it.
func buildLayer(files map[string]string) ([]byte, error) {
	dirs := map[string]bool{"/tmp": true}
	for dest := range files {
		for d := path.Dir(dest); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	type entry struct {
		name string
		src  string // empty for a folder
	}
	var entries []entry
	for d := range dirs {
		entries = append(entries, entry{name: d})
	}
	for dest, src := range files {
		entries = append(entries, entry{name: dest, src: src})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	for _, e := range entries {
		name := strings.TrimPrefix(e.name, "/")
		if e.src == "" {
			mode := int64(0o755)
			if e.name == "/tmp" {
				mode = 0o1777
			}
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
				return nil, err
			}
			continue
		}
		data, err := os.ReadFile(e.src)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", e.src, err)
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
