package server

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

const (
	bodyMissingKey = `{ "statusCode": 401, "message": "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API." }`
	bodyInvalidKey = `{ "statusCode": 401, "message": "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription." }`
	bodyNotFound   = `{ "statusCode": 404, "message": "Resource not found" }`
)

func TestSubscriptionAndRouting(t *testing.T) {
	be := startBackend(t, nil)
	h := startGateway(t, snapshotFor(be.addr), nil)

	tests := []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		wantStatus int
		wantBody   string // exact, when set
		wantURI    string // what the backend received, when set
	}{
		{name: "missing key", path: "/echo/resource", wantStatus: 401, wantBody: bodyMissingKey},
		{name: "invalid key", path: "/echo/resource", header: map[string]string{"Ocp-Apim-Subscription-Key": "nope-nope-nope"}, wantStatus: 401, wantBody: bodyInvalidKey},
		{name: "primary key in header", path: "/echo/resource", header: map[string]string{"Ocp-Apim-Subscription-Key": "primary-key-0001"}, wantStatus: 200, wantURI: "/base/resource"},
		{name: "secondary key in header", path: "/echo/resource", header: map[string]string{"Ocp-Apim-Subscription-Key": "secondary-key-0001"}, wantStatus: 200},
		{name: "key in query", path: "/echo/resource?a=1&subscription-key=primary-key-0001", wantStatus: 200, wantURI: "/base/resource?a=1&subscription-key=primary-key-0001"},
		{name: "header wins over query", path: "/echo/resource?subscription-key=primary-key-0001", header: map[string]string{"Ocp-Apim-Subscription-Key": "wrong-key-wrong"}, wantStatus: 401, wantBody: bodyInvalidKey},
		{name: "header name is case-insensitive", path: "/echo/r", header: map[string]string{"ocp-apim-subscription-key": "primary-key-0001"}, wantStatus: 200},
		{name: "all-APIs subscription", path: "/other/x", header: map[string]string{"Ocp-Apim-Subscription-Key": "all-apis-key-0001"}, wantStatus: 200},
		{name: "API-scoped subscription on its API", path: "/other/x", header: map[string]string{"Ocp-Apim-Subscription-Key": "other-api-key-0001"}, wantStatus: 200},
		{name: "API-scoped subscription on another API", path: "/echo/x", header: map[string]string{"Ocp-Apim-Subscription-Key": "other-api-key-0001"}, wantStatus: 401, wantBody: bodyInvalidKey},
		{name: "product subscription outside its product", path: "/other/x", header: map[string]string{"Ocp-Apim-Subscription-Key": "primary-key-0001"}, wantStatus: 401, wantBody: bodyInvalidKey},
		{name: "suspended subscription", path: "/other/x", header: map[string]string{"Ocp-Apim-Subscription-Key": "suspended-key-0001"}, wantStatus: 401, wantBody: bodyInvalidKey},
		{name: "renamed header", path: "/renamed/x", header: map[string]string{"X-Api-Key": "primary-key-0001"}, wantStatus: 200},
		{name: "renamed query", path: "/renamed/x?key=primary-key-0001", wantStatus: 200},
		{name: "default header ignored when renamed", path: "/renamed/x", header: map[string]string{"Ocp-Apim-Subscription-Key": "primary-key-0001"}, wantStatus: 401, wantBody: bodyMissingKey},
		{name: "subscription not required", path: "/free/x", wantStatus: 200},
		{name: "subscription not required but bad key", path: "/free/x", header: map[string]string{"Ocp-Apim-Subscription-Key": "nope-nope-nope"}, wantStatus: 401, wantBody: bodyInvalidKey},
		{name: "open product", path: "/open/x", wantStatus: 200},
		{name: "unknown API", path: "/nowhere", wantStatus: 404, wantBody: bodyNotFound},
		{name: "operation method mismatch", method: "POST", path: "/other/x", header: map[string]string{"Ocp-Apim-Subscription-Key": "all-apis-key-0001"}, wantStatus: 404, wantBody: bodyNotFound},
		{name: "no backend configured", path: "/nobackend/x", wantStatus: 500},
		{name: "dot segments refused", path: "/echo/a/%2e%2e/b", header: map[string]string{"Ocp-Apim-Subscription-Key": "primary-key-0001"}, wantStatus: 400},
		{name: "template operation", path: "/echo/users/7/orders/9?x=%20y", header: map[string]string{"Ocp-Apim-Subscription-Key": "primary-key-0001"}, wantStatus: 200, wantURI: "/base/users/7/orders/9?x=%20y"},
		{name: "encoded path kept raw", path: "/echo/a%2Fb/c", header: map[string]string{"Ocp-Apim-Subscription-Key": "primary-key-0001"}, wantStatus: 200, wantURI: "/base/a%2Fb/c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			method := tc.method
			if method == "" {
				method = "GET"
			}
			r := do(t, method, h.url+tc.path, tc.header, nil)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s", r.status, tc.wantStatus, r.body)
			}
			if tc.wantBody != "" && r.body != tc.wantBody {
				t.Errorf("body\n got %s\nwant %s", r.body, tc.wantBody)
			}
			if tc.wantStatus >= 400 && r.header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q, want application/json", r.header.Get("Content-Type"))
			}
			if tc.wantURI != "" {
				if e := decodeEcho(t, r); e.URI != tc.wantURI {
					t.Errorf("backend got %q, want %q", e.URI, tc.wantURI)
				}
			}
		})
	}
}

