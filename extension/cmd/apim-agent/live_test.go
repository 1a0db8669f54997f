package main

import (
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/configsync"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/internal/configfake"
	"github.com/seed393f6fe3/apim-arc-gateway/internal/logcapture"
)

func closedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}

// TestLiveSettings changes the mounted settings under a running agent:
// live keys apply, others are reported as needing a restart, and an
// invalid set is refused with the previous one kept.
func TestLiveSettings(t *testing.T) {
	backend := newBackend(t)
	expiry := time.Now().Add(20 * 24 * time.Hour)
	tok := gatewayKey(sig1, expiry)
	const sig3 = "dGhpcmQtc2lnbmF0dXJlLW5ldmVyLWxvZ2dlZA=="
	fake := configfake.Start("gw1")
	defer fake.Close()
	fake.SetSnapshot(snapshotFile(t, "snapshot-r1.json", backend.URL), "etag-1")
	fake.Accept(tok)

	plain := map[string]string{keyURI: fake.URL()}
	settingsMount := newKubeMount(t, plain)
	protected := newKubeMount(t, map[string]string{keyToken: tok})
	logs := &logcapture.Buffer{}
	// The gateway is not running: each heartbeat logs a debug line about it.
	opts := agentOptions(fake, settingsMount.dir, protected.dir, t.TempDir(), closedURL(t), logs)
	tune := opts.timing.Sync
	opts.timing.Sync = func(a *configsync.Agent) {
		tune(a)
		a.Wait = -1 // poll every MinInterval: requests show which token is in use
	}
	agent := startAgent(t, opts)
	eventually(t, "ready", 10*time.Second, func() bool { code, _ := readyz(t, agent.health); return code == 200 })

	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range plain {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	metric := func(series string) float64 {
		_, m := call(agent.health + "/metrics")
		v, _ := metricValue(m, series)
		return v
	}
	const debugLine = "gateway status not available"

	t.Run("log level applies live", func(t *testing.T) {
		time.Sleep(300 * time.Millisecond)
		if strings.Contains(logs.String(), debugLine) {
			t.Fatal("debug lines at level info")
		}
		settingsMount.update(with(map[string]string{keyLogLevel: "debug"}))
		eventually(t, "debug lines", 5*time.Second, func() bool { return strings.Contains(logs.String(), debugLine) })
		settingsMount.update(plain)
		eventually(t, "back to info", 5*time.Second, func() bool { return strings.Count(logs.String(), `"msg":"log level changed"`) >= 2 })
		time.Sleep(200 * time.Millisecond)
		n := strings.Count(logs.String(), debugLine)
		time.Sleep(400 * time.Millisecond)
		if m := strings.Count(logs.String(), debugLine); m != n {
			t.Fatalf("debug lines still written at info (%d -> %d)", n, m)
		}
	})

	t.Run("a change that needs a restart is reported", func(t *testing.T) {
		const key = "gateway.configuration.backup.enabled"
		settingsMount.update(with(map[string]string{key: "true"}))
		eventually(t, "readyz detail", 5*time.Second, func() bool {
			_, d := readyz(t, agent.health)
			return d["restartRequired"] == "restart required for: "+key
		})
		if v := metric(`apim_agent_settings_restart_required{key="` + key + `"}`); v != 1 {
			t.Fatalf("restart-required gauge = %v", v)
		}
		eventually(t, "the warning", 5*time.Second, func() bool { return strings.Contains(logs.String(), "restart required for: "+key) })
		settingsMount.update(plain)
		eventually(t, "no restart required once undone", 5*time.Second, func() bool {
			_, d := readyz(t, agent.health)
			return d["restartRequired"] == nil && metric("apim_agent_settings_restart_required_keys") == 0
		})
	})

	t.Run("a new unknown key is warned about", func(t *testing.T) {
		settingsMount.update(with(map[string]string{"telemetry.logs.levle": "debug"}))
		eventually(t, "the warning", 5*time.Second, func() bool {
			return strings.Contains(logs.String(), `"key":"telemetry.logs.levle"`) && strings.Contains(logs.String(), "unknown setting")
		})
		settingsMount.update(plain)
	})

	// Each invalid set is refused naming the key; the token in use stays.
	invalid := []struct {
		name      string
		plain     map[string]string
		protected map[string]string
		key       string
	}{
		{name: "token as a plain setting", plain: with(map[string]string{keyToken: gatewayKey(sig3, expiry)}),
			protected: map[string]string{keyToken: tok}, key: keyToken},
		{name: "malformed token", plain: plain, protected: map[string]string{keyToken: "GatewayKey gw1&2026&" + sig3}, key: keyToken},
		{name: "token for another gateway", plain: plain, protected: map[string]string{keyToken: "GatewayKey other&" + expiry.UTC().Format("200601021504") + "&" + sig3}, key: keyToken},
		{name: "wrong type", plain: with(map[string]string{keyLogLevel: "loud"}), protected: map[string]string{keyToken: tok}, key: keyLogLevel},
	}
	for i, tt := range invalid {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			settingsMount.update(tt.plain)
			protected.update(tt.protected)
			eventually(t, "the refusal", 5*time.Second, func() bool {
				return metric("apim_agent_settings_reload_errors_total") >= float64(i+1)
			})
			_, d := readyz(t, agent.health)
			if r, _ := d["settingsRejected"].(string); !strings.Contains(r, tt.key) {
				t.Fatalf("readyz settingsRejected = %q, want it to name %s", r, tt.key)
			}
			before := len(fake.Requests())
			eventually(t, "more requests", 5*time.Second, func() bool { return len(fake.Requests()) > before+1 })
			for _, r := range fake.Requests()[before:] {
				if r.Header.Get("Authorization") != tok {
					t.Fatal("a refused settings set changed the token in use")
				}
			}
			settingsMount.update(plain)
			protected.update(map[string]string{keyToken: tok})
			eventually(t, "refusal cleared", 5*time.Second, func() bool {
				_, d := readyz(t, agent.health)
				return d["settingsRejected"] == nil
			})
		})
	}
	if code := agent.stop(); code != 0 {
		t.Fatalf("agent exited %d", code)
	}
	assertNoSecrets(t, logs.String(), sig1, sig3)
}

