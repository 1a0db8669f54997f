// Package azurefake runs fake Azure endpoints for tests: an Entra authority
// (the v2.0 openid-configuration and token endpoints) and Azure Resource
// Manager's APIM gateway generateToken action. They speak TLS and the
// documented wire formats, so the real azidentity and armapimanagement
// clients talk to them unchanged (reference/azure-io.md section 3.2).
//
// All fakes of one test share a throwaway CA and a client whose dialer
// sends the well-known Azure host names (login.microsoftonline.com,
// login.chinacloudapi.cn, management.azure.com, ...) to the fakes on
// loopback, so sovereign-cloud endpoints can be used by name. Nothing else
// is reachable through that client.
package azurefake

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// network is the CA and host routing shared by the fakes of one test.
type network struct {
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	pool   *x509.CertPool
	client *http.Client

	mu     sync.Mutex
	routes map[string]string // host name -> loopback address of the fake serving it
}

func newNetwork(t testing.TB) *network {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("azurefake: CA key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "azurefake test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("azurefake: CA certificate: %v", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("azurefake: CA certificate: %v", err)
	}
	n := &network{ca: ca, caKey: key, pool: x509.NewCertPool(), routes: map[string]string{}}
	n.pool.AddCert(ca)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: n.pool, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			target, err := n.route(addr)
			if err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, target)
		},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
	}
	n.client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return n
}

// route maps a dial address to a fake: loopback addresses as they are, known
// host names to their fake, anything else is refused so no test traffic
// leaves the machine.
func (n *network) route(addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return addr, nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if target, ok := n.routes[host]; ok {
		return target, nil
	}
	return "", fmt.Errorf("azurefake: no fake serves %s (test traffic stays on loopback)", host)
}

// serve starts a TLS server for h with a certificate for 127.0.0.1,
// localhost and hosts, and routes hosts to it.
func (n *network) serve(t testing.TB, h http.Handler, hosts []string) *httptest.Server {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("azurefake: server key: %v", err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "azurefake"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     append([]string{"localhost"}, hosts...),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, n.ca, &key.PublicKey, n.caKey)
	if err != nil {
		t.Fatalf("azurefake: server certificate: %v", err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	n.mu.Lock()
	for _, h := range hosts {
		n.routes[h] = srv.Listener.Addr().String()
	}
	n.mu.Unlock()
	return srv
}
