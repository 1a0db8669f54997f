package policyxml

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// dump renders the parts of a tree the tests check, one element a line:
//
//	<name> line:col attr="value" line:col ... text "..."
//
// An expression attribute is written attr=expr"...", expression text
// textexpr "...".
func dump(e *Element) string {
	var b strings.Builder
	var walk func(e *Element, depth int)
	walk = func(e *Element, depth int) {
		fmt.Fprintf(&b, "%s<%s> %d:%d", strings.Repeat("  ", depth), e.Name, e.Pos.Line, e.Pos.Col)
		for _, a := range e.Attrs {
			kind := ""
			if a.Expr {
				kind = "expr"
			}
			fmt.Fprintf(&b, " %s=%s%q %d:%d", a.Name, kind, a.Value, a.Pos.Line, a.Pos.Col)
		}
		switch {
		case e.TextExpr:
			fmt.Fprintf(&b, " textexpr %q", e.Text)
		case e.Text != "":
			fmt.Fprintf(&b, " text %q", e.Text)
		}
		b.WriteByte('\n')
		for _, c := range e.Children {
			walk(c, depth+1)
		}
	}
	walk(e, 0)
	return b.String()
}

// doc joins lines with "\n", so test documents can be written with their
// indentation and positions stay easy to count.
func doc(lines ...string) string { return strings.Join(lines, "\n") }

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want string // dump of the tree
	}{
		{
			name: "sections and positions",
			src: doc(
				`<policies>`,
				`  <inbound>`,
				`    <base />`,
				`    <set-header name="X-A" exists-action="override"><value>1</value></set-header>`,
				`  </inbound>`,
				`  <backend><forward-request/></backend>`,
				`</policies>`),
			want: doc(
				`<policies> 1:1`,
				`  <inbound> 2:3`,
				`    <base> 3:5`,
				`    <set-header> 4:5 name="X-A" 4:17 exists-action="override" 4:28`,
				`      <value> 4:53 text "1"`,
				`  <backend> 6:3`,
				`    <forward-request> 6:12`,
				``),
		},
		{
			name: "declaration and comments are skipped anywhere",
			src: doc(
				`<!-- leading -- comment with double dash -->`,
				`<?xml version="1.0" encoding="utf-8"?>`,
				`<policies><!-- <set-header name="x"/> -->`,
				`  <inbound><?pi data?><base/></inbound>`,
				`</policies>`,
				`<!-- trailing -->`,
				``),
			want: doc(
				`<policies> 3:1`,
				`  <inbound> 4:3`,
				`    <base> 4:23`,
				``),
		},
		{
			name: "fragment root",
			src:  `<fragment><set-variable name="a" value="1" /></fragment>`,
			want: "<fragment> 1:1\n  <set-variable> 1:11 name=\"a\" 1:25 value=\"1\" 1:34\n",
		},
		{
			name: "bare section root",
			src:  "\n\n  <inbound>\n    <base />\n  </inbound>\n",
			want: "<inbound> 3:3\n  <base> 4:5\n",
		},
		{
			name: "bare policy root",
			src:  `<rate-limit calls="20" renewal-period="90" />`,
			want: "<rate-limit> 1:1 calls=\"20\" 1:13 renewal-period=\"90\" 1:24\n",
		},
		{
			name: "raw quotes in a double-quoted attribute expression",
			src:  `<set-variable name="x" value="@(context.Variables["a"] + "b")" />`,
			want: "<set-variable> 1:1 name=\"x\" 1:15 value=expr\"@(context.Variables[\\\"a\\\"] + \\\"b\\\")\" 1:24\n",
		},
		{
			name: "raw apostrophes in a single-quoted attribute expression",
			src:  `<set-variable name='x' value='@(s.Split(',')[0])'/>`,
			want: "<set-variable> 1:1 name=\"x\" 1:15 value=expr\"@(s.Split(',')[0])\" 1:24\n",
		},
		{
			name: "raw lt and ampersands in attribute expression",
			src:  `<when condition="@(a.As<JObject>() != null && b < 3)"/>`,
			want: "<when> 1:1 condition=expr\"@(a.As<JObject>() != null && b < 3)\" 1:7\n",
		},
		{
			name: "entities in attribute expression are decoded",
			src:  `<when condition="@(context.Variables[&quot;a&quot;] == &quot;)&quot; &amp;&amp; x &lt; 3)"/>`,
			want: "<when> 1:1 condition=expr\"@(context.Variables[\\\"a\\\"] == \\\")\\\" && x < 3)\" 1:7\n",
		},
		{
			name: "multi-line attribute expression kept exactly",
			src: doc(
				`<set-variable name="v" value="@{`,
				"\t// comment with \"quotes\", ) and } and a ' \r",
				`    var s = "</set-variable>"; /* ) */`,
				`    return s;`,
				`  }" />`),
			want: "<set-variable> 1:1 name=\"v\" 1:15 value=expr\"@{\\n\\t// comment with \\\"quotes\\\", ) and } and a ' \\r\\n" +
				"    var s = \\\"</set-variable>\\\"; /* ) */\\n    return s;\\n  }\" 1:24\n",
		},
		{
			name: "whitespace around an attribute expression",
			src:  "<set-variable name=\"v\" value=\" \n @(1)\t\n \" />",
			want: "<set-variable> 1:1 name=\"v\" 1:15 value=expr\"@(1)\" 1:24\n",
		},
		{
			name: "interpolated and verbatim strings in attributes",
			src:  `<a b="@($"{a["k"]}:{(c ? "}" : "{")}")" c="@(@"C:\dir\" + @"say ""hi""")"/>`,
			want: "<a> 1:1 b=expr\"@($\\\"{a[\\\"k\\\"]}:{(c ? \\\"}\\\" : \\\"{\\\")}\\\")\" 1:4 " +
				"c=expr\"@(@\\\"C:\\\\dir\\\\\\\" + @\\\"say \\\"\\\"hi\\\"\\\"\\\")\" 1:41\n",
		},
		{
			name: "literal attributes: entities decoded, bare ampersand and lt kept",
			src:  `<set-backend-service base-url="https://x/?a=1&b=2&amp;c=&lt;&#65;&#x42;" note="a<b"/>`,
			want: "<set-backend-service> 1:1 base-url=\"https://x/?a=1&b=2&c=<AB\" 1:22 note=\"a<b\" 1:74\n",
		},
		{
			name: "at sign without bracket is literal",
			src:  `<a to="user@example.com" b="@name" c=" @ (1)" d="x @(1)"/>`,
			want: "<a> 1:1 to=\"user@example.com\" 1:4 b=\"@name\" 1:26 c=\" @ (1)\" 1:36 d=\"x @(1)\" 1:47\n",
		},
		{
			name: "literal attribute keeps newlines",
			src:  "<a b=\"x\n y\"/>",
			want: "<a> 1:1 b=\"x\\n y\" 1:4\n",
		},
		{
			name: "text expression with raw markup characters",
			src:  "<value>\n  @(a < b && c.As<JObject>() > 0)\n</value>",
			want: "<value> 1:1 textexpr \"@(a < b && c.As<JObject>() > 0)\"\n",
		},
		{
			name: "text block expression containing an end tag",
			src: doc(
				`<set-body>@{`,
				`    // </set-body> is just text here`,
				`    return "</set-body>" + '<';`,
				`}</set-body>`),
			want: "<set-body> 1:1 textexpr \"@{\\n    // </set-body> is just text here\\n    return \\\"</set-body>\\\" + '<';\\n}\"\n",
		},
		{
			name: "entities in text expression are decoded",
			src:  `<value>@(&quot;a&quot; + x &amp;&amp; y)</value>`,
			want: "<value> 1:1 textexpr \"@(\\\"a\\\" + x && y)\"\n",
		},
		{
			name: "comment before text expression",
			src:  `<value> <!-- why --> @(1) </value>`,
			want: "<value> 1:1 textexpr \"@(1)\"\n",
		},
		{
			name: "text after an expression is not an expression",
			src:  `<value>@(a) tail</value>`,
			want: "<value> 1:1 text \"@(a) tail\"\n",
		},
		{
			name: "two expressions are not one",
			src:  `<value>@(1)<!-- -->@(2)</value>`,
			want: "<value> 1:1 text \"@(1)@(2)\"\n",
		},
		{
			name: "text with entities and CDATA",
			src:  `<value> a &amp; b &#x3C; <![CDATA[<c>&amp;]]> </value>`,
			want: "<value> 1:1 text \"a & b < <c>&amp;\"\n",
		},
		{
			name: "CDATA expression, entities not decoded",
			src:  `<set-body> <![CDATA[ @{ return "<a>&amp;"; } ]]> </set-body>`,
			want: "<set-body> 1:1 textexpr \"@{ return \\\"<a>&amp;\\\"; }\"\n",
		},
		{
			name: "CDATA with text after expression",
			src:  `<set-body><![CDATA[@(1) x]]></set-body>`,
			want: "<set-body> 1:1 text \"@(1) x\"\n",
		},
		{
			name: "text of an element with children",
			src:  "<a> x <b>inner</b> y </a>",
			want: "<a> 1:1 text \"x  y\"\n  <b> 1:7 text \"inner\"\n",
		},
		{
			name: "named values left as written",
			src:  `<set-header name="{{header-name}}"><value>{{secret}}</value><value>@((new Random().Next(1,100) <= {{weight}}).ToString())</value></set-header>`,
			want: "<set-header> 1:1 name=\"{{header-name}}\" 1:13\n  <value> 1:36 text \"{{secret}}\"\n" +
				"  <value> 1:61 textexpr \"@((new Random().Next(1,100) <= {{weight}}).ToString())\"\n",
		},
		{
			name: "literal XML payload becomes children",
			src:  `<set-body template="liquid"><soap:Envelope xmlns:soap="urn:s"><soap:Body>{{body.x}}</soap:Body></soap:Envelope></set-body>`,
			want: "<set-body> 1:1 template=\"liquid\" 1:11\n  <soap:Envelope> 1:29 xmlns:soap=\"urn:s\" 1:44\n    <soap:Body> 1:63 text \"{{body.x}}\"\n",
		},
		{
			name: "tag spelling variants",
			src:  "<a b=\"1\"c='2' >\n<d\n/><e></e ></a\n>",
			want: "<a> 1:1 b=\"1\" 1:4 c=\"2\" 1:9\n  <d> 2:1\n  <e> 3:3\n",
		},
		{
			name: "byte order mark and doctype",
			src:  "\ufeff<!DOCTYPE policies [<!ENTITY x \">\">]>\n<policies/>",
			want: "<policies> 2:1\n",
		},
		{
			name: "columns count characters",
			src:  "<a b=\"ü€\" c=\"\U0001F600\"><ä/></a>",
			want: "<a> 1:1 b=\"ü€\" 1:4 c=\"\U0001F600\" 1:11\n  <ä> 1:17\n",
		},
		{
			name: "crlf line ends",
			src:  "<a>\r\n  <b c=\"@(1\r\n)\"/>\r\n</a>\r\n",
			want: "<a> 1:1\n  <b> 2:3 c=expr\"@(1\\r\\n)\" 2:6\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root, err := Parse(tt.src)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := dump(root); got != tt.want {
				t.Errorf("Parse(%q):\ngot:\n%s\nwant:\n%s", tt.src, got, tt.want)
			}
		})
	}
}

