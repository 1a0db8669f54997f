//go:build !race

package server

import (
	"io"
	"testing"

	"github.com/rs/zerolog"
)

// The request path allocates nothing of ours. A forwarded request costs
// exactly the four allocations fasthttp makes for a streamed response body
// (clientStreamBody and its release closures, measured with
// -memprofilerate 1); anything more is ours and fails here.
func TestRequestPathAllocations(t *testing.T) {
	g := inMemoryGateway(t)
	ctx := newCtx()
	tests := []struct {
		name      string
		uri, key  string
		status    int
		maxAllocs float64
	}{
		{name: "forwarded with key", uri: "/bench/items/42?x=1", key: "bench-key-000000000001", status: 200, maxAllocs: 4},
		{name: "missing key", uri: "/bench/items/42", status: 401, maxAllocs: 0},
		{name: "invalid key", uri: "/bench/items/42", key: "nope-nope-nope-nope", status: 401, maxAllocs: 0},
		{name: "unknown API", uri: "/nowhere", status: 404, maxAllocs: 0},
		{name: "unknown operation", uri: "/bench/nothing/here", key: "bench-key-000000000001", status: 404, maxAllocs: 0},
	}
	for _, tc := range tests {
		if code := serveOne(g, ctx, tc.uri, tc.key); code != tc.status {
			t.Fatalf("%s: status %d, want %d", tc.name, code, tc.status)
		}
		allocs := testing.AllocsPerRun(200, func() { serveOne(g, ctx, tc.uri, tc.key) })
		if allocs > tc.maxAllocs {
			t.Errorf("%s: %.1f allocations per request, want at most %.0f", tc.name, allocs, tc.maxAllocs)
		}
	}
}

// A typical policy stack adds no allocation of its own.
func TestPolicyPathAllocations(t *testing.T) {
	g := inMemoryGatewayWith(t, typicalPolicy)
	ctx := newCtx()
	if code := serveOne(g, ctx, "/bench/items/42?x=1", "bench-key-000000000001"); code != 200 {
		t.Fatalf("status %d", code)
	}
	if allocs := testing.AllocsPerRun(200, func() { serveOne(g, ctx, "/bench/items/42?x=1", "bench-key-000000000001") }); allocs > 4 {
		t.Errorf("%.1f allocations per request through policies, want at most the 4 of response streaming", allocs)
	}
}

// Request logging at full sampling stays allocation-free too.
func TestRequestLogAllocations(t *testing.T) {
	g := inMemoryGateway(t)
	g.opts.RequestLogSampling = 1
	g.reqLog = zerolog.New(io.Discard)
	ctx := newCtx()
	for _, tc := range []struct {
		uri, key  string
		maxAllocs float64
	}{
		{"/bench/items/42?subscription-key=bench-key-000000000001&x=1", "", 4},
		{"/bench/items/42", "", 0},
		{"/nowhere", "", 0},
	} {
		serveOne(g, ctx, tc.uri, tc.key)
		if allocs := testing.AllocsPerRun(200, func() { serveOne(g, ctx, tc.uri, tc.key) }); allocs > tc.maxAllocs {
			t.Errorf("%s with request logs: %.1f allocations, want at most %.0f", tc.uri, allocs, tc.maxAllocs)
		}
	}
}
