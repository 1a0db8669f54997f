package expr

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"html"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

type staticFunc func(ev *evaluator, c *callExpr, args []Value) (Value, error)

var staticTypes = setOf(`string int long double float decimal bool char byte short Convert Encoding Math DateTime
	DateTimeOffset TimeSpan Guid Regex RegexOptions Uri WebUtility HttpUtility JObject JArray JToken JValue
	JsonConvert Formatting JTokenType StringSplitOptions StringComparison Array Enumerable BitConverter`)

func knownStaticType(name string) bool { return staticTypes[name] }

// Static properties and enum members, resolved to getters at compile time.
var staticProps = map[string]func(*evaluator) Value{
	"string.Empty":                          func(*evaluator) Value { return String("") },
	"Encoding.UTF8":                         func(*evaluator) Value { return Host(utf8Encoding) },
	"Encoding.ASCII":                        func(*evaluator) Value { return Host(utf8Encoding) },
	"Encoding.Default":                      func(*evaluator) Value { return Host(utf8Encoding) },
	"DateTime.UtcNow":                       func(ev *evaluator) Value { return Time(ev.now()) },
	"DateTime.Now":                          func(ev *evaluator) Value { return Time(ev.now()) },
	"DateTime.Today":                        func(ev *evaluator) Value { return Time(ev.now().UTC().Truncate(24 * time.Hour)) },
	"DateTime.MinValue":                     func(*evaluator) Value { return Time(time.Date(1678, 1, 1, 0, 0, 0, 0, time.UTC)) },
	"DateTime.MaxValue":                     func(*evaluator) Value { return Time(time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)) },
	"DateTimeOffset.UtcNow":                 func(ev *evaluator) Value { return Time(ev.now()) },
	"DateTimeOffset.Now":                    func(ev *evaluator) Value { return Time(ev.now()) },
	"TimeSpan.Zero":                         func(*evaluator) Value { return Duration(0) },
	"Guid.Empty":                            func(*evaluator) Value { return String("00000000-0000-0000-0000-000000000000") },
	"int.MaxValue":                          func(*evaluator) Value { return Int(math.MaxInt32) },
	"int.MinValue":                          func(*evaluator) Value { return Int(math.MinInt32) },
	"long.MaxValue":                         func(*evaluator) Value { return Int(math.MaxInt64) },
	"long.MinValue":                         func(*evaluator) Value { return Int(math.MinInt64) },
	"Math.PI":                               func(*evaluator) Value { return Double(math.Pi) },
	"Math.E":                                func(*evaluator) Value { return Double(math.E) },
	"double.NaN":                            func(*evaluator) Value { return Double(math.NaN()) },
	"StringSplitOptions.None":               enumGetter(0, "None"),
	"StringSplitOptions.RemoveEmptyEntries": enumGetter(1, "RemoveEmptyEntries"),
	"StringSplitOptions.TrimEntries":        enumGetter(2, "TrimEntries"),
	"Formatting.None":                       enumGetter(0, "None"),
	"Formatting.Indented":                   enumGetter(1, "Indented"),
}

func enumGetter(n int64, name string) func(*evaluator) Value {
	v := enumVal(n, name)
	return func(*evaluator) Value { return v }
}

func init() {
	for i, n := range []string{"CurrentCulture", "CurrentCultureIgnoreCase", "InvariantCulture",
		"InvariantCultureIgnoreCase", "Ordinal", "OrdinalIgnoreCase"} {
		staticProps["StringComparison."+n] = enumGetter(int64(i), n)
	}
	for n, v := range map[string]int64{"None": 0, "IgnoreCase": 1, "Multiline": 2, "ExplicitCapture": 4,
		"Compiled": 8, "Singleline": 16, "IgnorePatternWhitespace": 32, "RightToLeft": 64, "ECMAScript": 256,
		"CultureInvariant": 512} {
		staticProps["RegexOptions."+n] = enumGetter(v, n)
	}
	for n, v := range jtokenTypes {
		staticProps["JTokenType."+n] = enumGetter(v, n)
	}
}

func lookupStaticProp(typ, name string) func(*evaluator) Value {
	return staticProps[typ+"."+name]
}

