package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// file is one regular file of the image's single layer.
type file struct {
	path string // absolute path inside the image
	mode int64
	data []byte
}

// epoch is the time of every entry, config and history: the same sources
// give the same digests.
var epoch = time.Unix(0, 0).UTC()

// nonRoot is the user the containers run as (distroless "nonroot").
const nonRoot = 65532

// layerTar writes files, the folders that hold them, /tmp and the passwd and
// group entries of the non-root user, with fixed headers (owner root, fixed
// time, sorted order), so the layer digest depends only on the contents.
func layerTar(files []file) ([]byte, error) {
	entries := slices.Clone(files)
	entries = append(entries,
		file{path: "/etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		file{path: "/etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
	)
	dirs := map[string]int64{"/tmp": 0o1777, "/home/nonroot": 0o700}
	for _, f := range entries {
		if !path.IsAbs(f.path) || path.Clean(f.path) != f.path {
			return nil, fmt.Errorf("image file %q: want a clean absolute path", f.path)
		}
		for d := path.Dir(f.path); d != "/"; d = path.Dir(d) {
			if _, ok := dirs[d]; !ok {
				dirs[d] = 0o755
			}
		}
	}
	for d := range dirs {
		for p := path.Dir(d); p != "/"; p = path.Dir(p) {
			if _, ok := dirs[p]; !ok {
				dirs[p] = 0o755
			}
		}
	}
	type entry struct {
		name string
		hdr  *tar.Header
		data []byte
	}
	var all []entry
	for d, mode := range dirs {
		h := &tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: mode}
		if d == "/home/nonroot" {
			h.Uid, h.Gid = nonRoot, nonRoot
		}
		all = append(all, entry{name: h.Name, hdr: h})
	}
	seen := map[string]bool{}
	for _, f := range entries {
		if seen[f.path] {
			return nil, fmt.Errorf("image file %q given twice", f.path)
		}
		seen[f.path] = true
		h := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.path, "/"), Mode: f.mode, Size: int64(len(f.data))}
		all = append(all, entry{name: h.Name, hdr: h, data: f.data})
	}
	slices.SortFunc(all, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range all {
		e.hdr.ModTime, e.hdr.AccessTime, e.hdr.ChangeTime = epoch, time.Time{}, time.Time{}
		e.hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(e.hdr); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}
