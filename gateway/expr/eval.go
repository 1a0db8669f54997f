package expr

import (
	"errors"
	"fmt"
	"strings"
)

type evaluator struct {
	prog  *Program
	env   *Env
	slots []Value
	stack []Value // argument stack, reused across calls to avoid allocation
	steps int
	ret   Value
}

type ctrl uint8

const (
	ctrlNone ctrl = iota
	ctrlBreak
	ctrlContinue
	ctrlReturn
)

// errStepLimit is not catchable by try/catch: it protects the gateway.
var errStepLimit = errors.New("evaluation step limit exceeded")

// thrown carries a value raised by a throw statement.
type thrown struct{ msg string }

func (t *thrown) Error() string { return t.msg }

// Eval evaluates the program. It never panics: a panic inside a builtin is
// converted into a *RuntimeError as a last resort.
func (p *Program) Eval(env *Env) (res Value, err error) {
	ev, _ := p.pool.Get().(*evaluator)
	if ev == nil {
		ev = &evaluator{}
	}
	ev.prog, ev.env, ev.steps = p, env, 0
	if cap(ev.slots) < p.nslots {
		ev.slots = make([]Value, p.nslots)
	}
	ev.slots = ev.slots[:p.nslots]
	defer func() {
		if r := recover(); r != nil {
			res, err = Null, &RuntimeError{Msg: fmt.Sprintf("internal error: %v", r)}
		}
		clear(ev.slots)
		clear(ev.stack[:cap(ev.stack)])
		ev.stack = ev.stack[:0]
		ev.env, ev.ret = nil, Null
		p.pool.Put(ev)
	}()
	if !p.block {
		return ev.eval(p.root)
	}
	if _, err := ev.exec(p.root); err != nil {
		return Null, ev.wrap(p.root, err)
	}
	return ev.ret, nil
}

// wrap attaches the position of n to errors coming from builtins.
func (ev *evaluator) wrap(n node, err error) error {
	var re *RuntimeError
	if errors.As(err, &re) {
		return err
	}
	line, col := lineCol(ev.prog.src, n.position())
	return &RuntimeError{Line: line, Col: col, Msg: err.Error()}
}

func (ev *evaluator) errf(n node, format string, args ...any) error {
	return ev.wrap(n, fmt.Errorf(format, args...))
}

func (ev *evaluator) step() error {
	ev.steps++
	if ev.steps > ev.prog.maxSteps {
		return errStepLimit
	}
	return nil
}

func (ev *evaluator) eval(n node) (Value, error) {
	switch x := n.(type) {
	case *litExpr:
		return x.val, nil
	case *localExpr:
		return ev.slots[x.slot], nil
	case *contextExpr:
		if ev.env == nil || ev.env.Context == nil {
			return Null, ev.errf(n, "context is not available")
		}
		return Value{k: KHost, o: ev.env.Context}, nil
	case *memberExpr:
		recv, err := ev.eval(x.x)
		if err != nil {
			return Null, err
		}
		if recv.k == KNull {
			if x.nullCond {
				return Null, nil
			}
			return Null, ev.errf(n, "object reference not set to an instance of an object (reading %s)", x.name)
		}
		v, err := ev.member(recv, x.name)
		if err != nil {
			return Null, ev.wrap(n, err)
		}
		return v, nil
	case *indexExpr:
		return ev.evalIndex(x)
	case *callExpr:
		return ev.evalCall(x)
	case *staticMember:
		return x.get(ev), nil
	case *interpExpr:
		return ev.evalInterp(x)
	case *unaryExpr:
		return ev.evalUnary(x)
	case *binaryExpr:
		return ev.evalBinary(x)
	case *condExpr:
		c, err := ev.cond(x.c)
		if err != nil {
			return Null, err
		}
		if c {
			return ev.eval(x.a)
		}
		return ev.eval(x.b)
	case *castExpr:
		v, err := ev.eval(x.x)
		if err != nil {
			return Null, err
		}
		v, err = castTo(v, x.typ)
		if err != nil {
			return Null, ev.wrap(n, err)
		}
		return v, nil
	case *isExpr:
		v, err := ev.eval(x.x)
		if err != nil {
			return Null, err
		}
		ok := isType(v, x.typ)
		if ok && x.slot >= 0 {
			ev.slots[x.slot] = v
		}
		return Bool(ok), nil
	case *asExpr:
		v, err := ev.eval(x.x)
		if err != nil || !isType(v, x.typ) {
			return Null, err
		}
		return v, nil
	case *lambdaExpr:
		return Value{k: KLambda, o: x}, nil
	case *newExpr:
		v, err := ev.evalNew(x)
		if err != nil {
			return Null, ev.wrap(n, err)
		}
		return v, nil
	case *assignExpr:
		return ev.evalAssign(x)
	case *incDecExpr:
		old, err := ev.eval(x.target)
		if err != nil {
			return Null, err
		}
		op := "+"
		if x.op == "--" {
			op = "-"
		}
		nv, err := arith(op, old, Int(1))
		if err != nil {
			return Null, ev.wrap(n, err)
		}
		if err := ev.store(x.target, nv); err != nil {
			return Null, err
		}
		if x.prefix {
			return nv, nil
		}
		return old, nil
	case *defaultExpr:
		return defaultOf(x.typ), nil
	}
	return Null, ev.errf(n, "unsupported expression %T", n)
}

