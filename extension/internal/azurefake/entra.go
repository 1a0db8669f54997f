package azurefake

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// LoginHosts are the Entra authority hosts of the public, US Government and
// China clouds; the fake answers on each of them, so a credential configured
// for a sovereign cloud by name reaches it.
var LoginHosts = []string{"login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn"}

const (
	clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	fakeKeyID           = "azurefake-signing-key"
)

// TokenRequest is one request the token endpoint answered.
type TokenRequest struct {
	Host       string // authority host the client used
	Tenant     string
	ClientID   string
	Kind       string // "secret", "certificate" or "federated"
	Scope      string // as sent (MSAL appends openid offline_access profile)
	Audience   string // the resource of the .default scope
	StatusCode int
	Error      string // OAuth error code when refused
}

// Claims is what Verify finds in a token the fake issued.
type Claims struct {
	Tenant    string
	ClientID  string
	Audience  string
	ExpiresAt time.Time
}

type app struct {
	secret    string
	cert      *x509.Certificate
	assertion string // federated (workload identity) service account token
}

// Entra is a fake Entra ID authority. Register applications with
// AddSecretApp, AddCertificateApp or AddFederatedApp; the token endpoint
// checks their credentials as Entra does and issues signed JWT access tokens.
type Entra struct {
	// URL is the https authority host, e.g. https://127.0.0.1:40321.
	URL string

	net *network
	key *rsa.PrivateKey

	mu              sync.Mutex
	apps            map[string]*app // tenant + "/" + client id
	lifetime        time.Duration
	refreshIn       time.Duration
	requests        []TokenRequest
	metadataFetches int
}

// NewEntra starts a fake authority that lives as long as the test.
func NewEntra(t testing.TB) *Entra {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("azurefake: signing key: %v", err)
	}
	e := &Entra{net: newNetwork(t), key: key, apps: map[string]*app{}, lifetime: time.Hour}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", e.openIDConfiguration)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", e.token)
	mux.HandleFunc("GET /common/discovery/instance", e.instanceDiscovery)
	e.URL = e.net.serve(t, mux, LoginHosts).URL
	return e
}

// Client returns the HTTP client that trusts the fakes' CA and reaches them
// by address or Azure host name. Use it as azcore.ClientOptions.Transport.
func (e *Entra) Client() *http.Client { return e.net.client }

// CertPool returns the pool holding the fakes' CA.
func (e *Entra) CertPool() *x509.CertPool { return e.net.pool }

// AddSecretApp registers an application that authenticates with a secret.
func (e *Entra) AddSecretApp(tenant, clientID, secret string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.apps[tenant+"/"+clientID] = &app{secret: secret}
}

// AddCertificateApp registers an application that authenticates with a
// certificate: its client assertion must be signed by cert's key.
func (e *Entra) AddCertificateApp(tenant, clientID string, cert *x509.Certificate) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.apps[tenant+"/"+clientID] = &app{cert: cert}
}

// AddFederatedApp registers a workload identity: the client assertion must
// be exactly the service account token assertion.
func (e *Entra) AddFederatedApp(tenant, clientID, assertion string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.apps[tenant+"/"+clientID] = &app{assertion: assertion}
}

// SetTokenLifetime sets expires_in of new tokens (default 1h) and, when
// refreshIn > 0, refresh_in.
func (e *Entra) SetTokenLifetime(lifetime, refreshIn time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lifetime, e.refreshIn = lifetime, refreshIn
}

// TokenRequests returns every token request so far.
func (e *Entra) TokenRequests() []TokenRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.requests)
}

// TokenRequestCount returns how many token requests were answered.
func (e *Entra) TokenRequestCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.requests)
}

// MetadataFetches returns how many times openid-configuration was read.
func (e *Entra) MetadataFetches() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.metadataFetches
}

