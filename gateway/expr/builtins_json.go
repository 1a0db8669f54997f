package expr

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseJSON parses JSON text into Values, preserving property order
// (JObject / JArray / scalars).
func ParseJSON(data []byte) (Value, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseJSONValue(dec)
	if err != nil {
		return Null, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return Null, fmt.Errorf("additional text encountered after finished reading JSON content")
	}
	return v, nil
}

func parseJSONValue(dec *json.Decoder) (Value, error) {
	t, err := dec.Token()
	if err != nil {
		return Null, fmt.Errorf("invalid JSON: %v", err)
	}
	switch x := t.(type) {
	case json.Delim:
		switch x {
		case '{':
			o := &Object{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return Null, fmt.Errorf("invalid JSON: %v", err)
				}
				v, err := parseJSONValue(dec)
				if err != nil {
					return Null, err
				}
				o.Set(kt.(string), v)
			}
			if _, err := dec.Token(); err != nil {
				return Null, fmt.Errorf("invalid JSON: %v", err)
			}
			return Value{k: KJObject, o: o}, nil
		case '[':
			l := &List{}
			for dec.More() {
				v, err := parseJSONValue(dec)
				if err != nil {
					return Null, err
				}
				l.Items = append(l.Items, v)
			}
			if _, err := dec.Token(); err != nil {
				return Null, fmt.Errorf("invalid JSON: %v", err)
			}
			return Value{k: KJArray, o: l}, nil
		}
	case string:
		return String(x), nil
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return Int(n), nil
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return Null, fmt.Errorf("invalid JSON number %s", x)
		}
		return Double(f), nil
	case bool:
		return Bool(x), nil
	case nil:
		return Null, nil
	}
	return Null, fmt.Errorf("invalid JSON token %v", t)
}

func parseJSONKind(s string, want Kind) (Value, error) {
	v, err := ParseJSON([]byte(s))
	if err != nil {
		return Null, err
	}
	if want != KNull && v.k != want {
		return Null, fmt.Errorf("error reading %s from JsonReader: current item is %s", want, v.k)
	}
	return v, nil
}

// toJSON serialises like Newtonsoft: Indented uses two spaces and ": ".
func toJSON(v Value, indent bool) string {
	var b strings.Builder
	writeJSON(&b, v, indent, 0)
	return b.String()
}

func writeJSON(b *strings.Builder, v Value, indent bool, depth int) {
	nl := func(d int) {
		if indent {
			b.WriteByte('\n')
			for i := 0; i < d; i++ {
				b.WriteString("  ")
			}
		}
	}
	switch v.k {
	case KNull:
		b.WriteString("null")
	case KBool:
		if v.n != 0 {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case KInt, KEnum:
		b.WriteString(strconv.FormatInt(v.n, 10))
	case KDouble:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			b.WriteString(`"NaN"`)
			return
		}
		s := strconv.FormatFloat(f, 'g', -1, 64)
		if f == math.Trunc(f) && !strings.ContainsAny(s, "e") {
			s += ".0"
		}
		b.WriteString(s)
	case KString, KChar:
		writeJSONString(b, toString(v))
	case KBytes:
		writeJSONString(b, base64Std(v.s))
	case KDateTime:
		writeJSONString(b, v.Time().Format("2006-01-02T15:04:05.9999999Z07:00"))
	case KTimeSpan:
		writeJSONString(b, formatTimeSpan(time.Duration(v.n)))
	case KJProperty:
		p := v.o.(*Property)
		writeJSONString(b, p.Name)
		b.WriteString(": ")
		writeJSON(b, p.Value, indent, depth)
	case KJObject, KDict:
		o := v.Object()
		if o.Len() == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteByte('{')
		for i, k := range o.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			nl(depth + 1)
			writeJSONString(b, k)
			b.WriteByte(':')
			if indent {
				b.WriteByte(' ')
			}
			writeJSON(b, o.vals[i], indent, depth+1)
		}
		nl(depth)
		b.WriteByte('}')
	case KJArray, KArray:
		items := v.List().Items
		if len(items) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteByte('[')
		for i, it := range items {
			if i > 0 {
				b.WriteByte(',')
			}
			nl(depth + 1)
			writeJSON(b, it, indent, depth+1)
		}
		nl(depth)
		b.WriteByte(']')
	default:
		writeJSONString(b, toString(v))
	}
}

