package credentials

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const sig = "9A1GR1f5WIhFvFmzQG+xyz/kBeu87DWad3tkasUXuvPL+MgzlwUHyg=="

func TestParseGatewayToken(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		gateway string
		expiry  time.Time
		wantErr string
	}{
		{name: "with prefix", in: "GatewayKey gw1&202004210044&" + sig, gateway: "gw1", expiry: time.Date(2020, 4, 21, 0, 44, 0, 0, time.UTC)},
		{name: "without prefix", in: "gw1&203001020304&" + sig, gateway: "gw1", expiry: time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)},
		{name: "surrounding whitespace", in: "  GatewayKey   contosogw&203001020304&" + sig + "\n", gateway: "contosogw", expiry: time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)},
		{name: "raw base64", in: "gw&203001020304&abc", gateway: "gw", expiry: time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)},
		{name: "empty", in: "", wantErr: "empty"},
		{name: "prefix only", in: "GatewayKey ", wantErr: "empty"},
		{name: "two parts", in: "gw1&" + sig, wantErr: "expected 3 parts"},
		{name: "four parts", in: "gw1&203001020304&" + sig + "&x", wantErr: "expected 3 parts"},
		{name: "empty gateway", in: "&203001020304&" + sig, wantErr: "gateway name"},
		{name: "long gateway", in: strings.Repeat("g", 81) + "&203001020304&" + sig, wantErr: "gateway name"},
		{name: "short expiry", in: "gw1&2030010203&" + sig, wantErr: "yyyyMMddHHmm"},
		{name: "bad expiry", in: "gw1&203013450304&" + sig, wantErr: "yyyyMMddHHmm"},
		{name: "empty signature", in: "gw1&203001020304&", wantErr: "signature is empty"},
		{name: "signature not base64", in: "gw1&203001020304&not*base64!", wantErr: "not base64"},
		{name: "inner whitespace", in: "gw1&203001020304&abc def", wantErr: "whitespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := ParseGatewayToken(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("want error containing %q", tt.wantErr)
				}
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("error %T is not *ParseError", err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tt.wantErr)
				}
				if strings.TrimSpace(tt.in) != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
					t.Fatalf("error leaks the token: %q", err)
				}
				if strings.Contains(err.Error(), sig) {
					t.Fatalf("error leaks the signature: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tok.Gateway() != tt.gateway || !tok.Expiry().Equal(tt.expiry) || tok.Expiry().Location() != time.UTC {
				t.Fatalf("got %q %v", tok.Gateway(), tok.Expiry())
			}
			raw := strings.TrimSpace(tt.in)
			raw = strings.TrimSpace(strings.TrimPrefix(raw, "GatewayKey "))
			if got, want := tok.Header(), "GatewayKey "+raw; got != want {
				t.Fatalf("Header() = %q, want %q", got, want)
			}
		})
	}
}

func TestTokenRedaction(t *testing.T) {
	tok, err := ParseGatewayToken("GatewayKey gw1&203001020304&" + sig)
	if err != nil {
		t.Fatal(err)
	}
	holder := struct {
		Token GatewayToken
		Ptr   *GatewayToken
	}{tok, &tok}
	j, err := json.Marshal(holder)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", tok),
		"%+v":  fmt.Sprintf("%+v", tok),
		"%#v":  fmt.Sprintf("%#v", tok),
		"%s":   fmt.Sprintf("%s", tok),
		"%q":   fmt.Sprintf("%q", tok),
		"%x":   fmt.Sprintf("%x", tok),
		"%d":   fmt.Sprintf("%d", tok),
		"%v-s": fmt.Sprintf("%v", holder),
		"%+vs": fmt.Sprintf("%+v", holder),
		"%#vs": fmt.Sprintf("%#v", holder),
		"str":  tok.String(),
		"json": string(j),
	}
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			if strings.Contains(out, sig) || strings.Contains(out, "9A1GR1") {
				t.Fatalf("%s leaks the signature: %s", name, out)
			}
		})
	}
	if !strings.Contains(outputs["json"], `"gateway":"gw1"`) || !strings.Contains(outputs["json"], "[redacted]") {
		t.Fatalf("json = %s", outputs["json"])
	}
	if !strings.Contains(outputs["%v"], "gw1") {
		t.Fatalf("%%v should name the gateway: %s", outputs["%v"])
	}
}

func TestStatus(t *testing.T) {
	tok, err := ParseGatewayToken("gw1&203001020304&" + sig)
	if err != nil {
		t.Fatal(err)
	}
	exp := tok.Expiry()
	tests := []struct {
		name    string
		now     time.Time
		state   State
		seconds int64
	}{
		{name: "30 days left", now: exp.Add(-30 * 24 * time.Hour), state: StateOK, seconds: 30 * 24 * 3600},
		{name: "just over 7 days", now: exp.Add(-ExpiringWithin - time.Second), state: StateOK, seconds: 7*24*3600 + 1},
		{name: "exactly 7 days", now: exp.Add(-ExpiringWithin), state: StateExpiring, seconds: 7 * 24 * 3600},
		{name: "one minute", now: exp.Add(-time.Minute), state: StateExpiring, seconds: 60},
		{name: "at expiry", now: exp, state: StateExpired, seconds: 0},
		{name: "after expiry", now: exp.Add(time.Hour), state: StateExpired, seconds: -3600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tok.Status(tt.now)
			if st.State != tt.state || st.SecondsToExpiry != tt.seconds || !st.ExpiresAt.Equal(exp) {
				t.Fatalf("Status = %+v, want %s %d", st, tt.state, tt.seconds)
			}
		})
	}
}

func TestAuthorizationHeader(t *testing.T) {
	future := time.Now().UTC().Add(48 * time.Hour).Format(ExpiryLayout)
	tests := []struct {
		name    string
		token   string
		want    string
		expired bool
	}{
		{name: "valid", token: "gw1&" + future + "&" + sig, want: "GatewayKey gw1&" + future + "&" + sig},
		{name: "expired", token: "GatewayKey gw1&202004210044&" + sig, expired: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := ParseGatewayToken(tt.token)
			if err != nil {
				t.Fatal(err)
			}
			var c Credential = tok
			got, err := c.AuthorizationHeader(context.Background())
			if tt.expired {
				if !errors.Is(err, ErrCredentialExpired) {
					t.Fatalf("err = %v, want ErrCredentialExpired", err)
				}
				var ee *ExpiredError
				if !errors.As(err, &ee) || !ee.ExpiredAt.Equal(tok.Expiry()) {
					t.Fatalf("err = %#v", err)
				}
				if got != "" || strings.Contains(err.Error(), sig) {
					t.Fatalf("expired token leaked: %q %v", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tok, _ := ParseGatewayToken("gw1&" + future + "&" + sig)
	if _, err := tok.AuthorizationHeader(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
	var zero GatewayToken
	if _, err := zero.AuthorizationHeader(context.Background()); err == nil {
		t.Fatal("zero token must not produce a header")
	}
}
