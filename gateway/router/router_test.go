package router

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
)

// --- snapshot builders ---

func op(name, method, tpl string, params ...config.Parameter) config.Operation {
	return config.Operation{Name: name, Properties: config.OperationProperties{
		Method: method, URLTemplate: tpl, TemplateParameters: params,
	}}
}

func api(name, path string, ops ...config.Operation) config.API {
	return config.API{Name: name, Properties: config.APIProperties{Path: path}, Operations: ops}
}

func withProtocols(a config.API, protocols ...string) config.API {
	a.Properties.Protocols = protocols
	return a
}

// mustCompile validates s the way the loader does, then compiles it.
func mustCompile(tb testing.TB, s *config.Snapshot) *Table {
	tb.Helper()
	if s.SchemaVersion == "" {
		s.SchemaVersion = config.SchemaVersion
	}
	if issues := config.Validate(s); len(issues) > 0 {
		tb.Fatalf("snapshot is not valid: %v", issues)
	}
	t, err := Compile(s)
	if err != nil {
		tb.Fatalf("Compile: %v", err)
	}
	return t
}

func loadTable(tb testing.TB, file string) *Table {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		tb.Fatal(err)
	}
	s, err := config.Parse(data)
	if err != nil {
		tb.Fatalf("config.Parse(%s): %v", file, err)
	}
	t, err := Compile(s)
	if err != nil {
		tb.Fatalf("Compile(%s): %v", file, err)
	}
	return t
}

// routingSnapshot exercises API paths, URL templates, methods, query
// templates and protocols. It has no root API, so unknown paths are 404.
func routingSnapshot() *config.Snapshot {
	return &config.Snapshot{APIs: []config.API{
		api("a", "/a/",
			op("a-hello", "GET", "/hello"),
			op("a-b-special", "GET", "/b/special"),
		),
		api("ab", "a/b",
			op("ab-items", "GET", "/items"),
			op("ab-item", "GET", "/items/{id}"),
		),
		api("shop", "Shop",
			op("get-order", "GET", "/users/{id}/orders/{orderId}"),
			op("get-user-me", "GET", "/users/me"),
			op("get-user", "GET", "/users/{id}"),
			op("post-users", "POST", "/users"),
			op("get-user-cart", "GET", "/users/{userId}/cart"),
			op("get-resource", "GET", "/resource({id})"),
			op("get-file-json", "GET", "/files/{name}.json"),
			op("get-file", "GET", "/files/{name}"),
			op("get-file-tree", "GET", "/files/*"),
			op("get-catalog-items", "GET", "/Catalog/Items"),
			op("download", "GET", "/download/*"),
			op("assets", "GET", "/assets/{*rest}"),
			op("any-ping", "*", "/ping"),
			op("post-ping", "POST", "/ping"),
			op("search", "GET", "/search?q={q}"),
			op("list", "GET", "/list?page={page}", config.Parameter{Name: "page", Required: false}),
			op("things-a", "GET", "/things?type=a"),
			op("things-b", "GET", "/things?type=b"),
			op("things", "GET", "/things"),
			op("folder", "GET", "/folder"),
		),
		withProtocols(api("secure", "secure", op("secure-x", "GET", "/x")), "https"),
		withProtocols(api("plain", "plain", op("plain-x", "GET", "/x")), "http"),
		api("deep", "deep", op("deep-all", "GET", "/{*rest}")),
	}}
}

// rootSnapshot has an API on the empty path next to one on "a".
func rootSnapshot() *config.Snapshot {
	return &config.Snapshot{APIs: []config.API{
		api("root", "",
			op("root-home", "GET", "/"),
			op("root-health", "GET", "/health"),
			op("root-a-deeper", "GET", "/a/deeper"),
		),
		api("a", "a", op("a-x", "GET", "/x")),
	}}
}

func hostsSnapshot(reject bool) *config.Snapshot {
	return &config.Snapshot{
		Gateway: config.Gateway{
			Name:                   "gw",
			RejectUnknownHostnames: reject,
			Hostnames: []config.Hostname{
				{Hostname: "gw.Example.com"},
				{Hostname: "*.contoso.com"},
			},
		},
		APIs: []config.API{api("h", "h", op("h-x", "GET", "/x"))},
	}
}

