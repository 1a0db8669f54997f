package policyxml

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Parse reads a policy document and returns its single root element:
// <policies> for a policy, <fragment> for a policy fragment, or a bare
// section or policy for snippets.
//
// It is an XML reader with one extension: wherever an attribute value or a
// run of element text starts (after optional whitespace) with "@(" or
// "@{", the expression scanner finds the matching bracket first, so the
// raw '"', '<', '>' and '&' that real policies put inside expressions do
// not end the value or start a tag. Otherwise it follows XML, with these
// deliberate leniencies, all of which strict parsers reject but which only
// have one possible meaning:
//   - an '&' that does not start a known entity reference is kept as is;
//   - '<' inside a quoted attribute value is an ordinary character;
//   - "--" inside a comment is allowed (the comment ends at the first "-->");
//   - the XML declaration and processing instructions are skipped wherever
//     they appear;
//   - attributes need not be separated by whitespace;
//   - a document type declaration before the root is skipped.
//
// A text run is the character data between two pieces of markup, so an
// expression may follow a comment. A CDATA section holding exactly one
// expression is an expression too (APIM reads the element value with CDATA
// included); entities are not decoded there.
//
// Nothing is normalised: attribute values keep their newlines and
// carriage returns, so multi-line expressions with // comments survive.
//
// Errors are *SyntaxError values with a 1-based line and column; columns
// count characters (a tab is one column).
func Parse(src string) (*Element, error) {
	p := newParser(src)
	if err := p.document(); err != nil {
		return nil, err
	}
	return p.root, nil
}

// openElem is an element whose end tag has not been read yet.
type openElem struct {
	el         *Element
	innerStart int // offset just after the start tag's '>'
	text       strings.Builder
	exprs      int    // expressions found in the element's text runs
	exprText   string // the last of them
	plain      bool   // non-whitespace text outside expressions
}

// addText appends character data outside expressions.
func (o *openElem) addText(s string) {
	o.text.WriteString(s)
	if trimSpace(s) != "" {
		o.plain = true
	}
}

// addExpr appends the source of an expression found in the text.
func (o *openElem) addExpr(s string) {
	o.text.WriteString(s)
	o.exprs++
	o.exprText = s
}

// finish sets Text and TextExpr once all of the element's text is known.
func (o *openElem) finish() {
	if o.exprs == 1 && !o.plain {
		// Exact source, not a trimmed concatenation: the whitespace
		// around it is XML formatting, the expression is the value.
		o.el.Text, o.el.TextExpr = o.exprText, true
		return
	}
	o.el.Text = trimSpace(o.text.String())
}

type parser struct {
	src   string
	pos   int
	cur   lineCursor
	stack []*openElem
	root  *Element
	// attrNames indexes the attribute names of attrsOf, an element
	// with many attributes (see hasAttr).
	attrsOf   *Element
	attrNames map[string]bool
}

func newParser(src string) *parser {
	p := &parser{src: src}
	// A byte order mark is an encoding signature, not content, and does
	// not count as a column.
	if strings.HasPrefix(src, "\ufeff") {
		p.pos = len("\ufeff")
	}
	p.cur = lineCursor{src: src, base: p.pos, off: p.pos, line: 1, col: 1}
	return p
}

