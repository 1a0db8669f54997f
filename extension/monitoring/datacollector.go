package monitoring

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/rs/zerolog"
)

// UploadError is a destination's refusal of a batch.
type UploadError struct {
	Destination string
	StatusCode  int    // 0 for transport errors
	Code        string // service error code, when the service sent one
	Message     string
	// Permanent is true when sending the same batch again cannot succeed
	// (malformed, too large): the batch is dropped and counted. Other
	// failures (throttling, outages, credentials that may be fixed) keep
	// the batch in the spool.
	Permanent bool
}

func (e *UploadError) Error() string {
	s := e.Destination + ": "
	if e.StatusCode != 0 {
		s += "status " + strconv.Itoa(e.StatusCode)
	}
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// permanentStatus: the request itself is wrong; 401 and 403 are not here
// because a key or role assignment can be fixed while the batch waits.
func permanentStatus(code int) bool {
	return code >= 400 && code < 500 && code != http.StatusUnauthorized && code != http.StatusForbidden &&
		code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}

// dataCollector posts batches to the HTTP Data Collector API with the
// SharedKey signature, re-signed on every try.
type dataCollector struct {
	url         string
	workspaceID string
	key         []byte // base64-decoded workspace key
	resourceID  string
	client      *retryablehttp.Client
	now         func() time.Time
}

func newDataCollector(cfg *Config, hc *http.Client, log zerolog.Logger, now func() time.Time) (*dataCollector, error) {
	u, err := cfg.dataCollectorURL()
	if err != nil {
		return nil, err
	}
	key, err := base64.StdEncoding.DecodeString(cfg.IngestionKey.Reveal())
	if err != nil {
		return nil, fmt.Errorf("%s: not valid base64", KeyIngestionKey)
	}
	d := &dataCollector{url: u, workspaceID: cfg.WorkspaceID, key: key, resourceID: cfg.CustomResourceID, now: now}
	c := retryablehttp.NewClient()
	if hc != nil {
		c.HTTPClient = hc
	}
	c.RetryMax = cfg.RetryMax
	if c.RetryMax < 0 {
		c.RetryMax = 0
	}
	c.RetryWaitMin, c.RetryWaitMax = cfg.RetryWaitMin, cfg.RetryWaitMax
	c.Logger = retryLogger{log}
	c.CheckRetry = retryThrottlingAndServerErrors
	// The caller reads the final response to report the service's error.
	c.ErrorHandler = retryablehttp.PassthroughErrorHandler
	// x-ms-date must be current and the signature covers it: sign each try.
	c.PrepareRetry = func(req *http.Request) error {
		d.sign(req.Header, req.ContentLength)
		return nil
	}
	d.client = c
	return d, nil
}

// retryThrottlingAndServerErrors retries 429, 5xx (not 501) and transport
// errors; any other status is final.
func retryThrottlingAndServerErrors(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	c := resp.StatusCode
	return c == http.StatusTooManyRequests || (c >= 500 && c != http.StatusNotImplemented), nil
}

// Signature returns the SharedKey signature of a Data Collector POST: the
// base64 HMAC-SHA256, keyed with the decoded workspace key, of
// "POST\n<content length>\napplication/json\nx-ms-date:<date>\n/api/logs".
func Signature(key []byte, contentLength int64, date string) string {
	m := hmac.New(sha256.New, key)
	io.WriteString(m, "POST\n"+strconv.FormatInt(contentLength, 10)+"\napplication/json\nx-ms-date:"+date+"\n/api/logs")
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func (d *dataCollector) sign(h http.Header, contentLength int64) {
	// http.TimeFormat ends in GMT as RFC 1123 requires (time.RFC1123 says UTC).
	date := d.now().UTC().Format(http.TimeFormat)
	h.Set("x-ms-date", date)
	h.Set("Authorization", "SharedKey "+d.workspaceID+":"+Signature(d.key, contentLength, date))
}

func (d *dataCollector) name() string { return "datacollector" }

// timeField: the Data Collector API reserves TimeGenerated, so rows carry
// EventTime and time-generated-field points at it.
func (d *dataCollector) timeField() string { return "EventTime" }

// maxBatch stays far below the 30 MB per post limit.
func (d *dataCollector) maxBatch() int { return 4 << 20 }

func (d *dataCollector) upload(ctx context.Context, kind string, body []byte) error {
	logType := LogTypeLogs
	if kind == kindMetrics {
		logType = LogTypeMetrics
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, d.url, body)
	if err != nil {
		return &UploadError{Destination: d.name(), Message: err.Error(), Permanent: true}
	}
	// Exactly application/json: the value is part of the signed string and
	// a charset parameter makes the service answer 403.
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Log-Type", logType)
	req.Header.Set("time-generated-field", d.timeField())
	if d.resourceID != "" {
		req.Header.Set("x-ms-AzureResourceId", d.resourceID)
	}
	d.sign(req.Header, int64(len(body)))
	resp, err := d.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &UploadError{Destination: d.name(), Message: redactURLError(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	ue := &UploadError{Destination: d.name(), StatusCode: resp.StatusCode, Permanent: permanentStatus(resp.StatusCode)}
	// The service answers {"Error":"InvalidAuthorization","Message":"..."}.
	var body2 struct{ Error, Message string }
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if json.Unmarshal(raw, &body2) == nil {
		ue.Code, ue.Message = body2.Error, body2.Message
	}
	return ue
}

// redactURLError keeps the error text without the request URL's query.
func redactURLError(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		return ue.Unwrap().Error()
	}
	return err.Error()
}

// retryLogger routes go-retryablehttp's messages to zerolog at debug level
// (it logs method and URL, never headers).
type retryLogger struct{ l zerolog.Logger }

func (a retryLogger) Error(m string, kv ...any) { a.l.Debug().Fields(kv).Msg(m) }
func (a retryLogger) Warn(m string, kv ...any)  { a.l.Debug().Fields(kv).Msg(m) }
func (a retryLogger) Info(m string, kv ...any)  { a.l.Debug().Fields(kv).Msg(m) }
func (a retryLogger) Debug(m string, kv ...any) { a.l.Debug().Fields(kv).Msg(m) }
