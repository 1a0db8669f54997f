// Package server is the gateway's data plane: the HTTP and HTTPS listeners,
// the request pipeline (route, subscription check, forward), hot reload of
// the configuration snapshot, health endpoints and graceful shutdown.
//
// Lifecycle: New validates options and builds the long-lived parts (backend
// pool, TLS settings); Run loads the configuration, binds the listeners,
// serves until its context is cancelled, then drains: health answers 503,
// in-flight requests finish, and Run returns within ShutdownTimeout.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/cachestore"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/counters"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/proxy"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/telemetry"
)

// Health paths, answered on both traffic listeners and on telemetry.
const (
	StatusPath         = "/status-0123456789abcdef"
	InternalStatusPath = "/internal-status-0123456789abcdef"
)

// Setting names, used in flags and error messages.
const (
	SettingServerCiphers  = "net.server.tls.ciphers.allowed-suites"
	SettingClientCiphers  = "net.client.tls.ciphers.allowed-suites"
	SettingForwardedProto = "net.server.http.forwarded.proto.enabled"
)

// Options configure a Gateway. Zero values of the limits pick the
// defaults set by DefaultOptions.
type Options struct {
	// ConfigPath is a snapshot file or a folder holding snapshot.json.
	ConfigPath string

	HTTPAddr      string
	HTTPSAddr     string // "" disables HTTPS
	TelemetryAddr string // "" disables the telemetry listener

	// TLSCertFile and TLSKeyFile give the HTTPS certificate used when no
	// snapshot hostname certificate matches the client's SNI name.
	TLSCertFile, TLSKeyFile string
	ServerCipherSuites      string
	ClientCipherSuites      string
	// BackendCAFile adds PEM CA certificates to the system roots trusted
	// for https backends (private CAs, a TLS-inspecting proxy).
	BackendCAFile string
	// ForwardedProto honours X-Forwarded-Proto when deciding whether a
	// request came over https (behind a TLS-terminating ingress).
	ForwardedProto bool

	MaxHeaderBytes  int
	MaxBodyBytes    int64
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	IdleTimeout     time.Duration
	MaxConns        int
	MaxConnsPerIP   int
	BackendTimeout  time.Duration
	ShutdownDelay   time.Duration
	ShutdownTimeout time.Duration
	// BackendDial replaces TCP dialing toward backends (benchmarks).
	BackendDial fasthttp.DialFunc
	// ReloadInterval is how often the snapshot is re-read even without a
	// file system event (events can be lost on some volume types).
	ReloadInterval time.Duration

	// CacheConnectionStringFile names a file holding a Redis connection
	// string (cache.external.connectionString, a protected setting, so it
	// travels as a file, never as an argument): rate limits and quotas are
	// then shared by every replica. Empty keeps them in memory.
	CacheConnectionStringFile string

	// StrictPolicies rejects a snapshot with a policy this gateway does
	// not run, instead of skipping the policy with a warning.
	StrictPolicies bool

	// RequestLogSampling is the share of successful requests logged
	// (0 to 1); failures are always logged.
	RequestLogSampling float64

	// RequestLogBuffer is the number of request log records kept for the
	// agent (GET /telemetry/logs); the oldest are overwritten.
	RequestLogBuffer int
	// MetricsMaxSeries bounds the distinct dimension sets of the request
	// metrics; requests beyond it count in one "other" series.
	MetricsMaxSeries int
	// Version is reported by /telemetry/status and build info.
	Version string
}

// DefaultOptions returns the production defaults.
func DefaultOptions() Options {
	return Options{
		HTTPAddr:           ":8080",
		HTTPSAddr:          ":8081",
		TelemetryAddr:      ":9090",
		MaxHeaderBytes:     32 << 10,
		MaxBodyBytes:       100 << 20,
		ReadTimeout:        60 * time.Second,
		WriteTimeout:       0,
		IdleTimeout:        120 * time.Second,
		MaxConns:           256 * 1024,
		BackendTimeout:     300 * time.Second,
		ShutdownDelay:      5 * time.Second,
		ShutdownTimeout:    30 * time.Second,
		ReloadInterval:     10 * time.Second,
		RequestLogSampling: 1,
		RequestLogBuffer:   telemetry.DefaultRingSize,
		MetricsMaxSeries:   telemetry.DefaultMaxSeries,
	}
}

