package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// policySnapshot renders a snapshot with one API "p" (operations "get" and
// "mock"), product "gold" holding it, an open product-less API "q", and
// the given policies. Empty strings mean no policy at that scope.
type policyDocs struct {
	global, product, api, operation, fragment string
	namedValues                               string // JSON array body
}

func policySnapshot(t *testing.T, backend, other string, d policyDocs) string {
	t.Helper()
	doc := map[string]any{
		"schemaVersion": "1.0",
		"policy":        d.global,
		"apis": []any{
			map[string]any{
				"name":       "p",
				"properties": map[string]any{"path": "p", "serviceUrl": "http://" + backend + "/svc"},
				"policy":     d.api,
				"operations": []any{
					map[string]any{"name": "get", "properties": map[string]any{"method": "GET", "urlTemplate": "/items/{id}?filter={f}",
						"templateParameters": []any{map[string]any{"name": "f", "required": false}}}, "policy": d.operation},
					map[string]any{"name": "mock", "properties": map[string]any{"method": "GET", "urlTemplate": "/mock",
						"responses": []any{map[string]any{"statusCode": 200, "representations": []any{
							map[string]any{"contentType": "application/json", "examples": map[string]any{"default": map[string]any{"value": map[string]any{"id": 7, "name": "mocked"}}}}}}}},
						"policy": `<policies><inbound><base /><mock-response status-code="200" content-type="application/json" /></inbound></policies>`},
					map[string]any{"name": "post", "properties": map[string]any{"method": "POST", "urlTemplate": "/items"}},
				},
			},
		},
		"backends": []any{map[string]any{"name": "other", "properties": map[string]any{"url": "http://" + other + "/elsewhere"}}},
		"products": []any{map[string]any{"name": "gold", "apis": []string{"p"}, "policy": d.product}},
		"subscriptions": []any{
			map[string]any{"name": "gold-sub", "properties": map[string]any{"scope": "/products/gold", "primaryKey": "gold-key-000001"}},
			map[string]any{"name": "all-sub", "properties": map[string]any{"scope": "/apis", "primaryKey": "all-key-0000001"}},
		},
	}
	if d.fragment != "" {
		doc["policyFragments"] = []any{map[string]any{"name": "common", "properties": map[string]any{"value": d.fragment}}}
	}
	if d.namedValues != "" {
		var nv any
		if err := json.Unmarshal([]byte(d.namedValues), &nv); err != nil {
			t.Fatal(err)
		}
		doc["namedValues"] = nv
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const goldKey = "gold-key-000001"

func TestPolicies(t *testing.T) {
	be := startBackend(t, nil)
	other := startBackend(t, nil)
	tests := []struct {
		name   string
		docs   policyDocs
		method string
		path   string
		header map[string]string
		body   string
		check  func(t *testing.T, r response)
	}{
		{
			name: "set-header on request and response",
			docs: policyDocs{api: `<policies>
				<inbound><base />
					<set-header name="X-Added" exists-action="override"><value>one</value></set-header>
					<set-header name="X-Multi" exists-action="append"><value>a</value><value>b</value></set-header>
					<set-header name="X-Secret" exists-action="delete" />
					<set-header name="X-Keep" exists-action="skip"><value>not used</value></set-header>
				</inbound>
				<outbound><base /><set-header name="X-Out" exists-action="override"><value>out</value></set-header></outbound>
			</policies>`},
			header: map[string]string{"X-Secret": "s", "X-Keep": "client"},
			check: func(t *testing.T, r response) {
				e := decodeEcho(t, r)
				for k, want := range map[string]string{"X-Added": "one", "X-Keep": "client"} {
					if e.Headers[k] != want {
						t.Errorf("backend %s = %q, want %q", k, e.Headers[k], want)
					}
				}
				if _, ok := e.Headers["X-Secret"]; ok {
					t.Error("deleted header reached the backend")
				}
				if !strings.Contains(e.Headers["X-Multi"], "a") {
					t.Errorf("appended header: %q", e.Headers["X-Multi"])
				}
				if r.header.Get("X-Out") != "out" {
					t.Errorf("outbound header: %q", r.header.Get("X-Out"))
				}
			},
		},
		{
			name: "scopes compose through base",
			docs: policyDocs{
				global:    `<policies><inbound><set-header name="X-Order" exists-action="append"><value>global</value></set-header></inbound><backend><forward-request /></backend><outbound /><on-error /></policies>`,
				product:   `<policies><inbound><base /><set-header name="X-Order" exists-action="append"><value>product</value></set-header></inbound></policies>`,
				api:       `<policies><inbound><base /><set-header name="X-Order" exists-action="append"><value>api</value></set-header></inbound></policies>`,
				operation: `<policies><inbound><set-header name="X-Order" exists-action="append"><value>operation-first</value></set-header><base /></inbound></policies>`,
			},
			check: func(t *testing.T, r response) {
				got := decodeEcho(t, r).Headers["X-Order"]
				if got != "operation-first,global,product,api" && got != "operation-first, global, product, api" {
					t.Errorf("X-Order %q: want operation-first then global, product, api", got)
				}
			},
		},
		{
			name:   "product scope needs a product context",
			docs:   policyDocs{product: `<policies><inbound><base /><set-header name="X-Product" exists-action="override"><value>gold</value></set-header></inbound></policies>`},
			header: map[string]string{"Ocp-Apim-Subscription-Key": "all-key-0000001"},
			check: func(t *testing.T, r response) {
				if v, ok := decodeEcho(t, r).Headers["X-Product"]; ok {
					t.Errorf("product policy ran for an all-APIs subscription: %q", v)
				}
			},
		},
		{
			name: "section without base replaces the enclosing one",
			docs: policyDocs{
				global: `<policies><inbound><set-header name="X-Global" exists-action="override"><value>g</value></set-header></inbound></policies>`,
				api:    `<policies><inbound><set-header name="X-Api" exists-action="override"><value>a</value></set-header></inbound></policies>`,
			},
			check: func(t *testing.T, r response) {
				e := decodeEcho(t, r)
				if _, ok := e.Headers["X-Global"]; ok || e.Headers["X-Api"] != "a" {
					t.Errorf("headers %v", e.Headers)
				}
			},
		},
		{
			name: "rewrite-uri and set-query-parameter",
			docs: policyDocs{operation: `<policies><inbound><base />
				<rewrite-uri template="/v2/things/{id}?mode=fast" />
				<set-query-parameter name="added" exists-action="override"><value>1</value></set-query-parameter>
			</inbound></policies>`},
			path: "/p/items/42?filter=x&keep=yes",
			check: func(t *testing.T, r response) {
				if uri := decodeEcho(t, r).URI; uri != "/svc/v2/things/42?mode=fast&keep=yes&added=1" {
					t.Errorf("backend got %q", uri)
				}
			},
		},
		{
			name: "rewrite-uri without copying unmatched parameters",
			docs: policyDocs{operation: `<policies><inbound><base /><rewrite-uri template="/x/{id}" copy-unmatched-params="false" /></inbound></policies>`},
			path: "/p/items/9?keep=no",
			check: func(t *testing.T, r response) {
				if uri := decodeEcho(t, r).URI; uri != "/svc/x/9" {
					t.Errorf("backend got %q", uri)
				}
			},
		},
		{
			name: "set-backend-service by id",
			docs: policyDocs{api: `<policies><inbound><base /><set-backend-service backend-id="other" /></inbound></policies>`},
			check: func(t *testing.T, r response) {
				e := decodeEcho(t, r)
				if e.URI != "/elsewhere/items/1" || e.Headers["Host"] != other.addr {
					t.Errorf("backend got %q at %q", e.URI, e.Headers["Host"])
				}
			},
		},
		{
			name: "set-backend-service by URL, set-method",
			docs: policyDocs{api: `<policies><inbound><base /><set-backend-service base-url="http://` + other.addr + `/u" /><set-method>PUT</set-method></inbound></policies>`},
			check: func(t *testing.T, r response) {
				e := decodeEcho(t, r)
				if e.URI != "/u/items/1" || e.Method != "PUT" {
					t.Errorf("backend got %s %q", e.Method, e.URI)
				}
			},
		},
		{
			name: "return-response stops the pipeline",
			docs: policyDocs{api: `<policies><inbound><base />
				<return-response>
					<set-status code="418" reason="I'm a teapot" />
					<set-header name="Content-Type" exists-action="override"><value>text/plain</value></set-header>
					<set-body>short and stout</set-body>
				</return-response>
			</inbound><outbound><set-header name="X-Out" exists-action="override"><value>never</value></set-header></outbound></policies>`},
			check: func(t *testing.T, r response) {
				if r.status != 418 || r.body != "short and stout" || r.header.Get("Content-Type") != "text/plain" || r.header.Get("X-Out") != "" {
					t.Errorf("got %s %q %v", r.statusL, r.body, r.header)
				}
				if r.statusL != "418 I'm a teapot" {
					t.Errorf("status line %q", r.statusL)
				}
			},
		},
		{
			name: "mock-response from the operation's example",
			path: "/p/mock",
			check: func(t *testing.T, r response) {
				if r.status != 200 || r.body != `{"id":7,"name":"mocked"}` || r.header.Get("Content-Type") != "application/json" {
					t.Errorf("got %d %q %q", r.status, r.body, r.header.Get("Content-Type"))
				}
			},
		},
		{
			name:   "check-header failure answers with its status and message",
			docs:   policyDocs{api: `<policies><inbound><base /><check-header name="X-Tenant" failed-check-httpcode="403" failed-check-error-message="Tenant not allowed" ignore-case="true"><value>contoso</value></check-header></inbound></policies>`},
			header: map[string]string{"X-Tenant": "fabrikam"},
			check: func(t *testing.T, r response) {
				if r.status != 403 || r.body != `{ "statusCode": 403, "message": "Tenant not allowed" }` {
					t.Errorf("got %d %s", r.status, r.body)
				}
			},
		},
		{
			name:   "check-header passes a listed value in any case",
			docs:   policyDocs{api: `<policies><inbound><base /><check-header name="X-Tenant" failed-check-httpcode="403" failed-check-error-message="no" ignore-case="true"><value>contoso</value></check-header></inbound></policies>`},
			header: map[string]string{"X-Tenant": "Contoso"},
			check: func(t *testing.T, r response) {
				if r.status != 200 {
					t.Errorf("got %d %s", r.status, r.body)
				}
			},
		},
		{
			name: "on-error handles a failure",
			docs: policyDocs{api: `<policies>
				<inbound><base /><check-header name="X-Required" failed-check-httpcode="400" failed-check-error-message="missing" /></inbound>
				<on-error><base /><set-header name="X-Error-Handled" exists-action="override"><value>yes</value></set-header>
					<return-response><set-status code="422" reason="Unprocessable" /><set-body>custom error</set-body></return-response></on-error>
			</policies>`},
			check: func(t *testing.T, r response) {
				if r.status != 422 || r.body != "custom error" || r.header.Get("X-Error-Handled") != "" {
					t.Errorf("got %d %q headers %v", r.status, r.body, r.header)
				}
			},
		},
		{
			name: "ip-filter forbids loopback",
			docs: policyDocs{api: `<policies><inbound><base /><ip-filter action="forbid"><address>127.0.0.1</address></ip-filter></inbound></policies>`},
			check: func(t *testing.T, r response) {
				if r.status != 403 {
					t.Errorf("got %d %s", r.status, r.body)
				}
			},
		},
		{
			name: "ip-filter allows a range",
			docs: policyDocs{api: `<policies><inbound><base /><ip-filter action="allow"><address-range from="127.0.0.0" to="127.255.255.255" /></ip-filter></inbound></policies>`},
			check: func(t *testing.T, r response) {
				if r.status != 200 {
					t.Errorf("got %d %s", r.status, r.body)
				}
			},
		},
		{
			name: "include-fragment and named values",
			docs: policyDocs{
				fragment:    `<fragment><set-header name="X-From-Fragment" exists-action="override"><value>{{tenant}}</value></set-header></fragment>`,
				api:         `<policies><inbound><base /><include-fragment fragment-id="common" /></inbound></policies>`,
				namedValues: `[{"name": "tenant", "properties": {"displayName": "tenant", "value": "contoso"}}]`,
			},
			check: func(t *testing.T, r response) {
				if v := decodeEcho(t, r).Headers["X-From-Fragment"]; v != "contoso" {
					t.Errorf("X-From-Fragment %q", v)
				}
			},
		},
		{
			name: "expressions: choose, set-variable, context",
			docs: policyDocs{api: `<policies><inbound><base />
				<set-variable name="tier" value="@(context.Request.Headers.GetValueOrDefault(&quot;X-Tier&quot;, &quot;free&quot;).ToLower())" />
				<choose>
					<when condition="@((string)context.Variables[&quot;tier&quot;] == &quot;gold&quot;)">
						<set-header name="X-Tier-Seen" exists-action="override"><value>premium</value></set-header>
					</when>
					<otherwise>
						<set-header name="X-Tier-Seen" exists-action="override"><value>basic</value></set-header>
					</otherwise>
				</choose>
				<set-header name="X-Context" exists-action="override">
					<value>@($"{context.Api.Id}|{context.Operation.Id}|{context.Subscription.Id}|{context.Product.Id}|{context.Request.MatchedParameters["id"]}|{context.Request.Url.Query.GetValueOrDefault("filter", "none")}")</value>
				</set-header>
				<set-header name="X-Request-Id" exists-action="override"><value>@(context.RequestId)</value></set-header>
			</inbound></policies>`},
			path:   "/p/items/77?filter=recent",
			header: map[string]string{"X-Tier": "GOLD"},
			check: func(t *testing.T, r response) {
				e := decodeEcho(t, r)
				if e.Headers["X-Tier-Seen"] != "premium" {
					t.Errorf("X-Tier-Seen %q", e.Headers["X-Tier-Seen"])
				}
				if got := e.Headers["X-Context"]; got != "p|get|gold-sub|gold|77|recent" {
					t.Errorf("X-Context %q", got)
				}
				if len(e.Headers["X-Request-Id"]) != 36 {
					t.Errorf("X-Request-Id %q", e.Headers["X-Request-Id"])
				}
			},
		},
		{
			name: "expressions: statement block, backend and rewrite from expressions",
			docs: policyDocs{api: `<policies><inbound><base />
				<set-variable name="target" value="@{
					var id = context.Request.MatchedParameters[&quot;id&quot;];
					if (int.Parse(id) > 100) { return &quot;big&quot;; }
					return &quot;small&quot;;
				}" />
				<set-backend-service base-url="@(&quot;http://` + other.addr + `/&quot; + (string)context.Variables[&quot;target&quot;])" />
				<rewrite-uri template="@(&quot;/n/&quot; + context.Request.MatchedParameters[&quot;id&quot;])" copy-unmatched-params="false" />
			</inbound></policies>`},
			path: "/p/items/123",
			check: func(t *testing.T, r response) {
				e := decodeEcho(t, r)
				if e.URI != "/big/n/123" || e.Headers["Host"] != other.addr {
					t.Errorf("backend got %q at %q", e.URI, e.Headers["Host"])
				}
			},
		},
		{
			name: "expression failure goes to on-error with LastError",
			docs: policyDocs{api: `<policies>
				<inbound><base /><set-variable name="n" value="@(int.Parse(context.Request.Headers.GetValueOrDefault(&quot;X-Count&quot;, &quot;x&quot;)))" /></inbound>
				<on-error><base /><set-header name="X-Reason" exists-action="override"><value>@(context.LastError.Reason + &quot;/&quot; + context.LastError.Source)</value></set-header></on-error>
			</policies>`},
			check: func(t *testing.T, r response) {
				if r.status != 500 || r.header.Get("X-Reason") != "ExpressionValueEvaluationFailure/set-variable" {
					t.Errorf("got %d %q %s", r.status, r.header.Get("X-Reason"), r.body)
				}
			},
		},
		{
			name: "an access policy that cannot run refuses requests",
			docs: policyDocs{api: `<policies><inbound><base />
				<validate-jwt header-name="Authorization"><issuer-signing-keys><key>@(context.Variables.GetValueOrDefault&lt;string&gt;("k"))</key></issuer-signing-keys></validate-jwt>
			</inbound></policies>`},
			check: func(t *testing.T, r response) {
				if r.status != 500 {
					t.Errorf("got %d %s: an unsupported validate-jwt must not let requests through", r.status, r.body)
				}
			},
		},
		{
			name: "authentication-basic and find-and-replace",
			docs: policyDocs{
				api: `<policies><inbound><base /><authentication-basic username="svc" password="{{backend-password}}" />
					<find-and-replace from="secret" to="public" /></inbound>
					<outbound><base /><find-and-replace from="POST" to="@(&quot;P&quot; + &quot;OSTED&quot;)" /></outbound></policies>`,
				namedValues: `[{"name": "backend-password", "properties": {"displayName": "backend-password", "value": "s3cr3t", "secret": true}}]`,
			},
			method: "POST",
			path:   "/p/items",
			body:   "a secret body",
			check: func(t *testing.T, r response) {
				restored := r
				restored.body = strings.ReplaceAll(r.body, "POSTED", "POST")
				e := decodeEcho(t, restored)
				if e.Headers["Authorization"] != "Basic c3ZjOnMzY3IzdA==" {
					t.Errorf("Authorization %q", e.Headers["Authorization"])
				}
				if e.Body != "a public body" {
					t.Errorf("backend body %q", e.Body)
				}
				if !strings.Contains(r.body, `"method":"POSTED"`) {
					t.Errorf("response body not rewritten: %s", r.body)
				}
			},
		},
		{
			name: "liquid set-body",
			docs: policyDocs{api: `<policies><inbound><base />
				<set-body template="liquid">{"ident": "{{body.id}}", "upper": "{{ body.name | Upcase }}", "sub": "{{context.Subscription.Id}}"}</set-body>
			</inbound></policies>`},
			method: "POST",
			path:   "/p/items",
			header: map[string]string{"Content-Type": "application/json"},
			body:   `{"id": 5, "name": "widget"}`,
			check: func(t *testing.T, r response) {
				if got := decodeEcho(t, r).Body; got != `{"ident": "5", "upper": "WIDGET", "sub": "gold-sub"}` {
					t.Errorf("backend body %q", got)
				}
			},
		},
		{
			name: "unsupported policy skipped, the rest runs",
			docs: policyDocs{api: `<policies><inbound><base /><redirect-content-urls /><set-header name="X-Ran" exists-action="override"><value>yes</value></set-header></inbound></policies>`},
			check: func(t *testing.T, r response) {
				if decodeEcho(t, r).Headers["X-Ran"] != "yes" {
					t.Error("policies after a skipped one did not run")
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := startGateway(t, policySnapshot(t, be.addr, other.addr, tc.docs), nil)
			if strings.Contains(h.logs.String(), "configuration rejected") {
				t.Fatalf("snapshot rejected:\n%s", h.logs.String())
			}
			path := tc.path
			if path == "" {
				path = "/p/items/1"
			}
			header := map[string]string{"Ocp-Apim-Subscription-Key": goldKey}
			for k, v := range tc.header {
				header[k] = v
			}
			method := tc.method
			if method == "" {
				method = "GET"
			}
			var body io.Reader
			if tc.body != "" || method == "POST" {
				body = strings.NewReader(tc.body)
			}
			tc.check(t, do(t, method, h.url+path, header, body))
		})
	}
}

func TestPolicyWarningsAndStrictMode(t *testing.T) {
	be := startBackend(t, nil)
	snap := policySnapshot(t, be.addr, be.addr, policyDocs{api: `<policies><inbound><base />
		<redirect-content-urls />
		<xsl-transform><xsl:stylesheet version="1.0" /></xsl-transform>
	</inbound></policies>`})
	h := startGateway(t, snap, nil)
	logs := h.logs.String()
	mustContain(t, "load warnings", logs, `"policy":"redirect-content-urls"`, `"scope":"api p"`, `"policy":"xsl-transform"`, "skipped")
	if r := do(t, "GET", h.url+"/p/items/1", map[string]string{"Ocp-Apim-Subscription-Key": goldKey}, nil); r.status != 200 {
		t.Errorf("with skipped policies: %d", r.status)
	}

	strict := startGateway(t, snap, func(o *Options) { o.StrictPolicies = true })
	mustContain(t, "strict rejection", strict.logs.String(), "configuration not loaded", "xsl-transform", "--strict-policies")
	if r := do(t, "GET", strict.url+StatusPath, nil, nil); r.status != 503 {
		t.Errorf("strict gateway with an unsupported policy is healthy: %d", r.status)
	}
}

func TestPolicyCompileErrorsRejectSnapshot(t *testing.T) {
	be := startBackend(t, nil)
	for _, tc := range []struct {
		name, api, want string
	}{
		{"not well-formed", `<policies><inbound><set-header name="x"></inbound></policies>`, "line 1"},
		{"policy in the wrong section", `<policies><outbound><rewrite-uri template="/x" /></outbound></policies>`, "is not allowed in <outbound>"},
		{"missing attribute", `<policies><inbound><set-header exists-action="override" /></inbound></policies>`, "attribute name is required"},
		{"unknown named value", `<policies><inbound><set-header name="x"><value>{{nope}}</value></set-header></inbound></policies>`, "is not in $.namedValues"},
		{"unknown backend", `<policies><inbound><set-backend-service backend-id="ghost" /></inbound></policies>`, "names no backend in $.backends"},
		{"protected header", `<policies><inbound><set-header name="Content-Length"><value>1</value></set-header></inbound></policies>`, "cannot be changed"},
		{"wrong root", `<inbound />`, "root element must be <policies>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startGateway(t, policySnapshot(t, be.addr, be.addr, policyDocs{api: tc.api}), nil)
			mustContain(t, "rejection", h.logs.String(), "configuration not loaded", "policies: api p", tc.want)
			if r := do(t, "GET", h.url+StatusPath, nil, nil); r.status != 503 {
				t.Errorf("health %d with a rejected snapshot", r.status)
			}
		})
	}
}

func TestForwardRequestTimeoutGoesToOnError(t *testing.T) {
	slow := startBackend(t, func(ctx *fasthttp.RequestCtx) {
		time.Sleep(1500 * time.Millisecond)
	})
	snap := policySnapshot(t, slow.addr, slow.addr, policyDocs{
		global: `<policies><inbound /><backend><forward-request timeout="1" /></backend><outbound /><on-error>
			<set-header name="X-Last-Error" exists-action="override"><value>handled</value></set-header></on-error></policies>`,
	})
	h := startGateway(t, snap, nil)
	r := do(t, "GET", h.url+"/p/items/1", map[string]string{"Ocp-Apim-Subscription-Key": goldKey}, nil)
	if r.status != 504 || !strings.Contains(r.body, `"statusCode": 504`) || r.header.Get("X-Last-Error") != "handled" {
		t.Errorf("got %d %s %v", r.status, r.body, r.header)
	}
	waitFor(t, "the request log", func() bool { return strings.Contains(h.logs.String(), `"LastErrorReason":"Timeout"`) })
}

func TestRateLimitByKeyAcrossReloads(t *testing.T) {
	be := startBackend(t, nil)
	docs := policyDocs{api: `<policies><inbound><base />
		<rate-limit-by-key calls="3" renewal-period="60" counter-key="@(context.Request.Headers.GetValueOrDefault(&quot;X-Client&quot;, &quot;anon&quot;))"
			remaining-calls-header-name="X-Remaining" />
	</inbound></policies>`}
	h := startGateway(t, policySnapshot(t, be.addr, be.addr, docs), nil)
	call := func(client string) response {
		return do(t, "GET", h.url+"/p/items/1", map[string]string{"Ocp-Apim-Subscription-Key": goldKey, "X-Client": client}, nil)
	}
	for i := 1; i <= 2; i++ {
		if r := call("a"); r.status != 200 || r.header.Get("X-Remaining") != strconv.Itoa(3-i) {
			t.Fatalf("call %d: %d, remaining %q", i, r.status, r.header.Get("X-Remaining"))
		}
	}
	// A new configuration must not reset the counters.
	writeSnapshot(t, h.dir, strings.Replace(policySnapshot(t, be.addr, be.addr, docs), `"schemaVersion":"1.0"`, `"schemaVersion":"1.0","revision":"2"`, 1))
	waitFor(t, "reload", func() bool { return h.g.metrics.reloads.Load() >= 2 })
	if r := call("a"); r.status != 200 {
		t.Fatalf("third call: %d", r.status)
	}
	r := call("a")
	if r.status != 429 || r.header.Get("Retry-After") == "" || !strings.HasPrefix(r.body, `{ "statusCode": 429, "message": "Rate limit is exceeded. Try again in `) {
		t.Errorf("fourth call: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	if r := call("b"); r.status != 200 {
		t.Errorf("another key shares the counter: %d", r.status)
	}
}

// A policy that reads the body cannot be used to pass --max-body-bytes.
func TestBodyLimitBeforePolicies(t *testing.T) {
	be := startBackend(t, nil)
	h := startGateway(t, policySnapshot(t, be.addr, be.addr, policyDocs{api: `<policies><inbound><base /><find-and-replace from="a" to="b" /></inbound></policies>`}),
		func(o *Options) { o.MaxBodyBytes = 64 << 10 })
	addr := h.g.HTTPAddr().String()
	head := "POST /p/items HTTP/1.1\r\nHost: a\r\nOcp-Apim-Subscription-Key: " + goldKey + "\r\n"
	// Raw connections: the gateway answers before the whole body is sent.
	declared := rawStatus(t, addr, head+"Content-Length: 1048576\r\n\r\n"+strings.Repeat("a", 16<<10), 0)
	chunk := strings.Repeat("a", 128<<10)
	chunked := rawStatus(t, addr, head+"Transfer-Encoding: chunked\r\n\r\n"+strconv.FormatInt(int64(len(chunk)), 16)+"\r\n"+chunk+"\r\n", 0)
	for name, got := range map[string]string{"declared length": declared, "chunked": chunked} {
		if !strings.HasPrefix(got, "HTTP/1.1 413") {
			t.Errorf("%s: status line %q, want 413", name, got)
		}
	}
}

// A pool backend spreads requests over its members, and a member whose
// circuit breaker trips is left out until it recovers.
func TestBackendPoolAndCircuitBreaker(t *testing.T) {
	good := startBackend(t, nil)
	failing := startBackend(t, func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(503) })
	snap := `{"schemaVersion": "1.0",
	 "apis": [{"name": "p", "properties": {"path": "p", "serviceUrl": "http://` + good.addr + `", "subscriptionRequired": false},
	   "policy": "<policies><inbound><base /><set-backend-service backend-id=\"pool\" /></inbound></policies>",
	   "operations": [{"name": "get", "properties": {"method": "GET", "urlTemplate": "/*"}}]}],
	 "backends": [
	   {"name": "good", "properties": {"url": "http://` + good.addr + `/good"}},
	   {"name": "bad", "properties": {"url": "http://` + failing.addr + `/bad",
	     "circuitBreaker": {"rules": [{"name": "r", "failureCondition": {"count": 2, "interval": "PT1M", "statusCodeRanges": [{"min": 500, "max": 599}]}, "tripDuration": "PT1M"}]}}},
	   {"name": "pool", "properties": {"type": "Pool", "pool": {"services": [{"id": "/backends/good"}, {"id": "/backends/bad"}]}}}
	 ]}`
	h := startGateway(t, snap, nil)
	var codes []int
	for range 10 {
		codes = append(codes, do(t, "GET", h.url+"/p/x", nil, nil).status)
	}
	failures := 0
	for _, c := range codes {
		if c == 503 {
			failures++
		}
	}
	// Round robin sends every other request to the failing member until
	// its breaker opens after two failures; then only the good one serves.
	if failures != 2 || codes[len(codes)-1] != 200 || codes[len(codes)-2] != 200 {
		t.Errorf("status codes %v: want two 503s from the failing member, then only 200s", codes)
	}
}

func TestForwardRequestFollowRedirects(t *testing.T) {
	final := startBackend(t, nil)
	be := startBackend(t, func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/svc/items/1":
			ctx.Redirect("/svc/moved", 302)
		case "/svc/moved":
			ctx.Response.Header.Set("Location", "http://"+final.addr+"/there")
			ctx.SetStatusCode(307)
		default:
			ctx.SetStatusCode(404)
		}
	})
	global := `<policies><inbound /><backend><forward-request follow-redirects="true" /></backend><outbound /></policies>`
	h := startGateway(t, policySnapshot(t, be.addr, be.addr, policyDocs{global: global}), nil)
	r := do(t, "GET", h.url+"/p/items/1", map[string]string{"Ocp-Apim-Subscription-Key": goldKey}, nil)
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	if e := decodeEcho(t, r); e.URI != "/there" || e.Headers["Host"] != final.addr {
		t.Errorf("followed to %q at %q", e.URI, e.Headers["Host"])
	}
	// Without follow-redirects the client gets the redirect.
	h2 := startGateway(t, policySnapshot(t, be.addr, be.addr, policyDocs{}), nil)
	req, _ := http.NewRequest("GET", h2.url+"/p/items/1", nil)
	req.Header.Set("Ocp-Apim-Subscription-Key", goldKey)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 302 {
		t.Errorf("without follow-redirects: %d", resp.StatusCode)
	}
}