func lookupStatic(typ, name string) staticFunc {
	switch typ {
	case "long", "short", "byte":
		typ = "int"
	case "float", "decimal":
		typ = "double"
	case "DateTimeOffset":
		if name != "FromUnixTimeSeconds" && name != "FromUnixTimeMilliseconds" {
			typ = "DateTime"
		}
	case "HttpUtility":
		typ = "WebUtility"
	case "JToken", "JValue":
		if name == "Parse" {
			return staticFuncs["JToken.Parse"]
		}
		typ = "JObject"
	}
	return staticFuncs[typ+"."+name]
}

func want(c *callExpr, args []Value, n ...int) error {
	for _, k := range n {
		if len(args) == k {
			return nil
		}
	}
	return argErr(c, args)
}

func strArg(args []Value, i int) string { return toString(args[i]) }

var staticFuncs map[string]staticFunc

func init() {
	staticFuncs = map[string]staticFunc{
		"string.IsNullOrEmpty": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if err := want(c, a, 1); err != nil {
				return Null, err
			}
			return Bool(a[0].k == KNull || a[0].k == KString && a[0].s == ""), nil
		},
		"string.IsNullOrWhiteSpace": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if err := want(c, a, 1); err != nil {
				return Null, err
			}
			return Bool(a[0].k == KNull || strings.TrimSpace(toString(a[0])) == ""), nil
		},
		"string.Join": func(ev *evaluator, c *callExpr, a []Value) (Value, error) {
			if len(a) < 1 {
				return Null, argErr(c, a)
			}
			items := a[1:]
			if len(a) == 2 && a[1].k != KString {
				var err error
				if items, err = ev.enumerate(a[1]); err != nil {
					return Null, err
				}
			}
			parts := make([]string, len(items))
			for i, it := range items {
				parts[i] = toString(it)
			}
			return String(strings.Join(parts, toString(a[0]))), nil
		},
		"string.Concat": func(ev *evaluator, c *callExpr, a []Value) (Value, error) {
			var b strings.Builder
			items := a
			if len(a) == 1 && (a[0].k == KArray || a[0].k == KJArray) {
				items = a[0].List().Items
			}
			for _, it := range items {
				b.WriteString(toString(it))
			}
			return String(b.String()), nil
		},
		"string.Format": stringFormat,
		"string.Equals": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if len(a) < 2 {
				return Null, argErr(c, a)
			}
			if a[0].k == KNull || a[1].k == KNull {
				return Bool(a[0].k == a[1].k), nil
			}
			return stringEquals(toString(a[0]), a[1:])
		},
		"string.Compare": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if len(a) < 2 {
				return Null, argErr(c, a)
			}
			x, y := toString(a[0]), toString(a[1])
			if len(a) == 3 && (ignoreCase(a[2]) || a[2].k == KBool && a[2].n != 0) {
				x, y = strings.ToLower(x), strings.ToLower(y)
			}
			return Int(int64(strings.Compare(x, y))), nil
		},
		"int.Parse":         parseFn("int"),
		"int.TryParse":      tryParseFn("int"),
		"double.Parse":      parseFn("double"),
		"double.TryParse":   tryParseFn("double"),
		"bool.Parse":        parseFn("bool"),
		"bool.TryParse":     tryParseFn("bool"),
		"DateTime.Parse":    parseFn("DateTime"),
		"DateTime.TryParse": tryParseFn("DateTime"),
		"Guid.NewGuid": func(*evaluator, *callExpr, []Value) (Value, error) {
			var b [16]byte
			_, _ = rand.Read(b[:])
			b[6] = b[6]&0x0f | 0x40
			b[8] = b[8]&0x3f | 0x80
			return String(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])), nil
		},
		"Guid.Parse": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if err := want(c, a, 1); err != nil {
				return Null, err
			}
			s := strings.ToLower(strings.Trim(strArg(a, 0), "{}"))
			if len(s) != 36 || strings.Count(s, "-") != 4 {
				return Null, fmt.Errorf("unrecognized Guid format: %q", strArg(a, 0))
			}
			return String(s), nil
		},
		"Convert.ToBase64String": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if err := want(c, a, 1); err != nil {
				return Null, err
			}
			b, err := toByteSlice(a[0])
			return String(base64.StdEncoding.EncodeToString(b)), err
		},
		"Convert.FromBase64String": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if err := want(c, a, 1); err != nil {
				return Null, err
			}
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(strArg(a, 0)))
			if err != nil {
				return Null, fmt.Errorf("the input is not a valid Base-64 string")
			}
			return Bytes(b), nil
		},
		"Convert.ToInt32":    convertFn("int"),
		"Convert.ToInt64":    convertFn("int"),
		"Convert.ToInt16":    convertFn("int"),
		"Convert.ToByte":     convertFn("int"),
		"Convert.ToDouble":   convertFn("double"),
		"Convert.ToDecimal":  convertFn("double"),
		"Convert.ToBoolean":  convertFn("bool"),
		"Convert.ToDateTime": convertFn("DateTime"),
		"Convert.ToString": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if len(a) == 0 {
				return Null, argErr(c, a)
			}
			return String(toString(a[0])), nil
		},
		"Math.Min":     mathFn2(math.Min, func(x, y int64) int64 { return min(x, y) }),
		"Math.Max":     mathFn2(math.Max, func(x, y int64) int64 { return max(x, y) }),
		"Math.Pow":     mathFn2(math.Pow, nil),
		"Math.Abs":     mathFn1(math.Abs, func(x int64) int64 { return abs64(x) }),
		"Math.Floor":   mathFn1(math.Floor, nil),
		"Math.Ceiling": mathFn1(math.Ceil, nil),
		"Math.Sqrt":    mathFn1(math.Sqrt, nil),
		"Math.Round": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if len(a) == 0 || !isNumber(a[0].k) {
				return Null, argErr(c, a)
			}
			if a[0].k == KInt {
				return a[0], nil
			}
			p := 1.0
			if len(a) >= 2 && a[1].k == KInt {
				p = math.Pow(10, float64(a[1].n))
			}
			return Double(math.RoundToEven(a[0].Float()*p) / p), nil
		},
		"TimeSpan.FromMilliseconds": spanFn(time.Millisecond),
		"TimeSpan.FromSeconds":      spanFn(time.Second),
		"TimeSpan.FromMinutes":      spanFn(time.Minute),
		"TimeSpan.FromHours":        spanFn(time.Hour),
		"TimeSpan.FromDays":         spanFn(24 * time.Hour),
		"DateTimeOffset.FromUnixTimeSeconds": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if err := want(c, a, 1); err != nil {
				return Null, err
			}
			return Time(time.Unix(a[0].Int(), 0)), nil
		},
		"DateTimeOffset.FromUnixTimeMilliseconds": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if err := want(c, a, 1); err != nil {
				return Null, err
			}
			return Time(time.UnixMilli(a[0].Int())), nil
		},
		"Uri.EscapeDataString": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if err := want(c, a, 1); err != nil {
				return Null, err
			}
			return String(strings.ReplaceAll(url.QueryEscape(strArg(a, 0)), "+", "%20")), nil
		},
		"Uri.EscapeUriString": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if err := want(c, a, 1); err != nil {
				return Null, err
			}
			return String((&url.URL{Path: strArg(a, 0)}).EscapedPath()), nil
		},
		"Uri.UnescapeDataString": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if err := want(c, a, 1); err != nil {
				return Null, err
			}
			s, err := url.PathUnescape(strArg(a, 0))
			if err != nil {
				return String(strArg(a, 0)), nil
			}
			return String(s), nil
		},
		"Uri.IsWellFormedUriString": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if len(a) < 1 {
				return Null, argErr(c, a)
			}
			u, err := url.Parse(strArg(a, 0))
			return Bool(err == nil && (u.Scheme != "" && u.Host != "" || len(a) == 2 && a[1].n != 1)), nil
		},
		"WebUtility.UrlEncode": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if err := want(c, a, 1); err != nil {
				return Null, err
			}
			if a[0].k == KNull {
				return Null, nil
			}
			return String(url.QueryEscape(strArg(a, 0))), nil
		},
		"WebUtility.UrlDecode": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if err := want(c, a, 1); err != nil {
				return Null, err
			}
			if a[0].k == KNull {
				return Null, nil
			}
			s, err := url.QueryUnescape(strArg(a, 0))
			if err != nil {
				return String(strArg(a, 0)), nil
			}
			return String(s), nil
		},
		"WebUtility.HtmlEncode": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if err := want(c, a, 1); err != nil {
				return Null, err
			}
			return String(html.EscapeString(strArg(a, 0))), nil
		},
		"WebUtility.HtmlDecode": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if err := want(c, a, 1); err != nil {
				return Null, err
			}
			return String(html.UnescapeString(strArg(a, 0))), nil
		},
		"JObject.Parse":                 jsonParseFn(KJObject),
		"JArray.Parse":                  jsonParseFn(KJArray),
		"JToken.Parse":                  jsonParseFn(KNull),
		"JsonConvert.DeserializeObject": jsonParseFn(KNull),
		"JObject.FromObject":            fromObject(KJObject),
		"JArray.FromObject":             fromObject(KJArray),
		"JsonConvert.SerializeObject": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if len(a) == 0 {
				return Null, argErr(c, a)
			}
			return String(toJSON(a[0], len(a) > 1 && a[1].k == KEnum && a[1].n == 1)), nil
		},
		"Array.Exists": func(ev *evaluator, c *callExpr, a []Value) (Value, error) {
			if err := want(c, a, 2); err != nil {
				return Null, err
			}
			v, _, err := ev.linq(&callExpr{name: "Any"}, a[0], a[1:])
			return v, err
		},
		"Array.IndexOf": func(ev *evaluator, c *callExpr, a []Value) (Value, error) {
			if err := want(c, a, 2); err != nil {
				return Null, err
			}
			items, err := ev.enumerate(a[0])
			for i, it := range items {
				if valuesEqual(it, a[1]) {
					return Int(int64(i)), nil
				}
			}
			return Int(-1), err
		},
		"Array.Empty": func(*evaluator, *callExpr, []Value) (Value, error) { return NewArray(nil), nil },
		"BitConverter.ToString": func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
			if len(a) == 0 {
				return Null, argErr(c, a)
			}
			b, err := toByteSlice(a[0])
			parts := make([]string, len(b))
			for i, x := range b {
				parts[i] = fmt.Sprintf("%02X", x)
			}
			return String(strings.Join(parts, "-")), err
		},
		"char.IsDigit":         charFn(unicode.IsDigit),
		"char.IsLetter":        charFn(unicode.IsLetter),
		"char.IsLetterOrDigit": charFn(func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }),
		"char.IsWhiteSpace":    charFn(unicode.IsSpace),
		"char.IsUpper":         charFn(unicode.IsUpper),
		"char.IsLower":         charFn(unicode.IsLower),
	}
	for _, n := range []string{"IsMatch", "Match", "Matches", "Replace", "Split", "Escape", "Unescape"} {
		staticFuncs["Regex."+n] = regexFn(n)
	}
}

