package configsync

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/credentials"
)

const testSig = "c2VjcmV0LXNpZ25hdHVyZS1ub3QtZm9yLWxvZ3M="

func testToken(t *testing.T) credentials.GatewayToken {
	t.Helper()
	exp := time.Now().UTC().Add(20 * 24 * time.Hour).Format(credentials.ExpiryLayout)
	tok, err := credentials.ParseGatewayToken("GatewayKey gw1&" + exp + "&" + testSig)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

const (
	goodV1 = `{"schemaVersion":"1.0","revision":"v1"}`
	goodV2 = `{"schemaVersion":"1.0","revision":"v2"}`
	badV3  = `{"schemaVersion":"1.0","revision":"v3","apis":[{"name":"a"}],"bogus":1}`
)

// reply is one scripted answer of the fake endpoint.
type reply struct {
	status int
	body   string
	header map[string]string
}

type seen struct {
	method, path, query string
	header              http.Header
	body                []byte
}

// fakeEndpoint is a TLS configuration endpoint answering configuration
// requests from a script (the last entry repeats) and heartbeats with 204.
type fakeEndpoint struct {
	srv *httptest.Server

	mu         sync.Mutex
	script     []reply
	requests   []seen
	heartbeats []seen
}

func newFake(t *testing.T, script ...reply) *fakeEndpoint {
	f := &fakeEndpoint{script: script}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeEndpoint) setScript(r ...reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script = r
}

func (f *fakeEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s := seen{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, header: r.Header.Clone(), body: body}
	f.mu.Lock()
	if strings.HasSuffix(r.URL.Path, "/heartbeat") {
		f.heartbeats = append(f.heartbeats, s)
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	f.requests = append(f.requests, s)
	var rp reply
	if len(f.script) > 0 {
		rp = f.script[0]
		if len(f.script) > 1 {
			f.script = f.script[1:]
		}
	}
	f.mu.Unlock()
	for k, v := range rp.header {
		w.Header().Set(k, v)
	}
	if rp.status == 0 {
		rp.status = http.StatusServiceUnavailable
	}
	w.WriteHeader(rp.status)
	_, _ = io.WriteString(w, rp.body)
}

func (f *fakeEndpoint) configRequests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.requests...)
}

func (f *fakeEndpoint) heartbeatRequests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.heartbeats...)
}

// client returns a Client that trusts the fake's certificate, with fast,
// recorded backoff sleeps.
func (f *fakeEndpoint) client(t *testing.T, cred credentials.Credential, opts Options) (*Client, *[]time.Duration) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(f.srv.Certificate())
	hc := NewHTTPClient(nil)
	hc.Transport.(*http.Transport).TLSClientConfig.RootCAs = pool
	opts.HTTPClient = hc
	c, err := NewClient(f.srv.URL+"/base/", "gw1", cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	slept := &[]time.Duration{}
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		*slept = append(*slept, d)
		mu.Unlock()
		return ctx.Err()
	}
	return c, slept
}

func decodeHeartbeat(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("heartbeat body %q: %v", b, err)
	}
	return m
}

// swapCred is a credential whose header the test changes.
type swapCred struct {
	mu     sync.Mutex
	header string
}

func (c *swapCred) set(h string) { c.mu.Lock(); c.header = h; c.mu.Unlock() }

func (c *swapCred) AuthorizationHeader(context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.header, nil
}
