package credentials_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/credentials"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/internal/azurefake"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
	"github.com/seed393f6fe3/apim-arc-gateway/schemas"
)

const (
	tenant   = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	clientID = "4b1c7a3e-2f0d-4c55-9a1e-0c6f3d2b9e11"
	secret   = "s3cr3t~Value.With-Chars_42"
	gwSig    = "9A1GR1f5WIhFvFmzQG+xyz/kBeu87DWad3tkasUXuvPL+MgzlwUHyg=="
)

// entraOptions points credentials at the fake authority: its TLS client,
// no instance discovery (it would go to login.microsoftonline.com), no
// retry sleeps, and an empty environment.
func entraOptions(e *azurefake.Entra, env map[string]string) credentials.Options {
	return credentials.Options{
		Transport:                e.Client(),
		DisableInstanceDiscovery: true,
		Retry:                    &policy.RetryOptions{MaxRetries: -1},
		Getenv:                   func(k string) string { return env[k] },
	}
}

func bearer(t *testing.T, p *credentials.Provider) string {
	t.Helper()
	h, err := p.AuthorizationHeader(context.Background())
	if err != nil {
		t.Fatalf("AuthorizationHeader: %v", err)
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		t.Fatalf("header %q is not a Bearer token", h)
	}
	return tok
}

func TestEntraCredentialTypes(t *testing.T) {
	entra := azurefake.NewEntra(t)
	cert := azurefake.NewClientCertificate(t, "apim-gateway-agent")
	entra.AddSecretApp(tenant, clientID, secret)
	entra.AddCertificateApp(tenant, "cert-app", cert.Cert)
	entra.AddCertificateApp(tenant, "pfx-legacy-app", cert.Cert)
	entra.AddCertificateApp(tenant, "pfx-modern-app", cert.Cert)
	entra.AddCertificateApp(tenant, "pfx-nopass-app", cert.Cert)
	entra.AddFederatedApp(tenant, "wi-app", "eyJhbGciOiJSUzI1NiJ9.service-account-token.sig")
	tokenFile := filepath.Join(t.TempDir(), "azure-identity-token")
	if err := os.WriteFile(tokenFile, []byte("eyJhbGciOiJSUzI1NiJ9.service-account-token.sig"), 0o600); err != nil {
		t.Fatal(err)
	}
	wiEnv := map[string]string{credentials.EnvClientID: "wi-app", credentials.EnvTenantID: tenant, credentials.EnvFederatedTokenFile: tokenFile, credentials.EnvAuthorityHost: entra.URL}

	tests := []struct {
		name     string
		cfg      credentials.Config
		env      map[string]string
		client   string
		kind     string
		audience string
	}{
		{name: "client secret", client: clientID, kind: "secret", audience: credentials.DefaultTokenAudience,
			cfg: credentials.Config{AuthType: credentials.AuthAzureAdApp, TenantID: tenant, ClientID: clientID, ClientSecret: settings.NewSecret(secret), Authority: entra.URL}},
		{name: "client secret custom audience", client: clientID, kind: "secret", audience: "api://apim-config",
			cfg: credentials.Config{AuthType: credentials.AuthAzureAdApp, TenantID: tenant, ClientID: clientID, ClientSecret: settings.NewSecret(secret), Authority: entra.URL, TokenAudience: "api://apim-config"}},
		{name: "PEM certificate", client: "cert-app", kind: "certificate", audience: credentials.DefaultTokenAudience,
			cfg: credentials.Config{AuthType: credentials.AuthAzureAdApp, TenantID: tenant, ClientID: "cert-app", Certificate: settings.NewSecret(cert.PEM(t)), Authority: entra.URL}},
		{name: "PKCS#12 legacy with password", client: "pfx-legacy-app", kind: "certificate", audience: credentials.DefaultTokenAudience,
			cfg: credentials.Config{AuthType: credentials.AuthAzureAdApp, TenantID: tenant, ClientID: "pfx-legacy-app", Certificate: settings.NewSecret(cert.PKCS12(t, "pfx-pass", false)), CertificatePassword: settings.NewSecret("pfx-pass"), Authority: entra.URL}},
		{name: "PKCS#12 modern (AES, SHA-256 MAC)", client: "pfx-modern-app", kind: "certificate", audience: credentials.DefaultTokenAudience,
			cfg: credentials.Config{AuthType: credentials.AuthAzureAdApp, TenantID: tenant, ClientID: "pfx-modern-app", Certificate: settings.NewSecret(cert.PKCS12(t, "pfx-pass", true)), CertificatePassword: settings.NewSecret("pfx-pass"), Authority: entra.URL}},
		{name: "PKCS#12 without password", client: "pfx-nopass-app", kind: "certificate", audience: credentials.DefaultTokenAudience,
			cfg: credentials.Config{AuthType: credentials.AuthAzureAdApp, TenantID: tenant, ClientID: "pfx-nopass-app", Certificate: settings.NewSecret(cert.PKCS12(t, "", false)), Authority: entra.URL}},
		{name: "workload identity from the webhook's environment", client: "wi-app", kind: "federated", audience: credentials.DefaultTokenAudience, env: wiEnv,
			cfg: credentials.Config{AuthType: credentials.AuthWorkloadIdentity}},
		{name: "workload identity with settings overriding the environment", client: "wi-app", kind: "federated", audience: credentials.DefaultTokenAudience,
			env: map[string]string{credentials.EnvClientID: "other-app", credentials.EnvTenantID: "other-tenant", credentials.EnvFederatedTokenFile: tokenFile},
			cfg: credentials.Config{AuthType: credentials.AuthWorkloadIdentity, ClientID: "wi-app", TenantID: tenant, Authority: entra.URL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := entra.TokenRequestCount()
			p, err := credentials.New(context.Background(), tt.cfg, entraOptions(entra, tt.env))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if p.TokenCredential() == nil {
				t.Fatal("TokenCredential() is nil for an Entra credential")
			}
			if !p.ExpiresAt().IsZero() {
				t.Fatalf("ExpiresAt = %v, want zero for Entra", p.ExpiresAt())
			}
			claims, err := entra.Verify(bearer(t, p), tt.audience)
			if err != nil {
				t.Fatal(err)
			}
			if claims.ClientID != tt.client || claims.Tenant != tenant {
				t.Fatalf("token for %s/%s, want %s/%s", claims.Tenant, claims.ClientID, tenant, tt.client)
			}
			reqs := entra.TokenRequests()
			if len(reqs) != before+1 {
				t.Fatalf("%d token requests, want 1", len(reqs)-before)
			}
			last := reqs[len(reqs)-1]
			if last.Kind != tt.kind || last.Audience != tt.audience || last.StatusCode != 200 {
				t.Fatalf("token request %+v, want kind %s audience %s", last, tt.kind, tt.audience)
			}
		})
	}
}

