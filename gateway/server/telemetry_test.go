package server

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

type logsPage struct {
	Epoch   string           `json:"epoch"`
	First   uint64           `json:"first"`
	Next    uint64           `json:"next"`
	Lost    uint64           `json:"lost"`
	Records []map[string]any `json:"records"`
}

func fetchLogs(t *testing.T, h *harness, query string) (logsPage, string) {
	t.Helper()
	r := do(t, "GET", h.tel+"/telemetry/logs"+query, nil, nil)
	if r.status != 200 {
		t.Fatalf("/telemetry/logs%s: %d %s", query, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var p logsPage
	dec := json.NewDecoder(strings.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("/telemetry/logs%s: %v\n%s", query, err, r.body)
	}
	return p, r.body
}

// The records the agent reads describe each request with the
// ApiManagementGatewayLogs column names, and never hold a subscription key.
func TestTelemetryLogs(t *testing.T) {
	be := startBackend(t, nil)
	h := startGateway(t, snapshotFor(be.addr), nil)
	keyHeader := map[string]string{"Ocp-Apim-Subscription-Key": "primary-key-0001"}
	requests := []struct {
		path   string
		header map[string]string
		status int
		want   map[string]any // columns to check; nil value: must be absent
	}{
		{path: "/echo/users/1/orders/2?subscription-key=primary-key-0001&x=1", header: map[string]string{"Host": "api.contoso.com:8443"}, status: 200,
			want: map[string]any{"Method": "GET", "Url": "http://api.contoso.com:8443/echo/users/1/orders/2?subscription-key=***&x=1",
				"Hostname": "api.contoso.com", "ResponseCode": 200.0, "BackendResponseCode": 200.0, "BackendMethod": "GET",
				"BackendUrl": "http://" + be.addr + "/base/users/1/orders/2?subscription-key=***&x=1",
				"ApiId":      "echo", "OperationId": "order", "ProductId": "starter", "ApimSubscriptionId": "prod-sub",
				"Cache": "none", "IsRequestSuccess": true, "ClientProtocol": "HTTP/1.1", "CallerIpAddress": "127.0.0.1",
				"LastErrorReason": nil, "ClientTlsVersion": nil}},
		{path: "/echo/a", header: keyHeader, status: 200,
			want: map[string]any{"Url": "http://" + "HOST" + "/echo/a", "ApiId": "echo", "OperationId": "any", "RequestSize": 0.0}},
		{path: "/renamed/x?key=primary-key-0001", status: 200,
			want: map[string]any{"Url": "http://HOST/renamed/x?key=***", "BackendUrl": "http://" + be.addr + "/x?key=***", "ApiId": "renamed"}},
		{path: "/echo/a", status: 401,
			want: map[string]any{"ResponseCode": 401.0, "IsRequestSuccess": false, "LastErrorReason": "SubscriptionKeyNotFound",
				"LastErrorSource": "authorization", "LastErrorSection": "inbound", "ApiId": "echo",
				"LastErrorMessage": "Access denied due to missing subscription key. Make sure to include subscription key when making requests to this API.",
				"BackendTime":      nil, "BackendResponseCode": nil, "BackendUrl": nil, "ApimSubscriptionId": nil}},
		{path: "/nowhere", status: 404,
			want: map[string]any{"LastErrorReason": "ApiNotFound", "LastErrorSource": "configuration", "ApiId": nil}},
		{path: "/nobackend/x", status: 500,
			want: map[string]any{"LastErrorReason": "BackendNotConfigured", "ApiId": "nobackend", "IsRequestSuccess": false}},
	}
	for _, rq := range requests {
		if r := do(t, "GET", h.url+rq.path, rq.header, nil); r.status != rq.status {
			t.Fatalf("%s: %d, want %d: %s", rq.path, r.status, rq.status, r.body)
		}
	}
	page, body := fetchLogs(t, h, "")
	if strings.Contains(body, "primary-key-0001") {
		t.Errorf("a subscription key is in the request log records:\n%s", body)
	}
	if len(page.Records) != len(requests) || page.First != 1 || page.Next != uint64(len(requests)) || page.Lost != 0 {
		t.Fatalf("page first %d next %d lost %d with %d records", page.First, page.Next, page.Lost, len(page.Records))
	}
	if len(page.Epoch) != 32 {
		t.Errorf("epoch %q", page.Epoch)
	}
	host := strings.TrimPrefix(h.url, "http://")
	for i, rq := range requests {
		rec := page.Records[i]
		if rec["Sequence"] != float64(i+1) {
			t.Errorf("record %d: Sequence %v", i, rec["Sequence"])
		}
		ts, ok := rec["TimeGenerated"].(string)
		if parsed, err := time.Parse("2006-01-02T15:04:05.000Z", ts); !ok || err != nil || time.Since(parsed) > time.Minute {
			t.Errorf("record %d: TimeGenerated %q is not a recent RFC 3339 UTC time with ms", i, ts)
		}
		if id, _ := rec["CorrelationId"].(string); len(id) != 36 {
			t.Errorf("record %d: CorrelationId %q", i, id)
		}
		for _, k := range []string{"TotalTime", "ClientTime"} {
			if _, ok := rec[k].(float64); !ok {
				t.Errorf("record %d: %s = %v", i, k, rec[k])
			}
		}
		for k, want := range rq.want {
			if s, ok := want.(string); ok {
				want = strings.ReplaceAll(s, "HOST", host)
			}
			got, present := rec[k]
			switch {
			case want == nil && present:
				t.Errorf("%s: %s = %v, want it absent", rq.path, k, got)
			case want != nil && fmt.Sprint(got) != fmt.Sprint(want):
				t.Errorf("%s: %s = %v, want %v", rq.path, k, got, want)
			}
		}
		if rq.status == 200 {
			if bt, ok := rec["BackendTime"].(float64); !ok || bt > rec["TotalTime"].(float64) {
				t.Errorf("%s: BackendTime %v, TotalTime %v", rq.path, rec["BackendTime"], rec["TotalTime"])
			}
		}
	}

	// Paging: after and limit, and next to continue from.
	p2, _ := fetchLogs(t, h, "?after=2&limit=2")
	if len(p2.Records) != 2 || p2.Records[0]["Sequence"] != 3.0 || p2.Next != 4 || p2.First != 1 || p2.Epoch != page.Epoch {
		t.Errorf("after=2&limit=2: next %d, %d records starting %v", p2.Next, len(p2.Records), p2.Records[0]["Sequence"])
	}
	p3, _ := fetchLogs(t, h, fmt.Sprintf("?after=%d", page.Next))
	if len(p3.Records) != 0 || p3.Next != page.Next {
		t.Errorf("nothing new: next %d, %d records", p3.Next, len(p3.Records))
	}
	// Reading the logs is not a request that is logged.
	if p4, _ := fetchLogs(t, h, ""); len(p4.Records) != len(requests) {
		t.Errorf("%d records after reading, want %d", len(p4.Records), len(requests))
	}
}

func TestTelemetryLogsBadRequests(t *testing.T) {
	h := startGateway(t, snapshotFor("127.0.0.1:9"), nil)
	for _, tc := range []struct {
		method, query string
		status        int
		want          string
	}{
		{"GET", "?after=x", 400, `after: \"x\" is not a sequence number`},
		{"GET", "?after=-5", 400, "after:"},
		{"GET", "?limit=0", 400, "limit:"},
		{"GET", "?limit=20000", 400, "between 1 and 10000"},
		{"GET", "?after=1&after=2", 400, "after: given more than once"},
		{"GET", "?since=3", 400, `\"since\": unknown parameter`},
		{"POST", "", 405, "use GET"},
	} {
		r := do(t, tc.method, h.tel+"/telemetry/logs"+tc.query, nil, nil)
		if r.status != tc.status || !strings.Contains(r.body, tc.want) {
			t.Errorf("%s %s: %d %s, want %d with %q", tc.method, tc.query, r.status, r.body, tc.status, tc.want)
		}
		var e struct{ Error string }
		if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Error == "" {
			t.Errorf("%s %s: body is not {\"error\": ...}: %s", tc.method, tc.query, r.body)
		}
	}
	if r := do(t, "GET", h.tel+"/telemetry/status?x=1", nil, nil); r.status != 400 {
		t.Errorf("status with parameters: %d", r.status)
	}
}

func TestTelemetryStatus(t *testing.T) {
	type status struct {
		Epoch                 string `json:"epoch"`
		ConfigurationRevision string `json:"configurationRevision"`
		LoadedAt              string `json:"loadedAt"`
		Ready                 bool   `json:"ready"`
		Version               string `json:"version"`
	}
	get := func(h *harness) status {
		r := do(t, "GET", h.tel+"/telemetry/status", nil, nil)
		var s status
		dec := json.NewDecoder(strings.NewReader(r.body))
		dec.DisallowUnknownFields()
		if r.status != 200 || dec.Decode(&s) != nil {
			t.Fatalf("/telemetry/status: %d %s", r.status, r.body)
		}
		return s
	}
	withVersion := func(o *Options) { o.Version = "1.2.3-test" }
	snap := strings.Replace(snapshotFor("127.0.0.1:9"), `"schemaVersion": "1.0",`, `"schemaVersion": "1.0", "revision": "rev-42",`, 1)
	h := startGateway(t, snap, withVersion)
	s := get(h)
	page, _ := fetchLogs(t, h, "")
	if s.Epoch != page.Epoch || !s.Ready || s.ConfigurationRevision != "rev-42" || s.Version != "1.2.3-test" {
		t.Errorf("status %+v (logs epoch %s)\n%s", s, page.Epoch, h.logs.String())
	}
	if at, err := time.Parse(time.RFC3339, s.LoadedAt); err != nil || time.Since(at) > time.Minute {
		t.Errorf("loadedAt %q", s.LoadedAt)
	}

	empty := startGateway(t, "", withVersion)
	if s := get(empty); s.Ready || s.ConfigurationRevision != "" || s.LoadedAt != "" || s.Epoch == "" || s.Epoch == page.Epoch {
		t.Errorf("before a configuration: %+v", s)
	}
}

// A full ring overwrites the oldest records: the reader is told how many
// it lost, and /metrics counts those no reader had.
func TestTelemetryRingOverflow(t *testing.T) {
	h := startGateway(t, snapshotFor("127.0.0.1:9"), func(o *Options) { o.RequestLogBuffer = 4 })
	for range 10 {
		do(t, "GET", h.url+"/nowhere", nil, nil)
	}
	p, _ := fetchLogs(t, h, "?after=0")
	if p.First != 7 || p.Lost != 6 || p.Next != 10 || len(p.Records) != 4 || p.Records[0]["Sequence"] != 7.0 {
		t.Fatalf("first %d lost %d next %d records %d", p.First, p.Lost, p.Next, len(p.Records))
	}
	for range 2 {
		do(t, "GET", h.url+"/nowhere", nil, nil) // overwrites 7 and 8, already read
	}
	m := mustParseExposition(t, do(t, "GET", h.tel+"/metrics", nil, nil).body)
	for name, want := range map[string]float64{
		"apim_gateway_request_logs_dropped_total": 6, "apim_gateway_request_logs_written_total": 12,
		"apim_gateway_request_logs_unread": 2, "apim_gateway_request_logs_capacity": 4,
	} {
		if got := m.value(t, name, nil); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

const metricsSnapshot = `{"schemaVersion": "1.0",
 "apis": [{"name": "m", "properties": {"path": "m", "serviceUrl": "BACKEND", "subscriptionRequired": false},
   "operations": [
     {"name": "get", "properties": {"method": "GET", "urlTemplate": "/items/{id}"}},
     {"name": "cached", "properties": {"method": "GET", "urlTemplate": "/cached"},
      "policy": "<policies><inbound><base /><cache-lookup vary-by-developer=\"false\" vary-by-developer-groups=\"false\" /></inbound><outbound><base /><cache-store duration=\"60\" /></outbound></policies>"}]}]}`

// The Requests metric and the duration histograms after real requests:
// status categories, backend codes, errors and cache hits and misses each
// land in their own series.
func TestRequestMetrics(t *testing.T) {
	be := startBackend(t, func(ctx *fasthttp.RequestCtx) {
		if strings.HasSuffix(string(ctx.Path()), "/fail") {
			ctx.SetStatusCode(503)
			return
		}
		ctx.Response.Header.Set("Cache-Control", "public, max-age=60")
		ctx.SetBodyString("ok")
	})
	h := startGateway(t, strings.ReplaceAll(metricsSnapshot, "BACKEND", "http://"+be.addr), nil)
	for _, rq := range []struct {
		path   string
		status int
	}{
		{"/m/items/1", 200}, {"/m/items/2", 200}, {"/m/items/fail", 503}, {"/m/nope/nope", 404},
		{"/m/cached", 200}, {"/m/cached", 200},
	} {
		if r := do(t, "GET", h.url+rq.path, map[string]string{"Host": "api.contoso.com"}, nil); r.status != rq.status {
			t.Fatalf("%s: %d, want %d", rq.path, r.status, rq.status)
		}
	}
	m := mustParseExposition(t, do(t, "GET", h.tel+"/metrics", nil, nil).body)
	category := func(code string) string {
		if code == "" {
			return ""
		}
		return code[:1] + "xx"
	}
	series := func(op, code, backend, reason, cache string) map[string]string {
		return map[string]string{"api_id": "m", "operation_id": op, "hostname": "api.contoso.com",
			"gateway_response_code": code, "gateway_response_code_category": category(code),
			"backend_response_code": backend, "backend_response_code_category": category(backend),
			"last_error_reason": reason, "cache": cache}
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"forwarded", series("get", "200", "200", "", "none"), 2},
		{"backend 503", series("get", "503", "503", "", "none"), 1},
		{"unknown operation", series("", "404", "", "OperationNotFound", "none"), 1},
		{"cache miss", series("cached", "200", "200", "", "miss"), 1},
		{"cache hit, no backend call", series("cached", "200", "", "", "hit"), 1},
	} {
		if got := m.value(t, "apim_gateway_requests_total", tc.labels); got != tc.want {
			t.Errorf("%s: %v requests, want %v", tc.name, got, tc.want)
		}
	}
	op := func(o string) map[string]string {
		return map[string]string{"api_id": "m", "operation_id": o, "hostname": "api.contoso.com"}
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"apim_gateway_request_duration_seconds_count", op("get"), 3},
		{"apim_gateway_backend_duration_seconds_count", op("get"), 3},
		{"apim_gateway_client_duration_seconds_count", op("get"), 3},
		{"apim_gateway_request_duration_seconds_count", op("cached"), 2},
		{"apim_gateway_backend_duration_seconds_count", op("cached"), 1},
	} {
		if got := m.value(t, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if m.types["apim_gateway_request_duration_seconds"] != "histogram" || m.types["apim_gateway_requests_total"] != "counter" {
		t.Errorf("types %v", m.types)
	}
	if got := m.value(t, "apim_gateway_metric_series", nil); got != 5 {
		t.Errorf("series gauge %v, want 5", got)
	}
	if got := m.value(t, "apim_gateway_http_responses_total", map[string]string{"code": "2xx"}); got != 4 {
		t.Errorf("2xx responses %v, want 4", got)
	}
	if got := m.value(t, "apim_gateway_config_loaded", nil); got != 1 {
		t.Errorf("config loaded %v", got)
	}
	if _, ok := m.types["apim_gateway_build_info"]; !ok {
		t.Error("no build info")
	}

	// The stdout request log and the records agree on the cache columns.
	page, _ := fetchLogs(t, h, "")
	var caches []string
	for _, r := range page.Records {
		caches = append(caches, fmt.Sprint(r["Cache"]))
	}
	if got := strings.Join(caches, ","); got != "none,none,none,none,miss,hit" {
		t.Errorf("Cache columns %s", got)
	}
}

// ClientTlsVersion is filled for requests that came over TLS.
func TestTelemetryClientTLSVersion(t *testing.T) {
	be := startBackend(t, nil)
	bundle, pool := selfSigned(t, false, "fallback.local")
	dir := t.TempDir()
	certFile := filepath.Join(dir, "tls.pem")
	if err := os.WriteFile(certFile, []byte(bundle), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startGateway(t, snapshotFor(be.addr), func(o *Options) {
		o.HTTPSAddr = "127.0.0.1:0"
		o.TLSCertFile, o.TLSKeyFile = certFile, certFile
	})
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, ServerName: "fallback.local", MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}}}
	resp, err := c.Get("https://" + h.g.HTTPSAddr().String() + "/free/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	page, _ := fetchLogs(t, h, "")
	if len(page.Records) != 1 {
		t.Fatalf("%d records", len(page.Records))
	}
	rec := page.Records[0]
	if rec["ClientTlsVersion"] != "TLS 1.2" || !strings.HasPrefix(fmt.Sprint(rec["Url"]), "https://") {
		t.Errorf("over TLS 1.2: ClientTlsVersion %v, Url %v", rec["ClientTlsVersion"], rec["Url"])
	}
}

// The LastError columns for a policy's error (with its scope) and for a
// failed backend call (with the time spent trying).
func TestTelemetryErrorColumns(t *testing.T) {
	be := startBackend(t, nil)
	dead := freeLoopbackAddr(t)
	h := startGateway(t, policySnapshot(t, be.addr, dead, policyDocs{
		api:       `<policies><inbound><base /><check-header name="X-Tenant" failed-check-httpcode="403" failed-check-error-message="Tenant not allowed" ignore-case="true"><value>contoso</value></check-header></inbound></policies>`,
		operation: `<policies><inbound><base /><choose><when condition="@(context.Request.Headers.ContainsKey(&quot;X-Dead&quot;))"><set-backend-service backend-id="other" /></when></choose></inbound></policies>`,
	}), nil)
	key := map[string]string{"Ocp-Apim-Subscription-Key": goldKey}
	if r := do(t, "GET", h.url+"/p/items/1", key, nil); r.status != 403 {
		t.Fatalf("without the header: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", h.url+"/p/items/1", map[string]string{"Ocp-Apim-Subscription-Key": goldKey, "X-Tenant": "contoso", "X-Dead": "1"}, nil); r.status != 502 {
		t.Fatalf("to a closed port: %d %s", r.status, r.body)
	}
	page, body := fetchLogs(t, h, "")
	if len(page.Records) != 2 {
		t.Fatalf("%d records: %s", len(page.Records), body)
	}
	if strings.Contains(body, goldKey) {
		t.Error("subscription key in the records")
	}
	for i, want := range []map[string]any{
		{"ResponseCode": 403.0, "LastErrorReason": "HeaderNotFound", "LastErrorSource": "check-header", "LastErrorScope": "api",
			"LastErrorSection": "inbound", "LastErrorMessage": "Tenant not allowed", "BackendTime": nil, "ApimSubscriptionId": "gold-sub"},
		{"ResponseCode": 502.0, "LastErrorReason": "BackendConnectionFailure", "LastErrorSource": "forward-request",
			"LastErrorSection": "backend", "BackendResponseCode": nil, "BackendMethod": "GET",
			"BackendUrl": "http://" + dead + "/elsewhere/items/1"},
	} {
		rec := page.Records[i]
		for k, v := range want {
			got, present := rec[k]
			if v == nil {
				if present {
					t.Errorf("record %d: %s = %v, want it absent", i, k, got)
				}
				continue
			}
			if fmt.Sprint(got) != fmt.Sprint(v) {
				t.Errorf("record %d: %s = %v, want %v", i, k, got, v)
			}
		}
	}
	if _, ok := page.Records[1]["BackendTime"].(float64); !ok {
		t.Errorf("a failed backend call has no BackendTime: %v", page.Records[1])
	}
}

// freeLoopbackAddr is a loopback address nothing listens on.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
