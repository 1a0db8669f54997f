// Command apim-gateway serves API Management configuration snapshots: the
// data plane of the Arc extension. It can run alone from a snapshot file.
//
//	apim-gateway --config PATH [flags]      serve
//	apim-gateway validate --config PATH     check a snapshot and exit
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/logging"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "validate" {
		return validate(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "version" {
		fmt.Fprintln(stdout, version)
		return 0
	}
	opts, level, err := parseServeFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	return serve(opts, level, stdout, stderr)
}

func parseServeFlags(args []string, stderr io.Writer) (server.Options, zerolog.Level, error) {
	opts := server.DefaultOptions()
	fs := flag.NewFlagSet("apim-gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: apim-gateway --config PATH [flags]\n       apim-gateway validate --config PATH\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&opts.ConfigPath, "config", "/apim/config", "configuration snapshot: a JSON or YAML file, or a folder holding "+config.SnapshotFile)
	fs.StringVar(&opts.HTTPAddr, "http-addr", opts.HTTPAddr, "HTTP traffic listener")
	fs.StringVar(&opts.HTTPSAddr, "https-addr", opts.HTTPSAddr, "HTTPS traffic listener (empty disables it)")
	fs.StringVar(&opts.TelemetryAddr, "telemetry-addr", opts.TelemetryAddr, "telemetry listener: /metrics, health, /telemetry/logs and /telemetry/status for the agent (empty disables it)")
	fs.StringVar(&opts.TLSCertFile, "tls-cert-file", "", "PEM certificate chain served on HTTPS when no snapshot hostname certificate matches")
	fs.StringVar(&opts.TLSKeyFile, "tls-key-file", "", "PEM private key for --tls-cert-file")
	fs.StringVar(&opts.ServerCipherSuites, server.SettingServerCiphers, "", "client-to-gateway TLS 1.2 cipher suites, comma-separated IANA names (default: Go's secure set)")
	fs.StringVar(&opts.ClientCipherSuites, server.SettingClientCiphers, "", "gateway-to-backend TLS 1.2 cipher suites, comma-separated IANA names (default: Go's secure set)")
	fs.StringVar(&opts.BackendCAFile, "backend-ca-file", "", "PEM CA certificates trusted for https backends, besides the system roots")
	fs.BoolVar(&opts.ForwardedProto, server.SettingForwardedProto, false, "trust X-Forwarded-Proto to tell http from https (behind a TLS-terminating ingress)")
	fs.IntVar(&opts.MaxHeaderBytes, "max-header-bytes", opts.MaxHeaderBytes, "largest request line plus headers; larger gets 431")
	fs.Int64Var(&opts.MaxBodyBytes, "max-body-bytes", opts.MaxBodyBytes, "largest request body; larger gets 413 (0 = no limit)")
	fs.DurationVar(&opts.ReadTimeout, "read-timeout", opts.ReadTimeout, "time allowed to read a request's headers and buffered body (slow clients)")
	fs.DurationVar(&opts.WriteTimeout, "write-timeout", opts.WriteTimeout, "time allowed to write a response (0 = no limit, for streaming)")
	fs.DurationVar(&opts.IdleTimeout, "idle-timeout", opts.IdleTimeout, "how long an idle keep-alive connection stays open")
	fs.IntVar(&opts.MaxConns, "max-conns", opts.MaxConns, "most concurrent client connections; more get 503")
	fs.IntVar(&opts.MaxConnsPerIP, "max-conns-per-ip", 0, "most concurrent connections from one client IP; more get 429 (0 = no limit)")
	fs.DurationVar(&opts.BackendTimeout, "backend-timeout", opts.BackendTimeout, "time allowed for a backend to answer (APIM's forward-request default is 300s)")
	fs.DurationVar(&opts.ShutdownDelay, "shutdown-delay", opts.ShutdownDelay, "on SIGTERM, keep serving this long with health at 503 so load balancers stop sending")
	fs.DurationVar(&opts.ShutdownTimeout, "shutdown-timeout", opts.ShutdownTimeout, "then wait at most this long for in-flight requests")
	fs.DurationVar(&opts.ReloadInterval, "reload-interval", opts.ReloadInterval, "re-read the snapshot at least this often, besides file events")
	fs.Float64Var(&opts.RequestLogSampling, "request-log-sampling", opts.RequestLogSampling, "share of successful requests logged, 0 to 1 (failures are always logged)")
	fs.IntVar(&opts.RequestLogBuffer, "request-log-buffer", opts.RequestLogBuffer, "request log records kept for the agent (/telemetry/logs); the oldest are overwritten, and counted if unread")
	fs.IntVar(&opts.MetricsMaxSeries, "metrics-max-series", opts.MetricsMaxSeries, "most distinct dimension sets of the request metrics; further requests count in an \"other\" series")
	fs.StringVar(&opts.CacheConnectionStringFile, "cache-connection-string-file", "", "file holding a Redis connection string (cache.external.connectionString): rate limits and quotas shared by all replicas")
	fs.BoolVar(&opts.StrictPolicies, "strict-policies", false, "reject a snapshot with a policy this gateway does not run, instead of skipping the policy with a warning")
	logLevel := fs.String("log-level", "info", "debug, info, warn, error or none; request logs are at info")
	if err := fs.Parse(args); err != nil {
		return opts, 0, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "apim-gateway: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return opts, 0, errors.New("unexpected argument")
	}
	level, err := logging.ParseLevel(*logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "apim-gateway: --%v\n", err)
		return opts, 0, err
	}
	return opts, level, nil
}

