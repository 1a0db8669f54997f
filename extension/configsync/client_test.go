package configsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/credentials"
)

func TestFetch(t *testing.T) {
	httpDate := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		script     []reply
		etag       string
		wait       time.Duration
		maxBody    int64
		wantBody   string
		wantETag   string
		changed    bool
		wantErr    error
		wantStatus int
		wantReqs   int
		// minSleeps are lower bounds of each recorded backoff sleep.
		minSleeps []time.Duration
	}{
		{name: "200 first sync", script: []reply{{status: 200, body: goodV1, header: map[string]string{"ETag": `"e1"`}}},
			wantBody: goodV1, wantETag: `"e1"`, changed: true, wantReqs: 1},
		{name: "304 with etag and long poll", etag: `"e1"`, wait: 25 * time.Second, script: []reply{{status: 304}},
			wantETag: `"e1"`, wantReqs: 1},
		{name: "401 credential rejected", script: []reply{{status: 401}}, wantErr: ErrCredentialRejected, wantStatus: 401, wantReqs: 1},
		{name: "404 unknown gateway", script: []reply{{status: 404}}, wantErr: ErrUnknownGateway, wantStatus: 404, wantReqs: 1},
		{name: "429 with Retry-After seconds then 200",
			script:   []reply{{status: 429, header: map[string]string{"Retry-After": "7"}}, {status: 200, body: goodV2, header: map[string]string{"ETag": `"e2"`}}},
			wantBody: goodV2, wantETag: `"e2"`, changed: true, wantReqs: 2, minSleeps: []time.Duration{7 * time.Second}},
		{name: "503 with Retry-After date then 304",
			etag:     `"e1"`,
			script:   []reply{{status: 503, header: map[string]string{"Retry-After": httpDate}}, {status: 502}, {status: 304}},
			wantETag: `"e1"`, wantReqs: 3, minSleeps: []time.Duration{80 * time.Second, 0}},
		{name: "503 until retries run out", script: []reply{{status: 503}}, wantStatus: 503, wantReqs: 4,
			minSleeps: []time.Duration{0, 0, 0}},
		{name: "body over the limit", maxBody: 10, script: []reply{{status: 200, body: goodV1}}, wantErr: ErrBodyTooLarge, wantReqs: 1},
		{name: "body at the limit", maxBody: int64(len(goodV1)), script: []reply{{status: 200, body: goodV1}}, wantBody: goodV1, changed: true, wantReqs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.script...)
			tok := testToken(t)
			c, slept := f.client(t, tok, Options{MaxBodyBytes: tt.maxBody, MaxRetries: 3, UserAgent: "apim-agent/test",
				Backoff: Backoff{Base: 10 * time.Millisecond, Max: 40 * time.Millisecond}})
			res, err := c.Fetch(context.Background(), tt.etag, tt.wait)
			switch {
			case tt.wantErr != nil || tt.wantStatus != 0:
				if err == nil {
					t.Fatalf("want error, got %+v", res)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				var se *StatusError
				if tt.wantStatus != 0 && (!errors.As(err, &se) || se.StatusCode != tt.wantStatus) {
					t.Fatalf("err = %#v, want status %d", err, tt.wantStatus)
				}
				if strings.Contains(err.Error(), testSig) || strings.Contains(fmt.Sprintf("%+v", err), testSig) {
					t.Fatalf("error leaks the token: %v", err)
				}
			case err != nil:
				t.Fatal(err)
			default:
				if res.Changed != tt.changed || string(res.Body) != tt.wantBody || res.ETag != tt.wantETag {
					t.Fatalf("got %+v", res)
				}
			}
			reqs := f.configRequests()
			if len(reqs) != tt.wantReqs {
				t.Fatalf("%d requests, want %d", len(reqs), tt.wantReqs)
			}
			for _, r := range reqs {
				if r.method != http.MethodGet || r.path != "/base/gateways/gw1/configuration" {
					t.Fatalf("request %s %s", r.method, r.path)
				}
				if got := r.header.Get("Authorization"); got != tok.Header() {
					t.Fatalf("Authorization = %q", got)
				}
				if got := r.header.Get("If-None-Match"); got != tt.etag {
					t.Fatalf("If-None-Match = %q, want %q", got, tt.etag)
				}
				wantQuery := ""
				if tt.wait > 0 {
					wantQuery = fmt.Sprintf("wait=%d", int(tt.wait.Seconds()))
				}
				if r.query != wantQuery {
					t.Fatalf("query = %q, want %q", r.query, wantQuery)
				}
				if r.header.Get("User-Agent") != "apim-agent/test" || r.header.Get("Accept") != "application/json" {
					t.Fatalf("headers %v", r.header)
				}
			}
			if len(*slept) != len(tt.minSleeps) {
				t.Fatalf("slept %v, want %d sleeps", *slept, len(tt.minSleeps))
			}
			for i, d := range *slept {
				if d < tt.minSleeps[i] {
					t.Fatalf("sleep %d = %v, want >= %v", i, d, tt.minSleeps[i])
				}
			}
		})
	}
}

func TestFetchExpiredCredentialSendsNothing(t *testing.T) {
	f := newFake(t, reply{status: 200, body: goodV1})
	tok, err := credentials.ParseGatewayToken("gw1&202001010000&" + testSig)
	if err != nil {
		t.Fatal(err)
	}
	c, slept := f.client(t, tok, Options{})
	_, err = c.Fetch(context.Background(), "", 0)
	if !errors.Is(err, credentials.ErrCredentialExpired) || IsRetryable(err) {
		t.Fatalf("err = %v", err)
	}
	if n := len(f.configRequests()); n != 0 || len(*slept) != 0 {
		t.Fatalf("expired credential sent %d requests, slept %v", n, *slept)
	}
}

