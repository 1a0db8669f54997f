// Package router compiles the APIs of a configuration snapshot into a
// routing table and matches requests against it the way API Management
// does: host name, API path (longest match first), version set (Segment,
// Query or Header scheme, the "Original" version answering without an
// identifier), revision (";rev=n"), then operation by method and URL
// template.
//
// Cost of a lookup: O(1) for the host, O(d) map lookups for the API path
// where d is the number of path segments, O(1) for the version, and O(d)
// for the operation (static segments before parameters before wildcards,
// backtracking only between siblings that both match). Nothing in a lookup
// depends on the number of APIs or operations; BenchmarkLookup10kAPIs
// shows it. A lookup allocates nothing.
//
// Literal path segments, API paths and versions match case-insensitively,
// as in API Management.
package router

import (
	"fmt"
	"sort"
	"strings"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/urltemplate"
)

// Limits of one lookup. A request beyond them matches nothing (404):
// they bound the work an attacker can ask for.
const (
	MaxSegments = 64
	MaxParams   = 32
)

// Protocol bits of API.Protocols.
const (
	ProtoHTTP uint8 = 1 << iota
	ProtoHTTPS
)

// Table is an immutable compiled routing table. It is safe for concurrent
// use; a configuration change builds a new Table.
type Table struct {
	root  *pathNode
	hosts hostSet
	// APIs holds every compiled API; API.Index is its position.
	APIs []*API
}

// API is one compiled API (one version, one revision).
type API struct {
	Index    int
	Name     string
	BaseName string
	Config   *config.API
	// Path is the API path without surrounding slashes.
	Path       string
	Version    string
	Revision   string
	IsCurrent  bool
	Protocols  uint8
	Operations []*Operation
	ops        *opNode
}

// Operation is one compiled operation.
type Operation struct {
	Index    int
	Name     string
	Method   string // upper case, or "*"
	Config   *config.Operation
	Template *urltemplate.Template
	API      *API
	// params are capture names in capture order (path segments, then the
	// wildcard); query holds the query constraints.
	params []string
	query  []queryMatch
}

type queryMatch struct {
	name     string
	param    string
	literal  string
	required bool
}

// Request is what the router needs to know about a request. Strings may be
// views of request memory: the router keeps none of them.
type Request struct {
	Host   string // Host header or :authority, port allowed
	Secure bool   // the request arrived over TLS (or a trusted X-Forwarded-Proto said https)
	Method string
	Path   string // raw (percent-encoded) path, without the query
	Query  string // raw query string, without '?'
	Header HeaderGetter
}

// HeaderGetter returns a request header by name, nil when absent.
// *fasthttp.RequestHeader satisfies it.
type HeaderGetter interface {
	Peek(key string) []byte
}

// Result says how a lookup ended.
type Result uint8

const (
	// Found: Match.API and Match.Operation are set.
	Found Result = iota
	// NotFound: no API serves this host and path.
	NotFound
	// OperationNotFound: Match.API is set, but none of its operations
	// matches the method and URL.
	OperationNotFound
)

// Param is a matched template parameter. Value is raw (percent-encoded)
// and a view of request memory, valid only while the request is served.
type Param struct {
	Name  string
	Value string
}

// Match receives the result of a lookup. Reuse one per request (it is
// large, so keep it in a pool or in per-connection state, not on a hot
// stack that escapes); Lookup resets it.
type Match struct {
	API       *API
	Operation *Operation
	// Suffix is the raw path after the API path and version segment:
	// what is appended to the backend URL. It starts with '/' or is empty.
	Suffix string

	params  [MaxParams]Param
	nParams int

	path   string
	segs   [MaxSegments][2]int32
	nSegs  int
	caps   [MaxParams][2]int32
	nCaps  int
	lower  [256]byte
	cands  [MaxSegments + 1]candidate
	nCands int
}

type candidate struct {
	node  *pathNode
	depth int    // number of path segments consumed by the API path
	rev   string // revision asked for with ";rev=" on the last segment
}

// Params returns the matched template parameters.
func (m *Match) Params() []Param { return m.params[:m.nParams] }

// Param returns the value of a matched parameter (case-insensitive name).
func (m *Match) Param(name string) (string, bool) {
	for i := range m.nParams {
		if strings.EqualFold(m.params[i].Name, name) {
			return m.params[i].Value, true
		}
	}
	return "", false
}

