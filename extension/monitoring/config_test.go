package monitoring

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
	"github.com/seed393f6fe3/apim-arc-gateway/schemas"
)

func TestFromSettings(t *testing.T) {
	t.Parallel()
	schema, err := settings.ParseSchema(schemas.ExtensionSettings)
	if err != nil {
		t.Fatal(err)
	}
	s, issues := settings.LoadMap(map[string]string{
		"gateway.configuration.uri": "https://contoso.configuration.azure-api.net",
		KeyWorkspaceID:              testWorkspace,
		KeyCustomResourceID:         testResource,
		KeyUploadInterval:           "15s",
		KeyIngestionEndpoint:        "https://dcr-x.westeurope-1.ingest.monitor.azure.com",
		KeyIngestionRuleID:          "dcr-0123",
		KeyIngestionStream:          "Custom-APIMGatewayLogs",
		KeyOTelEnabled:              "true",
		KeyOTelCollector:            "http://otel:4318",
		KeyLocalMetrics:             "statsd",
		KeyStatsDEndpoint:           "statsd.monitoring:8125",
		KeyStatsDTagFormat:          "influxDB",
	}, map[string]string{
		"gateway.auth.token": "GatewayKey gw&209901010000&c2ln",
		KeyIngestionKey:      testKey,
	}, schema)
	if settings.HasErrors(issues) {
		t.Fatalf("settings: %v", issues)
	}
	cfg, err := FromSettings(s, "/apim/config", "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WorkspaceID != testWorkspace || cfg.IngestionKey.Reveal() != testKey || cfg.CustomResourceID != testResource ||
		cfg.UploadInterval != 15*time.Second || cfg.SpoolDir != filepath.Join("/apim/config", "monitoring") ||
		cfg.SpoolBytes != DefaultSpoolBytes || cfg.GatewayTelemetryURL != DefaultTelemetryURL ||
		cfg.LogsIngestion.RuleID != "dcr-0123" || cfg.LogsIngestion.MetricsStreamName != DefaultMetricsStream ||
		!cfg.OTLP.Enabled || cfg.OTLP.CollectorURI != "http://otel:4318" {
		t.Fatalf("config %+v", cfg)
	}
	if sd := cfg.StatsD; sd == nil || sd.Endpoint != "statsd.monitoring:8125" || sd.Sampling != 1 || sd.TagFormat != TagFormatInfluxDB {
		t.Fatalf("statsd %+v", cfg.StatsD)
	}
	if !cfg.DataCollectorEnabled() || !cfg.LogsIngestionEnabled() {
		t.Fatal("destinations not enabled")
	}
	if strings.Contains(cfg.IngestionKey.String(), testKey) {
		t.Fatal("key printable")
	}

	// Nothing configured: monitoring is off and needs no spool.
	empty, issues := settings.LoadMap(map[string]string{"gateway.configuration.uri": "https://x"},
		map[string]string{"gateway.auth.token": "GatewayKey gw&209901010000&c2ln"}, schema)
	if settings.HasErrors(issues) {
		t.Fatalf("settings: %v", issues)
	}
	cfg, err = FromSettings(empty, "", "")
	if err != nil || cfg.Enabled() || cfg.UploadInterval != DefaultUploadInterval {
		t.Fatalf("%+v %v", cfg, err)
	}
}
