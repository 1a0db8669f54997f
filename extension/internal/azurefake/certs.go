package azurefake

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// ClientCertificate is a self-signed application certificate for
// AddCertificateApp, in the forms the gateway.auth.azureAd.app.certificate
// setting accepts.
type ClientCertificate struct {
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
}

// NewClientCertificate generates an RSA 2048 certificate for subject cn.
func NewClientCertificate(t testing.TB, cn string) *ClientCertificate {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("azurefake: client key: %v", err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("azurefake: client certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("azurefake: client certificate: %v", err)
	}
	return &ClientCertificate{Cert: cert, Key: key}
}

// PEM returns the certificate followed by its PKCS#8 private key.
func (c *ClientCertificate) PEM(t testing.TB) string {
	t.Helper()
	pk, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		t.Fatalf("azurefake: marshal key: %v", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}))
}

// PKCS12 returns the certificate and key as base64 PKCS#12 protected by
// password; modern selects AES-256 and a SHA-256 MAC (what current tools
// write), otherwise legacy 3DES and SHA-1.
func (c *ClientCertificate) PKCS12(t testing.TB, password string, modern bool) string {
	t.Helper()
	enc := pkcs12.LegacyDES
	if modern {
		enc = pkcs12.Modern2023
	}
	der, err := enc.Encode(c.Key, c.Cert, nil, password)
	if err != nil {
		t.Fatalf("azurefake: encode PKCS#12: %v", err)
	}
	return base64.StdEncoding.EncodeToString(der)
}
