package expr

import (
	"fmt"
	"strings"
	"sync"
)

// Options tune compilation and evaluation.
type Options struct {
	// MaxSteps bounds loop iterations and lambda invocations per evaluation
	// so that a bad policy cannot hang a request. 0 means 1,000,000.
	MaxSteps int
}

// Program is a compiled expression, safe for concurrent Eval.
type Program struct {
	src      string
	root     node
	block    bool
	nslots   int
	maxSteps int
	pool     sync.Pool
}

// Source returns the text the program was compiled from.
func (p *Program) Source() string { return p.src }

// IsBlock reports whether the program is a @{...} statement block.
func (p *Program) IsBlock() bool { return p.block }

// Compile parses and checks a full @(...) or @{...} expression.
func Compile(src string, opts Options) (prog *Program, err error) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(*Error)
			if !ok {
				panic(r)
			}
			prog, err = nil, e
		}
	}()
	lead := len(src) - len(strings.TrimLeft(src, " \t\r\n"))
	end := len(strings.TrimRight(src, " \t\r\n"))
	if end-lead < 3 || src[lead] != '@' || (src[lead+1] != '(' && src[lead+1] != '{') {
		line, col := lineCol(src, lead)
		return nil, &Error{Line: line, Col: col, Msg: "expression must start with @( or @{"}
	}
	toks, lerr := lex(src, lead+1, end)
	if lerr != nil {
		return nil, lerr
	}
	ps := &parser{src: src, toks: toks}
	ps.push()
	p := &Program{src: src, maxSteps: opts.MaxSteps}
	if p.maxSteps <= 0 {
		p.maxSteps = 1_000_000
	}
	if src[lead+1] == '(' {
		ps.p++
		p.root = ps.parseExpr()
		ps.expect(")")
	} else {
		p.block = true
		b := ps.parseBlock()
		if !returns(b) {
			ps.fail(end-1, "not all code paths return a value")
		}
		checkReturns(ps, b)
		p.root = b
	}
	if t := ps.tok(); t.kind != tEOF {
		ps.fail(t.pos, "unexpected %s after end of expression", describe(t))
	}
	p.nslots = ps.nslots
	return p, nil
}

// returns reports whether every path through n ends in return or throw.
func returns(n node) bool {
	switch s := n.(type) {
	case *returnStmt, *throwStmt:
		return true
	case *blockStmt:
		for _, st := range s.stmts {
			if returns(st) {
				return true
			}
		}
	case *ifStmt:
		return s.els_ != nil && returns(s.then) && returns(s.els_)
	case *tryStmt:
		if s.finally != nil && returns(s.finally) {
			return true
		}
		return returns(s.body) && (s.catchBody == nil || returns(s.catchBody))
	case *whileStmt:
		if l, ok := s.c.(*litExpr); ok && l.val.k == KBool && l.val.n == 1 {
			return !hasBreak(s.body)
		}
	case *forStmt:
		return s.cond == nil && !hasBreak(s.body)
	case *switchStmt:
		def := false
		for _, c := range s.cases {
			def = def || c.isDefault
			if !returns(&blockStmt{stmts: c.body}) {
				return false
			}
		}
		return def
	}
	return false
}

func hasBreak(n node) bool {
	switch s := n.(type) {
	case *breakStmt:
		return true
	case *blockStmt:
		for _, st := range s.stmts {
			if hasBreak(st) {
				return true
			}
		}
	case *ifStmt:
		return hasBreak(s.then) || s.els_ != nil && hasBreak(s.els_)
	case *tryStmt:
		return hasBreak(s.body) || s.catchBody != nil && hasBreak(s.catchBody)
	}
	return false
}

// checkReturns rejects "return;" because a policy block must yield a value.
func checkReturns(ps *parser, n node) {
	switch s := n.(type) {
	case *returnStmt:
		if s.x == nil {
			ps.fail(s.pos, "return must have a value")
		}
	case *blockStmt:
		for _, st := range s.stmts {
			checkReturns(ps, st)
		}
	case *ifStmt:
		checkReturns(ps, s.then)
		if s.els_ != nil {
			checkReturns(ps, s.els_)
		}
	case *foreachStmt:
		checkReturns(ps, s.body)
	case *forStmt:
		checkReturns(ps, s.body)
	case *whileStmt:
		checkReturns(ps, s.body)
	case *tryStmt:
		checkReturns(ps, s.body)
		if s.catchBody != nil {
			checkReturns(ps, s.catchBody)
		}
		if s.finally != nil {
			checkReturns(ps, s.finally)
		}
	case *switchStmt:
		for _, c := range s.cases {
			for _, st := range c.body {
				checkReturns(ps, st)
			}
		}
	}
}

