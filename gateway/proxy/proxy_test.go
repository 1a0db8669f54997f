package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestParseTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw      string
		want     Target
		wantBase string
		wantErr  bool
	}{
		{raw: "http://orders.internal", want: Target{Scheme: "http", Addr: "orders.internal:80", Host: "orders.internal"}},
		{raw: "https://orders.internal/api/v1/", want: Target{Scheme: "https", Addr: "orders.internal:443", Host: "orders.internal"}, wantBase: "/api/v1"},
		{raw: "http://10.0.0.1:8080/x%20y", want: Target{Scheme: "http", Addr: "10.0.0.1:8080", Host: "10.0.0.1:8080"}, wantBase: "/x%20y"},
		{raw: "http://[::1]:9000", want: Target{Scheme: "http", Addr: "[::1]:9000", Host: "[::1]:9000"}},
		{raw: "ftp://files", wantErr: true},
		{raw: "/relative", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			t.Parallel()
			got, base, err := ParseTarget(tc.raw)
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil || got != tc.want || base != tc.wantBase {
				t.Errorf("got %+v %q %v, want %+v %q", got, base, err, tc.want, tc.wantBase)
			}
		})
	}
}

func TestReason(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errors.New("connection refused"))}
	tests := []struct {
		err        error
		wantReason string
		wantStatus int
	}{
		{fasthttp.ErrTimeout, ReasonTimeout, 504},
		{fmt.Errorf("wrapped: %w", fasthttp.ErrTimeout), ReasonTimeout, 504},
		{os.ErrDeadlineExceeded, ReasonTimeout, 504},
		{context.DeadlineExceeded, ReasonTimeout, 504},
		{fasthttp.ErrDialTimeout, ReasonConnectionFailure, 502},
		{refused, ReasonConnectionFailure, 502},
		{fasthttp.ErrConnectionClosed, ReasonConnectionFailure, 502},
		{fasthttp.ErrNoFreeConns, ReasonConnectionFailure, 502},
	}
	for _, tc := range tests {
		reason, status := Reason(tc.err)
		if reason != tc.wantReason || status != tc.wantStatus {
			t.Errorf("%v: %s %d, want %s %d", tc.err, reason, status, tc.wantReason, tc.wantStatus)
		}
	}
}

func TestStripHopByHop(t *testing.T) {
	t.Parallel()
	var req fasthttp.Request
	for _, kv := range [][2]string{
		{"Connection", "close, X-Session-Hint ,  X-Other"},
		{"X-Session-Hint", "a"}, {"X-Other", "b"}, {"Keep-Alive", "timeout=5"}, {"Proxy-Connection", "keep-alive"},
		{"Proxy-Authorization", "Basic x"}, {"Te", "trailers"}, {"Trailer", "X-T"}, {"Upgrade", "h2c"},
		{"X-Kept", "yes"}, {"Authorization", "Bearer kept"},
	} {
		req.Header.Set(kv[0], kv[1])
	}
	var f Forwarder
	f.stripHopByHop(&req.Header)
	for _, gone := range []string{"Connection", "X-Session-Hint", "X-Other", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Te", "Trailer", "Upgrade"} {
		if v := req.Header.Peek(gone); v != nil {
			t.Errorf("%s still present: %q", gone, v)
		}
	}
	for _, kept := range []string{"X-Kept", "Authorization"} {
		if req.Header.Peek(kept) == nil {
			t.Errorf("%s removed", kept)
		}
	}
}

func TestAppendIP(t *testing.T) {
	t.Parallel()
	for _, ip := range []string{"127.0.0.1", "10.200.3.45", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::1"} {
		if got := string(AppendIP(nil, net.ParseIP(ip))); got != ip {
			t.Errorf("AppendIP(%s) = %s", ip, got)
		}
	}
}

func TestPoolKeepsClients(t *testing.T) {
	t.Parallel()
	p := NewPool(Options{})
	a := Target{Scheme: "http", Addr: "a:80", Host: "a"}
	b := Target{Scheme: "https", Addr: "b:443", Host: "b"}
	ca, cb := p.Client(a), p.Client(b)
	if p.Client(a) != ca {
		t.Error("same target, new client")
	}
	if !cb.IsTLS || cb.TLSConfig.ServerName != "b" || cb.TLSConfig.MinVersion != 0x0303 {
		t.Errorf("https client: tls %v, config %+v", cb.IsTLS, cb.TLSConfig)
	}
	if ca.MaxIdemponentCallAttempts != 1 {
		t.Error("transport retries are on; the retry policy owns retries")
	}
	p.Retain(map[Target]bool{a: true})
	if p.Len() != 1 || p.Client(a) != ca {
		t.Error("Retain dropped a kept client")
	}
	if p.Client(b) == cb {
		t.Error("Retain kept a dropped client")
	}
}

func BenchmarkStripHopByHop(b *testing.B) {
	var req fasthttp.Request
	req.Header.SetMethod("GET")
	req.SetRequestURI("/orders/42")
	for _, kv := range [][2]string{{"Host", "api.contoso.com"}, {"User-Agent", "client/1.0"}, {"Accept", "*/*"},
		{"Ocp-Apim-Subscription-Key", "k"}, {"X-Request-Id", "abc"}} {
		req.Header.Set(kv[0], kv[1])
	}
	var f Forwarder
	b.ReportAllocs()
	for b.Loop() {
		f.stripHopByHop(&req.Header)
	}
}
