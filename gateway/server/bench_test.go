package server

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

const benchSnapshot = `{"schemaVersion": "1.0",
 "apis": [{"name": "bench", "properties": {"path": "bench", "serviceUrl": "http://backend.local/svc"}, "policy": "POLICY",
   "operations": [
     {"name": "get-item", "properties": {"method": "GET", "urlTemplate": "/items/{id}"}},
     {"name": "list", "properties": {"method": "GET", "urlTemplate": "/items"}}]}],
 "products": [{"name": "p", "apis": ["bench"]}],
 "subscriptions": [{"name": "s", "properties": {"scope": "/products/p", "primaryKey": "bench-key-000000000001"}}]}`

// inMemoryGateway is a gateway whose backend is a fasthttp server on an
// in-memory listener answering 100 bytes: the gateway's request path is
// measured without kernel networking.
// typicalPolicy is a common policy stack without expressions.
const typicalPolicy = `<policies><inbound><base />` +
	`<set-header name=\"X-Request-Source\" exists-action=\"override\"><value>gateway</value></set-header>` +
	`<set-header name=\"X-Debug\" exists-action=\"delete\" />` +
	`<rewrite-uri template=\"/v2/items/{id}\" />` +
	`<set-backend-service base-url=\"http://backend.local/api\" />` +
	`</inbound><backend><forward-request timeout=\"30\" /></backend>` +
	`<outbound><base /><set-header name=\"X-Powered-By\" exists-action=\"delete\" /></outbound></policies>`

func inMemoryGateway(tb testing.TB) *Gateway {
	return inMemoryGatewayWith(tb, "")
}

func inMemoryGatewayWith(tb testing.TB, policy string) *Gateway {
	tb.Helper()
	ln := fasthttputil.NewInmemoryListener()
	body := bytes.Repeat([]byte("x"), 100)
	be := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.Response.SetBodyRaw(body) }}
	go func() { _ = be.Serve(ln) }()
	tb.Cleanup(func() { _ = be.Shutdown(); _ = ln.Close() })

	dir := tb.TempDir()
	snap := strings.Replace(benchSnapshot, "POLICY", policy, 1)
	if err := os.WriteFile(filepath.Join(dir, "snapshot.json"), []byte(snap), 0o600); err != nil {
		tb.Fatal(err)
	}
	opts := testOptions(dir)
	opts.RequestLogSampling = 0
	opts.BackendDial = func(string) (net.Conn, error) { return ln.Dial() }
	g, err := New(opts, zerolog.Nop(), zerolog.Nop())
	if err != nil {
		tb.Fatal(err)
	}
	if err := g.Reload(); err != nil {
		tb.Fatal(err)
	}
	return g
}

// serveOne runs one request through the gateway's handler and consumes
// the response as the server would.
func serveOne(g *Gateway, ctx *fasthttp.RequestCtx, uri, key string) int {
	ctx.Request.Reset()
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI(uri)
	ctx.Request.Header.SetHost("gw.local")
	if key != "" {
		ctx.Request.Header.Set("Ocp-Apim-Subscription-Key", key)
	}
	ctx.Response.Reset()
	g.handle(ctx)
	_ = ctx.Response.BodyWriteTo(discard{})
	code := ctx.Response.StatusCode()
	ctx.Response.Reset()
	return code
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func newCtx() *fasthttp.RequestCtx {
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 40000}, nil)
	return ctx
}

func benchmarkRequest(b *testing.B, uri, key string, want int) {
	g := inMemoryGateway(b)
	ctx := newCtx()
	if code := serveOne(g, ctx, uri, key); code != want {
		b.Fatalf("status %d, want %d", code, want)
	}
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		serveOne(g, ctx, uri, key)
	}
	cpu.report(b)
}

// cpuClock measures the process's CPU time (user + system) over a
// benchmark loop. On a shared machine wall-clock ns/op includes waiting
// for a core; cpu-ns/op does not.
type cpuClock struct{ start time.Duration }

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock{processCPU()} }

func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(processCPU()-c.start)/float64(b.N), "cpu-ns/op")
}

// A forwarded request with a subscription key check: route, key, rewrite,
// backend round trip over an in-memory connection, response.
func BenchmarkRequestForwarded(b *testing.B) {
	benchmarkRequest(b, "/bench/items/42?x=1", "bench-key-000000000001", 200)
}

// The same request through a typical policy stack: two set-header,
// rewrite-uri, set-backend-service, forward-request with a timeout and an
// outbound set-header.
func BenchmarkRequestForwardedWithPolicies(b *testing.B) {
	g := inMemoryGatewayWith(b, typicalPolicy)
	ctx := newCtx()
	if code := serveOne(g, ctx, "/bench/items/42?x=1", "bench-key-000000000001"); code != 200 {
		b.Fatalf("status %d", code)
	}
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		serveOne(g, ctx, "/bench/items/42?x=1", "bench-key-000000000001")
	}
	cpu.report(b)
}

// issueStack is the stack the policy issue names: subscription key,
// rate-limit-by-key with an expression key, set-header, rewrite-uri,
// set-backend-service.
const issueStack = `<policies><inbound><base />` +
	`<rate-limit-by-key calls=\"1000000000\" renewal-period=\"300\" counter-key=\"@(context.Subscription.Id)\" />` +
	`<set-header name=\"X-Request-Source\" exists-action=\"override\"><value>gateway</value></set-header>` +
	`<rewrite-uri template=\"/v2/items/{id}\" />` +
	`<set-backend-service base-url=\"http://backend.local/api\" />` +
	`</inbound><backend><base /></backend><outbound><base /></outbound></policies>`

func BenchmarkRequestForwardedIssueStack(b *testing.B) {
	g := inMemoryGatewayWith(b, issueStack)
	ctx := newCtx()
	if code := serveOne(g, ctx, "/bench/items/42?x=1", "bench-key-000000000001"); code != 200 {
		b.Fatalf("status %d", code)
	}
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		serveOne(g, ctx, "/bench/items/42?x=1", "bench-key-000000000001")
	}
	cpu.report(b)
}

func BenchmarkRequestMissingKey(b *testing.B) {
	benchmarkRequest(b, "/bench/items/42", "", 401)
}

func BenchmarkRequestNotFound(b *testing.B) {
	benchmarkRequest(b, "/nowhere/at/all", "", 404)
}

func BenchmarkRequestForwardedParallel(b *testing.B) {
	g := inMemoryGateway(b)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU()
	defer cpu.report(b)
	b.RunParallel(func(pb *testing.PB) {
		ctx := newCtx()
		for pb.Next() {
			if code := serveOne(g, ctx, "/bench/items/42", "bench-key-000000000001"); code != 200 {
				b.Errorf("status %d", code)
				return
			}
		}
	})
}
