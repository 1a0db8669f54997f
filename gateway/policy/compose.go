package policy

import (
	"strings"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
)

// defaultGlobal is API Management's default global policy: nothing but
// forwarding in the backend section.
func defaultGlobal() *Document {
	d := &Document{Location: Location{Scope: ScopeGlobal}}
	for s := range numSections {
		d.present[s] = true
		d.sections[s] = []item{}
	}
	d.sections[Backend] = []item{{step: &forward{meta: meta{name: "forward-request", loc: d.Location, section: Backend, path: "forward-request[1]"}}}}
	return d
}

// Compose builds the pipeline of documents given outermost first (global,
// product, API, operation); nil documents are scopes without a policy. A
// nil global means the default global policy.
func Compose(global *Document, inner ...*Document) *Pipeline {
	if global == nil {
		global = defaultGlobal()
	}
	p := &Pipeline{}
	for s := range numSections {
		var steps []Step
		if global.present[s] {
			steps = expand(global.sections[s], nil)
		} else {
			steps = expand(defaultGlobal().sections[s], nil)
		}
		for _, d := range inner {
			if d == nil || !d.present[s] {
				continue // an absent section inherits the enclosing one
			}
			steps = expand(d.sections[s], steps)
		}
		p.sections[s] = steps
	}
	return p
}

// expand replaces <base /> in items with parent.
func expand(items []item, parent []Step) []Step {
	out := make([]Step, 0, len(items)+len(parent))
	for _, it := range items {
		if it.base {
			out = append(out, parent...)
			continue
		}
		out = append(out, it.step)
	}
	return out
}

// operationFor returns the operation an operation-scope location names
// ("api/operation"), nil at other scopes.
func (s *Set) operationFor(loc Location) *config.Operation {
	if loc.Scope != ScopeOperation {
		return nil
	}
	apiName, opName, _ := strings.Cut(loc.Name, "/")
	for i := range s.snapshot.APIs {
		a := &s.snapshot.APIs[i]
		if !strings.EqualFold(a.Name, apiName) {
			continue
		}
		for j := range a.Operations {
			if strings.EqualFold(a.Operations[j].Name, opName) {
				return &a.Operations[j]
			}
		}
	}
	return nil
}

// backend returns the snapshot backend a backend-id names.
func (s *Set) backend(id string) *config.Backend {
	name := config.RefName(id, "backends")
	for i := range s.snapshot.Backends {
		if strings.EqualFold(s.snapshot.Backends[i].Name, name) {
			return &s.snapshot.Backends[i]
		}
	}
	return nil
}