// --- test cases ---

type fakeHeader struct {
	name  string
	value []byte
}

func (h fakeHeader) Peek(key string) []byte {
	if strings.EqualFold(key, h.name) {
		return h.value
	}
	return nil
}

type lookupCase struct {
	name   string
	host   string
	secure bool
	method string // GET when empty
	path   string
	query  string
	header *fakeHeader

	want   Result
	api    string // expected Match.API.Name, "" for nil
	op     string // expected Match.Operation.Name, "" for nil
	suffix string
	params []Param
}

func (c *lookupCase) request() *Request {
	r := &Request{Host: c.host, Secure: c.secure, Method: c.method, Path: c.path, Query: c.query}
	if r.Method == "" {
		r.Method = "GET"
	}
	if c.header != nil {
		r.Header = *c.header
	}
	return r
}

func runLookupCases(t *testing.T, table *Table, cases []lookupCase) {
	t.Helper()
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var m Match
			got := table.Lookup(&m, tc.request())
			if got != tc.want {
				t.Errorf("Result = %v, want %v", resultName(got), resultName(tc.want))
			}
			if name := apiName(m.API); name != tc.api {
				t.Errorf("API = %q, want %q", name, tc.api)
			}
			if name := opName(m.Operation); name != tc.op {
				t.Errorf("Operation = %q, want %q", name, tc.op)
			}
			if m.Suffix != tc.suffix {
				t.Errorf("Suffix = %q, want %q", m.Suffix, tc.suffix)
			}
			if params := m.Params(); !slices.Equal(params, tc.params) {
				t.Errorf("Params = %q, want %q", params, tc.params)
			}
			for _, p := range tc.params {
				if v, ok := m.Param(strings.ToUpper(p.Name)); !ok || v != p.Value {
					t.Errorf("Param(%q) = %q, %v; want %q", strings.ToUpper(p.Name), v, ok, p.Value)
				}
			}
			if m.Operation != nil && m.Operation.API != m.API {
				t.Errorf("Operation.API = %q, Match.API = %q", apiName(m.Operation.API), apiName(m.API))
			}
		})
	}
}

func resultName(r Result) string {
	switch r {
	case Found:
		return "Found"
	case NotFound:
		return "NotFound"
	case OperationNotFound:
		return "OperationNotFound"
	}
	return "Result(?)"
}

func apiName(a *API) string {
	if a == nil {
		return ""
	}
	return a.Name
}

func opName(o *Operation) string {
	if o == nil {
		return ""
	}
	return o.Name
}

func p(name, value string) Param { return Param{Name: name, Value: value} }

func ps(kv ...string) []Param {
	var out []Param
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, p(kv[i], kv[i+1]))
	}
	return out
}

func TestLookupAPIPath(t *testing.T) {
	t.Parallel()
	table := mustCompile(t, routingSnapshot())
	runLookupCases(t, table, []lookupCase{
		{name: "longest prefix a/b wins", path: "/a/b/items", want: Found, api: "ab", op: "ab-items", suffix: "/items"},
		{name: "longest prefix a/b with param", path: "/a/b/items/7", want: Found, api: "ab", op: "ab-item", suffix: "/items/7", params: ps("id", "7")},
		{name: "shorter prefix a", path: "/a/hello", want: Found, api: "a", op: "a-hello", suffix: "/hello"},
		{name: "fallback to shorter API when longer has no operation", path: "/a/b/special", want: Found, api: "a", op: "a-b-special", suffix: "/b/special"},
		{name: "operation not found reports the deepest API", path: "/a/b/nothing", want: OperationNotFound, api: "ab"},
		{name: "api path case-insensitive", path: "/SHOP/users/me", want: Found, api: "shop", op: "get-user-me", suffix: "/users/me"},
		{name: "api path of two segments case-insensitive", path: "/A/B/Items", want: Found, api: "ab", op: "ab-items", suffix: "/Items"},
		{name: "api path must match whole segments", path: "/shopping/users/me", want: NotFound},
		{name: "unknown api", path: "/nosuch/users", want: NotFound},
		{name: "root path without root api", path: "/", want: NotFound},
		{name: "empty path without root api", path: "", want: NotFound},
		{name: "api path alone without root operation", path: "/shop", want: OperationNotFound, api: "shop"},
		{name: "leading double slash before api path", path: "//shop/users/me", want: Found, api: "shop", op: "get-user-me", suffix: "/users/me"},
	})
}

