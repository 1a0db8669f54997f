package main

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/internal/configfake"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/internal/lafake"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/monitoring"
	"github.com/seed393f6fe3/apim-arc-gateway/internal/logcapture"
)

// TestEndToEndMonitoring runs the pod's two containers with monitoring on:
// requests through the real gateway become rows in the (TLS, SharedKey
// checking) Data Collector fake, logs and per-minute metrics, with the
// columns users query; a change of monitoring settings applies without a
// restart; the ingestion key never appears in the agent's logs or metrics.
func TestEndToEndMonitoring(t *testing.T) {
	backend := newBackend(t)
	expiry := time.Now().Add(20 * 24 * time.Hour)
	tok := gatewayKey(sig1, expiry)
	fake := configfake.Start("gw1")
	defer fake.Close()
	fake.Accept(tok)
	fake.SetSnapshot(snapshotFile(t, "snapshot-r1.json", backend.URL), "etag-1")

	const workspace = "3f2a1b9c-0d4e-4f5a-8b6c-7d8e9f0a1b2c"
	ingestionKey := base64.StdEncoding.EncodeToString([]byte("e2e-monitoring-shared-key-material-0123456789"))
	dc, err := lafake.NewDataCollector(workspace, ingestionKey, true)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()

	configDir := t.TempDir()
	plain := map[string]string{
		keyURI:                         fake.URL(),
		monitoring.KeyWorkspaceID:      workspace,
		monitoring.KeyDataCollectorURL: dc.Endpoint(),
		monitoring.KeyUploadInterval:   "1s",
		monitoring.KeyCustomResourceID: "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/c1",
	}
	settingsMount := newKubeMount(t, plain)
	protected := newKubeMount(t, map[string]string{keyToken: tok, monitoring.KeyIngestionKey: ingestionKey})
	logs := &logcapture.Buffer{}
	gw := startGateway(t, configDir)
	opts := agentOptions(fake, settingsMount.dir, protected.dir, configDir, gw.telemetry, logs)
	opts.monitoring.DataCollectorClient = dc.Client()
	agent := startAgent(t, opts)
	t.Cleanup(func() {
		if t.Failed() {
			_, m := call(agent.health + "/metrics")
			t.Logf("agent logs:\n%s\nmetrics:\n%s\nlog rows: %v", logs.String(), m, dc.Rows(monitoring.LogTypeLogs))
		}
	})

	eventually(t, "the gateway serves the synced API", 10*time.Second, func() bool {
		code, _ := call(gw.http + "/orders/items")
		return code == 200
	})
	const n = 25
	for range n {
		if code, body := call(gw.http + "/orders/items"); code != 200 {
			t.Fatalf("request: %d %s", code, body)
		}
	}
	// Every request (the n above and the polls before) arrives once as a
	// log row; the first poll may have been a 404 before the sync.
	eventually(t, "log rows for the requests", 20*time.Second, func() bool {
		ok := 0
		for _, r := range dc.Rows(monitoring.LogTypeLogs) {
			if r["ApiId"] == "orders" && fmt.Sprint(r["ResponseCode"]) == "200" {
				ok++
			}
		}
		if ok < n && strings.Contains(logs.String(), "monitoring not started") {
			t.Fatalf("agent logs:\n%s", logs.String())
		}
		return ok >= n
	})
	rows := dc.Rows(monitoring.LogTypeLogs)
	if ids := dc.DistinctRecordIDs(monitoring.LogTypeLogs); ids != len(rows) {
		t.Errorf("%d log rows, %d distinct RecordIds: duplicates without a shared id", len(rows), ids)
	}
	for _, r := range rows {
		if r["Method"] != "GET" || r["OperationId"] == nil && fmt.Sprint(r["ResponseCode"]) == "200" || r["RecordId"] == nil || r["EventTime"] == nil {
			t.Fatalf("log row lacks the columns users query: %v", r)
		}
	}

	// Metric rows: the open minute is flushed when the agent stops, and
	// its Requests for the API add up to the successful requests.
	agent.stop()
	total := 0.0
	for _, r := range dc.Rows(monitoring.LogTypeMetrics) {
		if r["MetricName"] == "Requests" && r["ApiId"] == "orders" && fmt.Sprint(r["GatewayResponseCode"]) == "200" {
			v, _ := strconv.ParseFloat(fmt.Sprint(r["Total"]), 64)
			total += v
		}
	}
	if total < n {
		t.Fatalf("Requests metric rows for the API total %v, want at least %d:\n%v", total, n, dc.Rows(monitoring.LogTypeMetrics))
	}
	firstLogs := logs.String()

	// A restarted agent goes on from its saved read position: nothing is
	// uploaded twice without the same RecordId.
	uploaded := len(dc.Rows(monitoring.LogTypeLogs))
	logs = &logcapture.Buffer{}
	opts.Stdout = logs
	agent = startAgent(t, opts)
	call(gw.http + "/orders/items")
	eventually(t, "the request after the restart uploaded", 20*time.Second, func() bool {
		return len(dc.Rows(monitoring.LogTypeLogs)) > uploaded
	})
	if rows, ids := len(dc.Rows(monitoring.LogTypeLogs)), dc.DistinctRecordIDs(monitoring.LogTypeLogs); rows != ids {
		t.Errorf("after a restart: %d log rows, %d distinct RecordIds", rows, ids)
	}

	// A live change: another workspace key is refused by the fake (403);
	// the agent applies it without a restart and says so on /metrics.
	bad := base64.StdEncoding.EncodeToString([]byte("a-different-key-the-workspace-does-not-know"))
	protected.update(map[string]string{keyToken: tok, monitoring.KeyIngestionKey: bad})
	eventually(t, "the pipeline rebuilt with the new key", 10*time.Second, func() bool {
		return strings.Count(logs.String(), "monitoring running") >= 2
	})
	before := len(dc.Attempts())
	for range 3 {
		call(gw.http + "/orders/items")
	}
	eventually(t, "an upload attempt with the new key, refused", 20*time.Second, func() bool {
		for _, a := range dc.Attempts()[before:] {
			if a.Status == 403 {
				return true
			}
		}
		return false
	})
	_, metrics := call(agent.health + "/metrics")
	if !strings.Contains(metrics, "apim_agent_monitoring_upload_failures_total") {
		t.Errorf("agent /metrics lacks the monitoring series:\n%s", metrics)
	}

	agent.stop()
	all := firstLogs + logs.String() + metrics
	for _, secret := range []string{ingestionKey, bad, sig1} {
		if strings.Contains(all, secret) {
			t.Fatalf("a secret appears in the agent's logs or metrics")
		}
	}
}
