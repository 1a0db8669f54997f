package main

import (
	"io"
	"strings"
	"time"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/configsync"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/credentials"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/health"
)

// readiness is ready once a snapshot is being served: published by this
// run or kept from a previous one (the backup). An expired credential or
// a pending restart does not make the pod unready (the gateway keeps
// serving its last configuration); they show in the detail.
func (p *process) readiness() (bool, any) {
	hb := p.sync.HeartbeatBody()
	ready := hb.Status == configsync.StatusSynced || hb.Status == configsync.StatusStale
	detail := map[string]any{
		"ready":    ready,
		"status":   hb.Status,
		"revision": p.sync.PublishedRevision(),
	}
	if hb.GatewayReachable != nil {
		detail["gatewayReachable"] = *hb.GatewayReachable
		if *hb.GatewayReachable {
			detail["gatewayRevision"] = hb.ConfigurationRevision
		}
	}
	if hb.LastSyncAt != nil {
		detail["lastSyncAt"] = hb.LastSyncAt
	}
	if hb.LastError != "" {
		detail["lastError"] = hb.LastError
	}
	if p.cred != nil {
		if exp := p.cred.ExpiresAt(); !exp.IsZero() {
			st := credentialStatus(exp, time.Now())
			c := map[string]any{"state": st.State, "expiresAt": st.ExpiresAt}
			switch st.State {
			case credentials.StateExpired:
				c["detail"] = "gateway token expired: serving the last configuration, no updates; update gateway.auth.token"
			case credentials.StateExpiring:
				c["detail"] = "gateway token expires within 7 days; update gateway.auth.token"
			}
			detail["credential"] = c
		}
	}
	restart, rejected := p.live.state()
	if len(restart) > 0 {
		detail["restartRequired"] = "restart required for: " + strings.Join(restart, ", ")
	}
	if rejected != "" {
		detail["settingsRejected"] = rejected
	}
	return ready, detail
}

func (p *process) writeMetrics(w io.Writer) {
	now := time.Now()
	hb := p.sync.HeartbeatBody()
	st := p.sync.Stats()
	ready := 0.0
	if hb.Status == configsync.StatusSynced || hb.Status == configsync.StatusStale {
		ready = 1
	}
	health.WriteMetric(w, "apim_agent_config_sync_total", "counter", "Configuration syncs by result (success: the endpoint answered 200 or 304, or the local file was read).",
		health.Sample{Labels: []string{"result", "success"}, Value: float64(st.Successes)},
		health.Sample{Labels: []string{"result", "failure"}, Value: float64(st.Failures)})
	health.WriteMetric(w, "apim_agent_snapshots_published_total", "counter", "Configuration snapshots written to the config folder.",
		health.Sample{Value: float64(st.Published)})
	health.WriteMetric(w, "apim_agent_snapshots_rejected_total", "counter", "Configuration snapshots refused by validation (the previous one kept serving).",
		health.Sample{Value: float64(st.Rejected)})
	if hb.LastSyncAt != nil {
		health.WriteMetric(w, "apim_agent_last_sync_age_seconds", "gauge", "Seconds since the configuration source last answered successfully.",
			health.Sample{Value: now.Sub(*hb.LastSyncAt).Seconds()})
	}
	if rev := p.sync.PublishedRevision(); rev != "" {
		health.WriteMetric(w, "apim_agent_snapshot_info", "gauge", "The revision of the snapshot the agent serves (value 1).",
			health.Sample{Labels: []string{"revision", rev}, Value: 1})
	}
	if hb.GatewayReachable != nil {
		v := 0.0
		if *hb.GatewayReachable {
			v = 1
		}
		health.WriteMetric(w, "apim_agent_gateway_reachable", "gauge", "1 when the gateway answered its last status request.",
			health.Sample{Value: v})
	}
	if p.cred != nil {
		if exp := p.cred.ExpiresAt(); !exp.IsZero() {
			health.WriteMetric(w, "apim_agent_token_expiry_seconds", "gauge", "Seconds until the gateway token expires (negative once expired).",
				health.Sample{Value: float64(credentialStatus(exp, now).SecondsToExpiry)})
		}
	}
	health.WriteMetric(w, "apim_agent_ready", "gauge", "1 when a configuration snapshot is being served.",
		health.Sample{Value: ready})
	health.WriteMetric(w, "apim_agent_settings_reload_errors_total", "counter", "Settings changes refused as invalid (the previous settings stayed).",
		health.Sample{Value: float64(p.live.reloadErrors.Load())})
	restart, _ := p.live.state()
	samples := []health.Sample{}
	for _, k := range restart {
		samples = append(samples, health.Sample{Labels: []string{"key", k}, Value: 1})
	}
	health.WriteMetric(w, "apim_agent_settings_restart_required", "gauge", "Settings changed since start that apply only after a restart (one series per key).", samples...)
	health.WriteMetric(w, "apim_agent_settings_restart_required_keys", "gauge", "How many changed settings wait for a restart.",
		health.Sample{Value: float64(len(restart))})
	if m := p.mon.Load(); m != nil {
		m.WriteMetrics(w)
	}
}
