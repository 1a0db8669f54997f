package server

import (
	"bytes"
	"crypto/tls"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/proxy"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/telemetry"
)

// finish reports a served request: the request metrics, the request log
// ring the agent reads, and the sampled stdout request log. All three
// read one record built here, so they agree.
func (g *Gateway) finish(ctx *fasthttp.RequestCtx, st *reqState, start time.Time) {
	total := time.Since(start)
	rec := &st.rec
	g.fillRecord(ctx, st, rec, start, total)

	smp := &st.sample
	smp.Dimensions = telemetry.Dimensions{
		APIID:               rec.APIID,
		OperationID:         rec.OperationID,
		Hostname:            b2s(rec.Hostname),
		LastErrorReason:     rec.LastErrorReason,
		GatewayResponseCode: rec.ResponseCode,
		BackendResponseCode: rec.BackendResponseCode,
		Cache:               rec.Cache,
	}
	smp.Duration, smp.ClientDuration, smp.BackendDuration, smp.Backend = rec.TotalTime, rec.ClientTime, rec.BackendTime, rec.Backend
	g.reqMetrics.RecordHinted(smp, &st.hint)
	g.ring.Write(rec)
	g.logRequest(rec)
}

// fillRecord fills rec, reusing its buffers, from what the request left in
// ctx and st.
func (g *Gateway) fillRecord(ctx *fasthttp.RequestCtx, st *reqState, rec *telemetry.Record, start time.Time, total time.Duration) {
	keyParam := "subscription-key"
	if st.api != nil {
		if rt := g.rt.Load(); rt != nil && st.api.Index < len(rt.backends) && rt.table.APIs[st.api.Index] == st.api {
			keyParam = rt.subs.Access(st.api).QueryName
		}
	}
	scheme := "http"
	if ctx.IsTLS() {
		scheme = "https"
	}
	st.logBuf = appendLogURL(st.logBuf[:0], scheme, b2s(st.host), st.reqURI, keyParam)
	st.ip = proxy.AppendIP(st.ip[:0], ctx.RemoteIP())

	rec.Time = start
	rec.CorrelationID = st.correlationID()
	rec.Method = ctx.Method()
	rec.URL = st.logBuf
	rec.Hostname = hostname(st.host)
	rec.ResponseCode = ctx.Response.StatusCode()
	switch cl := ctx.Request.Header.ContentLength(); {
	case cl >= 0:
		rec.RequestSize = int64(cl)
	case cl == -1:
		rec.RequestSize = -1 // chunked: not known without counting
	default:
		rec.RequestSize = 0 // no body
	}
	switch {
	case !ctx.Response.IsBodyStream():
		rec.ResponseSize = int64(len(ctx.Response.Body()))
	case ctx.Response.Header.ContentLength() >= 0:
		rec.ResponseSize = int64(ctx.Response.Header.ContentLength())
	default:
		rec.ResponseSize = -1
	}
	rec.Backend = st.backendCalled
	rec.BackendMethod, rec.BackendURL = nil, nil
	if st.backendCalled {
		// Forwarding rewrote the request in place: its method is what the
		// backend got (set-method included).
		rec.BackendMethod = ctx.Request.Header.Method()
		st.backendURL = appendLogURL(st.backendURL[:0], st.backendScheme, st.backendHost, st.uri, keyParam)
		rec.BackendURL = st.backendURL
	}
	rec.BackendResponseCode = st.backendCode
	rec.BackendTime = st.backendTime
	rec.TotalTime = total
	rec.ClientTime = max(total-st.backendTime, 0)
	rec.Cache = telemetry.ParseCache(policy.CacheStatus(ctx))

	rec.APIID, rec.OperationID, rec.APIRevision = "", "", ""
	if st.api != nil {
		rec.APIID, rec.APIRevision = st.api.BaseName, st.api.Revision
	}
	if st.op != nil {
		rec.OperationID = st.op.Name
	}
	rec.ProductID, rec.SubscriptionID = st.product, ""
	if st.sub != nil {
		rec.SubscriptionID = st.sub.Name
	}
	rec.ClientProtocol = ctx.Request.Header.Protocol()
	rec.ClientTLSVersion = ""
	if tc, ok := ctx.Conn().(*tls.Conn); ok {
		rec.ClientTLSVersion = tls.VersionName(tc.ConnectionState().Version)
	}
	rec.CallerIP = st.ip

	rec.LastErrorReason = st.lastError
	rec.LastErrorMessage, rec.LastErrorSource, rec.LastErrorSection, rec.LastErrorScope = "", "", "", ""
	if st.lastError != "" {
		if pe := st.policyErr; pe != nil && pe.Reason == st.lastError && pe.Source != "" {
			rec.LastErrorMessage, rec.LastErrorSource, rec.LastErrorSection, rec.LastErrorScope = pe.Message, pe.Source, pe.Section, pe.Scope
		} else if src, sec, msg := gatewayError(st.lastError); src != "" {
			rec.LastErrorSource, rec.LastErrorSection, rec.LastErrorMessage = src, sec, msg
		} else if pe != nil {
			rec.LastErrorMessage = pe.Message
		}
	}
	rec.CustomMetrics = append(rec.CustomMetrics[:0], st.custom...)
}

