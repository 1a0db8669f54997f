package policy

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/expr"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
)

// --- validate-jwt -------------------------------------------------------------
//
// Keys come from <issuer-signing-keys> (symmetric base64 keys, RSA n/e
// pairs) and from <openid-config> endpoints (see jwt_oidc.go). Every key
// verifies only the algorithms of its type: HMAC keys HS256/384/512, RSA
// keys RS* and PS*, EC keys the ES* of their curve, so a token cannot
// choose how its signature is checked (an HS256 token "signed" with an RSA
// public key fails).

// API Management's default messages: "JWT not present." is documented; the
// other failures answer "Invalid JWT." unless the policy sets a message.
const (
	jwtMsgNotPresent = "JWT not present."
	jwtMsgInvalid    = "Invalid JWT."
)

type jwtClaim struct {
	name      string
	matchAll  bool
	separator string
	values    []string
}

type validateJWT struct {
	meta
	header, query, literal string
	hasHeader, hasQuery    bool
	scheme                 string // require-scheme; "" for none

	status  int
	message string // "" for the defaults

	requireExp    bool
	requireSigned bool
	skew          time.Duration
	outputVar     string

	keys      []jwtKey
	providers []*oidcProvider
	audiences []string
	issuers   []string
	// audienceExprs and issuerExprs are <audience>/<issuer> values given as
	// policy expressions, evaluated per request.
	audienceExprs []text
	issuerExprs   []text
	claims        []jwtClaim
}

func compileValidateJWT(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	// Expressions are evaluated in <audience> and <issuer>; anywhere else
	// the policy cannot run, and as an access policy it then fails closed.
	if pos, found := jwtExprOutsideValues(el); found {
		steps := c.skip(c.set.defs["validate-jwt"], el, pos, m, "a policy expression outside <audience> and <issuer>, which this policy does not evaluate yet")
		if len(steps) == 0 {
			return nil, nil
		}
		return steps[0], nil
	}
	v := &validateJWT{meta: m, status: fasthttp.StatusUnauthorized}
	sources := 0
	if a, ok := el.Attr("header-name"); ok {
		v.header, v.hasHeader = strings.TrimSpace(a.Value), true
		sources++
	}
	if a, ok := el.Attr("query-parameter-name"); ok {
		v.query, v.hasQuery = strings.TrimSpace(a.Value), true
		sources++
	}
	if a, ok := el.Attr("token-value"); ok {
		v.literal = strings.TrimSpace(a.Value)
		sources++
	}
	if sources != 1 {
		return nil, fmt.Errorf("set exactly one of header-name, query-parameter-name and token-value")
	}
	if (v.hasHeader && v.header == "") || (v.hasQuery && v.query == "") {
		return nil, fmt.Errorf("the token's header or query parameter name is empty")
	}
	if raw, ok := el.Attr("failed-validation-httpcode"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(raw.Value))
		if err != nil || n < 100 || n > 599 {
			return nil, fmt.Errorf("failed-validation-httpcode %q is not an HTTP status code", raw.Value)
		}
		v.status = n
	}
	v.message = attr(el, "failed-validation-error-message", "")
	var err error
	if v.requireExp, err = boolAttr(el, "require-expiration-time", true); err != nil {
		return nil, err
	}
	if v.requireSigned, err = boolAttr(el, "require-signed-tokens", true); err != nil {
		return nil, err
	}
	v.scheme = strings.TrimSpace(attr(el, "require-scheme", ""))
	if raw, ok := el.Attr("clock-skew"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(raw.Value))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("clock-skew %q must be a number of seconds", raw.Value)
		}
		v.skew = time.Duration(n) * time.Second
	}
	v.outputVar = strings.TrimSpace(attr(el, "output-token-variable-name", ""))

	seen := map[string]bool{}
	for _, ch := range el.Children {
		if ch.Name != "openid-config" && seen[ch.Name] {
			return nil, fmt.Errorf("<%s> appears more than once in <validate-jwt>", ch.Name)
		}
		seen[ch.Name] = true
		switch ch.Name {
		case "openid-config":
			u, err := required(ch, "url")
			if err != nil {
				return nil, fmt.Errorf("<openid-config>: %v", err)
			}
			p, err := c.set.shared().oidcProviderFor(c.set.opts.HTTPClient, strings.TrimSpace(u))
			if err != nil {
				return nil, err
			}
			v.providers = append(v.providers, p)
		case "issuer-signing-keys":
			for _, k := range ch.Children {
				if k.Name != "key" {
					return nil, fmt.Errorf("<%s> cannot be a child of <issuer-signing-keys>", k.Name)
				}
				key, ok, err := parseSigningKey(k)
				if err != nil {
					return nil, err
				}
				if !ok {
					c.unsupportedAt(k, k.Pos, "<key certificate-id>: certificates are not available to this gateway yet; the key is not used")
					continue
				}
				v.keys = append(v.keys, key)
			}
		case "decryption-keys":
			c.unsupportedAt(ch, ch.Pos, "<decryption-keys>: encrypted tokens (JWE) are not supported; they fail validation")
		case "audiences":
			for _, a := range ch.Children {
				if a.Name != "audience" {
					return nil, fmt.Errorf("<%s> cannot be a child of <audiences>", a.Name)
				}
				if a.TextExpr {
					t, err := elemText(a)
					if err != nil {
						return nil, err
					}
					v.audienceExprs = append(v.audienceExprs, t)
					continue
				}
				v.audiences = append(v.audiences, strings.TrimSpace(a.Text))
			}
		case "issuers":
			for _, a := range ch.Children {
				if a.Name != "issuer" {
					return nil, fmt.Errorf("<%s> cannot be a child of <issuers>", a.Name)
				}
				if a.TextExpr {
					t, err := elemText(a)
					if err != nil {
						return nil, err
					}
					v.issuerExprs = append(v.issuerExprs, t)
					continue
				}
				v.issuers = append(v.issuers, strings.TrimSpace(a.Text))
			}
		case "required-claims":
			for _, cl := range ch.Children {
				if cl.Name != "claim" {
					return nil, fmt.Errorf("<%s> cannot be a child of <required-claims>", cl.Name)
				}
				name, err := required(cl, "name")
				if err != nil {
					return nil, fmt.Errorf("<claim>: %v", err)
				}
				rc := jwtClaim{name: name, separator: attr(cl, "separator", "")}
				switch match := attr(cl, "match", "all"); match {
				case "all":
					rc.matchAll = true
				case "any":
				default:
					return nil, fmt.Errorf("<claim> match must be all or any, found %q", match)
				}
				for _, val := range cl.Children {
					if val.Name != "value" {
						return nil, fmt.Errorf("<%s> cannot be a child of <claim>", val.Name)
					}
					rc.values = append(rc.values, val.Text)
				}
				v.claims = append(v.claims, rc)
			}
		default:
			return nil, fmt.Errorf("<%s> cannot be a child of <validate-jwt>", ch.Name)
		}
	}
	for _, p := range v.providers {
		p.start()
	}
	return v, nil
}

