package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"sigs.k8s.io/yaml"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/server"
)

// suite is one testdata file: the cases of one documentation area.
type suite struct {
	// Area names what the cases cover, e.g. "set-header".
	Area  string   `json:"area"`
	Cases []*tcase `json:"cases"`
	// Expressions are cases of one policy expression each: the expression
	// builds the body of a return-response on ExprRequest, and the body
	// must equal Want.
	Expressions []exprCase `json:"expressions,omitempty"`
	ExprRequest request    `json:"exprRequest,omitempty"`
}

type exprCase struct {
	Doc      string `json:"doc"`
	Fact     string `json:"fact"`
	Expr     string `json:"expr"`
	Want     string `json:"want"`
	KnownGap string `json:"knownGap,omitempty"`
}

// expand turns the suite's expression cases into ordinary cases.
func (s *suite) expand() {
	for _, e := range s.Expressions {
		body := e.Want
		s.Cases = append(s.Cases, &tcase{
			Name: e.Expr, Doc: e.Doc, Fact: e.Fact, KnownGap: e.KnownGap,
			Operation: "<policies><inbound><base /><return-response><set-body>" + xmlEscape(e.Expr) +
				"</set-body></return-response></inbound></policies>",
			Steps: []step{{Request: s.ExprRequest, Expect: expect{Status: http.StatusOK, Body: &body}}},
		})
	}
}

// xmlEscape escapes text for an XML element's content.
func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// tcase is one documented behaviour.
type tcase struct {
	Name string `json:"name"`
	// Doc is the Learn page that states the behaviour.
	Doc string `json:"doc"`
	// Fact is the documented behaviour, in our words.
	Fact string `json:"fact"`
	// KnownGap, when set, says why the gateway does not meet the fact yet;
	// the case must then fail.
	KnownGap string `json:"knownGap,omitempty"`

	// Policies per scope; an empty one is not set. Product scope applies
	// when the request carries the key of the "gold" subscription.
	Global    string `json:"global,omitempty"`
	Product   string `json:"product,omitempty"`
	API       string `json:"api,omitempty"`
	Operation string `json:"operation,omitempty"`
	// OperationName is the operation Operation applies to (default get-item).
	OperationName string `json:"operationName,omitempty"`
	// Snapshot holds extra snapshot entities (namedValues, backends,
	// policyFragments, ...), appended to the base snapshot's lists.
	// "{{backend}}" in it is replaced by the backend's base URL.
	Snapshot map[string]json.RawMessage `json:"snapshot,omitempty"`
	// API properties merged over the base API (e.g. subscriptionRequired).
	APIProperties map[string]any `json:"apiProperties,omitempty"`

	// Backend answers for paths the backend serves; others echo.
	Backend map[string]response `json:"backend,omitempty"`

	Steps []step `json:"steps"`
}

type step struct {
	Request request `json:"request"`
	Expect  expect  `json:"expect"`
}

type request struct {
	Method  string            `json:"method,omitempty"`
	Path    string            `json:"path"` // after the API path, e.g. /items/7?x=1
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
	// Key sends the gold subscription's key (product scope applies).
	Key bool `json:"key,omitempty"`
}

