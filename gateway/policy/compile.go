package policy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/proxy"
)

// Options configure compilation.
type Options struct {
	// Strict rejects a document with a policy this gateway does not run,
	// instead of skipping the policy with a warning.
	Strict bool
	// Client returns the long-lived client for a backend target, so steps
	// that route (set-backend-service) resolve it at load, not per request.
	Client func(proxy.Target) *fasthttp.HostClient
	// Counters is the long-lived store of rate limits, quotas and
	// concurrency slots; the server passes the same one at every reload
	// so counts survive it. Nil: an in-memory store for this Set only.
	Counters Counters
	// HTTPClient sends control-plane requests (validate-jwt's OpenID
	// configuration fetches); nil means a default client with timeouts.
	HTTPClient HTTPDoer
	// SideClient sends send-request and send-one-way-request calls; nil
	// means a default client with timeouts and a bounded response body
	// (see newSideClient in send.go), kept in Shared.
	SideClient *fasthttp.Client
	// Shared is the state that outlives reloads (see Shared); nil makes
	// one for this Set.
	Shared *Shared
	// Metrics receives emit-metric values; nil skips emit-metric with a
	// warning.
	Metrics MetricSink
	// Cache is the long-lived store of the caching policies; the server
	// passes the same one at every reload. Nil: an in-memory store for
	// this Set only.
	Cache Cache
	// Breakers holds the backends' circuit breakers; the server passes
	// the same one at every reload so an unchanged backend keeps its
	// breaker state. Nil: breakers for this Set only.
	Breakers *Breakers
	// ClientWithCert returns the long-lived client for a backend target
	// that presents a client certificate (authentication-certificate).
	// Nil: authentication-certificate is skipped with a warning.
	ClientWithCert func(proxy.Target, *tls.Certificate) *fasthttp.HostClient
}

// Set holds the compiled documents of one snapshot and composes
// pipelines from them.
type Set struct {
	opts      Options
	snapshot  *config.Snapshot
	named     map[string]string // lower-case display name -> value
	fragments map[string]*fragment
	defs      map[string]policyDef
	// Warnings lists the policies skipped at load, with where they are.
	Warnings []Issue
	errs     []Issue
}

type fragment struct {
	def      *config.PolicyFragment
	steps    []Step
	compiled bool
	busy     bool // cycle detection
	failed   bool
}

// NewSet prepares compilation for snapshot s.
func NewSet(s *config.Snapshot, opts Options) *Set {
	set := &Set{opts: opts, snapshot: s, named: map[string]string{}, fragments: map[string]*fragment{}, defs: definitions()}
	for i := range s.NamedValues {
		nv := &s.NamedValues[i]
		set.named[strings.ToLower(nv.Properties.DisplayName)] = nv.Properties.Value.Value()
	}
	for i := range s.PolicyFragments {
		f := &s.PolicyFragments[i]
		set.fragments[strings.ToLower(f.Name)] = &fragment{def: f}
	}
	return set
}

// shared returns the Set's long-lived state, making it on first use.
func (s *Set) shared() *Shared {
	if s.opts.Shared == nil {
		s.opts.Shared = NewShared()
	}
	return s.opts.Shared
}

// Err returns the errors found so far, nil when none.
func (s *Set) Err() error {
	if len(s.errs) == 0 {
		return nil
	}
	return &CompileError{Issues: s.errs}
}

var namedValueRef = regexp.MustCompile(`\{\{\s*([A-Za-z0-9._-]+)\s*\}\}`)

// substitute replaces {{name}} references with named values. A reference
// to a missing named value is an error, as in API Management.
func (s *Set) substitute(loc Location, src string) (string, bool) {
	ok := true
	liquid := liquidRegions.FindAllStringIndex(src, -1)
	var b strings.Builder
	last := 0
	for _, m := range namedValueRef.FindAllStringSubmatchIndex(src, -1) {
		name := src[m[2]:m[3]]
		v, found := s.named[strings.ToLower(name)]
		if !found {
			// Inside a Liquid template {{ body.name }} is an output, not a
			// named value: leave it for the template.
			if inRegions(liquid, m[0]) {
				continue
			}
			s.errs = append(s.errs, Issue{Location: loc, Message: fmt.Sprintf("named value %q is not in $.namedValues", name)})
			ok = false
			continue
		}
		b.WriteString(src[last:m[0]])
		b.WriteString(v)
		last = m[1]
	}
	b.WriteString(src[last:])
	return b.String(), ok
}