// Gateway serves APIs from the current configuration.
type Gateway struct {
	opts      Options
	log       zerolog.Logger
	reqLog    zerolog.Logger
	pool      *proxy.Pool
	rt        atomic.Pointer[runtime]
	draining  atomic.Bool
	errs      *apimErrors
	states    sync.Pool
	forwardFn policy.Forwarder
	// counters outlive configuration reloads: a new snapshot must not
	// reset everybody's rate limits.
	counters policy.Counters
	// cache, like counters, outlives reloads.
	cache policy.Cache
	// breakers keep the circuit-breaker state of unchanged backends across
	// reloads.
	breakers *policy.Breakers
	// emitted holds emit-metric values across reloads.
	emitted *emitted
	// reqMetrics and ring are the request telemetry: APIM's metrics and
	// the request log records the agent reads.
	reqMetrics *telemetry.Metrics
	ring       *telemetry.Ring
	// shared is the policies' other long-lived state (OpenID
	// configurations, the bound on one-way calls).
	shared     *policy.Shared
	tlsConfig  *tls.Config
	fallback   *tls.Certificate
	metrics    metrics
	reloadMu   sync.Mutex
	configFile string

	ready     chan struct{}
	addrMu    sync.Mutex
	httpAddr  net.Addr
	httpsAddr net.Addr
	telAddr   net.Addr
}

// New builds a Gateway. log receives operational messages; reqLog the
// request log lines.
func New(opts Options, log, reqLog zerolog.Logger) (*Gateway, error) {
	g := &Gateway{opts: opts, log: log, reqLog: reqLog, errs: newAPIMErrors(), ready: make(chan struct{})}
	g.states.New = func() any { return new(reqState) }
	g.forwardFn = g.forwardForPolicy
	g.breakers = policy.NewBreakers()
	g.emitted = newEmitted()
	g.shared = policy.NewShared()

	clientTLS := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.ClientCipherSuites != "" {
		ids, skipped, err := ParseCipherSuites(SettingClientCiphers, opts.ClientCipherSuites)
		if err != nil {
			return nil, err
		}
		if len(skipped) > 0 {
			log.Warn().Strs("skipped", skipped).Str("setting", SettingClientCiphers).Msg("cipher suites not enabled")
		}
		clientTLS.CipherSuites = ids
	}
	if opts.BackendCAFile != "" {
		roots, err := loadRoots(opts.BackendCAFile)
		if err != nil {
			return nil, err
		}
		clientTLS.RootCAs = roots
	}
	g.pool = proxy.NewPool(proxy.Options{TLS: clientTLS, Dial: opts.BackendDial})

	g.tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: g.getCertificate}
	if opts.ServerCipherSuites != "" {
		ids, skipped, err := ParseCipherSuites(SettingServerCiphers, opts.ServerCipherSuites)
		if err != nil {
			return nil, err
		}
		if len(skipped) > 0 {
			log.Warn().Strs("skipped", skipped).Str("setting", SettingServerCiphers).Msg("cipher suites not enabled")
		}
		g.tlsConfig.CipherSuites = ids
	}
	if (opts.TLSCertFile == "") != (opts.TLSKeyFile == "") {
		return nil, errors.New("--tls-cert-file and --tls-key-file must be given together")
	}
	if opts.TLSCertFile != "" {
		crt, err := tls.LoadX509KeyPair(opts.TLSCertFile, opts.TLSKeyFile)
		if err != nil {
			// LoadX509KeyPair names files, never their content.
			return nil, fmt.Errorf("tls certificate: %w", err)
		}
		g.fallback = &crt
	}
	if opts.MaxBodyBytes < 0 {
		return nil, errors.New("--max-body-bytes cannot be negative")
	}
	if opts.CacheConnectionStringFile != "" {
		raw, err := os.ReadFile(opts.CacheConnectionStringFile)
		if err != nil {
			return nil, fmt.Errorf("--cache-connection-string-file: %w", err)
		}
		// The error names the file, never the connection string (it holds
		// a password).
		rc, err := counters.NewRedis(strings.TrimSpace(string(raw)), counters.RedisOptions{Log: log})
		if err != nil {
			return nil, fmt.Errorf("--cache-connection-string-file %s: not a valid Redis connection string", opts.CacheConnectionStringFile)
		}
		g.counters = rc
		cc, err := cachestore.NewRedis(strings.TrimSpace(string(raw)), cachestore.RedisOptions{Log: log})
		if err != nil {
			return nil, fmt.Errorf("--cache-connection-string-file %s: not a valid Redis connection string", opts.CacheConnectionStringFile)
		}
		g.cache = cc
	} else {
		g.counters = counters.NewMemory(nil)
		g.cache = cachestore.NewMemory(0, nil)
	}
	if opts.RequestLogSampling < 0 || opts.RequestLogSampling > 1 {
		return nil, fmt.Errorf("--request-log-sampling %v: must be between 0 and 1", opts.RequestLogSampling)
	}
	ring, err := telemetry.NewRing(opts.RequestLogBuffer)
	if err != nil {
		return nil, fmt.Errorf("--request-log-buffer: %w", err)
	}
	g.ring = ring
	if opts.MetricsMaxSeries < 1 {
		return nil, fmt.Errorf("--metrics-max-series %d: must be at least 1", opts.MetricsMaxSeries)
	}
	g.reqMetrics = telemetry.NewMetrics(opts.MetricsMaxSeries)
	return g, nil
}