func stringFormat(_ *evaluator, c *callExpr, a []Value) (Value, error) {
	if len(a) == 0 {
		return Null, argErr(c, a)
	}
	f := toString(a[0])
	vals := a[1:]
	if len(vals) == 1 && vals[0].k == KArray {
		vals = vals[0].List().Items
	}
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		ch := f[i]
		if ch == '{' && i+1 < len(f) && f[i+1] == '{' || ch == '}' && i+1 < len(f) && f[i+1] == '}' {
			b.WriteByte(ch)
			i++
			continue
		}
		if ch != '{' {
			b.WriteByte(ch)
			continue
		}
		end := strings.IndexByte(f[i:], '}')
		if end < 0 {
			return Null, fmt.Errorf("input string was not in a correct format")
		}
		spec := f[i+1 : i+end]
		i += end
		idxs, format, _ := strings.Cut(spec, ":")
		idxs, align, hasAlign := strings.Cut(idxs, ",")
		n, err := strconv.Atoi(strings.TrimSpace(idxs))
		if err != nil || n < 0 || n >= len(vals) {
			return Null, fmt.Errorf("index (zero based) must be greater than or equal to zero and less than the size of the argument list")
		}
		s := toString(vals[n])
		if format != "" {
			if s, err = formatValue(vals[n], format); err != nil {
				return Null, err
			}
		}
		if hasAlign {
			w, _ := strconv.Atoi(strings.TrimSpace(align))
			for len(s) < w {
				s = " " + s
			}
			for len(s) < -w {
				s += " "
			}
		}
		b.WriteString(s)
	}
	return String(b.String()), nil
}

