package settings

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"sigs.k8s.io/yaml"
)

// MaxValueSize bounds one setting file (a ConfigMap holds at most 1 MiB).
const MaxValueSize = 1 << 20

// Severity of an Issue.
type Severity string

const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Issue is a problem found while loading settings. Messages name the key and
// never contain the value of a protected setting.
type Issue struct {
	Key      string
	Severity Severity
	Message  string
}

func (i Issue) Error() string { return fmt.Sprintf("%s: %s: %s", i.Severity, i.Key, i.Message) }

// HasErrors reports whether issues holds at least one Error.
func HasErrors(issues []Issue) bool {
	return slices.ContainsFunc(issues, func(i Issue) bool { return i.Severity == Error })
}

// Errors joins the Error issues into one error, or returns nil.
func Errors(issues []Issue) error {
	var errs []error
	for _, i := range issues {
		if i.Severity == Error {
			errs = append(errs, i)
		}
	}
	return errors.Join(errs...)
}

// Source tells where a value came from.
type Source string

const (
	FromDefault   Source = "default"
	FromSettings  Source = "settings"
	FromProtected Source = "protected"
)

// Settings is a validated (or partially valid, see the issues Load returns)
// set of values, with schema defaults filled in. Protected values are held as
// Secret. Printing a Settings with fmt or encoding/json redacts them.
type Settings struct {
	schema *Schema
	values map[string]any // canonical key -> bool, int64, float64, string, Secret, map[string]any, []any
	source map[string]Source
}

type rawValue struct {
	name  string // file name (the key or an alias)
	value string
	dir   Source
}

// Load reads settingsDir and protectedDir (either may be "" or missing),
// converts every value to its schema type, fills defaults and validates.
// It always returns a non-nil Settings; check HasErrors(issues).
func Load(settingsDir, protectedDir string, schema *Schema) (*Settings, []Issue) {
	var issues []Issue
	plain, is := readDir(settingsDir, FromSettings)
	issues = append(issues, is...)
	prot, is := readDir(protectedDir, FromProtected)
	issues = append(issues, is...)
	return build(schema, append(plain, prot...), issues)
}

// LoadMap builds Settings from key/value strings, as if they were files in the
// settings folder (plain) and the protected folder (protected). For tests and tools.
func LoadMap(plain, protected map[string]string, schema *Schema) (*Settings, []Issue) {
	var raws []rawValue
	for k, v := range plain {
		raws = append(raws, rawValue{k, v, FromSettings})
	}
	for k, v := range protected {
		raws = append(raws, rawValue{k, v, FromProtected})
	}
	slices.SortFunc(raws, func(a, b rawValue) int { return strings.Compare(string(a.dir)+a.name, string(b.dir)+b.name) })
	return build(schema, raws, nil)
}

func readDir(dir string, src Source) ([]rawValue, []Issue) {
	if dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []Issue{{Key: dir, Severity: Error, Message: fmt.Sprintf("cannot read the %s folder: %v", src, err)}}
	}
	var out []rawValue
	var issues []Issue
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") { // ..data, ..2024_01_01..., editor files
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p) // follows the key -> ..data/key symlink
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		data, err := readLimited(p)
		if err != nil {
			issues = append(issues, Issue{Key: name, Severity: Error, Message: err.Error()})
			continue
		}
		out = append(out, rawValue{name: name, value: string(data), dir: src})
	}
	return out, issues
}

func readLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("cannot read the file: %w", errors.Unwrap(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxValueSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the file: %w", err)
	}
	if len(data) > MaxValueSize {
		return nil, fmt.Errorf("value is larger than %d bytes", MaxValueSize)
	}
	return data, nil
}