// parseSigningKey reads an <issuer-signing-keys> <key>. ok is false for a
// key this gateway cannot use (certificate-id).
func parseSigningKey(k *policyxml.Element) (jwtKey, bool, error) {
	key := jwtKey{id: attr(k, "id", "")}
	n, hasN := k.Attr("n")
	e, hasE := k.Attr("e")
	switch {
	case hasN || hasE:
		if !hasN || !hasE {
			return key, false, fmt.Errorf("<key>: n and e go together")
		}
		pub, err := rsaPublicKey(n.Value, e.Value)
		if err != nil {
			return key, false, fmt.Errorf("<key>: %v", err)
		}
		key.key, key.methods = pub, rsaMethods
		return key, true, nil
	case hasAttr(k, "certificate-id"):
		return key, false, nil
	}
	raw, err := decodeBase64(k.Text)
	if err != nil || len(raw) == 0 {
		return key, false, fmt.Errorf("<key> must hold a base64-encoded key")
	}
	key.key, key.methods = raw, hmacMethods
	return key, true, nil
}

func hasAttr(el *policyxml.Element, name string) bool {
	_, ok := el.Attr(name)
	return ok
}

// jwtFailure is a failed validation: the LastError reason and whether the
// "JWT not present." default applies.
type jwtFailure struct {
	reason  string
	missing bool
}

func (s *validateJWT) failWith(f jwtFailure) error {
	msg := s.message
	if msg == "" {
		msg = jwtMsgInvalid
		if f.missing {
			msg = jwtMsgNotPresent
		}
	}
	return s.fail(f.reason, msg, s.status)
}

// token extracts the token from the request; "" when absent.
func (s *validateJWT) token(r *Request) (string, bool) {
	switch {
	case s.hasHeader:
		v := strings.TrimSpace(string(r.Ctx.Request.Header.Peek(s.header)))
		if v == "" {
			return "", false
		}
		scheme, rest, hasScheme := strings.Cut(v, " ")
		// require-scheme applies to the Authorization header only.
		if s.scheme != "" && strings.EqualFold(s.header, fasthttp.HeaderAuthorization) {
			if !hasScheme || !strings.EqualFold(scheme, s.scheme) {
				return "", false
			}
		}
		if hasScheme {
			v = strings.TrimSpace(rest)
		}
		return v, v != ""
	case s.hasQuery:
		args := fasthttp.AcquireArgs()
		defer fasthttp.ReleaseArgs(args)
		args.ParseBytes(r.Query)
		v := strings.TrimSpace(string(args.Peek(s.query)))
		return v, v != ""
	}
	return s.literal, s.literal != ""
}

