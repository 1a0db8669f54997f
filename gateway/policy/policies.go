package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/proxy"
)

const notYet = "this gateway version does not run it yet"

// definitions lists every policy of the API Management reference: the
// sections it may appear in, and how it compiles (nil: known, skipped with
// the reason given).
func definitions() map[string]policyDef {
	skip := func(s sectionSet, why string) policyDef { return policyDef{sections: s, why: why} }
	return map[string]policyDef{
		"set-header":          {sections: all, compile: compileSetHeader, expressions: true},
		"set-query-parameter": {sections: inb | bak, compile: compileSetQuery, expressions: true},
		"set-method":          {sections: inb | one, compile: compileSetMethod, expressions: true},
		"set-status":          {sections: all, compile: compileSetStatus, expressions: true},
		"set-variable":        {sections: all, compile: compileSetVariable, expressions: true},
		"set-body":            {sections: all, compile: compileSetBody, expressions: true},
		"return-response":     {sections: all, compile: compileReturnResponse, expressions: true},
		"mock-response":       {sections: inb | out | one, compile: compileMockResponse},
		"rewrite-uri":         {sections: inb, compile: compileRewriteURI, expressions: true},
		"set-backend-service": {sections: inb | bak, compile: compileSetBackend, expressions: true},
		"forward-request":     {sections: bak, compile: compileForward},
		"check-header":        {sections: inb, compile: compileCheckHeader, failClosed: true},
		"ip-filter":           {sections: inb | out, compile: compileIPFilter, failClosed: true},
		"include-fragment":    {sections: all, compile: compileIncludeFragment},

		"choose":                          {sections: all, compile: compileChoose, expressions: true},
		"retry":                           {sections: all, compile: compileRetry, expressions: true},
		"wait":                            {sections: inb | bak | out, compile: compileWait, expressions: true},
		"trace":                           {sections: all, compile: compileTrace, expressions: true},
		"cors":                            {sections: inb, compile: compileCORS},
		"validate-jwt":                    {sections: inb, compile: compileValidateJWT, expressions: true, failClosed: true},
		"authentication-basic":            {sections: inb, compile: compileAuthBasic, expressions: true},
		"authentication-certificate":      {sections: inb, compile: compileAuthCert},
		"authentication-managed-identity": skip(inb, "the gateway has no managed identity token yet"),
		"rate-limit":                      {sections: inb, compile: compileRateLimit},
		"rate-limit-by-key":               {sections: inb, compile: compileRateLimitByKey, expressions: true},
		"quota":                           {sections: inb, compile: compileQuota},
		"quota-by-key":                    {sections: inb, compile: compileQuotaByKey, expressions: true},
		"limit-concurrency":               {sections: all, compile: compileLimitConcurrency, expressions: true},
		"cache-lookup":                    {sections: inb, compile: compileCacheLookup, expressions: true},
		"cache-store":                     {sections: out, compile: compileCacheStore, expressions: true},
		"cache-lookup-value":              {sections: all, compile: compileCacheLookupValue, expressions: true},
		"cache-store-value":               {sections: all, compile: compileCacheStoreValue, expressions: true},
		"cache-remove-value":              {sections: all, compile: compileCacheRemoveValue, expressions: true},
		"send-request":                    {sections: all, compile: compileSendRequest, expressions: true},
		"send-one-way-request":            {sections: all, compile: compileSendOneWay, expressions: true},
		"find-and-replace":                {sections: all, compile: compileFindReplace, expressions: true},
		"json-to-xml":                     {sections: inb | out | one, compile: compileJSONToXML, expressions: true},
		"xml-to-json":                     {sections: inb | out | one, compile: compileXMLToJSON, expressions: true},
		"emit-metric":                     {sections: all, compile: compileEmitMetric, expressions: true},
		"log-to-eventhub":                 skip(all, "Azure Event Hubs logging is Azure-only"),
		"publish-to-dapr":                 skip(all, "Dapr is not supported"),
		"invoke-dapr-binding":             skip(all, "Dapr is not supported"),
		"set-backend-service-dapr":        skip(all, "Dapr is not supported"),
		"validate-content":                skip(inb|out|one, notYet),
		"validate-parameters":             skip(inb, notYet),
		"validate-headers":                skip(out|one, notYet),
		"validate-status-code":            skip(out|one, notYet),
		"validate-azure-ad-token":         {sections: inb, why: notYet, failClosed: true},
		"validate-client-certificate":     {sections: inb, why: notYet, failClosed: true},
		"xsl-transform":                   skip(inb|out|one, notYet),
		"jsonp":                           skip(out, notYet),
		"redirect-content-urls":           skip(inb|out, notYet),
		"get-authorization-context":       skip(all, "not supported on self-hosted gateways"),
		"set-graphql-resolver":            skip(all, "not supported on self-hosted gateways"),
	}
}

