// Package credentials provides the credential the agent presents to the
// configuration endpoint, one per process, swapped live when the settings
// change (Provider):
//   - GatewayToken: the APIM gateway access token ("GatewayKey
//     <gateway>&<yyyyMMddHHmm>&<signature>"), optionally renewed through ARM
//     generateToken and written back to its Secret (Rotator);
//   - AzureAdApp and WorkloadIdentity: azidentity credentials (client secret,
//     certificate, federated service account token) for tokenAudience;
//   - ExtensionIdentity: the Arc extension's managed identity, obtained
//     through an AzureClusterIdentityRequest.
//
// Secrets never leave through fmt, encoding/json, zerolog or error text.
package credentials

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Scheme is the Authorization scheme of a gateway token.
const Scheme = "GatewayKey"

// ExpiryLayout is the Go layout of the token's expiry segment (yyyyMMddHHmm, UTC).
const ExpiryLayout = "200601021504"

// ExpiringWithin is how close to its expiry a token is reported as expiring
// (Azure Advisor's ShgwGatewayTokenNearExpiry threshold).
const ExpiringWithin = 7 * 24 * time.Hour

// maxGatewayName is APIM's limit on a gateway id.
const maxGatewayName = 80

const redacted = "[redacted]"

// Credential is what the configuration client needs: the value of the
// Authorization header for the next request.
type Credential interface {
	AuthorizationHeader(ctx context.Context) (string, error)
}

// ErrCredentialExpired is returned (wrapped in an *ExpiredError) by a
// credential that has expired: sending it would only earn a 401.
var ErrCredentialExpired = errors.New("credential expired")

// ExpiredError reports an expired credential and when it expired.
type ExpiredError struct {
	ExpiredAt time.Time
}

func (e *ExpiredError) Error() string {
	return "gateway token expired at " + e.ExpiredAt.UTC().Format(time.RFC3339) + "; generate a new one and update gateway.auth.token"
}

// Unwrap makes errors.Is(err, ErrCredentialExpired) true.
func (e *ExpiredError) Unwrap() error { return ErrCredentialExpired }

// ParseError reports a malformed gateway token. It never contains the token.
type ParseError struct {
	Reason string
}

func (e *ParseError) Error() string { return "invalid gateway token: " + e.Reason }

// GatewayToken is a parsed gateway access token. The zero value is not a
// valid token.
type GatewayToken struct {
	gateway string
	expiry  time.Time
	token   string // "<gateway>&<expiry>&<signature>", without the scheme
}

// ParseGatewayToken parses "GatewayKey <gateway>&<yyyyMMddHHmm>&<signature>";
// the "GatewayKey " prefix is optional, the expiry is UTC and the signature
// is base64. Errors describe what is wrong without quoting the token.
func ParseGatewayToken(s string) (GatewayToken, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, Scheme) {
		s = ""
	}
	if len(s) > len(Scheme) && strings.EqualFold(s[:len(Scheme)], Scheme) && (s[len(Scheme)] == ' ' || s[len(Scheme)] == '\t') {
		s = strings.TrimSpace(s[len(Scheme)+1:])
	}
	if s == "" {
		return GatewayToken{}, &ParseError{Reason: "empty"}
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return GatewayToken{}, &ParseError{Reason: "contains whitespace (expected GatewayKey <gateway>&<yyyyMMddHHmm>&<signature>)"}
	}
	parts := strings.Split(s, "&")
	if len(parts) != 3 {
		return GatewayToken{}, &ParseError{Reason: fmt.Sprintf("expected 3 parts separated by '&' (<gateway>&<yyyyMMddHHmm>&<signature>), found %d", len(parts))}
	}
	gw, exp, sig := parts[0], parts[1], parts[2]
	if gw == "" || len(gw) > maxGatewayName {
		return GatewayToken{}, &ParseError{Reason: fmt.Sprintf("gateway name must be 1 to %d characters", maxGatewayName)}
	}
	if len(exp) != len(ExpiryLayout) {
		return GatewayToken{}, &ParseError{Reason: "expiry must be yyyyMMddHHmm (12 digits, UTC)"}
	}
	expiry, err := time.ParseInLocation(ExpiryLayout, exp, time.UTC)
	if err != nil {
		return GatewayToken{}, &ParseError{Reason: "expiry must be yyyyMMddHHmm (12 digits, UTC)"}
	}
	if sig == "" {
		return GatewayToken{}, &ParseError{Reason: "signature is empty"}
	}
	if _, err := base64.StdEncoding.DecodeString(sig); err != nil {
		if _, err2 := base64.RawStdEncoding.DecodeString(sig); err2 != nil {
			return GatewayToken{}, &ParseError{Reason: "signature is not base64"}
		}
	}
	return GatewayToken{gateway: gw, expiry: expiry, token: s}, nil
}

