package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// selfSigned returns a PEM bundle (certificate then key) for names.
func selfSigned(t *testing.T, rsaKey bool, names ...string) (bundle string, pool *x509.CertPool) {
	t.Helper()
	var priv any
	var pub any
	if rsaKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub = k, &k.PublicKey
	} else {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub = k, &k.PublicKey
	}
	tpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	crt, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(crt)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})), pool
}

func tlsSnapshot(t *testing.T, backend, contosoPEM, fabrikamPEM string) string {
	t.Helper()
	doc := map[string]any{
		"schemaVersion": "1.0",
		"gateway": map[string]any{"hostnames": []any{
			map[string]any{"hostname": "api.contoso.com", "certificateId": "/certificates/contoso", "defaultSslBinding": true},
			map[string]any{"hostname": "*.fabrikam.com", "certificateId": "fabrikam"},
		}},
		"certificates": []any{
			map[string]any{"name": "contoso", "properties": map[string]any{"pem": contosoPEM}},
			map[string]any{"name": "fabrikam", "properties": map[string]any{"pem": fabrikamPEM}},
		},
		"apis": []any{map[string]any{
			"name":       "secure",
			"properties": map[string]any{"path": "secure", "serviceUrl": "http://" + backend, "protocols": []string{"https"}, "subscriptionRequired": false},
			"operations": []any{map[string]any{"name": "any", "properties": map[string]any{"method": "GET", "urlTemplate": "/*"}}},
		}},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHTTPS(t *testing.T) {
	be := startBackend(t, nil)
	contoso, contosoCA := selfSigned(t, true, "api.contoso.com")
	fabrikam, fabrikamCA := selfSigned(t, false, "*.fabrikam.com")
	fallback, fallbackCA := selfSigned(t, false, "fallback.local")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, []byte(fallback), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(fallback), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startGateway(t, tlsSnapshot(t, be.addr, contoso, fabrikam), func(o *Options) {
		o.HTTPSAddr = "127.0.0.1:0"
		o.TLSCertFile, o.TLSKeyFile = certFile, keyFile
		o.ServerCipherSuites = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"
	})
	addr := h.g.HTTPSAddr().String()

	t.Run("certificate chosen by SNI", func(t *testing.T) {
		for _, tc := range []struct {
			sni  string
			pool *x509.CertPool
			want string
		}{
			{"api.contoso.com", contosoCA, "api.contoso.com"},
			{"eu.fabrikam.com", fabrikamCA, "*.fabrikam.com"},
			{"unknown.example", contosoCA, "api.contoso.com"}, // default SSL binding
		} {
			conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: tc.sni, RootCAs: tc.pool, InsecureSkipVerify: tc.sni == "unknown.example"})
			if err != nil {
				t.Fatalf("SNI %s: %v", tc.sni, err)
			}
			got := conn.ConnectionState().PeerCertificates[0].DNSNames[0]
			conn.Close()
			if got != tc.want {
				t.Errorf("SNI %s: served %q, want %q", tc.sni, got, tc.want)
			}
		}
		_ = fallbackCA
	})

	t.Run("TLS 1.1 refused", func(t *testing.T) {
		_, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "api.contoso.com", RootCAs: contosoCA, MaxVersion: tls.VersionTLS11})
		if err == nil {
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
	})

	t.Run("cipher suites honoured", func(t *testing.T) {
		_, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "api.contoso.com", RootCAs: contosoCA, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}})
		if err == nil {
			t.Error("a suite outside net.server.tls.ciphers.allowed-suites was negotiated")
		}
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "api.contoso.com", RootCAs: contosoCA, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}})
		if err != nil {
			t.Fatalf("allowed suite refused: %v", err)
		}
		if s := c.ConnectionState().CipherSuite; s != tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 {
			t.Errorf("negotiated %s", tls.CipherSuiteName(s))
		}
		c.Close()
	})

	t.Run("https-only API", func(t *testing.T) {
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: "api.contoso.com", RootCAs: contosoCA}}}
		resp, err := hc.Get("https://" + addr + "/secure/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"X-Forwarded-Proto":"https"`) {
			t.Errorf("over https: %d %s\n%s", resp.StatusCode, b, h.logs.String())
		}
		if r := do(t, "GET", h.url+"/secure/x", nil, nil); r.status != 404 {
			t.Errorf("https-only API over http: %d, want 404", r.status)
		}
		for _, p := range []string{StatusPath, InternalStatusPath} {
			resp, err := hc.Get("https://" + addr + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("health over https %s: %d", p, resp.StatusCode)
			}
		}
	})

	t.Run("key material never logged", func(t *testing.T) {
		logs := h.logs.String()
		for _, secret := range []string{contoso, fabrikam, "PRIVATE KEY"} {
			if strings.Contains(logs, strings.TrimSpace(secret)) || strings.Contains(logs, "PRIVATE KEY") {
				t.Fatal("certificate or key material in logs")
			}
		}
	})
}

