package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/expr"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
)

// A Liquid subset for set-body template="liquid" (set-body-policy.md,
// "Using Liquid templates with set-body"): {{ output | Filter: args }},
// {% if/elsif/else/endif %}, {% unless %}, {% for x in list %} (limit,
// offset, reversed, forloop.*, else), {% assign %}, {% comment %},
// {% raw %}, and whitespace control ({{- -}}). Filters use the Pascal
// case API Management requires ("C# mode"). The template compiles at
// load; anything else is a load-time error with its line and column.

// --- compile: set-body template ------------------------------------------------

type liquidBody struct {
	meta
	tpl *liquidTemplate
}

// compileSetBodyTemplate compiles set-body with a template attribute.
func compileSetBodyTemplate(c *compiler, el *policyxml.Element, m meta, template string) (Step, error) {
	if template != "liquid" {
		c.unsupported(el, "template "+template+": the only template API Management defines is liquid")
		return nil, nil
	}
	if a, ok := el.Attr("xsi-nil"); ok && a.Value != "blank" && a.Value != "null" {
		return nil, fmt.Errorf("attribute xsi-nil must be blank or null, found %q", a.Value)
	}
	if _, err := boolAttr(el, "parse-date", true); err != nil {
		return nil, err
	}
	src := el.Text
	if len(el.Children) > 0 {
		src = strings.TrimSpace(el.Inner)
	}
	tpl, err := parseLiquid(src)
	if err != nil {
		return nil, err
	}
	return &liquidBody{meta: m, tpl: tpl}, nil
}

// Exec renders the template over the message body and context. The body
// binds when its Content-Type is JSON (application/json, text/json,
// +json), as the reference requires; an XML body does not bind here (a
// documented difference: body is empty). xsi-nil and parse-date only
// matter for XML bodies and .NET dates, so they are accepted and ignored.
func (s *liquidBody) Exec(r *Request) error {
	var raw []byte
	var ct string
	if r.section == Outbound || r.section == OnError {
		raw, ct = r.Ctx.Response.Body(), string(r.Ctx.Response.Header.ContentType())
	} else {
		b, err := r.RequestBody()
		if err != nil {
			return err
		}
		raw, ct = b, string(r.Ctx.Request.Header.ContentType())
	}
	var body any
	if mediaIs(ct, "json") && len(raw) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if dec.Decode(&body) != nil {
			body = nil
		}
	}
	out := s.tpl.render(liquidRoot{body: body, ctx: liquidContext{r}})
	if r.section == Outbound || r.section == OnError {
		r.Ctx.Response.SetBodyRaw(out)
		return nil
	}
	r.Ctx.Request.SetBodyRaw(out)
	return nil
}

// --- the context object --------------------------------------------------------

// liquidObject is a value with named members (context and its parts).
type liquidObject interface{ member(name string) any }

type liquidRoot struct {
	body any
	ctx  liquidContext
}

type liquidContext struct{ r *Request }
type liquidRequest struct{ r *Request }
type liquidResponse struct{ r *Request }
type liquidURL struct{ r *Request }
type liquidLookup func(name string) any

func (f liquidLookup) member(name string) any { return f(name) }

// member follows the context object of the reference; Variables,
// Subscription, Api, Operation and Product are added the way policy
// expressions name them.
func (c liquidContext) member(name string) any {
	r := c.r
	switch name {
	case "Request":
		return liquidRequest{r}
	case "Response":
		if !r.Forwarded && r.section != Outbound && r.section != OnError {
			return nil
		}
		return liquidResponse{r}
	case "Variables":
		return liquidLookup(func(k string) any {
			v, ok := exprVars{r}.Get(k)
			if !ok {
				return nil
			}
			return liquidFromExpr(v)
		})
	case "RequestId":
		return string(r.Info.RequestID)
	case "Subscription":
		if s := r.Info.Subscription; s != nil {
			return map[string]any{"Id": s.Id, "Name": s.Name}
		}
	case "Api":
		if a := r.Info.API; a != nil {
			return map[string]any{"Id": a.Id, "Name": a.Name, "Path": a.Path, "Version": a.Version, "Revision": a.Revision}
		}
	case "Operation":
		if o := r.Info.Operation; o != nil {
			return map[string]any{"Id": o.Id, "Name": o.Name, "Method": o.Method, "UrlTemplate": o.UrlTemplate}
		}
	case "Product":
		if p := r.Info.Product; p != nil {
			return map[string]any{"Id": p.Id, "Name": p.Name}
		}
	}
	return nil
}

