// Package fakeconfig is a fake of the APIM configuration endpoint for the
// end-to-end tests (schemas/configuration-api.openapi.yaml): over TLS with
// its own CA it serves GET /gateways/{gateway}/configuration with ETag,
// If-None-Match and the ?wait long poll, and accepts POST
// /gateways/{gateway}/heartbeat with 204. Requests must carry
// "Authorization: GatewayKey <token>" with one of the tokens it was told to
// accept; others get 401, an unknown gateway 404.
//
// It is the only fake in the e2e tests: the endpoint is Azure's, everything
// else is the real product on a real cluster.
package fakeconfig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Heartbeat is what an agent reported (the openapi Heartbeat schema).
type Heartbeat struct {
	InstanceID            string  `json:"instanceId"`
	Hostname              string  `json:"hostname"`
	Version               string  `json:"version"`
	ConfigurationRevision string  `json:"configurationRevision"`
	Status                string  `json:"status"`
	StartedAt             string  `json:"startedAt"`
	LastSyncAt            *string `json:"lastSyncAt"`
	TokenExpiresAt        *string `json:"tokenExpiresAt"`
	CredentialState       string  `json:"credentialState,omitempty"`
	GatewayReachable      *bool   `json:"gatewayReachable,omitempty"`
	LastError             string  `json:"lastError,omitempty"`
}

// Server is a running fake endpoint.
type Server struct {
	ln    net.Listener
	srv   *http.Server
	caPEM []byte
	url   string

	mu         sync.Mutex
	gateway    string
	tokens     map[string]bool
	snapshot   []byte
	etag       string
	changed    chan struct{} // closed and replaced on every SetSnapshot
	heartbeats []Heartbeat
	authSeen   map[string]int // token -> requests that authenticated with it
	rejected   int
}

// Start listens on addr (host:port; port 0 picks one) and serves gateway's
// configuration to requests authenticated with one of tokens. hosts are the
// extra names and IPs the serving certificate is valid for (the listener's
// IP always is).
func Start(addr, gateway string, tokens []string, hosts ...string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fakeconfig: listen %s: %w", addr, err)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	cert, caPEM, err := selfCA(append([]string{host}, hosts...))
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &Server{
		ln:       ln,
		caPEM:    caPEM,
		url:      "https://" + net.JoinHostPort(host, port),
		gateway:  gateway,
		tokens:   map[string]bool{},
		changed:  make(chan struct{}),
		authSeen: map[string]int{},
	}
	s.SetTokens(tokens...)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /gateways/{gateway}/configuration", s.configuration)
	mux.HandleFunc("POST /gateways/{gateway}/heartbeat", s.heartbeat)
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}
	go func() { _ = s.srv.ServeTLS(ln, "", "") }()
	return s, nil
}

// URL is the value for gateway.configuration.uri.
func (s *Server) URL() string { return s.url }

// CAPEM is the CA certificate the agent must trust.
func (s *Server) CAPEM() []byte { return s.caPEM }

// Close stops serving at once, dropping held long polls: the endpoint is
// gone, as when Azure cannot be reached.
func (s *Server) Close() error { return s.srv.Close() }

// SetTokens replaces the accepted gateway tokens (with or without the
// "GatewayKey " prefix).
func (s *Server) SetTokens(tokens ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]bool{}
	for _, t := range tokens {
		s.tokens[strings.TrimPrefix(t, "GatewayKey ")] = true
	}
}

// SetSnapshot publishes a new configuration snapshot; its ETag is derived
// from the content, and held long polls answer at once.
func (s *Server) SetSnapshot(snapshot []byte) {
	sum := sha256.Sum256(snapshot)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snapshot = append([]byte(nil), snapshot...)
	s.etag = `"` + hex.EncodeToString(sum[:8]) + `"`
	close(s.changed)
	s.changed = make(chan struct{})
}

// Heartbeats returns the heartbeats received so far.
func (s *Server) Heartbeats() []Heartbeat {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Heartbeat(nil), s.heartbeats...)
}

// AuthenticatedWith counts the requests that carried token.
func (s *Server) AuthenticatedWith(token string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authSeen[strings.TrimPrefix(token, "GatewayKey ")]
}

// Rejected counts requests refused with 401.
func (s *Server) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected
}

// authorize checks the credential and the gateway; it writes the error
// answer and returns false when the request must stop.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "GatewayKey ")
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok || !s.tokens[token] {
		s.rejected++
		http.Error(w, "invalid or expired gateway token", http.StatusUnauthorized)
		return false
	}
	s.authSeen[token]++
	if r.PathValue("gateway") != s.gateway {
		http.Error(w, "unknown gateway", http.StatusNotFound)
		return false
	}
	return true
}

func (s *Server) configuration(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r) {
		return
	}
	wait := 0
	if v := r.URL.Query().Get("wait"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 300 {
			http.Error(w, "wait must be an integer from 0 to 300", http.StatusBadRequest)
			return
		}
		wait = n
	}
	deadline := time.After(time.Duration(wait) * time.Second)
	for {
		s.mu.Lock()
		snapshot, etag, changed := s.snapshot, s.etag, s.changed
		s.mu.Unlock()
		if snapshot == nil {
			http.Error(w, "no configuration published yet", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("If-None-Match") != etag {
			w.Header().Set("ETag", etag)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(snapshot)
			return
		}
		select {
		case <-changed:
			continue
		case <-deadline:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("ETag", etag)
		w.WriteHeader(http.StatusNotModified)
		return
	}
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r) {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	var hb Heartbeat
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&hb); err != nil {
		http.Error(w, "heartbeat does not match the Heartbeat schema: "+err.Error(), http.StatusBadRequest)
		return
	}
	if hb.InstanceID == "" || hb.Status == "" || hb.StartedAt == "" {
		http.Error(w, "heartbeat needs instanceId, status and startedAt", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.heartbeats = append(s.heartbeats, hb)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// selfCA makes a CA and a serving certificate for hosts signed by it.
func selfCA(hosts []string) (tls.Certificate, []byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fakeconfig CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("fakeconfig: CA: %w", err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "fakeconfig"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if len(tmpl.IPAddresses)+len(tmpl.DNSNames) == 0 {
		return tls.Certificate{}, nil, errors.New("fakeconfig: no host for the certificate")
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("fakeconfig: serving certificate: %w", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: nil}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}
