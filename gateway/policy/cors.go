package policy

import (
	"bytes"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
)

// --- cors -------------------------------------------------------------------
//
// A preflight (OPTIONS with Origin and Access-Control-Request-Method) is
// answered by the gateway: a match gets the Access-Control-Allow-* headers,
// an unmatched one an empty 200 OK (terminate-unmatched-request="true"),
// or goes on to the next cors policy ("false"). Other requests with an
// Origin header are cross-origin "actual" requests: on a match the policy
// adds Access-Control-Allow-Origin (with -Credentials and -Expose-Headers)
// to whatever response the pipeline ends with; an unmatched GET or HEAD is
// answered with an empty 200 OK when terminate-unmatched-request is true.
//
// API Management runs only cors on a preflight, before operation matching,
// unless the API defines an OPTIONS operation that matches the request. The
// server does that with IsPreflight and Pipeline.Preflight; cors in a
// running pipeline answers a preflight too, unless the matched operation's
// method is OPTIONS.

// corsDecided is the RequestCtx user value a cors policy sets when it has
// matched an actual request: only the first matching cors policy applies.
const corsDecided = "policy.cors"

type cors struct {
	meta
	credentials bool
	terminate   bool

	anyOrigin bool
	origins   []corsOrigin

	anyMethod bool
	methods   []string // upper case

	anyHeader bool
	headers   []string // as configured; compared case-insensitively

	expose string // comma-joined expose-headers, "" when none
	maxAge string // preflight-result-max-age, "" when 0

	// hook is s.apply, made once so that registering it per request does
	// not allocate.
	hook func(*Request)
}

// corsOrigin is a normalized origin: lower-case scheme and host, explicit
// port.
type corsOrigin struct {
	scheme, host, port string
}

func parseCORSOrigin(s string) (corsOrigin, bool) {
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil {
		return corsOrigin{}, false
	}
	o := corsOrigin{scheme: strings.ToLower(u.Scheme), host: strings.ToLower(u.Hostname()), port: u.Port()}
	if o.host == "" {
		return corsOrigin{}, false
	}
	if o.port == "" {
		switch o.scheme {
		case "http":
			o.port = "80"
		case "https":
			o.port = "443"
		}
	}
	return o, true
}

func compileCORS(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	if !strings.HasSuffix(m.path, "[1]") {
		return nil, fmt.Errorf("cors can be used only once in a policy section")
	}
	s := &cors{meta: m}
	var err error
	if s.credentials, err = boolAttr(el, "allow-credentials", false); err != nil {
		return nil, err
	}
	// The attribute table of the cors reference once said false; its
	// "Common configuration issues" section, the current table and
	// Microsoft's Q&A answers say the default is true.
	if s.terminate, err = boolAttr(el, "terminate-unmatched-request", true); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, ch := range el.Children {
		if seen[ch.Name] {
			return nil, fmt.Errorf("<%s> appears more than once in <cors>", ch.Name)
		}
		seen[ch.Name] = true
		switch ch.Name {
		case "allowed-origins":
			for _, o := range ch.Children {
				if o.Name != "origin" {
					return nil, fmt.Errorf("<%s> cannot be a child of <allowed-origins>", o.Name)
				}
				v := strings.TrimSpace(o.Text)
				if v == "*" {
					s.anyOrigin = true
					continue
				}
				org, ok := parseCORSOrigin(v)
				if !ok {
					return nil, fmt.Errorf("origin %q is not * or a URI with a scheme and a host", o.Text)
				}
				s.origins = append(s.origins, org)
			}
			if !s.anyOrigin && len(s.origins) == 0 {
				return nil, fmt.Errorf("<allowed-origins> needs at least one <origin>")
			}
		case "allowed-methods":
			if raw, ok := ch.Attr("preflight-result-max-age"); ok {
				n, err := strconv.Atoi(strings.TrimSpace(raw.Value))
				if err != nil || n < 0 {
					return nil, fmt.Errorf("preflight-result-max-age %q must be a number of seconds", raw.Value)
				}
				if n > 0 {
					s.maxAge = strconv.Itoa(n)
				}
			}
			for _, me := range ch.Children {
				if me.Name != "method" {
					return nil, fmt.Errorf("<%s> cannot be a child of <allowed-methods>", me.Name)
				}
				v := strings.ToUpper(strings.TrimSpace(me.Text))
				switch {
				case v == "*":
					s.anyMethod = true
				case v == "" || strings.ContainsAny(v, " \t,/"):
					return nil, fmt.Errorf("method %q is not an HTTP method", me.Text)
				default:
					s.methods = append(s.methods, v)
				}
			}
			if !s.anyMethod && len(s.methods) == 0 {
				return nil, fmt.Errorf("<allowed-methods> needs at least one <method>")
			}
		case "allowed-headers", "expose-headers":
			var names []string
			anyName := false
			for _, h := range ch.Children {
				if h.Name != "header" {
					return nil, fmt.Errorf("<%s> cannot be a child of <%s>", h.Name, ch.Name)
				}
				v := strings.TrimSpace(h.Text)
				switch {
				case v == "*":
					anyName = true
				case v == "" || strings.ContainsAny(v, " \t,:"):
					return nil, fmt.Errorf("header %q is not a header name", h.Text)
				default:
					names = append(names, v)
				}
			}
			if !anyName && len(names) == 0 {
				return nil, fmt.Errorf("<%s> needs at least one <header>", ch.Name)
			}
			if ch.Name == "allowed-headers" {
				s.anyHeader, s.headers = anyName, names
			} else {
				if anyName {
					names = append([]string{"*"}, names...)
				}
				s.expose = strings.Join(names, ",")
			}
		default:
			return nil, fmt.Errorf("<%s> cannot be a child of <cors>", ch.Name)
		}
	}
	if !seen["allowed-origins"] {
		return nil, fmt.Errorf("<allowed-origins> is required")
	}
	if !seen["allowed-methods"] {
		// Without the element API Management allows GET and POST.
		s.methods = []string{fasthttp.MethodGet, fasthttp.MethodPost}
	}
	if s.credentials && s.anyOrigin {
		return nil, fmt.Errorf(`allow-credentials="true" cannot be used with the origin *: list the allowed origins`)
	}
	s.hook = s.apply
	return s, nil
}

