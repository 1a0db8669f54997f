package policy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// HTTPDoer sends control-plane HTTP requests (validate-jwt's OpenID
// configuration and key set fetches). *http.Client satisfies it;
// Options.HTTPClient nil means a default client with timeouts.
type HTTPDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// OpenID configuration caching, as API Management documents it: the
// configuration and its key set are refetched every hour, and when a token
// names a key the cache does not have (or the last fetch failed) at most
// once per five minutes.
const (
	oidcRefreshEvery = time.Hour
	oidcMinInterval  = 5 * time.Minute
	oidcFetchTimeout = 15 * time.Second
	oidcMaxBody      = 1 << 20
)

// newOIDCClient is the client for OpenID configurations when Options has
// none: bounded timeouts, the environment's proxy, https redirects only.
func newOIDCClient() HTTPDoer {
	return &http.Client{
		Timeout: oidcFetchTimeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" {
				return errors.New("redirect away from https")
			}
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
}

// oidcKeys is one fetched OpenID configuration: its issuer and keys.
type oidcKeys struct {
	issuer  string
	keys    []jwtKey
	fetched time.Time
}

// oidcProvider caches one OpenID configuration endpoint's keys. Providers
// are shared by every policy (and every configuration snapshot) naming the
// same URL with the same client, so a reload does not refetch.
type oidcProvider struct {
	url    string
	client HTTPDoer
	now    func() time.Time // tests move the clock

	cur atomic.Pointer[oidcKeys]

	mu        sync.Mutex
	attempted time.Time     // last fetch start
	inflight  chan struct{} // closed when the running fetch ends
	lastErr   error
}

type oidcKey struct {
	client HTTPDoer
	url    string
}

func (sh *Shared) oidcProviderFor(client HTTPDoer, rawURL string) (*oidcProvider, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("<openid-config> url %q must be an https URL", rawURL)
	}
	if client == nil {
		client = sh.oidcClient
	}
	k := oidcKey{client: client, url: u.String()}
	if p, ok := sh.oidc.Load(k); ok {
		return p.(*oidcProvider), nil
	}
	p, _ := sh.oidc.LoadOrStore(k, &oidcProvider{url: k.url, client: client, now: time.Now})
	return p.(*oidcProvider), nil
}

// start fetches the configuration in the background if it never was.
func (p *oidcProvider) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur.Load() == nil && p.inflight == nil && p.attempted.IsZero() {
		p.fetchLocked()
	}
}

// keys returns the cached keys; a stale cache starts a background refresh
// and is used meanwhile. Before the first fetch ends it waits for it.
func (p *oidcProvider) keys() *oidcKeys {
	ks := p.cur.Load()
	if ks != nil {
		if p.now().Sub(ks.fetched) >= oidcRefreshEvery {
			p.mu.Lock()
			if p.inflight == nil && p.now().Sub(p.attempted) >= oidcMinInterval {
				p.fetchLocked()
			}
			p.mu.Unlock()
		}
		return ks
	}
	p.mu.Lock()
	ch := p.inflight
	if ch == nil && p.now().Sub(p.attempted) >= oidcMinInterval {
		ch = p.fetchLocked()
	}
	p.mu.Unlock()
	if ch != nil {
		<-ch // bounded by the fetch timeout
	}
	return p.cur.Load()
}

// refreshForUnknownKey refetches now (waiting for it) unless a fetch
// started less than oidcMinInterval ago, and returns the keys.
func (p *oidcProvider) refreshForUnknownKey() *oidcKeys {
	p.mu.Lock()
	ch := p.inflight
	if ch == nil && p.now().Sub(p.attempted) >= oidcMinInterval {
		ch = p.fetchLocked()
	}
	p.mu.Unlock()
	if ch != nil {
		<-ch
	}
	return p.cur.Load()
}

// fetchLocked starts a fetch; p.mu is held.
func (p *oidcProvider) fetchLocked() chan struct{} {
	ch := make(chan struct{})
	p.inflight = ch
	p.attempted = p.now()
	go func() {
		ks, err := p.fetch()
		p.mu.Lock()
		if err == nil {
			p.cur.Store(ks)
		}
		p.lastErr = err
		p.inflight = nil
		p.mu.Unlock()
		close(ch)
	}()
	return ch
}

func (p *oidcProvider) fetch() (*oidcKeys, error) {
	ctx, cancel := context.WithTimeout(context.Background(), oidcFetchTimeout)
	defer cancel()
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := p.getJSON(ctx, p.url, &doc); err != nil {
		return nil, err
	}
	ju, err := url.Parse(doc.JWKSURI)
	if err != nil || ju.Scheme != "https" || ju.Host == "" {
		return nil, fmt.Errorf("openid-config %s: jwks_uri %q is not an https URL", p.url, doc.JWKSURI)
	}
	var set jwkSet
	if err := p.getJSON(ctx, ju.String(), &set); err != nil {
		return nil, err
	}
	ks := &oidcKeys{issuer: doc.Issuer, fetched: p.now()}
	for _, k := range set.Keys {
		if key, ok := k.jwtKey(); ok {
			ks.keys = append(ks.keys, key)
		}
	}
	if len(ks.keys) == 0 {
		return nil, fmt.Errorf("openid-config %s: the key set has no usable signing key", p.url)
	}
	return ks, nil
}

