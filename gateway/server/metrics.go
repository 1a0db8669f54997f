package server

import (
	"fmt"
	goruntime "runtime"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/telemetry"
)

// metrics are the gateway's own counters for /metrics: "is it serving,
// and is the configuration good". The request metrics with API
// Management's names and dimensions are gateway/telemetry's.
type metrics struct {
	byClass        [6]atomic.Uint64 // index status/100; 0 for anything else
	reloads        atomic.Uint64
	reloadFailures atomic.Uint64
}

func (m *metrics) record(status int) {
	c := status / 100
	if c < 1 || c > 5 {
		c = 0
	}
	m.byClass[c].Add(1)
}

func (g *Gateway) handleTelemetry(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case StatusPath, InternalStatusPath:
		g.health(ctx)
	case "/metrics":
		g.writeMetrics(ctx)
	case telemetry.LogsPath:
		g.ring.ServeLogs(ctx)
	case telemetry.StatusPath:
		g.handleTelemetryStatus(ctx)
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
	}
}

func (g *Gateway) writeMetrics(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	w := ctx.Response.BodyWriter()
	fmt.Fprintln(w, "# HELP apim_gateway_http_responses_total Responses sent, by status class.")
	fmt.Fprintln(w, "# TYPE apim_gateway_http_responses_total counter")
	for c := 1; c <= 5; c++ {
		fmt.Fprintf(w, "apim_gateway_http_responses_total{code=\"%dxx\"} %d\n", c, g.metrics.byClass[c].Load())
	}
	fmt.Fprintln(w, "# HELP apim_gateway_config_reloads_total Configuration snapshots applied.")
	fmt.Fprintln(w, "# TYPE apim_gateway_config_reloads_total counter")
	fmt.Fprintf(w, "apim_gateway_config_reloads_total %d\n", g.metrics.reloads.Load())
	fmt.Fprintln(w, "# HELP apim_gateway_config_reload_failures_total Configuration snapshots rejected; the previous one kept serving.")
	fmt.Fprintln(w, "# TYPE apim_gateway_config_reload_failures_total counter")
	fmt.Fprintf(w, "apim_gateway_config_reload_failures_total %d\n", g.metrics.reloadFailures.Load())
	loaded, apis, ts := 0, 0, int64(0)
	if rt := g.rt.Load(); rt != nil {
		loaded, apis, ts = 1, len(rt.table.APIs), rt.loadedAt.Unix()
	}
	fmt.Fprintln(w, "# HELP apim_gateway_config_loaded Whether a configuration is loaded (1) or not (0).")
	fmt.Fprintln(w, "# TYPE apim_gateway_config_loaded gauge")
	fmt.Fprintf(w, "apim_gateway_config_loaded %d\n", loaded)
	fmt.Fprintln(w, "# HELP apim_gateway_config_apis APIs in the loaded configuration.")
	fmt.Fprintln(w, "# TYPE apim_gateway_config_apis gauge")
	fmt.Fprintf(w, "apim_gateway_config_apis %d\n", apis)
	fmt.Fprintln(w, "# HELP apim_gateway_config_loaded_timestamp_seconds When the loaded configuration was applied.")
	fmt.Fprintln(w, "# TYPE apim_gateway_config_loaded_timestamp_seconds gauge")
	fmt.Fprintf(w, "apim_gateway_config_loaded_timestamp_seconds %d\n", ts)
	g.emitted.write(w)
	var b []byte
	b = g.reqMetrics.AppendPrometheus(b)
	b = g.ring.AppendPrometheus(b)
	b = telemetry.AppendHeader(b, "apim_gateway_build_info", "gauge", "Always 1; the labels name the running build.")
	labels := telemetry.AppendLabel(nil, "version", g.opts.Version)
	labels = telemetry.AppendLabel(labels, "go_version", goruntime.Version())
	b = telemetry.AppendSample(b, "apim_gateway_build_info", string(labels), 1)
	_, _ = w.Write(b)
}