func (q liquidRequest) member(name string) any {
	e := exprRequest(q)
	switch name {
	case "Method", "OriginalMethod":
		return e.Method()
	case "Url", "OriginalUrl":
		return liquidURL(q)
	case "IpAddress":
		return e.IpAddress()
	case "MatchedParameters":
		return liquidLookup(func(k string) any {
			if v, ok := e.MatchedParameters().Get(k); ok {
				return v
			}
			return nil
		})
	case "Headers":
		return liquidMulti(e.Headers())
	case "HasBody":
		return len(q.r.Ctx.Request.Body()) > 0
	}
	return nil
}

func (s liquidResponse) member(name string) any {
	e := exprResponse(s)
	switch name {
	case "StatusCode":
		return int64(e.StatusCode())
	case "StatusReason":
		return e.StatusReason()
	case "Headers":
		return liquidMulti(e.Headers())
	}
	return nil
}

func (u liquidURL) member(name string) any {
	e := exprURL(u)
	switch name {
	case "Scheme":
		return e.Scheme()
	case "Host":
		return e.Host()
	case "Port":
		return int64(e.Port())
	case "Path":
		return e.Path()
	case "QueryString":
		return e.QueryString()
	case "Query":
		return liquidMulti(e.Query())
	case "ToString", "ToUri":
		return e.Scheme() + "://" + string(u.r.Ctx.Host()) + e.Path() + e.QueryString()
	}
	return nil
}

// liquidMulti exposes headers or query parameters; a name with several
// values reads as them joined with ", " (inferred: how the gateway
// presents a multi-valued header as one string).
func liquidMulti(m expr.MultiMap) liquidLookup {
	return func(k string) any {
		if v, ok := m.Get(k); ok {
			return strings.Join(v, ", ")
		}
		return nil
	}
}

func liquidFromExpr(v expr.Value) any {
	switch v.Kind() {
	case expr.KNull:
		return nil
	case expr.KBool:
		return v.Bool()
	case expr.KInt:
		return v.Int()
	case expr.KDouble:
		return v.Float()
	}
	return v.String()
}

// --- parse -------------------------------------------------------------------------

type liquidTemplate struct{ nodes []lnode }

// lnode is one piece of a template.
type lnode interface{}

type ltext struct{ s string }
type loutput struct{ e *lfiltered }
type lif struct {
	conds    []lcond // the if and elsif conditions; a nil cond is else
	branches [][]lnode
}
type lfor struct {
	v          string
	list       lexpr
	limit, off lexpr
	reversed   bool
	body, els  []lnode
}
type lassign struct {
	name string
	e    *lfiltered
}

// lexpr is a value: a literal or a path.
type lexpr struct {
	lit     any
	isLit   bool
	path    []lseg
	isRange bool
	from    *lexpr
	to      *lexpr
}

type lseg struct {
	name string // a member name, or "" with idx set
	idx  *lexpr
}

type lfiltered struct {
	e       lexpr
	filters []lfilterCall
}

type lfilterCall struct {
	f    liquidFilter
	args []lexpr
}

// lcond is an and/or chain of comparisons (Liquid: right to left, no
// precedence).
type lcond struct {
	left  lexpr
	op    string // "", "==", "!=", "<", ">", "<=", ">=", "contains"
	right lexpr
	join  string // "and", "or", "" for the last
	next  *lcond
	not   bool // unless
}

type liquidError struct {
	line, col int
	msg       string
}

func (e *liquidError) Error() string {
	return fmt.Sprintf("liquid template line %d, column %d: %s", e.line, e.col, e.msg)
}

var rawEnd = regexp.MustCompile(`\{%-?\s*endraw\s*-?%\}`)

type liquidParser struct {
	src  string
	toks []ltok
	i    int // the next token
}

type ltok struct {
	kind  byte // 't' text, 'o' output, 'g' tag
	s     string
	pos   int
	trimL bool
	trimR bool
}

func (p *liquidParser) errAt(pos int, format string, args ...any) *liquidError {
	line, col := 1, 1
	for _, c := range p.src[:min(pos, len(p.src))] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return &liquidError{line: line, col: col, msg: fmt.Sprintf(format, args...)}
}

func parseLiquid(src string) (*liquidTemplate, error) {
	p := &liquidParser{src: src}
	if err := p.lex(); err != nil {
		return nil, err
	}
	nodes, end, err := p.block()
	if err != nil {
		return nil, err
	}
	if end != nil {
		return nil, p.errAt(end.pos, "{%% %s %%} without an opening tag", tagName(end.s))
	}
	return &liquidTemplate{nodes: nodes}, nil
}

