package expr

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

var errDivZero = errors.New("attempted to divide by zero")

// binary implements the non-short-circuit binary operators.
func binary(op string, l, r Value) (Value, error) {
	switch op {
	case "==":
		return Bool(valuesEqual(l, r)), nil
	case "!=":
		return Bool(!valuesEqual(l, r)), nil
	case "<", ">", "<=", ">=":
		c, err := compare(l, r)
		if err != nil {
			return Null, err
		}
		if c == 2 { // comparison with null is false in C#
			return Bool(false), nil
		}
		switch op {
		case "<":
			return Bool(c < 0), nil
		case ">":
			return Bool(c > 0), nil
		case "<=":
			return Bool(c <= 0), nil
		}
		return Bool(c >= 0), nil
	case "&", "|", "^":
		if l.k == KBool && r.k == KBool {
			a, b := l.n != 0, r.n != 0
			switch op {
			case "&":
				return Bool(a && b), nil
			case "|":
				return Bool(a || b), nil
			}
			return Bool(a != b), nil
		}
		if (l.k == KInt || l.k == KEnum) && (r.k == KInt || r.k == KEnum) {
			var n int64
			switch op {
			case "&":
				n = l.n & r.n
			case "|":
				n = l.n | r.n
			default:
				n = l.n ^ r.n
			}
			if l.k == KEnum {
				return Value{k: KEnum, n: n, s: l.s}, nil
			}
			return Int(n), nil
		}
	case "<<", ">>":
		if l.k == KInt && r.k == KInt {
			if op == "<<" {
				return Int(l.n << uint(r.n&63)), nil
			}
			return Int(l.n >> uint(r.n&63)), nil
		}
	default:
		return arith(op, l, r)
	}
	return Null, fmt.Errorf("operator %s cannot be applied to %s and %s", op, l.k, r.k)
}

// arith implements + - * / %. String concatenation wins when either side
// is a string (null concatenates as "").
func arith(op string, l, r Value) (Value, error) {
	if op == "+" && (l.k == KString || r.k == KString) {
		return String(toString(l) + toString(r)), nil
	}
	if isNumber(l.k) && isNumber(r.k) {
		if l.k != KDouble && r.k != KDouble {
			a, b := l.n, r.n
			switch op {
			case "+":
				return Int(a + b), nil
			case "-":
				return Int(a - b), nil
			case "*":
				return Int(a * b), nil
			case "/":
				if b == 0 {
					return Null, errDivZero
				}
				return Int(a / b), nil
			case "%":
				if b == 0 {
					return Null, errDivZero
				}
				return Int(a % b), nil
			}
		}
		a, b := l.Float(), r.Float()
		switch op {
		case "+":
			return Double(a + b), nil
		case "-":
			return Double(a - b), nil
		case "*":
			return Double(a * b), nil
		case "/":
			return Double(a / b), nil
		case "%":
			return Double(math.Mod(a, b)), nil
		}
	}
	if l.k == KNull || r.k == KNull {
		return Null, nil // lifted operators on nullable types yield null
	}
	switch {
	case l.k == KDateTime && r.k == KTimeSpan && op == "+":
		return Value{k: KDateTime, n: l.n + r.n}, nil
	case l.k == KDateTime && r.k == KTimeSpan && op == "-":
		return Value{k: KDateTime, n: l.n - r.n}, nil
	case l.k == KDateTime && r.k == KDateTime && op == "-":
		return Value{k: KTimeSpan, n: l.n - r.n}, nil
	case l.k == KTimeSpan && r.k == KTimeSpan && (op == "+" || op == "-"):
		if op == "+" {
			return Value{k: KTimeSpan, n: l.n + r.n}, nil
		}
		return Value{k: KTimeSpan, n: l.n - r.n}, nil
	}
	return Null, fmt.Errorf("operator %s cannot be applied to %s and %s", op, l.k, r.k)
}

// compare returns -1, 0, 1, or 2 when either side is null.
func compare(l, r Value) (int, error) {
	if l.k == KNull || r.k == KNull {
		return 2, nil
	}
	if isNumber(l.k) && isNumber(r.k) {
		if l.k != KDouble && r.k != KDouble {
			return cmp3(l.n < r.n, l.n > r.n), nil
		}
		a, b := l.Float(), r.Float()
		return cmp3(a < b, a > b), nil
	}
	if l.k == r.k && (l.k == KDateTime || l.k == KTimeSpan || l.k == KEnum) {
		return cmp3(l.n < r.n, l.n > r.n), nil
	}
	return 0, fmt.Errorf("cannot compare %s with %s", l.k, r.k)
}

