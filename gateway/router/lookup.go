package router

import (
	"strings"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
)

// Lookup matches req and fills m. On NotFound m.API is nil; on
// OperationNotFound m.API names the API whose path matched.
func (t *Table) Lookup(m *Match, req *Request) Result {
	m.API, m.Operation, m.Suffix = nil, nil, ""
	m.nParams, m.nCaps, m.nCands, m.nSegs = 0, 0, 0, 0
	if !t.hosts.allows(m, req.Host) {
		return NotFound
	}
	if !m.split(req.Path) {
		return NotFound
	}
	proto := ProtoHTTP
	if req.Secure {
		proto = ProtoHTTPS
	}

	// Walk the API path trie as deep as the request path goes, keeping
	// every node where an API path ends: the deepest one is tried first.
	node := t.root
	if node.group != nil {
		m.cands[0] = candidate{node: node}
		m.nCands = 1
	}
	for i := 0; i < m.nSegs && node.children != nil; i++ {
		seg := m.seg(i)
		rev := ""
		if j := strings.Index(seg, ";rev="); j >= 0 {
			seg, rev = seg[:j], seg[j+len(";rev="):]
		}
		child := node.children[m.lowered(seg)]
		if child == nil {
			break
		}
		if child.group != nil {
			m.cands[m.nCands] = candidate{node: child, depth: i + 1, rev: rev}
			m.nCands++
		}
		if rev != "" {
			break // ";rev=" ends the API path
		}
		node = child
	}

	var apiSeen *API
	for c := m.nCands - 1; c >= 0; c-- {
		cand := &m.cands[c]
		api, consumed := m.resolveAPI(cand, req)
		if api == nil || api.Protocols&proto == 0 {
			continue
		}
		if apiSeen == nil {
			apiSeen = api
		}
		m.nCaps = 0
		if op := m.matchOps(api.ops, consumed, req); op != nil {
			m.API, m.Operation = api, op
			m.Suffix = m.suffixFrom(consumed)
			m.fillParams(op, req.Query)
			return Found
		}
	}
	if apiSeen != nil {
		m.API = apiSeen
		return OperationNotFound
	}
	return NotFound
}

// resolveAPI picks the version and revision of the API group at cand and
// returns it with the number of path segments its path (and version
// segment) consumed.
func (m *Match) resolveAPI(cand *candidate, req *Request) (*API, int) {
	g := cand.node.group
	if g.plain != nil {
		return g.plain.pick(cand.rev), cand.depth
	}
	vs := g.vs
	if vs == nil {
		return nil, 0
	}
	var id string
	switch vs.scheme {
	case config.VersioningSegment:
		if cand.rev == "" && cand.depth < m.nSegs {
			seg := m.seg(cand.depth)
			rev := ""
			if j := strings.Index(seg, ";rev="); j >= 0 {
				seg, rev = seg[:j], seg[j+len(";rev="):]
			}
			if rs := vs.versions[m.lowered(seg)]; rs != nil {
				return rs.pick(rev), cand.depth + 1
			}
		}
		if vs.original != nil {
			return vs.original.pick(cand.rev), cand.depth
		}
		return nil, 0
	case config.VersioningQuery:
		id, _ = queryValue(req.Query, vs.queryName)
	case config.VersioningHeader:
		if req.Header != nil {
			// Only used for the map lookup below: no copy needed.
			id = unsafeString(req.Header.Peek(vs.headerName))
		}
	}
	if id == "" {
		if vs.original != nil {
			return vs.original.pick(cand.rev), cand.depth
		}
		return nil, 0
	}
	if rs := vs.versions[m.lowered(id)]; rs != nil {
		return rs.pick(cand.rev), cand.depth
	}
	return nil, 0
}

