package policy

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
)

// retry (retry-policy.md): run the nested policies once, then again while
// condition is true, at most count more times, waiting between attempts:
//
//   - interval only: fixed, interval;
//   - interval and delta: linear, interval + (n-1)*delta for retry n;
//   - interval, delta and max-interval: exponential,
//     interval + (2^(n-1) - 1) * random(0.8*delta, 1.2*delta), at most
//     max-interval. The documented formula reads "interval + (2^count -
//     1) * ..."; with count the 0-based retry index it gives the
//     documented example (interval=delta=10, max=100: 10, 20, 40, 80,
//     100 s), which a 1-based index does not;
//   - first-fast-retry: the first retry runs at once.
//
// Bounds beyond the documentation: count is clamped to 1..50 when an
// expression computes it, each wait to maxRetryWait, and no retry starts
// once maxRetryTotal has passed since the first attempt.
const (
	maxRetryCount = 50
	maxRetryWait  = 5 * time.Minute
	maxRetryTotal = 10 * time.Minute
)

type retry struct {
	meta
	cond        text
	count       text
	interval    text
	maxInterval *text
	delta       *text
	fastFirst   text
	steps       []Step
	// forwards: a nested policy forwards the request, so the body must be
	// buffered for replay and a failed attempt's response discarded.
	forwards bool
	// sleep waits between attempts (tests replace it).
	sleep func(time.Duration)
}

func compileRetry(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	rt := &retry{meta: m, sleep: time.Sleep}
	if _, err := required(el, "condition"); err != nil {
		return nil, err
	}
	var err error
	if rt.cond, err = attrText(el, "condition", ""); err != nil {
		return nil, err
	}
	if !rt.cond.isExpr() {
		rt.cond.lit = strings.ToLower(strings.TrimSpace(rt.cond.lit))
		if rt.cond.lit != "true" && rt.cond.lit != "false" {
			return nil, fmt.Errorf("condition %q must be a policy expression, true or false", rt.cond.lit)
		}
	}
	if _, err := required(el, "count"); err != nil {
		return nil, err
	}
	if rt.count, err = attrText(el, "count", ""); err != nil {
		return nil, err
	}
	if !rt.count.isExpr() {
		n, err := strconv.Atoi(strings.TrimSpace(rt.count.lit))
		if err != nil || n < 1 || n > maxRetryCount {
			return nil, fmt.Errorf("count %q must be a number from 1 to %d", rt.count.lit, maxRetryCount)
		}
	}
	if _, err := required(el, "interval"); err != nil {
		return nil, err
	}
	if rt.interval, err = secondsAttr(el, "interval"); err != nil {
		return nil, err
	}
	if _, ok := el.Attr("max-interval"); ok {
		t, err := secondsAttr(el, "max-interval")
		if err != nil {
			return nil, err
		}
		rt.maxInterval = &t
	}
	if _, ok := el.Attr("delta"); ok {
		t, err := secondsAttr(el, "delta")
		if err != nil {
			return nil, err
		}
		rt.delta = &t
	}
	if rt.fastFirst, err = attrText(el, "first-fast-retry", "false"); err != nil {
		return nil, err
	}
	if !rt.fastFirst.isExpr() {
		if _, err := boolAttr(el, "first-fast-retry", false); err != nil {
			return nil, err
		}
	}
	for _, ch := range el.Children {
		if ch.Name == "wait" {
			return nil, fmt.Errorf("<wait> cannot be a child of <retry>")
		}
		rt.steps = append(rt.steps, c.statement(ch, m.path)...)
	}
	rt.forwards = containsElement(el, "forward-request")
	return rt, nil
}

// secondsAttr compiles a number-of-seconds attribute; a literal is checked
// now.
func secondsAttr(el *policyxml.Element, name string) (text, error) {
	t, err := attrText(el, name, "0")
	if err != nil {
		return t, err
	}
	if !t.isExpr() {
		if _, err := parseSeconds(t.lit); err != nil {
			return t, fmt.Errorf("attribute %s: %v", name, err)
		}
	}
	return t, nil
}

func parseSeconds(raw string) (time.Duration, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a non-negative number of seconds", raw)
	}
	d := time.Duration(f * float64(time.Second))
	if f*float64(time.Second) > float64(maxRetryWait) {
		d = maxRetryWait
	}
	return d, nil
}

