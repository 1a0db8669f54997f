package manifest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
)

// PackageOptions overrides what Chart.yaml says, as `helm package
// --version --app-version` does (used for dev-train builds).
type PackageOptions struct {
	Version    string
	AppVersion string
}

// Package packages a chart folder into outDir as <name>-<version>.tgz, the
// same archive `helm package` writes, and returns its path.
func Package(chartDir, outDir string, o PackageOptions) (string, error) {
	c, err := loader.LoadDir(chartDir)
	if err != nil {
		return "", fmt.Errorf("load chart %s: %w", chartDir, err)
	}
	if o.Version != "" {
		c.Metadata.Version = o.Version
	}
	if o.AppVersion != "" {
		c.Metadata.AppVersion = o.AppVersion
	}
	if err := c.Validate(); err != nil {
		return "", fmt.Errorf("chart %s: %w", chartDir, err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("charts folder: %w", err)
	}
	p, err := chartutil.Save(c, outDir)
	if err != nil {
		return "", fmt.Errorf("package chart %s: %w", chartDir, err)
	}
	return p, nil
}

// ExtractAtRef writes the chart folder as it was at a git ref (a release
// tag, for example) into a new folder under tmpDir and returns that folder.
// This is how versions released earlier are packaged again.
func ExtractAtRef(ctx context.Context, repoDir, ref, chartPath, tmpDir string) (string, error) {
	chartPath = path.Clean(filepath.ToSlash(chartPath))
	cmd := exec.CommandContext(ctx, "git", "-C", repoDir, "archive", "--format=tar", ref, "--", chartPath)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git archive %s %s: %w: %s", ref, chartPath, err, strings.TrimSpace(stderr.String()))
	}
	dest, err := os.MkdirTemp(tmpDir, "chart-")
	if err != nil {
		return "", err
	}
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("git archive %s: %w", ref, err)
		}
		name := path.Clean(h.Name)
		rel, ok := strings.CutPrefix(name, chartPath+"/")
		if !ok || strings.HasPrefix(rel, "../") {
			continue
		}
		target := filepath.Join(dest, filepath.FromSlash(rel))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return "", err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return "", err
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return "", fmt.Errorf("git archive %s: %s: %w", ref, name, err)
			}
			if err := os.WriteFile(target, data, 0o644); err != nil {
				return "", err
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dest, "Chart.yaml")); err != nil {
		return "", fmt.Errorf("git ref %s has no chart at %s", ref, chartPath)
	}
	return dest, nil
}
