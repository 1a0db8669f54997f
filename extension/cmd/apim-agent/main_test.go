package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/configsync"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/credentials"
	"github.com/seed393f6fe3/apim-arc-gateway/internal/logcapture"
)

// testSig is the secret part of the test token; it must never be printed.
const testSig = "dG9wLXNlY3JldC1zaWduYXR1cmUtb2YtdGhlLWFnZW50"

func TestMain(m *testing.M) {
	setupLogging()
	os.Exit(m.Run())
}

func testToken(expiry time.Time) string {
	return "GatewayKey gw1&" + expiry.UTC().Format(credentials.ExpiryLayout) + "&" + testSig
}

func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for k, v := range files {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCheckSettings(t *testing.T) {
	tok := testToken(time.Now().Add(30 * 24 * time.Hour))
	uri := "https://contoso.configuration.azure-api.net"
	tests := []struct {
		name      string
		plain     map[string]string
		protected map[string]string
		code      int
		want      []string
	}{
		{
			name:      "valid",
			plain:     map[string]string{keyURI: uri},
			protected: map[string]string{keyToken: tok},
			want:      []string{"settings valid"},
		},
		{
			name:      "missing uri",
			protected: map[string]string{keyToken: tok},
			code:      1,
			want:      []string{"error: " + keyURI},
		},
		{
			name:  "token as plain setting",
			plain: map[string]string{keyURI: uri, keyToken: tok},
			code:  1,
			want:  []string{"error: " + keyToken, "protected"},
		},
		{
			name:      "unknown key warns",
			plain:     map[string]string{keyURI: uri, "gateway.notAKey": "x"},
			protected: map[string]string{keyToken: tok},
			want:      []string{"warning: gateway.notAKey", "settings valid"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"--settings-dir", writeDir(t, tt.plain), "--protected-dir", writeDir(t, tt.protected)}
			var stdout, stderr bytes.Buffer
			code := checkSettings(args, &stdout, &stderr)
			out := stdout.String() + stderr.String()
			if code != tt.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tt.code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, testSig) {
				t.Errorf("output contains the token:\n%s", out)
			}
		})
	}
}

