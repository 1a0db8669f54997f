package azurefake

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ManagementHosts are ARM's hosts in the public, US Government and China
// clouds; the fake answers on each.
var ManagementHosts = []string{"management.azure.com", "management.usgovcloudapi.net", "management.chinacloudapi.cn"}

// DefaultARMAudience is the token audience ARM accepts in the public cloud
// (azcore requests "https://management.azure.com/.default").
const DefaultARMAudience = "https://management.azure.com"

// MaxTokenExpiry is generateToken's limit on the requested expiry.
const MaxTokenExpiry = 30 * 24 * time.Hour

// GenerateTokenRequest is one generateToken call the fake answered.
type GenerateTokenRequest struct {
	Host       string
	ResourceID string
	APIVersion string
	ClientID   string // from the bearer token
	KeyType    string
	Expiry     time.Time
	StatusCode int
	Token      string // the token returned (tests compare; never logged)
}

// ARM is a fake Azure Resource Manager serving the APIM gateway
// generateToken action (POST .../service/{service}/gateways/{gateway}/
// generateToken?api-version=...), authorised by Bearer tokens from an Entra
// fake.
type ARM struct {
	// URL is the https endpoint, e.g. https://127.0.0.1:40322.
	URL string
	// Audience is the token audience required (default DefaultARMAudience).
	Audience string

	entra *Entra

	mu       sync.Mutex
	gateways map[string]*fakeGateway // lower-cased resource id
	allowed  map[string]bool         // client ids allowed to call; empty: all
	failures []int                   // statuses to answer next, in order
	requests []GenerateTokenRequest
}

type fakeGateway struct {
	id        string
	primary   []byte
	secondary []byte
}

var generateTokenPath = regexp.MustCompile(`^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.ApiManagement/service/([^/]+)/gateways/([^/]+)/generateToken$`)

// NewARM starts a fake ARM that trusts tokens from entra and shares its
// network (same CA, same client).
func NewARM(t testing.TB, entra *Entra) *ARM {
	t.Helper()
	a := &ARM{entra: entra, Audience: DefaultARMAudience, gateways: map[string]*fakeGateway{}, allowed: map[string]bool{}}
	a.URL = entra.net.serve(t, http.HandlerFunc(a.serveHTTP), ManagementHosts).URL
	return a
}

// Client returns the HTTP client that reaches the fakes (same as Entra's).
func (a *ARM) Client() *http.Client { return a.entra.net.client }

// AddGateway registers a self-hosted gateway with fresh primary and
// secondary keys and returns its ARM resource id.
func (a *ARM) AddGateway(subscription, resourceGroup, service, gateway string) string {
	id := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ApiManagement/service/%s/gateways/%s", subscription, resourceGroup, service, gateway)
	g := &fakeGateway{id: id, primary: make([]byte, 64), secondary: make([]byte, 64)}
	_, _ = rand.Read(g.primary)
	_, _ = rand.Read(g.secondary)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gateways[strings.ToLower(id)] = g
	return id
}

// Allow restricts generateToken to the given client ids (role assignment);
// without a call every token from the Entra fake with the ARM audience works.
func (a *ARM) Allow(clientIDs ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range clientIDs {
		a.allowed[c] = true
	}
}

// FailNext makes the next len(statuses) calls answer those statuses with an
// ARM error body (429 and 5xx carry Retry-After: 0).
func (a *ARM) FailNext(statuses ...int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failures = append(a.failures, statuses...)
}

// Requests returns the generateToken calls so far.
func (a *ARM) Requests() []GenerateTokenRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.requests)
}

