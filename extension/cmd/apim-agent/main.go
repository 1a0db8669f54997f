// Command apim-agent is the control plane of the Arc extension: it reads the
// extension settings Arc mounts, syncs the gateway configuration from the
// configuration endpoint into --config-dir (where apim-gateway watches it),
// and serves probes and metrics on --health-addr.
//
//	apim-agent [flags]                      run
//	apim-agent check-settings [flags]       validate the settings folders and exit
//
// The process is one errgroup of loops, each returning on SIGTERM/SIGINT (a
// second signal exits at once): the settings watch (live keys apply in
// place, others are reported as needing a restart, an invalid set is
// refused), the credential check and change wake-up, token rotation (when
// gateway.auth.rotation.enabled), the configuration sync, the heartbeat and
// the health server (/healthz, /readyz, /metrics).
//
// gateway.configuration.uri may be file:///path, a snapshot file or a folder
// holding snapshot.json (a mounted ConfigMap): the agent then watches it
// and publishes it through the same validation. Such a source needs no
// credential, and no heartbeat is sent: there is no endpoint to send it to.
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

	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/logging"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	setupLogging()
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "check-settings" {
		os.Exit(checkSettings(args[1:], os.Stdout, os.Stderr))
	}
	opts, err := parseFlags(args, os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	go func() {
		// A second signal while shutting down exits at once.
		<-ctx.Done()
		stop()
		hard := make(chan os.Signal, 1)
		signal.Notify(hard, syscall.SIGTERM, syscall.SIGINT)
		<-hard
		os.Exit(1)
	}()
	code := run(ctx, opts)
	stop()
	os.Exit(code)
}

// setupLogging sets zerolog's package variables, once, before any logger exists.
func setupLogging() {
	zerolog.TimeFieldFormat = logging.TimeFormat
	zerolog.MessageFieldName = "msg"
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	opts := defaultOptions()
	fs := flag.NewFlagSet("apim-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: apim-agent [flags]\n       apim-agent check-settings [--settings-dir DIR] [--protected-dir DIR]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	dirFlags(fs, &opts)
	fs.StringVar(&opts.ConfigDir, "config-dir", opts.ConfigDir, "folder the configuration snapshot is published to (the gateway's --config)")
	fs.StringVar(&opts.HealthAddr, "health-addr", opts.HealthAddr, "listener of /healthz, /readyz and /metrics")
	fs.StringVar(&opts.TokenSecret, "token-secret", opts.TokenSecret, "Secret in the pod's namespace that gateway.auth.token is mounted from; token rotation writes renewed tokens back to it (empty: no write-back)")
	fs.StringVar(&opts.GatewayTelemetry, "gateway-telemetry", opts.GatewayTelemetry, "the gateway's telemetry listener, asked each heartbeat which configuration revision it loaded (empty: report the revision the agent published)")
	logLevel := fs.String("log-level", "info", "debug, info, warn, error or none; when given, it overrides telemetry.logs.level")
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "apim-agent: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return opts, errors.New("unexpected argument")
	}
	level, err := logging.ParseLevel(*logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "apim-agent: --%v\n", err)
		return opts, err
	}
	opts.LogLevel = level
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "log-level" {
			opts.LogLevelSet = true
		}
	})
	opts.Stdout = os.Stdout
	return opts, nil
}

func dirFlags(fs *flag.FlagSet, opts *options) {
	fs.StringVar(&opts.SettingsDir, "settings-dir", opts.SettingsDir, "folder of the extension settings (one file per key)")
	fs.StringVar(&opts.ProtectedDir, "protected-dir", opts.ProtectedDir, "folder of the protected extension settings (one file per key)")
}