func TestRunSyncsAndBecomesReady(t *testing.T) {
	snapshot, err := os.ReadFile("../../../examples/demo/snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		down   bool // the endpoint answers 503: readiness must come from the backup
		backup bool
	}{
		{name: "endpoint serves a snapshot"},
		{name: "endpoint down, backup present", down: true, backup: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := testToken(time.Now().Add(30 * 24 * time.Hour))
			const etag = `"rev-1"`
			ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != tok {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				switch {
				case r.Method == http.MethodPost && r.URL.Path == "/gateways/gw1/heartbeat":
					w.WriteHeader(http.StatusNoContent)
				case r.Method == http.MethodGet && r.URL.Path == "/gateways/gw1/configuration":
					if tt.down {
						w.WriteHeader(http.StatusServiceUnavailable)
						return
					}
					if r.Header.Get("If-None-Match") == etag {
						w.WriteHeader(http.StatusNotModified)
						return
					}
					w.Header().Set("ETag", etag)
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write(snapshot)
				default:
					w.WriteHeader(http.StatusNotFound)
				}
			}))
			defer ts.Close()
			roots := x509.NewCertPool()
			roots.AddCert(ts.Certificate())

			configDir := t.TempDir()
			if tt.backup {
				if err := os.WriteFile(filepath.Join(configDir, "snapshot.json"), snapshot, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			logs := &logcapture.Buffer{}
			addrc := make(chan net.Addr, 1)
			opts := options{
				SettingsDir:    writeDir(t, map[string]string{keyURI: ts.URL}),
				ProtectedDir:   writeDir(t, map[string]string{keyToken: tok}),
				ConfigDir:      configDir,
				HealthAddr:     "127.0.0.1:0",
				LogLevel:       zerolog.DebugLevel,
				Stdout:         logs,
				httpClient:     configsync.NewHTTPClient(&tls.Config{RootCAs: roots}),
				onHealthListen: func(a net.Addr) { addrc <- a },
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan int, 1)
			go func() { done <- run(ctx, opts) }()

			var base string
			select {
			case a := <-addrc:
				base = "http://" + a.String()
			case code := <-done:
				t.Fatalf("run exited %d:\n%s", code, logs)
			case <-time.After(10 * time.Second):
				t.Fatal("health server did not start")
			}
			if code := get(t, base+"/healthz"); code != http.StatusOK {
				t.Fatalf("/healthz %d", code)
			}
			deadline := time.Now().Add(10 * time.Second)
			for get(t, base+"/readyz") != http.StatusOK {
				if time.Now().After(deadline) {
					t.Fatalf("/readyz never 200:\n%s", logs)
				}
				time.Sleep(50 * time.Millisecond)
			}
			got, err := os.ReadFile(filepath.Join(configDir, "snapshot.json"))
			if err != nil || !bytes.Equal(got, snapshot) {
				t.Fatalf("snapshot.json not published (err %v)", err)
			}
			metrics := body(t, base+"/metrics")
			for _, w := range []string{"apim_agent_config_sync_total{result=", "apim_agent_token_expiry_seconds ", "apim_agent_ready 1"} {
				if !strings.Contains(metrics, w) {
					t.Errorf("metrics lack %q:\n%s", w, metrics)
				}
			}
			if !tt.down && !strings.Contains(metrics, "apim_agent_last_sync_age_seconds ") {
				t.Errorf("metrics lack the last sync age:\n%s", metrics)
			}

			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Fatalf("run exited %d:\n%s", code, logs)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("run did not shut down within 5s")
			}
			out := logs.String()
			if !strings.Contains(out, `"msg":"starting"`) {
				t.Errorf("no JSON logs:\n%s", out)
			}
			if strings.Contains(out, testSig) || strings.Contains(metrics, testSig) {
				t.Fatalf("the token leaked into the logs or metrics:\n%s", out)
			}
		})
	}
}

func TestRunRefusesToStart(t *testing.T) {
	tests := []struct {
		name      string
		plain     map[string]string
		protected map[string]string
		want      string
	}{
		{name: "invalid settings", plain: map[string]string{}, want: keyURI},
		{
			name:      "azure ad app without gateway name",
			plain:     map[string]string{keyURI: "https://example.net", keyAuthType: "AzureAdApp", "gateway.auth.azureAd.tenant.id": "t", "gateway.auth.azureAd.app.id": "a"},
			protected: map[string]string{"gateway.auth.azureAd.app.secret": "s3cr3t-value"},
			want:      keyName,
		},
		{
			name:      "azure ad app with a bad authority",
			plain:     map[string]string{keyURI: "https://example.net", keyAuthType: "AzureAdApp", keyName: "gw1", "gateway.auth.azureAd.tenant.id": "t", "gateway.auth.azureAd.app.id": "a", "gateway.auth.azureAd.authority": "nowhere"},
			protected: map[string]string{"gateway.auth.azureAd.app.secret": "s3cr3t-value"},
			want:      "gateway.auth.azureAd.authority",
		},
		{
			name:  "local source on a remote host",
			plain: map[string]string{keyURI: "file://fileserver/share"},
			want:  keyURI,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logcapture.Buffer{}
			opts := defaultOptions()
			opts.SettingsDir, opts.ProtectedDir, opts.ConfigDir = writeDir(t, tt.plain), writeDir(t, tt.protected), t.TempDir()
			opts.HealthAddr, opts.Stdout = "127.0.0.1:0", logs
			if code := run(context.Background(), opts); code != 2 {
				t.Fatalf("exit %d, want 2:\n%s", code, logs)
			}
			if out := logs.String(); !strings.Contains(out, tt.want) || strings.Contains(out, "s3cr3t-value") {
				t.Fatalf("logs lack %q or leak the secret:\n%s", tt.want, out)
			}
		})
	}
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func body(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return b.String()
}