func containsElement(el *policyxml.Element, name string) bool {
	for _, ch := range el.Children {
		if ch.Name == name || containsElement(ch, name) {
			return true
		}
	}
	return false
}

// retryPlan is retry's attributes, evaluated once per execution.
type retryPlan struct {
	count                   int
	interval, delta, maxInt time.Duration
	hasDelta, hasMax        bool
	fastFirst               bool
}

// delay is the wait before retry n (1-based); rnd returns a number in
// [0, 1).
func (p *retryPlan) delay(n int, rnd func() float64) time.Duration {
	if n == 1 && p.fastFirst {
		return 0
	}
	var d time.Duration
	switch {
	case p.hasDelta && p.hasMax:
		f := float64(p.interval) + (math.Exp2(float64(n-1))-1)*float64(p.delta)*(0.8+0.4*rnd())
		d = time.Duration(min(f, float64(p.maxInt)))
	case p.hasDelta:
		d = p.interval + time.Duration(n-1)*p.delta
	default:
		d = p.interval
	}
	return min(max(d, 0), maxRetryWait)
}

func (s *retry) plan(r *Request) (retryPlan, error) {
	var p retryPlan
	bad := func(what string, err error) error {
		return s.fail("ExpressionValueEvaluationFailure", "Expression evaluation failed. "+what+": "+err.Error(), 500)
	}
	raw, err := s.count.str(r, &s.meta)
	if err != nil {
		return p, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil {
		return p, bad("count", err)
	}
	p.count = min(max(n, 1), maxRetryCount)
	secs := func(t *text, what string) (time.Duration, error) {
		raw, err := t.str(r, &s.meta)
		if err != nil {
			return 0, err
		}
		d, err := parseSeconds(raw)
		if err != nil {
			return 0, bad(what, err)
		}
		return d, nil
	}
	if p.interval, err = secs(&s.interval, "interval"); err != nil {
		return p, err
	}
	if s.delta != nil {
		if p.delta, err = secs(s.delta, "delta"); err != nil {
			return p, err
		}
		p.hasDelta = true
	}
	if s.maxInterval != nil {
		if p.maxInt, err = secs(s.maxInterval, "max-interval"); err != nil {
			return p, err
		}
		p.hasMax = true
	}
	raw, err = s.fastFirst.str(r, &s.meta)
	if err != nil {
		return p, err
	}
	switch strings.ToLower(strings.TrimSpace(raw)) {
	case "true":
		p.fastFirst = true
	case "false", "":
	default:
		return p, bad("first-fast-retry", fmt.Errorf("%q is not a boolean", raw))
	}
	return p, nil
}

func (s *retry) Exec(r *Request) error {
	p, err := s.plan(r)
	if err != nil {
		return err
	}
	var xff []byte
	hadXFF := false
	if s.forwards {
		// Read the body once so every attempt sends it; keep the
		// X-Forwarded-For the forwarder appends to, so a replay does not
		// list the client twice.
		if err := readBodyOnce(r, &s.meta); err != nil {
			return err
		}
		if v := r.Ctx.Request.Header.Peek("X-Forwarded-For"); v != nil {
			xff, hadXFF = append([]byte(nil), v...), true
		}
	}
	saved := r.LastError
	start := time.Now()
	for n := 0; ; n++ {
		err := runSteps(r, s.steps)
		if errors.Is(err, errStop) {
			return err
		}
		var pe *Error
		if err != nil && !errors.As(err, &pe) {
			return err
		}
		// A failed attempt (a backend timeout) is visible to the
		// condition as context.LastError.
		if pe != nil {
			r.LastError = pe
		}
		again, cerr := s.again(r)
		r.LastError = saved
		if cerr != nil {
			return cerr
		}
		if !again || n >= p.count {
			return err
		}
		d := p.delay(n+1, rand.Float64)
		if time.Since(start)+d > maxRetryTotal {
			return err
		}
		if d > 0 {
			s.sleep(d)
		}
		if s.forwards {
			r.Ctx.Response.Reset()
			if hadXFF {
				r.Ctx.Request.Header.SetBytesV("X-Forwarded-For", xff)
			} else {
				r.Ctx.Request.Header.Del("X-Forwarded-For")
			}
		}
	}
}

func (s *retry) again(r *Request) (bool, error) {
	if !s.cond.isExpr() {
		return s.cond.lit == "true", nil
	}
	return s.cond.boolean(r, &s.meta)
}
