package expr

func (ps *parser) parseExpr() node {
	if l := ps.tryLambda(); l != nil {
		return l
	}
	lhs := ps.parseCond()
	t := ps.tok()
	if t.kind == tOp {
		switch t.text {
		case "=", "+=", "-=", "*=", "/=", "%=", "??=", "|=", "&=":
			ps.p++
			checkAssignable(ps, lhs)
			return &assignExpr{base: base{t.pos}, op: t.text, target: lhs, value: ps.parseExpr()}
		}
	}
	return lhs
}

func checkAssignable(ps *parser, n node) {
	switch x := n.(type) {
	case *localExpr, *indexExpr:
		return
	case *memberExpr:
		if _, ok := x.x.(*contextExpr); !ok {
			return
		}
	}
	ps.fail(n.position(), "left side of assignment must be a variable, property or indexer")
}

// tryLambda recognises x => ..., (x, y) => ... and () => ...
func (ps *parser) tryLambda() node {
	pos := ps.tok().pos
	var names []string
	var poss []int
	switch {
	case ps.tok().kind == tIdent && ps.isAt(1, "=>"):
		names, poss = []string{ps.tok().text}, []int{pos}
		ps.p += 2
	case ps.is("("):
		j := 1
		for {
			if ps.isAt(j, ")") && (j == 1 || !ps.isAt(j-1, ",")) {
				break
			}
			// optional explicit parameter type: (string x) => ...
			if ps.peek(j).kind == tIdent && ps.peek(j+1).kind == tIdent {
				j++
			}
			if ps.peek(j).kind != tIdent {
				return nil
			}
			names = append(names, ps.peek(j).text)
			poss = append(poss, ps.peek(j).pos)
			j++
			if ps.isAt(j, ",") {
				j++
				continue
			}
			if !ps.isAt(j, ")") {
				return nil
			}
		}
		if !ps.isAt(j+1, "=>") {
			return nil
		}
		ps.p += j + 2
	default:
		return nil
	}
	if ps.is("{") {
		ps.fail(ps.tok().pos, "lambda with statement body is not supported")
	}
	ps.push()
	defer ps.pop()
	l := &lambdaExpr{base: base{pos}}
	for i, n := range names {
		l.slots = append(l.slots, ps.declare(n, poss[i]))
	}
	l.body = ps.parseExpr()
	return l
}

func (ps *parser) parseCond() node {
	c := ps.parseCoalesce()
	if ps.is("?") {
		pos := ps.tok().pos
		ps.p++
		a := ps.parseExpr()
		ps.expect(":")
		b := ps.parseExpr()
		return &condExpr{base: base{pos}, c: c, a: a, b: b}
	}
	return c
}

func (ps *parser) parseCoalesce() node {
	l := ps.parseBinary(0)
	if ps.is("??") {
		pos := ps.tok().pos
		ps.p++
		return &binaryExpr{base: base{pos}, op: "??", l: l, r: ps.parseCoalesce()}
	}
	return l
}

// binary precedence levels from loosest to tightest.
var binLevels = [][]string{
	{"||"}, {"&&"}, {"|"}, {"^"}, {"&"}, {"==", "!="}, {"<", ">", "<=", ">=", "is", "as"},
	{"<<", ">>"}, {"+", "-"}, {"*", "/", "%"},
}

func (ps *parser) binOp(level int) (string, int) {
	t := ps.tok()
	for _, op := range binLevels[level] {
		switch {
		case op == ">>" && ps.is(">") && ps.isAt(1, ">") && ps.peek(1).pos == t.pos+1:
			return ">>", 2
		case op == ">" && ps.is(">") && ps.isAt(1, ">") && ps.peek(1).pos == t.pos+1:
			continue
		case (op == "is" || op == "as") && t.kind == tIdent && t.text == op:
			return op, 1
		case t.kind == tOp && t.text == op:
			return op, 1
		}
	}
	return "", 0
}

func (ps *parser) parseBinary(level int) node {
	if level == len(binLevels) {
		return ps.parseUnary()
	}
	l := ps.parseBinary(level + 1)
	for {
		op, n := ps.binOp(level)
		if n == 0 {
			return l
		}
		pos := ps.tok().pos
		ps.p += n
		switch op {
		case "is":
			neg := false
			if ps.isKw("not") {
				ps.p++
				neg = true
			}
			if ps.isKw("null") {
				ps.p++
				var r node = &binaryExpr{base: base{pos}, op: "==", l: l, r: &litExpr{base: base{pos}, val: Null}}
				if neg {
					r = &unaryExpr{base: base{pos}, op: "!", x: r}
				}
				l = r
				continue
			}
			typ := ps.tryType()
			if typ == nil {
				ps.fail(ps.tok().pos, "only 'is Type' and 'is null' patterns are supported")
			}
			ie := &isExpr{base: base{pos}, x: l, typ: typ, slot: -1}
			if t := ps.tok(); t.kind == tIdent && !isReservedWord(t.text) {
				name, npos := ps.ident()
				ie.slot = ps.declare(name, npos)
			}
			l = ie
			if neg {
				l = &unaryExpr{base: base{pos}, op: "!", x: l}
			}
		case "as":
			typ := ps.tryType()
			if typ == nil {
				ps.fail(ps.tok().pos, "expected type after as")
			}
			l = &asExpr{base: base{pos}, x: l, typ: typ}
		default:
			l = &binaryExpr{base: base{pos}, op: op, l: l, r: ps.parseBinary(level + 1)}
		}
	}
}