func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// JTokenType enum values (Newtonsoft numbering).
var jtokenTypes = map[string]int64{"None": 0, "Object": 1, "Array": 2, "Constructor": 3, "Property": 4,
	"Comment": 5, "Integer": 6, "Float": 7, "String": 8, "Boolean": 9, "Null": 10, "Undefined": 11,
	"Date": 12, "Raw": 13, "Bytes": 14, "Guid": 15, "Uri": 16, "TimeSpan": 17}

func jtokenType(v Value) Value {
	name := "String"
	switch v.k {
	case KJObject, KDict:
		name = "Object"
	case KJArray, KArray:
		name = "Array"
	case KJProperty:
		name = "Property"
	case KInt:
		name = "Integer"
	case KDouble:
		name = "Float"
	case KBool:
		name = "Boolean"
	case KNull:
		name = "Null"
	case KDateTime:
		name = "Date"
	}
	return enumVal(jtokenTypes[name], name)
}

// jsonMethod implements JObject / JArray / JProperty methods.
func (ev *evaluator) jsonMethod(c *callExpr, v Value, args []Value) (Value, bool, error) {
	n := len(args)
	switch v.k {
	case KJObject:
		o := v.Object()
		switch c.name {
		case "Property":
			if n >= 1 {
				name := toString(args[0])
				for i, k := range o.keys {
					if k == name || n == 2 && ignoreCase(args[1]) && strings.EqualFold(k, name) {
						return Value{k: KJProperty, o: &Property{Name: k, Value: o.vals[i]}}, true, nil
					}
				}
				return Null, true, nil
			}
		case "Properties", "Children":
			items, _ := ev.enumerate(v)
			if c.name == "Children" {
				return NewJArray(items), true, nil
			}
			return NewArray(items), true, nil
		case "Add":
			if n == 2 {
				k := toString(args[0])
				if _, dup := o.Get(k); dup {
					return Null, true, fmt.Errorf("can not add property %s to Newtonsoft.Json.Linq.JObject. Property with the same name already exists on object", k)
				}
				o.Set(k, toJToken(args[1]))
				return Null, true, nil
			}
			if n == 1 {
				return Null, true, jobjectAdd(o, args[0])
			}
		case "Remove":
			if n == 1 {
				return Bool(o.Delete(toString(args[0]))), true, nil
			}
		case "ContainsKey":
			if n == 1 {
				_, ok := o.Get(toString(args[0]))
				return Bool(ok), true, nil
			}
		case "TryGetValue":
			if n == 2 {
				r, ok := o.Get(toString(args[0]))
				args[1] = r
				return Bool(ok), true, nil
			}
		case "GetValue":
			if n >= 1 {
				name := toString(args[0])
				for i, k := range o.keys {
					if k == name || n == 2 && ignoreCase(args[1]) && strings.EqualFold(k, name) {
						return o.vals[i], true, nil
					}
				}
				return Null, true, nil
			}
		case "Value":
			if n == 1 && len(c.targs) == 1 {
				r, _ := o.Get(toString(args[0]))
				if r.k == KNull {
					return defaultOf(&typeRef{name: c.targs[0].name, nullable: true}), true, nil
				}
				cv, err := castTo(r, c.targs[0])
				return cv, true, err
			}
		case "SelectToken":
			if n >= 1 {
				r, err := selectToken(v, toString(args[0]))
				return r, true, err
			}
		case "DeepClone":
			return deepClone(v), true, nil
		case "Merge":
			if n >= 1 && args[0].k == KJObject {
				src := args[0].Object()
				for i, k := range src.keys {
					o.Set(k, src.vals[i])
				}
				return Null, true, nil
			}
		case "AddFirst":
			if n == 1 && args[0].k == KJProperty {
				p := args[0].o.(*Property)
				o.keys = append([]string{p.Name}, o.keys...)
				o.vals = append([]Value{p.Value}, o.vals...)
				if o.idx != nil {
					o.reindex()
				}
				return Null, true, nil
			}
		case "ToObject":
			if len(c.targs) == 1 {
				cv, err := castTo(v, c.targs[0])
				return cv, true, err
			}
		}
	case KJArray:
		l := v.List()
		switch c.name {
		case "Add":
			if n == 1 {
				l.Items = append(l.Items, toJToken(args[0]))
				return Null, true, nil
			}
		case "Remove":
			if n == 1 {
				for i, it := range l.Items {
					if valuesEqual(it, args[0]) {
						l.Items = append(l.Items[:i], l.Items[i+1:]...)
						return Bool(true), true, nil
					}
				}
				return Bool(false), true, nil
			}
		case "RemoveAt":
			if n == 1 {
				i, err := intIndex(args[0], len(l.Items))
				if err == nil {
					l.Items = append(l.Items[:i], l.Items[i+1:]...)
				}
				return Null, true, err
			}
		case "Insert":
			if n == 2 && args[0].k == KInt && args[0].n >= 0 && int(args[0].n) <= len(l.Items) {
				i := int(args[0].n)
				l.Items = append(l.Items[:i], append([]Value{toJToken(args[1])}, l.Items[i:]...)...)
				return Null, true, nil
			}
		case "Children":
			return v, true, nil
		case "SelectToken":
			if n >= 1 {
				r, err := selectToken(v, toString(args[0]))
				return r, true, err
			}
		case "DeepClone":
			return deepClone(v), true, nil
		case "ToObject":
			if len(c.targs) == 1 {
				t := c.targs[0]
				if t.array || t.name == "List" || t.name == "IEnumerable" {
					return Value{k: KArray, o: &List{Items: append([]Value(nil), l.Items...)}}, true, nil
				}
				cv, err := castTo(v, t)
				return cv, true, err
			}
		case "Clear":
			l.Items = nil
			return Null, true, nil
		}
	case KJProperty:
		p := v.o.(*Property)
		if c.name == "Remove" && n == 0 {
			return Null, true, fmt.Errorf("JProperty.Remove is not supported: remove by name on the parent JObject")
		}
		if c.name == "Value" && len(c.targs) == 1 && n == 0 {
			cv, err := castTo(p.Value, c.targs[0])
			return cv, true, err
		}
	}
	return Null, false, nil
}

