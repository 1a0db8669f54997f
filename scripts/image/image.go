package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// platform is one os/arch the image is built for.
type platform struct {
	OS, Arch string
}

func (p platform) String() string { return p.OS + "/" + p.Arch }

func parsePlatforms(s string) ([]platform, error) {
	var out []platform
	for _, part := range strings.Split(s, ",") {
		osName, arch, ok := strings.Cut(strings.TrimSpace(part), "/")
		if !ok || osName != "linux" || arch == "" {
			return nil, fmt.Errorf("platform %q: want linux/<arch>, e.g. linux/amd64", part)
		}
		out = append(out, platform{OS: osName, Arch: arch})
	}
	return out, nil
}

// meta is what the image says about itself.
type meta struct {
	Tag      string // repository:tag written into the archives
	Version  string
	Revision string // source revision, may be empty
}

// entrypoint runs the gateway; the chart sets the command of each container.
var entrypoint = []string{"/usr/local/bin/apim-gateway"}

// assemble builds the image of one platform from its files.
func assemble(p platform, files []file, m meta) (v1.Image, error) {
	data, err := layerTar(files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("%s: layer: %w", p, err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		History:   v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "scripts/image", Comment: "apim-gateway, apim-agent, apim-probe, CA certificates"},
		MediaType: types.OCILayer,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", p, err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = p.OS, p.Arch
	cf.Created = v1.Time{Time: epoch}
	uid := strconv.Itoa(nonRoot)
	cf.Config = v1.Config{
		User:       uid + ":" + uid,
		Entrypoint: entrypoint,
		WorkingDir: "/",
		Env:        []string{"PATH=/usr/local/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		Labels:     labels(m),
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", p, err)
	}
	return img, nil
}

func labels(m meta) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       "apim-arc-gateway",
		"org.opencontainers.image.description": "Azure API Management self-hosted gateway (apim-gateway) and its Arc extension agent (apim-agent)",
		"org.opencontainers.image.version":     m.Version,
		"org.opencontainers.image.source":      "https://github.com/seed393f6fe3/apim-arc-gateway",
		"org.opencontainers.image.licenses":    "MIT",
	}
	if m.Revision != "" {
		l["org.opencontainers.image.revision"] = m.Revision
	}
	return l
}

// index puts the per-platform images in one OCI image index.
func index(imgs map[platform]v1.Image) v1.ImageIndex {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	keys := make([]platform, 0, len(imgs))
	for p := range imgs {
		keys = append(keys, p)
	}
	slices.SortFunc(keys, func(a, b platform) int { return strings.Compare(a.String(), b.String()) })
	for _, p := range keys {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        imgs[p],
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch}},
		})
	}
	return idx
}

// outputs are the files writeOutputs creates.
type outputs struct {
	OCI    string              // OCI image layout, as a tar
	Docker map[platform]string // docker-archive per platform (ctr images import, docker load)
}

// writeOutputs writes the OCI layout tar of the index and one docker-archive
// per platform into dir.
func writeOutputs(dir, base string, imgs map[platform]v1.Image, m meta) (outputs, error) {
	out := outputs{Docker: map[platform]string{}}
	tag, err := name.NewTag(m.Tag, name.WeakValidation)
	if err != nil {
		return out, fmt.Errorf("tag %q: %w", m.Tag, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return out, err
	}
	for p, img := range imgs {
		path := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.tar", base, p.OS, p.Arch))
		if err := tarball.WriteToFile(path, tag, img); err != nil {
			return out, fmt.Errorf("%s: docker archive: %w", p, err)
		}
		out.Docker[p] = path
	}

	tmp, err := os.MkdirTemp(dir, ".oci-")
	if err != nil {
		return out, err
	}
	defer os.RemoveAll(tmp)
	lp, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return out, fmt.Errorf("oci layout: %w", err)
	}
	// ctr images import names the image after io.containerd.image.name;
	// other tools read org.opencontainers.image.ref.name.
	if err := lp.AppendIndex(index(imgs), layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          tag.String(),
		"org.opencontainers.image.ref.name": tag.TagStr(),
	})); err != nil {
		return out, fmt.Errorf("oci layout: %w", err)
	}
	out.OCI = filepath.Join(dir, base+"-oci.tar")
	if err := tarDir(tmp, out.OCI); err != nil {
		return out, fmt.Errorf("oci layout: %w", err)
	}
	return out, nil
}

// tarDir writes the files under dir into a tar at dst, sorted, with fixed
// headers.
func tarDir(dir, dst string) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(names)
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, p := range names {
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		fi, err := os.Stat(p)
		if err != nil {
			f.Close()
			return err
		}
		h := &tar.Header{Name: rel, Mode: 0o644, ModTime: epoch, Format: tar.FormatPAX}
		if fi.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, rel+"/", 0o755
		} else {
			h.Typeflag, h.Size = tar.TypeReg, fi.Size()
		}
		if err := tw.WriteHeader(h); err != nil {
			f.Close()
			return err
		}
		if !fi.IsDir() {
			if err := copyFile(tw, p); err != nil {
				f.Close()
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func copyFile(w io.Writer, p string) error {
	r, err := os.Open(p)
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = io.Copy(w, r)
	return err
}
