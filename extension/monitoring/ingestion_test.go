package monitoring

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/internal/lafake"
	"github.com/seed393f6fe3/apim-arc-gateway/extension/monitoring/spool"
)

const testRule = "dcr-00000000000000000000000000000001"

func newTestIngestion(t *testing.T) (*lafake.Ingestion, *logsIngestion) {
	t.Helper()
	fake := lafake.NewIngestion(testRule, []string{"Custom-APIMGatewayLogs", DefaultMetricsStream}, true)
	t.Cleanup(fake.Close)
	cred, err := fake.Credential()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{LogsIngestion: LogsIngestionConfig{Endpoint: fake.URL, RuleID: testRule, StreamName: "Custom-APIMGatewayLogs"}}
	cfg.setDefaults()
	opts := fake.ClientOptions()
	opts.Retry = policy.RetryOptions{MaxRetries: 2, RetryDelay: 10 * time.Millisecond}
	li, err := newLogsIngestion(&cfg, cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	return fake, li
}

func TestLogsIngestionUploadsGzipWithOneToken(t *testing.T) {
	t.Parallel()
	fake, li := newTestIngestion(t)
	ctx := context.Background()
	for i := range 3 {
		if err := li.upload(ctx, kindLogs, []byte(`[{"RecordId":"e-`+string(rune('1'+i))+`","TimeGenerated":"2026-11-30T00:00:00Z"}]`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := li.upload(ctx, kindMetrics, []byte(`[{"RecordId":"m","MetricName":"Requests"}]`)); err != nil {
		t.Fatal(err)
	}
	if n := fake.RowCount("Custom-APIMGatewayLogs"); n != 3 {
		t.Fatalf("log rows %d", n)
	}
	if n := fake.RowCount(DefaultMetricsStream); n != 1 {
		t.Fatalf("metric rows %d", n)
	}
	for _, a := range fake.Attempts() {
		if a.Encoding != "gzip" {
			t.Fatalf("upload not gzipped: %+v", a)
		}
	}
	if n := fake.TokensIssued(); n != 1 {
		t.Fatalf("%d tokens issued for 4 uploads, want 1 (cached)", n)
	}
}

func TestLogsIngestionHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	fake, li := newTestIngestion(t)
	fake.FailNext(1, http.StatusTooManyRequests, "1")
	start := time.Now()
	if err := li.upload(context.Background(), kindLogs, []byte(`[{"RecordId":"x"}]`)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("retried after %v, Retry-After: 1 not honoured", d)
	}
	if n := fake.RowCount("Custom-APIMGatewayLogs"); n != 1 {
		t.Fatalf("rows %d", n)
	}
}

func TestLogsIngestionErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    int
		permanent bool
	}{
		{"forbidden: role not yet propagated, keep", http.StatusForbidden, false},
		{"too large: drop", http.StatusRequestEntityTooLarge, true},
		{"outage: keep", http.StatusServiceUnavailable, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake, li := newTestIngestion(t)
			fake.FailNext(10, tc.status, "")
			err := li.upload(context.Background(), kindLogs, []byte(`[{"RecordId":"x"}]`))
			var ue *UploadError
			if !errors.As(err, &ue) || ue.StatusCode != tc.status || ue.Permanent != tc.permanent {
				t.Fatalf("err = %#v", err)
			}
		})
	}
}

// TestSinkChunksUnderOneMegabyte sends 5 MB of rows through the sink:
// every call stays under the 1 MB limit (the fake answers 413 otherwise)
// and every row arrives.
func TestSinkChunksUnderOneMegabyte(t *testing.T) {
	t.Parallel()
	fake, li := newTestIngestion(t)
	sp, err := spool.Open(t.TempDir(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	s := newSink(li, sp, zerolog.Nop(), time.Second)
	raw := genRecord(1, "e", time.Now())
	n := 0
	for total := 0; total < 5<<20; total += len(raw) {
		n++
		s.addRow(kindLogs, uint64(n), func(b []byte) []byte { return appendLogRow(b, raw, "e", uint64(n), "TimeGenerated") })
	}
	s.flush()
	if err := s.drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := fake.RowCount("Custom-APIMGatewayLogs"); got != n {
		t.Fatalf("%d rows arrived, want %d", got, n)
	}
	at := fake.Attempts()
	if len(at) < 6 {
		t.Fatalf("%d calls for 5 MB", len(at))
	}
	for _, a := range at {
		if a.Status != http.StatusNoContent {
			t.Fatalf("call refused: %+v", a)
		}
	}
}
