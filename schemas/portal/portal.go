// Package portal holds the Azure portal's create experience for the
// extension (createUiDefinition.json) and the ARM template it feeds
// (mainTemplate.json), and checks them against the settings schema: every
// value the UI collects lands on a real setting, and every secret the UI
// collects lands in configurationProtectedSettings and nowhere else.
package portal

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
)

// CreateUIDefinition is createUiDefinition.json.
//
//go:embed createUiDefinition.json
var CreateUIDefinition []byte

// MainTemplate is mainTemplate.json.
//
//go:embed mainTemplate.json
var MainTemplate []byte

// ExtensionResourceType is the ARM type of an extension instance.
const ExtensionResourceType = "Microsoft.KubernetesConfiguration/extensions"

// Options are the facts the check compares the files with.
type Options struct {
	// ExtensionType the template must deploy.
	ExtensionType string
	// Trains the template may offer (the public release trains).
	Trains []string
	// Samples holds a valid value for every template parameter that has no
	// usable default, and for every securestring parameter (the check
	// traces where those values end up, so make them distinctive).
	Samples map[string]any
}

type uiElement struct {
	Name        string      `json:"name"`
	Type        string      `json:"type"`
	Elements    []uiElement `json:"elements"`
	Constraints struct {
		AllowedValues []struct {
			Value any `json:"value"`
		} `json:"allowedValues"`
	} `json:"constraints"`
}

type uiDefinition struct {
	Handler    string `json:"handler"`
	Version    string `json:"version"`
	Parameters struct {
		Basics []uiElement `json:"basics"`
		Steps  []struct {
			Name     string      `json:"name"`
			Elements []uiElement `json:"elements"`
		} `json:"steps"`
		Outputs map[string]string `json:"outputs"`
	} `json:"parameters"`
}

type templateParam struct {
	Type          string `json:"type"`
	DefaultValue  any    `json:"defaultValue"`
	AllowedValues []any  `json:"allowedValues"`
}

type template struct {
	Schema     string                   `json:"$schema"`
	Parameters map[string]templateParam `json:"parameters"`
	Variables  map[string]any           `json:"variables"`
	Resources  []map[string]any         `json:"resources"`
}

// Output references: basics('x'), basics('x').prop, steps('s').x, steps('s').x.prop
var outputRE = regexp.MustCompile(`^\[(basics\('([A-Za-z0-9_]+)'\)|steps\('([A-Za-z0-9_]+)'\)\.([A-Za-z0-9_]+))(\.([A-Za-z]+))?\]$`)

// paramTypeOf is the template parameter type each UI control produces.
var paramTypeOf = map[string]string{
	"Microsoft.Common.TextBox":             "string",
	"Microsoft.Common.DropDown":            "string",
	"Microsoft.Common.PasswordBox":         "securestring",
	"Microsoft.Common.CheckBox":            "bool",
	"Microsoft.Common.Slider":              "int",
	"Microsoft.Solutions.ResourceSelector": "string", // with .name or .id
}

