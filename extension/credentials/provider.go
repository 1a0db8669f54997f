package credentials

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/rs/zerolog"
	"k8s.io/client-go/rest"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
)

// Options are the process-level parts of a credential: how to reach Azure and
// Kubernetes. The zero value is right for production.
type Options struct {
	// Transport carries every Azure request (Entra, ARM); nil uses azcore's
	// default. Tests pass the fake's TLS client.
	Transport policy.Transporter
	// Retry overrides azcore's retry options (tests: MaxRetries -1).
	Retry *policy.RetryOptions
	// DisableInstanceDiscovery skips Entra instance discovery, which goes to
	// login.microsoftonline.com: for private clouds and offline tests.
	DisableInstanceDiscovery bool
	// KubeConfig reaches the Kubernetes API (ExtensionIdentity, token
	// write-back); nil uses the in-cluster configuration.
	KubeConfig *rest.Config
	// Getenv reads the environment (workload identity variables); nil uses os.Getenv.
	Getenv func(string) string
	// Logger receives credential events; it never gets a secret.
	Logger zerolog.Logger
	// Now is the clock; nil uses time.Now.
	Now func() time.Time

	// ExtensionIdentity tuning: how often the request's status is polled
	// while waiting for a token (default 1s), how long to wait (default
	// 2m), and how long before expiry to ask for a new token (default 1h,
	// as Arc's own consumers do).
	IdentityPollInterval time.Duration
	IdentityWait         time.Duration
	IdentityRenewBefore  time.Duration
}

func (o Options) getenv() func(string) string {
	if o.Getenv != nil {
		return o.Getenv
	}
	return os.Getenv
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) kubeConfig() (*rest.Config, error) {
	if o.KubeConfig != nil {
		return o.KubeConfig, nil
	}
	rc, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes API: %w", err)
	}
	return rc, nil
}

// Provider is the agent's one credential. It implements Credential; Update
// swaps it live when the settings change. Every way of printing it shows
// the type and non-secret identifiers only.
type Provider struct {
	opts Options

	mu      sync.RWMutex
	cur     *state
	changed chan struct{} // closed and replaced on every Update
	// superseded is the gateway token the Rotator replaced. Until the
	// kubelet refreshes the mounted Secret, a settings reload still reads
	// it; Update ignores it rather than going back to the old token.
	superseded settings.Secret
}

// state is one immutable credential generation.
type state struct {
	cfg   Config
	token GatewayToken           // GatewayToken
	tc    azcore.TokenCredential // Entra types
	scope string
}

// New builds the credential cfg describes. It does not contact Entra or the
// cluster: a credential that cannot get a token fails in AuthorizationHeader,
// so a pod whose identity is not ready yet still serves its last configuration.
func New(ctx context.Context, cfg Config, opts Options) (*Provider, error) {
	p := &Provider{opts: opts, changed: make(chan struct{})}
	st, err := p.build(ctx, cfg)
	if err != nil {
		return nil, err
	}
	p.cur = st
	return p, nil
}

func (p *Provider) build(_ context.Context, cfg Config) (*state, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	st := &state{cfg: cfg}
	switch cfg.AuthType {
	case AuthGatewayToken:
		tok, err := ParseGatewayToken(cfg.Token.Reveal())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", KeyToken, err)
		}
		st.token = tok
	case AuthAzureAdApp, AuthWorkloadIdentity:
		ec, err := newEntraCredential(cfg, p.opts)
		if err != nil {
			return nil, err
		}
		st.tc, st.scope = ec, cfg.Scope()
	case AuthExtensionIdentity:
		ci, err := newClusterIdentity(cfg, p.opts)
		if err != nil {
			return nil, err
		}
		st.tc, st.scope = ci, cfg.Scope()
	}
	return st, nil
}

// Update replaces the credential with one built from cfg. On error the
// current credential stays in use. A cfg equal to the current one is a no-op,
// so the settings watcher can call it on every change.
func (p *Provider) Update(cfg Config) error {
	p.mu.RLock()
	same := sameConfig(p.cur.cfg, cfg)
	if !same && !p.superseded.IsZero() && cfg.Token.Equal(p.superseded) {
		renewed := cfg
		renewed.Token = p.cur.cfg.Token
		same = sameConfig(p.cur.cfg, renewed)
	}
	p.mu.RUnlock()
	if same {
		return nil
	}
	return p.swap(cfg, settings.Secret{})
}

// renew switches to a token the Rotator obtained, remembering the one it
// replaces.
func (p *Provider) renew(cfg Config) error {
	return p.swap(cfg, p.Config().Token)
}

