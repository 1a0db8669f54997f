package config_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
)

// The schema and its fixtures live at the repository root, two levels up
// from this package.
const (
	schemaFile  = "../../schemas/gateway-configuration.schema.json"
	testdataDir = "../../schemas/testdata"
	schemaID    = "https://github.com/seed393f6fe3/apim-arc-gateway/schemas/gateway-configuration.schema.json"
)

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc := readJSONFile(t, schemaFile)
	if id, _ := doc.(map[string]any)["$id"].(string); id != schemaID {
		t.Fatalf("schema $id = %q, want %q", id, schemaID)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaID, doc); err != nil {
		t.Fatalf("add schema: %v", err)
	}
	sch, err := c.Compile(schemaID)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return sch
}

// readJSONFile decodes a JSON or YAML file the way the schema validator
// expects its input.
func readJSONFile(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" {
		if data, err = yaml.YAMLToJSON(data); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

func fixtures(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"*.json", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(testdataDir, dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	slices.Sort(files)
	return files
}

func TestValidFixtures(t *testing.T) {
	t.Parallel()
	sch := compileSchema(t)
	files := fixtures(t, "valid")
	if len(files) < 6 {
		t.Fatalf("found %d valid fixtures, want at least 6", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			if _, err := config.Load(file); err != nil {
				t.Errorf("config.Load: %v", err)
			}
			if err := sch.Validate(readJSONFile(t, file)); err != nil {
				t.Errorf("schema: %v", err)
			}
		})
	}
}

// schemaCatches lists the invalid fixtures whose problem the JSON schema
// can express; the others break cross-entity rules (references,
// uniqueness) only the loader checks.
var schemaCatches = map[string]bool{
	"bad-duration-trailing-t.json":          true,
	"bad-duration.json":                     true,
	"bad-method.json":                       true,
	"bad-name.json":                         true,
	"bad-protocol.json":                     true,
	"bad-service-url.json":                  true,
	"bad-versioning-scheme.yaml":            true,
	"certificate-without-key-material.json": true,
	"missing-api-name.json":                 true,
	"named-value-bad-display-name.json":     true,
	"query-set-without-name.json":           true,
	"schema-version-number.yaml":            true,
	"short-subscription-key.json":           true,
	"single-backend-without-url.json":       true,
	"unknown-field-case.json":               true,
	"unknown-field-yaml.yaml":               true,
	"wrong-schema-version.json":             true,
	"wrong-type-integer.yaml":               true,
	"wrong-type.json":                       true,
}

func TestInvalidFixtures(t *testing.T) {
	t.Parallel()
	sch := compileSchema(t)
	files := fixtures(t, "invalid")
	if len(files) < 15 {
		t.Fatalf("found %d invalid fixtures, want at least 15", len(files))
	}
	for name := range schemaCatches {
		if !slices.Contains(files, filepath.Join(testdataDir, "invalid", name)) {
			t.Errorf("schemaCatches names %s, which is not a fixture", name)
		}
	}
	for _, file := range files {
		base := filepath.Base(file)
		t.Run(base, func(t *testing.T) {
			t.Parallel()
			want := readExpected(t, strings.TrimSuffix(file, filepath.Ext(file))+".expected")
			_, err := config.Load(file)
			var ve *config.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("config.Load error = %v, want a *config.ValidationError", err)
			}
			if ve.Source != file {
				t.Errorf("Source = %q, want %q", ve.Source, file)
			}
			var got []string
			for _, i := range ve.Issues {
				if i.Message == "" {
					t.Errorf("issue at %s has no message", i.Path)
				}
				if !slices.Contains(got, i.Path) {
					got = append(got, i.Path)
				}
			}
			for _, p := range want {
				if !slices.Contains(got, p) {
					t.Errorf("missing issue at %s", p)
				}
			}
			for _, p := range got {
				if !slices.Contains(want, p) {
					t.Errorf("unexpected issue at %s", p)
				}
			}
			if t.Failed() {
				t.Logf("error:\n%v", err)
			}
			if schemaCatches[base] {
				if sch.Validate(readJSONFile(t, file)) == nil {
					t.Errorf("the JSON schema accepts %s", base)
				}
			}
		})
	}
}

func readExpected(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("every invalid fixture needs a .expected file: %v", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s lists no path", path)
	}
	return out
}

// TestSchemaMatchesGoTypes walks config.Snapshot and the schema side by
// side, so that neither gains a field the other lacks.
func TestSchemaMatchesGoTypes(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	w := schemaWalker{t: t, root: root}
	w.compare(reflect.TypeFor[config.Snapshot](), root, "$")
}

