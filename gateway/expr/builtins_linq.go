package expr

import (
	"fmt"
	"sort"
	"strings"
)

func (ev *evaluator) linqSeq(v Value) (Value, error) {
	items, err := ev.enumerate(v)
	if err != nil {
		return Null, err
	}
	return NewArray(append([]Value(nil), items...)), nil
}

func distinct(items []Value) []Value {
	out := items[:0:0]
outer:
	for _, it := range items {
		for _, o := range out {
			if valuesEqual(o, it) {
				continue outer
			}
		}
		out = append(out, it)
	}
	return out
}

// pred evaluates a lambda argument as a predicate.
func (ev *evaluator) pred(f, x Value, i int) (bool, error) {
	r, err := ev.callLambda(f, x, Int(int64(i)))
	if err != nil {
		return false, err
	}
	b, ok := truthy(r)
	if !ok {
		return false, fmt.Errorf("lambda must return bool, got %s", r.k)
	}
	return b, nil
}

// linq implements System.Linq.Enumerable and List<T> methods over any
// enumerable value. ok=false means the method is not a LINQ method.
func (ev *evaluator) linq(c *callExpr, recv Value, args []Value) (Value, bool, error) {
	switch recv.k {
	case KArray, KJArray, KJObject, KDict, KString, KBytes, KHost:
	default:
		return Null, false, nil
	}
	if recv.k == KArray {
		if v, ok, err := listMethod(c, recv.List(), args); ok {
			return v, true, err
		}
	}
	var fn Value
	hasFn := len(args) > 0 && args[0].k == KLambda
	if hasFn {
		fn = args[0]
	}
	items, err := ev.enumerate(recv)
	if err != nil {
		if strings.Contains(err.Error(), "not enumerable") {
			return Null, false, nil
		}
		return Null, true, err
	}
	switch c.name {
	case "Any", "Exists":
		if !hasFn {
			return Bool(len(items) > 0), true, nil
		}
		for i, it := range items {
			if ok, err := ev.pred(fn, it, i); err != nil || ok {
				return Bool(ok), true, err
			}
		}
		return Bool(false), true, nil
	case "All", "TrueForAll":
		for i, it := range items {
			if ok, err := ev.pred(fn, it, i); err != nil || !ok {
				return Bool(false), true, err
			}
		}
		return Bool(true), true, nil
	case "Count":
		if !hasFn {
			return Int(int64(len(items))), true, nil
		}
		n := 0
		for i, it := range items {
			ok, err := ev.pred(fn, it, i)
			if err != nil {
				return Null, true, err
			}
			if ok {
				n++
			}
		}
		return Int(int64(n)), true, nil
	case "Where", "FindAll":
		var out []Value
		for i, it := range items {
			ok, err := ev.pred(fn, it, i)
			if err != nil {
				return Null, true, err
			}
			if ok {
				out = append(out, it)
			}
		}
		return NewArray(out), true, nil
	case "Select":
		out := make([]Value, len(items))
		for i, it := range items {
			if out[i], err = ev.callLambda(fn, it, Int(int64(i))); err != nil {
				return Null, true, err
			}
		}
		return NewArray(out), true, nil
	case "SelectMany":
		var out []Value
		for i, it := range items {
			r, err := ev.callLambda(fn, it, Int(int64(i)))
			if err != nil {
				return Null, true, err
			}
			sub, err := ev.enumerate(r)
			if err != nil {
				return Null, true, err
			}
			out = append(out, sub...)
		}
		return NewArray(out), true, nil
	case "First", "FirstOrDefault", "Last", "LastOrDefault", "Single", "SingleOrDefault", "Find":
		var found []Value
		for i, it := range items {
			ok := true
			if hasFn {
				if ok, err = ev.pred(fn, it, i); err != nil {
					return Null, true, err
				}
			}
			if ok {
				found = append(found, it)
				if strings.HasPrefix(c.name, "First") || c.name == "Find" {
					break
				}
			}
		}
		orDefault := strings.HasSuffix(c.name, "OrDefault") || c.name == "Find"
		if len(found) == 0 {
			if orDefault {
				if !hasFn && len(args) == 1 {
					return args[0], true, nil
				}
				return Null, true, nil
			}
			return Null, true, fmt.Errorf("sequence contains no matching element")
		}
		if strings.HasPrefix(c.name, "Single") && len(found) > 1 {
			return Null, true, fmt.Errorf("sequence contains more than one matching element")
		}
		if strings.HasPrefix(c.name, "Last") {
			return found[len(found)-1], true, nil
		}
		return found[0], true, nil
	case "Contains":
		if len(args) >= 1 {
			for _, it := range items {
				if valuesEqual(it, args[0]) || len(args) == 2 && it.k == KString && args[0].k == KString && strings.EqualFold(it.s, args[0].s) {
					return Bool(true), true, nil
				}
			}
			return Bool(false), true, nil
		}
	case "ToArray", "ToList", "AsEnumerable", "Cast", "OfType", "ToHashSet":
		out := append([]Value(nil), items...)
		if c.name == "ToHashSet" {
			out = distinct(out)
		}
		return NewArray(out), true, nil
	case "Distinct":
		return NewArray(distinct(append([]Value(nil), items...))), true, nil
	case "Reverse":
		out := make([]Value, len(items))
		for i, it := range items {
			out[len(items)-1-i] = it
		}
		return NewArray(out), true, nil
	case "Skip", "Take":
		if len(args) == 1 && args[0].k == KInt {
			k := int(min(max(args[0].n, 0), int64(len(items))))
			if c.name == "Skip" {
				return NewArray(append([]Value(nil), items[k:]...)), true, nil
			}
			return NewArray(append([]Value(nil), items[:k]...)), true, nil
		}
	case "ElementAt", "ElementAtOrDefault":
		if len(args) == 1 && args[0].k == KInt {
			if args[0].n >= 0 && args[0].n < int64(len(items)) {
				return items[args[0].n], true, nil
			}
			if c.name == "ElementAtOrDefault" {
				return Null, true, nil
			}
			return Null, true, fmt.Errorf("index was out of range")
		}
	case "Concat":
		if len(args) == 1 {
			more, err := ev.enumerate(args[0])
			if err != nil {
				return Null, true, err
			}
			return NewArray(append(append([]Value(nil), items...), more...)), true, nil
		}
	case "OrderBy", "OrderByDescending":
		keys := make([]Value, len(items))
		for i, it := range items {
			if keys[i], err = ev.callLambda(fn, it, Int(int64(i))); err != nil {
				return Null, true, err
			}
		}
		idx := make([]int, len(items))
		for i := range idx {
			idx[i] = i
		}
		var cmpErr error
		sort.SliceStable(idx, func(a, b int) bool {
			ka, kb := keys[idx[a]], keys[idx[b]]
			var r int
			if ka.k == KString && kb.k == KString {
				r = strings.Compare(ka.s, kb.s)
			} else if r, err = compare(ka, kb); err != nil {
				cmpErr = err
			}
			if c.name == "OrderByDescending" {
				return r > 0
			}
			return r < 0
		})
		if cmpErr != nil {
			return Null, true, cmpErr
		}
		out := make([]Value, len(items))
		for i, j := range idx {
			out[i] = items[j]
		}
		return NewArray(out), true, nil
	case "Sum", "Max", "Min", "Average":
		var acc Value
		for i, it := range items {
			x := it
			if hasFn {
				if x, err = ev.callLambda(fn, it, Int(int64(i))); err != nil {
					return Null, true, err
				}
			}
			if i == 0 {
				acc = x
				continue
			}
			switch c.name {
			case "Sum", "Average":
				acc, err = arith("+", acc, x)
			default:
				r, cerr := compare(x, acc)
				err = cerr
				if c.name == "Max" && r == 1 || c.name == "Min" && r == -1 {
					acc = x
				}
			}
			if err != nil {
				return Null, true, err
			}
		}
		if len(items) == 0 {
			if c.name == "Sum" {
				return Int(0), true, nil
			}
			return Null, true, fmt.Errorf("sequence contains no elements")
		}
		if c.name == "Average" {
			return Double(acc.Float() / float64(len(items))), true, nil
		}
		return acc, true, nil
	}
	return Null, false, nil
}

