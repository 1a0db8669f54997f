package monitoring

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/internal/lafake"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
)

const (
	testWorkspace = "0b9d1a2c-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
	testResource  = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim"
)

// testKey is a made-up workspace key; a distinctive value so a leak is
// easy to find in logs.
var testKey = base64.StdEncoding.EncodeToString([]byte("super-secret-workspace-key-0123456789abcdef"))

func dcConfig(endpoint, key string) Config {
	c := Config{WorkspaceID: testWorkspace, IngestionKey: settings.NewSecret(key), DataCollectorEndpoint: endpoint,
		CustomResourceID: testResource, RetryMax: 3, RetryWaitMin: 5 * time.Millisecond, RetryWaitMax: 20 * time.Millisecond}
	c.setDefaults()
	return c
}

func newTestDC(t *testing.T, fake *lafake.DataCollector, key string, log zerolog.Logger) *dataCollector {
	t.Helper()
	cfg := dcConfig(fake.Endpoint(), key)
	dc, err := newDataCollector(&cfg, fake.Client(), log, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return dc
}

func TestDataCollectorSignedUploadIsAccepted(t *testing.T) {
	t.Parallel()
	fake, err := lafake.NewDataCollector(testWorkspace, testKey, true)
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	dc := newTestDC(t, fake, testKey, zerolog.Nop())
	// Non-ASCII content: the signed length is the byte length.
	body := []byte(`[{"RecordId":"e-1","EventTime":"2026-11-30T00:00:00.000Z","Url":"https://h/ünïcode"}]`)
	if err := dc.upload(context.Background(), kindLogs, body); err != nil {
		t.Fatal(err)
	}
	rows := fake.Rows(LogTypeLogs)
	if len(rows) != 1 || rows[0]["Url"] != "https://h/ünïcode" {
		t.Fatalf("rows %v", rows)
	}
	a := fake.Attempts()[0]
	if a.ResourceID != testResource || a.TimeField != "EventTime" || a.LogType != "APIMGatewayLogs" {
		t.Fatalf("headers: %+v", a)
	}
	if !strings.HasSuffix(a.Date, " GMT") {
		t.Fatalf("x-ms-date %q is not RFC 1123 with GMT", a.Date)
	}
	if err := dc.upload(context.Background(), kindMetrics, []byte(`[{"EventTime":"2026-11-30T00:00:00Z","MetricName":"Requests"}]`)); err != nil {
		t.Fatal(err)
	}
	if n := fake.RowCount(LogTypeMetrics); n != 1 {
		t.Fatalf("metrics rows %d", n)
	}
}

func TestDataCollectorWrongKeyIsRejectedNotRetriedAndNotLeaked(t *testing.T) {
	t.Parallel()
	fake, err := lafake.NewDataCollector(testWorkspace, testKey, true)
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	wrong := base64.StdEncoding.EncodeToString([]byte("another-key-that-is-also-secret-42"))
	var logs bytes.Buffer
	dc := newTestDC(t, fake, wrong, zerolog.New(&logs).Level(zerolog.DebugLevel))
	err = dc.upload(context.Background(), kindLogs, []byte(`[{"EventTime":"2026-11-30T00:00:00Z"}]`))
	var ue *UploadError
	if !errors.As(err, &ue) || ue.StatusCode != http.StatusForbidden || ue.Code != "InvalidAuthorization" {
		t.Fatalf("err = %v, want 403 InvalidAuthorization", err)
	}
	if ue.Permanent {
		t.Fatal("a wrong key must keep the batch (the key can be fixed)")
	}
	if n := len(fake.Attempts()); n != 1 {
		t.Fatalf("%d attempts; 4xx must not be retried", n)
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v %#v", err, ue), logs.String()} {
		for _, secret := range []string{wrong, testKey, "another-key-that-is-also-secret"} {
			if strings.Contains(s, secret) {
				t.Fatalf("key leaked: %s", s)
			}
		}
	}
}

func TestDataCollectorRetriesThrottlingResigned(t *testing.T) {
	t.Parallel()
	fake, err := lafake.NewDataCollector(testWorkspace, testKey, true)
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	fake.FailNext(1, http.StatusTooManyRequests, "1")
	dc := newTestDC(t, fake, testKey, zerolog.Nop())
	start := time.Now()
	if err := dc.upload(context.Background(), kindLogs, []byte(`[{"EventTime":"2026-11-30T00:00:00Z"}]`)); err != nil {
		t.Fatal(err)
	}
	// Retry-After: 1 wins over RetryWaitMax (20ms).
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("retried after %v; Retry-After: 1 not honoured", d)
	}
	at := fake.Attempts()
	if len(at) != 2 || at[0].Status != 429 || at[1].Status != 200 {
		t.Fatalf("attempts %+v", at)
	}
	// The fake recomputed the signature of each try; a new date proves the
	// retry was signed again rather than replayed.
	if at[0].Date == at[1].Date || at[0].Auth == at[1].Auth {
		t.Fatalf("retry not re-signed: %+v", at)
	}
}

