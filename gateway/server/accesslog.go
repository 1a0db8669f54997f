package server

import (
	"bytes"
	"math/rand/v2"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/proxy"
)

const hexDigits = "0123456789abcdef"

// logRequest writes one request log line with the column names of Log
// Analytics' ApiManagementGatewayLogs, so the same KQL works on uploaded
// records. Failures are always logged; successes per RequestLogSampling.
// The subscription key never appears: the key query parameter's value is
// masked in Url and headers are not logged.
func (g *Gateway) logRequest(ctx *fasthttp.RequestCtx, st *reqState, start time.Time) {
	status := ctx.Response.StatusCode()
	failed := status >= 500 || st.lastError != ""
	if !failed && !g.sample() {
		return
	}
	e := g.reqLog.Info()
	if e == nil {
		return
	}
	total := time.Since(start)
	keyParam := "subscription-key"
	if st.api != nil {
		if rt := g.rt.Load(); rt != nil && st.api.Index < len(rt.backends) && rt.table.APIs[st.api.Index] == st.api {
			keyParam = rt.subs.Access(st.api).QueryName
		}
	}
	st.ip = proxy.AppendIP(st.ip[:0], ctx.RemoteIP())
	st.logBuf = appendLogURL(st.logBuf[:0], ctx.IsTLS(), st.host, st.reqURI, keyParam)
	e = e.Str("Category", "GatewayLogs").
		Bytes("Method", ctx.Method()).
		Bytes("Url", st.logBuf).
		Int("ResponseCode", status).
		Bool("IsRequestSuccess", status < 400 && st.lastError == "").
		Float64("TotalTime", ms(total)).
		Bytes("CallerIpAddress", st.ip).
		Bytes("CorrelationId", st.correlationID()).
		Bytes("ClientProtocol", ctx.Request.Header.Protocol()).
		Int("RequestSize", max(ctx.Request.Header.ContentLength(), 0)).
		Str("Cache", policy.CacheStatus(ctx))
	if !ctx.Response.IsBodyStream() {
		e = e.Int("ResponseSize", len(ctx.Response.Body()))
	} else if n := ctx.Response.Header.ContentLength(); n >= 0 {
		e = e.Int("ResponseSize", n)
	}
	if st.api != nil {
		e = e.Str("ApiId", st.api.BaseName).Str("ApiRevision", st.api.Revision)
	}
	if st.op != nil {
		e = e.Str("OperationId", st.op.Name)
	}
	if st.product != "" {
		e = e.Str("ProductId", st.product)
	}
	if st.sub != nil {
		e = e.Str("ApimSubscriptionId", st.sub.Name)
	}
	if st.backendCode != 0 {
		e = e.Int("BackendResponseCode", st.backendCode).Float64("BackendTime", ms(st.backendTime))
	}
	if st.lastError != "" {
		e = e.Str("LastErrorReason", st.lastError)
	}
	e.Msg("request")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// appendLogURL renders scheme://host/path?query with the value of every
// keyParam query parameter replaced by "***".
func appendLogURL(b []byte, secure bool, host, reqURI []byte, keyParam string) []byte {
	if secure {
		b = append(b, "https://"...)
	} else {
		b = append(b, "http://"...)
	}
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