func parseFn(typ string) staticFunc {
	t := &typeRef{name: typ}
	return func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
		if len(a) < 1 {
			return Null, argErr(c, a)
		}
		if a[0].k != KString {
			return Null, fmt.Errorf("value cannot be null")
		}
		return castTo(a[0], t)
	}
}

// tryParseFn implements T.TryParse(s, out v): the out slot is args[1].
func tryParseFn(typ string) staticFunc {
	t := &typeRef{name: typ}
	return func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
		if len(a) != 2 || c.outs[1] < 0 {
			return Null, fmt.Errorf("%s.TryParse needs (string, out value)", typ)
		}
		a[1] = defaultOf(t)
		if a[0].k != KString {
			return Bool(false), nil
		}
		v, err := castTo(a[0], t)
		if err != nil {
			return Bool(false), nil
		}
		a[1] = v
		return Bool(true), nil
	}
}

func convertFn(typ string) staticFunc {
	t := &typeRef{name: typ}
	return func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
		if len(a) < 1 {
			return Null, argErr(c, a)
		}
		if a[0].k == KNull {
			return defaultOf(t), nil
		}
		if typ == "int" && len(a) == 2 && a[1].k == KInt { // Convert.ToInt32(s, 16)
			n, err := strconv.ParseInt(toString(a[0]), int(a[1].n), 64)
			if err != nil {
				return Null, fmt.Errorf("could not find any recognizable digits")
			}
			return Int(n), nil
		}
		if typ == "int" && a[0].k == KDouble {
			return Int(int64(math.RoundToEven(a[0].Float()))), nil
		}
		if typ == "bool" && isNumber(a[0].k) {
			return Bool(a[0].Float() != 0), nil
		}
		return castTo(a[0], t)
	}
}

