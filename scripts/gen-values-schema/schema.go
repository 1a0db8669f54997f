package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
)

// property is the part of a settings-schema property the chart needs.
type property struct {
	Description          string          `json:"description"`
	Type                 json.RawMessage `json:"type"`
	Enum                 []any           `json:"enum"`
	Pattern              string          `json:"pattern"`
	MinLength            *int            `json:"minLength"`
	Minimum              *float64        `json:"minimum"`
	Maximum              *float64        `json:"maximum"`
	Default              any             `json:"default"`
	AdditionalProperties json.RawMessage `json:"additionalProperties"`
	Protected            bool            `json:"x-protected"`
	Live                 bool            `json:"x-live"`
	Aliases              []string        `json:"x-aliases"`
	Agent                bool            `json:"x-agent"`
}

// types returns the JSON types of p ("type" is a string or a list).
func (p property) types() ([]string, error) {
	if len(p.Type) == 0 {
		return nil, fmt.Errorf("no type")
	}
	var one string
	if err := json.Unmarshal(p.Type, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(p.Type, &many); err != nil {
		return nil, fmt.Errorf("type: %w", err)
	}
	return many, nil
}

// schemaFile is a schema whose properties are dotted keys.
type schemaFile struct {
	Properties map[string]property `json:"properties"`
}

func (s schemaFile) keys() []string {
	keys := make([]string, 0, len(s.Properties))
	for k := range s.Properties {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func readSchema(path string) (schemaFile, error) {
	var s schemaFile
	data, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	if len(s.Properties) == 0 {
		return s, fmt.Errorf("%s: no properties", path)
	}
	return s, nil
}

// node is one level of the nested values tree.
type node struct {
	children map[string]*node
	leaf     map[string]any
	open     bool // extra keys allowed (Arc may inject keys we do not list)
}

// insert places leaf at the dotted path key. A key that is both a value and
// a parent of other values cannot exist in a Helm values tree.
func (n *node) insert(key string, leaf map[string]any) error {
	parts := strings.Split(key, ".")
	cur := n
	for i, p := range parts {
		if p == "" {
			return fmt.Errorf("%s: empty path segment", key)
		}
		if cur.leaf != nil {
			return fmt.Errorf("%s: %s is a value, not an object", key, strings.Join(parts[:i], "."))
		}
		if cur.children == nil {
			cur.children = map[string]*node{}
		}
		next, ok := cur.children[p]
		if !ok {
			next = &node{open: cur.open || (i == 0 && p == "Azure")}
			cur.children[p] = next
		}
		cur = next
	}
	if cur.leaf != nil {
		return fmt.Errorf("%s: defined twice", key)
	}
	if cur.children != nil {
		return fmt.Errorf("%s: is also the parent of other values", key)
	}
	cur.leaf = leaf
	return nil
}

// toSchema renders the tree as JSON-schema objects.
func (n *node) toSchema() map[string]any {
	if n.leaf != nil {
		return n.leaf
	}
	props := map[string]any{}
	for k, c := range n.children {
		props[k] = c.toSchema()
	}
	return map[string]any{
		"type":                 []string{"object", "null"},
		"additionalProperties": n.open,
		"properties":           props,
	}
}

// leafSchema turns a settings property into the schema of one value.
// Arc passes --configuration-settings as strings, so every non-string type
// also accepts its text form; null means "not set". Protected values get no
// pattern or enum: a validation error would quote the value, and Arc shows
// Helm's errors in the extension status that `az k8s-extension show` returns.
func leafSchema(key string, p property) (map[string]any, error) {
	types, err := p.types()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	s := map[string]any{}
	desc := p.Description
	if p.Protected {
		desc += " Protected: pass it with --config-protected-settings; the chart keeps it only in the Secret."
		s["description"] = desc
		s["type"] = []string{"string", "null"}
		return s, nil
	}
	s["description"] = desc
	if p.Default != nil {
		s["default"] = p.Default
	}
	var out []string
	add := func(t ...string) {
		for _, x := range t {
			if !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
	}
	pattern := p.Pattern
	for _, t := range types {
		switch t {
		case "string":
			add("string")
		case "boolean":
			add("boolean", "string")
		case "integer":
			add("integer", "string")
			if pattern == "" && !slices.Contains(types, "string") {
				pattern = "^-?[0-9]+$"
			}
		case "number":
			add("number", "string")
			if pattern == "" && !slices.Contains(types, "string") {
				pattern = `^-?[0-9]+(\.[0-9]+)?$`
			}
		case "object", "array":
			add(t, "string") // JSON or YAML text, as Arc passes it
		default:
			return nil, fmt.Errorf("%s: unsupported type %q", key, t)
		}
	}
	add("null")
	s["type"] = out
	if pattern != "" {
		s["pattern"] = pattern
	}
	if p.MinLength != nil {
		s["minLength"] = *p.MinLength
	}
	if p.Minimum != nil {
		s["minimum"] = *p.Minimum
	}
	if p.Maximum != nil {
		s["maximum"] = *p.Maximum
	}
	if len(p.AdditionalProperties) > 0 {
		var ap any
		if err := json.Unmarshal(p.AdditionalProperties, &ap); err != nil {
			return nil, fmt.Errorf("%s: additionalProperties: %w", key, err)
		}
		s["additionalProperties"] = ap
	}
	if len(p.Enum) > 0 {
		enum := slices.Clone(p.Enum)
		if slices.Contains(types, "boolean") {
			enum = append(enum, "true", "false")
		}
		s["enum"] = append(enum, nil)
	} else if slices.Contains(types, "boolean") && len(types) == 1 {
		s["enum"] = []any{true, false, "true", "false", nil}
	}
	return s, nil
}

// valuesSchema builds values.schema.json: every settings key and alias at its
// nested values path, plus the chart-only values.
func valuesSchema(settings, chartValues schemaFile) ([]byte, error) {
	root := &node{children: map[string]*node{}}
	for _, src := range []schemaFile{settings, chartValues} {
		for _, key := range src.keys() {
			p := src.Properties[key]
			leaf, err := leafSchema(key, p)
			if err != nil {
				return nil, err
			}
			if err := root.insert(key, leaf); err != nil {
				return nil, err
			}
			for _, alias := range p.Aliases {
				a := cloneMap(leaf)
				a["description"] = fmt.Sprintf("Alias of %s (the official Helm chart's spelling; accepted with a warning). %s", key, p.Description)
				delete(a, "default") // a default here would always collide with the key it stands for
				if err := root.insert(alias, a); err != nil {
					return nil, err
				}
			}
		}
	}
	// Helm itself adds "global" to every chart's values.
	root.children["global"] = &node{leaf: map[string]any{"type": []string{"object", "null"}}}
	top := root.toSchema()
	top["$schema"] = "http://json-schema.org/draft-07/schema#"
	top["title"] = "Values of the apim-gateway chart (generated by scripts/gen-values-schema from schemas/extension-settings.schema.json; do not edit)"
	top["type"] = "object"
	return marshal(top)
}

func cloneMap(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
