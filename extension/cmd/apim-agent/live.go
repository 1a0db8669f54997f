package main

import (
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/credentials"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/logging"
)

// levelGate drops log lines below a level that can change while loggers
// hold it (telemetry.logs.level applies live). Loggers write to it at
// zerolog.TraceLevel and let the gate decide.
type levelGate struct {
	w     io.Writer
	level atomic.Int32
}

func newLevelGate(w io.Writer, level zerolog.Level) *levelGate {
	g := &levelGate{w: w}
	g.set(level)
	return g
}

func (g *levelGate) set(l zerolog.Level) { g.level.Store(int32(l)) }

func (g *levelGate) get() zerolog.Level { return zerolog.Level(g.level.Load()) }

func (g *levelGate) Write(p []byte) (int, error) { return g.w.Write(p) }

// WriteLevel implements zerolog.LevelWriter.
func (g *levelGate) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	if l < g.get() {
		return len(p), nil
	}
	return g.w.Write(p)
}

// liveSettings applies settings changes while the agent runs. Keys marked
// x-live in the schema apply at once (credential, log level, monitoring);
// others are reported as needing a restart; an invalid set is refused and
// the previous one stays.
type liveSettings struct {
	log  zerolog.Logger
	gate *levelGate
	cred processCredential // nil for a local source

	reloadErrors atomic.Int64

	mu       sync.Mutex
	started  *settings.Settings // what the process was started with
	applied  *settings.Settings // the last valid set, applied
	changed  chan struct{}      // closed and replaced when applied changes
	restart  []string
	rejected string           // why the latest set was refused; "" when it applied
	warned   []settings.Issue // warnings already logged
}

// newLiveSettings starts from the settings the process was started with
// and the warnings already logged for them.
func newLiveSettings(start *settings.Settings, warned []settings.Issue, log zerolog.Logger, gate *levelGate, cred processCredential) *liveSettings {
	return &liveSettings{log: log, gate: gate, cred: cred, started: start, applied: start, changed: make(chan struct{}), warned: warned}
}

// Changed is closed when a new settings set has been applied.
func (l *liveSettings) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// onChange is the settings.Watch callback.
func (l *liveSettings) onChange(next *settings.Settings, issues []settings.Issue, _ settings.Change) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if settings.HasErrors(issues) {
		keys := issueKeys(issues, settings.Error)
		for _, is := range issues {
			ev := l.log.Warn()
			if is.Severity == settings.Error {
				ev = l.log.Error()
			}
			ev.Str("key", is.Key).Msg(is.Message)
		}
		l.reject("invalid settings: " + strings.Join(keys, ", "))
		return
	}
	if !slices.Equal(issues, l.warned) {
		// New warnings (an unknown key: a typo must be visible).
		for _, is := range issues {
			if !slices.Contains(l.warned, is) {
				l.log.Warn().Str("key", is.Key).Msg(is.Message)
			}
		}
		l.warned = slices.Clone(issues)
	}
	change := next.Diff(l.applied)
	if change.Empty() {
		// Back to the applied set (an invalid change was undone).
		l.rejected = ""
		return
	}
	var credChanged bool
	for _, k := range change.Live {
		if isCredentialKey(k) {
			credChanged = true
		}
	}
	if credChanged && l.cred != nil {
		if err := l.cred.Apply(next); err != nil {
			l.log.Error().Err(err).Msg("credential settings refused")
			l.reject(err.Error())
			return
		}
		l.log.Info().Strs("keys", filterKeys(change.Live, isCredentialKey)).Msg("credential settings applied; the next request uses them")
	}
	if slices.Contains(change.Live, keyLogLevel) {
		l.applyLevel(next)
	}
	l.applied, l.rejected = next, ""
	close(l.changed)
	l.changed = make(chan struct{})
	restart := next.Diff(l.started).Restart
	if !slices.Equal(restart, l.restart) {
		l.restart = restart
		if len(restart) > 0 {
			l.log.Warn().Strs("keys", restart).Msg("restart required for: " + strings.Join(restart, ", "))
		} else {
			l.log.Info().Msg("settings match the running process again; no restart required")
		}
	}
	if live := filterKeys(change.Live, func(k string) bool { return !isCredentialKey(k) }); len(live) > 0 {
		l.log.Info().Strs("keys", live).Msg("applied live settings")
	}
}

func (l *liveSettings) reject(reason string) {
	l.reloadErrors.Add(1)
	l.rejected = reason
	l.log.Error().Str("reason", reason).Msg("settings change rejected; keeping the previous settings")
}

// applyLevel switches the log level. At start --log-level wins over the
// setting; a change of the setting afterwards is the newer intent and
// applies even then.
func (l *liveSettings) applyLevel(s *settings.Settings) {
	level, err := logging.ParseLevel(s.String(keyLogLevel))
	if err != nil {
		l.log.Error().Str("key", keyLogLevel).Err(err).Msg("log level not changed")
		return
	}
	l.gate.set(level)
	l.log.WithLevel(zerolog.NoLevel).Str("key", keyLogLevel).Str("level", level.String()).Msg("log level changed")
}

// state returns the keys that need a restart and why the latest settings
// were refused ("" when they applied).
func (l *liveSettings) state() (restart []string, rejected string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.restart), l.rejected
}

// current is the last valid settings set.
func (l *liveSettings) current() *settings.Settings {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.applied
}

func issueKeys(issues []settings.Issue, sev settings.Severity) []string {
	var keys []string
	for _, is := range issues {
		if is.Severity == sev && !slices.Contains(keys, is.Key) {
			keys = append(keys, is.Key)
		}
	}
	slices.Sort(keys)
	return keys
}

func filterKeys(keys []string, keep func(string) bool) []string {
	var out []string
	for _, k := range keys {
		if keep(k) {
			out = append(out, k)
		}
	}
	return out
}

// watchCredential logs the gateway token's state changes: a warning when
// it enters its last 7 days (repeated daily), an error when it expires
// (the sync loop then repeats it at a bounded rate, without sending the
// token), and a note when a renewed token took its place.
func watchCredential(ctx context.Context, cred processCredential, log zerolog.Logger, every time.Duration) error {
	if cred == nil {
		return nil
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var state credentials.State
	var lastLog time.Time
	for {
		if exp := cred.ExpiresAt(); !exp.IsZero() {
			now := time.Now()
			st := credentialStatus(exp, now)
			daily := st.State == credentials.StateExpiring && now.Sub(lastLog) >= 24*time.Hour
			if st.State != state || daily {
				switch st.State {
				case credentials.StateExpired:
					log.Error().Str("credential", string(st.State)).Time("tokenExpiresAt", exp).
						Msg("gateway token expired: the gateway keeps serving its last configuration but gets no updates; generate a new token and update gateway.auth.token")
				case credentials.StateExpiring:
					log.Warn().Str("credential", string(st.State)).Time("tokenExpiresAt", exp).Int64("secondsToExpiry", st.SecondsToExpiry).
						Msg("gateway token expires within 7 days; generate a new one and update gateway.auth.token")
				default:
					if state != "" {
						log.Info().Time("tokenExpiresAt", exp).Msg("gateway token renewed")
					}
				}
				state, lastLog = st.State, now
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func credentialStatus(exp, now time.Time) credentials.TokenStatus {
	left := exp.Sub(now)
	st := credentials.TokenStatus{SecondsToExpiry: int64(left / time.Second), ExpiresAt: exp}
	switch {
	case left <= 0:
		st.State = credentials.StateExpired
	case left <= credentials.ExpiringWithin:
		st.State = credentials.StateExpiring
	default:
		st.State = credentials.StateOK
	}
	return st
}