func (ev *evaluator) cond(n node) (bool, error) {
	v, err := ev.eval(n)
	if err != nil {
		return false, err
	}
	b, ok := truthy(v)
	if !ok {
		return false, ev.errf(n, "condition must be bool, got %s", v.k)
	}
	return b, nil
}

// evalArgs pushes argument values on the shared stack and returns the
// segment; the caller must truncate ev.stack back to base afterwards.
func (ev *evaluator) evalArgs(args []node) (int, []Value, error) {
	b := len(ev.stack)
	for _, a := range args {
		v, err := ev.eval(a)
		if err != nil {
			ev.stack = ev.stack[:b]
			return b, nil, err
		}
		ev.stack = append(ev.stack, v)
	}
	return b, ev.stack[b:len(ev.stack):len(ev.stack)], nil
}

func (ev *evaluator) evalCall(c *callExpr) (Value, error) {
	var recv Value
	if c.recv != nil {
		var err error
		recv, err = ev.eval(c.recv)
		if err != nil {
			return Null, err
		}
		if recv.k == KNull {
			if c.nullCond {
				return Null, nil
			}
			// string.IsNullOrEmpty-style extension semantics do not apply;
			// ToString on null is a NullReferenceException in C#.
			return Null, ev.errf(c, "object reference not set to an instance of an object (calling %s)", c.name)
		}
	}
	b, args, err := ev.evalArgs(c.args)
	if err != nil {
		return Null, err
	}
	var v Value
	if c.static != nil {
		v, err = c.static(ev, c, args)
	} else {
		v, err = ev.callMethod(c, recv, args)
	}
	if err == nil {
		for i, s := range c.outs {
			if s >= 0 {
				ev.slots[s] = args[i]
			}
		}
	}
	ev.stack = ev.stack[:b]
	if err != nil {
		return Null, ev.wrap(c, err)
	}
	return v, nil
}

func (ev *evaluator) evalIndex(x *indexExpr) (Value, error) {
	recv, err := ev.eval(x.x)
	if err != nil {
		return Null, err
	}
	if recv.k == KNull {
		if x.nullCond {
			return Null, nil
		}
		return Null, ev.errf(x, "object reference not set to an instance of an object (indexing null)")
	}
	if len(x.args) != 1 {
		return Null, ev.errf(x, "multi-dimensional indexers are not supported")
	}
	key, err := ev.eval(x.args[0])
	if err != nil {
		return Null, err
	}
	v, err := ev.index(recv, key)
	if err != nil {
		return Null, ev.wrap(x, err)
	}
	return v, nil
}

func (ev *evaluator) evalInterp(x *interpExpr) (Value, error) {
	var b strings.Builder
	for _, p := range x.parts {
		if p.x == nil {
			b.WriteString(p.lit)
			continue
		}
		v, err := ev.eval(p.x)
		if err != nil {
			return Null, err
		}
		s := toString(v)
		if p.format != "" {
			if s, err = formatValue(v, p.format); err != nil {
				return Null, ev.wrap(p.x, err)
			}
		}
		if p.align > 0 && len(s) < p.align {
			s = strings.Repeat(" ", p.align-len(s)) + s
		} else if p.align < 0 && len(s) < -p.align {
			s += strings.Repeat(" ", -p.align-len(s))
		}
		b.WriteString(s)
	}
	return String(b.String()), nil
}

func (ev *evaluator) evalUnary(x *unaryExpr) (Value, error) {
	v, err := ev.eval(x.x)
	if err != nil {
		return Null, err
	}
	switch x.op {
	case "!":
		if v.k != KBool {
			return Null, ev.errf(x, "operator ! cannot be applied to %s", v.k)
		}
		return Bool(v.n == 0), nil
	case "-":
		switch v.k {
		case KInt, KChar:
			return Int(-v.n), nil
		case KDouble:
			return Double(-v.Float()), nil
		case KTimeSpan:
			return Value{k: KTimeSpan, n: -v.n}, nil
		}
	case "+":
		if isNumber(v.k) {
			return v, nil
		}
	case "~":
		if v.k == KInt || v.k == KEnum {
			return Int(^v.n), nil
		}
	}
	return Null, ev.errf(x, "operator %s cannot be applied to %s", x.op, v.k)
}