func serve(opts server.Options, level zerolog.Level, stdout, stderr io.Writer) int {
	// zerolog reads these from package variables; they are set once here,
	// before any logger exists.
	zerolog.TimeFieldFormat = logging.TimeFormat
	zerolog.MessageFieldName = "msg"
	out := logging.NewBatchWriter(stdout, 100*time.Millisecond, 256<<10)
	defer out.Close()
	log := logging.New(out, level, "gateway")
	reqLog := logging.New(out, level, "request")

	opts.Version = version
	g, err := server.New(opts, log, reqLog)
	if err != nil {
		log.Error().Err(err).Msg("invalid options")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		// A second signal while draining exits at once.
		<-ctx.Done()
		stop()
		hard := make(chan os.Signal, 1)
		signal.Notify(hard, syscall.SIGTERM, syscall.SIGINT)
		<-hard
		_ = out.Close()
		os.Exit(1)
	}()
	log.Info().Str("version", version).Str("config", opts.ConfigPath).Msg("starting")
	if err := g.Run(ctx); err != nil {
		log.Error().Err(err).Msg("gateway stopped with an error")
		return 1
	}
	return 0
}

func validate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("apim-gateway validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "snapshot file (JSON or YAML) or folder holding "+config.SnapshotFile)
	strict := fs.Bool("strict-policies", false, "report policies this gateway does not run as errors")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" && fs.NArg() == 1 {
		*path = fs.Arg(0)
	}
	if *path == "" {
		fmt.Fprintln(stderr, "apim-gateway validate: --config is required")
		return 2
	}
	s, err := config.Load(*path)
	if err != nil {
		var ve *config.ValidationError
		if errors.As(err, &ve) {
			fmt.Fprintf(stderr, "%s: %d problem(s)\n", ve.Source, len(ve.Issues))
			for _, i := range ve.Issues {
				fmt.Fprintf(stderr, "  %s: %s\n", i.Path, i.Message)
			}
			return 1
		}
		fmt.Fprintln(stderr, "apim-gateway validate:", err)
		return 1
	}
	ops := 0
	for _, a := range s.APIs {
		ops += len(a.Operations)
	}
	warnings, err := server.Check(s, *strict)
	if err != nil {
		var ce *policy.CompileError
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "%s: %d policy problem(s)\n", *path, len(ce.Issues))
			for _, is := range ce.Issues {
				fmt.Fprintf(stderr, "  %s\n", is)
			}
			return 1
		}
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		return 1
	}
	for _, w := range warnings {
		fmt.Fprintf(stdout, "%s: warning: %s\n", *path, w)
	}
	fmt.Fprintf(stdout, "%s: valid (%d APIs, %d operations, %d products, %d subscriptions)\n", *path, len(s.APIs), ops, len(s.Products), len(s.Subscriptions))
	return 0
}
