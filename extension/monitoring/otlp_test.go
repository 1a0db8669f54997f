package monitoring

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"
)

// TestOTLPExport: with telemetry.metrics.opentelemetry enabled, the
// gateway's Requests and Duration reach an OTLP/HTTP collector with the
// APIM dimensions as attributes.
func TestOTLPExport(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var last *collectormetrics.ExportMetricsServiceRequest
	paths := map[string]int{}
	col := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := &collectormetrics.ExportMetricsServiceRequest{}
		if r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		paths[r.URL.Path]++
		last = req
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&collectormetrics.ExportMetricsServiceResponse{})
		w.Write(b)
	}))
	defer col.Close()
	gw := newFakeGateway(0)
	defer gw.Close()
	gw.add(21)

	cfg := Config{GatewayTelemetryURL: gw.URL, PollInterval: 20 * time.Millisecond,
		OTLP: OTLPConfig{Enabled: true, CollectorURI: col.URL, Interval: 100 * time.Millisecond}}
	h := &harness{cfg: cfg, deps: Deps{Logger: zerolog.Nop()}}
	_, stop := h.start(t)
	requests := func() (total int64, byAPI map[string]int64) {
		mu.Lock()
		defer mu.Unlock()
		byAPI = map[string]int64{}
		if last == nil {
			return 0, byAPI
		}
		for _, rm := range last.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if m.Name != "apim.gateway.requests" {
						continue
					}
					for _, dp := range m.GetSum().DataPoints {
						for _, kv := range dp.Attributes {
							if kv.Key == "api_id" {
								byAPI[kv.Value.GetStringValue()] += dp.GetAsInt()
							}
						}
						total += dp.GetAsInt()
					}
				}
			}
		}
		return total, byAPI
	}
	waitFor(t, 10*time.Second, "21 requests exported", func() bool { n, _ := requests(); return n == 21 })
	stop()
	_, byAPI := requests()
	if byAPI["echo"] != 7 || byAPI["orders"] != 7 || byAPI["users"] != 7 {
		t.Fatalf("requests by api_id: %v", byAPI)
	}
	mu.Lock()
	defer mu.Unlock()
	if paths["/v1/metrics"] == 0 || len(paths) != 1 {
		t.Fatalf("paths %v, want /v1/metrics", paths)
	}
}

func TestOTelName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"orders-placed": "orders-placed", "9 lives": "m9_lives", "": "m", "ünï": "m_n_"} {
		if got := otelName(in); got != want {
			t.Errorf("otelName(%q) = %q, want %q", in, got, want)
		}
	}
}