func TestBackoffBounds(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 30 * time.Second, MaxRetryAfter: time.Minute}
	tests := []struct {
		name       string
		attempt    int
		retryAfter time.Duration
		lo, hi     time.Duration
	}{
		{name: "first", attempt: 0, lo: 500 * time.Millisecond, hi: time.Second},
		{name: "third", attempt: 2, lo: 2 * time.Second, hi: 4 * time.Second},
		{name: "capped", attempt: 10, lo: 15 * time.Second, hi: 30 * time.Second},
		{name: "huge attempt", attempt: math.MaxInt32, lo: 15 * time.Second, hi: 30 * time.Second},
		{name: "negative attempt", attempt: -3, lo: 500 * time.Millisecond, hi: time.Second},
		{name: "retry-after above backoff", attempt: 0, retryAfter: 20 * time.Second, lo: 20 * time.Second, hi: 20 * time.Second},
		{name: "retry-after below backoff", attempt: 10, retryAfter: time.Second, lo: 15 * time.Second, hi: 30 * time.Second},
		{name: "retry-after capped", attempt: 0, retryAfter: 24 * time.Hour, lo: time.Minute, hi: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []float64{0, 0.5, 0.999999} {
				b.Rand = func() float64 { return r }
				d := b.Delay(tt.attempt, tt.retryAfter)
				if d < tt.lo || d > tt.hi {
					t.Fatalf("rand %v: Delay = %v, want [%v, %v]", r, d, tt.lo, tt.hi)
				}
			}
		})
	}
	// Default random source stays within bounds and jitters.
	seen := map[time.Duration]bool{}
	for range 200 {
		d := (Backoff{Base: time.Second, Max: 8 * time.Second}).Delay(3, 0)
		if d < 4*time.Second || d > 8*time.Second {
			t.Fatalf("Delay = %v", d)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Fatal("no jitter")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Duration
	}{
		{name: "empty", in: "", want: 0},
		{name: "seconds", in: "120", want: 2 * time.Minute},
		{name: "zero", in: "0", want: 0},
		{name: "negative", in: "-5", want: 0},
		{name: "http date", in: now.Add(45 * time.Second).Format(http.TimeFormat), want: 45 * time.Second},
		{name: "past date", in: now.Add(-time.Hour).Format(http.TimeFormat), want: 0},
		{name: "garbage", in: "soon", want: 0},
		{name: "absurd seconds", in: "99999999999999", want: 365 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseRetryAfter(tt.in, now); got != tt.want {
				t.Fatalf("ParseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestSendHeartbeat(t *testing.T) {
	f := newFake(t)
	tok := testToken(t)
	c, _ := f.client(t, tok, Options{})
	started := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	synced := started.Add(time.Minute)
	exp := tok.ExpiresAt()
	hb := Heartbeat{InstanceID: "pod-1", Hostname: "node-a", Version: "1.2.3", ConfigurationRevision: "v1",
		Status: StatusSynced, StartedAt: started, LastSyncAt: &synced, TokenExpiresAt: &exp}
	if err := c.SendHeartbeat(context.Background(), hb); err != nil {
		t.Fatal(err)
	}
	hbs := f.heartbeatRequests()
	if len(hbs) != 1 {
		t.Fatalf("%d heartbeats", len(hbs))
	}
	r := hbs[0]
	if r.method != http.MethodPost || r.path != "/base/gateways/gw1/heartbeat" || r.header.Get("Content-Type") != "application/json" || r.header.Get("Authorization") != tok.Header() {
		t.Fatalf("request %s %s %v", r.method, r.path, r.header)
	}
	m := decodeHeartbeat(t, r.body)
	want := map[string]any{"instanceId": "pod-1", "hostname": "node-a", "version": "1.2.3", "configurationRevision": "v1",
		"status": "Synced", "startedAt": "2026-05-01T08:00:00Z", "lastSyncAt": "2026-05-01T08:01:00Z", "tokenExpiresAt": exp.Format(time.RFC3339)}
	if len(m) != len(want) {
		t.Fatalf("heartbeat keys %v", m)
	}
	for k, v := range want {
		if m[k] != v {
			t.Fatalf("%s = %v, want %v", k, m[k], v)
		}
	}
	if bytes.Contains(r.body, []byte(testSig)) {
		t.Fatal("heartbeat body carries the token")
	}
}

func TestNewClientValidation(t *testing.T) {
	tok := testToken(t)
	tests := []struct {
		name, uri, gw string
		cred          credentials.Credential
		ok            bool
	}{
		{name: "ok", uri: "https://x.configuration.azure-api.net", gw: "gw1", cred: tok, ok: true},
		{name: "relative", uri: "/foo", gw: "gw1", cred: tok},
		{name: "ftp", uri: "ftp://x", gw: "gw1", cred: tok},
		{name: "userinfo", uri: "https://u:p@x", gw: "gw1", cred: tok},
		{name: "no gateway", uri: "https://x", cred: tok},
		{name: "no credential", uri: "https://x", gw: "gw1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewClient(tt.uri, tt.gw, tt.cred, Options{})
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v", err)
			}
			if err != nil && strings.Contains(err.Error(), "u:p") {
				t.Fatalf("error leaks userinfo: %v", err)
			}
		})
	}
}
