package monitoring

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/server"
)

// TestRealGateway runs the real gateway in-process (gateway/server) with a
// real backend, sends requests through it and checks that the pipeline
// uploads one log row per request, with the gateway's columns, and metric
// rows that count them, including emit-metric values.
func TestRealGateway(t *testing.T) {
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/svc/fail" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer be.Close()
	dir := t.TempDir()
	snapshot := `{"schemaVersion": "1.0", "apis": [{"name": "orders", "properties": {"path": "orders", "serviceUrl": "` + be.URL + `/svc", "subscriptionRequired": false},
	  "policy": "<policies><inbound><base /><emit-metric name=\"orders-placed\" value=\"2\" namespace=\"contoso\"><dimension name=\"region\" value=\"west\" /></emit-metric></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>",
	  "operations": [{"name": "any", "properties": {"method": "GET", "urlTemplate": "/*"}}]}]}`
	if err := os.WriteFile(filepath.Join(dir, "snapshot.json"), []byte(snapshot), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := server.DefaultOptions()
	opts.ConfigPath = dir
	opts.HTTPAddr, opts.HTTPSAddr, opts.TelemetryAddr = "127.0.0.1:0", "", "127.0.0.1:0"
	opts.ShutdownDelay, opts.ShutdownTimeout, opts.ReloadInterval = 0, 5*time.Second, time.Hour
	g, err := server.New(opts, zerolog.Nop(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case <-g.Ready():
	case err := <-done:
		t.Fatalf("gateway: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("gateway not ready")
	}

	h := newHarness(t, 0, false)
	h.cfg.GatewayTelemetryURL = "http://" + g.TelemetryAddr().String()
	p, stop := h.start(t)
	const n = 30
	for i := range n {
		path := "/orders/item"
		if i%10 == 0 {
			path = "/orders/fail"
		}
		resp, err := http.Get("http://" + g.HTTPAddr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	waitFor(t, 15*time.Second, "log rows from the gateway", func() bool { return h.dc.RowCount(LogTypeLogs) >= n })
	stop()

	rows := h.dc.Rows(LogTypeLogs)
	if len(rows) != n {
		t.Fatalf("%d log rows, want %d", len(rows), n)
	}
	failed := 0
	for _, r := range rows {
		if r["ApiId"] != "orders" || r["Method"] != "GET" || r["EventTime"] == nil || r["RecordId"] == nil {
			t.Fatalf("row %v", r)
		}
		if fmt.Sprint(r["ResponseCode"]) == "503" {
			failed++
		}
	}
	if failed != 3 {
		t.Fatalf("%d failed requests in the logs, want 3", failed)
	}
	if c := requestsCounted(t, h.dc, LogTypeMetrics); c != n {
		t.Fatalf("metrics count %d requests, want %d", c, n)
	}
	// emit-metric values: the metric rows agree with the CustomMetrics the
	// log rows carry (the gateway attaches them once it records them).
	var fromLogs, fromMetrics float64
	for _, r := range rows {
		cms, _ := r["CustomMetrics"].([]any)
		for _, cm := range cms {
			m := cm.(map[string]any)
			if m["Name"] == "orders-placed" {
				v, _ := m["Value"].(json.Number).Float64()
				fromLogs += v
			}
		}
	}
	for _, r := range h.dc.Rows(LogTypeMetrics) {
		if r["MetricName"] == "orders-placed" {
			v, _ := r["Total"].(json.Number).Float64()
			fromMetrics += v
		}
	}
	if fromLogs != fromMetrics {
		t.Fatalf("emit-metric total %v in metric rows, %v in log rows", fromMetrics, fromLogs)
	}
	if fromLogs == 0 {
		t.Log("the gateway attached no CustomMetrics to its records")
	}
	if st := p.Stats(); st.RecordsLost != 0 || st.RecordsRead != n {
		t.Fatalf("stats %+v", st)
	}
}
