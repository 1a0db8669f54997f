package policy

import (
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// runBody compiles doc, runs it on a request with the given body and
// headers, and returns the context after Run. The forwarder echoes the
// request body and Content-Type into the response, or answers with
// backend when set.
func runBody(t *testing.T, doc, body string, hdrs map[string]string, backend, backendType string) *fasthttp.RequestCtx {
	t.Helper()
	set := newSet(t, true)
	d := set.Compile(Location{Scope: ScopeAPI, Name: "a"}, doc)
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	if len(set.Warnings) > 0 {
		t.Fatalf("warnings: %v", set.Warnings)
	}
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}, nil)
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/a/orders?x=1")
	ctx.Request.SetBodyString(body)
	for k, v := range hdrs {
		ctx.Request.Header.Set(k, v)
	}
	r := &Request{Ctx: ctx, Forward: func(r *Request, _ ForwardOptions) error {
		if backend != "" {
			r.Ctx.Response.SetBodyString(backend)
			r.Ctx.Response.Header.SetContentType(backendType)
			return nil
		}
		r.Ctx.Response.SetBody(r.Ctx.Request.Body())
		r.Ctx.Response.Header.SetContentTypeBytes(r.Ctx.Request.Header.ContentType())
		return nil
	}}
	Compose(nil, nil, d, nil).Run(r)
	return ctx
}

func TestJSONToXML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, attrs, body, accept, ctype string
		want, wantType                   string
	}{
		{name: "single member is the root", attrs: `apply="always"`, body: `{"order":{"id":1,"tags":["a","b"],"note":null,"ok":true}}`,
			want: `<order><id>1</id><tags>a</tags><tags>b</tags><note /><ok>true</ok></order>`, wantType: "application/xml"},
		{name: "several members under Document", attrs: `apply="always"`, body: `{"a":"x<y","b":2}`,
			want: `<Document><a>x&lt;y</a><b>2</b></Document>`, wantType: "application/xml"},
		{name: "top-level array", attrs: `apply="always"`, body: `[1,2]`, want: `<Document><Array>1</Array><Array>2</Array></Document>`, wantType: "application/xml"},
		{name: "invalid names are encoded", attrs: `apply="always"`, body: `{"a":{"1st name":"v"}}`, want: `<a><_x0031_st_x0020_name>v</_x0031_st_x0020_name></a>`, wantType: "application/xml"},
		{name: "reference example", attrs: `apply="always" consider-accept-header="false" parse-date="false" namespace-separator=":" namespace-prefix="xmlns" attribute-block-name="#attrs"`,
			body:     `{"soapenv:Envelope":{"xmlns:soapenv":"http://schemas.xmlsoap.org/soap/envelope/","xmlns:v1":"http://localdomain.com/core/v1","soapenv:Header":{},"soapenv:Body":{"v1:QueryList":{"#attrs":{"queryName":"test"},"v1:QueryItem":{"name":"dummy text"}}}}}`,
			want:     `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v1="http://localdomain.com/core/v1"><soapenv:Header /><soapenv:Body><v1:QueryList queryName="test"><v1:QueryItem><name>dummy text</name></v1:QueryItem></v1:QueryList></soapenv:Body></soapenv:Envelope>`,
			wantType: "application/xml"},
		{name: "default separator with a declared prefix", attrs: `apply="always" namespace-prefix="xmlns"`, body: `{"s_Env":{"xmlns_s":"urn:s","s_Body":"x","first_name":"y"}}`,
			want: `<s:Env xmlns:s="urn:s"><s:Body>x</s:Body><first_name>y</first_name></s:Env>`, wantType: "application/xml"},
		{name: "parse-date normalizes", attrs: `apply="always"`, body: `{"d":{"at":"2024-01-02T03:04:05.500000Z"}}`, want: `<d><at>2024-01-02T03:04:05.5Z</at></d>`, wantType: "application/xml"},
		{name: "parse-date false copies", attrs: `apply="always" parse-date="false"`, body: `{"d":{"at":"2024-01-02T03:04:05.500000Z"}}`, want: `<d><at>2024-01-02T03:04:05.500000Z</at></d>`, wantType: "application/xml"},
		{name: "content-type-json skips other types", attrs: `apply="content-type-json"`, ctype: "text/plain", body: `{"a":1}`, want: `{"a":1}`, wantType: "text/plain"},
		{name: "content-type-json converts +json", attrs: `apply="content-type-json"`, ctype: "application/problem+json", body: `{"a":{"b":1}}`, want: `<a><b>1</b></a>`, wantType: "application/xml"},
		{name: "accept without xml skips", attrs: `apply="always"`, accept: "application/json", body: `{"a":1}`, want: `{"a":1}`, wantType: "application/json"},
		{name: "accept ignored when told", attrs: `apply="always" consider-accept-header="false"`, accept: "application/json", body: `{"a":{"b":1}}`, want: `<a><b>1</b></a>`, wantType: "application/xml"},
		{name: "malformed JSON passes through", attrs: `apply="always"`, body: `{"a":`, want: `{"a":`, wantType: "application/json"},
		{name: "expression attribute", attrs: `apply="@("always")"`, body: `{"a":{"b":1}}`, want: `<a><b>1</b></a>`, wantType: "application/xml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ct := tc.ctype
			if ct == "" {
				ct = "application/json"
			}
			h := map[string]string{"Content-Type": ct}
			if tc.accept != "" {
				h["Accept"] = tc.accept
			}
			// outbound: the response body; inbound: the request body
			for _, section := range []string{"inbound", "outbound"} {
				doc := `<policies><` + section + `><json-to-xml ` + tc.attrs + ` /></` + section + `></policies>`
				ctx := runBody(t, doc, tc.body, h, "", "")
				if got := string(ctx.Response.Body()); got != tc.want {
					t.Errorf("%s: body\n %s\nwant\n %s", section, got, tc.want)
				}
				if got := string(ctx.Response.Header.ContentType()); got != tc.wantType {
					t.Errorf("%s: Content-Type %q, want %q", section, got, tc.wantType)
				}
			}
		})
	}
}

