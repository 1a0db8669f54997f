package manifest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"
)

// schemas/manifest.schema.json describes the same shape Parse accepts, so
// editors can validate extension-manifest.yaml as it is typed.
func TestManifestSchema(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	data, err := os.ReadFile(filepath.Join(root, "schemas", "manifest.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("manifest.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("manifest.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path  string
		valid bool
	}{
		{filepath.Join(root, "extension-manifest.yaml"), true},
		{"testdata/good.yaml", true},
		{"testdata/base-new.yaml", true},
		{"testdata/unknown-field.yaml", false},   // versoins
		{"testdata/fields.yaml", false},          // 0.1, "latest", no autoUpgradeTarget
		{"testdata/header-problems.yaml", false}, // default scope "everywhere"
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			y, err := os.ReadFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			j, err := yaml.YAMLToJSON(y)
			if err != nil {
				t.Fatal(err)
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
			if err != nil {
				t.Fatal(err)
			}
			err = schema.Validate(inst)
			if (err == nil) != tt.valid {
				t.Errorf("valid = %v, want %v: %v", err == nil, tt.valid, err)
			}
			// The Go parser agrees on the structure.
			if _, perr := Parse(y); tt.valid && perr != nil {
				t.Errorf("Parse: %v", perr)
			}
		})
	}
}
