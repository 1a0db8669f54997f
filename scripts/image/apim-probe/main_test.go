package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestProbe(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	// 503 twice (no configuration yet), then 200: the helm test must wait.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status-0123456789abcdef" {
			http.NotFound(w, r)
			return
		}
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{name: "gives up", args: []string{"--attempts=2", "--interval=1ms", srv.URL + "/status-0123456789abcdef"}, code: 1, contains: "status 503, want 200"},
		{name: "waits for ready", args: []string{"--attempts=5", "--interval=1ms", srv.URL + "/status-0123456789abcdef"}, code: 0},
		{name: "wrong path", args: []string{"--attempts=1", srv.URL + "/nowhere"}, code: 1, contains: "status 404"},
		{name: "expected status", args: []string{"--status=404", srv.URL + "/nowhere"}, code: 0},
		{name: "no URL", args: nil, code: 2, contains: "URL is required"},
		{name: "not http", args: []string{"ftp://x/"}, code: 2, contains: "not an http(s) URL"},
		{name: "refused", args: []string{"--attempts=2", "--interval=1ms", "http://127.0.0.1:1/"}, code: 1, contains: "refused"},
	}
	for _, tt := range tests { // sequential: the first two share the call counter
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), tt.args, &out, &errOut)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.code, errOut.String())
			}
			if tt.contains != "" && !strings.Contains(errOut.String(), tt.contains) {
				t.Errorf("stderr %q does not contain %q", errOut.String(), tt.contains)
			}
		})
	}
}
