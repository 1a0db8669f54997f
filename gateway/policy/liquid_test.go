package policy

import (
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/expr"
)

// renderLiquid runs a template as set-body does, on an inbound request.
// It does not go through Set.Compile: the document loader replaces
// {{name}} with named values first (see TestLiquidThroughThePipeline).
func renderLiquid(t *testing.T, tpl, body string, hdrs map[string]string) string {
	t.Helper()
	lt, err := parseLiquid(tpl)
	if err != nil {
		t.Fatal(err)
	}
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}, nil)
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/a/orders?x=1")
	ctx.Request.SetBodyString(body)
	for k, v := range hdrs {
		ctx.Request.Header.Set(k, v)
	}
	r := &Request{Ctx: ctx}
	exprVars{r}.Set("v", expr.String("set"))
	if err := (&liquidBody{tpl: lt}).Exec(r); err != nil {
		t.Fatal(err)
	}
	return string(ctx.Request.Body())
}

func TestLiquidRender(t *testing.T) {
	t.Parallel()
	body := `{"name":"ada","n":3,"price":2.5,"items":[{"id":1,"tag":"x"},{"id":2,"tag":"y"}],"empty":[],"nested":{"ok":true}}`
	tests := []struct{ name, tpl, want string }{
		{name: "path", tpl: `{{ body.name }}-{{body.nested.ok}}`, want: "ada-true"},
		{name: "index", tpl: `{{ body.items[1].id }}{{ body.items[0]["tag"] }}`, want: "2x"},
		{name: "size and first", tpl: `{{ body.items.size }} {{ body.items.first.tag }} {{ body.items | Last | Size }}`, want: "2 x 2"},
		{name: "missing is empty", tpl: `[{{ body.nope.deeper }}]`, want: "[]"},
		{name: "filters", tpl: `{{ body.name | Upcase }} {{ body.nope | Default: "anon" }} {{ "ABC" | Downcase | Append: "!" }}`, want: "ADA anon abc!"},
		{name: "arithmetic", tpl: `{{ body.n | Plus: 2 }} {{ body.price | Times: 2 }} {{ body.n | DividedBy: 2 }} {{ 7 | Modulo: 4 }}`, want: "5 5 1.5 3"},
		{name: "if elsif else", tpl: `{% if body.n > 5 %}big{% elsif body.n == 3 and body.name == "ada" %}three{% else %}other{% endif %}`, want: "three"},
		{name: "or and precedence", tpl: `{% if false and false or true %}t{% else %}f{% endif %}`, want: "f"},
		{name: "not equal and less", tpl: `{% if body.name != "bob" %}a{% endif %}{% if body.n < 2 %}b{% endif %}{% if body.n <= 3 %}c{% endif %}`, want: "ac"},
		{name: "truthiness", tpl: `{% if body.nope %}x{% else %}nil{% endif %}{% if body.empty == empty %}E{% endif %}`, want: "nilE"},
		{name: "unless", tpl: `{% unless body.nested.ok %}no{% else %}yes{% endunless %}`, want: "yes"},
		{name: "contains", tpl: `{% if body.name contains "d" %}c{% endif %}`, want: "c"},
		{name: "for", tpl: `{% for it in body.items %}{{ forloop.index }}:{{ it.tag }}{% unless forloop.last %},{% endunless %}{% endfor %}`, want: "1:x,2:y"},
		{name: "for else", tpl: `{% for it in body.empty %}x{% else %}none{% endfor %}`, want: "none"},
		{name: "for limit reversed", tpl: `{% for it in body.items reversed limit: 1 %}{{ it.id }}{% endfor %}`, want: "1"}, // Liquid slices, then reverses,
		{name: "assign", tpl: `{% assign who = body.name | Capitalize %}{{ who }}`, want: "Ada"},
		{name: "whitespace control", tpl: "a\n  {%- if true -%}\n  b\n  {%- endif -%}\n c", want: "abc"},
		{name: "comment and raw", tpl: `{% comment %}hidden{{ x }}{% endcomment %}{% raw %}{{ kept }}{% endraw %}`, want: "{{ kept }}"},
		{name: "object renders as JSON", tpl: `{{ body.nested }}`, want: `{"ok":true}`},
		{name: "json shape", tpl: `{"order":{"id":"{{body.items[0].id}}","who":"{{ body.name | Upcase }}"}}`, want: `{"order":{"id":"1","who":"ADA"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := renderLiquid(t, tc.tpl, body, map[string]string{"Content-Type": "application/json"}); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// xmlText escapes a template for an XML element's text.
func xmlText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;").Replace(s)
}

func TestLiquidContext(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, tpl, want string }{
		{name: "method and path", tpl: `{{ context.Request.Method | Downcase }} {{ context.Request.Url.Path | Default: "" }}`, want: "post /a/orders"},
		{name: "query and headers", tpl: `{{ context.Request.Url.Query["x"] }} {{ context.Request.Headers["X-Who"] }}`, want: "1 me"},
		{name: "variables", tpl: `{{ context.Variables["v"] }}{{ context.Variables["nope"] | Default: "-" }}`, want: "set-"},
		{name: "missing subscription", tpl: `[{{ context.Subscription.Id }}]`, want: "[]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := renderLiquid(t, tc.tpl, `{}`, map[string]string{"Content-Type": "application/json", "X-Who": "me"}); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLiquidCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, tpl, wantErr string }{
		{name: "unknown tag", tpl: "ok\n  {% case x %}", wantErr: `line 2, column 3: the tag "case" is not supported`},
		{name: "unclosed if", tpl: `{% if a %}x`, wantErr: "without {% endif %}"},
		{name: "stray endfor", tpl: `x{% endfor %}`, wantErr: "column 2: {% endfor %} without an opening tag"},
		{name: "unclosed output", tpl: `{{ a `, wantErr: "is not closed"},
		{name: "lowercase filter", tpl: `{{ a | upcase }}`, wantErr: "Pascal case: Upcase"},
		{name: "unknown filter", tpl: `{{ a | Frobnicate }}`, wantErr: `the filter "Frobnicate" is not supported`},
		{name: "filter arity", tpl: `{{ a | Default }}`, wantErr: "takes 1 to 1 arguments"},
		{name: "bad condition", tpl: `{% if a === b %}{% endif %}`, wantErr: `unexpected "===" in a condition`},
		{name: "bad for", tpl: `{% for in x %}{% endfor %}`, wantErr: "for item in list"},
		{name: "else after else", tpl: `{% if a %}{% else %}{% else %}{% endif %}`, wantErr: "unexpected {% else %}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set := newSet(t, false)
			set.Compile(Location{Scope: ScopeAPI, Name: "a"}, `<policies><inbound><set-body template="liquid">`+xmlText(tc.tpl)+`</set-body></inbound></policies>`)
			err := set.Err()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestLiquidThroughThePipeline compiles set-body template="liquid" in a
// document, with outputs the named-value pass leaves alone (a filter or
// an index): a bare {{ body.name }} is taken for a named value reference
// by Set.substitute before the policy compiles.
func TestLiquidThroughThePipeline(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, section, tpl, body, want string }{
		{name: "inbound request body", section: "inbound", tpl: `{"who":"{{ body.name | Upcase }}","first":{{ body.items[0] }}}`, body: `{"name":"ada","items":[7]}`, want: `{"who":"ADA","first":7}`},
		{name: "outbound response body", section: "outbound", tpl: `{% if body.n > 1 %}many{% endif %}`, body: `{"n":2}`, want: "many"},
		{name: "literal XML payload", section: "inbound", tpl: `<soap:Envelope xmlns:soap="urn:s"><cust>{{ body.cust | Default: "none" }}</cust></soap:Envelope>`, body: `{"cust":"c1"}`, want: `<soap:Envelope xmlns:soap="urn:s"><cust>c1</cust></soap:Envelope>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := `<policies><` + tc.section + `><set-body template="liquid">` + tc.tpl + `</set-body></` + tc.section + `></policies>`
			ctx := runBody(t, doc, tc.body, map[string]string{"Content-Type": "application/json"}, "", "")
			if got := string(ctx.Response.Body()); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
