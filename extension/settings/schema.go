// Package settings loads, validates and watches the extension settings that
// Azure Arc passes to the agent: one file per dotted key under a settings
// folder (a mounted ConfigMap) and a protected folder (a mounted Secret).
//
// schemas/extension-settings.schema.json is the single source of truth: key
// types, defaults, allowed values, and the custom keywords x-protected,
// x-live, x-aliases and x-type. The package does not embed it (Go embed cannot
// reach a parent folder); callers pass its bytes to ParseSchema.
package settings

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Key describes one setting as declared in the schema.
type Key struct {
	Name        string
	Description string
	Types       []string // JSON Schema types, in declaration order
	XType       string   // "duration" or ""
	Default     any      // converted to the Go form Settings returns
	HasDefault  bool
	Enum        []any
	Protected   bool
	Live        bool
	Aliases     []string
}

// Schema is a parsed and compiled extension settings schema.
type Schema struct {
	compiled    *jsonschema.Schema
	raw         any // the schema document, as jsonschema.UnmarshalJSON returns it
	keys        map[string]*Key
	names       []string // sorted canonical keys
	aliases     map[string]string
	passthrough []*regexp.Regexp
}

type rawProperty struct {
	Description string          `json:"description"`
	Type        json.RawMessage `json:"type"`
	Default     json.RawMessage `json:"default"`
	Enum        []any           `json:"enum"`
	Protected   bool            `json:"x-protected"`
	Live        bool            `json:"x-live"`
	Aliases     []string        `json:"x-aliases"`
	XType       string          `json:"x-type"`
}

type rawSchema struct {
	ID                string                     `json:"$id"`
	Properties        map[string]rawProperty     `json:"properties"`
	PatternProperties map[string]json.RawMessage `json:"patternProperties"`
}

// ParseSchema parses and compiles schemas/extension-settings.schema.json.
func ParseSchema(data []byte) (*Schema, error) {
	var rs rawSchema
	if err := json.Unmarshal(data, &rs); err != nil {
		return nil, fmt.Errorf("settings schema: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("settings schema: %w", err)
	}
	id := rs.ID
	if id == "" {
		id = "extension-settings.schema.json"
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(id, doc); err != nil {
		return nil, fmt.Errorf("settings schema: %w", err)
	}
	compiled, err := c.Compile(id)
	if err != nil {
		return nil, fmt.Errorf("settings schema: %w", err)
	}
	s := &Schema{compiled: compiled, raw: doc, keys: map[string]*Key{}, aliases: map[string]string{}}
	for name, p := range rs.Properties {
		k := &Key{Name: name, Description: p.Description, Enum: p.Enum, Protected: p.Protected,
			Live: p.Live, Aliases: p.Aliases, XType: p.XType}
		if len(p.Type) > 0 {
			var one string
			if json.Unmarshal(p.Type, &one) == nil {
				k.Types = []string{one}
			} else if err := json.Unmarshal(p.Type, &k.Types); err != nil {
				return nil, fmt.Errorf("settings schema: %s: type: %w", name, err)
			}
		}
		if len(k.Types) == 0 {
			return nil, fmt.Errorf("settings schema: %s: no type", name)
		}
		if k.Protected && !slices.Equal(k.Types, []string{"string"}) {
			return nil, fmt.Errorf("settings schema: %s: protected settings must be strings", name)
		}
		if len(p.Default) > 0 && string(p.Default) != "null" {
			d := json.NewDecoder(bytes.NewReader(p.Default))
			d.UseNumber()
			var v any
			if err := d.Decode(&v); err != nil {
				return nil, fmt.Errorf("settings schema: %s: default: %w", name, err)
			}
			k.Default, k.HasDefault = normalize(v, k.Types), true
		}
		s.keys[name] = k
		s.names = append(s.names, name)
		for _, a := range p.Aliases {
			if prev, dup := s.aliases[a]; dup {
				return nil, fmt.Errorf("settings schema: alias %s used by %s and %s", a, prev, name)
			}
			s.aliases[a] = name
		}
	}
	for a := range s.aliases {
		if _, clash := s.keys[a]; clash {
			return nil, fmt.Errorf("settings schema: alias %s is also a key", a)
		}
	}
	for pat := range rs.PatternProperties {
		re, err := regexp.Compile(pat)
		if err != nil {
			return nil, fmt.Errorf("settings schema: patternProperties %q: %w", pat, err)
		}
		s.passthrough = append(s.passthrough, re)
	}
	slices.Sort(s.names)
	return s, nil
}

// Key returns the declaration of a canonical key.
func (s *Schema) Key(name string) (*Key, bool) {
	k, ok := s.keys[name]
	return k, ok
}

// Keys returns the canonical keys, sorted.
func (s *Schema) Keys() []string { return slices.Clone(s.names) }

// Canonical resolves a key or a Helm-chart alias to the canonical key.
func (s *Schema) Canonical(name string) (canonical string, alias bool, ok bool) {
	if _, ok := s.keys[name]; ok {
		return name, false, true
	}
	if c, ok := s.aliases[name]; ok {
		return c, true, true
	}
	return "", false, false
}

func (s *Schema) isPassthrough(name string) bool {
	for _, re := range s.passthrough {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// normalize turns decoded JSON (with json.Number) into the Go values Settings
// stores: int64 for integers, float64 for numbers, recursively for containers.
func normalize(v any, types []string) any {
	switch x := v.(type) {
	case json.Number:
		if slices.Contains(types, "integer") {
			if i, err := x.Int64(); err == nil {
				return i
			}
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e, nil)
		}
	case []any:
		for i, e := range x {
			x[i] = normalize(e, nil)
		}
	}
	return v
}

// suggest returns the known name closest to name, or "".
func (s *Schema) suggest(name string) string {
	best, bestD := "", -1
	lower := strings.ToLower(name)
	consider := func(c string) {
		d := levenshtein(lower, strings.ToLower(c))
		if bestD < 0 || d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	for _, n := range s.names {
		consider(n)
	}
	for a := range s.aliases {
		consider(a)
	}
	limit := max(2, len(name)/4)
	if bestD < 0 || bestD > limit {
		return ""
	}
	if c, ok := s.aliases[best]; ok {
		return c
	}
	return best
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
