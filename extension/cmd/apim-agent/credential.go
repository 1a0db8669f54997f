package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/credentials"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
)

// processCredential is the one credential of the process: configsync asks
// it for a header per request, the health server for its expiry, and the
// settings watcher hands it changed settings to apply live.
type processCredential interface {
	credentials.Credential
	// ExpiresAt is the gateway token's expiry; zero when unknown (Entra).
	ExpiresAt() time.Time
	// Apply switches to the credential the settings describe; on error
	// the previous credential stays in use. Errors name the key, never a
	// protected value.
	Apply(s *settings.Settings) error
	// Changed is closed when the credential changes (a live update or a
	// renewal), so the sync loop can use the new one at once.
	Changed() <-chan struct{}
}

// providerCredential adapts credentials.Provider to the process: it keeps
// the authentication type and gateway fixed for the life of the process
// (the configuration client is built for one gateway).
type providerCredential struct {
	*credentials.Provider
	gateway string
}

// newProviderCredential builds the credential gateway.auth.* describes and
// finds the gateway name: the token's for GatewayToken (gateway.name, when
// set, must agree), gateway.name for the Entra types.
func newProviderCredential(ctx context.Context, s *settings.Settings, opts credentials.Options, log zerolog.Logger) (*providerCredential, error) {
	p, err := credentials.New(ctx, credentials.ConfigFromSettings(s), opts)
	if err != nil {
		return nil, err
	}
	c := &providerCredential{Provider: p, gateway: s.String(keyName)}
	if tok, ok := p.GatewayToken(); ok {
		if c.gateway != "" && c.gateway != tok.Gateway() {
			log.Warn().Str("key", keyName).Str("name", c.gateway).Str("tokenGateway", tok.Gateway()).
				Msg("gateway.name differs from the gateway the token was issued for; using the token's")
		}
		c.gateway = tok.Gateway()
	}
	if c.gateway == "" {
		return nil, fmt.Errorf("%s: required with %s %s", keyName, keyAuthType, p.AuthType())
	}
	return c, nil
}

// Apply implements processCredential.
func (c *providerCredential) Apply(s *settings.Settings) error {
	cfg := credentials.ConfigFromSettings(s)
	if cfg.AuthType != c.AuthType() {
		return fmt.Errorf("%s: changing the authentication type from %s to %s needs a restart", keyAuthType, c.AuthType(), cfg.AuthType)
	}
	if cfg.AuthType == credentials.AuthGatewayToken {
		tok, err := credentials.ParseGatewayToken(cfg.Token.Reveal())
		if err != nil {
			// ParseError describes the problem without quoting the token.
			return fmt.Errorf("%s: %w", keyToken, err)
		}
		if tok.Gateway() != c.gateway {
			return fmt.Errorf("%s: the new token is for gateway %q, the agent syncs %q; restart to switch gateways", keyToken, tok.Gateway(), c.gateway)
		}
	}
	return c.Update(cfg)
}

// isCredentialKey tells whether key is one a credential is built from; a
// live change to any of them goes to processCredential.Apply.
func isCredentialKey(key string) bool {
	switch key {
	case keyToken, credentials.KeyTokenAudience:
		return true
	}
	return strings.HasPrefix(key, "gateway.auth.azureAd.")
}
