package config

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/urltemplate"
)

var (
	namePattern        = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]*(;rev=[0-9]+)?$`)
	methodPattern      = regexp.MustCompile("^([A-Za-z0-9!#$%&'*+.^_`|~-]+)$")
	iso8601            = regexp.MustCompile(`^P(?:\d+Y)?(?:\d+M)?(?:\d+W)?(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?$`)
	displayNamePattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	hostPattern        = regexp.MustCompile(`^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
	// serviceScope is the ARM id of the service itself: the scope of the
	// built-in all-access subscription.
	serviceScope = regexp.MustCompile(`(?i)/providers/microsoft\.apimanagement/service/[^/]+$`)
)

var (
	protocols          = set("http", "https", "ws", "wss")
	apiTypes           = set("http", "soap", "websocket", "graphql", "grpc", "odata")
	schemes            = set(VersioningSegment, VersioningQuery, VersioningHeader)
	subscriptionStates = set("active", "suspended", "submitted", "rejected", "cancelled", "expired")
	productStates      = set("notPublished", "published")
	backendTypes       = set(BackendSingle, BackendPool)
	backendProtocols   = set("http", "soap")
)

func set(v ...string) map[string]bool {
	m := make(map[string]bool, len(v))
	for _, s := range v {
		m[s] = true
	}
	return m
}

// RefName returns the entity name a reference points to. References may be
// full ARM ids (".../service/svc/products/starter"), the short form
// ("/products/starter") or the bare name ("starter").
func RefName(ref, collection string) string {
	ref = strings.TrimSpace(ref)
	marker := "/" + collection + "/"
	if i := strings.LastIndex(strings.ToLower(ref), strings.ToLower(marker)); i >= 0 {
		rest := ref[i+len(marker):]
		name, _, _ := strings.Cut(rest, "/")
		return name
	}
	if !strings.Contains(ref, "/") {
		return ref
	}
	return ""
}

// NormalizePath trims the slashes APIM ignores around an API path.
func NormalizePath(p string) string { return strings.Trim(strings.TrimSpace(p), "/") }

// BaseName returns an API name without its ";rev=n" suffix.
func BaseName(name string) string {
	base, _, _ := strings.Cut(name, ";rev=")
	return base
}

// IsCurrentRevision reports whether the API is the revision answering
// requests without ";rev=".
func (a *API) IsCurrentRevision() bool {
	if a.Properties.IsCurrent != nil {
		return *a.Properties.IsCurrent
	}
	return !strings.Contains(a.Name, ";rev=")
}

// SubscriptionRequiredOrDefault returns whether the API requires a key
// (true unless set to false, as in APIM).
func (a *API) SubscriptionRequiredOrDefault() bool {
	return a.Properties.SubscriptionRequired == nil || *a.Properties.SubscriptionRequired
}

// SubscriptionRequiredOrDefault returns whether the product requires a key.
func (p *Product) SubscriptionRequiredOrDefault() bool {
	return p.Properties.SubscriptionRequired == nil || *p.Properties.SubscriptionRequired
}

// StateOrDefault returns the subscription state, "active" when unset.
func (s *Subscription) StateOrDefault() string {
	if s.Properties.State == "" {
		return SubscriptionActive
	}
	return s.Properties.State
}

type validator struct {
	issues []Issue
}

func (v *validator) add(path, format string, args ...any) {
	v.issues = append(v.issues, Issue{Path: path, Message: fmt.Sprintf(format, args...)})
}

// Validate checks references and consistency and returns every issue.
func Validate(s *Snapshot) []Issue {
	v := &validator{}
	if s.SchemaVersion != SchemaVersion {
		v.add("$.schemaVersion", "must be %q, found %q", SchemaVersion, s.SchemaVersion)
	}
	certs := v.names("certificates", len(s.Certificates), func(i int) string { return s.Certificates[i].Name })
	v.gateway(&s.Gateway, certs)
	for i := range s.Certificates {
		v.certificate(i, &s.Certificates[i])
	}
	v.names("policyFragments", len(s.PolicyFragments), func(i int) string { return s.PolicyFragments[i].Name })
	versionSets := v.names("apiVersionSets", len(s.APIVersionSets), func(i int) string { return s.APIVersionSets[i].Name })
	for i, vs := range s.APIVersionSets {
		p := fmt.Sprintf("$.apiVersionSets[%d].properties", i)
		switch {
		case !schemes[vs.Properties.VersioningScheme]:
			v.add(p+".versioningScheme", "must be Segment, Query or Header, found %q", vs.Properties.VersioningScheme)
		case vs.Properties.VersioningScheme == VersioningQuery && vs.Properties.VersionQueryName == "":
			v.add(p+".versionQueryName", "is required with versioningScheme Query")
		case vs.Properties.VersioningScheme == VersioningHeader && vs.Properties.VersionHeaderName == "":
			v.add(p+".versionHeaderName", "is required with versioningScheme Header")
		}
	}
	apis := v.names("apis", len(s.APIs), func(i int) string { return s.APIs[i].Name })
	v.apis(s, versionSets)
	backends := v.names("backends", len(s.Backends), func(i int) string { return s.Backends[i].Name })
	v.backends(s, backends, certs)
	products := v.names("products", len(s.Products), func(i int) string { return s.Products[i].Name })
	v.products(s, apis)
	// Subscriptions are not referenced, but the duplicate key check tells
	// them apart by name.
	v.names("subscriptions", len(s.Subscriptions), func(i int) string { return s.Subscriptions[i].Name })
	v.subscriptions(s, apis, products)
	v.namedValues(s)
	return v.issues
}

// names checks that every entity of a collection has a unique, valid name
// and returns the set of names (lower-cased, as APIM ids are).
func (v *validator) names(collection string, n int, name func(int) string) map[string]int {
	out := make(map[string]int, n)
	for i := range n {
		nm := name(i)
		p := fmt.Sprintf("$.%s[%d].name", collection, i)
		if nm == "" {
			v.add(p, "is required")
			continue
		}
		if !namePattern.MatchString(nm) {
			v.add(p, "%q is not a valid name (letters, digits, '.', '_', '~', '-')", nm)
		}
		key := strings.ToLower(nm)
		if j, dup := out[key]; dup {
			v.add(p, "duplicates the name of $.%s[%d]", collection, j)
			continue
		}
		out[key] = i
	}
	return out
}

func (v *validator) gateway(g *Gateway, certs map[string]int) {
	seen := map[string]int{}
	defaults := 0
	for i, h := range g.Hostnames {
		p := fmt.Sprintf("$.gateway.hostnames[%d]", i)
		name := strings.ToLower(h.Hostname)
		if !hostPattern.MatchString(name) {
			v.add(p+".hostname", "%q is not a valid host name", h.Hostname)
		}
		if j, dup := seen[name]; dup {
			v.add(p+".hostname", "duplicates $.gateway.hostnames[%d]", j)
		}
		seen[name] = i
		if h.CertificateID != "" {
			if _, ok := certs[strings.ToLower(RefName(h.CertificateID, "certificates"))]; !ok {
				v.add(p+".certificateId", "names certificate %q, which is not in $.certificates", h.CertificateID)
			}
		}
		if h.DefaultSSLBinding {
			defaults++
			if defaults > 1 {
				v.add(p+".defaultSslBinding", "only one hostname can be the default SSL binding")
			}
		}
	}
}

func (v *validator) certificate(i int, c *Certificate) {
	p := fmt.Sprintf("$.certificates[%d].properties", i)
	hasData, hasPEM := !c.Properties.Data.IsZero(), !c.Properties.PEM.IsZero()
	switch {
	case hasData && hasPEM:
		v.add(p, "set either data (PKCS#12) or pem, not both")
	case !hasData && !hasPEM:
		v.add(p, "data (base64 PKCS#12) or pem is required")
	case hasData:
		if _, err := base64.StdEncoding.DecodeString(c.Properties.Data.Value()); err != nil {
			v.add(p+".data", "is not valid base64")
		}
	case hasPEM:
		if !strings.Contains(c.Properties.PEM.Value(), "-----BEGIN") {
			v.add(p+".pem", "does not hold a PEM block")
		}
	}
}

func (v *validator) apis(s *Snapshot, versionSets map[string]int) {
	type routeKey struct{ path, set, version, rev string }
	routes := map[routeKey]int{}
	// Without a version set, one path belongs to one API (all revisions).
	plainPaths := map[string]string{}
	setPaths := map[string]string{}
	currents := map[routeKey]int{}
	for i := range s.APIs {
		a := &s.APIs[i]
		p := fmt.Sprintf("$.apis[%d]", i)
		pp := p + ".properties"
		path := NormalizePath(a.Properties.Path)
		if strings.ContainsAny(path, "?#{}\\ \t") || strings.Contains(path, "//") {
			v.add(pp+".path", "%q is not a valid API path (no '?', '#', '{', '}', spaces or empty segments)", a.Properties.Path)
		}
		for _, seg := range strings.Split(path, "/") {
			if seg == "." || seg == ".." {
				v.add(pp+".path", "%q contains a dot segment", a.Properties.Path)
			}
		}
		if a.Properties.ServiceURL != "" {
			if err := checkURL(a.Properties.ServiceURL); err != nil {
				v.add(pp+".serviceUrl", "%v", err)
			}
		}
		for j, proto := range a.Properties.Protocols {
			if !protocols[proto] {
				v.add(fmt.Sprintf("%s.protocols[%d]", pp, j), "must be http, https, ws or wss, found %q", proto)
			}
		}
		if t := a.Properties.Type; t != "" && !apiTypes[t] {
			v.add(pp+".type", "unknown API type %q", t)
		}
		if k := a.Properties.SubscriptionKeyParameterNames; k != nil {
			if k.Header != "" && !methodPattern.MatchString(k.Header) {
				v.add(pp+".subscriptionKeyParameterNames.header", "%q is not a valid header name", k.Header)
			}
		}
		set := ""
		if a.Properties.APIVersionSetID != "" {
			set = strings.ToLower(RefName(a.Properties.APIVersionSetID, "apiVersionSets"))
			if _, ok := versionSets[set]; !ok {
				v.add(pp+".apiVersionSetId", "names version set %q, which is not in $.apiVersionSets", a.Properties.APIVersionSetID)
			}
		} else if a.Properties.APIVersion != "" {
			v.add(pp+".apiVersion", "is set but apiVersionSetId is not")
		}
		if strings.ContainsAny(a.Properties.APIVersion, "/?#; ") {
			v.add(pp+".apiVersion", "%q cannot contain '/', '?', '#', ';' or spaces", a.Properties.APIVersion)
		}
		lpath := strings.ToLower(path)
		if set == "" {
			if other, ok := setPaths[lpath]; ok {
				v.add(pp+".path", "path %q is already used by version set %q", path, other)
			}
			if owner, ok := plainPaths[lpath]; ok && !strings.EqualFold(owner, BaseName(a.Name)) {
				v.add(pp+".path", "duplicate API path %q: API %q already serves it", path, owner)
				// Its route and current-revision clashes with that API
				// would only repeat this issue.
				v.operations(p, a)
				continue
			}
			plainPaths[lpath] = BaseName(a.Name)
		} else {
			if owner, ok := plainPaths[lpath]; ok {
				v.add(pp+".path", "path %q is already used by API %q outside the version set", path, owner)
			}
			if other, ok := setPaths[lpath]; ok && other != set {
				v.add(pp+".path", "path %q is already used by version set %q", path, other)
			}
			setPaths[lpath] = set
		}
		rev := a.Properties.APIRevision
		if rev == "" {
			if _, r, ok := strings.Cut(a.Name, ";rev="); ok {
				rev = r
			} else {
				rev = "1"
			}
		}
		rk := routeKey{lpath, set, strings.ToLower(a.Properties.APIVersion), rev}
		if j, dup := routes[rk]; dup {
			v.add(pp+".path", "API %q and $.apis[%d] serve the same path, version and revision", a.Name, j)
		}
		routes[rk] = i
		if a.IsCurrentRevision() {
			ck := routeKey{lpath, set, strings.ToLower(a.Properties.APIVersion), ""}
			if j, dup := currents[ck]; dup {
				v.add(pp+".isCurrent", "$.apis[%d] is already the current revision of this path and version", j)
			}
			currents[ck] = i
		}
		v.operations(p, a)
	}
	for i := range s.APIs {
		a := &s.APIs[i]
		ck := routeKey{strings.ToLower(NormalizePath(a.Properties.Path)), strings.ToLower(RefName(a.Properties.APIVersionSetID, "apiVersionSets")), strings.ToLower(a.Properties.APIVersion), ""}
		if _, ok := currents[ck]; !ok {
			v.add(fmt.Sprintf("$.apis[%d].properties.isCurrent", i), "no revision of this API path and version is current")
			currents[ck] = i
		}
	}
}

func (v *validator) operations(p string, a *API) {
	names := map[string]int{}
	shapes := map[string]int{}
	for j := range a.Operations {
		op := &a.Operations[j]
		oprefix := fmt.Sprintf("%s.operations[%d]", p, j)
		if op.Name == "" {
			v.add(oprefix+".name", "is required")
		} else if k, dup := names[strings.ToLower(op.Name)]; dup {
			v.add(oprefix+".name", "duplicates the name of %s.operations[%d]", p, k)
		} else {
			names[strings.ToLower(op.Name)] = j
		}
		pp := oprefix + ".properties"
		if !methodPattern.MatchString(strings.TrimSpace(op.Properties.Method)) {
			v.add(pp+".method", "%q is not an HTTP method (or '*')", op.Properties.Method)
		}
		t, err := urltemplate.Parse(op.Properties.URLTemplate)
		if err != nil {
			v.add(pp+".urlTemplate", "%v", err)
			continue
		}
		params := map[string]bool{}
		for _, name := range t.Params() {
			params[strings.ToLower(name)] = true
		}
		for k, tp := range op.Properties.TemplateParameters {
			if !params[strings.ToLower(tp.Name)] {
				v.add(fmt.Sprintf("%s.templateParameters[%d].name", pp, k), "parameter %q does not appear in urlTemplate %q", tp.Name, op.Properties.URLTemplate)
			}
		}
		shape := strings.ToUpper(strings.TrimSpace(op.Properties.Method)) + " " + t.Shape()
		if k, dup := shapes[shape]; dup {
			v.add(pp+".urlTemplate", "%s %s cannot be told apart from %s.operations[%d]", op.Properties.Method, op.Properties.URLTemplate, p, k)
		}
		shapes[shape] = j
	}
}

func (v *validator) backends(s *Snapshot, backends, certs map[string]int) {
	for i := range s.Backends {
		b := &s.Backends[i].Properties
		p := fmt.Sprintf("$.backends[%d].properties", i)
		typ := b.Type
		if typ == "" {
			typ = BackendSingle
		}
		if !backendTypes[typ] {
			v.add(p+".type", "must be Single or Pool, found %q", b.Type)
		}
		if b.Protocol != "" && !backendProtocols[b.Protocol] {
			v.add(p+".protocol", "must be http or soap, found %q", b.Protocol)
		}
		if typ == BackendPool {
			if b.Pool == nil || len(b.Pool.Services) == 0 {
				v.add(p+".pool.services", "a Pool backend needs at least one service")
			} else {
				for j, svc := range b.Pool.Services {
					sp := fmt.Sprintf("%s.pool.services[%d]", p, j)
					k, ok := backends[strings.ToLower(RefName(svc.ID, "backends"))]
					switch {
					case !ok:
						v.add(sp+".id", "names backend %q, which is not in $.backends", svc.ID)
					case s.Backends[k].Properties.Type == BackendPool:
						v.add(sp+".id", "backend %q is a pool; pools cannot nest", svc.ID)
					}
					if svc.Priority < 0 || svc.Weight < 0 {
						v.add(sp, "priority and weight cannot be negative")
					}
				}
			}
		} else if b.URL == "" {
			v.add(p+".url", "is required for a Single backend")
		}
		if b.URL != "" {
			if err := checkURL(b.URL); err != nil {
				v.add(p+".url", "%v", err)
			}
		}
		if b.Credentials != nil {
			for j, id := range b.Credentials.CertificateIDs {
				if _, ok := certs[strings.ToLower(RefName(id, "certificates"))]; !ok {
					v.add(fmt.Sprintf("%s.credentials.certificateIds[%d]", p, j), "names certificate %q, which is not in $.certificates", id)
				}
			}
		}
		if b.Proxy != nil {
			if err := checkURL(b.Proxy.URL); err != nil {
				v.add(p+".proxy.url", "%v", err)
			}
		}
		if b.CircuitBreaker != nil {
			for j, r := range b.CircuitBreaker.Rules {
				rp := fmt.Sprintf("%s.circuitBreaker.rules[%d]", p, j)
				fc := r.FailureCondition
				if !isDuration(fc.Interval) {
					v.add(rp+".failureCondition.interval", "%q is not an ISO 8601 duration such as PT1M", fc.Interval)
				}
				if !isDuration(r.TripDuration) {
					v.add(rp+".tripDuration", "%q is not an ISO 8601 duration such as PT1M", r.TripDuration)
				}
				if (fc.Count <= 0) == (fc.Percentage <= 0) {
					v.add(rp+".failureCondition", "set exactly one of count and percentage, above zero")
				}
				if fc.Percentage > 100 {
					v.add(rp+".failureCondition.percentage", "cannot exceed 100")
				}
				for k, sr := range fc.StatusCodeRanges {
					if sr.Min < 100 || sr.Max > 599 || sr.Min > sr.Max {
						v.add(fmt.Sprintf("%s.failureCondition.statusCodeRanges[%d]", rp, k), "must satisfy 100 <= min <= max <= 599")
					}
				}
			}
		}
	}
}

func (v *validator) products(s *Snapshot, apis map[string]int) {
	openProduct := map[string]string{}
	for i := range s.Products {
		pr := &s.Products[i]
		p := fmt.Sprintf("$.products[%d]", i)
		if st := pr.Properties.State; st != "" && !productStates[st] {
			v.add(p+".properties.state", "must be notPublished or published, found %q", st)
		}
		for j, ref := range pr.APIs {
			name := strings.ToLower(RefName(ref, "apis"))
			if _, ok := apis[name]; !ok {
				v.add(fmt.Sprintf("%s.apis[%d]", p, j), "names API %q, which is not in $.apis", ref)
				continue
			}
			if !pr.SubscriptionRequiredOrDefault() {
				if other, dup := openProduct[name]; dup && other != pr.Name {
					v.add(fmt.Sprintf("%s.apis[%d]", p, j), "API %q is already in open product %q; an API can be in at most one open product", ref, other)
				}
				openProduct[name] = pr.Name
			}
		}
	}
}

func (v *validator) subscriptions(s *Snapshot, apis, products map[string]int) {
	keys := map[string]string{}
	for i := range s.Subscriptions {
		sub := &s.Subscriptions[i]
		p := fmt.Sprintf("$.subscriptions[%d].properties", i)
		if !subscriptionStates[sub.StateOrDefault()] {
			v.add(p+".state", "must be one of active, suspended, submitted, rejected, cancelled, expired; found %q", sub.Properties.State)
		}
		v.scope(p+".scope", sub.Properties.Scope, apis, products)
		if sub.Properties.PrimaryKey.IsZero() {
			v.add(p+".primaryKey", "is required")
		}
		for _, k := range []struct {
			field string
			key   Secret
		}{{"primaryKey", sub.Properties.PrimaryKey}, {"secondaryKey", sub.Properties.SecondaryKey}} {
			field, key := k.field, k.key
			if key.IsZero() {
				continue
			}
			if len(key.Value()) < 8 {
				v.add(p+"."+field, "is shorter than 8 characters")
			}
			// The message names the other subscription, never the key.
			if other, dup := keys[key.Value()]; dup && other != sub.Name {
				v.add(p+"."+field, "is also a key of subscription %q; keys must be unique", other)
			} else if dup {
				v.add(p+"."+field, "primaryKey and secondaryKey are the same")
			}
			keys[key.Value()] = sub.Name
		}
	}
}

func (v *validator) scope(p, scope string, apis, products map[string]int) {
	s := strings.TrimRight(strings.TrimSpace(scope), "/")
	lower := strings.ToLower(s)
	switch {
	case s == "":
		v.add(p, "is required: /apis, /apis/{api} or /products/{product}")
	case lower == "/apis" || serviceScope.MatchString(s) || strings.HasSuffix(lower, "/apis") && !strings.Contains(strings.TrimSuffix(lower, "/apis"), "/apis/"):
		// all APIs
	case strings.Contains(lower, "/apis/"):
		if _, ok := apis[strings.ToLower(RefName(s, "apis"))]; !ok {
			v.add(p, "names API %q, which is not in $.apis", RefName(s, "apis"))
		}
	case strings.Contains(lower, "/products/"):
		if _, ok := products[strings.ToLower(RefName(s, "products"))]; !ok {
			v.add(p, "names product %q, which is not in $.products", RefName(s, "products"))
		}
	default:
		v.add(p, "%q is not a scope: use /apis, /apis/{api} or /products/{product}", scope)
	}
}

// ScopeKind classifies a subscription scope: "all", "api" or "product",
// with the referenced name.
func ScopeKind(scope string) (kind, name string) {
	s := strings.TrimRight(strings.TrimSpace(scope), "/")
	lower := strings.ToLower(s)
	switch {
	case strings.Contains(lower, "/apis/"):
		return "api", RefName(s, "apis")
	case strings.Contains(lower, "/products/"):
		return "product", RefName(s, "products")
	default:
		return "all", ""
	}
}

func (v *validator) namedValues(s *Snapshot) {
	seen := map[string]int{}
	for i, nv := range s.NamedValues {
		p := fmt.Sprintf("$.namedValues[%d].properties", i)
		dn := nv.Properties.DisplayName
		if dn == "" {
			v.add(p+".displayName", "is required")
			continue
		}
		if !displayNamePattern.MatchString(dn) {
			v.add(p+".displayName", "%q may hold only letters, digits, '.', '_' and '-'", dn)
		}
		if j, dup := seen[strings.ToLower(dn)]; dup {
			v.add(p+".displayName", "duplicates $.namedValues[%d]", j)
		}
		seen[strings.ToLower(dn)] = i
	}
}

// isDuration reports whether d is an ISO 8601 duration with at least one
// component: "P", "PT" and a dangling "T" ("P1DT") are not.
func isDuration(d string) bool {
	return iso8601.MatchString(d) && d != "P" && !strings.HasSuffix(d, "T")
}

// checkURL checks an absolute http(s) URL. Messages quote it without its
// password and query, which may hold credentials (Azure Functions keys
// travel as ?code=).
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("is not a valid URL")
	}
	shown := *u
	if shown.RawQuery != "" {
		shown.RawQuery = "[redacted]"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q must be an absolute http or https URL", shown.Redacted())
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", shown.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q cannot have a query or fragment", shown.Redacted())
	}
	return nil
}
