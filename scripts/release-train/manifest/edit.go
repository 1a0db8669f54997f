package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Add appends a version to a train and returns the edited document. Edits
// work on the YAML node tree so comments and key order survive. The edit is
// refused when it introduces a problem the manifest did not have before
// (for example a version that does not move the train forward).
func Add(data []byte, train string, v Version) ([]byte, error) {
	doc, err := parseNode(data)
	if err != nil {
		return nil, err
	}
	versions, name, err := trainVersions(doc, train)
	if err != nil {
		return nil, err
	}
	if t, ok := mustParse(data).Train(train); ok {
		if _, dup := t.Find(v.Version); dup {
			return nil, Problem{Train: name, Version: v.Version, Msg: "is already listed"}
		}
	}
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, fmt.Errorf("encode version: %w", err)
	}
	versions.Content = append(versions.Content, &n)
	return finish(data, doc)
}

// Promote copies a version, unchanged, from one train to another (normally
// preview to stable) and returns the edited document.
func Promote(data []byte, from, to, version string) ([]byte, error) {
	doc, err := parseNode(data)
	if err != nil {
		return nil, err
	}
	m := mustParse(data)
	src, ok := m.Train(from)
	if !ok {
		return nil, fmt.Errorf("release train %q does not exist (trains: %s)", from, strings.Join(m.TrainNames(), ", "))
	}
	v, ok := src.Find(version)
	if !ok {
		return nil, Problem{Train: src.Name, Version: version, Msg: fmt.Sprintf("is not listed, so it cannot be promoted (listed: %s)", src.listed())}
	}
	if dst, ok := m.Train(to); ok {
		if _, dup := dst.Find(version); dup {
			return nil, Problem{Train: dst.Name, Version: version, Msg: "is already listed"}
		}
	}
	versions, _, err := trainVersions(doc, to)
	if err != nil {
		return nil, err
	}
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, fmt.Errorf("encode version: %w", err)
	}
	versions.Content = append(versions.Content, &n)
	return finish(data, doc)
}

func parseNode(data []byte) (*yaml.Node, error) {
	if _, err := Parse(data); err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("manifest: the document must be a mapping")
	}
	return &doc, nil
}

// mustParse is only called on data parseNode accepted.
func mustParse(data []byte) *Manifest {
	m, err := Parse(data)
	if err != nil {
		return &Manifest{}
	}
	return m
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// trainVersions finds the versions sequence of a train in the node tree.
func trainVersions(doc *yaml.Node, train string) (*yaml.Node, string, error) {
	trains := mapValue(doc.Content[0], "releaseTrains")
	if trains == nil || trains.Kind != yaml.SequenceNode {
		return nil, "", errors.New("manifest: releaseTrains is missing")
	}
	var names []string
	for _, t := range trains.Content {
		name := mapValue(t, "name")
		if name == nil {
			continue
		}
		names = append(names, name.Value)
		if !strings.EqualFold(name.Value, train) {
			continue
		}
		vs := mapValue(t, "versions")
		if vs == nil {
			vs = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			t.Content = append(t.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "versions"}, vs)
		}
		if vs.Kind != yaml.SequenceNode {
			return nil, "", fmt.Errorf("release train %q: versions is not a list", name.Value)
		}
		// An empty list written inline ([]) would stay inline.
		vs.Style = 0
		return vs, name.Value, nil
	}
	return nil, "", fmt.Errorf("release train %q does not exist (trains: %s)", train, strings.Join(names, ", "))
}

// finish encodes the edited tree and refuses it when it has problems the
// original did not.
func finish(orig []byte, doc *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	before := problemTexts(mustParse(orig).Check(CheckOptions{}))
	edited, err := Parse(buf.Bytes())
	if err != nil {
		return nil, err
	}
	var introduced []error
	for _, p := range edited.Check(CheckOptions{}) {
		if !slices.Contains(before, p.Error()) {
			introduced = append(introduced, p)
		}
	}
	if len(introduced) > 0 {
		return nil, errors.Join(introduced...)
	}
	return buf.Bytes(), nil
}

func problemTexts(ps []error) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Error())
	}
	return out
}
