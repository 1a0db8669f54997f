package telemetry

import "strconv"

// AppendHeader appends a metric family's # HELP and # TYPE lines.
func AppendHeader(b []byte, name, typ, help string) []byte {
	b = append(b, "# HELP "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = appendEscaped(b, help, false)
	b = append(b, "\n# TYPE "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, typ...)
	return append(b, '\n')
}

// AppendLabel appends name="value" with the text format's escaping,
// preceded by a comma unless it opens the label set.
func AppendLabel(b []byte, name, value string) []byte {
	if n := len(b); n > 0 && b[n-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, name...)
	b = append(b, '=', '"')
	b = appendEscaped(b, value, true)
	return append(b, '"')
}

// appendEscaped escapes backslash and newline (and, in label values, the
// double quote) as the Prometheus text format requires.
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '"' && quote:
			b = append(b, '\\', '"')
		default:
			b = append(b, c)
		}
	}
	return b
}

// AppendSample appends one sample line: name, labels (already rendered,
// without braces; "" for none) and value.
func AppendSample(b []byte, name, labels string, v float64) []byte {
	b = append(b, name...)
	if labels != "" {
		b = append(b, '{')
		b = append(b, labels...)
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = appendFloat(b, v)
	return append(b, '\n')
}

func appendFloat(b []byte, v float64) []byte {
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// Metric family names on /metrics.
const (
	RequestsMetric        = "apim_gateway_requests_total"
	DurationMetric        = "apim_gateway_request_duration_seconds"
	BackendDurationMetric = "apim_gateway_backend_duration_seconds"
	ClientDurationMetric  = "apim_gateway_client_duration_seconds"
)

// AppendPrometheus appends the request metrics in the Prometheus text
// format: Requests as a counter with every APIM dimension, the three
// durations as histograms in seconds by api_id, operation_id and hostname
// (Duration's and BackendDuration's own dimensions in APIM, plus the
// operation), and the series bound.
func (m *Metrics) AppendPrometheus(b []byte) []byte {
	snap := m.Snapshot()
	b = AppendHeader(b, RequestsMetric, "counter", "Requests served, by API Management's Requests metric dimensions.")
	for i := range snap {
		s := &snap[i]
		b = append(b, RequestsMetric...)
		b = append(b, '{')
		b = appendDimensionLabels(b, &s.Dimensions)
		b = append(b, "} "...)
		b = strconv.AppendUint(b, s.Requests, 10)
		b = append(b, '\n')
	}

	// Histograms by (api, operation, hostname): merge the series that
	// differ only in codes, error and cache.
	type key struct{ api, op, host string }
	type durations struct{ total, client, backend HistogramSnapshot }
	var order []key
	byKey := map[key]*durations{}
	for i := range snap {
		s := &snap[i]
		k := key{s.APIID, s.OperationID, s.Hostname}
		d := byKey[k]
		if d == nil {
			d = &durations{}
			byKey[k] = d
			order = append(order, k)
		}
		d.total.merge(&s.Duration)
		d.client.merge(&s.ClientDuration)
		d.backend.merge(&s.BackendDuration)
	}
	families := []struct {
		name, help string
		pick       func(*durations) *HistogramSnapshot
	}{
		{DurationMetric, "Time from the first request byte to the response (API Management's Duration; the request log's TotalTime).", func(d *durations) *HistogramSnapshot { return &d.total }},
		{BackendDurationMetric, "Time waiting for the backend (API Management's BackendDuration; BackendTime), for requests that called one.", func(d *durations) *HistogramSnapshot { return &d.backend }},
		{ClientDurationMetric, "Time outside the backend call: client I/O and gateway processing (ClientDuration; ClientTime).", func(d *durations) *HistogramSnapshot { return &d.client }},
	}
	for _, f := range families {
		b = AppendHeader(b, f.name, "histogram", f.help)
		for _, k := range order {
			var labels []byte
			labels = AppendLabel(labels, "api_id", k.api)
			labels = AppendLabel(labels, "operation_id", k.op)
			labels = AppendLabel(labels, "hostname", k.host)
			b = appendHistogram(b, f.name, labels, f.pick(byKey[k]))
		}
	}

	b = AppendHeader(b, "apim_gateway_metric_series", "gauge", "Distinct dimension sets of apim_gateway_requests_total held.")
	b = AppendSample(b, "apim_gateway_metric_series", "", float64(m.SeriesCount()))
	b = AppendHeader(b, "apim_gateway_metric_series_limit", "gauge", "Most dimension sets held (--metrics-max-series); beyond it requests count in the series whose labels are \"other\".")
	b = AppendSample(b, "apim_gateway_metric_series_limit", "", float64(m.max))
	b = AppendHeader(b, "apim_gateway_metric_series_overflow_total", "counter", "Requests counted in the \"other\" series because the series limit was reached.")
	b = AppendSample(b, "apim_gateway_metric_series_overflow_total", "", float64(m.Overflowed()))
	return b
}

func appendDimensionLabels(b []byte, d *Dimensions) []byte {
	b = AppendLabel(b, "api_id", d.APIID)
	b = AppendLabel(b, "operation_id", d.OperationID)
	b = AppendLabel(b, "hostname", d.Hostname)
	b = AppendLabel(b, "gateway_response_code", codeString(d.GatewayResponseCode))
	b = AppendLabel(b, "gateway_response_code_category", CodeCategory(d.GatewayResponseCode))
	b = AppendLabel(b, "backend_response_code", codeString(d.BackendResponseCode))
	b = AppendLabel(b, "backend_response_code_category", CodeCategory(d.BackendResponseCode))
	b = AppendLabel(b, "last_error_reason", d.LastErrorReason)
	return AppendLabel(b, "cache", d.Cache.String())
}

func codeString(c int) string {
	if c == 0 {
		return ""
	}
	return strconv.Itoa(c)
}

func appendHistogram(b []byte, name string, labels []byte, h *HistogramSnapshot) []byte {
	var cum uint64
	for i, c := range h.Counts {
		cum += c
		b = append(b, name...)
		b = append(b, "_bucket{"...)
		b = append(b, labels...)
		b = append(b, `,le="`...)
		if i < len(bucketBounds) {
			b = appendFloat(b, bucketBounds[i].Seconds())
		} else {
			b = append(b, "+Inf"...)
		}
		b = append(b, `"} `...)
		b = strconv.AppendUint(b, cum, 10)
		b = append(b, '\n')
	}
	b = append(b, name...)
	b = append(b, "_sum{"...)
	b = append(b, labels...)
	b = append(b, "} "...)
	b = appendFloat(b, h.Sum.Seconds())
	b = append(b, '\n')
	b = append(b, name...)
	b = append(b, "_count{"...)
	b = append(b, labels...)
	b = append(b, "} "...)
	b = strconv.AppendUint(b, cum, 10)
	return append(b, '\n')
}

// AppendPrometheus appends the ring's counters and gauges.
func (r *Ring) AppendPrometheus(b []byte) []byte {
	b = AppendHeader(b, "apim_gateway_request_logs_written_total", "counter", "Request log records written to the ring (the newest Sequence).")
	b = AppendSample(b, "apim_gateway_request_logs_written_total", "", float64(r.Written()))
	b = AppendHeader(b, "apim_gateway_request_logs_dropped_total", "counter", "Request log records overwritten before any reader had them.")
	b = AppendSample(b, "apim_gateway_request_logs_dropped_total", "", float64(r.Dropped()))
	b = AppendHeader(b, "apim_gateway_request_logs_unread", "gauge", "Request log records held that no reader has had yet.")
	b = AppendSample(b, "apim_gateway_request_logs_unread", "", float64(r.Unread()))
	b = AppendHeader(b, "apim_gateway_request_logs_capacity", "gauge", "Request log records the ring holds (--request-log-buffer).")
	b = AppendSample(b, "apim_gateway_request_logs_capacity", "", float64(r.size))
	return b
}