// Check returns every problem found in the UI definition and the template.
func Check(uiData, templateData []byte, schema *settings.Schema, o Options) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	var ui uiDefinition
	if err := decodeJSON(uiData, &ui); err != nil {
		return []error{fmt.Errorf("createUiDefinition.json: %w", err)}
	}
	var tpl template
	if err := decodeJSON(templateData, &tpl); err != nil {
		return []error{fmt.Errorf("mainTemplate.json: %w", err)}
	}
	if ui.Handler != "Microsoft.Azure.CreateUIDef" {
		fail("createUiDefinition.json: handler is %q, want Microsoft.Azure.CreateUIDef", ui.Handler)
	}

	controls := map[string]uiElement{}
	for _, el := range ui.Parameters.Basics {
		collect(controls, "basics('"+el.Name+"')", el)
	}
	for _, st := range ui.Parameters.Steps {
		for _, el := range st.Elements {
			collect(controls, "steps('"+st.Name+"')."+el.Name, el)
		}
	}

	// Outputs <-> parameters, with matching types.
	feeds := map[string]uiElement{} // template parameter -> control
	for _, out := range slices.Sorted(maps.Keys(ui.Parameters.Outputs)) {
		expr := ui.Parameters.Outputs[out]
		m := outputRE.FindStringSubmatch(expr)
		if m == nil {
			fail("createUiDefinition.json: output %s: %q is not a reference to a control", out, expr)
			continue
		}
		ref := m[1]
		el, ok := controls[ref]
		if !ok {
			fail("createUiDefinition.json: output %s: %s is not a control", out, ref)
			continue
		}
		if el.Type == "Microsoft.Solutions.ResourceSelector" && m[6] != "name" && m[6] != "id" {
			fail("createUiDefinition.json: output %s: use %s.name or .id", out, ref)
		}
		p, ok := tpl.Parameters[out]
		if !ok {
			fail("output %s feeds no parameter of mainTemplate.json", out)
			continue
		}
		feeds[out] = el
		want, known := paramTypeOf[el.Type]
		if !known {
			fail("createUiDefinition.json: output %s: control type %s is not supported by this check", out, el.Type)
		} else if !strings.EqualFold(p.Type, want) {
			fail("output %s comes from a %s and needs a %s parameter, but mainTemplate.json declares %s", out, el.Type, want, p.Type)
		}
		if len(p.AllowedValues) > 0 && len(el.Constraints.AllowedValues) > 0 {
			var offered []string
			for _, av := range el.Constraints.AllowedValues {
				offered = append(offered, fmt.Sprint(av.Value))
			}
			var allowed []string
			for _, av := range p.AllowedValues {
				allowed = append(allowed, fmt.Sprint(av))
			}
			slices.Sort(offered)
			slices.Sort(allowed)
			if !slices.Equal(offered, allowed) {
				fail("output %s offers %v but mainTemplate.json allows %v", out, offered, allowed)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(tpl.Parameters)) {
		if _, ok := ui.Parameters.Outputs[name]; !ok {
			fail("mainTemplate.json parameter %s is not set by an output of createUiDefinition.json", name)
		}
	}
	for ref, el := range controls {
		if el.Type != "Microsoft.Common.PasswordBox" {
			continue
		}
		used := false
		for _, f := range feeds {
			used = used || f.Name == el.Name
		}
		if !used {
			fail("createUiDefinition.json: the password box %s reaches no output", ref)
		}
	}

	// Deploy the template in every combination of its bool parameters and
	// look at the extension resource ARM would create.
	var ext map[string]any
	for _, r := range tpl.Resources {
		if r["type"] == ExtensionResourceType {
			if ext != nil {
				fail("mainTemplate.json: more than one %s resource", ExtensionResourceType)
			}
			ext = r
		}
	}
	if ext == nil {
		return append(errs, fmt.Errorf("mainTemplate.json: no %s resource", ExtensionResourceType))
	}
	var bools, secrets []string
	for name, p := range tpl.Parameters {
		switch strings.ToLower(p.Type) {
		case "bool":
			bools = append(bools, name)
		case "securestring":
			secrets = append(secrets, name)
			if s, ok := o.Samples[name].(string); !ok || len(s) < 8 {
				fail("secure parameter %s needs a distinctive sample value (8 characters or more) to be traced", name)
			}
		}
	}
	sort.Strings(bools)
	sort.Strings(secrets)
	reachedProtected := map[string]bool{}
	seen := map[string]bool{}
	for combo := 0; combo < 1<<len(bools); combo++ {
		params := map[string]any{}
		var desc []string
		for name, p := range tpl.Parameters {
			switch {
			case o.Samples[name] != nil:
				params[name] = o.Samples[name]
			case p.DefaultValue != nil:
				params[name] = p.DefaultValue
			default:
				fail("parameter %s has no default and no sample value", name)
				return errs
			}
		}
		for i, name := range bools {
			params[name] = combo&(1<<i) != 0
			desc = append(desc, fmt.Sprintf("%s=%v", name, params[name]))
		}
		env := &armEnv{params: params, vars: tpl.Variables, varCache: map[string]any{}, resolving: map[string]bool{}}
		evaluated, err := env.value(ext)
		if err != nil {
			fail("mainTemplate.json: %v", err)
			return errs
		}
		for _, e := range checkResource(evaluated.(map[string]any), params, secrets, schema, o, reachedProtected) {
			msg := e.Error()
			if !seen[msg] {
				seen[msg] = true
				fail("with %s: %s", strings.Join(desc, " "), msg)
			}
		}
	}
	for _, name := range secrets {
		if !reachedProtected[name] {
			fail("secure parameter %s never reaches configurationProtectedSettings", name)
		}
	}
	return errs
}

func collect(into map[string]uiElement, ref string, el uiElement) {
	into[ref] = el
	// A section's children are addressed through it: steps('s').section.child
	for _, child := range el.Elements {
		collect(into, ref+"."+child.Name, child)
	}
}

// decodeJSON decodes one JSON document; trailing data is an error.
func decodeJSON(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("trailing data after the JSON document")
	}
	return nil
}

