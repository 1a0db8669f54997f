package expr

import (
	"fmt"
)

// parser is a recursive-descent parser over a pre-lexed token slice, so
// that the few ambiguous C# spots (casts, generic calls, declarations,
// lambdas) can be resolved by cheap backtracking. Parse errors are raised
// with panic(*Error) and recovered in Compile to keep the grammar readable.
type parser struct {
	src    string
	toks   []token
	p      int
	scopes []map[string]int
	nslots int
	loops  int
}

func (ps *parser) fail(pos int, format string, args ...any) {
	line, col := lineCol(ps.src, pos)
	panic(&Error{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

func (ps *parser) tok() *token { return &ps.toks[ps.p] }

func (ps *parser) peek(d int) *token {
	if ps.p+d < len(ps.toks) {
		return &ps.toks[ps.p+d]
	}
	return &ps.toks[len(ps.toks)-1]
}

func (ps *parser) is(op string) bool {
	t := ps.tok()
	return t.kind == tOp && t.text == op
}

func (ps *parser) isAt(d int, op string) bool {
	t := ps.peek(d)
	return t.kind == tOp && t.text == op
}

func (ps *parser) isKw(kw string) bool {
	t := ps.tok()
	return t.kind == tIdent && t.text == kw
}

func (ps *parser) accept(op string) bool {
	if ps.is(op) {
		ps.p++
		return true
	}
	return false
}

func (ps *parser) expect(op string) int {
	t := ps.tok()
	if !ps.is(op) {
		ps.fail(t.pos, "expected %q, found %s", op, describe(t))
	}
	ps.p++
	return t.pos
}

func describe(t *token) string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tIdent:
		return fmt.Sprintf("%q", t.text)
	case tOp:
		return fmt.Sprintf("%q", t.text)
	}
	return "literal"
}

func (ps *parser) ident() (string, int) {
	t := ps.tok()
	if t.kind != tIdent {
		ps.fail(t.pos, "expected identifier, found %s", describe(t))
	}
	ps.p++
	return t.text, t.pos
}

// Scopes: slots are never reused, so a frame is just nslots Values.

func (ps *parser) push() { ps.scopes = append(ps.scopes, map[string]int{}) }
func (ps *parser) pop()  { ps.scopes = ps.scopes[:len(ps.scopes)-1] }

func (ps *parser) declare(name string, pos int) int {
	if _, ok := ps.lookup(name); ok && name != "_" {
		ps.fail(pos, "a local named %q is already defined", name)
	}
	s := ps.nslots
	ps.nslots++
	ps.scopes[len(ps.scopes)-1][name] = s
	return s
}

func (ps *parser) lookup(name string) (int, bool) {
	for i := len(ps.scopes) - 1; i >= 0; i-- {
		if s, ok := ps.scopes[i][name]; ok {
			return s, true
		}
	}
	return 0, false
}

// Types.

var typeAliases = map[string]string{
	"String": "string", "Int32": "int", "Int64": "long", "Boolean": "bool", "Double": "double",
	"Int16": "short", "Byte": "byte", "Char": "char", "Object": "object", "Decimal": "decimal",
	"Single": "float", "UInt32": "uint", "UInt64": "ulong",
}

var namespaces = map[string]bool{
	"System": true, "System.Text": true, "System.Linq": true, "System.Collections": true,
	"System.Collections.Generic": true, "System.Net": true, "System.Text.RegularExpressions": true,
	"System.Security": true, "System.Security.Cryptography": true, "Newtonsoft": true,
	"Newtonsoft.Json": true, "Newtonsoft.Json.Linq": true, "System.Xml": true, "System.Xml.Linq": true,
	"System.Globalization": true, "System.Web": true, "System.IO": true,
}

// tryType parses a type at the cursor without side effects; on failure the
// cursor is restored and nil returned.
func (ps *parser) tryType() *typeRef {
	save := ps.p
	t := ps.typeInner()
	if t == nil {
		ps.p = save
	}
	return t
}

func (ps *parser) typeInner() *typeRef {
	tk := ps.tok()
	if tk.kind != tIdent || isReservedWord(tk.text) {
		return nil
	}
	name := tk.text
	ps.p++
	for full := name; ps.is(".") && ps.peek(1).kind == tIdent && namespaces[full]; full += "." + name {
		name = ps.peek(1).text
		ps.p += 2
	}
	if a, ok := typeAliases[name]; ok {
		name = a
	}
	t := &typeRef{name: name}
	if ps.is("<") {
		save := ps.p
		ps.p++
		for {
			a := ps.typeInner()
			if a == nil {
				ps.p = save
				return t
			}
			t.args = append(t.args, a)
			if !ps.accept(",") {
				break
			}
		}
		if !ps.accept(">") {
			ps.p = save
			return t
		}
	}
	if ps.is("?") && (ps.isAt(1, ")") || ps.peek(1).kind == tIdent && !ps.isAt(2, ":") && !ps.isAt(2, ".") && !ps.isAt(2, "(")) {
		ps.p++
		t.nullable = true
	}
	for ps.is("[") && ps.isAt(1, "]") {
		ps.p += 2
		t.array = true
	}
	return t
}

func isReservedWord(s string) bool {
	switch s {
	case "new", "return", "if", "else", "true", "false", "null", "this", "typeof", "default", "is", "as",
		"foreach", "for", "while", "do", "in", "out", "ref", "try", "catch", "finally", "throw", "break",
		"continue", "switch", "case", "using", "base", "await", "nameof", "checked", "unchecked":
		return true
	}
	return false
}

// Statements.

func (ps *parser) parseBlock() *blockStmt {
	pos := ps.expect("{")
	ps.push()
	b := &blockStmt{base: base{pos}}
	for !ps.is("}") {
		if ps.tok().kind == tEOF {
			ps.fail(pos, "unterminated block")
		}
		b.stmts = append(b.stmts, ps.parseStmt())
	}
	ps.p++
	ps.pop()
	return b
}

// parseEmbedded parses the body of if/loops; a lone declaration gets its
// own scope like in C#.
func (ps *parser) parseEmbedded() node {
	if ps.is("{") {
		return ps.parseBlock()
	}
	ps.push()
	defer ps.pop()
	return ps.parseStmt()
}

func (ps *parser) parseStmt() node {
	t := ps.tok()
	pos := t.pos
	if t.kind == tOp {
		switch t.text {
		case "{":
			return ps.parseBlock()
		case ";":
			ps.p++
			return &blockStmt{base: base{pos}}
		}
	}
	if t.kind == tIdent {
		switch t.text {
		case "if":
			ps.p++
			ps.expect("(")
			c := ps.parseExpr()
			ps.expect(")")
			s := &ifStmt{base: base{pos}, c: c, then: ps.parseEmbedded()}
			if ps.isKw("else") {
				ps.p++
				s.els_ = ps.parseEmbedded()
			}
			return s
		case "return":
			ps.p++
			s := &returnStmt{base: base{pos}}
			if !ps.is(";") {
				s.x = ps.parseExpr()
			}
			ps.expect(";")
			return s
		case "foreach":
			return ps.parseForeach()
		case "for":
			return ps.parseFor()
		case "while":
			ps.p++
			ps.expect("(")
			c := ps.parseExpr()
			ps.expect(")")
			return &whileStmt{base: base{pos}, c: c, body: ps.loopBody()}
		case "do":
			ps.p++
			body := ps.loopBody()
			if !ps.isKw("while") {
				ps.fail(ps.tok().pos, "expected while after do body")
			}
			ps.p++
			ps.expect("(")
			c := ps.parseExpr()
			ps.expect(")")
			ps.expect(";")
			return &whileStmt{base: base{pos}, c: c, body: body, do: true}
		case "break", "continue":
			ps.p++
			ps.expect(";")
			if ps.loops == 0 && t.text == "continue" {
				ps.fail(pos, "continue outside of a loop")
			}
			if t.text == "break" {
				return &breakStmt{base{pos}}
			}
			return &continueStmt{base{pos}}
		case "try":
			return ps.parseTry()
		case "throw":
			ps.p++
			s := &throwStmt{base: base{pos}}
			if !ps.is(";") {
				s.x = ps.parseExpr()
			}
			ps.expect(";")
			return s
		case "switch":
			return ps.parseSwitch()
		case "using":
			// using (var x = ...) stmt: disposal is irrelevant for the
			// allowed types, so it is a scoped declaration.
			ps.p++
			ps.expect("(")
			ps.push()
			defer ps.pop()
			d := ps.tryDecl()
			if d == nil {
				d = &exprStmt{base: base{pos}, x: ps.parseExpr()}
			}
			ps.expect(")")
			return &blockStmt{base: base{pos}, stmts: []node{d, ps.parseEmbedded()}}
		case "const":
			ps.p++
		}
	}
	if d := ps.tryDecl(); d != nil {
		ps.expect(";")
		return d
	}
	x := ps.parseExpr()
	switch x.(type) {
	case *assignExpr, *incDecExpr, *callExpr:
	default:
		ps.fail(pos, "only assignment, call, increment and decrement can be used as a statement")
	}
	ps.expect(";")
	return &exprStmt{base: base{pos}, x: x}
}

func (ps *parser) loopBody() node {
	ps.loops++
	defer func() { ps.loops-- }()
	return ps.parseEmbedded()
}

// tryDecl recognises "Type name [= init] {, name [= init]}" (without ';').
func (ps *parser) tryDecl() node {
	save := ps.p
	pos := ps.tok().pos
	var typ *typeRef
	if ps.isKw("var") && ps.peek(1).kind == tIdent {
		ps.p++
	} else {
		typ = ps.tryType()
		if typ == nil {
			return nil
		}
	}
	nt := ps.tok()
	if nt.kind != tIdent || isReservedWord(nt.text) || !(ps.isAt(1, "=") || ps.isAt(1, ";") || ps.isAt(1, ",") || ps.isAt(1, ")")) {
		ps.p = save
		return nil
	}
	d := &declStmt{base: base{pos}, typ: typ}
	for {
		name, npos := ps.ident()
		var init node
		if ps.accept("=") {
			if ps.is("{") && typ != nil && typ.array {
				init = ps.parseInitializerNew(ps.tok().pos, typ)
			} else {
				init = ps.parseExpr()
			}
		} else if typ == nil {
			ps.fail(npos, "implicitly typed local %q must be initialized", name)
		}
		d.slots = append(d.slots, ps.declare(name, npos))
		d.inits = append(d.inits, init)
		if !ps.accept(",") {
			break
		}
	}
	return d
}

func (ps *parser) parseForeach() node {
	pos := ps.tok().pos
	ps.p++
	ps.expect("(")
	if ps.isKw("var") {
		ps.p++
	} else if ps.tryType() == nil {
		ps.fail(ps.tok().pos, "expected loop variable type")
	}
	name, npos := ps.ident()
	if !ps.isKw("in") {
		ps.fail(ps.tok().pos, "expected in")
	}
	ps.p++
	coll := ps.parseExpr()
	ps.expect(")")
	ps.push()
	defer ps.pop()
	slot := ps.declare(name, npos)
	return &foreachStmt{base: base{pos}, slot: slot, coll: coll, body: ps.loopBody()}
}

func (ps *parser) parseFor() node {
	pos := ps.tok().pos
	ps.p++
	ps.expect("(")
	ps.push()
	defer ps.pop()
	s := &forStmt{base: base{pos}}
	if !ps.is(";") {
		if d := ps.tryDecl(); d != nil {
			s.init = append(s.init, d)
		} else {
			for {
				s.init = append(s.init, &exprStmt{base: base{ps.tok().pos}, x: ps.parseExpr()})
				if !ps.accept(",") {
					break
				}
			}
		}
	}
	ps.expect(";")
	if !ps.is(";") {
		s.cond = ps.parseExpr()
	}
	ps.expect(";")
	for !ps.is(")") {
		s.iter = append(s.iter, ps.parseExpr())
		if !ps.accept(",") {
			break
		}
	}
	ps.expect(")")
	s.body = ps.loopBody()
	return s
}

func (ps *parser) parseTry() node {
	pos := ps.tok().pos
	ps.p++
	s := &tryStmt{base: base{pos}, catchSlot: -1, body: ps.parseBlock()}
	for ps.isKw("catch") {
		cpos := ps.tok().pos
		ps.p++
		ps.push()
		if ps.accept("(") {
			if ps.tryType() == nil {
				ps.fail(ps.tok().pos, "expected exception type")
			}
			if ps.tok().kind == tIdent {
				name, npos := ps.ident()
				s.catchSlot = ps.declare(name, npos)
			}
			ps.expect(")")
		}
		if ps.isKw("when") {
			ps.fail(ps.tok().pos, "exception filters (catch when) are not supported")
		}
		body := ps.parseBlock()
		ps.pop()
		// Exceptions are untyped here, so the first catch clause catches all;
		// later clauses are unreachable but still type-checked by parsing.
		if s.catchBody == nil {
			s.catchBody = body
		}
		_ = cpos
	}
	if ps.isKw("finally") {
		ps.p++
		s.finally = ps.parseBlock()
	}
	if s.catchBody == nil && s.finally == nil {
		ps.fail(pos, "try without catch or finally")
	}
	return s
}

func (ps *parser) parseSwitch() node {
	pos := ps.tok().pos
	ps.p++
	ps.expect("(")
	s := &switchStmt{base: base{pos}, x: ps.parseExpr()}
	ps.expect(")")
	ps.expect("{")
	ps.push()
	defer ps.pop()
	ps.loops++ // break is legal inside switch
	defer func() { ps.loops-- }()
	for !ps.accept("}") {
		var c switchCase
		for ps.isKw("case") || ps.isKw("default") {
			if ps.isKw("default") {
				ps.p++
				c.isDefault = true
			} else {
				ps.p++
				c.labels = append(c.labels, ps.parseExpr())
			}
			ps.expect(":")
		}
		if len(c.labels) == 0 && !c.isDefault {
			ps.fail(ps.tok().pos, "expected case or default")
		}
		for !ps.isKw("case") && !ps.isKw("default") && !ps.is("}") {
			if ps.tok().kind == tEOF {
				ps.fail(pos, "unterminated switch")
			}
			c.body = append(c.body, ps.parseStmt())
		}
		s.cases = append(s.cases, c)
	}
	return s
}
