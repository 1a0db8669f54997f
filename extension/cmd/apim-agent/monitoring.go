package main

import (
	"context"
	"reflect"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/monitoring"
)

// monitor runs the monitoring pipeline (request logs and metrics from the
// gateway to Log Analytics, OTLP, StatsD). The monitoring settings apply
// live: when the applied settings give a different configuration the
// pipeline is stopped (its spool and read position stay on disk) and
// built again. A configuration that cannot be built is reported with the
// setting it names and retried at the next settings change; the rest of
// the agent keeps running.
func (p *process) monitor(ctx context.Context) error {
	log := p.monLog
	var running monitoring.Config
	first := true
	for {
		changed := p.live.Changed()
		cfg, err := monitoring.FromSettings(p.live.current(), p.configDir, p.gatewayTelemetry)
		if err != nil {
			log.Error().Err(err).Msg("monitoring not started")
		} else if first || !reflect.DeepEqual(cfg, running) {
			first = false
			running = cfg
			if err := p.runMonitoring(ctx, cfg, changed); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// runMonitoring runs one pipeline until ctx ends or the settings change.
func (p *process) runMonitoring(ctx context.Context, cfg monitoring.Config, changed <-chan struct{}) error {
	var cred azcore.TokenCredential
	if p.provider != nil {
		cred = p.provider.TokenCredential()
	}
	deps := p.monDeps
	deps.Logger, deps.Credential = p.monLog, cred
	pl, err := monitoring.New(cfg, deps)
	if err != nil {
		p.monLog.Error().Err(err).Msg("monitoring not started")
		p.mon.Store(nil)
		waitForChange(ctx, changed)
		return nil
	}
	p.mon.Store(pl)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- pl.Run(rctx) }()
	if cfg.Enabled() {
		p.monLog.Info().Bool("dataCollector", cfg.DataCollectorEnabled()).Bool("logsIngestion", cfg.LogsIngestionEnabled()).
			Bool("otlp", cfg.OTLP.Enabled).Bool("statsd", cfg.StatsD != nil).Msg("monitoring running")
	}
	select {
	case <-ctx.Done():
	case <-changed:
	case err := <-done:
		// Run ends early only on a failure it cannot recover from; the
		// agent keeps syncing configuration without monitoring.
		if err != nil {
			p.monLog.Error().Err(err).Msg("monitoring stopped")
		}
		waitForChange(ctx, changed)
		return nil
	}
	cancel()
	if err := <-done; err != nil && ctx.Err() == nil {
		p.monLog.Error().Err(err).Msg("monitoring stopped")
	}
	return nil
}
