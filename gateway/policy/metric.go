package policy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
)

// Dimension is one name/value pair of an emitted metric.
type Dimension struct {
	Name, Value string
}

// MetricSink receives emit-metric values. The server passes one that
// outlives reloads; nil drops them (with a load warning).
type MetricSink interface {
	Emit(namespace, name string, value float64, dims []Dimension)
}

// RequestMetrics is implemented by the server's per-request state
// (Request.State) when it wants each emitted value with the request that
// produced it: the request log record carries them, so metrics uploaded
// from the records agree with the logs.
type RequestMetrics interface {
	RecordMetric(namespace, name string, value float64, dims []Dimension)
}

type emitMetric struct {
	meta
	sink      MetricSink
	name      string
	namespace string
	value     text
	dims      []dimensionSrc
}

type dimensionSrc struct {
	name  string
	value text
	// builtin names one of API Management's predefined dimensions, whose
	// value the gateway fills when the policy gives none.
	builtin string
}

// predefined dimensions API Management fills itself when emit-metric
// names them without a value.
var predefinedDimensions = map[string]bool{
	"API ID": true, "Operation ID": true, "Product ID": true, "User ID": true,
	"Subscription ID": true, "Location": true, "Gateway ID": true,
}

func compileEmitMetric(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	name, err := required(el, "name")
	if err != nil {
		return nil, err
	}
	if a, _ := el.Attr("name"); a.Expr {
		return nil, fmt.Errorf("attribute name must be a literal")
	}
	value, err := attrText(el, "value", "1")
	if err != nil {
		return nil, err
	}
	if !value.isExpr() {
		if _, err := strconv.ParseFloat(strings.TrimSpace(value.lit), 64); err != nil {
			return nil, fmt.Errorf("value %q is not a number", value.lit)
		}
	}
	em := &emitMetric{meta: m, sink: c.set.opts.Metrics, name: name, namespace: attr(el, "namespace", "API Management"), value: value}
	for _, ch := range el.Children {
		if ch.Name != "dimension" {
			return nil, fmt.Errorf("<%s> cannot be a child of <emit-metric>", ch.Name)
		}
		dn, err := required(ch, "name")
		if err != nil {
			return nil, fmt.Errorf("<dimension>: %w", err)
		}
		d := dimensionSrc{name: dn}
		if _, ok := ch.Attr("value"); ok {
			if d.value, err = attrText(ch, "value", ""); err != nil {
				return nil, err
			}
		} else if predefinedDimensions[dn] {
			d.builtin = dn
		} else {
			return nil, fmt.Errorf("<dimension name=%q> needs a value (only predefined dimensions are filled by the gateway)", dn)
		}
		em.dims = append(em.dims, d)
	}
	if len(em.dims) > 10 {
		return nil, fmt.Errorf("at most 10 dimensions, found %d", len(em.dims))
	}
	if em.sink == nil {
		c.unsupported(el, "no metrics sink is configured")
		return nil, nil
	}
	return em, nil
}

func (s *emitMetric) Exec(r *Request) error {
	raw, err := s.value.str(r, &s.meta)
	if err != nil {
		return err
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil {
		return s.fail("ExpressionValueEvaluationFailure", fmt.Sprintf("Expression evaluation failed. %q is not a number.", raw), 500)
	}
	dims := make([]Dimension, 0, len(s.dims))
	for i := range s.dims {
		d := &s.dims[i]
		val := ""
		if d.builtin != "" {
			val = s.builtin(r, d.builtin)
		} else if val, err = d.value.str(r, &s.meta); err != nil {
			return err
		}
		dims = append(dims, Dimension{Name: d.name, Value: val})
	}
	s.sink.Emit(s.namespace, s.name, v, dims)
	if rm, ok := r.State.(RequestMetrics); ok {
		rm.RecordMetric(s.namespace, s.name, v, dims)
	}
	return nil
}

func (s *emitMetric) builtin(r *Request, name string) string {
	switch name {
	case "API ID":
		if r.API != nil {
			return r.API.BaseName
		}
	case "Operation ID":
		if r.Operation != nil {
			return r.Operation.Name
		}
	case "Product ID":
		return r.Product
	case "Subscription ID":
		return r.Subscription
	case "Gateway ID":
		if r.Info.Deployment != nil {
			return r.Info.Deployment.GatewayId
		}
	}
	return ""
}
