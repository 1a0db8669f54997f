package policy

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	s := time.Second
	mid := func() float64 { return 0.5 } // random factor 1.0
	tests := []struct {
		name string
		plan retryPlan
		want []time.Duration
	}{
		{name: "fixed", plan: retryPlan{interval: 2 * s}, want: []time.Duration{2 * s, 2 * s, 2 * s}},
		{name: "fixed ignores max-interval without delta", plan: retryPlan{interval: 2 * s, maxInt: s, hasMax: true}, want: []time.Duration{2 * s, 2 * s}},
		{name: "linear", plan: retryPlan{interval: s, delta: 2 * s, hasDelta: true}, want: []time.Duration{s, 3 * s, 5 * s}},
		{name: "exponential, the documented example", plan: retryPlan{interval: 10 * s, delta: 10 * s, maxInt: 100 * s, hasDelta: true, hasMax: true},
			want: []time.Duration{10 * s, 20 * s, 40 * s, 80 * s, 100 * s, 100 * s}},
		{name: "first fast retry", plan: retryPlan{interval: s, delta: s, hasDelta: true, fastFirst: true}, want: []time.Duration{0, 2 * s, 3 * s}},
		{name: "capped", plan: retryPlan{interval: time.Hour}, want: []time.Duration{maxRetryWait}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for i, want := range tc.want {
				if got := tc.plan.delay(i+1, mid); got != want {
					t.Errorf("retry %d waits %v, want %v", i+1, got, want)
				}
			}
		})
	}
	// The random factor stays in 0.8..1.2 of delta.
	p := retryPlan{interval: 0, delta: 10 * s, maxInt: time.Hour, hasDelta: true, hasMax: true}
	if lo, hi := p.delay(2, func() float64 { return 0 }), p.delay(2, func() float64 { return 0.999999 }); lo != 8*s || hi < 11*s || hi > 12*s {
		t.Errorf("retry 2 waits %v..%v, want 8s..12s", lo, hi)
	}
}

// flaky is a Forwarder that answers fails times with 500, then 200; it
// records what every attempt sent.
type flaky struct {
	mu     sync.Mutex
	fails  int
	errs   int // attempts that fail with a Timeout error first
	calls  int
	bodies []string
	xff    []string
}

func (f *flaky) forward(r *Request, _ ForwardOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.bodies = append(f.bodies, string(r.Ctx.Request.Body()))
	// Like proxy.Forwarder, append the client to X-Forwarded-For.
	xff := string(r.Ctx.Request.Header.Peek("X-Forwarded-For"))
	if xff != "" {
		xff += ", "
	}
	xff += "10.0.0.1"
	r.Ctx.Request.Header.Set("X-Forwarded-For", xff)
	f.xff = append(f.xff, xff)
	if f.calls <= f.errs {
		return &Error{Reason: "Timeout", Message: "timed out", Status: 504}
	}
	r.Ctx.Response.Reset()
	r.Ctx.Response.Header.Set("X-Attempt", strings.Repeat("i", f.calls))
	if f.calls <= f.errs+f.fails {
		r.Ctx.Response.SetStatusCode(500)
		r.Ctx.Response.SetBodyString("failed")
		return nil
	}
	r.Ctx.Response.SetStatusCode(200)
	r.Ctx.Response.SetBodyString("ok")
	return nil
}

