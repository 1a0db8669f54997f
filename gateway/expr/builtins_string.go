package expr

import (
	"fmt"
	"strings"
	"unicode"
)

// StringComparison and StringSplitOptions enum values as in .NET.
const (
	cmpOrdinal           = 4
	cmpOrdinalIgnoreCase = 5
	splitRemoveEmpty     = 1
	splitTrimEntries     = 2
)

func ignoreCase(cmp Value) bool {
	return cmp.k == KEnum && (cmp.n == 1 || cmp.n == 3 || cmp.n == cmpOrdinalIgnoreCase)
}

func stringEquals(s string, args []Value) (Value, error) {
	other := args[0]
	if other.k != KString {
		return Bool(false), nil
	}
	if len(args) == 2 && ignoreCase(args[1]) {
		return Bool(strings.EqualFold(s, other.s)), nil
	}
	return Bool(s == other.s), nil
}

func (ev *evaluator) stringMethod(c *callExpr, s string, args []Value) (Value, error) {
	n := len(args)
	str := func(i int) (string, error) {
		if args[i].k == KChar {
			return string(rune(args[i].n)), nil
		}
		if args[i].k != KString {
			if args[i].k == KNull {
				return "", fmt.Errorf("value cannot be null (argument %d of %s)", i+1, c.name)
			}
			return "", fmt.Errorf("argument %d of %s must be a string, got %s", i+1, c.name, args[i].k)
		}
		return args[i].s, nil
	}
	switch c.name {
	case "Contains", "StartsWith", "EndsWith", "IndexOf", "LastIndexOf":
		if n < 1 || n > 2 {
			break
		}
		sub, err := str(0)
		if err != nil {
			return Null, err
		}
		hay := s
		if n == 2 && ignoreCase(args[1]) {
			hay, sub = strings.ToLower(hay), strings.ToLower(sub)
		}
		if n == 2 && args[1].k == KInt && (c.name == "IndexOf") {
			start := int(args[1].n)
			if start < 0 || start > len(s) {
				return Null, fmt.Errorf("startIndex out of range")
			}
			i := strings.Index(s[start:], sub)
			if i >= 0 {
				i += start
			}
			return Int(int64(i)), nil
		}
		switch c.name {
		case "Contains":
			return Bool(strings.Contains(hay, sub)), nil
		case "StartsWith":
			return Bool(strings.HasPrefix(hay, sub)), nil
		case "EndsWith":
			return Bool(strings.HasSuffix(hay, sub)), nil
		case "IndexOf":
			return Int(int64(strings.Index(hay, sub))), nil
		}
		return Int(int64(strings.LastIndex(hay, sub))), nil
	case "Substring":
		if n < 1 || n > 2 || args[0].k != KInt {
			break
		}
		start := int(args[0].n)
		if start < 0 || start > len(s) {
			return Null, fmt.Errorf("startIndex cannot be larger than length of string (%d > %d)", start, len(s))
		}
		if n == 1 {
			return String(s[start:]), nil
		}
		l := int(args[1].Int())
		if l < 0 || start+l > len(s) {
			return Null, fmt.Errorf("index and length must refer to a location within the string")
		}
		return String(s[start : start+l]), nil
	case "Replace":
		if n != 2 {
			break
		}
		old, err := str(0)
		if err != nil {
			return Null, err
		}
		if old == "" {
			return Null, fmt.Errorf("string cannot be of zero length")
		}
		nw := ""
		if args[1].k != KNull {
			if nw, err = str(1); err != nil {
				return Null, err
			}
		}
		return String(strings.ReplaceAll(s, old, nw)), nil
	case "ToLower", "ToLowerInvariant":
		return String(strings.ToLower(s)), nil
	case "ToUpper", "ToUpperInvariant":
		return String(strings.ToUpper(s)), nil
	case "Trim", "TrimStart", "TrimEnd":
		cut := func(r rune) bool { return unicode.IsSpace(r) }
		if n > 0 {
			set := ""
			for _, a := range args {
				if a.k == KArray {
					for _, it := range a.List().Items {
						set += toString(it)
					}
				} else {
					set += toString(a)
				}
			}
			cut = func(r rune) bool { return strings.ContainsRune(set, r) }
		}
		switch c.name {
		case "Trim":
			return String(strings.TrimFunc(s, cut)), nil
		case "TrimStart":
			return String(strings.TrimLeftFunc(s, cut)), nil
		}
		return String(strings.TrimRightFunc(s, cut)), nil
	case "Split":
		return splitString(s, args)
	case "PadLeft", "PadRight":
		if n < 1 || args[0].k != KInt {
			break
		}
		pad := " "
		if n == 2 {
			pad = toString(args[1])
		}
		w := int(args[0].n) - utf16Len(s)
		if w <= 0 {
			return String(s), nil
		}
		if c.name == "PadLeft" {
			return String(strings.Repeat(pad, w) + s), nil
		}
		return String(s + strings.Repeat(pad, w)), nil
	case "Insert":
		if n == 2 && args[0].k == KInt && args[0].n >= 0 && int(args[0].n) <= len(s) {
			i := int(args[0].n)
			return String(s[:i] + toString(args[1]) + s[i:]), nil
		}
	case "Remove":
		if n >= 1 && args[0].k == KInt && args[0].n >= 0 && int(args[0].n) <= len(s) {
			i := int(args[0].n)
			if n == 1 {
				return String(s[:i]), nil
			}
			j := i + int(args[1].Int())
			if j > len(s) || j < i {
				return Null, fmt.Errorf("index and count must refer to a location within the string")
			}
			return String(s[:i] + s[j:]), nil
		}
	case "ToCharArray":
		return ev.linqSeq(String(s))
	case "IndexOfAny":
		if n == 1 && args[0].k == KArray {
			set := ""
			for _, it := range args[0].List().Items {
				set += toString(it)
			}
			return Int(int64(strings.IndexAny(s, set))), nil
		}
	case "Normalize":
		return String(s), nil
	default:
		if v, ok, err := apimStringMethod(c, s, args); ok {
			return v, err
		}
		if v, ok, err := ev.linq(c, String(s), args); ok {
			return v, err
		}
		return Null, fmt.Errorf("unknown method %s on string", c.name)
	}
	return Null, argErr(c, args)
}

