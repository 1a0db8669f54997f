package policy

import (
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
)

func newSet(t *testing.T, strict bool) *Set {
	t.Helper()
	s := &config.Snapshot{
		SchemaVersion: config.SchemaVersion,
		PolicyFragments: []config.PolicyFragment{
			{Name: "loop", Properties: config.PolicyFragmentProperties{Value: `<fragment><include-fragment fragment-id="loop" /></fragment>`}},
			{Name: "tag", Properties: config.PolicyFragmentProperties{Value: `<fragment><set-header name="X-Fragment" exists-action="append"><value>f</value></set-header></fragment>`}},
		},
		NamedValues: []config.NamedValue{{Name: "v", Properties: config.NamedValueProperties{DisplayName: "Greeting", Value: "hello"}}},
	}
	return NewSet(s, Options{Strict: strict})
}

// run executes p on a fresh request and returns the request header values
// of X-Trace (in order) and the response.
func run(t *testing.T, p *Pipeline, forward Forwarder) (*fasthttp.RequestCtx, []string) {
	t.Helper()
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}, nil)
	r := &Request{Ctx: ctx, Forward: forward}
	p.Run(r)
	var trace []string
	for k, v := range ctx.Request.Header.All() {
		if string(k) == "X-Trace" {
			trace = append(trace, string(v))
		}
	}
	return ctx, trace
}

func tag(v string) string {
	return `<set-header name="X-Trace" exists-action="append"><value>` + v + `</value></set-header>`
}

func TestComposeBase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		global, product, api string
		operation            string
		want                 []string
	}{
		{name: "all base", global: `<policies><inbound>` + tag("g") + `</inbound></policies>`,
			product:   `<policies><inbound><base />` + tag("p") + `</inbound></policies>`,
			api:       `<policies><inbound><base />` + tag("a") + `</inbound></policies>`,
			operation: `<policies><inbound><base />` + tag("o") + `</inbound></policies>`,
			want:      []string{"g", "p", "a", "o"}},
		{name: "base in the middle", global: `<policies><inbound>` + tag("g") + `</inbound></policies>`,
			api:  `<policies><inbound>` + tag("a1") + `<base />` + tag("a2") + `</inbound></policies>`,
			want: []string{"a1", "g", "a2"}},
		{name: "no base drops the enclosing scopes", global: `<policies><inbound>` + tag("g") + `</inbound></policies>`,
			api:       `<policies><inbound><base />` + tag("a") + `</inbound></policies>`,
			operation: `<policies><inbound>` + tag("o") + `</inbound></policies>`,
			want:      []string{"o"}},
		{name: "absent section inherits", global: `<policies><inbound>` + tag("g") + `</inbound></policies>`,
			api:  `<policies><outbound><base /></outbound></policies>`,
			want: []string{"g"}},
		{name: "empty section replaces", global: `<policies><inbound>` + tag("g") + `</inbound></policies>`,
			api:  `<policies><inbound /></policies>`,
			want: nil},
		{name: "fragment", api: `<policies><inbound><include-fragment fragment-id="tag" />` + tag("a") + `</inbound></policies>`,
			want: []string{"a"}},
		{name: "named value", api: `<policies><inbound>` + tag("{{greeting}}") + `</inbound></policies>`,
			want: []string{"hello"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set := newSet(t, false)
			g := set.Compile(Location{Scope: ScopeGlobal}, tc.global)
			p := set.Compile(Location{Scope: ScopeProduct, Name: "p"}, tc.product)
			a := set.Compile(Location{Scope: ScopeAPI, Name: "a"}, tc.api)
			o := set.Compile(Location{Scope: ScopeOperation, Name: "a/o"}, tc.operation)
			if err := set.Err(); err != nil {
				t.Fatal(err)
			}
			forwarded := false
			_, trace := run(t, Compose(g, p, a, o), func(*Request, ForwardOptions) error { forwarded = true; return nil })
			if strings.Join(trace, ",") != strings.Join(tc.want, ",") {
				t.Errorf("order %v, want %v", trace, tc.want)
			}
			if !forwarded {
				t.Error("the default global backend section did not forward")
			}
		})
	}
}

