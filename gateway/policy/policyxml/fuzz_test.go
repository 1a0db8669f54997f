package policyxml

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and that what it returns is
// consistent: a *SyntaxError with a real position, or a tree whose
// positions are real, whose Inner texts come from the source and whose
// expression values are bracketed.
func FuzzParse(f *testing.F) {
	seeds := []string{
		benchPolicy,
		`<policies><inbound><base /></inbound></policies>`,
		`<a b="@(x["k"] < 1 && y)" c='@('\'')'/>`,
		`<v>@{ var s = $@"a""{x:N2}""{(c ? "}" : $"{d}")}"; /* ) */ // "` + "\n" + `return s; }</v>`,
		`<v>@(&quot;a&quot; &amp;&amp; b)</v><!-- -- -->`,
		`<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><a><![CDATA[@(1)]]>&#x41;</a>`,
		"\ufeff<a>\r\n<b>ä</b></a>",
		`<a><b></a>`,
		`<a b="@(1) x"/>`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	// The corpus, when present, seeds real-world shapes.
	_ = filepath.WalkDir(corpusDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".xml") {
			if data, err := os.ReadFile(path); err == nil {
				f.Add(string(data))
			}
		}
		return nil
	})
	f.Fuzz(func(t *testing.T, src string) {
		root, err := Parse(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v, want *SyntaxError", err, err)
			}
			if se.Pos.Line < 1 || se.Pos.Col < 1 || se.Msg == "" {
				t.Fatalf("bad error %+v", se)
			}
			if root != nil {
				t.Fatalf("root %v with error %v", root, err)
			}
			return
		}
		if root == nil {
			t.Fatal("nil root without error")
		}
		checkTree(t, src, root)
	})
}

func checkTree(t *testing.T, src string, root *Element) {
	stack := []*Element{root}
	for len(stack) > 0 {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if e.Name == "" || e.Pos.Line < 1 || e.Pos.Col < 1 {
			t.Fatalf("bad element %q at %+v", e.Name, e.Pos)
		}
		if !strings.Contains(src, e.Inner) {
			t.Fatalf("Inner of <%s> is not source text: %q", e.Name, e.Inner)
		}
		for _, a := range e.Attrs {
			if a.Name == "" || a.Pos.Line < 1 || a.Pos.Col < 1 {
				t.Fatalf("bad attribute %+v", a)
			}
			if a.Expr && !isBracketed(a.Value) {
				t.Fatalf("expression attribute %q is not bracketed", a.Value)
			}
		}
		if e.TextExpr && !isBracketed(e.Text) {
			t.Fatalf("text expression %q is not bracketed", e.Text)
		}
		stack = append(stack, e.Children...)
	}
}

func isBracketed(v string) bool {
	return isExprStart(v, 0) && (strings.HasSuffix(v, ")") || strings.HasSuffix(v, "}"))
}