// The 401 answers must look like the managed gateway's on the wire: the
// "Access Denied" reason phrase and the WWW-Authenticate challenge.
func TestUnauthorizedWireFormat(t *testing.T) {
	be := startBackend(t, nil)
	h := startGateway(t, snapshotFor(be.addr), nil)
	conn, err := net.Dial("tcp", h.g.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("GET /renamed/x HTTP/1.1\r\nHost: api.contoso.com\r\n\r\n"))
	br := bufio.NewReader(conn)
	line, _ := br.ReadString('\n')
	if line != "HTTP/1.1 401 Access Denied\r\n" {
		t.Errorf("status line %q", line)
	}
	var challenge string
	for {
		l, err := br.ReadString('\n')
		if err != nil || l == "\r\n" {
			break
		}
		if strings.HasPrefix(l, "WWW-Authenticate: ") {
			challenge = strings.TrimSpace(strings.TrimPrefix(l, "WWW-Authenticate: "))
		}
	}
	want := `AzureApiManagementKey realm="http://api.contoso.com/renamed",name="X-Api-Key",type="header"`
	if challenge != want {
		t.Errorf("WWW-Authenticate %q, want %q (header name spelled exactly)", challenge, want)
	}
}

func TestForwardingHeaders(t *testing.T) {
	be := startBackend(t, nil)
	h := startGateway(t, snapshotFor(be.addr), nil)
	r := do(t, "GET", h.url+"/echo/resource", map[string]string{
		"Ocp-Apim-Subscription-Key": "primary-key-0001",
		"Host":                      "api.contoso.com",
		"X-Forwarded-For":           "203.0.113.7",
		"Connection":                "keep-alive, X-Hop",
		"X-Hop":                     "must not pass",
		"Keep-Alive":                "timeout=5",
		"Proxy-Authorization":       "Basic Zm9vOmJhcg==",
		"TE":                        "trailers",
		"X-Custom":                  "kept",
	}, nil)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	e := decodeEcho(t, r)
	checks := map[string]string{
		"X-Forwarded-For":   "203.0.113.7, 127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "api.contoso.com",
		"Host":              be.addr,
		"X-Custom":          "kept",
	}
	for k, want := range checks {
		if got := e.Headers[k]; got != want {
			t.Errorf("backend header %s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization", "Te", "TE", "Upgrade"} {
		if v, ok := e.Headers[k]; ok {
			t.Errorf("hop-by-hop header %s reached the backend: %q", k, v)
		}
	}
	if r.header.Get("X-Backend") != "yes" {
		t.Errorf("backend response header lost")
	}
}

func TestBackendFailures(t *testing.T) {
	slow := startBackend(t, func(ctx *fasthttp.RequestCtx) {
		time.Sleep(2 * time.Second)
		ctx.SetBodyString("late")
	})
	// A closed port: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	snap := `{"schemaVersion": "1.0", "apis": [
	  {"name": "dead", "properties": {"path": "dead", "serviceUrl": "http://` + dead + `", "subscriptionRequired": false},
	   "operations": [{"name": "any", "properties": {"method": "GET", "urlTemplate": "/*"}}]},
	  {"name": "slow", "properties": {"path": "slow", "serviceUrl": "http://` + slow.addr + `", "subscriptionRequired": false},
	   "operations": [{"name": "any", "properties": {"method": "GET", "urlTemplate": "/*"}}]}]}`
	h := startGateway(t, snap, func(o *Options) { o.BackendTimeout = 300 * time.Millisecond })

	r := do(t, "GET", h.url+"/dead/x", nil, nil)
	if r.status != 502 || !strings.Contains(r.body, `"statusCode": 502`) {
		t.Errorf("refused backend: %d %s", r.status, r.body)
	}
	start := time.Now()
	r = do(t, "GET", h.url+"/slow/x", nil, nil)
	if r.status != 504 || !strings.Contains(r.body, `"statusCode": 504`) {
		t.Errorf("slow backend: %d %s", r.status, r.body)
	}
	if el := time.Since(start); el > 1500*time.Millisecond {
		t.Errorf("504 took %v, the timeout is 300ms", el)
	}
	waitFor(t, "request logs with LastErrorReason", func() bool {
		l := h.logs.String()
		return strings.Contains(l, `"LastErrorReason":"BackendConnectionFailure"`) && strings.Contains(l, `"LastErrorReason":"Timeout"`)
	})
}

func TestHealth(t *testing.T) {
	h := startGateway(t, "", nil) // no snapshot yet
	for _, base := range []string{h.url, h.tel} {
		for _, p := range []string{StatusPath, InternalStatusPath} {
			if r := do(t, "GET", base+p, nil, nil); r.status != 503 {
				t.Errorf("%s%s before configuration: %d, want 503", base, p, r.status)
			}
		}
	}
	if r := do(t, "GET", h.url+"/echo/x", nil, nil); r.status != 503 {
		t.Errorf("traffic before configuration: %d, want 503", r.status)
	}
	be := startBackend(t, nil)
	writeSnapshot(t, h.dir, snapshotFor(be.addr))
	waitFor(t, "health 200 after the snapshot appears", func() bool {
		return do(t, "GET", h.url+StatusPath, nil, nil).status == 200
	})
	if r := do(t, "GET", h.tel+"/metrics", nil, nil); !strings.Contains(r.body, "apim_gateway_config_loaded 1") {
		t.Errorf("metrics: %s", r.body)
	}
}

func TestRequestLogNeverHoldsKeys(t *testing.T) {
	be := startBackend(t, nil)
	h := startGateway(t, snapshotFor(be.addr), nil)
	do(t, "GET", h.url+"/echo/a?subscription-key=primary-key-0001&x=1", nil, nil)
	do(t, "GET", h.url+"/echo/a", map[string]string{"Ocp-Apim-Subscription-Key": "secondary-key-0001"}, nil)
	do(t, "GET", h.url+"/echo/a?subscription-key=guessed-key-9999", nil, nil)
	do(t, "GET", h.url+"/renamed/a?key=primary-key-0001", nil, nil)
	waitFor(t, "four request log lines", func() bool { return strings.Count(h.logs.String(), `"Category":"GatewayLogs"`) >= 4 })
	logs := h.logs.String()
	for _, secret := range []string{"primary-key-0001", "secondary-key-0001", "guessed-key-9999"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain a subscription key %q:\n%s", secret, logs)
		}
	}
	mustContain(t, "request log", logs, `"Url":"http://`, `subscription-key=***&x=1`, `key=***`, `"ApimSubscriptionId":"prod-sub"`, `"ProductId":"starter"`, `"ApiId":"echo"`, `"OperationId":"any"`, `"BackendResponseCode":200`)
}