// liquidRegions finds the bodies of set-body elements with a Liquid
// template.
var liquidRegions = regexp.MustCompile(`(?s)<set-body[^>]*template\s*=\s*["']liquid["'][^>]*>.*?</set-body>`)

func inRegions(regions [][]int, at int) bool {
	for _, r := range regions {
		if at >= r[0] && at < r[1] {
			return true
		}
	}
	return false
}

// Compile compiles one document. It returns nil for an empty source. Errors
// and warnings accumulate in the Set.
func (s *Set) Compile(loc Location, src string) *Document {
	if strings.TrimSpace(src) == "" {
		return nil
	}
	text, ok := s.substitute(loc, src)
	if !ok {
		return nil
	}
	root, err := policyxml.Parse(text)
	if err != nil {
		is := Issue{Location: loc, Message: err.Error()}
		if se, ok := err.(*policyxml.SyntaxError); ok {
			is.Pos, is.Message = se.Pos, se.Msg
		}
		s.errs = append(s.errs, is)
		return nil
	}
	if root.Name != "policies" {
		s.errs = append(s.errs, Issue{Location: loc, Pos: root.Pos, Message: fmt.Sprintf("the root element must be <policies>, found <%s>", root.Name)})
		return nil
	}
	doc := &Document{Location: loc}
	for _, sec := range root.Children {
		idx := sectionIndex(sec.Name)
		if idx < 0 {
			s.errs = append(s.errs, Issue{Location: loc, Pos: sec.Pos, Message: fmt.Sprintf("<%s> is not a section: use inbound, backend, outbound or on-error", sec.Name)})
			continue
		}
		if doc.present[idx] {
			s.errs = append(s.errs, Issue{Location: loc, Pos: sec.Pos, Message: fmt.Sprintf("section <%s> appears twice", sec.Name)})
			continue
		}
		doc.present[idx] = true
		doc.sections[idx] = []item{}
		c := &compiler{set: s, loc: loc, section: Section(idx)}
		bases := 0
		for _, el := range sec.Children {
			if el.Name == "base" {
				// At the global scope <base /> includes nothing; API
				// Management accepts it there, so do we.
				bases++
				if bases > 1 {
					s.errs = append(s.errs, Issue{Location: loc, Pos: el.Pos, Policy: "base", Message: "<base /> appears more than once in a section"})
					continue
				}
				doc.sections[idx] = append(doc.sections[idx], item{base: true})
				continue
			}
			for _, st := range c.statement(el, "") {
				doc.sections[idx] = append(doc.sections[idx], item{step: st})
			}
		}
	}
	return doc
}

func sectionIndex(name string) int {
	for i, n := range sectionNames {
		if n == name {
			return i
		}
	}
	return -1
}

// compiler compiles the statements of one section.
type compiler struct {
	set     *Set
	loc     Location
	section Section
	counts  map[string]int
}

