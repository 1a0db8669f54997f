package policyxml

// The expression scanner finds where an @(...) or @{...} policy expression
// ends. Policy authors write C# straight into XML: attribute values hold raw
// '"', and both attributes and text hold raw '<', '>' and "&&". An XML
// tokenizer cannot find the end of such a value, so the parser hands the
// region to this scanner first. It understands just enough C# lexing to
// know which brackets count: string literals (regular, verbatim,
// interpolated with nested holes), character literals and comments.
//
// XML entity references are read as the character they stand for, because
// the same expression is written both ways (&quot; or ", &amp;&amp; or &&).

// exprError is a scanner error at a byte offset of the source. When rel
// is set, the construct it names is still open at offset relOff; the parser
// turns offsets into lines and columns.
type exprError struct {
	off    int
	msg    string
	rel    string
	relOff int
}

type frameKind uint8

const (
	// frameCode is C# code inside the outermost @( / @{ or a nested
	// (, [ or { bracket.
	frameCode frameKind = iota
	// frameHole is the code of an interpolation hole {...} inside an
	// interpolated string.
	frameHole
	// frameInterp is the literal text of an interpolated string.
	frameInterp
)

type frame struct {
	kind     frameKind
	close    byte // closing bracket of a frameCode or frameHole
	verbatim bool // frameInterp: $@"..." (quotes doubled, no escapes)
	open     int  // offset of the construct, for "not closed" errors
}

// maxCharLiteral bounds the units between the quotes of a character
// literal ('\U0001F600' is the longest); a lone apostrophe that finds no
// partner within it is treated as an ordinary character.
const maxCharLiteral = 12

type exprScanner struct {
	src    string
	decode bool // read entity references as the character they encode
}

// isExprStart reports whether s[i:] starts an expression: "@(" or "@{".
func isExprStart(s string, i int) bool {
	return i+1 < len(s) && s[i] == '@' && (s[i+1] == '(' || s[i+1] == '{')
}

// scanExpr returns the offset just past the bracket that closes the
// expression starting at src[start] ("@(" or "@{"). With decode set,
// entity references count as the character they encode.
func scanExpr(src string, start int, decode bool) (int, *exprError) {
	s := exprScanner{src: src, decode: decode}
	return s.scan(start)
}

// at returns the character at src[i] as the scanner sees it and its width
// in the source. An entity reference is one character; a non-ASCII
// character is returned as its first byte, which is never significant to
// the scanner. w is 0 at the end of the source.
func (s *exprScanner) at(i int) (c byte, w int) {
	if i >= len(s.src) {
		return 0, 0
	}
	c = s.src[i]
	if c == '&' && s.decode {
		if val, n, ok := entityAt(s.src, i); ok {
			return val[0], n
		}
	}
	return c, 1
}

func closerOf(open byte) byte {
	switch open {
	case '(':
		return ')'
	case '[':
		return ']'
	}
	return '}'
}

func (s *exprScanner) scan(start int) (int, *exprError) {
	stack := []frame{{kind: frameCode, close: closerOf(s.src[start+1]), open: start}}
	i := start + 2
	for {
		top := &stack[len(stack)-1]
		c, w := s.at(i)
		if w == 0 {
			return 0, s.eofError(stack)
		}
		if top.kind == frameInterp {
			next, err := s.interpText(stack, i, c, w)
			if err != nil {
				return 0, err
			}
			switch next.action {
			case actPop:
				stack = stack[:len(stack)-1]
			case actPush:
				stack = append(stack, next.push)
			}
			i = next.i
			continue
		}
		c2, w2 := s.at(i + w)
		switch c {
		case '"':
			end, err := s.skipString(i+w, false, i)
			if err != nil {
				return 0, err
			}
			i = end
		case '\'':
			i = s.skipChar(i, w)
		case '@':
			switch {
			case c2 == '"':
				end, err := s.skipString(i+w+w2, true, i)
				if err != nil {
					return 0, err
				}
				i = end
			case c2 == '$':
				if c3, w3 := s.at(i + w + w2); c3 == '"' {
					stack = append(stack, frame{kind: frameInterp, verbatim: true, open: i})
					i += w + w2 + w3
				} else {
					i += w
				}
			default:
				i += w
			}
		case '$':
			switch {
			case c2 == '"':
				stack = append(stack, frame{kind: frameInterp, open: i})
				i += w + w2
			case c2 == '@':
				if c3, w3 := s.at(i + w + w2); c3 == '"' {
					stack = append(stack, frame{kind: frameInterp, verbatim: true, open: i})
					i += w + w2 + w3
				} else {
					i += w
				}
			default:
				i += w
			}
		case '/':
			switch c2 {
			case '/':
				i = s.skipLineComment(i + w + w2)
			case '*':
				end, err := s.skipBlockComment(i+w+w2, i)
				if err != nil {
					return 0, err
				}
				i = end
			default:
				i += w
			}
		case '(', '[', '{':
			stack = append(stack, frame{kind: frameCode, close: closerOf(c), open: i})
			i += w
		case ')', ']', '}':
			if c != top.close {
				return 0, &exprError{off: i, msg: "unexpected '" + string(c) + "' in expression",
					rel: openName(*top, len(stack) == 1), relOff: top.open}
			}
			stack = stack[:len(stack)-1]
			i += w
			if len(stack) == 0 {
				return i, nil
			}
		case ':':
			switch {
			case top.kind != frameHole:
				i += w
			case c2 == ':':
				// global::Name inside a hole is not a format specifier.
				i += w + w2
			default:
				// A ':' directly inside a hole starts the format
				// specifier ({date:yyyy-MM-dd'T'HH}), which is literal
				// text up to the '}' that closes the hole.
				end, err := s.skipFormat(i+w, top.open)
				if err != nil {
					return 0, err
				}
				stack = stack[:len(stack)-1]
				i = end
			}
		default:
			i += w
		}
	}
}

