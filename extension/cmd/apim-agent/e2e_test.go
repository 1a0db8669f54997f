package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/configsync"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/internal/configfake"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/server"
	"github.com/seed393f6fe3/apim-arc-gateway/internal/logcapture"
)

// End-to-end: the real agent (run, in-process) against the TLS fake
// configuration endpoint, and the real gateway (gateway/server, in-process)
// serving what the agent publishes into the shared config folder, as the
// two containers of a pod do.

// Signatures of the test tokens: no log line, metric or probe answer may
// contain them.
const (
	sig1 = "Zmlyc3QtdG9rZW4tc2lnbmF0dXJlLWUyZQ=="
	sig2 = "c2Vjb25kLXRva2VuLXNpZ25hdHVyZS1lMmU="
)

func gatewayKey(sig string, expiry time.Time) string {
	return "GatewayKey gw1&" + expiry.UTC().Format("200601021504") + "&" + sig
}

// kubeMount writes files into dir the way the kubelet projects a ConfigMap
// or Secret: a timestamped folder, a ..data symlink to it swapped with one
// rename, and one symlink per key through ..data.
type kubeMount struct {
	t   *testing.T
	dir string
	gen int
}

func newKubeMount(t *testing.T, files map[string]string) *kubeMount {
	m := &kubeMount{t: t, dir: t.TempDir()}
	m.update(files)
	return m
}

