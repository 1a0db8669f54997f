package policy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/counters"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/router"
)

// Counters is the store behind rate-limit, rate-limit-by-key, quota,
// quota-by-key and limit-concurrency: counters.Memory for one instance,
// counters.Redis for replicas that share limits. Counts must survive
// configuration reloads, so the server creates one store at start and
// passes it in every Options.
type Counters interface {
	// Hit adds n to key's counter in the current window of w, unless the
	// sum would exceed limit. On an error the request is let through.
	Hit(key string, n int64, w counters.Window, limit int64) (counters.Result, error)
	// Acquire takes one of max concurrency slots named key; false when
	// all are taken. Release returns it.
	Acquire(key string, max int64) bool
	Release(key string)
}

// counters returns the Set's store; without one in Options, an in-memory
// store that lives as long as the Set (counts restart at every reload).
func (c *compiler) counters() Counters {
	if c.set.opts.Counters == nil {
		c.set.opts.Counters = counters.NewMemory(nil)
	}
	return c.set.opts.Counters
}

// Messages of API Management's answers (error-handling reference and
// captured responses; see the report in gateway.md part C).
const (
	rateLimitMessage  = "Rate limit is exceeded. Try again in %d seconds."
	callQuotaMessage  = "Out of call volume quota."
	bandQuotaMessage  = "Out of bandwidth quota."
	replenishMessage  = " Quota will be replenished in "
	concurrencyReason = "ConcurrencyLimitExceeded"
)

// maxRatePeriod is rate-limit's largest renewal-period (rate-limit-policy:
// "Allowed maximum value: 300 seconds"); minQuotaByKeyPeriod is
// quota-by-key's smallest ("Minimum period: 300 seconds"), 0 aside.
const (
	maxRatePeriod       = 300 * time.Second
	minQuotaByKeyPeriod = 300 * time.Second
)

// --- attribute helpers ----------------------------------------------------------

// countAttr reads a non-negative integer attribute; ok is false when it is
// absent.
func countAttr(el *policyxml.Element, name string) (n int64, ok bool, err error) {
	a, found := el.Attr(name)
	if !found {
		return 0, false, nil
	}
	n, err = strconv.ParseInt(strings.TrimSpace(a.Value), 10, 64)
	if err != nil || n < 0 {
		return 0, false, fmt.Errorf("attribute %s must be a non-negative integer, found %q", name, a.Value)
	}
	return n, true, nil
}

func periodAttr(el *policyxml.Element, name string, required bool) (time.Duration, bool, error) {
	n, ok, err := countAttr(el, name)
	if err != nil {
		return 0, false, err
	}
	if !ok && required {
		return 0, false, fmt.Errorf("attribute %s is required", name)
	}
	if n > int64(math.MaxInt64/time.Second) {
		return 0, false, fmt.Errorf("attribute %s is too large", name)
	}
	return time.Duration(n) * time.Second, ok, nil
}

// incrementAttrs reads increment-count (default 1) and a literal
// increment-condition (condExpr: it is an expression, evaluated per
// request instead).
func incrementAttrs(el *policyxml.Element, condExpr bool) (int64, error) {
	n, ok, err := countAttr(el, "increment-count")
	if err != nil {
		return 0, err
	}
	if !ok {
		n = 1
	}
	if condExpr {
		return n, nil
	}
	count, err := boolAttr(el, "increment-condition", true)
	if err != nil {
		return 0, err
	}
	if !count {
		n = 0
	}
	return n, nil
}

// headerAttrs are rate limits' header and variable names.
type headerAttrs struct {
	retryHeader, retryVar         string
	remainingHeader, remainingVar string
	totalHeader                   string
}

func readHeaderAttrs(el *policyxml.Element) headerAttrs {
	h := headerAttrs{
		retryHeader:     strings.TrimSpace(attr(el, "retry-after-header-name", "")),
		retryVar:        strings.TrimSpace(attr(el, "retry-after-variable-name", "")),
		remainingHeader: strings.TrimSpace(attr(el, "remaining-calls-header-name", "")),
		remainingVar:    strings.TrimSpace(attr(el, "remaining-calls-variable-name", "")),
		totalHeader:     strings.TrimSpace(attr(el, "total-calls-header-name", "")),
	}
	if h.retryHeader == "" {
		h.retryHeader = "Retry-After"
	}
	return h
}

