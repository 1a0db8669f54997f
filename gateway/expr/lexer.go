package expr

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tInt
	tDouble
	tString
	tChar
	tInterp
	tOp
)

type token struct {
	kind  tokKind
	pos   int // byte offset in the full source
	text  string
	val   Value
	parts []interpPart // tInterp only
}

// interpPart is either literal text or a hole {expr[,align][:format]} whose
// source range is re-lexed by the parser so positions stay exact.
type interpPart struct {
	lit      string
	isHole   bool
	start    int
	end      int
	format   string
	hasAlign bool
	align    string
}

// Error is a compile error with a position inside the expression source.
type Error struct {
	Line, Col int
	Msg       string
}

func (e *Error) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg) }

// lineCol converts a byte offset to a 1-based line and column.
func lineCol(src string, off int) (int, int) {
	if off > len(src) {
		off = len(src)
	}
	line, col := 1, 1
	for i := 0; i < off; i++ {
		if src[i] == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

type lexer struct {
	src  string
	i    int
	end  int
	toks []token
}

// three- and two-character operators, longest first.
var ops3 = []string{"<<=", ">>=", "??="}
var ops2 = []string{"=>", "==", "!=", "<=", ">=", "&&", "||", "??", "?.", "?[", "++", "--", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<", "::"}

// lex tokenizes src[start:end]. ">>" is deliberately not a token so that
// nested generics like List<List<string>> parse; the parser joins "> >".
func lex(src string, start, end int) ([]token, *Error) {
	l := &lexer{src: src, i: start, end: end}
	for {
		if err := l.skipSpace(); err != nil {
			return nil, err
		}
		if l.i >= l.end {
			l.toks = append(l.toks, token{kind: tEOF, pos: l.i})
			return l.toks, nil
		}
		if err := l.next(); err != nil {
			return nil, err
		}
	}
}

func (l *lexer) errAt(pos int, format string, args ...any) *Error {
	line, col := lineCol(l.src, pos)
	return &Error{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

func (l *lexer) skipSpace() *Error {
	for l.i < l.end {
		c := l.src[l.i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			l.i++
		case c == '/' && l.i+1 < l.end && l.src[l.i+1] == '/':
			for l.i < l.end && l.src[l.i] != '\n' {
				l.i++
			}
		case c == '/' && l.i+1 < l.end && l.src[l.i+1] == '*':
			j := strings.Index(l.src[l.i+2:l.end], "*/")
			if j < 0 {
				return l.errAt(l.i, "unterminated comment")
			}
			l.i += j + 4
		default:
			if c >= 0x80 {
				r, n := utf8.DecodeRuneInString(l.src[l.i:])
				if unicode.IsSpace(r) {
					l.i += n
					continue
				}
			}
			return nil
		}
	}
	return nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

func (l *lexer) next() *Error {
	start := l.i
	c := l.src[l.i]
	switch {
	case isIdentStart(c):
		for l.i < l.end && isIdentPart(l.src[l.i]) {
			l.i++
		}
		l.toks = append(l.toks, token{kind: tIdent, pos: start, text: l.src[start:l.i]})
		return nil
	case c >= '0' && c <= '9' || c == '.' && l.i+1 < l.end && l.src[l.i+1] >= '0' && l.src[l.i+1] <= '9':
		return l.number()
	case c == '"':
		s, err := l.quoted(false)
		if err != nil {
			return err
		}
		l.toks = append(l.toks, token{kind: tString, pos: start, val: String(s)})
		return nil
	case c == '@' && l.peekAt(1) == '"':
		l.i++
		s, err := l.quoted(true)
		if err != nil {
			return err
		}
		l.toks = append(l.toks, token{kind: tString, pos: start, val: String(s)})
		return nil
	case c == '$' && l.peekAt(1) == '"':
		l.i++
		return l.interp(start, false)
	case c == '$' && l.peekAt(1) == '@' && l.peekAt(2) == '"', c == '@' && l.peekAt(1) == '$' && l.peekAt(2) == '"':
		l.i += 2
		return l.interp(start, true)
	case c == '\'':
		return l.char()
	}
	for _, group := range [][]string{ops3, ops2} {
		for _, op := range group {
			if strings.HasPrefix(l.src[l.i:l.end], op) {
				// "?." followed by a digit is "? .5" (ternary), not null-conditional.
				if op == "?." && l.i+2 < l.end && l.src[l.i+2] >= '0' && l.src[l.i+2] <= '9' {
					continue
				}
				l.i += len(op)
				l.toks = append(l.toks, token{kind: tOp, pos: start, text: op})
				return nil
			}
		}
	}
	if strings.IndexByte("+-*/%<>=!&|^~?:;,.()[]{}", c) >= 0 {
		l.i++
		l.toks = append(l.toks, token{kind: tOp, pos: start, text: l.src[start:l.i]})
		return nil
	}
	return l.errAt(start, "unexpected character %q", string(c))
}

func (l *lexer) peekAt(d int) byte {
	if l.i+d < l.end {
		return l.src[l.i+d]
	}
	return 0
}

func (l *lexer) number() *Error {
	start := l.i
	isHex := l.src[l.i] == '0' && (l.peekAt(1) == 'x' || l.peekAt(1) == 'X')
	if isHex {
		l.i += 2
		for l.i < l.end && strings.IndexByte("0123456789abcdefABCDEF_", l.src[l.i]) >= 0 {
			l.i++
		}
	} else {
		for l.i < l.end && (l.src[l.i] >= '0' && l.src[l.i] <= '9' || l.src[l.i] == '_') {
			l.i++
		}
	}
	isFloat := false
	if !isHex && l.i < l.end && l.src[l.i] == '.' && l.peekAt(1) >= '0' && l.peekAt(1) <= '9' {
		isFloat = true
		l.i++
		for l.i < l.end && l.src[l.i] >= '0' && l.src[l.i] <= '9' {
			l.i++
		}
	}
	if !isHex && l.i < l.end && (l.src[l.i] == 'e' || l.src[l.i] == 'E') {
		isFloat = true
		l.i++
		if l.i < l.end && (l.src[l.i] == '+' || l.src[l.i] == '-') {
			l.i++
		}
		for l.i < l.end && l.src[l.i] >= '0' && l.src[l.i] <= '9' {
			l.i++
		}
	}
	text := strings.ReplaceAll(l.src[start:l.i], "_", "")
	// Suffixes: L/UL/U for integers, D/F/M for reals.
	for l.i < l.end && strings.IndexByte("lLuUdDfFmM", l.src[l.i]) >= 0 {
		if strings.IndexByte("dDfFmM", l.src[l.i]) >= 0 {
			isFloat = true
		}
		l.i++
	}
	if isFloat {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return l.errAt(start, "invalid number %s", text)
		}
		l.toks = append(l.toks, token{kind: tDouble, pos: start, val: Double(f)})
		return nil
	}
	n, err := strconv.ParseInt(text, 0, 64)
	if err != nil {
		u, err2 := strconv.ParseUint(text, 0, 64)
		if err2 != nil {
			return l.errAt(start, "invalid number %s", text)
		}
		n = int64(u)
	}
	l.toks = append(l.toks, token{kind: tInt, pos: start, val: Int(n)})
	return nil
}

// escape decodes one C# escape sequence after the backslash at l.i.
func (l *lexer) escape(b *strings.Builder) *Error {
	start := l.i
	l.i++ // backslash
	if l.i >= l.end {
		return l.errAt(start, "unterminated escape")
	}
	c := l.src[l.i]
	l.i++
	switch c {
	case 'n':
		b.WriteByte('\n')
	case 't':
		b.WriteByte('\t')
	case 'r':
		b.WriteByte('\r')
	case '0':
		b.WriteByte(0)
	case 'a':
		b.WriteByte(7)
	case 'b':
		b.WriteByte(8)
	case 'f':
		b.WriteByte(12)
	case 'v':
		b.WriteByte(11)
	case '\\', '"', '\'':
		b.WriteByte(c)
	case 'u', 'x', 'U':
		n := 4
		if c == 'U' {
			n = 8
		}
		j := l.i
		for j < l.end && j-l.i < n && strings.IndexByte("0123456789abcdefABCDEF", l.src[j]) >= 0 {
			j++
		}
		if j == l.i || c != 'x' && j-l.i != n {
			return l.errAt(start, "invalid unicode escape")
		}
		r, _ := strconv.ParseUint(l.src[l.i:j], 16, 32)
		b.WriteRune(rune(r))
		l.i = j
	default:
		return l.errAt(start, "unknown escape sequence \\%c", c)
	}
	return nil
}

// quoted reads a "..." or @"..." literal; l.i is at the opening quote.
func (l *lexer) quoted(verbatim bool) (string, *Error) {
	start := l.i
	l.i++
	var b strings.Builder
	for l.i < l.end {
		c := l.src[l.i]
		switch {
		case c == '"' && verbatim && l.peekAt(1) == '"':
			b.WriteByte('"')
			l.i += 2
		case c == '"':
			l.i++
			return b.String(), nil
		case c == '\\' && !verbatim:
			if err := l.escape(&b); err != nil {
				return "", err
			}
		case c == '\n' && !verbatim:
			return "", l.errAt(start, "newline in string literal")
		default:
			b.WriteByte(c)
			l.i++
		}
	}
	return "", l.errAt(start, "unterminated string literal")
}

func (l *lexer) char() *Error {
	start := l.i
	l.i++
	var b strings.Builder
	if l.i < l.end && l.src[l.i] == '\\' {
		if err := l.escape(&b); err != nil {
			return err
		}
	} else if l.i < l.end {
		r, n := utf8.DecodeRuneInString(l.src[l.i:l.end])
		b.WriteRune(r)
		l.i += n
	}
	if l.i >= l.end || l.src[l.i] != '\'' {
		return l.errAt(start, "unterminated character literal")
	}
	l.i++
	r, _ := utf8.DecodeRuneInString(b.String())
	l.toks = append(l.toks, token{kind: tChar, pos: start, val: Char(r)})
	return nil
}

// interp reads $"..." with l.i at the opening quote. Holes are scanned with
// awareness of nested strings and brackets; a ':' at bracket depth 0 starts
// the format specifier (C# requires parentheses around a ?: inside a hole).
func (l *lexer) interp(start int, verbatim bool) *Error {
	l.i++
	var parts []interpPart
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			parts = append(parts, interpPart{lit: b.String()})
			b.Reset()
		}
	}
	for l.i < l.end {
		c := l.src[l.i]
		switch {
		case c == '"' && verbatim && l.peekAt(1) == '"':
			b.WriteByte('"')
			l.i += 2
		case c == '"':
			l.i++
			flush()
			l.toks = append(l.toks, token{kind: tInterp, pos: start, parts: parts})
			return nil
		case c == '\\' && !verbatim:
			if err := l.escape(&b); err != nil {
				return err
			}
		case c == '{' && l.peekAt(1) == '{', c == '}' && l.peekAt(1) == '}':
			b.WriteByte(c)
			l.i += 2
		case c == '{':
			flush()
			p, err := l.hole()
			if err != nil {
				return err
			}
			parts = append(parts, p)
		default:
			b.WriteByte(c)
			l.i++
		}
	}
	return l.errAt(start, "unterminated interpolated string")
}

func (l *lexer) hole() (interpPart, *Error) {
	open := l.i
	l.i++
	p := interpPart{isHole: true, start: l.i}
	depth := 0
	exprEnd, alignStart := -1, -1
	for l.i < l.end {
		c := l.src[l.i]
		switch c {
		case '(', '[', '{':
			depth++
		case ')', ']':
			depth--
		case '"', '\'':
			sub := &lexer{src: l.src, i: l.i, end: l.end}
			var err *Error
			if c == '"' {
				_, err = sub.quoted(false)
			} else {
				err = sub.char()
			}
			if err != nil {
				return p, err
			}
			l.i = sub.i
			continue
		case '@', '$':
			if l.peekAt(1) == '"' || l.peekAt(1) == '@' || l.peekAt(1) == '$' {
				sub := &lexer{src: l.src, i: l.i, end: l.end}
				if err := sub.next(); err != nil {
					return p, err
				}
				l.i = sub.i
				continue
			}
		case ',':
			if depth == 0 && exprEnd < 0 && alignStart < 0 {
				exprEnd = l.i
				alignStart = l.i + 1
			}
		case ':':
			if depth == 0 && (exprEnd < 0 || alignStart >= 0) {
				if exprEnd < 0 {
					exprEnd = l.i
				}
				if alignStart >= 0 {
					p.hasAlign, p.align = true, strings.TrimSpace(l.src[alignStart:l.i])
					alignStart = -1
				}
				fs := l.i + 1
				for l.i < l.end && l.src[l.i] != '}' {
					l.i++
				}
				p.format = l.src[fs:l.i]
				continue
			}
		case '}':
			if depth == 0 {
				if exprEnd < 0 {
					exprEnd = l.i
				}
				if alignStart >= 0 {
					p.hasAlign, p.align = true, strings.TrimSpace(l.src[alignStart:l.i])
				}
				p.end = exprEnd
				l.i++
				return p, nil
			}
			depth--
		}
		l.i++
	}
	return p, l.errAt(open, "unterminated interpolation hole")
}