// Gateway returns the gateway name the token was issued for.
func (t GatewayToken) Gateway() string { return t.gateway }

// Expiry returns when the token expires (UTC).
func (t GatewayToken) Expiry() time.Time { return t.expiry }

// ExpiresAt returns when the token expires; the heartbeat reports it.
func (t GatewayToken) ExpiresAt() time.Time { return t.expiry }

// IsZero reports whether t is the zero value (no token).
func (t GatewayToken) IsZero() bool { return t.token == "" }

// Header returns the Authorization header value, "GatewayKey <token>".
// This is the only way to get at the secret.
func (t GatewayToken) Header() string { return Scheme + " " + t.token }

// AuthorizationHeader implements Credential. An expired token returns an
// *ExpiredError (errors.Is ErrCredentialExpired) instead of the header.
func (t GatewayToken) AuthorizationHeader(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if t.token == "" {
		return "", &ParseError{Reason: "empty"}
	}
	if !time.Now().Before(t.expiry) {
		return "", &ExpiredError{ExpiredAt: t.expiry}
	}
	return t.Header(), nil
}

// String describes the token without its signature.
func (t GatewayToken) String() string {
	if t.token == "" {
		return ""
	}
	return Scheme + " " + t.gateway + "&" + t.expiry.Format(ExpiryLayout) + "&" + redacted
}

// GoString keeps %#v from printing the signature.
func (t GatewayToken) GoString() string { return t.String() }

// Format keeps every fmt verb from printing the signature.
func (t GatewayToken) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(t.String())) }

// MarshalJSON writes the gateway and expiry, never the signature.
func (t GatewayToken) MarshalJSON() ([]byte, error) {
	if t.token == "" {
		return []byte("null"), nil
	}
	return json.Marshal(struct {
		Gateway   string    `json:"gateway"`
		ExpiresAt time.Time `json:"expiresAt"`
		Token     string    `json:"token"`
	}{t.gateway, t.expiry, redacted})
}

// State is a token's lifecycle state.
type State string

// Token states.
const (
	StateOK       State = "ok"
	StateExpiring State = "expiring"
	StateExpired  State = "expired"
)

// TokenStatus is a token's state at a point in time.
type TokenStatus struct {
	State State `json:"state"`
	// SecondsToExpiry is negative once the token has expired.
	SecondsToExpiry int64     `json:"secondsToExpiry"`
	ExpiresAt       time.Time `json:"expiresAt"`
}

// Status reports the token's state at now: expired at or after the expiry,
// expiring within ExpiringWithin of it, ok otherwise.
func (t GatewayToken) Status(now time.Time) TokenStatus {
	left := t.expiry.Sub(now)
	st := TokenStatus{SecondsToExpiry: int64(left / time.Second), ExpiresAt: t.expiry}
	switch {
	case left <= 0:
		st.State = StateExpired
	case left <= ExpiringWithin:
		st.State = StateExpiring
	default:
		st.State = StateOK
	}
	return st
}
