package policy

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/counters"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/router"
)

// fakeClock is a settable clock for counter windows.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newClock starts 15 s into a window of every length that divides two
// days.
func newClock() *fakeClock { return &fakeClock{t: time.Unix(172800*100+15, 0)} }

// limitSet compiles docs (location -> document) against store and fails
// on compile errors.
func limitSet(t *testing.T, store Counters, loc Location, doc string) *Pipeline {
	t.Helper()
	set := NewSet(&config.Snapshot{SchemaVersion: config.SchemaVersion}, Options{Counters: store})
	d := set.Compile(loc, doc)
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	if len(set.Warnings) > 0 {
		t.Fatalf("warnings: %v", set.Warnings)
	}
	return Compose(nil, d)
}

var product = Location{Scope: ScopeProduct, Name: "gold"}

type call struct {
	sub  string
	api  string
	op   string
	body int // response body bytes
}

// do runs p as a call; the backend answers 200 with c.body bytes.
func do(t *testing.T, p *Pipeline, c call) (*fasthttp.RequestCtx, *Request) {
	t.Helper()
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}, nil)
	r := &Request{Ctx: ctx, Subscription: c.sub}
	if c.api != "" {
		r.API = &router.API{Name: c.api}
	}
	if c.op != "" {
		r.Operation = &router.Operation{Name: c.op}
	}
	r.Forward = func(r *Request, _ ForwardOptions) error {
		r.Ctx.Response.Reset() // what a real backend call does
		r.Ctx.Response.SetStatusCode(200)
		r.Ctx.Response.SetBodyRaw(make([]byte, c.body))
		return nil
	}
	p.Run(r)
	return ctx, r
}

func wantStatus(t *testing.T, ctx *fasthttp.RequestCtx, status int, body string) {
	t.Helper()
	if ctx.Response.StatusCode() != status {
		t.Fatalf("status %d (%s), want %d", ctx.Response.StatusCode(), ctx.Response.Body(), status)
	}
	if body != "" && string(ctx.Response.Body()) != body {
		t.Fatalf("body %s\nwant %s", ctx.Response.Body(), body)
	}
}

func TestRateLimitWindow(t *testing.T) {
	t.Parallel()
	clk := newClock()
	p := limitSet(t, counters.NewMemory(clk.now), product, `<policies><inbound><rate-limit calls="2" renewal-period="60" /></inbound></policies>`)
	for i := range 2 {
		ctx, _ := do(t, p, call{sub: "s1"})
		wantStatus(t, ctx, 200, "")
		if ctx.Response.Header.Peek("Retry-After") != nil {
			t.Errorf("call %d: Retry-After on a passing call", i)
		}
	}
	ctx, r := do(t, p, call{sub: "s1"})
	wantStatus(t, ctx, 429, `{ "statusCode": 429, "message": "Rate limit is exceeded. Try again in 45 seconds." }`)
	if got := string(ctx.Response.Header.Peek("Retry-After")); got != "45" {
		t.Errorf("Retry-After %q, want 45", got)
	}
	if r.LastError == nil || r.LastError.Reason != "RateLimitExceeded" || r.LastError.Source != "rate-limit" {
		t.Errorf("LastError %+v", r.LastError)
	}
	clk.advance(45 * time.Second) // the next window
	ctx, _ = do(t, p, call{sub: "s1"})
	wantStatus(t, ctx, 200, "")
}