func TestDataCollectorStatusHandling(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    int
		attempts  int
		permanent bool
	}{
		{"server error retried then reported", http.StatusInternalServerError, 4, false},
		{"unavailable retried then reported", http.StatusServiceUnavailable, 4, false},
		{"bad request not retried, dropped", http.StatusBadRequest, 1, true},
		{"not found (too large) not retried, dropped", http.StatusNotFound, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake, err := lafake.NewDataCollector(testWorkspace, testKey, true)
			if err != nil {
				t.Fatal(err)
			}
			defer fake.Close()
			fake.FailNext(100, tc.status, "")
			dc := newTestDC(t, fake, testKey, zerolog.Nop())
			err = dc.upload(context.Background(), kindLogs, []byte(`[{"EventTime":"2026-11-30T00:00:00Z"}]`))
			var ue *UploadError
			if !errors.As(err, &ue) || ue.StatusCode != tc.status || ue.Permanent != tc.permanent {
				t.Fatalf("err = %#v", err)
			}
			if n := len(fake.Attempts()); n != tc.attempts {
				t.Fatalf("%d attempts, want %d", n, tc.attempts)
			}
		})
	}
}

func TestDataCollectorURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cloud    Cloud
		endpoint string
		want     string
	}{
		{"", "", "https://" + testWorkspace + ".ods.opinsights.azure.com/api/logs?api-version=2016-04-01"},
		{CloudChina, "", "https://" + testWorkspace + ".ods.opinsights.azure.cn/api/logs?api-version=2016-04-01"},
		{CloudUSGovernment, "", "https://" + testWorkspace + ".ods.opinsights.azure.us/api/logs?api-version=2016-04-01"},
		{CloudPublic, "https://proxy.internal:8443", "https://proxy.internal:8443/api/logs?api-version=2016-04-01"},
		{CloudPublic, "https://x.example/api/logs?api-version=2016-04-01", "https://x.example/api/logs?api-version=2016-04-01"},
	}
	for _, tc := range tests {
		c := dcConfig(tc.endpoint, testKey)
		c.Cloud = tc.cloud
		c.SpoolDir = "/nonexistent"
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		got, err := c.dataCollectorURL()
		if err != nil || got != tc.want {
			t.Errorf("cloud %q endpoint %q: %s, %v; want %s", tc.cloud, tc.endpoint, got, err, tc.want)
		}
	}
}

func TestConfigErrorsNameTheSettingNotTheSecret(t *testing.T) {
	t.Parallel()
	bad := "not base64 but secret!!"
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"key without workspace", Config{IngestionKey: settings.NewSecret(testKey)}, KeyWorkspaceID},
		{"key not base64", Config{WorkspaceID: testWorkspace, IngestionKey: settings.NewSecret(bad)}, KeyIngestionKey},
		{"workspace not a GUID", Config{WorkspaceID: "evil.example.com/x", IngestionKey: settings.NewSecret(testKey)}, KeyWorkspaceID},
		{"ingestion endpoint http", Config{LogsIngestion: LogsIngestionConfig{Endpoint: "http://dce", RuleID: "dcr-1", StreamName: "Custom-X"}}, KeyIngestionEndpoint},
		{"ingestion without rule", Config{LogsIngestion: LogsIngestionConfig{Endpoint: "https://dce", StreamName: "Custom-X"}}, KeyIngestionRuleID},
		{"otlp without uri", Config{OTLP: OTLPConfig{Enabled: true}}, KeyOTelCollector},
		{"unknown cloud", Config{WorkspaceID: testWorkspace, IngestionKey: settings.NewSecret(testKey), Cloud: "Mars"}, "cloud"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.SpoolDir = t.TempDir()
			_, err := New(tc.cfg, Deps{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %s", err, tc.want)
			}
			if strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), testKey) {
				t.Fatalf("secret in error: %v", err)
			}
		})
	}
	c := dcConfig("", testKey)
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, testKey) {
		t.Fatalf("config prints the key: %s", s)
	}
}
