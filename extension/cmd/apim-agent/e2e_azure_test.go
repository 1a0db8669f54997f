package main

import (
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/credentials"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/internal/azurefake"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/internal/configfake"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/internal/lafake"
	"github.com/seed393f6fe3/apim-arc-gateway/internal/logcapture"
)

// End-to-end with the fake Entra authority and the fake ARM
// (extension/internal/azurefake): an Entra application syncs with a
// Bearer token, and a gateway token near its expiry is renewed through
// ARM generateToken and used at once.

const (
	e2eTenant  = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	e2eApp     = "6b3f0e6c-2d4c-4c59-9a57-0f3c2a1e9d11"
	e2eSecret  = "e2e-client-secret-value-never-logged"
	e2eSubID   = "00000000-0000-0000-0000-0000000000aa"
	e2eAPIMAud = "https://azure-api.net/configuration"
)

func azureOptions(entra *azurefake.Entra) credentials.Options {
	return credentials.Options{
		Transport:                entra.Client(),
		DisableInstanceDiscovery: true,
		Retry:                    &policy.RetryOptions{MaxRetries: -1},
		Getenv:                   func(string) string { return "" },
	}
}

func TestEndToEndEntraApp(t *testing.T) {
	const (
		ingestionKey = "aW5nZXN0aW9uLWtleS1uZXZlci1sb2dnZWQtZTJlLXRlc3Q="
		cachePass    = "cache-password-never-logged"
	)
	cert := azurefake.NewClientCertificate(t, "apim-gateway-agent")
	certPEM := cert.PEM(t)
	// The base64 body of the private key: no line of it may be logged.
	_, keyPEM, _ := strings.Cut(certPEM, "-----BEGIN PRIVATE KEY-----")
	var keyLines []string
	for _, l := range strings.Fields(strings.TrimSuffix(strings.TrimSpace(keyPEM), "-----END PRIVATE KEY-----")) {
		if len(l) >= 32 { // a short last line could match anything
			keyLines = append(keyLines, l)
		}
	}
	tests := []struct {
		name      string
		register  func(*azurefake.Entra)
		protected map[string]string
		secrets   []string
	}{
		{name: "client secret", register: func(e *azurefake.Entra) { e.AddSecretApp(e2eTenant, e2eApp, e2eSecret) },
			protected: map[string]string{credentials.KeyClientSecret: e2eSecret}, secrets: []string{e2eSecret}},
		{name: "client certificate", register: func(e *azurefake.Entra) { e.AddCertificateApp(e2eTenant, e2eApp, cert.Cert) },
			protected: map[string]string{credentials.KeyCertificate: certPEM}, secrets: keyLines},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backend := newBackend(t)
			entra := azurefake.NewEntra(t)
			tt.register(entra)
			fake := configfake.Start("gw1")
			defer fake.Close()
			fake.AcceptFunc(func(h string) bool {
				tok, ok := strings.CutPrefix(h, "Bearer ")
				if !ok {
					return false
				}
				c, err := entra.Verify(tok, e2eAPIMAud)
				return err == nil && c.ClientID == e2eApp && c.Tenant == e2eTenant
			})
			fake.SetSnapshot(snapshotFile(t, "snapshot-r1.json", backend.URL), "etag-1")

			// Monitoring uploads go to a loopback fake, never to Azure.
			const workspace = "7e9f4c2a-0b1d-4e5f-8a6b-3c2d1e0f9a8b"
			dc, err := lafake.NewDataCollector(workspace, ingestionKey, false)
			if err != nil {
				t.Fatal(err)
			}
			defer dc.Close()
			configDir := t.TempDir()
			settingsMount := newKubeMount(t, map[string]string{
				keyURI: fake.URL(), keyAuthType: "AzureAdApp", keyName: "gw1",
				credentials.KeyTenantID: e2eTenant, credentials.KeyClientID: e2eApp, credentials.KeyAuthority: entra.URL,
				"monitoring.workspaceId": workspace, "monitoring.dataCollector.endpoint": dc.Endpoint(),
			})
			protected := map[string]string{
				"monitoring.ingestionKey":         ingestionKey,
				"cache.external.connectionString": "redis://default:" + cachePass + "@127.0.0.1:6379/0",
			}
			for k, v := range tt.protected {
				protected[k] = v
			}
			logs := &logcapture.Buffer{}
			gw := startGateway(t, configDir)
			opts := agentOptions(fake, settingsMount.dir, newKubeMount(t, protected).dir, configDir, gw.telemetry, logs)
			opts.credentials = azureOptions(entra)
			opts.monitoring.DataCollectorClient = dc.Client()
			opts.LogLevel = zerolog.DebugLevel // the most the agent ever writes
			agent := startAgent(t, opts)

			eventually(t, "GET /orders/items served", 10*time.Second, func() bool { code, _ := call(gw.http + "/orders/items"); return code == 200 })
			eventually(t, "a heartbeat", 5*time.Second, func() bool {
				hb, ok := lastHeartbeat(fake)
				return ok && hb.Status == "Synced" && hb.TokenExpiresAt == nil && hb.CredentialState == ""
			})
			_, m := call(agent.health + "/metrics")
			if _, ok := metricValue(m, "apim_agent_token_expiry_seconds"); ok {
				t.Fatal("an Entra credential exports a gateway token expiry")
			}
			for _, r := range fake.Requests() {
				if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
					t.Fatal("a request without a Bearer token")
				}
			}
			if entra.TokenRequestCount() == 0 {
				t.Fatal("no token was asked from Entra")
			}
			_, ready := call(agent.health + "/readyz")
			if code := agent.stop(); code != 0 {
				t.Fatalf("agent exited %d", code)
			}
			if p := fake.Problems(); len(p) > 0 {
				t.Errorf("contract problems: %v", p)
			}
			secrets := append([]string{ingestionKey, cachePass}, tt.secrets...)
			for _, r := range fake.Requests() {
				secrets = append(secrets, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
			}
			// Logs, metrics and the readiness detail alike.
			assertNoSecrets(t, logs.String()+m+ready, secrets...)
		})
	}
}

