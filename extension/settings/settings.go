package settings

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"
)

// Schema returns the schema the settings were loaded with.
func (s *Settings) Schema() *Schema { return s.schema }

// Get returns the value of a canonical key (Secret for protected keys).
func (s *Settings) Get(key string) (any, bool) {
	v, ok := s.values[key]
	return v, ok
}

// IsSet reports whether the key was passed (not defaulted).
func (s *Settings) IsSet(key string) bool {
	src, ok := s.source[key]
	return ok && src != FromDefault
}

// Source tells where the value of key came from ("" when absent).
func (s *Settings) Source(key string) Source { return s.source[key] }

// Keys returns the keys that have a value (passed or defaulted), sorted.
func (s *Settings) Keys() []string { return slices.Sorted(maps.Keys(s.values)) }

// String returns a string setting; "" when unset or protected (use Secret).
func (s *Settings) String(key string) string {
	switch v := s.values[key].(type) {
	case string:
		return v
	case int64:
		return fmt.Sprint(v)
	}
	return ""
}

// Bool returns a boolean setting; false when unset.
func (s *Settings) Bool(key string) bool {
	b, _ := s.values[key].(bool)
	return b
}

// Int returns an integer setting; 0 when unset.
func (s *Settings) Int(key string) int {
	i, _ := s.values[key].(int64)
	return int(i)
}

// Float returns a number setting; 0 when unset.
func (s *Settings) Float(key string) float64 {
	switch v := s.values[key].(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	}
	return 0
}

// Duration returns a duration setting (x-type duration); 0 when unset.
func (s *Settings) Duration(key string) time.Duration {
	v, _ := s.values[key].(string)
	d, _ := time.ParseDuration(v)
	return d
}

// Map returns an object setting; nil when unset.
func (s *Settings) Map(key string) map[string]any {
	m, _ := s.values[key].(map[string]any)
	return m
}

// StringMap returns an object setting whose values are strings (annotations,
// nodeSelector); non-string values are formatted with fmt.
func (s *Settings) StringMap(key string) map[string]string {
	m := s.Map(key)
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if str, ok := v.(string); ok {
			out[k] = str
		} else {
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

// List returns an array setting; nil when unset.
func (s *Settings) List(key string) []any {
	l, _ := s.values[key].([]any)
	return l
}

// Secret returns a protected setting; the zero Secret when unset.
func (s *Settings) Secret(key string) Secret {
	sec, _ := s.values[key].(Secret)
	return sec
}

// redacted returns the values with every secret replaced by Redacted.
func (s *Settings) redacted() map[string]any {
	out := make(map[string]any, len(s.values))
	for k, v := range s.values {
		if _, ok := v.(Secret); ok {
			v = Redacted
		}
		out[k] = v
	}
	return out
}

// MarshalJSON writes the values with secrets redacted.
func (s *Settings) MarshalJSON() ([]byte, error) { return json.Marshal(s.redacted()) }

// GoString formats the values with secrets redacted.
func (s *Settings) GoString() string { return fmt.Sprintf("settings.Settings%v", s.redacted()) }

// Format makes every fmt verb print the redacted values.
func (s *Settings) Format(f fmt.State, verb rune) {
	_, _ = fmt.Fprintf(f, "%v", s.redacted())
}

// Change lists the keys whose value differs between two loads.
type Change struct {
	Keys    []string // every changed key, sorted
	Live    []string // changed keys marked x-live: apply them in place
	Restart []string // changed keys that need the pods restarted
}

// Empty reports whether nothing changed.
func (c Change) Empty() bool { return len(c.Keys) == 0 }

// Diff compares old (may be nil) with s.
func (s *Settings) Diff(old *Settings) Change {
	var c Change
	var oldVals map[string]any
	if old != nil {
		oldVals = old.values
	}
	keys := map[string]bool{}
	for k := range s.values {
		keys[k] = true
	}
	for k := range oldVals {
		keys[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		a, inA := oldVals[k]
		b, inB := s.values[k]
		if inA == inB && equalValue(a, b) {
			continue
		}
		c.Keys = append(c.Keys, k)
		if d, ok := s.schema.keys[k]; ok && d.Live {
			c.Live = append(c.Live, k)
		} else {
			c.Restart = append(c.Restart, k)
		}
	}
	return c
}

func equalValue(a, b any) bool {
	sa, okA := a.(Secret)
	sb, okB := b.(Secret)
	if okA || okB {
		return okA && okB && sa.Equal(sb)
	}
	return reflect.DeepEqual(a, b)
}
