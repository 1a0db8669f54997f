package configsync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/credentials"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
)

// Agent runs the sync loop: long-poll the configuration (or watch a local
// file), publish valid snapshots, and, in its own loop, heartbeat. It fails
// static: when the endpoint is down, refuses the credential or serves a bad
// snapshot, the last good snapshot stays.
//
// Lifecycle: fill the fields, then run Run (and RunHeartbeats for a remote
// endpoint) until the context is done; Wake, HeartbeatBody and Stats are
// safe to call from other goroutines at any time.
type Agent struct {
	// Client is the remote configuration endpoint; nil with LocalPath.
	Client *Client
	// LocalPath, used when Client is nil, is a snapshot file or a folder
	// holding snapshot.json (gateway.configuration.uri file:///path): a
	// mounted ConfigMap or volume. See RunLocal.
	LocalPath string
	Publisher *Publisher
	Logger    zerolog.Logger
	// Identity fields of the heartbeat (InstanceID, Hostname, Version).
	Identity Heartbeat
	// Gateway, when set, is asked each heartbeat which revision the gateway
	// actually loaded (GET /telemetry/status).
	Gateway GatewayStatusSource
	// Wait is the long-poll wait sent as ?wait= (default 30s; negative
	// disables long polling).
	Wait time.Duration
	// MinInterval is the least time between two polls, so a server that
	// ignores ?wait cannot make the loop spin (default 10s, APIM's poll).
	MinInterval time.Duration
	// HeartbeatInterval defaults to 60s.
	HeartbeatInterval time.Duration
	// LocalInterval is how often a local source is re-read besides file
	// events, which some volume types lose (default 30s).
	LocalInterval time.Duration
	// Backoff schedules polls after failures that Client.Fetch did not
	// retry away (outage, 401, 404, expired credential).
	Backoff Backoff
	// RepeatLogInterval bounds how often the same credential or heartbeat
	// failure is logged again while it persists (default 10m): an expired
	// token must be loud, not flood the log.
	RepeatLogInterval time.Duration
	// OnPublish, when set, is called after a new snapshot is written.
	OnPublish func(*config.Snapshot)

	wake         chan struct{}
	wakeOnce     sync.Once
	defaultsOnce sync.Once
	startOnce    sync.Once
	successes    atomic.Int64
	failures     atomic.Int64
	published    atomic.Int64
	rejected     atomic.Int64

	mu         sync.Mutex
	startedAt  time.Time
	revision   string
	haveConfig bool
	status     string
	lastSyncAt *time.Time
	lastError  string
	gwReach    *bool
	gwRevision string
}

// Stats counts the agent's sync outcomes since start.
type Stats struct {
	// Successes: the source answered (200, 304, or a local file read).
	Successes int64
	// Failures: the source could not be read (transport error, 401, 404,
	// 5xx after retries, expired credential, unreadable file).
	Failures int64
	// Published: new snapshots written to the config folder.
	Published int64
	// Rejected: snapshots refused by validation.
	Rejected int64
}

// Stats returns the counters.
func (a *Agent) Stats() Stats {
	return Stats{Successes: a.successes.Load(), Failures: a.failures.Load(), Published: a.published.Load(), Rejected: a.rejected.Load()}
}

// Wake cuts short the current backoff sleep or long poll so the next
// request goes out now: call it after the credential changed, so a new
// token is used at once instead of after the old one's backoff.
func (a *Agent) Wake() {
	select {
	case a.wakeCh() <- struct{}{}:
	default:
	}
}

func (a *Agent) wakeCh() chan struct{} {
	a.wakeOnce.Do(func() { a.wake = make(chan struct{}, 1) })
	return a.wake
}

// expirer is implemented by credentials with a known expiry (GatewayToken).
type expirer interface{ ExpiresAt() time.Time }

// defaults fills the zero fields, once: Run and RunHeartbeats both call
// it, and Wait's "negative disables" must not turn into the default.
func (a *Agent) defaults() { a.defaultsOnce.Do(a.setDefaults) }

func (a *Agent) setDefaults() {
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
	if a.LocalInterval <= 0 {
		a.LocalInterval = 30 * time.Second
	}
	if a.RepeatLogInterval <= 0 {
		a.RepeatLogInterval = 10 * time.Minute
	}
}