func TestLookupRootAPI(t *testing.T) {
	t.Parallel()
	table := mustCompile(t, rootSnapshot())
	runLookupCases(t, table, []lookupCase{
		{name: "root home", path: "/", want: Found, api: "root", op: "root-home", suffix: ""},
		{name: "root operation", path: "/health", want: Found, api: "root", op: "root-health", suffix: "/health"},
		{name: "root operation case-insensitive", path: "/HEALTH", want: Found, api: "root", op: "root-health", suffix: "/HEALTH"},
		{name: "root operation trailing slash", path: "/health/", want: Found, api: "root", op: "root-health", suffix: "/health/"},
		{name: "longer api wins over root", path: "/a/x", want: Found, api: "a", op: "a-x", suffix: "/x"},
		{name: "fallback from a to root", path: "/a/deeper", want: Found, api: "root", op: "root-a-deeper", suffix: "/a/deeper"},
		{name: "unknown path under root", path: "/nothing", want: OperationNotFound, api: "root"},
		{name: "unknown path under a reports a", path: "/a/nothing", want: OperationNotFound, api: "a"},
		{name: "path without leading slash", path: "health", want: Found, api: "root", op: "root-health", suffix: "health"},
	})
}

func TestLookupTemplates(t *testing.T) {
	t.Parallel()
	table := mustCompile(t, routingSnapshot())
	runLookupCases(t, table, []lookupCase{
		{name: "two params", path: "/shop/users/42/orders/7", want: Found, api: "shop", op: "get-order", suffix: "/users/42/orders/7", params: ps("id", "42", "orderId", "7")},
		{name: "literal segments case-insensitive, params keep case", path: "/SHOP/USERS/Ab/ORDERS/Cd", want: Found, api: "shop", op: "get-order", suffix: "/USERS/Ab/ORDERS/Cd", params: ps("id", "Ab", "orderId", "Cd")},
		{name: "params stay percent-encoded", path: "/shop/users/a%2Fb/orders/x%20y", want: Found, api: "shop", op: "get-order", suffix: "/users/a%2Fb/orders/x%20y", params: ps("id", "a%2Fb", "orderId", "x%20y")},
		{name: "static beats param", path: "/shop/users/me", want: Found, api: "shop", op: "get-user-me", suffix: "/users/me"},
		{name: "static beats param case-insensitive", path: "/shop/users/ME", want: Found, api: "shop", op: "get-user-me", suffix: "/users/ME"},
		{name: "param when static does not match", path: "/shop/users/you", want: Found, api: "shop", op: "get-user", suffix: "/users/you", params: ps("id", "you")},
		{name: "static segment then deeper param path", path: "/shop/users/me/orders/1", want: Found, api: "shop", op: "get-order", suffix: "/users/me/orders/1", params: ps("id", "me", "orderId", "1")},
		{name: "prefix and suffix param", path: "/shop/resource(12)", want: Found, api: "shop", op: "get-resource", suffix: "/resource(12)", params: ps("id", "12")},
		{name: "prefix and suffix param case-insensitive literal", path: "/shop/RESOURCE(ab)", want: Found, api: "shop", op: "get-resource", suffix: "/RESOURCE(ab)", params: ps("id", "ab")},
		{name: "prefix and suffix param needs a value", path: "/shop/resource()", want: OperationNotFound, api: "shop"},
		{name: "suffix param", path: "/shop/files/report.json", want: Found, api: "shop", op: "get-file-json", suffix: "/files/report.json", params: ps("name", "report")},
		{name: "suffix param case-insensitive", path: "/shop/files/report.JSON", want: Found, api: "shop", op: "get-file-json", suffix: "/files/report.JSON", params: ps("name", "report")},
		{name: "suffix param falls back to bare param", path: "/shop/files/report.xml", want: Found, api: "shop", op: "get-file", suffix: "/files/report.xml", params: ps("name", "report.xml")},
		{name: "suffix alone is a bare param value", path: "/shop/files/.json", want: Found, api: "shop", op: "get-file", suffix: "/files/.json", params: ps("name", ".json")},
		{name: "shared param edge keeps each operation's names", path: "/shop/users/42/cart", want: Found, api: "shop", op: "get-user-cart", suffix: "/users/42/cart", params: ps("userId", "42")},
		{name: "param beats wildcard", path: "/shop/files/a", want: Found, api: "shop", op: "get-file", suffix: "/files/a", params: ps("name", "a")},
		{name: "wildcard after failed param", path: "/shop/files/a/b.json", want: Found, api: "shop", op: "get-file-tree", suffix: "/files/a/b.json"},
		{name: "wildcard at param node with zero segments", path: "/shop/files", want: Found, api: "shop", op: "get-file-tree", suffix: "/files"},
		{name: "literal template segments case-insensitive", path: "/shop/catalog/items", want: Found, api: "shop", op: "get-catalog-items", suffix: "/catalog/items"},
		{name: "too many segments for template", path: "/shop/users/1/orders/2/extra", want: OperationNotFound, api: "shop"},
		{name: "star wildcard", path: "/shop/download/a/b/c", want: Found, api: "shop", op: "download", suffix: "/download/a/b/c"},
		{name: "star wildcard zero segments", path: "/shop/download", want: Found, api: "shop", op: "download", suffix: "/download"},
		{name: "star wildcard zero segments trailing slash", path: "/shop/download/", want: Found, api: "shop", op: "download", suffix: "/download/"},
		{name: "named wildcard", path: "/shop/assets/css/site.css", want: Found, api: "shop", op: "assets", suffix: "/assets/css/site.css", params: ps("rest", "css/site.css")},
		{name: "named wildcard zero segments", path: "/shop/assets", want: Found, api: "shop", op: "assets", suffix: "/assets", params: ps("rest", "")},
		{name: "named wildcard keeps slashes raw", path: "/shop/assets/a//b%2F/", want: Found, api: "shop", op: "assets", suffix: "/assets/a//b%2F/", params: ps("rest", "a//b%2F/")},
		{name: "trailing slash kept in suffix", path: "/shop/folder/", want: Found, api: "shop", op: "folder", suffix: "/folder/"},
		{name: "double slashes kept in suffix", path: "/shop//users//42", want: Found, api: "shop", op: "get-user", suffix: "//users//42", params: ps("id", "42")},
		{name: "double trailing slash kept in suffix", path: "/shop/folder//", want: Found, api: "shop", op: "folder", suffix: "/folder//"},
		{name: "trailing slash after api path", path: "/a/b/", want: OperationNotFound, api: "ab"},
	})
}

