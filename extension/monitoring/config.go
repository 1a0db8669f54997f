package monitoring

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"time"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
)

// Setting keys read by FromSettings.
const (
	KeyWorkspaceID       = "monitoring.workspaceId"
	KeyIngestionKey      = "monitoring.ingestionKey"
	KeyCustomResourceID  = "monitoring.customResourceId"
	KeyDataCollectorURL  = "monitoring.dataCollector.endpoint"
	KeyUploadInterval    = "monitoring.uploadInterval"
	KeyIngestionEndpoint = "monitoring.logsIngestion.endpoint"
	KeyIngestionRuleID   = "monitoring.logsIngestion.ruleId"
	KeyIngestionStream   = "monitoring.logsIngestion.streamName"
	KeyOTelEnabled       = "telemetry.metrics.opentelemetry.enabled"
	KeyOTelCollector     = "telemetry.metrics.opentelemetry.collector.uri"
	KeyLocalMetrics      = "telemetry.metrics.local"
	KeyStatsDEndpoint    = "telemetry.metrics.localStatsd.endpoint"
	KeyStatsDSampling    = "telemetry.metrics.localStatsd.sampling"
	KeyStatsDTagFormat   = "telemetry.metrics.localStatsd.tagFormat"
)

// Defaults.
const (
	DefaultUploadInterval = 60 * time.Second
	DefaultSpoolBytes     = 64 << 20
	DefaultTelemetryURL   = "http://127.0.0.1:9090"
	// DefaultMetricsStream is the metrics stream of the DCR shipped in
	// deploy/log-analytics; monitoring.logsIngestion.streamName names the
	// logs stream.
	DefaultMetricsStream = "Custom-APIMGatewayMetrics"
	// Log-Type values of the Data Collector API (tables get the _CL suffix).
	LogTypeLogs    = "APIMGatewayLogs"
	LogTypeMetrics = "APIMGatewayMetrics"
)

// Cloud selects the Data Collector host suffix.
type Cloud string

// Clouds with a known Data Collector host.
const (
	CloudPublic       Cloud = "AzureCloud"
	CloudChina        Cloud = "AzureChinaCloud"
	CloudUSGovernment Cloud = "AzureUSGovernment"
)

var odsSuffix = map[Cloud]string{
	"":                ".ods.opinsights.azure.com",
	CloudPublic:       ".ods.opinsights.azure.com",
	CloudChina:        ".ods.opinsights.azure.cn",
	CloudUSGovernment: ".ods.opinsights.azure.us",
}

// Config is what the pipeline needs; build it with FromSettings or by hand.
// It prints safely: the ingestion key is a settings.Secret.
type Config struct {
	// Data Collector API (legacy): both set, or neither.
	WorkspaceID  string
	IngestionKey settings.Secret
	// DataCollectorEndpoint overrides https://{WorkspaceID}.ods.opinsights.azure.{com,cn,us}.
	DataCollectorEndpoint string
	Cloud                 Cloud
	// CustomResourceID becomes x-ms-AzureResourceId (Data Collector) and the
	// ResourceId column of metric rows.
	CustomResourceID string

	// Logs Ingestion API: Endpoint set means enabled.
	LogsIngestion LogsIngestionConfig

	// UploadInterval bounds how long a row waits before upload (default 60s).
	// Full batches go out at once, so high traffic never waits for it.
	UploadInterval time.Duration

	// SpoolDir holds the on-disk buffer (one subfolder per destination) and
	// the read position; SpoolBytes bounds it (default 64 MiB, shared
	// between the destinations).
	SpoolDir   string
	SpoolBytes int64

	// GatewayTelemetryURL is the gateway's telemetry listener (default
	// http://127.0.0.1:9090).
	GatewayTelemetryURL string
	// PollInterval is how often the gateway is asked for new records while
	// it has none (default 1s); PageSize the limit per request (default 5000).
	PollInterval time.Duration
	PageSize     int
	// MetricsDelay is how long after a minute ends its metric rows are
	// closed, so records read a little late still count (default 15s).
	MetricsDelay time.Duration
	// MaxSeriesPerMinute bounds the dimension combinations kept per minute
	// (default 10000); more are counted as dropped.
	MaxSeriesPerMinute int

	// OpenTelemetry metrics export (OTLP/HTTP).
	OTLP OTLPConfig
	// StatsD is the local metrics export; nil when off.
	StatsD *StatsDConfig

	// Retries of the Data Collector API (go-retryablehttp): RetryMax tries
	// after the first (default 4), waits between RetryWaitMin (1s) and
	// RetryWaitMax (30s); Retry-After on 429 and 503 is honoured as sent.
	RetryMax     int
	RetryWaitMin time.Duration
	RetryWaitMax time.Duration

	// ShutdownTimeout bounds the final upload when Run stops (default 5s).
	ShutdownTimeout time.Duration
}