type response struct {
	Status  int               `json:"status,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
	// DelayMs holds the answer back (timeouts).
	DelayMs int `json:"delayMs,omitempty"`
}

type expect struct {
	Status        int               `json:"status,omitempty"`
	Headers       map[string]string `json:"headers,omitempty"`
	AbsentHeaders []string          `json:"absentHeaders,omitempty"`
	// PresentHeaders must be there, whatever their value.
	PresentHeaders []string        `json:"presentHeaders,omitempty"`
	Body           *string         `json:"body,omitempty"`
	BodyContains   []string        `json:"bodyContains,omitempty"`
	BodyJSON       json.RawMessage `json:"bodyJSON,omitempty"`
	Backend        *backendExpect  `json:"backend,omitempty"`
}

type backendExpect struct {
	// Called false asserts the backend was not reached.
	Called        *bool             `json:"called,omitempty"`
	Method        string            `json:"method,omitempty"`
	URI           string            `json:"uri,omitempty"`
	Headers       map[string]string `json:"headers,omitempty"`
	AbsentHeaders []string          `json:"absentHeaders,omitempty"`
	Body          *string           `json:"body,omitempty"`
}

// seen is one request the backend received.
type seen struct {
	Method string
	URI    string
	Header http.Header
	Body   string
}

// recorder is the loopback backend: it answers per path from the case and
// echoes otherwise, and remembers what it received.
type recorder struct {
	mu    sync.Mutex
	reqs  []seen
	paths map[string]response
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, seen{Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone(), Body: string(body)})
	rec.mu.Unlock()
	if resp, ok := rec.paths[r.URL.Path]; ok {
		if resp.DelayMs > 0 {
			select {
			case <-time.After(time.Duration(resp.DelayMs) * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		for k, v := range resp.Headers {
			w.Header().Set(k, v)
		}
		status := resp.Status
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, resp.Body)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"method": r.Method, "uri": r.RequestURI, "body": string(body)})
}

func (rec *recorder) take() []seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := rec.reqs
	rec.reqs = nil
	return out
}

// goldKey is the subscription key of the gold product's subscription.
const goldKey = "conformance-gold-key-0123456789"

// baseSnapshot is the configuration every case starts from: API "shop" at
// /shop with four operations, the "gold" product holding it and a
// subscription to that product.
func baseSnapshot(backendURL string, tc *tcase) (map[string]any, error) {
	apiProps := map[string]any{
		"displayName": "Shop", "path": "shop", "serviceUrl": backendURL + "/svc",
		"protocols": []string{"http", "https"}, "subscriptionRequired": false,
	}
	for k, v := range tc.APIProperties {
		apiProps[k] = v
	}
	op := func(name, method, tmpl string, extra map[string]any) map[string]any {
		props := map[string]any{"displayName": name, "method": method, "urlTemplate": tmpl}
		for k, v := range extra {
			props[k] = v
		}
		o := map[string]any{"name": name, "properties": props}
		opName := tc.OperationName
		if opName == "" {
			opName = "get-item"
		}
		if name == opName && tc.Operation != "" {
			o["policy"] = tc.Operation
		}
		return o
	}
	idParam := []map[string]any{{"name": "id", "type": "string", "required": true}}
	api := map[string]any{
		"name":       "shop",
		"properties": apiProps,
		"operations": []any{
			op("list-items", "GET", "/items", nil),
			op("get-item", "GET", "/items/{id}", map[string]any{"templateParameters": idParam,
				"responses": []map[string]any{{"statusCode": 200, "representations": []map[string]any{
					{"contentType": "application/json", "examples": map[string]any{"default": map[string]any{"value": map[string]any{"id": "sample", "price": 10}}}}}}}}),
			op("create-item", "POST", "/items", nil),
			op("update-item", "PUT", "/items/{id}", map[string]any{"templateParameters": idParam}),
			op("delete-item", "DELETE", "/items/{id}", map[string]any{"templateParameters": idParam}),
			op("options-any", "OPTIONS", "/options/*", nil),
		},
	}
	if tc.API != "" {
		api["policy"] = tc.API
	}
	product := map[string]any{"name": "gold", "properties": map[string]any{"displayName": "Gold", "subscriptionRequired": true, "state": "published"}, "apis": []string{"shop"}}
	if tc.Product != "" {
		product["policy"] = tc.Product
	}
	snap := map[string]any{
		"schemaVersion": "1.0",
		"revision":      "conformance",
		"gateway":       map[string]any{"name": "conformance"},
		"apis":          []any{api},
		"products":      []any{product},
		"subscriptions": []any{map[string]any{"name": "gold-sub", "properties": map[string]any{
			"displayName": "Gold subscription", "scope": "/products/gold", "primaryKey": goldKey, "secondaryKey": goldKey + "-2", "state": "active"}}},
	}
	if tc.Global != "" {
		snap["policy"] = tc.Global
	}
	for key, raw := range tc.Snapshot {
		var items []any
		text := strings.ReplaceAll(string(raw), "{{backend}}", backendURL)
		if err := json.Unmarshal([]byte(text), &items); err != nil {
			return nil, fmt.Errorf("snapshot.%s: %w", key, err)
		}
		existing, _ := snap[key].([]any)
		snap[key] = append(existing, items...)
	}
	return snap, nil
}

// withBackend returns a copy of tc whose policies have "{{backend}}"
// replaced by the backend's base URL (send-request targets).
func withBackend(tc *tcase, url string) *tcase {
	c := *tc
	for _, p := range []*string{&c.Global, &c.Product, &c.API, &c.Operation} {
		*p = strings.ReplaceAll(*p, "{{backend}}", url)
	}
	return &c
}

// gateway runs one real gateway for a case.
type gateway struct {
	url  string
	stop func()
}

func startGateway(t *testing.T, snap map[string]any) (*gateway, error) {
	dir := t.TempDir()
	data, err := json.MarshalIndent(snap, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "snapshot.json"), data, 0o600); err != nil {
		return nil, err
	}
	opts := server.DefaultOptions()
	opts.ConfigPath = dir
	opts.HTTPAddr = "127.0.0.1:0"
	opts.HTTPSAddr = ""
	opts.TelemetryAddr = ""
	opts.ShutdownDelay = 0
	opts.ShutdownTimeout = 5 * time.Second
	opts.ReloadInterval = time.Hour
	opts.StrictPolicies = true // a case must not pass because a policy was skipped
	g, err := server.New(opts, zerolog.Nop(), zerolog.Nop())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	select {
	case <-g.Ready():
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("gateway: %w", err)
	case <-time.After(10 * time.Second):
		cancel()
		return nil, fmt.Errorf("gateway did not become ready (a snapshot the loader refused?)")
	}
	return &gateway{url: "http://" + g.HTTPAddr().String(), stop: func() { cancel(); <-done }}, nil
}

// runCase runs every step and returns the mismatches (empty: the fact holds).
func runCase(t *testing.T, tc *tcase) []string {
	rec := &recorder{paths: map[string]response{}}
	for p, r := range tc.Backend {
		rec.paths["/svc"+p] = r
	}
	be := httptest.NewServer(rec)
	defer be.Close()
	snap, err := baseSnapshot(be.URL, withBackend(tc, be.URL))
	if err != nil {
		return []string{err.Error()}
	}
	gw, err := startGateway(t, snap)
	if err != nil {
		return []string{err.Error()}
	}
	defer gw.stop()
	client := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var problems []string
	for i, st := range tc.Steps {
		for _, p := range runStep(client, gw.url, rec, st) {
			problems = append(problems, fmt.Sprintf("step %d: %s", i+1, p))
		}
	}
	return problems
}

func runStep(client *http.Client, base string, rec *recorder, st step) []string {
	method := st.Request.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if st.Request.Body != "" {
		body = strings.NewReader(st.Request.Body)
	}
	req, err := http.NewRequest(method, base+"/shop"+st.Request.Path, body)
	if err != nil {
		return []string{err.Error()}
	}
	for k, v := range st.Request.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if st.Request.Key {
		req.Header.Set("Ocp-Apim-Subscription-Key", goldKey)
	}
	resp, err := client.Do(req)
	if err != nil {
		return []string{"request: " + err.Error()}
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var p []string
	e := st.Expect
	if e.Status != 0 && resp.StatusCode != e.Status {
		p = append(p, fmt.Sprintf("status %d, want %d (body %q)", resp.StatusCode, e.Status, clip(got)))
	}
	p = append(p, headerProblems("response", resp.Header, e.Headers, e.AbsentHeaders)...)
	for _, k := range e.PresentHeaders {
		if resp.Header.Get(k) == "" {
			p = append(p, fmt.Sprintf("response header %s absent, want present", k))
		}
	}
	if e.Body != nil && string(got) != *e.Body {
		p = append(p, fmt.Sprintf("body %q, want %q", clip(got), *e.Body))
	}
	for _, s := range e.BodyContains {
		if !bytes.Contains(got, []byte(s)) {
			p = append(p, fmt.Sprintf("body %q does not contain %q", clip(got), s))
		}
	}
	if len(e.BodyJSON) > 0 {
		var a, b any
		if err := json.Unmarshal(got, &a); err != nil {
			p = append(p, fmt.Sprintf("body %q is not JSON: %v", clip(got), err))
		} else if err := json.Unmarshal(e.BodyJSON, &b); err != nil {
			p = append(p, "bodyJSON in the case: "+err.Error())
		} else if !reflect.DeepEqual(a, b) {
			p = append(p, fmt.Sprintf("body %s, want JSON %s", clip(got), e.BodyJSON))
		}
	}
	calls := rec.take()
	if be := e.Backend; be != nil {
		if be.Called != nil && !*be.Called {
			if len(calls) > 0 {
				p = append(p, fmt.Sprintf("backend called (%s %s), want not called", calls[0].Method, calls[0].URI))
			}
			return p
		}
		if len(calls) == 0 {
			return append(p, "backend not called")
		}
		last := calls[len(calls)-1]
		if be.Method != "" && last.Method != be.Method {
			p = append(p, fmt.Sprintf("backend method %s, want %s", last.Method, be.Method))
		}
		if be.URI != "" && last.URI != be.URI {
			p = append(p, fmt.Sprintf("backend URI %s, want %s", last.URI, be.URI))
		}
		p = append(p, headerProblems("backend", last.Header, be.Headers, be.AbsentHeaders)...)
		if be.Body != nil && last.Body != *be.Body {
			p = append(p, fmt.Sprintf("backend body %q, want %q", last.Body, *be.Body))
		}
	}
	return p
}

func headerProblems(where string, h http.Header, want map[string]string, absent []string) []string {
	var p []string
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if got := strings.Join(h.Values(k), ", "); got != want[k] {
			p = append(p, fmt.Sprintf("%s header %s = %q, want %q", where, k, got, want[k]))
		}
	}
	for _, k := range absent {
		if v := h.Values(k); len(v) > 0 {
			p = append(p, fmt.Sprintf("%s header %s = %q, want absent", where, k, v))
		}
	}
	return p
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

func loadSuites(t *testing.T) []*suite {
	t.Helper()
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	var out []*suite
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var s suite
		if err := yaml.UnmarshalStrict(data, &s); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		s.expand()
		for i, c := range s.Cases {
			if c.Name == "" || c.Doc == "" || c.Fact == "" || len(c.Steps) == 0 {
				t.Fatalf("%s: case %d needs name, doc, fact and steps", f, i+1)
			}
			if !strings.HasPrefix(c.Doc, "https://learn.microsoft.com/") {
				t.Fatalf("%s: case %q: doc must be a Learn page", f, c.Name)
			}
		}
		out = append(out, &s)
	}
	return out
}

// TestDocumentedBehaviour runs every case; the log line at the end is the
// figure the policy issue asks for.
func TestDocumentedBehaviour(t *testing.T) {
	suites := loadSuites(t)
	var total, held, gaps atomic.Int64
	t.Run("cases", func(t *testing.T) {
		for _, s := range suites {
			for _, tc := range s.Cases {
				t.Run(s.Area+"/"+tc.Name, func(t *testing.T) {
					t.Parallel()
					total.Add(1)
					problems := runCase(t, tc)
					switch {
					case tc.KnownGap == "" && len(problems) > 0:
						t.Errorf("%s\nfact: %s\n%s", tc.Doc, tc.Fact, strings.Join(problems, "\n"))
					case tc.KnownGap == "":
						held.Add(1)
					case len(problems) == 0:
						t.Errorf("known gap %q no longer fails: remove knownGap", tc.KnownGap)
					default:
						gaps.Add(1)
					}
				})
			}
		}
	})
	t.Logf("documented behaviours: %d cases, %d hold, %d known gaps", total.Load(), held.Load(), gaps.Load())
}
