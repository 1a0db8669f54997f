// Package configsync is the agent's client of the configuration API
// (schemas/configuration-api.openapi.yaml): it long-polls
// GET {uri}/gateways/{gateway}/configuration with the last ETag, validates
// each snapshot with the gateway's own loader, publishes it atomically to
// <config-dir>/snapshot.json, and reports a heartbeat carrying the revision
// the gateway says it loaded (GET /telemetry/status). When the endpoint is
// down or refuses the agent, the last good snapshot stays in place
// ("fail static"). A local source (file:///path, a mounted ConfigMap) is
// watched instead and goes through the same validation; it sends no
// heartbeat.
package configsync

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/credentials"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
)

// DefaultMaxBodyBytes bounds a configuration response (the gateway's own
// limit on a snapshot).
const DefaultMaxBodyBytes = config.MaxSnapshotBytes

// requestSlack is added to the long-poll wait for the request deadline.
const requestSlack = 30 * time.Second

// Sentinel errors; the typed errors below wrap them.
var (
	// ErrCredentialRejected: the endpoint answered 401.
	ErrCredentialRejected = errors.New("configuration endpoint rejected the credential (401)")
	// ErrUnknownGateway: the endpoint answered 404.
	ErrUnknownGateway = errors.New("configuration endpoint does not know the gateway (404)")
	// ErrBodyTooLarge: the response exceeded MaxBodyBytes.
	ErrBodyTooLarge = errors.New("configuration response too large")
)

// StatusError is a non-success answer of the configuration endpoint.
type StatusError struct {
	Op         string // "configuration" or "heartbeat"
	StatusCode int
	// RetryAfter is the parsed Retry-After header (0 when absent).
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: configuration endpoint answered %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

// Unwrap maps 401 and 404 to their sentinels.
func (e *StatusError) Unwrap() error {
	switch e.StatusCode {
	case http.StatusUnauthorized:
		return ErrCredentialRejected
	case http.StatusNotFound:
		return ErrUnknownGateway
	}
	return nil
}

// Retryable reports whether the request should be retried after a backoff:
// 408, 429 and 5xx.
func (e *StatusError) Retryable() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusRequestTimeout || e.StatusCode >= 500
}

// IsRetryable reports whether err is transient (transport failure, 408, 429,
// 5xx) and the same request should be retried after a backoff. Credential,
// unknown-gateway and oversize errors are not: they need a change on the
// other side, so the caller backs off on a longer schedule.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Retryable()
	}
	if errors.Is(err, credentials.ErrCredentialExpired) || errors.Is(err, ErrBodyTooLarge) {
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	var ue *url.Error
	return errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded)
}

func retryAfterOf(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}

// Client talks to the configuration API of one gateway.
type Client struct {
	base       *url.URL
	gateway    string
	cred       credentials.Credential
	http       *http.Client
	maxBody    int64
	userAgent  string
	backoff    Backoff
	now        func() time.Time
	sleep      func(ctx context.Context, d time.Duration) error
	maxRetries int
}

// Options configure a Client; zero values take defaults.
type Options struct {
	// HTTPClient defaults to NewHTTPClient(nil).
	HTTPClient *http.Client
	// MaxBodyBytes defaults to DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// UserAgent is sent on every request.
	UserAgent string
	// Backoff schedules retries of transient failures.
	Backoff Backoff
	// MaxRetries bounds retries of one Fetch (default 5); the Run loop
	// retries on its own schedule after that.
	MaxRetries int
}

// NewHTTPClient returns an HTTP client for the configuration endpoint: it
// honours HTTPS_PROXY/NO_PROXY (Arc's proxy settings), requires TLS 1.2+,
// and trusts tlsConfig's roots when given (nil uses the system pool).
func NewHTTPClient(tlsConfig *tls.Config) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	if tlsConfig == nil {
		tlsConfig = &tls.Config{}
	} else {
		tlsConfig = tlsConfig.Clone()
	}
	if tlsConfig.MinVersion < tls.VersionTLS12 {
		tlsConfig.MinVersion = tls.VersionTLS12
	}
	t.TLSClientConfig = tlsConfig
	t.ResponseHeaderTimeout = 0 // long polls hold the response; requests carry deadlines
	// No client-wide Timeout: each request gets wait+slack.
	return &http.Client{Transport: t}
}

// NewClient returns a client of {uri}/gateways/{gateway}. uri must be an
// absolute http(s) URL; the credential is asked for a header per request.
func NewClient(uri, gateway string, cred credentials.Credential, opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(uri))
	if err != nil {
		return nil, errors.New("gateway.configuration.uri is not a valid URL")
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("gateway.configuration.uri must be an absolute https URL")
	}
	if u.User != nil {
		return nil, errors.New("gateway.configuration.uri must not carry user information")
	}
	if gateway == "" {
		return nil, errors.New("gateway name is required")
	}
	if cred == nil {
		return nil, errors.New("a credential is required")
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c := &Client{
		base:       u,
		gateway:    gateway,
		cred:       cred,
		http:       opts.HTTPClient,
		maxBody:    opts.MaxBodyBytes,
		userAgent:  opts.UserAgent,
		backoff:    opts.Backoff,
		maxRetries: opts.MaxRetries,
		now:        time.Now,
		sleep:      sleepCtx,
	}
	if c.http == nil {
		c.http = NewHTTPClient(nil)
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxBodyBytes
	}
	if c.userAgent == "" {
		c.userAgent = "apim-agent"
	}
	if c.maxRetries <= 0 {
		c.maxRetries = 5
	}
	return c, nil
}

