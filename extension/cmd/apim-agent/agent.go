package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/configsync"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/credentials"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/health"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/monitoring"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/logging"
	"github.com/seed393f6fe3/apim-arc-gateway/schemas"
)

// Setting keys the agent reads.
const (
	keyURI      = "gateway.configuration.uri"
	keyName     = "gateway.name"
	keyAuthType = "gateway.auth.type"
	keyToken    = "gateway.auth.token"
	keyLogLevel = "telemetry.logs.level"
)

// options configure run.
type options struct {
	SettingsDir      string
	ProtectedDir     string
	ConfigDir        string
	HealthAddr       string
	GatewayTelemetry string
	LogLevel         zerolog.Level
	// LogLevelSet: --log-level was given, so it wins over telemetry.logs.level.
	LogLevelSet bool
	// TokenSecret names the Secret (in the pod's namespace) that
	// gateway.auth.token is mounted from: token rotation writes renewed
	// tokens back to it so a restarted pod keeps them. Empty: no write-back.
	TokenSecret string
	Stdout      io.Writer

	// For tests: the HTTP client of the configuration endpoint (default
	// configsync.NewHTTPClient(nil)), a hook told the health address, and
	// shorter timings.
	httpClient     *http.Client
	onHealthListen func(net.Addr)
	timing         timing
	// credentials reach Azure and Kubernetes (fakes in tests); its Logger
	// is set by the agent.
	credentials credentials.Options
	// monitoring holds the uploaders' clients (fakes in tests); its Logger
	// and Credential are set by the agent.
	monitoring monitoring.Deps
}

// timing holds the intervals of the loops; zero values take defaults.
type timing struct {
	// SettingsInterval and SettingsDebounce tune the settings watch.
	SettingsInterval, SettingsDebounce time.Duration
	// CredentialCheck is how often the token's expiry is looked at (1m).
	CredentialCheck time.Duration
	// RepeatLog bounds how often a persistent failure is logged again (10m).
	RepeatLog time.Duration
	// Sync tunes the configsync agent (long poll, heartbeat, backoff).
	Sync func(*configsync.Agent)
	// ClientBackoff and ClientRetries tune the retries inside one fetch.
	ClientBackoff configsync.Backoff
	ClientRetries int
}

func defaultOptions() options {
	return options{
		SettingsDir:      "/apim/settings",
		ProtectedDir:     "/apim/protected",
		ConfigDir:        "/apim/config",
		HealthAddr:       ":9091",
		GatewayTelemetry: "http://127.0.0.1:9090",
		LogLevel:         zerolog.InfoLevel,
		Stdout:           os.Stdout,
	}
}