func (p *parser) errorf(off int, format string, args ...any) error {
	return &SyntaxError{Pos: p.cur.pos(off), Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) document() error {
	for p.pos < len(p.src) {
		var err error
		if p.src[p.pos] == '<' {
			err = p.markup()
		} else {
			err = p.text()
		}
		if err != nil {
			return err
		}
	}
	if n := len(p.stack); n > 0 {
		top := p.stack[n-1].el
		return p.errorf(len(p.src), "element <%s> opened at line %d, column %d is not closed",
			top.Name, top.Pos.Line, top.Pos.Col)
	}
	if p.root == nil {
		return p.errorf(len(p.src), "document has no root element")
	}
	return nil
}

// markup reads whatever starts with the '<' at p.pos.
func (p *parser) markup() error {
	rest := p.src[p.pos:]
	switch {
	case strings.HasPrefix(rest, "<!--"):
		// Searching for "-->" alone tolerates "--" inside the comment,
		// which one corpus file has and strict XML rejects.
		end := strings.Index(rest[len("<!--"):], "-->")
		if end < 0 {
			return p.errorf(p.pos, "comment is not closed")
		}
		p.pos += len("<!--") + end + len("-->")
		return nil
	case strings.HasPrefix(rest, "<![CDATA["):
		return p.cdata()
	case strings.HasPrefix(rest, "<?"):
		// The XML declaration and processing instructions carry
		// nothing a policy needs; one corpus file has the declaration
		// after a comment, where strict XML forbids it.
		end := strings.Index(rest[len("<?"):], "?>")
		if end < 0 {
			return p.errorf(p.pos, "processing instruction is not closed")
		}
		p.pos += len("<?") + end + len("?>")
		return nil
	case strings.HasPrefix(rest, "<!DOCTYPE") && len(p.stack) == 0 && p.root == nil:
		return p.doctype()
	case strings.HasPrefix(rest, "<!"):
		return p.errorf(p.pos, "unexpected markup declaration '<!'")
	case strings.HasPrefix(rest, "</"):
		return p.endTag()
	}
	return p.startTag()
}

// doctype skips a document type declaration, internal subset included.
func (p *parser) doctype() error {
	depth := 0
	var quote byte
	for i := p.pos + len("<!DOCTYPE"); i < len(p.src); i++ {
		c := p.src[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '[':
			depth++
		case c == ']':
			depth--
		case c == '>' && depth <= 0:
			p.pos = i + 1
			return nil
		}
	}
	return p.errorf(p.pos, "document type declaration is not closed")
}

func (p *parser) cdata() error {
	start := p.pos + len("<![CDATA[")
	end := strings.Index(p.src[start:], "]]>")
	if end < 0 {
		return p.errorf(p.pos, "CDATA section is not closed")
	}
	if len(p.stack) == 0 {
		return p.errorf(p.pos, "CDATA section outside the root element")
	}
	content := p.src[start : start+end]
	top := p.stack[len(p.stack)-1]
	// APIM reads an element's value with CDATA included and then checks
	// for '@', so a CDATA section holding exactly one expression is an
	// expression (written that way to avoid escaping). There are no
	// entities inside CDATA.
	p.pos = start + end + len("]]>")
	if t := trimSpace(content); isExprStart(t, 0) {
		if e, err := scanExpr(t, 0, false); err == nil && e == len(t) {
			top.addExpr(t)
			return nil
		}
	}
	top.addText(content)
	return nil
}

// text reads character data up to the next '<'. A run that starts with an
// expression is scanned as one first, since the expression may itself
// contain '<'.
func (p *parser) text() error {
	start := p.pos
	end := p.indexLT(start)
	if len(p.stack) == 0 {
		if i := firstNonSpace(p.src[start:end]); i >= 0 {
			return p.errorf(start+i, "text outside the root element")
		}
		p.pos = end
		return nil
	}
	top := p.stack[len(p.stack)-1]
	if j := skipSpace(p.src, start); isExprStart(p.src, j) {
		e, err := scanExpr(p.src, j, true)
		if err != nil {
			return p.exprError(j, err, fmt.Sprintf("text of <%s>", top.el.Name))
		}
		top.addText(p.src[start:j])
		top.addExpr(decodeEntities(p.src[j:e]))
		start = e
		end = p.indexLT(e)
	}
	top.addText(decodeEntities(p.src[start:end]))
	p.pos = end
	return nil
}

// indexLT returns the offset of the next '<' at or after i, or the end of
// the source.
func (p *parser) indexLT(i int) int {
	if n := strings.IndexByte(p.src[i:], '<'); n >= 0 {
		return i + n
	}
	return len(p.src)
}

func (p *parser) startTag() error {
	lt := p.pos
	name, i := readName(p.src, lt+1)
	if name == "" {
		return p.errorf(lt+1, "expected element name after '<'")
	}
	el := &Element{Name: name, Pos: p.cur.pos(lt)}
	for {
		j := skipSpace(p.src, i)
		switch {
		case j >= len(p.src):
			return p.errorf(lt, "start tag <%s> is not closed", name)
		case p.src[j] == '>':
			p.pos = j + 1
			return p.open(el, lt)
		case strings.HasPrefix(p.src[j:], "/>"):
			p.pos = j + 2
			if err := p.open(el, lt); err != nil {
				return err
			}
			p.close()
			return nil
		}
		next, err := p.attr(el, j)
		if err != nil {
			return err
		}
		i = next
	}
}

// attr reads the attribute that starts at i and returns the offset after
// its closing quote.
func (p *parser) attr(el *Element, i int) (int, error) {
	name, j := readName(p.src, i)
	if name == "" {
		r, _ := utf8.DecodeRuneInString(p.src[i:])
		return 0, p.errorf(i, "unexpected %q in start tag <%s>", r, el.Name)
	}
	if p.hasAttr(el, name) {
		return 0, p.errorf(i, "duplicate attribute %q in <%s>", name, el.Name)
	}
	a := Attr{Name: name, Pos: p.cur.pos(i)}
	j = skipSpace(p.src, j)
	if j >= len(p.src) || p.src[j] != '=' {
		return 0, p.errorf(j, "attribute %q of <%s> has no value", name, el.Name)
	}
	j = skipSpace(p.src, j+1)
	if j >= len(p.src) || (p.src[j] != '"' && p.src[j] != '\'') {
		return 0, p.errorf(j, "value of attribute %q of <%s> is not quoted", name, el.Name)
	}
	quote, vs := p.src[j], j+1
	end := 0
	if k := skipSpace(p.src, vs); isExprStart(p.src, k) {
		e, err := scanExpr(p.src, k, true)
		if err != nil {
			return 0, p.exprError(k, err, fmt.Sprintf("attribute %q of <%s>", name, el.Name))
		}
		// The expression is the whole value: APIM evaluates values that
		// start with '@' as code, and text after the code has no meaning.
		m := skipSpace(p.src, e)
		if m >= len(p.src) {
			return 0, p.errorf(j, "value of attribute %q of <%s> is not closed", name, el.Name)
		}
		if p.src[m] != quote {
			return 0, p.errorf(m, "unexpected text after the expression in attribute %q of <%s>; an expression must be the whole value",
				name, el.Name)
		}
		a.Value, a.Expr = decodeEntities(p.src[k:e]), true
		end = m + 1
	} else {
		m := strings.IndexByte(p.src[vs:], quote)
		if m < 0 {
			return 0, p.errorf(j, "value of attribute %q of <%s> is not closed", name, el.Name)
		}
		a.Value = decodeEntities(p.src[vs : vs+m])
		end = vs + m + 1
	}
	el.Attrs = append(el.Attrs, a)
	return end, nil
}

// hasAttr reports whether el already has the named attribute. Elements
// have a handful of attributes, so a linear search is enough, until a
// generated or hostile document with thousands would make it quadratic.
func (p *parser) hasAttr(el *Element, name string) bool {
	const linear = 16
	if len(el.Attrs) < linear {
		for _, a := range el.Attrs {
			if a.Name == name {
				return true
			}
		}
		return false
	}
	if p.attrsOf != el {
		p.attrsOf, p.attrNames = el, make(map[string]bool, 2*len(el.Attrs))
		for _, a := range el.Attrs {
			p.attrNames[a.Name] = true
		}
	}
	if p.attrNames[name] {
		return true
	}
	p.attrNames[name] = true // the caller adds it next
	return false
}

// open makes el, whose start tag began at lt and ended at p.pos, the
// current element.
func (p *parser) open(el *Element, lt int) error {
	if n := len(p.stack); n > 0 {
		parent := p.stack[n-1].el
		parent.Children = append(parent.Children, el)
	} else if p.root != nil {
		return p.errorf(lt, "document has more than one root element: <%s> follows <%s>", el.Name, p.root.Name)
	} else {
		p.root = el
	}
	p.stack = append(p.stack, &openElem{el: el, innerStart: p.pos})
	return nil
}

// close ends the current element; its content ended at p.pos for a
// self-closing tag or at the '<' of the end tag.
func (p *parser) close() {
	n := len(p.stack)
	p.stack[n-1].finish()
	p.stack[n-1] = nil
	p.stack = p.stack[:n-1]
}

func (p *parser) endTag() error {
	lt := p.pos
	name, i := readName(p.src, lt+2)
	if name == "" {
		return p.errorf(lt+2, "expected element name after '</'")
	}
	j := skipSpace(p.src, i)
	if j >= len(p.src) || p.src[j] != '>' {
		return p.errorf(j, "end tag </%s> is not closed", name)
	}
	if len(p.stack) == 0 {
		return p.errorf(lt, "unexpected end tag </%s>: no element is open", name)
	}
	top := p.stack[len(p.stack)-1]
	if top.el.Name != name {
		return p.errorf(lt, "element <%s> opened at line %d, column %d is not closed (found </%s>)",
			top.el.Name, top.el.Pos.Line, top.el.Pos.Col, name)
	}
	top.el.Inner = p.src[top.innerStart:lt]
	p.close()
	p.pos = j + 1
	return nil
}

// exprError turns a scanner error inside the expression that starts at
// start into a SyntaxError; where names the attribute or element text.
func (p *parser) exprError(start int, e *exprError, where string) error {
	startPos := p.cur.pos(start)
	msg := where + ": " + e.msg
	if e.rel != "" {
		rel := p.cur.pos(e.relOff)
		msg += fmt.Sprintf("; %s opened at line %d, column %d is still open", e.rel, rel.Line, rel.Col)
	}
	if e.off != start {
		msg += fmt.Sprintf(" (expression starts at line %d, column %d)", startPos.Line, startPos.Col)
	}
	return &SyntaxError{Pos: p.cur.pos(e.off), Msg: msg}
}

// lineCursor converts byte offsets to line and column. Offsets are asked
// for in increasing order while parsing, so it walks forward from the last
// answer; only an error message may go back, which restarts the walk.
type lineCursor struct {
	src            string
	base           int // offset of line 1, column 1 (after a BOM)
	off, line, col int
}

func (c *lineCursor) pos(off int) Pos {
	off = min(off, len(c.src))
	if off < c.off {
		c.off, c.line, c.col = c.base, 1, 1
	}
	for c.off < off {
		r, w := utf8.DecodeRuneInString(c.src[c.off:])
		if r == '\n' {
			c.line, c.col = c.line+1, 1
		} else {
			c.col++
		}
		c.off += w
	}
	return Pos{Line: c.line, Col: c.col}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

// skipSpace returns the offset of the first non-whitespace byte at or
// after i, or len(s).
func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

// firstNonSpace returns the offset of the first non-whitespace byte of s,
// or -1.
func firstNonSpace(s string) int {
	if i := skipSpace(s, 0); i < len(s) {
		return i
	}
	return -1
}

// trimSpace trims XML whitespace only: a non-breaking space is content.
func trimSpace(s string) string {
	return strings.Trim(s, " \t\r\n")
}

// readName reads an XML name (prefix included) at i and returns it and the
// offset after it. Any non-ASCII byte is accepted as a name character; the
// XML name rules for them would add nothing for policy documents.
func readName(s string, i int) (string, int) {
	j := i
	for j < len(s) {
		c := s[j]
		ok := c >= 0x80 || c == '_' || c == ':' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') ||
			(j > i && (c == '-' || c == '.' || ('0' <= c && c <= '9')))
		if !ok {
			break
		}
		j++
	}
	return s[i:j], j
}