func (ev *evaluator) evalBinary(x *binaryExpr) (Value, error) {
	l, err := ev.eval(x.l)
	if err != nil {
		return Null, err
	}
	switch x.op {
	case "&&", "||":
		lb, ok := truthy(l)
		if !ok {
			return Null, ev.errf(x, "operator %s needs bool operands, got %s", x.op, l.k)
		}
		if lb == (x.op == "||") {
			return Bool(lb), nil
		}
		r, err := ev.eval(x.r)
		if err != nil {
			return Null, err
		}
		rb, ok := truthy(r)
		if !ok {
			return Null, ev.errf(x, "operator %s needs bool operands, got %s", x.op, r.k)
		}
		return Bool(rb), nil
	case "??":
		if l.k != KNull {
			return l, nil
		}
		return ev.eval(x.r)
	}
	r, err := ev.eval(x.r)
	if err != nil {
		return Null, err
	}
	v, err := binary(x.op, l, r)
	if err != nil {
		return Null, ev.wrap(x, err)
	}
	return v, nil
}

func (ev *evaluator) evalAssign(x *assignExpr) (Value, error) {
	var v Value
	var err error
	if x.op == "=" {
		v, err = ev.eval(x.value)
	} else {
		var old Value
		if old, err = ev.eval(x.target); err != nil {
			return Null, err
		}
		if x.op == "??=" {
			if old.k != KNull {
				return old, nil
			}
			v, err = ev.eval(x.value)
		} else {
			var r Value
			if r, err = ev.eval(x.value); err != nil {
				return Null, err
			}
			if v, err = binary(x.op[:len(x.op)-1], old, r); err != nil {
				return Null, ev.wrap(x, err)
			}
		}
	}
	if err != nil {
		return Null, err
	}
	return v, ev.store(x.target, v)
}

func (ev *evaluator) store(target node, v Value) error {
	switch t := target.(type) {
	case *localExpr:
		ev.slots[t.slot] = v
		return nil
	case *indexExpr:
		recv, err := ev.eval(t.x)
		if err != nil {
			return err
		}
		key, err := ev.eval(t.args[0])
		if err != nil {
			return err
		}
		if err := ev.setIndex(recv, key, v); err != nil {
			return ev.wrap(t, err)
		}
		return nil
	case *memberExpr:
		recv, err := ev.eval(t.x)
		if err != nil {
			return err
		}
		if p, ok := recv.o.(*Property); ok && t.name == "Value" {
			p.Value = v
			return nil
		}
		return ev.errf(t, "cannot assign to member %s", t.name)
	}
	return ev.errf(target, "invalid assignment target")
}

// exec runs a statement.
func (ev *evaluator) exec(n node) (ctrl, error) {
	switch s := n.(type) {
	case *blockStmt:
		for _, st := range s.stmts {
			c, err := ev.exec(st)
			if err != nil || c != ctrlNone {
				return c, err
			}
		}
		return ctrlNone, nil
	case *declStmt:
		for i, slot := range s.slots {
			v := defaultOf(s.typ)
			if s.inits[i] != nil {
				var err error
				if v, err = ev.eval(s.inits[i]); err != nil {
					return ctrlNone, err
				}
				if s.typ != nil && v.k != KNull {
					v = implicitConvert(v, s.typ)
				}
			}
			ev.slots[slot] = v
		}
		return ctrlNone, nil
	case *exprStmt:
		_, err := ev.eval(s.x)
		return ctrlNone, err
	case *returnStmt:
		v, err := ev.eval(s.x)
		if err != nil {
			return ctrlNone, err
		}
		ev.ret = v
		return ctrlReturn, nil
	case *ifStmt:
		c, err := ev.cond(s.c)
		if err != nil {
			return ctrlNone, err
		}
		if c {
			return ev.exec(s.then)
		}
		if s.els_ != nil {
			return ev.exec(s.els_)
		}
		return ctrlNone, nil
	case *foreachStmt:
		return ev.execForeach(s)
	case *forStmt:
		for _, st := range s.init {
			if _, err := ev.exec(st); err != nil {
				return ctrlNone, err
			}
		}
		for {
			if s.cond != nil {
				c, err := ev.cond(s.cond)
				if err != nil || !c {
					return ctrlNone, err
				}
			}
			if c, done, err := ev.iteration(s.body); done {
				return c, err
			}
			for _, it := range s.iter {
				if _, err := ev.eval(it); err != nil {
					return ctrlNone, err
				}
			}
		}
	case *whileStmt:
		for first := true; ; first = false {
			if !(s.do && first) {
				c, err := ev.cond(s.c)
				if err != nil || !c {
					return ctrlNone, err
				}
			}
			if c, done, err := ev.iteration(s.body); done {
				return c, err
			}
		}
	case *breakStmt:
		return ctrlBreak, nil
	case *continueStmt:
		return ctrlContinue, nil
	case *tryStmt:
		return ev.execTry(s)
	case *throwStmt:
		msg := "exception thrown by policy expression"
		if s.x != nil {
			v, err := ev.eval(s.x)
			if err != nil {
				return ctrlNone, err
			}
			if e, ok := v.o.(*exceptionValue); ok {
				msg = e.msg
			}
		}
		return ctrlNone, ev.wrap(s, &thrown{msg: msg})
	case *switchStmt:
		return ev.execSwitch(s)
	}
	return ctrlNone, ev.errf(n, "unsupported statement %T", n)
}

