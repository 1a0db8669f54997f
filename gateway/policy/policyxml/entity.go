package policyxml

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxEntityLen bounds how far entityAt looks for the closing ';', so a
// stray '&' never makes the parser scan the rest of the document.
// "&#x10FFFF;" is the longest reference we decode.
const maxEntityLen = 12

// entityAt decodes the entity reference that starts at src[i] (an '&').
// ok is false when src[i:] is not one of the five predefined entities or a
// valid numeric character reference; callers then keep the '&' as a
// literal character. Real policies carry bare '&' in URLs and expressions,
// and rejecting them would reject documents APIM accepts.
func entityAt(src string, i int) (val string, width int, ok bool) {
	rest := src[i:]
	if len(rest) > maxEntityLen {
		rest = rest[:maxEntityLen]
	}
	semi := strings.IndexByte(rest, ';')
	if semi < 2 || rest[0] != '&' {
		return "", 0, false
	}
	name := rest[1:semi]
	switch name {
	case "quot":
		return `"`, semi + 1, true
	case "amp":
		return "&", semi + 1, true
	case "lt":
		return "<", semi + 1, true
	case "gt":
		return ">", semi + 1, true
	case "apos":
		return "'", semi + 1, true
	}
	if name[0] != '#' || len(name) < 2 {
		return "", 0, false
	}
	digits, base := name[1:], 10
	if digits[0] == 'x' {
		digits, base = digits[1:], 16
	}
	if digits == "" || digits[0] == '+' || digits[0] == '-' {
		return "", 0, false
	}
	n, err := strconv.ParseUint(digits, base, 32)
	// XML forbids NUL; invalid code points (surrogates, > U+10FFFF) are
	// not characters either.
	if err != nil || n == 0 || !utf8.ValidRune(rune(n)) {
		return "", 0, false
	}
	return string(rune(n)), semi + 1, true
}

// decodeEntities replaces every entity reference in s that entityAt
// recognises and leaves everything else, including bare '&', unchanged.
func decodeEntities(s string) string {
	amp := strings.IndexByte(s, '&')
	if amp < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:amp])
	for i := amp; i < len(s); {
		if s[i] == '&' {
			if val, w, ok := entityAt(s, i); ok {
				b.WriteString(val)
				i += w
				continue
			}
		}
		// Copy up to the next '&' in one step to keep this linear.
		next := strings.IndexByte(s[i+1:], '&')
		if next < 0 {
			b.WriteString(s[i:])
			break
		}
		b.WriteString(s[i : i+1+next])
		i += 1 + next
	}
	return b.String()
}
