package policyxml

import (
	"strings"
	"testing"
)

func TestScanExpr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// src is an expression followed by "|" and more text: the
		// scanner must stop exactly before the "|".
		src    string
		decode bool
	}{
		{name: "paren", src: `@(a)|)`},
		{name: "block", src: `@{ return 1; }|}`},
		{name: "nested brackets", src: `@(f(g[1], new[] { 2 }))|)`},
		{name: "block with nested braces", src: `@{ if (a) { return b; } else { return c; } }|}`},
		{name: "raw lt gt and ampersands", src: `@(a < b && c > d.As<JObject>())|`},
		{name: "string with closer", src: `@("a)b")|)`},
		{name: "string with escaped quote", src: `@("a\")b")|")`},
		{name: "string ending in backslash", src: `@("C:\\" + x)|")`},
		{name: "verbatim string", src: `@(@"C:\dir\" + x)|"`},
		{name: "verbatim doubled quote", src: `@(@"say ""hi)"" now")|")`},
		{name: "verbatim multi-line", src: "@(@\"line1)\nline2\")|"},
		{name: "interpolated", src: `@($"{x}) {{ }} )")|)`},
		{name: "interpolated hole with string", src: `@($"{a["}"]}")|}`},
		{name: "interpolated nested", src: `@($"{(a ? "}" : $"{b})")}")|)`},
		{name: "interpolated hole with braces", src: `@($"{new { A = 1 }.A}")|}`},
		{name: "interpolated format specifier", src: `@($"{d:yyyy'T'HH(}")|)`},
		{name: "interpolated alias qualifier", src: `@($"{global::System.Math.Abs(x)}")|`},
		{name: "interpolated escaped quote", src: `@($"a\"{x}\"")|"`},
		{name: "interpolated verbatim", src: `@($@"a""{x}""b")|"`},
		{name: "interpolated verbatim at dollar", src: `@(@$"a""{x}""b)")|"`},
		{name: "interpolated verbatim multi-line", src: "@($@\"a\n{x}\n)\")|"},
		{name: "char literal paren", src: `@('(' == c)|)`},
		{name: "char literal quote", src: `@('"' == c)|"`},
		{name: "char literal escaped apostrophe", src: `@(s.Split('\'', ')'))|)`},
		{name: "char literal unicode escape", src: `@('\u0029' == c)|`},
		{name: "lone apostrophe", src: `@(a /* it's */ + b)|`},
		{name: "line comment", src: "@{\n // ) } \" ' \n return 1;\n}|}"},
		{name: "line comment with url", src: "@{ var u = \"http://x\"; // see https://y\n return u; }|"},
		{name: "block comment", src: `@{ /* ) } " */ return 1; }|}`},
		{name: "named value", src: `@(new Random().Next(1,100) <= {{weight}})|`},
		{name: "division is not a comment", src: `@(a / b)|`},
		{name: "entity quote opens string", src: `@(x == &quot;)&quot;)|`, decode: true},
		{name: "entity apostrophe char", src: `@(c == &apos;)&apos;)|`, decode: true},
		{name: "entity ampersands", src: `@(a &amp;&amp; b &lt; c)|`, decode: true},
		{name: "numeric entity bracket", src: `@(f&#40;1))|)`, decode: true},
		{name: "entity verbatim", src: `@(@&quot;a&quot;&quot;)&quot;)|`, decode: true},
		{name: "entity interpolated", src: `@($&quot;{x}&quot;)|`, decode: true},
		{name: "entities not decoded in CDATA", src: `@("&quot;)")|`},
		{name: "unknown entity kept", src: `@(a &nbsp; b)|`, decode: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := strings.Index(tt.src, "|")
			got, err := scanExpr(tt.src, 0, tt.decode)
			if err != nil {
				t.Fatalf("scanExpr(%q): error at %d: %s", tt.src, err.off, err.msg)
			}
			if got != want {
				t.Errorf("scanExpr(%q) = %d (%q), want %d (%q)", tt.src, got, tt.src[:got], want, tt.src[:want])
			}
		})
	}
}

func TestScanExprErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		src     string
		wantOff int
		wantMsg string
		wantRel string
	}{
		{name: "unclosed paren", src: `@(a(b)`, wantOff: 0, wantMsg: "expression is not closed: missing ')'"},
		{name: "unclosed block", src: `@{ return 1;`, wantOff: 0, wantMsg: "expression is not closed: missing '}'"},
		{name: "unclosed inner bracket", src: `@(a[b`, wantOff: 3, wantMsg: "'[' is not closed"},
		{name: "mismatched closer", src: `@(a])`, wantOff: 3, wantMsg: "unexpected ']' in expression",
			wantRel: "expression '@('"},
		{name: "mismatched inner", src: `@{ f(a}; }`, wantOff: 6, wantMsg: "unexpected '}' in expression", wantRel: "'('"},
		{name: "newline in string", src: "@(\"abc\n\")", wantOff: 6, wantMsg: "newline in string literal"},
		{name: "newline in interpolated", src: "@($\"a{x}\n\")", wantOff: 8, wantMsg: "newline in string literal"},
		{name: "unclosed string", src: `@("abc`, wantOff: 2, wantMsg: "string literal is not closed"},
		{name: "unclosed verbatim", src: "@(@\"a\nb", wantOff: 2, wantMsg: "string literal is not closed"},
		{name: "unclosed interpolated", src: `@($"a`, wantOff: 2, wantMsg: "interpolated string is not closed"},
		{name: "unclosed hole", src: `@($"a{x`, wantOff: 5, wantMsg: "interpolation hole is not closed"},
		{name: "unclosed format", src: `@($"{x:N2`, wantOff: 4, wantMsg: "interpolation hole is not closed"},
		{name: "unclosed block comment", src: `@(a /* b`, wantOff: 4, wantMsg: "comment is not closed"},
		{name: "line comment eats closer", src: `@(a // b)`, wantOff: 0, wantMsg: "expression is not closed: missing ')'"},
		{name: "escape at end", src: `@("\`, wantOff: 2, wantMsg: "string literal is not closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			end, err := scanExpr(tt.src, 0, true)
			if err == nil {
				t.Fatalf("scanExpr(%q) = %d, want an error", tt.src, end)
			}
			if err.off != tt.wantOff || err.msg != tt.wantMsg || err.rel != tt.wantRel {
				t.Errorf("scanExpr(%q) error = (%d, %q, rel %q), want (%d, %q, rel %q)",
					tt.src, err.off, err.msg, err.rel, tt.wantOff, tt.wantMsg, tt.wantRel)
			}
		})
	}
}

func TestDecodeEntities(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{name: "none", in: "plain text", want: "plain text"},
		{name: "predefined", in: "&quot;&amp;&lt;&gt;&apos;", want: `"&<>'`},
		{name: "decimal and hex", in: "&#65;&#x42;&#x1F600;", want: "AB\U0001F600"},
		{name: "bare ampersands", in: "a && b & c&", want: "a && b & c&"},
		{name: "unknown names", in: "&nbsp;&foo;&;&#;&#x;", want: "&nbsp;&foo;&;&#;&#x;"},
		{name: "invalid code points", in: "&#0;&#xD800;&#x110000;&#-1;&#+1;", want: "&#0;&#xD800;&#x110000;&#-1;&#+1;"},
		{name: "no double decoding", in: "&amp;lt;", want: "&lt;"},
		{name: "too long", in: "&#0000000000065;", want: "&#0000000000065;"},
		{name: "upper case X is not hex", in: "&#X41;", want: "&#X41;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := decodeEntities(tt.in); got != tt.want {
				t.Errorf("decodeEntities(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
