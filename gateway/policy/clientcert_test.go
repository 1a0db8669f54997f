package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/proxy"
)

// clientCertFixture is a self-signed client certificate as PEM and as
// base64 PKCS#12 (password "pw"), with its SHA-1 thumbprint.
type clientCertFixture struct {
	pem, p12, thumb string
}

func newClientCert(t *testing.T, cn string) clientCertFixture {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pfx, err := pkcs12.Modern.Encode(k, leaf, nil, "pw")
	if err != nil {
		t.Fatal(err)
	}
	return clientCertFixture{
		pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) +
			string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
		p12:   base64.StdEncoding.EncodeToString(pfx),
		thumb: certThumbprint(&tls.Certificate{Certificate: [][]byte{der}}),
	}
}

// certClient makes HostClients presenting crt, as proxy.Pool would.
func certClient(tg proxy.Target, crt *tls.Certificate) *fasthttp.HostClient {
	return &fasthttp.HostClient{Addr: tg.Addr, IsTLS: tg.Scheme == "https", MaxIdemponentCallAttempts: 1,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{*crt}, InsecureSkipVerify: true}}
}

func TestAuthenticationCertificate(t *testing.T) {
	t.Parallel()
	// The backend answers with the client certificate's common name.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, q *http.Request) {
		if len(q.TLS.PeerCertificates) == 0 {
			w.WriteHeader(401)
			return
		}
		_, _ = w.Write([]byte(q.TLS.PeerCertificates[0].Subject.CommonName))
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	pemCert, p12Cert, bodyCert := newClientCert(t, "pem-client"), newClientCert(t, "p12-client"), newClientCert(t, "body-client")
	snap := &config.Snapshot{
		SchemaVersion: config.SchemaVersion,
		Backends:      []config.Backend{single("tls", srv.URL)},
		Certificates: []config.Certificate{
			{Name: "pemcert", Properties: config.CertificateProperties{PEM: config.Secret(pemCert.pem)}},
			{Name: "p12cert", Properties: config.CertificateProperties{Data: config.Secret(p12Cert.p12), Password: "pw", Thumbprint: "ABC123"}},
		},
	}
	tests := []struct {
		name     string
		policy   string
		noClient bool // Options.ClientWithCert nil
		want     string
		wantErr  string
		warn     bool
	}{
		{name: "certificate-id PEM", policy: `<authentication-certificate certificate-id="pemcert" />`, want: "pem-client"},
		{name: "certificate-id PKCS#12, ARM path", policy: `<authentication-certificate certificate-id="/certificates/P12CERT" />`, want: "p12-client"},
		{name: "thumbprint field", policy: `<authentication-certificate thumbprint="abc123" />`, want: "p12-client"},
		{name: "thumbprint computed", policy: `<authentication-certificate thumbprint="` + strings.ToLower(pemCert.thumb) + `" />`, want: "pem-client"},
		{name: "inline body", policy: `<authentication-certificate body="` + bodyCert.p12 + `" password="pw" />`, want: "body-client"},
		{name: "no certificate", policy: ``, want: "401"},
		{name: "unknown id", policy: `<authentication-certificate certificate-id="nope" />`, wantErr: "names no certificate"},
		{name: "unknown thumbprint", policy: `<authentication-certificate thumbprint="FFFF" />`, wantErr: "names no certificate"},
		{name: "wrong body password", policy: `<authentication-certificate body="` + bodyCert.p12 + `" password="x" />`, wantErr: "PKCS#12"},
		{name: "two identifiers", policy: `<authentication-certificate certificate-id="pemcert" thumbprint="abc123" />`, wantErr: "exactly one"},
		{name: "no client support", policy: `<authentication-certificate certificate-id="pemcert" />`, noClient: true, warn: true, want: "401"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{Client: testClient, ClientWithCert: certClient}
			if tc.noClient {
				opts.ClientWithCert = nil
			}
			set := NewSet(snap, opts)
			// The certificate applies whatever set-backend-service runs after it.
			doc := `<policies><inbound>` + tc.policy + `<set-backend-service backend-id="tls" /></inbound><backend><forward-request /></backend><outbound /><on-error /></policies>`
			api := set.Compile(Location{Scope: ScopeAPI, Name: "a"}, doc)
			err := set.Err()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := len(set.Warnings) > 0; got != tc.warn {
				t.Fatalf("warnings %v, want some: %v", set.Warnings, tc.warn)
			}
			ctx := &fasthttp.RequestCtx{}
			ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}, nil)
			r := &Request{Ctx: ctx, Forward: loopForward}
			Compose(nil, api).Run(r)
			got := string(ctx.Response.Body())
			if ctx.Response.StatusCode() != 200 {
				got = ctx.Response.Header.String()[9:12]
			}
			if got != tc.want {
				t.Fatalf("backend saw %q, want %q", got, tc.want)
			}
		})
	}
}