func TestLookupMethods(t *testing.T) {
	t.Parallel()
	table := mustCompile(t, routingSnapshot())
	runLookupCases(t, table, []lookupCase{
		{name: "POST on users", method: "POST", path: "/shop/users", want: Found, api: "shop", op: "post-users", suffix: "/users"},
		{name: "method mismatch", method: "DELETE", path: "/shop/users", want: OperationNotFound, api: "shop"},
		{name: "method mismatch on param path", method: "PUT", path: "/shop/users/42", want: OperationNotFound, api: "shop"},
		{name: "star method GET", path: "/shop/ping", want: Found, api: "shop", op: "any-ping", suffix: "/ping"},
		{name: "star method PATCH", method: "PATCH", path: "/shop/ping", want: Found, api: "shop", op: "any-ping", suffix: "/ping"},
		{name: "exact method beats star", method: "POST", path: "/shop/ping", want: Found, api: "shop", op: "post-ping", suffix: "/ping"},
	})
}

func TestLookupQueryTemplates(t *testing.T) {
	t.Parallel()
	table := mustCompile(t, routingSnapshot())
	runLookupCases(t, table, []lookupCase{
		{name: "required query param present", path: "/shop/search", query: "q=shoes", want: Found, api: "shop", op: "search", suffix: "/search", params: ps("q", "shoes")},
		{name: "required query param among others, raw value", path: "/shop/search", query: "x=1&q=red%20shoes&q=ignored", want: Found, api: "shop", op: "search", suffix: "/search", params: ps("q", "red%20shoes")},
		{name: "required query param missing", path: "/shop/search", want: OperationNotFound, api: "shop"},
		{name: "required query param empty", path: "/shop/search", query: "q=", want: OperationNotFound, api: "shop"},
		{name: "required query param name is case-sensitive", path: "/shop/search", query: "Q=shoes", want: OperationNotFound, api: "shop"},
		{name: "optional query param missing", path: "/shop/list", want: Found, api: "shop", op: "list", suffix: "/list", params: ps("page", "")},
		{name: "optional query param present", path: "/shop/list", query: "page=2", want: Found, api: "shop", op: "list", suffix: "/list", params: ps("page", "2")},
		{name: "literal query type=a", path: "/shop/things", query: "type=a", want: Found, api: "shop", op: "things-a", suffix: "/things"},
		{name: "literal query type=b", path: "/shop/things", query: "x=y&type=b", want: Found, api: "shop", op: "things-b", suffix: "/things"},
		{name: "literal query other value falls back", path: "/shop/things", query: "type=c", want: Found, api: "shop", op: "things", suffix: "/things"},
		{name: "literal query absent falls back", path: "/shop/things", want: Found, api: "shop", op: "things", suffix: "/things"},
	})
}