func (ps *parser) parseUnary() node {
	t := ps.tok()
	if t.kind == tOp {
		switch t.text {
		case "!", "-", "+", "~":
			ps.p++
			return &unaryExpr{base: base{t.pos}, op: t.text, x: ps.parseUnary()}
		case "++", "--":
			ps.p++
			x := ps.parseUnary()
			checkAssignable(ps, x)
			return &incDecExpr{base: base{t.pos}, op: t.text, prefix: true, target: x}
		case "(":
			if c := ps.tryCast(); c != nil {
				return c
			}
		}
	}
	return ps.parsePostfix(ps.parsePrimary())
}

// tryCast resolves the (T)x ambiguity: predefined types always cast; other
// names cast only when followed by something that starts an operand.
func (ps *parser) tryCast() node {
	save := ps.p
	pos := ps.tok().pos
	ps.p++
	first := ps.tok()
	typ := ps.tryType()
	if typ == nil || !ps.is(")") {
		ps.p = save
		return nil
	}
	if first.kind == tIdent {
		if _, local := ps.lookup(first.text); local {
			ps.p = save
			return nil
		}
	}
	ps.p++
	nt := ps.tok()
	predefined := isPredefined(typ.name) && len(typ.args) == 0
	startsOperand := nt.kind == tIdent && nt.text != "is" && nt.text != "as" || nt.kind == tString || nt.kind == tInt ||
		nt.kind == tDouble || nt.kind == tChar || nt.kind == tInterp ||
		nt.kind == tOp && (nt.text == "(" || nt.text == "!" || nt.text == "~")
	if !startsOperand && !(predefined && nt.kind == tOp && (nt.text == "-" || nt.text == "+")) {
		ps.p = save
		return nil
	}
	return &castExpr{base: base{pos}, typ: typ, x: ps.parseUnary()}
}

func isPredefined(name string) bool {
	switch name {
	case "string", "int", "long", "bool", "double", "float", "decimal", "object", "byte", "char", "short",
		"uint", "ulong", "sbyte", "ushort", "dynamic":
		return true
	}
	return false
}

func (ps *parser) parsePrimary() node {
	t := ps.tok()
	pos := t.pos
	switch t.kind {
	case tInt, tDouble, tString, tChar:
		ps.p++
		return &litExpr{base: base{pos}, val: t.val}
	case tInterp:
		ps.p++
		return ps.parseInterp(t)
	case tOp:
		if t.text == "(" {
			ps.p++
			x := ps.parseExpr()
			ps.expect(")")
			return x
		}
		ps.fail(pos, "unexpected %s", describe(t))
	case tEOF:
		ps.fail(pos, "unexpected end of expression")
	}
	switch t.text {
	case "true", "false":
		ps.p++
		return &litExpr{base: base{pos}, val: Bool(t.text == "true")}
	case "null":
		ps.p++
		return &litExpr{base: base{pos}, val: Null}
	case "new":
		return ps.parseNew()
	case "default":
		ps.p++
		d := &defaultExpr{base: base{pos}}
		if ps.accept("(") {
			d.typ = ps.tryType()
			ps.expect(")")
		}
		return d
	case "typeof", "nameof", "this", "base", "await", "checked", "unchecked", "stackalloc", "sizeof", "delegate":
		ps.fail(pos, "%s is not supported", t.text)
	case "context":
		if _, local := ps.lookup("context"); !local {
			ps.p++
			return &contextExpr{base{pos}}
		}
	}
	if s, ok := ps.lookup(t.text); ok {
		ps.p++
		return &localExpr{base: base{pos}, slot: s, name: t.text}
	}
	return ps.parseStatic()
}