func TestRateLimitHeadersAndVariables(t *testing.T) {
	t.Parallel()
	clk := newClock()
	p := limitSet(t, counters.NewMemory(clk.now), product, `<policies><inbound>
		<rate-limit calls="2" renewal-period="30" retry-after-header-name="X-Retry" retry-after-variable-name="wait"
			remaining-calls-header-name="X-Remaining" remaining-calls-variable-name="left" total-calls-header-name="X-Total" />
	</inbound></policies>`)
	for _, want := range []string{"1", "0"} {
		ctx, r := do(t, p, call{sub: "s1"})
		wantStatus(t, ctx, 200, "")
		if got := string(ctx.Response.Header.Peek("X-Remaining")); got != want {
			t.Errorf("X-Remaining %q, want %s", got, want)
		}
		if got := string(ctx.Response.Header.Peek("X-Total")); got != "2" {
			t.Errorf("X-Total %q, want 2", got)
		}
		if r.Vars["left"] != want {
			t.Errorf("variable left %q, want %s", r.Vars["left"], want)
		}
	}
	ctx, r := do(t, p, call{sub: "s1"})
	wantStatus(t, ctx, 429, `{ "statusCode": 429, "message": "Rate limit is exceeded. Try again in 15 seconds." }`)
	if got := string(ctx.Response.Header.Peek("X-Retry")); got != "15" {
		t.Errorf("X-Retry %q, want 15", got)
	}
	if ctx.Response.Header.Peek("Retry-After") != nil {
		t.Error("Retry-After sent although retry-after-header-name renames it")
	}
	if string(ctx.Response.Header.Peek("X-Remaining")) != "0" || string(ctx.Response.Header.Peek("X-Total")) != "2" {
		t.Errorf("429 headers: remaining %q total %q", ctx.Response.Header.Peek("X-Remaining"), ctx.Response.Header.Peek("X-Total"))
	}
	if r.Vars["wait"] != "15" {
		t.Errorf("variable wait %q, want 15", r.Vars["wait"])
	}
}

func TestRateLimitOnErrorKeepsRetryAfter(t *testing.T) {
	t.Parallel()
	clk := newClock()
	p := limitSet(t, counters.NewMemory(clk.now), product, `<policies><inbound><rate-limit calls="1" renewal-period="60" /></inbound>
		<on-error><set-header name="X-Handled" exists-action="override"><value>yes</value></set-header></on-error></policies>`)
	do(t, p, call{sub: "s1"})
	ctx, _ := do(t, p, call{sub: "s1"})
	wantStatus(t, ctx, 429, "")
	if string(ctx.Response.Header.Peek("Retry-After")) != "45" || string(ctx.Response.Header.Peek("X-Handled")) != "yes" {
		t.Errorf("headers after on-error: %s", ctx.Response.Header.String())
	}
}

func TestRateLimitPerSubscription(t *testing.T) {
	t.Parallel()
	store := counters.NewMemory(newClock().now)
	p := limitSet(t, store, product, `<policies><inbound><rate-limit calls="1" renewal-period="60" /></inbound></policies>`)
	ctx, _ := do(t, p, call{sub: "s1"})
	wantStatus(t, ctx, 200, "")
	ctx, _ = do(t, p, call{sub: "s1"})
	wantStatus(t, ctx, 429, "")
	ctx, _ = do(t, p, call{sub: "s2"})
	wantStatus(t, ctx, 200, "")
	// Keyless calls are not rate limited.
	for range 3 {
		ctx, _ = do(t, p, call{})
		wantStatus(t, ctx, 200, "")
	}
	// The same subscription under another document counts apart.
	other := limitSet(t, store, Location{Scope: ScopeAPI, Name: "a"}, `<policies><inbound><rate-limit calls="1" renewal-period="60" /></inbound></policies>`)
	ctx, _ = do(t, other, call{sub: "s1"})
	wantStatus(t, ctx, 200, "")
}

func TestRateLimitAPIAndOperation(t *testing.T) {
	t.Parallel()
	p := limitSet(t, counters.NewMemory(newClock().now), product, `<policies><inbound>
		<rate-limit calls="10" renewal-period="60">
			<api name="echo" calls="3" renewal-period="60">
				<operation name="get" calls="1" renewal-period="60" />
			</api>
		</rate-limit></inbound></policies>`)
	ctx, _ := do(t, p, call{sub: "s", api: "echo", op: "get"})
	wantStatus(t, ctx, 200, "")
	ctx, _ = do(t, p, call{sub: "s", api: "echo", op: "get"})
	wantStatus(t, ctx, 429, "") // the operation's limit
	for range 2 {
		ctx, _ = do(t, p, call{sub: "s", api: "echo", op: "post"})
		wantStatus(t, ctx, 200, "")
	}
	ctx, _ = do(t, p, call{sub: "s", api: "echo", op: "post"})
	wantStatus(t, ctx, 429, "") // the API's limit: 3 calls passed
	// Refused calls counted nowhere: 3 passed so far, 7 more reach the
	// product's 10.
	for range 7 {
		ctx, _ = do(t, p, call{sub: "s", api: "other"})
		wantStatus(t, ctx, 200, "")
	}
	ctx, _ = do(t, p, call{sub: "s", api: "other"})
	wantStatus(t, ctx, 429, "")
}