func TestLookupProtocols(t *testing.T) {
	t.Parallel()
	table := mustCompile(t, routingSnapshot())
	runLookupCases(t, table, []lookupCase{
		{name: "https-only over https", secure: true, path: "/secure/x", want: Found, api: "secure", op: "secure-x", suffix: "/x"},
		{name: "https-only over http", secure: false, path: "/secure/x", want: NotFound},
		{name: "http-only over http", secure: false, path: "/plain/x", want: Found, api: "plain", op: "plain-x", suffix: "/x"},
		{name: "http-only over https", secure: true, path: "/plain/x", want: NotFound},
		{name: "default protocols over https", secure: true, path: "/shop/users/me", want: Found, api: "shop", op: "get-user-me", suffix: "/users/me"},
	})
}

func TestLookupMaxSegments(t *testing.T) {
	t.Parallel()
	table := mustCompile(t, routingSnapshot())
	rest := func(n int) string { return strings.TrimSuffix(strings.Repeat("s/", n), "/") }
	atLimit := "/deep/" + rest(MaxSegments-1)
	overLimit := "/deep/" + rest(MaxSegments)
	runLookupCases(t, table, []lookupCase{
		{name: "exactly MaxSegments", path: atLimit, want: Found, api: "deep", op: "deep-all", suffix: "/" + rest(MaxSegments-1), params: ps("rest", rest(MaxSegments-1))},
		{name: "more than MaxSegments", path: overLimit, want: NotFound},
		{name: "empty segments do not count", path: "/deep//" + rest(MaxSegments-1) + "//", want: Found, api: "deep", op: "deep-all", suffix: "//" + rest(MaxSegments-1) + "//", params: ps("rest", rest(MaxSegments-1)+"//")},
	})
}

func TestLookupHosts(t *testing.T) {
	t.Parallel()
	found := func(name, host string) lookupCase {
		return lookupCase{name: name, host: host, path: "/h/x", want: Found, api: "h", op: "h-x", suffix: "/x"}
	}
	notFound := func(name, host string) lookupCase {
		return lookupCase{name: name, host: host, path: "/h/x", want: NotFound}
	}
	t.Run("enforced", func(t *testing.T) {
		t.Parallel()
		runLookupCases(t, mustCompile(t, hostsSnapshot(true)), []lookupCase{
			found("exact", "gw.example.com"),
			found("exact case-insensitive", "GW.EXAMPLE.COM"),
			found("exact with port", "gw.example.com:8443"),
			found("wildcard", "api.contoso.com"),
			found("wildcard case-insensitive with port", "API.Contoso.com:443"),
			notFound("wildcard covers one label only", "a.b.contoso.com"),
			notFound("wildcard does not cover the apex", "contoso.com"),
			notFound("unknown host", "other.example.com"),
			notFound("suffix of a known host", "xgw.example.com"),
			notFound("empty host", ""),
			notFound("ip address", "10.0.0.1:80"),
		})
	})
	t.Run("not enforced", func(t *testing.T) {
		t.Parallel()
		runLookupCases(t, mustCompile(t, hostsSnapshot(false)), []lookupCase{
			found("unknown host", "other.example.com"),
			found("ip address", "10.0.0.1:80"),
			found("ipv6 literal", "[::1]:8080"),
		})
	})
}

