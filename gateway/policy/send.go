package policy

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/expr"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/proxy"
)

// send-request and send-one-way-request (send-request-policy.md,
// send-one-way-request-policy.md): build a request from the children
// set-url, set-method, set-header and set-body, send it with the Set's
// side client and, for send-request, store the response in a variable as
// an IResponse.

const (
	// defaultSendTimeout is the documented default of timeout.
	defaultSendTimeout = 60 * time.Second
	// maxSendTimeout bounds a timeout from an expression or attribute.
	maxSendTimeout = 10 * time.Minute
	// sideMaxBody bounds a send-request response body held in memory: a
	// larger response fails the call (BackendConnectionFailure).
	sideMaxBody = 8 << 20
	// oneWayMaxInFlight bounds the send-one-way-request calls under way
	// in the process; calls past it are dropped and counted.
	oneWayMaxInFlight = 256
)

// newSideClient is the client for send-request when Options has none:
// dial, read and write timeouts so no call hangs past the policy timeout
// by much, and a bounded response body.
func newSideClient() *fasthttp.Client {
	return &fasthttp.Client{
		NoDefaultUserAgentHeader:      true,
		ReadTimeout:                   maxSendTimeout,
		WriteTimeout:                  maxSendTimeout,
		MaxIdleConnDuration:           30 * time.Second,
		MaxConnsPerHost:               512,
		MaxResponseBodySize:           sideMaxBody,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
	}
}

// sideClient returns the Set's client for send-request.
func (c *compiler) sideClient() *fasthttp.Client {
	if c.set.opts.SideClient == nil {
		// Shared, so connections survive configuration reloads.
		c.set.opts.SideClient = c.set.shared().side
	}
	return c.set.opts.SideClient
}

// oneWayLimiter bounds fire-and-forget calls.
type oneWayLimiter struct {
	slots   chan struct{}
	dropped atomic.Uint64
}

func newOneWayLimiter(n int) *oneWayLimiter { return &oneWayLimiter{slots: make(chan struct{}, n)} }

func (l *oneWayLimiter) tryAcquire() bool {
	select {
	case l.slots <- struct{}{}:
		return true
	default:
		l.dropped.Add(1)
		return false
	}
}

func (l *oneWayLimiter) release() { <-l.slots }

// sendHeader is a set-header child: name, exists-action, values.
type sendHeader struct {
	name   string
	action string
	values []text
}

type sendRequest struct {
	meta
	oneWay      bool
	mode        text // "new" or "copy"
	varName     text
	timeout     text // seconds
	ignoreError bool
	url         *text
	method      *text
	headers     []sendHeader
	hostHeader  bool // a set-header names Host: keep it on the wire
	body        *setBody
	client      *fasthttp.Client
	limiter     *oneWayLimiter
}

func compileSendRequest(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	return compileSend(c, el, m, false)
}

func compileSendOneWay(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	return compileSend(c, el, m, true)
}

