package expr

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// callMethod dispatches an instance or extension method call.
func (ev *evaluator) callMethod(c *callExpr, recv Value, args []Value) (Value, error) {
	switch c.name {
	case "ToString":
		if len(args) == 0 {
			if recv.k == KJObject || recv.k == KJArray || recv.k == KJProperty {
				return String(toJSON(recv, true)), nil
			}
			if recv.k == KHost {
				if u, ok := recv.o.(URL); ok {
					return String(urlString(u)), nil
				}
				if sb, ok := recv.o.(*stringBuilder); ok {
					return String(sb.b.String()), nil
				}
			}
			return String(toString(recv)), nil
		}
		if recv.k == KJObject || recv.k == KJArray {
			return String(toJSON(recv, args[0].k == KEnum && args[0].n == 1)), nil
		}
		if args[0].k == KString {
			s, err := formatValue(recv, args[0].s)
			return String(s), err
		}
		return String(toString(recv)), nil
	case "Equals":
		if recv.k == KString && len(args) >= 1 {
			return stringEquals(recv.s, args)
		}
		if len(args) == 1 {
			return Bool(valuesEqual(recv, args[0])), nil
		}
	case "GetHashCode":
		return Int(int64(len(toString(recv)))), nil
	case "CompareTo":
		if len(args) == 1 {
			if recv.k == KString && args[0].k == KString {
				return Int(int64(strings.Compare(recv.s, args[0].s))), nil
			}
			n, err := compare(recv, args[0])
			return Int(int64(n)), err
		}
	}
	switch recv.k {
	case KString:
		return ev.stringMethod(c, recv.s, args)
	case KJObject, KJArray, KJProperty:
		if v, ok, err := ev.jsonMethod(c, recv, args); ok {
			return v, err
		}
	case KDict:
		if v, ok, err := ev.dictMethod(c, recv.Object(), args); ok {
			return v, err
		}
	case KDateTime:
		return dateMethod(c, recv, args)
	case KTimeSpan:
		if c.name == "Add" || c.name == "Subtract" {
			if len(args) == 1 && args[0].k == KTimeSpan {
				if c.name == "Add" {
					return Value{k: KTimeSpan, n: recv.n + args[0].n}, nil
				}
				return Value{k: KTimeSpan, n: recv.n - args[0].n}, nil
			}
		}
	case KHost:
		if v, ok, err := ev.hostMethod(c, recv.o, args); ok {
			return v, err
		}
	}
	if c.name == "Value" || c.name == "ToObject" {
		// JToken.Value<T>() on a scalar token converts it.
		if len(c.targs) == 1 && len(args) == 0 {
			return castTo(recv, c.targs[0])
		}
	}
	if v, ok, err := ev.linq(c, recv, args); ok {
		return v, err
	}
	return Null, fmt.Errorf("method %s is not supported on %s", c.name, kindName(recv))
}

func kindName(v Value) string {
	if v.k == KHost {
		return hostTypeName(v.o)
	}
	return v.k.String()
}

// dictCall implements GetValueOrDefault, ContainsKey and TryGetValue on a
// read-only host dictionary. get returns the value GetValueOrDefault
// gives and the one TryGetValue stores. Other methods are not handled.
func dictCall(c *callExpr, args []Value, get func(key string) (Value, Value, bool)) (Value, bool, error) {
	switch c.name {
	case "GetValueOrDefault":
		if len(args) < 1 || len(args) > 2 {
			return Null, true, argErr(c, args)
		}
		v, _, ok := get(toString(args[0]))
		if !ok {
			if len(args) == 2 {
				return args[1], true, nil
			}
			return Null, true, nil
		}
		return v, true, nil
	case "ContainsKey":
		_, _, ok := get(toString(args[0]))
		return Bool(ok), true, nil
	case "TryGetValue":
		if len(args) != 2 {
			return Null, true, argErr(c, args)
		}
		_, out, ok := get(toString(args[0]))
		if ok {
			args[1] = out
		}
		return Bool(ok), true, nil
	}
	return Null, false, nil
}