func TestLookupVersionSets(t *testing.T) {
	t.Parallel()
	table := loadTable(t, "versions.json")
	hdr := func(v string) *fakeHeader { return &fakeHeader{name: "api-version", value: []byte(v)} }
	runLookupCases(t, table, []lookupCase{
		// Segment scheme.
		{name: "segment original", path: "/seg/info", want: Found, api: "seg", op: "seg-info", suffix: "/info"},
		{name: "segment original with param", path: "/seg/items/3", want: Found, api: "seg", op: "seg-item", suffix: "/items/3", params: ps("id", "3")},
		{name: "segment v1", path: "/seg/v1/info", want: Found, api: "seg-v1", op: "seg-v1-info", suffix: "/info"},
		{name: "segment v1 case-insensitive with param", path: "/SEG/V1/Items/9", want: Found, api: "seg-v1", op: "seg-v1-item", suffix: "/Items/9", params: ps("id", "9")},
		{name: "segment v2", path: "/seg/v2/info", want: Found, api: "seg-v2", op: "seg-v2-info", suffix: "/info"},
		{name: "segment v2 without the operation", path: "/seg/v2/items/9", want: OperationNotFound, api: "seg-v2"},
		{name: "segment version alone", path: "/seg/v1", want: OperationNotFound, api: "seg-v1"},
		{name: "segment unknown version goes to original", path: "/seg/v9/info", want: OperationNotFound, api: "seg"},
		{name: "segment version revision", path: "/seg/v1;rev=2/info", want: Found, api: "seg-v1;rev=2", op: "seg-v1r2-info", suffix: "/info"},
		{name: "segment version current revision by number", path: "/seg/v1;rev=1/info", want: Found, api: "seg-v1", op: "seg-v1-info", suffix: "/info"},
		{name: "segment version unknown revision", path: "/seg/v1;rev=9/info", want: NotFound},
		{name: "segment no original: version", path: "/so/v1/info", want: Found, api: "so-v1", op: "so-v1-info", suffix: "/info"},
		{name: "segment no original: unknown version", path: "/so/v9/info", want: NotFound},
		{name: "segment no original: no version", path: "/so/info", want: NotFound},
		{name: "segment no original: api path alone", path: "/so", want: NotFound},

		// Query scheme.
		{name: "query original", path: "/qry/info", want: Found, api: "qry", op: "qry-info", suffix: "/info"},
		{name: "query original with other params", path: "/qry/info", query: "x=1", want: Found, api: "qry", op: "qry-info", suffix: "/info"},
		{name: "query version", path: "/qry/info", query: "x=1&api-version=2024-01-01", want: Found, api: "qry-2024", op: "qry-2024-info", suffix: "/info"},
		{name: "query unknown version", path: "/qry/info", query: "api-version=2099-01-01", want: NotFound},
		{name: "query version name is case-sensitive", path: "/qry/info", query: "API-VERSION=2024-01-01", want: Found, api: "qry", op: "qry-info", suffix: "/info"},

		// Header scheme.
		{name: "header original", path: "/hdr/info", want: Found, api: "hdr", op: "hdr-info", suffix: "/info"},
		{name: "header original other header", path: "/hdr/info", header: &fakeHeader{name: "x-other", value: []byte("v2")}, want: Found, api: "hdr", op: "hdr-info", suffix: "/info"},
		{name: "header version case-insensitive", path: "/hdr/info", header: hdr("v2"), want: Found, api: "hdr-v2", op: "hdr-v2-info", suffix: "/info"},
		{name: "header unknown version", path: "/hdr/info", header: hdr("v3"), want: NotFound},

		// Revisions.
		{name: "current revision", path: "/echo/ping", want: Found, api: "echo", op: "echo-ping", suffix: "/ping"},
		{name: "non-current revision", path: "/echo;rev=2/ping", want: Found, api: "echo;rev=2", op: "echo2-ping", suffix: "/ping"},
		{name: "non-current revision only operation", path: "/echo;rev=2/new", want: Found, api: "echo;rev=2", op: "echo2-new", suffix: "/new"},
		{name: "non-current revision not reachable without rev", path: "/echo/new", want: OperationNotFound, api: "echo"},
		{name: "current revision by number", path: "/echo;rev=1/ping", want: Found, api: "echo", op: "echo-ping", suffix: "/ping"},
		{name: "unknown revision", path: "/echo;rev=3/ping", want: NotFound},
		{name: "revision api path case-insensitive", path: "/ECHO;rev=2/ping", want: Found, api: "echo;rev=2", op: "echo2-ping", suffix: "/ping"},
		{name: "revision of two-segment api path", path: "/multi/part;rev=3/ping", want: Found, api: "multi;rev=3", op: "multi3-ping", suffix: "/ping"},
		{name: "two-segment api path current revision", path: "/multi/part/ping", want: Found, api: "multi", op: "multi-ping", suffix: "/ping"},
		{name: "revision must be on the last api path segment", path: "/multi;rev=3/part/ping", want: NotFound},
	})
}