// gatewayError is what the request log says of an error the gateway
// itself raised (not a policy): API Management's source and message where
// its documentation gives them (reference/gateway.md, "Predefined
// errors"). A switch, not a map: it runs for every failed request.
func gatewayError(reason string) (source, section, message string) {
	switch reason {
	case "ApiNotFound":
		return "configuration", "inbound", "Unable to match incoming request to an API."
	case "OperationNotFound":
		return "configuration", "inbound", "Unable to match incoming request to an operation."
	case "InvalidPath":
		return "configuration", "inbound", "The request path has dot segments."
	case "ConfigurationNotLoaded":
		return "configuration", "inbound", "No configuration is loaded."
	case "SubscriptionKeyNotFound":
		return "authorization", "inbound", "Access denied due to missing subscription key. Make sure to include subscription key when making requests to this API."
	case "SubscriptionKeyInvalid":
		return "authorization", "inbound", "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."
	case "RequestEntityTooLarge":
		return "request", "inbound", "The request body is larger than the gateway allows."
	case "BackendNotConfigured":
		return "forward-request", "backend", "The API has no backend service URL."
	case proxy.ReasonTimeout:
		return "forward-request", "backend", "The backend did not answer in time."
	case proxy.ReasonConnectionFailure:
		return "forward-request", "backend", "The backend could not be reached."
	}
	return "", "", ""
}

// hostname is the Host header without a port.
func hostname(host []byte) []byte {
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && bytes.IndexByte(host[i:], ']') < 0 {
		return host[:i]
	}
	return host
}

// handleTelemetryStatus answers GET /telemetry/status.
func (g *Gateway) handleTelemetryStatus(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		telemetry.WriteError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed: use GET")
		return
	}
	if len(ctx.QueryArgs().QueryString()) > 0 {
		telemetry.WriteError(ctx, fasthttp.StatusBadRequest, "/telemetry/status takes no parameters")
		return
	}
	rev, loadedAt, ready := "", "", false
	if rt := g.rt.Load(); rt != nil {
		rev = rt.snapshot.Revision
		loadedAt = rt.loadedAt.UTC().Format(time.RFC3339)
		ready = !g.draining.Load()
	}
	b := []byte(`{"epoch":`)
	b = telemetry.AppendString(b, g.ring.Epoch())
	b = append(b, `,"configurationRevision":`...)
	b = telemetry.AppendString(b, rev)
	b = append(b, `,"loadedAt":`...)
	b = telemetry.AppendString(b, loadedAt)
	b = append(b, `,"ready":`...)
	b = strconv.AppendBool(b, ready)
	b = append(b, `,"version":`...)
	b = telemetry.AppendString(b, g.opts.Version)
	b = append(b, "}\n"...)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.SetBodyRaw(b)
}