// One credential serves many callers with one token request.
func TestEntraTokenCached(t *testing.T) {
	entra := azurefake.NewEntra(t)
	entra.AddSecretApp(tenant, clientID, secret)
	p, err := credentials.New(context.Background(), credentials.Config{AuthType: credentials.AuthAzureAdApp, TenantID: tenant, ClientID: clientID, ClientSecret: settings.NewSecret(secret), Authority: entra.URL}, entraOptions(entra, nil))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	headers := make([]string, 40)
	for i := range headers {
		wg.Go(func() {
			h, err := p.AuthorizationHeader(context.Background())
			if err != nil {
				t.Error(err)
			}
			headers[i] = h
		})
	}
	wg.Wait()
	for _, h := range headers[1:] {
		if h != headers[0] {
			t.Fatal("callers got different tokens")
		}
	}
	if n := entra.TokenRequestCount(); n != 1 {
		t.Fatalf("%d token requests for 40 calls, want 1", n)
	}
}

// A token past its refresh_in is renewed by the credential on the next call.
func TestEntraTokenRefreshed(t *testing.T) {
	entra := azurefake.NewEntra(t)
	entra.AddSecretApp(tenant, clientID, secret)
	entra.SetTokenLifetime(time.Hour, time.Second)
	p, err := credentials.New(context.Background(), credentials.Config{AuthType: credentials.AuthAzureAdApp, TenantID: tenant, ClientID: clientID, ClientSecret: settings.NewSecret(secret), Authority: entra.URL}, entraOptions(entra, nil))
	if err != nil {
		t.Fatal(err)
	}
	first := bearer(t, p)
	if bearer(t, p) != first || entra.TokenRequestCount() != 1 {
		t.Fatal("a fresh token was not served from the cache")
	}
	time.Sleep(1100 * time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for entra.TokenRequestCount() < 2 && time.Now().Before(deadline) {
		bearer(t, p)
		time.Sleep(50 * time.Millisecond)
	}
	if entra.TokenRequestCount() < 2 {
		t.Fatal("the token was not refreshed after refresh_in")
	}
	if got := bearer(t, p); got == first {
		t.Fatal("still serving the first token after the refresh")
	}
}

// Sovereign clouds: the authority comes from the authority setting (URL or
// cloud name) or from the cluster's cloud, and the token request goes there.
func TestSovereignAuthority(t *testing.T) {
	entra := azurefake.NewEntra(t)
	entra.AddSecretApp(tenant, clientID, secret)
	tests := []struct {
		name      string
		authority string
		cloud     string
		env       map[string]string
		host      string
	}{
		{name: "US Government by name", authority: "AzureUSGovernment", host: "login.microsoftonline.us"},
		{name: "China by URL", authority: "https://login.chinacloudapi.cn", host: "login.chinacloudapi.cn"},
		{name: "China from Azure.Cluster.Cloud", cloud: "AzureChinaCloud", host: "login.chinacloudapi.cn"},
		{name: "public by default", host: "login.microsoftonline.com"},
		{name: "AZURE_AUTHORITY_HOST", env: map[string]string{credentials.EnvAuthorityHost: "https://login.microsoftonline.us/"}, host: "login.microsoftonline.us"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := credentials.New(context.Background(), credentials.Config{AuthType: credentials.AuthAzureAdApp, TenantID: tenant, ClientID: clientID,
				ClientSecret: settings.NewSecret(secret), Authority: tt.authority, Cloud: tt.cloud}, entraOptions(entra, tt.env))
			if err != nil {
				t.Fatal(err)
			}
			bearer(t, p)
			reqs := entra.TokenRequests()
			if got := reqs[len(reqs)-1].Host; got != tt.host {
				t.Fatalf("token requested from %s, want %s", got, tt.host)
			}
		})
	}
}

