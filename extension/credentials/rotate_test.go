package credentials_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/credentials"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/internal/azurefake"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
	"github.com/seed393f6fe3/apim-arc-gateway/internal/logcapture"
)

const (
	subscription = "0b8f6c2e-3a4d-4e5f-8a9b-1c2d3e4f5a6b"
	rotatorApp   = "9d2e4f6a-1b3c-4d5e-8f9a-0b1c2d3e4f5a"
)

type rotationFixture struct {
	entra *azurefake.Entra
	arm   *azurefake.ARM
	id    string
	cfg   credentials.Config
	opts  credentials.Options
	logs  *logcapture.Buffer
}

// newRotationFixture: a gateway token that expires in days, an Entra app
// allowed to call generateToken, and a fake ARM holding the gateway.
func newRotationFixture(t *testing.T, days int) *rotationFixture {
	f := &rotationFixture{entra: azurefake.NewEntra(t), logs: &logcapture.Buffer{}}
	f.entra.AddSecretApp(tenant, rotatorApp, secret)
	f.arm = azurefake.NewARM(t, f.entra)
	f.arm.Allow(rotatorApp)
	f.id = f.arm.AddGateway(subscription, "rg-apim", "contoso-apim", "gw1")
	f.cfg = credentials.Config{
		AuthType: credentials.AuthGatewayToken, Token: settings.NewSecret("GatewayKey gw1&" + future(days) + "&" + gwSig),
		TenantID: tenant, ClientID: rotatorApp, ClientSecret: settings.NewSecret(secret), Authority: f.entra.URL,
		ResourceManagerEndpoint: f.arm.URL,
	}
	f.opts = entraOptions(f.entra, nil)
	f.opts.Logger = zerolog.New(f.logs)
	return f
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRotatorRenewsThroughARM(t *testing.T) {
	f := newRotationFixture(t, 3)
	p, err := credentials.New(context.Background(), f.cfg, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	r, err := credentials.NewRotator(p, credentials.RotatorConfig{ResourceID: f.id, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	f.arm.FailNext(503) // the first attempt fails and is retried
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, "the renewed token", func() bool { return time.Until(p.ExpiresAt()) > 29*24*time.Hour })
	time.Sleep(100 * time.Millisecond) // a renewed token must not be renewed again
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	reqs := f.arm.Requests()
	if len(reqs) != 2 || reqs[0].StatusCode != 503 || reqs[1].StatusCode != 200 {
		t.Fatalf("generateToken calls: %+v, want a 503 then one 200", reqs)
	}
	got := reqs[1]
	if got.APIVersion != "2024-05-01" || got.KeyType != "primary" || got.ClientID != rotatorApp || !strings.EqualFold(got.ResourceID, f.id) {
		t.Fatalf("generateToken request %+v", got)
	}
	if d := time.Until(got.Expiry); d < 30*24*time.Hour-5*time.Minute || d > 30*24*time.Hour {
		t.Fatalf("requested expiry %v from now, want 30 days", d)
	}
	h, err := p.AuthorizationHeader(context.Background())
	if err != nil || h != "GatewayKey "+got.Token {
		t.Fatalf("header %q, %v; want the renewed token", h, err)
	}
	// Until the kubelet refreshes the mounted Secret a settings reload still
	// carries the old token: it must not undo the renewal.
	if err := p.Update(f.cfg); err != nil {
		t.Fatal(err)
	}
	if h2, _ := p.AuthorizationHeader(context.Background()); h2 != h {
		t.Fatal("a reload with the superseded token replaced the renewed one")
	}
	// A token the user sets is taken.
	manual, exp := f.cfg, future(10)
	manual.Token = settings.NewSecret("gw1&" + exp + "&" + "bWFudWFs")
	if err := p.Update(manual); err != nil {
		t.Fatal(err)
	}
	if h2, _ := p.AuthorizationHeader(context.Background()); h2 != "GatewayKey gw1&"+exp+"&bWFudWFs" {
		t.Fatalf("header %q after a manual token update", h2)
	}

	logs := f.logs.String()
	if !strings.Contains(logs, "gateway token renewal failed") || !strings.Contains(logs, "gateway token renewed through ARM") {
		t.Fatalf("logs miss the failure or the renewal:\n%s", logs)
	}
	newSig := got.Token[strings.LastIndex(got.Token, "&")+1:]
	for _, s := range []string{newSig, gwSig, secret} {
		if strings.Contains(logs, s) {
			t.Fatalf("logs leak a secret:\n%s", logs)
		}
	}
}

// A token far from expiry is left alone; a live update to a token that is
// due wakes the rotator at once.
func TestRotatorWaitsUntilDue(t *testing.T) {
	f := newRotationFixture(t, 20)
	p, err := credentials.New(context.Background(), f.cfg, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	r, err := credentials.NewRotator(p, credentials.RotatorConfig{ResourceID: f.id}, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = r.Run(ctx) }()
	time.Sleep(300 * time.Millisecond)
	if n := len(f.arm.Requests()); n != 0 {
		t.Fatalf("%d generateToken calls for a token with 20 days left", n)
	}
	due := f.cfg
	due.Token = settings.NewSecret("gw1&" + future(6) + "&" + gwSig)
	if err := p.Update(due); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "renewal after the update", func() bool { return len(f.arm.Requests()) == 1 })
	waitFor(t, "the renewed token in use", func() bool { return time.Until(p.ExpiresAt()) > 29*24*time.Hour })
}

// The ARM endpoint and audience follow the cloud, like the authority.
func TestRotatorSovereignCloud(t *testing.T) {
	f := newRotationFixture(t, 1)
	f.arm.Audience = "https://management.core.chinacloudapi.cn/"
	cfg := f.cfg
	cfg.Authority, cfg.ResourceManagerEndpoint, cfg.Cloud = "", "", "AzureChinaCloud"
	p, err := credentials.New(context.Background(), cfg, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	r, err := credentials.NewRotator(p, credentials.RotatorConfig{ResourceID: f.id}, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RotateOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := f.arm.Requests()
	if len(reqs) != 1 || reqs[0].Host != "management.chinacloudapi.cn" || reqs[0].StatusCode != 200 {
		t.Fatalf("generateToken calls %+v, want one to management.chinacloudapi.cn", reqs)
	}
	toks := f.entra.TokenRequests()
	if toks[len(toks)-1].Host != "login.chinacloudapi.cn" || toks[len(toks)-1].Audience != "https://management.core.chinacloudapi.cn/" {
		t.Fatalf("ARM token request %+v", toks[len(toks)-1])
	}
}

// ARM refusing the identity is an error naming the gateway, without secrets.
func TestRotatorForbidden(t *testing.T) {
	f := newRotationFixture(t, 1)
	f.entra.AddSecretApp(tenant, "not-allowed", secret)
	cfg := f.cfg
	cfg.ClientID = "not-allowed"
	p, err := credentials.New(context.Background(), cfg, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	r, err := credentials.NewRotator(p, credentials.RotatorConfig{ResourceID: f.id}, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	err = r.RotateOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "AuthorizationFailed") || !strings.Contains(err.Error(), "gw1") {
		t.Fatalf("err = %v, want AuthorizationFailed for gw1", err)
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), gwSig) {
		t.Fatalf("error leaks a secret: %v", err)
	}
	if h, _ := p.AuthorizationHeader(context.Background()); !strings.Contains(h, gwSig) {
		t.Fatal("a failed renewal replaced the token")
	}
}

func TestNewRotatorErrors(t *testing.T) {
	f := newRotationFixture(t, 3)
	tests := []struct {
		name string
		cfg  func(c *credentials.Config)
		id   string
		want string
	}{
		{name: "not an ARM gateway id", id: "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Web/sites/app", want: credentials.KeyResourceID},
		{name: "garbage id", id: "gw1", want: credentials.KeyResourceID},
		{name: "token for another gateway", id: strings.Replace(f.id, "gateways/gw1", "gateways/gw2", 1), want: credentials.KeyResourceID},
		{name: "Entra auth has no gateway token", cfg: func(c *credentials.Config) { c.AuthType = credentials.AuthAzureAdApp }, id: f.id, want: credentials.KeyRotationEnabled},
		{name: "no identity for ARM", cfg: func(c *credentials.Config) { c.ClientSecret = settings.Secret{} }, id: f.id, want: credentials.KeyRotationEnabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.cfg
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			p, err := credentials.New(context.Background(), cfg, f.opts)
			if err != nil {
				t.Fatal(err)
			}
			_, err = credentials.NewRotator(p, credentials.RotatorConfig{ResourceID: tt.id}, f.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %s", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), gwSig) {
				t.Fatalf("error leaks a secret: %v", err)
			}
		})
	}
}