// LogsIngestionConfig configures the Logs Ingestion API.
type LogsIngestionConfig struct {
	Endpoint          string // DCE or DCR logs ingestion endpoint (https)
	RuleID            string // immutable id, dcr-...
	StreamName        string // logs stream, Custom-...
	MetricsStreamName string // metrics stream (default DefaultMetricsStream)
}

// OTLPConfig configures the OpenTelemetry metrics export.
type OTLPConfig struct {
	Enabled      bool
	CollectorURI string        // http(s)://host:port[/path]; /v1/metrics when no path
	Interval     time.Duration // export interval (default 60s)
}

// DataCollectorEnabled reports whether the Data Collector destination is on.
func (c *Config) DataCollectorEnabled() bool {
	return c.WorkspaceID != "" && !c.IngestionKey.IsZero()
}

// LogsIngestionEnabled reports whether the Logs Ingestion destination is on.
func (c *Config) LogsIngestionEnabled() bool { return c.LogsIngestion.Endpoint != "" }

// Enabled reports whether any destination or export is configured.
func (c *Config) Enabled() bool {
	return c.DataCollectorEnabled() || c.LogsIngestionEnabled() || c.OTLP.Enabled || c.StatsD != nil
}

// FromSettings builds a Config from the extension settings. configDir is the
// agent's config folder (the spool goes to configDir/monitoring) and
// telemetryURL the gateway telemetry address ("" for the default).
func FromSettings(s *settings.Settings, configDir, telemetryURL string) (Config, error) {
	c := Config{
		WorkspaceID:           s.String(KeyWorkspaceID),
		IngestionKey:          s.Secret(KeyIngestionKey),
		DataCollectorEndpoint: s.String(KeyDataCollectorURL),
		CustomResourceID:      s.String(KeyCustomResourceID),
		UploadInterval:        s.Duration(KeyUploadInterval),
		LogsIngestion: LogsIngestionConfig{
			Endpoint:   s.String(KeyIngestionEndpoint),
			RuleID:     s.String(KeyIngestionRuleID),
			StreamName: s.String(KeyIngestionStream),
		},
		OTLP: OTLPConfig{
			Enabled:      s.Bool(KeyOTelEnabled),
			CollectorURI: s.String(KeyOTelCollector),
		},
		GatewayTelemetryURL: telemetryURL,
	}
	if s.String(KeyLocalMetrics) == "statsd" {
		c.StatsD = &StatsDConfig{Endpoint: s.String(KeyStatsDEndpoint), Sampling: 1, TagFormat: s.String(KeyStatsDTagFormat)}
		if s.IsSet(KeyStatsDSampling) || s.Float(KeyStatsDSampling) != 0 {
			c.StatsD.Sampling = s.Float(KeyStatsDSampling)
		}
	}
	if configDir != "" {
		c.SpoolDir = filepath.Join(configDir, "monitoring")
	}
	c.setDefaults()
	return c, c.Validate()
}