// listMethod implements the mutating List<T> methods.
func listMethod(c *callExpr, l *List, args []Value) (Value, bool, error) {
	switch c.name {
	case "Add":
		if len(args) == 1 {
			l.Items = append(l.Items, args[0])
			return Null, true, nil
		}
	case "AddRange":
		if len(args) == 1 && (args[0].k == KArray || args[0].k == KJArray) {
			l.Items = append(l.Items, args[0].List().Items...)
			return Null, true, nil
		}
	case "Remove":
		if len(args) == 1 {
			for i, it := range l.Items {
				if valuesEqual(it, args[0]) {
					l.Items = append(l.Items[:i], l.Items[i+1:]...)
					return Bool(true), true, nil
				}
			}
			return Bool(false), true, nil
		}
	case "RemoveAt":
		if len(args) == 1 {
			i, err := intIndex(args[0], len(l.Items))
			if err == nil {
				l.Items = append(l.Items[:i], l.Items[i+1:]...)
			}
			return Null, true, err
		}
	case "Insert":
		if len(args) == 2 && args[0].k == KInt && args[0].n >= 0 && int(args[0].n) <= len(l.Items) {
			i := int(args[0].n)
			l.Items = append(l.Items[:i], append([]Value{args[1]}, l.Items[i:]...)...)
			return Null, true, nil
		}
	case "IndexOf":
		if len(args) == 1 {
			for i, it := range l.Items {
				if valuesEqual(it, args[0]) {
					return Int(int64(i)), true, nil
				}
			}
			return Int(-1), true, nil
		}
	case "Clear":
		l.Items = nil
		return Null, true, nil
	}
	return Null, false, nil
}
