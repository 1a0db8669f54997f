package monitoring

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/telemetry"
)

// appendMetricRow writes r as one JSON object; timeField names the time
// column (TimeGenerated, or EventTime for the Data Collector API, which
// reserves TimeGenerated). Empty dimensions are omitted.
func appendMetricRow(dst []byte, r *MetricRow, timeField string) []byte {
	dst = append(dst, `{"RecordId":`...)
	dst = appendString(dst, r.RecordID)
	dst = append(dst, ',')
	dst = appendString(dst, timeField)
	dst = append(dst, ':')
	dst = appendString(dst, r.TimeGenerated.UTC().Format(time.RFC3339))
	dst = telemetry.AppendStringField(dst, "MetricName", r.MetricName)
	dst = telemetry.AppendStringField(dst, "MetricNamespace", r.Namespace)
	dst = telemetry.AppendStringField(dst, "UnitName", r.UnitName)
	dst = telemetry.AppendStringField(dst, "TimeGrain", "PT1M")
	dst = appendNumField(dst, "Total", r.Total)
	dst = append(dst, `,"Count":`...)
	dst = strconv.AppendInt(dst, r.Count, 10)
	dst = appendNumField(dst, "Minimum", r.Minimum)
	dst = appendNumField(dst, "Maximum", r.Maximum)
	dst = appendNumField(dst, "Average", r.Average)
	dst = telemetry.AppendStringField(dst, "ResourceId", r.ResourceID)
	dst = telemetry.AppendStringField(dst, "ApiId", r.ApiId)
	dst = telemetry.AppendStringField(dst, "OperationId", r.OperationId)
	dst = telemetry.AppendStringField(dst, "Hostname", r.Hostname)
	if r.GatewayResponseCode != 0 {
		dst = append(dst, `,"GatewayResponseCode":`...)
		dst = strconv.AppendInt(dst, int64(r.GatewayResponseCode), 10)
	}
	dst = telemetry.AppendStringField(dst, "GatewayResponseCodeCategory", r.GatewayResponseCodeCategory)
	if r.BackendResponseCode != 0 {
		dst = append(dst, `,"BackendResponseCode":`...)
		dst = strconv.AppendInt(dst, int64(r.BackendResponseCode), 10)
	}
	dst = telemetry.AppendStringField(dst, "BackendResponseCodeCategory", r.BackendResponseCodeCategory)
	dst = telemetry.AppendStringField(dst, "LastErrorReason", r.LastErrorReason)
	dst = telemetry.AppendStringField(dst, "Cache", r.Cache)
	if len(r.Dimensions) > 0 {
		b, err := json.Marshal(r.Dimensions)
		if err == nil {
			dst = append(dst, `,"Dimensions":`...)
			dst = append(dst, b...)
		}
	}
	return append(dst, '}')
}

// appendString is the gateway's JSON string encoder: the rows quote the
// same client-supplied text the gateway's records do.
func appendString(dst []byte, s string) []byte { return telemetry.AppendString(dst, s) }

func appendNumField(dst []byte, name string, v float64) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}
