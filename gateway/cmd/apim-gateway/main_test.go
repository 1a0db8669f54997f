package main

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildBinary compiles apim-gateway once for the tests that run it as
// users do: as a process, with flags and signals.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "apim-gateway")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestValidateCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		stdout   []string
		stderr   []string
	}{
		{name: "demo snapshot", args: []string{"validate", "--config", "../../../examples/demo"}, wantCode: 0,
			stdout: []string{"valid (3 APIs, 8 operations, 1 products, 1 subscriptions)"}},
		{name: "valid YAML", args: []string{"validate", "--config", "../../../schemas/testdata/valid/hand-written.yaml"}, wantCode: 0,
			stdout: []string{"valid"}},
		{name: "problems listed with paths", args: []string{"validate", "--config", "testdata/two-problems.json"}, wantCode: 1,
			stderr: []string{"2 problem(s)", "$.apis[1].properties.path: duplicate API path", "$.subscriptions[0].properties.scope: names product \"gold\""}},
		{name: "skipped policies reported with their location", args: []string{"validate", "testdata/with-policy.json"}, wantCode: 0,
			stdout: []string{"warning: api echo (line 4, column 5): <xsl-transform>: skipped", "warning: global (line 1, column 20): <redirect-content-urls>: skipped", "valid (1 APIs"}},
		{name: "strict policies", args: []string{"validate", "--strict-policies", "--config", "testdata/with-policy.json"}, wantCode: 1,
			stderr: []string{"2 policy problem(s)", "<xsl-transform>: not supported"}},
		{name: "policy errors listed with locations", args: []string{"validate", "--config", "testdata/bad-policy.json"}, wantCode: 1,
			stderr: []string{"2 policy problem(s)", "api echo (line 3, column 5): <rewrite-uri>: is not allowed in <outbound>", "operation echo/get (line 1, column"}},
		{name: "missing file", args: []string{"validate", "--config", "testdata/nope.json"}, wantCode: 1, stderr: []string{"nope.json"}},
		{name: "no config", args: []string{"validate"}, wantCode: 2, stderr: []string{"--config is required"}},
		{name: "bad flag", args: []string{"--no-such-flag"}, wantCode: 2, stderr: []string{"no-such-flag"}},
		{name: "bad log level", args: []string{"--log-level", "loud"}, wantCode: 2, stderr: []string{"log level \"loud\""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, stdout.String(), stderr.String())
			}
			for _, s := range tc.stdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout %q lacks %q", stdout.String(), s)
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr %q lacks %q", stderr.String(), s)
				}
			}
		})
	}
}

// Bad telemetry settings stop the gateway before it listens, with an
// error naming the flag. Not parallel: serve sets zerolog's globals.
func TestServeRejectsBadTelemetryFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--request-log-buffer", "0"}, "--request-log-buffer"},
		{[]string{"--request-log-buffer", "99999999"}, "--request-log-buffer"},
		{[]string{"--metrics-max-series", "0"}, "--metrics-max-series"},
	} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"--config", t.TempDir(), "--http-addr", "127.0.0.1:0", "--https-addr", "", "--telemetry-addr", ""}, tc.args...)
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2", tc.args, code)
		}
		if !strings.Contains(stdout.String()+stderr.String(), tc.want) {
			t.Errorf("%v: output does not name %s:\n%s%s", tc.args, tc.want, stdout.String(), stderr.String())
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The process as Kubernetes runs it: healthy once configured; on SIGTERM
// health turns 503 while traffic is still served, then it exits 0.
func TestProcessLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	httpAddr, telAddr := freeAddr(t), freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--config", "../../../examples/demo", "--http-addr", httpAddr, "--https-addr", "",
		"--telemetry-addr", telAddr, "--shutdown-delay", "1s", "--shutdown-timeout", "5s")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	status := func() int {
		resp, err := http.Get("http://" + httpAddr + "/status-0123456789abcdef")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(10 * time.Second)
	for status() != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("never healthy; logs:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get("http://" + httpAddr + "/nowhere")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}

	// The agent's view: the 404 is in the request log ring, and the status
	// names this build.
	for path, want := range map[string]string{
		"/telemetry/logs":   `"ResponseCode":404`,
		"/telemetry/status": `"version":"dev"`,
		"/metrics":          `apim_gateway_requests_total{api_id="",operation_id=""`,
	} {
		resp, err := http.Get("http://" + telAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(body.String(), want) {
			t.Errorf("%s: %d %s, want %s", path, resp.StatusCode, body.String(), want)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sawDraining := false
	for range 50 {
		if status() == 503 {
			sawDraining = true
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !sawDraining {
		t.Error("health did not turn 503 after SIGTERM")
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, logs.String())
		}
	case <-time.After(8 * time.Second):
		t.Fatalf("did not exit within the shutdown delay and timeout\n%s", logs.String())
	}
	out := logs.String()
	for _, want := range []string{`"msg":"configuration loaded"`, `"msg":"draining"`, `"msg":"stopped"`, `"component":"request"`, `"ResponseCode":404`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "{") || !strings.Contains(line, `"time":"`) || !strings.Contains(line, `"level":"`) {
			t.Errorf("not a JSON log line with time and level: %s", line)
		}
	}
	if strings.Contains(out, "demo-primary-key") {
		t.Error("a subscription key reached the logs")
	}
	_ = os.Remove(bin)
}