// loadRoots returns the system roots plus the certificates in file.
func loadRoots(file string) (*x509.CertPool, error) {
	pemData, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--backend-ca-file: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("--backend-ca-file %s: no PEM certificate found", file)
	}
	return roots, nil
}

func (g *Gateway) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if rt := g.rt.Load(); rt != nil {
		if crt := rt.certs.lookup(hello.ServerName); crt != nil {
			return crt, nil
		}
	}
	if g.fallback != nil {
		return g.fallback, nil
	}
	return nil, fmt.Errorf("no certificate for server name %q", hello.ServerName)
}

func (g *Gateway) newServer(name string) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               g.handle,
		ErrorHandler:          g.connError,
		Name:                  "",
		NoDefaultServerHeader: true,
		// Header names stay normalized: with normalization off, fasthttp
		// looks headers up case-sensitively, and "x-forwarded-for" or
		// "ocp-apim-subscription-key" from a client must still be found.
		DisablePreParseMultipartForm: true,
		StreamRequestBody:            true,
		// With StreamRequestBody this is the size below which a body is
		// read before the handler runs; larger bodies stream.
		MaxRequestBodySize: 64 << 10,
		ReadBufferSize:     g.opts.MaxHeaderBytes,
		ReadTimeout:        g.opts.ReadTimeout,
		WriteTimeout:       g.opts.WriteTimeout,
		IdleTimeout:        g.opts.IdleTimeout,
		Concurrency:        g.opts.MaxConns,
		MaxConnsPerIP:      g.opts.MaxConnsPerIP,
		CloseOnShutdown:    true,
		Logger:             fasthttpLogger{g.log.With().Str("listener", name).Logger()},
	}
}

// fasthttpLogger routes fasthttp's own messages (connection errors) to
// zerolog at debug level: they are about clients, not the gateway.
type fasthttpLogger struct{ log zerolog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug().Msgf(format, args...)
}

// Ready is closed once the listeners are bound.
func (g *Gateway) Ready() <-chan struct{} { return g.ready }

// HTTPAddr, HTTPSAddr and TelemetryAddr return the bound addresses (after
// Ready), useful with ":0".
func (g *Gateway) HTTPAddr() net.Addr { g.addrMu.Lock(); defer g.addrMu.Unlock(); return g.httpAddr }

// HTTPSAddr returns the bound HTTPS address, nil when disabled.
func (g *Gateway) HTTPSAddr() net.Addr { g.addrMu.Lock(); defer g.addrMu.Unlock(); return g.httpsAddr }

