// Command image builds the product image without a container engine: it
// cross-compiles apim-gateway, apim-agent and apim-probe (static,
// CGO_ENABLED=0) for each platform, puts them with the CA bundle into one
// deterministic layer, and writes
//
//	<out>/apim-arc-gateway-oci.tar              OCI image layout holding a multi-platform index
//	<out>/apim-arc-gateway-linux-<arch>.tar     docker-archive per platform (ctr images import, docker load)
//
// The image is the Dockerfile's: binaries in /usr/local/bin, user 65532,
// nothing else. `make image` runs it.
//
//	image [-tag REPO:TAG] [-version V] [-platforms linux/amd64,linux/arm64] [-out DIR]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// binaries are the commands in the image: package path -> file name.
var binaries = []struct{ pkg, name string }{
	{"./gateway/cmd/apim-gateway", "apim-gateway"},
	{"./extension/cmd/apim-agent", "apim-agent"},
	{"./scripts/image/apim-probe", "apim-probe"},
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.String("version", "dev", "version baked into the binaries (-X main.version) and the image label")
	tag := fs.String("tag", "", "image reference written into the archives (default example.local/apim-arc-gateway:<version>)")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "comma-separated platforms")
	out := fs.String("out", "bin/image", "output folder")
	src := fs.String("src", ".", "repository root (the Go module)")
	caBundle := fs.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "PEM CA bundle installed as /etc/ssl/certs/ca-certificates.crt (Debian: package ca-certificates)")
	revision := fs.String("revision", "", "source revision label (org.opencontainers.image.revision)")
	goTool := fs.String("go", "go", "go command")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *tag == "" {
		*tag = "example.local/apim-arc-gateway:" + *version
	}
	plats, err := parsePlatforms(*platforms)
	if err != nil {
		fmt.Fprintln(stderr, "image:", err)
		return 2
	}
	ca, err := os.ReadFile(*caBundle)
	if err != nil {
		fmt.Fprintf(stderr, "image: CA bundle: %v (install ca-certificates or pass -ca-bundle)\n", err)
		return 1
	}
	m := meta{Tag: *tag, Version: *version, Revision: *revision}
	work, err := os.MkdirTemp("", "apim-image-")
	if err != nil {
		fmt.Fprintln(stderr, "image:", err)
		return 1
	}
	defer os.RemoveAll(work)

	imgs := map[platform]v1.Image{}
	for _, p := range plats {
		files := []file{{path: "/etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca}}
		for _, b := range binaries {
			dst := filepath.Join(work, p.Arch, b.name)
			if err := compile(ctx, *goTool, *src, b.pkg, dst, p, *version); err != nil {
				fmt.Fprintln(stderr, "image:", err)
				return 1
			}
			data, err := os.ReadFile(dst)
			if err != nil {
				fmt.Fprintln(stderr, "image:", err)
				return 1
			}
			files = append(files, file{path: "/usr/local/bin/" + b.name, mode: 0o755, data: data})
		}
		img, err := assemble(p, files, m)
		if err != nil {
			fmt.Fprintln(stderr, "image:", err)
			return 1
		}
		imgs[p] = img
	}
	res, err := writeOutputs(*out, "apim-arc-gateway", imgs, m)
	if err != nil {
		fmt.Fprintln(stderr, "image:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n  %s (OCI layout, %d platform(s))\n", m.Tag, res.OCI, len(imgs))
	for _, p := range plats {
		d, _ := imgs[p].Digest()
		fmt.Fprintf(stdout, "  %s (docker-archive %s, %s)\n", res.Docker[p], p, d)
	}
	return 0
}

// compile builds one static binary for p.
func compile(ctx context.Context, goTool, src, pkg, dst string, p platform, version string) error {
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X main.version="+version, "-o", dst, pkg)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch)
	if p.Arch == "arm" {
		cmd.Env = append(cmd.Env, "GOARM=7")
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s for %s: %w\n%s", pkg, p, err, stderr.String())
	}
	return nil
}