func TestEndToEndTokenRenewedThroughARM(t *testing.T) {
	backend := newBackend(t)
	entra := azurefake.NewEntra(t)
	entra.AddSecretApp(e2eTenant, e2eApp, e2eSecret)
	arm := azurefake.NewARM(t, entra)
	arm.Allow(e2eApp)
	resourceID := arm.AddGateway(e2eSubID, "rg-apim", "contoso-apim", "gw1")
	// A token three days from expiry: inside the renewal window.
	expiry := time.Now().Add(3 * 24 * time.Hour)
	oldTok := gatewayKey(sig1, expiry)

	fake := configfake.Start("gw1")
	defer fake.Close()
	fake.AcceptFunc(func(h string) bool { return strings.HasPrefix(h, "GatewayKey gw1&") })
	fake.SetSnapshot(snapshotFile(t, "snapshot-r1.json", backend.URL), "etag-1")

	settingsMount := newKubeMount(t, map[string]string{
		keyURI: fake.URL(), credentials.KeyRotationEnabled: "true", credentials.KeyResourceID: resourceID,
		credentials.KeyTenantID: e2eTenant, credentials.KeyClientID: e2eApp, credentials.KeyAuthority: entra.URL,
	})
	protected := newKubeMount(t, map[string]string{keyToken: oldTok, credentials.KeyClientSecret: e2eSecret})
	logs := &logcapture.Buffer{}
	opts := agentOptions(fake, settingsMount.dir, protected.dir, t.TempDir(), "", logs)
	opts.credentials = azureOptions(entra)
	agent := startAgent(t, opts)

	renewed := func() string {
		for _, r := range fake.Requests() {
			if h := r.Header.Get("Authorization"); h != oldTok {
				return h
			}
		}
		return ""
	}
	eventually(t, "a request with the renewed token", 20*time.Second, func() bool { return renewed() != "" })
	if n := len(arm.Requests()); n != 1 {
		t.Fatalf("%d generateToken calls, want 1", n)
	}
	_, m := call(agent.health + "/metrics")
	if secs, _ := metricValue(m, "apim_agent_token_expiry_seconds"); secs < 29*24*3600 {
		t.Fatalf("token expiry after renewal: %v seconds", secs)
	}
	eventually(t, "a heartbeat with the renewed token's state", 5*time.Second, func() bool {
		hb, ok := lastHeartbeat(fake)
		return ok && hb.CredentialState == "ok" && hb.TokenExpiresAt != nil && hb.TokenExpiresAt.After(time.Now().Add(29*24*time.Hour))
	})
	if code := agent.stop(); code != 0 {
		t.Fatalf("agent exited %d", code)
	}
	newTok := renewed()
	_, sig, _ := strings.Cut(strings.TrimPrefix(newTok, "GatewayKey gw1&"), "&")
	assertNoSecrets(t, logs.String(), sig1, sig, e2eSecret)
}
