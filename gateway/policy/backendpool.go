package policy

// Backend entities named by set-backend-service backend-id: a Single
// backend with its circuit breaker, or a load-balanced Pool of them.
//
// API Management (backends.md): a pool sends requests to the lowest
// priority value first and, within a priority group, by weight (round
// robin when weights are equal); members whose circuit breaker is
// tripped are skipped, and a lower priority group takes over when a whole
// group is unavailable. A tripped breaker makes the gateway answer 503.
// Breaker and pool state are per gateway instance and approximate.

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/proxy"
)

// Reason and message of the error a set-backend-service step returns when
// the backend's breaker (or every pool member's) is open. API Management
// documents the 503 status, not the reason; "BackendCircuitOpen" is this
// gateway's name.
const (
	reasonCircuitOpen  = "BackendCircuitOpen"
	messageCircuitOpen = "Service unavailable"
)

// --- compile ---------------------------------------------------------------

// compileBackendID compiles set-backend-service backend-id="name".
func compileBackendID(c *compiler, m meta, id string) (Step, error) {
	b := c.set.backend(id)
	if b == nil {
		return nil, fmt.Errorf("backend-id %q names no backend in $.backends", id)
	}
	if c.set.opts.Client == nil {
		return nil, fmt.Errorf("no backend clients available")
	}
	breakers := c.set.breakers()
	if b.Properties.Type != config.BackendPool {
		up, err := entityUpstream(c.set, breakers, b)
		if err != nil {
			return nil, err
		}
		return &setBackendEntity{meta: m, backend: up}, nil
	}
	if b.Properties.Pool == nil || len(b.Properties.Pool.Services) == 0 {
		return nil, fmt.Errorf("pool backend %q has no services", b.Name)
	}
	type entry struct {
		priority int
		member   *poolMember
	}
	var entries []entry
	for i, svc := range b.Properties.Pool.Services {
		mb := c.set.backend(svc.ID)
		if mb == nil {
			return nil, fmt.Errorf("pool backend %q: services[%d] %q names no backend in $.backends", b.Name, i, svc.ID)
		}
		if mb.Properties.Type == config.BackendPool {
			return nil, fmt.Errorf("pool backend %q: services[%d] %q is a pool; pools cannot nest", b.Name, i, svc.ID)
		}
		up, err := entityUpstream(c.set, breakers, mb)
		if err != nil {
			return nil, fmt.Errorf("pool backend %q: %w", b.Name, err)
		}
		w := svc.Weight
		if w <= 0 {
			w = 1 // no weight: plain round robin
		}
		entries = append(entries, entry{priority: svc.Priority, member: &poolMember{up: up, weight: w}})
	}
	slices.SortStableFunc(entries, func(a, b entry) int { return a.priority - b.priority })
	p := &backendPool{}
	for i, e := range entries {
		if i == 0 || e.priority != entries[i-1].priority {
			p.groups = append(p.groups, nil)
		}
		p.groups[len(p.groups)-1] = append(p.groups[len(p.groups)-1], e.member)
	}
	return &setBackendPool{meta: m, pool: p}, nil
}

// entityUpstream resolves a Single backend entity.
func entityUpstream(s *Set, breakers *Breakers, b *config.Backend) (Upstream, error) {
	target, basePath, err := proxy.ParseTarget(b.Properties.URL)
	if err != nil {
		return Upstream{}, fmt.Errorf("backend %q: %w", b.Name, err)
	}
	br, err := breakers.For(b)
	if err != nil {
		return Upstream{}, err
	}
	return Upstream{Client: s.opts.Client(target), Scheme: target.Scheme, Host: target.Host, BasePath: basePath, Breaker: br}, nil
}

// breakers returns the registry of the Set: the server's long-lived one,
// or one made for this Set.
func (s *Set) breakers() *Breakers {
	if s.opts.Breakers == nil {
		s.opts.Breakers = NewBreakers()
	}
	return s.opts.Breakers
}

// --- steps -----------------------------------------------------------------

// setBackendEntity routes to a Single backend entity.
type setBackendEntity struct {
	meta
	backend Upstream
}

