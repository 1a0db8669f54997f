package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	settingsFile    = "../../schemas/extension-settings.schema.json"
	chartValuesFile = "chart-values.schema.json"
	chartDir        = "../../charts/apim-gateway"
)

// TestCommittedFilesUpToDate is what `make check-generated` enforces, so a
// plain `go test` catches a schema edit without `make generate` too.
func TestCommittedFilesUpToDate(t *testing.T) {
	t.Parallel()
	files, err := generate(settingsFile, chartValuesFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		old, err := os.ReadFile(filepath.Join(chartDir, f.name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(old, f.data) {
			t.Errorf("%s is stale: run `make generate`", f.name)
		}
	}
}

func TestCheckMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	var out, errOut bytes.Buffer
	args := []string{"-settings", settingsFile, "-chart-values", chartValuesFile, "-chart", dir}
	if code := run(append(args, "-check"), &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "values.schema.json is stale") {
		t.Fatalf("check on an empty chart: exit %d, %s", code, errOut.String())
	}
	if code := run(args, &out, &errOut); code != 0 {
		t.Fatalf("generate: exit %d, %s", code, errOut.String())
	}
	errOut.Reset()
	if code := run(append(args, "-check"), &out, &errOut); code != 0 {
		t.Fatalf("check after generate: exit %d, %s", code, errOut.String())
	}
	os.WriteFile(filepath.Join(dir, "templates", "_catalog.tpl"), []byte("edited"), 0o644)
	if code := run(append(args, "-check"), &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "_catalog.tpl is stale") {
		t.Fatalf("check after an edit: exit %d, %s", code, errOut.String())
	}
}

func TestLeafSchema(t *testing.T) {
	t.Parallel()
	min1 := 1.0
	tests := []struct {
		name string
		p    property
		want string
	}{
		{"boolean takes Arc's text", property{Type: json.RawMessage(`"boolean"`), Default: false},
			`{"default":false,"description":"","enum":[true,false,"true","false",null],"type":["boolean","string","null"]}`},
		{"integer takes digits", property{Type: json.RawMessage(`"integer"`), Minimum: &min1},
			`{"description":"","minimum":1,"pattern":"^-?[0-9]+$","type":["integer","string","null"]}`},
		{"enum allows unset", property{Type: json.RawMessage(`"string"`), Enum: []any{"A", "B"}},
			`{"description":"","enum":["A","B",null],"type":["string","null"]}`},
		{"protected keeps no pattern", property{Type: json.RawMessage(`"string"`), Pattern: "^secret-shape$", Protected: true, Description: "Token."},
			`{"description":"Token. Protected: pass it with --config-protected-settings; the chart keeps it only in the Secret.","type":["string","null"]}`},
		{"object takes JSON text", property{Type: json.RawMessage(`"object"`), AdditionalProperties: json.RawMessage(`{"type":"string"}`)},
			`{"additionalProperties":{"type":"string"},"description":"","type":["object","string","null"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := leafSchema("k", tt.p)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(s)
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestTreeConflicts(t *testing.T) {
	t.Parallel()
	root := &node{}
	leaf := map[string]any{"type": "string"}
	if err := root.insert("a.b", leaf); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"a.b.c": "a.b is a value",
		"a":     "a: is also the parent",
		"a.b":   "defined twice",
		"a..b":  "empty path segment",
	} {
		if err := root.insert(key, leaf); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("insert %q: %v, want %q", key, err, want)
		}
	}
	if err := root.insert("Azure.Cluster.Region", leaf); err != nil {
		t.Fatal(err)
	}
	s := root.toSchema()
	azure := s["properties"].(map[string]any)["Azure"].(map[string]any)
	if azure["additionalProperties"] != true || s["additionalProperties"] != false {
		t.Errorf("Azure.* must stay open (Arc injects more keys), the rest closed: %v", s)
	}
}

func TestGeneratedSchemaShape(t *testing.T) {
	t.Parallel()
	files, err := generate(settingsFile, chartValuesFile)
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(files[0].data, &schema); err != nil {
		t.Fatal(err)
	}
	get := func(path string) map[string]any {
		cur := schema
		for _, p := range strings.Split(path, ".") {
			props, _ := cur["properties"].(map[string]any)
			next, ok := props[p].(map[string]any)
			if !ok {
				t.Fatalf("no %s in values.schema.json", path)
			}
			cur = next
		}
		return cur
	}
	// Arc keys verbatim, the official chart's aliases, chart-only and injected values.
	for _, path := range []string{"gateway.configuration.uri", "gateway.auth.token", "gateway.auth.key", "service.ports.http",
		"observability.logs.std.format", "service.loadBalancerIP", "autoscaling.enabled", "Azure.proxySettings.proxyCert", "global"} {
		get(path)
	}
	if _, ok := get("gateway.auth.key")["pattern"]; ok {
		t.Error("the alias of a protected key has a pattern")
	}
	if !strings.Contains(get("gateway.auth.key")["description"].(string), "Alias of gateway.auth.token") {
		t.Error("alias description")
	}
	cat := string(files[1].data)
	for _, want := range []string{`define "apim-gateway.catalog"`, `{"key":"gateway.auth.token","aliases":["gateway.auth.key"],"protected":true}`, `"agent":["Azure.Cluster.Cloud"`} {
		if !strings.Contains(cat, want) {
			t.Errorf("catalog lacks %s", want)
		}
	}
}