func mathFn1(f func(float64) float64, fi func(int64) int64) staticFunc {
	return func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
		if len(a) != 1 || !isNumber(a[0].k) {
			return Null, argErr(c, a)
		}
		if a[0].k != KDouble && fi != nil {
			return Int(fi(a[0].n)), nil
		}
		return Double(f(a[0].Float())), nil
	}
}

func mathFn2(f func(float64, float64) float64, fi func(int64, int64) int64) staticFunc {
	return func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
		if len(a) != 2 || !isNumber(a[0].k) || !isNumber(a[1].k) {
			return Null, argErr(c, a)
		}
		if a[0].k != KDouble && a[1].k != KDouble && fi != nil {
			return Int(fi(a[0].n, a[1].n)), nil
		}
		return Double(f(a[0].Float(), a[1].Float())), nil
	}
}

func spanFn(unit time.Duration) staticFunc {
	return func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
		if len(a) != 1 || !isNumber(a[0].k) {
			return Null, argErr(c, a)
		}
		return Duration(time.Duration(a[0].Float() * float64(unit))), nil
	}
}

func charFn(f func(rune) bool) staticFunc {
	return func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
		if len(a) == 1 && a[0].k == KChar {
			return Bool(f(rune(a[0].n))), nil
		}
		if len(a) == 2 && a[0].k == KString && a[1].k == KInt && a[1].n >= 0 && int(a[1].n) < len(a[0].s) {
			return Bool(f(rune(a[0].s[a[1].n]))), nil
		}
		return Null, argErr(c, a)
	}
}

func jsonParseFn(k Kind) staticFunc {
	return func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
		if len(a) < 1 {
			return Null, argErr(c, a)
		}
		if a[0].k != KString {
			return Null, fmt.Errorf("JSON text must be a string, got %s", a[0].k)
		}
		return parseJSONKind(a[0].s, k)
	}
}

func fromObject(k Kind) staticFunc {
	return func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
		if len(a) < 1 {
			return Null, argErr(c, a)
		}
		v := deepClone(toJToken(a[0]))
		if v.k != k {
			return Null, fmt.Errorf("object serialized to %s, %s expected", v.k, k)
		}
		return v, nil
	}
}

func toByteSlice(v Value) ([]byte, error) {
	switch v.k {
	case KBytes, KString:
		return []byte(v.s), nil
	case KArray:
		items := v.List().Items
		b := make([]byte, len(items))
		for i, it := range items {
			b[i] = byte(it.n)
		}
		return b, nil
	}
	return nil, fmt.Errorf("expected byte[], got %s", v.k)
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
