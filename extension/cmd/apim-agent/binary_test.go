package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBinarySIGTERM builds apim-agent and checks the process contract: JSON
// logs on stdout, the health listener up, and a clean exit 0 on SIGTERM
// with the last lines flushed.
func TestBinarySIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "apim-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	backend := newBackend(t)
	source := newKubeMount(t, map[string]string{"snapshot.json": string(snapshotFile(t, "snapshot-r1.json", backend.URL))})
	settingsDir := newKubeMount(t, map[string]string{keyURI: "file://" + source.dir}).dir
	configDir := t.TempDir()
	cmd := exec.Command(bin, "--settings-dir", settingsDir, "--protected-dir", t.TempDir(), "--config-dir", configDir,
		"--health-addr", "127.0.0.1:0", "--gateway-telemetry", "")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var health string
	var all []string
	timeout := time.After(20 * time.Second)
	for health == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("agent exited early:\n%s", strings.Join(all, "\n"))
			}
			all = append(all, l)
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("not a JSON log line: %q", l)
			}
			if m["msg"] == "starting" {
				health, _ = m["health"].(string)
			}
		case <-timeout:
			t.Fatal("no starting line")
		}
	}
	eventually(t, "ready", 10*time.Second, func() bool { code, _ := call("http://" + health + "/readyz"); return code == 200 })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() {
		for l := range lines {
			all = append(all, l)
		}
		exited <- cmd.Wait()
	}()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, strings.Join(all, "\n"))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10s of SIGTERM")
	}
	if last := all[len(all)-1]; !strings.Contains(last, `"msg":"stopped"`) {
		t.Fatalf("last line %q, want the stopped line", last)
	}
}
