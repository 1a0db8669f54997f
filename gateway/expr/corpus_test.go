package expr

import (
	"fmt"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

const corpusDir = "../../../shared/corpora/apim-policies"

// scanExprEnd returns the index just past the expression starting at
// src[i] ("@(" or "@{"), honouring C# strings, verbatim and interpolated
// strings, char literals and comments; -1 if unbalanced.
func scanExprEnd(src string, i int) int {
	open := src[i+1]
	closeCh := byte(')')
	if open == '{' {
		closeCh = '}'
	}
	depth := 0
	for j := i + 1; j < len(src); j++ {
		c := src[j]
		switch {
		case c == '/' && j+1 < len(src) && src[j+1] == '/':
			for j < len(src) && src[j] != '\n' {
				j++
			}
		case c == '/' && j+1 < len(src) && src[j+1] == '*':
			k := strings.Index(src[j+2:], "*/")
			if k < 0 {
				return -1
			}
			j += k + 3
		case c == '"' || c == '\'':
			verbatim := j > 0 && (src[j-1] == '@' || j > 1 && src[j-1] == '$' && src[j-2] == '@')
			interp := j > 0 && (src[j-1] == '$' || j > 1 && src[j-1] == '@' && src[j-2] == '$')
			k := j + 1
			hole := 0
			for k < len(src) {
				d := src[k]
				if hole > 0 {
					if d == '{' {
						hole++
					} else if d == '}' {
						hole--
					} else if d == '"' {
						// nested simple string inside a hole
						k++
						for k < len(src) && src[k] != '"' {
							if src[k] == '\\' {
								k++
							}
							k++
						}
					}
					k++
					continue
				}
				if d == '\\' && !verbatim {
					k += 2
					continue
				}
				if d == c {
					if verbatim && k+1 < len(src) && src[k+1] == c {
						k += 2
						continue
					}
					break
				}
				if interp && d == '{' {
					if k+1 < len(src) && src[k+1] == '{' {
						k += 2
						continue
					}
					hole = 1
				}
				k++
			}
			j = k
		case c == open:
			depth++
		case c == closeCh:
			depth--
			if depth == 0 {
				return j + 1
			}
		}
	}
	return -1
}

var namedValueRe = regexp.MustCompile(`\{\{[^{}]+\}\}`)

// extractExpressions finds @( / @{ starts after =" or > (optionally after
// whitespace), as APIM attribute and element values.
func extractExpressions(doc string) []string {
	var out []string
	for i := 0; i+1 < len(doc); i++ {
		if doc[i] != '@' || (doc[i+1] != '(' && doc[i+1] != '{') {
			continue
		}
		k := i - 1
		for k >= 0 && (doc[k] == ' ' || doc[k] == '\t' || doc[k] == '\n' || doc[k] == '\r') {
			k--
		}
		if k < 0 || !(doc[k] == '>' || doc[k] == '"' && k > 0 && doc[k-1] == '=' || doc[k] == '\'' && k > 0 && doc[k-1] == '=') {
			continue
		}
		end := scanExprEnd(doc, i)
		if end < 0 {
			continue
		}
		e := html.UnescapeString(doc[i:end])
		e = replaceNamedValues(e)
		out = append(out, e)
		i = end - 1
	}
	return out
}

func TestCorpus(t *testing.T) {
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skip("corpus not present")
	}
	var files []string
	_ = filepath.Walk(corpusDir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.HasSuffix(p, ".xml") {
			files = append(files, p)
		}
		return nil
	})
	found, ok := 0, 0
	fails := map[string]int{}
	examples := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range extractExpressions(string(data)) {
			found++
			if _, err := Compile(e, Options{}); err != nil {
				msg := err.(*Error).Msg
				msg = regexp.MustCompile(`"[^"]*"`).ReplaceAllString(msg, `"…"`)
				fails[msg]++
				if _, seen := examples[msg]; !seen {
					examples[msg] = fmt.Sprintf("%s: %s", filepath.Base(f), firstLine(e))
				}
				continue
			}
			ok++
		}
	}
	type kv struct {
		k string
		v int
	}
	var list []kv
	for k, v := range fails {
		list = append(list, kv{k, v})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].v > list[j].v || list[i].v == list[j].v && list[i].k < list[j].k })
	pct := 100 * float64(ok) / float64(max(found, 1))
	t.Logf("corpus: %d files, %d expressions found, %d compiled (%.1f%%)", len(files), found, ok, pct)
	for i, e := range list {
		if i == 20 {
			break
		}
		t.Logf("%4d  %s\n        e.g. %s", e.v, e.k, examples[e.k])
	}
	if found < 500 {
		t.Fatalf("extraction found only %d expressions", found)
	}
	if pct < 90 {
		t.Fatalf("compiled %.1f%% < 90%%", pct)
	}
}

func firstLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 140 {
		s = s[:140] + "…"
	}
	return s
}

// replaceNamedValues substitutes {{name}} by x inside string literals and by
// "x" elsewhere, approximating APIM's textual named-value substitution.
func replaceNamedValues(e string) string {
	var b strings.Builder
	inStr, verbatim := false, false
	for i := 0; i < len(e); i++ {
		c := e[i]
		if strings.HasPrefix(e[i:], "{{") {
			if loc := namedValueRe.FindStringIndex(e[i:]); loc != nil && loc[0] == 0 {
				if inStr {
					b.WriteString("x")
				} else {
					b.WriteString(`"x"`)
				}
				i += loc[1] - 1
				continue
			}
		}
		switch {
		case inStr && c == '\\' && !verbatim && i+1 < len(e):
			b.WriteByte(c)
			i++
			c = e[i]
		case inStr && c == '"':
			if verbatim && i+1 < len(e) && e[i+1] == '"' {
				b.WriteString(`""`)
				i++
				continue
			}
			inStr = false
		case !inStr && c == '"':
			inStr, verbatim = true, i > 0 && (e[i-1] == '@' || i > 1 && e[i-2] == '@' && e[i-1] == '$')
		case !inStr && c == '\'' && i+2 < len(e):
			// char literal: copy through the closing quote
			j := i + 1
			if e[j] == '\\' {
				j++
			}
			if k := strings.IndexByte(e[j+1:], '\''); k >= 0 {
				b.WriteString(e[i : j+1+k+1])
				i = j + 1 + k
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}