func (p *liquidParser) lex() error {
	s := p.src
	i := 0
	for i < len(s) {
		j := strings.Index(s[i:], "{{")
		if k := strings.Index(s[i:], "{%"); k >= 0 && (j < 0 || k < j) {
			j = k
		}
		if j < 0 {
			p.toks = append(p.toks, ltok{kind: 't', s: s[i:], pos: i})
			break
		}
		if j > 0 {
			p.toks = append(p.toks, ltok{kind: 't', s: s[i : i+j], pos: i})
		}
		start := i + j
		closer, kind := "}}", byte('o')
		if s[start+1] == '%' {
			closer, kind = "%}", 'g'
		}
		k := strings.Index(s[start+2:], closer)
		if k < 0 {
			return p.errAt(start, "%s is not closed with %s", s[start:start+2], closer)
		}
		inner := s[start+2 : start+2+k]
		t := ltok{kind: kind, pos: start}
		if strings.HasPrefix(inner, "-") {
			t.trimL, inner = true, inner[1:]
		}
		if strings.HasSuffix(inner, "-") {
			t.trimR, inner = true, inner[:len(inner)-1]
		}
		t.s = strings.TrimSpace(inner)
		p.toks = append(p.toks, t)
		i = start + 2 + k + 2
		if kind == 'g' && tagName(t.s) == "raw" {
			end := rawEnd.FindStringIndex(s[i:])
			if end == nil {
				return p.errAt(start, "{%% raw %%} without {%% endraw %%}")
			}
			p.toks = append(p.toks, ltok{kind: 't', s: s[i : i+end[0]], pos: i}, ltok{kind: 'g', s: "endraw", pos: i + end[0]})
			i += end[1]
		}
	}
	// whitespace control
	for n := range p.toks {
		t := &p.toks[n]
		if t.kind == 't' {
			continue
		}
		if t.trimL && n > 0 && p.toks[n-1].kind == 't' {
			p.toks[n-1].s = strings.TrimRightFunc(p.toks[n-1].s, unicode.IsSpace)
		}
		if t.trimR && n+1 < len(p.toks) && p.toks[n+1].kind == 't' {
			p.toks[n+1].s = strings.TrimLeftFunc(p.toks[n+1].s, unicode.IsSpace)
		}
	}
	return nil
}

func tagName(s string) string {
	if i := strings.IndexFunc(s, unicode.IsSpace); i >= 0 {
		return s[:i]
	}
	return s
}

// block parses nodes up to a closing or middle tag (endif, else, ...),
// which it returns unconsumed-as-node.
func (p *liquidParser) block() ([]lnode, *ltok, error) {
	var nodes []lnode
	for p.i < len(p.toks) {
		t := p.toks[p.i]
		p.i++
		switch t.kind {
		case 't':
			if t.s != "" {
				nodes = append(nodes, ltext{s: t.s})
			}
		case 'o':
			f, err := p.filtered(t.s, t.pos)
			if err != nil {
				return nil, nil, err
			}
			nodes = append(nodes, loutput{e: f})
		case 'g':
			name := tagName(t.s)
			args := strings.TrimSpace(t.s[len(name):])
			switch name {
			case "endif", "endunless", "endfor", "else", "elsif", "endcomment", "endraw":
				return nodes, &t, nil
			case "if", "unless":
				n, err := p.ifTag(name, args, t.pos)
				if err != nil {
					return nil, nil, err
				}
				nodes = append(nodes, n)
			case "for":
				n, err := p.forTag(args, t.pos)
				if err != nil {
					return nil, nil, err
				}
				nodes = append(nodes, n)
			case "assign":
				eq := strings.IndexByte(args, '=')
				if eq < 0 || !isIdent(strings.TrimSpace(args[:eq])) {
					return nil, nil, p.errAt(t.pos, "assign needs a name = value")
				}
				f, err := p.filtered(args[eq+1:], t.pos)
				if err != nil {
					return nil, nil, err
				}
				nodes = append(nodes, lassign{name: strings.TrimSpace(args[:eq]), e: f})
			case "comment":
				if _, end, err := p.block(); err != nil {
					return nil, nil, err
				} else if end == nil || tagName(end.s) != "endcomment" {
					return nil, nil, p.errAt(t.pos, "{%% comment %%} without {%% endcomment %%}")
				}
			case "raw":
				body, end, err := p.block()
				if err != nil {
					return nil, nil, err
				}
				if end == nil || end.s != "endraw" {
					return nil, nil, p.errAt(t.pos, "{%% raw %%} without {%% endraw %%}")
				}
				nodes = append(nodes, body...)
			default:
				return nil, nil, p.errAt(t.pos, "the tag %q is not supported by this gateway", name)
			}
		}
	}
	return nodes, nil, nil
}