func deepClone(v Value) Value {
	switch v.k {
	case KJObject, KDict:
		src := v.Object()
		o := &Object{}
		for i, k := range src.keys {
			o.Set(k, deepClone(src.vals[i]))
		}
		return Value{k: v.k, o: o}
	case KJArray, KArray:
		items := make([]Value, len(v.List().Items))
		for i, it := range v.List().Items {
			items[i] = deepClone(it)
		}
		return Value{k: v.k, o: &List{Items: items}}
	case KJProperty:
		p := v.o.(*Property)
		return Value{k: KJProperty, o: &Property{Name: p.Name, Value: deepClone(p.Value)}}
	}
	return v
}

// selectToken supports simple JSONPath: $.a.b, a.b[0].c, ['a b'].
func selectToken(v Value, path string) (Value, error) {
	p := strings.TrimPrefix(strings.TrimSpace(path), "$")
	cur := v
	for len(p) > 0 {
		if cur.k == KNull {
			return Null, nil
		}
		switch p[0] {
		case '.':
			p = p[1:]
			continue
		case '[':
			end := strings.IndexByte(p, ']')
			if end < 0 {
				return Null, fmt.Errorf("unexpected end while parsing path %q", path)
			}
			inner := strings.TrimSpace(p[1:end])
			p = p[end+1:]
			if len(inner) >= 2 && (inner[0] == '\'' || inner[0] == '"') {
				cur = jsonChild(cur, inner[1:len(inner)-1])
				continue
			}
			i, err := strconv.Atoi(inner)
			if err != nil {
				return Null, fmt.Errorf("unsupported JSONPath segment [%s]", inner)
			}
			if cur.k != KJArray || i < 0 || i >= len(cur.List().Items) {
				cur = Null
				continue
			}
			cur = cur.List().Items[i]
		default:
			end := strings.IndexAny(p, ".[")
			if end < 0 {
				end = len(p)
			}
			name := p[:end]
			if name == "*" || strings.ContainsAny(name, "?@()") {
				return Null, fmt.Errorf("unsupported JSONPath %q", path)
			}
			cur = jsonChild(cur, name)
			p = p[end:]
		}
	}
	return cur, nil
}

func jsonChild(v Value, name string) Value {
	if v.k != KJObject {
		return Null
	}
	r, _ := v.Object().Get(name)
	return r
}