// retrySeconds is a wait in whole seconds, rounded up, at least 1.
func retrySeconds(d time.Duration) int64 {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}

// timeSpan formats d as .NET's TimeSpan does: hh:mm:ss, or d.hh:mm:ss
// from one day on (the quota message).
func timeSpan(d time.Duration) string {
	s := retrySeconds(d)
	days, s := s/86400, s%86400
	out := fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
	if days > 0 {
		out = strconv.FormatInt(days, 10) + "." + out
	}
	return out
}

func setVar(r *Request, name string, v int64) {
	if name == "" {
		return
	}
	if r.Vars == nil {
		r.Vars = map[string]string{}
	}
	r.Vars[name] = strconv.FormatInt(v, 10)
}

// --- api and operation children -------------------------------------------------------

// limit is one counter of a rate limit or quota: calls and/or kilobytes
// per window.
type limit struct {
	calls, kb       int64
	hasCalls, hasKB bool
	window          counters.Window
}

// scopedLimit is an <api> or <operation> child of rate-limit or quota:
// its own counter for requests to that API or operation.
type scopedLimit struct {
	name string // as written, for matching names and display names
	id   string // the resource name an id refers to; wins over name
	key  string // counter key part
	limit
	ops []scopedLimit
}

func (l *scopedLimit) matches(name, displayName string) bool {
	if l.id != "" {
		return strings.EqualFold(l.id, name)
	}
	return strings.EqualFold(l.name, name) || (displayName != "" && strings.EqualFold(l.name, displayName))
}

func apiMatch(l *scopedLimit, a *router.API) bool {
	if a == nil {
		return false
	}
	display := ""
	if a.Config != nil {
		display = a.Config.Properties.DisplayName
	}
	return l.matches(a.Name, display)
}

func opMatch(l *scopedLimit, o *router.Operation) bool {
	if o == nil {
		return false
	}
	display := ""
	if o.Config != nil {
		display = o.Config.Properties.DisplayName
	}
	return l.matches(o.Name, display)
}

// readLimit reads calls, bandwidth and renewal-period of el; parent gives
// the defaults of a child element.
func readLimit(el *policyxml.Element, parent *limit, bandwidth bool) (limit, error) {
	var l limit
	var err error
	if l.calls, l.hasCalls, err = countAttr(el, "calls"); err != nil {
		return l, err
	}
	if bandwidth {
		if l.kb, l.hasKB, err = countAttr(el, "bandwidth"); err != nil {
			return l, err
		}
	} else if _, ok := el.Attr("bandwidth"); ok {
		return l, fmt.Errorf("attribute bandwidth is not allowed on <%s>", el.Name)
	}
	period, ok, err := periodAttr(el, "renewal-period", parent == nil)
	if err != nil {
		return l, err
	}
	if !ok && parent != nil {
		l.window = parent.window
	} else {
		l.window = counters.Window{Period: period}
	}
	if !l.hasCalls && !l.hasKB {
		if bandwidth {
			return l, fmt.Errorf("<%s> needs calls, bandwidth or both", el.Name)
		}
		return l, fmt.Errorf("attribute calls is required on <%s>", el.Name)
	}
	return l, nil
}

func readScoped(el *policyxml.Element, parent *limit, bandwidth bool, child string) ([]scopedLimit, error) {
	var out []scopedLimit
	for _, ch := range el.Children {
		if ch.Name != child {
			return nil, fmt.Errorf("<%s> cannot be a child of <%s>", ch.Name, el.Name)
		}
		name := strings.TrimSpace(attr(ch, "name", ""))
		idRef := strings.TrimSpace(attr(ch, "id", ""))
		if name == "" && idRef == "" {
			return nil, fmt.Errorf("<%s> needs a name or an id", ch.Name)
		}
		s := scopedLimit{name: name}
		if idRef != "" {
			coll := "apis"
			if child == "operation" {
				coll = "operations"
			}
			s.id = config.RefName(idRef, coll)
			if s.id == "" {
				s.id = idRef
			}
			s.key = "id=" + strings.ToLower(s.id)
		} else {
			s.key = "name=" + strings.ToLower(name)
		}
		var err error
		if s.limit, err = readLimit(ch, parent, bandwidth); err != nil {
			return nil, err
		}
		if child == "api" {
			if s.ops, err = readScoped(ch, &s.limit, bandwidth, "operation"); err != nil {
				return nil, err
			}
		} else if len(ch.Children) > 0 {
			return nil, fmt.Errorf("<%s> cannot be a child of <operation>", ch.Children[0].Name)
		}
		out = append(out, s)
	}
	return out, nil
}