func argErr(c *callExpr, args []Value) error {
	return fmt.Errorf("no overload of %s takes %d arguments of these types", c.name, len(args))
}

func (ev *evaluator) hostMethod(c *callExpr, o any, args []Value) (Value, bool, error) {
	switch h := o.(type) {
	case Context:
		if c.name == "Trace" {
			switch len(args) {
			case 1:
				h.Trace("", toString(args[0]))
			case 2:
				h.Trace(toString(args[0]), toString(args[1]))
			default:
				return Null, true, argErr(c, args)
			}
			return Null, true, nil
		}
	case Variables:
		switch c.name {
		case "GetValueOrDefault":
			if len(args) < 1 || len(args) > 2 {
				return Null, true, argErr(c, args)
			}
			v, ok := h.Get(toString(args[0]))
			var typ *typeRef
			if len(c.targs) == 1 {
				typ = c.targs[0]
			}
			if !ok || v.k == KNull {
				if len(args) == 2 {
					return args[1], true, nil
				}
				return defaultOf(typ), true, nil
			}
			if typ != nil {
				cv, err := castTo(v, typ)
				return cv, true, err
			}
			return v, true, nil
		case "ContainsKey":
			if len(args) != 1 {
				return Null, true, argErr(c, args)
			}
			_, ok := h.Get(toString(args[0]))
			return Bool(ok), true, nil
		case "TryGetValue":
			if len(args) != 2 {
				return Null, true, argErr(c, args)
			}
			v, ok := h.Get(toString(args[0]))
			args[1] = v
			return Bool(ok), true, nil
		}
	case MultiMap:
		// A header or query parameter read as one value joins its values
		// with ','; TryGetValue hands out the array.
		return dictCall(c, args, func(k string) (Value, Value, bool) {
			vals, ok := h.Get(k)
			if !ok {
				return Null, Null, false
			}
			if len(vals) == 1 {
				return String(vals[0]), StringArray(vals), true
			}
			return String(strings.Join(vals, ",")), StringArray(vals), true
		})
	case StringMap:
		return dictCall(c, args, func(k string) (Value, Value, bool) {
			v, ok := h.Get(k)
			return String(v), String(v), ok
		})
	case Body:
		if c.name == "As" {
			v, err := bodyAs(c, h, args)
			return v, true, err
		}
	case URL:
		if c.name == "ToUri" {
			v, err := newUri(urlString(h))
			return v, true, err
		}
	case *encodingValue:
		switch c.name {
		case "GetBytes":
			if len(args) == 1 {
				return Bytes([]byte(toString(args[0]))), true, nil
			}
		case "GetString":
			if len(args) >= 1 {
				b, err := toByteSlice(args[0])
				if len(args) == 3 && err == nil {
					lo, n := int(args[1].n), int(args[2].n)
					if lo < 0 || n < 0 || lo+n > len(b) {
						return Null, true, fmt.Errorf("index and count must refer to a location within the buffer")
					}
					b = b[lo : lo+n]
				}
				return String(string(b)), true, err
			}
		}
	case *stringBuilder:
		switch c.name {
		case "Append", "AppendLine":
			for _, a := range args {
				h.b.WriteString(toString(a))
			}
			if c.name == "AppendLine" {
				h.b.WriteString("\n")
			}
			return Host(h), true, nil
		case "Clear":
			h.b.Reset()
			return Host(h), true, nil
		}
	case *randomValue:
		switch c.name {
		case "Next":
			switch len(args) {
			case 0:
				return Int(rand.Int64N(1 << 31)), true, nil
			case 1:
				if args[0].n <= 0 {
					return Int(0), true, nil
				}
				return Int(rand.Int64N(args[0].n)), true, nil
			case 2:
				if args[1].n <= args[0].n {
					return args[0], true, nil
				}
				return Int(args[0].n + rand.Int64N(args[1].n-args[0].n)), true, nil
			}
		case "NextDouble":
			return Double(rand.Float64()), true, nil
		}
	default:
		return apimMethod(ev, c, o, args)
	}
	return Null, false, nil
}