func (m *kubeMount) update(files map[string]string) {
	t := m.t
	t.Helper()
	m.gen++
	ts := fmt.Sprintf("..2026_11_30_00_00_%02d.%d", m.gen, m.gen)
	if err := os.Mkdir(filepath.Join(m.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range files {
		if err := os.WriteFile(filepath.Join(m.dir, ts, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old, _ := os.Readlink(filepath.Join(m.dir, "..data"))
	tmp := filepath.Join(m.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(m.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(m.dir)
	for _, e := range entries {
		if n := e.Name(); !strings.HasPrefix(n, ".") {
			if _, keep := files[n]; !keep {
				_ = os.Remove(filepath.Join(m.dir, n))
			}
		}
	}
	for k := range files {
		link := filepath.Join(m.dir, k)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", k), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	if old != "" {
		_ = os.RemoveAll(filepath.Join(m.dir, old))
	}
}

// snapshotFile reads testdata/name with the backend URL filled in.
func snapshotFile(t *testing.T, name, backend string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.ReplaceAll(string(b), "{{backend}}", backend))
}

// runningGateway is an in-process apim-gateway serving configDir.
type runningGateway struct {
	http, telemetry string
	stop            func()
}

func startGateway(t *testing.T, configDir string) *runningGateway {
	t.Helper()
	opts := server.DefaultOptions()
	opts.ConfigPath = configDir
	opts.HTTPAddr, opts.HTTPSAddr, opts.TelemetryAddr = "127.0.0.1:0", "", "127.0.0.1:0"
	opts.ShutdownDelay, opts.ShutdownTimeout, opts.ReloadInterval = 0, 2*time.Second, 200*time.Millisecond
	g, err := server.New(opts, zerolog.Nop(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	select {
	case <-g.Ready():
	case err := <-done:
		t.Fatalf("gateway exited: %v", err)
	}
	rg := &runningGateway{http: "http://" + g.HTTPAddr().String(), telemetry: "http://" + g.TelemetryAddr().String()}
	var once atomic.Bool
	rg.stop = func() {
		if once.Swap(true) {
			return
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	}
	t.Cleanup(rg.stop)
	return rg
}

// runningAgent is an in-process apim-agent.
type runningAgent struct {
	health string
	stop   func() int
}

func startAgent(t *testing.T, opts options) *runningAgent {
	t.Helper()
	addrc := make(chan net.Addr, 1)
	opts.onHealthListen = func(a net.Addr) { addrc <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, opts) }()
	ra := &runningAgent{}
	select {
	case a := <-addrc:
		ra.health = "http://" + a.String()
	case code := <-done:
		cancel()
		t.Fatalf("agent exited %d:\n%s", code, opts.Stdout)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("agent health server did not start")
	}
	var stopped atomic.Bool
	code := 0
	ra.stop = func() int {
		if stopped.Swap(true) {
			return code
		}
		cancel()
		select {
		case code = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("agent did not shut down within 10s")
		}
		return code
	}
	t.Cleanup(func() { ra.stop() })
	return ra
}

// fastTiming makes every loop of the agent run in milliseconds.
func fastTiming() timing {
	return timing{
		SettingsInterval: 500 * time.Millisecond, SettingsDebounce: 20 * time.Millisecond,
		CredentialCheck: 20 * time.Millisecond, RepeatLog: 400 * time.Millisecond,
		ClientBackoff: configsync.Backoff{Base: 10 * time.Millisecond, Max: 40 * time.Millisecond}, ClientRetries: 1,
		Sync: func(a *configsync.Agent) {
			a.Wait = 2 * time.Second
			a.MinInterval = 20 * time.Millisecond
			a.HeartbeatInterval = 100 * time.Millisecond
			a.LocalInterval = 300 * time.Millisecond
			a.Backoff = configsync.Backoff{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond}
		},
	}
}

func agentOptions(fake *configfake.Server, settingsDir, protectedDir, configDir, gatewayTelemetry string, logs io.Writer) options {
	return options{
		SettingsDir: settingsDir, ProtectedDir: protectedDir, ConfigDir: configDir,
		HealthAddr: "127.0.0.1:0", GatewayTelemetry: gatewayTelemetry,
		LogLevel: zerolog.InfoLevel, Stdout: logs,
		httpClient: configsync.NewHTTPClient(&tls.Config{RootCAs: fake.RootCAs()}),
		timing:     fastTiming(),
	}
}

func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call GETs url and returns the status and body (0 when not connected).
func call(url string) (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func readyz(t *testing.T, base string) (int, map[string]any) {
	t.Helper()
	code, body := call(base + "/readyz")
	var m map[string]any
	_ = json.Unmarshal([]byte(body), &m)
	return code, m
}

func metricValue(metrics, series string) (float64, bool) {
	for line := range strings.Lines(metrics) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v, true
			}
		}
	}
	return 0, false
}

func lastHeartbeat(fake *configfake.Server) (configfake.Heartbeat, bool) {
	hbs := fake.Heartbeats()
	if len(hbs) == 0 {
		return configfake.Heartbeat{}, false
	}
	return hbs[len(hbs)-1], true
}

func newBackend(t *testing.T) *httptest.Server {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend saw %s", r.URL.Path)
	}))
	t.Cleanup(backend.Close)
	return backend
}

// TestEndToEnd walks one pod through its life: first sync, a new API, a
// token rotated through the Secret, a bad snapshot, the endpoint going
// away, and a restart of both containers with the endpoint still down.
func TestEndToEnd(t *testing.T) {
	backend := newBackend(t)
	v1, v2, bad := snapshotFile(t, "snapshot-r1.json", backend.URL), snapshotFile(t, "snapshot-r2.json", backend.URL), snapshotFile(t, "snapshot-bad.json", backend.URL)
	expiry := time.Now().Add(20 * 24 * time.Hour)
	tok1, tok2 := gatewayKey(sig1, expiry), gatewayKey(sig2, expiry.Add(24*time.Hour))

	fake := configfake.Start("gw1")
	defer fake.Close()
	fake.Accept(tok1)
	fake.SetSnapshot(v1, "etag-1")

	configDir := t.TempDir()
	settingsMount := newKubeMount(t, map[string]string{keyURI: fake.URL()})
	protected := newKubeMount(t, map[string]string{keyToken: tok1})
	logs := &logcapture.Buffer{}

	gw := startGateway(t, configDir)
	agent := startAgent(t, agentOptions(fake, settingsMount.dir, protected.dir, configDir, gw.telemetry, logs))

	t.Run("first sync is served by the gateway", func(t *testing.T) {
		eventually(t, "GET /orders/items answered by the backend", 10*time.Second, func() bool {
			code, body := call(gw.http + "/orders/items")
			return code == 200 && body == "backend saw /orders/items"
		})
		if code, detail := readyz(t, agent.health); code != 200 || detail["revision"] != "r1" {
			t.Fatalf("/readyz %d %v", code, detail)
		}
	})

	t.Run("a new snapshot adds an API", func(t *testing.T) {
		fake.SetSnapshot(v2, "etag-2")
		eventually(t, "GET /inventory/items served", 10*time.Second, func() bool {
			code, _ := call(gw.http + "/inventory/items")
			return code == 200
		})
	})

	t.Run("heartbeat carries the revision the gateway loaded", func(t *testing.T) {
		eventually(t, "a heartbeat with revision r2", 10*time.Second, func() bool {
			hb, ok := lastHeartbeat(fake)
			return ok && hb.ConfigurationRevision == "r2" && hb.Status == "Synced"
		})
		hb, _ := lastHeartbeat(fake)
		if hb.GatewayReachable == nil {
			t.Fatal("heartbeat lacks gatewayReachable")
		}
		// The gateway answers /telemetry/status once it implements it
		// (contract 1); the heartbeat must then say it is reachable.
		code, _ := call(gw.telemetry + "/telemetry/status")
		if code == 200 && !*hb.GatewayReachable {
			t.Fatalf("gateway answers /telemetry/status but the heartbeat says unreachable: %+v", hb)
		}
		t.Logf("gateway /telemetry/status answered %d; heartbeat gatewayReachable=%v", code, *hb.GatewayReachable)
		if hb.TokenExpiresAt == nil || !hb.TokenExpiresAt.Equal(expiry.UTC().Truncate(time.Minute)) || hb.CredentialState != "ok" {
			t.Fatalf("heartbeat token fields: %+v", hb)
		}
	})

	t.Run("a token updated in the Secret is used on the next request", func(t *testing.T) {
		fake.Accept(tok1, tok2)
		swapped := time.Now()
		protected.update(map[string]string{keyToken: tok2})
		eventually(t, "a configuration request with the new token", 5*time.Second, func() bool {
			return slices.ContainsFunc(fake.Requests(), func(r configfake.Request) bool { return r.Header.Get("Authorization") == tok2 })
		})
		var first time.Time
		for _, r := range fake.Requests() {
			if r.Header.Get("Authorization") == tok2 {
				first = r.At
				break
			}
		}
		// Not after the long poll (2s) ran out: the agent was woken.
		if lag := first.Sub(swapped); lag > 1500*time.Millisecond {
			t.Fatalf("new token first used %s after the Secret changed", lag)
		}
		fake.Accept(tok2)
		// Heartbeats switch too, and report the new expiry.
		eventually(t, "a heartbeat with the new token's expiry", 5*time.Second, func() bool {
			hb, ok := lastHeartbeat(fake)
			return ok && hb.TokenExpiresAt != nil && hb.TokenExpiresAt.Equal(expiry.Add(24*time.Hour).UTC().Truncate(time.Minute))
		})
	})

	t.Run("a bad snapshot is refused and the old one keeps serving", func(t *testing.T) {
		fake.SetSnapshot(bad, "etag-3")
		eventually(t, "the rejection in /metrics", 10*time.Second, func() bool {
			_, m := call(agent.health + "/metrics")
			v, _ := metricValue(m, "apim_agent_snapshots_rejected_total")
			return v == 1
		})
		if got, _ := os.ReadFile(filepath.Join(configDir, "snapshot.json")); string(got) != string(v2) {
			t.Fatal("snapshot.json is no longer r2")
		}
		if code, _ := call(gw.http + "/inventory/items"); code != 200 {
			t.Fatalf("the gateway stopped serving r2: %d", code)
		}
		eventually(t, "a heartbeat reporting the rejection", 5*time.Second, func() bool {
			hb, ok := lastHeartbeat(fake)
			return ok && hb.Status == "Stale" && strings.Contains(hb.LastError, "rejected") && hb.ConfigurationRevision == "r2"
		})
		eventually(t, "the problems in the log", 5*time.Second, func() bool {
			return strings.Contains(logs.String(), "configuration rejected") && strings.Contains(logs.String(), "bogus")
		})
	})

	t.Run("the endpoint goes away and traffic keeps flowing", func(t *testing.T) {
		fake.SetSnapshot(v2, "etag-2")
		eventually(t, "back in sync", 10*time.Second, func() bool {
			hb, ok := lastHeartbeat(fake)
			return ok && hb.Status == "Synced"
		})
		_, m := call(agent.health + "/metrics")
		failuresBefore, _ := metricValue(m, `apim_agent_config_sync_total{result="failure"}`)
		fake.Close()
		eventually(t, "sync failures counted", 10*time.Second, func() bool {
			_, m := call(agent.health + "/metrics")
			v, _ := metricValue(m, `apim_agent_config_sync_total{result="failure"}`)
			return v >= failuresBefore+2
		})
		for _, path := range []string{"/orders/items", "/inventory/items"} {
			if code, body := call(gw.http + path); code != 200 {
				t.Fatalf("GET %s during the outage: %d %s", path, code, body)
			}
		}
		if code, detail := readyz(t, agent.health); code != 200 || detail["status"] != "Stale" {
			t.Fatalf("/readyz during the outage: %d %v", code, detail)
		}
	})

	t.Run("both containers restart with the endpoint still down", func(t *testing.T) {
		if code := agent.stop(); code != 0 {
			t.Fatalf("agent exited %d", code)
		}
		gw.stop()
		gw2 := startGateway(t, configDir)
		for _, path := range []string{"/orders/items", "/inventory/items"} {
			if code, body := call(gw2.http + path); code != 200 {
				t.Fatalf("GET %s from the backup: %d %s", path, code, body)
			}
		}
		agent2 := startAgent(t, agentOptions(fake, settingsMount.dir, protected.dir, configDir, gw2.telemetry, logs))
		code, detail := readyz(t, agent2.health)
		if code != 200 || detail["revision"] != "r2" || detail["status"] != "Stale" {
			t.Fatalf("/readyz of the restarted agent: %d %v", code, detail)
		}
		if code := agent2.stop(); code != 0 {
			t.Fatalf("agent exited %d", code)
		}
	})

	if p := fake.Problems(); len(p) > 0 {
		t.Errorf("requests broke the configuration API contract: %v", p)
	}
	assertNoSecrets(t, logs.String(), sig1, sig2)
}

// assertNoSecrets fails when any secret appears in out.
func assertNoSecrets(t *testing.T, out string, secrets ...string) {
	t.Helper()
	if !strings.Contains(out, `"msg":"starting"`) {
		t.Fatalf("no agent logs captured:\n%s", out)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Fatalf("a secret (%.6s...) appears in the agent's logs", s)
		}
	}
}

// TestTokenExpiry: a token near its expiry is reported (gauge, heartbeat,
// warning); an expired one is reported on /readyz and in the log at a
// bounded rate, while the gateway keeps its configuration and the endpoint
// gets no requests at all.
func TestTokenExpiry(t *testing.T) {
	backend := newBackend(t)
	v1 := snapshotFile(t, "snapshot-r1.json", backend.URL)
	tests := []struct {
		name      string
		expiresIn time.Duration
		state     string
	}{
		{name: "expiring within 7 days", expiresIn: 2 * 24 * time.Hour, state: "expiring"},
		{name: "expired", expiresIn: -2 * time.Hour, state: "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expiry := time.Now().Add(tt.expiresIn)
			tok := gatewayKey(sig1, expiry)
			fake := configfake.Start("gw1")
			defer fake.Close()
			fake.Accept(tok)
			fake.SetSnapshot(v1, "etag-1")
			configDir := t.TempDir()
			// The backup of an earlier run: an expired token must not
			// stop it being served.
			if err := os.WriteFile(filepath.Join(configDir, "snapshot.json"), v1, 0o644); err != nil {
				t.Fatal(err)
			}
			logs := &logcapture.Buffer{}
			opts := agentOptions(fake, newKubeMount(t, map[string]string{keyURI: fake.URL()}).dir,
				newKubeMount(t, map[string]string{keyToken: tok}).dir, configDir, "", logs)
			agent := startAgent(t, opts)
			_, m := call(agent.health + "/metrics")
			secs, ok := metricValue(m, "apim_agent_token_expiry_seconds")
			if !ok || secs > tt.expiresIn.Seconds()+1 || secs < tt.expiresIn.Seconds()-120 {
				t.Fatalf("apim_agent_token_expiry_seconds = %v (present %v), want about %v", secs, ok, tt.expiresIn.Seconds())
			}
			code, detail := readyz(t, agent.health)
			cred, _ := detail["credential"].(map[string]any)
			if code != 200 || cred["state"] != tt.state || cred["detail"] == nil {
				t.Fatalf("/readyz %d %v", code, detail)
			}
			switch tt.state {
			case "expiring":
				eventually(t, "a heartbeat saying expiring", 5*time.Second, func() bool {
					hb, ok := lastHeartbeat(fake)
					return ok && hb.CredentialState == "expiring" && hb.TokenExpiresAt != nil
				})
				eventually(t, "the warning", 5*time.Second, func() bool {
					return strings.Contains(logs.String(), "expires within 7 days")
				})
			case "expired":
				// Run for several repeat intervals (400ms) and check the
				// log is loud but bounded, and nothing was sent.
				time.Sleep(1500 * time.Millisecond)
				if n := len(fake.Requests()) + len(fake.Heartbeats()); n != 0 {
					t.Fatalf("an expired token sent %d requests", n)
				}
				if code := agent.stop(); code != 0 {
					t.Fatalf("agent exited %d", code)
				}
				n := strings.Count(logs.String(), "gateway token expired")
				if n < 2 || n > 8 {
					t.Fatalf("%d expired-token log lines in 1.5s with a 400ms repeat interval:\n%s", n, logs)
				}
			}
			agent.stop()
			assertNoSecrets(t, logs.String(), sig1)
		})
	}
}