func cmp3(lt, gt bool) int {
	if lt {
		return -1
	}
	if gt {
		return 1
	}
	return 0
}

// defaultOf is default(T) and the value of an uninitialised typed local.
func defaultOf(t *typeRef) Value {
	if t == nil || t.array || t.nullable {
		return Null
	}
	switch t.name {
	case "int", "long", "short", "byte", "uint", "ulong", "sbyte", "ushort":
		return Int(0)
	case "double", "float", "decimal":
		return Double(0)
	case "bool":
		return Bool(false)
	case "char":
		return Char(0)
	case "TimeSpan":
		return Duration(0)
	}
	return Null
}

// implicitConvert applies the widening conversions a typed declaration
// performs (int -> double, char -> int).
func implicitConvert(v Value, t *typeRef) Value {
	if t.array {
		return v
	}
	switch t.name {
	case "double", "float", "decimal":
		if v.k == KInt || v.k == KChar {
			return Double(float64(v.n))
		}
	case "int", "long":
		if v.k == KChar {
			return Int(v.n)
		}
	}
	return v
}

// castTo implements (T)x. Newtonsoft's explicit JToken conversions are
// included: (string)jtoken, (int)jtoken, (bool)jtoken.
func castTo(v Value, t *typeRef) (Value, error) {
	if t.array {
		if v.k == KNull || v.k == KArray || v.k == KBytes {
			return v, nil
		}
		return Null, fmt.Errorf("unable to cast %s to %s", v.k, t)
	}
	if v.k == KNull {
		switch t.name {
		case "int", "long", "bool", "double", "float", "decimal", "short", "byte", "char":
			if !t.nullable {
				return Null, fmt.Errorf("unable to cast null to %s", t.name)
			}
		}
		return Null, nil
	}
	switch t.name {
	case "object", "dynamic", "var", "JToken", "IEnumerable", "IEnumerable<string>":
		return v, nil
	case "string":
		switch v.k {
		case KString:
			return v, nil
		case KJObject, KJArray, KArray, KDict, KHost, KJProperty:
			return Null, fmt.Errorf("unable to cast %s to string", v.k)
		case KDateTime:
			return String(v.Time().Format("2006-01-02T15:04:05.9999999Z")), nil
		}
		return String(toString(v)), nil
	case "int", "long", "short", "byte", "uint", "ulong", "sbyte", "ushort":
		switch v.k {
		case KInt, KChar, KEnum:
			return Int(v.n), nil
		case KDouble:
			return Int(int64(v.Float())), nil
		case KString: // JValue string -> int conversion parses
			n, err := strconv.ParseInt(strings.TrimSpace(v.s), 10, 64)
			if err != nil {
				return Null, fmt.Errorf("input string %q was not in a correct format", v.s)
			}
			return Int(n), nil
		}
	case "double", "float", "decimal":
		switch v.k {
		case KInt, KChar:
			return Double(float64(v.n)), nil
		case KDouble:
			return v, nil
		case KString:
			f, err := strconv.ParseFloat(strings.TrimSpace(v.s), 64)
			if err != nil {
				return Null, fmt.Errorf("input string %q was not in a correct format", v.s)
			}
			return Double(f), nil
		}
	case "bool":
		switch v.k {
		case KBool:
			return v, nil
		case KString:
			if b, ok := parseBool(v.s); ok {
				return Bool(b), nil
			}
		}
	case "char":
		if v.k == KInt || v.k == KChar {
			return Char(rune(v.n)), nil
		}
	case "DateTime", "DateTimeOffset":
		switch v.k {
		case KDateTime:
			return v, nil
		case KString:
			t, err := parseDateTime(v.s)
			if err != nil {
				return Null, err
			}
			return Time(t), nil
		}
	case "TimeSpan":
		if v.k == KTimeSpan {
			return v, nil
		}
	default:
		if isType(v, t) {
			return v, nil
		}
	}
	return Null, fmt.Errorf("unable to cast %s to %s", v.k, t)
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// isType implements `is T` / `as T` for the types that occur in policies.
func isType(v Value, t *typeRef) bool {
	if v.k == KNull {
		return false
	}
	if t.array {
		return v.k == KArray || t.name == "byte" && v.k == KBytes
	}
	switch t.name {
	case "object", "dynamic":
		return true
	case "string":
		return v.k == KString
	case "int", "long":
		return v.k == KInt
	case "double", "float", "decimal":
		return v.k == KDouble
	case "bool":
		return v.k == KBool
	case "char":
		return v.k == KChar
	case "DateTime", "DateTimeOffset":
		return v.k == KDateTime
	case "TimeSpan":
		return v.k == KTimeSpan
	case "JObject":
		return v.k == KJObject
	case "JArray":
		return v.k == KJArray
	case "JProperty":
		return v.k == KJProperty
	case "JToken", "JContainer":
		return v.k == KJObject || v.k == KJArray || v.k == KJProperty || v.k <= KString
	case "JValue":
		return v.k <= KString || v.k == KDateTime
	case "List", "IList", "IEnumerable", "ICollection", "HashSet":
		return v.k == KArray || v.k == KJArray
	case "Dictionary", "IDictionary", "IReadOnlyDictionary":
		return v.k == KDict
	case "IResponse":
		_, ok := v.o.(Response)
		return ok
	case "IRequest":
		_, ok := v.o.(Request)
		return ok
	case "Jwt":
		_, ok := v.o.(*jwtValue)
		return ok
	case "BasicAuthCredentials":
		_, ok := v.o.(*basicValue)
		return ok
	case "Exception":
		_, ok := v.o.(*exceptionValue)
		return ok
	case "Uri":
		_, ok := v.o.(*uriValue)
		return ok
	}
	return false
}

// formatValue implements ToString(format) and interpolation format
// specifiers for numbers and dates.
func formatValue(v Value, format string) (string, error) {
	switch v.k {
	case KDateTime:
		return formatDateTime(v.Time(), format)
	case KTimeSpan:
		return formatTimeSpan(time.Duration(v.n)), nil
	case KInt, KDouble:
		return formatNumber(v, format)
	}
	return toString(v), nil
}

func formatNumber(v Value, format string) (string, error) {
	if format == "" {
		return toString(v), nil
	}
	spec := format[0] | 0x20
	prec := -1
	if len(format) > 1 {
		p, err := strconv.Atoi(format[1:])
		if err != nil {
			return customNumber(v, format)
		}
		prec = p
	}
	f := v.Float()
	switch spec {
	case 'd':
		if v.k != KInt {
			return "", fmt.Errorf("format %q is only valid for integers", format)
		}
		s := strconv.FormatInt(abs64(v.n), 10)
		for len(s) < prec {
			s = "0" + s
		}
		if v.n < 0 {
			s = "-" + s
		}
		return s, nil
	case 'f', 'n':
		if prec < 0 {
			prec = 2
		}
		s := strconv.FormatFloat(f, 'f', prec, 64)
		if spec == 'n' {
			s = groupThousands(s)
		}
		return s, nil
	case 'x':
		s := strconv.FormatInt(v.Int(), 16)
		if format[0] == 'X' {
			s = strings.ToUpper(s)
		}
		for len(s) < prec {
			s = "0" + s
		}
		return s, nil
	case 'g', 'r':
		return toString(v), nil
	case 'p':
		if prec < 0 {
			prec = 2
		}
		return strconv.FormatFloat(f*100, 'f', prec, 64) + " %", nil
	}
	return customNumber(v, format)
}

// customNumber handles the custom patterns seen in practice ("0.00", "000", "#").
func customNumber(v Value, format string) (string, error) {
	if strings.Trim(format, "0#.,") != "" {
		return "", fmt.Errorf("unsupported number format %q", format)
	}
	intPart, frac, _ := strings.Cut(format, ".")
	prec := len(frac)
	s := strconv.FormatFloat(v.Float(), 'f', prec, 64)
	if strings.Count(frac, "#") > 0 && strings.Contains(s, ".") {
		minFrac := strings.Count(frac, "0")
		whole, fr, _ := strings.Cut(s, ".")
		for len(fr) > minFrac && strings.HasSuffix(fr, "0") {
			fr = fr[:len(fr)-1]
		}
		s = whole
		if fr != "" {
			s += "." + fr
		}
	}
	minInt := strings.Count(intPart, "0")
	whole, rest, hasDot := strings.Cut(s, ".")
	neg := strings.HasPrefix(whole, "-")
	whole = strings.TrimPrefix(whole, "-")
	for len(whole) < minInt {
		whole = "0" + whole
	}
	if minInt == 0 && whole == "0" {
		whole = ""
	}
	if strings.Contains(intPart, ",") {
		whole = groupThousands(whole)
	}
	if neg {
		whole = "-" + whole
	}
	if hasDot {
		return whole + "." + rest, nil
	}
	return whole, nil
}

func groupThousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, hasDot := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if hasDot {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out
}

func abs64(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
