package urltemplate_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/urltemplate"
)

func TestParseValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		raw      string
		params   []string
		shape    string
		wildcard bool
	}{
		{name: "root", raw: "/", shape: "/"},
		{name: "literal", raw: "/users", shape: "/users"},
		{name: "literals are lower-cased in the shape", raw: "/Users/Me", shape: "/users/me"},
		{name: "trailing slash ignored", raw: "/users/", shape: "/users"},
		{name: "one parameter", raw: "/users/{id}", params: []string{"id"}, shape: "/users/{}"},
		{
			name:   "several parameters in capture order",
			raw:    "/users/{userId}/orders/{orderId}",
			params: []string{"userId", "orderId"},
			shape:  "/users/{}/orders/{}",
		},
		{name: "parameter with suffix", raw: "/files/{name}.json", params: []string{"name"}, shape: "/files/{}.json"},
		{
			name:   "parameter with prefix and suffix",
			raw:    "/Resource({id})",
			params: []string{"id"},
			shape:  "/resource({})",
		},
		{name: "parameter name characters", raw: "/x/{a_b-c.d$e}", params: []string{"a_b-c.d$e"}, shape: "/x/{}"},
		{name: "wildcard", raw: "/files/*", shape: "/files/*", wildcard: true},
		{name: "wildcard only", raw: "/*", shape: "/*", wildcard: true},
		{
			name:     "capturing wildcard",
			raw:      "/files/{*rest}",
			params:   []string{"rest"},
			shape:    "/files/*",
			wildcard: true,
		},
		{
			name:   "query parameter",
			raw:    "/search?q={query}",
			params: []string{"query"},
			shape:  "/search?q={}",
		},
		{
			name:   "query order does not change the shape",
			raw:    "/search?b={b}&a=1",
			params: []string{"b"},
			shape:  "/search?a=1&b={}",
		},
		{
			name:     "path, wildcard and query parameters in capture order",
			raw:      "/a/{x}/{*rest}?q={y}",
			params:   []string{"x", "rest", "y"},
			shape:    "/a/{}/*?q={}",
			wildcard: true,
		},
		{name: "query on the root", raw: "/?format=json", shape: "/?format=json"},
		{name: "empty query ignored", raw: "/users?", shape: "/users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tmpl, err := urltemplate.Parse(tt.raw)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.raw, err)
			}
			if tmpl.Raw != tt.raw {
				t.Errorf("Raw = %q, want %q", tmpl.Raw, tt.raw)
			}
			if got := tmpl.Params(); !slices.Equal(got, tt.params) {
				t.Errorf("Params() = %q, want %q", got, tt.params)
			}
			if got := tmpl.Shape(); got != tt.shape {
				t.Errorf("Shape() = %q, want %q", got, tt.shape)
			}
			if tmpl.Wildcard != tt.wildcard {
				t.Errorf("Wildcard = %v, want %v", tmpl.Wildcard, tt.wildcard)
			}
		})
	}
}

func TestParseSegments(t *testing.T) {
	t.Parallel()
	tmpl, err := urltemplate.Parse("/users/v({ver})/{id}.json/{*rest}?q={query}&kind=dog")
	if err != nil {
		t.Fatal(err)
	}
	wantSegs := []urltemplate.Segment{
		{Literal: "users"},
		{Param: "ver", Prefix: "v(", Suffix: ")"},
		{Param: "id", Suffix: ".json"},
	}
	if !slices.Equal(tmpl.Segments, wantSegs) {
		t.Errorf("Segments = %+v, want %+v", tmpl.Segments, wantSegs)
	}
	if !tmpl.Wildcard || tmpl.WildcardParam != "rest" {
		t.Errorf("Wildcard, WildcardParam = %v, %q, want true, \"rest\"", tmpl.Wildcard, tmpl.WildcardParam)
	}
	wantQuery := []urltemplate.QueryParam{{Name: "q", Param: "query"}, {Name: "kind", Literal: "dog"}}
	if !slices.Equal(tmpl.Query, wantQuery) {
		t.Errorf("Query = %+v, want %+v", tmpl.Query, wantQuery)
	}
	for i, s := range tmpl.Segments {
		if s.IsParam() != (s.Param != "") {
			t.Errorf("Segments[%d].IsParam() = %v", i, s.IsParam())
		}
	}
}