func (p *liquidParser) ifTag(name, args string, pos int) (lnode, error) {
	n := &lif{}
	c, err := p.cond(args, pos)
	if err != nil {
		return nil, err
	}
	if name == "unless" {
		c = &lcond{left: lexpr{}, not: true, next: c, join: "not"}
	}
	cur := c
	seenElse := false
	for {
		body, end, err := p.block()
		if err != nil {
			return nil, err
		}
		n.conds = append(n.conds, derefCond(cur))
		n.branches = append(n.branches, body)
		if end == nil {
			return nil, p.errAt(pos, "{%% %s %%} without {%% end%s %%}", name, name)
		}
		en := tagName(end.s)
		switch {
		case en == "end"+name:
			return n, nil
		case en == "elsif" && name == "if" && !seenElse:
			cur, err = p.cond(strings.TrimSpace(end.s[len("elsif"):]), end.pos)
			if err != nil {
				return nil, err
			}
		case en == "else" && !seenElse:
			seenElse, cur = true, nil
		default:
			return nil, p.errAt(end.pos, "unexpected {%% %s %%} in {%% %s %%}", en, name)
		}
	}
}

func derefCond(c *lcond) lcond {
	if c == nil {
		return lcond{op: "else"}
	}
	return *c
}

func (p *liquidParser) forTag(args string, pos int) (lnode, error) {
	words := lsplit(args)
	if len(words) < 3 || !isIdent(words[0]) || words[1] != "in" {
		return nil, p.errAt(pos, "for needs: for item in list")
	}
	n := &lfor{v: words[0]}
	var err error
	if n.list, err = p.expr(words[2], pos); err != nil {
		return nil, err
	}
	for _, w := range words[3:] {
		switch {
		case w == "reversed":
			n.reversed = true
		case strings.HasPrefix(w, "limit:"):
			if n.limit, err = p.expr(strings.TrimSpace(w[len("limit:"):]), pos); err != nil {
				return nil, err
			}
		case strings.HasPrefix(w, "offset:"):
			if n.off, err = p.expr(strings.TrimSpace(w[len("offset:"):]), pos); err != nil {
				return nil, err
			}
		default:
			return nil, p.errAt(pos, "unknown for parameter %q", w)
		}
	}
	body, end, err := p.block()
	if err != nil {
		return nil, err
	}
	if end != nil && tagName(end.s) == "else" {
		n.body = body
		if body, end, err = p.block(); err != nil {
			return nil, err
		}
		n.els = body
	} else {
		n.body = body
	}
	if end == nil || tagName(end.s) != "endfor" {
		return nil, p.errAt(pos, "{%% for %%} without {%% endfor %%}")
	}
	return n, nil
}

// lsplit splits on spaces outside quotes, keeping "limit: 2" together.
func lsplit(s string) []string {
	var out []string
	var cur strings.Builder
	var q rune
	for _, r := range s {
		switch {
		case q != 0:
			cur.WriteRune(r)
			if r == q {
				q = 0
			}
		case r == '"' || r == '\'':
			q = r
			cur.WriteRune(r)
		case unicode.IsSpace(r):
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	// join "limit:" "2"
	var joined []string
	for i := 0; i < len(out); i++ {
		if strings.HasSuffix(out[i], ":") && i+1 < len(out) {
			joined = append(joined, out[i]+out[i+1])
			i++
			continue
		}
		joined = append(joined, out[i])
	}
	return joined
}

var liquidOps = []string{"==", "!=", "<>", "<=", ">=", "<", ">", "contains"}

func (p *liquidParser) cond(s string, pos int) (*lcond, error) {
	words := lsplit(s)
	if len(words) == 0 {
		return nil, p.errAt(pos, "a condition is missing")
	}
	var head, cur *lcond
	for i := 0; i < len(words); {
		c := &lcond{}
		var err error
		if c.left, err = p.expr(words[i], pos); err != nil {
			return nil, err
		}
		i++
		if i < len(words) && contains(liquidOps, words[i]) {
			c.op = words[i]
			if c.op == "<>" {
				c.op = "!="
			}
			if i+1 >= len(words) {
				return nil, p.errAt(pos, "%s needs a right operand", c.op)
			}
			if c.right, err = p.expr(words[i+1], pos); err != nil {
				return nil, err
			}
			i += 2
		}
		if head == nil {
			head = c
		} else {
			cur.next = c
		}
		cur = c
		if i < len(words) {
			if words[i] != "and" && words[i] != "or" {
				return nil, p.errAt(pos, "unexpected %q in a condition (operators: ==, !=, <, >, <=, >=, contains, and, or)", words[i])
			}
			c.join = words[i]
			i++
			if i >= len(words) {
				return nil, p.errAt(pos, "%s needs a right operand", c.join)
			}
		}
	}
	return head, nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || unicode.IsLetter(r) || (i > 0 && (unicode.IsDigit(r) || r == '-'))) {
			return false
		}
	}
	return true
}