func TestRateLimitByKey(t *testing.T) {
	t.Parallel()
	store := counters.NewMemory(newClock().now)
	doc := func(key string) string {
		return `<policies><inbound><rate-limit-by-key calls="2" renewal-period="60" counter-key="` + key + `" /></inbound></policies>`
	}
	a := limitSet(t, store, Location{Scope: ScopeAPI, Name: "a"}, doc("tenant-a"))
	b := limitSet(t, store, Location{Scope: ScopeAPI, Name: "b"}, doc("tenant-b"))
	a2 := limitSet(t, store, Location{Scope: ScopeOperation, Name: "a/op"}, doc("tenant-a"))
	ctx, _ := do(t, a, call{}) // keyless calls count by key
	wantStatus(t, ctx, 200, "")
	ctx, _ = do(t, a2, call{})
	wantStatus(t, ctx, 200, "")
	ctx, _ = do(t, a, call{})
	wantStatus(t, ctx, 429, "") // one counter per key across scopes
	ctx, _ = do(t, b, call{})
	wantStatus(t, ctx, 200, "")

	n := limitSet(t, store, product, `<policies><inbound><rate-limit-by-key calls="1" renewal-period="60" counter-key="k" increment-count="0" /></inbound></policies>`)
	for range 3 {
		ctx, _ = do(t, n, call{})
		wantStatus(t, ctx, 200, "") // increment-count 0 never counts
	}
}

func TestQuota(t *testing.T) {
	t.Parallel()
	clk := newClock()
	p := limitSet(t, counters.NewMemory(clk.now), product, `<policies><inbound><quota calls="1" renewal-period="3600" /></inbound></policies>`)
	ctx, _ := do(t, p, call{sub: "s"})
	wantStatus(t, ctx, 200, "")
	ctx, r := do(t, p, call{sub: "s"})
	wantStatus(t, ctx, 403, `{ "statusCode": 403, "message": "Out of call volume quota. Quota will be replenished in 00:59:45." }`)
	if got := string(ctx.Response.Header.Peek("Retry-After")); got != "3585" {
		t.Errorf("Retry-After %q, want 3585", got)
	}
	if r.LastError.Reason != "QuotaExceeded" {
		t.Errorf("reason %q", r.LastError.Reason)
	}
	ctx, _ = do(t, p, call{}) // keyless: no quota
	wantStatus(t, ctx, 200, "")

	long := limitSet(t, counters.NewMemory(clk.now), product, `<policies><inbound><quota calls="0" renewal-period="172800" /></inbound></policies>`)
	ctx, _ = do(t, long, call{sub: "s"})
	if want := "Quota will be replenished in 1.23:59:45."; !strings.Contains(string(ctx.Response.Body()), want) {
		t.Errorf("body %s, want a d.hh:mm:ss span", ctx.Response.Body())
	}
}

func TestQuotaBandwidth(t *testing.T) {
	t.Parallel()
	p := limitSet(t, counters.NewMemory(newClock().now), product, `<policies><inbound><quota bandwidth="2" renewal-period="3600" /></inbound></policies>`)
	ctx, _ := do(t, p, call{sub: "s", body: 1500})
	wantStatus(t, ctx, 200, "")
	ctx, _ = do(t, p, call{sub: "s", body: 1500}) // 1500 B < 2 KB used before it
	wantStatus(t, ctx, 200, "")
	ctx, _ = do(t, p, call{sub: "s", body: 10})
	wantStatus(t, ctx, 403, `{ "statusCode": 403, "message": "Out of bandwidth quota. Quota will be replenished in 00:59:45." }`)
}

