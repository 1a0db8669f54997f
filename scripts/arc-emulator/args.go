package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// argKind says how a flag takes its values, az style.
type argKind int

const (
	oneValue  argKind = iota // --flag value or --flag=value
	manyValue                // --flag a=1 b=2 ... (repeatable), like az's nargs='+'
	noValue                  // --yes
)

type argSpec struct {
	names []string // first is canonical
	kind  argKind
	def   string
	help  string
}

// args holds parsed flags by canonical name.
type args struct {
	vals map[string][]string
	set  map[string]bool
	spec []argSpec
}

func (a *args) get(name string) string {
	if v := a.vals[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	for _, s := range a.spec {
		if s.names[0] == name {
			return s.def
		}
	}
	return ""
}

func (a *args) all(name string) []string { return a.vals[name] }
func (a *args) isSet(name string) bool   { return a.set[name] }

func (a *args) boolValue(name string) (*bool, error) {
	if !a.isSet(name) {
		return nil, nil
	}
	b, err := strconv.ParseBool(a.get(name))
	if err != nil {
		return nil, fmt.Errorf("%s: %q is not true or false", name, a.get(name))
	}
	return &b, nil
}

// parseArgs parses az-style arguments: long and short names, values after
// a space or '=', and flags that take every following word until the next
// flag.
func parseArgs(specs []argSpec, in []string) (*args, error) {
	byName := map[string]*argSpec{}
	for i := range specs {
		for _, n := range specs[i].names {
			byName[n] = &specs[i]
		}
	}
	a := &args{vals: map[string][]string{}, set: map[string]bool{}, spec: specs}
	for i := 0; i < len(in); i++ {
		tok := in[i]
		if !strings.HasPrefix(tok, "-") {
			return nil, fmt.Errorf("unexpected argument %q", tok)
		}
		name, inline, hasInline := strings.Cut(tok, "=")
		s, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("unknown flag %s", name)
		}
		canon := s.names[0]
		a.set[canon] = true
		switch s.kind {
		case noValue:
			if hasInline {
				return nil, fmt.Errorf("%s takes no value", name)
			}
			a.vals[canon] = append(a.vals[canon], "true")
		case oneValue:
			if hasInline {
				a.vals[canon] = append(a.vals[canon], inline)
				continue
			}
			if i+1 >= len(in) {
				return nil, fmt.Errorf("%s needs a value", name)
			}
			i++
			a.vals[canon] = append(a.vals[canon], in[i])
		case manyValue:
			if hasInline {
				a.vals[canon] = append(a.vals[canon], inline)
			}
			n := 0
			for i+1 < len(in) && !isFlag(in[i+1]) {
				i++
				n++
				a.vals[canon] = append(a.vals[canon], in[i])
			}
			if !hasInline && n == 0 {
				return nil, fmt.Errorf("%s needs at least one key=value", name)
			}
		}
	}
	return a, nil
}

func isFlag(s string) bool {
	return len(s) > 1 && s[0] == '-' && (s[1] == '-' || s[1] >= 'a' && s[1] <= 'z' || s[1] >= 'A' && s[1] <= 'Z')
}

// settingKeyRE is a dotted Helm value path, the only key shape Arc settings
// use. Checking it also catches a secret pasted without its key (a token
// ending in '=' would otherwise become a key).
var settingKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// keyValues turns key=value words into a map. Errors name the flag and the
// position, never the word: it may hold a secret.
func keyValues(flag string, words []string) (map[string]string, error) {
	out := map[string]string{}
	for i, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s: item %d is not key=value", flag, i+1)
		}
		if !settingKeyRE.MatchString(k) {
			return nil, fmt.Errorf("%s: item %d: the key is not a dotted setting name", flag, i+1)
		}
		out[k] = v
	}
	return out, nil
}

// settingsFile reads a JSON object of settings, as az's
// --configuration-settings-file takes. Non-string values keep their JSON
// text, since Arc settings are strings.
func settingsFile(flag, path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s %s: a JSON object of settings is expected: %w", flag, path, err)
	}
	out := map[string]string{}
	for i, k := range slices.Sorted(maps.Keys(raw)) {
		if !settingKeyRE.MatchString(k) {
			return nil, fmt.Errorf("%s %s: key %d (sorted): the key is not a dotted setting name", flag, path, i+1)
		}
		var s string
		if json.Unmarshal(raw[k], &s) == nil {
			out[k] = s
		} else {
			out[k] = string(raw[k])
		}
	}
	return out, nil
}

// settingsFrom collects one kind of settings from its word flag or its
// file flag; az treats the two as mutually exclusive.
func settingsFrom(a *args, wordsFlag, fileFlag string) (map[string]string, error) {
	words, file := a.all(wordsFlag), a.get(fileFlag)
	switch {
	case len(words) > 0 && file != "":
		return nil, fmt.Errorf("%s and %s are mutually exclusive", wordsFlag, fileFlag)
	case file != "":
		return settingsFile(fileFlag, file)
	case len(words) > 0:
		return keyValues(wordsFlag, words)
	default:
		return map[string]string{}, nil
	}
}
