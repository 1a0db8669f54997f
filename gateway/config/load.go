package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// SnapshotFile is the file name the gateway reads when --config names a
// folder, and the agent writes.
const SnapshotFile = "snapshot.json"

// MaxSnapshotBytes bounds what Load reads: a snapshot larger than this is
// rejected rather than exhausting memory.
const MaxSnapshotBytes = 64 << 20

// Issue is one problem found in a snapshot, located by JSON path
// (for example "$.apis[2].properties.path").
type Issue struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (i Issue) String() string { return i.Path + ": " + i.Message }

// ValidationError lists every issue found in a snapshot.
type ValidationError struct {
	Source string
	Issues []Issue
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source + ": ")
	}
	fmt.Fprintf(&b, "%d problem(s) in configuration snapshot", len(e.Issues))
	for _, i := range e.Issues {
		b.WriteString("\n  " + i.String())
	}
	return b.String()
}

// ResolvePath returns the snapshot file a --config value names: the value
// itself when it is a file, or SnapshotFile inside it when it is a folder.
func ResolvePath(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("config %q: %w", path, err)
	}
	if st.IsDir() {
		return filepath.Join(path, SnapshotFile), nil
	}
	return path, nil
}

// Load reads, decodes and validates the snapshot at path (a file, or a
// folder holding snapshot.json). A returned *ValidationError lists every
// problem found.
func Load(path string) (*Snapshot, error) {
	file, err := ResolvePath(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("config %q: %w", file, err)
	}
	defer f.Close()
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(f, MaxSnapshotBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config %q: read: %w", file, err)
	}
	if n > MaxSnapshotBytes {
		return nil, fmt.Errorf("config %q: larger than %d bytes", file, MaxSnapshotBytes)
	}
	s, err := Parse(buf.Bytes())
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			ve.Source = file
			return nil, ve
		}
		return nil, fmt.Errorf("config %q: %w", file, err)
	}
	return s, nil
}

// Parse decodes a snapshot from JSON or YAML and validates it. Unknown
// fields and wrong types are reported with their JSON path, together with
// every reference and consistency problem.
func Parse(data []byte) (*Snapshot, error) {
	jsonData := data
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, &ValidationError{Issues: []Issue{{Path: "$", Message: "document is empty"}}}
	}
	if trimmed[0] != '{' {
		j, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, &ValidationError{Issues: []Issue{{Path: "$", Message: "not valid JSON or YAML: " + err.Error()}}}
		}
		jsonData = j
	}
	var generic any
	dec := json.NewDecoder(bytes.NewReader(jsonData))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return nil, &ValidationError{Issues: []Issue{{Path: "$", Message: "not valid JSON: " + jsonSyntaxDetail(jsonData, err)}}}
	}
	if dec.More() {
		return nil, &ValidationError{Issues: []Issue{{Path: "$", Message: "unexpected data after the JSON document"}}}
	}
	var issues []Issue
	checkShape(generic, reflect.TypeFor[Snapshot](), "$", &issues)
	if len(issues) > 0 {
		return nil, &ValidationError{Issues: issues}
	}
	var s Snapshot
	if err := json.Unmarshal(jsonData, &s); err != nil {
		// checkShape accepts only what decodes; reaching this is a bug in it.
		return nil, &ValidationError{Issues: []Issue{{Path: "$", Message: err.Error()}}}
	}
	if issues := Validate(&s); len(issues) > 0 {
		return nil, &ValidationError{Issues: issues}
	}
	return &s, nil
}

func jsonSyntaxDetail(data []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
		return fmt.Sprintf("%s (line %d)", se.Error(), line)
	}
	return err.Error()
}

// checkShape walks a decoded generic JSON value against the Go type it
// must decode into, reporting unknown fields and wrong types with their
// paths. encoding/json stops at the first problem and names no array
// index; users fixing a snapshot want all of them, located.
func checkShape(v any, t reflect.Type, path string, issues *[]Issue) {
	if v == nil {
		return // null decodes to the zero value
	}
	if t == reflect.TypeFor[json.RawMessage]() {
		return
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	bad := func(want string) {
		*issues = append(*issues, Issue{Path: path, Message: fmt.Sprintf("must be %s, found %s", want, jsonKind(v))})
	}
	switch t.Kind() {
	case reflect.String:
		if _, ok := v.(string); !ok {
			bad("a string")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			bad("a boolean")
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, ok := v.(json.Number)
		if !ok {
			bad("an integer")
			return
		}
		if _, err := strconv.ParseInt(n.String(), 10, 64); err != nil {
			bad("an integer")
		}
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			bad("an array")
			return
		}
		for i, e := range arr {
			checkShape(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), issues)
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			bad("an object")
			return
		}
		for _, k := range sortedKeys(obj) {
			checkShape(obj[k], t.Elem(), path+"."+k, issues)
		}
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			bad("an object")
			return
		}
		fields := jsonFields(t)
		// A field without omitempty is required: leaving out an API's path
		// must not quietly serve it at the root.
		for _, name := range sortedFieldNames(fields) {
			if _, present := obj[name]; !present && !strings.Contains(fields[name].Tag.Get("json"), ",omitempty") && !hasFoldedKey(obj, name) {
				*issues = append(*issues, Issue{Path: path + "." + name, Message: "is required"})
			}
		}
		for _, k := range sortedKeys(obj) {
			f, ok := fields[k]
			if !ok {
				*issues = append(*issues, Issue{Path: path + "." + k, Message: "unknown field" + suggest(k, fields)})
				continue
			}
			checkShape(obj[k], f.Type, path+"."+k, issues)
		}
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "null"
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// hasFoldedKey reports a key that differs from name only in case: the
// unknown-field message with its suggestion already covers it.
func hasFoldedKey(obj map[string]any, name string) bool {
	for k := range obj {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

func sortedFieldNames(m map[string]reflect.StructField) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// jsonFields maps JSON names to struct fields. JSON names are matched
// exactly: encoding/json's case-insensitive fallback would hide typos.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name := JSONName(f)
		if name == "" {
			continue
		}
		out[name] = f
	}
	return out
}

// JSONName returns the JSON property name of a struct field, or "" when
// the field is not encoded.
func JSONName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return ""
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		return f.Name
	}
	return name
}

func suggest(k string, fields map[string]reflect.StructField) string {
	for name := range fields {
		if strings.EqualFold(name, k) {
			return fmt.Sprintf(" (did you mean %q?)", name)
		}
	}
	return ""
}
