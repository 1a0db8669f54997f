package portal

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
)

// armEnv evaluates the subset of ARM template expressions mainTemplate.json
// uses, so the check sees the resource ARM would deploy rather than
// guessing from the text. Unknown functions are errors, so a template that
// grows past this subset fails the check instead of passing unseen.
type armEnv struct {
	params    map[string]any
	vars      map[string]any // raw, evaluated on use
	varCache  map[string]any
	resolving map[string]bool
}

// value evaluates every expression inside v.
func (e *armEnv) value(v any) (any, error) {
	switch x := v.(type) {
	case string:
		if strings.HasPrefix(x, "[[") {
			return x[1:], nil // an escaped literal
		}
		if strings.HasPrefix(x, "[") && strings.HasSuffix(x, "]") {
			return e.expr(x[1 : len(x)-1])
		}
		return x, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, item := range x {
			ev, err := e.value(item)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = ev
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			ev, err := e.value(item)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = ev
		}
		return out, nil
	default:
		return v, nil
	}
}

func (e *armEnv) expr(src string) (any, error) {
	p := &armParser{src: src}
	v, err := p.parse(e)
	if err != nil {
		return nil, fmt.Errorf("expression [%s]: %w", src, err)
	}
	return v, nil
}

type armParser struct {
	src string
	pos int
}

func (p *armParser) skipSpace() {
	for p.pos < len(p.src) && p.src[p.pos] == ' ' {
		p.pos++
	}
}

func (p *armParser) parse(e *armEnv) (any, error) {
	v, err := p.primary(e)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.src) {
		return nil, fmt.Errorf("unexpected %q at %d", p.src[p.pos:], p.pos)
	}
	return v, nil
}

func (p *armParser) primary(e *armEnv) (any, error) {
	p.skipSpace()
	if p.pos >= len(p.src) {
		return nil, fmt.Errorf("unexpected end")
	}
	var v any
	var err error
	switch c := p.src[p.pos]; {
	case c == '\'':
		v, err = p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		v, err = p.num()
	default:
		v, err = p.call(e)
	}
	if err != nil {
		return nil, err
	}
	// Property access: f(x).name
	for p.pos < len(p.src) && p.src[p.pos] == '.' {
		p.pos++
		name := p.ident()
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf(".%s on a %T", name, v)
		}
		if v, ok = m[name]; !ok {
			return nil, fmt.Errorf("no property %s", name)
		}
	}
	return v, nil
}

func (p *armParser) str() (string, error) {
	p.pos++ // opening quote
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		p.pos++
		if c != '\'' {
			b.WriteByte(c)
			continue
		}
		if p.pos < len(p.src) && p.src[p.pos] == '\'' { // '' is a quote
			b.WriteByte('\'')
			p.pos++
			continue
		}
		return b.String(), nil
	}
	return "", fmt.Errorf("unterminated string")
}

func (p *armParser) num() (any, error) {
	start := p.pos
	p.pos++
	for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
		p.pos++
	}
	n, err := strconv.ParseInt(p.src[start:p.pos], 10, 64)
	if err != nil {
		return nil, err
	}
	return float64(n), nil
}

func (p *armParser) ident() string {
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			p.pos++
			continue
		}
		break
	}
	return p.src[start:p.pos]
}

func (p *armParser) call(e *armEnv) (any, error) {
	name := p.ident()
	if name == "" {
		return nil, fmt.Errorf("unexpected %q at %d", p.src[p.pos:], p.pos)
	}
	p.skipSpace()
	if p.pos >= len(p.src) || p.src[p.pos] != '(' {
		return nil, fmt.Errorf("%s: expected (", name)
	}
	p.pos++
	var args []any
	for {
		p.skipSpace()
		if p.pos < len(p.src) && p.src[p.pos] == ')' {
			p.pos++
			break
		}
		a, err := p.primary(e)
		if err != nil {
			return nil, err
		}
		args = append(args, a)
		p.skipSpace()
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.src) && p.src[p.pos] == ')' {
			p.pos++
			break
		}
		return nil, fmt.Errorf("%s: expected , or )", name)
	}
	return e.apply(name, args)
}

