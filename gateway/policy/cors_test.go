package policy

import (
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/router"
)

// httpCall builds a request context for method with headers ("Name: value").
func httpCall(method string, headers ...string) *fasthttp.RequestCtx {
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}, nil)
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI("/api/thing")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		ctx.Request.Header.Add(k, strings.TrimSpace(v))
	}
	return ctx
}

// backend answers 200 "backend" with Vary: Accept-Encoding and counts calls.
func backend(calls *int) Forwarder {
	return func(r *Request, _ ForwardOptions) error {
		*calls++
		r.Ctx.Response.SetStatusCode(200)
		r.Ctx.Response.Header.Set("Vary", "Accept-Encoding")
		r.Ctx.Response.SetBodyString("backend")
		return nil
	}
}

func compileAPI(t *testing.T, set *Set, doc string) *Document {
	t.Helper()
	d := set.Compile(Location{Scope: ScopeAPI, Name: "a"}, doc)
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return d
}

const corsExample = `<cors allow-credentials="true">
	<allowed-origins><origin>http://localhost:8080/</origin><origin>https://example.com</origin></allowed-origins>
	<allowed-methods preflight-result-max-age="300"><method>GET</method><method>PATCH</method></allowed-methods>
	<allowed-headers><header>content-type</header><header>X-Zumo-Auth</header></allowed-headers>
	<expose-headers><header>x-a</header><header>x-b</header></expose-headers>
</cors>`