// IsPreflight reports whether the request is a CORS preflight: OPTIONS
// with Origin and Access-Control-Request-Method.
func IsPreflight(ctx *fasthttp.RequestCtx) bool {
	return ctx.IsOptions() && len(ctx.Request.Header.Peek(fasthttp.HeaderOrigin)) > 0 &&
		len(ctx.Request.Header.Peek(fasthttp.HeaderAccessControlRequestMethod)) > 0
}

// Preflight answers a CORS preflight with the pipeline's cors policies (the
// ones directly in its inbound section, included fragments too), running
// nothing else: the first policy that matches answers; one that does not
// match ends with an empty 200 OK when its terminate-unmatched-request is
// true and hands over to the next cors policy when false; when none
// matches the answer is an empty 200 OK. It reports false, leaving the
// response alone, when the pipeline has no cors policy.
//
// The server calls it for a request IsPreflight reports, before checking
// the subscription key, unless the API has an OPTIONS operation matching
// the request; see Request for what to fill (Ctx at least).
func (p *Pipeline) Preflight(r *Request) bool {
	found := false
	if p.preflightSteps(r, p.sections[Inbound], &found) {
		return true
	}
	if found {
		emptyOK(r.Ctx)
	}
	return found
}

func (p *Pipeline) preflightSteps(r *Request, steps []Step, found *bool) bool {
	for _, st := range steps {
		switch s := st.(type) {
		case *stepList:
			if p.preflightSteps(r, s.steps, found) {
				return true
			}
		case *cors:
			*found = true
			if s.preflight(r) {
				return true
			}
			if s.terminate {
				emptyOK(r.Ctx)
				return true
			}
		}
	}
	return false
}

func emptyOK(ctx *fasthttp.RequestCtx) {
	ctx.Response.Reset()
	ctx.Response.SetStatusCode(fasthttp.StatusOK)
}

func (s *cors) Exec(r *Request) error {
	ctx := r.Ctx
	origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin)
	if len(origin) == 0 {
		return nil // not a cross-origin request
	}
	if IsPreflight(ctx) && (r.Operation == nil || r.Operation.Method != fasthttp.MethodOptions) {
		if s.preflight(r) {
			return errStop
		}
		if s.terminate {
			emptyOK(ctx)
			return errStop
		}
		return nil // a later cors policy may match
	}
	if ctx.UserValue(corsDecided) != nil {
		return nil // an earlier cors policy matched
	}
	if s.originAllowed(origin) {
		ctx.SetUserValue(corsDecided, s)
		r.onResponse = append(r.onResponse, s.hook)
		return nil
	}
	if s.terminate && (ctx.IsGet() || ctx.IsHead()) {
		emptyOK(ctx)
		return errStop
	}
	return nil
}