// SignToken builds the token generateToken returns for gateway, valid until
// expiry: "<gateway>&<yyyyMMddHHmm>&<base64 HMAC-SHA512 signature>".
func (a *ARM) SignToken(resourceID, keyType string, expiry time.Time) (string, error) {
	a.mu.Lock()
	g := a.gateways[strings.ToLower(resourceID)]
	a.mu.Unlock()
	if g == nil {
		return "", fmt.Errorf("azurefake: unknown gateway %s", resourceID)
	}
	key := g.primary
	if keyType == "secondary" {
		key = g.secondary
	}
	name := resourceID[strings.LastIndex(resourceID, "/")+1:]
	exp := expiry.UTC().Format("200601021504")
	mac := hmac.New(sha512.New, key)
	mac.Write([]byte(name + "\n" + exp))
	return name + "&" + exp + "&" + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

func armError(w http.ResponseWriter, status int, code, msg string) {
	if status == http.StatusTooManyRequests || status >= 500 {
		w.Header().Set("Retry-After", "0")
	}
	w.Header().Set("x-ms-failure-cause", "gateway")
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func (a *ARM) serveHTTP(w http.ResponseWriter, r *http.Request) {
	m := generateTokenPath.FindStringSubmatch(r.URL.Path)
	if m == nil || r.Method != http.MethodPost {
		armError(w, http.StatusNotFound, "NoRegisteredProviderFound", "No registered resource provider found for location and API version / operation "+r.Method+" "+r.URL.Path)
		return
	}
	rec := GenerateTokenRequest{Host: r.Host, ResourceID: strings.TrimSuffix(r.URL.Path, "/generateToken"), APIVersion: r.URL.Query().Get("api-version")}
	done := func(status int) {
		rec.StatusCode = status
		a.mu.Lock()
		a.requests = append(a.requests, rec)
		a.mu.Unlock()
	}
	if rec.APIVersion == "" {
		done(http.StatusBadRequest)
		armError(w, http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return
	}
	auth := r.Header.Get("Authorization")
	bearer, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		done(http.StatusUnauthorized)
		armError(w, http.StatusUnauthorized, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
		return
	}
	claims, err := a.entra.Verify(bearer, a.Audience)
	if err != nil {
		done(http.StatusUnauthorized)
		armError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
		return
	}
	rec.ClientID = claims.ClientID
	a.mu.Lock()
	g := a.gateways[strings.ToLower(rec.ResourceID)]
	denied := len(a.allowed) > 0 && !a.allowed[claims.ClientID]
	var injected int
	if len(a.failures) > 0 {
		injected, a.failures = a.failures[0], a.failures[1:]
	}
	a.mu.Unlock()
	switch {
	case denied:
		done(http.StatusForbidden)
		armError(w, http.StatusForbidden, "AuthorizationFailed", fmt.Sprintf("The client '%s' with object id '%s' does not have authorization to perform action 'Microsoft.ApiManagement/service/gateways/generateToken/action' over scope '%s' or the scope is invalid.", claims.ClientID, claims.ClientID, rec.ResourceID))
		return
	case injected != 0:
		done(injected)
		armError(w, injected, "ServiceUnavailable", "The service is temporarily unavailable.")
		return
	case g == nil:
		done(http.StatusNotFound)
		armError(w, http.StatusNotFound, "ResourceNotFound", "Gateway not found.")
		return
	}
	var body struct {
		KeyType string `json:"keyType"`
		Expiry  string `json:"expiry"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&body); err != nil {
		done(http.StatusBadRequest)
		armError(w, http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized.")
		return
	}
	rec.KeyType = body.KeyType
	if body.KeyType != "primary" && body.KeyType != "secondary" {
		done(http.StatusBadRequest)
		armError(w, http.StatusBadRequest, "ValidationError", "keyType must be primary or secondary.")
		return
	}
	exp, err := time.Parse(time.RFC3339, body.Expiry)
	if err != nil {
		done(http.StatusBadRequest)
		armError(w, http.StatusBadRequest, "ValidationError", "expiry must be an ISO 8601 date-time.")
		return
	}
	rec.Expiry = exp
	if now := time.Now(); !exp.After(now) || exp.Sub(now) > MaxTokenExpiry+time.Minute {
		done(http.StatusBadRequest)
		armError(w, http.StatusBadRequest, "ValidationError", "Maximum token expiry time is set to 30 days.")
		return
	}
	tok, err := a.SignToken(g.id, body.KeyType, exp)
	if err != nil {
		done(http.StatusInternalServerError)
		armError(w, http.StatusInternalServerError, "InternalServerError", "signing failed")
		return
	}
	rec.Token = tok
	done(http.StatusOK)
	writeJSON(w, http.StatusOK, map[string]any{"value": tok})
}