func compileSend(c *compiler, el *policyxml.Element, m meta, oneWay bool) (Step, error) {
	s := &sendRequest{meta: m, oneWay: oneWay, client: c.sideClient(), limiter: c.set.shared().oneWay}
	var err error
	if s.mode, err = attrText(el, "mode", "new"); err != nil {
		return nil, err
	}
	if !s.mode.isExpr() {
		s.mode.lit = strings.ToLower(strings.TrimSpace(s.mode.lit))
		if s.mode.lit != "new" && s.mode.lit != "copy" {
			return nil, fmt.Errorf("mode must be new or copy, found %q", s.mode.lit)
		}
	}
	if s.timeout, err = attrText(el, "timeout", "60"); err != nil {
		return nil, err
	}
	if !s.timeout.isExpr() {
		if _, err := parseSendTimeout(s.timeout.lit); err != nil {
			return nil, err
		}
	}
	if oneWay {
		for _, name := range []string{"response-variable-name", "ignore-error"} {
			if _, ok := el.Attr(name); ok {
				return nil, fmt.Errorf("attribute %s is not an attribute of <send-one-way-request>", name)
			}
		}
	} else {
		if _, err := required(el, "response-variable-name"); err != nil {
			return nil, err
		}
		if s.varName, err = attrText(el, "response-variable-name", ""); err != nil {
			return nil, err
		}
		if a, ok := el.Attr("ignore-error"); ok && a.Expr {
			return nil, fmt.Errorf("attribute ignore-error cannot be a policy expression")
		}
		if s.ignoreError, err = boolAttr(el, "ignore-error", false); err != nil {
			return nil, err
		}
	}
	for _, ch := range el.Children {
		switch ch.Name {
		case "set-url":
			t, err := elemText(ch)
			if err != nil {
				return nil, err
			}
			// A literal URL is checked when the request is built:
			// named values often hold only part of it.
			s.url = &t
		case "set-method":
			st, err := compileSetMethod(c, ch, m)
			if err != nil {
				return nil, err
			}
			s.method = &st.(*setMethod).method
		case "set-header":
			st, err := compileSetHeader(c, ch, m)
			if err != nil {
				return nil, err
			}
			h := st.(*setHeader)
			s.headers = append(s.headers, sendHeader{name: h.name, action: h.action, values: h.values})
			if strings.EqualFold(h.name, "Host") && h.action != "delete" {
				s.hostHeader = true
			}
		case "set-body":
			if t := attr(ch, "template", ""); t != "" {
				c.unsupported(el, "set-body template "+t+" inside it: "+notYet)
				return nil, nil
			}
			st, err := compileSetBody(c, ch, m)
			if err != nil {
				return nil, err
			}
			s.body = st.(*setBody)
		case "authentication-certificate", "authentication-managed-identity", "proxy":
			c.unsupported(el, "its <"+ch.Name+"> child: "+notYet)
			return nil, nil
		default:
			return nil, fmt.Errorf("<%s> cannot be a child of <%s>", ch.Name, el.Name)
		}
	}
	if s.url == nil && !s.mode.isExpr() && s.mode.lit == "new" {
		return nil, fmt.Errorf("<set-url> is required with mode=\"new\"")
	}
	return s, nil
}

func parseSendTimeout(raw string) (time.Duration, error) {
	n, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(raw), "sec")), 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("timeout %q must be a positive number of seconds", raw)
	}
	d := time.Duration(n * float64(time.Second))
	return min(d, maxSendTimeout), nil
}

func checkSendURL(u string) error {
	lu := strings.ToLower(u)
	if !strings.HasPrefix(lu, "http://") && !strings.HasPrefix(lu, "https://") {
		return fmt.Errorf("set-url %q must be an absolute http or https URL", u)
	}
	if len(u) <= len("https://") && strings.HasPrefix(lu, "https://") || len(u) <= len("http://") {
		return fmt.Errorf("set-url %q has no host", u)
	}
	return nil
}

// sendCall is a prepared request: built on the request's goroutine (it
// evaluates expressions), then sent from any goroutine.
type sendCall struct {
	req     *fasthttp.Request
	timeout time.Duration
	varName string
}