// HeartbeatBody returns the heartbeat as it would be sent now, with the
// revision the agent published (the heartbeat loop replaces it with the
// gateway's own when the gateway answers).
func (a *Agent) HeartbeatBody() Heartbeat {
	a.mu.Lock()
	defer a.mu.Unlock()
	hb := a.Identity
	hb.ConfigurationRevision = a.revision
	hb.Status = a.status
	if hb.Status == "" {
		hb.Status = StatusStarting
	}
	hb.StartedAt = a.startedAt
	if a.lastSyncAt != nil {
		t := *a.lastSyncAt
		hb.LastSyncAt = &t
	}
	hb.LastError = a.lastError
	if a.gwReach != nil {
		r := *a.gwReach
		hb.GatewayReachable = &r
		if r {
			hb.ConfigurationRevision = a.gwRevision
		}
	}
	if a.Client != nil {
		if e, ok := a.Client.cred.(expirer); ok {
			if t := e.ExpiresAt(); !t.IsZero() {
				t = t.UTC()
				hb.TokenExpiresAt = &t
				hb.CredentialState = string(credentialState(t, time.Now()))
			}
		}
	}
	return hb
}

// PublishedRevision is the revision of the snapshot the agent holds ("" before one).
func (a *Agent) PublishedRevision() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.revision
}

func credentialState(expiry, now time.Time) credentials.State {
	switch left := expiry.Sub(now); {
	case left <= 0:
		return credentials.StateExpired
	case left <= credentials.ExpiringWithin:
		return credentials.StateExpiring
	}
	return credentials.StateOK
}

func (a *Agent) setState(f func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f()
}

// Start records the start time and takes up a snapshot already in the
// config folder (the backup of a previous run), so readiness and
// heartbeats report it before the first sync. Run calls it; call it
// earlier to have that state before the loops start. Later calls do
// nothing.
func (a *Agent) Start() {
	a.startOnce.Do(func() { a.start(a.Logger.With().Str("component", "configsync").Logger()) })
}

func (a *Agent) start(log zerolog.Logger) {
	a.defaults()
	a.wakeCh()
	a.setState(func() {
		a.startedAt = time.Now().UTC()
		a.status = StatusStarting
	})
	if s, err := a.Publisher.LoadExisting(); err != nil {
		log.Warn().Err(err).Str("path", a.Publisher.Path()).Msg("existing snapshot is not valid; waiting for the configuration source")
	} else if s != nil {
		a.setState(func() {
			a.haveConfig, a.revision, a.status = true, s.Revision, StatusStale
		})
		log.Info().Str("path", a.Publisher.Path()).Str("revision", s.Revision).Msg("serving the existing snapshot until the configuration source answers")
	}
}

// Run loops until ctx is done, then returns nil. With a Client it
// long-polls the endpoint; without one it watches LocalPath (RunLocal).
func (a *Agent) Run(ctx context.Context) error {
	if a.Client == nil {
		return a.RunLocal(ctx)
	}
	log := a.Logger.With().Str("component", "configsync").Logger()
	a.Start()
	limiter := newRepeatLimiter(a.RepeatLogInterval)

	etag, rejected := "", false
	failures := 0
	for ctx.Err() == nil {
		started := time.Now()
		res, err, woken := a.fetch(ctx, etag)
		if ctx.Err() != nil {
			break
		}
		if woken {
			// The credential changed mid-request: ask again with it now.
			failures = 0
			continue
		}
		if err != nil {
			failures++
			a.failures.Add(1)
			a.setState(func() {
				if a.haveConfig {
					a.status = StatusStale
				}
				a.lastError = err.Error()
			})
			delay := a.Backoff.Delay(failures-1, retryAfterOf(err))
			credential := errors.Is(err, ErrCredentialRejected) || errors.Is(err, credentials.ErrCredentialExpired) || errors.Is(err, ErrUnknownGateway)
			if !credential {
				log.Warn().Err(err).Int("failures", failures).Dur("retryIn", delay).Bool("failStatic", a.hasConfig()).Msg("configuration sync failed; keeping the last good snapshot")
			} else if limiter.allow(errorKind(err), time.Now()) {
				// Nothing a retry can fix: say it loudly, then at a bounded rate.
				log.Error().Err(err).Int("failures", failures).Dur("retryIn", delay).Bool("failStatic", a.hasConfig()).
					Dur("repeatsEvery", a.RepeatLogInterval).Msg("configuration sync failed; keeping the last good snapshot")
			}
			if a.sleep(ctx, delay) != nil {
				break
			}
			continue
		}
		limiter.reset()
		failures = 0
		a.successes.Add(1)
		now := time.Now().UTC()
		if res.Changed {
			if a.publish(log, res.Body, res.ETag, now) {
				etag, rejected = res.ETag, false
			} else {
				// Poll with the rejected ETag: the endpoint answers 304 until it changes.
				etag, rejected = res.ETag, true
			}
		} else {
			a.setState(func() {
				a.lastSyncAt = &now
				// A 304 for a snapshot we rejected is not in sync.
				if a.haveConfig && !rejected {
					a.status = StatusSynced
					a.lastError = ""
				}
			})
		}
		if rest := a.MinInterval - time.Since(started); rest > 0 {
			if a.sleep(ctx, rest) != nil {
				break
			}
		}
	}
	return nil
}

