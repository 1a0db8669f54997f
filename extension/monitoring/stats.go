package monitoring

import (
	"io"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/health"
)

// Stats are the pipeline's counters.
type Stats struct {
	RecordsRead      uint64 // request-log records read from the gateway
	RecordsLost      uint64 // overwritten in the gateway's ring before being read
	BadRecords       uint64 // records that were not JSON objects
	PollErrors       uint64
	GatewayRestarts  uint64 // epoch changes seen
	SeriesDropped    uint64 // metric values beyond MaxSeriesPerMinute
	Destinations     []SinkStats
	OTLPEnabled      bool
	StatsDPackets    uint64 // datagrams sent
	StatsDErrors     uint64 // datagrams that could not be sent
	GatewayTelemetry string
}

// Stats returns a snapshot of the counters.
func (p *Pipeline) Stats() Stats {
	st := Stats{
		RecordsRead: p.recordsRead.Load(), RecordsLost: p.recordsLost.Load(), BadRecords: p.badRecords.Load(),
		PollErrors: p.pollErrors.Load(), GatewayRestarts: p.epochChanges.Load(), SeriesDropped: p.seriesDrop.Load(),
		OTLPEnabled: p.otel != nil, GatewayTelemetry: p.cfg.GatewayTelemetryURL,
	}
	if p.sd != nil {
		st.StatsDPackets, st.StatsDErrors = p.sd.sent.Load(), p.sd.errors.Load()
	}
	for _, s := range p.sinks {
		st.Destinations = append(st.Destinations, s.stats())
	}
	return st
}

// WriteMetrics writes the counters in Prometheus text format, for the
// agent's /metrics.
func (p *Pipeline) WriteMetrics(w io.Writer) {
	st := p.Stats()
	health.WriteMetric(w, "apim_agent_monitoring_records_read_total", "counter",
		"Request-log records read from the gateway.", health.Sample{Value: float64(st.RecordsRead)})
	health.WriteMetric(w, "apim_agent_monitoring_records_lost_total", "counter",
		"Request-log records the gateway overwrote before the agent read them.", health.Sample{Value: float64(st.RecordsLost)})
	health.WriteMetric(w, "apim_agent_monitoring_gateway_poll_errors_total", "counter",
		"Failed reads of the gateway's telemetry endpoint.", health.Sample{Value: float64(st.PollErrors)})
	health.WriteMetric(w, "apim_agent_monitoring_metric_values_dropped_total", "counter",
		"Values not aggregated because a minute reached its series limit.", health.Sample{Value: float64(st.SeriesDropped)})
	if p.sd != nil {
		health.WriteMetric(w, "apim_agent_monitoring_statsd_packets_total", "counter", "StatsD datagrams by result.",
			health.Sample{Labels: []string{"result", "sent"}, Value: float64(st.StatsDPackets)},
			health.Sample{Labels: []string{"result", "error"}, Value: float64(st.StatsDErrors)})
	}
	if len(st.Destinations) == 0 {
		return
	}
	var up, fail, drop, spoolB, spoolN []health.Sample
	for _, d := range st.Destinations {
		for _, kind := range []string{kindLogs, kindMetrics} {
			up = append(up, health.Sample{Labels: []string{"destination", d.Destination, "kind", kind}, Value: float64(d.RowsUploaded[kind])})
		}
		fail = append(fail, health.Sample{Labels: []string{"destination", d.Destination}, Value: float64(d.UploadFailures)})
		drop = append(drop,
			health.Sample{Labels: []string{"destination", d.Destination, "reason", "rejected"}, Value: float64(d.RowsRejected)},
			health.Sample{Labels: []string{"destination", d.Destination, "reason", "spool_full"}, Value: float64(d.RowsEvicted)},
			health.Sample{Labels: []string{"destination", d.Destination, "reason", "too_large"}, Value: float64(d.RowsTooLarge)})
		spoolB = append(spoolB, health.Sample{Labels: []string{"destination", d.Destination}, Value: float64(d.SpoolBytes)})
		spoolN = append(spoolN, health.Sample{Labels: []string{"destination", d.Destination}, Value: float64(d.SpoolBatches)})
	}
	health.WriteMetric(w, "apim_agent_monitoring_rows_uploaded_total", "counter", "Rows accepted by Log Analytics.", up...)
	health.WriteMetric(w, "apim_agent_monitoring_upload_failures_total", "counter", "Upload attempts that failed and left the batch spooled.", fail...)
	health.WriteMetric(w, "apim_agent_monitoring_rows_dropped_total", "counter", "Rows that will never be uploaded, by reason.", drop...)
	health.WriteMetric(w, "apim_agent_monitoring_spool_bytes", "gauge", "Bytes waiting in the on-disk spool.", spoolB...)
	health.WriteMetric(w, "apim_agent_monitoring_spool_batches", "gauge", "Batches waiting in the on-disk spool.", spoolN...)
}