// checkResource checks one evaluated extension resource.
func checkResource(r map[string]any, params map[string]any, secrets []string, schema *settings.Schema, o Options, reachedProtected map[string]bool) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s, _ := r["scope"].(string); !strings.HasPrefix(s, "Microsoft.Kubernetes/connectedClusters/") || len(s) == len("Microsoft.Kubernetes/connectedClusters/") {
		fail("scope %q is not a connected cluster", r["scope"])
	}
	props, _ := r["properties"].(map[string]any)
	if props == nil {
		return append(errs, fmt.Errorf("the extension resource has no properties"))
	}
	if props["extensionType"] != o.ExtensionType {
		fail("extensionType is %v, want %s", props["extensionType"], o.ExtensionType)
	}
	train, _ := props["releaseTrain"].(string)
	if !slices.ContainsFunc(o.Trains, func(t string) bool { return strings.EqualFold(t, train) }) {
		fail("releaseTrain %q is not a public train (%s)", train, strings.Join(o.Trains, ", "))
	}
	auto, ok := props["autoUpgradeMinorVersion"].(bool)
	if !ok {
		fail("autoUpgradeMinorVersion is not a bool")
	}
	version, _ := props["version"].(string)
	switch {
	case auto && version != "":
		fail("version %q is set together with autoUpgradeMinorVersion true (Arc rejects that)", version)
	case !auto && version == "":
		fail("autoUpgradeMinorVersion is false but no version is pinned")
	}
	scope, _ := props["scope"].(map[string]any)
	ns, _ := scope["namespace"].(map[string]any)
	cl, _ := scope["cluster"].(map[string]any)
	switch {
	case ns != nil && cl != nil:
		fail("scope sets both namespace and cluster")
	case ns != nil && ns["targetNamespace"] == "":
		fail("scope.namespace.targetNamespace is empty")
	case cl != nil && cl["releaseNamespace"] == "":
		fail("scope.cluster.releaseNamespace is empty")
	case ns == nil && cl == nil:
		fail("scope sets neither namespace nor cluster")
	}

	plain, err := stringMap(props["configurationSettings"])
	if err != nil {
		fail("configurationSettings: %v", err)
	}
	protected, err := stringMap(props["configurationProtectedSettings"])
	if err != nil {
		fail("configurationProtectedSettings: %v", err)
	}
	for _, k := range slices.Sorted(maps.Keys(plain)) {
		canonical, _, ok := schema.Canonical(k)
		if !ok {
			fail("configurationSettings: %s is not a setting of the settings schema", k)
			continue
		}
		if key, _ := schema.Key(canonical); key.Protected {
			fail("configurationSettings: %s is protected and must go to configurationProtectedSettings", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(protected)) {
		canonical, _, ok := schema.Canonical(k)
		if !ok {
			fail("configurationProtectedSettings: %s is not a setting of the settings schema", k)
			continue
		}
		if key, _ := schema.Key(canonical); !key.Protected {
			fail("configurationProtectedSettings: %s is not x-protected in the settings schema", k)
		}
	}
	// Trace every secret: it may appear only as a protected setting's value.
	for _, name := range secrets {
		secret, _ := params[name].(string)
		if secret == "" {
			continue
		}
		if slices.Contains(slices.Collect(maps.Values(protected)), secret) {
			reachedProtected[name] = true
		}
		withoutProtected := maps.Clone(props)
		delete(withoutProtected, "configurationProtectedSettings")
		rest := maps.Clone(r)
		rest["properties"] = withoutProtected
		for _, where := range findString(rest, secret, "") {
			fail("secure parameter %s reaches %s", name, where)
		}
	}
	if _, issues := settings.LoadMap(plain, protected, schema); settings.HasErrors(issues) {
		fail("the settings do not validate: %v", settings.Errors(issues))
	}
	return errs
}

func stringMap(v any) (map[string]string, error) {
	if v == nil {
		return map[string]string{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("is a %T, not an object", v)
	}
	out := make(map[string]string, len(m))
	for k, item := range m {
		s, ok := item.(string)
		if !ok {
			return nil, fmt.Errorf("%s is a %T; Arc settings are strings", k, item)
		}
		out[k] = s
	}
	return out, nil
}

// findString returns the paths under v whose string value contains s.
func findString(v any, s, path string) []string {
	var out []string
	switch x := v.(type) {
	case string:
		if strings.Contains(x, s) {
			out = append(out, strings.TrimPrefix(path, "."))
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			out = append(out, findString(x[k], s, path+"."+k)...)
		}
	case []any:
		for i, item := range x {
			out = append(out, findString(item, s, fmt.Sprintf("%s[%d]", path, i))...)
		}
	}
	return out
}
