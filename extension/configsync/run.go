package configsync

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/credentials"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
)

// Agent runs the sync loop: long-poll the configuration, publish valid
// snapshots, heartbeat. It fails static: when the endpoint is down, refuses
// the credential or serves a bad snapshot, the last good snapshot stays.
type Agent struct {
	Client    *Client
	Publisher *Publisher
	Logger    zerolog.Logger
	// Identity fields of the heartbeat (InstanceID, Hostname, Version).
	Identity Heartbeat
	// Wait is the long-poll wait sent as ?wait= (default 30s; negative
	// disables long polling).
	Wait time.Duration
	// MinInterval is the least time between two polls, so a server that
	// ignores ?wait cannot make the loop spin (default 10s, APIM's poll).
	MinInterval time.Duration
	// HeartbeatInterval defaults to 60s.
	HeartbeatInterval time.Duration
	// Backoff schedules polls after failures that Client.Fetch did not
	// retry away (outage, 401, 404, expired credential).
	Backoff Backoff
	// OnPublish, when set, is called after a new snapshot is written.
	OnPublish func(*config.Snapshot)

	mu         sync.Mutex
	startedAt  time.Time
	revision   string
	haveConfig bool
	status     string
	lastSyncAt *time.Time
}

// expirer is implemented by credentials with a known expiry (GatewayToken).
type expirer interface{ ExpiresAt() time.Time }

func (a *Agent) defaults() {
	if a.Wait == 0 {
		a.Wait = 30 * time.Second
	}
	if a.Wait < 0 {
		a.Wait = 0
	}
	if a.MinInterval <= 0 {
		a.MinInterval = 10 * time.Second
	}
	if a.HeartbeatInterval <= 0 {
		a.HeartbeatInterval = 60 * time.Second
	}
}

// HeartbeatBody returns the heartbeat as it would be sent now.
func (a *Agent) HeartbeatBody() Heartbeat {
	a.mu.Lock()
	defer a.mu.Unlock()
	hb := a.Identity
	hb.ConfigurationRevision = a.revision
	hb.Status = a.status
	hb.StartedAt = a.startedAt
	if a.lastSyncAt != nil {
		t := *a.lastSyncAt
		hb.LastSyncAt = &t
	}
	if e, ok := a.Client.cred.(expirer); ok {
		if t := e.ExpiresAt(); !t.IsZero() {
			t = t.UTC()
			hb.TokenExpiresAt = &t
		}
	}
	return hb
}

func (a *Agent) setState(f func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f()
}

// Run loops until ctx is done, then returns nil.
func (a *Agent) Run(ctx context.Context) error {
	a.defaults()
	log := a.Logger.With().Str("component", "configsync").Logger()
	a.setState(func() {
		a.startedAt = time.Now().UTC()
		a.status = StatusStarting
	})

	if s, err := a.Publisher.LoadExisting(); err != nil {
		log.Warn().Err(err).Str("path", a.Publisher.Path()).Msg("existing snapshot is not valid; waiting for the configuration endpoint")
	} else if s != nil {
		a.setState(func() {
			a.haveConfig, a.revision, a.status = true, s.Revision, StatusStale
		})
		log.Info().Str("path", a.Publisher.Path()).Str("revision", s.Revision).Msg("serving the existing snapshot until the configuration endpoint answers")
	}

	var wg sync.WaitGroup
	wg.Go(func() { a.heartbeatLoop(ctx, log) })
	defer wg.Wait()

	etag, rejected := "", false
	failures := 0
	for ctx.Err() == nil {
		started := time.Now()
		res, err := a.Client.Fetch(ctx, etag, a.Wait)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			failures++
			a.setState(func() {
				if a.haveConfig {
					a.status = StatusStale
				}
			})
			delay := a.Backoff.Delay(failures-1, retryAfterOf(err))
			ev := log.Warn()
			if errors.Is(err, ErrCredentialRejected) || errors.Is(err, credentials.ErrCredentialExpired) || errors.Is(err, ErrUnknownGateway) {
				ev = log.Error()
			}
			ev.Err(err).Int("failures", failures).Dur("retryIn", delay).Bool("failStatic", a.hasConfig()).Msg("configuration sync failed; keeping the last good snapshot")
			if sleepCtx(ctx, delay) != nil {
				break
			}
			continue
		}
		failures = 0
		now := time.Now().UTC()
		if res.Changed {
			s, written, perr := a.Publisher.Publish(res.Body)
			if perr != nil {
				var re *RejectedError
				if errors.As(perr, &re) {
					log.Error().Str("etag", res.ETag).Int("issues", len(re.Issues)).Strs("problems", issueStrings(re.Issues)).Msg("configuration rejected; keeping the last good snapshot")
				} else {
					log.Error().Err(perr).Msg("could not write the snapshot; keeping the last good one")
				}
				// Poll with the rejected ETag: the endpoint answers 304 until it changes.
				etag, rejected = res.ETag, true
				a.setState(func() {
					a.lastSyncAt = &now
					if a.haveConfig {
						a.status = StatusStale
					}
				})
			} else {
				etag, rejected = res.ETag, false
				rev := s.Revision
				if rev == "" {
					rev = res.ETag
				}
				a.setState(func() {
					a.haveConfig, a.revision, a.status, a.lastSyncAt = true, rev, StatusSynced, &now
				})
				if written {
					log.Info().Str("etag", res.ETag).Str("revision", rev).Msg("published configuration snapshot")
					if a.OnPublish != nil {
						a.OnPublish(s)
					}
				}
			}
		} else {
			a.setState(func() {
				a.lastSyncAt = &now
				// A 304 for a snapshot we rejected is not in sync.
				if a.haveConfig && !rejected {
					a.status = StatusSynced
				}
			})
		}
		if rest := a.MinInterval - time.Since(started); rest > 0 {
			if sleepCtx(ctx, rest) != nil {
				break
			}
		}
	}
	return nil
}

func (a *Agent) hasConfig() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.haveConfig
}

func (a *Agent) heartbeatLoop(ctx context.Context, log zerolog.Logger) {
	t := time.NewTicker(a.HeartbeatInterval)
	defer t.Stop()
	for {
		if err := a.Client.SendHeartbeat(ctx, a.HeartbeatBody()); err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("heartbeat failed")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func issueStrings(issues []config.Issue) []string {
	out := make([]string, 0, min(len(issues), 50))
	for i, is := range issues {
		if i == 50 {
			break
		}
		out = append(out, is.String())
	}
	return out
}