func (s *setBackendEntity) Exec(r *Request) error {
	if b := s.backend.Breaker; b != nil && !b.Allow() {
		return s.fail(reasonCircuitOpen, messageCircuitOpen, fasthttp.StatusServiceUnavailable)
	}
	r.Backend = &s.backend
	return nil
}

// setBackendPool routes to a member of a Pool backend.
type setBackendPool struct {
	meta
	pool *backendPool
}

func (s *setBackendPool) Exec(r *Request) error {
	up := s.pool.pick()
	if up == nil {
		return s.fail(reasonCircuitOpen, messageCircuitOpen, fasthttp.StatusServiceUnavailable)
	}
	r.Backend = up
	return nil
}

// --- pool ------------------------------------------------------------------

type poolMember struct {
	up      Upstream
	weight  int
	current int // smooth weighted round robin state
}

// backendPool picks members: priority groups in order (lowest value
// first), smooth weighted round robin inside a group (nginx's algorithm:
// deterministic, and it interleaves instead of sending bursts), skipping
// members whose breaker is open.
type backendPool struct {
	mu     sync.Mutex
	groups [][]*poolMember
}

// pick returns the member to use, nil when every breaker is open.
func (p *backendPool) pick() *Upstream {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range p.groups {
		// skipped holds members whose breaker refused after being chosen
		// (another pool sharing the backend took the half-open trial).
		var skipped []*poolMember
		for {
			best, total := (*poolMember)(nil), 0
			for _, m := range g {
				if slices.Contains(skipped, m) || (m.up.Breaker != nil && !m.up.Breaker.ready()) {
					continue
				}
				m.current += m.weight
				total += m.weight
				if best == nil || m.current > best.current {
					best = m
				}
			}
			if best == nil {
				break // the whole group is unavailable: next priority
			}
			best.current -= total
			if best.up.Breaker == nil || best.up.Breaker.Allow() {
				return &best.up
			}
			skipped = append(skipped, best)
		}
	}
	return nil
}

// --- circuit breaker -------------------------------------------------------

// Breakers is the registry of circuit breakers, keyed by backend name and
// definition: a reload that keeps a backend unchanged keeps its breaker
// and state; a changed backend starts afresh. Safe for concurrent use.
type Breakers struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*Breaker
}

// NewBreakers returns an empty registry.
func NewBreakers() *Breakers {
	return &Breakers{now: time.Now, m: map[string]*Breaker{}}
}

// For returns the breaker of backend b, nil when it has no rules.
func (bs *Breakers) For(b *config.Backend) (*Breaker, error) {
	cb := b.Properties.CircuitBreaker
	if cb == nil || len(cb.Rules) == 0 {
		return nil, nil
	}
	key := strings.ToLower(b.Name) + "\n" + b.Properties.URL + "\n" + fmt.Sprintf("%+v", cb.Rules)
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if br := bs.m[key]; br != nil {
		return br, nil
	}
	br := &Breaker{name: b.Name, now: bs.now}
	for i, rule := range cb.Rules {
		br2, err := compileBreakerRule(&rule)
		if err != nil {
			return nil, fmt.Errorf("backend %q: circuitBreaker.rules[%d]: %w", b.Name, i, err)
		}
		br.rules = append(br.rules, br2)
	}
	bs.m[key] = br
	return br, nil
}

// Retain drops breakers of backends no longer configured: keep reports
// whether a backend name is still present.
func (bs *Breakers) Retain(keep func(name string) bool) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	for k, br := range bs.m {
		if !keep(br.name) {
			delete(bs.m, k)
		}
	}
}

// minPercentageSamples is the number of requests within the interval a
// percentage rule needs before it can trip (API Management documents
// none; without one, the first failure would be 100%).
const minPercentageSamples = 10

// trialLease bounds how long a half-open breaker waits for the outcome of
// its trial request before it allows another (the trial may never reach
// forward-request).
const trialLease = 30 * time.Second

type breakerRule struct {
	count      int
	percentage int
	interval   time.Duration
	trip       time.Duration
	ranges     []config.StatusCodeRange
	reasons    []string
	retryAfter bool
	win        window
}