// fetch runs one Client.Fetch that Wake can cut short (woken true).
func (a *Agent) fetch(ctx context.Context, etag string) (res Result, err error, woken bool) {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	var wokenFlag atomic.Bool
	go func() {
		select {
		case <-a.wake:
			wokenFlag.Store(true)
			cancel()
		case <-done:
		}
	}()
	res, err = a.Client.Fetch(fctx, etag, a.Wait)
	close(done)
	if wokenFlag.Load() && ctx.Err() == nil {
		return Result{}, nil, true
	}
	return res, err, false
}

// sleep waits d, or less when woken; it fails only when ctx is done.
func (a *Agent) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	case <-a.wake:
	}
	return nil
}

// publish validates and writes body; it reports whether the snapshot is
// now the one served. A rejected snapshot is logged with its problems.
func (a *Agent) publish(log zerolog.Logger, body []byte, etag string, now time.Time) bool {
	s, written, perr := a.Publisher.Publish(body)
	if perr != nil {
		var re *RejectedError
		msg := "snapshot could not be written"
		if errors.As(perr, &re) {
			a.rejected.Add(1)
			msg = fmt.Sprintf("snapshot rejected: %d problem(s)", len(re.Issues))
			log.Error().Str("etag", etag).Int("issues", len(re.Issues)).Strs("problems", issueStrings(re.Issues)).Msg("configuration rejected; keeping the last good snapshot")
		} else {
			log.Error().Err(perr).Msg("could not write the snapshot; keeping the last good one")
		}
		a.setState(func() {
			a.lastSyncAt = &now
			a.lastError = msg
			if a.haveConfig {
				a.status = StatusStale
			}
		})
		return false
	}
	rev := s.Revision
	if rev == "" {
		rev = etag
	}
	a.setState(func() {
		a.haveConfig, a.revision, a.status, a.lastSyncAt, a.lastError = true, rev, StatusSynced, &now, ""
	})
	if written {
		a.published.Add(1)
		log.Info().Str("etag", etag).Str("revision", rev).Msg("published configuration snapshot")
		if a.OnPublish != nil {
			a.OnPublish(s)
		}
	}
	return true
}

func (a *Agent) hasConfig() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.haveConfig
}

// RunHeartbeats posts a heartbeat every HeartbeatInterval until ctx is
// done, then returns nil. Each carries the revision the gateway reports
// having loaded (Gateway), or, when the gateway does not answer, the
// revision the agent published with gatewayReachable false. A local
// source has nowhere to send heartbeats: RunHeartbeats returns at once.
func (a *Agent) RunHeartbeats(ctx context.Context) error {
	if a.Client == nil {
		return nil
	}
	a.Start()
	log := a.Logger.With().Str("component", "heartbeat").Logger()
	limiter := newRepeatLimiter(a.RepeatLogInterval)
	t := time.NewTicker(a.HeartbeatInterval)
	defer t.Stop()
	for {
		a.probeGateway(ctx)
		err := a.Client.SendHeartbeat(ctx, a.HeartbeatBody())
		switch {
		case ctx.Err() != nil:
		case err == nil:
			limiter.reset()
		case errors.Is(err, credentials.ErrCredentialExpired):
			// Nothing was sent; the sync loop reports the expiry.
		case limiter.allow(errorKind(err), time.Now()):
			log.Warn().Err(err).Dur("repeatsEvery", a.RepeatLogInterval).Msg("heartbeat failed")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (a *Agent) probeGateway(ctx context.Context) {
	if a.Gateway == nil {
		return
	}
	st, err := a.Gateway.Status(ctx)
	reach := err == nil
	a.setState(func() {
		a.gwReach = &reach
		if reach {
			a.gwRevision = st.ConfigurationRevision
		}
	})
	if err != nil && ctx.Err() == nil {
		a.Logger.Debug().Str("component", "heartbeat").Err(err).Msg("gateway status not available; reporting the published revision")
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

// errorKind groups errors that are logged at a bounded rate.
func errorKind(err error) string {
	var se *StatusError
	switch {
	case errors.Is(err, credentials.ErrCredentialExpired):
		return "expired"
	case errors.As(err, &se):
		return fmt.Sprintf("status %d", se.StatusCode)
	}
	return "other"
}

// repeatLimiter lets a persistent failure be logged when it starts or
// changes kind, then at most once per interval.
type repeatLimiter struct {
	interval time.Duration
	kind     string
	last     time.Time
}

func newRepeatLimiter(interval time.Duration) *repeatLimiter {
	return &repeatLimiter{interval: interval}
}

func (l *repeatLimiter) allow(kind string, now time.Time) bool {
	if kind != l.kind || now.Sub(l.last) >= l.interval {
		l.kind, l.last = kind, now
		return true
	}
	return false
}

func (l *repeatLimiter) reset() { l.kind = "" }
