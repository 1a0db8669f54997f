package settings

import (
	"fmt"
	"log/slog"
)

// Redacted is what a Secret prints instead of its value.
const Redacted = "[REDACTED]"

// Secret holds a protected value. Every way of printing or serialising it
// (fmt verbs, JSON, text, slog) yields Redacted; only Reveal returns the value.
// The value sits behind a closure, so even reflection-based printing of a
// struct that embeds a Secret shows a function pointer, not the value.
type Secret struct {
	get func() string
}

// NewSecret wraps v.
func NewSecret(v string) Secret { return Secret{get: func() string { return v }} }

// Reveal returns the value. Call it only where the value is used.
func (s Secret) Reveal() string {
	if s.get == nil {
		return ""
	}
	return s.get()
}

// IsZero reports whether the secret is empty or unset.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

// Equal compares two secrets by value.
func (s Secret) Equal(o Secret) bool { return s.Reveal() == o.Reveal() }

func (s Secret) String() string                { return Redacted }
func (s Secret) GoString() string              { return "settings.Secret(" + Redacted + ")" }
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(Redacted)) }
func (s Secret) MarshalJSON() ([]byte, error)  { return []byte(`"` + Redacted + `"`), nil }
func (s Secret) MarshalText() ([]byte, error)  { return []byte(Redacted), nil }
func (s Secret) LogValue() slog.Value          { return slog.StringValue(Redacted) }
