// Package expr compiles and evaluates the C# subset used in Azure API
// Management policy expressions (@(...) and @{...}). Programs are compiled
// once when configuration is loaded and evaluated per request; evaluation
// avoids reflection and keeps allocations low. See SUBSET.md.
package expr

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Kind is the dynamic type tag of a Value.
type Kind uint8

// Value kinds. The C# to Go mapping is documented in SUBSET.md.
const (
	KNull      Kind = iota
	KBool           // n: 0 or 1
	KInt            // n: int, long, short, byte (C# integral types collapse to int64)
	KDouble         // n: math.Float64bits (double, float, decimal)
	KChar           // n: rune
	KString         // s
	KBytes          // s holds the raw bytes of a byte[] (immutable in practice)
	KDateTime       // n: Unix nanoseconds UTC (DateTime and DateTimeOffset)
	KTimeSpan       // n: nanoseconds
	KEnum           // n: numeric value, s: member name (StringSplitOptions, RegexOptions, JTokenType...)
	KJObject        // o: *Object
	KJArray         // o: *List
	KJProperty      // o: *Property (also KeyValuePair when iterating dictionaries)
	KArray          // o: *List (C# arrays, List<T>, HashSet<T>)
	KDict           // o: *Object (Dictionary<K,V>)
	KHost           // o: host interface or engine helper object
	KLambda         // o: *lambdaExpr (only as an argument to LINQ methods)
)

var kindNames = [...]string{"null", "bool", "int", "double", "char", "string", "byte[]", "DateTime",
	"TimeSpan", "enum", "JObject", "JArray", "JProperty", "array", "Dictionary", "object", "lambda"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind" + strconv.Itoa(int(k))
}

// Value is a small tagged union so that scalars never allocate. Reference
// types (JSON containers, lists, host objects) live in o as pointers.
type Value struct {
	k Kind
	n int64
	s string
	o any
}

// Object is an insertion-ordered string-keyed map, used for JObject and
// Dictionary. Newtonsoft preserves property order, so must we.
type Object struct {
	keys []string
	vals []Value
	idx  map[string]int // built lazily for large objects
}

// List backs JArray, arrays and List<T>.
type List struct {
	Items []Value
}

// Property is a JProperty or a KeyValuePair.
type Property struct {
	Name  string
	Value Value
}

// Constructors used by the host and the engine.

// Null is the C# null.
var Null = Value{}

// Bool wraps a bool.
func Bool(b bool) Value {
	if b {
		return Value{k: KBool, n: 1}
	}
	return Value{k: KBool}
}

// Int wraps an integral number.
func Int(i int64) Value { return Value{k: KInt, n: i} }

// Double wraps a floating point number.
func Double(f float64) Value { return Value{k: KDouble, n: int64(math.Float64bits(f))} }

// String wraps a string.
func String(s string) Value { return Value{k: KString, s: s} }

// Char wraps a char.
func Char(r rune) Value { return Value{k: KChar, n: int64(r)} }

// Bytes wraps a byte[].
func Bytes(b []byte) Value { return Value{k: KBytes, s: string(b)} }

// Time wraps a DateTime (stored in UTC).
func Time(t time.Time) Value { return Value{k: KDateTime, n: t.UnixNano()} }

// Duration wraps a TimeSpan.
func Duration(d time.Duration) Value { return Value{k: KTimeSpan, n: int64(d)} }

// Host wraps a host object (Request, Response, ...).
func Host(o any) Value {
	if o == nil {
		return Null
	}
	return Value{k: KHost, o: o}
}

// NewJObject returns an empty JObject value.
func NewJObject() Value { return Value{k: KJObject, o: &Object{}} }

// NewArray wraps items as a C# array.
func NewArray(items []Value) Value { return Value{k: KArray, o: &List{Items: items}} }

// NewJArray wraps items as a JArray.
func NewJArray(items []Value) Value { return Value{k: KJArray, o: &List{Items: items}} }

// StringArray wraps a []string as string[].
func StringArray(ss []string) Value {
	items := make([]Value, len(ss))
	for i, s := range ss {
		items[i] = String(s)
	}
	return NewArray(items)
}

func enumVal(n int64, name string) Value { return Value{k: KEnum, n: n, s: name} }

// Kind returns the dynamic type tag.
func (v Value) Kind() Kind { return v.k }

// IsNull reports whether v is null.
func (v Value) IsNull() bool { return v.k == KNull }

// Bool returns the bool payload.
func (v Value) Bool() bool { return v.n != 0 }

// Int returns the integral payload (doubles are truncated).
func (v Value) Int() int64 {
	if v.k == KDouble {
		return int64(v.Float())
	}
	return v.n
}

// Float returns the numeric payload as float64.
func (v Value) Float() float64 {
	if v.k == KDouble {
		return math.Float64frombits(uint64(v.n))
	}
	return float64(v.n)
}

// Str returns the string payload (or byte[] contents) without conversion.
func (v Value) Str() string { return v.s }

// Time returns the DateTime payload.
func (v Value) Time() time.Time { return time.Unix(0, v.n).UTC() }

// Obj returns the reference payload (host object, *Object, *List, *Property).
func (v Value) Obj() any { return v.o }

// Object returns the *Object of a JObject or Dictionary, or nil.
func (v Value) Object() *Object {
	o, _ := v.o.(*Object)
	return o
}