// expr parses a literal, a path (a.b[0]["c"]) or a range (1..n).
func (p *liquidParser) expr(s string, pos int) (lexpr, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return lexpr{}, p.errAt(pos, "a value is missing")
	}
	switch s {
	case "true":
		return lexpr{lit: true, isLit: true}, nil
	case "false":
		return lexpr{lit: false, isLit: true}, nil
	case "nil", "null":
		return lexpr{isLit: true}, nil
	case "empty", "blank":
		return lexpr{lit: liquidEmpty{}, isLit: true}, nil
	}
	if s[0] == '"' || s[0] == '\'' {
		if len(s) < 2 || s[len(s)-1] != s[0] || strings.IndexByte(s[1:len(s)-1], s[0]) >= 0 {
			return lexpr{}, p.errAt(pos, "malformed string %s", s)
		}
		return lexpr{lit: s[1 : len(s)-1], isLit: true}, nil
	}
	if s[0] == '-' || (s[0] >= '0' && s[0] <= '9') {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return lexpr{lit: i, isLit: true}, nil
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return lexpr{lit: f, isLit: true}, nil
		}
		return lexpr{}, p.errAt(pos, "malformed number %s", s)
	}
	if s[0] == '(' && s[len(s)-1] == ')' {
		a, b, ok := strings.Cut(s[1:len(s)-1], "..")
		if !ok {
			return lexpr{}, p.errAt(pos, "malformed range %s", s)
		}
		from, err := p.expr(a, pos)
		if err != nil {
			return lexpr{}, err
		}
		to, err := p.expr(b, pos)
		if err != nil {
			return lexpr{}, err
		}
		return lexpr{isRange: true, from: &from, to: &to}, nil
	}
	var e lexpr
	rest := s
	for rest != "" {
		switch {
		case rest[0] == '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return lexpr{}, p.errAt(pos, "'[' without ']' in %s", s)
			}
			idx, err := p.expr(rest[1:end], pos)
			if err != nil {
				return lexpr{}, err
			}
			e.path = append(e.path, lseg{idx: &idx})
			rest = rest[end+1:]
		case rest[0] == '.' && len(e.path) > 0:
			rest = rest[1:]
		default:
			n := strings.IndexAny(rest, ".[")
			if n < 0 {
				n = len(rest)
			}
			if !isIdent(rest[:n]) {
				return lexpr{}, p.errAt(pos, "%q is not a value (a name, a string, a number)", s)
			}
			e.path = append(e.path, lseg{name: rest[:n]})
			rest = rest[n:]
		}
	}
	return e, nil
}

// filtered parses "value | Filter: a, b | Filter".
func (p *liquidParser) filtered(s string, pos int) (*lfiltered, error) {
	parts := splitOutside(s, '|')
	e, err := p.expr(parts[0], pos)
	if err != nil {
		return nil, err
	}
	f := &lfiltered{e: e}
	for _, part := range parts[1:] {
		name, argStr, _ := strings.Cut(part, ":")
		name = strings.TrimSpace(name)
		def, ok := liquidFilters[name]
		if !ok {
			hint := ""
			for k := range liquidFilters {
				if strings.EqualFold(strings.ReplaceAll(name, "_", ""), k) {
					hint = fmt.Sprintf(" (API Management filters use Pascal case: %s)", k)
				}
			}
			return nil, p.errAt(pos, "the filter %q is not supported%s", name, hint)
		}
		call := lfilterCall{f: def}
		if strings.TrimSpace(argStr) != "" {
			for _, a := range splitOutside(argStr, ',') {
				ae, err := p.expr(a, pos)
				if err != nil {
					return nil, err
				}
				call.args = append(call.args, ae)
			}
		}
		if len(call.args) < def.min || len(call.args) > def.max {
			return nil, p.errAt(pos, "the filter %s takes %d to %d arguments, found %d", name, def.min, def.max, len(call.args))
		}
		f.filters = append(f.filters, call)
	}
	return f, nil
}