func (ev *evaluator) execTry(s *tryStmt) (c ctrl, err error) {
	c, err = ev.exec(s.body)
	if err != nil && s.catchBody != nil && !errors.Is(err, errStepLimit) {
		if s.catchSlot >= 0 {
			msg := err.Error()
			var re *RuntimeError
			if errors.As(err, &re) {
				msg = re.Msg
			}
			ev.slots[s.catchSlot] = Host(&exceptionValue{msg: msg})
		}
		c, err = ev.exec(s.catchBody)
	}
	if s.finally != nil {
		fc, ferr := ev.exec(s.finally)
		if ferr != nil || fc != ctrlNone {
			return fc, ferr
		}
	}
	return c, err
}

func (ev *evaluator) execSwitch(s *switchStmt) (ctrl, error) {
	v, err := ev.eval(s.x)
	if err != nil {
		return ctrlNone, err
	}
	match := -1
	for i, c := range s.cases {
		for _, l := range c.labels {
			lv, err := ev.eval(l)
			if err != nil {
				return ctrlNone, err
			}
			if valuesEqual(v, lv) {
				match = i
				break
			}
		}
		if match >= 0 {
			break
		}
	}
	if match < 0 {
		for i, c := range s.cases {
			if c.isDefault {
				match = i
			}
		}
	}
	if match < 0 {
		return ctrlNone, nil
	}
	c, err := ev.exec(&blockStmt{stmts: s.cases[match].body})
	if c == ctrlBreak {
		c = ctrlNone
	}
	return c, err
}

func (ev *evaluator) execForeach(s *foreachStmt) (ctrl, error) {
	coll, err := ev.eval(s.coll)
	if err != nil {
		return ctrlNone, err
	}
	items, err := ev.enumerate(coll)
	if err != nil {
		return ctrlNone, ev.wrap(s.coll, err)
	}
	for _, it := range items {
		ev.slots[s.slot] = it
		if c, done, err := ev.iteration(s.body); done {
			return c, err
		}
	}
	return ctrlNone, nil
}

// iteration runs one loop iteration: it counts a step against MaxSteps,
// then runs the body. done reports that the loop ends (break, return or
// an error), with what the loop statement returns.
func (ev *evaluator) iteration(body node) (ctrl, bool, error) {
	if err := ev.step(); err != nil {
		return ctrlNone, true, err
	}
	c, err := ev.exec(body)
	if err != nil || c == ctrlReturn {
		return c, true, err
	}
	if c == ctrlBreak {
		return ctrlNone, true, nil
	}
	return ctrlNone, false, nil
}

// callLambda invokes a one- or two-parameter lambda argument.
func (ev *evaluator) callLambda(f Value, a, b Value) (Value, error) {
	l, ok := f.o.(*lambdaExpr)
	if !ok {
		return Null, fmt.Errorf("expected a lambda, got %s", f.k)
	}
	if err := ev.step(); err != nil {
		return Null, err
	}
	if len(l.slots) > 0 {
		ev.slots[l.slots[0]] = a
	}
	if len(l.slots) > 1 {
		ev.slots[l.slots[1]] = b
	}
	return ev.eval(l.body)
}

// exceptionValue is the `ex` of catch (Exception ex).
type exceptionValue struct{ msg string }

func (e *exceptionValue) String() string { return "System.Exception: " + e.msg }