type interpAction uint8

const (
	actNone interpAction = iota
	actPop
	actPush
)

type interpStep struct {
	i      int
	action interpAction
	push   frame
}

// interpText advances over one unit c (width w, at i) of the literal text of
// an interpolated string, the top frame of stack.
func (s *exprScanner) interpText(stack []frame, i int, c byte, w int) (interpStep, *exprError) {
	top := stack[len(stack)-1]
	c2, w2 := s.at(i + w)
	switch c {
	case '"':
		if top.verbatim && c2 == '"' {
			return interpStep{i: i + w + w2}, nil
		}
		return interpStep{i: i + w, action: actPop}, nil
	case '\\':
		if !top.verbatim {
			return interpStep{i: i + w + w2}, nil
		}
	case '{':
		if c2 == '{' {
			return interpStep{i: i + w + w2}, nil
		}
		return interpStep{i: i + w, action: actPush, push: frame{kind: frameHole, close: '}', open: i}}, nil
	case '}':
		if c2 == '}' {
			return interpStep{i: i + w + w2}, nil
		}
	case '\n':
		if !top.verbatim {
			return interpStep{}, &exprError{off: i, msg: "newline in string literal"}
		}
	}
	return interpStep{i: i + w}, nil
}

// skipString skips the body of a regular ("...") or verbatim (@"...")
// string literal starting at i, just after the opening quote, and returns
// the offset after the closing quote. open is where the literal starts.
func (s *exprScanner) skipString(i int, verbatim bool, open int) (int, *exprError) {
	for {
		c, w := s.at(i)
		switch {
		case w == 0:
			return 0, &exprError{off: open, msg: "string literal is not closed"}
		case c == '"':
			if c2, w2 := s.at(i + w); verbatim && c2 == '"' {
				i += w + w2
				continue
			}
			return i + w, nil
		case c == '\\' && !verbatim:
			_, w2 := s.at(i + w)
			i += w + w2
		case c == '\n' && !verbatim:
			// A regular string cannot span lines in C#. Stopping here
			// points at the broken line instead of wherever the next
			// quote happens to be.
			return 0, &exprError{off: i, msg: "newline in string literal"}
		default:
			i += w
		}
	}
}

// skipChar skips a character literal whose opening quote (width w) is at
// i. An apostrophe that is not followed by a short literal on the same
// line is an ordinary character, so the scanner moves past just that.
func (s *exprScanner) skipChar(i, w int) int {
	j := i + w
	for n := 0; n < maxCharLiteral; n++ {
		c, cw := s.at(j)
		switch {
		case cw == 0 || c == '\n':
			return i + w
		case c == '\'' && n > 0:
			return j + cw
		case c == '\\':
			_, w2 := s.at(j + cw)
			j += cw + w2
		default:
			j += cw
		}
	}
	return i + w
}

// skipLineComment returns the offset of the newline that ends a // comment
// starting at i, or the end of the source.
func (s *exprScanner) skipLineComment(i int) int {
	for {
		c, w := s.at(i)
		if w == 0 || c == '\n' {
			return i
		}
		i += w
	}
}

// skipBlockComment returns the offset after the "*/" that ends a /* */
// comment whose body starts at i.
func (s *exprScanner) skipBlockComment(i, open int) (int, *exprError) {
	for {
		c, w := s.at(i)
		if w == 0 {
			return 0, &exprError{off: open, msg: "comment is not closed"}
		}
		if c == '*' {
			if c2, w2 := s.at(i + w); c2 == '/' {
				return i + w + w2, nil
			}
		}
		i += w
	}
}

// skipFormat returns the offset after the '}' that ends the format
// specifier of an interpolation hole opened at open.
func (s *exprScanner) skipFormat(i, open int) (int, *exprError) {
	for {
		c, w := s.at(i)
		if w == 0 {
			return 0, &exprError{off: open, msg: "interpolation hole is not closed"}
		}
		i += w
		if c == '}' {
			return i, nil
		}
	}
}

// eofError describes the innermost construct still open at the end of the
// source.
func (s *exprScanner) eofError(stack []frame) *exprError {
	top := stack[len(stack)-1]
	if len(stack) == 1 {
		return &exprError{off: top.open, msg: "expression is not closed: missing '" + string(top.close) + "'"}
	}
	return &exprError{off: top.open, msg: openName(top, false) + " is not closed"}
}

// openName names the construct a frame stands for in error messages.
func openName(f frame, outermost bool) string {
	switch {
	case f.kind == frameHole:
		return "interpolation hole"
	case f.kind == frameInterp:
		return "interpolated string"
	case outermost:
		return "expression '@" + string(openerOf(f.close)) + "'"
	}
	return "'" + string(openerOf(f.close)) + "'"
}

func openerOf(close byte) byte {
	switch close {
	case ')':
		return '('
	case ']':
		return '['
	}
	return '{'
}