func TestXMLToJSON(t *testing.T) {
	t.Parallel()
	soap := `<?xml version="1.0"?>
<soap:Envelope xmlns="http://fyicenter.com/" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body><GetOrders><Customer>1234567</Customer></GetOrders></soap:Body>
</soap:Envelope>`
	tests := []struct {
		name, attrs, body, accept, ctype string
		want, wantType                   string
	}{
		{name: "direct keeps prefixes and declaration", attrs: `kind="direct" apply="always"`, body: soap,
			want:     `{"version":"1.0","soap$Envelope":{"@xmlns":"http://fyicenter.com/","@xmlns$soap":"http://schemas.xmlsoap.org/soap/envelope/","soap$Body":{"GetOrders":{"Customer":"1234567"}}}}`,
			wantType: "application/json"},
		{name: "javascript-friendly drops namespaces", attrs: `kind="javascript-friendly" apply="always"`, body: soap,
			want: `{"Envelope":{"Body":{"GetOrders":{"Customer":"1234567"}}}}`, wantType: "application/json"},
		{name: "repeated children, attributes, text, empty", attrs: `kind="direct" apply="always"`,
			body: `<r><i>1</i><j a="x">t</j><i>2</i><e/></r>`, want: `{"r":{"i":["1","2"],"j":{"@a":"x","#text":"t"},"e":null}}`, wantType: "application/json"},
		{name: "always array", attrs: `kind="direct" apply="always" always-array-child-elements="true"`,
			body: `<r><i>1</i><k><m>2</m></k></r>`, want: `{"r":{"i":["1"],"k":[{"m":["2"]}]}}`, wantType: "application/json"},
		{name: "content-type-xml skips json", attrs: `kind="direct" apply="content-type-xml"`, ctype: "application/json", body: `<r/>`, want: `<r/>`, wantType: "application/json"},
		{name: "accept without json skips", attrs: `kind="direct" apply="always"`, accept: "application/xml", body: `<r/>`, want: `<r/>`, wantType: "application/xml"},
		{name: "malformed XML passes through", attrs: `kind="direct" apply="always"`, body: `<r><x></r>`, want: `<r><x></r>`, wantType: "application/xml"},
		{name: "special characters", attrs: `kind="direct" apply="always"`, body: `<r>&lt;"&amp;</r>`, want: `{"r":"<\"&"}`, wantType: "application/json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ct := tc.ctype
			if ct == "" {
				ct = "application/xml"
			}
			h := map[string]string{}
			if tc.accept != "" {
				h["Accept"] = tc.accept
			}
			doc := `<policies><outbound><xml-to-json ` + tc.attrs + ` /></outbound></policies>`
			ctx := runBody(t, doc, "", h, tc.body, ct)
			if got := string(ctx.Response.Body()); got != tc.want {
				t.Errorf("body\n %s\nwant\n %s", got, tc.want)
			}
			if got := string(ctx.Response.Header.ContentType()); got != tc.wantType {
				t.Errorf("Content-Type %q, want %q", got, tc.wantType)
			}
		})
	}
}

func TestConvertCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, doc, wantErr string }{
		{name: "json-to-xml apply required", doc: `<json-to-xml />`, wantErr: "attribute apply is required"},
		{name: "json-to-xml bad apply", doc: `<json-to-xml apply="never" />`, wantErr: "must be always or content-type-json"},
		{name: "json-to-xml parse-date expression", doc: `<json-to-xml apply="always" parse-date="@(true)" />`, wantErr: "cannot be a policy expression"},
		{name: "json-to-xml long separator", doc: `<json-to-xml apply="always" namespace-separator="::" />`, wantErr: "one character"},
		{name: "xml-to-json kind required", doc: `<xml-to-json apply="always" />`, wantErr: "attribute kind is required"},
		{name: "xml-to-json bad kind", doc: `<xml-to-json kind="pretty" apply="always" />`, wantErr: "javascript-friendly or direct"},
		{name: "trace source required", doc: `<trace><message>m</message></trace>`, wantErr: "attribute source is required"},
		{name: "trace bad severity", doc: `<trace source="s" severity="debug"><message>m</message></trace>`, wantErr: "severity must be"},
		{name: "trace message required", doc: `<trace source="s" />`, wantErr: "exactly one <message>"},
		{name: "trace metadata value", doc: `<trace source="s"><message>m</message><metadata name="n" /></trace>`, wantErr: "needs a value"},
		{name: "trace source expression", doc: `<trace source="@("s")"><message>m</message></trace>`, wantErr: "cannot be a policy expression"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set := newSet(t, false)
			set.Compile(Location{Scope: ScopeAPI, Name: "a"}, `<policies><inbound>`+tc.doc+`</inbound></policies>`)
			err := set.Err()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestTraceIsANoOp(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, doc string }{
		{name: "literal", doc: `<trace source="PetStore API" severity="verbose"><message>hello</message><metadata name="Operation Name" value="New-Order" /></trace>`},
		{name: "expression message", doc: `<trace source="s" severity="error"><message>@((string)context.Variables["missing"])</message><metadata name="@("n")" value="@(context.RequestId)" /></trace>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := `<policies><inbound>` + tc.doc + `</inbound><outbound>` + tc.doc + `</outbound></policies>`
			ctx := runBody(t, doc, "body", map[string]string{"Content-Type": "text/plain"}, "", "")
			if ctx.Response.StatusCode() != 200 || string(ctx.Response.Body()) != "body" {
				t.Errorf("status %d body %q, want 200 and the untouched body", ctx.Response.StatusCode(), ctx.Response.Body())
			}
		})
	}
}