func (p *oidcProvider) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("openid-config: GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, oidcMaxBody))
		return fmt.Errorf("openid-config: GET %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, oidcMaxBody+1))
	if err != nil {
		return fmt.Errorf("openid-config: GET %s: %w", u, err)
	}
	if len(body) > oidcMaxBody {
		return fmt.Errorf("openid-config: GET %s: the document is larger than %d bytes", u, oidcMaxBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("openid-config: GET %s: %w", u, err)
	}
	return nil
}

// jwk is one JSON Web Key (RFC 7517) of a key set.
type jwk struct {
	Kty string   `json:"kty"`
	Kid string   `json:"kid"`
	Use string   `json:"use"`
	Alg string   `json:"alg"`
	N   string   `json:"n"`
	E   string   `json:"e"`
	Crv string   `json:"crv"`
	X   string   `json:"x"`
	Y   string   `json:"y"`
	X5c []string `json:"x5c"`
}

type jwkSet struct {
	Keys []jwk `json:"keys"`
}

// jwtKey converts a public signing key; ok is false for keys this policy
// cannot verify with (encryption keys, symmetric or unknown types).
func (k *jwk) jwtKey() (jwtKey, bool) {
	if k.Use != "" && k.Use != "sig" {
		return jwtKey{}, false
	}
	key := jwtKey{id: k.Kid}
	switch k.Kty {
	case "RSA":
		if k.N != "" && k.E != "" {
			pub, err := rsaPublicKey(k.N, k.E)
			if err != nil {
				return jwtKey{}, false
			}
			key.key = pub
		} else if pub, ok := x5cKey(k.X5c); ok {
			key.key = pub
		} else {
			return jwtKey{}, false
		}
		key.methods = rsaMethods
	case "EC":
		pub, err := ecPublicKey(k.Crv, k.X, k.Y)
		if err != nil {
			return jwtKey{}, false
		}
		key.key, key.methods = pub, ecMethods[k.Crv]
	default:
		return jwtKey{}, false
	}
	if k.Alg != "" {
		if !methodAllowed(key.methods, k.Alg) {
			return jwtKey{}, false
		}
		key.methods = []string{k.Alg}
	}
	return key, true
}

// x5cKey returns the RSA public key of a JWK's first certificate.
func x5cKey(chain []string) (any, bool) {
	if len(chain) == 0 {
		return nil, false
	}
	der, err := base64.StdEncoding.DecodeString(chain[0])
	if err != nil {
		return nil, false
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, false
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, false
	}
	return pub, true
}

var (
	hmacMethods  = []string{"HS256", "HS384", "HS512"}
	rsaMethods   = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ecMethods    = map[string][]string{"P-256": {"ES256"}, "P-384": {"ES384"}, "P-521": {"ES512"}}
	noneMethods  = []string{"none"}
	base64Decode = []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding}
)

// jwtKey is one verification key with the algorithms it may verify.
type jwtKey struct {
	id      string // matches the token's kid; "" matches any
	key     any    // []byte, *rsa.PublicKey or *ecdsa.PublicKey
	methods []string
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	var err error
	for _, enc := range base64Decode {
		var b []byte
		if b, err = enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, err
}

func rsaPublicKey(n, e string) (*rsa.PublicKey, error) {
	nb, err := decodeBase64(n)
	if err != nil || len(nb) == 0 {
		return nil, fmt.Errorf("the RSA modulus n is not base64url")
	}
	eb, err := decodeBase64(e)
	if err != nil || len(eb) == 0 || len(eb) > 4 {
		return nil, fmt.Errorf("the RSA exponent e is not base64url")
	}
	exp := 0
	for _, b := range eb {
		exp = exp<<8 | int(b)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: exp}
	if pub.N.BitLen() < 1024 || exp < 3 || exp%2 == 0 {
		return nil, fmt.Errorf("the RSA key is too small or its exponent is invalid")
	}
	return pub, nil
}

func ecPublicKey(crv, x, y string) (*ecdsa.PublicKey, error) {
	var curve elliptic.Curve
	switch crv {
	case "P-256":
		curve = elliptic.P256()
	case "P-384":
		curve = elliptic.P384()
	case "P-521":
		curve = elliptic.P521()
	default:
		return nil, fmt.Errorf("unsupported curve %q", crv)
	}
	xb, err1 := decodeBase64(x)
	yb, err2 := decodeBase64(y)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("the EC key coordinates are not base64url")
	}
	pub := &ecdsa.PublicKey{Curve: curve, X: new(big.Int).SetBytes(xb), Y: new(big.Int).SetBytes(yb)}
	if !curve.IsOnCurve(pub.X, pub.Y) { //nolint:staticcheck // validating untrusted JWKS input
		return nil, fmt.Errorf("the EC point is not on the curve")
	}
	return pub, nil
}

func methodAllowed(methods []string, alg string) bool {
	for _, m := range methods {
		if m == alg {
			return true
		}
	}
	return false
}
