package policy

import (
	"fmt"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
)

// --- trace ------------------------------------------------------------------------

// traceStep is the trace policy (trace-policy.md). API Management writes
// its message into the request trace (when tracing is enabled for the
// call), Application Insights and resource logs; this gateway has none of
// these yet. The policy therefore compiles and is validated like any other
// (source required and literal, severity verbose|information|error,
// <message> required, <metadata name value>), and Exec does nothing: it
// evaluates no expression and never fails the request. When the gateway
// gains request tracing, Exec records the message into the request's trace.
type traceStep struct {
	meta
	source, severity string
	message          text
	metadata         [][2]text
}

func compileTrace(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	for _, name := range []string{"source", "severity"} {
		if a, ok := el.Attr(name); ok && a.Expr {
			return nil, fmt.Errorf("attribute %s cannot be a policy expression", name)
		}
	}
	src, err := required(el, "source")
	if err != nil {
		return nil, err
	}
	s := &traceStep{meta: m, source: src, severity: attr(el, "severity", "verbose")}
	switch s.severity {
	case "verbose", "information", "error":
	default:
		return nil, fmt.Errorf("severity must be verbose, information or error, found %q", s.severity)
	}
	var msgs int
	for _, ch := range el.Children {
		switch ch.Name {
		case "message":
			msgs++
			if s.message, err = elemText(ch); err != nil {
				return nil, err
			}
		case "metadata":
			if _, ok := ch.Attr("name"); !ok {
				return nil, fmt.Errorf("<metadata> needs a name attribute")
			}
			if _, ok := ch.Attr("value"); !ok {
				return nil, fmt.Errorf("<metadata> needs a value attribute")
			}
			name, err := attrText(ch, "name", "")
			if err != nil {
				return nil, err
			}
			value, err := attrText(ch, "value", "")
			if err != nil {
				return nil, err
			}
			s.metadata = append(s.metadata, [2]text{name, value})
		default:
			return nil, fmt.Errorf("<%s> is not a child of <trace> (message, metadata)", ch.Name)
		}
	}
	if msgs != 1 {
		return nil, fmt.Errorf("<trace> needs exactly one <message>, found %d", msgs)
	}
	return s, nil
}

// Exec is a no-op: see traceStep.
func (s *traceStep) Exec(r *Request) error { return nil }