// Entra's refusals become errors naming the setting to fix, with Entra's
// code, and never the secret; the log of the failing calls holds no secret either.
func TestEntraRefusalNamesSetting(t *testing.T) {
	entra := azurefake.NewEntra(t)
	entra.AddSecretApp(tenant, clientID, "the-right-secret-value")
	other := azurefake.NewClientCertificate(t, "other")
	cert := azurefake.NewClientCertificate(t, "registered")
	entra.AddCertificateApp(tenant, "cert-app", cert.Cert)
	tests := []struct {
		name    string
		cfg     credentials.Config
		setting string
		code    string
	}{
		{name: "wrong secret", setting: credentials.KeyClientSecret, code: "AADSTS7000215",
			cfg: credentials.Config{AuthType: credentials.AuthAzureAdApp, TenantID: tenant, ClientID: clientID, ClientSecret: settings.NewSecret(secret), Authority: entra.URL}},
		{name: "unknown app", setting: credentials.KeyClientID, code: "AADSTS700016",
			cfg: credentials.Config{AuthType: credentials.AuthAzureAdApp, TenantID: tenant, ClientID: "no-such-app", ClientSecret: settings.NewSecret(secret), Authority: entra.URL}},
		{name: "certificate not registered", setting: credentials.KeyCertificate, code: "AADSTS700027",
			cfg: credentials.Config{AuthType: credentials.AuthAzureAdApp, TenantID: tenant, ClientID: "cert-app", Certificate: settings.NewSecret(other.PEM(t)), Authority: entra.URL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			opts := entraOptions(entra, nil)
			opts.Logger = zerolog.New(&logs)
			p, err := credentials.New(context.Background(), tt.cfg, opts)
			if err != nil {
				t.Fatal(err)
			}
			h, err := p.AuthorizationHeader(context.Background())
			if err == nil || h != "" {
				t.Fatalf("got %q, %v; want an error", h, err)
			}
			opts.Logger.Error().Err(err).Msg("token request failed")
			msg := err.Error()
			if !strings.HasPrefix(msg, tt.setting+":") || !strings.Contains(msg, tt.code) {
				t.Fatalf("error %q does not name %s and %s", msg, tt.setting, tt.code)
			}
			if !errors.Is(err, credentials.ErrEntraRejected) {
				t.Fatalf("error %v is not ErrEntraRejected", err)
			}
			for _, s := range []string{secret, "the-right-secret-value", "PRIVATE KEY", "MII"} {
				if strings.Contains(msg, s) || strings.Contains(logs.String(), s) {
					t.Fatalf("error or log leaks %q: %s / %s", s, msg, logs.String())
				}
			}
		})
	}
}

