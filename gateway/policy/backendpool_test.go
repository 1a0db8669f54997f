package policy

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/proxy"
)

func TestParseISODuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want time.Duration
		bad  bool
	}{
		{name: "minute", in: "PT1M", want: time.Minute},
		{name: "seconds", in: "PT30S", want: 30 * time.Second},
		{name: "fraction", in: "PT0.5S", want: 500 * time.Millisecond},
		{name: "day", in: "P1D", want: 24 * time.Hour},
		{name: "mixed", in: "P1DT2H3M4S", want: 26*time.Hour + 3*time.Minute + 4*time.Second},
		{name: "week", in: "P2W", want: 14 * 24 * time.Hour},
		{name: "lower case", in: "pt1h", want: time.Hour},
		{name: "empty", in: "", bad: true},
		{name: "no P", in: "T1M", bad: true},
		{name: "bare T", in: "PT", bad: true},
		{name: "hours without T", in: "P1H", bad: true},
		{name: "no number", in: "PTM", bad: true},
		{name: "timespan", in: "00:01:00", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseISODuration(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// member is a loopback backend whose status the test sets.
type member struct {
	*httptest.Server
	name       string
	status     atomic.Int32
	retryAfter atomic.Value // string
	hits       atomic.Int32
}

func newMember(t *testing.T, name string) *member {
	t.Helper()
	m := &member{name: name}
	m.status.Store(200)
	m.retryAfter.Store("")
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		m.hits.Add(1)
		if ra := m.retryAfter.Load().(string); ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		w.WriteHeader(int(m.status.Load()))
		_, _ = w.Write([]byte(name))
	}))
	t.Cleanup(m.Close)
	return m
}

// testClient makes plain HostClients, as proxy.Pool does.
func testClient(tg proxy.Target) *fasthttp.HostClient {
	return &fasthttp.HostClient{Addr: tg.Addr, MaxIdemponentCallAttempts: 1, IsTLS: tg.Scheme == "https", TLSConfig: &tls.Config{InsecureSkipVerify: true}}
}

// loopForward is a Forwarder that sends the request to r.Backend.
func loopForward(r *Request, _ ForwardOptions) error {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI(r.Backend.Scheme + "://" + r.Backend.Host + r.Backend.BasePath + "/")
	if err := r.Backend.Client.DoTimeout(req, &r.Ctx.Response, 5*time.Second); err != nil {
		return &Error{Reason: "BackendConnectionFailure", Message: "Bad gateway", Status: 502}
	}
	return nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func single(name, url string, rules ...config.CircuitBreakerRule) config.Backend {
	b := config.Backend{Name: name, Properties: config.BackendProperties{URL: url, Type: config.BackendSingle}}
	if len(rules) > 0 {
		b.Properties.CircuitBreaker = &config.CircuitBreaker{Rules: rules}
	}
	return b
}

func pool(name string, svcs ...config.PoolService) config.Backend {
	return config.Backend{Name: name, Properties: config.BackendProperties{Type: config.BackendPool, Pool: &config.BackendPoolConfig{Services: svcs}}}
}

func rule5xx(count int) config.CircuitBreakerRule {
	return config.CircuitBreakerRule{Name: "r", TripDuration: "PT30S", FailureCondition: config.FailureCondition{
		Count: count, Interval: "PT1M", StatusCodeRanges: []config.StatusCodeRange{{Min: 500, Max: 599}}}}
}

// backendRig compiles set-backend-service backend-id=id + forward-request
// against backends, with the registry bs.
type backendRig struct {
	t  *testing.T
	p  *Pipeline
	bs *Breakers
}

func newBackendRig(t *testing.T, bs *Breakers, id string, backends ...config.Backend) *backendRig {
	t.Helper()
	snap := &config.Snapshot{SchemaVersion: config.SchemaVersion, Backends: backends}
	set := NewSet(snap, Options{Client: testClient, Breakers: bs})
	doc := `<policies><inbound><set-backend-service backend-id="` + id + `" /></inbound><backend><forward-request /></backend><outbound /><on-error /></policies>`
	api := set.Compile(Location{Scope: ScopeAPI, Name: "a"}, doc)
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	if len(set.Warnings) > 0 {
		t.Fatalf("warnings: %v", set.Warnings)
	}
	return &backendRig{t: t, p: Compose(nil, api), bs: bs}
}

// call runs one request and returns status and body.
func (g *backendRig) call() (int, string, *Request) {
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}, nil)
	r := &Request{Ctx: ctx, Forward: loopForward}
	g.p.Run(r)
	return ctx.Response.StatusCode(), string(ctx.Response.Body()), r
}

func fakeBreakers() (*Breakers, *clock) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	bs := NewBreakers()
	bs.now = c.now
	return bs, c
}