func TestForwardedProto(t *testing.T) {
	be := startBackend(t, nil)
	c, _ := selfSigned(t, false, "a.example")
	f, _ := selfSigned(t, false, "b.example")
	snap := tlsSnapshot(t, be.addr, c, f)
	off := startGateway(t, snap, nil)
	if r := do(t, "GET", off.url+"/secure/x", map[string]string{"X-Forwarded-Proto": "https"}, nil); r.status != 404 {
		t.Errorf("X-Forwarded-Proto trusted without %s: %d", SettingForwardedProto, r.status)
	}
	on := startGateway(t, snap, func(o *Options) { o.ForwardedProto = true })
	if r := do(t, "GET", on.url+"/secure/x", map[string]string{"X-Forwarded-Proto": "https"}, nil); r.status != 200 {
		t.Errorf("X-Forwarded-Proto ignored with %s: %d", SettingForwardedProto, r.status)
	}
}

func TestParseCipherSuites(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		list        string
		wantIDs     []uint16
		wantSkipped int
		wantErr     string
	}{
		{name: "empty means Go's defaults", list: ""},
		{name: "TLS 1.2 suites", list: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
			wantIDs: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}},
		{name: "TLS 1.3 names accepted without effect", list: "TLS_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
			wantIDs: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}},
		{name: "suites Go lacks are skipped", list: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_RC4_128_SHA",
			wantIDs: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, wantSkipped: 2},
		{name: "unknown name", list: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,NOT_A_SUITE", wantErr: SettingServerCiphers + `: unknown cipher suite "NOT_A_SUITE"`},
		{name: "nothing usable left", list: "TLS_AES_128_GCM_SHA256", wantErr: "no TLS 1.2 cipher suite"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ids, skipped, err := ParseCipherSuites(SettingServerCiphers, tc.list)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) != len(tc.wantIDs) {
				t.Fatalf("ids %v, want %v", ids, tc.wantIDs)
			}
			for i := range ids {
				if ids[i] != tc.wantIDs[i] {
					t.Errorf("ids[%d] = %s", i, tls.CipherSuiteName(ids[i]))
				}
			}
			if len(skipped) != tc.wantSkipped {
				t.Errorf("skipped %v", skipped)
			}
		})
	}
}

// An https backend: verified against --backend-ca-file, reached with the
// suites of net.client.tls.ciphers.allowed-suites.
func TestHTTPSBackend(t *testing.T) {
	bundle, _ := selfSigned(t, true, "127.0.0.1", "localhost")
	crt, err := tls.X509KeyPair([]byte(bundle), []byte(bundle))
	if err != nil {
		t.Fatal(err)
	}
	var negotiated atomicSuite
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{crt},
		MaxVersion:   tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			negotiated.store(cs.CipherSuite)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "secure backend "+r.URL.Path)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte(bundle[:strings.Index(bundle, "-----BEGIN PRIVATE KEY")]), 0o600); err != nil {
		t.Fatal(err)
	}
	snap := `{"schemaVersion": "1.0", "apis": [{"name": "tls", "properties": {"path": "tls", "serviceUrl": "https://localhost:` +
		ln.Addr().(*net.TCPAddr).AddrPort().String()[len("127.0.0.1:"):] + `/in", "subscriptionRequired": false},
	   "operations": [{"name": "any", "properties": {"method": "GET", "urlTemplate": "/*"}}]}]}`

	untrusted := startGateway(t, snap, nil)
	if r := do(t, "GET", untrusted.url+"/tls/x", nil, nil); r.status != 502 {
		t.Errorf("self-signed backend without --backend-ca-file: %d, want 502", r.status)
	}
	h := startGateway(t, snap, func(o *Options) {
		o.BackendCAFile = caFile
		o.ClientCipherSuites = "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
	})
	r := do(t, "GET", h.url+"/tls/x", nil, nil)
	if r.status != 200 || r.body != "secure backend /in/x" {
		t.Fatalf("trusted backend: %d %q", r.status, r.body)
	}
	if s := negotiated.load(); s != tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 {
		t.Errorf("backend connection used %s, not the allowed suite", tls.CipherSuiteName(s))
	}
}

type atomicSuite struct{ v atomic.Uint32 }

func (a *atomicSuite) store(s uint16) { a.v.Store(uint32(s)) }
func (a *atomicSuite) load() uint16   { return uint16(a.v.Load()) }
