package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestContainerdImport imports the archives into a private containerd (its
// own root, state and socket under the test's temporary folder) the way the
// e2e cluster does, and runs apim-probe from the imported image. It needs root, containerd, ctr and runc; without them it is
// skipped with a message.
func TestContainerdImport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containerd; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("containerd needs root")
	}
	for _, bin := range []string{"containerd", "ctr", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not on PATH (Debian: containerd, runc)", bin)
		}
	}
	host := platform{OS: "linux", Arch: runtime.GOARCH}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	probe := filepath.Join(dir, "apim-probe")
	if err := compile(context.Background(), "go", root, "./scripts/image/apim-probe", probe, host, "test"); err != nil {
		t.Fatal(err)
	}
	probeData, err := os.ReadFile(probe)
	if err != nil {
		t.Fatal(err)
	}
	imgs := map[platform]v1.Image{}
	for _, p := range testPlatforms {
		files := fakeFiles(p)
		if p == host {
			files[3].data = probeData // a runnable apim-probe for this machine
		}
		img, err := assemble(p, files, meta{Tag: testTag, Version: "1.2.3"})
		if err != nil {
			t.Fatal(err)
		}
		imgs[p] = img
	}
	out, err := writeOutputs(filepath.Join(dir, "out"), "apim-arc-gateway", imgs, meta{Tag: testTag, Version: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}

	sock := filepath.Join(dir, "containerd.sock")
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("version = 2\nroot = %q\nstate = %q\n[grpc]\n  address = %q\n", filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock)), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, _ := os.Create(filepath.Join(dir, "containerd.log"))
	daemon := exec.Command("containerd", "--config", cfg)
	daemon.Stdout, daemon.Stderr = logFile, logFile
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = daemon.Process.Kill()
		_ = daemon.Wait()
		logFile.Close()
	})
	ctr := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		b, err := exec.CommandContext(ctx, "ctr", append([]string{"--address", sock}, args...)...).CombinedOutput()
		return string(b), err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := ctr("version"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Fatalf("containerd did not start:\n%s", log)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The docker-archive of this machine's platform, as the e2e cluster imports it.
	if o, err := ctr("-n", "docker", "images", "import", out.Docker[host]); err != nil {
		t.Fatalf("import docker-archive: %v\n%s", err, o)
	}
	if o, _ := ctr("-n", "docker", "images", "ls"); !strings.Contains(o, testTag) || !strings.Contains(o, host.String()) {
		t.Errorf("imported images:\n%s", o)
	}
	// The OCI layout holds both platforms.
	if o, err := ctr("-n", "oci", "images", "import", "--all-platforms", out.OCI); err != nil {
		t.Fatalf("import OCI layout: %v\n%s", err, o)
	}
	if o, _ := ctr("-n", "oci", "images", "ls"); !strings.Contains(o, testTag) || !strings.Contains(o, "linux/amd64,linux/arm64") {
		t.Errorf("imported images:\n%s", o)
	}
	// The imported image runs under runc: apim-probe starts and reports the
	// refused connection.
	o, err := ctr("-n", "docker", "run", "--rm", testTag, "probe-run", "/usr/local/bin/apim-probe", "--attempts=1", "http://127.0.0.1:1/")
	if err == nil || !strings.Contains(o, "connection refused") {
		t.Errorf("run: %v\n%s", err, o)
	}
}