func (ev *evaluator) dictMethod(c *callExpr, o *Object, args []Value) (Value, bool, error) {
	switch c.name {
	case "Add":
		if len(args) != 2 {
			return Null, true, argErr(c, args)
		}
		k := toString(args[0])
		if _, ok := o.Get(k); ok {
			return Null, true, fmt.Errorf("an item with the same key has already been added: %s", k)
		}
		o.Set(k, args[1])
		return Null, true, nil
	case "ContainsKey":
		_, ok := o.Get(toString(args[0]))
		return Bool(ok), true, nil
	case "Remove":
		return Bool(o.Delete(toString(args[0]))), true, nil
	case "TryGetValue":
		if len(args) != 2 {
			return Null, true, argErr(c, args)
		}
		v, ok := o.Get(toString(args[0]))
		args[1] = v
		return Bool(ok), true, nil
	case "GetValueOrDefault":
		v, ok := o.Get(toString(args[0]))
		if !ok && len(args) > 1 {
			return args[1], true, nil
		}
		return v, true, nil
	case "Clear":
		o.keys, o.vals, o.idx = nil, nil, nil
		return Null, true, nil
	}
	return Null, false, nil
}

// stringBuilder is System.Text.StringBuilder.
type stringBuilder struct{ b strings.Builder }

// randomValue is System.Random.
type randomValue struct{}

// encodingValue is Encoding.UTF8 / Encoding.ASCII (both treated as UTF-8).
type encodingValue struct{ name string }

var utf8Encoding = &encodingValue{name: "UTF8"}

