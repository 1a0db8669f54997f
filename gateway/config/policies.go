package config

import (
	"sort"
	"strings"
)

// PolicyScopes names every scope that carries policy XML ("global",
// "fragment f", "product p", "api a", "operation a/o"), sorted.
func (s *Snapshot) PolicyScopes() []string {
	var out []string
	if strings.TrimSpace(s.Policy) != "" {
		out = append(out, "global")
	}
	for _, f := range s.PolicyFragments {
		if strings.TrimSpace(f.Properties.Value) != "" {
			out = append(out, "fragment "+f.Name)
		}
	}
	for _, p := range s.Products {
		if strings.TrimSpace(p.Policy) != "" {
			out = append(out, "product "+p.Name)
		}
	}
	for _, a := range s.APIs {
		if strings.TrimSpace(a.Policy) != "" {
			out = append(out, "api "+a.Name)
		}
		for _, op := range a.Operations {
			if strings.TrimSpace(op.Policy) != "" {
				out = append(out, "operation "+a.Name+"/"+op.Name)
			}
		}
	}
	sort.Strings(out)
	return out
}
