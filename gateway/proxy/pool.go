// Package proxy forwards requests to backends. It keeps one long-lived
// fasthttp.HostClient per backend target for the life of the process, so a
// configuration swap that keeps a backend keeps its warm connections.
package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Options tune every backend client. Zero values pick the defaults noted.
type Options struct {
	// TLS is the base configuration for https backends: cipher suites
	// (net.client.tls.ciphers.allowed-suites), root CAs, minimum version.
	TLS *tls.Config
	// MaxConns per backend host (default 4096).
	MaxConns int
	// MaxConnWaitTimeout is how long a request waits for a free connection
	// when MaxConns are busy (default 5s) before failing with 502.
	MaxConnWaitTimeout time.Duration
	// MaxIdleConnDuration closes idle keep-alive connections (default 90s).
	MaxIdleConnDuration time.Duration
	// DialTimeout bounds connection set-up (default 10s).
	DialTimeout time.Duration
	// ReadBufferSize limits backend response header size (default 16 KiB).
	ReadBufferSize int
	// Dial replaces TCP dialing; benchmarks use it to reach an in-memory
	// backend. Nil dials TCP with DialTimeout.
	Dial fasthttp.DialFunc
}

// Target identifies a backend client: connections are shared by all APIs
// that reach the same scheme, host and port with the same TLS checks.
type Target struct {
	Scheme   string // "http" or "https"
	Addr     string // host:port
	Host     string // Host header value (the URL's host, port kept if non-default)
	Insecure bool   // skip certificate chain and name validation
}

// ParseTarget splits a backend base URL into its target and base path
// (without a trailing slash).
func ParseTarget(raw string) (Target, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, "", fmt.Errorf("backend url %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Target{}, "", fmt.Errorf("backend url %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return Target{}, "", fmt.Errorf("backend url %q: no host", raw)
	}
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	base := u.EscapedPath()
	base = strings.TrimRight(base, "/")
	return Target{Scheme: u.Scheme, Addr: addr, Host: u.Host}, base, nil
}

// Pool owns the backend clients. It is safe for concurrent use.
type Pool struct {
	opts    Options
	mu      sync.Mutex
	clients map[Target]*fasthttp.HostClient
	// certClients present a client certificate (authentication-certificate):
	// one client per target and certificate.
	certClients map[certKey]*fasthttp.HostClient
}

type certKey struct {
	target Target
	thumb  [sha256.Size]byte
}

// NewPool returns an empty pool.
func NewPool(opts Options) *Pool {
	if opts.MaxConns <= 0 {
		opts.MaxConns = 4096
	}
	if opts.MaxConnWaitTimeout <= 0 {
		opts.MaxConnWaitTimeout = 5 * time.Second
	}
	if opts.MaxIdleConnDuration <= 0 {
		opts.MaxIdleConnDuration = 90 * time.Second
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.ReadBufferSize <= 0 {
		opts.ReadBufferSize = 16 << 10
	}
	return &Pool{opts: opts, clients: map[Target]*fasthttp.HostClient{}, certClients: map[certKey]*fasthttp.HostClient{}}
}

// Client returns the client for t, creating it on first use.
func (p *Pool) Client(t Target) *fasthttp.HostClient {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[t]; ok {
		return c
	}
	c := p.newClient(t)
	p.clients[t] = c
	return c
}

// ClientWithCert returns the client for t that presents crt, creating it
// on first use. Without a certificate it is Client.
func (p *Pool) ClientWithCert(t Target, crt *tls.Certificate) *fasthttp.HostClient {
	if crt == nil || len(crt.Certificate) == 0 {
		return p.Client(t)
	}
	k := certKey{target: t, thumb: sha256.Sum256(crt.Certificate[0])}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.certClients[k]; ok {
		return c
	}
	c := p.newClient(t)
	if c.TLSConfig != nil {
		c.TLSConfig.Certificates = []tls.Certificate{*crt}
	}
	p.certClients[k] = c
	return c
}

// Retain drops the clients of targets not in keep, closing their idle
// connections. Requests still running on an old configuration keep the
// client they hold; it is garbage once they finish.
func (p *Pool) Retain(keep map[Target]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for t, c := range p.clients {
		if !keep[t] {
			c.CloseIdleConnections()
			delete(p.clients, t)
		}
	}
	for k, c := range p.certClients {
		if !keep[k.target] {
			c.CloseIdleConnections()
			delete(p.certClients, k)
		}
	}
}

// Len returns the number of live clients.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.clients)
}

func (p *Pool) newClient(t Target) *fasthttp.HostClient {
	dialer := &fasthttp.TCPDialer{Concurrency: 0}
	timeout := p.opts.DialTimeout
	c := &fasthttp.HostClient{
		Addr:                     t.Addr,
		Name:                     "",
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
		MaxConns:                 p.opts.MaxConns,
		MaxConnWaitTimeout:       p.opts.MaxConnWaitTimeout,
		MaxIdleConnDuration:      p.opts.MaxIdleConnDuration,
		ReadBufferSize:           p.opts.ReadBufferSize,
		// Retries belong to the retry policy, never to the transport: a
		// silently repeated PUT is not what users configured.
		MaxIdemponentCallAttempts: 1,
		StreamResponseBody:        true,
		Dial: func(addr string) (net.Conn, error) {
			return dialer.DialTimeout(addr, timeout)
		},
	}
	if p.opts.Dial != nil {
		c.Dial = p.opts.Dial
	}
	if t.Scheme == "https" {
		c.IsTLS = true
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if p.opts.TLS != nil {
			cfg = p.opts.TLS.Clone()
		}
		host, _, err := net.SplitHostPort(t.Addr)
		if err == nil {
			cfg.ServerName = host
		}
		cfg.InsecureSkipVerify = t.Insecure
		c.TLSConfig = cfg
	}
	return c
}