func (s *validateJWT) Exec(r *Request) error {
	raw, ok := s.token(r)
	if !ok {
		return s.failWith(jwtFailure{reason: "TokenNotPresent", missing: true})
	}
	claims, f := s.verify(raw, time.Now())
	if f.reason != "" {
		return s.failWith(f)
	}
	check := s
	if len(s.audienceExprs)+len(s.issuerExprs) > 0 {
		resolved, err := s.resolve(r)
		if err != nil {
			return err
		}
		check = resolved
	}
	if f := check.checkClaims(claims, time.Now()); f.reason != "" {
		return s.failWith(f)
	}
	if s.outputVar != "" {
		// APIM stores a Jwt object: expressions cast it with (Jwt) and
		// read its claims.
		if j, ok := expr.ParseJwt(raw); ok {
			exprVars{r}.Set(s.outputVar, j)
		}
	}
	return nil
}

// resolve returns a copy of the policy with expression audiences and
// issuers evaluated for this request.
func (s *validateJWT) resolve(r *Request) (*validateJWT, error) {
	c := *s
	c.audiences = append([]string(nil), s.audiences...)
	c.issuers = append([]string(nil), s.issuers...)
	for i := range s.audienceExprs {
		v, err := s.audienceExprs[i].str(r, &s.meta)
		if err != nil {
			return nil, err
		}
		c.audiences = append(c.audiences, strings.TrimSpace(v))
	}
	for i := range s.issuerExprs {
		v, err := s.issuerExprs[i].str(r, &s.meta)
		if err != nil {
			return nil, err
		}
		c.issuers = append(c.issuers, strings.TrimSpace(v))
	}
	return &c, nil
}

// jwtExprOutsideValues finds a policy expression anywhere in validate-jwt
// except the text of <audience> and <issuer>.
func jwtExprOutsideValues(el *policyxml.Element) (policyxml.Pos, bool) {
	for _, a := range el.Attrs {
		if a.Expr {
			return a.Pos, true
		}
	}
	if el.TextExpr && el.Name != "audience" && el.Name != "issuer" {
		return el.Pos, true
	}
	for _, ch := range el.Children {
		if pos, ok := jwtExprOutsideValues(ch); ok {
			return pos, true
		}
	}
	return policyxml.Pos{}, false
}

// header is the part of the JOSE header key selection needs.
type joseHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Enc string `json:"enc"`
}

func parseJOSEHeader(raw string) (joseHeader, bool) {
	var h joseHeader
	seg, _, ok := strings.Cut(raw, ".")
	if !ok {
		return h, false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil || json.Unmarshal(b, &h) != nil || h.Alg == "" {
		return h, false
	}
	return h, true
}

// verify checks the signature and returns the claims.
func (s *validateJWT) verify(raw string, now time.Time) (jwt.MapClaims, jwtFailure) {
	invalid := jwtFailure{reason: "JwtInvalid"}
	if strings.Count(raw, ".") != 2 {
		return nil, invalid // JWE (five parts) or garbage
	}
	hdr, ok := parseJOSEHeader(raw)
	if !ok || hdr.Enc != "" {
		return nil, invalid
	}
	if strings.EqualFold(hdr.Alg, "none") {
		if s.requireSigned {
			return nil, jwtFailure{reason: "TokenSignatureInvalid"}
		}
		claims := jwt.MapClaims{}
		p := jwt.NewParser(jwt.WithValidMethods(noneMethods), jwt.WithoutClaimsValidation())
		if _, err := p.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return jwt.UnsafeAllowNoneSignatureType, nil }); err != nil {
			return nil, invalid
		}
		return claims, jwtFailure{}
	}
	keys := s.candidates(hdr.Kid, now, false)
	if len(keys) == 0 && hdr.Kid != "" && s.refreshable() {
		// An unknown kid may be a rotated key: refetch (rate-limited).
		keys = s.candidates(hdr.Kid, now, true)
	}
	if len(keys) == 0 {
		return nil, jwtFailure{reason: "TokenSignatureKeyNotFound"}
	}
	sawMethod := false
	for _, k := range keys {
		if !methodAllowed(k.methods, hdr.Alg) {
			continue
		}
		sawMethod = true
		claims := jwt.MapClaims{}
		p := jwt.NewParser(jwt.WithValidMethods(k.methods), jwt.WithoutClaimsValidation())
		_, err := p.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return k.key, nil })
		switch {
		case err == nil:
			return claims, jwtFailure{}
		case errors.Is(err, jwt.ErrTokenMalformed):
			return nil, invalid
		}
	}
	if !sawMethod {
		// No key of the token's algorithm: HS256 against RSA keys lands here.
		return nil, jwtFailure{reason: "TokenSignatureKeyNotFound"}
	}
	return nil, jwtFailure{reason: "TokenSignatureInvalid"}
}

