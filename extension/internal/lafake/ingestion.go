package lafake

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Ingestion is one TLS server playing the Entra authority (OpenID
// configuration and client-credentials token endpoint) and a data
// collection endpoint of the Logs Ingestion API
// (POST /dataCollectionRules/{rule}/streams/{stream}?api-version=2023-01-01).
type Ingestion struct {
	*httptest.Server
	failures
	store

	Tenant, ClientID, ClientSecret, RuleID string
	Streams                                []string

	mu     sync.Mutex
	tokens map[string]bool
	issued int
}

// IngestionLimit is the documented size limit of one call, for compressed
// and uncompressed data alike.
const IngestionLimit = 1 << 20

// NewIngestion starts the fake for a rule and its declared streams.
func NewIngestion(ruleID string, streams []string, keepRows bool) *Ingestion {
	f := &Ingestion{store: newStore(keepRows), Tenant: "00000000-0000-0000-0000-0000000000aa", ClientID: "11111111-1111-1111-1111-111111111111",
		ClientSecret: "fake-client-secret", RuleID: ruleID, Streams: streams, tokens: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", f.openID)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", f.token)
	mux.HandleFunc("POST /dataCollectionRules/{rule}/streams/{stream}", f.upload)
	f.Server = httptest.NewTLSServer(mux)
	return f
}

// Credential returns a client-secret credential pointed at the fake
// authority (https, instance discovery off, the fake's certificate trusted).
func (f *Ingestion) Credential() (azcore.TokenCredential, error) {
	return azidentity.NewClientSecretCredential(f.Tenant, f.ClientID, f.ClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: *f.credentialOptions(), DisableInstanceDiscovery: true})
}

func (f *Ingestion) credentialOptions() *azcore.ClientOptions {
	return &azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: f.Server.URL},
		Transport: f.Server.Client(),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}
}

// ClientOptions are azlogs client options that trust the fake's
// certificate (no Cloud: azlogs rejects one without its own entry).
func (f *Ingestion) ClientOptions() *azcore.ClientOptions {
	return &azcore.ClientOptions{Transport: f.Server.Client()}
}

// TokensIssued is how many access tokens the authority handed out.
func (f *Ingestion) TokensIssued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issued
}

func (f *Ingestion) openID(w http.ResponseWriter, r *http.Request) {
	base := f.Server.URL + "/" + r.PathValue("tenant")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"token_endpoint":         base + "/oauth2/v2.0/token",
		"issuer":                 base + "/v2.0",
		"authorization_endpoint": base + "/oauth2/v2.0/authorize",
	})
}

func oauthError(w http.ResponseWriter, status int, code, desc string, codes int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": code, "error_description": desc, "error_codes": []int{codes}})
}

func (f *Ingestion) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: malformed form", 900144)
		return
	}
	if r.PathValue("tenant") != f.Tenant {
		oauthError(w, http.StatusBadRequest, "invalid_tenant", "AADSTS90002: Tenant not found.", 90002)
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("client_id") != f.ClientID ||
		r.PostForm.Get("client_secret") != f.ClientSecret {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided.", 7000215)
		return
	}
	// The Go SDK asks for https://monitor.azure.com//.default (double
	// slash): accept any scope naming the monitor audience.
	if !strings.Contains(r.PostForm.Get("scope"), "monitor.azure.com") {
		oauthError(w, http.StatusBadRequest, "invalid_scope", "AADSTS70011: The provided value for scope is not valid.", 70011)
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := "fake-" + hex.EncodeToString(b)
	f.mu.Lock()
	f.tokens[tok] = true
	f.issued++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": 3600, "token_type": "Bearer"})
}

func liError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-ms-error-code", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (f *Ingestion) upload(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4*IngestionLimit))
	a := Attempt{Auth: r.Header.Get("Authorization"), LogType: r.PathValue("stream"), Encoding: r.Header.Get("Content-Encoding"), Bytes: len(body)}
	a.Status, a.Rows = f.checkUpload(w, r, body)
	f.record(a)
}

func (f *Ingestion) checkUpload(w http.ResponseWriter, r *http.Request, body []byte) (int, int) {
	if r.URL.Query().Get("api-version") != "2023-01-01" {
		liError(w, http.StatusBadRequest, "InvalidApiVersion", "api-version must be 2023-01-01")
		return http.StatusBadRequest, 0
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	known := ok && f.tokens[tok]
	f.mu.Unlock()
	if !known {
		liError(w, http.StatusUnauthorized, "InvalidToken", "The authentication token is missing or invalid.")
		return http.StatusUnauthorized, 0
	}
	if r.PathValue("rule") != f.RuleID {
		liError(w, http.StatusNotFound, "NotFound", "Data collection rule not found.")
		return http.StatusNotFound, 0
	}
	stream := r.PathValue("stream")
	if !slices.Contains(f.Streams, stream) {
		liError(w, http.StatusBadRequest, "InvalidStream", fmt.Sprintf("Stream %q is not declared in the data collection rule.", stream))
		return http.StatusBadRequest, 0
	}
	if status, retryAfter := f.injected(); status != 0 {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		liError(w, status, http.StatusText(status), "injected")
		return status, 0
	}
	if len(body) > IngestionLimit {
		liError(w, http.StatusRequestEntityTooLarge, "ContentLengthLimitExceeded", "Maximum request size is 1 MB.")
		return http.StatusRequestEntityTooLarge, 0
	}
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			liError(w, http.StatusBadRequest, "InvalidContentEncoding", "body is not gzip")
			return http.StatusBadRequest, 0
		}
		body, err = io.ReadAll(io.LimitReader(zr, 4*IngestionLimit))
		if err != nil {
			liError(w, http.StatusBadRequest, "InvalidContentEncoding", "body is not gzip")
			return http.StatusBadRequest, 0
		}
		if len(body) > IngestionLimit {
			liError(w, http.StatusRequestEntityTooLarge, "ContentLengthLimitExceeded", "Maximum request size is 1 MB.")
			return http.StatusRequestEntityTooLarge, 0
		}
	}
	var rows []json.RawMessage
	if err := json.Unmarshal(body, &rows); err != nil {
		liError(w, http.StatusBadRequest, "InvalidPayload", "body must be a JSON array")
		return http.StatusBadRequest, 0
	}
	if err := f.accept(stream, rows); err != nil {
		liError(w, http.StatusBadRequest, "InvalidPayload", err.Error())
		return http.StatusBadRequest, 0
	}
	if f.loseAnswer() {
		liError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "injected after the rows were stored")
		return http.StatusServiceUnavailable, len(rows)
	}
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent, len(rows)
}
