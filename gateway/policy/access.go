package policy

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
)

// --- check-header ------------------------------------------------------------

type checkHeader struct {
	meta
	name       string
	status     int
	message    string
	ignoreCase bool
	values     [][]byte
}

func compileCheckHeader(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	name, err := required(el, "name")
	if err != nil {
		return nil, err
	}
	rawCode, err := required(el, "failed-check-httpcode")
	if err != nil {
		return nil, err
	}
	code, err := strconv.Atoi(strings.TrimSpace(rawCode))
	if err != nil || code < 100 || code > 599 {
		return nil, fmt.Errorf("failed-check-httpcode %q is not an HTTP status code", rawCode)
	}
	msg, err := required(el, "failed-check-error-message")
	if err != nil {
		return nil, err
	}
	ignoreCase, err := boolAttr(el, "ignore-case", false)
	if err != nil {
		return nil, err
	}
	ch := &checkHeader{meta: m, name: name, status: code, message: msg, ignoreCase: ignoreCase}
	for _, v := range childTexts(el, "value") {
		ch.values = append(ch.values, []byte(v))
	}
	return ch, nil
}

func (s *checkHeader) Exec(r *Request) error {
	v := r.Ctx.Request.Header.Peek(s.name)
	if v == nil {
		return s.fail("HeaderNotFound", s.message, s.status)
	}
	if len(s.values) == 0 {
		return nil
	}
	// A header may carry a comma-separated list; any listed value passes.
	for part := range bytes.SplitSeq(v, []byte{','}) {
		part = bytes.TrimSpace(part)
		for _, want := range s.values {
			if bytes.Equal(part, want) || (s.ignoreCase && bytes.EqualFold(part, want)) {
				return nil
			}
		}
	}
	return s.fail("HeaderValueNotAllowed", s.message, s.status)
}

// --- ip-filter ----------------------------------------------------------------

type ipFilter struct {
	meta
	allow  bool
	addrs  []netip.Addr
	ranges [][2]netip.Addr
}

func compileIPFilter(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	action, err := required(el, "action")
	if err != nil {
		return nil, err
	}
	f := &ipFilter{meta: m}
	switch action {
	case "allow":
		f.allow = true
	case "forbid":
	default:
		return nil, fmt.Errorf("action must be allow or forbid, found %q", action)
	}
	for _, ch := range el.Children {
		switch ch.Name {
		case "address":
			a, err := netip.ParseAddr(strings.TrimSpace(ch.Text))
			if err != nil {
				return nil, fmt.Errorf("address %q is not an IP address", ch.Text)
			}
			f.addrs = append(f.addrs, a.Unmap())
		case "address-range":
			from, err1 := netip.ParseAddr(strings.TrimSpace(attr(ch, "from", "")))
			to, err2 := netip.ParseAddr(strings.TrimSpace(attr(ch, "to", "")))
			if err1 != nil || err2 != nil || from.Unmap().Compare(to.Unmap()) > 0 {
				return nil, fmt.Errorf("address-range from %q to %q is not an ascending IP range", attr(ch, "from", ""), attr(ch, "to", ""))
			}
			f.ranges = append(f.ranges, [2]netip.Addr{from.Unmap(), to.Unmap()})
		default:
			return nil, fmt.Errorf("<%s> cannot be a child of <ip-filter>", ch.Name)
		}
	}
	return f, nil
}

func (s *ipFilter) matches(ip netip.Addr) bool {
	for _, a := range s.addrs {
		if a == ip {
			return true
		}
	}
	for _, rg := range s.ranges {
		if ip.Compare(rg[0]) >= 0 && ip.Compare(rg[1]) <= 0 {
			return true
		}
	}
	return false
}

func (s *ipFilter) Exec(r *Request) error {
	ip, ok := netip.AddrFromSlice(r.Ctx.RemoteIP())
	if !ok {
		return s.fail("CallerIpNotAllowed", "Caller IP address is not allowed", 403)
	}
	if s.matches(ip.Unmap()) == s.allow {
		return nil
	}
	return s.fail("CallerIpNotAllowed", "Forbidden", 403)
}

// --- include-fragment ------------------------------------------------------------

type stepList struct {
	meta
	steps []Step
}

func (s *stepList) Exec(r *Request) error { return runSteps(r, s.steps) }

func compileIncludeFragment(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	id, err := required(el, "fragment-id")
	if err != nil {
		return nil, err
	}
	f := c.set.fragments[strings.ToLower(id)]
	if f == nil {
		return nil, fmt.Errorf("fragment %q is not in $.policyFragments", id)
	}
	if f.busy {
		return nil, fmt.Errorf("fragment %q includes itself", id)
	}
	text, ok := c.set.substitute(Location{Scope: ScopeFragment, Name: f.def.Name}, f.def.Properties.Value)
	if !ok {
		return nil, fmt.Errorf("fragment %q has unresolved named values", id)
	}
	root, err := policyxml.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("fragment %q: %w", id, err)
	}
	if root.Name != "fragment" {
		return nil, fmt.Errorf("fragment %q: the root element must be <fragment>, found <%s>", id, root.Name)
	}
	f.busy = true
	defer func() { f.busy = false }()
	// The fragment's statements compile in the including section, so
	// section rules apply where the fragment is used.
	sub := &compiler{set: c.set, loc: c.loc, section: c.section}
	list := &stepList{meta: m}
	for _, ch := range root.Children {
		list.steps = append(list.steps, sub.statement(ch, m.path)...)
	}
	return list, nil
}