// Instance method names known to the runtime; a call to anything else is
// rejected at load time instead of failing per request.
var instanceMethods = setOf(`GetValueOrDefault ContainsKey TryGetValue As ToString Split Equals Contains
	Substring Replace StartsWith EndsWith Trim TrimStart TrimEnd ToLower ToUpper ToLowerInvariant ToUpperInvariant
	IndexOf LastIndexOf PadLeft PadRight Insert Remove IndexOfAny CompareTo ToCharArray Normalize
	AsJwt TryParseJwt AsBasic TryParseBasic ToUri AsFormUrlEncodedContent
	Value Values SelectToken Property Properties Add Remove Children Count First FirstOrDefault Last LastOrDefault
	Any All Where Select ToArray ToList OrderBy OrderByDescending Single SingleOrDefault Skip Take Distinct Sum Max Min
	Concat Reverse ElementAt ElementAtOrDefault Aggregate SelectMany GroupBy Cast OfType ToDictionary Exists
	Keys GetBytes GetString AddSeconds AddMinutes AddHours AddDays AddMilliseconds AddMonths AddYears Add Subtract
	ToUnixTimeSeconds ToUnixTimeMilliseconds ToUniversalTime ToLocalTime GetType HasValues ToObject
	AddFirst Merge DeepClone Clear Insert IndexOf Trace GetValue Append AppendLine Set Item ContainsValue
	Next NextDouble ToByteArray GetHashCode Join ToHashSet Match Matches IsMatch AddRange RemoveAt`)

var stringMethods = setOf(`ToString Split Equals Contains Substring Replace StartsWith EndsWith Trim TrimStart
	TrimEnd ToLower ToUpper ToLowerInvariant ToUpperInvariant IndexOf LastIndexOf PadLeft PadRight Insert Remove
	IndexOfAny CompareTo ToCharArray Normalize AsJwt TryParseJwt AsBasic TryParseBasic GetType
	Any All Where Select First FirstOrDefault Last LastOrDefault Count ToArray ToList Skip Take Distinct Reverse
	Concat ElementAt ElementAtOrDefault GetHashCode`)

func setOf(s string) map[string]bool {
	m := map[string]bool{}
	for _, f := range strings.Fields(s) {
		m[f] = true
	}
	return m
}

func knownMethod(name string) bool { return instanceMethods[name] }

// staticKind infers the C# type of an expression where it is evident
// without full type checking, to report "unknown method X on string".
func staticKind(n node) Kind {
	switch x := n.(type) {
	case *litExpr:
		return x.val.k
	case *interpExpr:
		return KString
	case *castExpr:
		if x.typ.name == "string" && !x.typ.array {
			return KString
		}
	case *callExpr:
		if x.static == nil && x.recv != nil && staticKind(x.recv) == KString {
			switch x.name {
			case "ToString", "Substring", "Replace", "Trim", "TrimStart", "TrimEnd", "ToLower", "ToUpper",
				"ToLowerInvariant", "ToUpperInvariant", "PadLeft", "PadRight", "Insert", "Remove":
				return KString
			}
		}
		if x.name == "ToString" && len(x.args) == 0 && x.static == nil {
			return KString
		}
	}
	return KNull
}

var newTypes = setOf(`JObject JArray JProperty JValue List Dictionary HashSet string object Uri DateTime DateTimeOffset
	TimeSpan StringBuilder Random Guid Exception KeyValuePair`)

func knownNewType(name string) bool { return newTypes[name] }

// RuntimeError is an evaluation failure (APIM's
// ExpressionValueEvaluationFailure) with the position of the failing node.
type RuntimeError struct {
	Line, Col int
	Msg       string
}

func (e *RuntimeError) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg) }