// parseStatic handles Type.Member and Type.Method(...), with optional
// namespace prefixes (System.Text.Encoding.UTF8).
func (ps *parser) parseStatic() node {
	pos := ps.tok().pos
	name := ps.tok().text
	ps.p++
	for full := name; ps.is(".") && ps.peek(1).kind == tIdent && namespaces[full]; full += "." + name {
		name = ps.peek(1).text
		ps.p += 2
	}
	if a, ok := typeAliases[name]; ok {
		name = a
	}
	if !knownStaticType(name) {
		ps.fail(pos, "unknown identifier %q", name)
	}
	if ps.is("<") {
		ps.fail(ps.tok().pos, "generic type %s<...> is only supported with new", name)
	}
	ps.expect(".")
	member, mpos := ps.ident()
	var targs []*typeRef
	if ps.is("<") {
		targs = ps.tryTypeArgs()
	}
	if ps.is("(") {
		fn := lookupStatic(name, member)
		if fn == nil {
			ps.fail(mpos, "unknown static method %s.%s", name, member)
		}
		c := &callExpr{base: base{mpos}, name: member, targs: targs, static: fn, stType: name}
		ps.parseArgs(c)
		return c
	}
	get := lookupStaticProp(name, member)
	if get == nil {
		ps.fail(mpos, "unknown static member %s.%s", name, member)
	}
	return &staticMember{base: base{mpos}, typ: name, name: member, get: get}
}

// tryTypeArgs parses <T, ...> only when followed by '(' (generic call).
func (ps *parser) tryTypeArgs() []*typeRef {
	save := ps.p
	ps.p++
	var args []*typeRef
	for {
		a := ps.tryType()
		if a == nil {
			ps.p = save
			return nil
		}
		args = append(args, a)
		if !ps.accept(",") {
			break
		}
	}
	if !ps.accept(">") || !ps.is("(") {
		ps.p = save
		return nil
	}
	return args
}

func (ps *parser) parseArgs(c *callExpr) {
	ps.expect("(")
	for !ps.is(")") {
		name := ""
		if ps.tok().kind == tIdent && ps.isAt(1, ":") && !isReservedWord(ps.tok().text) {
			name = ps.tok().text
			ps.p += 2
		}
		out := -1
		if ps.isKw("ref") || ps.isKw("in") {
			ps.fail(ps.tok().pos, "%s arguments are not supported", ps.tok().text)
		}
		if ps.isKw("out") {
			ps.p++
			var pos int
			var aname string
			if ps.isKw("var") || ps.peek(1).kind == tIdent {
				if !ps.isKw("var") && ps.tryType() == nil {
					ps.fail(ps.tok().pos, "expected type")
				} else if ps.isKw("var") {
					ps.p++
				}
				aname, pos = ps.ident()
				out = ps.declare(aname, pos)
			} else {
				aname, pos = ps.ident()
				s, ok := ps.lookup(aname)
				if !ok {
					ps.fail(pos, "unknown local %q", aname)
				}
				out = s
			}
			c.args = append(c.args, &localExpr{base: base{pos}, slot: out, name: aname})
		} else {
			c.args = append(c.args, ps.parseExpr())
		}
		c.names = append(c.names, name)
		c.outs = append(c.outs, out)
		if !ps.accept(",") {
			break
		}
	}
	ps.expect(")")
}

func (ps *parser) parsePostfix(x node) node {
	chain := false // inside a ?. chain: null short-circuits the rest
	for {
		t := ps.tok()
		if t.kind != tOp {
			return x
		}
		switch t.text {
		case ".", "?.":
			ps.p++
			if t.text == "?." {
				chain = true
			}
			name, npos := ps.ident()
			var targs []*typeRef
			if ps.is("<") {
				targs = ps.tryTypeArgs()
			}
			if ps.is("(") {
				if k := staticKind(x); k == KString && !stringMethods[name] {
					ps.fail(npos, "unknown method %s on string", name)
				}
				if !knownMethod(name) {
					ps.fail(npos, "unknown method %s", name)
				}
				c := &callExpr{base: base{npos}, recv: x, name: name, targs: targs, nullCond: chain}
				ps.parseArgs(c)
				x = c
			} else {
				if _, ok := x.(*contextExpr); ok && !contextMembers[name] {
					ps.fail(npos, "unknown member context.%s", name)
				}
				x = &memberExpr{base: base{npos}, x: x, name: name, nullCond: chain}
			}
		case "[", "?[":
			ps.p++
			if t.text == "?[" {
				chain = true
			}
			ix := &indexExpr{base: base{t.pos}, x: x, nullCond: chain}
			for {
				ix.args = append(ix.args, ps.parseExpr())
				if !ps.accept(",") {
					break
				}
			}
			ps.expect("]")
			x = ix
		case "++", "--":
			ps.p++
			checkAssignable(ps, x)
			x = &incDecExpr{base: base{t.pos}, op: t.text, target: x}
		case "(":
			ps.fail(t.pos, "invoking a value as a method is not supported")
		case "!":
			// null-forgiving operator x! is a no-op at run time.
			if n := ps.peek(1); n.kind == tOp && (n.text == "." || n.text == ")" || n.text == ";" || n.text == "[") {
				ps.p++
				continue
			}
			return x
		default:
			return x
		}
	}
}