func TestCompileIssues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		doc      string
		strict   bool
		wantErr  string // substring of the error, "" for none
		wantWarn string // substring of a warning
	}{
		{name: "unknown element", doc: `<policies><inbound><made-up /></inbound></policies>`, wantWarn: "<made-up>: skipped: is not a policy this gateway runs"},
		{name: "unknown element, strict", doc: `<policies><inbound><made-up /></inbound></policies>`, strict: true, wantErr: "not supported"},
		{name: "expression compiles", doc: `<policies><inbound><set-header name="x"><value>@(context.RequestId)</value></set-header></inbound></policies>`},
		{name: "expression outside the subset", doc: "<policies>\n<inbound>\n<set-header name=\"x\"><value>@(new System.Net.Sockets.TcpClient())</value></set-header></inbound></policies>", wantErr: "<set-header>: expression:"},
		{name: "expression syntax error has a position", doc: "<policies>\n<inbound>\n  <set-variable name=\"v\" value=\"@(1 +)\" /></inbound></policies>", wantErr: "line 3, column"},
		{name: "wrong section", doc: `<policies><outbound><check-header name="x" failed-check-httpcode="401" failed-check-error-message="m" /></outbound></policies>`, wantErr: "is not allowed in <outbound>"},
		{name: "forward-request outside backend", doc: `<policies><inbound><forward-request /></inbound></policies>`, wantErr: "allowed in <backend>"},
		{name: "section twice", doc: `<policies><inbound /><inbound /></policies>`, wantErr: "appears twice"},
		{name: "not a section", doc: `<policies><middle /></policies>`, wantErr: "is not a section"},
		{name: "base twice", doc: `<policies><inbound><base /><base /></inbound></policies>`, wantErr: "more than once"},
		{name: "fragment cycle", doc: `<policies><inbound><include-fragment fragment-id="loop" /></inbound></policies>`, wantErr: "includes itself"},
		{name: "unknown fragment", doc: `<policies><inbound><include-fragment fragment-id="nope" /></inbound></policies>`, wantErr: `fragment "nope"`},
		{name: "bad status", doc: `<policies><inbound><return-response><set-status code="99" /></return-response></inbound></policies>`, wantErr: "not an HTTP status code"},
		{name: "bad exists-action", doc: `<policies><inbound><set-header name="x" exists-action="replace" /></inbound></policies>`, wantErr: "exists-action"},
		{name: "bad ip range", doc: `<policies><inbound><ip-filter action="allow"><address-range from="10.0.0.9" to="10.0.0.1" /></ip-filter></inbound></policies>`, wantErr: "ascending"},
		{name: "both base-url and backend-id", doc: `<policies><inbound><set-backend-service base-url="http://a" backend-id="b" /></inbound></policies>`, wantErr: "exactly one"},
		{name: "error has a position", doc: "<policies>\n  <inbound>\n    <set-header />\n  </inbound>\n</policies>", wantErr: "line 3, column 5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set := newSet(t, tc.strict)
			set.Compile(Location{Scope: ScopeAPI, Name: "a"}, tc.doc)
			err := set.Err()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if tc.wantWarn != "" {
				var all []string
				for _, w := range set.Warnings {
					all = append(all, w.String())
				}
				if !strings.Contains(strings.Join(all, "\n"), tc.wantWarn) {
					t.Errorf("warnings %v, want %q", all, tc.wantWarn)
				}
			}
		})
	}
}

func TestLastErrorFields(t *testing.T) {
	t.Parallel()
	set := newSet(t, false)
	api := set.Compile(Location{Scope: ScopeAPI, Name: "a"}, `<policies><inbound><base />
		<check-header name="X-Need" failed-check-httpcode="401" failed-check-error-message="need it" id="guard" /></inbound></policies>`)
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}, nil)
	r := &Request{Ctx: ctx}
	Compose(nil, api).Run(r)
	want := Error{Source: "check-header", Reason: "HeaderNotFound", Message: "need it", Scope: "api", Section: "inbound", Path: "check-header[1]", PolicyID: "guard", Status: 401}
	if r.LastError == nil || *r.LastError != want {
		t.Fatalf("LastError %+v, want %+v", r.LastError, want)
	}
	if ctx.Response.StatusCode() != 401 || string(ctx.Response.Body()) != `{ "statusCode": 401, "message": "need it" }` {
		t.Errorf("answer %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
}

// {{ ... }} in a Liquid template is the template's; elsewhere an unknown
// name is a missing named value.
func TestNamedValuesAndLiquid(t *testing.T) {
	t.Parallel()
	set := newSet(t, false)
	set.Compile(Location{Scope: ScopeAPI, Name: "a"}, `<policies><inbound>
		<set-body template="liquid">{"id": "{{body.id}}", "greeting": "{{greeting}}"}</set-body>
	</inbound></policies>`)
	if err := set.Err(); err != nil {
		t.Fatalf("liquid output taken for a named value: %v", err)
	}
	set = newSet(t, false)
	set.Compile(Location{Scope: ScopeAPI, Name: "a"}, `<policies><inbound><set-header name="x"><value>{{body.id}}</value></set-header></inbound></policies>`)
	if err := set.Err(); err == nil || !strings.Contains(err.Error(), `named value "body.id"`) {
		t.Fatalf("error %v", err)
	}
}