func TestCORS(t *testing.T) {
	t.Parallel()
	wildcard := `<cors><allowed-origins><origin>*</origin></allowed-origins><allowed-methods><method>*</method></allowed-methods><allowed-headers><header>*</header></allowed-headers></cors>`
	lenient := `<cors terminate-unmatched-request="false"><allowed-origins><origin>https://example.com</origin></allowed-origins></cors>`
	tests := []struct {
		name      string
		policy    string
		method    string
		headers   []string
		operation string // the matched operation's method, "" for none
		status    int
		forwarded bool
		want      map[string]string // response headers; "" means absent
		body      string
	}{
		{name: "preflight", policy: corsExample, method: "OPTIONS",
			headers: []string{"Origin: https://example.com:443", "Access-Control-Request-Method: PATCH", "Access-Control-Request-Headers: content-type,x-zumo-auth"},
			status:  200, want: map[string]string{
				"Access-Control-Allow-Origin": "https://example.com:443", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Methods": "PATCH", "Access-Control-Allow-Headers": "content-type,x-zumo-auth",
				"Access-Control-Max-Age": "300", "Vary": "Origin", "Access-Control-Expose-Headers": ""}},
		{name: "preflight, method not allowed", policy: corsExample, method: "OPTIONS",
			headers: []string{"Origin: https://example.com", "Access-Control-Request-Method: PUT"},
			status:  200, want: map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": ""}},
		{name: "preflight, header not allowed", policy: corsExample, method: "OPTIONS",
			headers: []string{"Origin: https://example.com", "Access-Control-Request-Method: GET", "Access-Control-Request-Headers: x-other"},
			status:  200, want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "preflight, origin not allowed", policy: corsExample, method: "OPTIONS",
			headers: []string{"Origin: https://example.com:8443", "Access-Control-Request-Method: GET"},
			status:  200, want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "preflight, default methods", policy: `<cors><allowed-origins><origin>https://example.com</origin></allowed-origins></cors>`, method: "OPTIONS",
			headers: []string{"Origin: https://example.com", "Access-Control-Request-Method: POST"},
			status:  200, want: map[string]string{"Access-Control-Allow-Origin": "https://example.com", "Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Credentials": "", "Access-Control-Max-Age": ""}},
		{name: "preflight, wildcards", policy: wildcard, method: "OPTIONS",
			headers: []string{"Origin: https://any.example", "Access-Control-Request-Method: DELETE", "Access-Control-Request-Headers: x-one, x-two"},
			status:  200, want: map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "DELETE", "Access-Control-Allow-Headers": "x-one, x-two", "Vary": ""}},
		{name: "OPTIONS operation skips preflight logic", policy: corsExample, method: "OPTIONS", operation: "OPTIONS",
			headers: []string{"Origin: https://example.com", "Access-Control-Request-Method: PATCH"},
			status:  200, forwarded: true, body: "backend", want: map[string]string{"Access-Control-Allow-Origin": "https://example.com", "Access-Control-Allow-Methods": ""}},
		{name: "actual request", policy: corsExample, method: "GET", headers: []string{"Origin: http://LOCALHOST:8080"},
			status: 200, forwarded: true, body: "backend", want: map[string]string{
				"Access-Control-Allow-Origin": "http://LOCALHOST:8080", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers": "x-a,x-b", "Vary": "Accept-Encoding, Origin", "Access-Control-Allow-Methods": ""}},
		{name: "actual request, wildcard", policy: wildcard, method: "PUT", headers: []string{"Origin: https://any.example"},
			status: 200, forwarded: true, body: "backend", want: map[string]string{"Access-Control-Allow-Origin": "*", "Vary": "Accept-Encoding"}},
		{name: "no Origin", policy: corsExample, method: "GET",
			status: 200, forwarded: true, body: "backend", want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "unmatched GET terminates", policy: corsExample, method: "GET", headers: []string{"Origin: https://evil.example"},
			status: 200, want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "unmatched HEAD terminates", policy: corsExample, method: "HEAD", headers: []string{"Origin: null"},
			status: 200, want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "unmatched POST proceeds", policy: corsExample, method: "POST", headers: []string{"Origin: https://evil.example"},
			status: 200, forwarded: true, body: "backend", want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "unmatched GET, terminate false", policy: lenient, method: "GET", headers: []string{"Origin: https://evil.example"},
			status: 200, forwarded: true, body: "backend", want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "error responses carry the headers", method: "GET", headers: []string{"Origin: https://example.com"},
			policy: corsExample + `<check-header name="X-Need" failed-check-httpcode="401" failed-check-error-message="need it" />`,
			status: 401, body: `{ "statusCode": 401, "message": "need it" }`, want: map[string]string{"Access-Control-Allow-Origin": "https://example.com", "Content-Type": "application/json"}},
		{name: "return-response carries the headers", method: "GET", headers: []string{"Origin: https://example.com"},
			policy: corsExample + `<return-response><set-status code="202" /></return-response>`,
			status: 202, want: map[string]string{"Access-Control-Allow-Origin": "https://example.com"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set := newSet(t, true)
			p := Compose(nil, compileAPI(t, set, `<policies><inbound>`+tc.policy+`</inbound></policies>`))
			ctx := httpCall(tc.method, tc.headers...)
			calls := 0
			r := &Request{Ctx: ctx, Forward: backend(&calls)}
			if tc.operation != "" {
				r.Operation = &router.Operation{Method: tc.operation}
			}
			p.Run(r)
			if ctx.Response.StatusCode() != tc.status {
				t.Errorf("status %d, want %d", ctx.Response.StatusCode(), tc.status)
			}
			if (calls > 0) != tc.forwarded {
				t.Errorf("forwarded %v, want %v", calls > 0, tc.forwarded)
			}
			if string(ctx.Response.Body()) != tc.body {
				t.Errorf("body %q, want %q", ctx.Response.Body(), tc.body)
			}
			for k, want := range tc.want {
				if got := string(ctx.Response.Header.Peek(k)); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestCORSFirstPolicyApplies(t *testing.T) {
	t.Parallel()
	set := newSet(t, true)
	g := set.Compile(Location{Scope: ScopeGlobal}, `<policies><inbound><cors><allowed-origins><origin>*</origin></allowed-origins><expose-headers><header>x-global</header></expose-headers></cors></inbound></policies>`)
	a := compileAPI(t, set, `<policies><inbound><base /><cors><allowed-origins><origin>https://example.com</origin></allowed-origins><expose-headers><header>x-api</header></expose-headers></cors></inbound></policies>`)
	ctx := httpCall("GET", "Origin: https://example.com")
	calls := 0
	Compose(g, a).Run(&Request{Ctx: ctx, Forward: backend(&calls)})
	if got := string(ctx.Response.Header.Peek("Access-Control-Expose-Headers")); got != "x-global" {
		t.Errorf("expose headers %q, want the global policy's", got)
	}
	if got := string(ctx.Response.Header.Peek("Access-Control-Allow-Origin")); got != "*" {
		t.Errorf("allow origin %q", got)
	}
}

func TestCORSPreflightEntry(t *testing.T) {
	t.Parallel()
	set := newSet(t, true)
	g := set.Compile(Location{Scope: ScopeGlobal}, `<policies><inbound><cors terminate-unmatched-request="false"><allowed-origins><origin>https://global.example</origin></allowed-origins></cors>`+
		`<check-header name="X-Need" failed-check-httpcode="401" failed-check-error-message="need it" /></inbound></policies>`)
	a := compileAPI(t, set, `<policies><inbound><base /><cors><allowed-origins><origin>https://example.com</origin></allowed-origins><allowed-methods><method>PUT</method></allowed-methods></cors></inbound></policies>`)
	p := Compose(g, a)

	// The API's cors answers after the global one hands over; the
	// check-header between them does not run.
	ctx := httpCall("OPTIONS", "Origin: https://example.com", "Access-Control-Request-Method: PUT")
	if !IsPreflight(ctx) {
		t.Fatal("IsPreflight false")
	}
	if !p.Preflight(&Request{Ctx: ctx}) {
		t.Fatal("Preflight found no cors policy")
	}
	if ctx.Response.StatusCode() != 200 || string(ctx.Response.Header.Peek("Access-Control-Allow-Methods")) != "PUT" ||
		string(ctx.Response.Header.Peek("Access-Control-Allow-Origin")) != "https://example.com" {
		t.Errorf("answer %d %s", ctx.Response.StatusCode(), ctx.Response.Header.String())
	}

	// Unmatched everywhere: the API's policy terminates with an empty 200.
	ctx = httpCall("OPTIONS", "Origin: https://other.example", "Access-Control-Request-Method: PUT")
	if !p.Preflight(&Request{Ctx: ctx}) || ctx.Response.StatusCode() != 200 || len(ctx.Response.Header.Peek("Access-Control-Allow-Origin")) != 0 {
		t.Errorf("unmatched answer %d %s", ctx.Response.StatusCode(), ctx.Response.Header.String())
	}

	// Without cors policies Preflight leaves the request alone.
	plain := Compose(nil, compileAPI(t, set, `<policies><inbound><base /></inbound></policies>`))
	ctx = httpCall("OPTIONS", "Origin: https://example.com", "Access-Control-Request-Method: PUT")
	if plain.Preflight(&Request{Ctx: ctx}) {
		t.Error("Preflight answered without a cors policy")
	}
	if IsPreflight(httpCall("OPTIONS", "Origin: https://example.com")) {
		t.Error("IsPreflight true without Access-Control-Request-Method")
	}
}

func TestCORSCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, doc, want string }{
		{"credentials with any origin", `<cors allow-credentials="true"><allowed-origins><origin>*</origin></allowed-origins></cors>`, "allow-credentials"},
		{"no allowed-origins", `<cors />`, "<allowed-origins> is required"},
		{"empty allowed-origins", `<cors><allowed-origins /></cors>`, "at least one <origin>"},
		{"bad origin", `<cors><allowed-origins><origin>example.com</origin></allowed-origins></cors>`, "not * or a URI"},
		{"bad max age", `<cors><allowed-origins><origin>*</origin></allowed-origins><allowed-methods preflight-result-max-age="x"><method>GET</method></allowed-methods></cors>`, "preflight-result-max-age"},
		{"empty allowed-methods", `<cors><allowed-origins><origin>*</origin></allowed-origins><allowed-methods /></cors>`, "at least one <method>"},
		{"unknown child", `<cors><allowed-origins><origin>*</origin></allowed-origins><allowed-verbs /></cors>`, "cannot be a child"},
		{"twice", `<cors><allowed-origins><origin>*</origin></allowed-origins></cors><cors><allowed-origins><origin>*</origin></allowed-origins></cors>`, "only once"},
		{"outbound", ``, "is not allowed in <outbound>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set := newSet(t, false)
			doc := `<policies><inbound>` + tc.doc + `</inbound></policies>`
			if tc.doc == "" {
				doc = `<policies><outbound><cors><allowed-origins><origin>*</origin></allowed-origins></cors></outbound></policies>`
			}
			set.Compile(Location{Scope: ScopeAPI, Name: "a"}, doc)
			if err := set.Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