// prepare evaluates the policy's expressions and builds the request. The
// caller owns call.req and must pass it to send or release it.
func (s *sendRequest) prepare(r *Request) (sendCall, error) {
	var call sendCall
	if !s.oneWay {
		name, err := s.varName.str(r, &s.meta)
		if err != nil {
			return call, err
		}
		if strings.TrimSpace(name) == "" {
			return call, s.fail("ExpressionValueEvaluationFailure", "Expression evaluation failed. response-variable-name is empty.", 500)
		}
		call.varName = name
	}
	raw, err := s.timeout.str(r, &s.meta)
	if err != nil {
		return call, err
	}
	if call.timeout, err = parseSendTimeout(raw); err != nil {
		return call, s.fail("ExpressionValueEvaluationFailure", "Expression evaluation failed. "+err.Error(), 500)
	}
	mode, err := s.mode.str(r, &s.meta)
	if err != nil {
		return call, err
	}
	mode = strings.ToLower(strings.TrimSpace(mode))
	if mode != "new" && mode != "copy" {
		return call, s.fail("ExpressionValueEvaluationFailure", fmt.Sprintf("Expression evaluation failed. mode must be new or copy, found %q.", mode), 500)
	}
	req := fasthttp.AcquireRequest()
	ok := false
	defer func() {
		if !ok {
			fasthttp.ReleaseRequest(req)
		}
	}()
	req.Header.DisableNormalizing()
	var url string
	if mode == "copy" {
		r.Ctx.Request.Header.CopyTo(&req.Header)
		for _, h := range sendHopByHop {
			req.Header.Del(h)
		}
		// In the outbound section mode=copy does not initialize the
		// body (send-request-policy.md, attribute mode).
		if r.section != Outbound && r.section != OnError {
			req.SetBody(r.Ctx.Request.Body())
		}
		if r.Backend != nil {
			b := append([]byte(nil), r.Backend.Scheme...)
			b = append(b, "://"...)
			b = append(b, r.Backend.Host...)
			b = append(b, r.Backend.BasePath...)
			b = append(b, r.Path...)
			if len(r.Query) > 0 {
				b = append(b, '?')
				b = append(b, r.Query...)
			}
			url = string(b)
		}
	} else {
		req.Header.SetMethod(fasthttp.MethodGet)
	}
	if s.url != nil {
		if url, err = s.url.str(r, &s.meta); err != nil {
			return call, err
		}
		url = strings.TrimSpace(url)
	}
	if url == "" {
		return call, s.fail("ExpressionValueEvaluationFailure", "The request has no URL: add <set-url>.", 500)
	}
	if err := checkSendURL(url); err != nil {
		return call, s.fail("ExpressionValueEvaluationFailure", "Expression evaluation failed. "+err.Error(), 500)
	}
	req.SetRequestURI(url)
	if s.method != nil {
		m, err := s.method.str(r, &s.meta)
		if err != nil {
			return call, err
		}
		req.Header.SetMethod(strings.ToUpper(strings.TrimSpace(m)))
	}
	for i := range s.headers {
		if err := s.applyHeader(r, &req.Header, &s.headers[i]); err != nil {
			return call, err
		}
	}
	req.UseHostHeader = s.hostHeader
	if s.body != nil {
		body := s.body.body
		if s.body.prog.isExpr() {
			v, err := s.body.prog.str(r, &s.meta)
			if err != nil {
				return call, err
			}
			body = []byte(v)
		}
		req.SetBody(body)
	}
	ok = true
	call.req = req
	return call, nil
}

// sendHopByHop are headers a copied request does not carry over.
var sendHopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "TE", "Trailer", "Upgrade", "Content-Length"}

func (s *sendRequest) applyHeader(r *Request, h *fasthttp.RequestHeader, sh *sendHeader) error {
	switch sh.action {
	case "delete":
		h.Del(sh.name)
		return nil
	case "skip":
		if h.Peek(sh.name) != nil {
			return nil
		}
	case "override":
		h.Del(sh.name)
	}
	if len(sh.values) == 0 && sh.action != "append" {
		h.Add(sh.name, "")
		return nil
	}
	for i := range sh.values {
		v, err := sh.values[i].str(r, &s.meta)
		if err != nil {
			return err
		}
		h.Add(sh.name, v)
	}
	return nil
}