func (e *armEnv) apply(name string, args []any) (any, error) {
	want := func(n int) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %d arguments, got %d", name, n, len(args))
		}
		return nil
	}
	switch strings.ToLower(name) {
	case "parameters":
		if err := want(1); err != nil {
			return nil, err
		}
		v, ok := e.params[fmt.Sprint(args[0])]
		if !ok {
			return nil, fmt.Errorf("parameters(%q): not declared", args[0])
		}
		return v, nil
	case "variables":
		if err := want(1); err != nil {
			return nil, err
		}
		return e.variable(fmt.Sprint(args[0]))
	case "if":
		if err := want(3); err != nil {
			return nil, err
		}
		c, ok := args[0].(bool)
		if !ok {
			return nil, fmt.Errorf("if: condition is a %T, not a bool", args[0])
		}
		if c {
			return args[1], nil
		}
		return args[2], nil
	case "not":
		if err := want(1); err != nil {
			return nil, err
		}
		b, ok := args[0].(bool)
		if !ok {
			return nil, fmt.Errorf("not: %T is not a bool", args[0])
		}
		return !b, nil
	case "equals":
		if err := want(2); err != nil {
			return nil, err
		}
		return fmt.Sprint(args[0]) == fmt.Sprint(args[1]), nil
	case "true":
		return true, want(0)
	case "false":
		return false, want(0)
	case "null":
		return nil, want(0)
	case "string":
		if err := want(1); err != nil {
			return nil, err
		}
		switch x := args[0].(type) {
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		case int:
			return strconv.Itoa(x), nil
		case string:
			return x, nil
		case bool:
			// ARM writes booleans as True and False.
			if x {
				return "True", nil
			}
			return "False", nil
		default:
			return nil, fmt.Errorf("string: unsupported %T", x)
		}
	case "concat":
		var b strings.Builder
		for _, a := range args {
			s, ok := a.(string)
			if !ok {
				return nil, fmt.Errorf("concat: %T is not a string", a)
			}
			b.WriteString(s)
		}
		return b.String(), nil
	case "format":
		if len(args) == 0 {
			return nil, fmt.Errorf("format needs a format string")
		}
		f, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("format: %T is not a string", args[0])
		}
		for i, a := range args[1:] {
			f = strings.ReplaceAll(f, "{"+strconv.Itoa(i)+"}", fmt.Sprint(a))
		}
		return f, nil
	case "createobject":
		if len(args)%2 != 0 {
			return nil, fmt.Errorf("createObject needs key/value pairs")
		}
		out := map[string]any{}
		for i := 0; i < len(args); i += 2 {
			k, ok := args[i].(string)
			if !ok {
				return nil, fmt.Errorf("createObject: key %v is not a string", args[i])
			}
			out[k] = args[i+1]
		}
		return out, nil
	case "union":
		out := map[string]any{}
		for _, a := range args {
			m, ok := a.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("union: %T is not an object", a)
			}
			maps.Copy(out, m)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("function %s is not supported by the portal check", name)
	}
}

func (e *armEnv) variable(name string) (any, error) {
	if v, ok := e.varCache[name]; ok {
		return v, nil
	}
	raw, ok := e.vars[name]
	if !ok {
		return nil, fmt.Errorf("variables(%q): not declared", name)
	}
	if e.resolving[name] {
		return nil, fmt.Errorf("variables(%q): refers to itself", name)
	}
	e.resolving[name] = true
	v, err := e.value(raw)
	delete(e.resolving, name)
	if err != nil {
		return nil, fmt.Errorf("variables(%q): %w", name, err)
	}
	e.varCache[name] = v
	return v, nil
}
