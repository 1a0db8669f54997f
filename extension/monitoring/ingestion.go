package monitoring

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"
)

// logsIngestion uploads batches through the Logs Ingestion API with the
// azlogs client. Retries (429, 5xx, honouring Retry-After) are the azcore
// pipeline's; a batch still failing stays in the spool for the next round.
type logsIngestion struct {
	client  *azlogs.Client
	ruleID  string
	streams map[string]string // kind -> stream
}

// IngestionMaxBatch keeps each call under the API's 1 MB limit, which
// applies to compressed and uncompressed data alike: the uncompressed JSON
// array stays at or below 1,000,000 bytes, and gzip only shrinks it.
const IngestionMaxBatch = 1_000_000

func newLogsIngestion(cfg *Config, cred azcore.TokenCredential, opts *azcore.ClientOptions) (*logsIngestion, error) {
	if cred == nil {
		return nil, fmt.Errorf("%s: the Logs Ingestion API needs an Entra credential (gateway.auth.type AzureAdApp, WorkloadIdentity or ExtensionIdentity)", KeyIngestionEndpoint)
	}
	var co azlogs.ClientOptions
	if opts != nil {
		co.ClientOptions = *opts
	}
	c, err := azlogs.NewClient(cfg.LogsIngestion.Endpoint, cred, &co)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyIngestionEndpoint, err)
	}
	return &logsIngestion{
		client: c,
		ruleID: cfg.LogsIngestion.RuleID,
		streams: map[string]string{
			kindLogs:    cfg.LogsIngestion.StreamName,
			kindMetrics: cfg.LogsIngestion.MetricsStreamName,
		},
	}, nil
}

func (l *logsIngestion) name() string      { return "logsingestion" }
func (l *logsIngestion) timeField() string { return "TimeGenerated" }
func (l *logsIngestion) maxBatch() int     { return IngestionMaxBatch }

func (l *logsIngestion) upload(ctx context.Context, kind string, body []byte) error {
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := zw.Write(body); err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	enc := "gzip"
	_, err := l.client.Upload(ctx, l.ruleID, l.streams[kind], gz.Bytes(), &azlogs.UploadOptions{ContentEncoding: &enc})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	ue := &UploadError{Destination: l.name(), Message: err.Error()}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		ue.StatusCode, ue.Code = re.StatusCode, re.ErrorCode
		ue.Message = ""
		ue.Permanent = permanentStatus(re.StatusCode)
	}
	return ue
}