func (ev *evaluator) evalNew(x *newExpr) (Value, error) {
	b, args, err := ev.evalArgs(x.args)
	if err != nil {
		return Null, err
	}
	defer func() { ev.stack = ev.stack[:b] }()
	var keys, items []Value
	for i, it := range x.items {
		if x.keys[i] != nil {
			k, err := ev.eval(x.keys[i])
			if err != nil {
				return Null, err
			}
			keys = append(keys, k)
		} else {
			keys = append(keys, Value{k: KLambda}) // marker: no key
		}
		v, err := ev.eval(it)
		if err != nil {
			return Null, err
		}
		items = append(items, v)
	}
	hasKey := func(i int) bool { return keys[i].k != KLambda }
	t := x.typ
	if t.array {
		if x.arrayLen != nil {
			n, err := ev.eval(x.arrayLen)
			if err != nil {
				return Null, err
			}
			if n.k != KInt || n.n < 0 || n.n > 1<<24 {
				return Null, fmt.Errorf("invalid array size")
			}
			out := make([]Value, n.n)
			el := defaultOf(&typeRef{name: t.name})
			for i := range out {
				out[i] = el
			}
			return NewArray(out), nil
		}
		return NewArray(items), nil
	}
	if x.anon {
		o := &Object{}
		for i, v := range items {
			o.Set(x.members[i], toJToken(v))
		}
		return Value{k: KJObject, o: o}, nil
	}
	for _, m := range x.members {
		if m != "" {
			return Null, fmt.Errorf("object initializers are not supported for %s", t.name)
		}
	}
	switch t.name {
	case "JObject":
		o := &Object{}
		for _, a := range args {
			if err := jobjectAdd(o, a); err != nil {
				return Null, err
			}
		}
		for i, v := range items {
			if hasKey(i) {
				o.Set(toString(keys[i]), toJToken(v))
			} else if err := jobjectAdd(o, v); err != nil {
				return Null, err
			}
		}
		return Value{k: KJObject, o: o}, nil
	case "JArray", "List", "HashSet":
		l := &List{}
		for _, a := range args {
			if a.k == KInt && t.name != "JArray" {
				continue // capacity
			}
			if err := ev.addAll(l, a, t.name == "JArray"); err != nil {
				return Null, err
			}
		}
		for _, v := range items {
			l.Items = append(l.Items, v)
		}
		if t.name == "HashSet" {
			l.Items = distinct(l.Items)
		}
		if t.name == "JArray" {
			for i, v := range l.Items {
				l.Items[i] = toJToken(v)
			}
			return Value{k: KJArray, o: l}, nil
		}
		return Value{k: KArray, o: l}, nil
	case "JProperty", "KeyValuePair":
		if len(args) < 2 {
			return Null, fmt.Errorf("new %s needs a name and a value", t.name)
		}
		val := args[1]
		if len(args) > 2 {
			val = NewJArray(append([]Value(nil), args[1:]...))
		}
		if t.name == "JProperty" {
			val = toJToken(val)
		}
		return Value{k: KJProperty, o: &Property{Name: toString(args[0]), Value: val}}, nil
	case "JValue":
		if len(args) == 1 {
			return args[0], nil
		}
	case "Dictionary":
		o := &Object{}
		for i, v := range items {
			if !hasKey(i) {
				return Null, fmt.Errorf("dictionary initializer needs keys")
			}
			o.Set(toString(keys[i]), v)
		}
		return Value{k: KDict, o: o}, nil
	case "string":
		if len(args) == 2 && args[0].k == KChar {
			return String(strings.Repeat(string(rune(args[0].n)), int(max(args[1].n, 0)))), nil
		}
		if len(args) == 1 && args[0].k == KArray {
			var sb strings.Builder
			for _, it := range args[0].List().Items {
				sb.WriteString(toString(it))
			}
			return String(sb.String()), nil
		}
	case "Uri":
		if len(args) == 1 {
			return newUri(toString(args[0]))
		}
	case "DateTime", "DateTimeOffset":
		if len(args) >= 3 {
			p := [6]int{}
			for i := 0; i < len(args) && i < 6; i++ {
				p[i] = int(args[i].Int())
			}
			return Time(time.Date(p[0], time.Month(p[1]), p[2], p[3], p[4], p[5], 0, time.UTC)), nil
		}
	case "TimeSpan":
		switch len(args) {
		case 3:
			return Duration(time.Duration(args[0].n)*time.Hour + time.Duration(args[1].n)*time.Minute + time.Duration(args[2].n)*time.Second), nil
		case 4:
			return Duration(time.Duration(args[0].n)*24*time.Hour + time.Duration(args[1].n)*time.Hour + time.Duration(args[2].n)*time.Minute + time.Duration(args[3].n)*time.Second), nil
		case 1:
			return Duration(time.Duration(args[0].n) * 100), nil
		}
	case "StringBuilder":
		sb := &stringBuilder{}
		if len(args) == 1 && args[0].k == KString {
			sb.b.WriteString(args[0].s)
		}
		return Host(sb), nil
	case "Random":
		return Host(&randomValue{}), nil
	case "Exception":
		msg := "exception thrown by policy expression"
		if len(args) > 0 {
			msg = toString(args[0])
		}
		return Host(&exceptionValue{msg: msg}), nil
	}
	return Null, fmt.Errorf("no constructor of %s takes %d arguments", t.name, len(args))
}

// addAll appends a value to a list, flattening enumerables the way the
// JArray(params object[]) and List(IEnumerable) constructors do.
func (ev *evaluator) addAll(l *List, a Value, json bool) error {
	switch a.k {
	case KArray, KJArray:
		l.Items = append(l.Items, a.List().Items...)
		return nil
	}
	if !json {
		return fmt.Errorf("cannot construct a list from %s", a.k)
	}
	l.Items = append(l.Items, a)
	return nil
}

func jobjectAdd(o *Object, v Value) error {
	switch v.k {
	case KJProperty:
		p := v.o.(*Property)
		if _, dup := o.Get(p.Name); dup {
			return fmt.Errorf("can not add property %s to Newtonsoft.Json.Linq.JObject. Property with the same name already exists on object", p.Name)
		}
		o.Set(p.Name, p.Value)
		return nil
	case KJObject:
		src := v.Object()
		for i, k := range src.keys {
			o.Set(k, src.vals[i])
		}
		return nil
	case KArray, KJArray:
		for _, it := range v.List().Items {
			if err := jobjectAdd(o, it); err != nil {
				return err
			}
		}
		return nil
	case KNull:
		return nil
	}
	return fmt.Errorf("can not add %s to JObject", v.k)
}