func TestRetryForward(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		retry      string
		fails      int
		errs       int
		onError    string
		wantCalls  int
		wantStatus int
		wantBody   string
	}{
		{name: "retries until success", retry: `<retry condition="@(context.Response.StatusCode >= 500)" count="3" interval="0">`,
			fails: 2, wantCalls: 3, wantStatus: 200, wantBody: "ok"},
		{name: "count exhausted keeps the last response", retry: `<retry condition="@(context.Response.StatusCode >= 500)" count="2" interval="0" first-fast-retry="true">`,
			fails: 5, wantCalls: 3, wantStatus: 500, wantBody: "failed"},
		{name: "condition false at once", retry: `<retry condition="@(context.Response.StatusCode == 418)" count="5" interval="0">`,
			fails: 5, wantCalls: 1, wantStatus: 500, wantBody: "failed"},
		{name: "literal false", retry: `<retry condition="false" count="5" interval="0">`,
			fails: 5, wantCalls: 1, wantStatus: 500},
		{name: "a failed attempt is retried when the condition says so", retry: `<retry condition="@(context.LastError != null)" count="3" interval="0.01" delta="0.01">`,
			errs: 2, wantCalls: 3, wantStatus: 200, wantBody: "ok"},
		{name: "a failed attempt ends in on-error when not retried", retry: `<retry condition="@(context.Response.StatusCode >= 500)" count="3" interval="0">`,
			errs: 1, onError: `<set-header name="X-Reason"><value>@(context.LastError.Reason)</value></set-header>`, wantCalls: 1, wantStatus: 504},
		{name: "count from an expression", retry: `<retry condition="@(context.Response.StatusCode >= 500)" count="@(1 + 1)" interval="0">`,
			fails: 5, wantCalls: 3, wantStatus: 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &flaky{fails: tc.fails, errs: tc.errs}
			doc := `<policies><inbound /><backend>` + tc.retry + `<forward-request /></retry></backend><outbound /><on-error>` + tc.onError + `</on-error></policies>`
			r := runDoc(t, doc, f.forward, func(r *Request) {
				r.Ctx.Request.Header.SetMethod("POST")
				// A streamed body, as the server hands it over.
				r.Ctx.Request.SetBodyStream(bytes.NewReader([]byte("payload")), len("payload"))
			})
			if f.calls != tc.wantCalls {
				t.Errorf("%d attempts, want %d", f.calls, tc.wantCalls)
			}
			for i, b := range f.bodies {
				if b != "payload" {
					t.Errorf("attempt %d sent body %q", i+1, b)
				}
				if f.xff[i] != "10.0.0.1" {
					t.Errorf("attempt %d sent X-Forwarded-For %q", i+1, f.xff[i])
				}
			}
			if got := r.Ctx.Response.StatusCode(); got != tc.wantStatus {
				t.Errorf("status %d, want %d", got, tc.wantStatus)
			}
			if tc.wantBody != "" && string(r.Ctx.Response.Body()) != tc.wantBody {
				t.Errorf("body %q, want %q", r.Ctx.Response.Body(), tc.wantBody)
			}
			if tc.wantStatus == 200 && string(r.Ctx.Response.Header.Peek("X-Attempt")) != strings.Repeat("i", tc.wantCalls) {
				t.Errorf("the answer is not the last attempt's: X-Attempt %q", r.Ctx.Response.Header.Peek("X-Attempt"))
			}
		})
	}
}

func TestRetrySendRequest(t *testing.T) {
	t.Parallel()
	srv := newSideServer(t)
	doc := `<policies><inbound>
		<retry condition="@(((IResponse)context.Variables["r"]).StatusCode != 200)" count="5" interval="0.01">
			<send-request response-variable-name="r"><set-url>` + srv.URL + `/hit</set-url></send-request>
		</retry>
		<return-response response-variable-name="r" /></inbound><backend /></policies>`
	r := runDoc(t, doc, nil, nil)
	if r.Ctx.Response.StatusCode() != 200 || string(r.Ctx.Response.Body()) != "hit" {
		t.Errorf("answer %d %q", r.Ctx.Response.StatusCode(), r.Ctx.Response.Body())
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.hits != 3 {
		t.Errorf("%d calls, want 3", srv.hits)
	}
}

func TestRetryStopsOnReturnResponse(t *testing.T) {
	t.Parallel()
	r := runDoc(t, `<policies><inbound><retry condition="true" count="5" interval="0">
		<set-header name="X-Trace" exists-action="append"><value>x</value></set-header>
		<return-response><set-status code="203" reason="Stop" /></return-response></retry></inbound><backend /></policies>`, nil, nil)
	if r.Ctx.Response.StatusCode() != 203 || len(r.Ctx.Request.Header.PeekAll("X-Trace")) != 1 {
		t.Errorf("status %d, X-Trace %q", r.Ctx.Response.StatusCode(), r.Ctx.Request.Header.PeekAll("X-Trace"))
	}
}

func TestRetryCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		doc     string
		wantErr string
	}{
		{name: "no condition", doc: `<retry count="1" interval="1" />`, wantErr: "condition is required"},
		{name: "no count", doc: `<retry condition="true" interval="1" />`, wantErr: "count is required"},
		{name: "count too large", doc: `<retry condition="true" count="51" interval="1" />`, wantErr: "from 1 to 50"},
		{name: "no interval", doc: `<retry condition="true" count="1" />`, wantErr: "interval is required"},
		{name: "bad delta", doc: `<retry condition="true" count="1" interval="1" delta="-1" />`, wantErr: "delta"},
		{name: "condition literal", doc: `<retry condition="yes" count="1" interval="1" />`, wantErr: "policy expression"},
		{name: "wait inside", doc: `<retry condition="true" count="1" interval="1"><wait /></retry>`, wantErr: "<wait> cannot be a child of <retry>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set := newSet(t, false)
			set.Compile(Location{Scope: ScopeAPI, Name: "a"}, `<policies><inbound>`+tc.doc+`</inbound></policies>`)
			if err := set.Err(); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}
