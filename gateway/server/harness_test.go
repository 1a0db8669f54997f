package server

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/seed393f6fe3/apim-arc-gateway/internal/logcapture"
	"github.com/valyala/fasthttp"
)

// harness runs a Gateway on loopback ports for one test.
type harness struct {
	t      *testing.T
	g      *Gateway
	dir    string
	url    string // http://127.0.0.1:port
	tel    string
	logs   *logcapture.Buffer
	cancel context.CancelFunc
	done   chan error
}

func testOptions(dir string) Options {
	o := DefaultOptions()
	o.ConfigPath = dir
	o.HTTPAddr = "127.0.0.1:0"
	o.HTTPSAddr = ""
	o.TelemetryAddr = "127.0.0.1:0"
	o.ShutdownDelay = 0
	o.ShutdownTimeout = 5 * time.Second
	o.ReloadInterval = time.Hour // tests drive reloads through file events or Reload
	return o
}

// startGateway writes snapshot (if not empty) into a new folder and runs a
// gateway on it. mutate may change options before start.
func startGateway(t *testing.T, snapshot string, mutate func(*Options)) *harness {
	t.Helper()
	dir := t.TempDir()
	if snapshot != "" {
		writeSnapshot(t, dir, snapshot)
	}
	opts := testOptions(dir)
	if mutate != nil {
		mutate(&opts)
	}
	logs := &logcapture.Buffer{}
	log := zerolog.New(logs).Level(zerolog.DebugLevel)
	g, err := New(opts, log, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, g: g, dir: dir, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- g.Run(ctx) }()
	select {
	case <-g.Ready():
	case err := <-h.done:
		t.Fatalf("Run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("gateway did not become ready")
	}
	h.url = "http://" + g.HTTPAddr().String()
	if a := g.TelemetryAddr(); a != nil {
		h.tel = "http://" + a.String()
	}
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.t.Error("gateway did not stop")
	}
}

// writeSnapshot replaces snapshot.json atomically, as the agent does.
func writeSnapshot(t *testing.T, dir, content string) {
	t.Helper()
	tmp := filepath.Join(dir, ".snapshot.tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "snapshot.json")); err != nil {
		t.Fatal(err)
	}
}

// backend is a real fasthttp server on loopback standing in for an API's
// service.
type backend struct {
	addr  string
	srv   *fasthttp.Server
	conns sync.Map
	mu    sync.Mutex
	count int // connections accepted
}

// echoed is what the default backend handler answers.
type echoed struct {
	Method  string            `json:"method"`
	URI     string            `json:"uri"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

func startBackend(t *testing.T, handler fasthttp.RequestHandler) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{addr: ln.Addr().String()}
	if handler == nil {
		handler = echoHandler
	}
	b.srv = &fasthttp.Server{
		Handler:                       handler,
		DisableHeaderNamesNormalizing: true,
		StreamRequestBody:             true,
		ConnState: func(c net.Conn, s fasthttp.ConnState) {
			if s == fasthttp.StateNew {
				b.mu.Lock()
				b.count++
				b.mu.Unlock()
			}
		},
	}
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(func() { _ = b.srv.Shutdown() })
	return b
}

func (b *backend) connections() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count
}

func echoHandler(ctx *fasthttp.RequestCtx) {
	e := echoed{Method: string(ctx.Method()), URI: string(ctx.RequestURI()), Headers: map[string]string{}, Body: string(ctx.PostBody())}
	for k, v := range ctx.Request.Header.All() {
		// Repeated headers are joined, as HTTP allows.
		if prev, ok := e.Headers[string(k)]; ok {
			e.Headers[string(k)] = prev + ", " + string(v)
			continue
		}
		e.Headers[string(k)] = string(v)
	}
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("X-Backend", "yes")
	_ = json.NewEncoder(ctx).Encode(e)
}

// client is a plain net/http client: a real, independent HTTP stack.
func client() *http.Client {
	return &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
	}
}

type response struct {
	status  int
	header  http.Header
	body    string
	statusL string
}

func do(t *testing.T, method, url string, header map[string]string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		// Assigned directly so the name goes out spelled as given.
		req.Header[k] = []string{v}
	}
	resp, err := client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b), statusL: resp.Status}
}

func decodeEcho(t *testing.T, r response) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatalf("backend echo: %v in %q", err, r.body)
	}
	return e
}

// snapshotFor renders a snapshot whose APIs point at backend addr.
func snapshotFor(addr string) string {
	return strings.ReplaceAll(baseSnapshot, "BACKEND", "http://"+addr)
}

const baseSnapshot = `{
  "schemaVersion": "1.0",
  "apis": [
    {"name": "echo", "properties": {"path": "echo", "serviceUrl": "BACKEND/base"},
     "operations": [
       {"name": "any", "properties": {"method": "*", "urlTemplate": "/*"}},
       {"name": "order", "properties": {"method": "GET", "urlTemplate": "/users/{id}/orders/{orderId}"}}
     ]},
    {"name": "renamed", "properties": {"path": "renamed", "serviceUrl": "BACKEND",
       "subscriptionKeyParameterNames": {"header": "X-Api-Key", "query": "key"}},
     "operations": [{"name": "any", "properties": {"method": "GET", "urlTemplate": "/*"}}]},
    {"name": "free", "properties": {"path": "free", "serviceUrl": "BACKEND", "subscriptionRequired": false},
     "operations": [{"name": "any", "properties": {"method": "GET", "urlTemplate": "/*"}}]},
    {"name": "openapi", "properties": {"path": "open", "serviceUrl": "BACKEND"},
     "operations": [{"name": "any", "properties": {"method": "GET", "urlTemplate": "/*"}}]},
    {"name": "other", "properties": {"path": "other", "serviceUrl": "BACKEND"},
     "operations": [{"name": "any", "properties": {"method": "GET", "urlTemplate": "/*"}}]},
    {"name": "nobackend", "properties": {"path": "nobackend", "subscriptionRequired": false},
     "operations": [{"name": "any", "properties": {"method": "GET", "urlTemplate": "/*"}}]}
  ],
  "products": [
    {"name": "starter", "properties": {"subscriptionRequired": true}, "apis": ["echo", "renamed"]},
    {"name": "public", "properties": {"subscriptionRequired": false}, "apis": ["openapi"]}
  ],
  "subscriptions": [
    {"name": "prod-sub", "properties": {"scope": "/products/starter", "primaryKey": "primary-key-0001", "secondaryKey": "secondary-key-0001"}},
    {"name": "api-sub", "properties": {"scope": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.ApiManagement/service/svc/apis/other", "primaryKey": "other-api-key-0001"}},
    {"name": "all-sub", "properties": {"scope": "/apis", "primaryKey": "all-apis-key-0001"}},
    {"name": "suspended-sub", "properties": {"scope": "/apis", "primaryKey": "suspended-key-0001", "state": "suspended"}}
  ]
}`

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s: %q does not contain %q", what, s, sub)
		}
	}
}