// splitString implements the Split overloads: (char), (char[]), (string),
// (string[], options), (char, options), (char[], count), (params char[]).
func splitString(s string, args []Value) (Value, error) {
	var seps []string
	opts := int64(0)
	limit := -1
	for _, a := range args {
		switch a.k {
		case KChar:
			seps = append(seps, string(rune(a.n)))
		case KString:
			seps = append(seps, a.s)
		case KArray:
			for _, it := range a.List().Items {
				seps = append(seps, toString(it))
			}
		case KEnum:
			opts = a.n
		case KInt:
			limit = int(a.n)
		case KNull:
		default:
			return Null, fmt.Errorf("invalid Split separator %s", a.k)
		}
	}
	var parts []string
	if len(seps) == 0 {
		parts = strings.FieldsFunc(s, unicode.IsSpace)
		if opts&splitRemoveEmpty == 0 {
			parts = splitFunc(s, func(r rune) bool { return unicode.IsSpace(r) })
		}
	} else {
		parts = splitMulti(s, seps, limit)
	}
	out := make([]Value, 0, len(parts))
	for _, p := range parts {
		if opts&splitTrimEntries != 0 {
			p = strings.TrimSpace(p)
		}
		if opts&splitRemoveEmpty != 0 && p == "" {
			continue
		}
		out = append(out, String(p))
	}
	return NewArray(out), nil
}

func splitFunc(s string, f func(rune) bool) []string {
	var out []string
	start := 0
	for i, r := range s {
		if f(r) {
			out = append(out, s[start:i])
			start = i + len(string(r))
		}
	}
	return append(out, s[start:])
}

func splitMulti(s string, seps []string, limit int) []string {
	if len(seps) == 1 && seps[0] != "" && limit < 0 {
		return strings.Split(s, seps[0])
	}
	var out []string
	start := 0
	for i := 0; i < len(s); {
		if limit > 0 && len(out) == limit-1 {
			break
		}
		matched := ""
		for _, sep := range seps {
			if sep != "" && strings.HasPrefix(s[i:], sep) {
				matched = sep
				break
			}
		}
		if matched == "" {
			i++
			continue
		}
		out = append(out, s[start:i])
		i += len(matched)
		start = i
	}
	return append(out, s[start:])
}