func (s *validateJWT) refreshable() bool { return len(s.providers) > 0 }

// candidates lists the keys to try: those whose id is the token's kid,
// else (no kid, or keys without ids) every key. With refresh, the OpenID
// providers refetch their key sets first.
func (s *validateJWT) candidates(kid string, now time.Time, refresh bool) []jwtKey {
	var byID, all []jwtKey
	add := func(keys []jwtKey) {
		for _, k := range keys {
			if kid != "" && k.id == kid {
				byID = append(byID, k)
			}
			if k.id == "" || kid == "" {
				all = append(all, k)
			}
		}
	}
	add(s.keys)
	for _, p := range s.providers {
		var ks *oidcKeys
		if refresh {
			ks = p.refreshForUnknownKey()
		} else {
			ks = p.keys()
		}
		if ks != nil {
			add(ks.keys)
		}
	}
	if len(byID) > 0 {
		return byID
	}
	return all
}

// checkClaims validates lifetime, issuer, audience and required claims.
func (s *validateJWT) checkClaims(claims jwt.MapClaims, now time.Time) jwtFailure {
	exp, err := claims.GetExpirationTime()
	if err != nil {
		return jwtFailure{reason: "JwtInvalid"}
	}
	if exp == nil {
		if s.requireExp {
			return jwtFailure{reason: "JwtInvalid"}
		}
	} else if now.After(exp.Add(s.skew)) {
		return jwtFailure{reason: "TokenExpired"}
	}
	nbf, err := claims.GetNotBefore()
	if err != nil {
		return jwtFailure{reason: "JwtInvalid"}
	}
	if nbf != nil && now.Add(s.skew).Before(nbf.Time) {
		return jwtFailure{reason: "JwtInvalid"} // not yet valid
	}
	if len(s.audiences) > 0 {
		aud, err := claims.GetAudience()
		if err != nil || !anyIn(aud, s.audiences) {
			return jwtFailure{reason: "TokenAudienceNotAllowed"}
		}
	}
	if issuers := s.allowedIssuers(); len(issuers) > 0 {
		iss, err := claims.GetIssuer()
		if err != nil || !anyIn([]string{iss}, issuers) {
			return jwtFailure{reason: "TokenIssuerNotAllowed"}
		}
	}
	for _, rc := range s.claims {
		v, ok := claims[rc.name]
		if !ok || v == nil {
			return jwtFailure{reason: "TokenClaimNotFound"}
		}
		if len(rc.values) == 0 {
			continue
		}
		have := claimStrings(v, rc.separator)
		matched := 0
		for _, want := range rc.values {
			if anyIn([]string{want}, have) {
				matched++
			}
		}
		if (rc.matchAll && matched < len(rc.values)) || matched == 0 {
			return jwtFailure{reason: "TokenClaimValueNotAllowed"}
		}
	}
	return jwtFailure{}
}

// allowedIssuers are the <issuers>, else the issuers the OpenID
// configurations name (templated ones, like Entra's multi-tenant
// "{tenantid}", disable the check).
func (s *validateJWT) allowedIssuers() []string {
	if len(s.issuers) > 0 {
		return s.issuers
	}
	var out []string
	for _, p := range s.providers {
		ks := p.keys()
		if ks == nil || ks.issuer == "" || strings.Contains(ks.issuer, "{") {
			return nil
		}
		out = append(out, ks.issuer)
	}
	return out
}

func anyIn(have, allowed []string) bool {
	for _, h := range have {
		for _, a := range allowed {
			if h == a {
				return true
			}
		}
	}
	return false
}

// claimStrings flattens a claim value to strings: arrays element by
// element, strings split at sep when given.
func claimStrings(v any, sep string) []string {
	var out []string
	var add func(v any)
	add = func(v any) {
		switch t := v.(type) {
		case string:
			if sep == "" {
				out = append(out, t)
				return
			}
			for part := range strings.SplitSeq(t, sep) {
				out = append(out, strings.TrimSpace(part))
			}
		case []any:
			for _, e := range t {
				add(e)
			}
		case float64:
			out = append(out, strconv.FormatFloat(t, 'f', -1, 64))
		case bool:
			out = append(out, strconv.FormatBool(t))
		default:
			if b, err := json.Marshal(t); err == nil {
				out = append(out, string(b))
			}
		}
	}
	add(v)
	return out
}