// TestMatchReuse checks that Lookup resets a Match it reuses.
func TestMatchReuse(t *testing.T) {
	t.Parallel()
	table := mustCompile(t, routingSnapshot())
	var m Match
	if r := table.Lookup(&m, &Request{Method: "GET", Path: "/shop/users/1/orders/2"}); r != Found || len(m.Params()) != 2 {
		t.Fatalf("first lookup: %v, params %q", resultName(r), m.Params())
	}
	if r := table.Lookup(&m, &Request{Method: "GET", Path: "/nosuch"}); r != NotFound {
		t.Fatalf("second lookup: %v", resultName(r))
	}
	if m.API != nil || m.Operation != nil || m.Suffix != "" || len(m.Params()) != 0 {
		t.Errorf("Match not reset: API %q, op %q, suffix %q, params %q", apiName(m.API), opName(m.Operation), m.Suffix, m.Params())
	}
	if _, ok := m.Param("id"); ok {
		t.Errorf("Param(id) found after a 404")
	}
	if r := table.Lookup(&m, &Request{Method: "DELETE", Path: "/shop/users/1"}); r != OperationNotFound || m.Operation != nil || len(m.Params()) != 0 {
		t.Errorf("third lookup: %v, op %q, params %q", resultName(r), opName(m.Operation), m.Params())
	}
}

func TestCompile(t *testing.T) {
	t.Parallel()
	table := loadTable(t, "versions.json")
	for i, a := range table.APIs {
		if a.Index != i {
			t.Errorf("APIs[%d].Index = %d", i, a.Index)
		}
		for j, o := range a.Operations {
			if o.Index != j || o.API != a {
				t.Errorf("%s operation %d: Index %d, API %q", a.Name, j, o.Index, apiName(o.API))
			}
		}
	}
	byName := map[string]*API{}
	for _, a := range table.APIs {
		byName[a.Name] = a
	}
	for _, tc := range []struct {
		name, base, path, version, revision string
		current                             bool
	}{
		{name: "seg", base: "seg", path: "seg", revision: "1", current: true},
		{name: "seg-v1;rev=2", base: "seg-v1", path: "seg", version: "v1", revision: "2", current: false},
		{name: "echo;rev=2", base: "echo", path: "echo", revision: "2", current: false},
		{name: "multi;rev=3", base: "multi", path: "multi/part", revision: "3", current: false},
	} {
		a := byName[tc.name]
		if a == nil {
			t.Errorf("API %q not compiled", tc.name)
			continue
		}
		if a.BaseName != tc.base || a.Path != tc.path || a.Version != tc.version || a.Revision != tc.revision || a.IsCurrent != tc.current {
			t.Errorf("API %q = base %q path %q version %q revision %q current %v", tc.name, a.BaseName, a.Path, a.Version, a.Revision, a.IsCurrent)
		}
	}
}