// TelemetryAddr returns the bound telemetry address, nil when disabled.
func (g *Gateway) TelemetryAddr() net.Addr {
	g.addrMu.Lock()
	defer g.addrMu.Unlock()
	return g.telAddr
}

// Run serves until ctx is cancelled, then shuts down gracefully.
func (g *Gateway) Run(ctx context.Context) error {
	if err := g.Reload(); err != nil {
		// Serve anyway: health says 503 until a good snapshot arrives, as
		// when the agent has not written one yet.
		g.log.Error().Err(err).Msg("configuration not loaded; waiting for a valid snapshot")
	}

	var servers []*fasthttp.Server
	var lns []net.Listener
	listen := func(addr string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		lns = append(lns, ln)
		return ln, nil
	}
	httpLn, err := listen(g.opts.HTTPAddr)
	if err != nil {
		return err
	}
	var httpsLn, telLn net.Listener
	if g.opts.HTTPSAddr != "" {
		if httpsLn, err = listen(g.opts.HTTPSAddr); err != nil {
			return err
		}
	}
	if g.opts.TelemetryAddr != "" {
		if telLn, err = listen(g.opts.TelemetryAddr); err != nil {
			return err
		}
	}
	g.addrMu.Lock()
	g.httpAddr = httpLn.Addr()
	if httpsLn != nil {
		g.httpsAddr = httpsLn.Addr()
	}
	if telLn != nil {
		g.telAddr = telLn.Addr()
	}
	g.addrMu.Unlock()

	errc := make(chan error, 3)
	serve := func(s *fasthttp.Server, ln net.Listener) {
		servers = append(servers, s)
		go func() { errc <- s.Serve(ln) }()
	}
	serve(g.newServer("http"), httpLn)
	if httpsLn != nil {
		if g.fallback == nil && !g.hasSnapshotCertificates() {
			g.log.Warn().Str("addr", httpsLn.Addr().String()).Msg("https listener has no certificate yet: handshakes fail until the snapshot or --tls-cert-file provides one")
		}
		serve(g.newServer("https"), tls.NewListener(httpsLn, g.tlsConfig))
	}
	if telLn != nil {
		tel := &fasthttp.Server{Handler: g.handleTelemetry, NoDefaultServerHeader: true, ReadTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second, Logger: fasthttpLogger{g.log}}
		serve(tel, telLn)
	}
	watcher := g.startWatch()
	close(g.ready)
	g.log.Info().Str("http", g.httpAddr.String()).Str("https", addrString(g.httpsAddr)).Str("telemetry", addrString(g.telAddr)).Msg("gateway listening")

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		g.watch(watchCtx, watcher)
	}()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		g.log.Error().Err(serveErr).Msg("listener failed")
	}
	stopWatch()
	<-watchDone
	g.shutdown(servers)
	return serveErr
}

func (g *Gateway) hasSnapshotCertificates() bool {
	rt := g.rt.Load()
	return rt != nil && rt.certs != nil && (rt.certs.def != nil || len(rt.certs.exact) > 0 || len(rt.certs.wildcard) > 0)
}

// shutdown drains: health turns 503 at once so load balancers stop
// sending, traffic is still served for ShutdownDelay, then listeners close
// and in-flight requests get up to ShutdownTimeout to finish.
func (g *Gateway) shutdown(servers []*fasthttp.Server) {
	g.draining.Store(true)
	g.log.Info().Dur("delay", g.opts.ShutdownDelay).Dur("timeout", g.opts.ShutdownTimeout).Msg("draining")
	if g.opts.ShutdownDelay > 0 {
		time.Sleep(g.opts.ShutdownDelay)
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.opts.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.ShutdownWithContext(ctx); err != nil {
				g.log.Warn().Err(err).Msg("shutdown did not finish cleanly")
			}
		}()
	}
	wg.Wait()
	if c, ok := g.counters.(io.Closer); ok {
		_ = c.Close()
	}
	if c, ok := g.cache.(io.Closer); ok {
		_ = c.Close()
	}
	g.log.Info().Msg("stopped")
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
