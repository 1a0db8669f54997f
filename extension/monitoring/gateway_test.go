package monitoring

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
)

// fakeGateway speaks the gateway's telemetry contract (contract 1 of the
// design: GET /telemetry/logs?after=&limit=). It is a double of our own
// component, not of Azure; one test also runs the real gateway.
type fakeGateway struct {
	*httptest.Server

	mu      sync.Mutex
	epoch   string
	ring    [][]byte // records first..next-1
	first   uint64   // oldest sequence held
	next    uint64   // sequence of the next record
	cap     int      // ring size (0: unbounded)
	reads   int
	maxRead uint64 // highest sequence served
	now     func() time.Time
	genFunc func(seq uint64, epoch string, t time.Time) []byte
}

func newFakeGateway(capacity int) *fakeGateway {
	g := &fakeGateway{cap: capacity, now: time.Now, genFunc: genRecord}
	g.restart()
	g.Server = httptest.NewServer(http.HandlerFunc(g.serve))
	return g
}

func randomEpoch() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// restart simulates a new gateway process: new epoch, empty ring.
func (g *fakeGateway) restart() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.epoch, g.ring, g.first, g.next = randomEpoch(), nil, 1, 1
}

// add appends n records and returns their correlation ids.
func (g *fakeGateway) add(n int) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	ids := make([]string, 0, n)
	for range n {
		seq := g.next
		g.next++
		g.ring = append(g.ring, g.genFunc(seq, g.epoch, g.now()))
		ids = append(ids, correlationID(g.epoch, seq))
		if g.cap > 0 && len(g.ring) > g.cap {
			g.ring = g.ring[1:]
			g.first++
		}
	}
	return ids
}

func correlationID(epoch string, seq uint64) string {
	return "corr-" + epoch + "-" + strconv.FormatUint(seq, 10)
}

// genRecord builds a record with the ApiManagementGatewayLogs columns the
// gateway writes; every 7th request failed in the backend, every 5th ran
// emit-metric.
func genRecord(seq uint64, epoch string, t time.Time) []byte {
	code, backend, reason := 200, 200, ""
	if seq%7 == 0 {
		code, backend, reason = 502, 503, "BackendConnectionFailure"
	}
	api := []string{"echo", "orders", "users"}[seq%3]
	rec := map[string]any{
		"TimeGenerated": t.UTC().Format("2006-01-02T15:04:05.000Z07:00"), "CorrelationId": correlationID(epoch, seq),
		"Method": "GET", "Url": "https://api.contoso.com/" + api + "/items?x=\"quoted\"", "Hostname": "api.contoso.com",
		"ResponseCode": code, "ResponseSize": 512, "RequestSize": 0, "BackendMethod": "GET",
		"BackendUrl": "http://backend/" + api, "BackendResponseCode": backend, "BackendTime": 10 + seq%5,
		"TotalTime": 12 + seq%5, "ClientTime": 1, "Cache": "none", "ApiId": api, "OperationId": "list",
		"ProductId": "starter", "ApiRevision": "1", "ClientProtocol": "HTTP/1.1", "CallerIpAddress": "10.0.0.1",
		"IsRequestSuccess": code < 400, "Sequence": seq,
	}
	if reason != "" {
		rec["LastErrorReason"] = reason
		rec["LastErrorMessage"] = "connection refused"
	}
	if seq%5 == 0 {
		rec["CustomMetrics"] = []map[string]any{{"Namespace": "contoso", "Name": "orders-placed", "Value": 2,
			"Dimensions": map[string]string{"region": "west"}}}
	}
	b, _ := json.Marshal(rec)
	return b
}

func (g *fakeGateway) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/telemetry/logs" {
		http.NotFound(w, r)
		return
	}
	after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 {
		limit = 1000
	}
	limit = min(limit, 10000)
	g.mu.Lock()
	g.reads++
	var lost uint64
	start := after + 1
	if start < g.first {
		lost = g.first - start
		start = g.first
	}
	var recs []json.RawMessage
	next := max(after, g.first-1)
	for s := start; s < g.next && len(recs) < limit; s++ {
		recs = append(recs, g.ring[s-g.first])
		next = s
	}
	g.maxRead = max(g.maxRead, next)
	// Written by hand: the records are already JSON, and re-encoding them
	// would cost the benchmark more than the pipeline it measures.
	b := make([]byte, 0, 64+len(recs)*700)
	b = fmt.Appendf(b, `{"epoch":%q,"first":%d,"next":%d,"lost":%d,"records":[`, g.epoch, g.first, next, lost)
	for i, r := range recs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, r...)
	}
	b = append(b, "]}"...)
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