// Bad settings fail in New with an error naming the key and not the value.
func TestConfigErrors(t *testing.T) {
	entra := azurefake.NewEntra(t)
	cert := azurefake.NewClientCertificate(t, "a")
	other := azurefake.NewClientCertificate(t, "b")
	mismatched := strings.Split(cert.PEM(t), "-----END CERTIFICATE-----\n")[0] + "-----END CERTIFICATE-----\n" + strings.SplitAfter(other.PEM(t), "-----END CERTIFICATE-----\n")[1]
	pfx := cert.PKCS12(t, "right-password", true)
	app := func(c credentials.Config) credentials.Config {
		c.AuthType = credentials.AuthAzureAdApp
		if c.Authority == "" {
			c.Authority = entra.URL
		}
		return c
	}
	tests := []struct {
		name    string
		cfg     credentials.Config
		env     map[string]string
		want    string
		secrets []string
	}{
		{name: "no type", cfg: credentials.Config{}, want: credentials.KeyAuthType},
		{name: "unknown type", cfg: credentials.Config{AuthType: "Kerberos"}, want: credentials.KeyAuthType},
		{name: "gateway token missing", cfg: credentials.Config{AuthType: credentials.AuthGatewayToken}, want: credentials.KeyToken},
		{name: "gateway token malformed", cfg: credentials.Config{AuthType: credentials.AuthGatewayToken, Token: settings.NewSecret("GatewayKey gw&2030&topsecretsig")}, want: credentials.KeyToken, secrets: []string{"topsecretsig"}},
		{name: "tenant missing", cfg: app(credentials.Config{ClientID: clientID, ClientSecret: settings.NewSecret(secret)}), want: credentials.KeyTenantID, secrets: []string{secret}},
		{name: "app id missing", cfg: app(credentials.Config{TenantID: tenant, ClientSecret: settings.NewSecret(secret)}), want: credentials.KeyClientID, secrets: []string{secret}},
		{name: "no secret or certificate", cfg: app(credentials.Config{TenantID: tenant, ClientID: clientID}), want: credentials.KeyClientSecret},
		{name: "secret and certificate", cfg: app(credentials.Config{TenantID: tenant, ClientID: clientID, ClientSecret: settings.NewSecret(secret), Certificate: settings.NewSecret(cert.PEM(t))}), want: credentials.KeyCertificate, secrets: []string{secret}},
		{name: "certificate garbage", cfg: app(credentials.Config{TenantID: tenant, ClientID: clientID, Certificate: settings.NewSecret("not a cert !!")}), want: credentials.KeyCertificate, secrets: []string{"not a cert !!"}},
		{name: "certificate key mismatch", cfg: app(credentials.Config{TenantID: tenant, ClientID: clientID, Certificate: settings.NewSecret(mismatched)}), want: credentials.KeyCertificate, secrets: []string{"MII"}},
		{name: "PKCS#12 wrong password", cfg: app(credentials.Config{TenantID: tenant, ClientID: clientID, Certificate: settings.NewSecret(pfx), CertificatePassword: settings.NewSecret("wrong-password")}), want: credentials.KeyCertificatePassword, secrets: []string{"wrong-password", "right-password", pfx[:40]}},
		{name: "encrypted PEM key", cfg: app(credentials.Config{TenantID: tenant, ClientID: clientID, Certificate: settings.NewSecret("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIabc\n-----END ENCRYPTED PRIVATE KEY-----\n")}), want: credentials.KeyCertificate, secrets: []string{"MIIabc"}},
		{name: "http authority", cfg: app(credentials.Config{TenantID: tenant, ClientID: clientID, ClientSecret: settings.NewSecret(secret), Authority: "http://login.example"}), want: credentials.KeyAuthority, secrets: []string{secret}},
		{name: "unknown cloud name", cfg: app(credentials.Config{TenantID: tenant, ClientID: clientID, ClientSecret: settings.NewSecret(secret), Authority: "AzureMoonCloud"}), want: credentials.KeyAuthority},
		{name: "unknown cluster cloud", cfg: credentials.Config{AuthType: credentials.AuthAzureAdApp, TenantID: tenant, ClientID: clientID, ClientSecret: settings.NewSecret(secret), Cloud: "AzureMoonCloud"}, want: credentials.KeyClusterCloud},
		{name: "workload identity without webhook", cfg: credentials.Config{AuthType: credentials.AuthWorkloadIdentity}, want: credentials.EnvClientID},
		{name: "workload identity without token file", cfg: credentials.Config{AuthType: credentials.AuthWorkloadIdentity}, env: map[string]string{credentials.EnvClientID: "x", credentials.EnvTenantID: tenant}, want: credentials.EnvFederatedTokenFile},
		{name: "extension identity outside Arc", cfg: credentials.Config{AuthType: credentials.AuthExtensionIdentity}, want: credentials.KeyExtensionName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := credentials.New(context.Background(), tt.cfg, entraOptions(entra, tt.env))
			if err == nil {
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not name %s", err, tt.want)
			}
			for _, s := range tt.secrets {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error leaks %q: %v", s, err)
				}
			}
		})
	}
}