func build(schema *Schema, raws []rawValue, issues []Issue) (*Settings, []Issue) {
	s := &Settings{schema: schema, values: map[string]any{}, source: map[string]Source{}}
	seen := map[string]rawValue{}
	conflict := map[string]bool{}
	for _, r := range raws {
		key, alias, known := schema.Canonical(r.name)
		if !known {
			if schema.isPassthrough(r.name) {
				if r.dir == FromProtected {
					s.values[r.name] = NewSecret(strings.TrimSpace(r.value))
				} else {
					s.values[r.name] = strings.TrimSpace(r.value)
				}
				s.source[r.name] = r.dir
				continue
			}
			msg := "unknown setting, ignored"
			if sug := schema.suggest(r.name); sug != "" {
				msg += fmt.Sprintf("; did you mean %q?", sug)
			}
			issues = append(issues, Issue{Key: r.name, Severity: Warning, Message: msg})
			continue
		}
		k := schema.keys[key]
		if alias {
			issues = append(issues, Issue{Key: key, Severity: Warning,
				Message: fmt.Sprintf("%q is the Helm chart's spelling; use %q", r.name, key)})
		}
		if k.Protected && r.dir != FromProtected {
			issues = append(issues, Issue{Key: key, Severity: Error, Message: fmt.Sprintf(
				"%q is a protected setting: pass it with --config-protected-settings, not --configuration-settings (value not shown)", r.name)})
			conflict[key] = true
			continue
		}
		if prev, dup := seen[key]; dup {
			var msg string
			if prev.dir != r.dir {
				msg = "set both as a plain and as a protected setting; set it once"
			} else {
				msg = fmt.Sprintf("set twice, as %q and %q; set it once", prev.name, r.name)
			}
			issues = append(issues, Issue{Key: key, Severity: Error, Message: msg})
			conflict[key] = true
			continue
		}
		seen[key] = r
	}
	for key, r := range seen {
		if conflict[key] {
			continue
		}
		k := schema.keys[key]
		text := strings.TrimSpace(r.value)
		if text == "" {
			continue // an empty value means "not set"
		}
		v, err := convert(k, text)
		if err != nil {
			issues = append(issues, Issue{Key: key, Severity: Error, Message: err.Error()})
			continue
		}
		s.values[key] = v
		s.source[key] = r.dir
	}
	for _, name := range schema.names {
		k := schema.keys[name]
		if _, set := s.values[name]; !set && k.HasDefault {
			s.values[name] = k.Default
			s.source[name] = FromDefault
		}
	}
	issues = append(issues, s.validate()...)
	sortIssues(issues)
	return s, issues
}

func sortIssues(issues []Issue) {
	slices.SortStableFunc(issues, func(a, b Issue) int {
		if a.Severity != b.Severity {
			if a.Severity == Error {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Key, b.Key)
	})
}

// convert turns the text of a file into the Go value for k. Errors never
// contain the text of a protected key.
func convert(k *Key, text string) (any, error) {
	show := func() string {
		if k.Protected {
			return "the value"
		}
		return strconv.Quote(elide(text))
	}
	var errs []string
	for _, t := range k.Types {
		switch t {
		case "string":
			if k.Protected {
				return NewSecret(text), nil
			}
			if k.XType == "duration" {
				if _, err := time.ParseDuration(text); err != nil {
					errs = append(errs, "a duration such as 60s or 5m")
					continue
				}
			}
			return text, nil
		case "boolean":
			switch strings.ToLower(text) {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
			errs = append(errs, "a boolean (true or false)")
		case "integer":
			if i, err := strconv.ParseInt(text, 10, 64); err == nil {
				return i, nil
			}
			errs = append(errs, "an integer")
		case "number":
			if f, err := strconv.ParseFloat(text, 64); err == nil {
				return f, nil
			}
			errs = append(errs, "a number")
		case "object", "array":
			js, err := yaml.YAMLToJSON([]byte(text))
			if err != nil {
				errs = append(errs, "a JSON or YAML "+t)
				continue
			}
			var v any
			d := json.NewDecoder(strings.NewReader(string(js)))
			d.UseNumber()
			if err := d.Decode(&v); err != nil {
				errs = append(errs, "a JSON or YAML "+t)
				continue
			}
			if _, ok := v.(map[string]any); ok && t == "object" {
				return normalize(v, nil), nil
			}
			if _, ok := v.([]any); ok && t == "array" {
				return normalize(v, nil), nil
			}
			errs = append(errs, "a JSON or YAML "+t)
		case "null":
		}
	}
	return nil, fmt.Errorf("%s is not %s", show(), strings.Join(errs, " or "))
}

func elide(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:57]) + "..."
	}
	return s
}

// validate runs the JSON Schema over the converted values (defaults included)
// and maps each failure to an Issue on its key.
func (s *Settings) validate() []Issue {
	doc := make(map[string]any, len(s.values))
	for k, v := range s.values {
		if sec, ok := v.(Secret); ok {
			v = sec.Reveal()
		}
		doc[k] = v
	}
	err := s.schema.compiled.Validate(doc)
	var ve *jsonschema.ValidationError
	if err == nil || !errors.As(err, &ve) {
		if err != nil {
			return []Issue{{Key: "", Severity: Error, Message: "schema validation failed: " + err.Error()}}
		}
		return nil
	}
	var out []Issue
	s.collect(ve, &out)
	// the same leaf can surface through several paths; keep one of each
	slices.SortFunc(out, func(a, b Issue) int { return strings.Compare(a.Key+a.Message, b.Key+b.Message) })
	return slices.Compact(out)
}