func TestPoolSelection(t *testing.T) {
	t.Parallel()
	a, b, c := newMember(t, "a"), newMember(t, "b"), newMember(t, "c")
	tests := []struct {
		name  string
		svcs  []config.PoolService
		down  []*member // answer 500 (breaker count 1 trips on the first)
		calls int
		want  string // bodies, in order
	}{
		{name: "round robin without weights", svcs: []config.PoolService{{ID: "a"}, {ID: "b"}, {ID: "c"}}, calls: 6, want: "abcabc"},
		{name: "smooth weighted", svcs: []config.PoolService{{ID: "a", Weight: 3}, {ID: "b", Weight: 1}}, calls: 8, want: "aabaaaba"},
		{name: "lowest priority value first", svcs: []config.PoolService{{ID: "/backends/c", Priority: 2}, {ID: "a", Priority: 1}, {ID: "b", Priority: 1}}, calls: 4, want: "abab"},
		{name: "open member skipped", svcs: []config.PoolService{{ID: "a"}, {ID: "b"}}, down: []*member{a}, calls: 4, want: "abbb"},
		{name: "next priority when group open", svcs: []config.PoolService{{ID: "a", Priority: 1}, {ID: "c", Priority: 5}}, down: []*member{a}, calls: 3, want: "acc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range []*member{a, b, c} {
				m.status.Store(200)
			}
			for _, m := range tc.down {
				m.status.Store(500)
			}
			bs, _ := fakeBreakers()
			g := newBackendRig(t, bs, "p", pool("p", tc.svcs...),
				single("a", a.URL, rule5xx(1)), single("b", b.URL, rule5xx(1)), single("c", c.URL, rule5xx(1)))
			var got strings.Builder
			for range tc.calls {
				_, body, _ := g.call()
				got.WriteString(body)
			}
			if got.String() != tc.want {
				t.Fatalf("bodies %q, want %q", got.String(), tc.want)
			}
		})
	}
}

func TestPoolAllOpen(t *testing.T) {
	t.Parallel()
	a, b := newMember(t, "a"), newMember(t, "b")
	a.status.Store(503)
	b.status.Store(503)
	bs, clk := fakeBreakers()
	g := newBackendRig(t, bs, "p", pool("p", config.PoolService{ID: "a"}, config.PoolService{ID: "b"}),
		single("a", a.URL, rule5xx(1)), single("b", b.URL, rule5xx(1)))
	g.call()
	g.call()
	status, body, r := g.call()
	if status != 503 || body != `{ "statusCode": 503, "message": "Service unavailable" }` {
		t.Fatalf("got %d %s", status, body)
	}
	if r.LastError == nil || r.LastError.Reason != reasonCircuitOpen || r.LastError.Source != "set-backend-service" {
		t.Fatalf("LastError %+v", r.LastError)
	}
	if a.hits.Load() != 1 || b.hits.Load() != 1 {
		t.Fatalf("hits a=%d b=%d, want 1 each", a.hits.Load(), b.hits.Load())
	}
	// After tripDuration both are half-open; recovered trials close them.
	clk.add(31 * time.Second)
	a.status.Store(200)
	b.status.Store(200)
	var got strings.Builder
	for range 4 {
		_, body, _ := g.call()
		got.WriteString(body)
	}
	if s := got.String(); strings.Count(s, "a") != 2 || strings.Count(s, "b") != 2 {
		t.Fatalf("after recovery: bodies %q", s)
	}
}

func TestBreakerSingle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rule config.CircuitBreakerRule
		// steps: a status for the backend ("500"), "+30s" to move the
		// clock, and the expected answer after each call ("=503").
		steps []string
	}{
		{
			name:  "count trips, stays open, half-open trial closes",
			rule:  rule5xx(2),
			steps: []string{"500", "=500", "=500", "=503", "+29s", "=503", "+2s", "200", "=200", "=200"},
		},
		{
			name:  "failed trial reopens",
			rule:  rule5xx(1),
			steps: []string{"500", "=500", "=503", "+31s", "=500", "=503", "+31s", "200", "=200"},
		},
		{
			name:  "successes do not count",
			rule:  rule5xx(2),
			steps: []string{"500", "=500", "200", "=200", "=200", "500", "=500", "=503"},
		},
		{
			name:  "failures outside the interval expire",
			rule:  rule5xx(2),
			steps: []string{"500", "=500", "+2m", "=500", "=500", "=503"},
		},
		{
			name: "percentage needs the minimum sample",
			rule: config.CircuitBreakerRule{Name: "p", TripDuration: "PT1M", FailureCondition: config.FailureCondition{
				Percentage: 50, Interval: "PT1M", StatusCodeRanges: []config.StatusCodeRange{{Min: 500, Max: 599}}}},
			steps: []string{"500", "=500", "=500", "=500", "=500", "=500", "200", "=200", "=200", "=200", "=200", "=200", "=503"},
		},
		{
			name: "Retry-After accepted",
			rule: config.CircuitBreakerRule{Name: "ra", TripDuration: "PT10S", AcceptRetryAfter: true, FailureCondition: config.FailureCondition{
				Count: 1, Interval: "PT1M", StatusCodeRanges: []config.StatusCodeRange{{Min: 429, Max: 429}}}},
			steps: []string{"429", "ra=120", "=429", "+1m", "=503", "+61s", "200", "=200"},
		},
		{
			name: "Retry-After ignored without acceptRetryAfter",
			rule: config.CircuitBreakerRule{Name: "ra", TripDuration: "PT10S", FailureCondition: config.FailureCondition{
				Count: 1, Interval: "PT1M", StatusCodeRanges: []config.StatusCodeRange{{Min: 429, Max: 429}}}},
			steps: []string{"429", "ra=120", "=429", "+11s", "200", "=200"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMember(t, "s")
			bs, clk := fakeBreakers()
			g := newBackendRig(t, bs, "s", single("s", m.URL, tc.rule))
			for i, st := range tc.steps {
				switch {
				case strings.HasPrefix(st, "+"):
					d, err := time.ParseDuration(st[1:])
					if err != nil {
						t.Fatal(err)
					}
					clk.add(d)
				case strings.HasPrefix(st, "ra="):
					m.retryAfter.Store(st[3:])
				case strings.HasPrefix(st, "="):
					want, _ := strconv.Atoi(st[1:])
					if got, body, _ := g.call(); got != want {
						t.Fatalf("step %d: status %d (%s), want %d", i, got, body, want)
					}
				default:
					n, _ := strconv.Atoi(st)
					m.status.Store(int32(n))
				}
			}
		})
	}
}

