package policy

import (
	"fmt"
	"strings"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
)

// wait (wait-policy.md): runs its immediate children, send-request,
// cache-lookup-value and choose, "in parallel", and completes when all of
// them or the first of them completed.
//
// Only the network part runs in parallel. A Request is not safe for
// concurrent use (expressions share its environment, policies write its
// headers and variables), so every child's expressions are evaluated on
// the request's goroutine: a send-request child is prepared there (URL,
// headers, body), its HTTP call runs on its own goroutine with its own
// request and response, and its variable is set on the request's
// goroutine again once the call is back. choose and cache-lookup-value
// children run on the request's goroutine, in document order, while the
// calls are under way.
//
// for="any": the wait completes when the first send-request call is back
// or, when there are choose / cache-lookup-value children, when the first
// of those has run (it cannot be interrupted). Calls already back by then
// set their variables; the others are abandoned: they end on their own
// timeout and their responses are dropped, so their variables stay unset.
type wait struct {
	meta
	forAny text // "all" or "any"
	steps  []Step
}

func compileWait(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	w := &wait{meta: m}
	var err error
	if w.forAny, err = attrText(el, "for", "all"); err != nil {
		return nil, err
	}
	if !w.forAny.isExpr() {
		w.forAny.lit = strings.ToLower(strings.TrimSpace(w.forAny.lit))
		if w.forAny.lit != "all" && w.forAny.lit != "any" {
			return nil, fmt.Errorf("attribute for must be all or any, found %q", w.forAny.lit)
		}
	}
	for _, ch := range el.Children {
		switch ch.Name {
		case "send-request", "cache-lookup-value", "choose":
			w.steps = append(w.steps, c.statement(ch, m.path)...)
		default:
			return nil, fmt.Errorf("<%s> cannot be a child of <wait>: use send-request, cache-lookup-value or choose", ch.Name)
		}
	}
	return w, nil
}

type waitCall struct {
	s    *sendRequest
	name string
	host string
}

type waitDone struct {
	i    int
	resp *sentResponse
	err  error
}

func (s *wait) Exec(r *Request) error {
	mode, err := s.forAny.str(r, &s.meta)
	if err != nil {
		return err
	}
	mode = strings.ToLower(strings.TrimSpace(mode))
	if mode != "all" && mode != "any" {
		return s.fail("ExpressionValueEvaluationFailure", fmt.Sprintf("Expression evaluation failed. for must be all or any, found %q.", mode), 500)
	}
	// Start every send-request call first, so they overlap with each
	// other and with the inline children. done is buffered for every
	// call: an abandoned call never blocks.
	n := 0
	for _, st := range s.steps {
		if sr, ok := st.(*sendRequest); ok && !sr.oneWay {
			n++
		}
	}
	done := make(chan waitDone, n)
	var calls []waitCall
	var inline []Step
	for _, st := range s.steps {
		sr, ok := st.(*sendRequest)
		if !ok || sr.oneWay {
			inline = append(inline, st)
			continue
		}
		call, err := sr.prepare(r)
		if err != nil {
			return err // calls already started end on their own
		}
		i := len(calls)
		calls = append(calls, waitCall{s: sr, name: call.varName, host: string(call.req.URI().Host())})
		go func() {
			resp, err := sr.send(call)
			done <- waitDone{i: i, resp: resp, err: err}
		}()
	}
	var first error
	keep := func(d waitDone) {
		wc := calls[d.i]
		if err := wc.s.storeResult(r, wc.name, wc.host, d.resp, d.err); err != nil && first == nil {
			first = err
		}
	}
	if mode == "any" {
		switch {
		case len(inline) > 0:
			first = inline[0].Exec(r)
		case len(calls) > 0:
			keep(<-done)
		}
		// Calls back by now keep their results; the rest are abandoned.
		for {
			select {
			case d := <-done:
				keep(d)
				continue
			default:
			}
			return first
		}
	}
	for _, st := range inline {
		if err := st.Exec(r); err != nil {
			first = err
			break
		}
	}
	// Variables are set, and errors reported, in document order.
	results := make([]waitDone, len(calls))
	for range calls {
		d := <-done
		results[d.i] = d
	}
	for _, d := range results {
		keep(d)
	}
	return first
}
