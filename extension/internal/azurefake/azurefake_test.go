package azurefake_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/internal/azurefake"
)

func postForm(t *testing.T, c *http.Client, u string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// The token endpoint answers with the v2.0 shapes MSAL parses.
func TestEntraWireFormat(t *testing.T) {
	e := azurefake.NewEntra(t)
	e.AddSecretApp("t1", "app", "pw")
	c := e.Client()

	resp, err := c.Get("https://login.microsoftonline.us/t1/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if meta["issuer"] != "https://login.microsoftonline.us/t1/v2.0" || meta["token_endpoint"] != "https://login.microsoftonline.us/t1/oauth2/v2.0/token" || meta["authorization_endpoint"] == nil {
		t.Fatalf("openid-configuration %v", meta)
	}

	status, body := postForm(t, c, e.URL+"/t1/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_secret": {"pw"}, "scope": {"https://azure-api.net/configuration/.default openid offline_access profile"}})
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if status != 200 || !slices.Equal(keys, []string{"access_token", "expires_in", "ext_expires_in", "token_type"}) || body["token_type"] != "Bearer" || body["expires_in"] != float64(3600) {
		t.Fatalf("token response %d %v", status, body)
	}
	claims, err := e.Verify(body["access_token"].(string), "https://azure-api.net/configuration")
	if err != nil || claims.ClientID != "app" || claims.Tenant != "t1" {
		t.Fatalf("Verify: %+v %v", claims, err)
	}
	if _, err := e.Verify(body["access_token"].(string), "https://management.azure.com"); err == nil {
		t.Fatal("Verify accepted a token for another audience")
	}

	status, body = postForm(t, c, e.URL+"/t1/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_secret": {"nope"}, "scope": {"x/.default"}})
	if status != 401 || body["error"] != "invalid_client" || !strings.HasPrefix(body["error_description"].(string), "AADSTS7000215:") || strings.Contains(body["error_description"].(string), "nope") {
		t.Fatalf("bad secret: %d %v", status, body)
	}
	status, body = postForm(t, c, e.URL+"/t1/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_secret": {"pw"}, "scope": {"https://azure-api.net/configuration"}})
	if status != 400 || body["error"] != "invalid_scope" {
		t.Fatalf("scope without /.default: %d %v", status, body)
	}
	if n := e.TokenRequestCount(); n != 3 {
		t.Fatalf("TokenRequestCount %d, want 3", n)
	}

	// Anything that is not a fake is unreachable through the client.
	if _, err := c.Get("https://example.com/"); err == nil || !strings.Contains(err.Error(), "no fake serves example.com") {
		t.Fatalf("request to example.com: %v", err)
	}
}

func TestARMGenerateToken(t *testing.T) {
	e := azurefake.NewEntra(t)
	a := azurefake.NewARM(t, e)
	id := a.AddGateway("sub", "rg", "svc", "gw1")
	good := e.IssueToken("login.microsoftonline.com", "t1", "app", azurefake.DefaultARMAudience, time.Hour)
	wrongAud := e.IssueToken("login.microsoftonline.com", "t1", "app", "https://azure-api.net/configuration", time.Hour)
	in := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339) }
	tests := []struct {
		name, path, auth, body string
		status                 int
		code                   string
	}{
		{name: "ok", path: id + "/generateToken?api-version=2024-05-01", auth: good, body: `{"keyType":"primary","expiry":"` + in(24*time.Hour) + `"}`, status: 200},
		{name: "no api-version", path: id + "/generateToken", auth: good, body: `{"keyType":"primary","expiry":"` + in(time.Hour) + `"}`, status: 400, code: "MissingApiVersionParameter"},
		{name: "no token", path: id + "/generateToken?api-version=2024-05-01", body: `{}`, status: 401, code: "AuthenticationFailed"},
		{name: "token for another audience", path: id + "/generateToken?api-version=2024-05-01", auth: wrongAud, body: `{}`, status: 401, code: "InvalidAuthenticationToken"},
		{name: "unknown gateway", path: strings.Replace(id, "gw1", "gw9", 1) + "/generateToken?api-version=2024-05-01", auth: good, body: `{"keyType":"primary","expiry":"` + in(time.Hour) + `"}`, status: 404, code: "ResourceNotFound"},
		{name: "expiry over 30 days", path: id + "/generateToken?api-version=2024-05-01", auth: good, body: `{"keyType":"primary","expiry":"` + in(31*24*time.Hour) + `"}`, status: 400, code: "ValidationError"},
		{name: "bad key type", path: id + "/generateToken?api-version=2024-05-01", auth: good, body: `{"keyType":"tertiary","expiry":"` + in(time.Hour) + `"}`, status: 400, code: "ValidationError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, "https://management.azure.com"+tt.path, strings.NewReader(tt.body))
			if tt.auth != "" {
				req.Header.Set("Authorization", "Bearer "+tt.auth)
			}
			resp, err := a.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Value string `json:"value"`
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tt.status || body.Error.Code != tt.code {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, body.Error.Code, tt.status, tt.code)
			}
			if tt.status == 200 {
				parts := strings.Split(body.Value, "&")
				if len(parts) != 3 || parts[0] != "gw1" || len(parts[1]) != 12 || parts[2] == "" {
					t.Fatalf("token %q is not <gateway>&<yyyyMMddHHmm>&<signature>", body.Value)
				}
			}
		})
	}
}