func TestQuotaByKeyOncePerRequest(t *testing.T) {
	t.Parallel()
	p := limitSet(t, counters.NewMemory(newClock().now), product, `<policies><inbound>
		<quota-by-key calls="2" renewal-period="300" counter-key="k" />
		<quota-by-key calls="2" renewal-period="300" counter-key="k" />
	</inbound></policies>`)
	for range 2 {
		ctx, _ := do(t, p, call{})
		wantStatus(t, ctx, 200, "")
	}
	ctx, _ := do(t, p, call{})
	wantStatus(t, ctx, 403, "")
}

func TestQuotaByKeyFirstPeriodStart(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Date(2025, 1, 1, 0, 10, 0, 0, time.UTC)}
	p := limitSet(t, counters.NewMemory(clk.now), product, `<policies><inbound>
		<quota-by-key calls="1" renewal-period="3600" counter-key="k" first-period-start="2024-06-01T00:30:00Z" />
	</inbound></policies>`)
	do(t, p, call{})
	ctx, _ := do(t, p, call{})
	// Periods start at hh:30: 20 minutes left.
	wantStatus(t, ctx, 403, `{ "statusCode": 403, "message": "Out of call volume quota. Quota will be replenished in 00:20:00." }`)
}

func TestLimitsCompile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		loc       Location
		doc       string
		wantErr   string
		wantWarn  string
		wantSteps bool
	}{
		{name: "rate-limit at global", loc: Location{Scope: ScopeGlobal}, doc: `<rate-limit calls="1" renewal-period="1" />`, wantErr: "not at the global scope"},
		{name: "renewal-period above 300", loc: product, doc: `<rate-limit calls="1" renewal-period="301" />`, wantErr: "between 1 and 300"},
		{name: "calls missing", loc: product, doc: `<rate-limit renewal-period="10" />`, wantErr: "calls is required"},
		{name: "bad child", loc: product, doc: `<rate-limit calls="1" renewal-period="10"><product name="x" /></rate-limit>`, wantErr: "cannot be a child"},
		{name: "expression counter-key", loc: product, doc: `<rate-limit-by-key calls="1" renewal-period="10" counter-key="@(context.Request.IpAddress)" increment-condition="@(context.Response.StatusCode == 200)" />`, wantSteps: true},
		{name: "counter-key outside the expression subset", loc: product, doc: `<rate-limit-by-key calls="1" renewal-period="10" counter-key="@(new System.Net.WebClient())" />`, wantErr: "expression"},
		{name: "counter-key missing", loc: product, doc: `<rate-limit-by-key calls="1" renewal-period="10" />`, wantErr: "counter-key is required"},
		{name: "quota at API scope", loc: Location{Scope: ScopeAPI, Name: "a"}, doc: `<quota calls="1" renewal-period="10" />`, wantErr: "product scope only"},
		{name: "quota without calls or bandwidth", loc: product, doc: `<quota renewal-period="10" />`, wantErr: "calls, bandwidth or both"},
		{name: "quota-by-key short period", loc: product, doc: `<quota-by-key calls="1" renewal-period="60" counter-key="k" />`, wantErr: "at least 300"},
		{name: "quota-by-key lifetime", loc: product, doc: `<quota-by-key calls="1" renewal-period="0" counter-key="k" />`, wantSteps: true},
		{name: "bad first-period-start", loc: product, doc: `<quota-by-key calls="1" renewal-period="300" counter-key="k" first-period-start="yesterday" />`, wantErr: "first-period-start"},
		{name: "expression in a nested policy", loc: product, doc: `<limit-concurrency key="k" max-count="1"><set-header name="x"><value>@(context.RequestId)</value></set-header><set-header name="y"><value>z</value></set-header></limit-concurrency>`, wantSteps: true},
		{name: "max-count missing", loc: product, doc: `<limit-concurrency key="k" />`, wantErr: "max-count"},
		{name: "expression key keeps children", loc: product, doc: `<limit-concurrency key="@(context.Subscription.Id)" max-count="1"><set-header name="x"><value>y</value></set-header></limit-concurrency>`, wantWarn: "run without a concurrency limit", wantSteps: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set := NewSet(&config.Snapshot{SchemaVersion: config.SchemaVersion}, Options{})
			d := set.Compile(tc.loc, `<policies><inbound>`+tc.doc+`</inbound></policies>`)
			err := set.Err()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			var warns []string
			for _, w := range set.Warnings {
				warns = append(warns, w.String())
			}
			if tc.wantWarn != "" && !strings.Contains(strings.Join(warns, "\n"), tc.wantWarn) {
				t.Errorf("warnings %v, want %q", warns, tc.wantWarn)
			}
			if tc.wantSteps && (d == nil || len(d.sections[Inbound]) == 0) {
				t.Error("the policy compiled to nothing")
			}
		})
	}
}

