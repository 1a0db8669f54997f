package monitoring

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// maxOTelSeries bounds the cached attribute sets (dimension values come
// from requests); records beyond it are exported without dimensions.
const maxOTelSeries = 10000

// maxOTelCustom bounds the emit-metric instruments.
const maxOTelCustom = 100

// otelExporter records the gateway's metrics with the OpenTelemetry SDK
// and pushes them over OTLP/HTTP (protobuf) every interval.
type otelExporter struct {
	provider *sdkmetric.MeterProvider
	meter    metric.Meter

	requests                  metric.Int64Counter
	duration, backend, client metric.Float64Histogram

	sets   map[dims]metric.MeasurementOption
	custom map[string]metric.Float64Counter
}

func newOTelExporter(cfg OTLPConfig, resourceID string) (*otelExporter, error) {
	u, err := url.Parse(cfg.CollectorURI)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyOTelCollector, err)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/metrics" // the OTLP/HTTP metrics path
	}
	exp, err := otlpmetrichttp.New(context.Background(), otlpmetrichttp.WithEndpointURL(u.String()))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyOTelCollector, err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", "apim-gateway")}
	if resourceID != "" {
		attrs = append(attrs, attribute.String("cloud.resource_id", resourceID))
	}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(resource.NewSchemaless(attrs...)),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(cfg.Interval))),
	)
	o := &otelExporter{provider: mp, meter: mp.Meter("github.com/seed393f6fe3/apim-arc-gateway/extension/monitoring"),
		sets: map[dims]metric.MeasurementOption{}, custom: map[string]metric.Float64Counter{}}
	var errs [4]error
	o.requests, errs[0] = o.meter.Int64Counter("apim.gateway.requests", metric.WithUnit("{request}"),
		metric.WithDescription("Gateway requests (APIM metric Requests)."))
	o.duration, errs[1] = o.meter.Float64Histogram("apim.gateway.duration", metric.WithUnit("ms"),
		metric.WithDescription("Total time of gateway requests (APIM metric Duration)."))
	o.backend, errs[2] = o.meter.Float64Histogram("apim.gateway.backend.duration", metric.WithUnit("ms"),
		metric.WithDescription("Time of backend requests (APIM metric BackendDuration)."))
	o.client, errs[3] = o.meter.Float64Histogram("apim.gateway.client.duration", metric.WithUnit("ms"),
		metric.WithDescription("Client I/O time of gateway requests."))
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("opentelemetry: %w", err)
		}
	}
	return o, nil
}

// record adds one request. Called by the ingest goroutine only.
func (o *otelExporter) record(r *record) {
	ctx := context.Background()
	k := dims{r.ApiId, r.OperationId, r.Hostname, r.ResponseCode, r.BackendResponseCode, r.LastErrorReason, r.Cache}
	opt, ok := o.sets[k]
	if !ok {
		if len(o.sets) >= maxOTelSeries {
			opt = metric.WithAttributeSet(attribute.NewSet())
		} else {
			opt = metric.WithAttributeSet(attribute.NewSet(
				attribute.String("api_id", k.ApiId), attribute.String("operation_id", k.OperationId),
				attribute.String("hostname", k.Hostname),
				attribute.Int("gateway_response_code", k.GatewayResponseCode),
				attribute.String("gateway_response_code_category", category(k.GatewayResponseCode)),
				attribute.Int("backend_response_code", k.BackendResponse),
				attribute.String("backend_response_code_category", category(k.BackendResponse)),
				attribute.String("last_error_reason", k.LastErrorReason), attribute.String("cache", k.Cache)))
			o.sets[k] = opt
		}
	}
	o.requests.Add(ctx, 1, opt)
	o.duration.Record(ctx, r.TotalTime, opt)
	if r.BackendTime != nil {
		o.backend.Record(ctx, *r.BackendTime, opt)
	}
	if r.ClientTime != nil {
		o.client.Record(ctx, *r.ClientTime, opt)
	}
	for i := range r.CustomMetrics {
		m := &r.CustomMetrics[i]
		c, ok := o.custom[m.Name]
		if !ok {
			if len(o.custom) >= maxOTelCustom {
				continue
			}
			var err error
			c, err = o.meter.Float64Counter(otelName(m.Name), metric.WithDescription("emit-metric "+strconv.Quote(m.Name)))
			if err != nil {
				continue
			}
			o.custom[m.Name] = c
		}
		kv := make([]attribute.KeyValue, 0, len(m.Dimensions)+1)
		kv = append(kv, attribute.String("namespace", m.Namespace))
		for dk, dv := range m.Dimensions {
			kv = append(kv, attribute.String(dk, dv))
		}
		c.Add(ctx, m.Value, metric.WithAttributes(kv...))
	}
}

// otelName makes an emit-metric name a valid instrument name
// ([A-Za-z][A-Za-z0-9_./-]*, at most 255).
func otelName(n string) string {
	var b strings.Builder
	for _, c := range n {
		ok := c < 128 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_./-", c))
		if !ok {
			c = '_'
		}
		b.WriteRune(c)
	}
	s := b.String()
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		s = "m" + s
	}
	return s[:min(len(s), 255)]
}

func (o *otelExporter) shutdown(ctx context.Context) error { return o.provider.Shutdown(ctx) }