func TestRequestLogSampling(t *testing.T) {
	be := startBackend(t, nil)
	h := startGateway(t, snapshotFor(be.addr), func(o *Options) { o.RequestLogSampling = 0 })
	for range 20 {
		do(t, "GET", h.url+"/free/ok", nil, nil)
	}
	do(t, "GET", h.url+"/nowhere", nil, nil)
	waitFor(t, "the failure's log line", func() bool { return strings.Contains(h.logs.String(), `"ResponseCode":404`) })
	if n := strings.Count(h.logs.String(), `"ResponseCode":200`); n != 0 {
		t.Errorf("sampling 0 logged %d successful requests", n)
	}
}

func TestBackendConnectionsReused(t *testing.T) {
	be := startBackend(t, nil)
	h := startGateway(t, snapshotFor(be.addr), nil)
	for range 50 {
		if r := do(t, "GET", h.url+"/free/x", nil, nil); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
	}
	if n := be.connections(); n != 1 {
		t.Errorf("50 sequential requests opened %d backend connections, want 1", n)
	}
	// A new configuration that keeps the backend keeps its connections.
	writeSnapshot(t, h.dir, strings.Replace(snapshotFor(be.addr), `"schemaVersion": "1.0",`, `"schemaVersion": "1.0", "revision": "2",`, 1))
	waitFor(t, "reload", func() bool { return h.g.metrics.reloads.Load() >= 2 })
	for range 10 {
		do(t, "GET", h.url+"/free/x", nil, nil)
	}
	if n := be.connections(); n != 1 {
		t.Errorf("after a reload the backend saw %d connections, want 1 (pool kept)", n)
	}
}

func TestGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	be := startBackend(t, func(ctx *fasthttp.RequestCtx) {
		started <- struct{}{}
		<-release
		ctx.SetBodyString("finished")
	})
	h := startGateway(t, snapshotFor(be.addr), func(o *Options) {
		o.ShutdownDelay = 300 * time.Millisecond
		o.ShutdownTimeout = 5 * time.Second
	})
	result := make(chan response, 1)
	go func() { result <- do(t, "GET", h.url+"/free/slow", nil, nil) }()
	<-started
	h.cancel()
	waitFor(t, "health 503 while draining", func() bool {
		resp, err := http.Get(h.url + StatusPath)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 503
	})
	close(release)
	r := <-result
	if r.status != 200 || r.body != "finished" {
		t.Errorf("in-flight request: %d %q", r.status, r.body)
	}
	select {
	case <-h.done:
	case <-time.After(6 * time.Second):
		t.Fatal("Run did not return within the grace period")
	}
	h.done <- nil // let the cleanup's stop return
}
