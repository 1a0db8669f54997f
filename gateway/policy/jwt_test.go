package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/expr"
)

var (
	testKeysOnce sync.Once
	testRSA      *rsa.PrivateKey
	testRSA2     *rsa.PrivateKey
	testEC       *ecdsa.PrivateKey
	testHMAC     = []byte("0123456789abcdef0123456789abcdef")
)

func testKeys(t *testing.T) {
	t.Helper()
	testKeysOnce.Do(func() {
		var err error
		if testRSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if testRSA2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if testEC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, k *rsa.PrivateKey) map[string]any {
	return map[string]any{"kty": "RSA", "use": "sig", "kid": kid, "n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PrivateKey) map[string]any {
	return map[string]any{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64u(k.X.FillBytes(make([]byte, 32))), "y": b64u(k.Y.FillBytes(make([]byte, 32)))}
}

// mint signs claims; kid "" leaves it out.
func mint(t *testing.T, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(mods ...func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"iss": "https://issuer.test/", "aud": "api://gw", "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix(), "sub": "alice"}
	for _, m := range mods {
		m(c)
	}
	return c
}

// idp is an OpenID provider on a TLS test server with a replaceable key set.
type idp struct {
	srv     *httptest.Server
	mu      sync.Mutex
	keys    []map[string]any
	fetches atomic.Int32
}

func newIDP(t *testing.T, keys ...map[string]any) *idp {
	t.Helper()
	p := &idp{keys: keys}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": "https://issuer.test/", "jwks_uri": p.srv.URL + "/keys"})
		case "/keys":
			p.fetches.Add(1)
			p.mu.Lock()
			defer p.mu.Unlock()
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": p.keys})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) setKeys(keys ...map[string]any) {
	p.mu.Lock()
	p.keys = keys
	p.mu.Unlock()
}

func (p *idp) configURL() string { return p.srv.URL + "/.well-known/openid-configuration" }

// testClock is a provider clock the test moves.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func jwtSet(p *idp) *Set {
	var client HTTPDoer
	if p != nil {
		client = p.srv.Client()
	}
	return NewSet(&config.Snapshot{SchemaVersion: config.SchemaVersion}, Options{HTTPClient: client})
}

// callJWT runs doc's inbound on a request with headers; it returns the
// request and whether the backend was reached.
func callJWT(t *testing.T, p *Pipeline, headers ...string) (*Request, bool) {
	t.Helper()
	ctx := httpCall("GET", headers...)
	calls := 0
	r := &Request{Ctx: ctx, Forward: backend(&calls)}
	if q := ctx.Request.URI().QueryString(); len(q) > 0 {
		r.Query = append(r.Query, q...)
	}
	p.Run(r)
	return r, calls > 0
}

func TestValidateJWT(t *testing.T) {
	t.Parallel()
	testKeys(t)
	provider := newIDP(t, rsaJWK("r1", testRSA), ecJWK("e1", testEC))
	pubDER, err := x509.MarshalPKIXPublicKey(&testRSA.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	nE := `n="` + b64u(testRSA.N.Bytes()) + `" e="AQAB"`
	oidc := `<openid-config url="` + provider.configURL() + `" />`
	hmacKey := `<issuer-signing-keys><key>` + base64.StdEncoding.EncodeToString(testHMAC) + `</key></issuer-signing-keys>`
	aud := `<audiences><audience>api://gw</audience></audiences>`
	iss := `<issuers><issuer>https://issuer.test/</issuer></issuers>`
	rs := func(c jwt.MapClaims) string { return mint(t, jwt.SigningMethodRS256, testRSA, "r1", c) }
	hs := func(c jwt.MapClaims) string { return mint(t, jwt.SigningMethodHS256, testHMAC, "", c) }
	past := func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-30 * time.Second).Unix() }
	future := func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(30 * time.Second).Unix() }
	noneTok := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	tests := []struct {
		name    string
		attrs   string // extra validate-jwt attributes
		body    string // validate-jwt children
		headers []string
		reason  string // "" for success
		status  int
		message string
	}{
		{name: "RS256 from openid-config", body: oidc + aud + iss, headers: []string{"Authorization: Bearer " + rs(claims())}},
		{name: "PS512 from openid-config", body: oidc, headers: []string{"Authorization: Bearer " + mint(t, jwt.SigningMethodPS512, testRSA, "r1", claims())}},
		{name: "ES256 from openid-config", body: oidc, headers: []string{"Authorization: Bearer " + mint(t, jwt.SigningMethodES256, testEC, "e1", claims())}},
		{name: "RS384 with n and e", body: `<issuer-signing-keys><key ` + nE + ` /></issuer-signing-keys>`, headers: []string{"Authorization: Bearer " + mint(t, jwt.SigningMethodRS384, testRSA, "", claims())}},
		{name: "HS512 symmetric", body: hmacKey, headers: []string{"Authorization: Bearer " + mint(t, jwt.SigningMethodHS512, testHMAC, "", claims())}},
		{name: "custom header, no scheme", attrs: `header-name="X-Token"`, body: hmacKey, headers: []string{"X-Token: " + hs(claims())}},
		{name: "query parameter", attrs: `query-parameter-name="access_token"`, body: hmacKey, headers: []string{"X-Ignored: 1"}},
		{name: "missing token", body: hmacKey, reason: "TokenNotPresent", message: "JWT not present."},
		{name: "wrong scheme", attrs: `require-scheme="Bearer"`, body: hmacKey, headers: []string{"Authorization: Basic " + hs(claims())}, reason: "TokenNotPresent", message: "JWT not present."},
		{name: "malformed", body: hmacKey, headers: []string{"Authorization: Bearer not.a.jwt"}, reason: "JwtInvalid"},
		{name: "encrypted (five parts)", body: hmacKey, headers: []string{"Authorization: Bearer a.b.c.d.e"}, reason: "JwtInvalid"},
		{name: "bad signature", body: hmacKey, headers: []string{"Authorization: Bearer " + mint(t, jwt.SigningMethodHS256, []byte("another key, another key, 32 b!"), "", claims())}, reason: "TokenSignatureInvalid"},
		{name: "expired", body: hmacKey, headers: []string{"Authorization: Bearer " + hs(claims(past))}, reason: "TokenExpired"},
		{name: "expired within clock-skew", attrs: `clock-skew="60"`, body: hmacKey, headers: []string{"Authorization: Bearer " + hs(claims(past))}},
		{name: "not yet valid", body: hmacKey, headers: []string{"Authorization: Bearer " + hs(claims(future))}, reason: "JwtInvalid"},
		{name: "not yet valid within clock-skew", attrs: `clock-skew="60"`, body: hmacKey, headers: []string{"Authorization: Bearer " + hs(claims(future))}},
		{name: "no exp", body: hmacKey, headers: []string{"Authorization: Bearer " + hs(claims(func(c jwt.MapClaims) { delete(c, "exp") }))}, reason: "JwtInvalid"},
		{name: "no exp allowed", attrs: `require-expiration-time="false"`, body: hmacKey, headers: []string{"Authorization: Bearer " + hs(claims(func(c jwt.MapClaims) { delete(c, "exp") }))}},
		{name: "wrong audience", body: hmacKey + `<audiences><audience>api://other</audience></audiences>`, headers: []string{"Authorization: Bearer " + hs(claims())}, reason: "TokenAudienceNotAllowed"},
		{name: "audience in a list", body: hmacKey + `<audiences><audience>api://x</audience><audience>api://gw</audience></audiences>`, headers: []string{"Authorization: Bearer " + hs(claims(func(c jwt.MapClaims) { c["aud"] = []string{"api://y", "api://gw"} }))}},
		{name: "audience from an expression", body: hmacKey + `<audiences><audience>@("api://" + "gw")</audience></audiences>`, headers: []string{"Authorization: Bearer " + hs(claims())}},
		{name: "audience from an expression, wrong", body: hmacKey + `<audiences><audience>@("api://" + "other")</audience></audiences>`, headers: []string{"Authorization: Bearer " + hs(claims())}, reason: "TokenAudienceNotAllowed"},
		{name: "wrong issuer", body: hmacKey + `<issuers><issuer>https://other/</issuer></issuers>`, headers: []string{"Authorization: Bearer " + hs(claims())}, reason: "TokenIssuerNotAllowed"},
		{name: "issuer from openid-config", body: oidc, headers: []string{"Authorization: Bearer " + rs(claims(func(c jwt.MapClaims) { c["iss"] = "https://evil/" }))}, reason: "TokenIssuerNotAllowed"},
		{name: "missing claim", body: hmacKey + `<required-claims><claim name="roles" /></required-claims>`, headers: []string{"Authorization: Bearer " + hs(claims())}, reason: "TokenClaimNotFound"},
		{name: "claim match all", body: hmacKey + `<required-claims><claim name="roles" match="all"><value>a</value><value>b</value></claim></required-claims>`,
			headers: []string{"Authorization: Bearer " + hs(claims(func(c jwt.MapClaims) { c["roles"] = []string{"b", "a", "c"} }))}},
		{name: "claim match all fails", body: hmacKey + `<required-claims><claim name="roles"><value>a</value><value>d</value></claim></required-claims>`,
			headers: []string{"Authorization: Bearer " + hs(claims(func(c jwt.MapClaims) { c["roles"] = []string{"b", "a"} }))}, reason: "TokenClaimValueNotAllowed"},
		{name: "claim match any with separator", body: hmacKey + `<required-claims><claim name="scp" match="any" separator=" "><value>write</value><value>admin</value></claim></required-claims>`,
			headers: []string{"Authorization: Bearer " + hs(claims(func(c jwt.MapClaims) { c["scp"] = "read write" }))}},
		{name: "claim match any fails", body: hmacKey + `<required-claims><claim name="scp" match="any" separator=" "><value>admin</value></claim></required-claims>`,
			headers: []string{"Authorization: Bearer " + hs(claims(func(c jwt.MapClaims) { c["scp"] = "read write" }))}, reason: "TokenClaimValueNotAllowed"},
		{name: "alg none rejected", body: hmacKey, headers: []string{"Authorization: Bearer " + noneTok}, reason: "TokenSignatureInvalid"},
		{name: "alg none with unsigned tokens allowed", attrs: `require-signed-tokens="false"`, body: hmacKey, headers: []string{"Authorization: Bearer " + noneTok}},
		{name: "HS256 signed with the RSA public key", body: `<issuer-signing-keys><key ` + nE + ` /></issuer-signing-keys>`,
			headers: []string{"Authorization: Bearer " + mint(t, jwt.SigningMethodHS256, pubDER, "", claims())}, reason: "TokenSignatureKeyNotFound"},
		{name: "HS256 with the kid of a JWKS RSA key", body: oidc,
			headers: []string{"Authorization: Bearer " + mint(t, jwt.SigningMethodHS256, pubDER, "r1", claims())}, reason: "TokenSignatureKeyNotFound"},
		{name: "configured status and message", attrs: `failed-validation-httpcode="403" failed-validation-error-message="Unauthorized. Access token is missing or invalid."`,
			body: hmacKey, reason: "TokenNotPresent", status: 403, message: "Unauthorized. Access token is missing or invalid."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			attrs := tc.attrs
			if !strings.Contains(attrs, "-name=") {
				attrs = `header-name="Authorization" ` + attrs
			}
			set := jwtSet(provider)
			doc := compileAPI(t, set, `<policies><inbound><validate-jwt `+attrs+` output-token-variable-name="jwt">`+tc.body+`</validate-jwt></inbound></policies>`)
			headers := tc.headers
			p := Compose(nil, doc)
			var r *Request
			var forwarded bool
			if strings.Contains(attrs, "query-parameter-name") {
				tok := hs(claims())
				ctx := httpCall("GET", headers...)
				ctx.Request.SetRequestURI("/api/thing?access_token=" + tok)
				calls := 0
				r = &Request{Ctx: ctx, Forward: backend(&calls), Query: []byte("access_token=" + tok)}
				p.Run(r)
				forwarded = calls > 0
			} else {
				r, forwarded = callJWT(t, p, headers...)
			}
			if tc.reason == "" {
				if !forwarded || r.LastError != nil {
					t.Fatalf("rejected: %+v, body %s", r.LastError, r.Ctx.Response.Body())
				}
				// The output variable is a Jwt object, as (Jwt) casts expect.
				if v, ok := (exprVars{r}).Get("jwt"); !ok || v.Kind() != expr.KHost {
					t.Errorf("output variable %v (set %v), want a Jwt object", v, ok)
				}
				return
			}
			if forwarded || r.LastError == nil {
				t.Fatalf("accepted, want %s", tc.reason)
			}
			if r.LastError.Reason != tc.reason || r.LastError.Source != "validate-jwt" {
				t.Errorf("LastError %s/%s, want %s", r.LastError.Source, r.LastError.Reason, tc.reason)
			}
			status, msg := tc.status, tc.message
			if status == 0 {
				status = 401
			}
			if msg == "" {
				msg = "Invalid JWT."
			}
			wantBody, _ := json.Marshal(msg)
			if r.Ctx.Response.StatusCode() != status || string(r.Ctx.Response.Body()) != `{ "statusCode": `+itoa(status)+`, "message": `+string(wantBody)+` }` {
				t.Errorf("answer %d %s", r.Ctx.Response.StatusCode(), r.Ctx.Response.Body())
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestValidateJWTKeyRotation: an unknown kid refetches the key set (at
// most once per five minutes), the hourly refresh picks up rotations, and
// a removed key stops validating.
func TestValidateJWTKeyRotation(t *testing.T) {
	t.Parallel()
	testKeys(t)
	provider := newIDP(t, rsaJWK("r1", testRSA))
	set := jwtSet(provider)
	p, err := set.shared().oidcProviderFor(set.opts.HTTPClient, provider.configURL())
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{}
	p.now = clock.now // before the first fetch starts
	doc := compileAPI(t, set, `<policies><inbound><validate-jwt header-name="Authorization"><openid-config url="`+provider.configURL()+`" /></validate-jwt></inbound></policies>`)
	pl := Compose(nil, doc)
	bearer := func(kid string, k *rsa.PrivateKey) string {
		return "Authorization: Bearer " + mint(t, jwt.SigningMethodRS256, k, kid, claims())
	}
	check := func(header, wantReason string) {
		t.Helper()
		r, forwarded := callJWT(t, pl, header)
		switch {
		case wantReason == "" && !forwarded:
			t.Fatalf("rejected: %+v", r.LastError)
		case wantReason != "" && (r.LastError == nil || r.LastError.Reason != wantReason):
			t.Fatalf("LastError %+v, want %s", r.LastError, wantReason)
		}
	}
	check(bearer("r1", testRSA), "")
	if n := provider.fetches.Load(); n != 1 {
		t.Fatalf("%d key set fetches, want 1", n)
	}

	// The provider rotates in r2. Right after the first fetch the refetch
	// is rate-limited.
	provider.setKeys(rsaJWK("r1", testRSA), rsaJWK("r2", testRSA2))
	check(bearer("r2", testRSA2), "TokenSignatureKeyNotFound")
	if n := provider.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1 (rate-limited)", n)
	}
	// Five minutes later the unknown kid refetches and validates.
	clock.advance(oidcMinInterval)
	check(bearer("r2", testRSA2), "")
	if n := provider.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	// Another unknown kid right away: no fetch.
	check(bearer("r3", testRSA2), "TokenSignatureKeyNotFound")
	if n := provider.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}

	// r1 is retired; the hourly refresh runs in the background while the
	// cached set still serves.
	provider.setKeys(rsaJWK("r2", testRSA2))
	clock.advance(oidcRefreshEvery)
	check(bearer("r1", testRSA), "")
	deadline := time.Now().Add(5 * time.Second)
	for provider.fetches.Load() < 3 || p.keys().fetched.Before(clock.now().Add(-time.Minute)) {
		if time.Now().After(deadline) {
			t.Fatal("the scheduled refresh did not happen")
		}
		time.Sleep(5 * time.Millisecond)
	}
	check(bearer("r1", testRSA), "TokenSignatureKeyNotFound")
	check(bearer("r2", testRSA2), "")
}

func TestValidateJWTCompile(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, doc, wantErr, wantWarn string }{
		{name: "no token source", doc: `<validate-jwt />`, wantErr: "exactly one of"},
		{name: "two token sources", doc: `<validate-jwt header-name="a" query-parameter-name="b" />`, wantErr: "exactly one of"},
		{name: "bad status", doc: `<validate-jwt header-name="a" failed-validation-httpcode="x" />`, wantErr: "failed-validation-httpcode"},
		{name: "http openid-config", doc: `<validate-jwt header-name="a"><openid-config url="http://idp/.well-known/openid-configuration" /></validate-jwt>`, wantErr: "https URL"},
		{name: "bad key", doc: `<validate-jwt header-name="a"><issuer-signing-keys><key>***</key></issuer-signing-keys></validate-jwt>`, wantErr: "base64"},
		{name: "n without e", doc: `<validate-jwt header-name="a"><issuer-signing-keys><key n="AQAB" /></issuer-signing-keys></validate-jwt>`, wantErr: "n and e"},
		{name: "bad match", doc: `<validate-jwt header-name="a"><required-claims><claim name="x" match="some" /></required-claims></validate-jwt>`, wantErr: "all or any"},
		{name: "certificate key skipped", doc: `<validate-jwt header-name="a"><issuer-signing-keys><key certificate-id="c" /></issuer-signing-keys></validate-jwt>`, wantWarn: "certificate"},
		{name: "decryption keys", doc: `<validate-jwt header-name="a"><decryption-keys><key>AAAA</key></decryption-keys></validate-jwt>`, wantWarn: "decryption-keys"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set := jwtSet(nil)
			set.Compile(Location{Scope: ScopeAPI, Name: "a"}, `<policies><inbound>`+tc.doc+`</inbound></policies>`)
			err := set.Err()
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if tc.wantWarn != "" {
				var all []string
				for _, w := range set.Warnings {
					all = append(all, w.String())
				}
				if !strings.Contains(strings.Join(all, "\n"), tc.wantWarn) {
					t.Errorf("warnings %v, want %q", all, tc.wantWarn)
				}
			}
		})
	}
}