type pathNode struct {
	children map[string]*pathNode
	group    *apiGroup
}

type apiGroup struct {
	plain *revisionSet
	vs    *versionGroup
}

type versionGroup struct {
	scheme     string
	queryName  string
	headerName string
	versions   map[string]*revisionSet
	original   *revisionSet
}

type revisionSet struct {
	current *API
	revs    map[string]*API
}

func (r *revisionSet) pick(rev string) *API {
	if rev == "" {
		return r.current
	}
	return r.revs[rev]
}

// Compile builds a Table from a validated snapshot.
func Compile(s *config.Snapshot) (*Table, error) {
	t := &Table{root: &pathNode{}, hosts: newHostSet(s.Gateway)}
	sets := make(map[string]*config.APIVersionSet, len(s.APIVersionSets))
	for i := range s.APIVersionSets {
		sets[strings.ToLower(s.APIVersionSets[i].Name)] = &s.APIVersionSets[i]
	}
	for i := range s.APIs {
		ca := &s.APIs[i]
		a, err := compileAPI(ca, len(t.APIs))
		if err != nil {
			return nil, fmt.Errorf("api %q: %w", ca.Name, err)
		}
		t.APIs = append(t.APIs, a)
		node := t.root
		if a.Path != "" {
			for _, seg := range strings.Split(strings.ToLower(a.Path), "/") {
				child := node.children[seg]
				if child == nil {
					if node.children == nil {
						node.children = map[string]*pathNode{}
					}
					child = &pathNode{}
					node.children[seg] = child
				}
				node = child
			}
		}
		if node.group == nil {
			node.group = &apiGroup{}
		}
		var rs **revisionSet
		if ca.Properties.APIVersionSetID == "" {
			if node.group.vs != nil {
				return nil, fmt.Errorf("api %q: path %q is served by a version set", ca.Name, a.Path)
			}
			rs = &node.group.plain
		} else {
			vsName := strings.ToLower(config.RefName(ca.Properties.APIVersionSetID, "apiVersionSets"))
			vs := sets[vsName]
			if vs == nil {
				return nil, fmt.Errorf("api %q: unknown version set %q", ca.Name, ca.Properties.APIVersionSetID)
			}
			if node.group.plain != nil {
				return nil, fmt.Errorf("api %q: path %q is served by an API outside the version set", ca.Name, a.Path)
			}
			if node.group.vs == nil {
				node.group.vs = &versionGroup{
					scheme:     vs.Properties.VersioningScheme,
					queryName:  vs.Properties.VersionQueryName,
					headerName: vs.Properties.VersionHeaderName,
					versions:   map[string]*revisionSet{},
				}
			}
			if a.Version == "" {
				rs = &node.group.vs.original
			} else {
				key := strings.ToLower(a.Version)
				r := node.group.vs.versions[key]
				if r == nil {
					r = &revisionSet{revs: map[string]*API{}}
					node.group.vs.versions[key] = r
				}
				rs = &r
			}
		}
		if *rs == nil {
			*rs = &revisionSet{revs: map[string]*API{}}
		}
		if a.IsCurrent {
			if (*rs).current != nil {
				return nil, fmt.Errorf("api %q: api %q is already the current revision", ca.Name, (*rs).current.Name)
			}
			(*rs).current = a
		}
		(*rs).revs[a.Revision] = a
	}
	return t, nil
}

func compileAPI(ca *config.API, index int) (*API, error) {
	a := &API{
		Index:     index,
		Name:      ca.Name,
		BaseName:  config.BaseName(ca.Name),
		Config:    ca,
		Path:      config.NormalizePath(ca.Properties.Path),
		Version:   ca.Properties.APIVersion,
		Revision:  ca.Properties.APIRevision,
		IsCurrent: ca.IsCurrentRevision(),
		ops:       &opNode{},
	}
	if a.Revision == "" {
		if _, r, ok := strings.Cut(ca.Name, ";rev="); ok {
			a.Revision = r
		} else {
			a.Revision = "1"
		}
	}
	if len(ca.Properties.Protocols) == 0 {
		a.Protocols = ProtoHTTP | ProtoHTTPS
	}
	for _, p := range ca.Properties.Protocols {
		switch p {
		case "http", "ws":
			a.Protocols |= ProtoHTTP
		case "https", "wss":
			a.Protocols |= ProtoHTTPS
		}
	}
	for i := range ca.Operations {
		co := &ca.Operations[i]
		op, err := compileOperation(co, a, i)
		if err != nil {
			return nil, fmt.Errorf("operation %q: %w", co.Name, err)
		}
		a.Operations = append(a.Operations, op)
		a.ops.insert(op)
	}
	a.ops.sortLeaves()
	return a, nil
}