// TestRunLocalSource: gateway.configuration.uri file:///path needs no
// token, publishes the mounted snapshot, and sends no heartbeats.
func TestRunLocalSource(t *testing.T) {
	backend := newBackend(t)
	source := newKubeMount(t, map[string]string{"snapshot.json": string(snapshotFile(t, "snapshot-r1.json", backend.URL))})
	configDir := t.TempDir()
	logs := &logcapture.Buffer{}
	opts := defaultOptions()
	opts.SettingsDir = newKubeMount(t, map[string]string{keyURI: "file://" + source.dir}).dir
	opts.ProtectedDir, opts.ConfigDir, opts.HealthAddr, opts.Stdout = t.TempDir(), configDir, "127.0.0.1:0", logs
	opts.timing = fastTiming()
	agent := startAgent(t, opts)
	gw := startGateway(t, configDir)
	eventually(t, "r1 served", 10*time.Second, func() bool { code, _ := call(gw.http + "/orders/items"); return code == 200 })
	source.update(map[string]string{"snapshot.json": string(snapshotFile(t, "snapshot-r2.json", backend.URL))})
	eventually(t, "r2 served after the ConfigMap update", 10*time.Second, func() bool { code, _ := call(gw.http + "/inventory/items"); return code == 200 })
	source.update(map[string]string{"snapshot.json": string(snapshotFile(t, "snapshot-bad.json", backend.URL))})
	eventually(t, "bad file rejected", 10*time.Second, func() bool {
		_, m := call(agent.health + "/metrics")
		v, _ := metricValue(m, "apim_agent_snapshots_rejected_total")
		return v == 1
	})
	if code, _ := call(gw.http + "/inventory/items"); code != 200 {
		t.Fatal("r2 no longer served after a bad file")
	}
	code, d := readyz(t, agent.health)
	if code != 200 || d["revision"] != "r2" || d["credential"] != nil {
		t.Fatalf("/readyz %d %v", code, d)
	}
	_, m := call(agent.health + "/metrics")
	if _, ok := metricValue(m, "apim_agent_token_expiry_seconds"); ok {
		t.Fatal("a local source has no token, yet the expiry gauge is exported")
	}
	if got := agent.stop(); got != 0 {
		t.Fatalf("agent exited %d", got)
	}
	out := logs.String()
	if strings.Contains(out, "heartbeat") || !strings.Contains(out, `"source":"file"`) {
		t.Fatalf("logs:\n%s", out)
	}
	entries, _ := os.ReadDir(configDir)
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"snapshot.json"}) {
		t.Fatalf("config dir holds %v", names)
	}
}