func splitOutside(s string, sep byte) []string {
	var out []string
	var q byte
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			q = c
		case c == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// --- render ------------------------------------------------------------------------

type liquidEmpty struct{}

type liquidScope struct {
	root liquidRoot
	vars map[string]any
	out  bytes.Buffer
}

func (t *liquidTemplate) render(root liquidRoot) []byte {
	sc := &liquidScope{root: root, vars: map[string]any{}}
	sc.nodes(t.nodes)
	return sc.out.Bytes()
}

func (sc *liquidScope) nodes(ns []lnode) {
	for _, n := range ns {
		switch n := n.(type) {
		case ltext:
			sc.out.WriteString(n.s)
		case loutput:
			sc.out.WriteString(liquidString(sc.filtered(n.e)))
		case lassign:
			sc.vars[n.name] = sc.filtered(n.e)
		case *lif:
			for i, c := range n.conds {
				if c.op == "else" || sc.cond(&c) {
					sc.nodes(n.branches[i])
					break
				}
			}
		case *lfor:
			sc.forLoop(n)
		}
	}
}

func (sc *liquidScope) forLoop(n *lfor) {
	var items []any
	switch v := sc.eval(n.list).(type) {
	case []any:
		items = append(items, v...)
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			items = append(items, []any{k, v[k]})
		}
	}
	if n.off.path != nil || n.off.isLit {
		if o, ok := liquidInt(sc.eval(n.off)); ok && o > 0 {
			items = items[min(int(o), len(items)):]
		}
	}
	if n.limit.path != nil || n.limit.isLit {
		if l, ok := liquidInt(sc.eval(n.limit)); ok && l >= 0 && int(l) < len(items) {
			items = items[:l]
		}
	}
	if n.reversed {
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
	}
	if len(items) == 0 {
		sc.nodes(n.els)
		return
	}
	saved, had := sc.vars[n.v]
	savedLoop, hadLoop := sc.vars["forloop"]
	for i, it := range items {
		sc.vars[n.v] = it
		sc.vars["forloop"] = map[string]any{
			"index": int64(i + 1), "index0": int64(i), "first": i == 0, "last": i == len(items)-1,
			"length": int64(len(items)), "rindex": int64(len(items) - i), "rindex0": int64(len(items) - i - 1),
		}
		sc.nodes(n.body)
	}
	restore := func(k string, v any, ok bool) {
		if ok {
			sc.vars[k] = v
		} else {
			delete(sc.vars, k)
		}
	}
	restore(n.v, saved, had)
	restore("forloop", savedLoop, hadLoop)
}

func (sc *liquidScope) cond(c *lcond) bool {
	if c.join == "not" {
		return !sc.cond(c.next)
	}
	v := sc.compare(c)
	switch c.join {
	case "and":
		return v && sc.cond(c.next)
	case "or":
		return v || sc.cond(c.next)
	}
	return v
}

func (sc *liquidScope) compare(c *lcond) bool {
	l := sc.eval(c.left)
	if c.op == "" {
		return liquidTruthy(l)
	}
	r := sc.eval(c.right)
	switch c.op {
	case "==":
		return liquidEqual(l, r)
	case "!=":
		return !liquidEqual(l, r)
	case "contains":
		switch lv := l.(type) {
		case string:
			return strings.Contains(lv, liquidString(r))
		case []any:
			for _, it := range lv {
				if liquidEqual(it, r) {
					return true
				}
			}
		}
		return false
	}
	lf, lok := liquidNum(l)
	rf, rok := liquidNum(r)
	var cmp int
	switch {
	case lok && rok:
		cmp = compareFloat(lf, rf)
	default:
		ls, lIsStr := l.(string)
		rs, rIsStr := r.(string)
		if !lIsStr || !rIsStr {
			return false
		}
		cmp = strings.Compare(ls, rs)
	}
	switch c.op {
	case "<":
		return cmp < 0
	case ">":
		return cmp > 0
	case "<=":
		return cmp <= 0
	case ">=":
		return cmp >= 0
	}
	return false
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (sc *liquidScope) filtered(f *lfiltered) any {
	v := sc.eval(f.e)
	for _, call := range f.filters {
		args := make([]any, len(call.args))
		for i, a := range call.args {
			args[i] = sc.eval(a)
		}
		v = call.f.fn(v, args)
	}
	return v
}

func (sc *liquidScope) eval(e lexpr) any {
	if e.isLit {
		return e.lit
	}
	if e.isRange {
		from, _ := liquidInt(sc.eval(*e.from))
		to, _ := liquidInt(sc.eval(*e.to))
		var out []any
		for i := from; i <= to && len(out) < 100000; i++ {
			out = append(out, i)
		}
		return out
	}
	if len(e.path) == 0 {
		return nil
	}
	var cur any
	first := e.path[0].name
	if v, ok := sc.vars[first]; ok {
		cur = v
	} else {
		switch first {
		case "body":
			cur = sc.root.body
		case "context":
			cur = sc.root.ctx
		default:
			return nil
		}
	}
	for _, seg := range e.path[1:] {
		if seg.idx != nil {
			cur = liquidIndex(cur, sc.eval(*seg.idx))
		} else {
			cur = liquidMember(cur, seg.name)
		}
		if cur == nil {
			return nil
		}
	}
	return cur
}

func liquidMember(v any, name string) any {
	switch v := v.(type) {
	case map[string]any:
		if m, ok := v[name]; ok {
			return m
		}
		if name == "size" {
			return int64(len(v))
		}
	case liquidObject:
		return v.member(name)
	case []any:
		switch name {
		case "size":
			return int64(len(v))
		case "first":
			if len(v) > 0 {
				return v[0]
			}
		case "last":
			if len(v) > 0 {
				return v[len(v)-1]
			}
		}
	case string:
		if name == "size" {
			return int64(len([]rune(v)))
		}
	}
	return nil
}

func liquidIndex(v, idx any) any {
	switch v := v.(type) {
	case []any:
		if i, ok := liquidInt(idx); ok {
			if i < 0 {
				i += int64(len(v))
			}
			if i >= 0 && i < int64(len(v)) {
				return v[i]
			}
		}
		return nil
	}
	if s, ok := idx.(string); ok {
		return liquidMember(v, s)
	}
	return nil
}

func liquidTruthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	}
	return true
}

func liquidIsEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

func liquidEqual(a, b any) bool {
	if _, ok := b.(liquidEmpty); ok {
		return liquidIsEmpty(a)
	}
	if _, ok := a.(liquidEmpty); ok {
		return liquidIsEmpty(b)
	}
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	af, aok := liquidNum(a)
	bf, bok := liquidNum(b)
	if aok && bok {
		return af == bf
	}
	if _, isStr := a.(string); isStr {
		if _, isNum := liquidNum(b); isNum {
			return false
		}
	}
	switch av := a.(type) {
	case bool:
		bv, ok := b.(bool)
		return ok && av == bv
	case string:
		bv, ok := b.(string)
		return ok && av == bv
	}
	return liquidString(a) == liquidString(b)
}

// liquidNum reads a number (not a numeric string).
func liquidNum(v any) (float64, bool) {
	switch v := v.(type) {
	case int64:
		return float64(v), true
	case float64:
		return v, true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	}
	return 0, false
}

// liquidToNum reads a number, parsing strings, for arithmetic filters.
func liquidToNum(v any) (float64, bool) {
	if f, ok := liquidNum(v); ok {
		return f, true
	}
	if s, ok := v.(string); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		return f, err == nil
	}
	return 0, false
}

func liquidInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i, true
		}
	}
	if f, ok := liquidToNum(v); ok && f == math.Trunc(f) {
		return int64(f), true
	}
	return 0, false
}

// liquidString renders a value: nil is empty, a list its items joined,
// an object its JSON (inferred).
func liquidString(v any) string {
	switch v := v.(type) {
	case nil, liquidEmpty:
		return ""
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case json.Number:
		return v.String()
	case []any:
		var b strings.Builder
		for _, it := range v {
			b.WriteString(liquidString(it))
		}
		return b.String()
	case map[string]any:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if enc.Encode(v) == nil {
			return strings.TrimSuffix(b.String(), "\n")
		}
	}
	return ""
}

// --- filters -----------------------------------------------------------------------

type liquidFilter struct {
	min, max int
	fn       func(v any, args []any) any
}

func strFilter(f func(string) string) liquidFilter {
	return liquidFilter{fn: func(v any, _ []any) any { return f(liquidString(v)) }}
}

func numFilter(f func(a, b float64) (float64, bool)) liquidFilter {
	return liquidFilter{min: 1, max: 1, fn: func(v any, args []any) any {
		a, ok1 := liquidToNum(v)
		b, ok2 := liquidToNum(args[0])
		if !ok1 || !ok2 {
			return nil
		}
		r, ok := f(a, b)
		if !ok {
			return nil
		}
		_, aInt := liquidInt(v)
		_, bInt := liquidInt(args[0])
		if aInt && bInt && r == math.Trunc(r) && math.Abs(r) < 1<<53 {
			return int64(r)
		}
		return r
	}}
}

