package policy

import (
	"errors"
	"fmt"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/expr"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
)

// text is a policy value: a literal, or a policy expression compiled at
// load and evaluated per request.
type text struct {
	lit  string
	prog *expr.Program
}

// isExpr reports whether the value is computed per request.
func (t *text) isExpr() bool { return t.prog != nil }

// compileText compiles raw (an attribute value or element text; isExpr
// when it is an @(...) or @{...} expression). Errors carry the position
// of the construct in the policy document.
func compileText(raw string, isExpr bool, pos policyxml.Pos) (text, error) {
	if !isExpr {
		return text{lit: raw}, nil
	}
	prog, err := expr.Compile(raw, expr.Options{})
	if err != nil {
		var ee *expr.Error
		if errors.As(err, &ee) {
			line, col := pos.Line+ee.Line-1, ee.Col
			if ee.Line == 1 {
				col = pos.Col + ee.Col - 1
			}
			return text{}, &exprCompileError{pos: policyxml.Pos{Line: line, Col: col}, msg: ee.Msg}
		}
		return text{}, err
	}
	return text{prog: prog}, nil
}

// exprCompileError is an expression outside the supported subset, with
// its position in the document.
type exprCompileError struct {
	pos policyxml.Pos
	msg string
}

func (e *exprCompileError) Error() string {
	return fmt.Sprintf("expression at line %d, column %d: %s", e.pos.Line, e.pos.Col, e.msg)
}

// attrText compiles an attribute (def when absent).
func attrText(el *policyxml.Element, name, def string) (text, error) {
	a, ok := el.Attr(name)
	if !ok {
		return text{lit: def}, nil
	}
	return compileText(a.Value, a.Expr, a.Pos)
}

// elemText compiles an element's text.
func elemText(el *policyxml.Element) (text, error) {
	return compileText(el.Text, el.TextExpr, el.Pos)
}

// value evaluates to an expression value.
func (t *text) value(r *Request, m *meta) (expr.Value, error) {
	if t.prog == nil {
		return expr.String(t.lit), nil
	}
	v, err := t.prog.Eval(r.env())
	if err != nil {
		return expr.Value{}, m.fail("ExpressionValueEvaluationFailure", "Expression evaluation failed. "+err.Error(), 500)
	}
	return v, nil
}

// str evaluates to text; null is the empty string, as in API Management.
func (t *text) str(r *Request, m *meta) (string, error) {
	if t.prog == nil {
		return t.lit, nil
	}
	v, err := t.value(r, m)
	if err != nil {
		return "", err
	}
	if v.IsNull() {
		return "", nil
	}
	return v.String(), nil
}

// boolean evaluates a condition.
func (t *text) boolean(r *Request, m *meta) (bool, error) {
	v, err := t.value(r, m)
	if err != nil {
		return false, err
	}
	if v.Kind() != expr.KBool {
		return false, m.fail("ExpressionValueEvaluationFailure", "Expression evaluation failed. The condition is not a boolean.", 500)
	}
	return v.Bool(), nil
}
