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
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/configsync"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/credentials"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/health"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/logging"
	"github.com/seed393f6fe3/apim-arc-gateway/schemas"
)

// Setting keys the agent reads.
const (
	keyURI      = "gateway.configuration.uri"
	keyName     = "gateway.name"
	keyAuthType = "gateway.auth.type"
	keyToken    = "gateway.auth.token"
)

// options configure run.
type options struct {
	SettingsDir  string
	ProtectedDir string
	ConfigDir    string
	HealthAddr   string
	LogLevel     zerolog.Level
	Stdout       io.Writer

	// For tests: the HTTP client of the configuration endpoint (default
	// configsync.NewHTTPClient(nil)) and a hook told the health address.
	httpClient     *http.Client
	onHealthListen func(net.Addr)
}

func defaultOptions() options {
	return options{
		SettingsDir:  "/apim/settings",
		ProtectedDir: "/apim/protected",
		ConfigDir:    "/apim/config",
		HealthAddr:   ":9091",
		LogLevel:     zerolog.InfoLevel,
		Stdout:       os.Stdout,
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

// run loads the settings and runs the sync loop and the health server until
// ctx is done. It returns the process exit code.
func run(ctx context.Context, opts options) int {
	out := logging.NewBatchWriter(opts.Stdout, 100*time.Millisecond, 256<<10)
	defer out.Close()
	log := logging.New(out, opts.LogLevel, "agent")

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

	if t := s.String(keyAuthType); t != "" && t != "GatewayToken" {
		log.Error().Str("key", keyAuthType).Str("type", t).Msg("authentication type not supported yet; use GatewayToken")
		return 2
	}
	secret := s.Secret(keyToken)
	if secret.IsZero() {
		log.Error().Str("key", keyToken).Msg("a gateway token is required")
		return 2
	}
	token, err := credentials.ParseGatewayToken(secret.Reveal())
	if err != nil {
		log.Error().Str("key", keyToken).Err(err).Msg("invalid gateway token")
		return 2
	}
	gateway := token.Gateway()
	if n := s.String(keyName); n != "" && n != gateway {
		log.Warn().Str("key", keyName).Str("name", n).Str("tokenGateway", gateway).Msg("gateway.name differs from the gateway the token was issued for; using the token's")
	}

	hc := opts.httpClient
	if hc == nil {
		hc = configsync.NewHTTPClient(nil)
	}
	counts := &syncCounts{}
	cc := *hc
	cc.Transport = &countingTransport{base: hc.Transport, counts: counts}
	uri := s.String(keyURI)
	client, err := configsync.NewClient(uri, gateway, token, configsync.Options{HTTPClient: &cc, UserAgent: "apim-agent/" + version})
	if err != nil {
		log.Error().Err(err).Str("key", keyURI).Msg("invalid configuration endpoint")
		return 2
	}
	host, _ := os.Hostname()
	agent := &configsync.Agent{
		Client:    client,
		Publisher: configsync.NewPublisher(opts.ConfigDir),
		// configsync adds its own component field.
		Logger:    zerolog.New(out).Level(opts.LogLevel).With().Timestamp().Logger(),
		Identity:  configsync.Heartbeat{InstanceID: instanceID(), Hostname: host, Version: version},
		OnPublish: func(*config.Snapshot) { counts.published.Add(1) },
	}

	hs := &health.Server{
		Ready:   func() (bool, any) { return readiness(agent, token) },
		Metrics: func(w io.Writer) { writeMetrics(w, agent, token, counts) },
	}
	addr, err := hs.Listen(opts.HealthAddr)
	if err != nil {
		log.Error().Err(err).Str("addr", opts.HealthAddr).Msg("cannot listen for health")
		return 2
	}
	if opts.onHealthListen != nil {
		opts.onHealthListen(addr)
	}
	st := token.Status(time.Now())
	log.Info().Str("version", version).Str("gateway", gateway).Str("uri", uri).Str("configDir", opts.ConfigDir).
		Str("health", addr.String()).Str("credential", string(st.State)).Time("tokenExpiresAt", st.ExpiresAt).Msg("starting")
	if st.State != credentials.StateOK {
		log.Warn().Str("credential", string(st.State)).Time("tokenExpiresAt", st.ExpiresAt).Msg("gateway token needs renewal")
	}

	// errgroup-like: the first task to fail cancels the others.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, task := range []func(context.Context) error{agent.Run, hs.Serve} {
		wg.Go(func() {
			if err := task(ctx); err != nil {
				errs <- err
				cancel()
			}
		})
	}
	<-ctx.Done()
	log.Info().Msg("shutting down")
	wg.Wait()
	close(errs)
	code := 0
	for err := range errs {
		log.Error().Err(err).Msg("agent stopped with an error")
		code = 1
	}
	log.Info().Msg("stopped")
	return code
}

func instanceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func readiness(a *configsync.Agent, token credentials.GatewayToken) (bool, any) {
	hb := a.HeartbeatBody()
	ready := hb.Status == configsync.StatusSynced || hb.Status == configsync.StatusStale
	st := token.Status(time.Now())
	detail := map[string]any{
		"ready":      ready,
		"status":     hb.Status,
		"revision":   hb.ConfigurationRevision,
		"credential": map[string]any{"state": st.State, "expiresAt": st.ExpiresAt},
	}
	if hb.LastSyncAt != nil {
		detail["lastSyncAt"] = hb.LastSyncAt
	}
	return ready, detail
}

// syncCounts counts answers of the configuration endpoint.
type syncCounts struct {
	success, failure, published atomic.Int64
}

// countingTransport counts configuration requests: 2xx and 304 are
// successes, transport errors and other statuses failures. Heartbeats are
// not counted.
type countingTransport struct {
	base   http.RoundTripper
	counts *syncCounts
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(r)
	if !strings.HasSuffix(r.URL.Path, "/configuration") || r.Context().Err() != nil {
		return resp, err
	}
	if err == nil && (resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusNotModified) {
		t.counts.success.Add(1)
	} else {
		t.counts.failure.Add(1)
	}
	return resp, err
}

func writeMetrics(w io.Writer, a *configsync.Agent, token credentials.GatewayToken, c *syncCounts) {
	now := time.Now()
	hb := a.HeartbeatBody()
	ready := 0.0
	if hb.Status == configsync.StatusSynced || hb.Status == configsync.StatusStale {
		ready = 1
	}
	health.WriteMetric(w, "apim_agent_config_sync_total", "counter", "Configuration requests by result (success: 2xx or 304).",
		health.Sample{Labels: []string{"result", "success"}, Value: float64(c.success.Load())},
		health.Sample{Labels: []string{"result", "failure"}, Value: float64(c.failure.Load())})
	health.WriteMetric(w, "apim_agent_snapshots_published_total", "counter", "Configuration snapshots written to the config folder.",
		health.Sample{Value: float64(c.published.Load())})
	if hb.LastSyncAt != nil {
		health.WriteMetric(w, "apim_agent_last_sync_age_seconds", "gauge", "Seconds since the configuration endpoint last answered successfully.",
			health.Sample{Value: now.Sub(*hb.LastSyncAt).Seconds()})
	}
	health.WriteMetric(w, "apim_agent_token_expiry_seconds", "gauge", "Seconds until the gateway token expires (negative once expired).",
		health.Sample{Value: float64(token.Status(now).SecondsToExpiry)})
	health.WriteMetric(w, "apim_agent_ready", "gauge", "1 when a configuration snapshot is being served.",
		health.Sample{Value: ready})
}