// Gateway returns the gateway name the client syncs.
func (c *Client) Gateway() string { return c.gateway }

func (c *Client) endpoint(op string) string {
	u := *c.base
	u.Path = c.base.Path + "/gateways/" + url.PathEscape(c.gateway) + "/" + op
	return u.String()
}

// Result is one answer of the configuration endpoint.
type Result struct {
	// Changed is false for 304 Not Modified.
	Changed bool
	// Body is the snapshot (when Changed).
	Body []byte
	// ETag is the entity tag to send as If-None-Match next time.
	ETag string
}

// FetchOnce sends one GET {uri}/gateways/{gateway}/configuration with
// If-None-Match: etag (when not empty) and ?wait=<seconds> (when wait > 0).
func (c *Client) FetchOnce(ctx context.Context, etag string, wait time.Duration) (Result, error) {
	auth, err := c.cred.AuthorizationHeader(ctx)
	if err != nil {
		return Result{}, err
	}
	target := c.endpoint("configuration")
	if secs := int64(wait / time.Second); secs > 0 {
		target += "?wait=" + strconv.FormatInt(secs, 10)
	}
	ctx, cancel := context.WithTimeout(ctx, wait+requestSlack)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("configuration: %w", err)
	}
	defer drain(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		body, err := readLimited(resp.Body, c.maxBody)
		if err != nil {
			return Result{}, fmt.Errorf("configuration: %w", err)
		}
		return Result{Changed: true, Body: body, ETag: resp.Header.Get("ETag")}, nil
	case http.StatusNotModified:
		tag := resp.Header.Get("ETag")
		if tag == "" {
			tag = etag
		}
		return Result{ETag: tag}, nil
	}
	return Result{}, &StatusError{Op: "configuration", StatusCode: resp.StatusCode, RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), c.now())}
}

// Fetch is FetchOnce with retries of transient failures (transport errors,
// 408, 429, 5xx) on the client's capped, jittered backoff, honouring
// Retry-After, up to MaxRetries. Other errors return at once.
func (c *Client) Fetch(ctx context.Context, etag string, wait time.Duration) (Result, error) {
	for attempt := 0; ; attempt++ {
		res, err := c.FetchOnce(ctx, etag, wait)
		if err == nil || !IsRetryable(err) || attempt >= c.maxRetries || ctx.Err() != nil {
			return res, err
		}
		if serr := c.sleep(ctx, c.backoff.Delay(attempt, retryAfterOf(err))); serr != nil {
			return Result{}, err
		}
	}
}

// Heartbeat is the body of POST {uri}/gateways/{gateway}/heartbeat.
type Heartbeat struct {
	InstanceID            string     `json:"instanceId"`
	Hostname              string     `json:"hostname"`
	Version               string     `json:"version"`
	ConfigurationRevision string     `json:"configurationRevision"`
	Status                string     `json:"status"`
	StartedAt             time.Time  `json:"startedAt"`
	LastSyncAt            *time.Time `json:"lastSyncAt"`
	TokenExpiresAt        *time.Time `json:"tokenExpiresAt"`
	// CredentialState is ok, expiring (within 7 days) or expired, for a
	// credential with a known expiry (gateway token); omitted otherwise.
	CredentialState string `json:"credentialState,omitempty"`
	// GatewayReachable tells whether the gateway answered its status
	// request: true means ConfigurationRevision is what the gateway has
	// loaded; false means it is what the agent published. Omitted when the
	// gateway is not asked.
	GatewayReachable *bool `json:"gatewayReachable,omitempty"`
	// LastError describes why the latest sync failed or its snapshot was
	// rejected; omitted while in sync.
	LastError string `json:"lastError,omitempty"`
}

// Heartbeat statuses.
const (
	// StatusStarting: no configuration yet.
	StatusStarting = "Starting"
	// StatusSynced: serving the endpoint's latest configuration.
	StatusSynced = "Synced"
	// StatusStale: serving the last good configuration; the latest sync failed.
	StatusStale = "Stale"
)

// SendHeartbeat posts hb; the endpoint answers 204 (any 2xx is accepted).
func (c *Client) SendHeartbeat(ctx context.Context, hb Heartbeat) error {
	auth, err := c.cred.AuthorizationHeader(ctx)
	if err != nil {
		return err
	}
	body, err := json.Marshal(hb)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, requestSlack)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint("heartbeat"), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	defer drain(resp.Body)
	if resp.StatusCode/100 == 2 {
		return nil
	}
	return &StatusError{Op: "heartbeat", StatusCode: resp.StatusCode, RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), c.now())}
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, limit)
	}
	return buf.Bytes(), nil
}

// drain reads a little of an unread body so the connection can be reused,
// then closes it.
func drain(b io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(b, 64<<10))
	_ = b.Close()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
