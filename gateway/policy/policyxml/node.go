// Package policyxml parses API Management policy documents. Most real
// policy files are not strict XML: expressions inside attribute values and
// element text carry raw '"', '<' and '&&'. The parser finds expression
// regions (@(...) and @{...}) with a C#-aware scanner before reading the
// XML, keeps expression text exactly as written (newlines and // comments
// included), and reports errors with line and column.
package policyxml

import "fmt"

// Pos is a 1-based line and column in the source document. Columns count
// characters, not bytes; a tab is one column.
type Pos struct {
	Line, Col int
}

// Attr is one attribute of an element.
type Attr struct {
	Name string
	// Value is the attribute value with XML entities decoded. For an
	// expression it is the exact source text from '@' to the closing ')'
	// or '}', entities inside decoded, nothing else changed.
	Value string
	// Expr is set when Value is an @(...) or @{...} expression.
	Expr bool
	// Pos is where the attribute's name starts.
	Pos Pos
}

// Element is one element of a policy document.
type Element struct {
	Name     string
	Attrs    []Attr
	Children []*Element
	// Text is the element's character data (entities decoded, CDATA
	// included), concatenated, with surrounding whitespace trimmed. When
	// the whole text is one expression, Text is its exact source and
	// TextExpr is set.
	Text     string
	TextExpr bool
	// Inner is the raw source between the start and end tags, for
	// elements whose content is a payload (set-body, a Liquid template,
	// a literal XML or JSON body). It is empty for a self-closing tag.
	Inner string
	// Pos is where the start tag's '<' is.
	Pos Pos
}

// Attr returns the named attribute.
func (e *Element) Attr(name string) (Attr, bool) {
	for _, a := range e.Attrs {
		if a.Name == name {
			return a, true
		}
	}
	return Attr{}, false
}

// SyntaxError is a document that cannot be read, with where.
type SyntaxError struct {
	Pos Pos
	Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Pos.Line, e.Pos.Col, e.Msg)
}