func TestParseInner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		path []int // child indexes from the root
		want string
	}{
		{
			name: "liquid payload",
			src:  "<set-body template=\"liquid\">\n  <x>{{context.Variables[\"v\"]}}{% if a %}1{% endif %}</x>\n</set-body>",
			want: "\n  <x>{{context.Variables[\"v\"]}}{% if a %}1{% endif %}</x>\n",
		},
		{
			name: "json payload",
			src:  `<policies><set-body>{ "a": [1, 2], "b": "&lt;" }</set-body></policies>`,
			path: []int{0},
			want: `{ "a": [1, 2], "b": "&lt;" }`,
		},
		{
			name: "expression payload keeps comments and entities raw",
			src:  "<set-body>@{ /* </set-body> */ return &quot;x&quot;; }</set-body>",
			want: "@{ /* </set-body> */ return &quot;x&quot;; }",
		},
		{
			name: "self-closing is empty",
			src:  `<a><b/></a>`,
			path: []int{0},
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := Parse(tt.src)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for _, i := range tt.path {
				e = e.Children[i]
			}
			if e.Inner != tt.want {
				t.Errorf("Inner = %q, want %q", e.Inner, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want string // SyntaxError.Error()
	}{
		{
			name: "unclosed element",
			src: doc(
				`<policies>`,
				`  <inbound>`,
				`    <set-header name="a">`,
				`  </inbound>`,
				`</policies>`),
			want: "line 4, column 3: element <set-header> opened at line 3, column 5 is not closed (found </inbound>)",
		},
		{
			name: "unclosed at end of input",
			src:  "<policies>\n  <inbound>\n    <set-header name=\"a\">\n",
			want: "line 4, column 1: element <set-header> opened at line 3, column 5 is not closed",
		},
		{
			name: "misspelled end tag",
			src:  "<a>\n  <set-header></set-headr>\n</a>",
			want: "line 2, column 15: element <set-header> opened at line 2, column 3 is not closed (found </set-headr>)",
		},
		{name: "unexpected end tag", src: "<a/>\n</a>", want: "line 2, column 1: unexpected end tag </a>: no element is open"},
		{name: "two roots", src: "<a/>\n<b/>", want: "line 2, column 1: document has more than one root element: <b> follows <a>"},
		{name: "no root", src: "<?xml version=\"1.0\"?>\n<!-- only -->\n", want: "line 3, column 1: document has no root element"},
		{name: "empty", src: "", want: "line 1, column 1: document has no root element"},
		{name: "text before root", src: "\n  hello <a/>", want: "line 2, column 3: text outside the root element"},
		{name: "text after root", src: "<a/>x", want: "line 1, column 5: text outside the root element"},
		{name: "CDATA outside root", src: "<![CDATA[x]]><a/>", want: "line 1, column 1: CDATA section outside the root element"},
		{name: "no element name", src: "<a>< b/></a>", want: "line 1, column 5: expected element name after '<'"},
		{name: "less-than in text", src: "<a>1 < 2</a>", want: "line 1, column 7: expected element name after '<'"},
		{name: "no end tag name", src: "<a></ a>", want: "line 1, column 6: expected element name after '</'"},
		{name: "end tag not closed", src: "<a></a b>", want: "line 1, column 8: end tag </a> is not closed"},
		{name: "start tag not closed", src: "<a>\n<b c=\"1\"", want: "line 2, column 1: start tag <b> is not closed"},
		{name: "bad character in tag", src: `<a b="1" / >`, want: "line 1, column 10: unexpected '/' in start tag <a>"},
		{name: "attribute without value", src: `<a b c="1"/>`, want: `line 1, column 6: attribute "b" of <a> has no value`},
		{name: "unquoted attribute", src: `<a b=1/>`, want: `line 1, column 6: value of attribute "b" of <a> is not quoted`},
		{name: "duplicate attribute", src: `<a b="1" b="2"/>`, want: `line 1, column 10: duplicate attribute "b" in <a>`},
		{name: "attribute not closed", src: "<a b=\"1/>\n", want: `line 1, column 6: value of attribute "b" of <a> is not closed`},
		{
			name: "text after attribute expression",
			src:  `<set-variable name="x" value="@(1) + 2" />`,
			want: `line 1, column 36: unexpected text after the expression in attribute "value" of <set-variable>; an expression must be the whole value`,
		},
		{
			name: "attribute expression quoted with the other quote",
			src:  `<a b="@(1)'/>`,
			want: `line 1, column 11: unexpected text after the expression in attribute "b" of <a>; an expression must be the whole value`,
		},
		{
			name: "attribute expression at end of input",
			src:  `<a b="@(1)  `,
			want: `line 1, column 6: value of attribute "b" of <a> is not closed`,
		},
		{
			name: "string closed by the attribute quote",
			src:  "<a>\n  <b c=\"@(x[\"k])\" />\n  <d/>\n</a>",
			want: `line 2, column 12: attribute "c" of <b>: '[' is not closed (expression starts at line 2, column 9)`,
		},
		{
			name: "unbalanced attribute expression: newline in string",
			src:  "<a>\n  <b c=\"@(f(1)\" />\n</a>",
			want: `line 2, column 19: attribute "c" of <b>: newline in string literal (expression starts at line 2, column 9)`,
		},
		{
			name: "expression not closed",
			src:  "<a>\n  <value>@{ return 1;\n</value></a>",
			want: `line 2, column 10: text of <value>: expression is not closed: missing '}'`,
		},
		{
			name: "mismatched bracket in expression",
			src:  "<a c=\"@{\n  f(x];\n}\"/>",
			want: `line 2, column 6: attribute "c" of <a>: unexpected ']' in expression; '(' opened at line 2, column 4 is still open (expression starts at line 1, column 7)`,
		},
		{name: "comment not closed", src: "<a><!-- x </a>", want: "line 1, column 4: comment is not closed"},
		{name: "CDATA not closed", src: "<a><![CDATA[ x </a>", want: "line 1, column 4: CDATA section is not closed"},
		{name: "processing instruction not closed", src: "<?xml version=\"1.0\"", want: "line 1, column 1: processing instruction is not closed"},
		{name: "doctype not closed", src: "<!DOCTYPE a [", want: "line 1, column 1: document type declaration is not closed"},
		{name: "declaration inside element", src: "<a><!ELEMENT a ANY></a>", want: "line 1, column 4: unexpected markup declaration '<!'"},
		{name: "column after multi-byte text", src: "<a>ä€</b>", want: "line 1, column 6: element <a> opened at line 1, column 1 is not closed (found </b>)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root, err := Parse(tt.src)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want error %q\n%s", tt.src, tt.want, dump(root))
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T, want *SyntaxError", tt.src, err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse(%q) error:\ngot:  %s\nwant: %s", tt.src, got, tt.want)
			}
		})
	}
}