// send performs a prepared call and releases its request. Safe to run on
// any goroutine: it does not touch the Request.
func (s *sendRequest) send(call sendCall) (*sentResponse, error) {
	defer fasthttp.ReleaseRequest(call.req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := s.client.DoTimeout(call.req, resp, call.timeout); err != nil {
		return nil, err
	}
	out := &sentResponse{status: resp.StatusCode(), body: append([]byte(nil), resp.Body()...)}
	if msg := resp.Header.StatusMessage(); len(msg) > 0 {
		out.reason = string(msg)
	}
	for k, v := range resp.Header.All() {
		out.header = append(out.header, [2]string{string(k), string(v)})
	}
	return out, nil
}

func (s *sendRequest) Exec(r *Request) error {
	call, err := s.prepare(r)
	if err != nil {
		return err
	}
	if s.oneWay {
		if !s.limiter.tryAcquire() {
			fasthttp.ReleaseRequest(call.req)
			return nil
		}
		go func() {
			defer s.limiter.release()
			s.send(call) //nolint:errcheck // fire and forget
		}()
		return nil
	}
	host := string(call.req.URI().Host())
	resp, err := s.send(call)
	return s.storeResult(r, call.varName, host, resp, err)
}

// storeResult records the outcome of a call in the response variable (the
// request was released by send).
func (s *sendRequest) storeResult(r *Request, name, host string, resp *sentResponse, err error) error {
	if err != nil {
		if s.ignoreError {
			// "the response variable will contain a null value"
			exprVars{r}.Set(name, expr.Null)
			return nil
		}
		reason, _ := proxy.Reason(err)
		return s.fail(reason, "Error occurred while calling "+host+": "+err.Error(), fasthttp.StatusInternalServerError)
	}
	exprVars{r}.Set(name, expr.Host(resp))
	return nil
}

// --- the IResponse a send-request stores ---------------------------------------

// sentResponse is a send-request response, owned (copied out of the
// client's buffers). Read-only once stored, so concurrent readers are
// safe.
type sentResponse struct {
	status int
	reason string
	header [][2]string
	body   []byte
}

type sentHeaders [][2]string
type sentBody []byte

func (s *sentResponse) StatusCode() int { return s.status }
func (s *sentResponse) StatusReason() string {
	if s.reason != "" {
		return s.reason
	}
	return fasthttp.StatusMessage(s.status)
}
func (s *sentResponse) Headers() expr.MultiMap { return sentHeaders(s.header) }
func (s *sentResponse) Body() expr.Body        { return sentBody(s.body) }

// Read returns the body. Like context.Request.Body, the content is kept
// whatever preserveContent says (a documented difference).
func (b sentBody) Read(preserveContent bool) ([]byte, error) { return b, nil }

func (h sentHeaders) Get(name string) ([]string, bool) {
	var out []string
	for _, kv := range h {
		if strings.EqualFold(kv[0], name) {
			out = append(out, kv[1])
		}
	}
	return out, len(out) > 0
}

func (h sentHeaders) Names() []string {
	var out []string
	for _, kv := range h {
		dup := false
		for _, n := range out {
			if strings.EqualFold(n, kv[0]) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, kv[0])
		}
	}
	return out
}

// writeResponseVar makes the variable name's response (an IResponse from
// send-request, or any expr.Response) the answer: status, reason,
// headers and body. return-response's response-variable-name uses it.
func writeResponseVar(r *Request, m *meta, name string) error {
	v, ok := exprVars{r}.Get(name)
	if !ok || v.IsNull() {
		return m.fail("ResponseVariableNotFound", fmt.Sprintf("Variable %s does not hold a response.", name), 500)
	}
	resp := &r.Ctx.Response
	switch src := v.Obj().(type) {
	case *sentResponse:
		resp.SetStatusCode(src.status)
		if src.reason != "" {
			resp.Header.SetStatusMessage([]byte(src.reason))
		}
		for _, kv := range src.header {
			if protectedHeaders[strings.ToLower(kv[0])] {
				continue
			}
			if strings.EqualFold(kv[0], "Content-Type") {
				resp.Header.SetContentType(kv[1])
				continue
			}
			resp.Header.Add(kv[0], kv[1])
		}
		resp.SetBody(src.body)
		return nil
	case expr.Response:
		resp.SetStatusCode(src.StatusCode())
		for _, n := range src.Headers().Names() {
			if protectedHeaders[strings.ToLower(n)] {
				continue
			}
			vals, _ := src.Headers().Get(n)
			for _, hv := range vals {
				resp.Header.Add(n, hv)
			}
		}
		if b := src.Body(); b != nil {
			body, err := b.Read(true)
			if err != nil {
				return m.fail("ResponseVariableNotFound", err.Error(), 500)
			}
			resp.SetBody(body)
		}
		return nil
	}
	return m.fail("ResponseVariableNotFound", fmt.Sprintf("Variable %s does not hold a response.", name), 500)
}

// readBodyOnce buffers the request body (a streamed body is read to the
// end) so it can be sent more than once.
func readBodyOnce(r *Request, m *meta) error {
	if !r.Ctx.Request.IsBodyStream() {
		return nil
	}
	rs := r.Ctx.RequestBodyStream()
	if rs == nil {
		return nil
	}
	b, err := io.ReadAll(rs)
	if err != nil && !errors.Is(err, io.EOF) {
		return m.fail("RequestEntityTooLarge", "The request body could not be read: "+err.Error(), fasthttp.StatusRequestEntityTooLarge)
	}
	r.Ctx.Request.SetBody(b)
	return nil
}