// applicable lists the limits that apply to r: the policy's own, then
// the matching API's, then the matching operation's, with their keys.
func applicable(top *limit, apis []scopedLimit, r *Request, base string, visit func(l *limit, key string) error) error {
	if top.hasCalls || top.hasKB {
		if err := visit(top, base); err != nil {
			return err
		}
	}
	for i := range apis {
		a := &apis[i]
		if !apiMatch(a, r.API) {
			continue
		}
		akey := base + "|api:" + a.key
		if err := visit(&a.limit, akey); err != nil {
			return err
		}
		for j := range a.ops {
			o := &a.ops[j]
			if opMatch(o, r.Operation) {
				if err := visit(&o.limit, akey+"|op:"+o.key); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// refunds are the counters a request was counted in so far; when a later
// counter refuses the request, the earlier ones take the count back, so a
// refused call counts nowhere (an API's refusal does not use up the
// product's calls).
type refunds struct {
	keys    [4]string
	windows [4]counters.Window
	more    []refund
	n       int
}

type refund struct {
	key    string
	window counters.Window
}

func (f *refunds) add(key string, w counters.Window) {
	if f.n < len(f.keys) {
		f.keys[f.n], f.windows[f.n] = key, w
	} else {
		f.more = append(f.more, refund{key, w})
	}
	f.n++
}

func (f *refunds) undo(store Counters, n int64) {
	if n == 0 {
		return
	}
	for i := 0; i < f.n && i < len(f.keys); i++ {
		_, _ = store.Hit(f.keys[i], -n, f.windows[i], counters.Unlimited)
	}
	for _, m := range f.more {
		_, _ = store.Hit(m.key, -n, m.window, counters.Unlimited)
	}
}

// --- rate-limit, rate-limit-by-key --------------------------------------------------------

// dynamicKey is a by-key policy's counter-key and increment-condition
// when they are policy expressions.
type dynamicKey struct {
	keyExpr  text
	condExpr text
}

// compileDynamicKey reads the expression forms of counter-key and
// increment-condition; literal ones are handled by the caller.
func compileDynamicKey(el *policyxml.Element) (dynamicKey, error) {
	var d dynamicKey
	if a, ok := el.Attr("counter-key"); ok && a.Expr {
		t, err := compileText(a.Value, true, a.Pos)
		if err != nil {
			return d, err
		}
		d.keyExpr = t
	}
	if a, ok := el.Attr("increment-condition"); ok && a.Expr {
		t, err := compileText(a.Value, true, a.Pos)
		if err != nil {
			return d, err
		}
		d.condExpr = t
	}
	return d, nil
}

// readKeyAttrs reads a by-key policy's counter-key (literal, "" when it is
// an expression), its expressions, and the increment.
func readKeyAttrs(el *policyxml.Element) (string, dynamicKey, int64, error) {
	ck, err := required(el, "counter-key")
	if err != nil {
		return "", dynamicKey{}, 0, err
	}
	dyn, err := compileDynamicKey(el)
	if err != nil {
		return "", dynamicKey{}, 0, err
	}
	if dyn.keyExpr.isExpr() {
		ck = ""
	}
	n, err := incrementAttrs(el, dyn.condExpr.isExpr())
	return ck, dyn, n, err
}

// resolve returns the counter key and the increment for this request.
func (d *dynamicKey) resolve(r *Request, m *meta, prefix string, n int64) (string, int64, error) {
	key := prefix
	if d.keyExpr.isExpr() {
		v, err := d.keyExpr.str(r, m)
		if err != nil {
			return "", 0, err
		}
		key = prefix + v
	}
	if d.condExpr.isExpr() {
		ok, err := d.condExpr.boolean(r, m)
		if err != nil {
			return "", 0, err
		}
		if !ok {
			n = 0
		}
	}
	return key, n, nil
}

// counted is what the rate-limit and quota policies share: where and
// under which key they count, their limits, and the increment.
type counted struct {
	meta
	dyn   dynamicKey
	store Counters
	// key is the counter key: the plain policies' prefix (the
	// subscription is appended), the by-key policies' whole key.
	key   string
	byKey bool
	top   limit
	apis  []scopedLimit
	n     int64
}

type rateLimit struct {
	counted
	headerAttrs
}

func periodKey(w counters.Window) string {
	return strconv.FormatInt(int64(w.Period/time.Second), 10) + "s"
}

func compileRateLimit(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	if c.loc.Scope == ScopeGlobal {
		return nil, fmt.Errorf("rate-limit is allowed at the product, API and operation scopes, not at the global scope")
	}
	top, err := readLimit(el, nil, false)
	if err != nil {
		return nil, err
	}
	if top.window.Period <= 0 || top.window.Period > maxRatePeriod {
		return nil, fmt.Errorf("renewal-period must be between 1 and 300 seconds")
	}
	apis, err := readScoped(el, &top, false, "api")
	if err != nil {
		return nil, err
	}
	for _, a := range apis {
		for _, l := range append([]scopedLimit{a}, a.ops...) {
			if l.window.Period <= 0 || l.window.Period > maxRatePeriod {
				return nil, fmt.Errorf("renewal-period must be between 1 and 300 seconds")
			}
		}
	}
	// One counter per subscription and policy document: a rate-limit at
	// the product and one at the API count separately, as in API
	// Management. The window length is part of the key so that changing
	// it starts a fresh count.
	key := "rl|" + c.loc.String() + "|" + periodKey(top.window) + "|"
	return &rateLimit{counted: counted{meta: m, store: c.counters(), key: key, top: top, apis: apis, n: 1}, headerAttrs: readHeaderAttrs(el)}, nil
}

func compileRateLimitByKey(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	top, err := readLimit(el, nil, false)
	if err != nil {
		return nil, err
	}
	if top.window.Period <= 0 {
		return nil, fmt.Errorf("renewal-period must be a positive number of seconds")
	}
	if len(el.Children) > 0 {
		return nil, fmt.Errorf("<%s> cannot be a child of <%s>", el.Children[0].Name, el.Name)
	}
	ck, dyn, n, err := readKeyAttrs(el)
	if err != nil {
		return nil, err
	}
	// "For each key value, a single counter is used for all scopes at
	// which the policy is configured."
	key := "rlk|" + periodKey(top.window) + "|" + ck
	return &rateLimit{counted: counted{meta: m, dyn: dyn, store: c.counters(), key: key, byKey: true, top: top, n: n}, headerAttrs: readHeaderAttrs(el)}, nil
}

func (s *rateLimit) Exec(r *Request) error {
	base, n := s.key, s.n
	if s.byKey {
		var err error
		if base, n, err = s.dyn.resolve(r, &s.meta, s.key, s.n); err != nil {
			return err
		}
	}
	if !s.byKey {
		// Calls without a subscription key are not rate limited.
		if r.Subscription == "" {
			return nil
		}
		base += r.Subscription
	}
	var least counters.Result
	var leastCalls int64 = -1
	var counted refunds
	err := applicable(&s.top, s.apis, r, base, func(l *limit, key string) error {
		res, err := s.store.Hit(key, n, l.window, l.calls)
		if err != nil {
			return nil // the store failed open
		}
		if !res.Allowed {
			counted.undo(s.store, n)
			return s.exceeded(r, res, l.calls)
		}
		counted.add(key, l.window)
		if leastCalls < 0 || res.Remaining < least.Remaining {
			least, leastCalls = res, l.calls
		}
		return nil
	})
	if err != nil || leastCalls < 0 {
		return err
	}
	setVar(r, s.remainingVar, least.Remaining)
	if s.remainingHeader != "" || s.totalHeader != "" {
		remaining, total := least.Remaining, leastCalls
		r.onResponse = append(r.onResponse, func(r *Request) {
			h := &r.Ctx.Response.Header
			if s.remainingHeader != "" {
				h.Set(s.remainingHeader, strconv.FormatInt(remaining, 10))
			}
			if s.totalHeader != "" {
				h.Set(s.totalHeader, strconv.FormatInt(total, 10))
			}
		})
	}
	return nil
}

func (s *rateLimit) exceeded(r *Request, res counters.Result, calls int64) error {
	wait := retrySeconds(res.Reset)
	setVar(r, s.retryVar, wait)
	setVar(r, s.remainingVar, 0)
	pe := s.fail("RateLimitExceeded", fmt.Sprintf(rateLimitMessage, wait), fasthttp.StatusTooManyRequests)
	h := []string{s.retryHeader, strconv.FormatInt(wait, 10)}
	if s.remainingHeader != "" {
		h = append(h, s.remainingHeader, "0")
	}
	if s.totalHeader != "" {
		h = append(h, s.totalHeader, strconv.FormatInt(calls, 10))
	}
	pe.headers = &h
	return pe
}

// --- quota, quota-by-key ------------------------------------------------------------------

type quota struct{ counted }

func compileQuota(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	if c.loc.Scope != ScopeProduct {
		return nil, fmt.Errorf("quota is allowed at the product scope only")
	}
	top, err := readLimit(el, nil, true)
	if err != nil {
		return nil, err
	}
	apis, err := readScoped(el, &top, true, "api")
	if err != nil {
		return nil, err
	}
	// Windows count from the Unix epoch: the snapshot does not carry the
	// subscription's start date API Management counts from.
	key := "q|" + c.loc.String() + "|" + periodKey(top.window) + "|"
	return &quota{counted: counted{meta: m, store: c.counters(), key: key, top: top, apis: apis, n: 1}}, nil
}

func compileQuotaByKey(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	top, err := readLimit(el, nil, true)
	if err != nil {
		return nil, err
	}
	if p := top.window.Period; p != 0 && p < minQuotaByKeyPeriod {
		return nil, fmt.Errorf("renewal-period must be 0 (no renewal) or at least 300 seconds")
	}
	if len(el.Children) > 0 {
		return nil, fmt.Errorf("<%s> cannot be a child of <%s>", el.Children[0].Name, el.Name)
	}
	ck, dyn, n, err := readKeyAttrs(el)
	if err != nil {
		return nil, err
	}
	origin := ""
	if raw, ok := el.Attr("first-period-start"); ok {
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(raw.Value))
		if err != nil {
			return nil, fmt.Errorf("first-period-start %q must be a date and time like 2024-01-31T00:00:00Z", raw.Value)
		}
		top.window.Origin = t
		origin = t.UTC().Format(time.RFC3339)
	} else {
		// API Management's default first period starts at 0001-01-01.
		top.window.Origin = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	key := "qk|" + periodKey(top.window) + origin + "|" + ck
	return &quota{counted: counted{meta: m, dyn: dyn, store: c.counters(), key: key, byKey: true, top: top, n: n}}, nil
}

// quotaSeen marks, per request, the quota-by-key counters already
// incremented: "If multiple policies would increment the same key value,
// it is incremented only once per request."
type quotaSeen string

func (s *quota) Exec(r *Request) error {
	base := s.key
	n := s.n
	if s.byKey {
		var err error
		if base, n, err = s.dyn.resolve(r, &s.meta, s.key, s.n); err != nil {
			return err
		}
		if r.Ctx.UserValue(quotaSeen(base)) != nil {
			n = 0
		} else if n > 0 {
			r.Ctx.SetUserValue(quotaSeen(base), true)
		}
	} else {
		// Quotas apply to calls made with a subscription key.
		if r.Subscription == "" {
			return nil
		}
		base += r.Subscription
	}
	// dup: another quota-by-key counted this key for this request.
	dup := s.byKey && n == 0 && s.n > 0
	type pending struct {
		key    string
		window counters.Window
	}
	var bandwidth []pending // counted when the response is done
	var counted refunds
	err := applicable(&s.top, s.apis, r, base, func(l *limit, key string) error {
		if l.hasCalls {
			// With n = 0 (counted already, or not to be counted) the hit
			// only checks that the counter is within the quota.
			res, err := s.store.Hit(key+"|calls", n, l.window, l.calls)
			if err == nil && !res.Allowed {
				counted.undo(s.store, n)
				return s.exceeded(res, l, callQuotaMessage)
			}
			if err == nil {
				counted.add(key+"|calls", l.window)
			}
		}
		if l.hasKB {
			// Bandwidth is known after the response: refuse once the
			// total reached the quota, count when the response is done.
			bkey := key + "|kb"
			res, err := s.store.Hit(bkey, 0, l.window, l.kb*1024-1)
			if err == nil && !res.Allowed {
				counted.undo(s.store, n)
				return s.exceeded(res, l, bandQuotaMessage)
			}
			if !dup {
				bandwidth = append(bandwidth, pending{bkey, l.window})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(bandwidth) > 0 {
		r.onResponse = append(r.onResponse, func(r *Request) {
			used := transferred(r.Ctx)
			if used == 0 {
				return
			}
			for _, p := range bandwidth {
				_, _ = s.store.Hit(p.key, used, p.window, counters.Unlimited)
			}
		})
	}
	return nil
}

// transferred is the request and response body bytes of a call; a
// streamed body counts its Content-Length (reading it would buffer it).
func transferred(ctx *fasthttp.RequestCtx) int64 {
	var n int64
	if ctx.Request.IsBodyStream() {
		n += max(int64(ctx.Request.Header.ContentLength()), 0)
	} else {
		n += int64(len(ctx.Request.Body()))
	}
	if ctx.Response.IsBodyStream() {
		n += max(int64(ctx.Response.Header.ContentLength()), 0)
	} else {
		n += int64(len(ctx.Response.Body()))
	}
	return n
}

func (s *quota) exceeded(res counters.Result, l *limit, what string) error {
	msg := what
	var h []string
	if l.window.Period > 0 {
		msg += replenishMessage + timeSpan(res.Reset) + "."
		h = []string{"Retry-After", strconv.FormatInt(retrySeconds(res.Reset), 10)}
	}
	pe := s.fail("QuotaExceeded", msg, fasthttp.StatusForbidden)
	if h != nil {
		pe.headers = &h
	}
	return pe
}

// --- limit-concurrency -----------------------------------------------------------------------

type limitConcurrency struct {
	meta
	store Counters
	key   string
	max   int64
	steps []Step
}

// compileLimitConcurrency handles expressions itself (policyDef
// expressions): the compiler's generic check would skip the whole policy,
// and with it the nested policies (often forward-request), for one
// expression anywhere inside. Each nested policy is checked on its own.
func compileLimitConcurrency(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	for _, a := range el.Attrs {
		if a.Expr && a.Name != "key" {
			return nil, fmt.Errorf("attribute %s cannot be a policy expression", a.Name)
		}
	}
	max, ok, err := countAttr(el, "max-count")
	if err != nil {
		return nil, err
	}
	if !ok || max < 1 {
		return nil, fmt.Errorf("attribute max-count must be a positive integer")
	}
	key, ok := el.Attr("key")
	if !ok || strings.TrimSpace(key.Value) == "" {
		return nil, fmt.Errorf("attribute key is required")
	}
	// The nested policies compile in the enclosing section, like a
	// fragment's.
	sub := &compiler{set: c.set, loc: c.loc, section: c.section}
	var steps []Step
	for _, ch := range el.Children {
		steps = append(steps, sub.statement(ch, m.path)...)
	}
	if key.Expr {
		// Skipping the policy would skip what it wraps (often
		// forward-request): run the nested policies, unlimited.
		c.unsupportedAt(el, key.Pos, "attribute key holds a policy expression, which this gateway version does not evaluate yet; the nested policies run without a concurrency limit")
		return &stepList{meta: m, steps: steps}, nil
	}
	return &limitConcurrency{meta: m, store: c.counters(), key: "lc|" + key.Value, max: max, steps: steps}, nil
}

func (s *limitConcurrency) Exec(r *Request) error {
	if !s.store.Acquire(s.key, s.max) {
		return s.fail(concurrencyReason, "Too many concurrent requests. Try again later.", fasthttp.StatusTooManyRequests)
	}
	// The slot is held while the nested policies run and returned however
	// they end: an error, errStop, a panic.
	defer s.store.Release(s.key)
	return runSteps(r, s.steps)
}
