package expr

import (
	"errors"
	"net/textproto"
	"sort"
	"strings"
	"time"
)

// In-memory implementation of the host interfaces for tests.

type memMulti map[string][]string // keys stored canonicalised (case-insensitive)

func (m memMulti) Get(name string) ([]string, bool) {
	v, ok := m[textproto.CanonicalMIMEHeaderKey(name)]
	return v, ok
}

func (m memMulti) Names() []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func newMulti(kv ...string) memMulti {
	m := memMulti{}
	for i := 0; i+1 < len(kv); i += 2 {
		k := textproto.CanonicalMIMEHeaderKey(kv[i])
		m[k] = append(m[k], kv[i+1])
	}
	return m
}

type memStrings map[string]string

func (m memStrings) Get(name string) (string, bool) { v, ok := m[name]; return v, ok }
func (m memStrings) Names() []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type memBody struct {
	data     []byte
	consumed bool
	fail     bool
}

func (b *memBody) Read(preserve bool) ([]byte, error) {
	if b.fail {
		return nil, errors.New("body read failed")
	}
	if b.consumed {
		return nil, nil
	}
	if !preserve {
		b.consumed = true
	}
	return b.data, nil
}

type memURL struct {
	scheme, host, path, query string
	port                      int
}

func (u *memURL) Scheme() string { return u.scheme }
func (u *memURL) Host() string   { return u.host }
func (u *memURL) Port() int      { return u.port }
func (u *memURL) Path() string   { return u.path }
func (u *memURL) QueryString() string {
	if u.query == "" {
		return ""
	}
	return "?" + u.query
}
func (u *memURL) Query() MultiMap {
	m := memMulti{}
	for _, kv := range strings.Split(u.query, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		m[k] = append(m[k], v) // query keys are case-sensitive: stored as is
	}
	return rawMulti(m)
}

type rawMulti map[string][]string

func (m rawMulti) Get(name string) ([]string, bool) { v, ok := m[name]; return v, ok }
func (m rawMulti) Names() []string                  { return memMulti(m).Names() }

type memRequest struct {
	method  string
	url     *memURL
	headers memMulti
	ip      string
	matched memStrings
	body    *memBody
}

func (r *memRequest) Method() string               { return r.method }
func (r *memRequest) Url() URL                     { return r.url }
func (r *memRequest) OriginalUrl() URL             { return r.url }
func (r *memRequest) Headers() MultiMap            { return r.headers }
func (r *memRequest) IpAddress() string            { return r.ip }
func (r *memRequest) MatchedParameters() StringMap { return r.matched }
func (r *memRequest) Body() Body {
	if r.body == nil {
		return nil
	}
	return r.body
}

type memResponse struct {
	status  int
	reason  string
	headers memMulti
	body    *memBody
}

func (r *memResponse) StatusCode() int      { return r.status }
func (r *memResponse) StatusReason() string { return r.reason }
func (r *memResponse) Headers() MultiMap    { return r.headers }
func (r *memResponse) Body() Body {
	if r.body == nil {
		return nil
	}
	return r.body
}

type memVars map[string]Value

func (v memVars) Get(name string) (Value, bool) { x, ok := v[name]; return x, ok }
func (v memVars) Set(name string, x Value)      { v[name] = x }

type traceEntry struct{ source, message string }

type memContext struct {
	req     *memRequest
	resp    *memResponse
	vars    memVars
	api     *ApiInfo
	op      *OperationInfo
	product *ProductInfo
	sub     *SubscriptionInfo
	user    *UserInfo
	deploy  *DeploymentInfo
	lastErr *ErrorInfo
	traces  []traceEntry
}

func (c *memContext) Request() Request {
	if c.req == nil {
		return nil
	}
	return c.req
}
func (c *memContext) Response() Response {
	if c.resp == nil {
		return nil
	}
	return c.resp
}
func (c *memContext) Variables() Variables            { return c.vars }
func (c *memContext) Api() *ApiInfo                   { return c.api }
func (c *memContext) Operation() *OperationInfo       { return c.op }
func (c *memContext) Product() *ProductInfo           { return c.product }
func (c *memContext) Subscription() *SubscriptionInfo { return c.sub }
func (c *memContext) User() *UserInfo                 { return c.user }
func (c *memContext) Deployment() *DeploymentInfo     { return c.deploy }
func (c *memContext) LastError() *ErrorInfo           { return c.lastErr }
func (c *memContext) RequestID() string               { return "7b0e5c3a-1f2d-4e5f-8a9b-0c1d2e3f4a5b" }
func (c *memContext) Timestamp() time.Time            { return fixedNow }
func (c *memContext) Elapsed() time.Duration          { return 1500 * time.Millisecond }
func (c *memContext) Trace(source, message string) {
	c.traces = append(c.traces, traceEntry{source, message})
}

var fixedNow = time.Date(2024, 5, 17, 14, 3, 7, 0, time.UTC)

// a JWT with {"alg":"none","typ":"JWT"} and claims sub, iss, aud[], exp, roles[].
const testJwt = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." +
	"eyJzdWIiOiJ1c2VyMSIsImlzcyI6Imh0dHBzOi8vaXNzdWVyIiwiYXVkIjpbImFwaTEiLCJhcGkyIl0sImV4cCI6MTcxNTk1NDU4Nywicm9sZXMiOlsiYWRtaW4iLCJyZWFkZXIiXX0."

func newTestContext() *memContext {
	return &memContext{
		req: &memRequest{
			method:  "POST",
			url:     &memURL{scheme: "https", host: "api.contoso.com", port: 443, path: "/orders/42", query: "a=1&b=x&b=y"},
			headers: newMulti("Authorization", "Bearer "+testJwt, "Content-Type", "application/json", "X-Multi", "1", "X-Multi", "2"),
			ip:      "10.1.2.3",
			matched: memStrings{"id": "42"},
			body:    &memBody{data: []byte(`{"name":"widget","qty":3,"tags":["a","b"],"price":9.5,"nested":{"ok":true}}`)},
		},
		resp:    &memResponse{status: 404, reason: "Not Found", headers: newMulti("Content-Type", "application/json"), body: &memBody{data: []byte(`[1,2,3]`)}},
		vars:    memVars{"x": String("hello"), "n": Int(5), "flag": Bool(true), "obj": mustJSON(`{"a":{"b":"c"},"list":[1,2]}`), "backendResp": Host(&memResponse{status: 200, headers: newMulti(), body: &memBody{data: []byte(`{"token":"t1"}`)}})},
		api:     &ApiInfo{Id: "orders-api", Name: "Orders", Path: "orders", Version: "v1", Revision: "1"},
		op:      &OperationInfo{Id: "get-order", Name: "Get order", Method: "GET", UrlTemplate: "/orders/{id}"},
		product: &ProductInfo{Id: "starter", Name: "Starter"},
		sub:     &SubscriptionInfo{Id: "sub1", Name: "Sub One", Key: "k1", PrimaryKey: "k1", SecondaryKey: "k2"},
		user:    &UserInfo{Id: "u1", Email: "u@contoso.com", Groups: []GroupInfo{{Id: "admins", Name: "Admins"}, {Id: "devs", Name: "Devs"}}},
		deploy:  &DeploymentInfo{Region: "West Europe", ServiceName: "contoso-apim", GatewayId: "gw1"},
		lastErr: &ErrorInfo{Source: "validate-jwt", Reason: "TokenExpired", Message: "expired", Section: "inbound"},
	}
}

func mustJSON(s string) Value {
	v, err := ParseJSON([]byte(s))
	if err != nil {
		panic(err)
	}
	return v
}