// checkSettings validates the settings folders and prints every issue.
func checkSettings(args []string, stdout, stderr io.Writer) int {
	opts := defaultOptions()
	fs := flag.NewFlagSet("apim-agent check-settings", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dirFlags(fs, &opts)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	schema, err := settings.ParseSchema(schemas.ExtensionSettings)
	if err != nil {
		fmt.Fprintln(stderr, "apim-agent check-settings: schema:", err)
		return 2
	}
	s, issues := settings.Load(opts.SettingsDir, opts.ProtectedDir, schema)
	errs := 0
	for _, is := range issues {
		if is.Severity == settings.Error {
			errs++
		}
		fmt.Fprintf(stdout, "%s: %s: %s\n", is.Severity, is.Key, is.Message)
	}
	if errs > 0 {
		fmt.Fprintf(stdout, "settings invalid: %d error(s), %d warning(s)\n", errs, len(issues)-errs)
		return 1
	}
	fmt.Fprintf(stdout, "settings valid: %d key(s), %d warning(s)\n", len(s.Keys()), len(issues))
	return 0
}

// run loads the settings and runs the agent's loops (settings watch,
// credential check, sync, heartbeat, health server) in one errgroup until
// ctx is done or a loop fails. It returns the process exit code: 0 after
// a clean shutdown, 1 when a loop failed, 2 when the settings or flags do
// not allow starting.
func run(ctx context.Context, opts options) int {
	out := logging.NewBatchWriter(opts.Stdout, 100*time.Millisecond, 256<<10)
	defer out.Close()
	gate := newLevelGate(out, opts.LogLevel)
	log := logging.New(gate, zerolog.TraceLevel, "agent")

	schema, err := settings.ParseSchema(schemas.ExtensionSettings)
	if err != nil {
		log.Error().Err(err).Msg("invalid embedded settings schema")
		return 2
	}
	s, issues := settings.Load(opts.SettingsDir, opts.ProtectedDir, schema)
	for _, is := range issues {
		ev := log.Warn()
		if is.Severity == settings.Error {
			ev = log.Error()
		}
		ev.Str("key", is.Key).Msg(is.Message)
	}
	if settings.HasErrors(issues) {
		log.Error().Str("settingsDir", opts.SettingsDir).Str("protectedDir", opts.ProtectedDir).Msg("invalid settings")
		return 2
	}
	if !opts.LogLevelSet && s.IsSet(keyLogLevel) {
		if level, err := logging.ParseLevel(s.String(keyLogLevel)); err == nil {
			gate.set(level)
		}
	}

	p, err := newProcess(ctx, s, issues, opts, gate)
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return 2
	}
	addr, err := p.health.Listen(opts.HealthAddr)
	if err != nil {
		log.Error().Err(err).Str("addr", opts.HealthAddr).Msg("cannot listen for health")
		return 2
	}
	if opts.onHealthListen != nil {
		opts.onHealthListen(addr)
	}
	ev := log.Info().Str("version", version).Str("source", p.source).Str("configDir", opts.ConfigDir).Str("health", addr.String())
	if p.gateway != "" {
		ev = ev.Str("gateway", p.gateway).Str("gatewayTelemetry", opts.GatewayTelemetry)
	}
	if p.cred != nil {
		if exp := p.cred.ExpiresAt(); !exp.IsZero() {
			st := credentialStatus(exp, time.Now())
			ev = ev.Str("credential", string(st.State)).Time("tokenExpiresAt", st.ExpiresAt)
		}
	}
	ev.Msg("starting")

	g, gctx := errgroup.WithContext(ctx)
	loop := func(name string, f func(context.Context) error) {
		g.Go(func() error {
			err := f(gctx)
			if err != nil && gctx.Err() != nil && errors.Is(err, context.Canceled) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	loop("settings watch", func(ctx context.Context) error {
		return settings.Watch(ctx, settings.WatchOptions{
			SettingsDir: opts.SettingsDir, ProtectedDir: opts.ProtectedDir, Schema: schema,
			Interval: opts.timing.SettingsInterval, Debounce: opts.timing.SettingsDebounce,
		}, p.live.onChange)
	})
	loop("credential check", func(ctx context.Context) error {
		if p.cred == nil {
			return nil
		}
		return watchCredential(ctx, p.cred, log.With().Str("component", "credentials").Logger(), p.timing.CredentialCheck)
	})
	loop("credential changes", p.wakeOnCredentialChange)
	loop("token rotation", p.rotate)
	loop("configuration sync", p.sync.Run)
	loop("heartbeat", p.sync.RunHeartbeats)
	loop("monitoring", p.monitor)
	loop("health server", p.health.Serve)

	err = g.Wait()
	code := 0
	if err != nil {
		log.Error().Err(err).Msg("agent stopped with an error")
		code = 1
	}
	log.Info().Msg("stopped")
	return code
}

// process holds the parts run wires together.
type process struct {
	source   string // the configuration URI, for logs
	gateway  string // "" for a local source
	cred     processCredential
	provider *credentials.Provider // nil for a local source
	credOpts credentials.Options
	// tokenSecret is the Secret gateway.auth.token is mounted from; token
	// rotation writes renewed tokens back to it.
	tokenSecret string
	sync        *configsync.Agent
	live        *liveSettings
	health      *health.Server
	timing      timing

	// Monitoring: the pipeline now running (nil when none could be built),
	// where it keeps its spool, and the gateway telemetry it reads.
	mon              atomic.Pointer[monitoring.Pipeline]
	monLog           zerolog.Logger
	monDeps          monitoring.Deps
	configDir        string
	gatewayTelemetry string
}

// newProcess builds the credential, the sync agent and the health server
// from the settings.
func newProcess(ctx context.Context, s *settings.Settings, issues []settings.Issue, opts options, gate *levelGate) (*process, error) {
	tm := opts.timing
	if tm.CredentialCheck <= 0 {
		tm.CredentialCheck = time.Minute
	}
	if tm.RepeatLog <= 0 {
		tm.RepeatLog = 10 * time.Minute
	}
	base := zerolog.New(gate).Level(zerolog.TraceLevel).With().Timestamp().Logger()
	log := base.With().Str("component", "agent").Logger()
	p := &process{source: redactURI(s.String(keyURI)), timing: tm}
	host, _ := os.Hostname()
	p.sync = &configsync.Agent{
		Publisher:         configsync.NewPublisher(opts.ConfigDir),
		Logger:            base, // configsync adds its own component field
		Identity:          configsync.Heartbeat{InstanceID: instanceID(), Hostname: host, Version: version},
		RepeatLogInterval: tm.RepeatLog,
	}

	uri := s.String(keyURI)
	local, isLocal, err := configsync.LocalPath(uri)
	if err != nil {
		return nil, err
	}
	if isLocal {
		// A local source needs no credential and has nowhere to send
		// heartbeats.
		p.sync.LocalPath = local
	} else {
		copts := opts.credentials
		copts.Logger = base.With().Str("component", "credentials").Logger()
		cred, err := newProviderCredential(ctx, s, copts, log)
		if err != nil {
			return nil, err
		}
		p.cred, p.provider, p.credOpts, p.gateway = cred, cred.Provider, copts, cred.gateway
		hc := opts.httpClient
		if hc == nil {
			hc = configsync.NewHTTPClient(nil)
		}
		client, err := configsync.NewClient(uri, p.gateway, cred, configsync.Options{HTTPClient: hc, UserAgent: "apim-agent/" + version,
			Backoff: tm.ClientBackoff, MaxRetries: tm.ClientRetries})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", keyURI, err)
		}
		p.sync.Client = client
		if opts.GatewayTelemetry != "" {
			probe, err := configsync.NewGatewayProbe(opts.GatewayTelemetry)
			if err != nil {
				return nil, err
			}
			p.sync.Gateway = probe
		}
	}
	if tm.Sync != nil {
		tm.Sync(p.sync)
	}
	// The backup is served at once: /readyz says so before the first sync.
	p.sync.Start()
	p.live = newLiveSettings(s, issues, log, gate, p.cred)
	p.tokenSecret = opts.TokenSecret
	p.monLog, p.monDeps, p.configDir, p.gatewayTelemetry = base, opts.monitoring, opts.ConfigDir, opts.GatewayTelemetry
	p.health = &health.Server{Ready: p.readiness, Metrics: p.writeMetrics}
	return p, nil
}

func instanceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redactURI drops user information and the query from a URI before it is
// logged: neither belongs in a configuration URI, and either could carry a
// secret.
func redactURI(uri string) string {
	u, err := url.Parse(strings.TrimSpace(uri))
	if err != nil {
		return "(not a valid URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