func TestEmitMetric(t *testing.T) {
	be := startBackend(t, nil)
	h := startGateway(t, policySnapshot(t, be.addr, be.addr, policyDocs{api: `<policies><inbound><base />
		<emit-metric name="orders" value="@(context.Request.MatchedParameters[&quot;id&quot;])" namespace="shop">
			<dimension name="API ID" />
			<dimension name="Tier" value="@(context.Request.Headers.GetValueOrDefault(&quot;X-Tier&quot;, &quot;free&quot;))" />
		</emit-metric>
	</inbound></policies>`}), nil)
	for _, id := range []string{"2", "3"} {
		if r := do(t, "GET", h.url+"/p/items/"+id, map[string]string{"Ocp-Apim-Subscription-Key": goldKey, "X-Tier": "gold"}, nil); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
	}
	m := do(t, "GET", h.tel+"/metrics", nil, nil).body
	mustParseExposition(t, m)
	mustContain(t, "metrics", m,
		`apim_gateway_emitted_metric_sum{namespace="shop",name="orders",dim_API_ID="p",dim_Tier="gold"} 5`,
		`apim_gateway_emitted_metric_count{namespace="shop",name="orders",dim_API_ID="p",dim_Tier="gold"} 2`)

	// Each request's record carries the values it emitted, so the agent's
	// metric rows agree with its log rows.
	page, _ := fetchLogs(t, h, "?after=0")
	var got []string
	for _, rec := range page.Records {
		cms, _ := rec["CustomMetrics"].([]any)
		for _, c := range cms {
			cm := c.(map[string]any)
			dims := cm["Dimensions"].(map[string]any)
			got = append(got, fmt.Sprintf("%s/%s=%v API ID=%v Tier=%v", cm["Namespace"], cm["Name"], cm["Value"], dims["API ID"], dims["Tier"]))
		}
	}
	want := []string{"shop/orders=2 API ID=p Tier=gold", "shop/orders=3 API ID=p Tier=gold"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("record CustomMetrics %q, want %q", got, want)
	}
}
