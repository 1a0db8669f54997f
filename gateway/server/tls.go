package server

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
)

// ParseCipherSuites reads a comma-separated list of IANA cipher suite
// names, as the net.server.tls.ciphers.allowed-suites and
// net.client.tls.ciphers.allowed-suites settings hold them. It returns the
// TLS 1.2 suites Go implements; TLS 1.3 suites are always enabled by Go and
// are accepted without effect; names Go does not implement (Microsoft's
// default list has some CBC and DHE suites) are returned as skipped so the
// caller can warn about them. An unknown name, or a list that leaves no
// TLS 1.2 suite, is an error naming the setting.
func ParseCipherSuites(setting, list string) (ids []uint16, skipped []string, err error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil, nil
	}
	known := map[string]*tls.CipherSuite{}
	for _, cs := range tls.CipherSuites() {
		known[cs.Name] = cs
	}
	insecure := map[string]*tls.CipherSuite{}
	for _, cs := range tls.InsecureCipherSuites() {
		insecure[cs.Name] = cs
	}
	for _, raw := range strings.Split(list, ",") {
		name := strings.TrimSpace(raw)
		if name == "" {
			continue
		}
		cs, ok := known[name]
		if !ok {
			if _, bad := insecure[name]; bad {
				skipped = append(skipped, name+" (insecure, not enabled)")
				continue
			}
			if strings.HasPrefix(name, "TLS_") && strings.Contains(name, "_WITH_") {
				skipped = append(skipped, name+" (not implemented)")
				continue
			}
			return nil, nil, fmt.Errorf("%s: unknown cipher suite %q", setting, name)
		}
		if isTLS13Only(cs) {
			continue
		}
		ids = append(ids, cs.ID)
	}
	if len(ids) == 0 {
		return nil, skipped, fmt.Errorf("%s: no TLS 1.2 cipher suite left that this gateway implements", setting)
	}
	return ids, skipped, nil
}

func isTLS13Only(cs *tls.CipherSuite) bool {
	for _, v := range cs.SupportedVersions {
		if v != tls.VersionTLS13 {
			return false
		}
	}
	return true
}

// certStore selects the server certificate for a TLS handshake by SNI.
type certStore struct {
	exact    map[string]*tls.Certificate
	wildcard map[string]*tls.Certificate // ".contoso.com"
	def      *tls.Certificate
}

func (c *certStore) lookup(serverName string) *tls.Certificate {
	if c == nil {
		return nil
	}
	name := strings.ToLower(strings.TrimSuffix(serverName, "."))
	if name != "" {
		if crt := c.exact[name]; crt != nil {
			return crt
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if crt := c.wildcard[name[i:]]; crt != nil {
				return crt
			}
		}
	}
	return c.def
}

// compileCertificates decodes the snapshot's certificates and maps the
// gateway hostnames to them.
func compileCertificates(s *config.Snapshot) (*certStore, error) {
	decoded := map[string]*tls.Certificate{}
	var errs []error
	for i := range s.Certificates {
		c := &s.Certificates[i]
		crt, err := decodeCertificate(&c.Properties)
		if err != nil {
			errs = append(errs, fmt.Errorf("$.certificates[%d] (%s): %w", i, c.Name, err))
			continue
		}
		decoded[strings.ToLower(c.Name)] = crt
	}
	store := &certStore{exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}}
	for _, h := range s.Gateway.Hostnames {
		if h.CertificateID == "" {
			continue
		}
		crt := decoded[strings.ToLower(config.RefName(h.CertificateID, "certificates"))]
		if crt == nil {
			continue // its decoding error is already reported
		}
		name := strings.ToLower(h.Hostname)
		if strings.HasPrefix(name, "*.") {
			store.wildcard[name[1:]] = crt
		} else {
			store.exact[name] = crt
		}
		if h.DefaultSSLBinding {
			store.def = crt
		}
	}
	return store, errors.Join(errs...)
}

// decodeCertificate reads a PKCS#12 (base64) or PEM certificate with its
// private key. Errors never include the certificate, key or password.
func decodeCertificate(p *config.CertificateProperties) (*tls.Certificate, error) {
	if !p.PEM.IsZero() {
		data := []byte(p.PEM.Value())
		crt, err := tls.X509KeyPair(data, data)
		if err != nil {
			return nil, fmt.Errorf("pem: %s", pemError(data, err))
		}
		return &crt, nil
	}
	raw, err := base64.StdEncoding.DecodeString(p.Data.Value())
	if err != nil {
		return nil, errors.New("data is not valid base64")
	}
	key, leaf, chain, err := pkcs12.DecodeChain(raw, p.Password.Value())
	if err != nil {
		return nil, fmt.Errorf("data is not a PKCS#12 file this password opens: %v", err)
	}
	crt := &tls.Certificate{PrivateKey: key, Leaf: leaf, Certificate: [][]byte{leaf.Raw}}
	for _, c := range chain {
		crt.Certificate = append(crt.Certificate, c.Raw)
	}
	return crt, nil
}

// pemError explains a PEM failure by the block types present, never by
// content.
func pemError(data []byte, err error) string {
	var types []string
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		types = append(types, b.Type)
	}
	if len(types) == 0 {
		return "no PEM blocks found"
	}
	return fmt.Sprintf("blocks %s: %v", strings.Join(types, ", "), err)
}