// requiredExceptions are fields without omitempty that the schema does not
// require. The loader treats every field without omitempty as required, so
// this list should stay empty.
var requiredExceptions = map[string]bool{}

type schemaWalker struct {
	t    *testing.T
	root map[string]any
}

// deref resolves a local "$ref", keeping the referring node's own keywords
// (a description, a stricter pattern) on top of the target's.
func (w schemaWalker) deref(node map[string]any, path string) map[string]any {
	ref, ok := node["$ref"].(string)
	if !ok {
		return node
	}
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		w.t.Fatalf("%s: $ref %q is not local", path, ref)
	}
	var target any = w.root
	for _, tok := range strings.Split(ptr, "/") {
		obj, ok := target.(map[string]any)
		if !ok {
			w.t.Fatalf("%s: $ref %q does not resolve", path, ref)
		}
		target = obj[strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")]
	}
	tnode, ok := target.(map[string]any)
	if !ok {
		w.t.Fatalf("%s: $ref %q does not resolve to a schema", path, ref)
	}
	merged := map[string]any{}
	for k, v := range w.deref(tnode, path) {
		merged[k] = v
	}
	for k, v := range node {
		if k != "$ref" {
			merged[k] = v
		}
	}
	return merged
}

func (w schemaWalker) compare(typ reflect.Type, raw any, path string) {
	t := w.t
	node, ok := raw.(map[string]any)
	if !ok {
		t.Errorf("%s: schema is %T, want an object", path, raw)
		return
	}
	node = w.deref(node, path)
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ == reflect.TypeFor[json.RawMessage]() {
		if st, ok := node["type"]; ok {
			t.Errorf("%s: Go type is json.RawMessage (any JSON) but the schema says type %v", path, st)
		}
		return
	}
	var want string
	switch typ.Kind() {
	case reflect.String:
		want = "string"
	case reflect.Bool:
		want = "boolean"
	case reflect.Int, reflect.Int32, reflect.Int64:
		want = "integer"
	case reflect.Slice:
		want = "array"
	case reflect.Map, reflect.Struct:
		want = "object"
	default:
		t.Errorf("%s: Go kind %s has no schema counterpart in this test", path, typ.Kind())
		return
	}
	got, _ := node["type"].(string)
	if got != want {
		t.Errorf("%s: schema type %q, Go type %s wants %q", path, got, typ, want)
		return
	}
	switch typ.Kind() {
	case reflect.Slice:
		items, ok := node["items"]
		if !ok {
			t.Errorf("%s: array without items", path)
			return
		}
		w.compare(typ.Elem(), items, path+"[]")
	case reflect.Map:
		ap, ok := node["additionalProperties"].(map[string]any)
		if !ok {
			t.Errorf("%s: map must have an additionalProperties schema", path)
			return
		}
		w.compare(typ.Elem(), ap, path+".*")
	case reflect.Struct:
		w.compareStruct(typ, node, path)
	}
}

func (w schemaWalker) compareStruct(typ reflect.Type, node map[string]any, path string) {
	t := w.t
	if node["additionalProperties"] != false {
		t.Errorf("%s: object must set additionalProperties: false", path)
	}
	props, _ := node["properties"].(map[string]any)
	goFields := map[string]reflect.StructField{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		if name := config.JSONName(f); name != "" {
			goFields[name] = f
		}
	}
	for name, f := range goFields {
		p := path + "." + name
		sub, ok := props[name]
		if !ok {
			t.Errorf("%s: Go field %s.%s is missing from the schema", p, typ.Name(), f.Name)
			continue
		}
		w.compare(f.Type, sub, p)
	}
	for name := range props {
		if _, ok := goFields[name]; !ok {
			t.Errorf("%s.%s: schema property has no Go field in %s", path, name, typ)
		}
	}
	var required []string
	if r, ok := node["required"].([]any); ok {
		for _, v := range r {
			s, _ := v.(string)
			required = append(required, s)
		}
	}
	// A field the schema requires is one the Go type always encodes; a
	// field the Go type always encodes is required unless listed above.
	for name, f := range goFields {
		p := path + "." + name
		omitempty := strings.Contains(f.Tag.Get("json"), ",omitempty")
		req := slices.Contains(required, name)
		switch {
		case req && omitempty:
			t.Errorf("%s: the schema requires it but the Go field is omitempty", p)
		case !req && !omitempty && !requiredExceptions[p]:
			t.Errorf("%s: the Go field is not omitempty but the schema does not require it", p)
		}
	}
	for _, name := range required {
		if _, ok := goFields[name]; !ok {
			t.Errorf("%s: schema requires %q, which is not a property", path, name)
		}
	}
}