func (m *Match) matchOps(n *opNode, i int, req *Request) *Operation {
	if i == m.nSegs {
		if op := pickOp(n.leaf, req); op != nil {
			return op
		}
		if op := pickOp(n.wild, req); op != nil {
			if op.Template.WildcardParam != "" {
				m.pushCap(int32(len(m.path)), int32(len(m.path)))
			}
			return op
		}
		return nil
	}
	seg := m.seg(i)
	if n.static != nil {
		if child := n.static[m.lowered(seg)]; child != nil {
			if op := m.matchOps(child, i+1, req); op != nil {
				return op
			}
		}
	}
	start := m.segs[i][0]
	for _, e := range n.params {
		if len(seg) <= len(e.prefix)+len(e.suffix) {
			continue
		}
		if !hasPrefixFold(seg, e.prefix) || !hasSuffixFold(seg, e.suffix) {
			continue
		}
		if m.nCaps == MaxParams {
			return nil
		}
		saved := m.nCaps
		m.pushCap(start+int32(len(e.prefix)), start+int32(len(seg)-len(e.suffix)))
		if op := m.matchOps(e.child, i+1, req); op != nil {
			return op
		}
		m.nCaps = saved
	}
	if op := pickOp(n.wild, req); op != nil {
		if op.Template.WildcardParam != "" {
			m.pushCap(start, int32(len(m.path)))
		}
		return op
	}
	return nil
}

func pickOp(ops []*Operation, req *Request) *Operation {
	for _, op := range ops {
		if op.Method != req.Method && op.Method != "*" {
			continue
		}
		if queryMatches(op.query, req.Query) {
			return op
		}
	}
	return nil
}

func queryMatches(qs []queryMatch, query string) bool {
	for i := range qs {
		v, ok := queryValue(query, qs[i].name)
		if !ok || (qs[i].param != "" && v == "") {
			if qs[i].required {
				return false
			}
			continue
		}
		if qs[i].param == "" && v != qs[i].literal {
			return false
		}
	}
	return true
}

// queryValue returns the raw value of the first name=value pair of query.
func queryValue(query, name string) (string, bool) {
	for query != "" {
		var pair string
		if i := strings.IndexByte(query, '&'); i >= 0 {
			pair, query = query[:i], query[i+1:]
		} else {
			pair, query = query, ""
		}
		k, v, _ := strings.Cut(pair, "=")
		if k == name {
			return v, true
		}
	}
	return "", false
}

func (m *Match) pushCap(start, end int32) {
	m.caps[m.nCaps] = [2]int32{start, end}
	m.nCaps++
}

func (m *Match) fillParams(op *Operation, query string) {
	n := 0
	for i, name := range op.params {
		if i >= m.nCaps {
			break
		}
		c := m.caps[i]
		m.params[n] = Param{Name: name, Value: m.path[c[0]:c[1]]}
		n++
	}
	for _, q := range op.query {
		if q.param == "" {
			continue
		}
		v, _ := queryValue(query, q.name)
		m.params[n] = Param{Name: q.param, Value: v}
		n++
	}
	m.nParams = n
}

// split records the non-empty segments of path.
func (m *Match) split(path string) bool {
	m.path = path
	n := 0
	i := 0
	for i < len(path) {
		if path[i] == '/' {
			i++
			continue
		}
		j := strings.IndexByte(path[i:], '/')
		end := len(path)
		if j >= 0 {
			end = i + j
		}
		if n == MaxSegments {
			return false
		}
		m.segs[n] = [2]int32{int32(i), int32(end)}
		n++
		i = end
	}
	m.nSegs = n
	return true
}

func (m *Match) seg(i int) string { return m.path[m.segs[i][0]:m.segs[i][1]] }

// suffixFrom returns the raw path after the first i segments (the API path
// and version segment), exactly as sent: its leading '/', double slashes
// and a trailing slash are kept. A path of slashes only under the root API
// gives "".
func (m *Match) suffixFrom(i int) string {
	if i == 0 {
		if m.nSegs == 0 {
			return ""
		}
		return m.path
	}
	return m.path[m.segs[i-1][1]:]
}

// lowered returns s in lower case, using the Match's buffer when s has
// upper-case letters, so lookups in lower-cased maps never allocate.
func (m *Match) lowered(s string) string {
	upper := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			upper = true
			break
		}
	}
	if !upper {
		return s
	}
	if len(s) > len(m.lower) {
		return strings.ToLower(s)
	}
	b := m.lower[:len(s)]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return unsafeString(b)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}