// Neither the provider nor its config print a secret, whatever the verb.
func TestProviderRedaction(t *testing.T) {
	entra := azurefake.NewEntra(t)
	entra.AddSecretApp(tenant, clientID, secret)
	cfg := credentials.Config{AuthType: credentials.AuthAzureAdApp, TenantID: tenant, ClientID: clientID, ClientSecret: settings.NewSecret(secret), Authority: entra.URL}
	p, err := credentials.New(context.Background(), cfg, entraOptions(entra, nil))
	if err != nil {
		t.Fatal(err)
	}
	token := bearer(t, p)
	gw, err := credentials.New(context.Background(), credentials.Config{AuthType: credentials.AuthGatewayToken, Token: settings.NewSecret("GatewayKey gw1&" + future(20) + "&" + gwSig)}, credentials.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{"entra provider": p, "entra config": cfg, "gateway provider": gw, "gateway config": gw.Config()} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		l := zerolog.New(&logs)
		l.Info().Interface("v", v).Msg("x")
		if o, ok := v.(zerolog.LogObjectMarshaler); ok {
			l.Info().Object("o", o).Msg("x")
		}
		outs := []string{fmt.Sprintf("%v", v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v), fmt.Sprintf("%s", v), fmt.Sprintf("%q", v), fmt.Sprintf("%x", v), string(j), logs.String()}
		for _, out := range outs {
			for _, s := range []string{secret, token, gwSig, "9A1GR1"} {
				if strings.Contains(out, s) {
					t.Fatalf("%s leaks a secret: %s", name, out)
				}
			}
		}
	}
	if s := p.String(); !strings.Contains(s, clientID) || !strings.Contains(s, "AzureAdApp") {
		t.Fatalf("String() = %q, want the type and client id", s)
	}
	if s := gw.String(); !strings.Contains(s, "gw1") {
		t.Fatalf("String() = %q, want the gateway name", s)
	}
}

