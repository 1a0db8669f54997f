// Package configfake is a configuration endpoint for tests: a TLS server
// speaking schemas/configuration-api.openapi.yaml (conditional GET with
// ETag, ?wait long poll, 401 for a credential it does not accept, 404 for
// another gateway, heartbeats checked against the Heartbeat schema). It
// binds loopback only and records every request so tests can assert on
// what the agent sent.
package configfake

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Request is one request the endpoint received.
type Request struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
	At                  time.Time
}

// Heartbeat is the body of a heartbeat as the OpenAPI document defines it;
// the endpoint decodes heartbeats strictly into it.
type Heartbeat struct {
	InstanceID            string     `json:"instanceId"`
	Hostname              string     `json:"hostname"`
	Version               string     `json:"version"`
	ConfigurationRevision string     `json:"configurationRevision"`
	Status                string     `json:"status"`
	StartedAt             time.Time  `json:"startedAt"`
	LastSyncAt            *time.Time `json:"lastSyncAt"`
	TokenExpiresAt        *time.Time `json:"tokenExpiresAt"`
	CredentialState       string     `json:"credentialState,omitempty"`
	GatewayReachable      *bool      `json:"gatewayReachable,omitempty"`
	LastError             string     `json:"lastError,omitempty"`
}

// Server is the fake endpoint. The zero value is not usable; call Start.
type Server struct {
	srv     *httptest.Server
	gateway string

	mu         sync.Mutex
	snapshot   []byte
	etag       string
	changed    chan struct{} // closed when the snapshot changes
	accept     []string      // accepted Authorization values; empty accepts any
	acceptFunc func(authorization string) bool
	forced     int // answer configuration requests with this status
	requests   []Request
	heartbeats []Heartbeat
	problems   []string // contract violations seen in requests
}

// Start serves the configuration of gateway over TLS on loopback.
func Start(gateway string) *Server {
	s := &Server{gateway: gateway, changed: make(chan struct{})}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the value of gateway.configuration.uri.
func (s *Server) URL() string { return s.srv.URL }

// RootCAs trusts the endpoint's certificate.
func (s *Server) RootCAs() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.srv.Certificate())
	return pool
}

// Close makes the endpoint go away: the listener closes and further
// connections are refused. Long polls in flight end.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// SetSnapshot makes body the current configuration with the given ETag
// (quoted as HTTP wants it) and ends long polls waiting for a change.
func (s *Server) SetSnapshot(body []byte, etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snapshot, s.etag = bytes.Clone(body), strconv.Quote(etag)
	close(s.changed)
	s.changed = make(chan struct{})
}

// Accept sets the Authorization header values answered with 200; any
// other gets 401. With none, every request is accepted.
func (s *Server) Accept(authorization ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accept = slices.Clone(authorization)
}

// AcceptFunc accepts the Authorization values f approves (a Bearer token
// verified against the fake Entra authority, say); nil goes back to Accept.
func (s *Server) AcceptFunc(f func(authorization string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acceptFunc = f
}

// Force answers configuration requests with status (0 goes back to normal).
func (s *Server) Force(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forced = status
}

// Requests returns the configuration requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Heartbeats returns the heartbeats received so far, decoded.
func (s *Server) Heartbeats() []Heartbeat {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.heartbeats)
}

// Problems lists requests that broke the API contract (bad heartbeat
// bodies, wrong methods or paths); a correct agent causes none.
func (s *Server) Problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.problems)
}

func (s *Server) problem(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	req := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body, At: time.Now()}
	prefix := "/gateways/" + s.gateway + "/"
	op, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		s.record(req, nil)
		w.WriteHeader(http.StatusNotFound)
		return
	}
	s.mu.Lock()
	accepted := len(s.accept) == 0 || slices.Contains(s.accept, r.Header.Get("Authorization"))
	f := s.acceptFunc
	s.mu.Unlock()
	if f != nil {
		accepted = f(r.Header.Get("Authorization"))
	}
	switch {
	case op == "heartbeat" && r.Method == http.MethodPost:
		hb, err := decodeHeartbeat(body)
		if err != nil {
			s.problem("heartbeat: %v", err)
		}
		if !accepted {
			s.record(req, nil)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		s.record(req, &hb)
		w.WriteHeader(http.StatusNoContent)
	case op == "configuration" && r.Method == http.MethodGet:
		s.record(req, nil)
		if !accepted {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		s.configuration(w, r)
	default:
		s.problem("unexpected %s %s", r.Method, r.URL.Path)
		s.record(req, nil)
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (s *Server) record(req Request, hb *Heartbeat) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if hb != nil {
		s.heartbeats = append(s.heartbeats, *hb)
		return
	}
	if strings.HasSuffix(req.Path, "/configuration") {
		s.requests = append(s.requests, req)
	}
}

// configuration answers GET .../configuration: 304 while If-None-Match is
// current (after holding the request up to ?wait seconds for a change),
// else 200 with the snapshot and its ETag.
func (s *Server) configuration(w http.ResponseWriter, r *http.Request) {
	wait := 0
	if v := r.URL.Query().Get("wait"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 300 {
			s.problem("wait=%q is not an integer from 0 to 300", v)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		wait = n
	}
	s.mu.Lock()
	forced, etag, changed := s.forced, s.etag, s.changed
	s.mu.Unlock()
	if forced != 0 {
		w.WriteHeader(forced)
		return
	}
	if etag == "" {
		// Nothing to serve yet: the gateway is unknown to the service.
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if r.Header.Get("If-None-Match") == etag && wait > 0 {
		t := time.NewTimer(time.Duration(wait) * time.Second)
		select {
		case <-changed:
		case <-t.C:
		case <-r.Context().Done():
		}
		t.Stop()
	}
	s.mu.Lock()
	snapshot, etag := s.snapshot, s.etag
	s.mu.Unlock()
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(snapshot)
}

// decodeHeartbeat checks a heartbeat body against the OpenAPI Heartbeat
// schema: no unknown fields, every required field present, a known status.
func decodeHeartbeat(body []byte) (Heartbeat, error) {
	var hb Heartbeat
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&hb); err != nil {
		return hb, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return hb, err
	}
	for _, k := range []string{"instanceId", "hostname", "version", "configurationRevision", "status", "startedAt", "lastSyncAt", "tokenExpiresAt"} {
		if _, ok := raw[k]; !ok {
			return hb, fmt.Errorf("required field %q missing", k)
		}
	}
	switch hb.Status {
	case "Starting", "Synced", "Stale":
	default:
		return hb, fmt.Errorf("status %q is not Starting, Synced or Stale", hb.Status)
	}
	switch hb.CredentialState {
	case "", "ok", "expiring", "expired":
	default:
		return hb, fmt.Errorf("credentialState %q is not ok, expiring or expired", hb.CredentialState)
	}
	return hb, nil
}