// statement compiles one policy element. It returns no step when the
// element is skipped (unsupported, or in error; errors are recorded).
func (c *compiler) statement(el *policyxml.Element, parent string) []Step {
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[parent+"/"+el.Name]++
	path := fmt.Sprintf("%s[%d]", el.Name, c.counts[parent+"/"+el.Name])
	if parent != "" {
		path = parent + `\` + path
	}
	m := meta{name: el.Name, loc: c.loc, section: c.section, path: path}
	if id, ok := el.Attr("id"); ok {
		m.id = id.Value
	}
	def, known := c.set.defs[el.Name]
	if !known {
		c.unsupported(el, "is not a policy this gateway runs")
		return nil
	}
	if !def.sections.has(c.section) {
		c.errorf(el, "is not allowed in <%s> (allowed in %s)", c.section, def.sections)
		return nil
	}
	if def.compile == nil {
		return c.skip(def, el, el.Pos, m, def.why)
	}
	if def.expressions {
		return c.finish(def, el, m)
	}
	for _, a := range el.Attrs {
		if a.Expr && !def.exprAttrs[a.Name] {
			return c.skip(def, el, a.Pos, m, fmt.Sprintf("attribute %s holds a policy expression, which this policy does not evaluate yet", a.Name))
		}
	}
	if el.TextExpr {
		return c.skip(def, el, el.Pos, m, "its value is a policy expression, which this policy does not evaluate yet")
	}
	if hasExprDescendant(el) {
		return c.skip(def, el, el.Pos, m, "it contains policy expressions, which this policy does not evaluate yet")
	}
	return c.finish(def, el, m)
}

// skip handles a policy this gateway cannot run: a warning (an error
// with Strict). An access-control policy is not simply dropped, which
// would open the API to everyone: it becomes a step that refuses every
// request, so the failure is safe and loud.
func (c *compiler) skip(def policyDef, el *policyxml.Element, pos policyxml.Pos, m meta, why string) []Step {
	if def.failClosed {
		why += "; requests through this scope are refused (500) so the API does not run unprotected"
	}
	c.unsupportedAt(el, pos, why)
	if def.failClosed && !c.set.opts.Strict {
		return []Step{&refuse{meta: m}}
	}
	return nil
}

// refuse stands in for an access-control policy that could not be
// compiled.
type refuse struct{ meta }

func (s *refuse) Exec(r *Request) error {
	return s.fail("PolicyNotSupported", "Internal server error", 500)
}

func (c *compiler) finish(def policyDef, el *policyxml.Element, m meta) []Step {
	st, err := def.compile(c, el, m)
	if err != nil {
		var ee *exprCompileError
		if errors.As(err, &ee) {
			c.set.errs = append(c.set.errs, Issue{Location: c.loc, Pos: ee.pos, Policy: el.Name, Message: "expression: " + ee.msg})
			return nil
		}
		c.errorf(el, "%v", err)
		return nil
	}
	if st == nil {
		return nil
	}
	return []Step{st}
}

func hasExprDescendant(el *policyxml.Element) bool {
	for _, ch := range el.Children {
		if ch.TextExpr {
			return true
		}
		for _, a := range ch.Attrs {
			if a.Expr {
				return true
			}
		}
		if hasExprDescendant(ch) {
			return true
		}
	}
	return false
}

func (c *compiler) errorf(el *policyxml.Element, format string, args ...any) {
	c.set.errs = append(c.set.errs, Issue{Location: c.loc, Pos: el.Pos, Policy: el.Name, Message: fmt.Sprintf(format, args...)})
}

func (c *compiler) unsupported(el *policyxml.Element, why string) {
	c.unsupportedAt(el, el.Pos, why)
}

func (c *compiler) unsupportedAt(el *policyxml.Element, pos policyxml.Pos, why string) {
	is := Issue{Location: c.loc, Pos: pos, Policy: el.Name, Message: "skipped: " + why}
	if c.set.opts.Strict {
		is.Message = "not supported: " + why + " (--strict-policies)"
		c.set.errs = append(c.set.errs, is)
		return
	}
	c.set.Warnings = append(c.set.Warnings, is)
}

// sectionSet is a bit set of sections.
type sectionSet uint8

const (
	inb sectionSet = 1 << Inbound
	bak sectionSet = 1 << Backend
	out sectionSet = 1 << Outbound
	one sectionSet = 1 << OnError
	all            = inb | bak | out | one
)

func (s sectionSet) has(sec Section) bool { return s&(1<<sec) != 0 }

func (s sectionSet) String() string {
	var names []string
	for i := Section(0); i < numSections; i++ {
		if s.has(i) {
			names = append(names, "<"+i.String()+">")
		}
	}
	return strings.Join(names, ", ")
}

// policyDef describes one policy: where it may appear and how to compile
// it. A nil compile means known but not run by this gateway, for why.
type policyDef struct {
	sections  sectionSet
	compile   func(c *compiler, el *policyxml.Element, m meta) (Step, error)
	exprAttrs map[string]bool
	// expressions: the compile function handles policy expressions in
	// its attributes and children itself.
	expressions bool
	// failClosed: the policy guards access; when it cannot run, requests
	// are refused instead of passing unchecked.
	failClosed bool
	why        string
}