func (ps *parser) parseInterp(t *token) node {
	ie := &interpExpr{base: base{t.pos}}
	for _, p := range t.parts {
		if !p.isHole {
			ie.parts = append(ie.parts, interpSeg{lit: p.lit})
			continue
		}
		toks, err := lex(ps.src, p.start, p.end)
		if err != nil {
			panic(err)
		}
		sub := &parser{src: ps.src, toks: toks, scopes: ps.scopes, nslots: ps.nslots, loops: ps.loops}
		if sub.tok().kind == tEOF {
			ps.fail(p.start, "empty interpolation hole")
		}
		x := sub.parseExpr()
		if sub.tok().kind != tEOF {
			sub.fail(sub.tok().pos, "unexpected %s in interpolation hole", describe(sub.tok()))
		}
		ps.nslots = sub.nslots
		seg := interpSeg{x: x, format: p.format}
		if p.hasAlign {
			n, ok := parseIntLiteral(p.align)
			if !ok {
				ps.fail(p.start, "invalid alignment %q", p.align)
			}
			seg.align = n
		}
		ie.parts = append(ie.parts, seg)
	}
	return ie
}

func parseIntLiteral(s string) (int, bool) {
	neg := false
	if len(s) > 0 && s[0] == '-' {
		neg, s = true, s[1:]
	}
	if s == "" {
		return 0, false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func (ps *parser) parseNew() node {
	pos := ps.tok().pos
	ps.p++
	if ps.is("{") {
		return ps.parseInitializerNew(pos, &typeRef{name: "object"})
	}
	if ps.is("[") && ps.isAt(1, "]") {
		ps.p += 2
		return ps.parseInitializerNew(pos, &typeRef{name: "object", array: true})
	}
	save := ps.p
	tk := ps.tok()
	typ := ps.tryType()
	if typ == nil {
		ps.fail(tk.pos, "expected type after new")
	}
	if ps.is("[") && !typ.array {
		// new T[n]
		ps.p++
		n := ps.parseExpr()
		ps.expect("]")
		typ.array = true
		return &newExpr{base: base{pos}, typ: typ, arrayLen: n}
	}
	_ = save
	if !typ.array && !knownNewType(typ.name) {
		ps.fail(tk.pos, "new %s is not supported", typ.name)
	}
	if ps.is("(") {
		c := &callExpr{}
		ps.parseArgs(c)
		n := ps.parseInitializerNew(pos, typ)
		n.args = c.args
		return n
	}
	if !ps.is("{") {
		ps.fail(ps.tok().pos, "expected ( or { after new %s", typ.name)
	}
	return ps.parseInitializerNew(pos, typ)
}

// parseInitializerNew parses an optional { ... } initializer: collection
// items, {k, v} pairs, [k] = v index initializers, Name = v members.
func (ps *parser) parseInitializerNew(pos int, typ *typeRef) *newExpr {
	n := &newExpr{base: base{pos}, typ: typ}
	if !ps.accept("{") {
		return n
	}
	if typ.name == "object" && !typ.array {
		n.anon = true
	}
loop:
	for !ps.is("}") {
		var key node
		member := ""
		switch {
		case ps.is("["):
			ps.p++
			key = ps.parseExpr()
			ps.expect("]")
			ps.expect("=")
		case ps.is("{"):
			ps.p++
			key = ps.parseExpr()
			ps.expect(",")
			v := ps.parseExpr()
			ps.expect("}")
			n.keys, n.members, n.items = append(n.keys, key), append(n.members, ""), append(n.items, v)
			if !ps.accept(",") {
				break loop
			}
			continue
		case ps.tok().kind == tIdent && ps.isAt(1, "=") && !ps.isAt(1, "=="):
			member = ps.tok().text
			ps.p += 2
		}
		var v node
		if ps.is("{") && typ.array {
			v = ps.parseInitializerNew(ps.tok().pos, &typeRef{name: typ.name, array: true})
		} else {
			v = ps.parseExpr()
		}
		if n.anon && member == "" && key == nil {
			// new { x.Name } projects the member name.
			switch e := v.(type) {
			case *memberExpr:
				member = e.name
			case *localExpr:
				member = e.name
			default:
				ps.fail(v.position(), "invalid anonymous type member")
			}
		}
		n.keys, n.members, n.items = append(n.keys, key), append(n.members, member), append(n.items, v)
		if !ps.accept(",") {
			break
		}
	}
	ps.expect("}")
	return n
}