// liquidFilters are the supported filters of set-body-policy.md's list,
// with their argument counts.
var liquidFilters = map[string]liquidFilter{
	"Default": {min: 1, max: 1, fn: func(v any, a []any) any {
		if !liquidTruthy(v) || liquidIsEmpty(v) {
			return a[0]
		}
		return v
	}},
	"Upcase":        strFilter(strings.ToUpper),
	"Downcase":      strFilter(strings.ToLower),
	"Strip":         strFilter(strings.TrimSpace),
	"Lstrip":        strFilter(func(s string) string { return strings.TrimLeftFunc(s, unicode.IsSpace) }),
	"Rstrip":        strFilter(func(s string) string { return strings.TrimRightFunc(s, unicode.IsSpace) }),
	"StripNewlines": strFilter(func(s string) string { return strings.NewReplacer("\r", "", "\n", "").Replace(s) }),
	"Capitalize": strFilter(func(s string) string {
		for i, r := range s {
			return string(unicode.ToUpper(r)) + s[i+len(string(r)):]
		}
		return s
	}),
	"Escape": strFilter(escapeHTML),
	"H":      strFilter(escapeHTML),
	"UrlEncode": strFilter(func(s string) string {
		return url.QueryEscape(s)
	}),
	"UrlDecode": strFilter(func(s string) string {
		if d, err := url.QueryUnescape(s); err == nil {
			return d
		}
		return s
	}),
	"Size": {fn: func(v any, _ []any) any {
		switch v := v.(type) {
		case []any:
			return int64(len(v))
		case map[string]any:
			return int64(len(v))
		case nil:
			return int64(0)
		}
		return int64(len([]rune(liquidString(v))))
	}},
	"Append":  {min: 1, max: 1, fn: func(v any, a []any) any { return liquidString(v) + liquidString(a[0]) }},
	"Prepend": {min: 1, max: 1, fn: func(v any, a []any) any { return liquidString(a[0]) + liquidString(v) }},
	"Replace": {min: 2, max: 2, fn: func(v any, a []any) any {
		return strings.ReplaceAll(liquidString(v), liquidString(a[0]), liquidString(a[1]))
	}},
	"ReplaceFirst": {min: 2, max: 2, fn: func(v any, a []any) any {
		return strings.Replace(liquidString(v), liquidString(a[0]), liquidString(a[1]), 1)
	}},
	"Remove": {min: 1, max: 1, fn: func(v any, a []any) any {
		return strings.ReplaceAll(liquidString(v), liquidString(a[0]), "")
	}},
	"RemoveFirst": {min: 1, max: 1, fn: func(v any, a []any) any {
		return strings.Replace(liquidString(v), liquidString(a[0]), "", 1)
	}},
	"Truncate": {min: 1, max: 2, fn: func(v any, a []any) any {
		s := []rune(liquidString(v))
		n, _ := liquidInt(a[0])
		ell := "..."
		if len(a) > 1 {
			ell = liquidString(a[1])
		}
		if int64(len(s)) <= n {
			return string(s)
		}
		keep := max(int(n)-len([]rune(ell)), 0)
		return string(s[:keep]) + ell
	}},
	"Split": {min: 1, max: 1, fn: func(v any, a []any) any {
		var out []any
		for _, p := range strings.Split(liquidString(v), liquidString(a[0])) {
			out = append(out, p)
		}
		return out
	}},
	"Join": {max: 1, fn: func(v any, a []any) any {
		sep := " "
		if len(a) > 0 {
			sep = liquidString(a[0])
		}
		list, ok := v.([]any)
		if !ok {
			return liquidString(v)
		}
		parts := make([]string, len(list))
		for i, it := range list {
			parts[i] = liquidString(it)
		}
		return strings.Join(parts, sep)
	}},
	"First": {fn: func(v any, _ []any) any { return liquidMember(v, "first") }},
	"Last":  {fn: func(v any, _ []any) any { return liquidMember(v, "last") }},
	"Abs": {fn: func(v any, _ []any) any {
		if i, ok := liquidInt(v); ok {
			if i < 0 {
				return -i
			}
			return i
		}
		if f, ok := liquidToNum(v); ok {
			return math.Abs(f)
		}
		return nil
	}},
	"Plus":      numFilter(func(a, b float64) (float64, bool) { return a + b, true }),
	"Minus":     numFilter(func(a, b float64) (float64, bool) { return a - b, true }),
	"Times":     numFilter(func(a, b float64) (float64, bool) { return a * b, true }),
	"DividedBy": numFilter(func(a, b float64) (float64, bool) { return a / b, b != 0 }),
	"Modulo":    numFilter(func(a, b float64) (float64, bool) { return math.Mod(a, b), b != 0 }),
	"AtLeast":   numFilter(func(a, b float64) (float64, bool) { return math.Max(a, b), true }),
	"AtMost":    numFilter(func(a, b float64) (float64, bool) { return math.Min(a, b), true }),
}

func escapeHTML(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;").Replace(s)
}