func compileOperation(co *config.Operation, a *API, index int) (*Operation, error) {
	tpl, err := urltemplate.Parse(co.Properties.URLTemplate)
	if err != nil {
		return nil, err
	}
	if len(tpl.Segments) > MaxSegments {
		return nil, fmt.Errorf("url template has more than %d segments", MaxSegments)
	}
	op := &Operation{
		Index:    index,
		Name:     co.Name,
		Method:   strings.ToUpper(strings.TrimSpace(co.Properties.Method)),
		Config:   co,
		Template: tpl,
		API:      a,
	}
	optional := map[string]bool{}
	for _, p := range co.Properties.TemplateParameters {
		if !p.Required {
			optional[strings.ToLower(p.Name)] = true
		}
	}
	for _, s := range tpl.Segments {
		if s.IsParam() {
			op.params = append(op.params, s.Param)
		}
	}
	if tpl.WildcardParam != "" {
		op.params = append(op.params, tpl.WildcardParam)
	}
	for _, q := range tpl.Query {
		// A templated query parameter is required unless its
		// templateParameters entry says otherwise; a literal one always is.
		op.query = append(op.query, queryMatch{
			name:     q.Name,
			param:    q.Param,
			literal:  q.Literal,
			required: q.Param == "" || !optional[strings.ToLower(q.Param)],
		})
	}
	if len(op.params)+len(op.query) > MaxParams {
		return nil, fmt.Errorf("url template has more than %d parameters", MaxParams)
	}
	return op, nil
}

type opNode struct {
	static map[string]*opNode
	params []*paramEdge
	leaf   []*Operation
	wild   []*Operation
}

type paramEdge struct {
	prefix, suffix string // lower-cased
	child          *opNode
}

func (n *opNode) insert(op *Operation) {
	node := n
	for _, s := range op.Template.Segments {
		if !s.IsParam() {
			key := strings.ToLower(s.Literal)
			child := node.static[key]
			if child == nil {
				if node.static == nil {
					node.static = map[string]*opNode{}
				}
				child = &opNode{}
				node.static[key] = child
			}
			node = child
			continue
		}
		pre, suf := strings.ToLower(s.Prefix), strings.ToLower(s.Suffix)
		var edge *paramEdge
		for _, e := range node.params {
			if e.prefix == pre && e.suffix == suf {
				edge = e
				break
			}
		}
		if edge == nil {
			edge = &paramEdge{prefix: pre, suffix: suf, child: &opNode{}}
			node.params = append(node.params, edge)
		}
		node = edge.child
	}
	if op.Template.Wildcard {
		node.wild = append(node.wild, op)
	} else {
		node.leaf = append(node.leaf, op)
	}
}

// sortLeaves orders candidates so the most specific wins: an exact method
// before "*", more query constraints before fewer, and parameter edges with
// longer literal parts before bare "{p}".
func (n *opNode) sortLeaves() {
	less := func(ops []*Operation) func(i, j int) bool {
		return func(i, j int) bool {
			a, b := ops[i], ops[j]
			if (a.Method == "*") != (b.Method == "*") {
				return b.Method == "*"
			}
			if len(a.query) != len(b.query) {
				return len(a.query) > len(b.query)
			}
			return a.Index < b.Index
		}
	}
	sort.SliceStable(n.leaf, less(n.leaf))
	sort.SliceStable(n.wild, less(n.wild))
	sort.SliceStable(n.params, func(i, j int) bool {
		return len(n.params[i].prefix)+len(n.params[i].suffix) > len(n.params[j].prefix)+len(n.params[j].suffix)
	})
	for _, c := range n.static {
		c.sortLeaves()
	}
	for _, e := range n.params {
		e.child.sortLeaves()
	}
}
