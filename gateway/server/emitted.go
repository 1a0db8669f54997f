package server

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/telemetry"
)

// maxEmittedSeries bounds the emit-metric series kept: dimension values
// come from requests, and an unbounded map would let clients grow memory.
const maxEmittedSeries = 1000

// emitted collects emit-metric values for /metrics: a sum and a count per
// namespace, name and dimension set. The agent uploads them from the
// request log records' CustomMetrics once the policy engine reports them
// per request.
type emitted struct {
	mu      sync.Mutex
	series  map[string]*emittedSeries
	dropped atomic.Uint64
}

type emittedSeries struct {
	labels string
	sum    float64
	count  uint64
}

var _ policy.MetricSink = (*emitted)(nil)

func newEmitted() *emitted { return &emitted{series: map[string]*emittedSeries{}} }

// Emit adds one value.
func (e *emitted) Emit(namespace, name string, value float64, dims []policy.Dimension) {
	labels := emittedLabels(namespace, name, dims)
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.series[labels]
	if s == nil {
		if len(e.series) >= maxEmittedSeries {
			e.dropped.Add(1)
			return
		}
		s = &emittedSeries{labels: labels}
		e.series[labels] = s
	}
	s.sum += value
	s.count++
}

// emittedLabels renders Prometheus labels: dimension names become label
// names (letters, digits and '_'), values are escaped.
func emittedLabels(namespace, name string, dims []policy.Dimension) string {
	sorted := append([]policy.Dimension(nil), dims...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	b := telemetry.AppendLabel(nil, "namespace", escapeLabel(namespace))
	b = telemetry.AppendLabel(b, "name", escapeLabel(name))
	for _, d := range sorted {
		b = telemetry.AppendLabel(b, labelName(d.Name), escapeLabel(d.Value))
	}
	return string(b)
}

func labelName(s string) string {
	var b strings.Builder
	b.WriteString("dim_")
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// escapeLabel keeps label values valid UTF-8, as the Prometheus text
// format requires.
func escapeLabel(s string) string { return strings.ToValidUTF8(s, "?") }

func (e *emitted) write(w io.Writer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	// A sum and a count per series is a summary without quantiles.
	fmt.Fprintln(w, "# HELP apim_gateway_emitted_metric Values emitted by the emit-metric policy: their sum and count.")
	fmt.Fprintln(w, "# TYPE apim_gateway_emitted_metric summary")
	keys := make([]string, 0, len(e.series))
	for k := range e.series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "apim_gateway_emitted_metric_sum{%s} %g\n", k, e.series[k].sum)
	}
	for _, k := range keys {
		fmt.Fprintf(w, "apim_gateway_emitted_metric_count{%s} %d\n", k, e.series[k].count)
	}
	fmt.Fprintln(w, "# HELP apim_gateway_emitted_metric_dropped_total emit-metric values dropped because the series limit was reached.")
	fmt.Fprintln(w, "# TYPE apim_gateway_emitted_metric_dropped_total counter")
	fmt.Fprintf(w, "apim_gateway_emitted_metric_dropped_total %d\n", e.dropped.Load())
}
