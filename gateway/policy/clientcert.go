package policy

// authentication-certificate: the backend call presents a client
// certificate. API Management identifies it by certificate-id (the
// certificate resource name), by thumbprint, or gives it inline in body
// (with password) (authentication-certificate-policy.md).

import (
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/proxy"
)

type authCert struct {
	meta
	cert *clientCert
}

func compileAuthCert(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	id, hasID := el.Attr("certificate-id")
	thumb, hasThumb := el.Attr("thumbprint")
	body, hasBody := el.Attr("body")
	password, _ := el.Attr("password")
	n := 0
	for _, has := range []bool{hasID, hasThumb, hasBody} {
		if has {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("set exactly one of certificate-id, thumbprint and body")
	}
	if c.set.opts.ClientWithCert == nil {
		c.unsupported(el, "this gateway has no client certificate support for backends")
		return nil, nil
	}
	var (
		crt *tls.Certificate
		err error
	)
	switch {
	case hasID:
		crt, err = c.set.certificateByID(id.Value)
	case hasThumb:
		crt, err = c.set.certificateByThumbprint(thumb.Value)
	default:
		crt, err = decodeCertBody(body.Value, password.Value)
	}
	if err != nil {
		return nil, err
	}
	return &authCert{meta: m, cert: &clientCert{cert: crt, clientFor: c.set.opts.ClientWithCert}}, nil
}

func (s *authCert) Exec(r *Request) error {
	r.clientCert = s.cert
	return nil
}

// clientCert is a client certificate with the clients that present it,
// one per backend.
type clientCert struct {
	cert      *tls.Certificate
	clientFor func(proxy.Target, *tls.Certificate) *fasthttp.HostClient
	clients   sync.Map // upstreamKey -> *fasthttp.HostClient
}

type upstreamKey struct{ scheme, host string }

// apply points the request at its backend through a client presenting the
// certificate. forward-request calls it, so the certificate applies
// whatever set-backend-service chose before or after the policy.
func (c *clientCert) apply(r *Request) {
	if r.Backend == nil {
		return
	}
	k := upstreamKey{r.Backend.Scheme, r.Backend.Host}
	var hc *fasthttp.HostClient
	if v, ok := c.clients.Load(k); ok {
		hc = v.(*fasthttp.HostClient)
	} else {
		target, _, err := proxy.ParseTarget(k.scheme + "://" + k.host)
		if err != nil {
			return
		}
		hc = c.clientFor(target, c.cert)
		if hc == nil {
			return
		}
		c.clients.Store(k, hc)
	}
	up := *r.Backend
	up.Client = hc
	r.dynBackend = up
	r.Backend = &r.dynBackend
}

// certificateByID finds a snapshot certificate by resource name.
func (s *Set) certificateByID(id string) (*tls.Certificate, error) {
	name := config.RefName(id, "certificates")
	for i := range s.snapshot.Certificates {
		c := &s.snapshot.Certificates[i]
		if strings.EqualFold(c.Name, name) {
			crt, err := decodeClientCert(&c.Properties)
			if err != nil {
				return nil, fmt.Errorf("certificate %q: %w", c.Name, err)
			}
			return crt, nil
		}
	}
	return nil, fmt.Errorf("certificate-id %q names no certificate in $.certificates", id)
}

// certificateByThumbprint finds a snapshot certificate by its thumbprint
// field or, when that is empty, the SHA-1 of its certificate.
func (s *Set) certificateByThumbprint(thumb string) (*tls.Certificate, error) {
	want := strings.ToUpper(strings.TrimSpace(thumb))
	for i := range s.snapshot.Certificates {
		c := &s.snapshot.Certificates[i]
		if c.Properties.Thumbprint != "" && !strings.EqualFold(c.Properties.Thumbprint, want) {
			continue
		}
		crt, err := decodeClientCert(&c.Properties)
		if err != nil {
			if c.Properties.Thumbprint != "" {
				return nil, fmt.Errorf("certificate %q: %w", c.Name, err)
			}
			continue // reported by the server's certificate loading
		}
		if c.Properties.Thumbprint != "" || certThumbprint(crt) == want {
			return crt, nil
		}
	}
	return nil, fmt.Errorf("thumbprint %q names no certificate in $.certificates", thumb)
}

// certThumbprint is the certificate's SHA-1 thumbprint, upper-case hex,
// as API Management shows it.
func certThumbprint(crt *tls.Certificate) string {
	if len(crt.Certificate) == 0 {
		return ""
	}
	sum := sha1.Sum(crt.Certificate[0])
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// decodeClientCert reads a certificate with its private key: a PEM
// bundle, or base64 PKCS#12 with its password (as the server's TLS
// hostnames do). Errors never include the certificate, key or password.
func decodeClientCert(p *config.CertificateProperties) (*tls.Certificate, error) {
	if !p.PEM.IsZero() {
		data := []byte(p.PEM.Value())
		crt, err := tls.X509KeyPair(data, data)
		if err != nil {
			return nil, errors.New("pem: not a certificate with its private key")
		}
		return &crt, nil
	}
	return decodeCertBody(p.Data.Value(), p.Password.Value())
}

// decodeCertBody reads base64 PKCS#12 (or base64 PEM) with password.
func decodeCertBody(b64, password string) (*tls.Certificate, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, errors.New("certificate data is not valid base64")
	}
	if blk, _ := pem.Decode(raw); blk != nil {
		crt, err := tls.X509KeyPair(raw, raw)
		if err != nil {
			return nil, errors.New("pem: not a certificate with its private key")
		}
		return &crt, nil
	}
	key, leaf, chain, err := pkcs12.DecodeChain(raw, password)
	if err != nil {
		return nil, errors.New("certificate data is not a PKCS#12 file this password opens")
	}
	crt := &tls.Certificate{PrivateKey: key, Leaf: leaf, Certificate: [][]byte{leaf.Raw}}
	for _, c := range chain {
		crt.Certificate = append(crt.Certificate, c.Raw)
	}
	return crt, nil
}