// Update swaps the credential live; a bad update keeps the old one.
func TestProviderUpdate(t *testing.T) {
	entra := azurefake.NewEntra(t)
	entra.AddSecretApp(tenant, clientID, secret)
	first := "GatewayKey gw1&" + future(20) + "&" + gwSig
	p, err := credentials.New(context.Background(), credentials.Config{AuthType: credentials.AuthGatewayToken, Token: settings.NewSecret(first)}, entraOptions(entra, nil))
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := p.AuthorizationHeader(context.Background()); h != first {
		t.Fatalf("header %q, want %q", h, first)
	}
	changed := p.Changed()
	exp29 := future(29)
	second := "GatewayKey gw1&" + exp29 + "&" + "QUJDREVGR0g="
	if err := p.Update(credentials.Config{AuthType: credentials.AuthGatewayToken, Token: settings.NewSecret(second)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed() was not closed by Update")
	}
	if h, _ := p.AuthorizationHeader(context.Background()); h != second {
		t.Fatalf("header %q after Update, want %q", h, second)
	}
	if got, want := p.ExpiresAt().Format(credentials.ExpiryLayout), exp29; got != want {
		t.Fatalf("ExpiresAt %s, want %s", got, want)
	}
	err = p.Update(credentials.Config{AuthType: credentials.AuthGatewayToken, Token: settings.NewSecret("gw1&garbage&" + "leakme")})
	if err == nil || !strings.Contains(err.Error(), credentials.KeyToken) || strings.Contains(err.Error(), "leakme") {
		t.Fatalf("bad update: %v", err)
	}
	if h, _ := p.AuthorizationHeader(context.Background()); h != second {
		t.Fatal("a failed Update replaced the credential")
	}
	if err := p.Update(credentials.Config{AuthType: credentials.AuthAzureAdApp, TenantID: tenant, ClientID: clientID, ClientSecret: settings.NewSecret(secret), Authority: entra.URL}); err != nil {
		t.Fatal(err)
	}
	if _, err := entra.Verify(bearer(t, p), credentials.DefaultTokenAudience); err != nil {
		t.Fatal(err)
	}
	if !p.ExpiresAt().IsZero() || p.TokenCredential() == nil {
		t.Fatal("after switching to Entra: ExpiresAt must be zero and TokenCredential set")
	}
}

// ConfigFromSettings reads the keys of the settings schema, including the
// injected Azure.* values and the audience default.
func TestConfigFromSettings(t *testing.T) {
	schema := loadSchema(t)
	s, issues := settings.LoadMap(map[string]string{
		"gateway.configuration.uri":      "https://example.configuration.azure-api.net",
		"gateway.name":                   "gw1",
		"gateway.auth.type":              "AzureAdApp",
		"gateway.auth.azureAd.tenant.id": tenant,
		"gateway.auth.azureAd.app.id":    clientID,
		"gateway.auth.azureAd.authority": "https://login.microsoftonline.us",
		"Azure.Extension.Name":           "apim-gw",
		"Azure.Cluster.Cloud":            "AzureUSGovernmentCloud",
	}, map[string]string{"gateway.auth.azureAd.app.secret": secret}, schema)
	if settings.HasErrors(issues) {
		t.Fatal(settings.Errors(issues))
	}
	cfg := credentials.ConfigFromSettings(s)
	if cfg.AuthType != credentials.AuthAzureAdApp || cfg.TenantID != tenant || cfg.ClientID != clientID || cfg.ClientSecret.Reveal() != secret ||
		cfg.Authority != "https://login.microsoftonline.us" || cfg.ExtensionName != "apim-gw" || cfg.Cloud != "AzureUSGovernmentCloud" ||
		cfg.Scope() != credentials.DefaultTokenAudience+"/.default" {
		t.Fatalf("ConfigFromSettings = %+v (scope %s)", cfg, cfg.Scope())
	}
}

func loadSchema(t *testing.T) *settings.Schema {
	t.Helper()
	schema, err := settings.ParseSchema(schemas.ExtensionSettings)
	if err != nil {
		t.Fatal(err)
	}
	return schema
}

func future(days int) string {
	return time.Now().UTC().Add(time.Duration(days) * 24 * time.Hour).Format(credentials.ExpiryLayout)
}

// The configuration client asks for the header before every request; with
// a cached Entra token that must stay cheap.
func BenchmarkAuthorizationHeader(b *testing.B) {
	entra := azurefake.NewEntra(b)
	entra.AddSecretApp(tenant, clientID, secret)
	cases := map[string]credentials.Config{
		"GatewayToken":     {AuthType: credentials.AuthGatewayToken, Token: settings.NewSecret("GatewayKey gw1&" + future(20) + "&" + gwSig)},
		"AzureAdAppCached": {AuthType: credentials.AuthAzureAdApp, TenantID: tenant, ClientID: clientID, ClientSecret: settings.NewSecret(secret), Authority: entra.URL},
	}
	for name, cfg := range cases {
		b.Run(name, func(b *testing.B) {
			p, err := credentials.New(context.Background(), cfg, entraOptions(entra, nil))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if _, err := p.AuthorizationHeader(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.AuthorizationHeader(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	if n := entra.TokenRequestCount(); n != 1 {
		b.Fatalf("%d token requests, want 1", n)
	}
}