func compileBreakerRule(r *config.CircuitBreakerRule) (breakerRule, error) {
	fc := &r.FailureCondition
	out := breakerRule{count: fc.Count, percentage: fc.Percentage, ranges: fc.StatusCodeRanges, reasons: fc.ErrorReasons, retryAfter: r.AcceptRetryAfter}
	var err error
	if out.interval, err = ParseISODuration(fc.Interval); err != nil {
		return out, fmt.Errorf("failureCondition.interval: %w", err)
	}
	if out.trip, err = ParseISODuration(r.TripDuration); err != nil {
		return out, fmt.Errorf("tripDuration: %w", err)
	}
	if out.interval <= 0 || out.trip <= 0 {
		return out, errors.New("interval and tripDuration must be positive")
	}
	if (fc.Count > 0) == (fc.Percentage > 0) {
		return out, errors.New("failureCondition needs exactly one of count and percentage")
	}
	if fc.Percentage > 100 {
		return out, errors.New("failureCondition.percentage is above 100")
	}
	if len(fc.StatusCodeRanges) == 0 && len(fc.ErrorReasons) == 0 {
		return out, errors.New("failureCondition needs statusCodeRanges or errorReasons")
	}
	out.win.width = max(out.interval/windowBuckets, time.Millisecond)
	return out, nil
}

// failure reports whether an outcome counts as a failure for the rule:
// the backend's status (0 when no response came) within a range, or the
// gateway's error reason listed (case-insensitive, e.g. "timeout").
func (r *breakerRule) failure(status int, reason string) bool {
	for _, sr := range r.ranges {
		if status != 0 && status >= sr.Min && status <= sr.Max {
			return true
		}
	}
	if reason != "" {
		for _, want := range r.reasons {
			if strings.EqualFold(want, reason) {
				return true
			}
		}
	}
	return false
}

// tripped reports whether the failures in the window reach the threshold.
func (r *breakerRule) tripped(now time.Time) bool {
	total, failed := r.win.sum(now)
	if r.count > 0 {
		return failed >= r.count
	}
	return total >= minPercentageSamples && failed*100 >= r.percentage*total
}

const windowBuckets = 10

// window counts outcomes over the rule's interval in buckets of
// interval/10: a sliding window, approximate by one bucket.
type window struct {
	width   time.Duration
	buckets [windowBuckets]bucket
}

type bucket struct {
	slot          int64
	total, failed int
}

func (w *window) add(now time.Time, failed bool) {
	slot := now.UnixNano() / int64(w.width)
	b := &w.buckets[slot%windowBuckets]
	if b.slot != slot {
		*b = bucket{slot: slot}
	}
	b.total++
	if failed {
		b.failed++
	}
}

func (w *window) sum(now time.Time) (total, failed int) {
	slot := now.UnixNano() / int64(w.width)
	for _, b := range w.buckets {
		if b.slot > slot-windowBuckets && b.slot <= slot {
			total += b.total
			failed += b.failed
		}
	}
	return total, failed
}

// Breaker is one backend's circuit breaker. It is closed until a rule's
// failure condition holds, then open (requests refused) for the rule's
// tripDuration, or for the backend's Retry-After when the rule accepts
// it; then half-open: one trial request goes through, its success closes
// the breaker, its failure opens it again. Safe for concurrent use.
type Breaker struct {
	name  string
	rules []breakerRule
	now   func() time.Time

	mu         sync.Mutex
	open       bool      // tripped and not closed since
	openUntil  time.Time // when open: requests refused until then
	trialUntil time.Time // half-open: a trial is out until then
}

// ready reports, without side effects, whether Allow could admit a request.
func (b *Breaker) ready() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return true
	}
	now := b.now()
	return !now.Before(b.openUntil) && !now.Before(b.trialUntil)
}

// Allow reports whether a request may go to the backend. When half-open
// it admits one trial request at a time.
func (b *Breaker) Allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return true
	}
	now := b.now()
	if now.Before(b.openUntil) || now.Before(b.trialUntil) {
		return false
	}
	b.trialUntil = now.Add(trialLease)
	return true
}