func TestShapeTellsOperationsApart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{name: "parameter names do not matter", a: "/users/{id}", b: "/users/{name}", same: true},
		{name: "literal case does not matter", a: "/Users/{id}", b: "/users/{id}", same: true},
		{name: "both wildcards", a: "/files/*", b: "/files/{*path}", same: true},
		{name: "literal against parameter", a: "/users/me", b: "/users/{id}"},
		{name: "suffix", a: "/files/{name}.json", b: "/files/{name}"},
		{name: "segment count", a: "/a/{x}", b: "/a/{x}/{y}"},
		{name: "query literal value", a: "/a?kind=dog", b: "/a?kind=cat"},
		{name: "query present", a: "/a?kind={k}", b: "/a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := urltemplate.Parse(tt.a)
			if err != nil {
				t.Fatal(err)
			}
			b, err := urltemplate.Parse(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if same := a.Shape() == b.Shape(); same != tt.same {
				t.Errorf("shapes %q and %q: same = %v, want %v", a.Shape(), b.Shape(), same, tt.same)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{name: "empty", raw: "", want: "url template is empty"},
		{name: "no leading slash", raw: "users/{id}", want: "must start with '/'"},
		{name: "space", raw: "/users /{id}", want: "contains whitespace or '#'"},
		{name: "tab", raw: "/users/\t", want: "contains whitespace or '#'"},
		{name: "fragment", raw: "/users#top", want: "contains whitespace or '#'"},
		{name: "empty segment", raw: "/users//orders", want: "has an empty path segment"},
		{name: "wildcard not last", raw: "/files/*/meta", want: "wildcard '*' is only allowed as the last segment"},
		{name: "capturing wildcard not last", raw: "/files/{*rest}/meta", want: "wildcard parameter \"{*rest}\" is only allowed as the last segment"},
		{name: "unclosed brace", raw: "/users/{id", want: "'{' without '}'"},
		{name: "unopened brace", raw: "/users/id}", want: "'}' without '{'"},
		{name: "two parameters in a segment", raw: "/users/{a}-{b}", want: "only one parameter per segment is supported"},
		{name: "brace before parameter", raw: "/users/a}{b}", want: "only one parameter per segment is supported"},
		{name: "empty parameter", raw: "/users/{}", want: "empty parameter name"},
		{name: "bad parameter name", raw: "/users/{id:int}", want: "parameter name \"id:int\" is not valid"},
		{name: "empty wildcard name", raw: "/files/{*}", want: "parameter name \"\" is not valid"},
		{name: "repeated parameter", raw: "/users/{id}/friends/{ID}", want: "parameter \"ID\" appears twice"},
		{name: "repeated across path and query", raw: "/users/{id}?id={id}", want: "parameter \"id\" appears twice"},
		{name: "query part without value", raw: "/search?q", want: "query part \"q\" must be name={param} or name=value"},
		{name: "query part without name", raw: "/search?={q}", want: "query part \"={q}\" must be name={param} or name=value"},
		{name: "empty query part", raw: "/search?q={q}&", want: "query part \"\" must be name={param} or name=value"},
		{name: "templated query name", raw: "/search?{name}=1", want: "query parameter name \"{name}\" cannot be templated"},
		{name: "mixed query value", raw: "/search?q=a{b}", want: "query value \"a{b}\" mixes literal text and a parameter"},
		{name: "empty query parameter", raw: "/search?q={}", want: "parameter name \"\" is not valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tmpl, err := urltemplate.Parse(tt.raw)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.raw, tmpl)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) error = %q, want it to contain %q", tt.raw, err, tt.want)
			}
			if tt.raw != "" && !strings.Contains(err.Error(), strconv.Quote(tt.raw)) {
				t.Errorf("Parse(%q) error = %q, want it to quote the template", tt.raw, err)
			}
		})
	}
}
