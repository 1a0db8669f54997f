package server

import (
	"bytes"
	"math/rand/v2"
	"time"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/telemetry"
)

const hexDigits = "0123456789abcdef"

// logRequest writes one request log line to stdout with the column names
// of Log Analytics' ApiManagementGatewayLogs, so the same KQL works on
// uploaded records. Failures are always logged; successes per
// RequestLogSampling. The subscription key never appears: the key query
// parameter's value is masked in Url and BackendUrl, and headers are not
// logged.
func (g *Gateway) logRequest(rec *telemetry.Record) {
	failed := rec.ResponseCode >= 500 || rec.LastErrorReason != ""
	if !failed && !g.sample() {
		return
	}
	e := g.reqLog.Info()
	if e == nil {
		return
	}
	e = e.Str("Category", "GatewayLogs").
		Bytes("Method", rec.Method).
		Bytes("Url", rec.URL).
		Bytes("Hostname", rec.Hostname).
		Int("ResponseCode", rec.ResponseCode).
		Bool("IsRequestSuccess", rec.IsRequestSuccess()).
		Float64("TotalTime", ms(rec.TotalTime)).
		Float64("ClientTime", ms(rec.ClientTime)).
		Bytes("CallerIpAddress", rec.CallerIP).
		Bytes("CorrelationId", rec.CorrelationID).
		Bytes("ClientProtocol", rec.ClientProtocol).
		Str("Cache", rec.Cache.String())
	if rec.ClientTLSVersion != "" {
		e = e.Str("ClientTlsVersion", rec.ClientTLSVersion)
	}
	if rec.RequestSize >= 0 {
		e = e.Int64("RequestSize", rec.RequestSize)
	}
	if rec.ResponseSize >= 0 {
		e = e.Int64("ResponseSize", rec.ResponseSize)
	}
	if rec.APIID != "" {
		e = e.Str("ApiId", rec.APIID).Str("ApiRevision", rec.APIRevision)
	}
	if rec.OperationID != "" {
		e = e.Str("OperationId", rec.OperationID)
	}
	if rec.ProductID != "" {
		e = e.Str("ProductId", rec.ProductID)
	}
	if rec.SubscriptionID != "" {
		e = e.Str("ApimSubscriptionId", rec.SubscriptionID)
	}
	if rec.Backend {
		e = e.Bytes("BackendMethod", rec.BackendMethod).Bytes("BackendUrl", rec.BackendURL).Float64("BackendTime", ms(rec.BackendTime))
	}
	if rec.BackendResponseCode != 0 {
		e = e.Int("BackendResponseCode", rec.BackendResponseCode)
	}
	if rec.LastErrorReason != "" {
		e = e.Str("LastErrorReason", rec.LastErrorReason)
		if rec.LastErrorSource != "" {
			e = e.Str("LastErrorSource", rec.LastErrorSource).Str("LastErrorSection", rec.LastErrorSection).Str("LastErrorMessage", rec.LastErrorMessage)
		}
		if rec.LastErrorScope != "" {
			e = e.Str("LastErrorScope", rec.LastErrorScope)
		}
	}
	e.Msg("request")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// appendLogURL renders scheme://host/path?query with the value of every
// keyParam query parameter replaced by "***", as API Management masks the
// subscription key in its logs.
func appendLogURL(b []byte, scheme, host string, reqURI []byte, keyParam string) []byte {
	b = append(b, scheme...)
	b = append(b, "://"...)
	b = append(b, host...)
	q := bytes.IndexByte(reqURI, '?')
	if q < 0 {
		return append(b, reqURI...)
	}
	b = append(b, reqURI[:q+1]...)
	query := reqURI[q+1:]
	first := true
	for len(query) > 0 {
		var pair []byte
		if i := bytes.IndexByte(query, '&'); i >= 0 {
			pair, query = query[:i], query[i+1:]
		} else {
			pair, query = query, nil
		}
		if !first {
			b = append(b, '&')
		}
		first = false
		name, _, hasValue := bytes.Cut(pair, []byte{'='})
		if hasValue && string(name) == keyParam {
			b = append(b, name...)
			b = append(b, "=***"...)
			continue
		}
		b = append(b, pair...)
	}
	return b
}

// newCorrelationID writes a random version 4 UUID into dst (36 bytes).
func newCorrelationID(dst []byte) []byte {
	hi, lo := rand.Uint64(), rand.Uint64()
	var raw [16]byte
	for i := range 8 {
		raw[i] = byte(hi >> (56 - 8*i))
		raw[8+i] = byte(lo >> (56 - 8*i))
	}
	raw[6] = raw[6]&0x0f | 0x40
	raw[8] = raw[8]&0x3f | 0x80
	j := 0
	for i, c := range raw {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst[j] = '-'
			j++
		}
		dst[j] = hexDigits[c>>4]
		dst[j+1] = hexDigits[c&0x0f]
		j += 2
	}
	return dst[:36]
}