// Verify checks that token was issued by this fake for audience (any
// audience when empty) and has not expired.
func (e *Entra) Verify(token, audience string) (Claims, error) {
	opts := []jwt.ParserOption{jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired()}
	if audience != "" {
		opts = append(opts, jwt.WithAudience(audience))
	}
	var mc jwt.MapClaims
	_, err := jwt.ParseWithClaims(token, &mc, func(*jwt.Token) (any, error) { return &e.key.PublicKey, nil }, opts...)
	if err != nil {
		return Claims{}, fmt.Errorf("azurefake: token not valid: %w", err)
	}
	c := Claims{}
	c.Tenant, _ = mc["tid"].(string)
	c.ClientID, _ = mc["azp"].(string)
	if aud, err := mc.GetAudience(); err == nil && len(aud) > 0 {
		c.Audience = aud[0]
	}
	if exp, err := mc.GetExpirationTime(); err == nil && exp != nil {
		c.ExpiresAt = exp.Time
	}
	return c, nil
}

// IssueToken mints a token as the token endpoint would, for tests that need
// one without going through a credential.
func (e *Entra) IssueToken(host, tenant, clientID, audience string, lifetime time.Duration) string {
	tok, err := e.sign(host, tenant, clientID, audience, lifetime)
	if err != nil {
		panic("azurefake: signing a token: " + err.Error())
	}
	return tok
}

func (e *Entra) sign(host, tenant, clientID, audience string, lifetime time.Duration) (string, error) {
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"aud": audience,
		"iss": "https://" + host + "/" + tenant + "/v2.0",
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(lifetime).Unix(),
		"tid": tenant,
		"azp": clientID,
		"sub": clientID,
		"oid": clientID,
		"ver": "2.0",
	})
	tok.Header["kid"] = fakeKeyID
	return tok.SignedString(e.key)
}

func authorityBase(r *http.Request) string { return "https://" + r.Host + "/" + r.PathValue("tenant") }

// openIDConfiguration is the tenant metadata MSAL reads first; issuer must
// have the authority's scheme and host.
func (e *Entra) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.metadataFetches++
	e.mu.Unlock()
	base := authorityBase(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"issuer":                                base + "/v2.0",
		"jwks_uri":                              "https://" + r.Host + "/" + r.PathValue("tenant") + "/discovery/v2.0/keys",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"tenant_region_scope":                   "NA",
	})
}

// instanceDiscovery answers MSAL's discovery for clients that route it here;
// credentials normally run with DisableInstanceDiscovery.
func (e *Entra) instanceDiscovery(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": "https://" + host + "/common/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata":                  []any{map[string]any{"preferred_network": host, "preferred_cache": host, "aliases": []string{host}}},
	})
}