// preflight answers the preflight and reports true when it matches the
// policy; it leaves the response alone otherwise.
func (s *cors) preflight(r *Request) bool {
	h := &r.Ctx.Request.Header
	origin := h.Peek(fasthttp.HeaderOrigin)
	method := bytes.TrimSpace(h.Peek(fasthttp.HeaderAccessControlRequestMethod))
	reqHeaders := h.Peek(fasthttp.HeaderAccessControlRequestHeaders)
	if !s.originAllowed(origin) || !s.methodAllowed(method) || !s.headersAllowed(reqHeaders) {
		return false
	}
	resp := &r.Ctx.Response
	resp.Reset()
	resp.SetStatusCode(fasthttp.StatusOK)
	rh := &resp.Header
	rh.DisableNormalizing()
	s.allowOrigin(rh, origin)
	if s.credentials {
		rh.Set(fasthttp.HeaderAccessControlAllowCredentials, "true")
	}
	rh.SetBytesV(fasthttp.HeaderAccessControlAllowMethods, method)
	if hs := bytes.TrimSpace(reqHeaders); len(hs) > 0 {
		rh.SetBytesV(fasthttp.HeaderAccessControlAllowHeaders, hs)
	}
	if s.maxAge != "" {
		rh.Set(fasthttp.HeaderAccessControlMaxAge, s.maxAge)
	}
	return true
}

// apply adds the actual-request headers to the final response.
func (s *cors) apply(r *Request) {
	rh := &r.Ctx.Response.Header
	origin := r.Ctx.Request.Header.Peek(fasthttp.HeaderOrigin)
	if len(origin) == 0 && !(s.anyOrigin && !s.credentials) {
		return // a policy removed Origin: nothing to echo
	}
	s.allowOrigin(rh, origin)
	if s.credentials {
		rh.Set(fasthttp.HeaderAccessControlAllowCredentials, "true")
	}
	if s.expose != "" {
		rh.Set(fasthttp.HeaderAccessControlExposeHeaders, s.expose)
	}
}

// allowOrigin sets Access-Control-Allow-Origin: * for any origin without
// credentials, else the request's origin, with Vary: Origin.
func (s *cors) allowOrigin(rh *fasthttp.ResponseHeader, origin []byte) {
	if s.anyOrigin && !s.credentials {
		rh.Set(fasthttp.HeaderAccessControlAllowOrigin, "*")
		return
	}
	rh.SetBytesV(fasthttp.HeaderAccessControlAllowOrigin, origin)
	vary := rh.Peek(fasthttp.HeaderVary)
	switch {
	case len(vary) == 0:
		rh.Set(fasthttp.HeaderVary, fasthttp.HeaderOrigin)
	case !headerListHas(vary, fasthttp.HeaderOrigin) && !headerListHas(vary, "*"):
		v := append(append([]byte(nil), vary...), ", Origin"...)
		rh.SetBytesV(fasthttp.HeaderVary, v)
	}
}

func headerListHas(list []byte, name string) bool {
	for part := range bytes.SplitSeq(list, []byte{','}) {
		if strings.EqualFold(string(bytes.TrimSpace(part)), name) {
			return true
		}
	}
	return false
}

func (s *cors) originAllowed(origin []byte) bool {
	if len(origin) == 0 {
		return false
	}
	if s.anyOrigin {
		return true
	}
	o, ok := parseCORSOrigin(string(origin))
	if !ok {
		return false // "null" and other opaque origins
	}
	for _, want := range s.origins {
		if want == o {
			return true
		}
	}
	return false
}

func (s *cors) methodAllowed(method []byte) bool {
	if len(method) == 0 {
		return false
	}
	if s.anyMethod {
		return true
	}
	for _, m := range s.methods {
		if string(method) == m {
			return true
		}
	}
	return false
}

func (s *cors) headersAllowed(list []byte) bool {
	if s.anyHeader {
		return true
	}
	for part := range bytes.SplitSeq(list, []byte{','}) {
		name := bytes.TrimSpace(part)
		if len(name) == 0 {
			continue
		}
		ok := false
		for _, h := range s.headers {
			if strings.EqualFold(string(name), h) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
