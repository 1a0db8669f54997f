package fakeconfig

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

const token = "gw1&209912312359&c2lnbmF0dXJl"

func client(t *testing.T, s *Server) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CAPEM()) {
		t.Fatal("CAPEM holds no certificate")
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func do(t *testing.T, c *http.Client, method, url, auth, ifNoneMatch, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestConfigurationProtocol(t *testing.T) {
	s, err := Start("127.0.0.1:0", "gw1", []string{"GatewayKey " + token})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := client(t, s)
	cfgURL := s.URL() + "/gateways/gw1/configuration"
	auth := "GatewayKey " + token

	if resp, _ := do(t, c, "GET", cfgURL, auth, "", ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("before any snapshot: %d, want 503", resp.StatusCode)
	}
	s.SetSnapshot([]byte(`{"revision":"1"}`))

	tests := []struct {
		name, url, auth string
		want            int
	}{
		{"no credential", cfgURL, "", 401},
		{"wrong token", cfgURL, "GatewayKey gw1&209912312359&other", 401},
		{"bearer is not a gateway key", cfgURL, "Bearer " + token, 401},
		{"unknown gateway", s.URL() + "/gateways/gw2/configuration", auth, 404},
		{"good", cfgURL, auth, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if resp, _ := do(t, c, "GET", tt.url, tt.auth, "", ""); resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}

	resp, body := do(t, c, "GET", cfgURL, auth, "", "")
	etag := resp.Header.Get("ETag")
	if body != `{"revision":"1"}` || etag == "" {
		t.Fatalf("got %q with ETag %q", body, etag)
	}
	if resp, _ := do(t, c, "GET", cfgURL, auth, etag, ""); resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match with the current ETag: %d, want 304", resp.StatusCode)
	}

	// A long poll is answered as soon as the snapshot changes.
	go func() {
		time.Sleep(300 * time.Millisecond)
		s.SetSnapshot([]byte(`{"revision":"2"}`))
	}()
	start := time.Now()
	resp, body = do(t, c, "GET", cfgURL+"?wait=30", auth, etag, "")
	if resp.StatusCode != 200 || body != `{"revision":"2"}` || resp.Header.Get("ETag") == etag {
		t.Fatalf("long poll: %d %q ETag %q", resp.StatusCode, body, resp.Header.Get("ETag"))
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("long poll answered after %s, want soon after the change", d)
	}

	// Token rotation: the old token stops working, the new one works.
	s.SetTokens("gw1&209912312359&bmV3")
	if resp, _ := do(t, c, "GET", cfgURL, auth, "", ""); resp.StatusCode != 401 {
		t.Fatalf("old token after SetTokens: %d, want 401", resp.StatusCode)
	}
	if resp, _ := do(t, c, "GET", cfgURL, "GatewayKey gw1&209912312359&bmV3", "", ""); resp.StatusCode != 200 {
		t.Fatalf("new token: %d, want 200", resp.StatusCode)
	}
	if n := s.AuthenticatedWith("gw1&209912312359&bmV3"); n != 1 {
		t.Fatalf("AuthenticatedWith(new) = %d, want 1", n)
	}
}

func TestHeartbeat(t *testing.T) {
	s, err := Start("127.0.0.1:0", "gw1", []string{token})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := client(t, s)
	url := s.URL() + "/gateways/gw1/heartbeat"
	good := `{"instanceId":"pod-1","hostname":"pod-1","version":"1.0","configurationRevision":"","status":"Starting","startedAt":"2026-01-01T00:00:00Z","lastSyncAt":null,"tokenExpiresAt":"2099-12-31T23:59:00Z"}`
	if resp, _ := do(t, c, "POST", url, "GatewayKey "+token, "", good); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("heartbeat: %d, want 204", resp.StatusCode)
	}
	if resp, _ := do(t, c, "POST", url, "GatewayKey "+token, "", `{"instanceId":"x","extra":1}`); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("heartbeat with an unknown field: %d, want 400", resp.StatusCode)
	}
	hbs := s.Heartbeats()
	if len(hbs) != 1 || hbs[0].InstanceID != "pod-1" || hbs[0].Status != "Starting" {
		t.Fatalf("heartbeats = %+v", hbs)
	}
}