func TestBreakerErrorReasons(t *testing.T) {
	t.Parallel()
	// A closed port: the forward fails with BackendConnectionFailure.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	tests := []struct {
		name    string
		reasons []string
		want    int // third call
	}{
		{name: "listed reason trips", reasons: []string{"backendconnectionfailure"}, want: 503},
		{name: "other reason does not", reasons: []string{"Timeout"}, want: 502},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bs, _ := fakeBreakers()
			rule := config.CircuitBreakerRule{Name: "e", TripDuration: "PT1M", FailureCondition: config.FailureCondition{
				Count: 2, Interval: "PT1M", ErrorReasons: tc.reasons}}
			g := newBackendRig(t, bs, "d", single("d", dead, rule))
			g.call()
			g.call()
			if got, _, _ := g.call(); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
}

func TestBreakerSurvivesReload(t *testing.T) {
	t.Parallel()
	m := newMember(t, "s")
	m.status.Store(500)
	bs, _ := fakeBreakers()
	first := newBackendRig(t, bs, "s", single("s", m.URL, rule5xx(1)))
	first.call()
	tests := []struct {
		name    string
		backend config.Backend
		want    int
	}{
		{name: "unchanged backend keeps its open breaker", backend: single("s", m.URL, rule5xx(1)), want: 503},
		{name: "changed rules start closed", backend: single("s", m.URL, rule5xx(3)), want: 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newBackendRig(t, bs, "s", tc.backend)
			if got, _, _ := g.call(); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
}

func TestBackendIDErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		backends []config.Backend
		want     string
	}{
		{name: "nested pool", backends: []config.Backend{pool("p", config.PoolService{ID: "q"}), pool("q", config.PoolService{ID: "a"}), single("a", "http://a")}, want: "pools cannot nest"},
		{name: "missing member", backends: []config.Backend{pool("p", config.PoolService{ID: "zz"})}, want: "names no backend"},
		{name: "empty pool", backends: []config.Backend{pool("p")}, want: "has no services"},
		{name: "bad interval", backends: []config.Backend{pool("p", config.PoolService{ID: "a"}), single("a", "http://a", config.CircuitBreakerRule{
			TripDuration: "PT1M", FailureCondition: config.FailureCondition{Count: 1, Interval: "1 minute", StatusCodeRanges: []config.StatusCodeRange{{Min: 500, Max: 599}}}})}, want: "interval"},
		{name: "count and percentage", backends: []config.Backend{pool("p", config.PoolService{ID: "a"}), single("a", "http://a", config.CircuitBreakerRule{
			TripDuration: "PT1M", FailureCondition: config.FailureCondition{Count: 1, Percentage: 5, Interval: "PT1M", StatusCodeRanges: []config.StatusCodeRange{{Min: 500, Max: 599}}}})}, want: "exactly one of count and percentage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := NewSet(&config.Snapshot{SchemaVersion: config.SchemaVersion, Backends: tc.backends}, Options{Client: testClient})
			set.Compile(Location{Scope: ScopeAPI, Name: "a"}, `<policies><inbound><set-backend-service backend-id="p" /></inbound><backend><forward-request /></backend><outbound /><on-error /></policies>`)
			err := set.Err()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestPoolConcurrent(t *testing.T) {
	t.Parallel()
	a, b := newMember(t, "a"), newMember(t, "b")
	g := newBackendRig(t, NewBreakers(), "p", pool("p", config.PoolService{ID: "a"}, config.PoolService{ID: "b"}),
		single("a", a.URL, rule5xx(100)), single("b", b.URL))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if st, _, _ := g.call(); st != 200 {
					t.Errorf("status %d", st)
				}
			}
		})
	}
	wg.Wait()
	if a.hits.Load() != 40 || b.hits.Load() != 40 {
		t.Fatalf("hits a=%d b=%d, want 40 each", a.hits.Load(), b.hits.Load())
	}
}
