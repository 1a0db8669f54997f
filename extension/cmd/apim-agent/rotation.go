package main

import (
	"context"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/credentials"
)

// wakeOnCredentialChange wakes the sync loop whenever the credential
// changes (a live settings update or a renewal by the rotator), so the
// next request carries the new credential instead of waiting out a long
// poll or a backoff.
func (p *process) wakeOnCredentialChange(ctx context.Context) error {
	if p.cred == nil {
		return nil
	}
	for {
		changed := p.cred.Changed()
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			p.sync.Wake()
		}
	}
}

// rotate runs the gateway token renewal (credentials.Rotator) while
// gateway.auth.rotation.enabled is true in the applied settings; the
// setting applies live, so the rotator is started or stopped when it
// changes. A rotator that cannot be built is reported and retried at the
// next settings change.
func (p *process) rotate(ctx context.Context) error {
	if p.provider == nil {
		return nil
	}
	log := p.credOpts.Logger
	for {
		changed := p.live.Changed()
		s := p.live.current()
		if s.Bool(credentials.KeyRotationEnabled) {
			r, err := credentials.NewRotator(p.provider, credentials.RotatorConfig{
				ResourceID: s.String(credentials.KeyResourceID),
				SecretName: p.tokenSecret,
			}, p.credOpts)
			if err != nil {
				log.Error().Err(err).Str("key", credentials.KeyRotationEnabled).Msg("token rotation not started")
			} else {
				rctx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- r.Run(rctx) }()
				log.Info().Str("resourceId", s.String(credentials.KeyResourceID)).Bool("writeBack", p.tokenSecret != "").Msg("token rotation running")
				waitForChange(ctx, changed)
				cancel()
				if err := <-done; err != nil {
					return err
				}
				if ctx.Err() != nil {
					return nil
				}
				// Rebuilt below from the new settings (resourceId or the
				// switch may have changed).
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// waitForChange returns when ctx ends or the applied settings change: the
// loops that are rebuilt from the settings wait there between builds.
func waitForChange(ctx context.Context, changed <-chan struct{}) {
	select {
	case <-ctx.Done():
	case <-changed:
	}
}