// TestParseLargeInputs guards against quadratic behaviour: each input
// would take minutes if position tracking or text accumulation were
// quadratic, and deep nesting must not exhaust the stack.
func TestParseLargeInputs(t *testing.T) {
	t.Parallel()
	const n = 50000
	tests := []struct {
		name string
		src  string
	}{
		{name: "many elements on one line", src: "<a>" + strings.Repeat(`<b c="@(1 < 2)">x</b>`, n) + "</a>"},
		{name: "deep nesting", src: strings.Repeat("<a>", n) + strings.Repeat("</a>", n)},
		{name: "deep expression", src: `<a b="@` + strings.Repeat("(", n) + strings.Repeat(")", n) + `"/>`},
		{name: "many text runs", src: "<a>" + strings.Repeat("x &amp; y<!---->", n) + "</a>"},
		{name: "many attributes", src: "<a" + manyAttrs(n) + "/>"},
		{name: "many ampersands", src: "<a>" + strings.Repeat("&", 10*n) + "</a>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Parse(tt.src); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func manyAttrs(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, " a%d=\"%d\"", i, i)
	}
	return b.String()
}

func TestParseDuplicateAmongManyAttributes(t *testing.T) {
	t.Parallel()
	_, err := Parse("<a" + manyAttrs(40) + ` a7="x"/>`)
	if err == nil || !strings.Contains(err.Error(), `duplicate attribute "a7" in <a>`) {
		t.Errorf("error = %v, want duplicate attribute a7", err)
	}
}