func (c *Config) setDefaults() {
	if c.UploadInterval <= 0 {
		c.UploadInterval = DefaultUploadInterval
	}
	if c.SpoolBytes <= 0 {
		c.SpoolBytes = DefaultSpoolBytes
	}
	if c.GatewayTelemetryURL == "" {
		c.GatewayTelemetryURL = DefaultTelemetryURL
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.PageSize <= 0 {
		c.PageSize = 5000
	}
	c.PageSize = min(c.PageSize, 10000) // the contract's maximum
	if c.MetricsDelay <= 0 {
		c.MetricsDelay = 15 * time.Second
	}
	if c.MaxSeriesPerMinute <= 0 {
		c.MaxSeriesPerMinute = 10000
	}
	if c.LogsIngestion.MetricsStreamName == "" {
		c.LogsIngestion.MetricsStreamName = DefaultMetricsStream
	}
	if c.OTLP.Interval <= 0 {
		c.OTLP.Interval = 60 * time.Second
	}
	if c.RetryMax == 0 {
		c.RetryMax = 4
	}
	if c.RetryWaitMin <= 0 {
		c.RetryWaitMin = time.Second
	}
	if c.RetryWaitMax <= 0 {
		c.RetryWaitMax = 30 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 5 * time.Second
	}
}

// Workspace ids are GUIDs; anything else would end up in a host name.
var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Validate checks the configuration; errors name the setting, never a
// secret's value.
func (c *Config) Validate() error {
	if (c.WorkspaceID == "") != c.IngestionKey.IsZero() {
		return fmt.Errorf("%s and %s must be set together", KeyWorkspaceID, KeyIngestionKey)
	}
	if c.DataCollectorEnabled() {
		if c.DataCollectorEndpoint == "" && !guidRE.MatchString(c.WorkspaceID) {
			return fmt.Errorf("%s: %q is not a workspace id (a GUID)", KeyWorkspaceID, c.WorkspaceID)
		}
		if _, err := base64.StdEncoding.DecodeString(c.IngestionKey.Reveal()); err != nil {
			return fmt.Errorf("%s: not valid base64 (use the workspace's primary or secondary key)", KeyIngestionKey)
		}
		if _, ok := odsSuffix[c.Cloud]; !ok {
			return fmt.Errorf("monitoring cloud %q: want %s, %s or %s", c.Cloud, CloudPublic, CloudChina, CloudUSGovernment)
		}
		if _, err := c.dataCollectorURL(); err != nil {
			return err
		}
	}
	if li := c.LogsIngestion; li.Endpoint != "" {
		u, err := url.Parse(li.Endpoint)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("%s: %q is not an https URL", KeyIngestionEndpoint, li.Endpoint)
		}
		if li.RuleID == "" {
			return fmt.Errorf("%s is required with %s", KeyIngestionRuleID, KeyIngestionEndpoint)
		}
		if li.StreamName == "" {
			return fmt.Errorf("%s is required with %s", KeyIngestionStream, KeyIngestionEndpoint)
		}
	}
	if c.OTLP.Enabled {
		u, err := url.Parse(c.OTLP.CollectorURI)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s: %q is not an http(s) URL", KeyOTelCollector, c.OTLP.CollectorURI)
		}
	}
	if sd := c.StatsD; sd != nil {
		if _, _, err := net.SplitHostPort(sd.Endpoint); err != nil {
			return fmt.Errorf("%s: %q is not host:port", KeyStatsDEndpoint, sd.Endpoint)
		}
		if sd.Sampling < 0 || sd.Sampling > 1 {
			return fmt.Errorf("%s: %v is not between 0 and 1", KeyStatsDSampling, sd.Sampling)
		}
		switch sd.TagFormat {
		case "", TagFormatDogStatsD, TagFormatInfluxDB, TagFormatLibrato:
		default:
			return fmt.Errorf("%s: %q: want %s, %s or %s", KeyStatsDTagFormat, sd.TagFormat, TagFormatDogStatsD, TagFormatInfluxDB, TagFormatLibrato)
		}
	}
	if (c.DataCollectorEnabled() || c.LogsIngestionEnabled()) && c.SpoolDir == "" {
		return fmt.Errorf("monitoring: a spool folder is required")
	}
	if u, err := url.Parse(c.GatewayTelemetryURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("gateway telemetry address %q is not an http(s) URL", c.GatewayTelemetryURL)
	}
	return nil
}

// dataCollectorURL is the full POST URL of the Data Collector API.
func (c *Config) dataCollectorURL() (string, error) {
	if c.DataCollectorEndpoint == "" {
		return "https://" + c.WorkspaceID + odsSuffix[c.Cloud] + "/api/logs?api-version=2016-04-01", nil
	}
	u, err := url.Parse(c.DataCollectorEndpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s: %q is not an http(s) URL", KeyDataCollectorURL, c.DataCollectorEndpoint)
	}
	// A base URL (proxy, private endpoint) gets the documented path.
	if u.Path == "" || u.Path == "/" {
		u.Path = "/api/logs"
	}
	q := u.Query()
	if q.Get("api-version") == "" {
		q.Set("api-version", "2016-04-01")
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}