// List returns the *List of an array or JArray, or nil.
func (v Value) List() *List {
	l, _ := v.o.(*List)
	return l
}

// String renders v the way C# ToString() / string concatenation would.
func (v Value) String() string { return toString(v) }

func isNumber(k Kind) bool { return k == KInt || k == KDouble || k == KChar }

// Object methods.

// Len returns the number of properties.
func (o *Object) Len() int { return len(o.keys) }

// Keys returns the property names in order (do not modify).
func (o *Object) Keys() []string { return o.keys }

func (o *Object) find(key string) int {
	if o.idx != nil {
		if i, ok := o.idx[key]; ok {
			return i
		}
		return -1
	}
	for i, k := range o.keys {
		if k == key {
			return i
		}
	}
	return -1
}

// Get returns the property value.
func (o *Object) Get(key string) (Value, bool) {
	if i := o.find(key); i >= 0 {
		return o.vals[i], true
	}
	return Null, false
}

// Set adds or replaces a property, keeping the original position on replace.
func (o *Object) Set(key string, v Value) {
	if i := o.find(key); i >= 0 {
		o.vals[i] = v
		return
	}
	o.keys = append(o.keys, key)
	o.vals = append(o.vals, v)
	if o.idx != nil {
		o.idx[key] = len(o.keys) - 1
	} else if len(o.keys) > 16 {
		o.reindex()
	}
}

func (o *Object) reindex() {
	o.idx = make(map[string]int, len(o.keys))
	for i, k := range o.keys {
		o.idx[k] = i
	}
}

// Delete removes a property and reports whether it existed.
func (o *Object) Delete(key string) bool {
	i := o.find(key)
	if i < 0 {
		return false
	}
	o.keys = append(o.keys[:i], o.keys[i+1:]...)
	o.vals = append(o.vals[:i], o.vals[i+1:]...)
	if o.idx != nil {
		o.reindex()
	}
	return true
}

// toString implements C# ToString()/concatenation semantics. null is "".
func toString(v Value) string {
	switch v.k {
	case KNull:
		return ""
	case KBool:
		if v.n != 0 {
			return "True"
		}
		return "False"
	case KInt:
		return strconv.FormatInt(v.n, 10)
	case KDouble:
		return formatDouble(v.Float())
	case KChar:
		return string(rune(v.n))
	case KString, KEnum:
		return v.s
	case KBytes:
		return "System.Byte[]"
	case KDateTime:
		return v.Time().Format("01/02/2006 15:04:05")
	case KTimeSpan:
		return formatTimeSpan(time.Duration(v.n))
	case KJObject, KJArray, KJProperty:
		return toJSON(v, true)
	case KArray:
		return "System.String[]"
	case KDict:
		return "System.Collections.Generic.Dictionary`2[System.String,System.Object]"
	case KHost:
		if s, ok := v.o.(interface{ String() string }); ok {
			return s.String()
		}
		return "System.Object"
	}
	return ""
}

// formatDouble follows .NET Core's shortest round-trip double.ToString().
func formatDouble(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "∞"
	case math.IsInf(f, -1):
		return "-∞"
	}
	a := math.Abs(f)
	if a != 0 && (a >= 1e15 || a < 1e-5) {
		s := strconv.FormatFloat(f, 'E', -1, 64)
		// Go writes E+20 / E-07; .NET writes E+20 / E-07 too, but without
		// a leading zero in the exponent: 1E-07 vs 1E-07 (same) - keep.
		return s
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func formatTimeSpan(d time.Duration) string {
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	if days > 0 {
		b.WriteString(strconv.FormatInt(int64(days), 10))
		b.WriteByte('.')
	}
	h, m, s := d/time.Hour, (d%time.Hour)/time.Minute, (d%time.Minute)/time.Second
	frac := d % time.Second
	pad2(&b, int(h))
	b.WriteByte(':')
	pad2(&b, int(m))
	b.WriteByte(':')
	pad2(&b, int(s))
	if frac > 0 {
		f := strconv.FormatInt(int64(frac/100)+10000000, 10)[1:]
		b.WriteByte('.')
		b.WriteString(f)
	}
	return b.String()
}

func pad2(b *strings.Builder, n int) {
	if n < 10 {
		b.WriteByte('0')
	}
	b.WriteString(strconv.Itoa(n))
}

// truthy is used for conditions; C# requires bool, we accept JSON bools too.
func truthy(v Value) (bool, bool) {
	if v.k == KBool {
		return v.n != 0, true
	}
	return false, false
}

// valuesEqual implements == : value equality for scalars and strings,
// reference equality for containers and host objects.
func valuesEqual(a, b Value) bool {
	if a.k == KNull || b.k == KNull {
		return a.k == b.k
	}
	if isNumber(a.k) && isNumber(b.k) {
		if a.k == KDouble || b.k == KDouble {
			return a.Float() == b.Float()
		}
		return a.n == b.n
	}
	if a.k != b.k {
		if a.k == KEnum && b.k == KInt || a.k == KInt && b.k == KEnum {
			return a.n == b.n
		}
		return false
	}
	switch a.k {
	case KBool, KDateTime, KTimeSpan, KEnum:
		return a.n == b.n
	case KString, KBytes:
		return a.s == b.s
	}
	return a.o == b.o
}