func (s *Settings) collect(e *jsonschema.ValidationError, out *[]Issue) {
	switch k := e.ErrorKind.(type) {
	case *kind.AnyOf:
		var missing []string
		for _, c := range e.Causes {
			if r, ok := c.ErrorKind.(*kind.Required); ok && len(c.Causes) == 0 {
				missing = append(missing, r.Missing...)
				continue
			}
			missing = nil
			break
		}
		if len(missing) > 0 {
			for _, m := range missing {
				*out = append(*out, Issue{Key: m, Severity: Error, Message: fmt.Sprintf(
					"one of %s is required%s", strings.Join(missing, ", "), s.condition(e.Causes[0].SchemaURL))})
			}
			return
		}
	case *kind.Required:
		for _, m := range k.Missing {
			*out = append(*out, Issue{Key: m, Severity: Error, Message: "is required" + s.condition(e.SchemaURL)})
		}
		return
	case *kind.DependentRequired:
		for _, m := range k.Missing {
			*out = append(*out, Issue{Key: m, Severity: Error, Message: fmt.Sprintf("is required when %s is set", k.Prop)})
		}
		return
	}
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			s.collect(c, out)
		}
		return
	}
	key := ""
	if len(e.InstanceLocation) > 0 {
		key = e.InstanceLocation[0]
	}
	*out = append(*out, Issue{Key: key, Severity: Error, Message: s.describe(key, e)})
}

// describe words a leaf validation error; protected values are never shown.
func (s *Settings) describe(key string, e *jsonschema.ValidationError) string {
	k := s.schema.keys[key]
	protected := k != nil && k.Protected
	val := func(v any) string {
		if protected {
			return "the value"
		}
		b, _ := json.Marshal(v)
		return elide(string(b))
	}
	where := ""
	if len(e.InstanceLocation) > 1 {
		where = " at " + strings.Join(e.InstanceLocation[1:], ".")
	}
	if strings.Contains(e.SchemaURL, "/dependentSchemas/") {
		dep := e.SchemaURL[strings.Index(e.SchemaURL, "/dependentSchemas/")+len("/dependentSchemas/"):]
		dep, _ = url.PathUnescape(strings.SplitN(dep, "/", 2)[0])
		where += " (because " + strings.ReplaceAll(dep, "~1", "/") + " is set)"
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Enum:
		var want []string
		for _, w := range k.Want {
			want = append(want, fmt.Sprint(w))
		}
		return fmt.Sprintf("%s is not allowed%s; use one of %s", val(k.Got), where, strings.Join(want, ", "))
	case *kind.Const:
		return fmt.Sprintf("%s is not allowed%s; it must be %v", val(k.Got), where, k.Want)
	case *kind.Type:
		return fmt.Sprintf("value%s is %s, want %s", where, k.Got, strings.Join(k.Want, " or "))
	case *kind.Pattern:
		if protected {
			return "the value does not have the expected format (value not shown)"
		}
		return fmt.Sprintf("%s%s does not match %s", val(k.Got), where, k.Want)
	case *kind.Minimum:
		return fmt.Sprintf("%s%s is below the minimum %s", rat(k.Got, protected), where, k.Want.RatString())
	case *kind.Maximum:
		return fmt.Sprintf("%s%s is above the maximum %s", rat(k.Got, protected), where, k.Want.RatString())
	case *kind.MinLength:
		return fmt.Sprintf("value%s is shorter than %d characters", where, k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("value%s is longer than %d characters", where, k.Want)
	case *kind.AdditionalProperties:
		return fmt.Sprintf("unexpected field(s)%s: %s", where, strings.Join(k.Properties, ", "))
	}
	return fmt.Sprintf("value%s fails the schema keyword %s", where, strings.Join(e.ErrorKind.KeywordPath(), "/"))
}

func rat(r *big.Rat, protected bool) string {
	if protected {
		return "the value"
	}
	return r.RatString()
}

// condition explains a "then" requirement by the "if" keys and their values,
// e.g. " with gateway.auth.type = AzureAdApp".
func (s *Settings) condition(schemaURL string) string {
	_, frag, ok := strings.Cut(schemaURL, "#")
	if !ok {
		return ""
	}
	parts := strings.Split(strings.Trim(frag, "/"), "/")
	i := slices.Index(parts, "then")
	if i < 0 {
		return ""
	}
	node := s.schema.raw
	for _, p := range parts[:i] {
		switch n := node.(type) {
		case map[string]any:
			node = n[p]
		case []any:
			idx, err := strconv.Atoi(p)
			if err != nil || idx >= len(n) {
				return ""
			}
			node = n[idx]
		default:
			return ""
		}
	}
	m, _ := node.(map[string]any)
	cond, _ := m["if"].(map[string]any)
	props, _ := cond["properties"].(map[string]any)
	var keys []string
	for p := range props {
		keys = append(keys, p)
	}
	slices.Sort(keys)
	var terms []string
	for _, p := range keys {
		v, ok := s.values[p]
		if !ok {
			continue
		}
		if _, sec := v.(Secret); sec {
			v = Redacted
		}
		terms = append(terms, fmt.Sprintf("%s = %v", p, v))
	}
	if len(terms) == 0 {
		return ""
	}
	return " with " + strings.Join(terms, " and ")
}