// token is the v2.0 token endpoint for the client credentials grant.
func (e *Entra) token(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	rec := TokenRequest{Host: r.Host, Tenant: tenant}
	fail := func(status int, code, desc string, errCode int) {
		rec.StatusCode, rec.Error = status, code
		e.record(rec)
		writeJSON(w, status, map[string]any{
			"error":             code,
			"error_description": desc + "\r\nTrace ID: 00000000-0000-0000-0000-000000000000\r\nCorrelation ID: 00000000-0000-0000-0000-000000000000\r\nTimestamp: " + time.Now().UTC().Format("2006-01-02 15:04:05Z"),
			"error_codes":       []int{errCode},
			"timestamp":         time.Now().UTC().Format("2006-01-02 15:04:05Z"),
			"trace_id":          "00000000-0000-0000-0000-000000000000",
			"correlation_id":    "00000000-0000-0000-0000-000000000000",
		})
	}
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'grant_type'.", 900144)
		return
	}
	rec.ClientID = r.PostForm.Get("client_id")
	rec.Scope = r.PostForm.Get("scope")
	for _, s := range strings.Fields(rec.Scope) {
		if strings.HasSuffix(s, "/.default") {
			rec.Audience = strings.TrimSuffix(s, "/.default")
		}
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		fail(http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type '"+gt+"'.", 70003)
		return
	}
	if rec.Audience == "" {
		fail(http.StatusBadRequest, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", 1002012)
		return
	}
	e.mu.Lock()
	a := e.apps[tenant+"/"+rec.ClientID]
	lifetime, refreshIn := e.lifetime, e.refreshIn
	e.mu.Unlock()
	if a == nil {
		fail(http.StatusBadRequest, "unauthorized_client", fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found in the directory '%s'.", rec.ClientID, tenant), 700016)
		return
	}
	secret := r.PostForm.Get("client_secret")
	assertion := r.PostForm.Get("client_assertion")
	switch {
	case a.secret != "":
		rec.Kind = "secret"
		if secret == "" {
			fail(http.StatusUnauthorized, "invalid_client", "AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.", 7000216)
			return
		}
		if secret != a.secret {
			fail(http.StatusUnauthorized, "invalid_client", fmt.Sprintf("AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", rec.ClientID), 7000215)
			return
		}
	case a.cert != nil:
		rec.Kind = "certificate"
		if err := checkCertificateAssertion(r, assertion, a.cert, authorityBase(r)+"/oauth2/v2.0/token", rec.ClientID); err != nil {
			fail(http.StatusUnauthorized, "invalid_client", "AADSTS700027: Client assertion failed signature validation. "+err.Error(), 700027)
			return
		}
	default:
		rec.Kind = "federated"
		if r.PostForm.Get("client_assertion_type") != clientAssertionType || assertion != a.assertion {
			fail(http.StatusBadRequest, "invalid_client", "AADSTS70021: No matching federated identity record found for presented assertion.", 70021)
			return
		}
	}
	access, err := e.sign(r.Host, tenant, rec.ClientID, rec.Audience, lifetime)
	if err != nil {
		fail(http.StatusInternalServerError, "temporarily_unavailable", "AADSTS50000: There was an error issuing a token.", 50000)
		return
	}
	rec.StatusCode = http.StatusOK
	e.record(rec)
	body := map[string]any{
		"token_type":     "Bearer",
		"expires_in":     int(lifetime / time.Second),
		"ext_expires_in": int(lifetime / time.Second),
		"access_token":   access,
	}
	if refreshIn > 0 {
		body["refresh_in"] = int(refreshIn / time.Second)
	}
	writeJSON(w, http.StatusOK, body)
}

func (e *Entra) record(r TokenRequest) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests = append(e.requests, r)
}

// checkCertificateAssertion verifies an MSAL client assertion: signed by the
// registered certificate's key, x5t#S256 (or x5t) naming that certificate,
// aud the token endpoint, iss and sub the client id, not expired.
func checkCertificateAssertion(r *http.Request, assertion string, cert *x509.Certificate, endpoint, clientID string) error {
	if r.PostForm.Get("client_assertion_type") != clientAssertionType || assertion == "" {
		return errors.New("client_assertion missing")
	}
	var mc jwt.MapClaims
	tok, err := jwt.ParseWithClaims(assertion, &mc, func(*jwt.Token) (any, error) { return cert.PublicKey, nil },
		jwt.WithValidMethods([]string{"PS256", "RS256"}), jwt.WithAudience(endpoint), jwt.WithExpirationRequired(), jwt.WithIssuer(clientID), jwt.WithSubject(clientID))
	if err != nil {
		return err
	}
	sum256 := sha256.Sum256(cert.Raw)
	if x5t, ok := tok.Header["x5t#S256"].(string); ok {
		// RFC 7515 says base64url; MSAL sends standard base64. Entra takes both.
		if x5t != base64.RawURLEncoding.EncodeToString(sum256[:]) && x5t != base64.StdEncoding.EncodeToString(sum256[:]) {
			return errors.New("x5t#S256 does not match the registered certificate")
		}
		return nil
	}
	if _, ok := tok.Header["x5t"].(string); ok {
		return nil // SHA-1 thumbprint (ADFS style); the signature already proved the key
	}
	return errors.New("no certificate thumbprint in the assertion header (x5t#S256), registered " + hex.EncodeToString(sum256[:4]))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
