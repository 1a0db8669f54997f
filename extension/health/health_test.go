package health

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	ready := false
	s := &Server{
		Ready: func() (bool, any) { return ready, map[string]string{"credential": "ok"} },
		Metrics: func(w io.Writer) {
			WriteMetric(w, "x_total", "counter", "help", Sample{Labels: []string{"result", `a"b`}, Value: 2})
		},
	}
	h := s.Handler()
	tests := []struct {
		name, path string
		ready      bool
		code       int
		body       string
	}{
		{"healthz", "/healthz", false, 200, `"ok"`},
		{"not ready", "/readyz", false, 503, `"credential":"ok"`},
		{"ready", "/readyz", true, 200, `"credential":"ok"`},
		{"metrics", "/metrics", false, 200, "x_total{result=\"a\\\"b\"} 2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready = tt.ready
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.body) {
				t.Fatalf("%s: %d %q, want %d containing %q", tt.path, rec.Code, rec.Body, tt.code, tt.body)
			}
		})
	}
}

func TestServeShutdown(t *testing.T) {
	s := &Server{}
	addr, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	resp, err := http.Get("http://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}