// Record counts one backend call: status is the backend's response
// status (0 when there was none), reason the gateway's error reason (""
// on success, else e.g. "BackendConnectionFailure", "Timeout"),
// retryAfter the backend's Retry-After (0 when absent).
func (b *Breaker) Record(status int, reason string, retryAfter time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if b.open {
		if now.Before(b.openUntil) {
			return // a call that started before the breaker tripped
		}
		// The half-open trial's outcome.
		for i := range b.rules {
			if r := &b.rules[i]; r.failure(status, reason) {
				b.trip(r, now, retryAfter)
				return
			}
		}
		b.open, b.openUntil, b.trialUntil = false, time.Time{}, time.Time{}
		for i := range b.rules {
			b.rules[i].win = window{width: b.rules[i].win.width}
		}
		return
	}
	for i := range b.rules {
		r := &b.rules[i]
		r.win.add(now, r.failure(status, reason))
		if r.tripped(now) {
			b.trip(r, now, retryAfter)
			return
		}
	}
}

func (b *Breaker) trip(r *breakerRule, now time.Time, retryAfter time.Duration) {
	d := r.trip
	if r.retryAfter && retryAfter > 0 {
		d = retryAfter
	}
	b.open, b.openUntil, b.trialUntil = true, now.Add(d), time.Time{}
	for i := range b.rules {
		b.rules[i].win = window{width: b.rules[i].win.width}
	}
}

// recordForward records forward-request's outcome: err is the Forwarder's
// error (a *Error carrying the reason), nil when the backend answered.
func (b *Breaker) recordForward(r *Request, err error) {
	if err != nil {
		reason := "BackendConnectionFailure"
		var pe *Error
		if errors.As(err, &pe) && pe.Reason != "" {
			reason = pe.Reason
		}
		b.Record(0, reason, 0)
		return
	}
	resp := &r.Ctx.Response
	b.Record(resp.StatusCode(), "", parseRetryAfter(resp.Header.Peek(fasthttp.HeaderRetryAfter), b.now()))
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func parseRetryAfter(v []byte, now time.Time) time.Duration {
	s := strings.TrimSpace(string(v))
	if s == "" {
		return 0
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := fasthttp.ParseHTTPDate([]byte(s)); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// ParseISODuration parses an ISO 8601 duration as ARM writes them:
// PnYnMnWnDTnHnMnS, fractions allowed on the last (seconds) field; a year
// counts 365 days and a month 30.
func ParseISODuration(s string) (time.Duration, error) {
	orig := s
	bad := func() (time.Duration, error) {
		return 0, fmt.Errorf("%q is not an ISO 8601 duration (e.g. PT1M, P1D)", orig)
	}
	s = strings.ToUpper(strings.TrimSpace(s))
	if len(s) < 3 || s[0] != 'P' {
		return bad()
	}
	s = s[1:]
	var total float64
	inTime, seen := false, false
	for s != "" {
		if s[0] == 'T' {
			if inTime {
				return bad()
			}
			inTime, s = true, s[1:]
			if s == "" {
				return bad()
			}
			continue
		}
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == ',') {
			i++
		}
		if i == 0 || i == len(s) {
			return bad()
		}
		n, err := strconv.ParseFloat(strings.ReplaceAll(s[:i], ",", "."), 64)
		if err != nil {
			return bad()
		}
		var unit time.Duration
		switch u := s[i]; {
		case !inTime && u == 'Y':
			unit = 365 * 24 * time.Hour
		case !inTime && u == 'M':
			unit = 30 * 24 * time.Hour
		case !inTime && u == 'W':
			unit = 7 * 24 * time.Hour
		case !inTime && u == 'D':
			unit = 24 * time.Hour
		case inTime && u == 'H':
			unit = time.Hour
		case inTime && u == 'M':
			unit = time.Minute
		case inTime && u == 'S':
			unit = time.Second
		default:
			return bad()
		}
		total += n * float64(unit)
		seen, s = true, s[i+1:]
	}
	if !seen || total > float64(1<<63-1) {
		return bad()
	}
	return time.Duration(total), nil
}