func TestLimitConcurrency(t *testing.T) {
	t.Parallel()
	store := counters.NewMemory(nil)
	p := limitSet(t, store, Location{Scope: ScopeAPI, Name: "a"}, `<policies><backend>
		<limit-concurrency key="backend" max-count="2"><forward-request /></limit-concurrency>
	</backend></policies>`)
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	var fail atomic.Bool
	run := func() (*fasthttp.RequestCtx, *Request) {
		ctx := &fasthttp.RequestCtx{}
		ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}, nil)
		r := &Request{Ctx: ctx, Forward: func(r *Request, _ ForwardOptions) error {
			entered <- struct{}{}
			<-release
			if fail.Load() {
				return &Error{Reason: "BackendConnectionFailure", Message: "Bad gateway", Status: 502}
			}
			r.Ctx.Response.SetStatusCode(200)
			return nil
		}}
		p.Run(r)
		return ctx, r
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { run() })
	}
	<-entered
	<-entered
	if n := store.InUse("lc|backend"); n != 2 {
		t.Fatalf("slots in use %d, want 2", n)
	}
	ctx, r := run() // a third request while both slots are held
	wantStatus(t, ctx, 429, `{ "statusCode": 429, "message": "Too many concurrent requests. Try again later." }`)
	if r.LastError.Source != "limit-concurrency" {
		t.Errorf("LastError %+v", r.LastError)
	}
	fail.Store(true) // the held calls end in errors: slots come back anyway
	close(release)
	wg.Wait()
	if n := store.InUse("lc|backend"); n != 0 {
		t.Fatalf("slots in use after errors %d, want 0", n)
	}
	fail.Store(false)
	ctx, _ = run()
	wantStatus(t, ctx, 200, "")
}

func TestMemoryCountersConcurrent(t *testing.T) {
	t.Parallel()
	m := counters.NewMemory(nil)
	w := counters.Window{Period: time.Hour}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 200 {
				key := fmt.Sprintf("k%d", (g+i)%4)
				if res, _ := m.Hit(key, 1, w, 500); res.Allowed {
					allowed.Add(1)
				}
				if m.Acquire("slot", 3) {
					m.Release("slot")
				}
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 4*500 {
		t.Errorf("allowed %d hits, want %d", allowed.Load(), 4*500)
	}
	if m.InUse("slot") != 0 {
		t.Errorf("slots left %d", m.InUse("slot"))
	}
}

func TestMemoryCountersEvict(t *testing.T) {
	t.Parallel()
	clk := newClock()
	m := counters.NewMemory(clk.now)
	for i := range 1000 {
		m.Hit(fmt.Sprintf("k%d", i), 1, counters.Window{Period: time.Minute}, 10)
	}
	m.Hit("lifetime", 1, counters.Window{}, 10)
	if m.Len() != 1001 {
		t.Fatalf("len %d", m.Len())
	}
	clk.advance(time.Hour)
	for i := range 64 * 20 { // touch every shard: each sweeps its ended windows
		m.Hit(fmt.Sprintf("fresh%d", i), 1, counters.Window{Period: time.Minute}, 10)
	}
	if n := m.Len(); n > 64*20+1 {
		t.Errorf("%d counters after the windows ended, want at most %d", n, 64*20+1)
	}
	if res, _ := m.Hit("lifetime", 0, counters.Window{}, 10); res.Count != 1 {
		t.Errorf("lifetime counter lost: %+v", res)
	}
}

func TestTimeSpan(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		45 * time.Second:                    "00:00:45",
		7*time.Hour + 80*time.Second:        "07:01:20",
		26*time.Hour + 500*time.Millisecond: "1.02:00:01",
	} {
		if got := timeSpan(d); got != want {
			t.Errorf("timeSpan(%v) = %s, want %s", d, got, want)
		}
	}
}