// attr returns an attribute value or def.
func attr(el *policyxml.Element, name, def string) string {
	if a, ok := el.Attr(name); ok {
		return a.Value
	}
	return def
}

func boolAttr(el *policyxml.Element, name string, def bool) (bool, error) {
	v, ok := el.Attr(name)
	if !ok {
		return def, nil
	}
	switch strings.ToLower(strings.TrimSpace(v.Value)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("attribute %s must be true or false, found %q", name, v.Value)
}

func required(el *policyxml.Element, name string) (string, error) {
	v, ok := el.Attr(name)
	if !ok || strings.TrimSpace(v.Value) == "" {
		return "", fmt.Errorf("attribute %s is required", name)
	}
	return v.Value, nil
}

func childTexts(el *policyxml.Element, name string) []string {
	var out []string
	for _, ch := range el.Children {
		if ch.Name == name {
			out = append(out, ch.Text)
		}
	}
	return out
}

// --- set-header, set-query-parameter -----------------------------------------

// Headers API Management does not let set-header touch: framing and
// connection management belong to the gateway.
var protectedHeaders = map[string]bool{"connection": true, "content-length": true, "keep-alive": true, "transfer-encoding": true}

// setNamed is what set-header and set-query-parameter share: a name, an
// exists-action and values, applied to headers or query parameters.
type setNamed struct {
	meta
	name   string
	action string
	values []text
}

func compileSetNamed(el *policyxml.Element, m meta) (setNamed, error) {
	name, err := required(el, "name")
	if err != nil {
		return setNamed{}, err
	}
	action := attr(el, "exists-action", "override")
	switch action {
	case "override", "skip", "append", "delete":
	default:
		return setNamed{}, fmt.Errorf("exists-action must be override, skip, append or delete, found %q", action)
	}
	values, err := childValues(el, "value")
	if err != nil {
		return setNamed{}, err
	}
	return setNamed{meta: m, name: name, action: action, values: values}, nil
}

// childValues compiles the text of every child element called name.
func childValues(el *policyxml.Element, name string) ([]text, error) {
	var out []text
	for _, ch := range el.Children {
		if ch.Name != name {
			continue
		}
		t, err := elemText(ch)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// header is what the exists-actions need of headers or query arguments.
type header interface {
	Peek(key string) []byte
	Del(key string)
	Add(key, value string)
}

// apply runs the exists-action on dst. addEmpty: without <value>,
// override and skip set an empty value (headers) rather than nothing.
func (s *setNamed) apply(r *Request, dst header, addEmpty bool) error {
	switch s.action {
	case "delete":
		dst.Del(s.name)
		return nil
	case "skip":
		if dst.Peek(s.name) != nil {
			return nil
		}
	case "override":
		dst.Del(s.name)
	}
	if len(s.values) == 0 && s.action != "append" && addEmpty {
		dst.Add(s.name, "")
		return nil
	}
	for i := range s.values {
		v, err := s.values[i].str(r, &s.meta)
		if err != nil {
			return err
		}
		dst.Add(s.name, v)
	}
	return nil
}

// --- set-header -------------------------------------------------------------

type setHeader struct{ setNamed }

func compileSetHeader(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	sn, err := compileSetNamed(el, m)
	if err != nil {
		return nil, err
	}
	if protectedHeaders[strings.ToLower(sn.name)] {
		return nil, fmt.Errorf("header %s cannot be changed by a policy", sn.name)
	}
	return &setHeader{sn}, nil
}

func (s *setHeader) Exec(r *Request) error {
	if r.section == Outbound || r.section == OnError {
		return s.apply(r, &r.Ctx.Response.Header, true)
	}
	return s.apply(r, &r.Ctx.Request.Header, true)
}

// --- set-query-parameter --------------------------------------------------

type setQuery struct{ setNamed }

func compileSetQuery(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	sn, err := compileSetNamed(el, m)
	if err != nil {
		return nil, err
	}
	return &setQuery{sn}, nil
}

// queryArgs lets the exists-actions see a parameter given without a
// value ("?a") as present.
type queryArgs struct{ *fasthttp.Args }

func (q queryArgs) Peek(key string) []byte {
	if !q.Has(key) {
		return nil
	}
	if v := q.Args.Peek(key); v != nil {
		return v
	}
	return []byte{}
}

func (s *setQuery) Exec(r *Request) error {
	args := fasthttp.AcquireArgs()
	defer fasthttp.ReleaseArgs(args)
	args.ParseBytes(r.Query)
	if err := s.apply(r, queryArgs{args}, false); err != nil {
		return err
	}
	r.Query = args.AppendBytes(r.Query[:0])
	return nil
}

// --- set-method, set-status, set-variable -----------------------------------

type setMethod struct {
	meta
	method text
}

func compileSetMethod(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	t, err := elemText(el)
	if err != nil {
		return nil, err
	}
	if !t.isExpr() {
		t.lit = strings.ToUpper(strings.TrimSpace(t.lit))
		if t.lit == "" || strings.ContainsAny(t.lit, " \t/") {
			return nil, fmt.Errorf("%q is not an HTTP method", el.Text)
		}
	}
	return &setMethod{meta: m, method: t}, nil
}

func (s *setMethod) Exec(r *Request) error {
	v, err := s.method.str(r, &s.meta)
	if err != nil {
		return err
	}
	r.Ctx.Request.Header.SetMethod(strings.ToUpper(v))
	return nil
}

type setStatus struct {
	meta
	code   text
	reason text
}

func compileSetStatus(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	if _, err := required(el, "code"); err != nil {
		return nil, err
	}
	code, err := attrText(el, "code", "")
	if err != nil {
		return nil, err
	}
	if !code.isExpr() {
		if n, err := strconv.Atoi(strings.TrimSpace(code.lit)); err != nil || n < 100 || n > 599 {
			return nil, fmt.Errorf("code %q is not an HTTP status code", code.lit)
		}
	}
	reason, err := attrText(el, "reason", "")
	if err != nil {
		return nil, err
	}
	return &setStatus{meta: m, code: code, reason: reason}, nil
}

func (s *setStatus) Exec(r *Request) error {
	raw, err := s.code.str(r, &s.meta)
	if err != nil {
		return err
	}
	code, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil || code < 100 || code > 599 {
		return s.fail("ExpressionValueEvaluationFailure", fmt.Sprintf("Expression evaluation failed. %q is not an HTTP status code.", raw), 500)
	}
	r.Ctx.Response.SetStatusCode(code)
	reason, err := s.reason.str(r, &s.meta)
	if err != nil {
		return err
	}
	if reason != "" {
		r.Ctx.Response.Header.SetStatusMessage([]byte(reason))
	}
	return nil
}

type setVariable struct {
	meta
	name  string
	value text
}

func compileSetVariable(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	name, err := required(el, "name")
	if err != nil {
		return nil, err
	}
	if _, ok := el.Attr("value"); !ok {
		return nil, fmt.Errorf("attribute value is required")
	}
	v, err := attrText(el, "value", "")
	if err != nil {
		return nil, err
	}
	return &setVariable{meta: m, name: name, value: v}, nil
}

func (s *setVariable) Exec(r *Request) error {
	v, err := s.value.value(r, &s.meta)
	if err != nil {
		return err
	}
	exprVars{r}.Set(s.name, v)
	return nil
}

// --- set-body -------------------------------------------------------------

type setBody struct {
	meta
	body []byte
	prog text
}

func compileSetBody(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	if t := attr(el, "template", ""); t != "" {
		return compileSetBodyTemplate(c, el, m, t)
	}
	if el.TextExpr {
		t, err := elemText(el)
		if err != nil {
			return nil, err
		}
		return &setBody{meta: m, prog: t}, nil
	}
	body := el.Text
	if len(el.Children) > 0 {
		// A literal XML payload: send it as written.
		body = strings.TrimSpace(el.Inner)
	}
	return &setBody{meta: m, body: []byte(body)}, nil
}

func (s *setBody) Exec(r *Request) error {
	body := s.body
	if s.prog.isExpr() {
		v, err := s.prog.str(r, &s.meta)
		if err != nil {
			return err
		}
		body = []byte(v)
	}
	if r.section == Outbound || r.section == OnError {
		r.Ctx.Response.SetBodyRaw(body)
		return nil
	}
	r.Ctx.Request.SetBodyRaw(body)
	return nil
}

// --- return-response, mock-response -------------------------------------------

type returnResponse struct {
	meta
	steps []Step
	// varName is response-variable-name: a send-request response to
	// answer with, which the children then change.
	varName string
}

func compileReturnResponse(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	rr := &returnResponse{meta: m}
	if a, ok := el.Attr("response-variable-name"); ok {
		if a.Expr {
			return nil, fmt.Errorf("attribute response-variable-name cannot be a policy expression")
		}
		rr.varName = a.Value
	}
	// The children describe the response: headers and body always go to
	// the response, whatever section return-response sits in.
	sub := &compiler{set: c.set, loc: c.loc, section: Outbound}
	for _, ch := range el.Children {
		switch ch.Name {
		case "set-status", "set-header", "set-body":
			rr.steps = append(rr.steps, sub.statement(ch, m.path)...)
		default:
			return nil, fmt.Errorf("<%s> cannot be a child of <return-response>", ch.Name)
		}
	}
	return rr, nil
}

func (s *returnResponse) Exec(r *Request) error {
	r.Ctx.Response.Reset()
	r.Ctx.Response.SetStatusCode(fasthttp.StatusOK)
	if s.varName != "" {
		if err := writeResponseVar(r, &s.meta, s.varName); err != nil {
			return err
		}
	}
	saved := r.section
	r.section = Outbound
	err := runSteps(r, s.steps)
	r.section = saved
	if err != nil {
		return err
	}
	return errStop
}

type mockResponse struct {
	meta
	status      int
	contentType string
	body        []byte
}

func compileMockResponse(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	status := 200
	if raw, ok := el.Attr("status-code"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(raw.Value))
		if err != nil || n < 100 || n > 599 {
			return nil, fmt.Errorf("status-code %q is not an HTTP status code", raw.Value)
		}
		status = n
	}
	mr := &mockResponse{meta: m, status: status, contentType: attr(el, "content-type", "application/json")}
	// The example comes from the operation's documented responses; mock
	// responses at other scopes answer with the status alone.
	if op := c.set.operationFor(c.loc); op != nil {
		mr.body = exampleFor(op, status, mr.contentType)
	}
	return mr, nil
}

func exampleFor(op *config.Operation, status int, contentType string) []byte {
	for _, resp := range op.Properties.Responses {
		if resp.StatusCode != status {
			continue
		}
		for _, rep := range resp.Representations {
			if !strings.EqualFold(rep.ContentType, contentType) {
				continue
			}
			for _, ex := range rep.Examples {
				if len(ex.Value) == 0 {
					continue
				}
				// The snapshot may be indented; answer compact JSON, and
				// a JSON string example as its text.
				var text string
				if json.Unmarshal(ex.Value, &text) == nil {
					return []byte(text)
				}
				var b bytes.Buffer
				if json.Compact(&b, ex.Value) == nil {
					return b.Bytes()
				}
				return []byte(ex.Value)
			}
		}
	}
	return nil
}

func (s *mockResponse) Exec(r *Request) error {
	r.Ctx.Response.Reset()
	r.Ctx.Response.SetStatusCode(s.status)
	if len(s.body) > 0 {
		r.Ctx.Response.Header.SetContentType(s.contentType)
		r.Ctx.Response.SetBodyRaw(s.body)
	}
	return errStop
}

// --- rewrite-uri ------------------------------------------------------------

type rewriteURI struct {
	meta
	// dynamic, when set, is an expression giving the template per request.
	dynamic   text
	path      []templatePart
	query     []queryPart
	copyQuery bool
	// matched are the query parameter names the operation's template
	// consumes: they are not copied.
	matched map[string]bool
}

type templatePart struct {
	literal string
	param   string
}

type queryPart struct {
	name  string
	value []templatePart
}

func parseTemplateParts(s string) ([]templatePart, error) {
	var parts []templatePart
	for s != "" {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			parts = append(parts, templatePart{literal: s})
			break
		}
		if i > 0 {
			parts = append(parts, templatePart{literal: s[:i]})
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("'{' without '}' in template")
		}
		parts = append(parts, templatePart{param: s[i+1 : i+j]})
		s = s[i+j+1:]
	}
	return parts, nil
}

func compileRewriteURI(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	tpl, err := required(el, "template")
	if err != nil {
		return nil, err
	}
	copyQuery, err := boolAttr(el, "copy-unmatched-params", true)
	if err != nil {
		return nil, err
	}
	dyn, err := attrText(el, "template", "")
	if err != nil {
		return nil, err
	}
	rw, err := newRewrite(tpl, copyQuery, m)
	if err != nil {
		return nil, err
	}
	if dyn.isExpr() {
		rw.dynamic = dyn
	}
	if op := c.set.operationFor(c.loc); op != nil {
		_, q, _ := strings.Cut(op.Properties.URLTemplate, "?")
		for _, pair := range strings.Split(q, "&") {
			if name, _, _ := strings.Cut(pair, "="); name != "" {
				rw.matched[name] = true
			}
		}
	}
	return rw, nil
}

// newRewrite parses a rewrite template.
func newRewrite(tpl string, copyQuery bool, m meta) (*rewriteURI, error) {
	var err error
	path, query, _ := strings.Cut(tpl, "?")
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	rw := &rewriteURI{meta: m, copyQuery: copyQuery, matched: map[string]bool{}}
	if rw.path, err = parseTemplateParts(path); err != nil {
		return nil, err
	}
	for _, pair := range strings.Split(query, "&") {
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		parts, err := parseTemplateParts(value)
		if err != nil {
			return nil, err
		}
		rw.query = append(rw.query, queryPart{name: name, value: parts})
	}
	return rw, nil
}

func (s *rewriteURI) appendParts(b []byte, parts []templatePart, r *Request) []byte {
	for _, p := range parts {
		if p.param == "" {
			b = append(b, p.literal...)
			continue
		}
		if r.Match != nil {
			if v, ok := r.Match.Param(p.param); ok {
				b = append(b, v...)
			}
		}
	}
	return b
}

func (s *rewriteURI) Exec(r *Request) error {
	if s.dynamic.isExpr() {
		tpl, err := s.dynamic.str(r, &s.meta)
		if err != nil {
			return err
		}
		rw, err := newRewrite(tpl, s.copyQuery, s.meta)
		if err != nil {
			return s.fail("ExpressionValueEvaluationFailure", "Expression evaluation failed. "+err.Error(), 500)
		}
		rw.matched = s.matched
		return rw.Exec(r)
	}
	r.Path = s.appendParts(r.Path[:0], s.path, r)
	args := fasthttp.AcquireArgs()
	defer fasthttp.ReleaseArgs(args)
	args.ParseBytes(r.Query)
	q := r.scratch[:0]
	for i, qp := range s.query {
		if i > 0 {
			q = append(q, '&')
		}
		q = append(q, qp.name...)
		q = append(q, '=')
		q = s.appendParts(q, qp.value, r)
	}
	if s.copyQuery {
		for k, v := range args.All() {
			if s.matched[string(k)] {
				continue
			}
			if len(q) > 0 {
				q = append(q, '&')
			}
			q = append(q, k...)
			if len(v) > 0 {
				q = append(q, '=')
				q = append(q, v...)
			}
		}
	}
	r.Query = append(r.Query[:0], q...)
	r.scratch = q
	return nil
}

// --- set-backend-service, forward-request ---------------------------------------

// maxRedirects bounds follow-redirects.
const maxRedirects = 10

// followRedirects answers the backend's redirects itself: 303, and 301 or
// 302 after a POST, become GET without a body; 307 and 308 repeat the
// method and body. The final answer replaces the backend's.
func (s *forward) followRedirects(r *Request) error {
	resp := &r.Ctx.Response
	// Relative locations resolve against the URL the backend was called
	// at: the request-target sent, on the backend's scheme and host.
	current := fasthttp.AcquireURI()
	defer fasthttp.ReleaseURI(current)
	if r.Backend != nil {
		current.SetScheme(r.Backend.Scheme)
		current.SetHost(r.Backend.Host)
	}
	current.SetPathBytes(r.Ctx.Request.URI().PathOriginal())
	current.SetQueryStringBytes(r.Ctx.Request.URI().QueryString())
	var body []byte
	method := string(r.Ctx.Request.Header.Method())
	for range maxRedirects {
		code := resp.StatusCode()
		loc := resp.Header.Peek(fasthttp.HeaderLocation)
		if len(loc) == 0 || (code != 301 && code != 302 && code != 303 && code != 307 && code != 308) {
			return nil
		}
		current.Update(string(loc))
		switch {
		case code == 303, (code == 301 || code == 302) && method == fasthttp.MethodPost:
			method, body = fasthttp.MethodGet, nil
		case body == nil && method != fasthttp.MethodGet && method != fasthttp.MethodHead:
			b, err := r.RequestBody()
			if err != nil {
				return err
			}
			body = b
		}
		req := fasthttp.AcquireRequest()
		r.Ctx.Request.Header.CopyTo(&req.Header)
		req.Header.SetMethod(method)
		req.SetURI(current)
		req.Header.SetHostBytes(current.Host())
		req.UseHostHeader = true
		req.SetBody(body)
		resp.Reset()
		err := s.redirects.DoTimeout(req, resp, s.timeout())
		fasthttp.ReleaseRequest(req)
		if err != nil {
			reason, status := proxy.Reason(err)
			return s.fail(reason, "Backend redirect could not be followed", status)
		}
	}
	return nil
}

func (s *forward) timeout() time.Duration {
	if s.opts.Timeout > 0 {
		return s.opts.Timeout
	}
	return 300 * time.Second
}

type setBackend struct {
	meta
	backend Upstream
	// dynamic is a base-url expression, resolved per request with client.
	dynamic text
	client  func(proxy.Target) *fasthttp.HostClient
}

func compileSetBackend(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	base, hasBase := el.Attr("base-url")
	id, hasID := el.Attr("backend-id")
	if hasBase == hasID {
		return nil, fmt.Errorf("set exactly one of base-url and backend-id")
	}
	url := base.Value
	if hasBase && base.Expr {
		dyn, err := compileText(base.Value, true, base.Pos)
		if err != nil {
			return nil, err
		}
		if c.set.opts.Client == nil {
			return nil, fmt.Errorf("no backend clients available")
		}
		return &setBackend{meta: m, dynamic: dyn, client: c.set.opts.Client}, nil
	}
	if hasID && id.Expr {
		c.unsupported(el, "backend-id from an expression: "+notYet)
		return nil, nil
	}
	if hasID {
		// Backend entities (Single with its circuit breaker, or Pool):
		// backendpool.go.
		return compileBackendID(c, m, id.Value)
	}
	target, basePath, err := proxy.ParseTarget(url)
	if err != nil {
		return nil, err
	}
	if c.set.opts.Client == nil {
		return nil, fmt.Errorf("no backend clients available")
	}
	return &setBackend{meta: m, backend: Upstream{Client: c.set.opts.Client(target), Scheme: target.Scheme, Host: target.Host, BasePath: basePath}}, nil
}

func (s *setBackend) Exec(r *Request) error {
	if !s.dynamic.isExpr() {
		r.Backend = &s.backend
		return nil
	}
	url, err := s.dynamic.str(r, &s.meta)
	if err != nil {
		return err
	}
	target, basePath, err := proxy.ParseTarget(url)
	if err != nil {
		return s.fail("ExpressionValueEvaluationFailure", "Expression evaluation failed. "+err.Error(), 500)
	}
	r.dynBackend = Upstream{Client: s.client(target), Scheme: target.Scheme, Host: target.Host, BasePath: basePath}
	r.Backend = &r.dynBackend
	return nil
}

type forward struct {
	meta
	opts            ForwardOptions
	failOnErrorCode bool
	// redirects, when set (follow-redirects="true"), follows the backend's
	// redirects with this client, across hosts.
	redirects *fasthttp.Client
}

func compileForward(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	f := &forward{meta: m}
	if raw, ok := el.Attr("timeout"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(raw.Value))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("timeout %q must be a positive number of seconds", raw.Value)
		}
		f.opts.Timeout = time.Duration(n) * time.Second
	}
	if follow, err := boolAttr(el, "follow-redirects", false); err != nil {
		return nil, err
	} else if follow {
		f.redirects = c.sideClient()
	}
	var err error
	if f.failOnErrorCode, err = boolAttr(el, "fail-on-error-status-code", false); err != nil {
		return nil, err
	}
	return f, nil
}

func (s *forward) Exec(r *Request) error {
	if r.Forward == nil {
		return s.fail("BackendNotConfigured", "No backend is configured for this API", fasthttp.StatusInternalServerError)
	}
	r.Forwarded = true
	if r.clientCert != nil {
		r.clientCert.apply(r)
	}
	err := r.Forward(r, s.opts)
	if r.Backend != nil && r.Backend.Breaker != nil {
		r.Backend.Breaker.recordForward(r, err)
	}
	if err != nil {
		if pe, ok := err.(*Error); ok {
			pe.Source, pe.Scope, pe.Section, pe.Path, pe.PolicyID = s.name, s.loc.Scope.String(), s.section.String(), s.path, s.id
			return pe
		}
		return err
	}
	if s.redirects != nil {
		if err := s.followRedirects(r); err != nil {
			return err
		}
	}
	if s.failOnErrorCode && r.Ctx.Response.StatusCode() >= 400 {
		return s.fail("BackendErrorStatusCode", "Backend responded with status code "+strconv.Itoa(r.Ctx.Response.StatusCode()), r.Ctx.Response.StatusCode())
	}
	return nil
}
