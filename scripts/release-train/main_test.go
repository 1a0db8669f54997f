package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func releaseTrain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// The repository's manifest is releasable once the chart is packaged; a
// version added without its package is caught, naming train and version.
func TestPackageAndCheckRepository(t *testing.T) {
	root := filepath.Join("..", "..")
	charts := t.TempDir()
	repoManifest := filepath.Join(root, "extension-manifest.yaml")

	if code, _, stderr := releaseTrain(t, "check", "--manifest", repoManifest, "--charts", charts); code != 1 ||
		!strings.Contains(stderr, `train "stable": version 0.1.0: no packaged chart apim-gateway-0.1.0.tgz (run release-train package)`) {
		t.Errorf("check before packaging: code %d\n%s", code, stderr)
	}
	if code, stdout, stderr := releaseTrain(t, "package", "--manifest", repoManifest, "--out", charts); code != 0 ||
		!strings.Contains(stdout, "apim-gateway-0.1.0.tgz") {
		t.Fatalf("package: code %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := releaseTrain(t, "check", "--manifest", repoManifest, "--charts", charts, "--base", repoManifest); code != 0 {
		t.Fatalf("check: code %d\n%s%s", code, stdout, stderr)
	}

	// A working copy whose relative paths reach the real chart and
	// schemas: add a preview version, then check and promote.
	data, err := os.ReadFile(repoManifest)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	for _, d := range []string{"charts", "schemas"} {
		abs, err := filepath.Abs(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(abs, filepath.Join(work, d)); err != nil {
			t.Fatal(err)
		}
	}
	copyPath := filepath.Join(work, "extension-manifest.yaml")
	if err := os.WriteFile(copyPath, data, 0o644); err != nil {
		t.Fatal(err)
	}

	if code, _, stderr := releaseTrain(t, "add", "--manifest", copyPath, "--train", "preview", "--version", "0.2.0-preview.1",
		"--app-version", "0.2.0-preview.1", "--min-k8s", "1.28"); code != 0 {
		t.Fatalf("add: code %d\n%s", code, stderr)
	}
	if code, _, stderr := releaseTrain(t, "check", "--manifest", copyPath, "--charts", charts, "--base", repoManifest); code != 1 ||
		!strings.Contains(stderr, `train "preview": version 0.2.0-preview.1: no packaged chart apim-gateway-0.2.0-preview.1.tgz (run release-train package)`) {
		t.Errorf("check after add: code %d\n%s", code, stderr)
	}
	if code, _, stderr := releaseTrain(t, "package", "--manifest", copyPath, "--out", charts, "--version", "0.2.0-preview.1", "--app-version", "0.2.0-preview.1"); code != 0 {
		t.Fatalf("package: code %d\n%s", code, stderr)
	}
	if code, stdout, stderr := releaseTrain(t, "check", "--manifest", copyPath, "--charts", charts, "--base", repoManifest); code != 0 {
		t.Errorf("check after package: code %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := releaseTrain(t, "promote", "--manifest", copyPath, "--from", "preview", "--to", "stable", "--version", "0.2.0-preview.1"); code != 1 ||
		!strings.Contains(stderr, `train "stable": version 0.2.0-preview.1: a prerelease version cannot be on the stable train`) {
		t.Errorf("promote a prerelease: code %d\n%s", code, stderr)
	}
	after, _ := os.ReadFile(copyPath)
	if strings.Count(string(after), "0.2.0-preview.1") != 3 { // version, chartVersion, appVersion on preview only
		t.Errorf("a refused promote changed the manifest:\n%s", after)
	}
}