func (p *Provider) swap(cfg Config, superseded settings.Secret) error {
	st, err := p.build(context.Background(), cfg)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.cur = st
	p.superseded = superseded
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	ev := p.opts.Logger.Info().Str("authType", string(cfg.AuthType))
	if !st.token.IsZero() {
		ev = ev.Str("gateway", st.token.Gateway()).Time("expiresAt", st.token.Expiry())
	}
	ev.Msg("credential updated")
	return nil
}

func sameConfig(a, b Config) bool {
	return a.AuthType == b.AuthType && a.Token.Equal(b.Token) && a.TenantID == b.TenantID && a.ClientID == b.ClientID &&
		a.ClientSecret.Equal(b.ClientSecret) && a.Certificate.Equal(b.Certificate) && a.CertificatePassword.Equal(b.CertificatePassword) &&
		a.Authority == b.Authority && a.Cloud == b.Cloud && a.TokenAudience == b.TokenAudience && a.FederatedTokenFile == b.FederatedTokenFile &&
		a.ExtensionName == b.ExtensionName && a.IdentityNamespace == b.IdentityNamespace && a.IdentityRequestName == b.IdentityRequestName &&
		a.ResourceManagerEndpoint == b.ResourceManagerEndpoint && a.ResourceManagerAudience == b.ResourceManagerAudience
}

func (p *Provider) state() *state {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.cur
}

// Changed returns a channel closed at the next successful Update.
func (p *Provider) Changed() <-chan struct{} {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.changed
}

// AuthorizationHeader implements Credential: "GatewayKey <token>" or
// "Bearer <Entra token for the token audience>". Entra tokens are cached by
// the credential and refreshed before they expire.
func (p *Provider) AuthorizationHeader(ctx context.Context) (string, error) {
	st := p.state()
	if st.tc == nil {
		return st.token.AuthorizationHeader(ctx)
	}
	tok, err := st.tc.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{st.scope}})
	if err != nil {
		return "", err
	}
	return "Bearer " + tok.Token, nil
}

// AuthType returns the current credential type.
func (p *Provider) AuthType() AuthType { return p.state().cfg.AuthType }

// Config returns the current configuration (secrets stay wrapped).
func (p *Provider) Config() Config { return p.state().cfg }

// TokenCredential returns the Entra credential for other Azure clients (ARM,
// Logs Ingestion); nil for GatewayToken.
func (p *Provider) TokenCredential() azcore.TokenCredential { return p.state().tc }

// GatewayToken returns the gateway token; ok is false for Entra types.
func (p *Provider) GatewayToken() (GatewayToken, bool) {
	st := p.state()
	return st.token, !st.token.IsZero()
}

// ExpiresAt returns the gateway token's expiry; zero for Entra types, whose
// tokens are renewed automatically.
func (p *Provider) ExpiresAt() time.Time { return p.state().token.Expiry() }

// Status reports the gateway token's state at now; ok is false for Entra types.
func (p *Provider) Status(now time.Time) (TokenStatus, bool) {
	st := p.state()
	if st.token.IsZero() {
		return TokenStatus{}, false
	}
	return st.token.Status(now), true
}

// describe is what every printing method shows.
func (p *Provider) describe() map[string]any {
	st := p.state()
	d := map[string]any{"authType": string(st.cfg.AuthType)}
	switch {
	case !st.token.IsZero():
		d["gateway"] = st.token.Gateway()
		d["expiresAt"] = st.token.Expiry().Format(time.RFC3339)
		d["token"] = redacted
	case st.cfg.AuthType == AuthExtensionIdentity:
		d["extension"] = st.cfg.ExtensionName
		d["audience"] = audienceOrDefault(st.cfg.TokenAudience)
	default:
		d["tenant"] = st.cfg.TenantID
		d["client"] = st.cfg.ClientID
		d["audience"] = audienceOrDefault(st.cfg.TokenAudience)
	}
	return d
}

// String describes the credential without secrets.
func (p *Provider) String() string { return fmt.Sprintf("credentials.Provider%v", p.describe()) }

// GoString keeps %#v from walking into the secrets.
func (p *Provider) GoString() string { return p.String() }

// Format makes every fmt verb print String.
func (p *Provider) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(p.String())) }

// MarshalJSON writes the non-secret description.
func (p *Provider) MarshalJSON() ([]byte, error) { return json.Marshal(p.describe()) }

// MarshalZerologObject logs the non-secret description.
func (p *Provider) MarshalZerologObject(e *zerolog.Event) {
	for k, v := range p.describe() {
		e.Interface(k, v)
	}
}
