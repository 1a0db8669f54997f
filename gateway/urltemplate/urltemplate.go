// Package urltemplate parses API Management operation URL templates such as
// "/users/{id}/orders/{orderId}?date={date}". The configuration loader uses
// it to validate templates and the router to compile them.
//
// Supported forms, per path segment: a literal ("orders"), a whole-segment
// parameter ("{id}"), a parameter with a literal prefix and/or suffix
// ("resource({id})", "{name}.json"), and, as the last segment only, a
// wildcard: "*" (matches the rest of the path, uncaptured) or "{*rest}"
// (matches and captures it). The query part lists name={param} pairs, or
// name=literal pairs that must match exactly.
package urltemplate

import (
	"fmt"
	"slices"
	"strings"
)

// Segment is one path segment of a template.
type Segment struct {
	// Literal is the whole segment when Param is empty, else empty.
	Literal string
	// Param names the parameter that captures this segment.
	Param string
	// Prefix and Suffix are literals around Param within the segment.
	Prefix, Suffix string
}

// IsParam reports whether the segment captures a parameter.
func (s Segment) IsParam() bool { return s.Param != "" }

// QueryParam is one name=value pair of the template's query part.
type QueryParam struct {
	Name string
	// Param names the parameter that captures the value; when empty the
	// value must equal Literal.
	Param   string
	Literal string
}

// Template is a parsed URL template.
type Template struct {
	Raw      string
	Segments []Segment
	Query    []QueryParam
	// Wildcard is set when the template ends in "*" or "{*name}";
	// WildcardParam is the capture name for the latter.
	Wildcard      bool
	WildcardParam string
}

// Parse parses a URL template. Errors say what is wrong and where.
func Parse(raw string) (*Template, error) {
	if raw == "" {
		return nil, fmt.Errorf("url template is empty")
	}
	if !strings.HasPrefix(raw, "/") {
		return nil, fmt.Errorf("url template %q must start with '/'", raw)
	}
	if strings.ContainsAny(raw, " \t\r\n#") {
		return nil, fmt.Errorf("url template %q contains whitespace or '#'", raw)
	}
	t := &Template{Raw: raw}
	path, query, hasQuery := strings.Cut(raw, "?")
	seen := map[string]bool{}
	addParam := func(name string) error {
		if !validParamName(name) {
			return fmt.Errorf("url template %q: parameter name %q is not valid (letters, digits, '_', '-', '.')", raw, name)
		}
		key := strings.ToLower(name)
		if seen[key] {
			return fmt.Errorf("url template %q: parameter %q appears twice", raw, name)
		}
		seen[key] = true
		return nil
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) == 1 && parts[0] == "" {
		parts = nil
	}
	for i, part := range parts {
		last := i == len(parts)-1
		switch {
		case part == "":
			return nil, fmt.Errorf("url template %q has an empty path segment", raw)
		case part == "*":
			if !last {
				return nil, fmt.Errorf("url template %q: wildcard '*' is only allowed as the last segment", raw)
			}
			t.Wildcard = true
			continue
		case strings.HasPrefix(part, "{*") && strings.HasSuffix(part, "}"):
			if !last {
				return nil, fmt.Errorf("url template %q: wildcard parameter %q is only allowed as the last segment", raw, part)
			}
			name := part[2 : len(part)-1]
			if err := addParam(name); err != nil {
				return nil, err
			}
			t.Wildcard, t.WildcardParam = true, name
			continue
		}
		seg, err := parseSegment(part)
		if err != nil {
			return nil, fmt.Errorf("url template %q: segment %q: %w", raw, part, err)
		}
		if seg.IsParam() {
			if err := addParam(seg.Param); err != nil {
				return nil, err
			}
		}
		t.Segments = append(t.Segments, seg)
	}
	if hasQuery && query != "" {
		for _, pair := range strings.Split(query, "&") {
			name, value, ok := strings.Cut(pair, "=")
			if !ok || name == "" {
				return nil, fmt.Errorf("url template %q: query part %q must be name={param} or name=value", raw, pair)
			}
			if strings.ContainsAny(name, "{}") {
				return nil, fmt.Errorf("url template %q: query parameter name %q cannot be templated", raw, name)
			}
			qp := QueryParam{Name: name}
			if strings.HasPrefix(value, "{") && strings.HasSuffix(value, "}") {
				qp.Param = value[1 : len(value)-1]
				if err := addParam(qp.Param); err != nil {
					return nil, err
				}
			} else if strings.ContainsAny(value, "{}") {
				return nil, fmt.Errorf("url template %q: query value %q mixes literal text and a parameter", raw, value)
			} else {
				qp.Literal = value
			}
			t.Query = append(t.Query, qp)
		}
	}
	return t, nil
}

func parseSegment(part string) (Segment, error) {
	open := strings.IndexByte(part, '{')
	if open < 0 {
		if strings.IndexByte(part, '}') >= 0 {
			return Segment{}, fmt.Errorf("'}' without '{'")
		}
		return Segment{Literal: part}, nil
	}
	end := strings.IndexByte(part[open:], '}')
	if end < 0 {
		return Segment{}, fmt.Errorf("'{' without '}'")
	}
	end += open
	rest := part[end+1:]
	if strings.ContainsAny(rest, "{}") || strings.ContainsAny(part[:open], "}") {
		return Segment{}, fmt.Errorf("only one parameter per segment is supported")
	}
	name := part[open+1 : end]
	if name == "" {
		return Segment{}, fmt.Errorf("empty parameter name")
	}
	return Segment{Param: name, Prefix: part[:open], Suffix: rest}, nil
}

func validParamName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.', r == '$':
		default:
			return false
		}
	}
	return true
}

// Params returns the names of all parameters in capture order: path
// segments first, then the wildcard, then query parameters.
func (t *Template) Params() []string {
	var out []string
	for _, s := range t.Segments {
		if s.IsParam() {
			out = append(out, s.Param)
		}
	}
	if t.WildcardParam != "" {
		out = append(out, t.WildcardParam)
	}
	for _, q := range t.Query {
		if q.Param != "" {
			out = append(out, q.Param)
		}
	}
	return out
}

// Shape returns the template with parameter names erased and literals
// lower-cased: two operations of one API with the same method and shape
// can never be told apart by a request.
func (t *Template) Shape() string {
	var b strings.Builder
	for _, s := range t.Segments {
		b.WriteByte('/')
		if s.IsParam() {
			b.WriteString(strings.ToLower(s.Prefix) + "{}" + strings.ToLower(s.Suffix))
		} else {
			b.WriteString(strings.ToLower(s.Literal))
		}
	}
	if t.Wildcard {
		b.WriteString("/*")
	}
	if len(t.Query) > 0 {
		if b.Len() == 0 {
			b.WriteByte('/') // "/?a=1", like the template, not "?a=1"
		}
		names := make([]string, 0, len(t.Query))
		for _, q := range t.Query {
			if q.Param != "" {
				names = append(names, q.Name+"={}")
			} else {
				names = append(names, q.Name+"="+q.Literal)
			}
		}
		// Query order does not matter to a request.
		slices.Sort(names)
		b.WriteString("?" + strings.Join(names, "&"))
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}
